"""Sampling by reverse diffusion: from pure noise to images, one denoising step at a time.

Each step splits the current noisy image into its predicted image and predicted noise
(using the network), then mixes the two again at the signal and noise rates of the next,
less noisy, diffusion time. With ``eta = 0`` this is the deterministic DDIM sampler of the
reference; ``eta > 0`` replaces part of the predicted noise with fresh random noise
(DDIM paper, Eq. 16), and ``eta = 1`` is DDPM-like ancestral sampling.

A second sampler, ``sampler="dpm++2s"``, reads the same loop as the numerical solution of an
ordinary differential equation, the *probability-flow ODE*: in the coordinates
``noisy_images / signal_rates`` and ``noise_rates / signal_rates`` a deterministic DDIM
step is exactly one step of Euler's method, and :func:`dpm_solver_2s_step` replaces it with
a second-order step (DPM-Solver++(2S), Lu et al. 2022) at two network evaluations per step.
:func:`network_evaluations` counts them, so that samplers can be compared at equal cost.

Everything here works in the *normalized* image space of the network; see
``DiffusionModel.generate`` for pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from ._shared import check_positive_int
from .config import check_path, check_path_and_prediction, check_signal_rates
from .predictions import make_denoiser, null_label_of, validate_guidance, validate_prediction_type
from .schedule import onto_path, path_parameters, path_rates

__all__ = ["ddim_step", "dpm_solver_2s_step", "reverse_diffusion", "reverse_diffusion_steps",
           "DiffusionStep", "network_evaluations", "sampling_times", "SAMPLERS"]

#: Seeds are 31-bit so that every backend's stateless generator accepts them as int32.
MAX_SEED = 2**31 - 1

#: The samplers: "ddim" (the reference's: first order, one network evaluation per step, optional eta)
#: and "dpm++2s" (DPM-Solver++(2S): second order, two evaluations per step, deterministic).
SAMPLERS = ("ddim", "dpm++2s")


def ddim_step(pred_noises: Any, pred_images: Any, noise_rates: Any, signal_rates: Any,
              next_noise_rates: Any, next_signal_rates: Any, eta: float = 0.0,
              fresh_noises: Any = None) -> Any:
    """Remix predicted image and noise at the next step's rates (a pure function).

    ``eta`` scales the *fresh-noise rate*, the standard deviation of the fresh noise:
    ``eta * sqrt((1 - a_next) / (1 - a)) * sqrt(1 - a / a_next)`` with ``a`` the signal
    variance (``signal_rates**2``). The DDIM paper calls it sigma_t (its Eq. 16), the code
    below ``sigmas``; the lessons keep the letter sigma for ``noise_rates / signal_rates``
    (docs/NOTATION.md). The predicted noise keeps the rest of the next noise variance,
    ``next_noise_rates**2 - sigmas**2``, so the result keeps unit variance.
    """
    pred_noises = ops.convert_to_tensor(pred_noises)
    pred_images = ops.convert_to_tensor(pred_images, pred_noises.dtype)
    # Rates may come as NumPy arrays or Python floats: as tensors, the arithmetic below works on
    # every backend (PyTorch refuses ``ndarray * Tensor``).
    noise_rates, signal_rates, next_noise_rates, next_signal_rates = (
        ops.convert_to_tensor(rates, pred_images.dtype)
        for rates in (noise_rates, signal_rates, next_noise_rates, next_signal_rates))
    # fresh_noises is tested first so that a symbolic ``eta`` (compiled code) is never
    # converted to a Python bool.
    if fresh_noises is None and eta == 0.0:
        return next_signal_rates * pred_images + next_noise_rates * pred_noises
    if fresh_noises is None:
        raise ValueError("ddim_step: eta > 0 needs fresh_noises, a standard normal tensor shaped like the images.")
    fresh_noises = ops.convert_to_tensor(fresh_noises)
    signal_variances = signal_rates**2
    next_signal_variances = next_signal_rates**2
    sigmas = eta * ops.sqrt(
        ops.maximum(next_noise_rates**2 / noise_rates**2 * (1.0 - signal_variances / next_signal_variances), 0.0))
    kept_noise_rates = ops.sqrt(ops.maximum(next_noise_rates**2 - sigmas**2, 0.0))
    return next_signal_rates * pred_images + kept_noise_rates * pred_noises + sigmas * fresh_noises


def dpm_solver_2s_step(denoise: Any, noisy_images: Any, pred_noises: Any, pred_images: Any, noise_rates: Any,
                       signal_rates: Any, next_noise_rates: Any, next_signal_rates: Any, path: str = "cosine") -> Any:
    """One second-order step on the probability-flow ODE: DPM-Solver++(2S), in the DDIM parametrisation.

    ``denoise(noisy_images, noise_rates, signal_rates) -> (pred_noises, pred_images)`` calls
    the network (as :func:`predict_components` does); ``pred_noises`` and ``pred_images``
    are its answer for ``noisy_images`` at the current rates, which the caller has already
    computed. The step calls ``denoise`` once more, half-way, and returns the noisy images at
    the next rates. It is a pure function when ``denoise`` is.

    **The ODE view.** Divide a noisy image by its signal rate: ``x = noisy_images / signal_rates``
    is the clean image plus noise of standard deviation ``sigma = noise_rates / signal_rates``.
    Deterministic sampling moves ``x`` along an ordinary differential equation, the
    probability-flow ODE ``dx / dsigma = pred_noises(x, sigma)``, from a large ``sigma`` down
    to a small one (DDIM paper, Eq. 14; Karras et al. 2022, Eq. 4 with ``s = 1``). A DDIM step
    with ``eta = 0`` is one *Euler* step of it: it holds the network's prediction fixed over
    the whole step, so its error shrinks only linearly with the step size (first order). This
    step first takes a DDIM step to the middle, asks the network for the clean image there,
    and then takes the whole step from the start with that midpoint image: a midpoint rule,
    second order, for two network evaluations per step.

    **Which second-order method, and why.** Three choices matter, and each was measured with
    the reference's schedule (``sigma`` is about 50 at t = 1; the first of four steps, to
    t = 0.75, lands near ``sigma = 2.9``), at 9 network evaluations against DDIM at 10:

    * *where the midpoint lies*: half-way in ``lambda = log(signal_rates / noise_rates)``, as
      in DPM-Solver, not half-way in ``sigma`` or ``t``. Heun's method (the average of the
      slopes at both ends of the step; Karras et al. 2022, Alg. 1) weighs the slope found at
      ``sigma = 2.9`` as if it held from 50 down: on Gaussian data, where the exact answer is
      known (tests/test_sampling.py), it came out *worse* than DDIM at 10 evaluations;
    * *what is carried from the midpoint*: the predicted **image** (DPM-Solver++, "data
      prediction"), not the predicted noise (DPM-Solver-2). Carrying the noise makes the
      step divide the difference between two noise predictions by the current signal rate,
      0.02 at the first step: with the trained ``flowers32`` model the noise form landed
      four times farther from the converged images (DDIM with 400 steps) than DDIM at 10,
      and Heun six times; the image form is about half as far as DDIM at 10 (as close as DDIM
      at 20), and on Gaussian data six times closer to the exact answer;
    * *the last step* only reads off the predicted image, as DDIM's does (and as Karras et
      al.'s Alg. 1 ends with an Euler step): ``steps`` steps cost ``2 * steps - 1``
      evaluations (:func:`network_evaluations`).

    References: Lu, Zhou, Bao, Chen, Li, Zhu, "DPM-Solver++: Fast Solver for Guided Sampling
    of Diffusion Probabilistic Models" (2022), https://arxiv.org/abs/2211.01095, Algorithm 1
    (DPM-Solver++(2S) with ``r = 1/2``); the same authors' "DPM-Solver" (NeurIPS 2022),
    https://arxiv.org/abs/2206.00927; Song, Meng, Ermon, "Denoising Diffusion Implicit
    Models" (ICLR 2021), https://arxiv.org/abs/2010.02502; Karras, Aittala, Aila, Laine,
    "Elucidating the Design Space of Diffusion-Based Generative Models" (NeurIPS 2022),
    https://arxiv.org/abs/2206.00364.
    """
    noisy_images = ops.convert_to_tensor(noisy_images)
    dtype = noisy_images.dtype
    noise_rates, signal_rates, next_noise_rates, next_signal_rates = (
        ops.convert_to_tensor(rates, dtype)
        for rates in (noise_rates, signal_rates, next_noise_rates, next_signal_rates))
    # 1. The midpoint in lambda = log(signal_rate / noise_rate) (DPM-Solver++ Alg. 1,
    #    s_i = t_lambda(lambda_{t_{i-1}} + r h_i) with r = 1/2). A mean of logarithms is the log of the
    #    geometric mean: there, signal / noise = sqrt(signal_rates * next_signal_rates) /
    #    sqrt(noise_rates * next_noise_rates).
    mid_signals = ops.sqrt(signal_rates * next_signal_rates)
    mid_noises = ops.sqrt(noise_rates * next_noise_rates)
    # 2. The rates at that point: that ratio, scaled onto the path (signal_rate**2 + noise_rate**2 = 1
    #    on the cosine path, signal_rate + noise_rate = 1 on the linear one).
    mid_noise_rates, mid_signal_rates = onto_path(mid_noises, mid_signals, path)
    # 3. A DDIM step to the midpoint: Alg. 1's u_i = (sigma_{s_i} / sigma_{t_{i-1}}) x_{i-1}
    #    - alpha_{s_i} (e^{-r h_i} - 1) x_theta(x_{i-1}, t_{i-1}), which is DDIM Eq. 12 with sigma_t = 0
    #    (alpha: signal rate, sigma: noise rate, as in the paper).
    mid_noisy_images = ddim_step(pred_noises, pred_images, noise_rates, signal_rates,
                                 mid_noise_rates, mid_signal_rates)
    # 4. The second network evaluation: the clean image predicted at the midpoint, x_theta(u_i, s_i);
    #    with r = 1/2 it is Alg. 1's D_i = (1 - 1/(2r)) x_theta(x_{i-1}, t_{i-1}) + 1/(2r) x_theta(u_i, s_i).
    _, mid_pred_images = denoise(mid_noisy_images, mid_noise_rates, mid_signal_rates)
    mid_pred_images = ops.cast(mid_pred_images, dtype)
    # 5. The noise that this image implies for the *current* noisy images, from
    #    noisy = signal_rate * image + noise_rate * noise.
    mid_pred_noises = (noisy_images - signal_rates * mid_pred_images) / noise_rates
    # 6. The whole step, from the current noisy images with the midpoint image: a DDIM remix at
    #    the next rates, Alg. 1's x_i = (sigma_{t_i} / sigma_{t_{i-1}}) x_{i-1} - alpha_{t_i} (e^{-h_i} - 1) D_i.
    return ddim_step(mid_pred_noises, mid_pred_images, noise_rates, signal_rates,
                     next_noise_rates, next_signal_rates)


def validate_sampler(sampler: Any, eta: Any = 0.0, path: str = "cosine") -> str:
    """Return ``sampler`` if it names a sampler that can run with ``eta`` on ``path``; raise ValueError otherwise."""
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is invalid: choose one of {', '.join(map(repr, SAMPLERS))} "
                         "('ddim': the reference's sampler, one network evaluation per step; 'dpm++2s': "
                         "DPM-Solver++(2S), second order, two per step).")
    if sampler == "dpm++2s" and isinstance(eta, (int, float)) and eta > 0:
        raise ValueError(f"sampler='dpm++2s' with eta={eta!r} is invalid: DPM-Solver++(2S) solves the "
                         "deterministic probability-flow ODE and adds no fresh noise; use eta=0 with 'dpm++2s', "
                         "or sampler='ddim' for stochastic sampling.")
    if path == "linear" and isinstance(eta, (int, float)) and eta > 0:
        raise ValueError(f"eta={eta!r} is invalid on the linear path: the eta family of DDIM (its Eq. 16) "
                         "assumes the cosine path's unit-variance mix; flow matching samples deterministically "
                         "(eta=0: Euler steps on the velocity).")
    return sampler


def network_evaluations(sampler: str, diffusion_steps: int) -> int:
    """How many times ``sampler`` calls the network in ``diffusion_steps`` steps.

    DDIM calls it once per step. DPM-Solver++(2S) calls it twice per step except at the last
    step, which only reads off the predicted image, as DDIM's last step does (Karras et al.
    2022, Alg. 1, also ends with such a first-order step): ``2 * steps - 1``. So DPM-Solver++(2S)
    with 5 steps (9 evaluations) costs about as much as DDIM with 9 or 10.
    """
    validate_sampler(sampler)
    check_positive_int("diffusion_steps", diffusion_steps, advice="use an integer >= 1")
    return diffusion_steps if sampler == "ddim" else 2 * diffusion_steps - 1


def sampling_times(sampler: str, diffusion_steps: int) -> np.ndarray:
    """The diffusion times at which ``sampler`` evaluates the network first in each step.

    DDIM (the reference): ``1, 1 - 1/steps, ..., 1/steps``; the sample is the image predicted
    at the last of them. DPM-Solver++(2S): ``steps`` times evenly spaced from 1 *down to 0
    included* (as Karras et al.'s grids end at their smallest noise level), so that its last
    prediction is made where the schedule ends (``max_signal_rate``). As the steps grow, both
    therefore converge to the same images: the exact solution of the ODE down to ``t = 0``,
    denoised there. (On DDIM's own grid the second-order sampler would aim at a target that
    moves with the number of steps, and would converge only linearly to DDIM's limit.)
    """
    network_evaluations(sampler, diffusion_steps)  # validates both
    if sampler == "ddim" or diffusion_steps == 1:
        return 1.0 - np.arange(diffusion_steps) / diffusion_steps
    return 1.0 - np.arange(diffusion_steps) / (diffusion_steps - 1)


@dataclass
class DiffusionStep:
    """What one sampling step saw and predicted, for plots of the trajectory."""

    step: int
    diffusion_times: Any
    noisy_images: Any
    pred_images: Any
    pred_noises: Any


def validate_sampling_args(initial_noise: Any, diffusion_steps: Any, min_signal_rate: Any,
                           max_signal_rate: Any, eta: Any, network: keras.Model | None = None,
                           sampler: Any = "ddim", path: Any = "cosine") -> Any:
    """Check sampler inputs and return the noise as a float32 tensor; raise ValueError otherwise.

    With ``network`` given, the noise's image size must match the network's input size.
    Noise handed in as host data (a NumPy array, a list) is checked for NaN and Inf here,
    where that costs nothing; a tensor is not read back, since that would copy it from the
    device (and wait for the device) at every call of the sampler.
    """
    check_positive_int("diffusion_steps", diffusion_steps, advice="use an integer >= 1 (the reference samples "
                       "with 20; 5 is enough for a rough preview)")
    check_signal_rates(min_signal_rate, max_signal_rate, owner="reverse_diffusion")
    if not isinstance(eta, (int, float)) or isinstance(eta, bool) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta={eta!r} is invalid: use a number in [0, 1] "
                         "(0: deterministic DDIM, 1: DDPM-like stochastic sampling).")
    check_path(path, owner="reverse_diffusion")
    validate_sampler(sampler, eta, path)
    if initial_noise is None:
        raise ValueError("initial_noise is None: pass a float tensor of shape [num_images, size, size, 3].")
    if not hasattr(initial_noise, "shape"):  # a nested list, say
        try:
            initial_noise = np.asarray(initial_noise, dtype="float32")
        except (TypeError, ValueError) as err:
            raise ValueError("initial_noise could not be read as an array of numbers: pass a float tensor "
                             "of shape [num_images, size, size, 3].") from err
    shape = tuple(initial_noise.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"initial_noise has shape {shape}: it must be [num_images, size, size, 3].")
    if shape[0] == 0:
        raise ValueError("initial_noise holds no images: ask for at least one image.")
    if network is not None:
        expected = tuple(network.inputs[0].shape[1:3])
        if shape[1:3] != expected:
            raise ValueError(f"initial_noise has images of {shape[1]}x{shape[2]} pixels but the network takes "
                             f"{expected[0]}x{expected[1]}: draw the noise with model.initial_noise(num_images).")
    dtype = str(getattr(initial_noise, "dtype", ""))
    if "float" not in dtype:
        raise ValueError(f"initial_noise has dtype {dtype}: it must be a float tensor of standard normal noise.")
    if not ops.is_tensor(initial_noise) and not np.all(np.isfinite(np.asarray(initial_noise))):
        raise ValueError("initial_noise contains NaN or Inf values: pass finite standard normal noise, "
                         "e.g. from model.initial_noise(num_images, seed).")
    # The rates and the network compute in float32; half or double precision noise is converted.
    return ops.cast(ops.convert_to_tensor(initial_noise), "float32")


def validate_seed(seed: Any, name: str = "seed") -> None:
    """Raise ValueError unless ``seed`` is None, a SeedGenerator or an int in [0, 2**31 - 1]."""
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name}={seed!r} is invalid: use None or an integer in [0, {MAX_SEED}].")


def step_noise(shape: tuple, seed: Any, step: Any, dtype: str = "float32") -> Any:
    """Standard normal noise for sampling step ``step``, a pure function of ``(seed, step)``.

    Stochastic (``eta > 0``) sampling draws fresh noise at every step. Drawing it from the
    pair ``(seed, step)`` with each backend's *stateless* generator, instead of from a
    stateful generator, makes the eager loop and the compiled loop of
    :mod:`ddim_tutorial.compiled_sampling` draw exactly the same numbers. ``seed`` and
    ``step`` are Python ints or int32 scalar tensors (inside compiled code).

    The pair is the generator's key as it is, never hashed into one number, so two
    different pairs never share their noise: TensorFlow and JAX key a counter-based
    generator with ``[seed, step]``; PyTorch, whose generators take one seed (32 bits on
    a CPU), draws from NumPy's Philox with key ``seed`` and counter ``step``, the same
    numbers on a CPU and a GPU (on a GPU at the price of one host-to-device copy per step,
    only when ``eta > 0``). Each backend gives other numbers for the same pair
    (docs/DESIGN.md, "Reproducibility").
    """
    backend = keras.backend.backend()
    dtype = keras.backend.standardize_dtype(dtype)
    if backend == "tensorflow":
        import tensorflow as tf  # only reached on the TensorFlow backend

        # Tensors, not Python ints, so that each new step does not trigger a new trace.
        seed, step = tf.cast(seed, "int32"), tf.cast(step, "int32")
        return _xla_stateless_normal()(tuple(shape), seed, step, dtype)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        key = jnp.stack([jnp.asarray(seed, "uint32"), jnp.asarray(step, "uint32")])
        return jax.random.normal(key, shape, dtype=dtype)
    # torch and numpy run this eagerly, so seed and step are plain numbers here. Philox's
    # counter advances in its first word, so step k's draws never reach step k + 1's.
    bits = np.random.Philox(key=int(seed), counter=[0, int(step), 0, 0])
    noise = np.random.Generator(bits).standard_normal(tuple(shape), dtype="float32")
    return ops.cast(ops.convert_to_tensor(noise), dtype)


_XLA_NORMAL = None


def _xla_stateless_normal():
    """TensorFlow's stateless normal, always run through XLA.

    XLA implements the Philox generator differently from TensorFlow's own kernel, so the
    same seed gives different numbers inside and outside ``jit_compile=True``. Running it
    through XLA everywhere keeps eager and compiled sampling identical.
    """
    global _XLA_NORMAL
    if _XLA_NORMAL is None:
        import tensorflow as tf  # only reached on the TensorFlow backend

        @tf.function(jit_compile=True, autograph=False)
        def draw(shape, seed, step, dtype):
            pair = tf.stack([seed, step])
            return tf.random.stateless_normal(shape, seed=pair, dtype=dtype, alg="philox")

        _XLA_NORMAL = draw
    return _XLA_NORMAL


def reverse_diffusion_steps(network: keras.Model, initial_noise: Any, diffusion_steps: int, *,
                            min_signal_rate: float = 0.02, max_signal_rate: float = 0.95,
                            eta: float = 0.0, seed: int | keras.random.SeedGenerator | None = None,
                            sampler: str = "ddim", prediction_type: str = "noise", class_labels: Any = None,
                            guidance_scale: float = 1.0, path: str = "cosine") -> Iterator[DiffusionStep]:
    """Yield every step of reverse diffusion; the last step's ``pred_images`` is the sample.

    ``sampler="ddim"`` is the reference's sampler; ``"dpm++2s"`` takes second-order steps
    (:func:`dpm_solver_2s_step`) at the times of :func:`sampling_times`, and each step it
    yields shows the first of its two network evaluations. With ``eta > 0`` (DDIM only), an int
    ``seed`` draws each step's noise from ``(seed, step)`` (see :func:`step_noise`), a
    ``SeedGenerator`` draws from the generator, and ``None`` draws fresh noise every run.
    ``prediction_type`` is what the network predicts; ``class_labels`` (one, or one per image)
    and ``guidance_scale`` steer a class-conditional network (:func:`network_predictions`).
    ``path`` is the one the network was trained on (``"cosine"``, or ``"linear"`` for flow
    matching, where a DDIM step is an Euler step on the predicted velocity).
    """
    initial_noise = validate_sampling_args(initial_noise, diffusion_steps, min_signal_rate,
                                           max_signal_rate, eta, network=network, sampler=sampler, path=path)
    validate_seed(seed)
    validate_prediction_type(prediction_type)
    check_path_and_prediction(path, prediction_type, owner="reverse_diffusion")
    num_images = initial_noise.shape[0]
    class_labels = validate_guidance(network, class_labels, guidance_scale, num_images)
    if eta > 0 and seed is None:
        seed = keras.random.SeedGenerator(None)
    # DDIM: from t = 1 in steps of 1/steps, the last one at t = 1/steps; DPM-Solver++: down to t = 0.
    step_size = 1.0 / diffusion_steps if sampler == "ddim" else 1.0 / max(diffusion_steps - 1, 1)
    start, span = path_parameters(min_signal_rate, max_signal_rate, path)
    denoise = make_denoiser(lambda inputs: network(inputs, training=False), prediction_type=prediction_type,
                            null_label=null_label_of(network), class_labels=class_labels,
                            guidance_scale=None if guidance_scale == 1 else guidance_scale)

    # At the first step the "noisy image" is pure noise, yet we pretend its signal rate is
    # min_signal_rate (not 0): that is what keeps the division in predict_components finite.
    next_noisy_images = initial_noise
    for step in range(diffusion_steps):
        noisy_images = next_noisy_images
        diffusion_times = ops.ones((num_images, 1, 1, 1), dtype=noisy_images.dtype) - step * step_size
        noise_rates, signal_rates = path_rates(diffusion_times, start, span, path)
        pred_noises, pred_images = denoise(noisy_images, noise_rates, signal_rates)
        yield DiffusionStep(step, diffusion_times, noisy_images, pred_images, pred_noises)
        if step == diffusion_steps - 1:
            return
        next_noise_rates, next_signal_rates = path_rates(diffusion_times - step_size, start, span, path)
        if sampler == "dpm++2s":
            next_noisy_images = dpm_solver_2s_step(denoise, noisy_images, pred_noises, pred_images, noise_rates,
                                                   signal_rates, next_noise_rates, next_signal_rates, path)
            continue
        fresh_noises = None
        if eta > 0 and isinstance(seed, keras.random.SeedGenerator):
            fresh_noises = keras.random.normal(ops.shape(noisy_images), dtype=noisy_images.dtype, seed=seed)
        elif eta > 0:
            fresh_noises = step_noise(tuple(noisy_images.shape), seed, step, dtype=noisy_images.dtype)
        next_noisy_images = ddim_step(pred_noises, pred_images, noise_rates, signal_rates,
                                      next_noise_rates, next_signal_rates, eta, fresh_noises)


def reverse_diffusion(network: keras.Model, initial_noise: Any, diffusion_steps: int, *,
                      min_signal_rate: float = 0.02, max_signal_rate: float = 0.95, eta: float = 0.0,
                      seed: int | keras.random.SeedGenerator | None = None, sampler: str = "ddim",
                      prediction_type: str = "noise", class_labels: Any = None,
                      guidance_scale: float = 1.0, path: str = "cosine") -> Any:
    """Generate images (normalized space) from ``initial_noise`` in ``diffusion_steps`` steps.

    ``sampler``: ``"ddim"`` (the reference; ``diffusion_steps`` network evaluations, ``eta``
    allowed) or ``"dpm++2s"`` (DPM-Solver++(2S): second order, deterministic,
    ``2 * diffusion_steps - 1`` evaluations; see :func:`dpm_solver_2s_step` and :func:`network_evaluations`).
    The other arguments are those of :func:`reverse_diffusion_steps`.
    """
    pred_images = None
    for diffusion_step in reverse_diffusion_steps(network, initial_noise, diffusion_steps,
                                                  min_signal_rate=min_signal_rate,
                                                  max_signal_rate=max_signal_rate, eta=eta, seed=seed,
                                                  sampler=sampler, prediction_type=prediction_type,
                                                  class_labels=class_labels, guidance_scale=guidance_scale,
                                                  path=path):
        pred_images = diffusion_step.pred_images
    return pred_images
