"""Lesson 06 in JupyterLab: Run All, then releasing the sampler's "steps" and "eta" sliders
redraws the grid of generated images (the bundled model samples a grid in well under a second,
so the sampler is live: no "sample" button), with no error anywhere."""

from __future__ import annotations

import pytest

NOTEBOOK = "notebooks/06_sampling.ipynb"
SAMPLER = ".ddim-sampler"
GRID = f"{SAMPLER} .ddim-grid"
STATUS = f"{SAMPLER} .ddim-status"


@pytest.fixture(scope="module")
def lesson06(open_notebook):
    notebook = open_notebook(NOTEBOOK)
    notebook.run_all_cells()
    yield notebook
    notebook.close()


def test_lesson_runs_without_errors_and_shows_the_sampler(lesson06):
    lesson06.assert_no_errors()
    for description in ("steps", "eta", "min signal", "max signal", "seed"):
        assert lesson06.slider(description, within=SAMPLER).is_visible(), description
    assert lesson06.fingerprint(GRID).count(":") == 1, "the sample grid is not one image"
    lesson06.screenshot("sampler_initial", SAMPLER)


def test_sampler_is_live_with_the_bundled_model(lesson06):
    assert lesson06.root.locator(f"{SAMPLER}.ddim-live").count() == 1, "the sampler waits for a button press"
    assert not lesson06.root.locator(f"{SAMPLER} .ddim-sample-button").is_visible()


@pytest.mark.parametrize("description", ["steps", "eta"])
def test_releasing_a_slider_redraws_the_grid(lesson06, description):
    before = lesson06.fingerprint(GRID)
    before_png = lesson06.image_bytes(GRID)
    lesson06.screenshot(f"sampler_before_{description}", SAMPLER)

    old, new = lesson06.move_slider(description, presses=1, within=SAMPLER)
    lesson06.wait_for_change(GRID, before)  # no button: the release alone runs the model

    lesson06.screenshot(f"sampler_after_{description}", SAMPLER)
    # The generated images changed, not only the title above them that names the setting.
    change = lesson06.picture_change_since(GRID, before_png)
    assert change > 0, f"after {description} {old} -> {new} only the grid's title changed"
    status = " ".join(lesson06.texts(STATUS))
    assert "computed" in status, f"after {description} {old} -> {new} the status reads {status!r}"
    lesson06.assert_no_errors()
