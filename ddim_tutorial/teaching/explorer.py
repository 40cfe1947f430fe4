"""The slider machinery behind the lessons' explorers: controls, a cached computation, a picture.

:class:`Explorer` wires ipywidgets controls (7.7 in Colab, or 8.x) to an expensive
computation and a matplotlib picture; :mod:`ddim_tutorial.teaching.widgets` holds the explorers the
lessons show. An explorer is an object, not just a widget, so that tests and curious
students can drive it from code: ``explorer.controls[...]`` are the controls (set
``.value``, or ``.click()`` the button), ``explorer.result`` the last computed result,
``explorer.figure`` the last drawn figure (``explorer.png`` as PNG bytes) and
``explorer.widget`` the container to display (ending a cell with the explorer displays it
too). Where widgets do not run (GitHub, nbval, a PDF), ``explorer.figure`` is an ordinary
picture of the default setting.

Cost control: sliders use ``continuous_update=False`` (one update per release, not per pixel
of drag) and every result is cached per setting (``explorer.cache_hits`` counts reuses; the
``CACHE_SIZE`` most recent settings are kept). An explorer with ``needs_trigger`` (the ones
that run the diffusion model) is *live* where a new picture takes under ``LIVE_SECONDS``
(timed on the default setting, after compilation): it redraws when a slider is released and
hides its **sample** button. Moving a slider back to a setting already computed shows it at
once.

Where the default setting is slower than that (a large model on a CPU), an explorer that
knows the relative cost of its settings (``_cost``) and cheaper ones to offer
(``_cheaper_settings``, best first) predicts each one's time from the default's, tries the
first predicted to take at most ``LIVE_TARGET`` of ``LIVE_SECONDS`` (at most ``MAX_TRIES``
of them, each timed warm), and opens there, live, if it is fast enough: the sampler explorer
opens at DPM-Solver++(2S) with fewer steps instead of DDIM at 20. Its status line says so in
one sentence (also kept in ``explorer.opening_note``); the sliders keep their full range, so
the default setting is one move away. Where no cheaper setting is fast enough, the explorer
shows the default setting and computes only when **sample** is pressed. ``live=True`` /
``False`` forces either, and opens at the default setting.
"""

from __future__ import annotations

import html
import time
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

from ddim_tutorial.teaching.plotting import figure_to_png

__all__ = ["Explorer"]

#: How many computed settings each explorer keeps (least recently used ones are dropped).
CACHE_SIZE = 64
#: An explorer with a sample button redraws on slider release when one picture takes less than this.
LIVE_SECONDS = 1.0
#: A cheaper setting is tried only if predicted to take at most this fraction of ``LIVE_SECONDS``
#: (the prediction scales the default's time by the cost ratio, and ignores fixed costs and load).
LIVE_TARGET = 0.8
#: How many cheaper settings an explorer times at most before it settles for the sample button.
MAX_TRIES = 2

#: The clock that times computations (tests replace it with a fake one).
_timer = time.perf_counter


def import_ipywidgets():
    """ipywidgets, or an ImportError that says how to install it."""
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("The explorers need ipywidgets: pip install ipywidgets") from err
    return ipywidgets


def css_class(description: str) -> str:
    """The CSS class a browser test finds a control by: ``ddim-control-min-signal`` for "min signal"."""
    return "ddim-control-" + "-".join(description.lower().split())


def toggle_buttons(description: str, options: list[tuple[str, str]], value: str):
    """Toggle buttons (one choice of a few, all in view) with the explorers' naming scheme."""
    widgets = import_ipywidgets()
    toggle = widgets.ToggleButtons(options=options, value=value, description=description,
                                   style={"description_width": "80px", "button_width": "100px"})
    # ipywidgets 8 puts a toggle's label above its buttons; this class (7's default) keeps it on
    # the left, right-aligned with the sliders' labels.
    toggle.add_class("widget-inline-hbox")
    toggle.add_class(css_class(description))
    return toggle


def slider(kind: str, description: str, value: Any, minimum: Any, maximum: Any, step: Any, **kwargs: Any):
    """An ``"int"`` or ``"float"`` slider that reports only on release, with the explorers' naming scheme."""
    widgets = import_ipywidgets()
    cls = {"int": widgets.IntSlider, "float": widgets.FloatSlider}[kind]
    control = cls(value=value, min=minimum, max=maximum, step=step, description=description,
                  continuous_update=False, style={"description_width": "80px"},
                  layout=widgets.Layout(width="420px"), **kwargs)
    control.add_class(css_class(description))
    return control


