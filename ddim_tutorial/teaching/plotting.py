"""Figures for the lessons: image grids, schedules, noising, embeddings, trajectories, sampler
comparisons, losses.

Every function returns a ``matplotlib.figure.Figure`` made *without* pyplot. Such a figure is
never shown twice by the inline backend and never piles up in pyplot's registry, which
matters in widgets that redraw many times. In a notebook, end a cell with the figure (or
call ``display(fig)``) to see it; ``figure_to_png`` turns one into PNG bytes for a widget.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ddim_tutorial.checks import check_positive_int
from ddim_tutorial.data.pictures import figure_to_png, image_grid, save_image_grid, to_pixels

__all__ = ["image_grid", "save_image_grid", "plot_schedules", "plot_noising", "plot_embedding",
           "plot_trajectory", "plot_sampler_comparison", "plot_history", "plot_kid_kernels",
           "figure_to_png", "to_pixels"]


def _enable_inline_display() -> None:
    """Let a bare ``Figure`` at the end of a notebook cell show as a picture.

    IPython learns to render figures when pyplot's inline backend loads; figures built
    without pyplot would otherwise print as ``<Figure size ...>`` until pyplot is imported.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    formatter = shell.display_formatter.formatters.get("image/png")
    if formatter is not None and Figure not in formatter.type_printers:
        formatter.for_type(Figure, lambda fig: figure_to_png(fig))


_enable_inline_display()


