"""Self-describing checkpoints: ``model.weights.h5`` plus the config as JSON beside it.

A checkpoint folder holds everything needed to rebuild the model, so
``load_checkpoint(directory)`` returns a ready ``DiffusionModel``. Files are written to a
temporary name in the same folder and renamed into place, so an interrupted save never
leaves a half-written checkpoint behind: the previous one stays loadable.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import keras

from .config import DDIMConfig

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint_config",
           "WEIGHTS_FILE", "CONFIG_FILE", "METADATA_FILE"]

WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, damaged or made for another config."""


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename the finished file over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes),
                                        dir=path.parent)
    os.close(handle)
    try:
        write(tmp_name)
        with open(tmp_name, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def _write_text(text: str):
    def write(tmp_name: str) -> None:
        with open(tmp_name, "w", encoding="utf-8") as file:
            file.write(text)
    return write


def save_checkpoint(model: Any, directory: str | os.PathLike, *, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``model``'s weights, config and a little metadata into ``directory``.

    The weights are written first and the config last: a folder whose config is present
    always has complete weights of that config.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"cannot save a checkpoint to {str(directory)!r}: it is a file, not a folder.")
    if not model.is_adapted:
        raise CheckpointError("the model's normalizer was never adapted; call model.adapt_normalizer(images) "
                              "before saving, or the checkpoint could not sample.")
    from . import __version__

    info = {"ddim_tutorial_version": __version__, "keras_version": keras.__version__,
            "backend": keras.backend.backend(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **(metadata or {})}
    _atomic_write(directory / WEIGHTS_FILE, lambda tmp: model.save_weights(tmp))
    _atomic_write(directory / METADATA_FILE, _write_text(json.dumps(info, indent=2, sort_keys=True, default=str)))
    _atomic_write(directory / CONFIG_FILE, _write_text(model.config.to_json()))
    return directory


def read_checkpoint_config(directory: str | os.PathLike) -> DDIMConfig:
    """The config stored in a checkpoint folder, with clear errors for a bad folder."""
    directory = Path(directory)
    if not directory.exists():
        raise CheckpointError(f"no checkpoint at {str(directory)!r}: the folder does not exist. "
                              "Train one with `python -m ddim_tutorial train --out DIR` or check the path.")
    if not directory.is_dir():
        raise CheckpointError(f"{str(directory)!r} is a file; a checkpoint is a folder holding "
                              f"{WEIGHTS_FILE} and {CONFIG_FILE}.")
    config_path = directory / CONFIG_FILE
    if not config_path.exists():
        raise CheckpointError(f"{str(directory)!r} is not a ddim_tutorial checkpoint: {CONFIG_FILE} is missing "
                              "(was the save interrupted, or is this another kind of folder?).")
    try:
        return DDIMConfig.from_json(config_path.read_text(encoding="utf-8"))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{str(config_path)!r} is damaged or from an incompatible version: {err}") from err


def load_checkpoint(directory: str | os.PathLike, config: DDIMConfig | None = None) -> Any:
    """Rebuild the model saved in ``directory`` and load its weights.

    If ``config`` is given, it must match the stored one; otherwise the error lists the
    fields that differ, since weights of one architecture do not fit another.
    """
    from .model import DiffusionModel

    directory = Path(directory)
    stored = read_checkpoint_config(directory)
    if config is not None and config != stored:
        differences = ", ".join(f"{name}: checkpoint {old!r} vs requested {new!r}"
                                for name, (old, new) in stored.differences(config).items())
        raise CheckpointError(f"the checkpoint in {str(directory)!r} was made with another config; "
                              f"fields that differ: {differences}.")
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.exists():
        raise CheckpointError(f"{str(directory)!r} has a config but no {WEIGHTS_FILE}; the save did not finish. "
                              "Use an earlier checkpoint or train again.")
    model = DiffusionModel(stored)
    try:
        model.load_weights(str(weights_path))
    except Exception as err:  # h5py/Keras raise many types for damaged files
        raise CheckpointError(f"could not read the weights in {str(weights_path)!r} "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}); "
                              "the file is truncated or damaged. Use an earlier checkpoint or train again.") from err
    model.normalizer.finalize_state()
    return model
