"""Lesson 06 in JupyterLab: Run All, then the sampler's "steps" and "eta" sliders change the grid
of the bundled model's images: on release where a grid takes under a second (the sampler is
live, its button hidden), else after pressing "sample"; with no error anywhere."""

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


def _is_live(notebook) -> bool:
    return notebook.root.locator(f"{SAMPLER}.ddim-live").count() == 1


def test_sample_button_is_shown_exactly_when_the_sampler_is_not_live(lesson06):
    button_visible = lesson06.root.locator(f"{SAMPLER} .ddim-sample-button").is_visible()
    assert button_visible != _is_live(lesson06)


@pytest.mark.parametrize("description", ["steps", "eta"])
def test_slider_changes_the_grid(lesson06, description):
    before = lesson06.fingerprint(GRID)
    before_png = lesson06.image_bytes(GRID)
    status_before = lesson06.texts(STATUS)
    lesson06.screenshot(f"sampler_before_{description}", SAMPLER)

    old, new = lesson06.move_slider(description, presses=1, within=SAMPLER)
    if not _is_live(lesson06):
        # A slow model runs only when "sample" is pressed: the status asks for it, the grid stays.
        lesson06.wait_for_text_change(STATUS, status_before)
        assert lesson06.fingerprint(GRID) == before, "the grid changed before 'sample' was pressed"
        lesson06.click_button("sample", within=SAMPLER)
    lesson06.wait_for_change(GRID, before)

    lesson06.screenshot(f"sampler_after_{description}", SAMPLER)
    # The generated images changed, not only the title above them that names the setting.
    change = lesson06.picture_change_since(GRID, before_png)
    assert change > 0, f"after {description} {old} -> {new} only the grid's title changed"
    status = " ".join(lesson06.texts(STATUS))
    assert "computed" in status, f"after {description} {old} -> {new} the status reads {status!r}"
    lesson06.assert_no_errors()
