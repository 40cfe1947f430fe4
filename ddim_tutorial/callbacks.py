"""Keras callbacks that make a training run observable, resumable and safe.

* :class:`SampleGridCallback` saves a grid of samples after each epoch, always from the
  same seeded noise, so the grids show the model's progress and nothing else;
* :class:`CheckpointCallback` keeps ``last/`` (every epoch, for resuming) and ``best/`` (by a
  validation metric) checkpoint folders, each written atomically;
* :class:`NaNGuard` stops training at the first NaN or Inf loss with the epoch and batch
  and what to try, before a broken model can overwrite a good checkpoint;
* :class:`InterruptCallback` turns a Ctrl-C or SIGTERM request into a clean stop at the end
  of the current batch (see ``training.train``).

Epochs and batches in messages and file names count from 1, like Keras' progress bar.
"""

from __future__ import annotations

import inspect
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .checkpoints import TRAINING_STATE_FILE, save_checkpoint

__all__ = ["SampleGridCallback", "CheckpointCallback", "NaNGuard", "InterruptCallback", "NonFiniteLossError",
           "TrainingInterrupted", "save_image_grid", "grid_shape"]

#: Log keys that hold losses; any non-finite value among them stops training.
_LOSS_KEYS = ("n_loss", "loss", "i_loss", "val_n_loss", "val_loss", "val_i_loss")


class NonFiniteLossError(RuntimeError):
    """The loss (or the weights) became NaN or Inf during training."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped cleanly on SIGINT (Ctrl-C) or SIGTERM; the last complete epoch is saved.

    ``exit_code`` is the shell convention 128 + signal number (130 for SIGINT, 143 for
    SIGTERM); ``checkpoint`` is the folder to resume from, or None if no epoch finished.
    """

    def __init__(self, message: str, *, signal_number: int, checkpoint: Path | None = None,
                 epoch: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.signal_number = signal_number
        self.checkpoint = checkpoint
        self.epoch = epoch

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signal_number)

    def __str__(self) -> str:
        return self.message


# ------------------------------------------------------------------------------ grids
def grid_shape(num_images: int, num_rows: int | None = None, num_cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``num_images`` images: as square as possible unless given."""
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images={num_images!r} is invalid: a grid needs at least one image.")
    for name, value in (("num_rows", num_rows), ("num_cols", num_cols)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name}={value!r} is invalid: use a positive integer or None.")
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

    Uses ``ddim_tutorial.plotting.image_grid`` when that module is there, else a small
    matplotlib figure of its own. Never touches pyplot's current figure, so it is safe in
    callbacks, scripts and notebooks alike.
    """
    images = np.asarray(keras.ops.convert_to_numpy(images), dtype="float32")
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
    figure = _plotting_grid(images, num_cols, title)
    own_figure = figure is None
    if own_figure:
        figure = _grid_figure(images, num_rows, num_cols, title)
    try:
        figure.savefig(path, dpi=100)
    finally:
        if not own_figure and "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close(figure)
    return path


def _plotting_grid(images: np.ndarray, num_cols: int, title: str | None) -> Any:
    """The notebook helper's ``plotting.image_grid`` figure, or None if that module is absent."""
    try:
        from . import plotting
    except ImportError:
        return None
    image_grid = getattr(plotting, "image_grid", None)
    if image_grid is None:
        return None
    parameters = inspect.signature(image_grid).parameters
    kwargs = {"title": title} if title and "title" in parameters else {}
    figure = image_grid(images, num_cols=num_cols, **kwargs)
    if title and not kwargs:
        figure.suptitle(title)
    return figure


def _grid_figure(images: np.ndarray, num_rows: int, num_cols: int, title: str | None) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(num_cols * 1.5, num_rows * 1.5))
    for index in range(num_rows * num_cols):
        axes = figure.add_subplot(num_rows, num_cols, index + 1)
        if index < len(images):
            axes.imshow(images[index], interpolation="nearest")
        axes.axis("off")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92 if title else 0.99,
                           wspace=0.04, hspace=0.04)
    if title:
        figure.suptitle(title)
    return figure


