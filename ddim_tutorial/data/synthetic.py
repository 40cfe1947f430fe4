"""Procedurally drawn flowers: training images that need no download and no TensorFlow.

:func:`synthetic_flowers` paints each image with NumPy alone: a flower whose petals follow a
polar rose curve (4-12 petals, sometimes an inner ring or a darker eye), with a textured centre
disc, a soft shadow and often a stem, on a blurred green or earthy background with leaves and
film grain. They exist for the offline tests and as the data source that works anywhere
(``load_dataset(..., source="synthetic")``, and the fallback when Oxford Flowers 102 cannot be
downloaded). Their class labels are the petal colours of the main flower
(:data:`SYNTHETIC_CLASS_NAMES`).
"""

from __future__ import annotations

import numpy as np

from ddim_tutorial.checks import check_positive_int

__all__ = ["SYNTHETIC_CLASS_NAMES", "synthetic_flowers"]

_BACKGROUND_COLORS = np.array([
    (0.20, 0.36, 0.13), (0.29, 0.43, 0.17), (0.17, 0.29, 0.14), (0.36, 0.34, 0.19),
    (0.13, 0.27, 0.19), (0.40, 0.46, 0.23), (0.33, 0.27, 0.17), (0.24, 0.40, 0.26),
], dtype=np.float32)
_PETAL_COLORS = np.array([
    (0.98, 0.85, 0.15), (0.96, 0.95, 0.92), (0.96, 0.56, 0.72), (0.86, 0.12, 0.16),
    (0.56, 0.26, 0.78), (0.98, 0.56, 0.10), (0.36, 0.46, 0.92), (0.86, 0.20, 0.60),
    (0.80, 0.66, 0.94), (0.99, 0.72, 0.55),
], dtype=np.float32)
_DISC_COLORS = np.array([
    (0.96, 0.76, 0.10), (0.45, 0.28, 0.08), (0.16, 0.10, 0.05), (0.92, 0.58, 0.10),
    (0.34, 0.50, 0.16), (0.98, 0.92, 0.45),
], dtype=np.float32)


#: The classes of the synthetic flowers: the petal colour of the main flower (``_PETAL_COLORS``' order).
SYNTHETIC_CLASS_NAMES = ("yellow", "white", "pink", "red", "purple", "orange", "blue", "magenta", "lilac", "peach")


