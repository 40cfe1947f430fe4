"""One notation, and sentences that must stay true in both modes (issue 21, items 5-7).

docs/NOTATION.md maps the course's words to the papers' letters; every lesson links it, and what
it says about the samplers' time grids is checked against the code. Lesson 06 keeps sigma for
one quantity (noise rate / signal rate), prints the distances its prose relies on and quotes none
that differ between fast mode (``flowers32``) and full mode (``flowers64``). Sentences issue 21
quoted as wrong must not come back.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
NOTATION = REPO / "docs" / "NOTATION.md"
LESSONS = ["01_diffusion_schedule", "02_forward_noising", "03_unet", "04_training", "05_kid", "06_sampling",
           "07_interpolation", "08_guidance", "09_flow_matching"]


def cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def cell(name: str, cell_id: str) -> str:
    found = [c for c in cells(name) if c.get("id") == cell_id]
    assert len(found) == 1, f"{name} has no cell {cell_id!r}"
    return "".join(found[0]["source"])


def markdown(name: str) -> str:
    """All markdown of a notebook with white space folded, so that phrases match across lines."""
    text = "\n".join("".join(c["source"]) for c in cells(name) if c["cell_type"] == "markdown")
    return re.sub(r"\s+", " ", text)


def code(name: str) -> str:
    return "\n".join("".join(c["source"]) for c in cells(name) if c["cell_type"] == "code")


# ------------------------------------------------------------------ the notation table
def test_notation_table_maps_the_rates_sigma_and_the_guidance_scale():
    text = NOTATION.read_text(encoding="utf-8")
    for needed in ("√ᾱ_t", "√α_t", "| α_t |", "| σ_t |", "σ = noise rate / signal rate", "e^{−λ_t}",
                   "fresh-noise rate", "σ_t(η)", "the course's w − 1", "Imagen", "`guidance_scale`",
                   "2N − 1", "network_evaluations", "sampling_times"):
        assert needed in text, f"docs/NOTATION.md should say {needed!r}"
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links and all(link.startswith("https://") for link in links)


def test_what_the_notation_table_says_about_steps_is_what_the_samplers_do():
    from ddim_tutorial.core.sampling import network_evaluations, sampling_times

    for steps in (1, 2, 5, 10):
        assert network_evaluations("ddim", steps) == steps
        assert network_evaluations("dpm++2s", steps) == 2 * steps - 1
        ddim = sampling_times("ddim", steps)
        np.testing.assert_allclose(ddim, 1.0 - np.arange(steps) / steps)  # 1 ... 1/N, t = 0 never
        dpm = sampling_times("dpm++2s", steps)
        assert dpm[0] == 1.0 and len(dpm) == steps
        if steps > 1:
            assert dpm[-1] == pytest.approx(0.0)  # from 1 down to 0 included
    assert network_evaluations("dpm++2s", 5) == network_evaluations("ddim", 10) - 1


def test_the_guidance_scale_of_the_course_is_ho_and_salimans_w_plus_one():
    """guided = uncond + w (cond - uncond) = (1 + w') cond - w' uncond with w' = w - 1."""
    from ddim_tutorial.core.predictions import network_predictions

    rng = np.random.default_rng(0)
    conditional, unconditional = rng.standard_normal((2, 2, 4, 4, 3)).astype("float32")

    def call_network(inputs):  # the conditional half first, as network_predictions stacks them
        half = inputs[0].shape[0] // 2
        return np.concatenate([conditional[:half], unconditional[:half]])

    w = 3.0
    guided = network_predictions(call_network, np.zeros((2, 4, 4, 3), "float32"), np.ones((2, 1, 1, 1), "float32"),
                                 null_label=5, class_labels=np.array([0, 1]), guidance_scale=w)
    papers_w = w - 1.0
    np.testing.assert_allclose(np.asarray(guided), (1 + papers_w) * conditional - papers_w * unconditional,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_links_the_notation_table(name):
    assert "docs/NOTATION.md" in markdown(name), (
        f"{name} should link the notation table, e.g. with the line: **Notation.** The lessons name "
        "quantities in words; [docs/NOTATION.md](https://github.com/ddim-tutorial/ddim-tutorial/blob/main/"
        "docs/NOTATION.md) gives the letters the papers use ...")


# ------------------------------------------------------------------ lesson 06: sigma means one thing
def test_lesson_06_keeps_sigma_for_noise_rate_over_signal_rate():
    assert r"\sigma = \text{noise rate} / \text{signal rate}" in cell("06_sampling", "06-ode")
    for cell_id in ("06-09", "06-16", "06-ddim-step-solution"):
        text = cell("06_sampling", cell_id)
        assert not re.search(r"\\sigma\s*=", text), f"{cell_id} still calls the eta noise sigma"
        assert not re.search(r"(?<!\\)\bsigmas?\b", text), f"{cell_id} still says sigma for the eta noise"
    assert "fresh-noise rate" in markdown("06_sampling")
    solution = cell("06_sampling", "06-ddim-step-solution")
    assert "fresh_rates" in solution and "sigmas" not in solution
    from ddim_tutorial.core.sampling import ddim_step

    assert "fresh-noise rate" in inspect.getdoc(ddim_step)


# ------------------------------------------------------------------ lesson 06: numbers that cannot drift
WHAT_YOU_SHOULD_SEE = "**What you should see.**"


def test_lesson_06_prints_the_figures_its_prose_relies_on():
    compare = cell("06_sampling", "06-ode-compare")
    assert compare.count("print(") >= 3
    assert "distances[" in compare and "ratio" in compare and "closer" in compare
    assert "divide the distance" in compare, "the gain from twice the evaluations is printed, not quoted"
    assert 'sampler="dpm++2s"' in compare.split("reference =")[1].split("\n")[0], "the reference is DPM++ 2S"


def test_lesson_06_says_what_you_should_see_per_mode_without_numbers_that_differ():
    see = [re.sub(r"\s+", " ", "".join(c["source"])) for c in cells("06_sampling")
           if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(WHAT_YOU_SHOULD_SEE)]
    assert len(see) >= 2
    for text in see:
        assert "`flowers32`" in text and "`flowers64`" in text, "name the model of each mode"
        assert not re.search(r"\d\.\d|\d\s*%|\d(\.\d)?x\b", text), f"a measured number in the prose: {text}"


WRONG_SENTENCES_06 = [
    "the error shrinks four times when the steps are halved",
    "full mode until the 64x64 model is fully trained",
    "one CPU hour",
    "needs about twice the evaluations",
    "DDIM needs about twice",
    "The reference is DDIM with 100 steps",
    "gives grainier",
]


@pytest.mark.parametrize("sentence", WRONG_SENTENCES_06)
def test_lesson_06_sentences_corrected_by_issue_21_are_gone(sentence):
    assert sentence not in markdown("06_sampling")


def test_lesson_06_explains_where_the_sampler_explorer_opens():
    text = markdown("06_sampling")
    assert re.search(r"opens at DPM\+\+ 2S with as many steps as redraw in under a second", text)
    assert "status line" in text


def test_lesson_06_trajectory_uses_the_models_prediction_type():
    for call in re.findall(r"reverse_diffusion_steps\((?:[^()]|\([^()]*\))*\)", code("06_sampling"), flags=re.S):
        assert "prediction_type=config.prediction_type" in call, call


@pytest.mark.parametrize("name", ["06_sampling", "07_interpolation"])
def test_late_lessons_suggest_the_fine_tuned_checkpoint(name):
    assert 'CHECKPOINT = None  # e.g. "runs/lessons/best"' not in code(name)


# ------------------------------------------------------------------ lessons 00, 01, 07
def test_check_notebook_counts_the_lessons_and_gives_sound_advice():
    text = markdown("00_check_on_colab")
    lessons = sorted(path.stem for path in NOTEBOOKS.glob("0[1-9]_*.ipynb"))
    words = {7: "seven", 8: "eight", 9: "nine"}
    assert f"all {words[len(lessons)]} lessons" in text
    assert "all seven lessons" not in text or len(lessons) == 7
    assert not re.search(r"runs/lessons/best`\. Copy that folder", text), "the 5-epoch run is not the one to share"
    assert "runs/lessons/finetuned" in text and "flowers64" in text
    assert "docs/TEACHING.md" in text


def test_lesson_07_is_not_called_the_last_lesson():
    assert "this last lesson" not in markdown("07_interpolation")
    assert "(08_guidance.ipynb)" in markdown("07_interpolation")


def test_lesson_07_names_the_model_of_each_mode():
    text = markdown("07_interpolation")
    assert "`flowers32`" in text and "`flowers64`" in text and "tiny fast-mode model" not in text


def test_schedule_docstring_states_the_true_property():
    from ddim_tutorial.core.schedule import diffusion_schedule

    doc = inspect.getdoc(diffusion_schedule)
    assert "alter the image least" not in doc
    assert "2 * sin(step angle / 2)" in re.sub(r"\s+", " ", doc)
    assert re.search(r"What does slow down towards the ends are the \*variances\*", markdown("01_diffusion_schedule"))
    assert "2 · sin(Δa / 2)" in markdown("01_diffusion_schedule")
