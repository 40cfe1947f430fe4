"""Interactive explorers for the lessons, for ipywidgets 7.7 (Colab) and 8.x.

Each explorer is an object, not just a widget, so that tests and curious students can drive
it from code: ``explorer.controls[...]`` are the ipywidgets controls (set ``.value``, or
``.click()`` the button), ``explorer.result`` is the last computed result (for example the
sampled images, float32 ``[N, S, S, 3]`` in [0, 1]), ``explorer.figure`` the last drawn
matplotlib figure (``explorer.png`` the same as PNG bytes), and ``explorer.widget`` the container to display (ending a cell with the
explorer itself displays it too). Where widgets do not run (GitHub, nbval, a PDF), end a
cell with ``explorer.figure``: it is an ordinary picture of the default setting.

Cost control: sliders use ``continuous_update=False`` (one update per release, not per pixel
of drag) and every result is cached per setting (``explorer.cache_hits`` counts reuses).
The explorers that run the diffusion model are *live* where a new picture takes under
``LIVE_SECONDS`` (timed on the default setting, after compilation): they redraw when a slider
is released, and the **sample** button is hidden. Where sampling is slower (a large model on a
CPU) they compute only when **sample** is pressed. ``live=True`` / ``False`` forces either.
Moving a slider back to a setting already computed shows it at once.

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
=========================  =====================  ==========================================

The dict keys of ``controls`` are the descriptions. Each control also has the CSS class
``ddim-control-<description with dashes>`` (e.g. ``ddim-control-min-signal``), the button
``ddim-sample-button``. The picture is an ``ipywidgets.Image`` (PNG bytes) with the classes
``ddim-figure`` and, for image grids from the model, ``ddim-grid``; the status line is an
``ipywidgets.HTML`` with class ``ddim-status``. A live explorer's container has the class
``ddim-live``.
"""

from __future__ import annotations

import html
import math
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from .config import DEFAULT_GUIDANCE_SCALE
from .plotting import figure_to_png, image_grid, plot_schedules, plot_trajectory, to_pixels

__all__ = [
    "Explorer",
    "schedule_explorer",
    "noising_explorer",
    "sampler_explorer",
    "trajectory_explorer",
    "interpolation_explorer",
    "guidance_explorer",
]

#: How many computed settings each explorer keeps (least recently used ones are dropped).
CACHE_SIZE = 64
#: A model-driven explorer redraws on slider release when one picture takes less than this.
LIVE_SECONDS = 1.0
#: How the sampler explorer's buttons name the samplers of :mod:`ddim_tutorial.sampling`.
SAMPLER_LABELS = {"ddim": "DDIM", "dpm++2s": "DPM++ 2S"}


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("The explorers need ipywidgets: pip install ipywidgets") from err
    return ipywidgets


def _css_name(description: str) -> str:
    return "ddim-control-" + "-".join(description.lower().split())


def _toggle(description: str, options: list[tuple[str, str]], value: str):
    """Toggle buttons (one choice of a few, all in view) with the explorers' naming scheme."""
    widgets = _ipywidgets()
    toggle = widgets.ToggleButtons(options=options, value=value, description=description,
                                   style={"description_width": "80px", "button_width": "100px"})
    # ipywidgets 8 puts a toggle's label above its buttons; this class (7's default) keeps it on
    # the left, right-aligned with the sliders' labels.
    toggle.add_class("widget-inline-hbox")
    toggle.add_class(_css_name(description))
    return toggle


def _slider(kind: str, description: str, value: Any, minimum: Any, maximum: Any, step: Any, **kwargs: Any):
    widgets = _ipywidgets()
    cls = {"int": widgets.IntSlider, "float": widgets.FloatSlider}[kind]
    slider = cls(value=value, min=minimum, max=maximum, step=step, description=description,
                 continuous_update=False, style={"description_width": "80px"},
                 layout=widgets.Layout(width="420px"), **kwargs)
    slider.add_class(_css_name(description))
    return slider


