"""Keras callbacks that make a training run observable, resumable and safe.

* :class:`SampleGridCallback` saves a grid of samples after each epoch, always from the
  same seeded noise, so the grids show the model's progress and nothing else;
* :class:`CheckpointCallback` keeps ``last/`` (every epoch, for resuming) and ``best/`` (by a
  validation metric) checkpoint folders, each written atomically;
* :class:`NaNGuard` stops training at the first NaN or Inf loss with the epoch and batch
  and what to try, before a broken model can overwrite a good checkpoint;
* a Ctrl-C or SIGTERM stops at the end of the current batch: see ``interrupts.py``.

Epochs and batches in messages and file names count from 1, like Keras' progress bar.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ddim_tutorial.config import DEFAULT_GUIDANCE_SCALE
from ddim_tutorial.data.pictures import grid_shape, save_image_grid
from ddim_tutorial.training.checkpoints import save_checkpoint

__all__ = ["SampleGridCallback", "CheckpointCallback", "NaNGuard", "NonFiniteLossError"]

#: Log keys that hold losses; any non-finite value among them stops training.
_LOSS_KEYS = ("n_loss", "loss", "i_loss", "val_n_loss", "val_loss", "val_i_loss")


class NonFiniteLossError(RuntimeError):
    """The loss (or the weights) became NaN or Inf during training."""


#: The sample grid written after every epoch: rows and columns (the reference's ``plot_images``).
GRID_ROWS, GRID_COLS = 3, 6


class SampleGridCallback(keras.callbacks.Callback):
    """After every epoch, save ``directory/epoch_NNN.png``: samples from the same seeded noise.

    Reusing one noise batch means two grids differ only because the model changed.
    """

    def __init__(self, directory: str | os.PathLike, *, num_rows: int = GRID_ROWS, num_cols: int = GRID_COLS,
                 diffusion_steps: int | None = None, seed: int = 0) -> None:
        super().__init__()
        grid_shape(num_rows * num_cols, num_rows, num_cols)
        self.directory = Path(directory)
        self.num_rows, self.num_cols = num_rows, num_cols
        self.diffusion_steps = diffusion_steps
        self.seed = seed
        self.initial_noise = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.initial_noise is None:
            self.initial_noise = self.model.initial_noise(self.num_rows * self.num_cols, seed=self.seed)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        num_images = self.num_rows * self.num_cols
        num_classes = self.model.config.num_classes
        # A class-conditional model: the classes in turn, guided, so that the grid shows what each label learnt.
        labels = (dict(class_labels=np.arange(num_images) % num_classes, guidance_scale=DEFAULT_GUIDANCE_SCALE)
                  if num_classes else {})
        images = self.model.generate(num_images, self.diffusion_steps, initial_noise=self.initial_noise, **labels)
        save_image_grid(images, self.directory / f"epoch_{epoch + 1:03d}.png",
                                         num_rows=self.num_rows, num_cols=self.num_cols)


# ------------------------------------------------------------------------- checkpoints
class CheckpointCallback(keras.callbacks.Callback):
    """Save ``directory/last`` after every epoch and ``directory/best`` when ``monitor`` improves.

    Each folder also gets a training state (epoch, optimizer step, best value) so that
    ``train(..., resume=True)`` can continue exactly where the last complete epoch ended.
    Both saves are atomic: an interruption leaves the previous folder intact.
    """

    def __init__(self, directory: str | os.PathLike, *, monitor: str = "val_n_loss",
                 best_value: float | None = None, best_epoch: int | None = None, total_epochs: int | None = None,
                 extra_state: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.monitor = monitor  # a loss: lower is better
        self.best_value, self.best_epoch = best_value, best_epoch
        self.total_epochs = total_epochs
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
        return value < self.best_value

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
                 "monitor_value": value, "best_value": self.best_value,
                 "best_epoch": self.best_epoch, "logs": logs, "seed_state": _seed_state(self.model),
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 **self.extra_state}
        # best first: if a crash hits between the saves, last (older) still resumes correctly.
        if improved:
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
