"""A re-implementation of the Keras DDIM example's training step and sampling loop, for timing.

This is the *baseline* of ``benchmarks/run.py``, not part of the package. It keeps the
reference's structure on purpose, including what makes it slow: a hand-written
``train_step`` (``tf.GradientTape`` on TensorFlow, as in the example; the equivalent
``jax.value_and_grad`` / ``loss.backward()`` on the other backends, since the example's
code only runs on TensorFlow), and an eager Python loop for sampling that calls the
network once per step. The U-Net itself is ``ddim_tutorial.core.network.build_network``, the
same architecture as the example's (1,953,507 parameters at its defaults), so both sides
of the benchmark run the same network and only the machinery around it differs.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from ddim_tutorial.core.network import build_network


class ReferenceDiffusionModel(keras.Model):
    """The example's ``DiffusionModel``: normalizer, network, EMA twin, custom ``train_step``."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.image_size = config.image_size
        self.min_signal_rate = config.min_signal_rate
        self.max_signal_rate = config.max_signal_rate
        self.ema = config.ema
        self.normalizer = layers.Normalization()
        self.network = build_network(config)
        self.ema_network = keras.models.clone_model(self.network)
        self.ema_network.set_weights(self.network.get_weights())
        if keras.backend.backend() == "jax":
            # The JAX port differentiates all trainable variables at once; the example's EMA
            # weights are never trained, so they are marked as such here.
            self.ema_network.trainable = False
        # The example draws unseeded noise; JAX needs an explicit generator inside jit.
        self.seed_generator = keras.random.SeedGenerator(0)

    def compile(self, loss=None, **kwargs):
        # The example hands its loss to compile() and calls it itself in train_step; kept out
        # of Keras' compile here, whose symbolic build on JAX/PyTorch would call it with y=None.
        super().compile(**kwargs)
        self.pixel_loss = loss
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
        self.image_loss_tracker = keras.metrics.Mean(name="i_loss")

    @property
    def metrics(self):
        return [self.noise_loss_tracker, self.image_loss_tracker]

    def denormalize(self, images):
        images = self.normalizer.mean + images * self.normalizer.variance**0.5
        return ops.clip(images, 0.0, 1.0)

    def diffusion_schedule(self, diffusion_times):
        start_angle = ops.cast(ops.arccos(self.max_signal_rate), "float32")
        end_angle = ops.cast(ops.arccos(self.min_signal_rate), "float32")
        diffusion_angles = start_angle + diffusion_times * (end_angle - start_angle)
        return ops.sin(diffusion_angles), ops.cos(diffusion_angles)

    def denoise(self, noisy_images, noise_rates, signal_rates, training):
        network = self.network if training else self.ema_network
        pred_noises = network([noisy_images, noise_rates**2], training=training)
        pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
        return pred_noises, pred_images

    def _noisy_batch(self, images):
        """Normalize, draw noise and times, and mix: the part of the step outside the gradient."""
        images = self.normalizer(images, training=True)
        batch_size = ops.shape(images)[0]
        noises = keras.random.normal((batch_size, self.image_size, self.image_size, 3), seed=self.seed_generator)
        diffusion_times = keras.random.uniform((batch_size, 1, 1, 1), minval=0.0, maxval=1.0,
                                               seed=self.seed_generator)
        noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
        return images, noises, noise_rates, signal_rates, signal_rates * images + noise_rates * noises

    def call(self, images, training=False):
        """Only for Keras' symbolic build on JAX and PyTorch; the example itself defines none."""
        _, _, noise_rates, signal_rates, noisy_images = self._noisy_batch(_first(images))
        return self.denoise(noisy_images, noise_rates, signal_rates, training=training)[0]

    # --------------------------------------------------------------- train steps
    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "jax":
            return self._train_step_jax(*args)
        if backend == "torch":
            return self._train_step_torch(*args)
        return self._train_step_tensorflow(*args)

    def _ema_update(self):
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights, strict=True):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)

    def _train_step_tensorflow(self, images):
        import tensorflow as tf

        images = _first(images)
        images, noises, noise_rates, signal_rates, noisy_images = self._noisy_batch(images)
        with tf.GradientTape() as tape:
            pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=True)
            noise_loss = self.pixel_loss(noises, pred_noises)
            image_loss = self.pixel_loss(images, pred_images)
        gradients = tape.gradient(noise_loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights, strict=True))
        self.noise_loss_tracker.update_state(noise_loss)
        self.image_loss_tracker.update_state(image_loss)
        self._ema_update()
        return {m.name: m.result() for m in self.metrics}

    def _train_step_torch(self, images):
        import torch

        images = _first(images)
        images, noises, noise_rates, signal_rates, noisy_images = self._noisy_batch(images)
        self.zero_grad()
        pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=True)
        noise_loss = ops.mean(self.pixel_loss(noises, pred_noises))
        image_loss = ops.mean(self.pixel_loss(images, pred_images))
        noise_loss.backward()
        trainable = self.network.trainable_weights
        gradients = [v.value.grad for v in trainable]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable)
            self.noise_loss_tracker.update_state(noise_loss.detach())
            self.image_loss_tracker.update_state(image_loss.detach())
            self._ema_update()
        return {m.name: m.result() for m in self.metrics}

    def _train_step_jax(self, state, images):
        import jax

        images = _first(images)
        trainable, non_trainable, optimizer_values, metric_values = state

        def loss_and_updates(trainable_values):
            mapping = list(zip(self.trainable_variables, trainable_values, strict=True))
            mapping += list(zip(self.non_trainable_variables, non_trainable, strict=True))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                normalized, noises, noise_rates, signal_rates, noisy_images = self._noisy_batch(images)
                pred_noises, pred_images = self.denoise(noisy_images, noise_rates, signal_rates, training=True)
                noise_loss = ops.mean(self.pixel_loss(noises, pred_noises))
                image_loss = ops.mean(self.pixel_loss(normalized, pred_images))
            updated = [scope.get_current_value(v) for v in self.non_trainable_variables]
            updated = [old if new is None else new for new, old in zip(updated, non_trainable, strict=True)]
            return noise_loss, (image_loss, updated)

        (noise_loss, (image_loss, non_trainable)), gradients = jax.value_and_grad(
            loss_and_updates, has_aux=True)(trainable)
        trainable, optimizer_values = self.optimizer.stateless_apply(optimizer_values, gradients, trainable)

        with keras.StatelessScope(state_mapping=list(zip(self.metrics_variables, metric_values, strict=True))) as scope:
            self.noise_loss_tracker.update_state(noise_loss)
            self.image_loss_tracker.update_state(image_loss)
            logs = {m.name: m.result() for m in self.metrics}
        metric_values = [scope.get_current_value(v) for v in self.metrics_variables]

        # The EMA update, on JAX's explicit state.
        trainable_index = {id(v): i for i, v in enumerate(self.trainable_variables)}
        non_trainable_index = {id(v): i for i, v in enumerate(self.non_trainable_variables)}
        non_trainable = list(non_trainable)
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights, strict=True):
            if id(weight) in trainable_index:
                value = trainable[trainable_index[id(weight)]]
            else:
                value = non_trainable[non_trainable_index[id(weight)]]
            target = non_trainable_index[id(ema_weight)]
            non_trainable[target] = self.ema * non_trainable[target] + (1 - self.ema) * value
        return logs, (trainable, non_trainable, optimizer_values, metric_values)


