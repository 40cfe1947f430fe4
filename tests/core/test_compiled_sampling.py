"""Tests of ddim_tutorial.core.sampling.CompiledSampler (compiled by runtime.compiled_sampling): the
compiled loop gives the eager loop's samples, compiles once per batch shape, and follows the weights.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_compiled_sampling.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.network import build_network
from ddim_tutorial.core.predictions import make_denoiser
from ddim_tutorial.core.sampling import reverse_diffusion, sample
from ddim_tutorial.core.schedule import path_parameters
from ddim_tutorial.runtime.compiled_sampling import CompiledSampler
from tests.helpers import model_around, randomize_output_layer

TINY = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4)
COMPILES = keras.backend.backend() in ("tensorflow", "jax")


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def conditioned_denoiser(seed: int = 0) -> keras.Model:
    """The noisy input plus a small input-dependent correction: a stand-in for a trained
    denoiser whose samples stay bounded, so eager and compiled results are comparable."""
    keras.utils.set_random_seed(seed)
    unet = randomize_output_layer(build_network(TINY), 0.3, seed)
    noisy_images = keras.Input((TINY.image_size, TINY.image_size, 3))
    noise_variances = keras.Input((1, 1, 1))
    correction = keras.layers.Rescaling(0.2)(unet([noisy_images, noise_variances]))
    return keras.Model([noisy_images, noise_variances], keras.layers.Add()([noisy_images, correction]))


@pytest.fixture(scope="module")
def sampler_model():
    """A model around the denoiser, its normalizer mean 0.5 and standard deviation 0.2."""
    return model_around(conditioned_denoiser())


@pytest.fixture(scope="module")
def network(sampler_model):
    return sampler_model.ema_network


@pytest.fixture(scope="module")
def sampler(sampler_model):
    return CompiledSampler(sampler_model)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = DiffusionModel(TINY)
    model.adapt_normalizer(np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32"))
    last = model.ema_network.get_layer("pred_noises")
    rng = np.random.default_rng(1)
    last.set_weights([0.05 * rng.standard_normal(w.shape).astype("float32") for w in last.get_weights()])
    return model


def noise(num_images: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num_images, 16, 16, 3)).astype("float32")


# ------------------------------------------------------------------ same numbers as eager
@pytest.mark.parametrize("method, steps, eta", [("ddim", 1, 0.0), ("ddim", 6, 0.0), ("ddim", 6, 0.8),
                                                ("dpm++2s", 1, 0.0), ("dpm++2s", 3, 0.0)])
def test_compiled_equals_the_eager_loop(network, sampler, method, steps, eta):
    eager = to_numpy(reverse_diffusion(network, noise(), steps, eta=eta, seed=11, sampler=method))
    compiled = to_numpy(sampler(noise(), steps, eta=eta, seed=11, normalized=True, sampler=method))
    assert np.abs(eager).max() > 0.1
    np.testing.assert_allclose(compiled, eager, atol=1e-4, rtol=1e-4)


def test_pixel_output_is_the_denormalized_sample(network, sampler):
    normalized = to_numpy(sampler(noise(), 4, normalized=True))
    pixels = to_numpy(sampler(noise(), 4))
    np.testing.assert_allclose(pixels, np.clip(0.5 + normalized * 0.2, 0.0, 1.0), atol=1e-6)


def test_signal_rates_reach_the_compiled_loop(network, sampler):
    kwargs = dict(min_signal_rate=0.1, max_signal_rate=0.8)
    eager = to_numpy(reverse_diffusion(network, noise(), 4, **kwargs))
    compiled = to_numpy(sampler(noise(), 4, normalized=True, **kwargs))
    np.testing.assert_allclose(compiled, eager, atol=1e-4, rtol=1e-4)
    assert np.abs(compiled - to_numpy(sampler(noise(), 4, normalized=True))).mean() > 1e-3


def test_stochastic_samples_are_seed_reproducible(sampler):
    first = to_numpy(sampler(noise(), 5, eta=0.5, seed=3))
    np.testing.assert_array_equal(first, to_numpy(sampler(noise(), 5, eta=0.5, seed=3)))
    assert np.abs(first - to_numpy(sampler(noise(), 5, eta=0.5, seed=4))).mean() > 1e-3
    assert np.abs(first - to_numpy(sampler(noise(), 5))).mean() > 1e-3


def test_the_plain_loop_function_runs_deterministically(network):
    denoise = make_denoiser(lambda inputs: network(inputs, training=False))
    start, span = path_parameters(0.02, 0.95, "cosine")
    images = sample(denoise, keras.ops.convert_to_tensor(noise()), 3, start, span)
    np.testing.assert_allclose(to_numpy(images), to_numpy(reverse_diffusion(network, noise(), 3)), atol=1e-4)


# ------------------------------------------------------------------------- compile once
@pytest.mark.skipif(not COMPILES, reason="PyTorch runs the loop eagerly; nothing is traced")
def test_sliders_never_retrace_and_a_new_batch_traces_once(sampler):
    sampler(noise(3), 3)
    traces = sampler.trace_count
    for steps, eta, seed, rates in [(5, 0.0, 0, (0.02, 0.95)), (2, 0.7, 1, (0.1, 0.9)), (8, 1.0, 5, (0.05, 0.5))]:
        sampler(noise(3), steps, eta=eta, seed=seed, min_signal_rate=rates[0], max_signal_rate=rates[1])
        sampler(noise(3), steps, eta=eta, seed=seed, normalized=True)
    assert sampler.trace_count == traces
    sampler(noise(1), 3)
    sampler(noise(1), 7, eta=0.3)
    assert sampler.trace_count == traces + 1


@pytest.mark.skipif(not COMPILES, reason="PyTorch runs the loop eagerly; nothing is traced")
def test_each_sampler_is_one_program_traced_once(sampler):
    for method in ("ddim", "dpm++2s"):
        sampler(noise(3), 2, sampler=method)
    traces = sampler.trace_count
    for method in ("dpm++2s", "ddim"):
        sampler(noise(3), 4, sampler=method, min_signal_rate=0.1, max_signal_rate=0.9)
    assert sampler.trace_count == traces
    with pytest.raises(ValueError, match="choose one of"):
        sampler(noise(3), 2, sampler="heun")
    with pytest.raises(ValueError, match="eta"):
        sampler(noise(3), 2, sampler="dpm++2s", eta=0.3)


def test_the_sampler_follows_the_weights_without_recompiling(model):
    sampler = model.sampler
    before = to_numpy(sampler(noise(2), 3))
    traces = sampler.trace_count
    weights = model.ema_network.get_weights()
    try:
        model.ema_network.set_weights([w * 1.5 for w in weights])
        after = to_numpy(sampler(noise(2), 3))
    finally:
        model.ema_network.set_weights(weights)
    assert np.abs(before - after).mean() > 1e-4
    assert sampler.trace_count == traces
    np.testing.assert_allclose(to_numpy(sampler(noise(2), 3)), before, atol=1e-6)


# ---------------------------------------------------------------- DiffusionModel.generate
def test_generate_is_compiled_by_default_and_matches_the_eager_path(model):
    compiled = to_numpy(model.generate(2, 5, seed=2))
    eager = to_numpy(model.generate(2, 5, seed=2, compiled=False))
    assert compiled.shape == (2, 16, 16, 3) and 0.0 <= compiled.min() and compiled.max() <= 1.0
    assert compiled.std() > 0.01
    np.testing.assert_allclose(compiled, eager, atol=1e-4)
    stochastic = to_numpy(model.generate(2, 5, seed=2, eta=0.6))
    np.testing.assert_allclose(stochastic, to_numpy(model.generate(2, 5, seed=2, eta=0.6, compiled=False)), atol=1e-4)
    np.testing.assert_array_equal(stochastic, to_numpy(model.generate(2, 5, seed=2, eta=0.6)))
    assert model.sampler is model.sampler  # one resident sampler per model


def test_generate_takes_the_sampler(model):
    compiled = to_numpy(model.generate(2, 2, seed=2, sampler="dpm++2s"))
    np.testing.assert_allclose(compiled, to_numpy(model.generate(2, 2, seed=2, sampler="dpm++2s", compiled=False)),
                               atol=1e-4)
    with pytest.raises(ValueError, match="eta"):
        model.generate(2, 2, eta=0.5, sampler="dpm++2s")


def test_generate_uses_the_given_noise_and_rates(model):
    initial = model.initial_noise(2, seed=9)
    a = to_numpy(model.generate(2, 4, initial_noise=initial, min_signal_rate=0.1))
    b = to_numpy(model.generate(2, 4, initial_noise=initial, min_signal_rate=0.1, compiled=False))
    np.testing.assert_allclose(a, b, atol=1e-4)


# ------------------------------------------------------------------------------- errors
def test_bad_arguments_are_rejected(sampler):
    with pytest.raises(ValueError, match="diffusion_steps"):
        sampler(noise(2), 0)
    with pytest.raises(ValueError, match="eta"):
        sampler(noise(2), 2, eta=2.0)
    with pytest.raises(ValueError, match="seed"):
        sampler(noise(2), 2, eta=0.5, seed=keras.random.SeedGenerator(1))
    with pytest.raises(ValueError, match="seed"):
        sampler(noise(2), 2, eta=0.5, seed=-4)
    with pytest.raises(ValueError, match="min_signal_rate"):
        sampler(noise(2), 2, min_signal_rate=0.0)
    with pytest.raises(ValueError, match="DiffusionModel"):
        CompiledSampler("not a model")


def test_an_unadapted_model_cannot_sample():
    model = DiffusionModel(TINY)
    assert not model.is_adapted
    with pytest.raises(RuntimeError, match="adapt_normalizer"):
        CompiledSampler(model)(noise(2), 2)
    with pytest.raises(RuntimeError, match="adapt_normalizer"):
        model.generate(2, 2)
    model.adapt_normalizer(np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32"))
    assert model.is_adapted


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA on/off is a TensorFlow choice")
def test_tensorflow_xla_program_gives_the_same_samples(network, sampler):
    xla = CompiledSampler(sampler.model, jit_compile=True)
    assert xla.mode == "tf.function (XLA)"
    expected = to_numpy(reverse_diffusion(network, noise(), 4, eta=0.5, seed=2))
    np.testing.assert_allclose(to_numpy(xla(noise(), 4, eta=0.5, seed=2, normalized=True)), expected,
                               atol=1e-4, rtol=1e-4)