class SampleGridCallback(keras.callbacks.Callback):
    """After every epoch, save ``directory/epoch_NNN.png``: samples from the same seeded noise.

    Reusing one noise batch means two grids differ only because the model changed.
    """

    def __init__(self, directory: str | os.PathLike, *, num_rows: int = 3, num_cols: int = 6,
                 diffusion_steps: int | None = None, seed: int = 0) -> None:
        super().__init__()
        grid_shape(num_rows * num_cols, num_rows, num_cols)
        self.directory = Path(directory)
        self.num_rows, self.num_cols = num_rows, num_cols
        self.diffusion_steps = diffusion_steps
        self.seed = seed
        self.initial_noise = None
        self.last_path: Path | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.initial_noise is None:
            self.initial_noise = self.model.initial_noise(self.num_rows * self.num_cols, seed=self.seed)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        num_images = self.num_rows * self.num_cols
        num_classes = self.model.config.num_classes
        # A class-conditional model: the classes in turn, guided, so that the grid shows what each label learnt.
        labels = dict(class_labels=np.arange(num_images) % num_classes, guidance_scale=3.0) if num_classes else {}
        images = self.model.generate(num_images, self.diffusion_steps, initial_noise=self.initial_noise, **labels)
        self.last_path = save_image_grid(images, self.directory / f"epoch_{epoch + 1:03d}.png",
                                         num_rows=self.num_rows, num_cols=self.num_cols)


# ------------------------------------------------------------------------- checkpoints
class CheckpointCallback(keras.callbacks.Callback):
    """Save ``directory/last`` after every epoch and ``directory/best`` when ``monitor`` improves.

    Each folder also gets a training state (epoch, optimizer step, best value) so that
    ``train(..., resume=True)`` can continue exactly where the last complete epoch ended.
    Both saves are atomic: an interruption leaves the previous folder intact.
    """

    def __init__(self, directory: str | os.PathLike, *, monitor: str = "val_n_loss", mode: str = "min",
                 best_value: float | None = None, best_epoch: int | None = None, total_epochs: int | None = None,
                 save_best: bool = True, extra_state: dict[str, Any] | None = None) -> None:
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r} is invalid: use 'min' or 'max'.")
        self.directory = Path(directory)
        self.monitor, self.mode = monitor, mode
        self.best_value, self.best_epoch = best_value, best_epoch
        self.total_epochs = total_epochs
        self.save_best = save_best
        self.extra_state = dict(extra_state or {})
        self.last_epoch: int | None = None
        self._warned_missing = False

    @property
    def last_dir(self) -> Path:
        return self.directory / "last"

    @property
    def best_dir(self) -> Path:
        return self.directory / "best"

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = _float_logs(logs)
        value = logs.get(self.monitor)
        if value is None and not self._warned_missing:
            self._warned_missing = True
            print(f"CheckpointCallback: the logs have no {self.monitor!r} (they have {', '.join(logs) or 'none'}); "
                  "only 'last' is saved.", file=sys.stderr)
        improved = value is not None and self._improved(value)
        if improved:
            self.best_value, self.best_epoch = value, epoch + 1
        state = {"epoch": epoch + 1, "total_epochs": self.total_epochs,
                 "optimizer_iterations": _optimizer_iterations(self.model), "monitor": self.monitor,
                 "mode": self.mode, "monitor_value": value, "best_value": self.best_value,
                 "best_epoch": self.best_epoch, "logs": logs, "seed_state": _seed_state(self.model),
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 **self.extra_state}
        # best first: if a crash hits between the saves, last (older) still resumes correctly.
        if improved and self.save_best:
            save_checkpoint(self.model, self.best_dir, training_state=state)
        save_checkpoint(self.model, self.last_dir, training_state=state)
        self.last_epoch = epoch + 1


def _optimizer_iterations(model: Any) -> int | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def _seed_state(model: Any) -> list[int] | None:
    """The state of the model's noise SeedGenerator, so a resumed run draws new noise."""
    generator = getattr(model, "seed_generator", None)
    if generator is None:
        return None
    return [int(value) for value in np.asarray(keras.ops.convert_to_numpy(generator.state)).reshape(-1)]


