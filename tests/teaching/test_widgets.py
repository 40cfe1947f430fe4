"""The explorers of ddim_tutorial.teaching.widgets, driven headlessly: set .value, click, read the result.

Most tests use a fake model whose ``generate`` returns images that encode its arguments, so a
test can tell exactly which setting was computed and count the calls (cache hits make none).
Slow models are faked on a fake clock (``explorer._timer``): each grid advances it by its cost in
network evaluations, so what an explorer decides from its timings is tested without real time.
A few tests run a real, untrained smoke-size DiffusionModel end to end.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from ddim_tutorial import DDIMConfig  # noqa: E402
from ddim_tutorial.teaching import explorer as explorer_module  # noqa: E402
from ddim_tutorial.teaching import widgets  # noqa: E402
from ddim_tutorial.teaching.interpolation import seeded_noise, slerp  # noqa: E402

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

    from ddim_tutorial.core.schedule import diffusion_schedule
    from ddim_tutorial.data.synthetic import synthetic_flowers

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


# ------------------------------------------- slow models: a fake clock, no real timing
class FakeClock:
    """Stands in for ``explorer._timer``: time moves only when a fake model says it worked."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(explorer_module, "_timer", fake)
    return fake


class TimedFakeModel(FakeModel):
    """A FakeModel whose grids cost ``seconds_per_evaluation`` per network evaluation on ``clock``.

    ``compile_seconds`` is added to the first call of each sampler (a compiled program being
    traced); ``slowdown`` multiplies one sampler's cost (a setting slower than predicted).
    """

    def __init__(self, clock: FakeClock, seconds_per_evaluation: float, *, compile_seconds: float = 0.0,
                 slowdown: dict | None = None, config: DDIMConfig | None = None) -> None:
        super().__init__(config or SMOKE.replace(plot_diffusion_steps=20))
        self.clock, self.seconds_per_evaluation = clock, seconds_per_evaluation
        self.compile_seconds, self.slowdown = compile_seconds, slowdown or {}
        self.compiled: set = set()

    def generate(self, num_images, diffusion_steps=None, *, sampler="ddim", **kwargs):
        from ddim_tutorial.core.sampling import network_evaluations

        seconds = network_evaluations(sampler, diffusion_steps) * self.seconds_per_evaluation
        seconds *= self.slowdown.get(sampler, 1.0)
        if sampler not in self.compiled:
            self.compiled.add(sampler)
            seconds += self.compile_seconds
        self.clock.now += seconds
        return super().generate(num_images, diffusion_steps, sampler=sampler, **kwargs)


def test_slow_ddim_opens_live_at_the_second_order_sampler(clock):
    """Issue 21, item 9: DDIM at 20 steps takes 1.6 s, DPM++ 2S at 5 steps (9 evaluations) 0.72 s."""
    model = TimedFakeModel(clock, 0.08)
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert explorer.live and explorer.controls["sample"].layout.display == "none"
    assert "ddim-live" in classes(explorer.widget)
    assert [(call["sampler"], call["steps"]) for call in model.calls] == [("ddim", 20), ("ddim", 20), ("dpm++2s", 5)]
    assert (explorer.controls["sampler"].value, explorer.controls["steps"].value) == ("dpm++2s", 5)
    assert explorer.settings_shown["sampler"] == "dpm++2s" and explorer.settings_shown["steps"] == 5
    assert "DPM++ 2S, 5 steps (9 network evaluations)" in explorer.figure.texts[0].get_text()
    note = "DDIM, 20 steps takes 1.6 s here, so the explorer opens at DPM++ 2S, 5 steps (0.7 s)"
    assert explorer.opening_note.startswith(note) and note in explorer.status.value
    assert "\n" not in explorer.opening_note
    # The full range stays: moving a slider redraws at once, and the default is one move away.
    steps = explorer.controls["steps"]
    assert (steps.min, steps.max) == (1, 50)
    steps.value = 7
    assert (model.calls[-1]["sampler"], model.calls[-1]["steps"]) == ("dpm++2s", 7)
    explorer.controls["sampler"].value = "ddim"
    calls = len(model.calls)
    steps.value = 20  # the default setting, computed at the start: from the cache
    assert (explorer.settings_shown["sampler"], explorer.settings_shown["steps"]) == ("ddim", 20)
    assert len(model.calls) == calls and "cache" in explorer.status.value


