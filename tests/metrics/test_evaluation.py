"""Tests of ddim_tutorial.metrics.evaluation: the errors split by diffusion time (lesson 4) and the
validation noise loss of the model cards, both with NumPy-drawn noise."""

from __future__ import annotations

import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.metrics.evaluation import errors_by_time, validation_noise_loss

TINY = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4, seed=0)


@pytest.fixture(scope="module")
def untrained():
    images = np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32")
    model = DiffusionModel(TINY)
    model.adapt_normalizer(images)
    return model, images


def test_an_untrained_network_misses_all_the_noise_and_ever_more_of_the_image(untrained):
    model, images = untrained
    times = [0.1, 0.5, 0.9]
    noise_errors, image_errors = errors_by_time(model, images, times, seed=1)
    assert len(noise_errors) == len(image_errors) == len(times)
    # Its last layer starts at zero: it predicts no noise, so the noise error is E|N(0, 1)| = 0.80 at
    # every time, and the implied image noisy / s is off by (n / s) * |noise|, which grows with t.
    assert np.allclose(noise_errors, np.sqrt(2 / np.pi), atol=0.03)
    assert image_errors[0] < image_errors[1] < image_errors[2]
    noise_rates, signal_rates = (np.asarray(r).ravel() for r in model.diffusion_schedule(np.array([0.9])))
    assert image_errors[2] == pytest.approx(noise_rates[0] / signal_rates[0] * noise_errors[2], rel=0.05)


def test_the_same_seed_gives_the_same_figures(untrained):
    model, images = untrained
    assert errors_by_time(model, images, [0.3], seed=4) == errors_by_time(model, images, [0.3], seed=4)
    assert errors_by_time(model, images, [0.3], seed=4) != errors_by_time(model, images, [0.3], seed=5)
    assert validation_noise_loss(model, images, batch_size=3) == pytest.approx(validation_noise_loss(model, images))


@pytest.mark.parametrize("bad", [np.zeros((4, 16, 16)), np.zeros((0, 16, 16, 3)), np.zeros((2, 16, 16, 1))])
def test_images_of_the_wrong_shape_are_named(untrained, bad):
    model, _ = untrained
    with pytest.raises(ValueError, match=r"images of shape .* are invalid"):
        errors_by_time(model, bad, [0.5])
    with pytest.raises(ValueError, match=r"images of shape .* are invalid"):
        validation_noise_loss(model, bad)
