"""Lesson 09 in JupyterLab: Run All, then the paths explorer's "steps" slider changes the grid of the two
bundled models (flowers32 on the cosine path, flow32 on the straight one), on release when live, else after
pressing "sample"; moving back shows the first grid from the cache; no error anywhere."""

from __future__ import annotations

import pytest

NOTEBOOK = "notebooks/09_flow_matching.ipynb"
EXPLORER = ".ddim-paths"
GRID = f"{EXPLORER} .ddim-grid"
STATUS = f"{EXPLORER} .ddim-status"


@pytest.fixture(scope="module")
def lesson09(open_notebook):
    notebook = open_notebook(NOTEBOOK)
    notebook.run_all_cells()
    yield notebook
    notebook.close()


def test_lesson_runs_without_errors_and_shows_the_explorer(lesson09):
    lesson09.assert_no_errors()
    for description in ("steps", "seed"):
        assert lesson09.slider(description, within=EXPLORER).is_visible(), description
    assert lesson09.fingerprint(GRID).count(":") == 1, "the grid is not one image"
    lesson09.screenshot("paths_initial", EXPLORER)


def test_steps_slider_changes_both_rows_and_back_comes_from_the_cache(lesson09):
    before = lesson09.fingerprint(GRID)
    before_png = lesson09.image_bytes(GRID)
    status_before = lesson09.texts(STATUS)
    old, new = lesson09.move_slider("steps", presses=3, within=EXPLORER)
    lesson09.sample_unless_live(EXPLORER, status_before, before)
    lesson09.wait_for_change(GRID, before)
    lesson09.screenshot("paths_after_steps", EXPLORER)
    assert int(new) > int(old)
    assert lesson09.picture_change_since(GRID, before_png) > 0, f"steps {old} -> {new}: only the title changed"
    assert "computed" in " ".join(lesson09.texts(STATUS))

    changed = lesson09.fingerprint(GRID)
    lesson09.move_slider("steps", presses=-3, within=EXPLORER)
    lesson09.wait_for_change(GRID, changed)
    assert lesson09.picture_change_since(GRID, before_png) == 0
    assert "cache" in " ".join(lesson09.texts(STATUS))
    lesson09.assert_no_errors()
