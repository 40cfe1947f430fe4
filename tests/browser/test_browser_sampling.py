"""Lesson 06 in JupyterLab: Run All, then the sampler's "steps" and "eta" sliders, and its
"DDIM" / "DPM++ 2S" buttons, change the grid of the bundled model's images: on release (or click)
where a grid takes under a second (the sampler is live, its button hidden), else after pressing
"sample"; with no error anywhere."""

from __future__ import annotations

import re

import pytest

NOTEBOOK = "notebooks/06_sampling.ipynb"
SAMPLER = ".ddim-sampler"
GRID = f"{SAMPLER} .ddim-grid"
STATUS = f"{SAMPLER} .ddim-status"
CHOOSER = f"{SAMPLER} .ddim-control-sampler"


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
    for label in ("DDIM", "DPM++ 2S"):
        assert _sampler_button(lesson06, label).is_visible(), label
    assert "mod-active" in (_sampler_button(lesson06, "DDIM").get_attribute("class") or "")
    assert lesson06.fingerprint(GRID).count(":") == 1, "the sample grid is not one image"
    lesson06.screenshot("sampler_initial", SAMPLER)


def _sampler_button(notebook, label: str):
    """One of the toggle buttons that choose the sampler (ipywidgets 7 and 8 draw them alike)."""
    return notebook.root.locator(f"{CHOOSER} button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first


def test_sample_button_is_shown_exactly_when_the_sampler_is_not_live(lesson06):
    button_visible = lesson06.root.locator(f"{SAMPLER} .ddim-sample-button").is_visible()
    assert button_visible != lesson06.is_live(SAMPLER)


def test_choosing_the_second_order_sampler_changes_the_grid_and_back(lesson06):
    # Runs before the slider tests, which leave eta above 0 (where only DDIM samples).
    before = lesson06.fingerprint(GRID)
    before_png = lesson06.image_bytes(GRID)
    status_before = lesson06.texts(STATUS)
    choice = _sampler_button(lesson06, "DPM++ 2S")
    choice.scroll_into_view_if_needed()
    choice.click()
    lesson06.sample_unless_live(SAMPLER, status_before, before)
    lesson06.wait_for_change(GRID, before)
    lesson06.screenshot("sampler_after_dpm", SAMPLER)
    assert "mod-active" in (choice.get_attribute("class") or "")
    assert lesson06.picture_change_since(GRID, before_png) > 0, "DPM++ 2S drew the same images as DDIM"
    status = " ".join(lesson06.texts(STATUS))
    assert "computed" in status, f"after choosing DPM++ 2S the status reads {status!r}"

    # Back to DDIM: the grid computed first comes back from the cache, without pressing sample.
    dpm_grid = lesson06.fingerprint(GRID)
    _sampler_button(lesson06, "DDIM").click()
    lesson06.wait_for_change(GRID, dpm_grid)
    assert lesson06.picture_change_since(GRID, before_png) == 0
    assert "cache" in " ".join(lesson06.texts(STATUS))
    lesson06.assert_no_errors()


@pytest.mark.parametrize("description", ["steps", "eta"])
def test_slider_changes_the_grid(lesson06, description):
    before = lesson06.fingerprint(GRID)
    before_png = lesson06.image_bytes(GRID)
    status_before = lesson06.texts(STATUS)
    lesson06.screenshot(f"sampler_before_{description}", SAMPLER)

    old, new = lesson06.move_slider(description, presses=1, within=SAMPLER)
    # A slow model runs only when "sample" is pressed: the status asks for it, the grid stays.
    lesson06.sample_unless_live(SAMPLER, status_before, before)
    lesson06.wait_for_change(GRID, before)

    lesson06.screenshot(f"sampler_after_{description}", SAMPLER)
    # The generated images changed, not only the title above them that names the setting.
    change = lesson06.picture_change_since(GRID, before_png)
    assert change > 0, f"after {description} {old} -> {new} only the grid's title changed"
    status = " ".join(lesson06.texts(STATUS))
    assert "computed" in status, f"after {description} {old} -> {new} the status reads {status!r}"
    lesson06.assert_no_errors()
