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
``DDIM_CHECKPOINT`` a trained checkpoint folder for lessons 05-07, instead of a bundled model.
``DDIM_LONG_TRAINING=1``  full mode on a machine without a GPU: train the long runs anyway
                    (lesson 04's ``workshop`` run, an uncapped fine-tuning epoch, lesson 08's
                    64x64 run: minutes to hours on a CPU) instead of runs of about a minute.
``KERAS_BACKEND``   ``tensorflow`` (default), ``jax`` or ``torch``; set before Keras is imported.
==================  ==========================================================================

Lessons 05-07 never train by surprise: :func:`get_trained_model` opens the checkpoint it is
given, else ``DDIM_CHECKPOINT``, else what lesson 04 left in ``run_dir()``, else the model
that ships with the package (:mod:`ddim_tutorial.pretrained`): ``flowers32`` in fast mode,
``flowers64`` in full mode. Lesson 04 trains into ``runs/lessons-fast``
(fast mode) or ``runs/lessons`` (full mode), relative to the notebook's folder, and fine-tunes
the bundled model into ``finetuned/`` inside it.

Without a GPU, no training cell runs for more than about two minutes unless asked to
(``DDIM_LONG_TRAINING=1`` or ``long=True``), and every run prints, before it starts, what it
trains and about how long that takes on this machine (:func:`ddim_tutorial.training.driver.describe_run`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddim_tutorial.checks import check_positive_int
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.runtime.backends import BACKENDS, BackendError, accelerator_available, select_backend
from ddim_tutorial.teaching.exercises import check  # re-exported: lessons check students' code with lesson.check

__all__ = [
    "FAST_ENV_VAR", "DATA_ENV_VAR", "CHECKPOINT_ENV_VAR", "FAST_EMA", "fast_mode", "pick", "choose_backend",
    "lesson_config", "data_dir", "data_source", "load_images", "load_batches", "run_dir", "find_checkpoint",
    "accelerator_available", "long_training", "ema_for_steps", "TrainingPlan", "training_plan",
    "train_lesson_model", "finetune_bundled", "kid_weights", "count_images",
    "get_trained_model", "describe", "check", "show_source", "class_names", "load_labelled_images",
    "train_guidance_model", "get_guidance_model",
]

FAST_ENV_VAR = "DDIM_FAST"
DATA_ENV_VAR = "DDIM_DATA_DIR"
CHECKPOINT_ENV_VAR = "DDIM_CHECKPOINT"
LONG_TRAINING_ENV_VAR = "DDIM_LONG_TRAINING"
FINETUNED_DIR = "finetuned"
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
    try:
        return select_backend(backend)
    except BackendError as error:
        if error.reason == "unknown":
            raise ValueError(f"KERAS_BACKEND={backend!r} is invalid: use one of {', '.join(BACKENDS)}.") from None
        raise RuntimeError(f"Keras is already running on {error.active!r}, so KERAS_BACKEND={backend!r} has no "
                           "effect: restart the kernel and set the backend before importing keras.") from None


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
    from ddim_tutorial.data.datasets import load_dataset

    return load_dataset(config, split, data_dir=data_dir(), source=data_source(), **kwargs)


def load_images(num_images: int, image_size: int | None = None, *, split: str = "train",
                seed: int = 0) -> np.ndarray:
    """``num_images`` images ``[N, S, S, 3]`` in [0, 1] from the lessons' data source.

    A folder is read directly (only the images needed); synthetic flowers are drawn;
    Oxford Flowers 102 is streamed through the reference's pipeline. ``image_size``
    defaults to the lesson config's.
    """
    return _load_from_source(num_images, image_size, split, seed, labels=False)


def _load_from_source(num_images: int, image_size: int | None, split: str, seed: int, *, labels: bool) -> Any:
    """``load_images`` (``labels=False``) and ``load_labelled_images`` (``labels=True``), written once."""
    from ddim_tutorial.data.datasets import take_images
    from ddim_tutorial.data.folders import load_image_folder
    from ddim_tutorial.data.synthetic import synthetic_flowers

    check_positive_int("num_images", num_images, advice="ask for a positive integer")
    config = lesson_config()
    size = config.image_size if image_size is None else image_size
    source = data_source()
    if source == "folder":
        loaded = load_image_folder(data_dir(), size, split, max_images=num_images, seed=seed, labels=labels)
    elif source == "synthetic":
        loaded = synthetic_flowers(num_images, size, seed=seed + (10_000 if split == "validation" else 0),
                                   labels=labels)
    else:
        batches = load_batches(config.replace(image_size=size, batch_size=max(2, min(num_images, 64)), seed=seed),
                               split, repeat=False, labels=labels)
        if not labels:
            return take_images(batches, num_images)
        chosen = []
        for batch in batches:
            chosen.append({key: np.asarray(value) for key, value in batch.items()})
            if sum(len(part["images"]) for part in chosen) >= num_images:
                break
        loaded = tuple(np.concatenate([part[key] for part in chosen]) for key in ("images", "class_labels"))
    images = loaded[0] if labels else loaded
    if len(images) < num_images:
        where = f"the folder {data_dir()}" if source == "folder" else "the data"
        raise ValueError(f"{where} has only {len(images)} {split} images; ask for fewer.")
    return (images[:num_images], loaded[1][:num_images]) if labels else images


def count_images(split: str = "train") -> int:
    """How many images the lessons' data source has in ``split`` (``"train"`` or ``"validation"``).

    A folder is counted (its ``train/`` and ``test/`` sub-folders, or its own 80/20 split);
    the synthetic flowers and Oxford Flowers 102 have fixed split sizes.
    """
    from ddim_tutorial.data.datasets import FLOWERS_SPLIT_SIZES, SYNTHETIC_SIZES
    from ddim_tutorial.data.folders import list_image_files

    source = data_source()
    if source == "folder":
        return len(list_image_files(data_dir(), split))
    return (SYNTHETIC_SIZES if source == "synthetic" else FLOWERS_SPLIT_SIZES)[split]


def kid_weights() -> str | None:
    """InceptionV3 weights for lesson 05: a local ImageNet weights file in full mode, else None (random).

    Fast mode uses random weights. Where the ImageNet weights cannot be found or downloaded
    (an offline machine), this prints one sentence saying so and falls back to random weights,
    so that the lesson still runs; the numbers then compare only with each other.
    """
    import warnings

    from ddim_tutorial.metrics.inception import (
        WEIGHTS_ENV_VAR,
        InceptionWeightsUnavailableError,
        RandomInceptionWeightsWarning,
        resolve_inception_weights,
    )

    if fast_mode():
        return None
    try:
        return resolve_inception_weights("imagenet")
    except InceptionWeightsUnavailableError:
        print("InceptionV3's ImageNet weights could not be downloaded here, and no copy is in Keras' cache or "
              f"${WEIGHTS_ENV_VAR}, so this lesson uses random InceptionV3 weights: its KID values compare "
              "only with each other.")
        # That sentence says what the warning of every later KID call would repeat.
        warnings.filterwarnings("ignore", category=RandomInceptionWeightsWarning)
        return None


def run_dir() -> Path:
    """Where lesson 04 and the quick training keep their checkpoints and sample grids."""
    return Path("runs") / ("lessons-fast" if fast_mode() else "lessons")


def find_checkpoint(directory: str | os.PathLike | None = None) -> Path | None:
    """The checkpoint lesson 04 left in ``directory`` (default ``run_dir()``), or None.

    The fine-tuned bundled model (``finetuned/``) comes first, then the run trained from
    scratch; in each, ``best`` before ``last``.
    """
    from ddim_tutorial.training.checkpoints import CONFIG_FILE, WEIGHTS_FILE

    directory = run_dir() if directory is None else Path(directory)
    for folder in (directory / FINETUNED_DIR, directory):
        for name in ("best", "last"):
            candidate = folder / name
            if (candidate / CONFIG_FILE).is_file() and (candidate / WEIGHTS_FILE).is_file():
                return candidate
    return None


@dataclass(frozen=True)
class TrainingPlan:
    """What lesson 04 trains here: the config, the epochs, a batch cap per epoch, and why."""

    config: DDIMConfig
    epochs: int
    max_train_batches: int | None
    reason: str


def long_training(long: bool | None = None) -> bool:
    """Whether to train the long runs: ``long`` if given, else a GPU or ``DDIM_LONG_TRAINING=1``."""
    if long is not None:
        return bool(long)
    return os.environ.get(LONG_TRAINING_ENV_VAR, "").strip().lower() in _TRUE or accelerator_available()


def ema_for_steps(steps: int, half_lives: float = 10.0) -> float:
    """The EMA momentum whose half-life is ``1 / half_lives`` of a run of ``steps`` optimizer steps.

    A short run needs a short memory: after ``steps`` steps the untrained start keeps the share
    ``ema ** steps`` of the averaged weights, here ``0.5 ** half_lives`` (0.1 % for 10).
    """
    check_positive_int("steps", steps, advice="ask for a positive integer")
    return round(0.5 ** (half_lives / steps), 4)


#: Lesson 04 without a GPU: epochs and batches per epoch of its CPU-sized run (about a minute).
CPU_RUN_EPOCHS, CPU_RUN_BATCHES = 4, 40


def training_plan(long: bool | None = None) -> TrainingPlan:
    """Lesson 04's training run for this machine and mode.

    Fast mode: the ``smoke`` preset for 2 epochs. Full mode with a GPU (or with ``long=True``
    / ``DDIM_LONG_TRAINING=1``): the ``workshop`` preset, the reference network for 5 epochs.
    Full mode without a GPU: the 32x32 network of the bundled ``flowers32`` model for
    ``CPU_RUN_EPOCHS`` epochs of ``CPU_RUN_BATCHES`` batches, about a minute, with an EMA
    sized to that run (:func:`ema_for_steps`), since the workshop run would take hours on a CPU.
    """
    config = lesson_config()
    if fast_mode():
        return TrainingPlan(config, config.num_epochs, None,
                            "Fast mode: the small smoke-preset network for 2 short epochs (about 15 s on a CPU).")
    if long_training(long):
        return TrainingPlan(config, config.num_epochs, None,
                            f"Full mode: the reference network on {config.image_size}x{config.image_size} images "
                            f"for {config.num_epochs} epochs (about 12 minutes on a T4 GPU, from the reference's "
                            "figure of 2 hours for 50 epochs).")
    steps = CPU_RUN_EPOCHS * CPU_RUN_BATCHES
    config = DDIMConfig.preset("workshop", image_size=32, widths=(32, 64, 96), batch_size=32,
                               ema=ema_for_steps(steps), num_epochs=CPU_RUN_EPOCHS)
    return TrainingPlan(config, config.num_epochs, CPU_RUN_BATCHES,
                        "No GPU found, so this lesson trains a CPU-sized run instead of the full one: the 32x32 "
                        f"network of the bundled flowers32 model for {CPU_RUN_EPOCHS} epochs of {CPU_RUN_BATCHES} "
                        f"batches ({steps} steps), with an EMA of {config.ema} sized to that run; set "
                        f"{LONG_TRAINING_ENV_VAR}=1 for the full workshop run (hours on a CPU).")


def train_lesson_model(config: DDIMConfig | None = None, *, epochs: int | None = None,
                       out: str | os.PathLike | None = None, **train_kwargs: Any) -> tuple[Any, Any]:
    """Train on the lessons' data source with ``training.train``; returns ``(model, history)``.

    Without ``config`` this runs :func:`training_plan` (its config, epochs and batch cap).
    Sample grids, the CSV history and the checkpoints ``best`` and ``last`` go to ``out``
    (default ``run_dir()``).
    """
    from ddim_tutorial.training.driver import train

    if config is None:
        plan = training_plan()
        config = plan.config
        epochs = plan.epochs if epochs is None else epochs
        train_kwargs.setdefault("max_train_batches", plan.max_train_batches)
    out = run_dir() if out is None else Path(out)
    return train(config, data_dir=data_dir(), source=data_source(), epochs=epochs, out=out, **train_kwargs)


#: Batches per epoch of the short runs that fast mode, and full mode without a GPU, fine-tune.
SHORT_FINETUNE_BATCHES = 15


def finetune_bundled(name: str | None = None, *, epochs: int = 1, learning_rate: float = 2e-4,
                     max_train_batches: int | None = None, out: str | os.PathLike | None = None,
                     long: bool | None = None, **train_kwargs: Any) -> tuple[Any, Any]:
    """Start from a bundled model and train it further on the lessons' data; returns ``(model, history)``.

    The bundled config is kept (architecture, EMA), with a lower learning rate so the first
    steps of a fresh optimizer do not undo the training. In fast mode, and in full mode without
    a GPU unless ``long`` (or ``DDIM_LONG_TRAINING=1``), an epoch is capped at
    ``SHORT_FINETUNE_BATCHES`` batches (about a minute); a whole epoch of the 64x64 model on
    Oxford Flowers 102 is 511 steps, about 23 minutes on 2 CPU cores. The run goes to
    ``run_dir() / "finetuned"``, which lessons 05-07 open first.
    """
    from ddim_tutorial.pretrained import presets as pretrained

    if name is None:
        name, _ = pretrained.default_name(fast_mode())
    start_model = pretrained.load(name)
    config = start_model.config.replace(learning_rate=learning_rate, num_epochs=epochs)
    if max_train_batches is None and (fast_mode() or not long_training(long)):
        max_train_batches = SHORT_FINETUNE_BATCHES
        print(f"Fine-tuning {name} for {epochs} epoch(s) of {max_train_batches} batches (a short run; "
              + ("fast mode)." if fast_mode() else f"no GPU found: set {LONG_TRAINING_ENV_VAR}=1 or pass "
                 "long=True for whole epochs)."))
    return train_lesson_model(config, epochs=epochs, out=run_dir() / FINETUNED_DIR if out is None else out,
                              initial_model=start_model, max_train_batches=max_train_batches, **train_kwargs)


def get_trained_model(checkpoint: str | os.PathLike | None = None, *, verbose: bool = True) -> Any:
    """A trained ``DiffusionModel`` for lessons 05-07, opened in seconds; never trains.

    In order: the ``checkpoint`` folder given; the folder in ``DDIM_CHECKPOINT``; the
    checkpoint lesson 04 left in ``run_dir()``; otherwise the bundled model of the mode
    (``flowers32`` in fast mode, ``flowers64`` in full mode). Prints which
    one it opened, with a one-line summary.
    """
    from ddim_tutorial.pretrained import presets as pretrained
    from ddim_tutorial.training.checkpoints import CheckpointError, load_checkpoint, read_training_state

    say = print if verbose else (lambda *_: None)
    origin = f"${CHECKPOINT_ENV_VAR}" if checkpoint is None else "the checkpoint argument"
    if checkpoint is None:
        checkpoint = os.environ.get(CHECKPOINT_ENV_VAR, "").strip() or None
    if checkpoint is not None:
        model = load_checkpoint(checkpoint)  # a bad path raises CheckpointError saying what is wrong
        say(f"Opened the checkpoint {os.fspath(checkpoint)} (from {origin}): "
            f"{_checkpoint_summary(model, read_training_state(checkpoint))}.")
        return model
    found = find_checkpoint()
    if found is not None:
        try:
            model = load_checkpoint(found)
        except CheckpointError as err:
            say(f"Could not open {found} ({err}); using the bundled model instead.")
        else:
            say(f"Opened {found}, lesson 04's run: {_checkpoint_summary(model, read_training_state(found))}.")
            return model
    name, why = pretrained.default_name(fast_mode())
    model = pretrained.load(name)
    if why:
        say(why)
    say(f"Opened the bundled model {name!r}: {pretrained.card(name)['summary']}")
    return model


# ------------------------------------------------------------------- lesson 08
GUIDANCE_DIR = "guidance"
#: The bundled class-conditional model that lesson 08 explores.
GUIDANCE_MODEL = "species32"
#: Batches per epoch of lesson 08's run in full mode without a GPU (2 epochs: about a minute).
GUIDANCE_CPU_BATCHES = 40


def class_names() -> list[str]:
    """The classes of the lessons' data source, in label order (``data.class_names``)."""
    from ddim_tutorial.data.datasets import class_names as data_class_names

    return data_class_names(lesson_config(), data_dir=data_dir(), source=data_source())


def load_labelled_images(num_images: int, image_size: int | None = None, *, split: str = "train",
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(images, class_labels)``: ``num_images`` images from the lessons' data source and their classes."""
    return _load_from_source(num_images, image_size, split, seed, labels=True)


def train_guidance_model(*, epochs: int | None = None, out: str | os.PathLike | None = None,
                         long: bool | None = None, **train_kwargs: Any) -> tuple[Any, Any]:
    """Lesson 08's class-conditional training on the lessons' data; returns ``(model, history)``.

    Fast mode: the small smoke-preset network, 2 epochs, from scratch. Full mode: a bundled
    unconditional model taught the labels (its class embedding starts at zero, so it starts as
    the unconditional model): on a GPU (or with ``long=True`` / ``DDIM_LONG_TRAINING=1``) the
    64x64 ``flowers64`` for 5 epochs; without one the 32x32 ``flowers32`` for 2 epochs of
    ``GUIDANCE_CPU_BATCHES`` batches, about a minute.
    """
    from ddim_tutorial.pretrained import presets as pretrained

    names = class_names()
    initial_model = None
    if fast_mode():
        config = lesson_config(num_classes=len(names))
        epochs = config.num_epochs if epochs is None else epochs
    else:
        on_long_run = long_training(long)
        initial_model = pretrained.load(pretrained.default_name(False)[0] if on_long_run else "flowers32")
        config = initial_model.config.replace(num_classes=len(names))
        epochs = (5 if on_long_run else 2) if epochs is None else epochs
        if not on_long_run:
            train_kwargs.setdefault("max_train_batches", GUIDANCE_CPU_BATCHES)
            print(f"No GPU found, so this run teaches the labels to the 32x32 flowers32 for {epochs} epoch(s) of "
                  f"{train_kwargs['max_train_batches']} batches; set {LONG_TRAINING_ENV_VAR}=1 for 5 epochs of "
                  "the 64x64 flowers64 (tens of minutes on a CPU).")
    return train_lesson_model(config, epochs=epochs, out=run_dir() / GUIDANCE_DIR if out is None else out,
                              initial_model=initial_model, **train_kwargs)


def get_guidance_model(checkpoint: str | os.PathLike | None = None, *, verbose: bool = True) -> Any:
    """A trained class-conditional model for lesson 08's explorer: ``checkpoint``, else the bundled
    ``species32`` (flowers32 taught the 12 species of flowers12), else lesson 08's own run."""
    from ddim_tutorial.pretrained import presets as pretrained
    from ddim_tutorial.training.checkpoints import load_checkpoint

    say = print if verbose else (lambda *_: None)
    if checkpoint is not None:
        model = load_checkpoint(checkpoint)
        if not model.config.num_classes:
            raise ValueError(f"{os.fspath(checkpoint)} holds an unconditional model (num_classes=0); lesson 08 "
                             "needs one trained with labels, e.g. runs/lessons/guidance/last.")
        say(f"Opened the checkpoint {os.fspath(checkpoint)}: {model.config.num_classes} classes.")
        return model
    if GUIDANCE_MODEL in pretrained.available():
        model = pretrained.load(GUIDANCE_MODEL)
        say(f"Opened the bundled model {GUIDANCE_MODEL!r}: {pretrained.card(GUIDANCE_MODEL)['summary']}")
        return model
    own = run_dir() / GUIDANCE_DIR / "last"
    say(f"No bundled class-conditional model is installed; using this lesson's own run, {own}.")
    return load_checkpoint(own)


def _checkpoint_summary(model: Any, state: dict[str, Any]) -> str:
    config = model.config
    trained = ""
    if state.get("optimizer_iterations"):
        images = int(state["optimizer_iterations"]) * config.batch_size
        trained = f", trained {state.get('epoch')} epoch(s), {images:,} images"
        if state.get("started_from"):
            trained = (f", the bundled {state['started_from']} fine-tuned for {state.get('epoch')} more epoch(s), "
                       f"{images:,} more images (its card says how long it trained before)")
    return (f"{config.image_size}x{config.image_size} images, widths {'/'.join(map(str, config.widths))}, "
            f"{model.ema_network.count_params():,} parameters{trained}")


def show_source(*objects: Any, only: str | tuple[str, ...] | None = None) -> None:
    """Print the package's own code of ``objects`` (functions, classes, methods), each under its file and lines.

    What a lesson shows after a write-it-yourself exercise, read from the installed package, so it
    cannot drift from the code that runs. ``only``: keep just the first line and the lines that
    contain one of these strings, with ``...`` where lines are left out.
    """
    import inspect
    import textwrap

    package = Path(__file__).resolve().parents[1]  # ddim_tutorial/, above teaching/
    keep = (only,) if isinstance(only, str) else only
    for index, obj in enumerate(objects):
        target = inspect.unwrap(obj)
        try:
            path = Path(inspect.getsourcefile(target) or "").resolve()
            lines, first = inspect.getsourcelines(target)
        except (TypeError, OSError) as err:
            raise ValueError(f"show_source: cannot read the code of {obj!r} ({err}); pass a function, class or "
                             "method of ddim_tutorial.") from None
        if package not in path.parents:
            raise ValueError(f"show_source: {getattr(obj, '__qualname__', obj)!r} is not part of ddim_tutorial; "
                             "it only shows the package's own code.")
        where = f"lines {first}-{first + len(lines) - 1}"
        if keep:
            body, gap = [lines[0]], False
            for line in lines[1:]:
                if any(text in line for text in keep):
                    if gap:
                        body.append(" " * (len(line) - len(line.lstrip())) + "...\n")
                    body.append(line)
                    gap = False
                else:
                    gap = True
            if len(body) == 1:  # the excerpt asked for is gone: the lesson's text no longer fits the code
                raise ValueError(f"show_source: no line of {target.__qualname__} contains any of {list(keep)}.")
            if gap:
                body.append(" " * (len(lines[-1]) - len(lines[-1].lstrip())) + "...\n")
            lines, where = body, where + ", an excerpt"
        print(("\n" if index else "") + f"# {target.__qualname__}, from ddim_tutorial/"
              f"{path.relative_to(package).as_posix()} ({where})")
        print(textwrap.dedent("".join(lines)).rstrip())


def describe() -> str:
    """A few lines on how this lesson will run: backend, mode, data and checkpoint."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    mode = ("fast (DDIM_FAST=1: small images and model, quick CPU run)" if fast_mode()
            else "full (the reference network on 64x64 images; a GPU is recommended)")
    source = {"folder": f"the image folder {data_dir()}", "synthetic": "offline synthetic flowers",
              "auto": "Oxford Flowers 102 (TensorFlow Datasets)"}[data_source()]
    checkpoint = (os.environ.get(CHECKPOINT_ENV_VAR, "").strip()
                  or "none (lessons 05-07 open lesson 04's run or a bundled model)")
    return "\n".join([f"Keras backend : {backend}", f"mode          : {mode}", f"images        : {source}",
                      f"checkpoint    : {checkpoint}"])
