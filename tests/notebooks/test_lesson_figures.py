"""The figures that lessons 04, 05 and 08 quote in their prose, checked against the code that makes them.

A number in a lesson's text that no cell prints is written once and checked here, so that changing a
plan, a schedule or a budget fails a test instead of leaving the text behind.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from keras import ops

from ddim_tutorial.core.schedule import diffusion_schedule
from ddim_tutorial.teaching import lesson

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def markdown(name: str) -> str:
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    text = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    return re.sub(r"\s+", " ", text)


def quoted(pattern: str, text: str) -> tuple[str, ...]:
    found = re.search(pattern, text)
    assert found, f"the lesson no longer says {pattern!r}: update the text and this test together"
    return found.groups()


def test_lesson_04_quotes_the_schedule_at_t_095():
    signal, noise = quoted(r"At t = 0\.95 .*?\(signal rate ([0-9.]+), noise rate ([0-9.]+)\)", markdown("04_training"))
    noise_rate, signal_rate = (float(ops.convert_to_numpy(rate)[0]) for rate in diffusion_schedule(np.array([0.95])))
    assert float(signal) == pytest.approx(signal_rate, abs=0.005)
    assert float(noise) == pytest.approx(noise_rate, abs=5e-4)


def test_lesson_04_quotes_the_cpu_plan_and_what_the_reference_ema_would_keep_of_it():
    text = markdown("04_training")
    steps, share = quoted(r"after (\d+) steps an EMA of 0\.999 still holds 0\.999\S* ≈ (\d+) %", text)
    assert int(steps) == lesson.CPU_RUN_EPOCHS * lesson.CPU_RUN_BATCHES
    assert int(share) == round(100 * 0.999 ** int(steps))
    (table_steps,) = quoted(r"\| full mode without a GPU \| the 32x32 network of `flowers32`, (\d+) steps of 32 images",
                            text)
    assert int(table_steps) == int(steps)


def test_lesson_04_quotes_the_short_fine_tuning_and_a_whole_epoch():
    text = markdown("04_training")
    (batches,) = quoted(r"in fast mode and without a GPU it is (\d+) batches", text)
    assert int(batches) == lesson.SHORT_FINETUNE_BATCHES
    epoch_steps, share = quoted(r"a whole epoch of (\d+) steps would replace 1 − 0\.999\S* ≈ (\d+) %", text)
    assert int(epoch_steps) == 511 and int(share) == round(100 * (1 - 0.999 ** 511))


def test_lesson_04_quotes_the_t4_time_of_the_workshop_run():
    text = markdown("04_training")
    (minutes,) = quoted(r"5 epochs with horizontal flips, about (\d+) minutes on a T4", text)
    assert int(minutes) == round(5 * 2 * 3600 / 50 / 60), "the reference: 50 epochs in 2 hours on a T4"


def test_lesson_08_quotes_its_cpu_run():
    (epochs, batches) = quoted(r"without a GPU the 32x32 `flowers32` for (\d+) epochs of (\d+) batches",
                               markdown("08_guidance"))
    assert int(batches) == lesson.GUIDANCE_CPU_BATCHES and int(epochs) == 2


def test_the_ema_half_life_of_the_reference():
    (half_life,) = quoted(r"the half-life is about (\d+) steps", markdown("04_training"))
    assert int(half_life) == pytest.approx(math.log(0.5) / math.log(0.999), rel=0.02)


def test_lesson_09_quotes_the_shift_of_keras_hubs_scheduler():
    text = markdown("09_flow_matching")
    (shift,) = quoted(r"with `shift = (\d+)` the noise rates", text)
    assert int(shift) == 3
    assert "`n → 3n / (1 + 2n)`" in text
    without, with_shift = quoted(r"Without the shift (\d+) of the 10 steps start above a noise rate of 0\.8, "
                                 r"with it (\d+)", text)
    n = np.linspace(1.0, 0.1, 10)
    assert int(without) == int((n > 0.8).sum()) and int(with_shift) == int((3 * n / (1 + 2 * n) > 0.8).sum())


def test_lesson_09_quotes_the_euler_step_it_checks():
    text = markdown("09_flow_matching")
    start, end = quoted(r"one step from `n = ([0-9.]+)` to\s+`n = ([0-9.]+)`", text)
    noise_rates = [float(ops.convert_to_numpy(r)[0]) for r in
                   (diffusion_schedule(np.array([t]), path="linear")[0] for t in (1.0, 0.785))]
    assert float(start) == pytest.approx(noise_rates[0], abs=5e-3)
    assert float(end) == pytest.approx(noise_rates[1], abs=5e-3)
