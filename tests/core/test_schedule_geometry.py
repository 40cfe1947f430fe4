"""What equal steps of the cosine schedule do to a noisy image (issue 21, item 6).

The docstring of ``schedule.diffusion_schedule`` (printed by lesson 01) once said that the first
and last steps "alter the image least". With a unit-variance image and independent unit-variance
noise, every equal step in time moves the noisy image by the same root-mean-square amount,
``2 sin(step angle / 2)``; only the variances change unevenly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops

from ddim_tutorial.core.schedule import diffusion_schedule


def rates(times, min_signal_rate=0.02, max_signal_rate=0.95):
    noise_rates, signal_rates = diffusion_schedule(np.asarray(times, "float64"), min_signal_rate, max_signal_rate)
    return ops.convert_to_numpy(noise_rates).astype("float64"), ops.convert_to_numpy(signal_rates).astype("float64")


@pytest.mark.parametrize("min_signal_rate, max_signal_rate", [(0.02, 0.95), (0.1, 0.8), (0.01, 1.0)])
def test_every_equal_step_moves_the_noisy_image_by_the_same_rms_amount(min_signal_rate, max_signal_rate):
    rng = np.random.default_rng(0)
    images = rng.standard_normal(400_000)  # stands in for normalized pixels: unit variance
    noises = rng.standard_normal(400_000)
    times = np.linspace(0.0, 1.0, 21)
    noise_rates, signal_rates = rates(times, min_signal_rate, max_signal_rate)
    noisy = signal_rates[:, None] * images + noise_rates[:, None] * noises
    moves = np.sqrt(np.mean(np.diff(noisy, axis=0) ** 2, axis=1))

    step_angle = (math.acos(min_signal_rate) - math.acos(max_signal_rate)) / 20
    assert moves == pytest.approx(np.full(20, 2 * math.sin(step_angle / 2)), rel=0.01)
    assert moves[0] == pytest.approx(moves[-1], rel=0.01), "the ends move as much as the middle"


def test_only_the_variances_change_unevenly():
    times = np.linspace(0.0, 1.0, 21)
    noise_rates, signal_rates = rates(times)
    variance_steps = np.abs(np.diff(signal_rates**2))
    assert np.allclose(np.diff(noise_rates**2), -np.diff(signal_rates**2))
    # Proportional to sin(2 * angle): largest near 45 degrees (t ~ 0.38), almost nothing near t = 1.
    assert variance_steps.argmax() in (6, 7)
    assert variance_steps[-1] < 0.15 * variance_steps.max()
    assert variance_steps[0] > 0.5 * variance_steps.max()