def test_the_cheaper_setting_is_timed_again_after_its_compilation(clock):
    model = TimedFakeModel(clock, 0.08, compile_seconds=0.5)  # DDIM 1.6 + 0.5 s, DPM++ 0.72 + 0.5 s
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert explorer.live and explorer.controls["steps"].value == 5
    assert [(call["sampler"], call["steps"]) for call in model.calls] == [("ddim", 20), ("ddim", 20),
                                                                          ("dpm++2s", 5), ("dpm++2s", 5)]
    assert "(0.7 s)" in explorer.opening_note


def test_a_setting_slower_than_predicted_is_followed_by_a_cheaper_one(clock):
    model = TimedFakeModel(clock, 0.08, slowdown={"dpm++2s": 2.0})  # DPM++ 5 steps: 1.44 s, 3 steps: 0.8 s
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert explorer.live and (explorer.controls["sampler"].value, explorer.controls["steps"].value) == ("dpm++2s", 3)
    assert "DPM++ 2S, 3 steps (0.8 s)" in explorer.opening_note


def test_too_slow_for_any_cheaper_setting_keeps_the_default_and_the_button(clock):
    model = TimedFakeModel(clock, 0.3)  # DDIM 20 steps: 6 s; even DPM++ 3 steps would take 1.5 s
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert not explorer.live and explorer.controls["sample"].layout.display != "none"
    assert explorer.opening_note is None
    assert len(model.calls) == 2, "one default grid, and one warm run to time it: no cheaper setting fits"
    assert (explorer.controls["sampler"].value, explorer.controls["steps"].value) == ("ddim", 20)
    assert "6.0 s" in explorer.status.value and "sample" in explorer.status.value
    explorer.controls["steps"].value = 5
    assert len(model.calls) == 2 and "press" in explorer.status.value
    explorer.controls["sample"].click()
    assert model.calls[-1]["steps"] == 5


def test_after_two_misses_the_default_comes_back(clock):
    model = TimedFakeModel(clock, 0.08, slowdown={"dpm++2s": 4.0})  # DPM++ 5 steps: 2.9 s, 3 steps: 1.6 s
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert not explorer.live
    assert (explorer.controls["sampler"].value, explorer.controls["steps"].value) == ("ddim", 20)
    assert explorer.settings_shown["sampler"] == "ddim" and "DDIM, 20 steps" in explorer.figure.texts[0].get_text()
    assert [(call["sampler"], call["steps"]) for call in model.calls] == [("ddim", 20), ("ddim", 20),
                                                                          ("dpm++2s", 5), ("dpm++2s", 5)]


@pytest.mark.parametrize("live", [True, False])
def test_forced_live_or_not_opens_at_the_default(clock, live):
    model = TimedFakeModel(clock, 0.08)
    explorer = widgets.sampler_explorer(model, num_images=2, live=live)
    assert explorer.live is live and explorer.opening_note is None
    assert (explorer.controls["sampler"].value, explorer.controls["steps"].value) == ("ddim", 20)
    assert len(model.calls) == 1


def test_first_slow_call_is_timed_again_warm(clock):
    """A first grid slowed by compilation alone does not keep the button, nor change the setting."""
    model = TimedFakeModel(clock, 0.01, compile_seconds=2.0)
    explorer = widgets.sampler_explorer(model, num_images=2)
    assert explorer.live and explorer.opening_note is None
    assert (explorer.controls["sampler"].value, explorer.controls["steps"].value) == ("ddim", 20)
    assert "the picture follows the sliders" in explorer.status.value
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
    from ddim_tutorial.data.synthetic import synthetic_flowers

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


# ------------------------------------------------------------------ guidance
class TimedConditionalModel(FakeModel):
    """A class-conditional FakeModel whose guided grids cost ``seconds_per_step`` per step on ``clock``."""

    def __init__(self, clock: FakeClock, seconds_per_step: float) -> None:
        super().__init__(SMOKE.replace(plot_diffusion_steps=20, num_classes=3, class_names=("a", "b", "c")))
        self.clock, self.seconds_per_step = clock, seconds_per_step

    def generate(self, num_images, diffusion_steps=None, *, seed=None, class_labels=None, guidance_scale=1.0):
        self.clock.now += diffusion_steps * self.seconds_per_step
        self.calls.append(dict(steps=diffusion_steps, seed=seed, class_labels=class_labels, guidance=guidance_scale))
        size = self.config.image_size
        key = [diffusion_steps, seed, class_labels, round(guidance_scale * 10)]
        return np.random.default_rng(key).random((num_images, size, size, 3), dtype=np.float32)


