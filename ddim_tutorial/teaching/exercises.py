"""Checkers for the write-it-yourself exercises: a student's function against the package's own.

A student writes a core piece in a few lines and calls ``lesson.check(my_ddim_step)``. The
checker runs the student's function and the package's on a few random inputs (several shapes and
seeds, as NumPy arrays and as Keras tensors) and prints one sentence: passed, or what is wrong (a
shape, a dtype, a sign, a constant factor, swapped outputs, a known mistake such as lerp for
slerp, or the largest difference and where). A wrong function never makes a checker raise; misuse
(not a function, an unknown exercise) raises ValueError. The package's code is the only ground
truth. This module holds the ten checkers and the dispatcher :func:`check`; how a function is
run, compared and described lives in :mod:`ddim_tutorial.teaching.checking`. Keras is imported inside the
functions, so that importing this module never picks a backend.
"""

from __future__ import annotations

import inspect
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ddim_tutorial.teaching.checking import (
    KIND,
    CheckResult,
    Trial,
    compare,
    exercise_checker,
    fail,
    positional_arity,
    raised,
    student_inputs,
    to_numpy,
    with_article,
)

__all__ = ["CheckResult", "check", "EXERCISES", "check_schedule", "check_forward_noise",
           "check_sinusoidal_embedding", "check_residual_block", "check_loss", "check_ddim_step",
           "check_kid", "check_slerp", "check_guidance", "check_flow_step"]


def _schedule(times: Any, lo: float = 0.02, hi: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The package's ``(noise_rates, signal_rates)`` as float32 NumPy, the dtype of every input."""
    from ddim_tutorial.core.schedule import diffusion_schedule

    return tuple(to_numpy(rates).astype(np.float32) for rates in diffusion_schedule(times, lo, hi))


def _mix(images: Any, noises: Any, image_rates: Any, noise_rates: Any) -> np.ndarray:
    """``image_rates * images + noise_rates * noises`` by the package: a deterministic DDIM step
    remixes an image and a noise at given rates, the same mix as ``DiffusionModel.call``."""
    from keras import ops

    from ddim_tutorial.core.sampling import ddim_step

    noises, images, noise_rates, image_rates = (ops.convert_to_tensor(np.asarray(value, "float32"))
                                                for value in (noises, images, noise_rates, image_rates))
    return to_numpy(ddim_step(noises, images, noise_rates, image_rates, noise_rates, image_rates))


# ------------------------------------------------------------------------------- checkers
@exercise_checker("schedule", "diffusion_schedule(diffusion_times, min_signal_rate, max_signal_rate)", 3)
def check_schedule(fn: Callable) -> CheckResult:
    """Student's ``diffusion_schedule(diffusion_times, min_signal_rate, max_signal_rate)`` ->
    ``(noise_rates, signal_rates)``, against :func:`ddim_tutorial.core.schedule.diffusion_schedule`."""
    trials = []
    for seed, (shape, lo, hi) in enumerate([((6,), 0.02, 0.95), ((4, 1, 1, 1), 0.1, 0.8), ((3, 2), 0.05, 0.9)]):
        times = np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)
        times.flat[0], times.flat[-1] = 0.0, 1.0
        expected, tensors = _schedule(times, lo, hi), seed == 1
        trials.append(Trial((*student_inputs((times,), tensors), lo, hi), expected, f"for diffusion_times of shape "
                            f"{shape} as {KIND[tensors]}, min_signal_rate={lo}, max_signal_rate={hi}",
                            {"diffusion_times": times}, {
            "returns (signal_rates, noise_rates), but the order is (noise_rates, signal_rates)": expected[::-1],
            "runs backwards in time: at diffusion time 0 the signal rate must be max_signal_rate":
                _schedule(1.0 - times, lo, hi)}))
    return compare("schedule", fn, trials, ("noise_rates", "signal_rates"))


