"""Assemble the course website's Sphinx source: executed lessons, the landing page, static sliders.

Run by ``scripts/site.sh`` with the course's Python (the one with TensorFlow and the package):

    python site/build.py OUT_DIR

It writes, under ``OUT_DIR`` (git-ignored, ``build/site/src``):

- ``notebooks/NN_*.ipynb``: lessons 01-09 executed in fast mode (``DDIM_FAST=1``) with the
  bundled models, so every page has its plots and sample grids. Lesson 00 is copied unexecuted:
  it runs every other lesson under nbval, which is a check for a teacher on Colab, not a lesson
  with pictures of its own (and would run the whole course a second time at build time).
- in each executed lesson, the explorers' widget outputs (dead on a static page) are replaced
  by the picture the explorer drew at its default setting; the schedule explorer (lesson 01) and
  the sampler explorer (lesson 06) get sliders that move on the static page (``_static/ddim-*.js``),
  with a line saying what runs live only in the notebook;
- ``_static/sampler/*.png``: the sampler explorer's frames, drawn here from the bundled
  ``flowers32`` for every combination of the static sliders (sampler, steps, seed);
- ``index.md`` with the course map (the README's lesson table, linked) and the README's grids.

Only the package's public API is used. ``DDIM_SITE_LESSONS=01,06`` builds a subset (for a quick
look while editing the site; the published site and CI build all of them).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SITE_DIR.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
GITHUB_PATH = "ddim-tutorial/ddim-tutorial"

# The static sampler explorer's slider values; frames for every combination are drawn at build time.
SAMPLER_STEPS = (1, 2, 3, 5, 10, 20, 50)
SAMPLER_SEEDS = (0, 1, 2, 3, 4)
SAMPLERS = {"ddim": "DDIM", "dpm++2s": "DPM++ 2S"}
SAMPLER_DEFAULT = {"sampler": "ddim", "steps": 20, "seed": 0}
SAMPLER_IMAGES = 6
SAMPLER_MODEL = "flowers32"

# The explorers' factories, and the kind of static stand-in each gets on the site.
EXPLORER_CALL = re.compile(r"widgets\.(\w+)_explorer\(")
LIVE_ON_SITE = {"schedule", "sampler"}
EXECUTION_TIMEOUT_S = 900


def log(message: str) -> None:
    print(f"site/build.py: {message}", flush=True)


# ------------------------------------------------------------------------------ notebooks
def lesson_paths() -> list[Path]:
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    wanted = os.environ.get("DDIM_SITE_LESSONS", "").strip()
    if wanted:
        keep = {item.strip().zfill(2) for item in wanted.split(",") if item.strip()}
        paths = [path for path in paths if path.name[:2] in keep or path.name.startswith("00_")]
    if not paths:
        raise SystemExit(f"site/build.py: no lessons found in {NOTEBOOKS_DIR}")
    return paths


def source_of(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def local_badges(notebook, name: str) -> None:
    """Point the first cell's Colab and Binder badges at the site's own badge pictures.

    The links stay as they are (they open the lesson in Colab / Binder); only the pictures are
    served by the site, so a page shows them without reaching colab.research.google.com.
    """
    first = notebook.cells[0]
    text = source_of(first)
    replacements = {
        "https://colab.research.google.com/assets/colab-badge.svg": "../_static/colab-badge.svg",
        "https://mybinder.org/badge_logo.svg": "../_static/binder-badge.svg",
    }
    for remote, local in replacements.items():
        if remote not in text:
            raise SystemExit(f"site/build.py: {name}: the first cell has no badge {remote}; every page needs "
                             "its Colab and Binder badges")
        text = text.replace(remote, local)
    first.source = text


def explorer_cells(notebook) -> list[tuple[int, str, str]]:
    """(cell index, explorer kind, variable name) of every cell that ends by showing an explorer."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text = source_of(cell)
        call = EXPLORER_CALL.search(text)
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if call and lines and re.fullmatch(r"[A-Za-z_]\w*", lines[-1].strip()):
            found.append((index, call.group(1), lines[-1].strip()))
    return found


def add_picture_cells(notebook) -> list[tuple[int, str]]:
    """After each explorer cell, a helper cell that displays the explorer's picture as a PNG.

    Returns (index of the explorer cell, kind) in the new numbering; the helper is the next cell.
    """
    import nbformat

    added = []
    for offset, (index, kind, variable) in enumerate(explorer_cells(notebook)):
        helper = nbformat.v4.new_code_cell(
            "from IPython.display import Image as _SiteImage, display as _site_display\n"
            f"_site_display(_SiteImage(data={variable}.png))"
        )
        helper.metadata["ddim_site_helper"] = True
        notebook.cells.insert(index + offset + 1, helper)
        added.append((index + offset, kind))
    return added


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# What TensorFlow's C++ runtime (absl logging) writes to stderr while it starts, on every machine
# without a GPU: "I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers ...". It says
# nothing about the lesson, and TF_CPP_MIN_LOG_LEVEL does not silence all of it.
RUNTIME_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] )")


