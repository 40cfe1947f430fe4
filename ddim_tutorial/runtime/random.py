"""Random numbers that every backend draws alike, eager or compiled: the noise of each sampling step.

Keras' ``SeedGenerator`` is stateful, so a compiled loop cannot replay it; the step noise of
stochastic sampling is therefore a pure function of ``(seed, step)``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ddim_tutorial.checks import MAX_SEED

__all__ = ["step_noise", "step_seed"]


def step_seed(seed: int | None) -> int | None:
    """The seed of the step noise of ``generate(seed=seed)``: not the initial noise's own seed, so that
    the two draws differ (``seed + 1``, wrapped into the 31 bits every backend accepts)."""
    return None if seed is None else (seed + 1) % (MAX_SEED + 1)


def step_noise(shape: tuple, seed: Any, step: Any, dtype: str = "float32") -> Any:
    """Standard normal noise for sampling step ``step``, a pure function of ``(seed, step)``.

    Stochastic (``eta > 0``) sampling draws fresh noise at every step. Drawing it from the
    pair ``(seed, step)`` with each backend's *stateless* generator, instead of from a
    stateful generator, makes the eager loop and the compiled loop of
    :mod:`ddim_tutorial.runtime.compiled_sampling` draw exactly the same numbers. ``seed`` and
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
