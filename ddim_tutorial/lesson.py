"""Helpers that keep the notebooks short: fast mode, backend, images, and a trained model.

The notebooks read a few environment variables, so the same files serve a class on a GPU,
a student on a laptop and CI:

==================  ==========================================================================
``DDIM_FAST=1``     fast mode: the ``smoke`` preset (32x32 images, small U-Net, 2 epochs) with
                    a short EMA, few images, and KID with random InceptionV3 weights. The whole
                    series then runs on 2 CPU cores in minutes (this is what CI runs).
                    Unset (or ``0``): full mode, the reference network on 64x64 images
                    (``workshop`` preset), meant for a GPU.
``DDIM_DATA_DIR``   a folder of images to use instead of Oxford Flowers 102. Unset in fast
                    mode: offline synthetic flowers. Unset in full mode: Oxford Flowers 102
                    from TensorFlow Datasets (downloads on Colab).
``DDIM_CHECKPOINT`` a trained checkpoint folder for lessons 05-07, so a class can skip training.
``KERAS_BACKEND``   ``tensorflow`` (default), ``jax`` or ``torch``; set before Keras is imported.
==================  ==========================================================================

Lesson 04 trains into ``runs/lessons-fast`` (fast mode) or ``runs/lessons`` (full mode),
relative to the notebook's folder; lessons 05-07 reuse that checkpoint if it is there and
otherwise train a quick one into the same place, so it happens at most once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import DDIMConfig

__all__ = [
    "FAST_ENV_VAR",
    "DATA_ENV_VAR",
    "CHECKPOINT_ENV_VAR",
    "FAST_EMA",
    "fast_mode",
    "pick",
    "choose_backend",
    "lesson_config",
    "data_dir",
    "data_source",
    "load_images",
    "load_batches",
    "run_dir",
    "find_checkpoint",
    "train_lesson_model",
    "get_trained_model",
    "describe",
]

FAST_ENV_VAR = "DDIM_FAST"
DATA_ENV_VAR = "DDIM_DATA_DIR"
CHECKPOINT_ENV_VAR = "DDIM_CHECKPOINT"
BACKENDS = ("tensorflow", "jax", "torch")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def fast_mode() -> bool:
    """True when ``DDIM_FAST`` asks for the quick CPU version of the lessons."""
    value = os.environ.get(FAST_ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{FAST_ENV_VAR}={os.environ[FAST_ENV_VAR]!r} is invalid: set it to 1 (fast mode) or 0 / "
                     "leave it unset (full mode).")


def pick(*, fast: Any, full: Any) -> Any:
    """``fast`` in fast mode, ``full`` otherwise: ``num_images = lesson.pick(fast=8, full=64)``."""
    return fast if fast_mode() else full


def choose_backend(default: str = "tensorflow") -> str:
    """Set ``KERAS_BACKEND`` (unless already set) and return it; Keras must not be imported yet.

    If Keras is already imported with another backend, the choice cannot take effect any
    more, so this raises with the way out (restart the kernel).
    """
    if default not in BACKENDS:
        raise ValueError(f"default={default!r} is invalid: choose one of {', '.join(BACKENDS)}.")
    backend = os.environ.setdefault("KERAS_BACKEND", default)
    if backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND={backend!r} is invalid: use one of {', '.join(BACKENDS)}.")
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != backend:
            raise RuntimeError(f"Keras is already running on {active!r}, so KERAS_BACKEND={backend!r} has no "
                               "effect: restart the kernel and set the backend before importing keras.")
    return backend


#: Fast mode trains only about a hundred steps. With the reference's EMA momentum of 0.999 the
#: averaged network would still be about 90 % the untrained one after that, so fast mode
#: averages over a few steps instead (half-life about 7 steps rather than about 700).
FAST_EMA = 0.9


def lesson_config(**overrides: Any) -> DDIMConfig:
    """The lessons' configuration: ``smoke`` in fast mode, ``workshop`` (the reference network) otherwise.

    Fast mode also shortens the EMA (``FAST_EMA``), see above; ``overrides`` win over both.
    """
    if fast_mode():
        return DDIMConfig.preset("smoke", **{"ema": FAST_EMA, **overrides})
    return DDIMConfig.preset("workshop", **overrides)


def data_dir() -> str | None:
    """The image folder named by ``DDIM_DATA_DIR``, or None."""
    value = os.environ.get(DATA_ENV_VAR, "").strip()
    return value or None


def data_source() -> str:
    """Where the images come from: ``folder``, ``synthetic`` (fast mode) or ``auto`` (Oxford Flowers)."""
    if data_dir() is not None:
        return "folder"
    return "synthetic" if fast_mode() else "auto"


def load_batches(config: DDIMConfig, split: str = "train", **kwargs: Any) -> Any:
    """Batches of training or validation images from the lessons' data source (``data.load_dataset``)."""
    from .data import load_dataset

    return load_dataset(config, split, data_dir=data_dir(), source=data_source(), **kwargs)


