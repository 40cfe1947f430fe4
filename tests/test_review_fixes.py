"""Tests of the package defects found by the close review of issue 11 (items 1-7 and 10).

Each test failed on the code before the fix. Runs on every backend:
``KERAS_BACKEND=X pytest tests/./test_review_fixes.py``; the data-parallel checks run in
subprocesses with two virtual CPU devices, on whichever of TensorFlow and JAX is installed.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from ddim_tutorial.core import model as model_module
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.checks import MAX_SEED
from ddim_tutorial.core.sampling import reverse_diffusion
from ddim_tutorial.runtime.arrays import image_batches
from ddim_tutorial.runtime.random import step_noise

BACKEND = keras.backend.backend()
REPO_ROOT = Path(__file__).resolve().parents[1]
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


# ---------------------------------------------------------- 1. jit_compile per backend and device
def test_workshop_preset_leaves_xla_to_auto():
    assert DDIMConfig.preset("workshop").jit_compile == "auto"


def test_auto_jit_compile_is_resolved_per_backend_and_device():
    model = DiffusionModel(DDIMConfig.preset("workshop", **SMALL))  # the preset's own jit_compile
    model.compile()
    expected = {"jax": True, "torch": False, "tensorflow": has_accelerator()}[BACKEND]
    assert model.jit_compile is expected  # never torch.compile, no XLA on a TensorFlow CPU


def test_an_explicit_jit_compile_is_honoured():
    model = DiffusionModel(TINY.replace(jit_compile=True))
    model.compile()
    assert model.jit_compile is True
    model.compile(jit_compile=False)
    assert model.jit_compile is False


# ------------------------------------------------------- 2. no training on an unadapted normalizer
@pytest.mark.parametrize("entry", ["fit", "evaluate", "train_on_batch"])
def test_an_unadapted_model_refuses_before_the_first_step(entry):
    keras.utils.set_random_seed(0)
    model = DiffusionModel(TINY)
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
    for a, b in zip(model.network.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------- 3 and 4. two devices equal one (subprocesses)
SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {repo!r})
    from ddim_tutorial.runtime import distribution
    distribution.configure_devices(2)                  # before Keras starts: 2 virtual CPUs
    import keras, numpy as np
    from ddim_tutorial.config import DDIMConfig
    from ddim_tutorial.core.model import DiffusionModel

    config = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=8, seed=0,
                               jit_compile=False)
    rng = np.random.default_rng(0)
    images = np.repeat(np.repeat(rng.uniform(size=(8, 4, 4, 3)), 4, axis=1), 4, axis=2).astype("float32")

    def build(devices):
        setup = distribution.configure_devices(devices)
        keras.utils.set_random_seed(0)
        model = DiffusionModel(config)
        model.adapt_normalizer(images)
        return setup, model

    def sgd_step(devices):
        # One step of plain SGD: unlike AdamW, its step is proportional to the gradient.
        setup, model = build(devices)
        with setup.scope():
            optimizer = keras.optimizers.SGD(learning_rate=0.1)
        model.compile(optimizer=optimizer)
        before = model.network.get_weights()
        history = model.fit(images, batch_size=8, epochs=1, shuffle=False, verbose=0).history
        return dict(devices=setup.num_replicas, n_loss=history["n_loss"],
                    deltas=[(a - b).tolist() for a, b in zip(model.network.get_weights(), before)])

    def kid_noise(devices):
        # The images that validation KID would score, per replica (TensorFlow's MirroredStrategy).
        import tensorflow as tf

        setup, model = build(devices)
        generated = {{}}

        class Recorder:
            def update_state(self, real_images, generated_images):
                context = tf.distribute.get_replica_context()
                generated[int(tf.get_static_value(context.replica_id_in_sync_group))] = generated_images

        model.kid = Recorder()

        def step(batch):
            model.compute_loss(batch, y_pred=model(batch, training=False), training=False)
            context = tf.distribute.get_replica_context()
            return generated[int(tf.get_static_value(context.replica_id_in_sync_group))]

        dataset = tf.data.Dataset.from_tensor_slices(images).batch(8)
        if setup.strategy is None:
            return [keras.ops.convert_to_numpy(tf.function(step)(next(iter(dataset)))).tolist()]
        batch = next(iter(setup.strategy.experimental_distribute_dataset(dataset)))
        result = tf.function(lambda b: setup.strategy.run(step, args=(b,)))(batch)
        return [keras.ops.convert_to_numpy(r).tolist() for r in setup.strategy.experimental_local_results(result)]

    result = dict(two=sgd_step(2), one=sgd_step(1))
    if keras.backend.backend() == "tensorflow":
        result.update(kid_two=kid_noise(2), kid_one=kid_noise(1))
    print("RESULT " + json.dumps(result))
""")

