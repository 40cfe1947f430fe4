"""The continuous cosine schedule: endpoints, unit power, monotonic."""

import numpy as np
import pytest
from keras import ops

from ddim_tutorial.core.schedule import diffusion_schedule, linear_beta_schedule


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def test_endpoints_are_the_signal_rate_bounds():
    noise_rates, signal_rates = diffusion_schedule(np.array([0.0, 1.0], "float32"), 0.02, 0.95)
    np.testing.assert_allclose(_numpy(signal_rates), [0.95, 0.02], atol=1e-6)
    np.testing.assert_allclose(_numpy(noise_rates), [np.sqrt(1 - 0.95**2), np.sqrt(1 - 0.02**2)], atol=1e-6)


def test_rates_lie_on_the_unit_circle_and_move_monotonically():
    times = np.linspace(0.0, 1.0, 101, dtype="float32").reshape(-1, 1, 1, 1)
    noise_rates, signal_rates = (_numpy(r).ravel() for r in diffusion_schedule(times))
    np.testing.assert_allclose(noise_rates**2 + signal_rates**2, 1.0, atol=1e-6)
    assert np.all(np.diff(signal_rates) < 0) and np.all(np.diff(noise_rates) > 0)


def test_angle_is_linear_in_time():
    times = np.linspace(0.0, 1.0, 11, dtype="float32")
    noise_rates, signal_rates = diffusion_schedule(times, 0.1, 0.9)
    angles = np.arctan2(_numpy(noise_rates), _numpy(signal_rates))
    np.testing.assert_allclose(np.diff(angles), (np.arccos(0.1) - np.arccos(0.9)) / 10, atol=1e-6)


def test_shape_is_preserved():
    noise_rates, signal_rates = diffusion_schedule(np.full((4, 1, 1, 1), 0.5, "float32"))
    assert tuple(noise_rates.shape) == (4, 1, 1, 1) and tuple(signal_rates.shape) == (4, 1, 1, 1)


@pytest.mark.parametrize("low, high", [(0.0, 0.95), (0.5, 0.4), (0.02, 1.5)])
def test_bad_signal_rates_are_rejected(low, high):
    with pytest.raises(ValueError, match="signal_rate"):
        diffusion_schedule(np.zeros(1, "float32"), low, high)


def test_linear_beta_schedule_is_on_the_circle_and_noisier_early():
    times = np.linspace(0.0, 1.0, 21, dtype="float32")
    noise_rates, signal_rates = (_numpy(r) for r in linear_beta_schedule(times))
    np.testing.assert_allclose(noise_rates**2 + signal_rates**2, 1.0, atol=1e-6)
    _, cosine_signal_rates = diffusion_schedule(times)
    assert _numpy(signal_rates)[5] < _numpy(cosine_signal_rates)[5]
