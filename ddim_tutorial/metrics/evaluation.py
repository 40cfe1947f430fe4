"""How well a trained model denoises: its noise and image errors, with noise drawn by NumPy.

The noise comes from NumPy, not Keras, so every figure here is the same on every backend (up
to float rounding): a model card can quote it and a test can recompute it. Lesson 4 splits the
errors by diffusion time; the bundled models' cards quote :func:`validation_noise_loss`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from keras import ops

__all__ = ["errors_by_time", "validation_noise_loss"]


def _check_images(images: Any) -> np.ndarray:
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"images of shape {images.shape} are invalid: pass an array [N, S, S, 3] in [0, 1].")
    return images


def _errors(model: Any, images: np.ndarray, noises: np.ndarray, times: np.ndarray) -> tuple[float, float]:
    """Mean absolute (noise, image) errors of the EMA network on one batch at ``times``."""
    normalized = model.normalize(images)
    noise_rates, signal_rates = model.diffusion_schedule(times)
    noisy = signal_rates * normalized + noise_rates * noises
    pred_noises, pred_images = model.denoise(noisy, noise_rates, signal_rates, training=False)
    noise_error = ops.convert_to_numpy(ops.mean(ops.abs(pred_noises - noises)))
    image_error = ops.convert_to_numpy(ops.mean(ops.abs(pred_images - normalized)))
    return float(noise_error), float(image_error)


def errors_by_time(model: Any, images: Any, diffusion_times: Sequence[float], *,
                   seed: int = 0) -> tuple[list[float], list[float]]:
    """``(noise_errors, image_errors)``: the EMA network's mean absolute errors at each time.

    Every time noises the same ``images`` with the same noise, so the curves differ only in
    the noise level. Image errors are measured in the network's normalized space.
    """
    images = _check_images(images)
    noises = np.random.default_rng(seed).standard_normal(images.shape).astype("float32")
    noise_errors, image_errors = [], []
    for time in diffusion_times:
        times = np.full((len(images), 1, 1, 1), time, dtype="float32")
        noise_error, image_error = _errors(model, images, noises, times)
        noise_errors.append(noise_error)
        image_errors.append(image_error)
    return noise_errors, image_errors


def validation_noise_loss(model: Any, images: Any, *, seed: int = 0, repetitions: int = 2,
                          batch_size: int = 60) -> float:
    """The EMA network's mean absolute noise error on ``images``, at NumPy-drawn random times.

    An untrained network scores about 0.8; the training log's ``val_n_loss`` is the same
    quantity with Keras' own (backend-dependent) random draws.
    """
    images = _check_images(images)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(repetitions):
        noises = rng.standard_normal(images.shape).astype("float32")
        times = rng.uniform(size=(len(images), 1, 1, 1)).astype("float32")
        for start in range(0, len(images), batch_size):
            batch = slice(start, start + batch_size)
            noise_error, _ = _errors(model, images[batch], noises[batch], times[batch])
            total += noise_error * len(images[batch])
    return total / (repetitions * len(images))
