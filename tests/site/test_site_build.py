"""site/build.py's notebook surgery, without executing anything (the browser tests check the built site)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("site_build", REPO_ROOT / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_every_explorer_of_a_lesson_is_found_and_gets_a_picture_cell(build, path):
    notebook = nbformat.read(path, as_version=4)
    calls = len(re.findall(r"widgets\.\w+_explorer\(", path.read_text()))
    found = build.explorer_cells(notebook)
    assert len(found) == calls, f"{path.name}: {calls} explorer calls, {len(found)} cells that show one"
    added = build.add_picture_cells(notebook)
    for index, _kind in added:
        helper = notebook.cells[index + 1]
        assert helper.metadata.get("ddim_site_helper")
        assert re.search(r"\w+\.png\)\)$", helper.source)
    if path.name.startswith("01_"):
        assert [kind for _, kind in added] == ["schedule"]
    if path.name.startswith("06_"):
        assert "sampler" in [kind for _, kind in added]


@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_every_lesson_gets_the_sites_own_badges(build, path):
    notebook = nbformat.read(path, as_version=4)
    build.local_badges(notebook, path.name)
    first = notebook.cells[0].source
    assert "../_static/colab-badge.svg" in first and "../_static/binder-badge.svg" in first
    assert f"notebooks/{path.name}" in first or f"notebooks%2F{path.name}" in first


def test_a_lesson_without_badges_fails_the_build(build):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A lesson")])
    with pytest.raises(SystemExit, match="badge"):
        build.local_badges(notebook, "99_new.ipynb")


def test_tensorflow_start_up_logs_are_dropped_and_real_warnings_kept(build):
    cell = nbformat.v4.new_code_cell("import keras")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=(
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796681812.726814   19790 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1796681815.273326   19790 cuda_platform.cc:52] failed call to cuInit\n")),
        nbformat.v4.new_output("stream", name="stderr",
                               text=f"{build.REPO_ROOT}/ddim_tutorial/kid.py:1: UserWarning: random weights\n"),
        nbformat.v4.new_output("stream", name="stdout", text="I0000 printed by the lesson stays\n"),
    ]
    build.drop_runtime_logs(cell)
    assert [output["text"] for output in cell.outputs] == ["ddim_tutorial/kid.py:1: UserWarning: random weights\n",
                                                           "I0000 printed by the lesson stays\n"]


def test_the_course_map_lists_every_lesson(build):
    rows = dict(build.readme_lessons())
    assert sorted(rows) == [path.stem for path in LESSONS if not path.name.startswith("00_")]


def test_progress_bars_collapse_as_in_a_terminal(build):
    cell = nbformat.v4.new_code_cell("model.fit(...)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="Epoch 1/2\n"),
        nbformat.v4.new_output("stream", name="stdout", text="\r 1/45 ━━ loss: 2.0"),
        nbformat.v4.new_output("stream", name="stdout", text="\b" * 8 + "\r45/45 ━━ loss: 0.6\n"),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="done\n"),
    ]
    build.merge_streams(cell)
    assert [(output["name"], output["text"]) for output in cell.outputs] == [
        ("stdout", "Epoch 1/2\n45/45 ━━ loss: 0.6\n"), ("stderr", "a warning\n"), ("stdout", "done\n")]