class Explorer:
    """Controls, a cached computation and a picture, wired together.

    Subclasses give ``_compute(settings)`` (the expensive part, cached by ``_cache_key``)
    and ``_draw(settings, result)`` (a matplotlib figure); ``_check(settings)`` returns an
    error message for an invalid combination, shown instead of a crash.
    """

    name = "explorer"
    needs_trigger = False  # True: compute only when the "sample" button is pressed
    grid = False  # True: the picture is a grid of generated images (extra CSS class)

    def __init__(self, controls: dict[str, Any], live: bool | str = "auto") -> None:
        widgets = _ipywidgets()
        if live not in (True, False, "auto"):
            raise ValueError(f"live={live!r} is invalid: use True, False or 'auto'.")
        self.controls: dict[str, Any] = dict(controls)
        self.cache: OrderedDict[Any, Any] = OrderedDict()
        self.cache_hits = 0
        self.computations = 0
        self.renders = 0
        self.result: Any = None
        self.figure: Any = None
        self.settings_shown: dict[str, Any] | None = None
        self.last_seconds: float | None = None
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.image.add_class("ddim-figure")
        if self.grid:
            self.image.add_class("ddim-grid")
        self.status = widgets.HTML(value="")
        self.status.add_class("ddim-status")
        if self.needs_trigger:
            button = widgets.Button(description="sample", button_style="primary",
                                    tooltip="run the model for the current setting")
            button.add_class("ddim-sample-button")
            button.on_click(lambda _: self.refresh(compute=True))
            self.controls["sample"] = button
        for control in self._value_controls().values():
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.VBox(list(self.controls.values())), self.status, self.image])
        self.widget.add_class("ddim-explorer")
        self.widget.add_class(f"ddim-{self.name}")
        self.live = not self.needs_trigger
        self.refresh(compute=True)  # the default setting, also the static picture
        if self.needs_trigger:
            self.live = self._fast_enough() if live == "auto" else bool(live)
            if self.live:
                self.controls["sample"].layout.display = "none"
                self.widget.add_class("ddim-live")
                self._set_status(f"computed in {self.last_seconds or 0:.2f} s; the picture follows the sliders", "ok")

    def _fast_enough(self) -> bool:
        """Whether a new picture takes under ``LIVE_SECONDS`` (a second, warm run if the first compiled)."""
        if self.last_seconds is None:
            return False
        if self.last_seconds >= LIVE_SECONDS:  # maybe only the one-off compilation: time a warm run
            start = time.perf_counter()
            try:
                self._compute(self.settings())
            except ValueError:
                return False
            self.last_seconds = time.perf_counter() - start
        return self.last_seconds < LIVE_SECONDS

    # ----------------------------------------------------------- to override
    def _compute(self, settings: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        raise NotImplementedError

    def _check(self, settings: dict[str, Any]) -> str | None:
        return None

    def _cache_key(self, settings: dict[str, Any]) -> Any:
        return tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in settings.items()))

    # --------------------------------------------------------------- wiring
    def _value_controls(self) -> dict[str, Any]:
        return {key: control for key, control in self.controls.items() if hasattr(control, "value")}

    def settings(self) -> dict[str, Any]:
        """The current value of every control, by key."""
        return {key: control.value for key, control in self._value_controls().items()}

    def _on_change(self, change: dict[str, Any]) -> None:
        self.refresh(compute=self.live)

    def refresh(self, compute: bool = True) -> bool:
        """Show the current setting: from the cache, or computed if ``compute``; True if shown."""
        settings = self.settings()
        error = self._check(settings)
        if error:
            self._set_status(error, "error")
            return False
        key = self._cache_key(settings)
        if key in self.cache:
            self.cache.move_to_end(key)
            self.cache_hits += 1
            result = self.cache[key]
            note = "from the cache"
        elif not compute:
            self._set_status("settings changed: press <b>sample</b> to run the model", "pending")
            return False
        else:
            self._set_status("computing ...", "pending")
            start = time.perf_counter()
            try:
                result = self._compute(settings)
            except ValueError as err:  # a bad setting the checks did not foresee
                self._set_status(str(err), "error")
                return False
            self.last_seconds = time.perf_counter() - start
            self.computations += 1
            self.cache[key] = result
            while len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
            note = f"computed in {self.last_seconds:.2f} s"
        self.result = result
        self.figure = self._draw(settings, result)
        self.image.value = figure_to_png(self.figure)
        self.settings_shown = settings
        self.renders += 1
        self._set_status(note, "ok")
        return True

    @property
    def png(self) -> bytes:
        """The picture shown now, as PNG bytes (ipywidgets 8 stores a memoryview)."""
        return bytes(self.image.value)

    def _set_status(self, message: str, kind: str) -> None:
        colors = {"ok": "#555", "pending": "#a60", "error": "#b00"}
        text = message if kind == "pending" else html.escape(message)
        self.status.value = f'<span style="color:{colors[kind]}">{text}</span>'

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings()}>"


