"""The lessons' interactive explorers, for ipywidgets 7.7 (Colab) and 8.x.

Each factory returns an :class:`~ddim_tutorial.teaching.explorer.Explorer` (controls, a cached
computation and a picture; see that module for how caching and live redrawing work).
``explorer.result`` is the last computed result (for the model explorers the sampled images,
float32 ``[N, S, S, 3]`` in [0, 1]); where widgets do not run, end a cell with
``explorer.figure``, a picture of the setting it opened at. The explorers that run the model
sample through the package's samplers: ``model.generate`` (its compiled sampler), or, for the
trajectory, :func:`~ddim_tutorial.core.sampling.reverse_diffusion_steps` with the model's
prediction type and ``generate``'s seeds, so that its last image is ``generate``'s.

Where the default setting cannot redraw in under a second (``explorer.LIVE_SECONDS``), the
sampler explorer opens live at DPM-Solver++(2S) with as many steps as fit (for example 5
steps, 9 network evaluations, instead of DDIM's 20), and the guidance explorer at fewer DDIM
steps (not below ``MIN_GUIDED_STEPS``); the status line says so, and every slider keeps its
range. Where even that is too slow, they wait for **sample** at the default setting.

Names a browser test can rely on (stable across versions):

=========================  =====================  ==========================================
factory                    container CSS class    controls (``description``; dict key)
=========================  =====================  ==========================================
``schedule_explorer()``    ``ddim-schedule``      "min signal", "max signal"
``noising_explorer()``     ``ddim-noising``       "t", "seed"
``sampler_explorer()``     ``ddim-sampler``       "sampler" (toggle buttons "DDIM", "DPM++ 2S"),
                                                  "steps", "min signal", "max signal", "eta",
                                                  "seed", button "sample" (hidden when live)
``trajectory_explorer()``  ``ddim-trajectory``    "steps", "eta", "seed", button "sample"
``interpolation_explorer`` ``ddim-interpolation`` "seed a", "seed b", "mix", "steps",
                                                  "spherical" (checkbox), button "sample"
``guidance_explorer()``    ``ddim-guidance``      "species" (a drop-down), "guidance", "steps",
                                                  "seed", button "sample" (hidden when live)
``paths_explorer()``       ``ddim-paths``         "steps", "seed", button "sample" (hidden when live)
=========================  =====================  ==========================================

The dict keys of ``controls`` are the descriptions. Each control also has the CSS class
``ddim-control-<description with dashes>`` (e.g. ``ddim-control-min-signal``), the button
``ddim-sample-button``. The picture is an ``ipywidgets.Image`` (PNG bytes) with the classes
``ddim-figure`` and, for image grids from the model, ``ddim-grid``; the status line is an
``ipywidgets.HTML`` with class ``ddim-status``. A live explorer's container has the class
``ddim-live``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ddim_tutorial.checks import check_generative_model, check_positive_int
from ddim_tutorial.config import DEFAULT_GUIDANCE_SCALE
from ddim_tutorial.runtime.arrays import to_numpy
from ddim_tutorial.teaching.explorer import Explorer, css_class, import_ipywidgets, slider, toggle_buttons
from ddim_tutorial.teaching.plotting import image_grid, plot_schedules, plot_trajectory, to_pixels

__all__ = [
    "schedule_explorer",
    "noising_explorer",
    "sampler_explorer",
    "trajectory_explorer",
    "interpolation_explorer",
    "guidance_explorer",
    "paths_explorer",
]

#: How the sampler explorer's buttons name the samplers of :mod:`ddim_tutorial.core.sampling`.
SAMPLER_LABELS = {"ddim": "DDIM", "dpm++2s": "DPM++ 2S"}
#: The fewest DPM-Solver++(2S) steps the sampler explorer opens at where DDIM is too slow (5 evaluations).
MIN_LIVE_DPM_STEPS = 3
#: The fewest steps the guidance explorer opens at where its default is too slow.
MIN_GUIDED_STEPS = 10


# ------------------------------------------------------------------ schedule
class ScheduleExplorer(Explorer):
    name = "schedule"

    def __init__(self, min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> None:
        controls = {
            "min signal": slider("float", "min signal", min_signal_rate, 0.01, 0.5, 0.01),
            "max signal": slider("float", "max signal", max_signal_rate, 0.5, 1.0, 0.01),
        }
        super().__init__(controls)

    def _check(self, settings: dict[str, Any]) -> str | None:
        if settings["min signal"] >= settings["max signal"]:
            return "min signal must be smaller than max signal."
        return None

    def _compute(self, settings: dict[str, Any]) -> dict[str, np.ndarray]:
        from keras import ops

        from ddim_tutorial.core.schedule import diffusion_schedule

        times = np.linspace(0.0, 1.0, 11, dtype="float32")
        noise_rates, signal_rates = diffusion_schedule(times, settings["min signal"], settings["max signal"])
        return {"times": times, "noise_rates": ops.convert_to_numpy(noise_rates),
                "signal_rates": ops.convert_to_numpy(signal_rates)}

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        return plot_schedules(settings["min signal"], settings["max signal"])


def schedule_explorer(min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> ScheduleExplorer:
    """Sliders for the signal-rate range that redraw the cosine (and linear-beta) schedule."""
    return ScheduleExplorer(min_signal_rate, max_signal_rate)


# ------------------------------------------------------------------- noising
class NoisingExplorer(Explorer):
    name = "noising"

    def __init__(self, images: Any, *, mean: Any = None, std: Any = None, min_signal_rate: float = 0.02,
                 max_signal_rate: float = 0.95, t: float = 0.5, seed: int = 0) -> None:
        self.images = to_pixels(images)
        if len(self.images) == 0:
            raise ValueError("noising_explorer got no images: pass an array [N, S, S, 3] in [0, 1].")
        self.mean = np.asarray(self.images.mean(axis=(0, 1, 2)) if mean is None else mean, dtype="float32")
        self.std = np.asarray(self.images.std(axis=(0, 1, 2)) if std is None else std, dtype="float32")
        if np.any(self.std <= 0):
            raise ValueError("the images have a channel with zero spread, so they cannot be normalized; "
                             "pass more varied images or an explicit std.")
        self.min_signal_rate, self.max_signal_rate = min_signal_rate, max_signal_rate
        controls = {
            "t": slider("float", "t", t, 0.0, 1.0, 0.01),
            "seed": slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls)

    def _compute(self, settings: dict[str, Any]) -> dict[str, Any]:
        from keras import ops

        from ddim_tutorial.core.schedule import diffusion_schedule

        noise_rate, signal_rate = (float(ops.convert_to_numpy(r)) for r in diffusion_schedule(
            np.float32(settings["t"]), self.min_signal_rate, self.max_signal_rate))
        normalized = (self.images - self.mean) / self.std
        noises = np.random.default_rng(settings["seed"]).standard_normal(self.images.shape).astype("float32")
        noisy_images = signal_rate * normalized + noise_rate * noises
        pixels = np.clip(noisy_images * self.std + self.mean, 0.0, 1.0)
        snr = signal_rate**2 / noise_rate**2
        return {"noisy_images": pixels, "signal_rate": signal_rate, "noise_rate": noise_rate, "snr": snr}

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        count = len(self.images)
        snr = result["snr"]
        title = (f"t = {settings['t']:.2f}:  signal rate {result['signal_rate']:.3f},  noise rate "
                 f"{result['noise_rate']:.3f},  SNR {snr:.3g} ({10 * math.log10(snr):+.1f} dB)")
        return image_grid(np.concatenate([self.images, result["noisy_images"]]), count, title=title,
                          row_labels=["clean", "noisy"], size=1.8)


def noising_explorer(images: Any, *, mean: Any = None, std: Any = None, min_signal_rate: float = 0.02,
                     max_signal_rate: float = 0.95, t: float = 0.5, seed: int = 0) -> NoisingExplorer:
    """A diffusion-time slider over a few images: the noisy version and its signal-to-noise ratio.

    Images are normalized per channel (``mean``/``std`` default to the images' own), mixed
    with standard normal noise at the schedule's rates, and mapped back to pixels to be shown.
    """
    return NoisingExplorer(images, mean=mean, std=std, min_signal_rate=min_signal_rate,
                           max_signal_rate=max_signal_rate, t=t, seed=seed)


# ------------------------------------------------------------------- sampler
class SamplerExplorer(Explorer):
    name = "sampler"
    needs_trigger = True
    grid = True

    def __init__(self, model: Any, num_images: int = 6, *, num_cols: int | None = None, steps: int | None = None,
                 max_steps: int = 50, seed: int = 0, live: bool | str = "auto", sampler: str = "ddim") -> None:
        check_generative_model(model)
        check_positive_int("num_images", num_images, advice="use a positive integer such as 6")
        self.model, self.num_images = model, num_images
        self.num_cols = num_cols or min(num_images, 6)
        config = model.config
        steps = config.plot_diffusion_steps if steps is None else steps
        from ddim_tutorial.checks import SAMPLERS, check_sampler

        check_sampler(sampler)
        controls = {
            "sampler": toggle_buttons("sampler", [(SAMPLER_LABELS[name], name) for name in SAMPLERS], sampler),
            "steps": slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "min signal": slider("float", "min signal", config.min_signal_rate, 0.01, 0.5, 0.01),
            "max signal": slider("float", "max signal", config.max_signal_rate, 0.5, 1.0, 0.01),
            "eta": slider("float", "eta", 0.0, 0.0, 1.0, 0.05),
            "seed": slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _check(self, settings: dict[str, Any]) -> str | None:
        if settings["min signal"] >= settings["max signal"]:
            return "min signal must be smaller than max signal."
        if settings["sampler"] != "ddim" and settings["eta"] > 0:
            return (f"eta adds fresh noise, which only DDIM does; {SAMPLER_LABELS[settings['sampler']]} follows the "
                    "deterministic ODE: set eta to 0, or choose DDIM.")
        if settings["eta"] > 0 and self.model.config.path == "linear":
            return "this model follows flow matching's straight path, which samples deterministically: set eta to 0."
        return None

    def _cost(self, settings: dict[str, Any]) -> float:
        from ddim_tutorial.core.sampling import network_evaluations

        return network_evaluations(settings["sampler"], settings["steps"])

    def _cheaper_settings(self, settings: dict[str, Any]) -> list[dict[str, Any]]:
        # The second-order sampler gets closer to the exact ODE solution than DDIM at equal cost
        # (lesson 06), so it is offered first, with as many steps as fit.
        most = min(settings["steps"], self.controls["steps"].max)
        return [{"sampler": "dpm++2s", "steps": steps} for steps in range(most, MIN_LIVE_DPM_STEPS - 1, -1)]

    def _describe(self, settings: dict[str, Any]) -> str:
        return f"{SAMPLER_LABELS[settings['sampler']]}, {settings['steps']} steps"

    def _compute(self, settings: dict[str, Any]) -> np.ndarray:
        images = self.model.generate(self.num_images, settings["steps"], eta=float(settings["eta"]),
                                     seed=int(settings["seed"]), min_signal_rate=float(settings["min signal"]),
                                     max_signal_rate=float(settings["max signal"]), sampler=settings["sampler"])
        return to_numpy(images, "float32")

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        from ddim_tutorial.core.sampling import network_evaluations

        evaluations = network_evaluations(settings["sampler"], settings["steps"])
        title = (f"{SAMPLER_LABELS[settings['sampler']]}, {settings['steps']} steps "
                 f"({evaluations} network evaluation{'s' if evaluations > 1 else ''}), "
                 f"signal rate {settings['min signal']:.2f}..{settings['max signal']:.2f}, "
                 f"eta {settings['eta']:.2f}, seed {settings['seed']}")
        return image_grid(result, self.num_cols, title=title, size=1.6)


def sampler_explorer(model: Any, num_images: int = 6, *, num_cols: int | None = None, steps: int | None = None,
                     max_steps: int = 50, seed: int = 0, live: bool | str = "auto",
                     sampler: str = "ddim") -> SamplerExplorer:
    """A sampler choice and sliders for steps, min/max signal rate, eta and seed over a grid of
    generated images.

    One seed fixes the initial noise, so with ``eta = 0`` moving only "steps" shows how the
    same images sharpen with more steps, and switching between "DDIM" and "DPM++ 2S" (the
    second-order :func:`~ddim_tutorial.core.sampling.dpm_solver_2s_step`, which takes no eta)
    compares the two samplers on the same noise; the title counts the network evaluations. A
    fast model redraws on slider release. Where the default (DDIM at ``steps``) is too slow for
    that, the explorer opens at DPM++ 2S with as many steps as redraw in under a second, and
    says so in its status line; where even that is too slow, it waits for **sample**
    (``live``, see :mod:`ddim_tutorial.teaching.explorer`).
    """
    return SamplerExplorer(model, num_images, num_cols=num_cols, steps=steps, max_steps=max_steps, seed=seed,
                           live=live, sampler=sampler)


# ---------------------------------------------------------------- trajectory
class TrajectoryExplorer(Explorer):
    name = "trajectory"
    needs_trigger = True
    grid = True

    def __init__(self, model: Any, *, steps: int = 10, max_steps: int = 50, seed: int = 0,
                 max_columns: int = 10, live: bool | str = "auto") -> None:
        check_generative_model(model)
        self.model, self.max_columns = model, max_columns
        controls = {
            "steps": slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "eta": slider("float", "eta", 0.0, 0.0, 1.0, 0.05),
            "seed": slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _compute(self, settings: dict[str, Any]) -> list:
        from ddim_tutorial.core.sampling import reverse_diffusion_steps
        from ddim_tutorial.runtime.random import step_seed

        config = self.model.config
        seed = int(settings["seed"])
        # The seeds, rates and prediction type of model.generate, so that the last predicted image
        # is the image generate(1, steps, eta=eta, seed=seed) gives (up to float rounding).
        return list(reverse_diffusion_steps(
            self.model.ema_network, self.model.initial_noise(1, seed=seed), int(settings["steps"]),
            min_signal_rate=config.min_signal_rate, max_signal_rate=config.max_signal_rate,
            eta=float(settings["eta"]), seed=step_seed(seed), prediction_type=config.prediction_type,
            path=config.path))

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        return plot_trajectory(result, self.model.denormalize, max_columns=self.max_columns)


def trajectory_explorer(model: Any, *, steps: int = 10, max_steps: int = 50, seed: int = 0,
                        max_columns: int = 10, live: bool | str = "auto") -> TrajectoryExplorer:
    """Reverse diffusion of one image, step by step: noisy images on top, predictions below.

    It runs the package's own loop, :func:`~ddim_tutorial.core.sampling.reverse_diffusion_steps`,
    with the model's ``prediction_type`` and the seeds of ``model.generate``: its last predicted
    image is the image ``model.generate(1, steps, eta=eta, seed=seed)`` gives.
    """
    return TrajectoryExplorer(model, steps=steps, max_steps=max_steps, seed=seed, max_columns=max_columns,
                              live=live)


# ------------------------------------------------------------- interpolation
class InterpolationExplorer(Explorer):
    name = "interpolation"
    needs_trigger = True
    grid = True

    def __init__(self, model: Any, *, seed_a: int = 0, seed_b: int = 1, num_mixes: int = 11,
                 steps: int | None = None, max_steps: int = 50, live: bool | str = "auto") -> None:
        check_generative_model(model)
        check_positive_int("num_mixes", num_mixes, minimum=2)
        self.model, self.num_mixes = model, num_mixes
        self.fractions = np.linspace(0.0, 1.0, num_mixes)
        steps = model.config.plot_diffusion_steps if steps is None else steps
        widgets = import_ipywidgets()
        spherical = widgets.Checkbox(value=True, description="spherical", indent=False)
        spherical.add_class(css_class("spherical"))
        controls = {
            "seed a": slider("int", "seed a", seed_a, 0, 99, 1),
            "seed b": slider("int", "seed b", seed_b, 0, 99, 1),
            "mix": slider("float", "mix", 0.5, 0.0, 1.0, round(1.0 / (num_mixes - 1), 6)),
            "steps": slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "spherical": spherical,
        }
        super().__init__(controls, live)

    def _cache_key(self, settings: dict[str, Any]) -> Any:
        # Moving "mix" only picks another image of the computed row: no new computation.
        return (settings["seed a"], settings["seed b"], settings["steps"], settings["spherical"])

    def _check(self, settings: dict[str, Any]) -> str | None:
        if settings["seed a"] == settings["seed b"]:
            return "seed a and seed b are equal: pick two different seeds to interpolate between."
        return None

    def _compute(self, settings: dict[str, Any]) -> np.ndarray:
        from ddim_tutorial.teaching.interpolation import interpolate

        return interpolate(self.model, int(settings["seed a"]), int(settings["seed b"]),
                           diffusion_steps=int(settings["steps"]), spherical=bool(settings["spherical"]),
                           fractions=self.fractions)

    def mix_index(self, mix: float | None = None) -> int:
        """Which image of the computed row the "mix" slider points at."""
        mix = self.controls["mix"].value if mix is None else mix
        return int(round(float(mix) * (self.num_mixes - 1)))

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        index = self.mix_index(settings["mix"])
        chosen = np.stack([result[0], result[index], result[-1]])
        kind = "spherical" if settings["spherical"] else "linear"
        titles = [f"seed {settings['seed a']}", f"mix {self.fractions[index]:.2f} ({kind})",
                  f"seed {settings['seed b']}"]
        return image_grid(chosen, 3, titles=titles, size=2.2)


def interpolation_explorer(model: Any, *, seed_a: int = 0, seed_b: int = 1, num_mixes: int = 11,
                           steps: int | None = None, max_steps: int = 50,
                           live: bool | str = "auto") -> InterpolationExplorer:
    """Two seeds and a "mix" slider between their initial noises (spherical or linear).

    Each computation generates the whole row of ``num_mixes`` mixes at once, so moving "mix"
    afterwards is instant. A fast model redraws when a seed or steps slider is released; a
    slow one when **sample** is pressed.
    """
    return InterpolationExplorer(model, seed_a=seed_a, seed_b=seed_b, num_mixes=num_mixes, steps=steps,
                                 max_steps=max_steps, live=live)


# ------------------------------------------------------------------ guidance
class GuidanceExplorer(Explorer):
    name = "guidance"
    needs_trigger = True
    grid = True

    def __init__(self, model: Any, class_names: list[str] | None = None, num_images: int = 6, *, class_label: int = 0,
                 guidance_scale: float = DEFAULT_GUIDANCE_SCALE, max_guidance: float = 10.0, steps: int | None = None,
                 max_steps: int = 50, seed: int = 0, live: bool | str = "auto") -> None:
        check_generative_model(model)
        num_classes = model.config.num_classes
        if not num_classes:
            raise ValueError("guidance_explorer needs a class-conditional model (DDIMConfig.num_classes > 0); "
                             "this one was trained without labels.")
        class_names = list(class_names or model.config.class_names or
                           [f"class {index}" for index in range(num_classes)])
        if len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but the model knows {num_classes} classes.")
        if not isinstance(class_label, int) or not 0 <= class_label < num_classes:
            raise ValueError(f"class_label={class_label!r} is invalid: use 0 to {num_classes - 1}.")
        check_positive_int("num_images", num_images, advice="use a positive integer such as 6")
        self.model, self.num_images, self.class_names = model, num_images, class_names
        steps = model.config.plot_diffusion_steps if steps is None else steps
        widgets = import_ipywidgets()
        species = widgets.Dropdown(options=[(name, index) for index, name in enumerate(class_names)],
                                   value=class_label, description="species", style={"description_width": "80px"},
                                   layout=widgets.Layout(width="420px"))
        species.add_class(css_class("species"))
        controls = {
            "species": species,
            "guidance": slider("float", "guidance", guidance_scale, 0.0, max_guidance, 0.5),
            "steps": slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "seed": slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _cost(self, settings: dict[str, Any]) -> float:
        return settings["steps"]  # each step: one guided pair of network passes, whatever the scale

    def _cheaper_settings(self, settings: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"steps": steps} for steps in range(settings["steps"] - 1, MIN_GUIDED_STEPS - 1, -1)]

    def _describe(self, settings: dict[str, Any]) -> str:
        return f"{settings['steps']} steps"

    def _compute(self, settings: dict[str, Any]) -> np.ndarray:
        images = self.model.generate(self.num_images, settings["steps"], seed=int(settings["seed"]),
                                     class_labels=int(settings["species"]),
                                     guidance_scale=float(settings["guidance"]))
        return to_numpy(images, "float32")

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        title = (f"{self.class_names[settings['species']]}, guidance scale {settings['guidance']:.1f}, "
                 f"{settings['steps']} steps, seed {settings['seed']}")
        return image_grid(result, min(self.num_images, 6), title=title, size=1.6)


def guidance_explorer(model: Any, class_names: list[str] | None = None, num_images: int = 6, *, class_label: int = 0,
                      guidance_scale: float = DEFAULT_GUIDANCE_SCALE, max_guidance: float = 10.0,
                      steps: int | None = None,
                      max_steps: int = 50, seed: int = 0, live: bool | str = "auto") -> GuidanceExplorer:
    """A species picker and a guidance-scale slider over a grid of one class-conditional model's images.

    The seed fixes the initial noise, so moving only "guidance" shows the same images pulled
    towards the chosen species: at 0 the label is ignored (the unconditional model), at 1 the
    conditional model as trained, above 1 classifier-free guidance pushes further (see
    :func:`ddim_tutorial.core.predictions.network_predictions`). A fast model redraws on release.
    Where the default steps are too slow for that, it opens at fewer steps (not below
    ``MIN_GUIDED_STEPS``) that redraw in under a second, and says so in its status line; where
    even that is too slow, it waits for **sample**. ``class_names`` default to
    ``model.config.class_names``.
    """
    return GuidanceExplorer(model, class_names, num_images, class_label=class_label, guidance_scale=guidance_scale,
                            max_guidance=max_guidance, steps=steps, max_steps=max_steps, seed=seed, live=live)


# --------------------------------------------------------------------- paths
#: The many-step solution each model's samples are measured against: DPM-Solver++(2S) with this
#: many steps (99 network evaluations), as lesson 06 measures its samplers.
REFERENCE_DPM_STEPS = 50
#: The fewest steps the paths explorer opens at where its default is too slow.
MIN_PATH_STEPS = 2


class PathsExplorer(Explorer):
    name = "paths"
    needs_trigger = True
    grid = True

    def __init__(self, models: dict[str, Any], num_images: int = 6, *, steps: int = 5, max_steps: int = 50,
                 seed: int = 0, live: bool | str = "auto") -> None:
        if not isinstance(models, dict) or not models:
            raise ValueError("paths_explorer needs a dict {label: model} of at least one model, e.g. "
                             "{'flowers32 (cosine)': flowers32, 'flow32 (linear)': flow32}.")
        for model in models.values():
            check_generative_model(model)
        sizes = {model.config.image_size for model in models.values()}
        if len(sizes) > 1:
            raise ValueError(f"the models draw images of different sizes ({sorted(sizes)}): compare models of one "
                             "size, so that the same initial noise goes into each.")
        check_positive_int("num_images", num_images, advice="use a positive integer such as 6")
        self.models, self.num_images = dict(models), num_images
        self._references: dict[tuple[str, int], np.ndarray] = {}
        controls = {
            "steps": slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "seed": slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _cost(self, settings: dict[str, Any]) -> float:
        return settings["steps"] * len(self.models)

    def _cheaper_settings(self, settings: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"steps": steps} for steps in range(settings["steps"] - 1, MIN_PATH_STEPS - 1, -1)]

    def _describe(self, settings: dict[str, Any]) -> str:
        return f"{settings['steps']} steps"

    def reference(self, label: str, seed: int) -> np.ndarray:
        """The model's own many-step solution for this seed (DPM-Solver++(2S), ``REFERENCE_DPM_STEPS``), cached."""
        if (label, seed) not in self._references:
            model = self.models[label]
            self._references[label, seed] = to_numpy(
                model.generate(self.num_images, REFERENCE_DPM_STEPS, seed=seed, sampler="dpm++2s"), "float32")
        return self._references[label, seed]

    def _compute(self, settings: dict[str, Any]) -> dict[str, Any]:
        seed, rows, distances = int(settings["seed"]), [], []
        for label, model in self.models.items():
            images = to_numpy(model.generate(self.num_images, settings["steps"], seed=seed), "float32")
            rows.append(images)
            distances.append(float(np.abs(images - self.reference(label, seed)).mean()))
        return {"images": np.concatenate(rows), "distances": distances}

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        labels = [f"{label}\ndistance {distance:.3f}" for label, distance in zip(self.models, result["distances"],
                                                                                   strict=True)]
        title = (f"{settings['steps']} DDIM steps ({settings['steps']} network evaluations per image), "
                 f"seed {settings['seed']}; distance: to each model's own {REFERENCE_DPM_STEPS}-step solution")
        return image_grid(result["images"], self.num_images, row_labels=labels, title=title, size=1.4)


def paths_explorer(models: dict[str, Any], num_images: int = 6, *, steps: int = 5, max_steps: int = 50,
                   seed: int = 0, live: bool | str = "auto") -> PathsExplorer:
    """Models trained on different paths (e.g. ``flowers32`` on the cosine path, ``flow32`` on the
    straight one), sampled from the same initial noise with the same number of DDIM steps, one row
    each; a "steps" and a "seed" slider. Each row says how far its images are (mean absolute pixel
    difference) from that model's own many-step solution, so the rows compare how much each path
    loses to few steps. Opens at fewer steps where the default is too slow to follow the sliders.
    """
    return PathsExplorer(models, num_images, steps=steps, max_steps=max_steps, seed=seed, live=live)