class Explorer:
    """Controls, a cached computation and a picture, wired together.

    Subclasses give ``_compute(settings)`` (the expensive part, cached by ``_cache_key``)
    and ``_draw(settings, result)`` (a matplotlib figure); ``_check(settings)`` returns an
    error message for an invalid combination, shown instead of a crash. To open at a cheaper
    setting where the default is too slow to follow the sliders, they also give
    ``_cost(settings)`` (proportional to the time, e.g. network evaluations),
    ``_cheaper_settings(settings)`` (changes to try, best first) and ``_describe(settings)``.
    """

    name = "explorer"
    needs_trigger = False  # True: compute only when the "sample" button is pressed
    grid = False  # True: the picture is a grid of generated images (extra CSS class)

    def __init__(self, controls: dict[str, Any], live: bool | str = "auto") -> None:
        widgets = import_ipywidgets()
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
        self.opening_note: str | None = None
        self._quiet = False
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
            if live == "auto":
                self.live = self._fast_enough() or self._open_at_cheaper_setting()
            else:
                self.live = bool(live)
            if self.live:
                self.controls["sample"].layout.display = "none"
                self.widget.add_class("ddim-live")
                self._set_status(self.opening_note or
                                 f"computed in {self.last_seconds or 0:.2f} s; the picture follows the sliders", "ok")
            elif live == "auto" and self.last_seconds is not None:
                self._set_status(f"a new picture takes {self.last_seconds:.1f} s here: set the sliders, then press "
                                 "<b>sample</b>", "pending")

    def _fast_enough(self) -> bool:
        """Whether a new picture takes under ``LIVE_SECONDS`` (a second, warm run if the first compiled)."""
        if self.last_seconds is None:
            return False
        if self.last_seconds >= LIVE_SECONDS:  # maybe only the one-off compilation: time a warm run
            start = _timer()
            try:
                self._compute(self.settings())
            except ValueError:
                return False
            self.last_seconds = _timer() - start
        return self.last_seconds < LIVE_SECONDS

    def _open_at_cheaper_setting(self) -> bool:
        """Move the controls to a cheaper setting that follows the sliders, if there is one; True if found.

        Called when the default setting (shown, and timed warm in ``last_seconds``) is too slow.
        Each candidate's time is predicted from the default's by the ratio of their costs; the
        first predicted to fit in ``LIVE_TARGET * LIVE_SECONDS`` is computed and timed (warm).
        After ``MAX_TRIES`` misses, or without candidates, the default setting comes back.
        """
        default = self.settings()
        default_seconds, default_cost = self.last_seconds, self._cost(default)
        if not default_seconds or not default_cost:
            return False
        seconds_per_cost = default_seconds / default_cost
        tries = 0
        for change in self._cheaper_settings(default):
            candidate = {**default, **change}
            cost = self._cost(candidate)
            if (candidate == default or self._check(candidate) or cost is None
                    or cost * seconds_per_cost > LIVE_TARGET * LIVE_SECONDS):
                continue
            tries += 1
            self._set_values(candidate)
            if self.refresh(compute=True) and self._fast_enough():
                self.opening_note = (f"{self._describe(default)} takes {default_seconds:.1f} s here, so the "
                                     f"explorer opens at {self._describe(candidate)} ({self.last_seconds:.1f} s), "
                                     "which follows the sliders; every setting stays available")
                return True
            if tries >= MAX_TRIES:
                break
            if self.last_seconds:  # slower than predicted: predict the next ones from this measurement
                seconds_per_cost = max(seconds_per_cost, self.last_seconds / cost)
        if tries:
            self._set_values(default)
            self.refresh(compute=False)  # the default's picture, from the cache
        self.last_seconds = default_seconds
        return False

    def _set_values(self, settings: dict[str, Any]) -> None:
        """Set the controls to ``settings`` without computing anything on the way."""
        with self._quietly():
            for key, value in settings.items():
                self.controls[key].value = value

    @contextmanager
    def _quietly(self):
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    # ----------------------------------------------------------- to override
    def _compute(self, settings: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _draw(self, settings: dict[str, Any], result: Any) -> Any:
        raise NotImplementedError

    def _check(self, settings: dict[str, Any]) -> str | None:
        return None

    def _cost(self, settings: dict[str, Any]) -> float | None:
        """How much a setting costs to compute, in any unit proportional to time (None: unknown)."""
        return None

    def _cheaper_settings(self, settings: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """Changes to ``settings`` to open at when it is too slow to follow the sliders, best first."""
        return ()

    def _describe(self, settings: dict[str, Any]) -> str:
        """A setting in a few words, for the status line."""
        return ", ".join(f"{key} {value}" for key, value in settings.items())

    def _cache_key(self, settings: dict[str, Any]) -> Any:
        return tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in settings.items()))

    # --------------------------------------------------------------- wiring
    def _value_controls(self) -> dict[str, Any]:
        return {key: control for key, control in self.controls.items() if hasattr(control, "value")}

    def settings(self) -> dict[str, Any]:
        """The current value of every control, by key."""
        return {key: control.value for key, control in self._value_controls().items()}

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._quiet:
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
            start = _timer()
            try:
                result = self._compute(settings)
            except ValueError as err:  # a bad setting the checks did not foresee
                self._set_status(str(err), "error")
                return False
            self.last_seconds = _timer() - start
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
