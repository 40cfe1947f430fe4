"""Fast sampling: the whole reverse diffusion compiled into one program.

The reference samples with a Python ``for`` loop that calls the network eagerly at every
step, so each step pays Python and dispatch overhead and the compiler never sees more
than one layer at a time. :class:`CompiledSampler` runs the same arithmetic as
:func:`ddim_tutorial.sampling.reverse_diffusion` (DDIM, or DPM-Solver++(2S) with
``sampler="dpm++2s"``), but as a single compiled loop:

* TensorFlow: a ``tf.function`` around ``keras.ops.fori_loop``, with XLA on a GPU/TPU; on a
  CPU the plain graph was faster (TensorFlow's oneDNN convolutions) and compiles in a
  third of the time, so ``jit_compile="auto"`` leaves XLA off there, as Keras' ``fit`` does;
* JAX: ``jax.jit`` of a pure function that calls the network through Keras' stateless API;
* PyTorch: the loop runs eagerly under ``torch.inference_mode`` (no autograd bookkeeping).
  ``torch.compile`` of the Keras network was measured on a 2-core CPU (torch 2.13): 25 to
  60 s to compile, about 10% faster afterwards, and it fails under ``inference_mode``;
  not worth it for a class (``benchmarks/run.py --torch-compile`` measures it again).

The number of steps, the signal rates, ``eta`` and the seed enter as tensors, so moving
those sliders never re-compiles; a new trace happens only for a new batch size, image
shape or dtype, and once for each sampler (DDIM and DPM-Solver++(2S) are two programs).
A :class:`~ddim_tutorial.model.DiffusionModel` keeps one resident sampler, so the lessons'
explorers (:mod:`ddim_tutorial.widgets`) reuse its compiled programs for every slider move.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np
from keras import ops

from .config import check_path, check_path_and_prediction, check_signal_rates
from .predictions import make_denoiser, null_label_of, validate_guidance, validate_prediction_type
from .sampling import (MAX_SEED, ddim_step, dpm_solver_2s_step, reverse_diffusion_steps, step_noise,
                       validate_sampler, validate_sampling_args, validate_seed)
from .schedule import path_parameters, path_rates

__all__ = ["CompiledSampler", "sampling_loop"]


def sampling_loop(denoise: Any, initial_noise: Any, diffusion_steps: Any, start: Any,
                  span: Any, eta: Any = 0.0, seed: Any = 0, *, stochastic: bool = False,
                  sampler: str = "ddim", path: str = "cosine") -> Any:
    """Reverse diffusion written with ``keras.ops.fori_loop`` so that a compiler sees one loop.

    ``denoise(noisy_images, noise_rates, signal_rates) -> (pred_noises, pred_images)`` calls
    the network (:func:`ddim_tutorial.predictions.make_denoiser`, the eager loop's denoiser
    too). Every other argument may be a tensor: ``diffusion_steps`` (int32), ``start`` and
    ``span`` (the path's :func:`~ddim_tutorial.schedule.path_parameters`: for the cosine
    schedule the angles ``arccos(max_signal_rate)`` and ``arccos(min_signal_rate) -
    arccos(max_signal_rate)``), ``eta`` and ``seed``. ``sampler`` and ``path`` are Python
    strings (each is its own program): ``"ddim"`` or ``"dpm++2s"``, which ignores ``eta`` and
    ``seed``; ``"cosine"`` or ``"linear"``. Returns the predicted images of the last step, in
    normalized space.
    """
    validate_sampler(sampler, path=path)
    if sampler == "dpm++2s":
        return _dpm_solver_2s_loop(denoise, initial_noise, diffusion_steps, start, span, path)
    dtype = initial_noise.dtype
    shape = tuple(initial_noise.shape)
    step_size = 1.0 / ops.cast(diffusion_steps, dtype)
    ones = ops.ones((shape[0], 1, 1, 1), dtype=dtype)
    rates = functools.partial(path_rates, start=start, span=span, path=path)

    def one_step(step, carry):
        noisy_images, _ = carry
        diffusion_times = ones - ops.cast(step, dtype) * step_size
        noise_rates, signal_rates = rates(diffusion_times)
        pred_noises, pred_images = denoise(noisy_images, noise_rates, signal_rates)
        # After the last step this remix is computed but unused, as in the reference.
        next_noise_rates, next_signal_rates = rates(diffusion_times - step_size)
        if stochastic:
            next_noisy_images = ddim_step(pred_noises, pred_images, noise_rates, signal_rates, next_noise_rates,
                                          next_signal_rates, eta, step_noise(shape, seed, step, dtype))
        else:
            next_noisy_images = ddim_step(pred_noises, pred_images, noise_rates, signal_rates,
                                          next_noise_rates, next_signal_rates)
        return next_noisy_images, pred_images

    _, pred_images = ops.fori_loop(0, diffusion_steps, one_step, (initial_noise, initial_noise))
    return pred_images


def _dpm_solver_2s_loop(denoise: Any, initial_noise: Any, diffusion_steps: Any, start: Any,
                       span: Any, path: str) -> Any:
    """DPM-Solver++(2S) as :func:`ddim_tutorial.sampling.reverse_diffusion_steps` runs it:
    ``steps - 1`` second-order steps from t = 1 down to t = 0 inside the loop (two network evaluations
    each), then one evaluation outside it that reads off the predicted image at t = 0."""
    dtype = initial_noise.dtype
    shape = tuple(initial_noise.shape)
    second_order_steps = diffusion_steps - 1
    step_size = 1.0 / ops.cast(ops.maximum(second_order_steps, 1), dtype)
    ones = ops.ones((shape[0], 1, 1, 1), dtype=dtype)
    rates = functools.partial(path_rates, start=start, span=span, path=path)

    def one_step(step, noisy_images):
        diffusion_times = ones - ops.cast(step, dtype) * step_size
        noise_rates, signal_rates = rates(diffusion_times)
        pred_noises, pred_images = denoise(noisy_images, noise_rates, signal_rates)
        next_noise_rates, next_signal_rates = rates(diffusion_times - step_size)
        return dpm_solver_2s_step(denoise, noisy_images, pred_noises, pred_images, noise_rates, signal_rates,
                                 next_noise_rates, next_signal_rates, path)

    noisy_images = ops.fori_loop(0, second_order_steps, one_step, initial_noise)
    last_times = ones - ops.cast(second_order_steps, dtype) * step_size  # t = 0, or t = 1 for a single step
    _, pred_images = denoise(noisy_images, *rates(last_times))
    return pred_images


class CompiledSampler:
    """Sample images with the whole DDIM loop compiled once per batch shape and reused.

    ``model_or_network`` is a :class:`~ddim_tutorial.model.DiffusionModel` (its EMA network
    and normalizer are used, read afresh at every call so training in between is seen) or
    a bare denoising network, optionally with ``normalizer=`` (a Keras ``Normalization``
    layer or a ``(mean, variance)`` pair) for pixel-space output.

    >>> sampler = CompiledSampler(model)
    >>> images = sampler(model.initial_noise(16, seed=0), 20)       # pixels in [0, 1]
    >>> images = sampler(noise, 20, eta=0.5, seed=3)                 # stochastic, reproducible

    ``jit_compile``: TensorFlow only; ``"auto"`` uses XLA when TensorFlow sees a GPU or TPU
    and a plain graph on a CPU (faster there); ``True``/``False`` force it. ``trace_count``
    counts compilations.
    """

    def __init__(self, model_or_network: Any, *, normalizer: Any = None, jit_compile: bool | str = "auto",
                 min_signal_rate: float | None = None, max_signal_rate: float | None = None,
                 prediction_type: str | None = None, path: str | None = None):
        self.model = None
        config = getattr(model_or_network, "config", None)
        if hasattr(model_or_network, "ema_network") and hasattr(model_or_network, "normalizer"):
            self.model = model_or_network
            network = model_or_network.ema_network
            if normalizer is None:
                normalizer = model_or_network.normalizer
        elif isinstance(model_or_network, keras.Model):
            network = model_or_network
            config = None
        else:
            raise ValueError(f"CompiledSampler needs a DiffusionModel or a keras.Model denoising network, "
                             f"got {type(model_or_network).__name__}.")
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile={jit_compile!r} is invalid: use True, False or 'auto'.")
        self.network = network
        self.normalizer = normalizer
        self.min_signal_rate = min_signal_rate if min_signal_rate is not None else (
            config.min_signal_rate if config is not None else 0.02)
        self.max_signal_rate = max_signal_rate if max_signal_rate is not None else (
            config.max_signal_rate if config is not None else 0.95)
        check_signal_rates(self.min_signal_rate, self.max_signal_rate, owner="CompiledSampler")
        # What the network predicts: the model's config says; a bare network predicts the noise
        # (the reference) unless told otherwise.
        if prediction_type is None:
            prediction_type = config.prediction_type if config is not None else "noise"
        self.prediction_type = validate_prediction_type(prediction_type)
        # The path it was trained on: the model's config says; a bare network follows the cosine schedule.
        if path is None:
            path = config.path if config is not None else "cosine"
        self.path = check_path(path, owner="CompiledSampler")
        check_path_and_prediction(self.path, self.prediction_type, owner="CompiledSampler")
        self.null_label = null_label_of(network)
        self.backend = keras.backend.backend()
        self.jit_compile = _resolve_jit_compile(jit_compile) if self.backend == "tensorflow" else bool(jit_compile)
        self.trace_count = 0
        self._compiled: dict[tuple[str, bool], Any] = {}  # one program per sampler, guided or not

    # ---------------------------------------------------------------- public
    @property
    def mode(self) -> str:
        """How the loop runs on this backend, in words."""
        if self.backend == "tensorflow":
            return "tf.function (XLA)" if self.jit_compile else "tf.function (graph)"
        if self.backend == "jax":
            return "jax.jit"
        return "eager, torch.inference_mode" if self.backend == "torch" else "eager"

    def __call__(self, initial_noise: Any, diffusion_steps: int, *, min_signal_rate: float | None = None,
                 max_signal_rate: float | None = None, eta: float = 0.0, seed: int | None = 0,
                 normalized: bool = False, sampler: str = "ddim", class_labels: Any = None,
                 guidance_scale: float = 1.0) -> Any:
        """Images from ``initial_noise`` in ``diffusion_steps`` steps: pixels in [0, 1], or the
        network's normalized space with ``normalized=True``.

        ``seed`` (an int, or None for fresh randomness) only matters when ``eta > 0``.
        ``sampler``: ``"ddim"`` or ``"dpm++2s"`` (see :func:`ddim_tutorial.sampling.dpm_solver_2s_step`).
        ``class_labels`` and ``guidance_scale``: for a class-conditional network (see
        :func:`ddim_tutorial.predictions.network_predictions`); with labels, the program always
        runs the guided pair of network passes, so moving a guidance slider never re-compiles.
        """
        min_signal_rate = self.min_signal_rate if min_signal_rate is None else min_signal_rate
        max_signal_rate = self.max_signal_rate if max_signal_rate is None else max_signal_rate
        initial_noise = validate_sampling_args(initial_noise, diffusion_steps, min_signal_rate,
                                               max_signal_rate, eta, network=self.network, sampler=sampler,
                                               path=self.path)
        if isinstance(seed, keras.random.SeedGenerator):
            raise ValueError("CompiledSampler: seed must be an int or None (a SeedGenerator is stateful "
                             "and cannot be replayed inside the compiled loop); use generate(compiled=False).")
        validate_seed(seed)
        class_labels = validate_guidance(self.network, class_labels, guidance_scale, initial_noise.shape[0])
        if seed is None:
            seed = int(np.random.default_rng().integers(0, MAX_SEED))
        mean, variance = (None, None) if normalized else self._normalizer_stats()
        # The schedule's parameters, in float64 exactly as diffusion_schedule computes them.
        start, span = path_parameters(min_signal_rate, max_signal_rate, self.path)
        arguments = dict(
            initial_noise=ops.cast(initial_noise, "float32"),
            diffusion_steps=np.int32(diffusion_steps),
            start=np.float32(start),
            span=np.float32(span),
            eta=np.float32(eta),
            seed=np.int32(seed),
        )
        guided = class_labels is not None
        if guided:
            arguments.update(class_labels=class_labels, guidance_scale=np.float32(guidance_scale))
        if (sampler, guided) not in self._compiled:
            self._compiled[sampler, guided] = self._build(sampler)
        pred_images = self._compiled[sampler, guided](arguments)
        if normalized:
            return pred_images
        return ops.clip(mean + pred_images * variance**0.5, 0.0, 1.0)

    def trajectory(self, initial_noise: Any, diffusion_steps: int, *, min_signal_rate: float | None = None,
                   max_signal_rate: float | None = None, eta: float = 0.0, seed: int | None = 0,
                   normalized: bool = False, sampler: str = "ddim", class_labels: Any = None,
                   guidance_scale: float = 1.0) -> dict[str, np.ndarray]:
        """Every step's noisy input, predicted image and predicted noise, as NumPy arrays.

        Returns ``{"diffusion_times": [steps], "noisy_images": [steps, B, S, S, 3],
        "pred_images": ..., "pred_noises": ...}``; images are in pixel space unless
        ``normalized=True`` (noises always stay normalized). Runs the eager loop, whose
        steps match the compiled sampler's.
        """
        min_signal_rate = self.min_signal_rate if min_signal_rate is None else min_signal_rate
        max_signal_rate = self.max_signal_rate if max_signal_rate is None else max_signal_rate
        mean, variance = (None, None) if normalized else self._normalizer_stats()

        def to_pixels(images):
            if normalized:
                return keras.ops.convert_to_numpy(images)
            return keras.ops.convert_to_numpy(ops.clip(mean + images * variance**0.5, 0.0, 1.0))

        record: dict[str, list] = {"diffusion_times": [], "noisy_images": [], "pred_images": [], "pred_noises": []}
        with _inference_context():
            for step in reverse_diffusion_steps(self.network, initial_noise, diffusion_steps,
                                                min_signal_rate=min_signal_rate,
                                                max_signal_rate=max_signal_rate, eta=eta, seed=seed,
                                                sampler=sampler, prediction_type=self.prediction_type,
                                                class_labels=class_labels, guidance_scale=guidance_scale,
                                                path=self.path):
                record["diffusion_times"].append(float(keras.ops.convert_to_numpy(step.diffusion_times)[0, 0, 0, 0]))
                record["noisy_images"].append(to_pixels(step.noisy_images))
                record["pred_images"].append(to_pixels(step.pred_images))
                record["pred_noises"].append(keras.ops.convert_to_numpy(step.pred_noises))
        return {name: np.asarray(values, dtype="float32") for name, values in record.items()}

    # --------------------------------------------------------------- helpers
    def _normalizer_stats(self) -> tuple[Any, Any]:
        if self.model is not None:
            self.model._require_adapted()
        normalizer = self.normalizer
        if normalizer is None:
            raise ValueError("This CompiledSampler has no normalizer, so it cannot return pixels: pass "
                             "normalized=True, or build it from a DiffusionModel or with normalizer=.")
        if isinstance(normalizer, (tuple, list)):
            mean, variance = normalizer
        else:
            mean, variance = getattr(normalizer, "mean", None), getattr(normalizer, "variance", None)
            if mean is None:
                raise RuntimeError("The normalizer has no mean and variance yet: call "
                                   "model.adapt_normalizer(train_images) before sampling (or load a checkpoint).")
        mean = ops.reshape(ops.cast(mean, "float32"), (1, 1, 1, -1))
        variance = ops.reshape(ops.cast(variance, "float32"), (1, 1, 1, -1))
        return mean, variance

    def _count_trace(self) -> None:
        self.trace_count += 1  # runs while tracing only, not on cached calls

    def _build(self, sampler: str):
        if self.backend == "tensorflow":
            return self._build_tensorflow(sampler)
        if self.backend == "jax":
            return self._build_jax(sampler)
        return self._build_eager(sampler)

    def _loop(self, call_network, arguments, stochastic: bool = True, sampler: str = "ddim"):
        # One compiled program serves every eta: at eta = 0 the noise term is multiplied by
        # zero, which costs one noise draw per step (negligible next to the network) but
        # saves a second compilation the first time a student moves the eta slider.
        denoise = make_denoiser(call_network, prediction_type=self.prediction_type, null_label=self.null_label,
                                class_labels=arguments.get("class_labels"),
                                guidance_scale=arguments.get("guidance_scale"))
        return sampling_loop(denoise, arguments["initial_noise"], arguments["diffusion_steps"],
                             arguments["start"], arguments["span"], arguments["eta"],
                             arguments["seed"], stochastic=stochastic, sampler=sampler, path=self.path)

    def _build_tensorflow(self, sampler: str):
        import tensorflow as tf  # only reached on the TensorFlow backend

        network = self.network

        def call_network(inputs):
            return network(inputs, training=False)

        def loop(arguments):
            self._count_trace()
            return self._loop(call_network, arguments, sampler=sampler)

        # TensorFlow counts traces per code object, so the single trace of every sampler (one per
        # model and sampler) would add up to a false "frequent retracing" warning; a partial has
        # no code object, so each compiled loop is counted on its own.
        run = tf.function(functools.partial(loop), jit_compile=self.jit_compile, autograph=False)

        def call(arguments):
            return run({name: tf.convert_to_tensor(value) for name, value in arguments.items()})

        return call

    def _build_jax(self, sampler: str):
        import jax

        network = self.network

        def pure(trainable, non_trainable, arguments):
            self._count_trace()

            def call_network(inputs):
                outputs, _ = network.stateless_call(trainable, non_trainable, inputs, training=False)
                return outputs

            return self._loop(call_network, arguments, sampler=sampler)

        run = jax.jit(pure)

        def call(arguments):
            # The weights are arguments, not constants baked into the program: training
            # between two calls is seen without re-compiling.
            trainable = [variable.value for variable in network.trainable_variables]
            non_trainable = [variable.value for variable in network.non_trainable_variables]
            arguments = {name: jax.numpy.asarray(value) for name, value in arguments.items()}
            return run(trainable, non_trainable, arguments)

        return call

    def _build_eager(self, sampler: str):
        network = self.network

        def call_network(inputs):
            return network(inputs, training=False)

        def call(arguments):
            arguments = dict(arguments)
            arguments["diffusion_steps"] = int(arguments["diffusion_steps"])  # a Python loop bound
            arguments["seed"] = int(arguments["seed"])
            arguments["eta"] = float(arguments["eta"])
            for name in ("start", "span"):
                arguments[name] = ops.convert_to_tensor(arguments[name], "float32")
            with _inference_context():  # nothing is compiled here, so eta = 0 skips the noise
                return self._loop(call_network, arguments, stochastic=arguments["eta"] > 0, sampler=sampler)

        return call


def _resolve_jit_compile(jit_compile: bool | str) -> bool:
    if jit_compile != "auto":
        return bool(jit_compile)
    import tensorflow as tf  # only reached on the TensorFlow backend

    return any(device.device_type in ("GPU", "TPU") for device in tf.config.list_physical_devices())


class _inference_context:
    """``torch.inference_mode`` on PyTorch (no autograd bookkeeping); nothing elsewhere."""

    def __enter__(self):
        self._context = None
        if keras.backend.backend() == "torch":
            import torch

            self._context = torch.inference_mode()
            self._context.__enter__()

    def __exit__(self, *exc):
        if self._context is not None:
            self._context.__exit__(*exc)
