"""Spherical and linear interpolation between noises, and the model-facing helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddim_tutorial import DDIMConfig
from ddim_tutorial.teaching.interpolation import (
    angle_between,
    interpolate,
    interpolation_grid,
    interpolation_noises,
    lerp,
    seeded_noise,
    slerp,
)

SMOKE = DDIMConfig.preset("smoke")


class EchoModel:
    """``generate`` returns the initial noise it was given, so tests can see the noise path."""

    config = SMOKE

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def generate(self, num_images, diffusion_steps=None, *, initial_noise=None, **kwargs):
        self.calls.append((num_images, diffusion_steps, kwargs))
        return np.asarray(initial_noise)


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def test_slerp_starts_and_ends_at_the_endpoints():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4, 4, 3))
    path = slerp(a, b, [0.0, 1.0])
    assert path.shape == (2, 4, 4, 3) and path.dtype == np.float32
    np.testing.assert_allclose(path[0], a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path[1], b, rtol=1e-5, atol=1e-6)


def test_slerp_midpoint_of_perpendicular_unit_vectors_is_on_the_circle():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(slerp(a, b, 0.5)[0], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(lerp(a, b, 0.5)[0], [0.5, 0.5], atol=1e-6)
    assert np.linalg.norm(lerp(a, b, 0.5)[0]) == pytest.approx(np.sqrt(0.5), rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), dims=st.integers(2, 64), fraction=st.floats(0.0, 1.0))
def test_slerp_keeps_the_length_of_equal_length_endpoints(seed, dims, fraction):
    rng = np.random.default_rng(seed)
    a, b = unit(rng.standard_normal(dims)) * 3.0, unit(rng.standard_normal(dims)) * 3.0
    if angle_between(a, b) > np.pi - 1e-3:  # antipodal pairs are rejected, tested separately
        return
    assert np.linalg.norm(slerp(a, b, fraction)[0]) == pytest.approx(3.0, rel=1e-4)


def test_angle_between():
    assert angle_between([1.0, 0.0], [0.0, 2.0]) == pytest.approx(np.pi / 2)
    assert angle_between([1.0, 1.0], [2.0, 2.0]) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="all zeros"):
        angle_between([0.0, 0.0], [1.0, 0.0])


def test_parallel_endpoints_fall_back_to_the_straight_line():
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(slerp(a, 2 * a, [0.25, 0.5]), lerp(a, 2 * a, [0.25, 0.5]), rtol=1e-6)


def test_opposite_endpoints_and_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="opposite directions"):
        slerp([1.0, 0.0], [-1.0, 0.0], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        slerp([1.0, 0.0], [0.0, 1.0], 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lerp([1.0, 0.0], [0.0, 1.0], [0.5, float("nan")])
    with pytest.raises(ValueError, match="shape"):
        slerp(np.zeros(3) + 1, np.ones(4), 0.5)
    with pytest.raises(ValueError, match="NaN or Inf"):
        slerp([np.inf, 0.0], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="empty"):
        lerp([], [], 0.5)


def test_seeded_noise_is_the_models_initial_noise():
    from keras import ops

    from ddim_tutorial import DiffusionModel

    model = DiffusionModel(SMOKE)
    for seed in (0, 3):
        expected = ops.convert_to_numpy(model.initial_noise(1, seed=seed))[0]
        np.testing.assert_array_equal(seeded_noise(SMOKE.image_size, seed), expected)
    assert not np.allclose(seeded_noise(8, 0), seeded_noise(8, 1))
    with pytest.raises(ValueError, match="seed"):
        seeded_noise(8, -1)


def test_independent_noises_are_nearly_perpendicular_and_of_typical_length():
    a, b = seeded_noise(32, 0), seeded_noise(32, 1)
    assert np.degrees(angle_between(a, b)) == pytest.approx(90.0, abs=5.0)
    assert np.linalg.norm(a) == pytest.approx(np.sqrt(a.size), rel=0.05)


def test_interpolation_noises_spherical_keeps_length_linear_shrinks_it():
    spherical = interpolation_noises(32, 0, 1, [0.5])[0]
    linear = interpolation_noises(32, 0, 1, [0.5], spherical=False)[0]
    typical = np.sqrt(spherical.size)
    assert np.linalg.norm(spherical) == pytest.approx(typical, rel=0.05)
    assert np.linalg.norm(linear) == pytest.approx(typical / np.sqrt(2), rel=0.05)


def test_interpolate_runs_from_one_seed_to_the_other():
    model = EchoModel()
    row = interpolate(model, 2, 5, num_images=4, diffusion_steps=7)
    assert row.shape == (4, SMOKE.image_size, SMOKE.image_size, 3)
    assert model.calls == [(4, 7, {})]
    np.testing.assert_allclose(row[0], seeded_noise(SMOKE.image_size, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(row[-1], seeded_noise(SMOKE.image_size, 5), rtol=1e-5, atol=1e-6)
    straight = interpolate(model, 2, 5, num_images=4, spherical=False)
    assert not np.allclose(row[1], straight[1])
    with pytest.raises(ValueError, match="at least 2"):
        interpolate(model, 0, 1, num_images=1)
    with pytest.raises(ValueError, match="DiffusionModel"):
        interpolate(object(), 0, 1)


def test_interpolation_grid_has_the_four_seeds_in_its_corners():
    model = EchoModel()
    size = 3
    grid = interpolation_grid(model, seeds=(0, 1, 2, 3), size=size)
    assert grid.shape == (size * size, SMOKE.image_size, SMOKE.image_size, 3)
    corners = {0: 0, size - 1: 1, size * (size - 1): 2, size * size - 1: 3}
    for index, seed in corners.items():
        np.testing.assert_allclose(grid[index], seeded_noise(SMOKE.image_size, seed), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="four"):
        interpolation_grid(model, seeds=(0, 1, 2))
    with pytest.raises(ValueError, match="size"):
        interpolation_grid(model, size=1)
