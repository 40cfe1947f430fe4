"""Bad KID inputs get one clear sentence, never a crash deep inside Keras.

Each case here is a row of docs/ERRORS.md (the test ids are the ones the table names).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ddim_tutorial.metrics import inception, kid

# -------------------------------------------------------------------------------- KID
IMAGES = np.random.default_rng(1).random((8, 16, 16, 3), dtype=np.float32)

KID_CASES = {
    "rank_3": (lambda: kid.compute_kid(IMAGES[..., 0], IMAGES, weights=None), "has shape (8, 16, 16); expected 4-D"),
    "pixels_0_255": (lambda: kid.compute_kid(IMAGES * 255, IMAGES, weights=None), "expected pixel space [0, 1]"),
    "sizes_differ": (lambda: kid.compute_kid(IMAGES, np.zeros((8, 32, 32, 3), "float32"), weights=None),
                     "real_images are 32x32 but model_or_images is 16x16"),
    "one_image": (lambda: kid.compute_kid(IMAGES[:1], IMAGES, weights=None), "holds 1 image; KID needs at least 2"),
    "nan_pixels": (lambda: kid.compute_kid(np.full_like(IMAGES, np.nan), IMAGES, weights=None),
                   "contains NaN or infinite pixels"),
    "feature_widths_differ": (lambda: kid.kid_from_features(np.ones((10, 5)), np.ones((10, 6))),
                              "real_features have 5 dimensions but generated_features have 6"),
    "features_rank_1": (lambda: kid.kid_from_features(np.ones(10), np.ones(10)), "expected a 2-D [num_images"),
    "weights_not_h5": (lambda: kid.compute_kid(IMAGES, IMAGES, weights="weights.txt"), "must be an .h5 file"),
    "weights_wrong_type": (lambda: kid.compute_kid(IMAGES, IMAGES, weights=3), "weights=3 is invalid"),
}


@pytest.mark.parametrize("case", KID_CASES)
def test_kid_errors(case):
    call, message = KID_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inception.RandomInceptionWeightsWarning)
        with pytest.raises(ValueError) as error:
            call()
    assert message in str(error.value)


def test_kid_weights_missing_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("DDIM_INCEPTION_WEIGHTS", str(tmp_path / "inception.h5"))
    with pytest.raises(inception.InceptionWeightsUnavailableError, match="names no existing file; fix or unset it"):
        kid.compute_kid(IMAGES, IMAGES, weights="imagenet")
    with pytest.raises(inception.InceptionWeightsUnavailableError, match="names no existing file"):
        kid.compute_kid(IMAGES, IMAGES, weights=str(tmp_path / "other.h5"))
