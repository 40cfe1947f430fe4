"""Interpolation between initial noises: walking smoothly from one generated image to another.

With deterministic sampling (``eta = 0``) every initial noise maps to one image, so a path
between two noises is a path between two images. The straight line is a poor path: halfway
between two independent standard-normal noises the vector is only ``1/sqrt(2)`` as long as a
typical noise, a kind of input the network never saw, and the images there fade to grey.
Spherical interpolation (slerp) walks along the great circle instead and keeps the length.
For two independent high-dimensional noises the angle between them is very nearly 90
degrees, and slerp then reduces to ``cos(f * pi / 2) * a + sin(f * pi / 2) * b``.

Everything here is NumPy on the noise side; only ``model.generate`` touches the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ddim_tutorial.checks import check_generative_model, check_positive_int
from ddim_tutorial.runtime.arrays import to_numpy

__all__ = ["slerp", "lerp", "angle_between", "seeded_noise", "interpolation_noises", "interpolate",
           "interpolation_grid"]

# Below this angle (radians) the two endpoints are treated as parallel and slerp falls back
# to the straight line, which is then the same path and avoids dividing by sin(0).
_PARALLEL_ANGLE = 1e-4


def _as_array(noise: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(noise, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        import keras

        array = np.asarray(keras.ops.convert_to_numpy(noise), dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"{name} is empty: pass a noise tensor such as model.initial_noise(1, seed=0)[0].")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf values.")
    return array


def _as_fractions(fractions: Any) -> np.ndarray:
    fractions = np.atleast_1d(np.asarray(fractions, dtype=np.float64))
    if fractions.ndim != 1 or fractions.size == 0:
        raise ValueError("fractions must be a number or a 1-D sequence of numbers in [0, 1].")
    if np.any(~np.isfinite(fractions)) or np.any(fractions < 0) or np.any(fractions > 1):
        raise ValueError(f"fractions={fractions.tolist()} is invalid: every fraction must lie in [0, 1] "
                         "(0 gives the first noise, 1 the second).")
    return fractions


def _check_pair(start: np.ndarray, end: np.ndarray) -> None:
    if start.shape != end.shape:
        raise ValueError(f"start has shape {start.shape} but end has shape {end.shape}; interpolate "
                         "between noises of one shape.")


def angle_between(start: Any, end: Any) -> float:
    """The angle in radians between two noises seen as long vectors."""
    start, end = _as_array(start, "start"), _as_array(end, "end")
    _check_pair(start, end)
    norms = np.linalg.norm(start) * np.linalg.norm(end)
    if norms == 0:
        raise ValueError("one of the noises is all zeros, so it has no direction to interpolate along.")
    return float(np.arccos(np.clip(np.vdot(start, end) / norms, -1.0, 1.0)))


def lerp(start: Any, end: Any, fractions: Any) -> np.ndarray:
    """Straight-line mixes ``(1 - f) * start + f * end``, stacked along a new first axis (float32)."""
    start, end = _as_array(start, "start"), _as_array(end, "end")
    _check_pair(start, end)
    f = _as_fractions(fractions).reshape(-1, *([1] * start.ndim))
    return ((1.0 - f) * start + f * end).astype(np.float32)


def slerp(start: Any, end: Any, fractions: Any) -> np.ndarray:
    """Spherical mixes along the great circle from ``start`` to ``end``, stacked (float32).

    ``slerp(a, b, f) = sin((1 - f) w) / sin(w) * a + sin(f w) / sin(w) * b`` with ``w`` the
    angle between ``a`` and ``b``. When the norms of the endpoints are equal, every mix has
    that norm too; the path keeps the look of "typical" noise all the way.
    """
    start, end = _as_array(start, "start"), _as_array(end, "end")
    _check_pair(start, end)
    f = _as_fractions(fractions).reshape(-1, *([1] * start.ndim))
    omega = angle_between(start, end)
    if omega < _PARALLEL_ANGLE:
        return lerp(start, end, fractions)
    if np.pi - omega < _PARALLEL_ANGLE:
        raise ValueError("the two noises point in opposite directions, so no single great circle joins them; "
                         "use two different seeds.")
    weights_start = np.sin((1.0 - f) * omega) / np.sin(omega)
    weights_end = np.sin(f * omega) / np.sin(omega)
    return (weights_start * start + weights_end * end).astype(np.float32)


def seeded_noise(image_size: int, seed: int) -> np.ndarray:
    """One standard-normal noise image ``[S, S, 3]`` drawn by ``keras.random.normal`` from ``seed``.

    The same draw as ``model.initial_noise(1, seed=seed)[0]``, so interpolation endpoints
    are exactly the images that ``model.generate(1, seed=seed)`` produces.
    """
    import keras

    check_positive_int("seed", seed, minimum=0, advice="use a non-negative integer")
    check_positive_int("image_size", image_size)
    noise = keras.random.normal((1, int(image_size), int(image_size), 3), seed=int(seed))
    return np.asarray(keras.ops.convert_to_numpy(noise), dtype=np.float32)[0]


def interpolation_noises(image_size: int, seed_a: int, seed_b: int, fractions: Any, *,
                         spherical: bool = True) -> np.ndarray:
    """Initial noises ``[len(fractions), S, S, 3]`` between the noises of two seeds."""
    start, end = seeded_noise(image_size, seed_a), seeded_noise(image_size, seed_b)
    return slerp(start, end, fractions) if spherical else lerp(start, end, fractions)


def interpolate(model: Any, seed_a: int, seed_b: int, num_images: int = 8, *,
                diffusion_steps: int | None = None, spherical: bool = True,
                fractions: Sequence[float] | None = None) -> np.ndarray:
    """Images ``[num_images, S, S, 3]`` in [0, 1] from the noise of ``seed_a`` to that of ``seed_b``.

    Sampling is deterministic (``eta = 0``), so the first and last images are the ones the
    two seeds give on their own. ``fractions`` overrides the evenly spaced default.
    """
    check_generative_model(model)
    if fractions is None:
        check_positive_int("num_images", num_images, 2, advice="an interpolation needs at least 2 images")
        fractions = np.linspace(0.0, 1.0, num_images)
    noises = interpolation_noises(model.config.image_size, seed_a, seed_b, fractions, spherical=spherical)
    images = model.generate(len(noises), diffusion_steps, initial_noise=noises)
    return to_numpy(images, np.float32)


def interpolation_grid(model: Any, seeds: Sequence[int] = (0, 1, 2, 3), size: int = 5, *,
                       diffusion_steps: int | None = None) -> np.ndarray:
    """A ``size x size`` grid of images between four corner seeds (row-major, [size*size, S, S, 3]).

    Corners: top-left ``seeds[0]``, top-right ``seeds[1]``, bottom-left ``seeds[2]``,
    bottom-right ``seeds[3]``. Each row slerps between its left and right edge noises, which
    slerp down the left and the right columns.
    """
    check_generative_model(model)
    if len(seeds) != 4:
        raise ValueError(f"seeds has {len(seeds)} entries: give exactly four, one per corner.")
    check_positive_int("size", size, 2, advice="the grid needs at least 2 images per side")
    image_size = model.config.image_size
    corners = [seeded_noise(image_size, seed) for seed in seeds]
    fractions = np.linspace(0.0, 1.0, size)
    left = slerp(corners[0], corners[2], fractions)
    right = slerp(corners[1], corners[3], fractions)
    noises = np.concatenate([slerp(left[row], right[row], fractions) for row in range(size)])
    return to_numpy(model.generate(len(noises), diffusion_steps, initial_noise=noises), np.float32)
