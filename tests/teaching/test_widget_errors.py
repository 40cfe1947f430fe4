"""Bad widget inputs get one clear sentence, never a crash deep inside Keras.

Each case here is a row of docs/ERRORS.md (the test ids are the ones the table names).
"""

from __future__ import annotations

import numpy as np
import pytest


# ---------------------------------------------------------------------------- widgets
@pytest.fixture
def widgets():
    pytest.importorskip("ipywidgets")
    from ddim_tutorial.teaching import widgets

    return widgets


def test_widget_schedule_explorer_shows_an_impossible_range_as_a_message(widgets):
    explorer = widgets.schedule_explorer()
    explorer.controls["min signal"].value = 0.6
    explorer.controls["max signal"].value = 0.5
    assert "smaller than max signal" in explorer.status.value


def test_widget_bad_images_and_models(widgets):
    with pytest.raises(ValueError, match="zero spread"):
        widgets.noising_explorer(np.full((2, 8, 8, 3), 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match="pass a trained DiffusionModel"):
        widgets.sampler_explorer(object())
    with pytest.raises(ValueError, match="pass a trained DiffusionModel"):
        widgets.interpolation_explorer("model.h5")
