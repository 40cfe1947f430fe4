"""Diffusion schedules: how much signal and noise a noisy image holds at a diffusion time t.

A diffusion time runs from 0 (almost clean image) to 1 (almost pure noise). The schedule maps it to
a ``signal_rate`` and a ``noise_rate`` whose squares sum to one, so that the mix
``signal_rate * image + noise_rate * noise`` of unit-variance parts keeps unit variance: the pair is
the point ``(sin a, cos a)`` of the unit circle. Flow matching's straight path (``path="linear"``)
takes ``noise_rate = n`` and ``signal_rate = 1 - n`` instead, whose *sum* is one, over the same range
of signal rates. The papers' letters for these rates are in docs/NOTATION.md.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from ddim_tutorial.checks import check_path, check_signal_rates

__all__ = ["diffusion_schedule", "path_parameters", "path_rates", "onto_path", "linear_beta_schedule"]


def path_parameters(min_signal_rate: Any = 0.02, max_signal_rate: Any = 0.95, path: str = "cosine") -> tuple[Any, Any]:
    """``(start, span)``: the two numbers that place a path over ``t`` in [0, 1].

    Cosine: the angle at t = 0, ``arccos(max_signal_rate)``, and how far it turns until t = 1.
    Linear: the noise rate at t = 0, ``1 - max_signal_rate``, and how much it grows until t = 1,
    so that both paths start and end at the same signal rates. The rates may be tensors.
    """
    if path == "linear":
        return 1.0 - max_signal_rate, max_signal_rate - min_signal_rate
    start_angle = ops.arccos(max_signal_rate)
    return start_angle, ops.arccos(min_signal_rate) - start_angle


def path_rates(diffusion_times: Any, start: Any, span: Any, path: str = "cosine") -> tuple[Any, Any]:
    """``(noise_rates, signal_rates)`` at ``diffusion_times``, from :func:`path_parameters`.

    The schedule's arithmetic without checks, so that compiled code can trace it with ``start`` and
    ``span`` as tensors: every sampler and the training step call this one.
    """
    if path == "linear":  # rectified flow / the optimal-transport path: noisy = (1 - n) image + n noise
        noise_rates = start + diffusion_times * span
        return noise_rates, 1.0 - noise_rates
    angles = start + diffusion_times * span  # equal steps in time are equal steps along the arc
    return ops.sin(angles), ops.cos(angles)


def diffusion_schedule(diffusion_times: Any, min_signal_rate: float = 0.02,
                       max_signal_rate: float = 0.95, path: str = "cosine") -> tuple[Any, Any]:
    """The reference's continuous cosine schedule: ``(noise_rates, signal_rates)`` at ``diffusion_times``.

    The angle grows linearly with the time, so each equal step in time moves a noisy image by the
    same root-mean-square amount, ``2 * sin(step angle / 2)``. Only the *variances*
    (``signal_rates**2`` and ``noise_rates**2``) change unevenly: fastest at 45 degrees, hardly at
    all near t = 1. ``path="linear"`` gives flow matching's straight line over the same signal rates.
    """
    check_signal_rates(min_signal_rate, max_signal_rate, owner="diffusion_schedule")
    check_path(path, owner="diffusion_schedule")
    diffusion_times = ops.convert_to_tensor(diffusion_times)
    if not str(diffusion_times.dtype).startswith(("float", "bfloat")):
        diffusion_times = ops.cast(diffusion_times, "float32")
    return path_rates(diffusion_times, *path_parameters(min_signal_rate, max_signal_rate, path), path)


def onto_path(noise_rates: Any, signal_rates: Any, path: str = "cosine") -> tuple[Any, Any]:
    """Scale a pair of rates onto ``path`` (``noise**2 + signal**2 = 1``, or ``noise + signal = 1``),
    keeping their ratio, the signal-to-noise ratio; DPM-Solver++ finds its midpoint as a ratio."""
    norms = noise_rates + signal_rates if path == "linear" else ops.sqrt(noise_rates**2 + signal_rates**2)
    return noise_rates / norms, signal_rates / norms


def linear_beta_schedule(diffusion_times: Any, beta_start: float = 0.1, beta_end: float = 20.0,
                         min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> tuple[Any, Any]:
    """DDPM's "linear betas" schedule in continuous time, for comparison in lesson 1.

    Signal variance ``exp(-(beta_start t + (beta_end - beta_start) t^2 / 2))``, its rates clipped to
    the cosine schedule's range so that the two plot side by side: it destroys the signal much earlier.
    """
    check_signal_rates(min_signal_rate, max_signal_rate, owner="linear_beta_schedule")
    t = ops.cast(ops.convert_to_tensor(diffusion_times), "float32")
    log_signal_variance = -(beta_start * t + 0.5 * (beta_end - beta_start) * t**2)
    signal_rates = ops.clip(ops.exp(0.5 * log_signal_variance), min_signal_rate, max_signal_rate)
    return ops.sqrt(1.0 - signal_rates**2), signal_rates