def _float_logs(logs: dict | None) -> dict[str, float]:
    """Logs as plain floats (they may hold backend tensors); non-numbers are dropped."""
    result = {}
    for key, value in (logs or {}).items():
        try:
            result[key] = float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            continue
    return result


# ------------------------------------------------------------------------------ guards
class NaNGuard(keras.callbacks.Callback):
    """Stop at the first NaN or Inf loss (or weight) with the step and the likely fixes.

    Raising (instead of Keras' ``stop_training``) ends ``fit`` before ``on_epoch_end``, so
    the checkpoint callbacks never save the diverged weights.
    """

    def __init__(self) -> None:
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check_logs(logs, f"epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        where = f"the end of epoch {epoch + 1}"
        self._check_logs(logs, where)
        for weight in self.model.network.weights:
            if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
                raise NonFiniteLossError(self._message(f"the weight {weight.path!r} became NaN or Inf", where))

    def _check_logs(self, logs: dict | None, where: str) -> None:
        values = _float_logs(logs)
        for key in _LOSS_KEYS:  # the training loss first: it is the one that matters
            if key in values and not math.isfinite(values[key]):
                raise NonFiniteLossError(self._message(f"the loss {key} became {values[key]}", where))

    def _message(self, what: str, where: str) -> str:
        config = getattr(self.model, "config", None)
        precision = getattr(config, "mixed_precision", None)
        learning_rate = getattr(config, "learning_rate", None)
        lower = (f"lower learning_rate (now {learning_rate:g}; try {learning_rate / 10:g})" if learning_rate
                 else "lower the learning rate")
        dtype = (f"train in float32 instead of {precision} (mixed_precision=None)" if precision and "16" in precision
                 else "keep float32 rather than float16")
        return (f"training stopped at {where}: {what}. The last good checkpoint is untouched. To fix it, "
                f"{lower}, check the training images for NaN or Inf values, or {dtype}.")


class InterruptCallback(keras.callbacks.Callback):
    """Raise :class:`TrainingInterrupted` at the next batch end once a stop was requested.

    ``request(signal_number)`` is called by the signal handler that ``training.train``
    installs; it only sets a flag, so a checkpoint being written finishes first.
    """

    def __init__(self, checkpoint_callback: CheckpointCallback | None = None) -> None:
        super().__init__()
        self.checkpoint_callback = checkpoint_callback
        self.signal_number: int | None = None
        self.initial_epoch = 0
        self._epoch = 0
        self._batch = 0

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def request(self, signal_number: int) -> None:
        self.signal_number = signal_number

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._batch = epoch, 0
        self.check(f"the start of epoch {epoch + 1}")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batch = batch + 1
        self.check(f"epoch {self._epoch + 1}, batch {batch + 1}")

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.check(f"the validation of epoch {self._epoch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.check(f"the end of epoch {epoch + 1}", completed=epoch + 1)

    def check(self, where: str, completed: int | None = None) -> None:
        if self.signal_number is None:
            return
        raise self.interruption(where, completed)

    def interruption(self, where: str, completed: int | None = None) -> TrainingInterrupted:
        name = signal.Signals(self.signal_number).name
        checkpoint, epoch = None, self.initial_epoch
        if self.checkpoint_callback is not None:
            if self.checkpoint_callback.last_epoch is not None:
                epoch = self.checkpoint_callback.last_epoch
            if (self.checkpoint_callback.last_dir / TRAINING_STATE_FILE).is_file():
                checkpoint = self.checkpoint_callback.last_dir
        if checkpoint is None:
            saved = "No epoch was completed and saved, so there is nothing to resume; train again."
        else:
            out = checkpoint.parent
            saved = (f"The last complete epoch ({epoch}) is saved in {checkpoint}; resume with "
                     f"`python -m ddim_tutorial train --out {out} --resume` "
                     f"(or train(config, out={str(out)!r}, resume=True)).")
        return TrainingInterrupted(f"training interrupted by {name} at {where}. {saved}",
                                   signal_number=self.signal_number, checkpoint=checkpoint, epoch=epoch)
