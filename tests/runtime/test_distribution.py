"""Tests of ddim_tutorial.runtime.distribution: data-parallel training on two virtual CPU devices gives
the same losses and weights as one device, on JAX (DataParallel) and TensorFlow (MirroredStrategy).

Each multi-device run happens in a fresh subprocess, because both backends fix their device
list when they start. The subprocess runs wherever its backend is installed, whatever
KERAS_BACKEND this test process uses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ddim_tutorial.runtime import distribution

REPO_ROOT = Path(__file__).resolve().parents[2]

# Trains the same tiny model, from the same seed and data, on one device and then on two,
# and prints the per-epoch losses and final weights of both as JSON.
SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    sys.path.insert(0, {repo!r})
    from ddim_tutorial.runtime import distribution
    setup = distribution.configure_devices(2)          # before Keras starts: 2 virtual CPUs
    import keras, numpy as np
    from ddim_tutorial.config import DDIMConfig
    from ddim_tutorial.core.model import DiffusionModel

    config = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=8,
                               seed=0, ema=0.5)
    rng = np.random.default_rng(0)
    images = np.repeat(np.repeat(rng.uniform(size=(16, 4, 4, 3)), 4, axis=1), 4, axis=2).astype("float32")

    def train(devices):
        run_setup = distribution.configure_devices(devices)
        keras.utils.set_random_seed(0)
        model = DiffusionModel(config)
        model.adapt_normalizer(images)
        model.compile()
        history = model.fit(images, batch_size=8, epochs=3, shuffle=False, verbose=0).history
        samples = keras.ops.convert_to_numpy(model.generate(2, 3, seed=0))  # sampling works afterwards
        return dict(samples=samples.tolist(),devices=run_setup.num_replicas, description=run_setup.describe(),
                    n_loss=[float(v) for v in history["n_loss"]],
                    paths=[v.path for v in model.network.weights],
                    network=[w.tolist() for w in model.network.get_weights()],
                    ema=[w.tolist() for w in model.ema_network.get_weights()])

    two = train(2)
    one = train(1)
    print("RESULT " + json.dumps(dict(one=one, two=two)))
""")


def run_two_device_script(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)  # configure_devices sets it for JAX
    completed = subprocess.run([sys.executable, "-c", SCRIPT.format(repo=str(REPO_ROOT))], env=env,
                               capture_output=True, text=True, timeout=600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def assert_same_training(result: dict) -> None:
    one, two = result["one"], result["two"]
    assert one["devices"] == 1 and two["devices"] == 2, (one["description"], two["description"])
    # The same images, noise and diffusion times, split over two devices: the same losses.
    np.testing.assert_allclose(two["n_loss"], one["n_loss"], rtol=2e-4)
    # BatchNormalization saw the whole batch's statistics on both devices, not its half's.
    moving = [i for i, path in enumerate(one["paths"]) if "moving_" in path]
    assert moving
    for i in moving:
        np.testing.assert_allclose(two["network"][i], one["network"][i], rtol=1e-3, atol=1e-3,
                                   err_msg=one["paths"][i])
    # Every weight within two optimizer steps (learning rate 1e-3) of the one-device run: the
    # biases that feed a normalization get almost no gradient, and AdamW turns the rounding
    # noise of that near-zero gradient into steps of up to the learning rate.
    for name in ("network", "ema"):
        for path, a, b in zip(one["paths"], two[name], one[name], strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-3, err_msg=f"{name}: {path}")
    assert len(set(one["n_loss"])) == len(one["n_loss"])  # it trained: the loss changed every epoch
    np.testing.assert_allclose(two["samples"], one["samples"], atol=1e-2)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_jax_data_parallel_on_two_cpus_matches_one_device():
    result = run_two_device_script("jax")
    assert "DataParallel" in result["two"]["description"]
    assert_same_training(result)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_tensorflow_mirrored_strategy_on_two_cpus_matches_one_device():
    result = run_two_device_script("tensorflow")
    assert "MirroredStrategy" in result["two"]["description"]
    assert_same_training(result)


# ------------------------------------------------------------------- in this process
def test_one_device_needs_no_distribution():
    try:
        setup = distribution.configure_devices(1)
        assert setup.num_replicas == 1 and not setup.distributed
        assert setup.strategy is None and setup.distribution is None
        assert setup.global_batch_size(64) == 64
        assert distribution.current_setup() is setup
        with setup.scope():
            pass
    finally:
        distribution.reset_devices()
    assert distribution.current_setup() is None


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_device_counts_are_rejected(bad):
    with pytest.raises(ValueError, match="devices"):
        distribution.configure_devices(bad)


def test_bad_device_type_is_rejected():
    with pytest.raises(ValueError, match="device_type"):
        distribution.configure_devices(2, device_type="fpga")


def test_pytorch_has_no_data_parallel_path():
    with pytest.raises(ValueError, match="JAX and TensorFlow"):
        distribution._configure_single("torch", 2)


def test_global_batch_grows_with_the_devices():
    setup = distribution.DeviceSetup("jax", ["cpu:0", "cpu:1"], virtual=True)
    assert setup.global_batch_size(64) == 128
    assert "virtual" in setup.describe() and "2 device(s)" in setup.describe()
    with pytest.raises(ValueError, match="per_device_batch_size"):
        setup.global_batch_size(0)


def test_learning_rate_guidance():
    assert distribution.suggest_learning_rate(64) == pytest.approx(1e-3)
    assert distribution.suggest_learning_rate(256) == pytest.approx(2e-3)  # sqrt(4) times
    assert distribution.suggest_learning_rate(256, rule="linear") == pytest.approx(4e-3)
    assert distribution.suggest_learning_rate(32, rule="none") == pytest.approx(1e-3)
    assert distribution.suggest_learning_rate(128, base_batch_size=32, base_learning_rate=2e-4) == pytest.approx(4e-4)
    with pytest.raises(ValueError, match="rule"):
        distribution.suggest_learning_rate(128, rule="cubic")
    with pytest.raises(ValueError, match="batch_size"):
        distribution.suggest_learning_rate(0)
