"""Sampling by reverse diffusion: from pure noise to images, one denoising step at a time.

Each step splits the noisy images into predicted images and predicted noises (the network), then
mixes the two again at the rates of the next, less noisy, diffusion time (:func:`ddim_step`). With
``eta = 0`` this is the reference's deterministic DDIM sampler; ``eta > 0`` swaps part of the
predicted noise for fresh noise (DDIM paper, Eq. 16; ``eta = 1`` is DDPM-like). The second sampler,
``"dpm++2s"``, reads the same loop as the solution of an ODE and takes second-order steps
(:func:`dpm_solver_2s_step`). One step function (:func:`step_functions`) serves the eager loop
(:func:`reverse_diffusion_steps`) and the compiled one (:func:`sample`). Everything here works in the
network's normalized image space; ``DiffusionModel.generate`` returns pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from ddim_tutorial.checks import (
    SAMPLERS,
    check_guidance,
    check_path_and_prediction,
    check_positive_int,
    check_prediction_type,
    check_sampler,
    check_sampling_args,
)
from ddim_tutorial.core.predictions import make_denoiser, null_label_of
from ddim_tutorial.core.schedule import onto_path, path_parameters, path_rates
from ddim_tutorial.runtime.random import step_noise

__all__ = ["ddim_step", "dpm_solver_2s_step", "reverse_diffusion", "reverse_diffusion_steps", "sample",
           "DiffusionStep", "time_intervals", "network_evaluations", "sampling_times", "SAMPLERS"]


def ddim_step(pred_noises: Any, pred_images: Any, noise_rates: Any, signal_rates: Any,
              next_noise_rates: Any, next_signal_rates: Any, eta: Any = 0.0, fresh_noises: Any = None) -> Any:
    """One DDIM step (Song, Meng, Ermon 2021, Eq. 12): the noisy images at the next, lower noise level.

    ==================== ============================= ===========================
    here                 DDIM paper                    diffusers' ``DDIMScheduler``
    ==================== ============================= ===========================
    ``signal_rates``     sqrt(alpha_t)                 ``alpha_prod_t ** 0.5``
    ``noise_rates``      sqrt(1 - alpha_t)             ``beta_prod_t ** 0.5``
    ``next_*_rates``     the same at t - 1             ``alpha_prod_t_prev``
    ``pred_images``      f_theta(x_t), "predicted x0"  ``pred_original_sample``
    ``pred_noises``      epsilon_theta(x_t)            ``pred_epsilon``
    ``sigmas``           sigma_t (Eq. 16)              ``std_dev_t``
    ``fresh_noises``     epsilon_t                     ``variance_noise``
    ==================== ============================= ===========================

    ``sigmas`` is the course's *fresh-noise rate* (the lessons keep the letter sigma for
    ``noise_rates / signal_rates``, docs/NOTATION.md). Tensors in, tensor out, no checks: compiled
    code traces it. ``fresh_noises`` (standard normal, shaped like the images) is needed only when
    ``eta > 0``.
    """
    # 1. sigma_t of Eq. 16, the standard deviation of the fresh noise: eta times DDPM's posterior
    #    deviation, sqrt((1 - alpha_{t-1}) / (1 - alpha_t)) * sqrt(1 - alpha_t / alpha_{t-1}).
    sigmas = eta * ops.sqrt(ops.maximum(
        next_noise_rates**2 / noise_rates**2 * (1.0 - signal_rates**2 / next_signal_rates**2), 0.0))
    # 2. "the direction pointing to x_t" (Eq. 12, middle term): the predicted noise keeps the rest of
    #    the next noise variance, sqrt(1 - alpha_{t-1} - sigma_t^2), so the mix keeps unit variance.
    kept_noise_rates = ops.sqrt(ops.maximum(next_noise_rates**2 - sigmas**2, 0.0))
    # 3. Eq. 12: x_{t-1} = sqrt(alpha_{t-1}) * predicted x0 + direction to x_t + sigma_t * epsilon_t.
    next_noisy_images = next_signal_rates * pred_images + kept_noise_rates * pred_noises
    return next_noisy_images if fresh_noises is None else next_noisy_images + sigmas * fresh_noises


def dpm_solver_2s_step(denoise: Callable, noisy_images: Any, pred_noises: Any, pred_images: Any,
                       noise_rates: Any, signal_rates: Any, next_noise_rates: Any, next_signal_rates: Any,
                       path: str = "cosine") -> Any:
    """One second-order step on the probability-flow ODE: DPM-Solver++(2S) (Lu et al. 2022, Alg. 1, r = 1/2).

    In ``x = noisy / signal_rate`` and ``sigma = noise_rate / signal_rate`` a deterministic DDIM step
    is one Euler step of ``dx/dsigma = pred_noises`` (DDIM paper, Eq. 14): first order. This step
    takes a DDIM step to the midpoint, asks the network (``denoise``) for the clean image there, and
    takes the whole step with that image: second order, two network evaluations. Why this method and
    not Heun's or DPM-Solver-2 is measured in docs/DESIGN.md ("The second-order sampler").
    """
    # 1. The midpoint in lambda = log(signal_rate / noise_rate) (Alg. 1's s_i with r = 1/2): the
    #    geometric means of the rates at both ends.
    mid_signals = ops.sqrt(signal_rates * next_signal_rates)
    mid_noises = ops.sqrt(noise_rates * next_noise_rates)
    # 2. That signal-to-noise ratio, scaled back onto the path.
    mid_noise_rates, mid_signal_rates = onto_path(mid_noises, mid_signals, path)
    # 3. A DDIM step to the midpoint (Alg. 1's u_i, which is DDIM Eq. 12 with sigma_t = 0).
    mid_noisy_images = ddim_step(pred_noises, pred_images, noise_rates, signal_rates, mid_noise_rates, mid_signal_rates)
    # 4. The second evaluation: the clean image predicted at the midpoint (Alg. 1's D_i for r = 1/2).
    _, mid_pred_images = denoise(mid_noisy_images, mid_noise_rates, mid_signal_rates)
    # 5. The noise that this image implies for the current noisy images.
    mid_pred_noises = (noisy_images - signal_rates * mid_pred_images) / noise_rates
    # 6. The whole step from the current noisy images with the midpoint image (Alg. 1's x_i).
    return ddim_step(mid_pred_noises, mid_pred_images, noise_rates, signal_rates, next_noise_rates, next_signal_rates)


def time_intervals(sampler: str, diffusion_steps: Any) -> Any:
    """The time grid: into how many equal intervals ``sampler`` cuts t in [0, 1]. DDIM: ``steps``, from
    t = 1 down to its last prediction at t = 1 / steps; DPM-Solver++(2S): ``steps - 1``, down to t = 0
    included. ``diffusion_steps`` may be a tensor."""
    return diffusion_steps if sampler == "ddim" else ops.maximum(diffusion_steps - 1, 1)


def step_functions(denoise: Callable, num_images: Any, diffusion_steps: Any, start: Any, span: Any, *,
                   sampler: str = "ddim", path: str = "cosine", eta: Any = 0.0,
                   fresh_noises: Callable | None = None) -> tuple[Callable, Callable]:
    """``(predict, advance)``: the body of every sampling loop, eager or compiled, in two halves.

    ``predict(step, noisy_images) -> (diffusion_times, pred_noises, pred_images)`` asks the network;
    ``advance(step, noisy_images, pred_noises, pred_images)`` takes the step to the next time, on the
    grid of :func:`time_intervals`. ``fresh_noises(step)`` draws the noise of stochastic DDIM (``eta > 0``).
    """
    step_size = 1.0 / ops.cast(time_intervals(sampler, diffusion_steps), "float32")
    ones = ops.ones((num_images, 1, 1, 1), dtype="float32")

    def times_at(step):  # the one time grid
        return ones - ops.cast(step, "float32") * step_size

    def predict(step, noisy_images):
        diffusion_times = times_at(step)
        return (diffusion_times, *denoise(noisy_images, *path_rates(diffusion_times, start, span, path)))

    def advance(step, noisy_images, pred_noises, pred_images):
        diffusion_times = times_at(step)
        noise_rates, signal_rates = path_rates(diffusion_times, start, span, path)
        next_noise_rates, next_signal_rates = path_rates(diffusion_times - step_size, start, span, path)
        if sampler == "dpm++2s":
            return dpm_solver_2s_step(denoise, noisy_images, pred_noises, pred_images, noise_rates, signal_rates,
                                      next_noise_rates, next_signal_rates, path)
        return ddim_step(pred_noises, pred_images, noise_rates, signal_rates, next_noise_rates, next_signal_rates,
                         eta, None if fresh_noises is None else fresh_noises(step))

    return predict, advance


def sample(denoise: Callable, initial_noise: Any, diffusion_steps: Any, start: Any, span: Any, **options: Any) -> Any:
    """The predicted images of the last step, the loop written with ``keras.ops.fori_loop`` so that a
    compiler sees one program (``DiffusionModel.sampling_program`` is what
    :class:`~ddim_tutorial.runtime.compiled_sampling.CompiledSampler` compiles).
    ``options`` are those of :func:`step_functions`; every argument may be a tensor."""
    predict, advance = step_functions(denoise, initial_noise.shape[0], diffusion_steps, start, span, **options)
    noisy_images = ops.fori_loop(0, diffusion_steps - 1,
                                 lambda step, noisy: advance(step, noisy, *predict(step, noisy)[1:]), initial_noise)
    return predict(diffusion_steps - 1, noisy_images)[2]


@dataclass
class DiffusionStep:
    """What one sampling step saw and predicted, for plots of the trajectory."""

    step: int
    diffusion_times: Any
    noisy_images: Any
    pred_images: Any
    pred_noises: Any


def reverse_diffusion_steps(network: keras.Model, initial_noise: Any, diffusion_steps: int, *,
                            min_signal_rate: float = 0.02, max_signal_rate: float = 0.95,
                            eta: float = 0.0, seed: int | keras.random.SeedGenerator | None = None,
                            sampler: str = "ddim", prediction_type: str = "noise", class_labels: Any = None,
                            guidance_scale: float = 1.0, path: str = "cosine") -> Iterator[DiffusionStep]:
    """Yield every step of reverse diffusion, the Python loop a debugger can step through; the last
    step's ``pred_images`` is the sample.

    With ``eta > 0`` an int ``seed`` draws each step's noise from ``(seed, step)``, as the compiled
    loop does (:func:`~ddim_tutorial.runtime.random.step_noise`); a ``SeedGenerator`` draws from the
    generator; None draws fresh noise. ``class_labels`` and ``guidance_scale`` steer a
    class-conditional network; ``path`` and ``prediction_type`` are those it was trained with.
    """
    initial_noise = check_sampling_args(initial_noise, diffusion_steps, min_signal_rate, max_signal_rate, eta,
                                        image_size=network.inputs[0].shape[1], sampler=sampler, path=path, seed=seed)
    check_path_and_prediction(path, check_prediction_type(prediction_type), owner="reverse_diffusion")
    num_images = initial_noise.shape[0]
    null_label = null_label_of(network)
    class_labels = check_guidance(null_label or 0, class_labels, guidance_scale, num_images)
    fresh_noises = None
    if eta > 0 and isinstance(seed, int):
        fresh_noises = lambda step: step_noise(tuple(initial_noise.shape), seed, step)  # noqa: E731
    elif eta > 0:
        generator = seed or keras.random.SeedGenerator(None)
        fresh_noises = lambda step: keras.random.normal(tuple(initial_noise.shape), seed=generator)  # noqa: E731
    denoise = make_denoiser(lambda inputs: network(inputs, training=False), prediction_type=prediction_type,
                            null_label=null_label, class_labels=class_labels,
                            guidance_scale=None if guidance_scale == 1 else guidance_scale)
    predict, advance = step_functions(denoise, num_images, diffusion_steps,
                                      *path_parameters(min_signal_rate, max_signal_rate, path),
                                      sampler=sampler, path=path, eta=eta, fresh_noises=fresh_noises)
    noisy_images = initial_noise
    for step in range(diffusion_steps):
        diffusion_times, pred_noises, pred_images = predict(step, noisy_images)
        yield DiffusionStep(step, diffusion_times, noisy_images, pred_images, pred_noises)
        if step < diffusion_steps - 1:
            noisy_images = advance(step, noisy_images, pred_noises, pred_images)


def reverse_diffusion(network: keras.Model, initial_noise: Any, diffusion_steps: int, **options: Any) -> Any:
    """Images (normalized space) from ``initial_noise`` in ``diffusion_steps`` steps, by the eager loop;
    the options are those of :func:`reverse_diffusion_steps`."""
    for diffusion_step in reverse_diffusion_steps(network, initial_noise, diffusion_steps, **options):
        pred_images = diffusion_step.pred_images
    return pred_images


def network_evaluations(sampler: str, diffusion_steps: int) -> int:
    """How many times ``sampler`` calls the network in ``diffusion_steps`` steps: DDIM once per step;
    DPM-Solver++(2S) twice, except at the last step, which only reads off the image: ``2 * steps - 1``."""
    check_sampler(sampler)
    check_positive_int("diffusion_steps", diffusion_steps, advice="use an integer >= 1")
    return diffusion_steps if sampler == "ddim" else 2 * diffusion_steps - 1


def sampling_times(sampler: str, diffusion_steps: int) -> np.ndarray:
    """The diffusion times at which ``sampler`` first asks the network in each step (the grid of
    :func:`time_intervals`): DDIM ``1, 1 - 1/steps, ..., 1/steps``; DPM-Solver++(2S) from 1 down to 0
    included, so that both converge to the same images, the ODE's solution denoised at t = 0."""
    network_evaluations(sampler, diffusion_steps)  # checks both
    return 1.0 - np.arange(diffusion_steps) / float(ops.convert_to_numpy(time_intervals(sampler, diffusion_steps)))

