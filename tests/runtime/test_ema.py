"""ddim_tutorial.runtime.ema: the EMA update of the weights.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/runtime/test_ema.py``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel

BACKEND = keras.backend.backend()
REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(image_size=16, widths=(8, 16), block_depth=1, embedding_dims=8, batch_size=4, dataset_repetitions=1,
             plot_diffusion_steps=2, kid_diffusion_steps=2, validation_kid=False, kid_weights=None, seed=0)
TINY = DDIMConfig(**SMALL, jit_compile=False)
NOT_ADAPTED = ("The normalizer has no mean and variance yet: call model.adapt_normalizer(train_images) before "
               "training or sampling (or load a checkpoint).")


def tiny_images(count: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(count, 4, 4, 3))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype("float32")


def adapted_model(config: DDIMConfig = TINY) -> DiffusionModel:
    keras.utils.set_random_seed(0)
    model = DiffusionModel(config)
    model.adapt_normalizer(tiny_images())
    return model


def has_accelerator() -> bool:
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return any(device.device_type in ("GPU", "TPU") for device in tf.config.list_physical_devices())
    return False


# ----------------------------------------------------- no autograd graph
@pytest.mark.skipif(BACKEND != "torch", reason="autograd is PyTorch's")
def test_pytorch_ema_update_builds_no_autograd_graph(monkeypatch):
    import torch

    model = adapted_model()
    model.compile()
    ema_ids = {id(weight) for weight in model.ema_network.weights}
    seen = []
    original = type(model.ema_network.weights[0]).assign

    def assign(self, value):
        if id(self) in ema_ids:
            seen.append((torch.is_grad_enabled(), bool(getattr(value, "requires_grad", False))))
        return original(self, value)

    monkeypatch.setattr(type(model.ema_network.weights[0]), "assign", assign)
    model.fit(tiny_images(), batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert len(seen) == 2 * len(model.ema_network.weights)  # two steps
    assert not any(grad or requires for grad, requires in seen)