_RESULTS: dict[str, dict] = {}


def two_device_result(backend: str) -> dict:
    if backend not in _RESULTS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("XLA_FLAGS", None)  # configure_devices sets it for JAX
        completed = subprocess.run([sys.executable, "-c", SCRIPT.format(repo=str(REPO_ROOT))], env=env,
                                   capture_output=True, text=True, timeout=600)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
        assert completed.returncode == 0 and lines, completed.stderr[-3000:]
        _RESULTS[backend] = json.loads(lines[-1][len("RESULT "):])
    return _RESULTS[backend]


def assert_one_sgd_step_matches(result: dict) -> None:
    one, two = result["one"], result["two"]
    assert one["devices"] == 1 and two["devices"] == 2
    np.testing.assert_allclose(two["n_loss"], one["n_loss"], rtol=1e-4)
    flat_one = np.concatenate([np.ravel(d) for d in one["deltas"]])
    flat_two = np.concatenate([np.ravel(d) for d in two["deltas"]])
    assert np.abs(flat_one).max() > 1e-4  # the step moved the weights
    # Summed instead of averaged gradients would make this ratio 2.
    assert float(flat_two @ flat_one / (flat_one @ flat_one)) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(flat_two, flat_one, atol=1e-3 * np.abs(flat_one).max())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_mirrored_strategy_sgd_step_on_two_cpus_equals_one_device():
    assert_one_sgd_step_matches(two_device_result("tensorflow"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_jax_data_parallel_sgd_step_on_two_cpus_equals_one_device():
    assert_one_sgd_step_matches(two_device_result("jax"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_mirrored_strategy_validation_kid_scores_different_noise_per_replica():
    result = two_device_result("tensorflow")
    first, second = (np.asarray(images) for images in result["kid_two"])
    (whole,) = (np.asarray(images) for images in result["kid_one"])
    assert first.shape == second.shape == (4, 16, 16, 3) and whole.shape == (8, 16, 16, 3)
    assert np.abs(first - second).max() > 1e-3  # not the same generated batch twice
    # Each replica generated its own half of the one-device batch.
    np.testing.assert_allclose(np.concatenate([first, second]), whole, atol=1e-4)


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
    model = DiffusionModel(TINY)
    with pytest.raises(ValueError, match=r"compile\(loss='huber'\) is invalid: use 'mae' or 'mse'"):
        model.compile(loss="huber")
    assert model.config.loss == "mae"


# ------------------------------------------------------------ 6. collision-free step noise
def test_step_noise_never_shares_noise_between_seed_step_pairs():
    inverse = pow(1_000_003, -1, 2**31)  # seed * 1_000_003 + step (mod 2**31) mapped these pairs together
    for first, second in [((inverse, 0), (0, 1)), ((1, 0), (0, 1_000_003)), ((MAX_SEED, 5), (MAX_SEED - 1, 5))]:
        a = keras.ops.convert_to_numpy(step_noise((2, 4, 4, 3), *first))
        b = keras.ops.convert_to_numpy(step_noise((2, 4, 4, 3), *second))
        assert np.abs(a - b).max() > 0.1, (first, second)
    noise = keras.ops.convert_to_numpy(step_noise((64, 16, 16, 3), 7, 3))
    assert noise.dtype == np.float32
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1.0) < 0.02  # still standard normal


def test_design_notes_say_what_is_reproducible_across_backends():
    text = (REPO_ROOT / "docs" / "DESIGN.md").read_text()
    assert "## Reproducibility" in text
    section = text.split("## Reproducibility", 1)[1]
    for phrase in ("TensorFlow, JAX and PyTorch", "tf.data", "ArrayBatches", "float32", "jax_enable_x64"):
        assert phrase in section, phrase


# ----------------------------------------------------- 7. no autograd graph, no device-to-host copy
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


# ------------------------------------------- 10. the normalizer reads every repetition, and says so
def test_adapt_normalizer_says_it_reads_every_repetition():
    assert "one pass, even if repeated" not in inspect.getsource(model_module)
    assert "repeated ``k`` times is read ``k``" in DiffusionModel.adapt_normalizer.__doc__


def test_adapt_reads_every_repetition_of_a_tf_dataset_with_the_same_statistics():
    tf = pytest.importorskip("tensorflow")
    images = tiny_images(8)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
    assert len(list(image_batches(dataset.repeat(3), None))) == 3 * 2
    once, thrice = DiffusionModel(TINY), DiffusionModel(TINY)
    once.adapt_normalizer(dataset)
    thrice.adapt_normalizer(dataset.repeat(3))  # each image counted three times: the same statistics
    for name in ("adapt_mean", "adapt_variance"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(getattr(thrice.normalizer, name)),
                                   keras.ops.convert_to_numpy(getattr(once.normalizer, name)), rtol=1e-5)
