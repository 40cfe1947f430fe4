"""Bad sampler arguments get one clear sentence, never a crash deep inside Keras, nor a silent NaN image.

Each case here is a row of docs/ERRORS.md (the test ids are the ones the table names).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.sampling import reverse_diffusion
from ddim_tutorial.data import synthetic
from tests.helpers import randomize_output_layer, tiny_config, to_numpy


# ---------------------------------------------------------------------------- sampler
@pytest.fixture(scope="module")
def model():
    model = DiffusionModel(tiny_config())
    model.adapt_normalizer(synthetic.synthetic_flowers(8, 16))
    randomize_output_layer(model.ema_network, 0.05)  # a zero output layer would make every sample finite
    return model


NOISE = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")

SAMPLER_CASES = {
    "steps_zero": (dict(diffusion_steps=0), "diffusion_steps=0 is invalid: use an integer >= 1"),
    "steps_fraction": (dict(diffusion_steps=2.5), "diffusion_steps=2.5 is invalid"),
    "steps_bool": (dict(diffusion_steps=True), "diffusion_steps=True is invalid"),
    "eta_negative": (dict(eta=-0.1), "eta=-0.1 is invalid: use a number in [0, 1]"),
    "eta_nan": (dict(eta=float("nan")), "eta=nan is invalid"),
    "min_signal_rate_zero": (dict(min_signal_rate=0.0), "min_signal_rate=0.0 is invalid: it must be at least 0.001"),
    "max_signal_rate_above_one": (dict(max_signal_rate=1.01), "max_signal_rate=1.01 is invalid"),
    "signal_rates_swapped": (dict(min_signal_rate=0.9, max_signal_rate=0.2), "must be smaller than max_signal_rate"),
    "noise_rank_3": (dict(initial_noise=NOISE[0]), "initial_noise has shape (16, 16, 3): it must be [num_images"),
    "noise_one_channel": (dict(initial_noise=NOISE[..., :1]), "initial_noise has shape (2, 16, 16, 1)"),
    "noise_empty": (dict(initial_noise=NOISE[:0]), "initial_noise holds no images"),
    "noise_integers": (dict(initial_noise=NOISE.astype("int32")), "initial_noise has dtype int32: it must be a float"),
    "noise_wrong_size": (dict(initial_noise=NOISE[:, :8, :8]),
                         "initial_noise has images of 8x8 pixels but the network takes 16x16"),
}


@pytest.mark.parametrize("case", SAMPLER_CASES)
@pytest.mark.parametrize("entry", ["reverse_diffusion", "generate"])
def test_sampler_errors(request, model, entry, case):
    changes, message = SAMPLER_CASES[case]
    arguments = dict(initial_noise=NOISE, diffusion_steps=2, min_signal_rate=0.02, max_signal_rate=0.95, eta=0.0)
    arguments.update(changes)
    with pytest.raises(ValueError) as error:
        if entry == "reverse_diffusion":
            noise, steps = arguments.pop("initial_noise"), arguments.pop("diffusion_steps")
            reverse_diffusion(model.ema_network, noise, steps, **arguments)
        else:
            model.generate(2, **arguments)
    assert message in str(error.value)


@pytest.mark.parametrize("num_images, seed, message", [
    (0, 0, "num_images=0 is invalid"), ("2", 0, "num_images='2' is invalid"), (2, -1, "seed=-1 is invalid"),
    (2, 2**40, "seed=1099511627776 is invalid"),
])
def test_generate_count_and_seed_errors(model, num_images, seed, message):
    with pytest.raises(ValueError, match=message):
        model.generate(num_images, 2, seed=seed)


def test_sampler_rejects_nan_initial_noise(model):
    with pytest.raises(ValueError, match="initial_noise"):
        model.generate(2, 2, initial_noise=np.full_like(NOISE, np.nan))


def test_sampler_accepts_a_nested_list_as_the_same_noise(model):
    expected = to_numpy(reverse_diffusion(model.ema_network, NOISE, 2))
    assert np.abs(expected).max() > 1.0  # the network predicts something
    np.testing.assert_array_equal(to_numpy(reverse_diffusion(model.ema_network, NOISE.tolist(), 2)), expected)


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_reverse_diffusion_float16_and_float64_noise(model, dtype):
    expected = to_numpy(reverse_diffusion(model.ema_network, NOISE, 2))
    images = to_numpy(reverse_diffusion(model.ema_network, NOISE.astype(dtype), 2))
    assert images.dtype == np.float32
    # float16 noise is float32 noise rounded to about 3 decimal digits; float64 noise is the same noise
    np.testing.assert_allclose(images, expected, atol=1e-3 * np.abs(expected).max())


def test_sampler_float16_and_float64_noise(model):
    expected = to_numpy(model.generate(2, 2, initial_noise=NOISE))
    assert expected.std() > 0.05
    for dtype in ("float16", "float64"):
        images = to_numpy(model.generate(2, 2, initial_noise=NOISE.astype(dtype)))
        assert images.shape == (2, 16, 16, 3) and np.all(np.isfinite(images))
        np.testing.assert_allclose(images, expected, atol=1e-2)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------- any sampler argument: finite images or a ValueError (property-based)
# The model is tiny (8x8 images, one U-Net level) so that each example costs milliseconds.
@pytest.fixture(scope="module")
def tiny8_model():
    config = DDIMConfig(image_size=8, widths=(8,), block_depth=1, embedding_dims=4, batch_size=2,
                        validation_kid=False, kid_weights=None, seed=0)
    model = DiffusionModel(config)
    model.adapt_normalizer(synthetic.synthetic_flowers(8, 8))
    # A network whose output layer is zero predicts zero noise: every sample would be finite.
    randomize_output_layer(model.ema_network, 0.3)
    return model


steps = st.one_of(st.integers(-2, 4), st.floats(-1, 4), st.booleans(), st.none(), st.just("3"))
etas = st.one_of(st.floats(-0.5, 1.5), st.floats(allow_nan=True, allow_infinity=True), st.just("0"))
signal_rates = st.one_of(st.floats(-0.2, 1.2), st.floats(1e-45, 1e-3), st.floats(allow_nan=True), st.none())
noise_shapes = st.tuples(st.integers(0, 3), st.sampled_from([4, 8]), st.sampled_from([1, 3]), st.booleans())


def make_noise(shape, dtype) -> np.ndarray:
    count, size, channels, batched = shape
    noise = np.random.default_rng(count).standard_normal((count, size, size, channels))
    return (noise if batched else noise[0] if count else noise.reshape(size, size, -1)).astype(dtype)


def check_images(images, noise: np.ndarray) -> None:
    images = keras.ops.convert_to_numpy(images)
    assert images.shape == (noise.shape[0], 8, 8, 3)
    assert np.all(np.isfinite(images)), "a silent NaN/Inf image"


@FAST
@given(steps=steps, eta=etas, min_rate=signal_rates, max_rate=signal_rates, shape=noise_shapes,
       dtype=st.sampled_from(["float32", "float16", "float64", "int32"]), seed=st.one_of(st.none(), st.integers(0, 9)))
def test_generate_gives_finite_images_or_a_value_error(tiny8_model, steps, eta, min_rate, max_rate, shape, dtype, seed):
    noise = make_noise(shape, dtype)
    try:
        images = tiny8_model.generate(max(1, len(noise)), steps, eta=eta, seed=seed, initial_noise=noise,
                                min_signal_rate=min_rate, max_signal_rate=max_rate, compiled=False)
    except ValueError:
        return
    check_images(images, noise)


@FAST
@given(steps=steps, eta=etas, min_rate=signal_rates.filter(lambda r: r is not None),
       max_rate=signal_rates.filter(lambda r: r is not None), shape=noise_shapes,
       dtype=st.sampled_from(["float32", "int32"]), seed=st.one_of(st.none(), st.integers(0, 9)))
def test_reverse_diffusion_gives_finite_images_or_a_value_error(tiny8_model, steps, eta, min_rate, max_rate, shape,
                                                                dtype,
                                                                 seed):
    noise = make_noise(shape, dtype)
    try:
        images = reverse_diffusion(tiny8_model.ema_network, noise, steps, min_signal_rate=min_rate,
                                   max_signal_rate=max_rate, eta=eta, seed=seed)
    except ValueError:
        return
    check_images(images, noise)
    assert math.isfinite(float(np.abs(keras.ops.convert_to_numpy(images)).max()))
