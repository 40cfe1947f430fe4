"""Flow matching as another path and another prediction type: the linear path, the flow velocity,
the DDIM step that is an Euler step there, both samplers, training, checkpoints and the CLI.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_flow_matching.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ddim_tutorial.cli import parser as cli
from ddim_tutorial.config import PATH_PREDICTION_TYPES, DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.predictions import components_from_predictions, prediction_targets
from ddim_tutorial.core.sampling import ddim_step, reverse_diffusion
from ddim_tutorial.core.schedule import diffusion_schedule, onto_path, path_parameters, path_rates
from ddim_tutorial.runtime.compiled_sampling import CompiledSampler
from ddim_tutorial.training.checkpoints import load_checkpoint, read_checkpoint_config, save_checkpoint

FLOW = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4, seed=0,
                         path="linear", prediction_type="flow")
GAUSS_MEAN, GAUSS_STD = 0.3, 0.5


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype="float64")


# ------------------------------------------------------------------------ the path
def test_the_linear_path_is_a_straight_line_over_the_same_signal_rates():
    times = np.linspace(0.0, 1.0, 11).reshape(-1, 1, 1, 1)
    noise_rates, signal_rates = (to_numpy(r) for r in diffusion_schedule(times, 0.02, 0.95, path="linear"))
    np.testing.assert_allclose(noise_rates + signal_rates, 1.0, atol=1e-6)
    np.testing.assert_allclose(np.diff(signal_rates.ravel()), -0.093, atol=1e-6)  # equal steps in signal rate
    cosine_noise, cosine_signal = (to_numpy(r) for r in diffusion_schedule(times, 0.02, 0.95))
    np.testing.assert_allclose(signal_rates[[0, -1]].ravel(), cosine_signal[[0, -1]].ravel(), atol=1e-6)
    np.testing.assert_allclose(cosine_noise**2 + cosine_signal**2, 1.0, atol=1e-6)
    assert path_parameters(0.02, 0.95, "linear") == pytest.approx((0.05, 0.93))


def test_onto_path_keeps_the_signal_to_noise_ratio():
    noises, signals = np.array([0.3, 2.0]), np.array([0.4, 1.0])
    for path, total in (("cosine", lambda n, s: n**2 + s**2), ("linear", lambda n, s: n + s)):
        n, s = (to_numpy(r) for r in onto_path(noises, signals, path))
        np.testing.assert_allclose(total(n, s), 1.0, atol=1e-6)
        np.testing.assert_allclose(s / n, signals / noises, rtol=1e-6)


@pytest.mark.parametrize("path", ["cosine", "linear"])
def test_path_rates_are_the_schedule_without_its_checks(path):
    times = np.random.default_rng(0).uniform(size=(5, 1, 1, 1))
    expected = diffusion_schedule(times, 0.02, 0.95, path=path)
    times = keras.ops.convert_to_tensor(times, "float32")  # the math takes tensors
    for got, want in zip(path_rates(times, *path_parameters(0.02, 0.95, path), path), expected, strict=True):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), atol=1e-6)


# ---------------------------------------------------------------- the prediction
def test_the_flow_velocity_is_noise_minus_image_and_gives_both_back():
    rng = np.random.default_rng(0)
    images, noises = rng.standard_normal((2, 3, 4, 4, 3))
    noise_rates = rng.uniform(0.05, 0.98, size=(3, 1, 1, 1))
    signal_rates = 1.0 - noise_rates
    noisy_images = signal_rates * images + noise_rates * noises
    velocities = prediction_targets(images, noises, noise_rates, signal_rates, "flow")
    np.testing.assert_allclose(to_numpy(velocities), noises - images)
    pred_noises, pred_images = components_from_predictions(velocities, noisy_images, noise_rates, signal_rates, "flow")
    np.testing.assert_allclose(to_numpy(pred_noises), noises, atol=1e-10)
    np.testing.assert_allclose(to_numpy(pred_images), images, atol=1e-10)


def test_each_path_trains_only_the_prediction_types_that_fit_it():
    assert PATH_PREDICTION_TYPES["linear"][0] == "flow" and "flow" not in PATH_PREDICTION_TYPES["cosine"]
    with pytest.raises(ValueError, match="prediction_type='flow' is invalid with path='cosine'"):
        DDIMConfig(prediction_type="flow")
    with pytest.raises(ValueError, match="prediction_type='velocity' is invalid with path='linear'"):
        DDIMConfig(path="linear", prediction_type="velocity")
    with pytest.raises(ValueError, match="DDIMConfig.path='straight' is invalid"):
        DDIMConfig(path="straight")
    with pytest.raises(ValueError, match="path='curved' is invalid"):
        diffusion_schedule(np.zeros((1, 1, 1, 1)), path="curved")
    DDIMConfig(path="linear", prediction_type="noise")  # noise and image predictions work on both paths


# --------------------------------------------- a DDIM step is an Euler step (Gao et al. 2024)
@pytest.fixture(scope="module")
def flow_model():
    keras.utils.set_random_seed(0)
    model = DiffusionModel(FLOW)
    model.adapt_normalizer(np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32"))
    last = model.ema_network.get_layer("pred_flow_velocities")  # a network that predicts something non-zero
    rng = np.random.default_rng(1)
    last.set_weights([0.05 * rng.standard_normal(w.shape).astype("float32") for w in last.get_weights()])
    return model


def test_a_ddim_step_on_the_linear_path_is_an_euler_step_on_the_velocity(flow_model):
    noisy_images = keras.ops.convert_to_tensor(np.random.default_rng(2).standard_normal((3, 16, 16, 3)), "float32")
    times, next_times = np.full((3, 1, 1, 1), 0.7, "float32"), np.full((3, 1, 1, 1), 0.6, "float32")
    noise_rates, signal_rates = flow_model.diffusion_schedule(times)
    next_noise_rates, next_signal_rates = flow_model.diffusion_schedule(next_times)
    velocities = flow_model.ema_network([noisy_images, noise_rates**2], training=False)
    pred_noises, pred_images = flow_model.denoise(noisy_images, noise_rates, signal_rates, training=False)
    ddim = ddim_step(pred_noises, pred_images, noise_rates, signal_rates, next_noise_rates, next_signal_rates)
    euler = noisy_images + (next_noise_rates - noise_rates) * velocities  # dx/dn = noise - image = velocity
    assert to_numpy(keras.ops.abs(velocities)).max() > 0.01, "the network must predict something"
    np.testing.assert_allclose(to_numpy(ddim), to_numpy(euler), atol=2e-6)


# ---------------------------------------------------------------- the samplers
class ExactGaussianFlow(keras.layers.Layer):
    """The exact flow velocity E[noise - image | noisy] on the linear path when every pixel is
    N(GAUSS_MEAN, GAUSS_STD**2), or the exact noise with ``prediction_type="noise"``."""

    def __init__(self, prediction_type="flow", **kwargs):
        super().__init__(**kwargs)
        self.prediction_type = prediction_type

    def call(self, inputs):
        noisy_images, noise_variances = inputs
        noise_rates = keras.ops.sqrt(noise_variances)
        signal_rates = 1.0 - noise_rates
        centred = noisy_images - signal_rates * GAUSS_MEAN
        denominator = signal_rates**2 * GAUSS_STD**2 + noise_rates**2
        noises = noise_rates * centred / denominator
        images = GAUSS_MEAN + signal_rates * GAUSS_STD**2 * centred / denominator
        return prediction_targets(images, noises, noise_rates, signal_rates, self.prediction_type)


def exact_network(prediction_type="flow") -> keras.Model:
    noisy_images, noise_variances = keras.Input((8, 8, 3)), keras.Input((1, 1, 1))
    outputs = ExactGaussianFlow(prediction_type)([noisy_images, noise_variances])
    return keras.Model([noisy_images, noise_variances], outputs)


def test_both_samplers_converge_to_one_solution_and_noise_prediction_agrees():
    noise = np.random.default_rng(3).standard_normal((2, 8, 8, 3)).astype("float32")
    network = exact_network()

    def sample(steps, sampler, net=network, prediction_type="flow"):
        return to_numpy(reverse_diffusion(net, noise, steps, sampler=sampler, prediction_type=prediction_type,
                                          path="linear"))

    exact = sample(60, "dpm++2s")
    ddim_errors = [np.abs(sample(steps, "ddim") - exact).mean() for steps in (10, 40, 160)]
    assert ddim_errors[0] > ddim_errors[1] > ddim_errors[2], "Euler converges as the steps grow"
    assert np.abs(sample(5, "dpm++2s") - exact).mean() < ddim_errors[0], "9 evaluations of DPM++ beat 10 of Euler"
    np.testing.assert_allclose(sample(10, "ddim", exact_network("noise"), "noise"), sample(10, "ddim"), atol=2e-4)
    # The sample is drawn towards the data: the exact denoiser's images have the data's mean.
    assert abs(exact.mean() - GAUSS_MEAN) < 0.15


@pytest.mark.parametrize("sampler", ["ddim", "dpm++2s"])
def test_eager_and_compiled_samplers_agree_on_the_linear_path(flow_model, sampler):
    noise = flow_model.initial_noise(2, seed=4)
    eager = flow_model.generate(2, 4, initial_noise=noise, sampler=sampler, compiled=False)
    compiled = flow_model.generate(2, 4, initial_noise=noise, sampler=sampler)
    np.testing.assert_allclose(to_numpy(compiled), to_numpy(eager), atol=1e-4)
    assert CompiledSampler(flow_model).config.path == "linear"


def test_the_linear_path_refuses_eta_with_the_reason(flow_model):
    with pytest.raises(ValueError, match="eta=0.5 is invalid on the linear path"):
        flow_model.generate(2, 4, eta=0.5, seed=0)
    with pytest.raises(ValueError, match="prediction_type='flow' is invalid with path='cosine'"):
        reverse_diffusion(exact_network(), np.zeros((1, 8, 8, 3), "float32"), 2, prediction_type="flow")


# ------------------------------------------------------- training and checkpoints
def test_a_flow_model_trains_and_its_checkpoint_keeps_the_path(tmp_path):
    keras.utils.set_random_seed(0)
    model = DiffusionModel(FLOW)
    images = np.random.default_rng(0).random((8, 16, 16, 3)).astype("float32")
    model.adapt_normalizer(images)
    model.compile()
    outputs = model(images, training=True)
    np.testing.assert_allclose(to_numpy(outputs["targets"]), to_numpy(outputs["noises"] - outputs["images"]),
                               atol=1e-6)
    loss = float(to_numpy(model.compute_loss(y_pred=outputs)))
    expected = np.mean(np.abs(to_numpy(outputs["targets"]) - to_numpy(outputs["pred_targets"])))
    assert loss == pytest.approx(expected, rel=1e-5)
    model.fit(images, epochs=1, batch_size=4, verbose=0)
    folder = save_checkpoint(model, tmp_path / "flow")
    assert read_checkpoint_config(folder).path == "linear"
    restored = load_checkpoint(folder)
    noise = model.initial_noise(2, seed=1)
    np.testing.assert_allclose(to_numpy(restored.generate(2, 3, initial_noise=noise)),
                               to_numpy(model.generate(2, 3, initial_noise=noise)), atol=1e-5)


def test_cli_train_path_linear_predicts_the_flow_velocity(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr("ddim_tutorial.training.driver.train", lambda config, **kwargs: seen.append(config))
    assert cli.main(["train", "--preset", "smoke", "--path", "linear", "--out", str(tmp_path / "run")]) == 0
    assert (seen[-1].path, seen[-1].prediction_type) == ("linear", "flow")
    assert cli.main(["train", "--preset", "smoke", "--path", "linear", "--set", "prediction_type=noise",
                     "--out", str(tmp_path / "run")]) == 0
    assert (seen[-1].path, seen[-1].prediction_type) == ("linear", "noise")
