"""The exercise checkers: the package's own code passes, and typical mistakes get the right diagnosis.

Every checker must reject at least three wrong implementations with a sentence that names the
mistake: a checker that passes anything would teach nothing.
"""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers, ops

from ddim_tutorial.core.network import SinusoidalEmbedding, residual_block
from ddim_tutorial.core.sampling import ddim_step
from ddim_tutorial.core.schedule import diffusion_schedule
from ddim_tutorial.metrics.kid import kid_per_batch
from ddim_tutorial.teaching import exercises
from ddim_tutorial.teaching.checking import STARTER
from ddim_tutorial.teaching.exercises import (
    CheckResult,
    check,
    check_ddim_step,
    check_forward_noise,
    check_guidance,
    check_kid,
    check_loss,
    check_residual_block,
    check_schedule,
    check_sinusoidal_embedding,
    check_slerp,
)
from ddim_tutorial.teaching.interpolation import lerp, slerp


def verdict(checker, fn) -> CheckResult:
    result = checker(fn)
    assert isinstance(result, CheckResult)
    assert "\n" not in result.message and result.message.endswith(".")  # one sentence for the notebook
    return result


def assert_rejected(checker, fn, *phrases: str) -> None:
    result = verdict(checker, fn)
    assert not result, result.message
    for phrase in phrases:
        assert phrase in result.message, result.message


# ------------------------------------------------------------------ student solutions
def my_diffusion_schedule(diffusion_times, min_signal_rate, max_signal_rate):
    start, end = math.acos(max_signal_rate), math.acos(min_signal_rate)
    angles = start + ops.convert_to_tensor(diffusion_times) * (end - start)
    return ops.sin(angles), ops.cos(angles)


def my_forward_noise(images, noises, noise_rates, signal_rates):
    return signal_rates * images + noise_rates * noises


