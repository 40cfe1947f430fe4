"""Diffusion schedules: how much signal and noise a noisy image holds at a time t.

A diffusion time runs from 0 (almost clean image) to 1 (almost pure noise). A schedule
maps it to a ``signal_rate`` and a ``noise_rate`` whose squares sum to one, so a mix
``signal_rate * image + noise_rate * noise`` of unit-variance parts keeps unit variance.
The pair is a point on the unit circle: ``(noise_rate, signal_rate) = (sin a, cos a)``.

Flow matching takes the straight line instead (``path="linear"``): ``noise_rate = t`` and
``signal_rate = 1 - t``, whose *sum* is one, over the same range of signal rates. The papers'
letters for these rates are in docs/NOTATION.md.
"""

from __future__ import annotations

import math
from typing import Any

from keras import ops

from .config import check_path, check_signal_rates

__all__ = ["diffusion_schedule", "linear_beta_schedule", "diffusion_angles", "schedule_angles", "cosine_rates",
           "path_parameters", "path_rates", "linear_rates", "onto_path"]


def schedule_angles(min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> tuple[float, float]:
    """``(start_angle, angle_span)``: the cosine schedule's angle at t = 0, ``arccos(max_signal_rate)``,
    and how far it turns until t = 1, ``arccos(min_signal_rate) - arccos(max_signal_rate)``.

    Unchecked, like :func:`cosine_rates`: the samplers check the rates once at their edge.
    """
    start_angle = math.acos(max_signal_rate)
    return start_angle, math.acos(min_signal_rate) - start_angle


def cosine_rates(diffusion_times: Any, start_angle: Any, angle_span: Any) -> tuple[Any, Any]:
    """``(noise_rates, signal_rates) = (sin, cos)`` of the angle ``start_angle + t * angle_span``.

    The schedule's arithmetic without its checks, so that compiled code can trace it with
    the angles as tensors: the eager and the compiled samplers both call this one.
    """
    angles = start_angle + diffusion_times * angle_span
    return ops.sin(angles), ops.cos(angles)


def linear_rates(diffusion_times: Any, start_noise_rate: Any, noise_rate_span: Any) -> tuple[Any, Any]:
    """``(noise_rates, signal_rates) = (n, 1 - n)`` with ``n = start_noise_rate + t * noise_rate_span``.

    The straight path of flow matching, ``noisy = (1 - n) * image + n * noise`` (Liu et al.'s
    rectified flow; Lipman et al.'s conditional optimal-transport path), unchecked like
    :func:`cosine_rates`.
    """
    noise_rates = start_noise_rate + diffusion_times * noise_rate_span
    return noise_rates, 1.0 - noise_rates


def path_parameters(min_signal_rate: float = 0.02, max_signal_rate: float = 0.95,
                    path: str = "cosine") -> tuple[float, float]:
    """The two numbers that place a path's rates over ``[0, 1]``, from the signal-rate range.

    ``"cosine"``: :func:`schedule_angles`. ``"linear"``: the noise rate at t = 0,
    ``1 - max_signal_rate``, and how much it grows until t = 1, so that both paths start and
    end at the same signal rates. Unchecked: the callers check the rates and the path.
    """
    if path == "linear":
        return 1.0 - max_signal_rate, max_signal_rate - min_signal_rate
    return schedule_angles(min_signal_rate, max_signal_rate)


def path_rates(diffusion_times: Any, start: Any, span: Any, path: str = "cosine") -> tuple[Any, Any]:
    """``(noise_rates, signal_rates)`` of ``path`` (a Python string) at ``diffusion_times``, given
    :func:`path_parameters`; the one schedule of the eager and the compiled samplers."""
    if path == "linear":
        return linear_rates(diffusion_times, start, span)
    return cosine_rates(diffusion_times, start, span)


def onto_path(noise_rates: Any, signal_rates: Any, path: str = "cosine") -> tuple[Any, Any]:
    """Scale a pair of rates onto ``path``, keeping their ratio (the signal-to-noise ratio).

    The cosine path holds ``noise**2 + signal**2 = 1``, the linear one ``noise + signal = 1``;
    DPM-Solver++ finds its midpoint as a ratio and puts it back on the path with this.
    """
    norms = noise_rates + signal_rates if path == "linear" else ops.sqrt(noise_rates**2 + signal_rates**2)
    return noise_rates / norms, signal_rates / norms


def _float_tensor(diffusion_times: Any) -> Any:
    diffusion_times = ops.convert_to_tensor(diffusion_times)
    if not str(diffusion_times.dtype).startswith(("float", "bfloat")):
        diffusion_times = ops.cast(diffusion_times, "float32")
    return diffusion_times


def diffusion_angles(diffusion_times: Any, min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> Any:
    """Angles on the unit circle, growing linearly from arccos(max) to arccos(min)."""
    check_signal_rates(min_signal_rate, max_signal_rate, owner="diffusion_schedule")
    start_angle, angle_span = schedule_angles(min_signal_rate, max_signal_rate)
    return start_angle + _float_tensor(diffusion_times) * angle_span


def diffusion_schedule(diffusion_times: Any, min_signal_rate: float = 0.02,
                       max_signal_rate: float = 0.95, path: str = "cosine") -> tuple[Any, Any]:
    """The continuous cosine schedule of the reference: returns ``(noise_rates, signal_rates)``.

    The angle grows linearly with the time, so equal steps in time are equal steps along the
    arc. Mix the same unit-variance image and the same independent unit-variance noise at
    every time: each such step moves the noisy image by the same root-mean-square amount,
    ``2 * sin(step angle / 2)``, at either end as in the middle. Only the variances, the shares
    of image and noise in the mix (``signal_rates**2`` and ``noise_rates**2``), change
    unevenly: at a speed proportional to ``sin(2 * angle)``, the largest at 45 degrees and
    almost zero near ``t = 1``.

    ``path="linear"`` gives flow matching's straight line over the same signal rates instead
    (:func:`linear_rates`).
    """
    check_signal_rates(min_signal_rate, max_signal_rate, owner="diffusion_schedule")
    check_path(path, owner="diffusion_schedule")
    return path_rates(_float_tensor(diffusion_times), *path_parameters(min_signal_rate, max_signal_rate, path), path)


def linear_beta_schedule(diffusion_times: Any, beta_start: float = 0.1, beta_end: float = 20.0,
                         min_signal_rate: float = 0.02, max_signal_rate: float = 0.95) -> tuple[Any, Any]:
    """The DDPM "linear betas" schedule in continuous time, for comparison.

    The signal variance is ``exp(-(beta_start t + (beta_end - beta_start) t^2 / 2))``; its
    rates are clipped to the same ``[min_signal_rate, max_signal_rate]`` range as the cosine
    schedule so the two can be plotted side by side. It destroys the signal much earlier.
    """
    check_signal_rates(min_signal_rate, max_signal_rate, owner="linear_beta_schedule")
    t = ops.cast(ops.convert_to_tensor(diffusion_times), "float32")
    log_signal_variance = -(beta_start * t + 0.5 * (beta_end - beta_start) * t**2)
    signal_rates = ops.clip(ops.exp(0.5 * log_signal_variance), min_signal_rate, max_signal_rate)
    noise_rates = ops.sqrt(1.0 - signal_rates**2)
    return noise_rates, signal_rates
