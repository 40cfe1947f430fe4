"""Compiling a sampling loop into one program, per backend.

The reference samples with a Python ``for`` loop that calls the network eagerly at every step, so
each step pays Python and dispatch overhead and the compiler never sees more than one layer at a
time. :func:`compile_program` runs the whole loop as one program instead:

* TensorFlow: a ``tf.function`` (around ``keras.ops.fori_loop``), with XLA where TensorFlow sees a
  GPU or TPU; on a CPU the plain graph runs faster and compiles sooner (benchmarks/README.md);
* JAX: ``jax.jit`` of a pure function that calls the network through Keras' stateless API, with
  the weights as arguments, so that training in between is seen without re-compiling;
* PyTorch: the loop runs eagerly under ``torch.inference_mode``: ``torch.compile`` of a Keras
  network takes long to compile for little gain on a CPU (``benchmarks/run.py --torch-compile``).

The loop itself, and what the arguments mean, belong to the core: :class:`CompiledSampler` compiles
``DiffusionModel.sampling_program`` (:func:`ddim_tutorial.core.sampling.sample` with the model's
denoiser), whichever backend runs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from ddim_tutorial.checks import MAX_SEED, check_guidance, check_sampling_args
from ddim_tutorial.runtime.backends import accelerator_available, inference_mode

__all__ = ["CompiledSampler", "compile_program", "resolve_jit_compile", "program_mode"]


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


class CompiledSampler:
    """A model's sampler with the whole loop compiled once per sampler and batch shape.

    >>> images = model.sampler(model.initial_noise(16, seed=0), 20)    # pixels in [0, 1]
    >>> images = model.sampler(noise, 20, eta=0.5, seed=3)              # stochastic, reproducible

    ``model`` is a :class:`~ddim_tutorial.core.model.DiffusionModel`: its ``sampling_program`` is the
    loop this class compiles (:func:`compile_program`), its EMA network and normalizer are read at
    every call, so training in between is seen. Steps, signal rates, eta, seed and guidance scale
    enter as tensors, so moving a slider never re-compiles. ``jit_compile``: ``"auto"`` (XLA where
    TensorFlow sees a GPU or TPU), True or False; ``trace_count`` counts compilations.
    """

    def __init__(self, model: Any, *, jit_compile: bool | str = "auto"):
        if not callable(getattr(model, "sampling_program", None)):
            raise ValueError(f"CompiledSampler needs a DiffusionModel, got {type(model).__name__}.")
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile={jit_compile!r} is invalid: use True, False or 'auto'.")
        self.model, self.config = model, model.config
        self.jit_compile = resolve_jit_compile(jit_compile)
        self.mode = program_mode(self.jit_compile)
        self.trace_count = 0
        self._programs: dict[tuple[str, bool], Any] = {}  # one program per sampler, guided or not

    def __call__(self, initial_noise: Any, diffusion_steps: int, *, min_signal_rate: float | None = None,
                 max_signal_rate: float | None = None, eta: float = 0.0, seed: int | None = 0,
                 normalized: bool = False, sampler: str = "ddim", class_labels: Any = None,
                 guidance_scale: float = 1.0) -> Any:
        """Images from ``initial_noise`` in ``diffusion_steps`` steps: pixels in [0, 1], or the network's
        normalized space with ``normalized=True``. ``seed`` (an int, or None for fresh randomness)
        matters only when ``eta > 0``; the other arguments are those of ``reverse_diffusion_steps``."""
        config = self.config
        min_signal_rate = config.min_signal_rate if min_signal_rate is None else min_signal_rate
        max_signal_rate = config.max_signal_rate if max_signal_rate is None else max_signal_rate
        if type(seed).__name__ == "SeedGenerator":
            raise ValueError("CompiledSampler: seed must be an int or None (a SeedGenerator is stateful "
                             "and cannot be replayed inside the compiled loop); use generate(compiled=False).")
        initial_noise = check_sampling_args(initial_noise, diffusion_steps, min_signal_rate, max_signal_rate, eta,
                                            image_size=config.image_size, sampler=sampler, path=config.path,
                                            seed=seed, owner="CompiledSampler")
        class_labels = check_guidance(config.num_classes, class_labels, guidance_scale, initial_noise.shape[0])
        if not normalized:
            self.model._require_adapted()
        arguments = dict(initial_noise=initial_noise, diffusion_steps=np.int32(diffusion_steps),
                         min_signal_rate=np.float32(min_signal_rate), max_signal_rate=np.float32(max_signal_rate),
                         eta=np.float32(eta),
                         seed=np.int32(np.random.default_rng().integers(0, MAX_SEED) if seed is None else seed))
        guided = class_labels is not None
        if guided:
            arguments.update(class_labels=class_labels, guidance_scale=np.float32(guidance_scale))
        if (sampler, guided) not in self._programs:
            self._programs[sampler, guided] = compile_program(
                self.model.ema_network, functools.partial(self.model.sampling_program, sampler=sampler),
                jit_compile=self.jit_compile, on_trace=self._count_trace)
        pred_images = self._programs[sampler, guided](arguments)
        return pred_images if normalized else self.model.denormalize(pred_images)

    def _count_trace(self) -> None:
        self.trace_count += 1  # runs while tracing only, not on cached calls
