"""Self-describing, crash-safe checkpoints: a folder with the weights, the config and some state.

A checkpoint folder holds everything needed to rebuild the model, so
``load_checkpoint(directory)`` returns a ready ``DiffusionModel``:

* ``model.weights.h5``: the network, its EMA twin, the normalizer's mean and variance and,
  when the model was compiled, the optimizer's variables (Keras stores them there too);
* ``config.json``: the ``DDIMConfig``;
* ``metadata.json``: versions, backend and time of the save;
* ``training_state.json`` (written by training): the epoch, optimizer step and best metric.

The weights file is HDF5 keyed by layer paths, so a checkpoint saved on one Keras backend
loads on the others. A save builds the whole folder under a hidden temporary name beside
the target and then swaps it in with two renames. Whatever moment a crash (or ``kill -9``)
hits, either the old or the new checkpoint is complete on disk, and ``load_checkpoint``
finds it, even in the instant between the two renames.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import keras

from ddim_tutorial.config import DDIMConfig

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_weights_into", "listed_differences",
           "read_checkpoint_config", "read_training_state", "resolve_checkpoint", "checkpoint_exists",
           "ARCHITECTURE_FIELDS", "WEIGHTS_FILE", "CONFIG_FILE", "METADATA_FILE", "TRAINING_STATE_FILE"]

WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
TRAINING_STATE_FILE = "training_state.json"
_CHECKPOINT_FILES = (WEIGHTS_FILE, CONFIG_FILE, METADATA_FILE, TRAINING_STATE_FILE)

#: Config fields that decide the shapes (or the meaning) of the weights. Any other field
#: (learning rate, epochs, batch size...) may change when training resumes.
ARCHITECTURE_FIELDS = ("image_size", "widths", "block_depth", "embedding_dims", "embedding_min_frequency",
                       "embedding_max_frequency", "min_signal_rate", "max_signal_rate", "prediction_type", "path",
                       "num_classes")


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, damaged or made for another config."""


