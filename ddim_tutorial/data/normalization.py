"""The per-channel normalization of training images: a Keras ``Normalization`` layer that knows
whether it has seen the data, adapts from any data source, and maps back to pixels.

The network works in a zero-mean, unit-variance space per channel, like the noise it mixes with.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from ddim_tutorial.runtime.arrays import image_batches, to_numpy

__all__ = ["ImageNormalizer"]


@keras.saving.register_keras_serializable(package="ddim_tutorial")
class ImageNormalizer(layers.Normalization):
    """``layers.Normalization`` over the last axis of RGB images, with the statistics of the data."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("axis", -1)
        super().__init__(**kwargs)
        self._adapted = False

    @property
    def is_adapted(self) -> bool:
        """Whether the layer holds the data's statistics (adapted, or loaded from a checkpoint).

        Keras finalizes a fresh Normalization layer to mean 0 and variance 1, which no image data in
        [0, 1] has (its variance is at most 0.25), so those values mean "never adapted". Inside a
        traced TensorFlow or JAX step the values cannot be read, so the answer there is True: the
        model's ``fit``, ``evaluate`` and ``predict`` check eagerly, before the first step.
        """
        if self._adapted:
            return True
        if self.mean is None:
            return False
        try:
            mean, variance = (np.asarray(ops.convert_to_numpy(v)) for v in (self.adapt_mean, self.adapt_variance))
        except Exception:  # symbolic values while Keras traces a step: the entry points checked already
            return True
        self._adapted = not (np.all(mean == 0.0) and np.all(variance == 1.0))
        return self._adapted

    def check_adapted(self) -> None:
        """Raise a RuntimeError that says what to do unless the statistics are set."""
        if not self.is_adapted:
            raise RuntimeError("The normalizer has no mean and variance yet: call "
                               "model.adapt_normalizer(train_images) before training or sampling "
                               "(or load a checkpoint).")

    def adapt_images(self, data: Any, max_batches: int | None = None) -> None:
        """Per-channel mean and variance of every image batch ``data`` yields, in float64 (a dataset
        repeated ``k`` times is read ``k`` times, as the reference's ``normalizer.adapt`` does)."""
        count, total, total_squares = 0, np.zeros(3), np.zeros(3)
        for batch in image_batches(data, max_batches):
            batch = np.asarray(batch, dtype="float64").reshape(-1, batch.shape[-1])
            if batch.shape[-1] != 3:
                raise ValueError(f"adapt_normalizer: images have {batch.shape[-1]} channels; RGB images need 3.")
            count += batch.shape[0]
            total += batch.sum(axis=0)
            total_squares += (batch**2).sum(axis=0)
        if count == 0:
            raise ValueError("adapt_normalizer: the data holds no images; check the dataset or folder.")
        mean = total / count
        if not np.all(np.isfinite(mean)):
            raise ValueError("adapt_normalizer: the images contain NaN or Inf values.")
        self.set_statistics(mean, np.maximum(total_squares / count - mean**2, 1e-8))

    def set_statistics(self, mean: Any, variance: Any) -> None:
        """Use these per-channel pixel statistics (adapted here, or a trained model's)."""
        self.adapt_mean.assign(to_numpy(mean, "float32"))
        self.adapt_variance.assign(to_numpy(variance, "float32"))
        self.finalize_state()
        self._adapted = True

    def denormalize(self, images: Any) -> Any:
        """Normalized images back to pixels, clipped to [0, 1]."""
        self.check_adapted()
        return ops.clip(self.mean + images * self.variance**0.5, 0.0, 1.0)
