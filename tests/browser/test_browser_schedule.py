"""Lesson 01 in JupyterLab: Run All, then the signal-rate sliders redraw the schedule plot."""

from __future__ import annotations

import pytest

NOTEBOOK = "notebooks/01_diffusion_schedule.ipynb"
EXPLORER = ".ddim-schedule"
FIGURE = f"{EXPLORER} .ddim-figure"


@pytest.fixture(scope="module")
def lesson01(open_notebook):
    notebook = open_notebook(NOTEBOOK)
    notebook.run_all_cells()
    yield notebook
    notebook.close()


def test_lesson_runs_without_errors_and_shows_the_explorer(lesson01):
    lesson01.assert_no_errors()
    for description in ("min signal", "max signal"):
        assert lesson01.slider(description, within=EXPLORER).is_visible()
    assert lesson01.fingerprint(FIGURE).count(":") == 1, "the schedule plot is not one image"
    lesson01.screenshot("explorer_initial", EXPLORER)


@pytest.mark.parametrize("description", ["min signal", "max signal"])
def test_signal_rate_slider_redraws_the_curves(lesson01, description):
    slug = description.replace(" ", "_")
    before = lesson01.fingerprint(FIGURE)
    before_png = lesson01.image_bytes(FIGURE)
    lesson01.screenshot(f"before_{slug}", EXPLORER)

    old, new = lesson01.move_slider(description, presses=1, within=EXPLORER)
    lesson01.wait_for_change(FIGURE, before)

    lesson01.screenshot(f"after_{slug}", EXPLORER)
    assert abs(float(new) - float(old) - 0.01) < 1e-6, (old, new)
    # The curves moved, not only the title that names the setting.
    assert lesson01.picture_change_since(FIGURE, before_png) > 0, f"{description}: same curves"
    status = " ".join(lesson01.texts(f"{EXPLORER} .ddim-status"))
    assert "computed" in status, f"the explorer's status reads {status!r}"
    lesson01.assert_no_errors()