# ------------------------------------------------------------------------ file helpers
def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _fsync_directory(path: Path) -> None:
    """Make renames inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _siblings(directory: Path, kind: str) -> list[Path]:
    """Hidden work folders ``.NAME.tmp-*`` / ``.NAME.old-*`` that a save leaves beside ``directory``."""
    parent = directory.parent
    if not parent.is_dir():
        return []
    return sorted((p for p in parent.glob(f".{directory.name}.{kind}-*") if p.is_dir()),
                  key=lambda p: p.stat().st_mtime, reverse=True)


def _is_complete(directory: Path) -> bool:
    return (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


@contextlib.contextmanager
def _without_kid(model: Any) -> Iterator[None]:
    """Hide the KID metric while saving or loading weights.

    KID holds a whole InceptionV3 (88 MB) that is never trained; saving it would bloat every
    checkpoint and make loading depend on ``validation_kid``. ``object.__setattr__`` skips
    Keras' attribute tracking, so the metric is put back exactly as it was.
    """
    kid = model.__dict__.get("kid")
    if kid is None:
        yield
        return
    object.__setattr__(model, "kid", None)
    try:
        yield
    finally:
        object.__setattr__(model, "kid", kid)


# ------------------------------------------------------------------------------ saving
def save_checkpoint(model: Any, directory: str | os.PathLike, *, metadata: dict[str, Any] | None = None,
                    training_state: dict[str, Any] | None = None) -> Path:
    """Save ``model``'s weights, config, metadata (and a training state) into ``directory``.

    The folder is written complete under a temporary name and then swapped in, so the
    previous checkpoint in ``directory`` stays loadable if the save is interrupted. The
    folder must be new, empty or an earlier checkpoint: a save never deletes other files.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"cannot save a checkpoint to {str(directory)!r}: it is a file, not a folder.")
    if directory.is_dir():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in _CHECKPOINT_FILES)
        if foreign:
            raise CheckpointError(
                f"cannot save a checkpoint to {str(directory)!r}: the folder holds other files "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}) that a save would delete; "
                "save into a new or empty folder, such as a 'checkpoint' folder inside it.")
    if not getattr(model, "is_adapted", False):  # DiffusionModel.is_adapted reads the normalizer itself
        raise CheckpointError("the model's normalizer was never adapted; call model.adapt_normalizer(images) "
                              "before saving, or the checkpoint could not sample.")
    from ddim_tutorial import __version__

    info = {"ddim_tutorial_version": __version__, "keras_version": keras.__version__,
            "backend": keras.backend.backend(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **(metadata or {})}
    directory.parent.mkdir(parents=True, exist_ok=True)
    for stale in _siblings(directory, "tmp"):  # left by a save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        with _without_kid(model):
            model.save_weights(str(tmp / WEIGHTS_FILE))
        _write_json(tmp / METADATA_FILE, info)
        if training_state is not None:
            _write_json(tmp / TRAINING_STATE_FILE, training_state)
        (tmp / CONFIG_FILE).write_text(model.config.to_json(), encoding="utf-8")
        for file in tmp.iterdir():
            _fsync_file(file)
        _fsync_directory(tmp)
        _swap_in(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _swap_in(new: Path, directory: Path) -> None:
    """Replace ``directory`` by the finished folder ``new`` with two renames."""
    old = None
    if directory.exists():
        old = directory.parent / f".{directory.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(directory, old)
    # A crash here leaves only the complete old folder, which resolve_checkpoint restores.
    os.rename(new, directory)
    _fsync_directory(directory.parent)
    for leftover in [*([old] if old else []), *_siblings(directory, "old")]:
        shutil.rmtree(leftover, ignore_errors=True)


# ----------------------------------------------------------------------------- reading
def resolve_checkpoint(directory: str | os.PathLike) -> Path:
    """``directory`` itself, or, if a save was killed between its two renames, the intact previous one.

    The previous checkpoint is renamed back into place, so later reads see a normal folder.
    """
    directory = Path(directory)
    if not directory.exists():
        previous = [p for p in _siblings(directory, "old") if _is_complete(p)]
        if previous:
            try:
                os.rename(previous[0], directory)
            except OSError:
                return previous[0]
    return directory


def checkpoint_exists(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a complete checkpoint (after crash recovery)."""
    return _is_complete(resolve_checkpoint(directory))


def read_checkpoint_config(directory: str | os.PathLike) -> DDIMConfig:
    """The config stored in a checkpoint folder, with clear errors for a bad folder."""
    directory = resolve_checkpoint(directory)
    if not directory.exists():
        raise CheckpointError(f"no checkpoint at {str(directory)!r}: the folder does not exist. "
                              "Train one with `python -m ddim_tutorial train --out DIR` or check the path.")
    if not directory.is_dir():
        raise CheckpointError(f"{str(directory)!r} is a file; a checkpoint is a folder holding "
                              f"{WEIGHTS_FILE} and {CONFIG_FILE}.")
    config_path = directory / CONFIG_FILE
    if not config_path.exists():
        hint = ""
        if (directory / "last").is_dir() or (directory / "best").is_dir():
            hint = f" It looks like a training folder: pass {str(directory / 'best')!r} or {str(directory / 'last')!r}."
        raise CheckpointError(f"{str(directory)!r} is not a ddim_tutorial checkpoint: {CONFIG_FILE} is missing "
                              f"(was the save interrupted, or is this another kind of folder?).{hint}")
    try:
        return DDIMConfig.from_json(config_path.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{str(config_path)!r} is damaged or from an incompatible version: {err}") from err


def read_training_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The training state saved with a checkpoint (epoch, optimizer step, best metric), or ``{}``."""
    path = resolve_checkpoint(directory) / TRAINING_STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise CheckpointError(f"{str(path)!r} is damaged ({err}); resume from another checkpoint.") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r} is damaged: it does not hold a JSON object.")
    return state


def listed_differences(stored: DDIMConfig, config: DDIMConfig, fields: tuple[str, ...] | None = ARCHITECTURE_FIELDS,
                       *, names: tuple[str, str] = ("checkpoint", "requested")) -> str:
    """The ``fields`` (None: all) in which ``config`` differs from a checkpoint's ``stored`` config, for an
    error message: ``"name: checkpoint OLD vs requested NEW; ..."`` (``names`` words the two sides),
    or ``""`` where they agree."""
    old_name, new_name = names
    return "; ".join(f"{name}: {old_name} {old!r} vs {new_name} {new!r}"
                     for name, (old, new) in stored.differences(config).items() if fields is None or name in fields)


def _check_config(stored: DDIMConfig, config: DDIMConfig, directory: Path, fields: tuple[str, ...] | None) -> None:
    listed = listed_differences(stored, config, fields)
    if listed:
        raise CheckpointError(f"the checkpoint in {str(directory)!r} was made with another config; "
                              f"fields that differ: {listed}. Use the checkpoint's own config "
                              "(load_checkpoint(directory) without config) or train a new model.")


def load_weights_into(model: Any, directory: str | os.PathLike) -> None:
    """Load a checkpoint's weights (and optimizer variables, if ``model.optimizer`` is built) into ``model``.

    Only the architecture fields of ``model.config`` must match the stored config, so
    training can resume with, say, a lower learning rate.
    """
    directory = resolve_checkpoint(directory)
    stored = read_checkpoint_config(directory)
    _check_config(stored, model.config, directory, ARCHITECTURE_FIELDS)
    weights_path = _weights_path(directory)
    try:
        with _without_kid(model):
            model.load_weights(str(weights_path))
    except OSError as err:  # h5py cannot open or read the file
        raise CheckpointError(f"could not read the weights in {str(weights_path)!r} ({_first_line(err)}); the "
                              "file is truncated or damaged. Use an earlier checkpoint or train again.") from err
    except Exception as err:  # Keras: missing layers, wrong shapes, wrong variable counts
        raise CheckpointError(f"the weights in {str(weights_path)!r} do not fit the config stored beside them "
                              f"({type(err).__name__}: {_first_line(err)}); the files come from different "
                              "models. Use an earlier checkpoint or train again.") from err
    model.normalizer.finalize_state()


def load_checkpoint(directory: str | os.PathLike, config: DDIMConfig | None = None, *,
                    with_kid: bool = False) -> Any:
    """Rebuild the model saved in ``directory`` and load its weights, ready to sample.

    If ``config`` is given, it must match the stored one; otherwise the error lists the
    fields that differ, since weights of one architecture do not fit another. The KID
    metric (an InceptionV3 that needs its ImageNet weights) is only rebuilt with
    ``with_kid=True``; without it ``model.config.validation_kid`` is False.
    """
    from ddim_tutorial.core.model import DiffusionModel

    directory = resolve_checkpoint(directory)
    stored = read_checkpoint_config(directory)
    if config is not None:
        _check_config(stored, config, directory, None)
    _weights_path(directory)  # before building a model for nothing
    model = DiffusionModel(stored if with_kid else stored.replace(validation_kid=False))
    load_weights_into(model, directory)
    return model


def _weights_path(directory: Path) -> Path:
    """The weights file beside a checkpoint's config, which a finished save always writes."""
    path = directory / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(f"{str(directory)!r} has a config but no {WEIGHTS_FILE}; the save did not finish. "
                              "Use an earlier checkpoint or train again.")
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
