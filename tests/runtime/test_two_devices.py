"""Two virtual CPU devices equal one: an SGD step and the validation KID images, on TensorFlow
(MirroredStrategy) and JAX (DataParallel), in subprocesses, on whichever is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
REPO_ROOT = Path(__file__).resolve().parents[2]


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