@exercise_checker("forward_noise", "forward_noise(images, noises, noise_rates, signal_rates)", 4)
def check_forward_noise(fn: Callable) -> CheckResult:
    """Student's ``forward_noise(images, noises, noise_rates, signal_rates)`` -> noisy images,
    against the mix that ``DiffusionModel.call`` trains on."""
    trials = []
    for seed, shape in enumerate([(2, 8, 8, 3), (3, 4, 4, 3), (2, 5, 5, 1)]):
        rng, tensors = np.random.default_rng(seed), seed == 1
        images, noises = rng.standard_normal((2, *shape)).astype(np.float32)
        noise_rates, signal_rates = _schedule(rng.uniform(0.0, 1.0, (shape[0], 1, 1, 1)))
        trials.append(Trial(student_inputs((images, noises, noise_rates, signal_rates), tensors),
                            (_mix(images, noises, signal_rates, noise_rates),),
                            f"for images of shape {shape} as {KIND[tensors]}", {"noise_rates": noise_rates}, {
            "swaps the rates: the images are scaled by signal_rates and the noises by noise_rates":
                (_mix(images, noises, noise_rates, signal_rates),),
            "scales by the variances (squared rates); scale by the rates themselves":
                (_mix(images, noises, signal_rates**2, noise_rates**2),)}))
    return compare("forward_noise", fn, trials, ("noisy_images",))


def _embedding(variances: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """[sines, cosines] of ``2 pi * frequencies * variances`` in NumPy: the embedding of other frequencies."""
    angles = variances.astype(np.float64) * (2.0 * math.pi * frequencies)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)


