"""The diffusion model: normalization, the denoising network, its EMA twin, training and sampling.

Training goes through Keras' own ``fit`` on every backend: ``call`` noises the images at random
times and predicts the noise, ``compute_loss`` scores the prediction, and ``train_step`` adds the
exponential moving average (EMA) of the weights. ``generate`` samples with the EMA network, by the
compiled loop (:class:`~ddim_tutorial.runtime.compiled_sampling.CompiledSampler`) unless ``compiled=False``.
Backend details (the JAX EMA state, XLA choices, per-replica random draws) live in ``runtime/``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
from keras import ops

from ddim_tutorial.checks import check_loss, check_positive_int, check_sampler, check_seed
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.network import build_network
from ddim_tutorial.core.predictions import make_denoiser, prediction_targets
from ddim_tutorial.core.sampling import reverse_diffusion, sample
from ddim_tutorial.core.schedule import diffusion_schedule, path_parameters
from ddim_tutorial.data.normalization import ImageNormalizer
from ddim_tutorial.runtime import distribution
from ddim_tutorial.runtime.arrays import dtype_policy, images_and_labels
from ddim_tutorial.runtime.backends import compile_options
from ddim_tutorial.runtime.compiled_sampling import CompiledSampler
from ddim_tutorial.runtime.distribution import replica_draw, scale_loss_for_replicas
from ddim_tutorial.runtime.ema import update_ema, update_ema_in_jax_state
from ddim_tutorial.runtime.random import step_noise, step_seed

__all__ = ["DiffusionModel"]

_PIXEL_LOSSES = {"mae": keras.losses.mean_absolute_error, "mse": keras.losses.mean_squared_error}


def _checked(name: str):
    """Keras' entry point ``name`` (``fit``, ``predict``...), after the model's eager normalizer check."""
    def entry_point(self, *args, **kwargs):
        self._require_adapted()
        return getattr(super(DiffusionModel, self), name)(*args, **kwargs)

    entry_point.__name__, entry_point.__qualname__ = name, f"DiffusionModel.{name}"  # Keras' docstring via help()
    return entry_point


@keras.saving.register_keras_serializable(package="ddim_tutorial")
class DiffusionModel(keras.Model):
    """A denoising diffusion implicit model (DDIM) for square RGB images.

    >>> model = DiffusionModel(DDIMConfig.preset("smoke"))
    >>> model.adapt_normalizer(train_images)          # mean and variance of the data
    >>> model.compile()                               # AdamW + MAE, as the reference
    >>> model.fit(train_dataset, epochs=2)
    >>> images = model.generate(num_images=8, diffusion_steps=20, seed=0)
    """

    def __init__(self, config: DDIMConfig | None = None, **kwargs):
        config = config or DDIMConfig()
        if isinstance(config, dict):  # from get_config()
            config = DDIMConfig.from_dict(config)
        if not isinstance(config, DDIMConfig):
            raise ValueError(f"DiffusionModel needs a DDIMConfig, got {type(config).__name__}; "
                             "try DDIMConfig.preset('smoke').")
        if config.mixed_precision and "dtype" not in kwargs:
            kwargs["dtype"] = config.mixed_precision
        # After configure_devices(n > 1) on TensorFlow, every variable must be created inside
        # the strategy's scope (mirrored on each device); elsewhere this is a no-op.
        setup = distribution.current_setup()
        with setup.scope() if setup is not None else contextlib.nullcontext():
            self._build(config, setup, **kwargs)

    def _build(self, config: DDIMConfig, setup: distribution.DeviceSetup | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        self._device_setup = setup
        # Images are normalized to zero mean and unit variance per channel, like the noise.
        self.normalizer = ImageNormalizer(dtype="float32", name="normalizer")
        self.normalizer.build((None, config.image_size, config.image_size, 3))
        with dtype_policy(config.mixed_precision):
            self.network = build_network(config)
            self.ema_network = keras.models.clone_model(self.network)
        self.ema_network.name = "ema_residual_unet"
        self.ema_network.set_weights(self.network.get_weights())
        self.ema_network.trainable = False  # updated by averaging, never by gradients
        self.seed_generator = keras.random.SeedGenerator(config.seed, name="diffusion_seed")
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
        self.image_loss_tracker = keras.metrics.Mean(name="i_loss")
        # The loss that trains, when it is not the noise loss (image or velocity prediction).
        self.target_loss_tracker = (keras.metrics.Mean(name="loss") if config.prediction_type != "noise" else None)
        self.kid = None
        if config.validation_kid:
            from ddim_tutorial.metrics.kid import KID  # imported here: InceptionV3 is only built when KID is wanted

            self.kid = KID(name="kid", image_size=config.image_size, kid_image_size=config.kid_image_size,
                           weights=config.kid_weights)
        self.pixel_loss = _PIXEL_LOSSES[config.loss]
        self._sampler = None
        distribution.synchronize_batch_statistics(self.network, setup)
        self.built = True  # every sublayer is built above; weights can be loaded right away

    # ------------------------------------------------------------- serialization
    def get_config(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DiffusionModel":
        return cls(DDIMConfig.from_dict(config["config"]), name=config.get("name"))

    # ------------------------------------------------------------------ pieces
    @property
    def metrics(self) -> list:
        return [metric for metric in (self.noise_loss_tracker, self.image_loss_tracker, self.target_loss_tracker,
                                      self.kid) if metric is not None]

    @property
    def is_adapted(self) -> bool:
        """Whether the normalizer holds the data's statistics (adapted, or loaded from a checkpoint)."""
        return self.normalizer.is_adapted

    def adapt_normalizer(self, data: Any, max_batches: int | None = None) -> None:
        """Set the normalizer's per-channel mean and variance from training images in [0, 1]: an array,
        a ``tf.data.Dataset`` or any iterable of image batches; ``max_batches`` limits the reading."""
        self.normalizer.adapt_images(data, max_batches)

    def set_normalizer(self, mean: Any, variance: Any) -> None:
        """Use these per-channel pixel statistics (a trained model's)."""
        self.normalizer.set_statistics(mean, variance)

    def _require_adapted(self) -> None:
        self.normalizer.check_adapted()

    # Keras' entry points, checked eagerly: inside a traced step ``is_adapted`` cannot tell,
    # and training on unnormalized pixels would fail only at the first sample grid or save.
    fit, evaluate, predict, train_on_batch, test_on_batch, predict_on_batch = map(_checked, (
        "fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch"))

    def normalize(self, images: Any) -> Any:
        """Pixels in [0, 1] to the zero-mean, unit-variance space of the network."""
        self._require_adapted()
        return self.normalizer(images)

    def denormalize(self, images: Any) -> Any:
        """Normalized images back to pixels, clipped to [0, 1]."""
        return self.normalizer.denormalize(images)

    def diffusion_schedule(self, diffusion_times: Any) -> tuple[Any, Any]:
        return diffusion_schedule(diffusion_times, self.config.min_signal_rate, self.config.max_signal_rate,
                                  self.config.path)

    def denoise(self, noisy_images: Any, noise_rates: Any, signal_rates: Any, training: bool,
                class_labels: Any = None) -> tuple[Any, Any]:
        """Predict ``(pred_noises, pred_images)``; evaluation uses the smoother EMA network."""
        network = self.network if training else self.ema_network
        denoise = make_denoiser(lambda inputs: network(inputs, training=training), class_labels=class_labels,
                                prediction_type=self.config.prediction_type, null_label=self.config.num_classes or None)
        return denoise(noisy_images, noise_rates, signal_rates)

    # --------------------------------------------------------------- training
    def call(self, images: Any, training: bool = False) -> dict[str, Any]:
        """The training forward pass: noise the images at random times and predict the noise.

        A class-conditional model takes ``{"images": ..., "class_labels": ...}`` batches
        (``load_dataset(..., labels=True)``)."""
        images, class_labels = images_and_labels(images)
        images = self.normalize(ops.cast(images, "float32"))
        shape = tuple(images.shape) if None not in images.shape else ops.shape(images)
        if self.config.num_classes:
            class_labels = self._training_labels(class_labels, shape, training)
        noises = self._draw(keras.random.normal, shape)
        diffusion_times = self._draw(keras.random.uniform, (shape[0], 1, 1, 1))
        noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
        noisy_images = signal_rates * images + noise_rates * noises
        pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=training,
                                                class_labels=class_labels)
        prediction_type = self.config.prediction_type
        return {"images": images, "noises": noises, "pred_noises": pred_noises, "pred_images": pred_images,
                "targets": prediction_targets(images, noises, noise_rates, signal_rates, prediction_type),
                "pred_targets": prediction_targets(pred_images, pred_noises, noise_rates, signal_rates,
                                                   prediction_type)}

    def _training_labels(self, class_labels: Any, shape: tuple, training: bool) -> Any:
        """The batch's labels as int32, each dropped to "no label" with probability label_dropout
        in training (classifier-free guidance, Ho and Salimans 2022, Alg. 1)."""
        if class_labels is None:
            raise ValueError(f"This model is class-conditional (DDIMConfig.num_classes={self.config.num_classes}) "
                             "but the batch has no labels: load the data with load_dataset(..., labels=True), "
                             "whose batches are {'images': ..., 'class_labels': ...}.")
        class_labels = ops.reshape(ops.cast(class_labels, "int32"), (-1,))
        if not training or self.config.label_dropout == 0:
            return class_labels
        keep = ops.reshape(self._draw(keras.random.uniform, (shape[0], 1, 1, 1)), (-1,)) >= self.config.label_dropout
        return ops.where(keep, class_labels, ops.full_like(class_labels, self.config.num_classes))

    def _draw(self, random: Any, shape: tuple) -> Any:
        """``random`` (``keras.random.normal``, or ``uniform`` in [0, 1)) of ``shape`` from the model's
        seed generator, each replica its own slice of the global batch (:func:`distribution.replica_draw`)."""
        return replica_draw(self._device_setup, lambda n: random((n, *shape[1:]), seed=self.seed_generator), shape)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The pixel loss (MAE in the reference) on what the network predicts (the noise by default);
        noise and image errors as metrics; KID at evaluation. Scaled per replica as Keras' own losses
        are (:func:`~ddim_tutorial.runtime.distribution.scale_loss_for_replicas`)."""
        if y_pred is None:
            y_pred = self(x, training=training)
        noise_loss = ops.mean(self.pixel_loss(y_pred["noises"], y_pred["pred_noises"]))
        image_loss = ops.mean(self.pixel_loss(y_pred["images"], y_pred["pred_images"]))
        # For noise prediction (the reference) the targets are the noises: the loss is noise_loss.
        loss = (noise_loss if self.config.prediction_type == "noise"
                else ops.mean(self.pixel_loss(y_pred["targets"], y_pred["pred_targets"])))
        self.noise_loss_tracker.update_state(noise_loss)
        self.image_loss_tracker.update_state(image_loss)
        if self.target_loss_tracker is not None:
            self.target_loss_tracker.update_state(loss)
        if not training and self.kid is not None:
            # Expensive, hence only at evaluation and with few sampling steps.
            real_images = self.denormalize(y_pred["images"])
            shape = tuple(real_images.shape) if None not in real_images.shape else ops.shape(real_images)
            # Each replica its own slice of the noise, or they would all score the same images;
            # compiled=False: this already runs inside Keras' compiled test step.
            generated_images = self.generate(shape[0], self.config.kid_diffusion_steps, compiled=False,
                                             initial_noise=self._draw(keras.random.normal, shape))
            self.kid.update_state(real_images, generated_images)
        return scale_loss_for_replicas(loss)

    def compile(self, optimizer: Any = None, loss: Any = None, **kwargs) -> None:
        """Compile with the reference's AdamW and the config's speed settings unless overridden.

        ``loss`` (``"mae"`` or ``"mse"``, the pixel loss) replaces ``config.loss``, so that checkpoints
        record the loss that really trains; ``jit_compile="auto"`` is resolved per backend and device
        (:func:`~ddim_tutorial.runtime.backends.compile_options`).
        """
        if loss is not None:
            self.config = self.config.replace(loss=check_loss(loss))
        config, setup = self.config, self._device_setup
        self.pixel_loss = _PIXEL_LOSSES[config.loss]
        kwargs = compile_options(kwargs, jit_compile=config.jit_compile, steps_per_execution=config.steps_per_execution,
                                 distributed=setup is not None and setup.strategy is not None)
        with setup.scope() if setup is not None else contextlib.nullcontext():  # mirrored optimizer (TensorFlow)
            if optimizer is None:
                optimizer = keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                                   weight_decay=config.weight_decay)
            super().compile(optimizer=optimizer, **kwargs)

    def train_step(self, *args):
        """Keras' own training step, followed by the EMA update of the weights."""
        result = super().train_step(*args)
        if keras.backend.backend() == "jax":  # (logs, state): the state passed in and out explicitly
            return result[0], update_ema_in_jax_state(self, self.network.weights, self.ema_network.weights,
                                                      self.config.ema, result[1])
        update_ema(self.network.weights, self.ema_network.weights, self.config.ema)
        return result

    # ---------------------------------------------------------------- sampling
    def initial_noise(self, num_images: int, seed: int | None = None) -> Any:
        """Standard normal noise shaped like a batch of images; seeded for reproducible grids."""
        check_positive_int("num_images", num_images, advice="ask for an integer >= 1")
        size = self.config.image_size
        return keras.random.normal((num_images, size, size, 3), seed=seed if seed is not None else self.seed_generator)

    @property
    def sampler(self) -> CompiledSampler:
        """The compiled sampler that ``generate`` uses, kept with the model so that its programs are reused."""
        if self._sampler is None:
            self._sampler = CompiledSampler(self)
        return self._sampler

    def sampling_program(self, call_network: Any, arguments: dict, stochastic: bool, *, sampler: str) -> Any:
        """What :class:`CompiledSampler` compiles: :func:`~ddim_tutorial.core.sampling.sample` with this
        model's denoiser and path; ``arguments`` are tensors, ``stochastic`` says whether to draw step noise."""
        denoise = make_denoiser(call_network, prediction_type=self.config.prediction_type,
                                null_label=self.config.num_classes or None, class_labels=arguments.get("class_labels"),
                                guidance_scale=arguments.get("guidance_scale"))
        noise, seed = arguments["initial_noise"], arguments["seed"]
        fresh_noises = (lambda step: step_noise(tuple(noise.shape), seed, step)) if stochastic else None
        start, span = path_parameters(arguments["min_signal_rate"], arguments["max_signal_rate"], self.config.path)
        return sample(denoise, noise, arguments["diffusion_steps"], start, span, sampler=sampler,
                      path=self.config.path, eta=arguments["eta"], fresh_noises=fresh_noises)

    def generate(self, num_images: int, diffusion_steps: int | None = None, *, eta: float = 0.0,
                 seed: int | None = None, initial_noise: Any = None, min_signal_rate: float | None = None,
                 max_signal_rate: float | None = None, compiled: bool = True, sampler: str = "ddim",
                 class_labels: Any = None, guidance_scale: float = 1.0, use_ema: bool = True) -> Any:
        """Sample ``num_images`` images in pixel space [0, 1] with the EMA network.

        ``seed`` fixes the initial noise and, with ``eta > 0``, the noise of every step;
        ``sampler="dpm++2s"`` takes second-order steps (``2 * steps - 1`` network evaluations).
        The loop runs compiled unless ``compiled=False`` (the Python loop, for a debugger; the same
        numbers up to rounding). ``class_labels`` and ``guidance_scale`` steer a class-conditional
        model; ``use_ema=False`` samples with the trained weights instead of their average.
        """
        self._require_adapted()
        check_seed(seed)
        check_sampler(sampler, eta, self.config.path)
        if diffusion_steps is None:
            diffusion_steps = self.config.plot_diffusion_steps
        if initial_noise is None:
            initial_noise = self.initial_noise(num_images, seed)
        options = dict(min_signal_rate=self.config.min_signal_rate if min_signal_rate is None else min_signal_rate,
                       max_signal_rate=self.config.max_signal_rate if max_signal_rate is None else max_signal_rate,
                       eta=eta, seed=step_seed(seed),
                       sampler=sampler, class_labels=class_labels, guidance_scale=guidance_scale)
        if compiled and use_ema:
            return self.sampler(initial_noise, diffusion_steps, **options)
        network = self.ema_network if use_ema else self.network
        pred_images = reverse_diffusion(network, initial_noise, diffusion_steps,
                                        prediction_type=self.config.prediction_type, path=self.config.path,
                                        **options)
        return self.denormalize(pred_images)
