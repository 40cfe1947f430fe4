"""Sampling by reverse diffusion: from pure noise to images, one denoising step at a time.

Each step splits the current noisy image into its predicted image and predicted noise
(using the network), then mixes the two again at the signal and noise rates of the next,
less noisy, diffusion time. With ``eta = 0`` this is the deterministic DDIM sampler of the
reference; ``eta > 0`` replaces part of the predicted noise with fresh random noise
(DDIM paper, Eq. 16), and ``eta = 1`` is DDPM-like ancestral sampling.

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

from .config import _check_signal_rates
from .schedule import diffusion_schedule

__all__ = ["predict_components", "ddim_step", "reverse_diffusion", "reverse_diffusion_steps",
           "DiffusionStep", "validate_sampling_args", "validate_seed", "step_noise"]

#: Seeds are 31-bit so that every backend's stateless generator accepts them as int32.
MAX_SEED = 2**31 - 1


def predict_components(network: keras.Model, noisy_images: Any, noise_rates: Any, signal_rates: Any,
                       training: bool = False) -> tuple[Any, Any]:
    """Split noisy images into ``(pred_noises, pred_images)`` with one network call.

    The network predicts the noise; the image follows from
    ``noisy = signal_rate * image + noise_rate * noise``.
    """
    noisy_images = ops.convert_to_tensor(noisy_images)
    noise_rates = ops.convert_to_tensor(noise_rates, noisy_images.dtype)
    signal_rates = ops.convert_to_tensor(signal_rates, noisy_images.dtype)
    pred_noises = network([noisy_images, noise_rates**2], training=training)
    pred_noises = ops.cast(pred_noises, noisy_images.dtype)
    pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
    return pred_noises, pred_images


def ddim_step(pred_noises: Any, pred_images: Any, noise_rates: Any, signal_rates: Any,
              next_noise_rates: Any, next_signal_rates: Any, eta: float = 0.0,
              fresh_noises: Any = None) -> Any:
    """Remix predicted image and noise at the next step's rates (a pure function).

    ``eta`` scales the standard deviation ``sigma`` of the fresh noise:
    ``sigma = eta * sqrt((1 - a_next) / (1 - a)) * sqrt(1 - a / a_next)`` with ``a`` the
    signal variance (``signal_rates**2``). The predicted noise keeps the rest of the next
    noise variance, ``next_noise_rates**2 - sigma**2``, so the result keeps unit variance.
    """
    pred_noises = ops.convert_to_tensor(pred_noises)
    pred_images = ops.convert_to_tensor(pred_images)
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


@dataclass
class DiffusionStep:
    """What one sampling step saw and predicted, for plots of the trajectory."""

    step: int
    diffusion_times: Any
    noisy_images: Any
    pred_images: Any
    pred_noises: Any


def validate_sampling_args(initial_noise: Any, diffusion_steps: Any, min_signal_rate: Any,
                           max_signal_rate: Any, eta: Any, network: keras.Model | None = None) -> Any:
    """Check sampler inputs and return the noise as a float32 tensor; raise ValueError otherwise.

    With ``network`` given, the noise's image size must match the network's input size.
    Noise handed in as host data (a NumPy array, a list) is checked for NaN and Inf here,
    where that costs nothing; a tensor is not read back, since that would copy it from the
    device (and wait for the device) at every call of the sampler.
    """
    if not isinstance(diffusion_steps, int) or isinstance(diffusion_steps, bool) or diffusion_steps < 1:
        raise ValueError(f"diffusion_steps={diffusion_steps!r} is invalid: use an integer >= 1 "
                         "(the reference samples with 20; 5 is enough for a rough preview).")
    _check_signal_rates(min_signal_rate, max_signal_rate, owner="reverse_diffusion")
    if not isinstance(eta, (int, float)) or isinstance(eta, bool) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta={eta!r} is invalid: use a number in [0, 1] "
                         "(0: deterministic DDIM, 1: DDPM-like stochastic sampling).")
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
                            eta: float = 0.0, seed: int | keras.random.SeedGenerator | None = None
                            ) -> Iterator[DiffusionStep]:
    """Yield every step of reverse diffusion; the last step's ``pred_images`` is the sample.

    With ``eta > 0``, an int ``seed`` draws each step's noise from ``(seed, step)`` (see
    :func:`step_noise`), a ``SeedGenerator`` draws from the generator, and ``None`` draws
    fresh noise every run.
    """
    initial_noise = validate_sampling_args(initial_noise, diffusion_steps, min_signal_rate,
                                           max_signal_rate, eta, network=network)
    validate_seed(seed)
    if eta > 0 and seed is None:
        seed = keras.random.SeedGenerator(None)
    num_images = initial_noise.shape[0]
    step_size = 1.0 / diffusion_steps
    # At the first step the "noisy image" is pure noise, yet we pretend its signal rate is
    # min_signal_rate (not 0): that is what keeps the division in predict_components finite.
    next_noisy_images = initial_noise
    for step in range(diffusion_steps):
        noisy_images = next_noisy_images
        diffusion_times = ops.ones((num_images, 1, 1, 1), dtype=noisy_images.dtype) - step * step_size
        noise_rates, signal_rates = diffusion_schedule(diffusion_times, min_signal_rate, max_signal_rate)
        pred_noises, pred_images = predict_components(network, noisy_images, noise_rates, signal_rates)
        yield DiffusionStep(step, diffusion_times, noisy_images, pred_images, pred_noises)
        if step == diffusion_steps - 1:
            return
        next_noise_rates, next_signal_rates = diffusion_schedule(diffusion_times - step_size,
                                                                 min_signal_rate, max_signal_rate)
        fresh_noises = None
        if eta > 0 and isinstance(seed, keras.random.SeedGenerator):
            fresh_noises = keras.random.normal(ops.shape(noisy_images), dtype=noisy_images.dtype, seed=seed)
        elif eta > 0:
            fresh_noises = step_noise(tuple(noisy_images.shape), seed, step, dtype=noisy_images.dtype)
        next_noisy_images = ddim_step(pred_noises, pred_images, noise_rates, signal_rates,
                                      next_noise_rates, next_signal_rates, eta, fresh_noises)


def reverse_diffusion(network: keras.Model, initial_noise: Any, diffusion_steps: int, *,
                      min_signal_rate: float = 0.02, max_signal_rate: float = 0.95, eta: float = 0.0,
                      seed: int | keras.random.SeedGenerator | None = None) -> Any:
    """Generate images (normalized space) from ``initial_noise`` in ``diffusion_steps`` steps."""
    pred_images = None
    for diffusion_step in reverse_diffusion_steps(network, initial_noise, diffusion_steps,
                                                  min_signal_rate=min_signal_rate,
                                                  max_signal_rate=max_signal_rate, eta=eta, seed=seed):
        pred_images = diffusion_step.pred_images
    return pred_images
