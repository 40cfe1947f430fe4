"""Property-based tests: any config value or sampler argument gives a valid result or a ValueError.

Never a TypeError from deep inside, never a crash, never a silent NaN image. The model is
tiny (8x8 images, one U-Net level) so that each example costs milliseconds.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.data.synthetic import synthetic_flowers
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.sampling import reverse_diffusion

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.integers(-2, 64), max_size=4), st.sampled_from(["auto", "mae", "mixed_float16"]))

FIELD_VALUES = {
    "image_size": st.one_of(st.integers(-8, 130), anything),
    "widths": st.one_of(st.lists(st.integers(-4, 64), max_size=5), st.tuples(st.integers(1, 64)), anything),
    "block_depth": st.one_of(st.integers(-1, 4), anything),
    "batch_size": st.one_of(st.integers(-1, 70), anything),
    "embedding_dims": st.one_of(st.integers(-2, 40), anything),
    "embedding_min_frequency": st.one_of(st.floats(-1, 10), anything),
    "embedding_max_frequency": st.one_of(st.floats(-1, 2000), anything),
    "min_signal_rate": st.one_of(st.floats(-0.5, 1.5), anything),
    "max_signal_rate": st.one_of(st.floats(-0.5, 1.5), anything),
    "kid_image_size": st.one_of(st.integers(0, 300), anything),
    "kid_diffusion_steps": st.one_of(st.integers(-1, 50), anything),
    "plot_diffusion_steps": st.one_of(st.integers(-1, 50), anything),
    "num_epochs": st.one_of(st.integers(-1, 60), anything),
    "dataset_repetitions": st.one_of(st.integers(-1, 10), anything),
    "learning_rate": st.one_of(st.floats(-1, 1), anything),
    "weight_decay": st.one_of(st.floats(-1, 1), anything),
    "ema": st.one_of(st.floats(-1, 2), anything),
    "loss": st.one_of(st.sampled_from(["mae", "mse", "huber"]), anything),
    "mixed_precision": st.one_of(st.sampled_from([None, "float32", "mixed_float16", "float16"]), anything),
    "jit_compile": st.one_of(st.sampled_from([True, False, "auto", "yes"]), anything),
    "steps_per_execution": st.one_of(st.integers(-1, 8), anything),
    "seed": st.one_of(st.integers(-3, 2**40), anything),
    "kid_weights": st.one_of(st.sampled_from([None, "imagenet", "weights.h5"]), anything),
    "dataset_name": anything,
    "augment_flip": anything,
    "validation_kid": anything,
}


@FAST
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_any_config_is_valid_or_a_value_error(overrides):
    try:
        config = DDIMConfig(**overrides)
    except ValueError as error:
        assert str(error).startswith(("DDIMConfig.", "unknown")), error
        return
    assert DDIMConfig.from_json(config.to_json()) == config
    assert config.image_size % config.network_stride == 0
    assert 0 < config.min_signal_rate < config.max_signal_rate <= 1


# ----------------------------------------------------------------------------- sampler
@pytest.fixture(scope="module")
def model():
    config = DDIMConfig(image_size=8, widths=(8,), block_depth=1, embedding_dims=4, batch_size=2,
                        validation_kid=False, kid_weights=None, seed=0)
    model = DiffusionModel(config)
    model.adapt_normalizer(synthetic_flowers(8, 8))
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
def test_generate_gives_finite_images_or_a_value_error(model, steps, eta, min_rate, max_rate, shape, dtype, seed):
    noise = make_noise(shape, dtype)
    try:
        images = model.generate(max(1, len(noise)), steps, eta=eta, seed=seed, initial_noise=noise,
                                min_signal_rate=min_rate, max_signal_rate=max_rate, compiled=False)
    except ValueError:
        return
    check_images(images, noise)


@FAST
@given(steps=steps, eta=etas, min_rate=signal_rates.filter(lambda r: r is not None),
       max_rate=signal_rates.filter(lambda r: r is not None), shape=noise_shapes,
       dtype=st.sampled_from(["float32", "int32"]), seed=st.one_of(st.none(), st.integers(0, 9)))
def test_reverse_diffusion_gives_finite_images_or_a_value_error(model, steps, eta, min_rate, max_rate, shape, dtype,
                                                                 seed):
    noise = make_noise(shape, dtype)
    try:
        images = reverse_diffusion(model.ema_network, noise, steps, min_signal_rate=min_rate,
                                   max_signal_rate=max_rate, eta=eta, seed=seed)
    except ValueError:
        return
    check_images(images, noise)
    assert math.isfinite(float(np.abs(keras.ops.convert_to_numpy(images)).max()))
