"""Pictures of image batches: a grid figure, saved to a file or turned into PNG bytes.

Every figure is made *without* pyplot, so that training callbacks and scripts can draw grids as
safely as the notebooks (``teaching/plotting.py`` draws the lessons' other figures the same way).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ddim_tutorial.checks import check_positive_int
from ddim_tutorial.runtime.arrays import to_numpy

__all__ = ["image_grid", "save_image_grid", "grid_shape", "figure_to_png", "to_pixels"]


def to_pixels(images: Any) -> np.ndarray:
    """Images of any backend as float32 NumPy ``[N, H, W, 3]`` clipped to [0, 1].

    A single image ``[H, W, 3]`` becomes a batch of one.
    """
    images = to_numpy(images, np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images have shape {images.shape}: expected [N, H, W, 3] (or one image [H, W, 3]).")
    return np.clip(images, 0.0, 1.0)


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (for ``ipywidgets.Image`` or saving)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def image_grid(images: Any, num_cols: int | None = None, *, titles: Sequence[str] | None = None,
               row_labels: Sequence[str] | None = None, title: str | None = None,
               size: float = 1.5) -> Figure:
    """Show images in a grid, ``num_cols`` per row (default: up to 8), without axes."""
    images = to_pixels(images)
    count = len(images)
    if count == 0:
        raise ValueError("image_grid got no images to show.")
    if num_cols is None:
        num_cols = min(count, 8)
    check_positive_int("num_cols", num_cols)
    num_rows = math.ceil(count / num_cols)
    if titles is not None and len(titles) != count:
        raise ValueError(f"titles has {len(titles)} entries for {count} images; give one per image.")
    if row_labels is not None and len(row_labels) != num_rows:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {num_rows} rows; give one per row.")
    fig = Figure(figsize=(num_cols * size, num_rows * size + (0.3 if title else 0.0)))
    axes = fig.subplots(num_rows, num_cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if index < count:
            ax.imshow(images[index], interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[index], fontsize=9)
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            axes[row, 0].set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ saved grids
def grid_shape(num_images: int, num_rows: int | None = None, num_cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``num_images`` images: as square as possible unless given."""
    check_positive_int("num_images", num_images, advice="a grid needs at least one image")
    for name, value in (("num_rows", num_rows), ("num_cols", num_cols)):
        if value is not None:
            check_positive_int(name, value, advice="use a positive integer or None")
    if num_rows is None and num_cols is None:
        num_cols = math.ceil(math.sqrt(num_images))
    if num_rows is None:
        num_rows = math.ceil(num_images / num_cols)
    if num_cols is None:
        num_cols = math.ceil(num_images / num_rows)
    if num_rows * num_cols < num_images:
        raise ValueError(f"a {num_rows}x{num_cols} grid cannot hold {num_images} images.")
    return num_rows, num_cols


def save_image_grid(images: Any, path: str | os.PathLike, *, num_rows: int | None = None,
                    num_cols: int | None = None, title: str | None = None) -> Path:
    """Save images (``[N, H, W, 3]`` in [0, 1]) as one grid picture; the format follows the suffix.

    Draws with :func:`image_grid`, which never touches pyplot, so it is safe in callbacks,
    scripts and notebooks alike.
    """
    images = to_numpy(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images have shape {images.shape}; a grid needs [num_images, height, width, 3].")
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or Inf values; the model that made them has diverged.")
    images = np.clip(images, 0.0, 1.0)
    num_rows, num_cols = grid_shape(len(images), num_rows, num_cols)
    path = Path(path)
    if not path.suffix:
        raise ValueError(f"{str(path)!r} has no file extension; name the picture e.g. grid.png.")
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, num_cols, title=title).savefig(path, dpi=100)
    return path