def my_sinusoidal_embedding(x, embedding_dims=32, min_frequency=1.0, max_frequency=1000.0):
    frequencies = np.exp(np.linspace(math.log(min_frequency), math.log(max_frequency), embedding_dims // 2))
    angular_speeds = ops.convert_to_tensor((2.0 * math.pi * frequencies).astype("float32"))
    x = ops.convert_to_tensor(x)
    return ops.concatenate([ops.sin(angular_speeds * x), ops.cos(angular_speeds * x)], axis=-1)


def make_block(residual=True, swish=True, project=True, norm="bn", concatenate=False, late_projection=False):
    """A student's block in the style of the Keras example, with one mistake switched on at a time."""
    def residual_block(width):
        def apply(x):
            skip = x
            if project and x.shape[-1] != width and not late_projection:
                skip = layers.Conv2D(width, kernel_size=1)(x)
            inputs = x
            if norm == "bn":
                x = layers.BatchNormalization(center=False, scale=False)(x)
            elif norm == "bn_affine":
                x = layers.BatchNormalization()(x)
            activation = swish if isinstance(swish, str) else "swish" if swish else None
            x = layers.Conv2D(width, kernel_size=3, padding="same", activation=activation)(x)
            x = layers.Conv2D(width, kernel_size=3, padding="same")(x)
            if project and inputs.shape[-1] != width and late_projection:
                skip = layers.Conv2D(width, kernel_size=1)(inputs)
            if concatenate:
                return layers.Concatenate()([x, skip])
            return layers.Add()([x, skip]) if residual else x
        return apply
    return residual_block


class ResidualBlock(layers.Layer):
    """A student's block as a Layer subclass: its sublayers are what the checker compares."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def build(self, input_shape):
        self.project = layers.Conv2D(self.width, 1) if input_shape[-1] != self.width else None
        self.norm = layers.BatchNormalization(center=False, scale=False)
        self.conv1 = layers.Conv2D(self.width, 3, padding="same", activation="swish")
        self.conv2 = layers.Conv2D(self.width, 3, padding="same")

    def call(self, x, training=None):
        skip = x if self.project is None else self.project(x)
        return self.conv2(self.conv1(self.norm(x, training=training))) + skip


def my_noise_loss(noises, pred_noises):
    return ops.mean(ops.abs(noises - pred_noises))


def my_ddim_step(pred_noises, pred_images, noise_rates, signal_rates, next_noise_rates, next_signal_rates,
                 eta, fresh_noises):
    a, a_next = signal_rates**2, next_signal_rates**2
    sigma = eta * ops.sqrt((1.0 - a_next) / (1.0 - a) * (1.0 - a / a_next))
    kept_noise_rates = ops.sqrt(next_noise_rates**2 - sigma**2)
    return next_signal_rates * pred_images + kept_noise_rates * pred_noises + sigma * fresh_noises


def kernel(a, b):
    return (ops.matmul(a, ops.transpose(b)) / a.shape[1] + 1.0) ** 3


def my_unbiased_mmd(real, generated, biased=False, cross_weight=2.0):
    real, generated = ops.convert_to_tensor(real), ops.convert_to_tensor(generated)
    m, n = real.shape[0], generated.shape[0]
    within = []
    for features, size in ((real, m), (generated, n)):
        k = kernel(features, features)
        within.append(ops.mean(k) if biased else (ops.sum(k) - ops.trace(k)) / (size * (size - 1)))
    return within[0] + within[1] - cross_weight * ops.mean(kernel(real, generated))


def my_slerp(start, end, fraction):
    start, end = ops.convert_to_tensor(start), ops.convert_to_tensor(end)
    cosine = ops.sum(start * end) / (ops.norm(ops.reshape(start, (-1,))) * ops.norm(ops.reshape(end, (-1,))))
    omega = ops.arccos(cosine)
    return (ops.sin((1.0 - fraction) * omega) * start + ops.sin(fraction * omega) * end) / ops.sin(omega)


def my_guided_prediction(conditional, unconditional, guidance_scale):
    conditional, unconditional = ops.convert_to_tensor(conditional), ops.convert_to_tensor(unconditional)
    return unconditional + guidance_scale * (conditional - unconditional)


# ----------------------------------------------------------------------------- passing
@pytest.mark.parametrize("checker, fn", [
    (check_schedule, diffusion_schedule), (check_schedule, my_diffusion_schedule),
    (check_forward_noise, my_forward_noise),
    (check_sinusoidal_embedding, lambda x, dims, lo, hi: SinusoidalEmbedding(dims, lo, hi)(x)),
    (check_sinusoidal_embedding, my_sinusoidal_embedding),
    (check_sinusoidal_embedding, lambda x: my_sinusoidal_embedding(x)),  # the reference's one-argument form
    (check_residual_block, residual_block), (check_residual_block, make_block()),
    (check_residual_block, make_block(late_projection=True)), (check_residual_block, ResidualBlock),
    (check_loss, my_noise_loss), (check_loss, lambda a, b: np.mean(np.abs(np.asarray(a) - np.asarray(b)))),
    (check_ddim_step, ddim_step), (check_ddim_step, my_ddim_step),
    (check_kid, kid_per_batch), (check_kid, my_unbiased_mmd),
    (check_slerp, slerp), (check_slerp, my_slerp),
    (check_guidance, my_guided_prediction),
    (check_guidance,
     lambda c, u, w: w * np.asarray(ops.convert_to_numpy(c)) + (1 - w) * np.asarray(ops.convert_to_numpy(u))),
], ids=lambda value: getattr(value, "__name__", "fn"))
def test_the_package_and_a_correct_solution_pass(checker, fn, capsys):
    result = verdict(checker, fn)
    assert result, result.message
    assert result.passed and "passed" in result.message
    assert capsys.readouterr().out.strip() == result.message  # printed, one line, for the notebook cell


# ------------------------------------------------------------------------- rejections
def test_schedule_mistakes():
    schedule = diffusion_schedule
    assert_rejected(check_schedule, lambda t, lo, hi: schedule(t, lo, hi)[::-1], "returns (signal_rates, noise_rates)")
    assert_rejected(check_schedule, lambda t, lo, hi: (2 * schedule(t, lo, hi)[0], schedule(t, lo, hi)[1]),
                    "constant factor", "noise_rates is 2 times")
    assert_rejected(check_schedule, lambda t, lo, hi: (schedule(t, lo, hi)[0], -schedule(t, lo, hi)[1]),
                    "wrong sign", "signal_rates")
    assert_rejected(check_schedule, lambda t, lo, hi: schedule(1.0 - ops.convert_to_tensor(t), lo, hi),
                    "backwards in time")
    assert_rejected(check_schedule, lambda t, lo, hi: tuple(ops.mean(r) for r in schedule(t, lo, hi)),
                    "with shape ()", "must have shape (6,)")
    assert_rejected(check_schedule, lambda t, lo, hi: schedule(t, lo, hi)[0], "not the 2 outputs")
    linear = lambda t, lo, hi: (ops.sqrt(1 - (hi + t * (lo - hi)) ** 2), hi + t * (lo - hi))  # noqa: E731
    assert_rejected(check_schedule, linear, "differs from the package by up to", "where diffusion_times=")


def test_forward_noise_mistakes():
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: nr * x + sr * n, "swaps the rates")
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: sr**2 * x + nr**2 * n, "variances")
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: 2 * (sr * x + nr * n), "constant factor", "2 times")
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: -(sr * x + nr * n), "wrong sign")
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: ops.sum(sr * x + nr * n, axis=-1), "shape")
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: sr * x - nr * n, "differs", "noise_rates=")
    assert_rejected(check_forward_noise, lambda x, n: x + n, "must take 4 arguments")


def test_sinusoidal_embedding_mistakes():
    def cosines_first(x, dims, lo, hi):
        sines_then_cosines = my_sinusoidal_embedding(x, dims, lo, hi)
        return ops.concatenate([sines_then_cosines[..., dims // 2:], sines_then_cosines[..., :dims // 2]], axis=-1)

    assert_rejected(check_sinusoidal_embedding, cosines_first, "puts the cosines first")
    assert_rejected(check_sinusoidal_embedding,
                    lambda x, dims, lo, hi: my_sinusoidal_embedding(x, dims, lo / (2 * math.pi), hi / (2 * math.pi)),
                    "factor 2*pi")
    assert_rejected(check_sinusoidal_embedding,
                    lambda x, dims, lo, hi: my_sinusoidal_embedding(x, dims, lo, hi)[..., : dims // 2], "shape")
    assert_rejected(check_sinusoidal_embedding, lambda x, dims, lo, hi: 2 * my_sinusoidal_embedding(x, dims, lo, hi),
                    "constant factor")
    assert_rejected(check_sinusoidal_embedding, lambda x: my_sinusoidal_embedding(x, 32, 1.0, 100.0), "differs")

    def evenly_spaced(x, dims, lo, hi):
        speeds = ops.convert_to_tensor((2.0 * math.pi * np.linspace(lo, hi, dims // 2)).astype("float32"))
        angles = ops.convert_to_tensor(x) * speeds
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    assert_rejected(check_sinusoidal_embedding, evenly_spaced, "spaces the frequencies evenly", "geometrically")


def test_residual_block_mistakes():
    assert_rejected(check_residual_block, make_block(residual=False), "forgets to add the residual")
    assert_rejected(check_residual_block, make_block(swish=False), "forgets the swish")
    assert_rejected(check_residual_block, make_block(swish="relu"), "uses ReLU")
    assert_rejected(check_residual_block, make_block(project=False), "raised ValueError", "while building the block")
    assert_rejected(check_residual_block, make_block(norm="bn_affine"), "parameters", "center=False")
    assert_rejected(check_residual_block, make_block(norm=None), "has the layers", "BatchNormalization x1")
    assert_rejected(check_residual_block, make_block(concatenate=True), "outputs of shape (None, 6, 6, 16)")
    assert_rejected(check_residual_block, lambda width: (lambda x: None), "returns None, not the block's output tensor")


def test_loss_mistakes():
    assert_rejected(check_loss, lambda a, b: ops.mean((a - b) ** 2), "mean squared error")
    assert_rejected(check_loss, lambda a, b: ops.sum(ops.abs(a - b)), "sums")
    assert_rejected(check_loss, lambda a, b: -my_noise_loss(a, b), "wrong sign")
    assert_rejected(check_loss, lambda a, b: 0.5 * my_noise_loss(a, b), "constant factor", "0.5 times")
    assert_rejected(check_loss, lambda a, b: ops.mean(ops.abs(a - b), axis=(1, 2, 3)), "a single number")
    assert_rejected(check_loss, lambda a, b: 1, "dtype int")


def test_ddim_step_mistakes():
    def step(*args, **kwargs):
        return my_ddim_step(*args, **kwargs)

    assert_rejected(check_ddim_step, lambda pn, pi, nr, sr, nnr, nsr, eta, z: step(pn, pi, nr, sr, nnr, nsr, 0.0, z),
                    "ignores eta")
    assert_rejected(check_ddim_step,
                    lambda pn, pi, nr, sr, nnr, nsr, eta, z: nsr * pi + nnr * pn
                    + (step(0 * pn, 0 * pi, nr, sr, nnr, nsr, eta, z)), "keeps next_noise_rates")
    assert_rejected(check_ddim_step, lambda pn, pi, nr, sr, nnr, nsr, eta, z: step(pn, pi, nr, sr, nnr, nsr, 1.0, z),
                    "without the factor eta")
    assert_rejected(check_ddim_step, lambda pn, pi, nr, sr, nnr, nsr, eta, z: sr * pi + nr * pn, "current rates")
    assert_rejected(check_ddim_step, lambda pn, pi, nr, sr, nnr, nsr, eta, z: step(pi, pn, nr, sr, nnr, nsr, eta, z),
                    "swaps the rates")
    assert_rejected(check_ddim_step, lambda pn, pi, nr, sr, nnr, nsr, eta, z: 2 * step(pn, pi, nr, sr, nnr, nsr,
                                                                                         eta, z), "2 times")
    assert_rejected(check_ddim_step, lambda pn, pi, nr, sr, nnr, nsr: nsr * pi + nnr * pn, "must take 8 arguments")


def test_kid_mistakes():
    assert_rejected(check_kid, lambda r, g: my_unbiased_mmd(r, g, biased=True), "includes the diagonal")
    assert_rejected(check_kid, lambda r, g: my_unbiased_mmd(ops.convert_to_tensor(r) * math.sqrt(r.shape[1]),
                                                            ops.convert_to_tensor(g) * math.sqrt(g.shape[1])),
                    "divide the dot product by the feature width")
    assert_rejected(check_kid, lambda r, g: my_unbiased_mmd(r, g, cross_weight=1.0), "cross term once")
    assert_rejected(check_kid, lambda r, g: -my_unbiased_mmd(r, g), "wrong sign")
    assert_rejected(check_kid, lambda r, g: kernel(ops.convert_to_tensor(r), ops.convert_to_tensor(g)), "single number")


def test_slerp_mistakes():
    assert_rejected(check_slerp, lambda a, b, f: lerp(a, b, f)[0], "straight line (lerp)")
    assert_rejected(check_slerp, lambda a, b, f: my_slerp(b, a, f), "runs from end to start")
    assert_rejected(check_slerp, lambda a, b, f: math.cos(f * math.pi / 2) * ops.convert_to_tensor(a)
                    + math.sin(f * math.pi / 2) * ops.convert_to_tensor(b), "90 degrees")
    assert_rejected(check_slerp, lambda a, b, f: ops.stack([my_slerp(a, b, f)] * 2), "shape")
    assert_rejected(check_slerp, lambda a, b, f: my_slerp(a, b, f) / 2, "constant factor")


# ---------------------------------------------------------------- reports, never raises
def test_guidance_mistakes():
    tensor = ops.convert_to_tensor
    assert_rejected(check_guidance, lambda c, u, w: tensor(c) + w * (tensor(c) - tensor(u)),
                    "starts from the conditional answer")
    assert_rejected(check_guidance, lambda c, u, w: my_guided_prediction(u, c, w), "wrong way round")
    assert_rejected(check_guidance, lambda c, u, w: w * (tensor(c) - tensor(u)), "returns only guidance_scale")
    assert_rejected(check_guidance, lambda c, u, w: tensor(u) + w * tensor(c), "without subtracting")
    assert_rejected(check_guidance, lambda c, u, w: tensor(c), "differs from the package")
    assert_rejected(check_guidance, lambda c, u, w: ops.stack([my_guided_prediction(c, u, w)] * 2), "shape")


def my_flow_step(noisy_images, velocities, noise_rates, next_noise_rates):
    return noisy_images + (next_noise_rates - noise_rates) * velocities


def test_flow_step_passes_the_euler_step_and_rejects_four_mistakes(capsys):
    from ddim_tutorial.teaching.exercises import check_flow_step

    assert verdict(check_flow_step, my_flow_step).passed
    assert_rejected(check_flow_step, lambda x, v, n, n2: my_flow_step(x, v, n2, n), "steps the wrong way")
    assert_rejected(check_flow_step, lambda x, v, n, n2: ops.convert_to_tensor(x) + v, "adds the whole velocity")
    assert_rejected(check_flow_step, lambda x, v, n, n2: ops.convert_to_tensor(x) + n2 * ops.convert_to_tensor(v),
                    "by next_noise_rates alone")
    assert_rejected(check_flow_step, lambda x, v, n, n2: ops.convert_to_tensor(x) - n * ops.convert_to_tensor(v),
                    "jumps all the way to the predicted image")
    assert_rejected(check_flow_step, lambda x, v, n, n2: my_flow_step(x, 0.5 * ops.convert_to_tensor(v), n, n2),
                    "differs from the package")


def test_an_exception_in_the_students_function_is_named_not_raised():
    def my_ddim_step(*args):
        raise ZeroDivisionError("boom")

    assert_rejected(check, my_ddim_step, "raised ZeroDivisionError (boom)", "eta=0.0")


@pytest.mark.parametrize("checker, arguments", [
    (check_schedule, 3), (check_forward_noise, 4), (check_sinusoidal_embedding, 4), (check_residual_block, 2),
    (check_loss, 2), (check_ddim_step, 8), (check_kid, 2), (check_slerp, 3), (check_guidance, 3)],
    ids=lambda value: getattr(value, "__name__", str(value)))
def test_an_unfinished_starter_is_told_which_line_to_replace(checker, arguments):
    """The lessons' starters raise NotImplementedError: the sentence says what to do, not where it failed."""
    def starter(*args):
        raise NotImplementedError

    starter.__signature__ = inspect.Signature(
        [inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in range(arguments)])
    result = verdict(checker, starter)
    assert not result
    assert result.message == f"{result.exercise}: not yet, your function {STARTER}.", result.message


def test_nan_is_reported_with_where_it_occurs():
    def my_schedule(t, lo, hi):
        noise_rates, signal_rates = diffusion_schedule(t, lo, hi)
        return noise_rates / ops.convert_to_tensor(t), signal_rates  # divides by diffusion time 0

    assert_rejected(check_schedule, my_schedule, "NaN or Inf in the noise_rates", "diffusion_times=0")


def test_a_non_array_output_is_named():
    assert_rejected(check_loss, lambda a, b: None, "returned None")
    assert_rejected(check_forward_noise, lambda x, n, nr, sr: object(), "returned an object")


# ---------------------------------------------------------------------- the dispatcher
@pytest.mark.parametrize("name, exercise", [
    ("my_diffusion_schedule", "schedule"), ("my_forward_noise", "forward_noise"),
    ("sinusoidal_embedding", "sinusoidal_embedding"), ("ResidualBlock", "residual_block"),
    ("my_noise_loss", "loss"), ("my_ddim_step", "ddim_step"), ("mySlerp", "slerp"),
    ("my_unbiased_mmd", "kid"), ("kid_per_batch", "kid"), ("your_ddim_step2", "ddim_step"),
    ("my_guided_prediction", "guidance")])
def test_check_infers_the_exercise_from_the_function_name(name, exercise, monkeypatch):
    seen = []
    monkeypatch.setitem(exercises.EXERCISES, exercise, lambda fn: seen.append(fn) or "ok")

    def fn(*args):
        return None

    fn.__name__ = name
    assert check(fn) == "ok" and seen == [fn]


def test_check_with_an_explicit_name_and_its_result_object(capsys):
    result = check(my_ddim_step, "ddim_step")
    assert result and bool(result) is True and str(result) == result.message
    assert repr(result) == "CheckResult('ddim_step', passed=True)"
    assert capsys.readouterr().out.count("\n") == 1
    assert not check(lambda a, b, f: lerp(a, b, f)[0], name="slerp")


def test_misuse_raises_a_clear_value_error():
    with pytest.raises(ValueError, match="known exercises: schedule, forward_noise"):
        check(my_ddim_step, "ddim")
    with pytest.raises(ValueError, match="cannot tell the exercise.*ddim_step"):
        check(lambda x: x)
    with pytest.raises(ValueError, match="without parentheses"):
        check(0.5)
    with pytest.raises(ValueError, match="not a value of type int"):
        check_schedule(3)
    assert set(exercises.EXERCISES) == {"schedule", "forward_noise", "sinusoidal_embedding", "residual_block",
                                        "loss", "ddim_step", "kid", "slerp", "guidance", "flow_step"}
    assert keras.backend.backend() in {"tensorflow", "jax", "torch"}


def test_importing_the_checkers_leaves_the_backend_unchosen():
    """lesson.check re-exports ``check``: importing it must not import Keras before choose_backend."""
    code = "import sys, ddim_tutorial.teaching.exercises; assert 'keras' not in sys.modules, 'keras imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