def reference_reverse_diffusion(ema_network: keras.Model, initial_noise: Any, diffusion_steps: int,
                                min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> Any:
    """The example's sampling loop, eager, one network call per step (normalized space)."""
    start_angle = math.acos(max_signal_rate)
    end_angle = math.acos(min_signal_rate)

    def schedule(diffusion_times):
        angles = start_angle + diffusion_times * (end_angle - start_angle)
        return ops.sin(angles), ops.cos(angles)

    num_images = initial_noise.shape[0]
    step_size = 1.0 / diffusion_steps
    next_noisy_images = initial_noise
    for step in range(diffusion_steps):
        noisy_images = next_noisy_images
        diffusion_times = ops.ones((num_images, 1, 1, 1)) - step * step_size
        noise_rates, signal_rates = schedule(diffusion_times)
        pred_noises = ema_network([noisy_images, noise_rates**2], training=False)
        pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
        next_noise_rates, next_signal_rates = schedule(diffusion_times - step_size)
        next_noisy_images = next_signal_rates * pred_images + next_noise_rates * pred_noises
    return pred_images


def _first(data: Any) -> Any:
    """Keras hands ``(x,)`` tuples to ``train_step`` when a dataset has no labels."""
    while isinstance(data, (tuple, list)):
        data = data[0]
    return data
