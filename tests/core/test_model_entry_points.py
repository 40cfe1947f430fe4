"""DiffusionModel's entry points: the jit_compile choice per backend and device, no training on an
unadapted normalizer, KID inside the compiled test step, compile(loss=), sampling without copying
device noise to the host, and adapt_normalizer over repeated data.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_model_entry_points.py``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.sampling import reverse_diffusion
from ddim_tutorial.runtime.arrays import image_batches
from tests.helpers import NOT_ADAPTED, SMALL, TINY_EAGER, adapted_model, has_accelerator, tiny_images

BACKEND = keras.backend.backend()
REPO_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------- 1. jit_compile per backend and device
def test_auto_jit_compile_is_resolved_per_backend_and_device():
    model = DiffusionModel(DDIMConfig.preset("workshop", **SMALL))  # the preset's own jit_compile
    model.compile()
    expected = {"jax": True, "torch": False, "tensorflow": has_accelerator()}[BACKEND]
    assert model.jit_compile is expected  # never torch.compile, no XLA on a TensorFlow CPU


def test_an_explicit_jit_compile_is_honoured():
    model = DiffusionModel(TINY_EAGER.replace(jit_compile=True))
    model.compile()
    assert model.jit_compile is True
    model.compile(jit_compile=False)
    assert model.jit_compile is False


# ------------------------------------------------------- 2. no training on an unadapted normalizer
@pytest.mark.parametrize("entry", ["fit", "evaluate", "train_on_batch"])
def test_an_unadapted_model_refuses_before_the_first_step(entry):
    keras.utils.set_random_seed(0)
    model = DiffusionModel(TINY_EAGER)
    model.compile()
    before = model.network.get_weights()
    images = tiny_images()
    with pytest.raises(RuntimeError) as raised:
        if entry == "train_on_batch":
            model.train_on_batch(images[:4])
        else:
            getattr(model, entry)(images, batch_size=4, verbose=0)
    assert str(raised.value) == NOT_ADAPTED  # the same sentence on every backend
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
    for a, b in zip(model.network.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


class GeneratedMean(keras.metrics.Metric):
    """Stands in for KID: the mean pixel of the generated images, and how many were generated."""

    def __init__(self):
        super().__init__(name="kid")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, real_images, generated_images, sample_weight=None):
        self.total.assign_add(keras.ops.sum(keras.ops.mean(generated_images, axis=(1, 2, 3))))
        self.count.assign_add(keras.ops.cast(keras.ops.shape(generated_images)[0], "float32"))

    def result(self):
        return self.count


def test_validation_kid_generates_one_image_per_real_image_inside_the_compiled_test_step():
    # A regression guard on every backend for item 4's change: the KID images now come from
    # noise drawn in compute_loss (per replica) and handed to generate.
    model = adapted_model()
    object.__setattr__(model, "kid", GeneratedMean())
    model.compile()
    logs = model.evaluate(tiny_images(), batch_size=4, verbose=0, return_dict=True)
    assert logs["kid"] == 8.0 and np.isfinite(logs["n_loss"])
    assert 0.0 <= float(keras.ops.convert_to_numpy(model.kid.total)) / 8.0 <= 1.0


# -------------------------------------------------------------- 5. one source of truth for the loss
def test_compile_loss_becomes_the_configs_loss(tmp_path):
    from ddim_tutorial.training.checkpoints import load_checkpoint, save_checkpoint

    model = adapted_model()
    model.compile(loss="mse")
    assert model.config.loss == "mse"
    assert model.get_config()["config"]["loss"] == "mse"
    noises = np.zeros((2, 16, 16, 3), "float32")
    y_pred = {"images": noises, "pred_images": noises, "noises": noises, "pred_noises": noises + 2.0}
    assert float(keras.ops.convert_to_numpy(model.compute_loss(y_pred=y_pred))) == pytest.approx(4.0)  # 2**2
    save_checkpoint(model, tmp_path / "last")
    assert load_checkpoint(tmp_path / "last").config.loss == "mse"


def test_compile_refuses_a_loss_the_config_cannot_record():
    model = DiffusionModel(TINY_EAGER)
    with pytest.raises(ValueError, match=r"compile\(loss='huber'\) is invalid: use 'mae' or 'mse'"):
        model.compile(loss="huber")
    assert model.config.loss == "mae"


# ------------------------------------------- sampling reads no device noise back to the host
def test_sampling_never_copies_device_noise_back_to_the_host(monkeypatch):
    model = adapted_model()
    noise = model.initial_noise(2, seed=0)  # a tensor on the device
    converted = []
    original = keras.ops.convert_to_numpy

    def spy(value):
        converted.append(tuple(getattr(value, "shape", ())))
        return original(value)

    monkeypatch.setattr(keras.ops, "convert_to_numpy", spy)
    model.generate(2, 2, initial_noise=noise)
    model.generate(2, 2, initial_noise=noise, compiled=False)
    model.sampler(noise, 2, eta=0.5, seed=1)
    reverse_diffusion(model.ema_network, noise, 2)
    assert tuple(noise.shape) not in converted
    monkeypatch.setattr(keras.ops, "convert_to_numpy", original)
    # Host noise is still checked, at the API edge.
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.generate(2, 2, initial_noise=np.full((2, 16, 16, 3), np.nan, "float32"))


# ------------------------------------------- the normalizer reads every repetition
def test_adapt_reads_every_repetition_of_a_tf_dataset_with_the_same_statistics():
    tf = pytest.importorskip("tensorflow")
    images = tiny_images(8)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
    assert len(list(image_batches(dataset.repeat(3), None))) == 3 * 2
    once, thrice = DiffusionModel(TINY_EAGER), DiffusionModel(TINY_EAGER)
    once.adapt_normalizer(dataset)
    thrice.adapt_normalizer(dataset.repeat(3))  # each image counted three times: the same statistics
    for name in ("adapt_mean", "adapt_variance"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(getattr(thrice.normalizer, name)),
                                   keras.ops.convert_to_numpy(getattr(once.normalizer, name)), rtol=1e-5)
