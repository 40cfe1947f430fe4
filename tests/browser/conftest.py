"""Drive JupyterLab in headless Chromium, the way students meet the course.

One JupyterLab server and one Chromium serve the whole browser suite: the server runs on a free
localhost port with a random token, from a temporary copy of ``notebooks/`` (so autosave never
writes outputs into the repo), with ``DDIM_FAST=1`` in the kernels' environment. Chromium is
Debian's ``chromium`` driven by Playwright's Python API through ``executable_path``; no browser is
ever downloaded. Screenshots go to ``artifacts/browser/`` for a person to look at.

The copy includes ``notebooks/runs/`` when lesson 04 (or nbval) already trained there, as a
student's folder would after lesson 04; without it, lessons 06/07 train their quick model in the
copy first (about a minute more in fast mode).

The tests skip, with the reason, only where Chromium (or Playwright / JupyterLab) cannot start.
Where ``DDIM_BROWSER_REQUIRED=1`` (CI sets it), or ``CI`` is set and ``DDIM_BROWSER_REQUIRED``
is not ``0``, those skips become failures, so CI can never pass silently without a browser.
Install what is needed with ``bash .ci/browser_setup.sh path/to/python``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "browser"
FLOWERS12 = REPO_ROOT.parent / "shared" / "data" / "flowers12"

CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
)
# Root in a container has no user namespaces for Chromium's sandbox, and Docker's /dev/shm is
# often 64 MB; there is no GPU either.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]

SERVER_START_TIMEOUT_S = 90
NOTEBOOK_RUN_TIMEOUT_S = float(os.environ.get("DDIM_BROWSER_RUN_TIMEOUT", "240"))
WIDGET_UPDATE_TIMEOUT_S = float(os.environ.get("DDIM_BROWSER_UPDATE_TIMEOUT", "90"))

# Output areas of cells and of Output widgets: stderr (where error outputs render too) and any
# rendered text. A lesson may *print* "ValueError: ..." on purpose, so stdout counts as an error
# only with a real traceback in it.
STDERR_OUTPUT_SELECTOR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
RENDERED_TEXT_SELECTOR = ".jp-OutputArea-output .jp-RenderedText"
# What JupyterLab's widget manager draws instead of a widget it cannot show.
BROKEN_WIDGET_PATTERN = re.compile(r"^\s*Error displaying widget")
# "ValueError: ...", "Exception" at a line start: how a Python failure reads once rendered.
_ERROR_LINE = re.compile(r"(^|\n)\s*[A-Z]\w*(Error|Exception)\b")
# Runs in the page: digest the bytes of the element's images (the element itself if an <img>).
_IMAGE_DIGESTS_JS = """async (el) => {
    const images = el.tagName === 'IMG' ? [el] : Array.from(el.querySelectorAll('img'));
    const digests = [];
    for (const img of images) {
        const src = img.currentSrc || img.src;
        if (!src) continue;
        const bytes = await (await fetch(src)).arrayBuffer();
        const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        digests.push(Array.from(hash, b => b.toString(16).padStart(2, '0')).join('')
                     + ':' + bytes.byteLength);
    }
    return digests;
}"""
# Runs in the page: the bytes of the element's first image (the element itself if an <img>), base64.
_IMAGE_BYTES_JS = """async (el) => {
    const img = el.tagName === 'IMG' ? el : el.querySelector('img');
    if (!img || !(img.currentSrc || img.src)) return null;
    const bytes = new Uint8Array(await (await fetch(img.currentSrc || img.src)).arrayBuffer());
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
        text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
}"""
SLIDER_SELECTOR = ".widget-slider"
SLIDER_HANDLE_SELECTOR = ".noUi-handle, .ui-slider-handle"  # ipywidgets 8 and 7


def _browser_required() -> bool:
    falsy = ("", "0", "false", "no")
    explicit = os.environ.get("DDIM_BROWSER_REQUIRED")
    if explicit is not None:
        return explicit.strip().lower() not in falsy
    return os.environ.get("CI", "").strip().lower() not in falsy


def _cannot_run(reason: str) -> None:
    """Skip with the reason, or fail with it where the browser suite is required (CI)."""
    if _browser_required():
        pytest.fail(f"{reason} (the browser tests are required here: DDIM_BROWSER_REQUIRED or CI is set)")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives a browser."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)


# --------------------------------------------------------------------------------------------
# Chromium through Playwright


def find_chromium() -> str | None:
    """The system Chromium: ``$DDIM_CHROMIUM`` if set, else Debian's or Google's path."""
    explicit = os.environ.get("DDIM_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        _cannot_run(
            "no Chromium found (looked at $DDIM_CHROMIUM and "
            + ", ".join(CHROMIUM_CANDIDATES)
            + "); run .ci/browser_setup.sh or `apt-get install chromium`"
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    """A headless Chromium for the whole session, launched from the system binary."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _cannot_run("Playwright's Python package is not installed; run `pip install playwright`")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as error:  # noqa: BLE001 - any launch failure means "cannot start"
        playwright.stop()
        _cannot_run(f"Chromium at {chromium_path} cannot start headless: {error}")
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``artifacts/browser/`` in the repo (ignored by git): screenshots and the server log."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


