"""Small helpers that several modules share, written once: argument checks, tensors to NumPy,
batches from any data source, and a temporary dtype policy for building layers.

Keras is imported inside the helpers that need it, so that ``distribution`` can use this
module before Keras starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np


def is_positive_int(value: Any, minimum: int = 1) -> bool:
    """Whether ``value`` is an ``int`` (not a bool) of at least ``minimum``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def check_positive_int(name: str, value: Any, minimum: int = 1, *, advice: str | None = None) -> None:
    """Raise ``ValueError("name=value is invalid: ...")`` unless ``value`` is an integer >= ``minimum``.

    ``advice`` replaces the default end of the sentence where the caller knows better.
    """
    if not is_positive_int(value, minimum):
        default = "use a positive integer" if minimum == 1 else f"use an integer >= {minimum}"
        raise ValueError(f"{name}={value!r} is invalid: {advice or default}.")


def check_generative_model(model: Any) -> None:
    """Raise unless ``model`` can sample like a ``DiffusionModel`` (a ``config`` and ``generate``)."""
    if getattr(model, "config", None) is None or not callable(getattr(model, "generate", None)):
        raise ValueError(f"model of type {type(model).__name__} is invalid: pass a trained DiffusionModel "
                         "(something with .config and .generate(...), e.g. lesson.get_trained_model()).")


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