def as_a_terminal_shows(text: str) -> str:
    """Apply carriage returns and backspaces the way a terminal (and JupyterLab) does.

    Keras's progress bar redraws its line with ``\\r`` and ``\\b``; written to a page verbatim,
    every redraw would become a line of its own.
    """
    lines = [""]
    for char in text:
        if char == "\n":
            lines.append("")
        elif char == "\r":
            lines[-1] = ""
        elif char == "\b":
            lines[-1] = lines[-1][:-1]
        else:
            lines[-1] += char
    return "\n".join(lines)


def merge_streams(cell) -> None:
    """Join consecutive outputs of one stream, then show them as a terminal would."""
    merged = []
    for output in cell.get("outputs", []):
        if (output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == output.get("name")):
            merged[-1]["text"] += output.get("text", "")
        else:
            merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            output["text"] = as_a_terminal_shows(output.get("text", ""))
    cell.outputs = merged


def drop_runtime_logs(cell) -> None:
    """Drop TensorFlow's start-up log lines from a cell's stderr; keep every other line."""
    kept = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = "".join(line for line in output.get("text", "").splitlines(keepends=True)
                           if not RUNTIME_LOG_LINE.match(line))
            if not text.strip():
                continue
            # A warning names its file: show it relative to the repository, not the build machine's path.
            output["text"] = text.replace(f"{REPO_ROOT}{os.sep}", "")
        kept.append(output)
    cell.outputs = kept


def strip_widget_outputs(cell) -> None:
    """Drop ipywidgets views (nothing draws them on a static page) and the text that stands for them."""
    kept = []
    for output in cell.get("outputs", []):
        data = output.get("data")
        if data and WIDGET_MIME in data:
            continue
        kept.append(output)
    cell.outputs = kept


def schedule_block() -> str:
    return (
        '<div class="ddim-static ddim-static-schedule" data-min-signal="0.02" data-max-signal="0.95">'
        "</div>\n\n"
        '<p class="ddim-static-note">On this page the two sliders recompute the cosine schedule in your '
        "browser. What runs live only in the notebook: the package's own <code>diffusion_schedule</code> "
        "in Keras, and the dashed linear-beta schedule of DDPM drawn beside the cosine one.</p>\n"
    )


def sampler_block(frames: dict) -> str:
    data = html.escape(json.dumps(frames), quote=True)
    return (
        f'<div class="ddim-static ddim-static-sampler" data-frames="{data}"></div>\n\n'
        '<p class="ddim-static-note">These sliders swap pictures drawn when this site was built, by the '
        f"bundled <code>{SAMPLER_MODEL}</code> model ({SAMPLER_IMAGES} images of 32x32 pixels, eta 0, the "
        "model's own signal-rate range). Any number of steps from 1 to 50, any seed, eta, the signal-rate "
        "sliders and your own trained model run live only in the notebook.</p>\n"
    )


def move_pictures_and_add_static_sliders(notebook, explorers: list[tuple[int, str]], frames: dict | None) -> None:
    import nbformat

    blocks = {"schedule": schedule_block, "sampler": lambda: sampler_block(frames)}
    for index, kind in reversed(explorers):
        cell, helper = notebook.cells[index], notebook.cells[index + 1]
        if not helper.metadata.get("ddim_site_helper"):
            raise SystemExit("site/build.py: lost track of an explorer's picture cell")
        strip_widget_outputs(cell)
        pictures = [output for output in helper.outputs if "image/png" in output.get("data", {})]
        if len(pictures) != 1:
            raise SystemExit(f"site/build.py: the {kind} explorer drew {len(pictures)} pictures, not one: "
                             f"{helper.outputs}")
        del notebook.cells[index + 1]
        if kind in LIVE_ON_SITE:
            if kind == "sampler" and frames is None:
                raise SystemExit("site/build.py: the sampler frames were not drawn")
            # The static sliders stand in for the widget; they open at the notebook's default setting.
            notebook.cells.insert(index + 1, nbformat.v4.new_markdown_cell(blocks[kind]()))
        else:
            cell.outputs = [out for out in cell.outputs if out.get("output_type") == "stream"] + pictures
            notebook.cells.insert(index + 1, nbformat.v4.new_markdown_cell(
                '<p class="ddim-static-note">The picture above is this explorer at its default setting. '
                "Its sliders run live only in the notebook: open the lesson in Colab or Binder from the "
                "badges at the top.</p>"))


def execute(notebook, name: str, work_dir: Path) -> float:
    from nbclient import NotebookClient

    start = time.perf_counter()
    client = NotebookClient(notebook, timeout=EXECUTION_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(work_dir)}})
    client.execute()
    seconds = time.perf_counter() - start
    log(f"executed {name} in {seconds:.0f} s")
    return seconds