# --------------------------------------------------------------------------------------------
# The JupyterLab server


@dataclass
class LabServer:
    """A running ``jupyter lab`` and where it serves from."""

    url: str
    token: str
    root_dir: Path
    process: subprocess.Popen
    log_path: Path

    def lab_url(self) -> str:
        # A named workspace with ?reset, so no tab of an earlier run is restored.
        return f"{self.url}lab/workspaces/browser-tests?reset&token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_lab_settings(settings_dir: Path) -> None:
    """User settings that keep the page deterministic for a robot."""
    settings = {
        # Render every cell in the DOM, so widgets and errors below the fold can be found.
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        # No "would you like news?" toast and no update check (there is no internet anyway).
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for relative, values in settings.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def _server_environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DDIM_FAST"] = "1"
    if "DDIM_DATA_DIR" not in env and FLOWERS12.is_dir():
        env["DDIM_DATA_DIR"] = str(FLOWERS12)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Isolate Jupyter's per-user state from the machine's.
    env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(home / "config")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(home / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "lab-workspaces")
    env["IPYTHONDIR"] = str(home / "ipython")
    env["MPLCONFIGDIR"] = str(home / "matplotlib")
    return env


def _wait_until_answering(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    status_url = f"{server.url}api/status?token={server.token}"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with code {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(status_url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"jupyter lab did not answer on {server.url} within {SERVER_START_TIMEOUT_S} s:\n"
        f"{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def lab_server(artifacts_dir: Path, chromium_path: str) -> Iterator[LabServer]:
    """``jupyter lab`` on a free localhost port, serving a temporary copy of the notebooks."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _cannot_run(f"JupyterLab is not installed in {sys.executable}; `pip install jupyterlab`")
    home = Path(tempfile.mkdtemp(prefix="ddim-browser-"))
    root_dir = home / "course"
    if NOTEBOOKS_DIR.is_dir():
        shutil.copytree(
            NOTEBOOKS_DIR, root_dir / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
        )
    else:
        (root_dir / "notebooks").mkdir(parents=True)
    # Notebooks that reach the package or data through "../" find the same layout as in the repo.
    (root_dir / "ddim_tutorial").symlink_to(REPO_ROOT / "ddim_tutorial", target_is_directory=True)
    _write_lab_settings(home / "lab-settings")
    token = secrets.token_hex(16)
    port = _free_port()
    log_path = artifacts_dir / "jupyterlab.log"
    log_file = log_path.open("w")
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
    ]
    process = subprocess.Popen(
        command,
        cwd=root_dir,
        env=_server_environment(home),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LabServer(f"http://127.0.0.1:{port}/", token, root_dir, process, log_path)
    try:
        _wait_until_answering(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log_file.close()
        shutil.rmtree(home, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# A notebook open in JupyterLab

# Runs in the page: the notebook panel with this DOM id (JupyterLab's widget id).
_FIND_PANEL_JS = """(id) => Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.id === id)"""


@dataclass
class NotebookPage:
    """One notebook open in the shared JupyterLab page, with what a student would do to it.

    Every lookup is scoped to this notebook's panel (``#<panel id>``), so other notebooks that
    were open before cannot answer for it."""

    page: object
    panel_id: str
    name: str
    artifacts_dir: Path
    server_log: Callable[[], str] = lambda: "(no server log)"
    screenshots: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def root(self):
        return self.page.locator(f"#{self.panel_id}")

    def _scope(self, within: str | None):
        return self.root.locator(within) if within else self.root

    def _panel_eval(self, body: str):
        """Evaluate ``body`` (JavaScript using ``w``, the notebook panel) in the page."""
        return self.page.evaluate(
            f"(id) => {{ const w = ({_FIND_PANEL_JS})(id); if (!w) return null; {body} }}",
            self.panel_id,
        )

    # -- the kernel ---------------------------------------------------------------------------

    def kernel_status(self) -> str:
        status = self._panel_eval(
            "const s = w.sessionContext.session; return s && s.kernel ? s.kernel.status : 'none';"
        )
        return status or "closed"

    def wait_for_kernel_idle(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.kernel_status() == "idle":
                return
            self.page.wait_for_timeout(250)
        raise AssertionError(
            f"{self.name}: kernel not idle after {timeout_s:.0f} s (status {self.kernel_status()!r})"
        )

    def pending_cells(self) -> int:
        """Code cells queued or running: JupyterLab shows their prompt as ``[*]:``."""
        return self.root.locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]").count()

    def run_all_cells(self, timeout_s: float = NOTEBOOK_RUN_TIMEOUT_S) -> float:
        """Run > Run All Cells from the menu bar, then wait until every cell has run."""
        started = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=_exactly("Run")).first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text=_exactly("Run All Cells")).first.click()
        # The first cell is queued at once; then wait for the queue to drain and stay drained.
        deadline = started + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            status = self.kernel_status()
            if status in ("dead", "autorestarting", "restarting", "closed"):
                self.screenshot("kernel_died")
                raise AssertionError(
                    f"{self.name}: the kernel is {status!r} during Run All (out of memory? crash?)\n"
                    f"{self.server_log()}"
                )
            busy = self.pending_cells() > 0 or status != "idle"
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 1.5:
                self.timings["run_all_s"] = round(time.monotonic() - started, 1)
                return self.timings["run_all_s"]
            self.page.wait_for_timeout(250)
        self.screenshot("run_all_timeout")
        raise AssertionError(
            f"{self.name}: cells still running after {timeout_s:.0f} s "
            f"({self.pending_cells()} pending, kernel {self.kernel_status()!r})"
        )

    def close(self) -> None:
        """Shut the kernel down and close the tab without saving (it is a temporary copy)."""
        self.page.evaluate(
            f"""async (id) => {{
                const w = ({_FIND_PANEL_JS})(id);
                if (!w) return;
                await w.sessionContext.shutdown();
                w.context.model.dirty = false;
                w.dispose();
            }}""",
            self.panel_id,
        )

    # -- errors -------------------------------------------------------------------------------

    def error_outputs(self) -> list[str]:
        """Texts of outputs that show a failure: error outputs in the notebook model and
        rendered tracebacks or "...Error:" lines in any output area (Output widgets included)."""
        model_errors = self._panel_eval(
            """const found = [];
            const cells = w.content.model.cells;
            for (let i = 0; i < cells.length; i++) {
                const cell = cells.get(i);
                if (cell.type !== 'code') continue;
                for (let j = 0; j < cell.outputs.length; j++) {
                    const o = cell.outputs.get(j).toJSON();
                    if (o.output_type === 'error') found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
                }
            }
            return found;"""
        ) or []
        stderr = self.root.locator(STDERR_OUTPUT_SELECTOR).all_inner_texts()
        dom_errors = [
            text.strip()[-800:] for text in stderr if "Traceback" in text or _ERROR_LINE.search(text)
        ]
        for text in self.root.locator(RENDERED_TEXT_SELECTOR).all_inner_texts():
            if "Traceback (most recent call last)" in text and text.strip()[-800:] not in dom_errors:
                dom_errors.append(text.strip()[-800:])
        broken = self.root.locator(".jp-OutputArea-output", has_text=BROKEN_WIDGET_PATTERN)
        dom_errors += [text.strip()[:300] for text in broken.all_inner_texts()]
        return model_errors + dom_errors

    def assert_no_errors(self) -> None:
        errors = self.error_outputs()
        if errors:
            first = self.root.locator(STDERR_OUTPUT_SELECTOR).first
            if first.count():
                first.scroll_into_view_if_needed()
            self.screenshot("errors")
        assert not errors, f"{self.name}: outputs show errors:\n" + "\n---\n".join(errors)

    # -- widgets ------------------------------------------------------------------------------

    def slider(self, description: str, within: str | None = None):
        """The slider whose description label reads exactly ``description``."""
        label = self.page.locator(".widget-label", has_text=_exactly(description))  # relative
        slider = self._scope(within).locator(SLIDER_SELECTOR).filter(has=label).first
        slider.wait_for(state="visible", timeout=30_000)
        return slider

    def slider_readout(self, slider) -> str:
        return slider.locator(".widget-readout").first.inner_text().strip()

    def move_slider(self, description: str, presses: int = 1, within: str | None = None) -> tuple[str, str]:
        """Focus the slider's handle and press the arrow key, as a keyboard user would.

        Returns the readout before and after, which must differ."""
        slider = self.slider(description, within)
        slider.scroll_into_view_if_needed()
        before = self.slider_readout(slider)
        handle = slider.locator(SLIDER_HANDLE_SELECTOR).first
        handle.focus()
        key = "ArrowRight" if presses > 0 else "ArrowLeft"
        for _ in range(abs(presses)):
            handle.press(key)
        after = self.slider_readout(slider)
        assert after != before, (
            f"{self.name}: slider {description!r} did not move from {before!r} with {key}"
        )
        return before, after

    def click_button(self, description: str, within: str | None = None) -> None:
        """Click the widget button labelled ``description``."""
        button = self._scope(within).locator("button.widget-button", has_text=_exactly(description))
        button.first.scroll_into_view_if_needed()
        button.first.click()

    def texts(self, selector: str) -> list[str]:
        return [text.strip() for text in self.root.locator(selector).all_inner_texts()]

    # -- an explorer that may wait for "sample" -----------------------------------------------

    def is_live(self, explorer: str) -> bool:
        """Whether the explorer (its container's CSS selector) redraws on release: class ``ddim-live``."""
        return self.root.locator(f"{explorer}.ddim-live").count() == 1

    def sample_unless_live(self, explorer: str, status_before: list[str], grid_before: str) -> None:
        """After a control moved: a live explorer redraws by itself; a slow one only asks for
        **sample** in its status line, keeps its grid (``grid_before``, a fingerprint), and
        computes when the button is pressed, which this does."""
        if self.is_live(explorer):
            return
        self.wait_for_text_change(f"{explorer} .ddim-status", status_before)
        assert self.fingerprint(f"{explorer} .ddim-grid") == grid_before, "the grid changed before 'sample' was pressed"
        self.click_button("sample", within=explorer)

    def wait_for_text_change(self, selector: str, before: list[str], timeout_s: float = 30) -> list[str]:
        """Wait until the texts of ``selector`` differ from ``before`` (e.g. a status line)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = self.texts(selector)
            if now != before:
                return now
            self.page.wait_for_timeout(200)
        raise AssertionError(f"{self.name}: {selector} still reads {before!r} after {timeout_s:.0f} s")

    # -- what is drawn ------------------------------------------------------------------------

    def fingerprint(self, selector: str) -> str:
        """What ``selector`` draws: SHA-256 and size of the bytes behind each of its images
        (``ipywidgets.Image`` blobs, inline matplotlib data URLs), or failing images its pixels."""
        element = self.root.locator(selector).first
        digests = element.evaluate(_IMAGE_DIGESTS_JS)
        if digests:
            return "\n".join(digests)
        return "pixels:" + hashlib.sha256(element.screenshot()).hexdigest()

    def image_bytes(self, selector: str) -> bytes:
        """The encoded bytes (PNG, JPEG) of the first image that ``selector`` shows."""
        encoded = self.root.locator(selector).first.evaluate(_IMAGE_BYTES_JS)
        assert encoded, f"{self.name}: {selector} shows no image"
        return base64.b64decode(encoded)

    def picture_change_since(self, selector: str, before: bytes) -> float:
        """``picture_change`` between ``before`` (from ``image_bytes``) and what is shown now."""
        return picture_change(before, self.image_bytes(selector))

    def wait_for_change(
        self, selector: str, before: str, timeout_s: float = WIDGET_UPDATE_TIMEOUT_S
    ) -> float:
        """Wait until ``selector`` draws something else than ``before`` and the kernel rests."""
        started = time.monotonic()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            try:
                changed = self.fingerprint(selector) != before
            except Exception:  # noqa: BLE001 - the element is being redrawn
                changed = False
            if changed and self.kernel_status() == "idle":
                self.page.wait_for_timeout(500)  # let the last redraw land
                if self.kernel_status() == "idle":
                    return time.monotonic() - started
            self.page.wait_for_timeout(250)
        self.screenshot("no_change_timeout")
        raise AssertionError(
            f"{self.name}: {selector} did not change within {timeout_s:.0f} s "
            f"(kernel {self.kernel_status()!r}); errors shown: {self.error_outputs()}; "
            f"kernel and server log (callback tracebacks land here):\n{self.server_log()}"
        )

    def screenshot(self, label: str, selector: str | None = None) -> Path:
        """Save a PNG named ``<notebook>__<label>.png``: the element, or the whole page."""
        path = self.artifacts_dir / f"{self.name}__{label}.png"
        if selector:
            element = self.root.locator(selector).first
            element.scroll_into_view_if_needed()
            element.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        self.screenshots.append(path)
        return path


def picture_change(before: bytes, after: bytes) -> float:
    """How much a figure's pictures changed, ignoring a text band on top (its title).

    The figure is cut into bands of rows that hold ink (non-white pixels), each cropped to its
    ink; the first band is skipped when there are several, since it is the title, which changes
    with every setting. Returns the largest mean absolute difference (0 to 1) between matching
    bands, 1.0 where the bands no longer match in number or size."""
    before_bands, after_bands = _ink_bands(before), _ink_bands(after)
    if len(before_bands) != len(after_bands):
        return 1.0
    skip = 1 if len(after_bands) > 1 else 0
    largest = 0.0
    for old, new in zip(before_bands[skip:], after_bands[skip:], strict=True):
        if old.shape != new.shape:
            return 1.0
        largest = max(largest, float(np.abs(old - new).mean()))
    return largest


def _ink_bands(encoded: bytes) -> list[np.ndarray]:
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    pixels = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.float32) / 255.0
    ink = (pixels < 0.97).any(axis=2)
    rows = np.flatnonzero(ink.any(axis=1))
    bands = []
    if rows.size == 0:
        return bands
    starts = [rows[0]] + [r for previous, r in zip(rows[:-1], rows[1:], strict=True) if r != previous + 1]
    ends = [previous + 1 for previous, r in zip(rows[:-1], rows[1:], strict=True) if r != previous + 1] + [rows[-1] + 1]
    for top, bottom in zip(starts, ends, strict=True):
        columns = np.flatnonzero(ink[top:bottom].any(axis=0))
        bands.append(pixels[top:bottom, columns[0]:columns[-1] + 1])
    return bands


def _exactly(text: str) -> re.Pattern:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


@pytest.fixture(name="picture_change")
def picture_change_fixture() -> Callable[[bytes, bytes], float]:
    """The ``picture_change`` function, for tests (conftest modules are not importable)."""
    return picture_change


@pytest.fixture(scope="session")
def lab_page(browser, lab_server: LabServer) -> Iterator[object]:
    """One JupyterLab page for the whole session (loading JupyterLab costs ~10 s on 2 cores)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(lab_server.lab_url())
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def open_notebook(
    lab_page, lab_server: LabServer, artifacts_dir: Path
) -> Iterator[Callable[..., NotebookPage]]:
    """``open_notebook("notebooks/06_sampling.ipynb")`` opens it in a tab, kernel idle.

    Use it in a module-scoped fixture and ``close()`` the notebook after the module, so each
    notebook runs once and only one kernel is alive at a time."""
    opened: list[NotebookPage] = []

    def _open(relative_path: str, name: str | None = None) -> NotebookPage:
        if not (lab_server.root_dir / relative_path).exists():
            raise FileNotFoundError(f"{relative_path} is not in the served folder {lab_server.root_dir}")
        started = time.monotonic()
        panel_id = lab_page.evaluate(
            """async (path) => {
                const app = window.jupyterapp;
                const w = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
                await w.context.ready;
                await w.sessionContext.ready;
                app.shell.activateById(w.id);
                return w.id;
            }""",
            relative_path,
        )
        notebook = NotebookPage(
            lab_page, panel_id, name or Path(relative_path).stem, artifacts_dir,
            server_log=lab_server.log_tail,
        )
        notebook.root.locator(".jp-Cell").first.wait_for(timeout=60_000)
        notebook.wait_for_kernel_idle(timeout_s=90)
        notebook.timings["open_s"] = round(time.monotonic() - started, 1)
        opened.append(notebook)
        return notebook

    yield _open
    timings = {notebook.name: notebook.timings for notebook in opened}
    (artifacts_dir / "timings.json").write_text(json.dumps(timings, indent=1))


@pytest.fixture(scope="session")
def make_notebook(lab_server: LabServer) -> Callable[[str, list[str]], str]:
    """``make_notebook("selfcheck.ipynb", [code, ...])`` writes a notebook into the served
    folder and returns its path relative to the server root, for tests that build their own."""

    def _make(filename: str, cells: list[str]) -> str:
        notebook = {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": f"cell-{i}",
                 "metadata": {}, "outputs": [], "source": source}
                for i, source in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                               "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        relative = f"generated/{filename}"
        path = lab_server.root_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notebook, indent=1))
        return relative

    return _make


@pytest.fixture(scope="session")
def cannot_run() -> Callable[[str], None]:
    """``_cannot_run`` for test modules: skip with the reason, or fail where the suite is required (CI)."""
    return _cannot_run