@exercise_checker("sinusoidal_embedding")
def check_sinusoidal_embedding(fn: Callable) -> CheckResult:
    """Student's ``sinusoidal_embedding(noise_variances[, embedding_dims, min_frequency, max_frequency])``
    against :class:`ddim_tutorial.core.network.SinusoidalEmbedding`; a one-argument function is checked
    at the reference's 32 dimensions and frequencies 1 to 1000."""
    from ddim_tutorial.core.network import SinusoidalEmbedding

    required, maximum = positional_arity(fn)
    if required > 4:
        return fail("sinusoidal_embedding", "must take (noise_variances) or "
                                            "(noise_variances, embedding_dims, min_frequency, max_frequency)")
    cases = [(32, 1.0, 1000.0, (4, 1, 1, 1)), (16, 1.0, 1000.0, (3, 1)), (8, 0.5, 50.0, (5, 1, 1, 1))]
    trials = []
    for seed, (dims, lo, hi, shape) in enumerate(cases if maximum >= 4 else [(32, 1.0, 1000.0, (4, 1, 1, 1)),
                                                                             (32, 1.0, 1000.0, (3, 1))]):
        variances, tensors = np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32), seed == 1
        layer = lambda low, high, dims=dims, variances=variances: to_numpy(  # noqa: E731
            SinusoidalEmbedding(dims, low, high)(variances))
        expected = layer(lo, hi)
        arguments = student_inputs((variances,), tensors) + ((dims, lo, hi) if maximum >= 4 else ())
        trials.append(Trial(arguments, (expected,),
                            f"for noise_variances of shape {shape} as {KIND[tensors]}, embedding_dims={dims}, "
                            f"frequencies {lo:g} to {hi:g}", {"noise_variances": variances}, {
            "puts the cosines first: concatenate [sines, cosines] along the last axis":
                (np.concatenate([expected[..., dims // 2:], expected[..., :dims // 2]], axis=-1),),
            "forgets the factor 2*pi: the angles are 2*pi * frequency * noise_variance":
                (layer(lo / (2 * math.pi), hi / (2 * math.pi)),),
            "spaces the frequencies evenly; space them geometrically (np.geomspace), equal ratios not steps":
                (_embedding(variances, np.linspace(lo, hi, dims // 2)),)}))
    # float32 sines of angles up to 2*pi*1000 carry rounding errors of about 1e-4
    return compare("sinusoidal_embedding", fn, trials, ("embedding",), rtol=1e-3, atol=2e-3)


def _student_block(fn: Callable, in_width: int, width: int, where: str) -> tuple[Any, str | None]:
    """The student's block as a Keras model, built as ``fn(width)(x)`` or ``fn(x, width)``, or a problem
    (a phrase for :func:`fail` that ends with ``where``, the case in words)."""
    import keras

    inputs = keras.Input((6, 6, in_width))
    try:
        if positional_arity(fn)[0] == 1:
            outputs = fn(width)(inputs)
        else:
            outputs = fn(inputs, width, **({"name": "student"} if "name" in inspect.signature(fn).parameters else {}))
        if not isinstance(outputs, keras.KerasTensor):
            what = "None" if outputs is None else with_article(type(outputs).__name__)
            return None, f"returns {what}, not the block's output tensor, {where}"
        return keras.Model(inputs, outputs), None
    except Exception as err:  # reported, never raised
        return None, raised(err, f"while building the block {where}")


def _leaves(layer: Any) -> list:
    """The layers that hold weights, in graph (or creation) order, sublayers included: a
    ``keras.layers.Layer`` subclass with sublayers is a block too."""
    inner = layer.layers if hasattr(layer, "layers") else list(
        getattr(layer, "_flatten_layers", lambda **_: [])(include_self=False, recursive=False))
    return [leaf for sub in inner for leaf in _leaves(sub)] if inner else [layer] if layer.weights else []


def _kind(layer: Any) -> str:
    return type(layer).__name__ + (" {}x{}".format(*layer.kernel_size) if hasattr(layer, "kernel_size") else "")


def _layers(model: Any) -> str:
    """The layers with weights by kind and count: the structure two blocks must share."""
    kinds = Counter(_kind(layer) for layer in _leaves(model))
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(kinds.items())) or "none"


def _copy_weights(source: Any, target: Any, rng: np.random.Generator) -> bool:
    """Random weights into each layer of ``source`` and into the first unused ``target`` layer of the
    same kind and weight shapes (in graph order, so conv1 pairs with conv1 even when shapes agree)."""
    shapes = lambda layer: [tuple(w.shape) for w in layer.weights]  # noqa: E731
    free = _leaves(target)
    for layer in _leaves(source):
        match = next((other for other in free if _kind(other) == _kind(layer) and shapes(other) == shapes(layer)), None)
        if match is None:
            return False
        free.remove(match)
        for weight, twin in zip(layer.weights, match.weights, strict=True):
            shape = tuple(weight.shape)
            value = (rng.uniform(0.5, 1.5, shape) if "variance" in weight.name else 0.3 * rng.standard_normal(shape)
                     if len(shape) == 1 else rng.standard_normal(shape) / math.sqrt(np.prod(shape[:-1])))
            weight.assign(value.astype(np.float32))
            twin.assign(value.astype(np.float32))
    return True


@exercise_checker("residual_block")
def check_residual_block(fn: Callable) -> CheckResult:
    """Student's ``residual_block(width)`` returning ``apply(x)``, or ``residual_block(x, width)``, on
    Keras inputs, against :func:`ddim_tutorial.core.network.residual_block`: same output shape, layers and
    parameter count, then the same outputs with the same random weights, in inference and training."""
    import keras

    from ddim_tutorial.core.network import residual_block

    exercise = "residual_block"
    for seed, (in_width, width) in enumerate([(8, 8), (4, 8)]):  # the residual as is, then projected
        where = f"for an input of width {in_width} and width={width}"
        student, problem = _student_block(fn, in_width, width, where)
        if problem:
            return fail(exercise, problem)
        inputs = keras.Input((6, 6, in_width))
        package = keras.Model(inputs, residual_block(inputs, width, name="package"))
        if tuple(student.output.shape) != tuple(package.output.shape):
            return fail(exercise, f"gives outputs of shape {tuple(student.output.shape)}, but they must have "
                                  f"shape {tuple(package.output.shape)} {where}")
        if _layers(student) != _layers(package):
            return fail(exercise, f"has the layers {_layers(student)}, but the package's block has "
                                  f"{_layers(package)} {where}")
        if student.count_params() != package.count_params():
            return fail(exercise, f"has {student.count_params()} parameters, but the package's block has "
                                  f"{package.count_params()} {where} (its BatchNormalization has center=False, "
                                  "scale=False)")
        rng = np.random.default_rng(seed)
        if not _copy_weights(package, student, rng):
            return fail(exercise, f"has weights of other shapes than the package's block {where}")
        no_residual = keras.Model(inputs, package.get_layer("package_conv2").output)
        conv1, trials = package.get_layer("package_conv1"), []
        for training in (False, True):  # inference first: training mode updates the moving statistics
            x = rng.standard_normal((3, 6, 6, in_width)).astype(np.float32)
            expected, skipped = to_numpy(package(x, training=training)), to_numpy(no_residual(x, training=training))
            swish, other = conv1.activation, {}
            for activation in ("linear", "relu"):
                conv1.activation = keras.activations.get(activation)
                other[activation] = to_numpy(package(x, training=training))
            conv1.activation = swish
            trials.append(Trial((student, x, training), (expected,), f"{where} in "
                                f"{'training' if training else 'inference'} mode", alternatives={
                "forgets to add the residual (the input, through a 1x1 convolution if its width differs)":
                    (skipped,),
                "forgets the swish activation of the first 3x3 convolution": (other["linear"],),
                "uses ReLU in the first 3x3 convolution; the block uses swish": (other["relu"],)}))
        result = compare(exercise, lambda block, x, training: block(x, training=training), trials, atol=1e-4)
        if not result:
            return result
    return CheckResult(exercise, True, f"{exercise}: passed, your block matches the package's in output shape, "
                                       "layers, parameters and outputs (with the same weights) for input widths "
                                       "8 and 4.")


@exercise_checker("loss", "noise_loss(noises, pred_noises)", 2)
def check_loss(fn: Callable) -> CheckResult:
    """Student's ``noise_loss(noises, pred_noises)`` -> one number, against the noise MAE that
    ``DiffusionModel.compute_loss`` trains with (Keras' mean absolute error, averaged)."""
    import keras

    trials = []
    for seed, shape in enumerate([(2, 8, 8, 3), (4, 4, 4, 3), (1, 6, 6, 3), (3, 2, 2, 1)]):
        noises, pred_noises = np.random.default_rng(seed).standard_normal((2, *shape)).astype(np.float32)
        mae, tensors = to_numpy(keras.ops.mean(keras.losses.mean_absolute_error(noises, pred_noises))), seed % 2 == 1
        trials.append(Trial(student_inputs((noises, pred_noises), tensors), (mae,),
                            f"for noises of shape {shape} as {KIND[tensors]}", alternatives={
            "computes the mean squared error, but the training loss is the mean absolute error":
                (to_numpy(keras.ops.mean(keras.losses.mean_squared_error(noises, pred_noises))),),
            "sums the absolute errors; average them over all elements instead": (mae * noises.size,)}))
    return compare("loss", fn, trials, ("loss",))


@exercise_checker("ddim_step", "ddim_step(pred_noises, pred_images, noise_rates, signal_rates, next_noise_rates, "
                        "next_signal_rates, eta, fresh_noises)", 8)
def check_ddim_step(fn: Callable) -> CheckResult:
    """Student's ``ddim_step(pred_noises, pred_images, noise_rates, signal_rates, next_noise_rates,
    next_signal_rates, eta, fresh_noises)`` against :func:`ddim_tutorial.core.sampling.ddim_step`; the
    fresh noise is passed in at every eta, so the check is deterministic (at eta 0 it must not matter)."""
    from ddim_tutorial.core.sampling import ddim_step

    trials = []
    cases = [((2, 8, 8, 3), 0.0), ((3, 4, 4, 3), 0.0), ((2, 8, 8, 3), 0.5), ((3, 4, 4, 3), 1.0), ((2, 5, 5, 3), 0.3)]
    for seed, (shape, eta) in enumerate(cases):
        # Keras tensors only, as the samplers pass: on torch, ``ndarray * Tensor`` raises a TypeError
        rng, tensors = np.random.default_rng(seed), True
        noises, images, fresh = rng.standard_normal((3, *shape)).astype(np.float32)
        times = rng.uniform(0.2, 1.0, (shape[0], 1, 1, 1))
        rates = (*_schedule(times), *_schedule(times - rng.uniform(0.05, 0.2, times.shape)))
        step = lambda n, i, e=eta, f=fresh, r=rates: to_numpy(ddim_step(  # noqa: E731
            *student_inputs((n, i, *r), True), eta=e, fresh_noises=student_inputs((f,), True)[0]))
        fresh_rates = step(0 * noises, 0 * images, f=np.ones_like(fresh))
        arguments = (*student_inputs((noises, images, *rates), tensors), eta, student_inputs((fresh,), tensors)[0])
        trials.append(Trial(arguments,
                            (step(noises, images),), f"for images of shape {shape} as {KIND[tensors]} and eta={eta}",
                            {"noise_rates": rates[0], "next_noise_rates": rates[2]}, {
            "ignores eta: for eta > 0 a part of the next noise, at the fresh-noise rate, must be fresh noise":
                (step(noises, images, 0.0),),
            "adds fresh_rates * fresh_noises but keeps next_noise_rates on pred_noises; that rate must shrink to "
            "sqrt(next_noise_rates**2 - fresh_rates**2)": (step(noises, images, 0.0) + fresh_rates * fresh,),
            "computes the fresh-noise rate without the factor eta": (step(noises, images, 1.0),),
            "remixes at the current rates; use next_signal_rates and next_noise_rates":
                (step(noises, images, 0.0, r=(*rates[:2], *rates[:2])),),
            "swaps the rates: pred_images go with next_signal_rates and pred_noises with next_noise_rates":
                (step(images, noises),)}))
    return compare("ddim_step", fn, trials, ("next_noisy_images",), note=" (eta 0, 0.3, 0.5 and 1)")


@exercise_checker("kid", "unbiased_mmd(real_features, generated_features)", 2)
def check_kid(fn: Callable) -> CheckResult:
    """Student's ``unbiased_mmd(real_features, generated_features)`` -> one number, the unbiased
    MMD^2 with the kernel ``(x . y / d + 1) ** 3``, against :func:`ddim_tutorial.metrics.kid.kid_per_batch`."""
    from ddim_tutorial.metrics.kid import kid_per_batch, polynomial_kernel

    trials = []
    for seed, (m, n, d) in enumerate([(6, 5, 4), (8, 8, 16), (5, 7, 3)]):
        rng, tensors = np.random.default_rng(seed), seed == 1
        real = rng.standard_normal((m, d)).astype(np.float32)
        generated = (1.3 * rng.standard_normal((n, d)) + 0.4).astype(np.float32)
        expected, cross = kid_per_batch(real, generated), polynomial_kernel(real, generated).mean()
        biased = polynomial_kernel(real, real).mean() + polynomial_kernel(generated, generated).mean() - 2 * cross
        trials.append(Trial(student_inputs((real, generated), tensors), (np.float64(expected),),
                            f"for {m} real and {n} generated features of width {d} as {KIND[tensors]}", alternatives={
            "includes the diagonal k(x, x) in the within-set means (the biased estimator); average over i != j":
                (np.float64(biased),),
            "forgets to divide the dot product by the feature width d in the kernel (x . y / d + 1) ** 3":
                (np.float64(kid_per_batch(real * math.sqrt(d), generated * math.sqrt(d))),),
            "subtracts the cross term once; MMD^2 subtracts 2 * mean k(x, y)": (np.float64(expected + cross),)}))
    return compare("kid", fn, trials, ("mmd",))


@exercise_checker("slerp", "slerp(start, end, fraction)", 3)
def check_slerp(fn: Callable) -> CheckResult:
    """Student's ``slerp(start, end, fraction)`` -> one noise, for a float ``fraction`` (the package's
    stacked ``[1, ...]`` result is accepted too), against :func:`ddim_tutorial.teaching.interpolation.slerp`,
    on endpoints about 53 degrees apart, so that the 90-degree shortcut fails."""
    from ddim_tutorial.teaching.interpolation import lerp, slerp

    trials = []
    for seed, (shape, fractions) in enumerate([((8, 8, 3), (0.0, 0.3, 1.0)), ((16,), (0.5, 0.8)),
                                               ((4, 4, 3), (0.25, 0.9))]):
        rng, tensors = np.random.default_rng(seed), seed == 1
        start, other = rng.standard_normal((2, *shape)).astype(np.float32)
        end = 0.6 * start + 0.8 * other
        for f in fractions:
            right_angle = math.cos(f * math.pi / 2) * start + math.sin(f * math.pi / 2) * end
            trials.append(Trial((*student_inputs((start, end), tensors), f), (to_numpy(slerp(start, end, f)[0]),),
                                f"for noises of shape {shape} as {KIND[tensors]} and fraction={f}", alternatives={
                "walks the straight line (lerp); slerp walks the great circle": (lerp(start, end, f)[0],),
                "runs from end to start: fraction 0 must give start": (slerp(end, start, f)[0],),
                "assumes the noises are 90 degrees apart; use the angle between them": (right_angle,)}))
    return compare("slerp", fn, trials, ("interpolated noise",), squeeze=True)


@exercise_checker("guidance", "guided_prediction(conditional, unconditional, guidance_scale)", 3)
def check_guidance(fn: Callable) -> CheckResult:
    """Student's ``guided_prediction(conditional, unconditional, guidance_scale)`` -> the guided
    network output, against :func:`ddim_tutorial.core.predictions.network_predictions` run on a toy network
    whose answers with and without the label are ``conditional`` and ``unconditional``."""
    from ddim_tutorial.core.predictions import network_predictions

    trials = []
    for seed, (shape, scale) in enumerate([((2, 8, 8, 3), 3.0), ((3, 4, 4, 3), 0.0), ((2, 4, 4, 3), 1.0),
                                           ((1, 6, 6, 3), 7.5), ((2, 5, 5, 3), 0.5)]):
        rng, tensors = np.random.default_rng(seed), seed % 2 == 1
        conditional, unconditional = rng.standard_normal((2, *shape)).astype(np.float32)
        answers = {0: conditional, 1: unconditional}  # label 0: the class; label 1: "no label"

        def toy_network(inputs, answers=answers):
            import keras

            labels = to_numpy(inputs[2])
            return keras.ops.convert_to_tensor(
                np.stack([answers[int(label)][i % len(answers[0])] for i, label in enumerate(labels)]))

        def guided(c, u, w, answers=answers, conditional=conditional, unconditional=unconditional):
            answers[0], answers[1] = c, u
            result = to_numpy(network_predictions(toy_network, np.zeros_like(c), np.full((len(c), 1, 1, 1), 0.5,
                                                  np.float32), null_label=1, class_labels=np.zeros(len(c), "int32"),
                                                  guidance_scale=w))
            answers[0], answers[1] = conditional, unconditional
            return result

        trials.append(Trial((*student_inputs((conditional, unconditional), tensors), scale),
                            (guided(conditional, unconditional, scale),),
                            f"for predictions of shape {shape} as {KIND[tensors]} and guidance_scale={scale}",
                            {"conditional": conditional}, {
            "starts from the conditional answer; guidance starts from the unconditional one and adds w times "
            "the difference (w = 0 must give the unconditional answer)":
                (conditional + scale * (conditional - unconditional),),
            "takes the difference the wrong way round: it is conditional - unconditional":
                (guided(unconditional, conditional, scale),),
            "returns only guidance_scale * (conditional - unconditional); add it to the unconditional answer":
                (scale * (conditional - unconditional),),
            "adds the two answers without subtracting: the guidance term is a difference":
                (unconditional + scale * conditional,)}))
    return compare("guidance", fn, trials, ("guided prediction",), note=" (guidance scales 0, 0.5, 1, 3 and 7.5)")


@exercise_checker("flow_step", "flow_step(noisy_images, velocities, noise_rates, next_noise_rates)", 4)
def check_flow_step(fn: Callable) -> CheckResult:
    """Student's ``flow_step(noisy_images, velocities, noise_rates, next_noise_rates)`` -> the noisy images
    at the next noise rate, one Euler step along the flow velocity. The package has no such function:
    the expected answer is a DDIM step (:func:`ddim_tutorial.core.sampling.ddim_step`) on the linear path,
    from the noise and image that the velocity implies, which is the point of the exercise."""
    from ddim_tutorial.core.predictions import components_from_predictions
    from ddim_tutorial.core.sampling import ddim_step

    trials = []
    for seed, shape in enumerate([(2, 8, 8, 3), (3, 4, 4, 3), (1, 6, 6, 3), (2, 5, 5, 1)]):
        rng, tensors = np.random.default_rng(seed), seed % 2 == 1
        noisy_images, velocities = rng.standard_normal((2, *shape)).astype(np.float32)
        noise_rates = rng.uniform(0.3, 0.98, (shape[0], 1, 1, 1)).astype(np.float32)
        next_noise_rates = (noise_rates - rng.uniform(0.05, 0.25, noise_rates.shape)).astype(np.float32)
        rates = (noise_rates, 1 - noise_rates)
        pred_noises, pred_images = components_from_predictions(velocities, noisy_images, *rates, "flow")
        expected = to_numpy(ddim_step(*student_inputs((pred_noises, pred_images, *rates, next_noise_rates,
                                                       1 - next_noise_rates), True)))
        trials.append(Trial(student_inputs((noisy_images, velocities, noise_rates, next_noise_rates), tensors),
                            (expected,), f"for images of shape {shape} as {KIND[tensors]}",
                            {"noise_rates": noise_rates, "next_noise_rates": next_noise_rates}, {
            "steps the wrong way: sampling lowers the noise rate, so the step is "
            "(next_noise_rates - noise_rates) * velocities, a negative multiple":
                (noisy_images + (noise_rates - next_noise_rates) * velocities,),
            "adds the whole velocity; scale it by the step, next_noise_rates - noise_rates":
                (noisy_images + velocities,),
            "scales the velocity by next_noise_rates alone; the step is the change of the noise rate":
                (noisy_images + next_noise_rates * velocities,),
            "jumps all the way to the predicted image (noisy - noise_rates * velocities); one step only "
            "goes to next_noise_rates": (noisy_images - noise_rates * velocities,)}))
    return compare("flow_step", fn, trials, ("next_noisy_images",))


# ----------------------------------------------------------------------------- dispatcher
EXERCISES: dict[str, Callable[[Callable], CheckResult]] = {
    "schedule": check_schedule, "forward_noise": check_forward_noise,
    "sinusoidal_embedding": check_sinusoidal_embedding, "residual_block": check_residual_block,
    "loss": check_loss, "ddim_step": check_ddim_step, "kid": check_kid, "slerp": check_slerp,
    "guidance": check_guidance, "flow_step": check_flow_step}

# Other names a student may give a piece, compared without case, underscores, digits or "my_".
_ALIASES = {"diffusionschedule": "schedule", "forwardnoising": "forward_noise", "addnoise": "forward_noise",
            "noisyimages": "forward_noise", "embedding": "sinusoidal_embedding", "resblock": "residual_block",
            "noiseloss": "loss", "trainingloss": "loss", "computeloss": "loss", "mmd": "kid", "unbiasedmmd": "kid",
            "kidperbatch": "kid", "kidmmd": "kid", "guidedprediction": "guidance",
            "classifierfreeguidance": "guidance", "cfg": "guidance", "eulerstep": "flow_step",
            "flowmatchingstep": "flow_step", **{name.replace("_", ""): name for name in EXERCISES}}


def _key(name: str) -> str:
    key = re.sub(r"[^a-z]", "", name.lower())
    return re.sub(r"^(my|your|student|test)+|(solution|attempt)$", "", key) or key


def check(fn: Callable, name: str | None = None) -> CheckResult:
    """Check a student's function for the exercise ``name``, or for the one its own name says
    (``my_ddim_step`` -> ``ddim_step``); prints one sentence and returns a :class:`CheckResult`."""
    known = ", ".join(EXERCISES)
    if not callable(fn):
        raise ValueError(f"check: pass your function itself (without parentheses), not a value of type "
                         f"{type(fn).__name__}.")
    if name is not None and (not isinstance(name, str) or _key(name) not in _ALIASES):
        raise ValueError(f"check: unknown exercise {name!r}; known exercises: {known}.")
    exercise = _ALIASES.get(_key(name if name is not None else getattr(fn, "__name__", "")))
    if exercise is None:
        raise ValueError(f"check: cannot tell the exercise from the name {getattr(fn, '__name__', '?')!r}; "
                         f"pass name=..., one of: {known}.")
    return EXERCISES[exercise](fn)
