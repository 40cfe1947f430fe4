"""The explorers of ddim_tutorial.widgets, driven headlessly: set .value, click, read the result.

Most tests use a fake model whose ``generate`` returns images that encode its arguments, so a
test can tell exactly which setting was computed and count the calls (cache hits make none).
Two tests run a real, untrained smoke-size DiffusionModel end to end.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from ddim_tutorial import DDIMConfig, widgets  # noqa: E402
from ddim_tutorial import explorer as explorer_module  # noqa: E402
from ddim_tutorial.interpolation import seeded_noise, slerp  # noqa: E402

PNG_MAGIC = b"\x89PNG"
SMOKE = DDIMConfig.preset("smoke")


class FakeModel:
    """Stands in for DiffusionModel: records calls; images depend only on the arguments."""

    def __init__(self, config: DDIMConfig = SMOKE) -> None:
        self.config = config
        self.calls: list[dict] = []

    def generate(self, num_images, diffusion_steps=None, *, eta=0.0, seed=None, initial_noise=None,
                 min_signal_rate=None, max_signal_rate=None, sampler="ddim"):
        self.calls.append(dict(num_images=num_images, steps=diffusion_steps, eta=eta, seed=seed,
                               initial_noise=None if initial_noise is None else np.array(initial_noise),
                               min_signal_rate=min_signal_rate, max_signal_rate=max_signal_rate, sampler=sampler))
        if initial_noise is not None:
            return 1.0 / (1.0 + np.exp(-np.asarray(initial_noise, dtype=np.float32)))
        key = [int(diffusion_steps), int(seed or 0), round(eta * 100), round((min_signal_rate or 0) * 1000),
               round((max_signal_rate or 0) * 1000), ["ddim", "dpm++2s"].index(sampler)]
        size = self.config.image_size
        return np.random.default_rng(key).random((num_images, size, size, 3), dtype=np.float32)


def classes(widget) -> list[str]:
    return list(widget._dom_classes)


# ------------------------------------------------------------------ schedule
def test_schedule_explorer_renders_default_then_recomputes_and_caches():
    explorer = widgets.schedule_explorer()
    assert (explorer.renders, explorer.computations, explorer.cache_hits) == (1, 1, 0)
    first_png = explorer.png
    assert first_png.startswith(PNG_MAGIC)
    assert explorer.figure is not None and len(explorer.figure.axes) == 2
    assert explorer.result["signal_rates"][0] == pytest.approx(0.95, abs=1e-5)
    assert explorer.result["signal_rates"][-1] == pytest.approx(0.02, abs=1e-5)

    explorer.controls["min signal"].value = 0.1
    assert (explorer.renders, explorer.computations) == (2, 2)
    assert explorer.result["signal_rates"][-1] == pytest.approx(0.1, abs=1e-5)
    assert explorer.png != first_png

    explorer.controls["min signal"].value = 0.02  # back to a setting already computed
    assert (explorer.renders, explorer.computations, explorer.cache_hits) == (3, 2, 1)
    assert explorer.result["signal_rates"][-1] == pytest.approx(0.02, abs=1e-5)
    assert "cache" in explorer.status.value


def test_schedule_explorer_reports_an_impossible_range_instead_of_crashing():
    explorer = widgets.schedule_explorer()
    explorer.controls["max signal"].value = 0.5  # still valid: drawn
    figure, renders = explorer.figure, explorer.renders
    explorer.controls["min signal"].value = 0.5
    assert "smaller than max signal" in explorer.status.value
    assert explorer.figure is figure and explorer.renders == renders


def test_cache_keeps_only_the_most_recent_settings(monkeypatch):
    monkeypatch.setattr(explorer_module, "CACHE_SIZE", 2)
    explorer = widgets.schedule_explorer()
    for value in (0.1, 0.2):
        explorer.controls["min signal"].value = value
    assert len(explorer.cache) == 2
    explorer.controls["min signal"].value = 0.02  # evicted: computed again
    assert explorer.computations == 4


# ------------------------------------------------------------------- noising
def test_noising_explorer_noise_grows_with_t_and_matches_the_schedule():
    from keras import ops

    from ddim_tutorial.synthetic import synthetic_flowers
    from ddim_tutorial.schedule import diffusion_schedule

    images = synthetic_flowers(3, 16, seed=0)
    explorer = widgets.noising_explorer(images, t=0.0)
    clean_distance = np.abs(explorer.result["noisy_images"] - images).mean()
    explorer.controls["t"].value = 1.0
    noisy_distance = np.abs(explorer.result["noisy_images"] - images).mean()
    assert noisy_distance > 2 * clean_distance

    noise_rate, signal_rate = (float(ops.convert_to_numpy(r)) for r in diffusion_schedule(np.float32(1.0)))
    assert explorer.result["snr"] == pytest.approx(signal_rate**2 / noise_rate**2, rel=1e-5)
    assert explorer.result["noisy_images"].shape == images.shape
    assert 0.0 <= explorer.result["noisy_images"].min() and explorer.result["noisy_images"].max() <= 1.0

    before = explorer.result["noisy_images"]
    explorer.controls["seed"].value = 7
    assert not np.allclose(explorer.result["noisy_images"], before)
    explorer.controls["seed"].value = 0
    assert explorer.cache_hits == 1
    np.testing.assert_array_equal(explorer.result["noisy_images"], before)


def test_noising_explorer_rejects_images_without_spread():
    with pytest.raises(ValueError, match="zero spread"):
        widgets.noising_explorer(np.full((2, 8, 8, 3), 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        widgets.noising_explorer(np.zeros((8, 8), dtype=np.float32))


# ------------------------------------------------------------------- sampler
def test_sampler_explorer_computes_only_on_sample_and_reuses_the_cache():
    model = FakeModel()
    explorer = widgets.sampler_explorer(model, num_images=4, live=False)
    assert len(model.calls) == 1
    call = model.calls[0]
    assert (call["num_images"], call["steps"], call["eta"], call["seed"]) == (4, SMOKE.plot_diffusion_steps, 0.0, 0)
    assert (call["min_signal_rate"], call["max_signal_rate"]) == pytest.approx((0.02, 0.95))
    default_images, default_png = explorer.result, explorer.png
    assert default_images.shape == (4, SMOKE.image_size, SMOKE.image_size, 3)

    explorer.controls["steps"].value = 5
    assert len(model.calls) == 1, "a slider alone must not run the model"
    assert "press" in explorer.status.value
    np.testing.assert_array_equal(explorer.result, default_images)

    explorer.controls["sample"].click()
    assert len(model.calls) == 2 and model.calls[-1]["steps"] == 5
    assert not np.allclose(explorer.result, default_images)
    assert explorer.png != default_png

    explorer.controls["eta"].value = 0.5
    explorer.controls["max signal"].value = 0.9
    explorer.controls["sample"].click()
    assert model.calls[-1]["eta"] == pytest.approx(0.5)
    assert model.calls[-1]["max_signal_rate"] == pytest.approx(0.9)

    # Back to the default setting: shown from the cache at once, without pressing sample.
    explorer.controls["eta"].value = 0.0
    explorer.controls["max signal"].value = SMOKE.max_signal_rate
    explorer.controls["steps"].value = SMOKE.plot_diffusion_steps
    assert len(model.calls) == 3
    assert explorer.cache_hits >= 1
    np.testing.assert_array_equal(explorer.result, default_images)
    assert explorer.png == default_png


def test_sampler_selector_switches_the_sampler_and_counts_its_evaluations():
    model = FakeModel()
    explorer = widgets.sampler_explorer(model, num_images=2, steps=5, live=False)
    ddim_images, ddim_png = explorer.result, explorer.png
    assert model.calls[-1]["sampler"] == "ddim" and "5 network evaluations" in explorer.figure.texts[0].get_text()

    explorer.controls["sampler"].value = "dpm++2s"  # what clicking "DPM++ 2S" does
    assert len(model.calls) == 1 and "press" in explorer.status.value
    explorer.controls["sample"].click()
    assert model.calls[-1]["sampler"] == "dpm++2s" and model.calls[-1]["steps"] == 5
    assert not np.allclose(explorer.result, ddim_images) and explorer.png != ddim_png
    assert "DPM++ 2S, 5 steps (9 network evaluations)" in explorer.figure.texts[0].get_text()

    explorer.controls["eta"].value = 0.5  # eta is DDIM's: refused with a message, nothing runs
    explorer.controls["sample"].click()
    assert len(model.calls) == 2 and "set eta to 0" in explorer.status.value
    explorer.controls["sampler"].value = "ddim"
    explorer.controls["sample"].click()
    assert model.calls[-1]["sampler"] == "ddim" and model.calls[-1]["eta"] == pytest.approx(0.5)
    explorer.controls["eta"].value = 0.0  # back to the first setting: from the cache
    assert len(model.calls) == 3
    np.testing.assert_array_equal(explorer.result, ddim_images)
    with pytest.raises(ValueError, match="sampler='heun' is invalid"):
        widgets.sampler_explorer(model, sampler="heun")


def test_live_sampler_redraws_when_the_sampler_is_chosen():
    model = FakeModel()
    explorer = widgets.sampler_explorer(model, num_images=2, sampler="dpm++2s")
    assert explorer.live and model.calls[-1]["sampler"] == "dpm++2s"
    explorer.controls["sampler"].value = "ddim"
    assert model.calls[-1]["sampler"] == "ddim" and explorer.settings_shown["sampler"] == "ddim"


def test_sampler_explorer_refuses_min_signal_above_max_signal():
    model = FakeModel()
    explorer = widgets.sampler_explorer(model, num_images=2, live=False)
    explorer.controls["max signal"].value = 0.5
    explorer.controls["min signal"].value = 0.5
    explorer.controls["sample"].click()
    assert len(model.calls) == 1
    assert "smaller than max signal" in explorer.status.value


def test_sampler_explorer_exposes_the_documented_names():
    explorer = widgets.sampler_explorer(FakeModel(), num_images=2)
    for key in ("steps", "min signal", "max signal", "eta", "seed"):
        control = explorer.controls[key]
        assert control.description == key
        assert control.continuous_update is False
        assert "ddim-control-" + key.replace(" ", "-") in classes(control)
    chooser = explorer.controls["sampler"]
    assert chooser.description == "sampler" and "ddim-control-sampler" in classes(chooser)
    assert [tuple(option) for option in chooser.options] == [("DDIM", "ddim"), ("DPM++ 2S", "dpm++2s")]
    assert chooser.value == "ddim"
    assert explorer.controls["sample"].description == "sample"
    assert "ddim-sample-button" in classes(explorer.controls["sample"])
    assert {"ddim-explorer", "ddim-sampler"} <= set(classes(explorer.widget))
    assert {"ddim-figure", "ddim-grid"} <= set(classes(explorer.image))
    assert "ddim-status" in classes(explorer.status)
    assert explorer.image in explorer.widget.children


class SlowFakeModel(FakeModel):
    """A FakeModel whose every grid takes ``seconds``, to stand for a large model on a CPU."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def generate(self, *args, **kwargs):
        import time

        time.sleep(self.seconds)
        return super().generate(*args, **kwargs)


