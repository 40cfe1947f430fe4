"""Tests of ddim_tutorial.core.model.DiffusionModel: it learns, it is reproducible, its EMA weights
really average, and the speed options (steps_per_execution, mixed precision) keep it correct.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_model.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.network import build_network

BACKEND = keras.backend.backend()
TINY = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4, seed=0)


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def tiny_images(count: int = 16, seed: int = 0) -> np.ndarray:
    """Smooth random images in [0, 1]: cheap, but with structure for the network to learn."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(count, 4, 4, 3))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype("float32")


class WeightRecorder(keras.callbacks.Callback):
    """Copies of the trained network's weights after every batch."""

    def __init__(self):
        super().__init__()
        self.history: list[list[np.ndarray]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.history.append([w.copy() for w in self.model.network.get_weights()])


def train_tiny(config: DDIMConfig = TINY, steps: int = 4, callbacks=None):
    """A fresh, seeded model trained for ``steps`` batches on the same images every time."""
    keras.utils.set_random_seed(0)
    model = DiffusionModel(config)
    images = tiny_images(steps * config.batch_size)
    model.adapt_normalizer(images)
    model.compile()
    initial_weights = model.network.get_weights()
    history = model.fit(images, batch_size=config.batch_size, epochs=1, shuffle=False, verbose=0,
                        callbacks=callbacks or [])
    return model, history.history, initial_weights


@pytest.fixture(scope="module")
def recorded_run():
    """One 4-step run at ema=0.5 with the network's weights recorded after each step."""
    recorder = WeightRecorder()
    model, history, initial = train_tiny(TINY.replace(ema=0.5), callbacks=[recorder])
    return model, history, initial, recorder.history


# ------------------------------------------------------------------------- architecture
def count_params_without_drawing_weights(config: DDIMConfig) -> int:
    """The network's parameter count from the shapes alone.

    Drawing 2 million random weights is cheap, except on JAX, where every new weight shape
    compiles a small program first (about a minute on 2 busy cores). Inside a
    StatelessScope that does not initialize, Keras defers the drawing; the deferred
    variables are then dropped from Keras' to-do list, or a later scope would draw them.
    """
    with keras.StatelessScope(initialize_variables=False):
        network = build_network(config)
    count = network.count_params()
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # another Keras layout: the weights are simply drawn later
        return count
    ours = {id(variable) for variable in network.weights}
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    global_state.set_global_attribute("uninitialized_variables", [v for v in pending if id(v) not in ours])
    return count


def test_default_network_has_the_reference_parameter_count():
    assert count_params_without_drawing_weights(DDIMConfig()) == 1_953_507


def test_model_holds_twin_networks_that_start_equal():
    model = DiffusionModel(TINY)
    assert model.network is not model.ema_network
    assert model.network.count_params() == model.ema_network.count_params()
    for weight, ema_weight in zip(model.network.get_weights(), model.ema_network.get_weights(), strict=True):
        np.testing.assert_array_equal(weight, ema_weight)
    assert not model.ema_network.trainable


def test_a_config_is_required():
    with pytest.raises(ValueError, match="DDIMConfig"):
        DiffusionModel("smoke")


def test_config_round_trips_through_get_config():
    model = DiffusionModel(TINY.replace(learning_rate=3e-4))
    clone = DiffusionModel.from_config(model.get_config())
    assert clone.config == model.config


def test_compile_takes_the_speed_options_from_the_config():
    model = DiffusionModel(TINY.replace(steps_per_execution=3, jit_compile=False))
    if BACKEND == "torch":  # Keras runs PyTorch one step per call
        with pytest.warns(UserWarning, match="steps_per_execution"):
            model.compile()
        assert model.steps_per_execution == 1
    else:
        model.compile()
        assert model.steps_per_execution == 3
    assert model.jit_compile is False
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert float(to_numpy(model.optimizer.learning_rate)) == pytest.approx(TINY.learning_rate)


# ------------------------------------------------------------------------ learning
@pytest.mark.slow
def test_smoke_preset_lowers_the_validation_noise_loss(flowers12_dir):
    from ddim_tutorial.data.folders import load_image_folder

    config = DDIMConfig.preset("smoke")
    train = load_image_folder(flowers12_dir, config.image_size, "train", max_images=192)
    validation = load_image_folder(flowers12_dir, config.image_size, "validation", max_images=48)
    keras.utils.set_random_seed(0)
    model = DiffusionModel(config)
    model.adapt_normalizer(train)
    model.compile()

    # A fixed validation problem: the same noise and diffusion times before and after training.
    rng = np.random.default_rng(0)
    noises = rng.standard_normal(validation.shape).astype("float32")
    times = rng.uniform(size=(len(validation), 1, 1, 1)).astype("float32")

    def validation_noise_loss(network) -> float:
        images = model.normalize(validation)
        noise_rates, signal_rates = model.diffusion_schedule(times)
        noisy_images = signal_rates * images + noise_rates * noises
        pred_noises = network([noisy_images, noise_rates**2], training=False)
        return float(np.mean(np.abs(to_numpy(pred_noises) - noises)))

    before = validation_noise_loss(model.network)
    before_ema = validation_noise_loss(model.ema_network)
    history = model.fit(train, batch_size=config.batch_size, epochs=3, verbose=0).history
    after = validation_noise_loss(model.network)
    after_ema = validation_noise_loss(model.ema_network)

    assert np.all(np.isfinite(history["n_loss"]))
    assert history["n_loss"][-1] < history["n_loss"][0]
    assert after < 0.9 * before, (before, after)  # predicting zeros scores about 0.8
    # The EMA twin has moved only a few percent of the way after ~36 steps, but towards it.
    assert after_ema < before_ema, (before_ema, after_ema)


def test_seeded_runs_are_reproducible(recorded_run):
    model, history, _, _ = recorded_run
    again, again_history, _ = train_tiny(TINY.replace(ema=0.5))
    np.testing.assert_allclose(again_history["n_loss"], history["n_loss"], rtol=1e-5)
    for a, b in zip(again.ema_network.get_weights(), model.ema_network.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(to_numpy(again.seed_generator.state), to_numpy(model.seed_generator.state))


def test_training_draws_fresh_noise_every_step(recorded_run):
    model, history, _, _ = recorded_run
    # Four steps, each drawing noise and times, moved the generator on from its start.
    start = to_numpy(keras.random.SeedGenerator(TINY.seed).state)
    assert not np.array_equal(to_numpy(model.seed_generator.state), start)
    assert len(set(np.round(history["n_loss"], 6))) == len(history["n_loss"])


# ---------------------------------------------------------------------------- EMA
def test_ema_weights_are_the_exponential_average_of_the_trained_weights(recorded_run):
    model, _, initial, per_step = recorded_run
    assert len(per_step) == 4
    expected = [w.astype("float64") for w in initial]  # the EMA twin starts as a copy
    for weights in per_step:
        expected = [0.5 * e + 0.5 * w for e, w in zip(expected, weights, strict=True)]
    ema = model.ema_network.get_weights()
    for got, want in zip(ema, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # It really averages: neither the start nor the latest weights.
    kernel = [i for i, v in enumerate(model.network.weights) if v.path.endswith("pred_noises/kernel")][0]
    assert np.abs(ema[kernel] - per_step[-1][kernel]).max() > 1e-5
    assert np.abs(ema[kernel] - initial[kernel]).max() > 1e-5


def test_steps_per_execution_gives_the_same_training(recorded_run):
    model, history, _, _ = recorded_run
    if BACKEND == "torch":
        with pytest.warns(UserWarning, match="steps_per_execution"):
            grouped, grouped_history, _ = train_tiny(TINY.replace(ema=0.5, steps_per_execution=2))
        assert grouped.steps_per_execution == 1
    else:
        grouped, grouped_history, _ = train_tiny(TINY.replace(ema=0.5, steps_per_execution=2))
        assert grouped.steps_per_execution == 2
    for a, b in zip(grouped.network.get_weights(), model.network.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(grouped.ema_network.get_weights(), model.ema_network.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------- mixed precision
def test_mixed_bfloat16_trains_with_a_finite_loss():
    model, history, _ = train_tiny(TINY.replace(mixed_precision="mixed_bfloat16"), steps=2)
    assert model.network.get_layer("down0_res0_conv1").compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model.network.weights)  # weights stay float32
    assert np.all(np.isfinite(history["n_loss"]))
    assert all(np.all(np.isfinite(w)) for w in model.ema_network.get_weights())
    samples = to_numpy(model.generate(2, 2, seed=0))  # the compiled sampler runs the bf16 network too
    assert samples.shape == (2, 16, 16, 3) and np.all(np.isfinite(samples))


def test_mixed_float16_uses_loss_scaling():
    model = DiffusionModel(TINY.replace(mixed_precision="mixed_float16"))
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, keras.optimizers.AdamW)
    assert model.network.get_layer("pred_noises").compute_dtype == "float32"  # the output stays float32