def load_images(num_images: int, image_size: int | None = None, *, split: str = "train",
                seed: int = 0) -> np.ndarray:
    """``num_images`` images ``[N, S, S, 3]`` in [0, 1] from the lessons' data source.

    A folder is read directly (only the images needed); synthetic flowers are drawn;
    Oxford Flowers 102 is streamed through the reference's pipeline. ``image_size``
    defaults to the lesson config's.
    """
    from .data import load_image_folder, synthetic_flowers, take_images

    if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 1:
        raise ValueError(f"num_images={num_images!r} is invalid: ask for a positive integer.")
    config = lesson_config()
    size = config.image_size if image_size is None else image_size
    source = data_source()
    if source == "folder":
        images = load_image_folder(data_dir(), size, split, max_images=num_images, seed=seed)
        if len(images) < num_images:
            raise ValueError(f"the folder {data_dir()} has only {len(images)} {split} images; ask for fewer.")
        return images
    if source == "synthetic":
        return synthetic_flowers(num_images, size, seed=seed + (10_000 if split == "validation" else 0))
    batch_size = max(2, min(num_images, 64))
    dataset = load_batches(config.replace(image_size=size, batch_size=batch_size, seed=seed), split,
                           repeat=False)
    return take_images(dataset, num_images)


def run_dir() -> Path:
    """Where lesson 04 and the quick training keep their checkpoints and sample grids."""
    return Path("runs") / ("lessons-fast" if fast_mode() else "lessons")


def find_checkpoint(directory: str | os.PathLike | None = None) -> Path | None:
    """The best (else last) checkpoint that lesson 04 left in ``directory`` (default ``run_dir()``)."""
    from .checkpoints import CONFIG_FILE, WEIGHTS_FILE

    directory = run_dir() if directory is None else Path(directory)
    for name in ("best", "last"):
        candidate = directory / name
        if (candidate / CONFIG_FILE).is_file() and (candidate / WEIGHTS_FILE).is_file():
            return candidate
    return None


def train_lesson_model(config: DDIMConfig | None = None, *, epochs: int | None = None,
                       out: str | os.PathLike | None = None, **train_kwargs: Any) -> tuple[Any, Any]:
    """Train on the lessons' data source with ``training.train``; returns ``(model, history)``.

    Sample grids, the CSV history and the checkpoints ``best`` and ``last`` go to ``out``
    (default ``run_dir()``).
    """
    from .training import train

    config = lesson_config() if config is None else config
    out = run_dir() if out is None else Path(out)
    return train(config, data_dir=data_dir(), source=data_source(), epochs=epochs, out=out, **train_kwargs)


def get_trained_model(checkpoint: str | os.PathLike | None = None, *, config: DDIMConfig | None = None,
                      epochs: int | None = None, verbose: bool = True) -> Any:
    """A trained ``DiffusionModel`` for lessons 05-07, as cheaply as possible.

    In order: the ``checkpoint`` folder given; the folder in ``DDIM_CHECKPOINT``; the
    checkpoint lesson 04 left in ``run_dir()``; otherwise a quick training of
    ``config`` (default ``lesson_config()``) into ``run_dir()``, reused next time.
    """
    from .checkpoints import CheckpointError, load_checkpoint

    say = print if verbose else (lambda *_: None)
    if checkpoint is None:
        checkpoint = os.environ.get(CHECKPOINT_ENV_VAR, "").strip() or None
        origin = f"${CHECKPOINT_ENV_VAR}"
    else:
        origin = "the checkpoint argument"
    if checkpoint is not None:
        model = load_checkpoint(checkpoint)  # a bad path raises CheckpointError saying what is wrong
        say(f"Loaded the checkpoint {os.fspath(checkpoint)} (from {origin}).")
        return model
    found = find_checkpoint()
    if found is not None:
        try:
            model = load_checkpoint(found)
        except CheckpointError as err:
            say(f"Could not reuse {found}: {err} Training a new model instead.")
        else:
            say(f"Loaded {found}, trained earlier (lesson 04 or a previous quick training).")
            return model
    config = lesson_config() if config is None else config
    say(f"No checkpoint given or found: training a quick model into {run_dir()} "
        f"({'fast' if fast_mode() else 'full'} mode; set {CHECKPOINT_ENV_VAR} to skip this).")
    start = time.perf_counter()
    model, _ = train_lesson_model(config, epochs=epochs)
    say(f"Trained in {time.perf_counter() - start:.0f} s.")
    return model


def describe() -> str:
    """A few lines on how this lesson will run: backend, mode, data and checkpoint."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    mode = ("fast (DDIM_FAST=1: small images and model, quick CPU run)" if fast_mode()
            else "full (the reference network on 64x64 images; a GPU is recommended)")
    source = {"folder": f"the image folder {data_dir()}", "synthetic": "offline synthetic flowers",
              "auto": "Oxford Flowers 102 (TensorFlow Datasets)"}[data_source()]
    checkpoint = os.environ.get(CHECKPOINT_ENV_VAR, "").strip() or "none (lessons 05-07 reuse or train one)"
    return "\n".join([f"Keras backend : {backend}", f"mode          : {mode}", f"images        : {source}",
                      f"checkpoint    : {checkpoint}"])
