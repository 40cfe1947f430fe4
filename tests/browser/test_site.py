"""The course website (``bash scripts/site.sh``) in headless Chromium, served from a local HTTP server.

Every page: each image has loaded (natural width > 0), the math has rendered (MathJax's
``mjx-container`` for every math element, no MathJax error), no same-site link is broken (HTTP
200, and a ``#fragment`` names an element of its page), no script error. The two static explorers:
the schedule's sliders (lesson 01) recompute the curves, which match the package's
``diffusion_schedule``; the sampler's steps and seed sliders and its sampler buttons (lesson 06)
swap the picture for another frame. A full-page screenshot of every page goes to
``artifacts/site/`` for a person to look at.

The site is built by ``scripts/site.sh`` (``scripts/test.sh`` runs it first); ``DDIM_SITE_DIR``
points at another build. Without a built site these tests skip, or fail where the browser suite is
required (CI).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_DIR = Path(os.environ.get("DDIM_SITE_DIR", REPO_ROOT / "build" / "site" / "html"))
SCREENSHOTS = REPO_ROOT / "artifacts" / "site"
LESSONS = sorted(path.stem for path in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index"] + [f"notebooks/{stem}" for stem in LESSONS]
SCHEDULE = ".ddim-static-schedule"
SAMPLER = ".ddim-static-sampler"

# Runs in the page: wait for every <img> to finish (loaded or failed), then list the ones without pixels.
_BROKEN_IMAGES_JS = """async () => {
    const images = Array.from(document.images);
    await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
        img.addEventListener('load', done, {once: true});
        img.addEventListener('error', done, {once: true});
    })));
    return {count: images.length,
            broken: images.filter(img => !(img.naturalWidth > 0)).map(img => img.currentSrc || img.src)};
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site_url(cannot_run) -> Iterator[str]:
    """The built site, served on a free localhost port."""
    if not (SITE_DIR / "index.html").is_file():
        cannot_run(f"no built site at {SITE_DIR}; run `bash scripts/site.sh` first")
    handler = functools.partial(_QuietHandler, directory=str(SITE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site_page(browser, site_url):
    """One browser page for the module; ``errors`` collects the scripts' uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def _open(page, url: str) -> None:
    page.errors.clear()
    response = page.goto(url, wait_until="load", timeout=60_000)
    assert response is not None and response.status == 200, f"{url}: HTTP {response and response.status}"


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = answer.read().decode("utf-8", errors="replace") if "html" in answer.headers.get(
                "Content-Type", "") else ""
            return answer.status, body
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_the_site_has_a_page_for_every_lesson(cannot_run):
    if not (SITE_DIR / "index.html").is_file():
        cannot_run(f"no built site at {SITE_DIR}; run `bash scripts/site.sh` first")
    missing = [page for page in PAGES if not (SITE_DIR / f"{page}.html").is_file()]
    assert not missing, f"pages missing from {SITE_DIR}: {missing}"


@pytest.mark.parametrize("page_path", PAGES)
def test_page_images_math_links(site_page, site_url, page_path):
    page = site_page
    url = f"{site_url}{page_path}.html"
    _open(page, url)

    images = page.evaluate(_BROKEN_IMAGES_JS)
    assert not images["broken"], f"{page_path}: images that did not load: {images['broken']}"
    if page_path.startswith("notebooks/") and not page_path.endswith("00_check_on_colab"):
        # Each executed lesson shows at least its two badges and one plot or grid.
        assert images["count"] >= 3, f"{page_path}: only {images['count']} images"
    badges = page.locator("img[src*='colab-badge'], img[src*='binder-badge']")
    if page_path != "index":
        assert badges.count() == 2, f"{page_path}: the Colab and Binder badges are not both there"

    # Sphinx marks every formula with the class "math"; MathJax replaces its TeX with mjx-container.
    math_count = page.locator(".math").count()
    if math_count:
        page.wait_for_function(
            "n => document.querySelectorAll('.math mjx-container, mjx-container.MathJax').length >= n",
            arg=math_count, timeout=60_000)
        assert page.locator("mjx-merror, [data-mjx-error]").count() == 0, f"{page_path}: a formula failed"
    if page_path.endswith(("01_diffusion_schedule", "06_sampling")):
        assert math_count > 0, f"{page_path} has formulas, but none was found rendered"

    # Every explorer of the lesson is there as a picture or as static sliders, with its note.
    if page_path.startswith("notebooks/"):
        source = (REPO_ROOT / f"{page_path}.ipynb").read_text()
        explorers = len(re.findall(r"widgets\.\w+_explorer\(", source))
        notes = page.locator("p.ddim-static-note")
        assert notes.count() == explorers, f"{page_path}: {explorers} explorers, {notes.count()} notes"
        for k in range(explorers):
            assert "only in the notebook" in notes.nth(k).inner_text()

    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    internal = sorted({href for href in hrefs if href.startswith(site_url)})
    assert any("notebooks/" in href for href in internal), f"{page_path}: no link to a lesson (navigation)"
    broken = []
    for href in internal:
        target, _, fragment = href.partition("#")
        status, body = _status(target)
        if status != 200:
            broken.append(f"{href} (HTTP {status})")
        elif fragment and body and not re.search(
                rf'id=["\']{re.escape(urllib.parse.unquote(fragment))}["\']', body):
            broken.append(f"{href} (no element with id {fragment!r})")
    assert not broken, f"{page_path}: broken links: {broken}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{page_path.replace('/', '__')}.png"), full_page=True)
    assert not page.errors, f"{page_path}: script errors: {page.errors}"


def test_every_lesson_links_to_the_next(site_page, site_url):
    """The theme's previous/next navigation walks the lessons in order."""
    executed = [stem for stem in LESSONS if not stem.startswith("00_")]
    for here, following in zip(executed, executed[1:], strict=False):
        _open(site_page, f"{site_url}notebooks/{here}.html")
        next_link = site_page.locator("a.right-next")
        assert next_link.count() == 1, f"{here}: no 'next' link"
        assert next_link.get_attribute("href").endswith(f"{following}.html")


# ------------------------------------------------------------------- the schedule explorer
def _schedule_state(page) -> dict:
    return page.evaluate("""() => {
        const root = document.querySelector('.ddim-static-schedule');
        const signal = root.querySelector('.ddim-schedule-signal').getAttribute('points');
        return {svg: root.querySelector('svg').innerHTML, signal,
                status: root.querySelector('.ddim-static-status').textContent};
    }""")


def _rate_at_half(points: str) -> float:
    """The signal rate at t = 0.5 read off the plotted curve (201 points; the axes of ddim-schedule.js)."""
    x, y = (float(v) for v in points.split()[100].split(","))
    top, height = 40, 240
    return (top + height - y) / (height / 1.08)


@pytest.mark.parametrize("description, key, presses", [("min signal", "ArrowRight", 10),
                                                         ("max signal", "ArrowLeft", 20)])
def test_schedule_sliders_redraw_the_curves(site_page, site_url, description, key, presses):
    from keras import ops

    from ddim_tutorial import diffusion_schedule  # the public name (the module moves in issue 24)

    page = site_page
    _open(page, f"{site_url}notebooks/01_diffusion_schedule.html")
    page.wait_for_selector(f"{SCHEDULE}[data-ready='true']", timeout=30_000)
    assert "only in the notebook" in page.locator(f"{SCHEDULE} ~ p.ddim-static-note").first.inner_text()
    before = _schedule_state(page)
    slider = page.locator(f"{SCHEDULE} input[data-control='{description}']")
    slider.focus()
    for _ in range(presses):
        slider.press(key)
    after = _schedule_state(page)
    assert after["svg"] != before["svg"], f"moving {description} did not redraw the schedule"
    assert after["status"] != before["status"]

    low = float(page.locator(f"{SCHEDULE} input[data-control='min signal']").input_value())
    high = float(page.locator(f"{SCHEDULE} input[data-control='max signal']").input_value())
    assert (low, high) == ((0.12, 0.95) if description == "min signal" else (0.02, 0.75))
    _, signal = diffusion_schedule(ops.convert_to_tensor([0.5]), low, high)
    expected = float(ops.convert_to_numpy(signal)[0])
    assert abs(_rate_at_half(after["signal"]) - expected) < 0.01, "the browser's schedule is not the package's"
    page.screenshot(path=str(SCREENSHOTS / f"schedule_after_{description.replace(' ', '_')}.png"),
                    full_page=False)
    assert not page.errors


# -------------------------------------------------------------------- the sampler explorer
def _sampler_picture(page) -> dict:
    page.wait_for_function("""() => {
        const img = document.querySelector('.ddim-static-sampler img');
        return img && img.complete && img.naturalWidth > 0;
    }""", timeout=30_000)
    return page.evaluate("""async () => {
        const root = document.querySelector('.ddim-static-sampler');
        const img = root.querySelector('img');
        const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let sum = 0;
        for (const b of bytes) sum = (sum * 31 + b) >>> 0;
        return {src: img.src, digest: sum + ':' + bytes.length,
                caption: root.querySelector('.ddim-static-status').textContent};
    }""")


def test_sampler_controls_swap_the_picture(site_page, site_url):
    page = site_page
    _open(page, f"{site_url}notebooks/06_sampling.html")
    page.wait_for_selector(f"{SAMPLER}[data-ready='true']", timeout=30_000)
    note = page.locator(f"{SAMPLER} ~ p.ddim-static-note").first
    assert "only in the notebook" in note.inner_text()
    start = _sampler_picture(page)
    assert start["caption"].startswith("DDIM, 20 steps"), start["caption"]

    seen = [start]
    steps = page.locator(f"{SAMPLER} input[data-control='steps']")
    steps.focus()
    steps.press("ArrowLeft")  # 20 -> 10 steps
    seen.append(_sampler_picture(page))
    assert seen[-1]["caption"].startswith("DDIM, 10 steps"), seen[-1]["caption"]

    seed = page.locator(f"{SAMPLER} input[data-control='seed']")
    seed.focus()
    seed.press("ArrowRight")  # seed 0 -> 1
    seen.append(_sampler_picture(page))
    assert seen[-1]["caption"].endswith("seed 1"), seen[-1]["caption"]

    page.locator(f"{SAMPLER} button[data-sampler='dpm++2s']").click()
    seen.append(_sampler_picture(page))
    assert seen[-1]["caption"].startswith("DPM++ 2S, 10 steps (19 network evaluations)"), seen[-1]["caption"]

    for earlier, later in zip(seen, seen[1:], strict=False):
        assert later["src"] != earlier["src"], "a control did not change the picture"
        assert later["digest"] != earlier["digest"], "two settings show the same pixels"
    page.locator(SAMPLER).screenshot(path=str(SCREENSHOTS / "sampler_after_controls.png"))
    assert not page.errors