def plot_schedules(min_signal_rate: float = 0.02, max_signal_rate: float = 0.95, *,
                   marked_times: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                   compare_linear: bool = True, num_points: int = 201) -> Figure:
    """The cosine schedule as a walk on the unit circle (left) and its rates over time (right).

    Left: ``(noise_rate, signal_rate)`` for diffusion times 0..1, with ``marked_times`` as
    dots; equal steps in time are equal steps in angle. Right: signal and noise rates against
    time, with the DDPM linear-beta schedule (dashed) for comparison.
    """
    from keras import ops

    from ddim_tutorial.core.schedule import diffusion_schedule, linear_beta_schedule

    times = np.linspace(0.0, 1.0, num_points, dtype="float32")
    noise_rates, signal_rates = (ops.convert_to_numpy(r) for r in
                                 diffusion_schedule(times, min_signal_rate, max_signal_rate))
    fig = Figure(figsize=(10, 4.2))
    circle_ax, rates_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.5]})

    angles = np.linspace(0, math.pi / 2, 100)
    circle_ax.plot(np.sin(angles), np.cos(angles), color="lightgray", lw=1)
    circle_ax.plot(noise_rates, signal_rates, color="tab:purple", lw=3, label="cosine schedule")
    marked = np.asarray(marked_times, dtype="float32")
    marked_noise, marked_signal = (ops.convert_to_numpy(r) for r in
                                   diffusion_schedule(marked, min_signal_rate, max_signal_rate))
    circle_ax.scatter(marked_noise, marked_signal, color="tab:purple", zorder=3)
    for t, x, y in zip(marked, marked_noise, marked_signal, strict=True):
        circle_ax.plot([0, x], [0, y], color="tab:purple", alpha=0.25, lw=1)
        circle_ax.annotate(f"t={t:g}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    circle_ax.set_xlim(0, 1.08)
    circle_ax.set_ylim(0, 1.08)
    circle_ax.set_aspect("equal")
    circle_ax.set_xlabel("noise rate")
    circle_ax.set_ylabel("signal rate")
    circle_ax.set_title("a quarter of the unit circle")

    rates_ax.plot(times, signal_rates, color="tab:blue", lw=2, label="signal rate (cosine)")
    rates_ax.plot(times, noise_rates, color="tab:orange", lw=2, label="noise rate (cosine)")
    if compare_linear:
        linear_noise, linear_signal = (ops.convert_to_numpy(r) for r in
                                       linear_beta_schedule(times, min_signal_rate=min_signal_rate,
                                                            max_signal_rate=max_signal_rate))
        rates_ax.plot(times, linear_signal, color="tab:blue", ls="--", lw=1.5, label="signal rate (linear betas)")
        rates_ax.plot(times, linear_noise, color="tab:orange", ls="--", lw=1.5, label="noise rate (linear betas)")
    rates_ax.axhline(min_signal_rate, color="gray", ls=":", lw=1)
    rates_ax.axhline(max_signal_rate, color="gray", ls=":", lw=1)
    rates_ax.set_xlabel("diffusion time t")
    rates_ax.set_ylabel("rate")
    rates_ax.set_ylim(0, 1.02)
    rates_ax.set_title(f"min signal {min_signal_rate:g}, max signal {max_signal_rate:g}")
    rates_ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    fig.tight_layout()
    return fig


def plot_noising(noisy_images: Any, times: Sequence[float], signal_rates: Sequence[float],
                 noise_rates: Sequence[float], *, size: float = 1.6) -> Figure:
    """Rows of images noised at increasing diffusion times, labelled with t and the SNR.

    ``noisy_images`` is ``[rows, len(times), H, W, 3]`` in pixel space (already mapped back
    from the normalized space). SNR is ``signal_rate**2 / noise_rate**2``, also in decibels.
    """
    noisy_images = np.asarray(noisy_images, dtype="float32")
    if noisy_images.ndim != 5 or noisy_images.shape[1] != len(times):
        raise ValueError(f"noisy_images has shape {noisy_images.shape}: expected [rows, {len(times)}, H, W, 3], "
                         "one column per diffusion time.")
    rows, cols = noisy_images.shape[:2]
    titles = []
    for t, s, n in zip(times, signal_rates, noise_rates, strict=True):
        snr = float(s) ** 2 / max(float(n) ** 2, 1e-12)
        titles.append(f"t={float(t):.2f}\nSNR {snr:.3g} ({10 * math.log10(snr):+.0f} dB)")
    fig = image_grid(noisy_images.reshape(rows * cols, *noisy_images.shape[2:]), cols,
                     titles=titles + [""] * (rows - 1) * cols, size=size)
    return fig


def plot_embedding(embedding: Any, noise_variances: Any = None, *, zoom: float = 0.05,
                   num_points: int = 256) -> Figure:
    """What the sinusoidal embedding does, in two panels.

    Left: the similarity (normalized dot product) of the embeddings of every pair of noise
    variances; a sharp ridge on the diagonal means nearby variances get similar embeddings
    and distant ones get different ones. Right: a slow, a middle and the fastest sine feature
    over ``[0, zoom]``; zoomed in because the fastest feature oscillates ``max_frequency``
    times over the full range, too fast to draw. ``embedding`` is a ``SinusoidalEmbedding``
    layer (or any callable taking ``[N, 1, 1, 1]`` variances).
    """
    from keras import ops

    def embed(variances: np.ndarray) -> np.ndarray:
        values = ops.convert_to_numpy(embedding(variances.reshape(-1, 1, 1, 1).astype("float32")))
        return values.reshape(len(variances), -1)

    if noise_variances is None:
        noise_variances = np.linspace(0.0, 1.0, num_points)
    noise_variances = np.asarray(noise_variances, dtype="float64").reshape(-1)
    values = embed(noise_variances)
    similarity = values @ values.T / np.sqrt(np.outer((values**2).sum(1), (values**2).sum(1)))
    half = values.shape[1] // 2
    fig = Figure(figsize=(10, 3.9))
    heat_ax, lines_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    extent = (noise_variances[0], noise_variances[-1], noise_variances[0], noise_variances[-1])
    image = heat_ax.imshow(similarity, cmap="magma", origin="lower", extent=extent, vmin=-0.2, vmax=1.0)
    heat_ax.set_xlabel("noise variance")
    heat_ax.set_ylabel("noise variance")
    heat_ax.set_title("similarity of two embeddings")
    fig.colorbar(image, ax=heat_ax, fraction=0.046)
    zoomed = np.linspace(0.0, zoom, 1000)
    zoomed_values = embed(zoomed)
    for feature, width in ((half - 1, 0.8), (half // 2, 2.0), (0, 2.0)):  # fastest first, underneath
        lines_ax.plot(zoomed, zoomed_values[:, feature], lw=width, label=f"sine feature {feature}")
    lines_ax.set_xlabel("noise variance")
    lines_ax.set_title(f"slow, middle and fastest feature (variance 0 to {zoom:g})")
    lines_ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_trajectory(steps: Sequence[Any], denormalize: Callable[[Any], Any], *, image_index: int = 0,
                    max_columns: int = 10, size: float = 1.3) -> Figure:
    """Reverse diffusion of one image: noisy images on top, predicted images below.

    ``steps`` are the ``DiffusionStep`` objects of ``sampling.reverse_diffusion_steps``
    (normalized space); ``denormalize`` maps them to pixels (``model.denormalize``). At most
    ``max_columns`` evenly spaced steps are shown, always including the first and the last.
    """
    steps = list(steps)
    if not steps:
        raise ValueError("steps is empty: pass the list(...) of reverse_diffusion_steps(...).")
    if len(steps) <= max_columns:
        chosen = list(range(len(steps)))
    else:
        chosen = sorted({round(i) for i in np.linspace(0, len(steps) - 1, max_columns)})
    from keras import ops

    noisy = [ops.convert_to_numpy(denormalize(steps[i].noisy_images))[image_index] for i in chosen]
    predicted = [ops.convert_to_numpy(denormalize(steps[i].pred_images))[image_index] for i in chosen]
    times = [float(ops.convert_to_numpy(steps[i].diffusion_times).reshape(-1)[0]) for i in chosen]
    titles = [f"step {steps[i].step + 1}\nt={t:.2f}" for i, t in zip(chosen, times, strict=True)] + [""] * len(chosen)
    return image_grid(np.stack(noisy + predicted), len(chosen), titles=titles,
                      row_labels=["noisy image", "predicted image"], size=size)


def plot_sampler_comparison(reference: Any, samples: Sequence[Any], labels: Sequence[str], *,
                            reference_label: str = "reference", num_images: int = 3, gain: float = 4.0,
                            size: float = 1.3) -> Figure:
    """Samples of several samplers from the same noise, each beside its difference to a reference.

    One row per sampler (the reference first): ``num_images`` images on the left and, on the
    right, the absolute difference to the reference image, averaged over the colour channels
    and multiplied by ``gain`` (black: identical; bright: far apart, a difference of
    ``1 / gain`` or more). ``samples`` are pixel batches like ``reference``; ``labels`` name the
    rows (e.g. sampler, steps and network evaluations).
    """
    reference = to_pixels(reference)
    samples = [to_pixels(images) for images in samples]
    if len(samples) != len(labels):
        raise ValueError(f"{len(samples)} sets of samples but {len(labels)} labels; give one label per set.")
    check_positive_int("num_images", num_images)
    count = min(num_images, len(reference))
    for label, images in zip(labels, samples, strict=True):
        if images.shape[1:] != reference.shape[1:] or len(images) < count:
            raise ValueError(f"the samples labelled {label!r} have shape {images.shape}; they must be images "
                             f"like the reference {reference.shape}, from the same noise.")
    rows = [(reference_label, reference[:count])] + [(label, images[:count])
                                                     for label, images in zip(labels, samples, strict=True)]
    fig = Figure(figsize=(2 * count * size + 0.4, len(rows) * size + 0.3))
    axes = fig.subplots(len(rows), 2 * count, squeeze=False)
    for row, (label, images) in enumerate(rows):
        differences = np.clip(gain * np.abs(images - reference[:count]).mean(axis=-1), 0.0, 1.0)
        for column in range(count):
            axes[row, column].imshow(images[column], interpolation="nearest")
            axes[row, count + column].imshow(differences[column], cmap="magma", vmin=0.0, vmax=1.0,
                                             interpolation="nearest")
        axes[row, 0].set_ylabel(label, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for column in range(count):
        axes[0, column].set_title(f"image {column + 1}", fontsize=9)
        axes[0, count + column].set_title(f"difference x{gain:g}", fontsize=9)
    fig.tight_layout()
    return fig


def read_history(history: Any) -> dict[str, list[float]]:
    """Per-epoch metrics as ``{name: [values]}`` from a Keras ``History``, a dict or a CSV file."""
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if isinstance(history, (str, os.PathLike)):
        with open(history, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        if not rows:
            raise ValueError(f"the history file {os.fspath(history)!r} holds no epochs yet.")
        history = {key: [float(row[key]) if row[key] not in ("", None) else math.nan for row in rows]
                   for key in rows[0] if key != "epoch"}
    if not isinstance(history, Mapping):
        raise ValueError(f"history of type {type(history).__name__} is invalid: pass a Keras History, "
                         "a dict of lists or the path of a CSV history file.")
    return {str(key): [float(v) for v in values] for key, values in history.items()}


def plot_history(history: Any, metrics: Sequence[str] = ("n_loss", "i_loss")) -> Figure:
    """Training (solid) and validation (dashed) curves, one panel per metric, over epochs."""
    data = read_history(history)
    present = [m for m in metrics if m in data or f"val_{m}" in data]
    if not present:
        raise ValueError(f"none of the metrics {list(metrics)} is in the history (it has {sorted(data)}).")
    labels = {"n_loss": "noise loss", "i_loss": "image loss", "kid": "KID"}
    fig = Figure(figsize=(5 * len(present), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    for ax, metric in zip(axes, present, strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in data:
                epochs = np.arange(1, len(data[key]) + 1)
                ax.plot(epochs, data[key], style, marker="o", label="validation" if key.startswith("val_")
                        else "training")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(labels.get(metric, metric))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_kid_kernels(kernel_real: Any, kernel_generated: Any, kernel_cross: Any, *,
                     titles: Sequence[str] = ("real vs real", "other vs other", "real vs other")) -> Figure:
    """The three kernel matrices of a KID estimate side by side, on one colour scale."""
    matrices = [np.asarray(m, dtype="float64") for m in (kernel_real, kernel_generated, kernel_cross)]
    low = min(float(m.min()) for m in matrices)
    high = max(float(m.max()) for m in matrices)
    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 3)
    for ax, matrix, title in zip(axes, matrices, titles, strict=True):
        image = ax.imshow(matrix, cmap="viridis", vmin=low, vmax=high)
        ax.set_title(f"{title}\nmean {matrix.mean():.3g}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), fraction=0.02)
    return fig
