"""Lesson 08 in JupyterLab: Run All, then the guidance explorer's "species" drop-down and "guidance"
slider change the grid of the class-conditional model's images (on release when live, else after
pressing "sample"), and choosing a species again shows its grid from the cache; no error anywhere."""

from __future__ import annotations

import pytest

NOTEBOOK = "notebooks/08_guidance.ipynb"
EXPLORER = ".ddim-guidance"
GRID = f"{EXPLORER} .ddim-grid"
STATUS = f"{EXPLORER} .ddim-status"
SPECIES = f"{EXPLORER} .ddim-control-species select"


@pytest.fixture(scope="module")
def lesson08(open_notebook):
    notebook = open_notebook(NOTEBOOK)
    notebook.run_all_cells()
    yield notebook
    notebook.close()


def _species_options(notebook) -> list[str]:
    return [text.strip() for text in notebook.root.locator(f"{SPECIES} option").all_inner_texts()]


def test_lesson_runs_without_errors_and_shows_the_explorer(lesson08):
    lesson08.assert_no_errors()
    for description in ("guidance", "steps", "seed"):
        assert lesson08.slider(description, within=EXPLORER).is_visible(), description
    assert lesson08.root.locator(SPECIES).is_visible()
    assert len(_species_options(lesson08)) >= 2, "the species drop-down offers fewer than two classes"
    assert lesson08.fingerprint(GRID).count(":") == 1, "the grid is not one image"
    lesson08.screenshot("guidance_initial", EXPLORER)


def test_choosing_another_species_changes_the_grid_and_back_comes_from_the_cache(lesson08):
    select = lesson08.root.locator(SPECIES).first
    first = select.locator("option:checked").inner_text().strip()
    options = _species_options(lesson08)
    before = lesson08.fingerprint(GRID)
    before_png = lesson08.image_bytes(GRID)
    status_before = lesson08.texts(STATUS)
    other = options[-1] if options[-1] != first else options[0]
    select.scroll_into_view_if_needed()
    select.select_option(label=other)
    lesson08.sample_unless_live(EXPLORER, status_before, before)
    lesson08.wait_for_change(GRID, before)
    lesson08.screenshot("guidance_after_species", EXPLORER)
    assert lesson08.picture_change_since(GRID, before_png) > 0, f"species {other!r} drew the same images"
    assert "computed" in " ".join(lesson08.texts(STATUS))

    changed = lesson08.fingerprint(GRID)
    select.select_option(label=first)
    lesson08.wait_for_change(GRID, changed)
    assert lesson08.picture_change_since(GRID, before_png) == 0
    assert "cache" in " ".join(lesson08.texts(STATUS))
    lesson08.assert_no_errors()


def test_guidance_slider_changes_the_grid(lesson08):
    before = lesson08.fingerprint(GRID)
    before_png = lesson08.image_bytes(GRID)
    status_before = lesson08.texts(STATUS)
    old, new = lesson08.move_slider("guidance", presses=2, within=EXPLORER)
    lesson08.sample_unless_live(EXPLORER, status_before, before)
    lesson08.wait_for_change(GRID, before)
    lesson08.screenshot("guidance_after_scale", EXPLORER)
    assert float(new) > float(old)
    assert lesson08.picture_change_since(GRID, before_png) > 0, f"guidance {old} -> {new}: only the title changed"
    assert "computed" in " ".join(lesson08.texts(STATUS))
    lesson08.assert_no_errors()