def synthetic_flowers(num_images: int, image_size: int, seed: int = 0,
                      labels: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Procedurally drawn flowers, float32 ``[num_images, image_size, image_size, 3]`` in [0, 1].

    The offline stand-in for Oxford Flowers 102: each image is a flower (petals from a polar
    rose curve with 4-12 petals, sometimes a second inner ring, a textured centre disc, a
    soft shadow, often a stem) on a blurred green or earthy background. Petal count, shape,
    colour, size, rotation, tilt and position vary, so a model has real structure to learn.
    Image ``i`` depends only on ``(seed, i)``: the first images of a longer set are the same.
    NumPy only; roughly a millisecond per 64x64 image. With ``labels=True`` the result is
    ``(images, class_labels)``, the class being the main flower's petal colour
    (:data:`SYNTHETIC_CLASS_NAMES`).
    """
    for name, value in (("num_images", num_images), ("image_size", image_size), ("seed", seed)):
        check_positive_int(name, value, minimum=0, advice="it must be a non-negative integer")
    if image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: it must be at least 1.")
    coords = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size
    grid_y, grid_x = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((num_images, image_size, image_size, 3), dtype=np.float32)
    class_labels = np.empty(num_images, dtype=np.int32)
    for index in range(num_images):
        rng = np.random.default_rng([int(seed), index])
        # Drawing happens channel-first ([3, H, W]): NumPy is far faster on long inner rows.
        scene, class_labels[index] = _draw_scene(rng, grid_x, grid_y)
        images[index] = scene.transpose(1, 2, 0)
    return (images, class_labels) if labels else images


def _draw_scene(rng: np.random.Generator, grid_x: np.ndarray, grid_y: np.ndarray) -> tuple[np.ndarray, int]:
    """One ``[3, H, W]`` scene and the petal-colour index of its main flower."""
    size = grid_x.shape[0]
    image = _draw_background(rng, grid_x, grid_y)
    if rng.random() < 0.3:  # a smaller, out-of-focus flower behind the main one
        corner = [float(c) for c in rng.choice([0.12, 0.88], size=2) + rng.uniform(-0.06, 0.06, size=2)]
        _draw_flower(image, rng, grid_x, grid_y, center=corner, radius=rng.uniform(0.10, 0.18), edge=2.5,
                     stem=False)
        image = _blur(image, passes=1)
    center = [float(c) for c in 0.5 + rng.uniform(-0.12, 0.12, size=2)]
    petal_color = _draw_flower(image, rng, grid_x, grid_y, center=center, radius=rng.uniform(0.22, 0.40), edge=0.8,
                               stem=rng.random() < 0.7)
    if size >= 32:
        image = _blur(image, passes=1)
    image *= 1.0 + 0.025 * rng.standard_normal(size=grid_x.shape, dtype=np.float32)  # film grain
    return np.clip(image, 0.0, 1.0), petal_color


def _draw_background(rng: np.random.Generator, grid_x: np.ndarray, grid_y: np.ndarray) -> np.ndarray:
    base = _rgb(_BACKGROUND_COLORS[rng.integers(len(_BACKGROUND_COLORS))] + rng.uniform(-0.05, 0.05, size=3))
    brightness = 1.15 - rng.uniform(0.1, 0.4) * grid_y  # light falls from above
    for _ in range(3):  # smooth, low-frequency variation of light
        fx, fy = (float(f) for f in rng.uniform(0.5, 3.0, size=2) * np.where(rng.random(2) < 0.5, -1, 1))
        phase = 2 * np.pi * (fx * grid_x + fy * grid_y) + rng.uniform(0, 2 * np.pi)
        brightness += rng.uniform(0.03, 0.09) * np.sin(phase)
    grain = 0.03 * rng.standard_normal(size=grid_x.shape, dtype=np.float32)
    brightness *= 1.0 + _blur(grain[None], passes=1)[0]
    image = brightness[None] * base
    for _ in range(rng.integers(2, 5)):  # blurry leaves
        mask = _soft_ellipse(grid_x, grid_y, [float(c) for c in rng.uniform(0, 1, size=2)], rng.uniform(0.08, 0.25),
                             rng.uniform(0.3, 0.7), rng.uniform(0, np.pi), edge=6.0)
        tint = _rgb(base[:, 0, 0] * rng.uniform(0.6, 1.5) + rng.uniform(-0.04, 0.04, size=3))
        image += (0.7 * mask)[None] * (tint - image)
    return image


def _draw_flower(image: np.ndarray, rng: np.random.Generator, grid_x: np.ndarray, grid_y: np.ndarray, *,
                 center: list[float], radius: float, edge: float, stem: bool) -> int:
    """Paint one flower into the ``[3, H, W]`` ``image`` in place; ``edge`` is the edge softness in pixels.
    Returns the index of its petal colour in ``_PETAL_COLORS``."""
    size = grid_x.shape[0]
    cx, cy = center
    if stem:
        bend = rng.uniform(-0.8, 0.8)
        stem_x = cx + bend * (grid_y - cy) ** 2
        half_width = rng.uniform(0.012, 0.025) + 0.5 / size
        mask = _sigmoid((half_width - np.abs(grid_x - stem_x)) * (size / edge)) * (grid_y > cy)
        stem_color = _rgb(np.array((0.22, 0.45, 0.14)) * rng.uniform(0.7, 1.2))
        image += mask[None] * (stem_color - image)

    tilt_angle, squash = rng.uniform(0, np.pi), rng.uniform(0.75, 1.0)
    dx, dy = grid_x - cx, grid_y - cy
    u = dx * np.cos(tilt_angle) + dy * np.sin(tilt_angle)
    v = (-dx * np.sin(tilt_angle) + dy * np.cos(tilt_angle)) / squash
    r = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)

    # soft shadow a little below the flower
    shadow = _sigmoid((radius * 1.05 - np.sqrt(dx * dx + (dy - 0.03) ** 2)) * (size / 4.0))
    image *= 1.0 - 0.3 * shadow[None]

    petals = int(rng.integers(4, 13))
    rotation = rng.uniform(0, 2 * np.pi)
    petal_color = int(rng.integers(len(_PETAL_COLORS)))
    color = np.clip(_PETAL_COLORS[petal_color] + rng.uniform(-0.06, 0.06, size=3), 0, 1)
    eye = rng.random() < 0.35  # a darker or contrasting ring near the centre, like a pansy
    eye_color = _rgb(color * rng.uniform(0.3, 0.6) if rng.random() < 0.6
                     else _PETAL_COLORS[rng.integers(len(_PETAL_COLORS))])
    layers = [(radius, rotation, _rgb(color))]
    if rng.random() < 0.5:
        inner = np.clip(color * rng.uniform(0.8, 1.15) + rng.uniform(-0.05, 0.05, size=3), 0, 1)
        layers.append((radius * rng.uniform(0.55, 0.75), rotation + np.pi / petals, _rgb(inner)))
    base_width, sharpness = rng.uniform(0.15, 0.5), rng.uniform(0.5, 2.5)
    for layer_radius, layer_rotation, layer_color in layers:
        wave = np.abs(np.cos((0.5 * petals) * (theta - layer_rotation)))
        edge_radius = layer_radius * (base_width + (1 - base_width) * wave ** sharpness)
        mask = _sigmoid((edge_radius - r) * (size / edge))
        relative = np.minimum(r / np.maximum(edge_radius, 1e-6), 1.0)
        shade = (0.72 + 0.28 * relative) * (0.8 + 0.2 * wave)  # darker seams and centre, light tips
        paint = shade[None] * layer_color
        if eye:
            ring = _sigmoid((0.45 * layer_radius - r) * (size / 2.0))[None]
            paint += ring * (shade[None] * eye_color - paint)
        image += mask[None] * (paint - image)

    disc_radius = radius * rng.uniform(0.15, 0.35)
    disc = _sigmoid((disc_radius - r) * (size / edge))
    disc_color = _rgb(_DISC_COLORS[rng.integers(len(_DISC_COLORS))] + rng.uniform(-0.05, 0.05, size=3))
    seeds = 1.0 + 0.15 * rng.standard_normal(size=r.shape, dtype=np.float32)
    disc_shade = (1.0 - 0.35 * np.minimum(r / disc_radius, 1.0) ** 2) * seeds
    image += disc[None] * (disc_shade[None] * disc_color - image)
    return petal_color


def _rgb(color: np.ndarray) -> np.ndarray:
    """A colour as a float32 ``[3, 1, 1]`` array that broadcasts over a channel-first image."""
    return np.asarray(color, dtype=np.float32).reshape(3, 1, 1)


def _soft_ellipse(grid_x: np.ndarray, grid_y: np.ndarray, center: list[float], radius: float, aspect: float,
                  angle: float, edge: float) -> np.ndarray:
    dx, dy = grid_x - center[0], grid_y - center[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
    return _sigmoid((radius - np.sqrt(u * u + v * v)) * (grid_x.shape[0] / edge))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * np.tanh(0.5 * x) + 0.5).astype(np.float32, copy=False)


def _blur(image: np.ndarray, passes: int) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur of a ``[C, H, W]`` image with edge padding, ``passes`` times."""
    for _ in range(passes):
        padded = np.concatenate([image[:, :1], image, image[:, -1:]], axis=1)
        image = 0.25 * (padded[:, :-2] + padded[:, 2:]) + 0.5 * image
        padded = np.concatenate([image[:, :, :1], image, image[:, :, -1:]], axis=2)
        image = 0.25 * (padded[:, :, :-2] + padded[:, :, 2:]) + 0.5 * image
    return image.astype(np.float32, copy=False)