def test_fast_sampler_redraws_on_slider_release_without_a_button():
    model = FakeModel()
    explorer = widgets.sampler_explorer(model, num_images=4)
    assert explorer.live and explorer.controls["sample"].layout.display == "none"
    assert "ddim-live" in classes(explorer.widget)
    png = explorer.png
    explorer.controls["steps"].value = 5  # what a slider release does
    assert len(model.calls) == 2 and model.calls[-1]["steps"] == 5
    assert explorer.png != png and "press" not in explorer.status.value
    explorer.controls["eta"].value = 0.5
    assert model.calls[-1]["eta"] == pytest.approx(0.5) and explorer.settings_shown["eta"] == 0.5


def test_fast_interpolation_redraws_on_seed_release():
    model = FakeModel()
    explorer = widgets.interpolation_explorer(model, num_mixes=3)
    assert explorer.live
    explorer.controls["seed b"].value = 7
    assert len(model.calls) == 2 and explorer.settings_shown["seed b"] == 7


def test_slow_sampler_keeps_the_button(monkeypatch):
    monkeypatch.setattr(explorer_module, "LIVE_SECONDS", 0.05)
    model = SlowFakeModel(0.1)
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert not explorer.live and explorer.controls["sample"].layout.display != "none"
    assert len(model.calls) == 2, "one default grid, and one warm run to time it"
    explorer.controls["steps"].value = 5
    assert len(model.calls) == 2 and "press" in explorer.status.value
    explorer.controls["sample"].click()
    assert model.calls[-1]["steps"] == 5