# ------------------------------------------------------------------ schedule
class ScheduleExplorer(Explorer):
    name = "schedule"

    def __init__(self, min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> None:
        controls = {
            "min signal": _slider("float", "min signal", min_signal_rate, 0.01, 0.5, 0.01),
            "max signal": _slider("float", "max signal", max_signal_rate, 0.5, 1.0, 0.01),
        }
        super().__init__(controls)

    def _check(self, settings: dict[str, Any]) -> str | None:
        if settings["min signal"] >= settings["max signal"]:
            return "min signal must be smaller than max signal."
        return None

    def _compute(self, settings: dict[str, Any]) -> dict[str, np.ndarray]:
        from keras import ops

        from .schedule import diffusion_schedule

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
            "t": _slider("float", "t", t, 0.0, 1.0, 0.01),
            "seed": _slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls)

    def _compute(self, settings: dict[str, Any]) -> dict[str, Any]:
        from keras import ops

        from .schedule import diffusion_schedule

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
def _check_model(model: Any) -> None:
    if getattr(model, "config", None) is None or not callable(getattr(model, "generate", None)):
        raise ValueError(f"model of type {type(model).__name__} is invalid: pass a trained DiffusionModel "
                         "(see lesson.get_trained_model()).")


def _numpy(images: Any) -> np.ndarray:
    try:
        return np.asarray(images, dtype="float32")
    except (TypeError, ValueError, RuntimeError):
        from keras import ops

        return np.asarray(ops.convert_to_numpy(images), dtype="float32")


