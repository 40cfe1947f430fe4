"""Tests of ddim_tutorial.core.sampling: the DDIM sampler against a direct re-implementation of the
reference's loop, stochastic sampling (eta > 0), the second-order DPM-Solver++(2S) sampler
against the exact answer for Gaussian data, and argument checks.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_sampling.py``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from ddim_tutorial.checks import MAX_SEED
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.network import build_network
from ddim_tutorial.core.predictions import make_denoiser
from ddim_tutorial.core.sampling import (
    SAMPLERS,
    ddim_step,
    dpm_solver_2s_step,
    network_evaluations,
    reverse_diffusion,
    reverse_diffusion_steps,
    sampling_times,
)
from ddim_tutorial.runtime.random import step_noise

TINY = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4)


def randomized_network(config: DDIMConfig = TINY, seed: int = 0) -> keras.Model:
    """A well-conditioned stand-in for a trained denoiser: the noisy input plus a small,
    input-dependent correction from a U-Net with random weights.

    The untrained U-Net predicts zeros (its last layer starts at zero), and a purely random
    one makes the first step divide a large error by min_signal_rate, so samples explode
    and any comparison becomes a comparison of rounding errors.
    """
    keras.utils.set_random_seed(seed)
    unet = build_network(config)
    last = unet.get_layer("pred_noises")
    rng = np.random.default_rng(seed)
    last.set_weights([0.3 * rng.standard_normal(w.shape).astype("float32") for w in last.get_weights()])
    noisy_images = keras.Input((config.image_size, config.image_size, 3))
    noise_variances = keras.Input((1, 1, 1))
    correction = keras.layers.Rescaling(0.2)(unet([noisy_images, noise_variances]))
    pred_noises = keras.layers.Add()([noisy_images, correction])
    return keras.Model([noisy_images, noise_variances], pred_noises, name="conditioned_denoiser")


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def reference_sampler(network, initial_noise: np.ndarray, diffusion_steps: int,
                      min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> np.ndarray:
    """The reference example's deterministic DDIM loop, written independently in NumPy (float64).

    Time runs from 1 down in equal steps; the cosine schedule maps a time to an angle between
    arccos(max_signal_rate) and arccos(min_signal_rate); each step splits the noisy image into
    predicted noise and image, then remixes them at the next time's rates.
    """
    first_angle, last_angle = np.arccos(max_signal_rate), np.arccos(min_signal_rate)
    batch = initial_noise.shape[0]
    current = initial_noise.astype("float64")
    for index in range(diffusion_steps):
        time = 1.0 - index / diffusion_steps
        angle = first_angle + time * (last_angle - first_angle)
        signal, noise = np.cos(angle), np.sin(angle)
        variances = np.full((batch, 1, 1, 1), noise**2, dtype="float32")
        predicted_noise = to_numpy(network([current.astype("float32"), variances], training=False)).astype("float64")
        predicted_image = (current - noise * predicted_noise) / signal
        next_angle = first_angle + (time - 1.0 / diffusion_steps) * (last_angle - first_angle)
        current = np.cos(next_angle) * predicted_image + np.sin(next_angle) * predicted_noise
    return predicted_image


@pytest.fixture(scope="module")
def network():
    return randomized_network()


@pytest.fixture(scope="module")
def initial_noise():
    return np.random.default_rng(1).standard_normal((3, TINY.image_size, TINY.image_size, 3)).astype("float32")


# ------------------------------------------------------------------ deterministic DDIM
@pytest.mark.parametrize("steps", [1, 5])
def test_eta_zero_equals_the_reference_loop(network, initial_noise, steps):
    expected = reference_sampler(network, initial_noise, steps)
    got = to_numpy(reverse_diffusion(network, initial_noise, steps))
    assert np.abs(expected).max() > 0.5  # the network really changes the images
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4)


def test_other_signal_rates_equal_the_reference_loop(network, initial_noise):
    expected = reference_sampler(network, initial_noise, 4, min_signal_rate=0.1, max_signal_rate=0.8)
    got = to_numpy(reverse_diffusion(network, initial_noise, 4, min_signal_rate=0.1, max_signal_rate=0.8))
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4)


def test_steps_yield_every_step_and_end_with_the_sample(network, initial_noise):
    steps = list(reverse_diffusion_steps(network, initial_noise, 4))
    assert [s.step for s in steps] == [0, 1, 2, 3]
    times = [float(to_numpy(s.diffusion_times)[0, 0, 0, 0]) for s in steps]
    np.testing.assert_allclose(times, [1.0, 0.75, 0.5, 0.25], atol=1e-6)
    np.testing.assert_array_equal(to_numpy(steps[0].noisy_images), initial_noise)
    np.testing.assert_allclose(to_numpy(steps[-1].pred_images),
                               to_numpy(reverse_diffusion(network, initial_noise, 4)), atol=1e-6)


def test_the_denoiser_inverts_the_mixing(network, initial_noise):
    noise_rates = np.full((3, 1, 1, 1), 0.6, "float32")
    signal_rates = np.full((3, 1, 1, 1), 0.8, "float32")
    denoise = make_denoiser(lambda inputs: network(inputs, training=False))
    pred_noises, pred_images = denoise(*map(keras.ops.convert_to_tensor, (initial_noise, noise_rates, signal_rates)))
    remixed = signal_rates * to_numpy(pred_images) + noise_rates * to_numpy(pred_noises)
    np.testing.assert_allclose(remixed, initial_noise, atol=1e-5)


# ------------------------------------------------------------------------ ddim_step
def test_ddim_step_at_eta_zero_is_the_plain_remix():
    rng = np.random.default_rng(0)
    pred_noises, pred_images, fresh = (rng.standard_normal((2, 4, 4, 3)).astype("float32") for _ in range(3))
    pred_noises, pred_images, fresh = map(keras.ops.convert_to_tensor, (pred_noises, pred_images, fresh))
    rates = dict(noise_rates=0.8, signal_rates=0.6, next_noise_rates=0.6, next_signal_rates=0.8)
    plain = to_numpy(ddim_step(pred_noises, pred_images, **rates))
    np.testing.assert_allclose(plain, 0.8 * to_numpy(pred_images) + 0.6 * to_numpy(pred_noises), rtol=1e-6)
    with_zero_eta = to_numpy(ddim_step(pred_noises, pred_images, **rates, eta=0.0, fresh_noises=fresh))
    np.testing.assert_allclose(with_zero_eta, plain, atol=1e-6)


def test_ddim_step_at_eta_one_uses_the_ddpm_posterior_deviation():
    # With a = signal variance, DDPM's posterior std is sqrt((1 - a_next)/(1 - a) * (1 - a/a_next)).
    signal, next_signal = 0.5, 0.9
    noise, next_noise = math.sqrt(1 - signal**2), math.sqrt(1 - next_signal**2)
    a, a_next = signal**2, next_signal**2
    sigma = math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
    zeros = keras.ops.zeros((1, 2, 2, 3), "float32")
    ones = keras.ops.ones((1, 2, 2, 3), "float32")
    # Only the fresh noise is non-zero: the result is sigma * fresh.
    only_fresh = to_numpy(ddim_step(zeros, zeros, noise, signal, next_noise, next_signal, eta=1.0, fresh_noises=ones))
    np.testing.assert_allclose(only_fresh, sigma, rtol=1e-5)
    # Only the predicted noise is non-zero: it keeps the rest of the next noise variance.
    only_pred = to_numpy(ddim_step(ones, zeros, noise, signal, next_noise, next_signal, eta=1.0, fresh_noises=zeros))
    np.testing.assert_allclose(only_pred, math.sqrt(next_noise**2 - sigma**2), rtol=1e-5)


def test_ddim_step_without_noise_for_positive_eta_is_its_deterministic_part():
    # The math never checks (compiled code traces it): without fresh noise, eta only shrinks
    # the predicted noise's share, as if the fresh noise were zero.
    rng = np.random.default_rng(3)
    pred_noises, pred_images = (keras.ops.convert_to_tensor(rng.standard_normal((1, 2, 2, 3)).astype("float32"))
                                for _ in range(2))
    rates = (0.8, 0.6, 0.6, 0.8)
    without = to_numpy(ddim_step(pred_noises, pred_images, *rates, eta=0.5))
    zero_noise = to_numpy(ddim_step(pred_noises, pred_images, *rates, eta=0.5,
                                    fresh_noises=keras.ops.zeros((1, 2, 2, 3))))
    np.testing.assert_allclose(without, zero_noise, atol=1e-6)
    assert np.abs(without - to_numpy(ddim_step(pred_noises, pred_images, *rates))).max() > 1e-3


# ------------------------------------------------------------------ stochastic DDIM
def test_positive_eta_changes_samples_and_is_seed_reproducible(network, initial_noise):
    deterministic = to_numpy(reverse_diffusion(network, initial_noise, 5))
    first = to_numpy(reverse_diffusion(network, initial_noise, 5, eta=0.7, seed=3))
    again = to_numpy(reverse_diffusion(network, initial_noise, 5, eta=0.7, seed=3))
    other_seed = to_numpy(reverse_diffusion(network, initial_noise, 5, eta=0.7, seed=4))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - deterministic).mean() > 1e-3
    assert np.abs(first - other_seed).mean() > 1e-3


def test_a_seed_generator_also_works_for_positive_eta(network, initial_noise):
    generator = keras.random.SeedGenerator(7)
    first = to_numpy(reverse_diffusion(network, initial_noise, 3, eta=1.0, seed=generator))
    second = to_numpy(reverse_diffusion(network, initial_noise, 3, eta=1.0, seed=generator))
    assert np.abs(first - second).mean() > 1e-3  # the generator moved on


def test_step_noise_is_a_pure_function_of_seed_and_step():
    a = to_numpy(step_noise((2, 4, 4, 3), 5, 1))
    np.testing.assert_array_equal(a, to_numpy(step_noise((2, 4, 4, 3), 5, 1)))
    assert not np.allclose(a, to_numpy(step_noise((2, 4, 4, 3), 5, 2)))
    assert not np.allclose(a, to_numpy(step_noise((2, 4, 4, 3), 6, 1)))
    big = to_numpy(step_noise((64, 8, 8, 3), MAX_SEED, 0))
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1.0) < 0.05


# ------------------------------------------------------------- DPM-Solver++(2S), second order
GAUSS_MEAN, GAUSS_STD = 0.3, 0.5


class GaussianDenoiser(keras.layers.Layer):
    """The exact noise predictor when every pixel of the data is N(GAUSS_MEAN, GAUSS_STD**2):
    E[noise | noisy] = n (noisy - s mean) / (s**2 std**2 + n**2). Counts its (eager) calls."""

    calls = 0

    def call(self, inputs):
        noisy_images, noise_variances = inputs
        GaussianDenoiser.calls += 1
        signal_variances = 1.0 - noise_variances
        return (keras.ops.sqrt(noise_variances) * (noisy_images - keras.ops.sqrt(signal_variances) * GAUSS_MEAN)
                / (signal_variances * GAUSS_STD**2 + noise_variances))


def gaussian_network() -> keras.Model:
    noisy_images, noise_variances = keras.Input((8, 8, 3)), keras.Input((1, 1, 1))
    return keras.Model([noisy_images, noise_variances], GaussianDenoiser()([noisy_images, noise_variances]))


def exact_gaussian_sample(initial_noise: np.ndarray, min_signal_rate=0.02, max_signal_rate=0.95) -> np.ndarray:
    """Where every deterministic sampler converges with many steps, in closed form (float64).

    With x = noisy / signal and sigma = noise / signal, x is N(mean, std**2 + sigma**2), and the
    probability-flow ODE keeps (x - mean) / sqrt(std**2 + sigma**2) constant. Solve it from t = 1
    (where the initial noise is read with min_signal_rate) to t = 0, then denoise there exactly.
    """
    def sigma(rate):
        return math.sqrt(1.0 - rate**2) / rate

    start, end = sigma(min_signal_rate), sigma(max_signal_rate)
    x_start = initial_noise.astype("float64") / min_signal_rate
    x_end = GAUSS_MEAN + (x_start - GAUSS_MEAN) * math.sqrt(GAUSS_STD**2 + end**2) / math.sqrt(GAUSS_STD**2 + start**2)
    return GAUSS_MEAN + (x_end - GAUSS_MEAN) * GAUSS_STD**2 / (GAUSS_STD**2 + end**2)


def test_dpm_solver_converges_to_the_exact_answer_at_second_order_and_beats_ddim_at_equal_cost():
    network = gaussian_network()
    noise = np.random.default_rng(3).standard_normal((2, 8, 8, 3)).astype("float32")
    exact = exact_gaussian_sample(noise)
    error, calls = {}, {}
    for sampler in SAMPLERS:
        for steps in (5, 10):
            GaussianDenoiser.calls = 0
            images = to_numpy(reverse_diffusion(network, noise, steps, sampler=sampler))
            calls[sampler, steps] = GaussianDenoiser.calls
            error[sampler, steps] = float(np.abs(images - exact).max())
    assert calls == {(sampler, steps): network_evaluations(sampler, steps) for sampler, steps in calls}
    assert calls[("dpm++2s", 5)] == 9 and calls[("ddim", 10)] == 10
    assert error["dpm++2s", 5] < error["ddim", 10] / 3  # 9 evaluations beat 10 (about 0.04 against 0.26)
    assert error["dpm++2s", 10] / error["dpm++2s", 5] < 0.3  # second order: twice the steps, a quarter of the error
    assert 0.4 < error["ddim", 10] / error["ddim", 5] < 0.7  # first order: half the error
    assert error["dpm++2s", 10] < 0.02


def test_dpm_solver_step_matches_the_paper_written_out_by_hand():
    # DPM-Solver++(2S), r = 1/2, in Lu et al.'s notation: alpha = signal rate, sigma = noise rate,
    # lambda = log(alpha / sigma), h = lambda_t - lambda_s, the midpoint at lambda_s + h / 2,
    # u = (sigma_m / sigma_s) x - alpha_m (e^{-h/2} - 1) x0(x),
    # x_t = (sigma_t / sigma_s) x - alpha_t (e^{-h} - 1) x0(u).
    rng = np.random.default_rng(4)
    x, first_images, mid_images = (rng.standard_normal((2, 3, 3, 3)) for _ in range(3))
    alpha_s, alpha_t = 0.3, 0.7
    sigma_s, sigma_t = math.sqrt(1 - alpha_s**2), math.sqrt(1 - alpha_t**2)
    lambda_s, lambda_t = math.log(alpha_s / sigma_s), math.log(alpha_t / sigma_t)
    h = lambda_t - lambda_s
    alpha_m = 1.0 / math.sqrt(1.0 + math.exp(-2 * (lambda_s + h / 2)))
    sigma_m = math.sqrt(1 - alpha_m**2)
    u = sigma_m / sigma_s * x - alpha_m * (math.exp(-h / 2) - 1) * first_images
    expected = sigma_t / sigma_s * x - alpha_t * (math.exp(-h) - 1) * mid_images

    seen = []

    def denoise(noisy_images, noise_rates, signal_rates):  # a stand-in network: a fixed answer
        seen.append((to_numpy(noisy_images), float(to_numpy(noise_rates)), float(to_numpy(signal_rates))))
        images = keras.ops.convert_to_tensor(mid_images.astype("float32"))
        return (noisy_images - signal_rates * images) / noise_rates, images

    first_noises = (x - alpha_s * first_images) / sigma_s
    tensors = (keras.ops.convert_to_tensor(a.astype("float32")) for a in (x, first_noises, first_images))
    got = dpm_solver_2s_step(denoise, *tensors, sigma_s, alpha_s, sigma_t, alpha_t)  # the math takes tensors
    assert len(seen) == 1, "one network evaluation per step, at the midpoint"
    np.testing.assert_allclose(seen[0][1:], (sigma_m, alpha_m), rtol=1e-5)
    np.testing.assert_allclose(seen[0][0], u, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-4, atol=1e-5)


def test_dpm_solver_yields_its_steps_at_its_own_times():
    network = gaussian_network()
    initial_noise = np.random.default_rng(5).standard_normal((2, 8, 8, 3)).astype("float32")
    steps = list(reverse_diffusion_steps(network, initial_noise, 5, sampler="dpm++2s"))
    times = [float(to_numpy(s.diffusion_times)[0, 0, 0, 0]) for s in steps]
    np.testing.assert_allclose(times, [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)
    np.testing.assert_allclose(times, sampling_times("dpm++2s", 5), atol=1e-6)
    np.testing.assert_allclose(sampling_times("ddim", 4), [1.0, 0.75, 0.5, 0.25])
    # One step is the same for both samplers: the image predicted from pure noise.
    np.testing.assert_allclose(to_numpy(reverse_diffusion(network, initial_noise, 1, sampler="dpm++2s")),
                               to_numpy(reverse_diffusion(network, initial_noise, 1)), atol=1e-6)
    assert [network_evaluations("dpm++2s", n) for n in (1, 2, 5)] == [1, 3, 9]
    assert [network_evaluations("ddim", n) for n in (1, 2, 5)] == [1, 2, 5]


@pytest.mark.parametrize("sampler", ["heun", "DDIM", "", None, 2])
def test_unknown_samplers_are_rejected_with_the_choices(network, initial_noise, sampler):
    with pytest.raises(ValueError, match=r"sampler=.* is invalid: choose one of 'ddim', 'dpm\+\+2s'"):
        reverse_diffusion(network, initial_noise, 3, sampler=sampler)
    with pytest.raises(ValueError, match="choose one of"):
        network_evaluations(sampler, 3)


def test_the_second_order_sampler_refuses_eta(network, initial_noise):
    with pytest.raises(ValueError, match=r"sampler='dpm\+\+2s' with eta=0.5 is invalid.*sampler='ddim'"):
        reverse_diffusion(network, initial_noise, 3, sampler="dpm++2s", eta=0.5)


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "20", None])
def test_bad_step_counts_are_rejected(network, initial_noise, steps):
    with pytest.raises(ValueError, match="diffusion_steps"):
        reverse_diffusion(network, initial_noise, steps)


@pytest.mark.parametrize("rates, match", [((0.0, 0.95), "min_signal_rate"), ((0.5, 1.2), "max_signal_rate"),
                                          ((0.9, 0.5), "smaller than"), ((float("nan"), 0.9), "min_signal_rate")])
def test_bad_signal_rates_are_rejected(network, initial_noise, rates, match):
    with pytest.raises(ValueError, match=match):
        reverse_diffusion(network, initial_noise, 3, min_signal_rate=rates[0], max_signal_rate=rates[1])


@pytest.mark.parametrize("eta", [-0.1, 1.5, "0.5", True])
def test_bad_eta_is_rejected(network, initial_noise, eta):
    with pytest.raises(ValueError, match="eta"):
        reverse_diffusion(network, initial_noise, 3, eta=eta)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.5, "3"])
def test_bad_seeds_are_rejected(network, initial_noise, seed):
    with pytest.raises(ValueError, match="seed"):
        reverse_diffusion(network, initial_noise, 3, eta=0.5, seed=seed)


@pytest.mark.parametrize("noise, match", [(np.zeros((2, 16, 16), "float32"), "shape"),
                                          (np.zeros((2, 16, 16, 1), "float32"), "shape"),
                                          (np.zeros((0, 16, 16, 3), "float32"), "no images"),
                                          (np.zeros((2, 16, 16, 3), "int32"), "dtype"),
                                          (None, "None")])
def test_bad_initial_noise_is_rejected(network, noise, match):
    with pytest.raises(ValueError, match=match):
        reverse_diffusion(network, noise, 3)


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="PyTorch has no traced functions here")
def test_reverse_diffusion_runs_inside_a_compiled_function(network, initial_noise):
    # Keras' compiled test step samples for KID at validation: the checks must accept
    # symbolic tensors, whose values do not exist while tracing.
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(lambda noise: reverse_diffusion(network, noise, 3))
    else:
        import jax

        compiled = jax.jit(lambda noise: reverse_diffusion(network, noise, 3))
    np.testing.assert_allclose(to_numpy(compiled(initial_noise)),
                               to_numpy(reverse_diffusion(network, initial_noise, 3)), atol=1e-4)
