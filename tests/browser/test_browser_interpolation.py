"""Lesson 07 in JupyterLab: Run All, then the "mix" slider walks between two seeds' images and
a new "seed b" samples a new row (on release when live, else with "sample")."""

from __future__ import annotations

import pytest

NOTEBOOK = "notebooks/07_interpolation.ipynb"
EXPLORER = ".ddim-interpolation"
GRID = f"{EXPLORER} .ddim-grid"


@pytest.fixture(scope="module")
def lesson07(open_notebook):
    notebook = open_notebook(NOTEBOOK)
    notebook.run_all_cells()
    yield notebook
    notebook.close()


def test_lesson_runs_without_errors_and_shows_the_explorer(lesson07):
    lesson07.assert_no_errors()
    for description in ("seed a", "seed b", "mix", "steps"):
        assert lesson07.slider(description, within=EXPLORER).is_visible(), description
    lesson07.screenshot("interpolation_initial", EXPLORER)


def test_mix_slider_changes_the_image(lesson07):
    before = lesson07.fingerprint(GRID)
    before_png = lesson07.image_bytes(GRID)
    lesson07.screenshot("interpolation_before_mix", EXPLORER)

    old, new = lesson07.move_slider("mix", presses=1, within=EXPLORER)
    # The whole row of mixes was computed up front, so no "sample" press is needed here.
    lesson07.wait_for_change(GRID, before)

    lesson07.screenshot("interpolation_after_mix", EXPLORER)
    assert float(new) > float(old)
    # The middle image changed, not only the caption above it.
    assert lesson07.picture_change_since(GRID, before_png) > 0, f"mix {old} -> {new}: same images"
    lesson07.assert_no_errors()


def test_a_new_seed_samples_a_new_row(lesson07):
    live = lesson07.is_live(EXPLORER)
    before = lesson07.fingerprint(GRID)
    before_png = lesson07.image_bytes(GRID)
    old, new = lesson07.move_slider("seed b", presses=1, within=EXPLORER)
    if not live:  # a slow model: the row is sampled when "sample" is pressed
        lesson07.click_button("sample", within=EXPLORER)
    lesson07.wait_for_change(GRID, before)
    lesson07.screenshot("interpolation_after_seed_b", EXPLORER)
    assert lesson07.picture_change_since(GRID, before_png) > 0, f"seed b {old} -> {new}: same images"
    lesson07.assert_no_errors()