def test_first_slow_call_is_timed_again_warm(monkeypatch):
    """A first grid slowed by compilation alone does not keep the button."""
    monkeypatch.setattr(explorer_module, "LIVE_SECONDS", 0.05)

    class CompilesOnce(FakeModel):
        def generate(self, *args, **kwargs):
            import time

            if not self.calls:
                time.sleep(0.1)
            return super().generate(*args, **kwargs)

    assert widgets.sampler_explorer(CompilesOnce(), num_images=2).live
    with pytest.raises(ValueError, match="live"):
        widgets.sampler_explorer(FakeModel(), live="sometimes")


def test_explorers_display_their_container(capsys):
    explorer = widgets.schedule_explorer()
    explorer._ipython_display_()  # outside a notebook this prints the widget's text form
    assert "VBox" in capsys.readouterr().out
    assert "min signal" in repr(explorer)


def test_explorers_reject_things_that_are_not_models():
    with pytest.raises(ValueError, match="DiffusionModel"):
        widgets.sampler_explorer(object())
    with pytest.raises(ValueError, match="num_images"):
        widgets.sampler_explorer(FakeModel(), num_images=0)
    with pytest.raises(ValueError, match="DiffusionModel"):
        widgets.interpolation_explorer(object())


# ------------------------------------------------------------- interpolation
def test_interpolation_explorer_mix_slider_uses_the_computed_row():
    model = FakeModel()
    explorer = widgets.interpolation_explorer(model, seed_a=0, seed_b=1, num_mixes=5, steps=3, live=False)
    assert len(model.calls) == 1
    noises = model.calls[0]["initial_noise"]
    assert noises.shape == (5, SMOKE.image_size, SMOKE.image_size, 3)
    expected = slerp(seeded_noise(SMOKE.image_size, 0), seeded_noise(SMOKE.image_size, 1), np.linspace(0, 1, 5))
    np.testing.assert_allclose(noises, expected, rtol=1e-5, atol=1e-6)

    png = explorer.png
    explorer.controls["mix"].value = 0.0
    assert len(model.calls) == 1 and explorer.mix_index() == 0
    assert explorer.png != png
    explorer.controls["mix"].value = 1.0
    assert explorer.mix_index() == 4 and len(model.calls) == 1

    explorer.controls["spherical"].value = False
    assert "press" in explorer.status.value
    explorer.controls["sample"].click()
    assert len(model.calls) == 2
    middle = model.calls[-1]["initial_noise"][2]
    straight = 0.5 * (seeded_noise(SMOKE.image_size, 0) + seeded_noise(SMOKE.image_size, 1))
    np.testing.assert_allclose(middle, straight, rtol=1e-5, atol=1e-6)