class SamplerExplorer(Explorer):
    name = "sampler"
    needs_trigger = True
    grid = True

    def __init__(self, model: Any, num_images: int = 6, *, num_cols: int | None = None, steps: int | None = None,
                 max_steps: int = 50, seed: int = 0, live: bool | str = "auto", sampler: str = "ddim") -> None:
        _check_model(model)
        if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 1:
            raise ValueError(f"num_images={num_images!r} is invalid: use a positive integer such as 6.")
        self.model, self.num_images = model, num_images
        self.num_cols = num_cols or min(num_images, 6)
        config = model.config
        steps = config.plot_diffusion_steps if steps is None else steps
        from .sampling import SAMPLERS, validate_sampler

        validate_sampler(sampler)
        controls = {
            "sampler": _toggle("sampler", [(SAMPLER_LABELS[name], name) for name in SAMPLERS], sampler),
            "steps": _slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "min signal": _slider("float", "min signal", config.min_signal_rate, 0.01, 0.5, 0.01),
            "max signal": _slider("float", "max signal", config.max_signal_rate, 0.5, 1.0, 0.01),
            "eta": _slider("float", "eta", 0.0, 0.0, 1.0, 0.05),
            "seed": _slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _check(self, settings: dict[str, Any]) -> str | None:
        if settings["min signal"] >= settings["max signal"]:
            return "min signal must be smaller than max signal."
        if settings["sampler"] != "ddim" and settings["eta"] > 0:
            return (f"eta adds fresh noise, which only DDIM does; {SAMPLER_LABELS[settings['sampler']]} follows the "
                    "deterministic ODE: set eta to 0, or choose DDIM.")
        return None

    def _compute(self, settings: dict[str, Any]) -> np.ndarray:
        images = self.model.generate(self.num_images, settings["steps"], eta=float(settings["eta"]),
                                     seed=int(settings["seed"]), min_signal_rate=float(settings["min signal"]),
                                     max_signal_rate=float(settings["max signal"]), sampler=settings["sampler"])
        return _numpy(images)

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        from .sampling import network_evaluations

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
    second-order :func:`~ddim_tutorial.sampling.dpm_solver_2s_step`, which takes no eta)
    compares the two samplers on the same noise; the title counts the network evaluations. A
    fast model redraws on slider release; a slow one when **sample** is pressed (``live``, see
    the module's docstring).
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
        _check_model(model)
        self.model, self.max_columns = model, max_columns
        controls = {
            "steps": _slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "eta": _slider("float", "eta", 0.0, 0.0, 1.0, 0.05),
            "seed": _slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _compute(self, settings: dict[str, Any]) -> list:
        from .sampling import reverse_diffusion_steps

        config = self.model.config
        initial_noise = self.model.initial_noise(1, seed=int(settings["seed"]))
        return list(reverse_diffusion_steps(
            self.model.ema_network, initial_noise, int(settings["steps"]), min_signal_rate=config.min_signal_rate,
            max_signal_rate=config.max_signal_rate, eta=float(settings["eta"]), seed=int(settings["seed"]) + 1))

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        return plot_trajectory(result, self.model.denormalize, max_columns=self.max_columns)


def trajectory_explorer(model: Any, *, steps: int = 10, max_steps: int = 50, seed: int = 0,
                        max_columns: int = 10, live: bool | str = "auto") -> TrajectoryExplorer:
    """Reverse diffusion of one image, step by step: noisy images on top, predictions below."""
    return TrajectoryExplorer(model, steps=steps, max_steps=max_steps, seed=seed, max_columns=max_columns,
                              live=live)


# ------------------------------------------------------------- interpolation
class InterpolationExplorer(Explorer):
    name = "interpolation"
    needs_trigger = True
    grid = True

    def __init__(self, model: Any, *, seed_a: int = 0, seed_b: int = 1, num_mixes: int = 11,
                 steps: int | None = None, max_steps: int = 50, live: bool | str = "auto") -> None:
        _check_model(model)
        if not isinstance(num_mixes, int) or num_mixes < 2:
            raise ValueError(f"num_mixes={num_mixes!r} is invalid: use an integer >= 2.")
        self.model, self.num_mixes = model, num_mixes
        self.fractions = np.linspace(0.0, 1.0, num_mixes)
        steps = model.config.plot_diffusion_steps if steps is None else steps
        widgets = _ipywidgets()
        spherical = widgets.Checkbox(value=True, description="spherical", indent=False)
        spherical.add_class(_css_name("spherical"))
        controls = {
            "seed a": _slider("int", "seed a", seed_a, 0, 99, 1),
            "seed b": _slider("int", "seed b", seed_b, 0, 99, 1),
            "mix": _slider("float", "mix", 0.5, 0.0, 1.0, round(1.0 / (num_mixes - 1), 6)),
            "steps": _slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
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
        from .interpolation import interpolate

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
        _check_model(model)
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
        if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 1:
            raise ValueError(f"num_images={num_images!r} is invalid: use a positive integer such as 6.")
        self.model, self.num_images, self.class_names = model, num_images, class_names
        steps = model.config.plot_diffusion_steps if steps is None else steps
        widgets = _ipywidgets()
        species = widgets.Dropdown(options=[(name, index) for index, name in enumerate(class_names)],
                                   value=class_label, description="species", style={"description_width": "80px"},
                                   layout=widgets.Layout(width="420px"))
        species.add_class(_css_name("species"))
        controls = {
            "species": species,
            "guidance": _slider("float", "guidance", guidance_scale, 0.0, max_guidance, 0.5),
            "steps": _slider("int", "steps", min(steps, max_steps), 1, max_steps, 1),
            "seed": _slider("int", "seed", seed, 0, 99, 1),
        }
        super().__init__(controls, live)

    def _compute(self, settings: dict[str, Any]) -> np.ndarray:
        images = self.model.generate(self.num_images, settings["steps"], seed=int(settings["seed"]),
                                     class_labels=int(settings["species"]),
                                     guidance_scale=float(settings["guidance"]))
        return _numpy(images)

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        title = (f"{self.class_names[settings['species']]}, guidance scale {settings['guidance']:.1f}, "
                 f"{settings['steps']} steps, seed {settings['seed']}")
        return image_grid(result, min(self.num_images, 6), title=title, size=1.6)


def guidance_explorer(model: Any, class_names: list[str] | None = None, num_images: int = 6, *, class_label: int = 0,
                      guidance_scale: float = DEFAULT_GUIDANCE_SCALE, max_guidance: float = 10.0, steps: int | None = None,
                      max_steps: int = 50, seed: int = 0, live: bool | str = "auto") -> GuidanceExplorer:
    """A species picker and a guidance-scale slider over a grid of one class-conditional model's images.

    The seed fixes the initial noise, so moving only "guidance" shows the same images pulled
    towards the chosen species: at 0 the label is ignored (the unconditional model), at 1 the
    conditional model as trained, above 1 classifier-free guidance pushes further (see
    :func:`ddim_tutorial.predictions.network_predictions`). A fast model redraws on release; a
    slow one when **sample** is pressed. ``class_names`` default to ``model.config.class_names``.
    """
    return GuidanceExplorer(model, class_names, num_images, class_label=class_label, guidance_scale=guidance_scale,
                            max_guidance=max_guidance, steps=steps, max_steps=max_steps, seed=seed, live=live)
