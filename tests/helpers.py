"""Small models shared by the tests: the tiny config, a DiffusionModel with a non-zero output layer,
and a DiffusionModel around a hand-written network (for samplers, which take only a model)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ddim_tutorial.config import DDIMConfig

TINY = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4)
#: The normalizer of the models below: mean 0.5 and variance 0.04 (standard deviation 0.2).
MEAN, VARIANCE = np.full(3, 0.5, "float32"), np.full(3, 0.04, "float32")


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def randomize_output_layer(network: keras.Model, scale: float = 0.3, seed: int = 0) -> keras.Model:
    """Give the network's output layer (zero at initialisation) small random weights, so that it
    predicts something, as a trained network does."""
    last = network.layers[-1]
    rng = np.random.default_rng(seed)
    last.set_weights([scale * rng.standard_normal(w.shape).astype("float32") for w in last.get_weights()])
    return network


def small_model(config: DDIMConfig = TINY, *, scale: float = 0.3, seed: int = 0) -> Any:
    """A DiffusionModel whose EMA network's output layer has small random weights, normalizer set."""
    from ddim_tutorial.core.model import DiffusionModel

    keras.utils.set_random_seed(seed)
    model = DiffusionModel(config)
    randomize_output_layer(model.ema_network, scale, seed)
    model.set_normalizer(MEAN, VARIANCE)
    return model


def model_around(network: keras.Model, **config: Any) -> Any:
    """A DiffusionModel whose EMA network is ``network`` (a hand-written denoiser): what a sampler
    that takes only a model needs to run an exact or toy network. ``config`` overrides TINY's
    fields (the image size is the network's)."""
    from ddim_tutorial.core.model import DiffusionModel

    model = DiffusionModel(TINY.replace(image_size=network.inputs[0].shape[1], **config))
    model.ema_network = network
    model.set_normalizer(MEAN, VARIANCE)
    return model


SMALL = dict(image_size=16, widths=(8, 16), block_depth=1, embedding_dims=8, batch_size=4, dataset_repetitions=1,
             plot_diffusion_steps=2, kid_diffusion_steps=2, validation_kid=False, kid_weights=None, seed=0)
#: The small config of the entry-point, EMA, step-noise and two-device tests: no XLA, no KID.
TINY_EAGER = DDIMConfig(**SMALL, jit_compile=False)
NOT_ADAPTED = ("The normalizer has no mean and variance yet: call model.adapt_normalizer(train_images) before "
               "training or sampling (or load a checkpoint).")


def tiny_images(count: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(count, 4, 4, 3))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype("float32")


def adapted_model(config: DDIMConfig = TINY_EAGER) -> Any:
    """A DiffusionModel of ``config`` with its normalizer adapted to :func:`tiny_images`."""
    from ddim_tutorial.core.model import DiffusionModel

    keras.utils.set_random_seed(0)
    model = DiffusionModel(config)
    model.adapt_normalizer(tiny_images())
    return model


def has_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or TPU, asked directly (not through the package under test)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return any(device.device_type in ("GPU", "TPU") for device in tf.config.list_physical_devices())
    return False


#: The fields of the tiny config of the error-case tests (the rows of docs/ERRORS.md) and of the
#: cross-backend checkpoint test, which passes them to a subprocess.
TINY_FIELDS = dict(image_size=16, widths=(8, 16), block_depth=1, embedding_dims=8, batch_size=4, validation_kid=False,
                   kid_weights=None, seed=0, jit_compile=False, dataset_repetitions=1)


def tiny_config(**overrides: Any) -> DDIMConfig:
    """``DDIMConfig(**TINY_FIELDS)`` with ``overrides``."""
    return DDIMConfig(**{**TINY_FIELDS, **overrides})
