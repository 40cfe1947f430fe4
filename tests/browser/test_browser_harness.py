"""Self-check of the browser harness on a notebook the test writes itself.

If this fails, the course notebooks' browser tests cannot be trusted either: it proves that Run All
runs, that ipywidgets' JupyterLab extension renders a slider, that a keyboard move of the slider
reaches the kernel and redraws a matplotlib figure (and that a slider which redraws nothing is
caught), and that the error detector really sees a traceback (the last cell fails on purpose)
and does not mistake a printed message for one.
"""

from __future__ import annotations

import pytest

WIDGET_CELL = """\
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

waves = widgets.IntSlider(value=2, min=1, max=8, description="waves",
                          continuous_update=False)
plot = widgets.Output()
plot.add_class("selfcheck-plot")

def redraw(change=None):
    with plot:
        plot.clear_output(wait=True)
        x = np.linspace(0.0, 2.0 * np.pi, 200)
        fig, ax = plt.subplots(figsize=(4, 2.5))
        ax.plot(x, np.sin(waves.value * x))
        ax.set_title(f"sin({waves.value} x)")
        plt.show()

waves.observe(redraw, names="value")
redraw()
inert = widgets.IntSlider(value=0, min=0, max=8, description="inert", continuous_update=False)
box = widgets.VBox([waves, inert, plot])
box.add_class("selfcheck-box")
display(box)
"""

# Printed on purpose, as a lesson may do when it shows a clear error message: not a failure.
PRINTING_CELL = 'print("ValueError: steps=0 is invalid (printed on purpose, not a failure)")'
FAILING_CELL = 'raise ValueError("deliberate failure for the harness self-check")'


@pytest.fixture(scope="module")
def selfcheck(open_notebook, make_notebook):
    path = make_notebook(
        "harness_selfcheck.ipynb", [WIDGET_CELL, PRINTING_CELL, FAILING_CELL]
    )
    notebook = open_notebook(path)
    notebook.run_all_cells(timeout_s=90)
    yield notebook
    notebook.close()


def test_slider_move_redraws_the_figure(selfcheck):
    slider = selfcheck.slider("waves")
    assert selfcheck.slider_readout(slider) == "2"
    before = selfcheck.fingerprint(".selfcheck-plot")
    assert selfcheck.page.locator(".selfcheck-plot img").count() == 1, "the inline figure did not render"
    selfcheck.screenshot("before_waves", ".selfcheck-box")

    moved = selfcheck.move_slider("waves", presses=1)
    assert moved == ("2", "3")
    selfcheck.wait_for_change(".selfcheck-plot", before)
    selfcheck.screenshot("after_waves", ".selfcheck-box")
    assert selfcheck.page.locator(".selfcheck-plot").inner_text() == ""  # an image, no text


def test_a_slider_that_redraws_nothing_is_caught(selfcheck):
    before = selfcheck.fingerprint(".selfcheck-plot")
    assert selfcheck.move_slider("inert", presses=1) == ("0", "1")
    with pytest.raises(AssertionError, match="did not change"):
        selfcheck.wait_for_change(".selfcheck-plot", before, timeout_s=3)


def test_error_detector_sees_the_deliberate_failure(selfcheck):
    errors = selfcheck.error_outputs()
    assert errors, "the deliberately failing cell was not detected"
    assert all("deliberate failure" in e for e in errors), errors
    assert any(e.startswith("cell 2: ValueError") for e in errors), errors  # from the model
    assert any("Traceback" in e or "ValueError" in e and not e.startswith("cell") for e in errors), errors
    with pytest.raises(AssertionError, match="deliberate failure"):
        selfcheck.assert_no_errors()


def _figure_png(title: str, waves: int) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(3, 2))
    x = np.linspace(0.0, 2.0 * np.pi, 100)
    ax.plot(x, np.sin(waves * x))
    ax.set_title(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def test_picture_change_ignores_the_title_but_not_the_curve(picture_change):
    base = _figure_png("2 steps", waves=2)
    assert picture_change(base, _figure_png("2 steps", waves=2)) == 0.0
    assert picture_change(base, _figure_png("3 steps", waves=2)) == 0.0
    assert picture_change(base, _figure_png("2 steps", waves=3)) > 0.0
