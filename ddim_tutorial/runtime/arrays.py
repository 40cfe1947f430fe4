"""Tensors to NumPy, batches from any data source, and a temporary dtype policy.

Keras is imported inside the helpers that need it, so that ``runtime.distribution`` can use this
module before Keras starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np


def to_numpy(value: Any, dtype: Any = None) -> np.ndarray:
    """A NumPy array of an array, a list or a tensor of any backend (on any device, any dtype)."""
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)  # NumPy, lists, TensorFlow eager, JAX, CPU PyTorch
        except (TypeError, ValueError, RuntimeError):  # PyTorch on a GPU or in bfloat16
            import keras

            value = np.asarray(keras.ops.convert_to_numpy(value))
    return value if dtype is None else value.astype(dtype, copy=False)


def iterate_batches(data: Any) -> Iterator[Any]:
    """The batches of a ``tf.data.Dataset`` (as NumPy), a ``keras.utils.PyDataset`` or any iterable."""
    import keras

    if hasattr(data, "as_numpy_iterator"):
        yield from data.as_numpy_iterator()
    elif isinstance(data, keras.utils.PyDataset):
        for index in range(len(data)):
            yield data[index]
    else:
        yield from data


@contextlib.contextmanager
def dtype_policy(policy: str | None) -> Iterator[None]:
    """Build layers under the global dtype ``policy`` (None: leave it), then restore the previous one.

    ``dtype_policy("float32")`` keeps a layer in float32 under mixed precision.
    """
    import keras

    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def images_and_labels(batch: Any) -> tuple[Any, Any]:
    """``(images, class_labels)`` of a batch: images, ``{"images", "class_labels"}`` or ``(images, labels)``
    (class_labels None unless the batch is a dict that has them)."""
    if isinstance(batch, dict):
        return batch["images"], batch.get("class_labels")
    return (batch[0] if isinstance(batch, (tuple, list)) else batch), None


def image_batches(data: Any, max_batches: int | None = None) -> Iterator[np.ndarray]:
    """NumPy image batches from an array or tensor, or from any data source's (labelled) batches."""
    import itertools

    import keras

    if isinstance(data, np.ndarray) or keras.ops.is_tensor(data):
        yield to_numpy(data)
        return
    for batch in itertools.islice(iterate_batches(data), max_batches):
        yield to_numpy(images_and_labels(batch)[0])
