"""Compiling a sampling loop into one program, per backend.

The reference samples with a Python ``for`` loop that calls the network eagerly at every step, so
each step pays Python and dispatch overhead and the compiler never sees more than one layer at a
time. :func:`compile_program` runs the whole loop as one program instead:

* TensorFlow: a ``tf.function`` (around ``keras.ops.fori_loop``), with XLA where TensorFlow sees a
  GPU or TPU; on a CPU the plain graph is faster and compiles sooner (benchmarks/README.md);
* JAX: ``jax.jit`` of a pure function that calls the network through Keras' stateless API, with
  the weights as arguments, so that training in between is seen without re-compiling;
* PyTorch: the loop runs eagerly under ``torch.inference_mode`` (``torch.compile`` of a Keras
  network cost 25-60 s to compile for about 10 % on a 2-core CPU; benchmarks/README.md).

The loop itself, and what the arguments mean, belong to :mod:`ddim_tutorial.core.sampling`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from ddim_tutorial.runtime.backends import accelerator_available, inference_mode

__all__ = ["compile_program", "resolve_jit_compile", "program_mode"]


def resolve_jit_compile(jit_compile: bool | str) -> bool:
    """``"auto"``: XLA where TensorFlow or JAX sees a GPU or TPU; ``True`` or ``False`` as given."""
    return accelerator_available() if jit_compile == "auto" else bool(jit_compile)


def program_mode(jit_compile: bool) -> str:
    """How :func:`compile_program` runs a loop on this backend, in words."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return "tf.function (XLA)" if jit_compile else "tf.function (graph)"
    return {"jax": "jax.jit", "torch": "eager, torch.inference_mode"}.get(backend, "eager")


def compile_program(network: keras.Model, program: Callable, *, jit_compile: bool,
                    on_trace: Callable[[], None] = lambda: None) -> Callable[[dict], Any]:
    """``run(arguments)``: ``program(call_network, arguments, stochastic)`` compiled once for ``network``.

    ``arguments`` is a dict of NumPy scalars and arrays (they enter as tensors, so new values never
    re-compile); ``stochastic`` tells the program whether to draw step noise: always in a compiled
    program (one program serves every ``eta``), only for ``eta > 0`` when the loop runs eagerly.
    ``on_trace`` is called each time the program is traced.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # only reached on the TensorFlow backend

        def traced(arguments):
            on_trace()
            return program(lambda inputs: network(inputs, training=False), arguments, True)

        # TensorFlow counts traces per code object; a partial has none, so each model's single
        # trace is not mistaken for "frequent retracing".
        run = tf.function(functools.partial(traced), jit_compile=jit_compile, autograph=False)
        return lambda arguments: run({name: tf.convert_to_tensor(value) for name, value in arguments.items()})
    if backend == "jax":
        import jax

        def pure(trainable, non_trainable, arguments):
            on_trace()

            def call_network(inputs):
                return network.stateless_call(trainable, non_trainable, inputs, training=False)[0]

            return program(call_network, arguments, True)

        run = jax.jit(pure)
        return lambda arguments: run([v.value for v in network.trainable_variables],
                                     [v.value for v in network.non_trainable_variables],
                                     {name: jax.numpy.asarray(value) for name, value in arguments.items()})

    def eager(arguments):
        arguments = {name: value if name in ("diffusion_steps", "seed") else ops.convert_to_tensor(value)
                     for name, value in arguments.items()}
        arguments["diffusion_steps"] = int(arguments["diffusion_steps"])  # a Python loop bound
        arguments["seed"] = int(arguments["seed"])
        with inference_mode():
            return program(lambda inputs: network(inputs, training=False), arguments, float(arguments["eta"]) > 0)

    return eager