def test_interpolation_explorer_needs_two_different_seeds():
    model = FakeModel()
    explorer = widgets.interpolation_explorer(model, num_mixes=3, live=False)
    explorer.controls["seed b"].value = explorer.controls["seed a"].value
    explorer.controls["sample"].click()
    assert len(model.calls) == 1
    assert "different seeds" in explorer.status.value
    assert {"ddim-interpolation", "ddim-explorer"} <= set(classes(explorer.widget))


# ------------------------------------------------------------- a real model
@pytest.fixture(scope="module")
def tiny_model():
    from ddim_tutorial import DiffusionModel
    from ddim_tutorial.synthetic import synthetic_flowers

    model = DiffusionModel(SMOKE)
    model.adapt_normalizer(synthetic_flowers(32, SMOKE.image_size, seed=0))
    return model


def test_sampler_explorer_with_a_real_model(tiny_model):
    explorer = widgets.sampler_explorer(tiny_model, num_images=2, steps=2, live=False)
    first = explorer.result.copy()
    assert first.shape == (2, SMOKE.image_size, SMOKE.image_size, 3)
    assert 0.0 <= first.min() and first.max() <= 1.0
    explorer.controls["seed"].value = 1
    explorer.controls["sample"].click()
    assert explorer.computations == 2
    assert not np.allclose(explorer.result, first)
    explorer.controls["sampler"].value = "dpm++2s"
    explorer.controls["sample"].click()
    assert explorer.computations == 3 and explorer.result.shape == first.shape
    assert np.all(np.isfinite(explorer.result))


def test_trajectory_explorer_with_a_real_model(tiny_model):
    explorer = widgets.trajectory_explorer(tiny_model, steps=3, max_columns=10, live=False)
    assert [step.step for step in explorer.result] == [0, 1, 2]
    assert {"ddim-trajectory", "ddim-explorer"} <= set(classes(explorer.widget))
    assert len(explorer.figure.axes) == 2 * 3  # noisy row and predicted row, one column per step
    explorer.controls["steps"].value = 2
    explorer.controls["sample"].click()
    assert len(explorer.result) == 2
    deterministic = explorer.result[-1].pred_images
    explorer.controls["eta"].value = 1.0
    explorer.controls["sample"].click()
    assert explorer.computations == 3
    assert not np.allclose(np.asarray(explorer.result[-1].pred_images), np.asarray(deterministic))
