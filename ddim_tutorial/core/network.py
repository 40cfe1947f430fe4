"""The denoising network: a residual U-Net that predicts the noise in a noisy image.

It takes two inputs, the noisy images and the variance of their noise component, and
returns the predicted noise, with the same shape as the images. The noise level enters
once, at the start, through a sinusoidal embedding; skip and residual connections carry
it (and the fine detail of the image) through the rest of the network.

Two extensions beyond the reference: the output can be the clean image or the velocity
instead of the noise (``DDIMConfig.prediction_type``), and a class-conditional network
(``DDIMConfig.num_classes > 0``) takes a third input, one class label per image, that
enters where the noise level does: a learned vector per class, added to the noise
embedding, broadcast to every pixel.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from ddim_tutorial.config import DDIMConfig

__all__ = ["build_network", "SinusoidalEmbedding", "residual_block", "down_block", "up_block"]

#: The output layer's name for each prediction type ("pred_noises" is the reference's network).
OUTPUT_NAMES = {"noise": "pred_noises", "image": "pred_images", "velocity": "pred_velocities",
                "flow": "pred_flow_velocities"}


@keras.saving.register_keras_serializable(package="ddim_tutorial")
class SinusoidalEmbedding(layers.Layer):
    """Map a scalar noise variance to sines and cosines of geometrically spaced frequencies.

    Like positional encodings in transformers, this makes small changes of the input easy
    for the network to tell apart: the fastest frequency resolves a change of about
    ``1 / max_frequency`` in the noise variance. It always computes in float32, because
    ``sin(2*pi*1000*x)`` in half precision would be mostly rounding error.
    """

    def __init__(self, embedding_dims: int = 32, min_frequency: float = 1.0,
                 max_frequency: float = 1000.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if embedding_dims % 2:
            raise ValueError(f"SinusoidalEmbedding: embedding_dims={embedding_dims} must be even.")
        self.embedding_dims = int(embedding_dims)
        self.min_frequency = float(min_frequency)
        self.max_frequency = float(max_frequency)
        frequencies = np.exp(np.linspace(math.log(self.min_frequency), math.log(self.max_frequency),
                                         self.embedding_dims // 2))
        self._angular_speeds = (2.0 * math.pi * frequencies).astype("float32")

    @property
    def frequencies(self) -> np.ndarray:
        return self._angular_speeds / (2.0 * math.pi)

    def call(self, noise_variances):
        angular_speeds = ops.convert_to_tensor(self._angular_speeds, dtype=self.compute_dtype)
        angles = ops.cast(noise_variances, self.compute_dtype) * angular_speeds
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.embedding_dims)

    def get_config(self):
        return {**super().get_config(), "embedding_dims": self.embedding_dims,
                "min_frequency": self.min_frequency, "max_frequency": self.max_frequency}


def residual_block(x, width: int, name: str):
    """Normalize, two 3x3 convolutions, and add the (1x1-projected if needed) input back."""
    if x.shape[-1] == width:
        residual = x
    else:
        residual = layers.Conv2D(width, kernel_size=1, name=f"{name}_project")(x)
    # The following convolution makes BatchNorm's own scale and offset redundant.
    x = layers.BatchNormalization(center=False, scale=False, name=f"{name}_norm")(x)
    x = layers.Conv2D(width, kernel_size=3, padding="same", activation="swish", name=f"{name}_conv1")(x)
    x = layers.Conv2D(width, kernel_size=3, padding="same", name=f"{name}_conv2")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


def down_block(x, skips: list, width: int, block_depth: int, name: str):
    """Residual blocks whose outputs are remembered for the skip connections, then halve the size."""
    for index in range(block_depth):
        x = residual_block(x, width, name=f"{name}_res{index}")
        skips.append(x)
    return layers.AveragePooling2D(pool_size=2, name=f"{name}_pool")(x)


def up_block(x, skips: list, width: int, block_depth: int, name: str):
    """Double the size, then residual blocks each fed the matching skip connection."""
    x = layers.UpSampling2D(size=2, interpolation="bilinear", name=f"{name}_upsample")(x)
    for index in range(block_depth):
        x = layers.Concatenate(name=f"{name}_skip{index}")([x, skips.pop()])
        x = residual_block(x, width, name=f"{name}_res{index}")
    return x


def build_network(config: DDIMConfig | None = None) -> keras.Model:
    """Build the residual U-Net of the reference for ``config`` (default: the reference's).

    Inputs: ``noisy_images`` [B, S, S, 3] and ``noise_variances`` [B, 1, 1, 1], and with
    ``config.num_classes > 0`` also ``class_labels`` [B] (int, ``num_classes`` meaning "no label").
    Output: what ``config.prediction_type`` names, [B, S, S, 3] (float32 even under mixed precision).
    """
    config = config or DDIMConfig()
    size = config.image_size
    noisy_images = keras.Input(shape=(size, size, 3), name="noisy_images")
    noise_variances = keras.Input(shape=(1, 1, 1), name="noise_variances")
    inputs = [noisy_images, noise_variances]

    embedding = SinusoidalEmbedding(config.embedding_dims, config.embedding_min_frequency,
                                    config.embedding_max_frequency, name="noise_embedding")(noise_variances)
    if config.num_classes:
        # One learned vector per class, and one more for "no label" (classifier-free guidance
        # trains it by label dropout), added to the noise embedding as diffusers' UNet2DModel adds
        # its class embedding to the time embedding. It starts at zero, so a fresh conditional
        # network computes what the unconditional one does, and can start from its weights.
        class_labels = keras.Input(shape=(), dtype="int32", name="class_labels")
        inputs.append(class_labels)
        class_embedding = layers.Embedding(config.num_classes + 1, config.embedding_dims,
                                           embeddings_initializer="zeros", name="class_embedding")(class_labels)
        # Scaled by sqrt(dims), as transformers scale token embeddings: Adam moves each entry by about
        # the learning rate per step, and the scale lets the class vectors reach the size of the
        # sines and cosines beside them (norm sqrt(dims / 2)) within the first thousand steps.
        class_embedding = layers.Rescaling(math.sqrt(config.embedding_dims), name="class_embedding_scale")(
            class_embedding)
        class_embedding = layers.Reshape((1, 1, config.embedding_dims), name="class_embedding_pixel")(class_embedding)
        embedding = layers.Add(name="noise_and_class_embedding")([embedding, class_embedding])
    # Broadcast the [1 x 1] embedding to every pixel so it can be concatenated with the image.
    embedding = layers.UpSampling2D(size=size, interpolation="nearest", name="embedding_broadcast")(embedding)

    x = layers.Conv2D(config.widths[0], kernel_size=1, name="image_projection")(noisy_images)
    x = layers.Concatenate(name="image_and_embedding")([x, embedding])

    skips: list = []
    for level, width in enumerate(config.widths[:-1]):
        x = down_block(x, skips, width, config.block_depth, name=f"down{level}")
    for index in range(config.block_depth):
        x = residual_block(x, config.widths[-1], name=f"middle_res{index}")
    for level, width in reversed(list(enumerate(config.widths[:-1]))):
        x = up_block(x, skips, width, config.block_depth, name=f"up{level}")

    # Zero init: the untrained network predicts zero (the mean of its targets: noise, velocity,
    # and normalized images all have mean zero).
    predictions = layers.Conv2D(3, kernel_size=1, kernel_initializer="zeros", dtype="float32",
                                name=OUTPUT_NAMES[config.prediction_type])(x)
    return keras.Model(inputs, predictions, name="residual_unet")


def num_classes_of(network: keras.Model) -> int:
    """How many classes a network built by :func:`build_network` is conditioned on (0: none)."""
    if len(network.inputs) < 3:
        return 0
    return int(network.get_layer("class_embedding").input_dim) - 1