def build_notebooks(out_dir: Path, work_dir: Path, frames: dict | None) -> list[tuple[str, str]]:
    import nbformat

    pages = []
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    for path in lesson_paths():
        notebook = nbformat.read(path, as_version=4)
        local_badges(notebook, path.name)
        if path.name.startswith("00_"):
            notebook.cells.insert(1, nbformat.v4.new_markdown_cell(
                "```{note}\nThis page is shown without outputs: the notebook runs every other lesson under "
                "nbval, which is a check for a teacher to run in Colab before a class (open it from the badge "
                "above), not a lesson with pictures of its own.\n```"))
        else:
            explorers = add_picture_cells(notebook)
            execute(notebook, path.name, work_dir)
            move_pictures_and_add_static_sliders(notebook, explorers, frames)
            for cell in notebook.cells:
                if cell.cell_type == "code":
                    merge_streams(cell)
                    drop_runtime_logs(cell)
            errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
                      if output.get("output_type") == "error"]
            if errors:
                raise SystemExit(f"site/build.py: {path.name} raised {errors[0].get('ename')}")
        notebook.metadata.pop("widgets", None)
        nbformat.write(notebook, out_dir / "notebooks" / path.name)
        title = source_of(notebook.cells[0]).splitlines()[0].lstrip("# ").strip()
        pages.append((path.stem, title))
    return pages


# ----------------------------------------------------------------------- sampler frames
def draw_sampler_frames(out_dir: Path) -> dict:
    """PNG rows of the bundled model's samples for every (sampler, steps, seed) of the static sliders."""
    import numpy as np
    from PIL import Image

    from ddim_tutorial import pretrained

    start = time.perf_counter()
    model = pretrained.load(SAMPLER_MODEL)
    frame_dir = out_dir / "_static" / "sampler"
    frame_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for sampler in SAMPLERS:
        for steps in SAMPLER_STEPS:
            for seed in SAMPLER_SEEDS:
                images = np.asarray(model.generate(SAMPLER_IMAGES, steps, seed=seed, sampler=sampler))
                pixels = (np.clip(images, 0.0, 1.0) * 255).round().astype("uint8")
                size, gap = pixels.shape[1], 2
                row = np.full((size, SAMPLER_IMAGES * (size + gap) - gap, 3), 255, dtype="uint8")
                for k, image in enumerate(pixels):
                    row[:, k * (size + gap):k * (size + gap) + size] = image
                name = f"{sampler.replace('+', 'p')}-{steps}-{seed}.png"
                Image.fromarray(row).save(frame_dir / name, optimize=True)
                files[f"{sampler}/{steps}/{seed}"] = f"sampler/{name}"
    log(f"drew {len(files)} sampler frames from {SAMPLER_MODEL} in {time.perf_counter() - start:.0f} s")
    return {"model": SAMPLER_MODEL, "samplers": SAMPLERS, "steps": list(SAMPLER_STEPS),
            "seeds": list(SAMPLER_SEEDS), "default": SAMPLER_DEFAULT, "files": files}


# --------------------------------------------------------------------------- landing page
def readme_lessons() -> list[tuple[str, str]]:
    """(notebook stem, idea) rows of the README's lesson table."""
    rows = re.findall(r"^\| `(\d\d_\w+)` \| (.+?) \|$", (REPO_ROOT / "README.md").read_text(), flags=re.M)
    if not rows:
        raise SystemExit("site/build.py: the README's lesson table was not found")
    return rows


def write_index(out_dir: Path, pages: list[tuple[str, str]]) -> None:
    titles = dict(pages)
    map_rows = ["| lesson | what it shows |", "|---|---|"]
    for stem, idea in readme_lessons():
        if stem in titles:
            map_rows.append(f"| [{titles[stem]}](notebooks/{stem}.ipynb) | {idea} |")
    if "00_check_on_colab" in titles:
        map_rows.append(f"| [{titles['00_check_on_colab']}](notebooks/00_check_on_colab.ipynb) | for the teacher: "
                        "every lesson run on Colab before a class |")
    toctree = "\n".join(f"notebooks/{stem}" for stem, _ in sorted(pages, key=lambda p: (p[0].startswith("00"), p[0])))
    template = (SITE_DIR / "index.md").read_text()
    text = template.replace("<!-- course map -->", "\n".join(map_rows)).replace("<!-- toctree -->", toctree)
    (out_dir / "index.md").write_text(text)
    images = out_dir / "images"
    images.mkdir(exist_ok=True)
    for picture in re.findall(r"\(images/(\w+\.png)\)", text):
        shutil.copy2(REPO_ROOT / "docs" / "images" / picture, images / picture)


# --------------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    out_dir = Path(argv[1]).resolve()
    work_dir = out_dir.parent / "work"
    for folder in (out_dir, work_dir):
        if folder.exists():
            shutil.rmtree(folder)
    out_dir.mkdir(parents=True)
    os.environ["DDIM_FAST"] = "1"  # the kernels inherit it: lessons open the bundled models, short runs only
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if not os.environ.get("DDIM_DATA_DIR"):
        log("DDIM_DATA_DIR is not set: the lessons will use their own fallback for photographs")

    shutil.copy2(SITE_DIR / "conf.py", out_dir / "conf.py")
    shutil.copytree(SITE_DIR / "_static", out_dir / "_static")
    wanted = {path.name[:2] for path in lesson_paths()}
    frames = draw_sampler_frames(out_dir) if "06" in wanted else None
    pages = build_notebooks(out_dir, work_dir, frames)
    write_index(out_dir, pages)
    log(f"wrote the site's source to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