def test_slow_guidance_explorer_opens_live_at_fewer_steps(clock):
    model = TimedConditionalModel(clock, 0.08)  # 20 steps: 1.6 s; 10 steps: 0.8 s
    explorer = widgets.guidance_explorer(model, num_images=2)
    assert explorer.live and explorer.controls["steps"].value == 10
    assert explorer.controls["steps"].max == 50
    assert explorer.opening_note.startswith("20 steps takes 1.6 s here, so the explorer opens at 10 steps (0.8 s)")
    explorer.controls["guidance"].value = 5.0
    assert model.calls[-1]["steps"] == 10 and model.calls[-1]["guidance"] == 5.0


def test_guidance_explorer_never_opens_below_its_fewest_steps(clock):
    model = TimedConditionalModel(clock, 0.1)  # 10 steps would take 1 s
    explorer = widgets.guidance_explorer(model, num_images=2)
    assert not explorer.live and explorer.controls["steps"].value == 20
    assert [call["steps"] for call in model.calls] == [20, 20]


# ------------------------------------------------- the trajectory runs the package's sampler
@pytest.mark.parametrize("prediction_type", ["image", "velocity"])
def test_trajectory_explorer_follows_the_models_prediction_type(prediction_type):
    """Issue 21: the trajectory re-implemented the sampler and read every output as noise."""
    import keras

    from ddim_tutorial import DiffusionModel
    from ddim_tutorial.data.synthetic import synthetic_flowers

    model = DiffusionModel(SMOKE.replace(prediction_type=prediction_type))
    model.adapt_normalizer(synthetic_flowers(32, SMOKE.image_size, seed=0))
    rng = np.random.default_rng(0)
    for variable in model.ema_network.layers[-1].weights:  # the zero-initialized last layer: give it an answer
        variable.assign(0.05 * rng.standard_normal(tuple(variable.shape)).astype("float32"))
    keras.utils.set_random_seed(0)
    for eta in (0.0, 0.5):
        explorer = widgets.trajectory_explorer(model, steps=4, seed=3, live=False)
        explorer.controls["eta"].value = eta
        explorer.refresh(compute=True)
        last = np.asarray(model.denormalize(explorer.result[-1].pred_images))
        expected = np.asarray(model.generate(1, 4, eta=eta, seed=3, compiled=False))
        np.testing.assert_allclose(last, expected, atol=1e-5)


# --------------------------------------------------------------------- paths
def test_paths_explorer_compares_two_paths_from_the_same_noise(tiny_model):
    from ddim_tutorial import DiffusionModel
    from ddim_tutorial.data.synthetic import synthetic_flowers

    flow = DiffusionModel(SMOKE.replace(path="linear", prediction_type="flow"))
    flow.adapt_normalizer(synthetic_flowers(32, SMOKE.image_size, seed=0))
    last = flow.ema_network.layers[-1]  # an untrained network answers zero: give it something to follow
    rng = np.random.default_rng(0)
    last.set_weights([0.05 * rng.standard_normal(w.shape).astype("float32") for w in last.get_weights()])
    explorer = widgets.paths_explorer({"cosine": tiny_model, "linear": flow}, num_images=2, steps=2, live=False)
    assert "ddim-paths" in classes(explorer.widget)
    result = explorer.result
    assert result["images"].shape == (4, SMOKE.image_size, SMOKE.image_size, 3) and len(result["distances"]) == 2
    for row, (label, model) in enumerate(explorer.models.items()):
        images = result["images"][2 * row:2 * row + 2]
        np.testing.assert_allclose(images, np.asarray(model.generate(2, 2, seed=0)), atol=1e-5)
        reference = explorer.reference(label, 0)
        assert result["distances"][row] == pytest.approx(np.abs(images - reference).mean(), rel=1e-5)
    explorer.controls["steps"].value = 50
    explorer.controls["sample"].click()
    assert explorer.result["distances"][1] < result["distances"][1], \
        "more steps come closer to the model's own many-step solution"


def test_paths_explorer_needs_models_of_one_size(tiny_model):
    with pytest.raises(ValueError, match="needs a dict"):
        widgets.paths_explorer([tiny_model])
    from ddim_tutorial import DiffusionModel

    bigger = DiffusionModel(SMOKE.replace(image_size=64))
    with pytest.raises(ValueError, match="different sizes"):
        widgets.paths_explorer({"a": tiny_model, "b": bigger})
