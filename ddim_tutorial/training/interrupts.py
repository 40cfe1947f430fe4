"""Stopping a training run cleanly on Ctrl-C (SIGINT) or SIGTERM, so that it can resume.

:class:`StopOnSignals` (a context manager around ``fit``) catches the signal and only raises a
flag; :class:`InterruptCallback` turns the flag into :class:`TrainingInterrupted` at the next
batch end, after any checkpoint being written has finished. A second signal stops at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import keras

from ddim_tutorial.training.checkpoints import TRAINING_STATE_FILE

__all__ = ["TrainingInterrupted", "InterruptCallback", "StopOnSignals"]


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


class InterruptCallback(keras.callbacks.Callback):
    """Raise :class:`TrainingInterrupted` at the next batch end once a stop was requested.

    ``request(signal_number)`` is called by the signal handler that ``training.train``
    installs; it only sets a flag, so a checkpoint being written finishes first.
    """

    def __init__(self, checkpoint_callback: Any = None) -> None:
        super().__init__()
        self.checkpoint_callback = checkpoint_callback
        self.signal_number: int | None = None
        self.initial_epoch = 0
        self._epoch = 0

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def request(self, signal_number: int) -> None:
        self.signal_number = signal_number

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self.check(f"the start of epoch {epoch + 1}")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
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


class StopOnSignals:
    """Within the block, SIGINT and SIGTERM ask the training to stop at the next batch end.

    A second signal of the same kind falls back to the default behaviour (immediate stop).
    Outside the main thread signals cannot be caught; the block then changes nothing.
    """

    def __init__(self) -> None:
        self.callback: InterruptCallback | None = None
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._previous[signal_number] = signal.signal(signal_number, self._handle)
                except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                    pass
        return self

    def attach(self, callback: InterruptCallback) -> None:
        self.callback = callback
        if self.signal_number is not None:
            callback.request(self.signal_number)

    def _handle(self, signal_number: int, frame: Any) -> None:
        if self.signal_number is not None:  # second request: stop now
            self._restore()
            if signal_number == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal_number)
            return
        self.signal_number = signal_number
        print(f"\n{signal.Signals(signal_number).name} received: stopping after the current batch "
              "(send it again to stop at once).", file=sys.stderr, flush=True)
        if self.callback is not None:
            self.callback.request(signal_number)

    def check(self, where: str) -> None:
        if self.signal_number is not None:
            raise TrainingInterrupted(
                f"training interrupted by {signal.Signals(self.signal_number).name} during {where}, before the "
                "first epoch of this run; nothing new was saved.", signal_number=self.signal_number)

    def _restore(self) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc: Any) -> None:
        self._restore()
