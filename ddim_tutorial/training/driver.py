"""Train a DiffusionModel end to end: data, normalizer, fit, samples, history, checkpoints, resume.

``train`` is what ``python -m ddim_tutorial train`` and the notebooks call. With an
output folder ``out`` it writes::

    out/samples/epoch_001.png   samples from the same seeded noise after every epoch
    out/history.csv             the losses of every epoch (Keras' CSVLogger; epochs from 0)
    out/last/                   checkpoint of the last complete epoch, with its training state
    out/best/                   checkpoint of the best epoch by val_kid or val_n_loss

A run stopped by Ctrl-C, SIGTERM or even ``kill -9`` keeps ``out/last`` intact, and
``train(..., out=out, resume=True)`` continues from it: same epoch count, optimizer state,
EMA weights and normalizer.
"""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path
from typing import Any, Iterable

import keras

from ddim_tutorial.checks import check_positive_int
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.training.callbacks import GRID_COLS, GRID_ROWS, CheckpointCallback, NaNGuard, SampleGridCallback
from ddim_tutorial.training.checkpoints import (
    ARCHITECTURE_FIELDS,
    CheckpointError,
    checkpoint_exists,
    listed_differences,
    load_weights_into,
    read_checkpoint_config,
    read_training_state,
)
from ddim_tutorial.training.interrupts import InterruptCallback, StopOnSignals

__all__ = ["train", "describe_run", "estimate_seconds", "SAMPLES_DIR", "HISTORY_FILE"]

HISTORY_FILE = "history.csv"
SAMPLES_DIR = "samples"
#: Images in the sample grid written after every epoch (``SampleGridCallback``'s default).
GRID_IMAGES = GRID_ROWS * GRID_COLS
#: A compiled training step (forward and backward pass, optimizer and EMA update) costs about this
#: many *eager* forward passes of the same batch, the one :func:`time_forward_pass` times: measured
#: 1.6 to 2.2 on 2 CPU cores with TensorFlow, for the smoke network, flowers32's and the reference's
#: (the compiled step saves the eager calls' overhead that the backward pass would add).
TRAIN_STEP_FORWARDS = 2.0
#: Building the training step and the sampler before the first batch (tracing, compiling).
STARTUP_SECONDS = 5.0


def monitor_for(config: DDIMConfig, validation: bool = True) -> str:
    """The metric that picks the best checkpoint: val_kid, val_n_loss, or n_loss without validation."""
    if not validation:
        return "n_loss"
    return "val_kid" if config.validation_kid else "val_n_loss"


def train(config: DDIMConfig, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
          epochs: int | None = None, out: str | os.PathLike | None = None, resume: bool = False,
          callbacks: Iterable[keras.callbacks.Callback] = (), verbose: Any = "auto", validation: bool = True,
          max_train_batches: int | None = None, initial_model: Any = None) -> tuple[Any, keras.callbacks.History]:
    """Train a ``DiffusionModel(config)`` and return ``(model, history)``.

    ``epochs`` is the total number of epochs (default ``config.num_epochs``); on resume the
    epochs already in ``out/last`` count towards it, and the run's data (folder, source and
    batch cap) is reused unless other data is named. ``max_train_batches`` caps the batches
    per epoch (and of validation) for quick checks. ``initial_model`` (a trained
    ``DiffusionModel`` of the same architecture, e.g. ``pretrained.load("flowers32")``)
    fine-tunes: its weights, EMA weights and normalizer are the starting point. ``verbose`` is Keras' (``"auto"``, 0, 1,
    2). Raises :class:`~ddim_tutorial.training.interrupts.TrainingInterrupted` (a KeyboardInterrupt)
    after a clean stop on SIGINT/SIGTERM, and
    :class:`~ddim_tutorial.training.callbacks.NonFiniteLossError` when the loss becomes NaN or Inf.
    """
    _check_arguments(config, epochs, max_train_batches, out, resume, initial_model)
    epochs = config.num_epochs if epochs is None else epochs
    out = None if out is None else Path(out)
    say = print if verbose not in (0, False) else (lambda *args, **kwargs: None)

    state: dict[str, Any] = {}
    best_state: dict[str, Any] = {}
    if resume:
        state, best_state = _resume_state(config, out)
        data_dir, source, max_train_batches = _recorded_data(state, data_dir, source, max_train_batches)
        _report_changed_settings(config, out, say)
        if state["epoch"] >= epochs:
            return _nothing_to_train(config, out, epochs, state["epoch"], say)
    initial_epoch = int(state.get("epoch", 0))

    with StopOnSignals() as stopper:
        if config.seed is not None:
            keras.utils.set_random_seed(config.seed + initial_epoch)
        config, train_data, validation_data = _load_data(config, data_dir, source, validation, max_train_batches)
        model = _start_model(config, train_data, out, state, initial_model, epochs, say)
        stopper.check("data loading")
        monitor = monitor_for(config, validation)
        data_state = {"data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
                      "source": source, "max_train_batches": max_train_batches}  # what a resume continues on
        # A fine-tuned run records the bundled model it started from, so that its summary can say so.
        started_from = getattr(initial_model, "bundled_name", None) or state.get("started_from")
        extra_state = {"data": data_state, **({"started_from": started_from} if started_from else {})}
        checkpoint_callback = _checkpoint_callback(out, monitor, epochs, best_state, extra_state)
        interrupt_callback = InterruptCallback(checkpoint_callback)
        interrupt_callback.initial_epoch = initial_epoch
        stopper.attach(interrupt_callback)
        all_callbacks = [NaNGuard(), *_output_callbacks(out, config, resume, initial_epoch, checkpoint_callback),
                         interrupt_callback, *callbacks]
        if verbose not in (0, False):  # describe_run times a forward pass: only when it is printed
            say(describe_run(model, train_data, validation_data, epochs - initial_epoch,
                             grid_images=GRID_IMAGES if out is not None else 0))
        if out is not None and not resume:
            say(f"Training for {epochs} epoch(s); samples, history and checkpoints go to {out}.")
        history = model.fit(train_data, epochs=epochs, initial_epoch=initial_epoch,
                            validation_data=validation_data, callbacks=all_callbacks, verbose=verbose,
                            shuffle=False)  # the data pipelines shuffle themselves
    _report_done(checkpoint_callback, monitor, say)
    return model, history


# ------------------------------------------------------------------- what a run costs
def batches_per_epoch(data: Any) -> int | None:
    """The batches in one epoch of ``data`` (a PyDataset or a finite tf.data pipeline), or None if unknown."""
    if data is None:
        return 0
    try:
        return len(data)
    except TypeError:  # tf.data of infinite or unknown length (a filter in the pipeline)
        return None


def time_forward_pass(model: Any, batch_size: int, repeats: int = 2) -> float:
    """Seconds for one forward pass of ``model``'s network on a batch, timed on this machine.

    Eager calls after one warm-up call, the fastest of ``repeats``: what the machine can do
    now, including other work that shares it.
    """
    import time

    import numpy as np
    from keras import ops

    size = model.config.image_size
    noisy = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((batch_size, size, size, 3)), "float32")
    rates = model.diffusion_schedule(ops.full((batch_size, 1, 1, 1), 0.5))
    labels = ops.zeros((batch_size,), "int32") if model.config.num_classes else None

    def forward() -> None:
        outputs = model.denoise(noisy, *rates, training=False, class_labels=labels)
        ops.convert_to_numpy(outputs[0])

    forward()
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        durations.append(time.perf_counter() - start)
    return min(durations)


def estimate_seconds(forward_seconds: float, *, epochs: int, train_batches: int, validation_batches: int,
                     grid_images: int, grid_steps: int, batch_size: int, guided: bool = False) -> float:
    """About how long a run takes: training steps, validation and sample grids, from one forward pass.

    ``forward_seconds`` is the time of one forward pass on a batch of ``batch_size``
    (:func:`time_forward_pass`); a training step costs about ``TRAIN_STEP_FORWARDS`` of them,
    a validation batch one, and a grid ``grid_steps`` passes over ``grid_images`` images
    (twice as many when guided).
    """
    per_image = forward_seconds / batch_size
    per_epoch = (train_batches * TRAIN_STEP_FORWARDS * forward_seconds + validation_batches * forward_seconds
                 + grid_images * grid_steps * per_image * (2 if guided else 1))
    return STARTUP_SECONDS + epochs * per_epoch


def duration_text(seconds: float) -> str:
    """A duration as a person says it: "40 s" (to 10 s), "23 min", "1 h 54 min"."""
    if seconds < 90:
        return f"{max(10, 10 * round(seconds / 10))} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if hours and seconds >= 90 * 60 else f"{round(seconds / 60)} min"


def describe_run(model: Any, train_data: Any, validation_data: Any, epochs: int, *,
                 grid_images: int = GRID_IMAGES) -> str:
    """One or two lines, printed before ``fit``: what this run trains and about how long it takes here."""
    config = model.config
    train_batches = batches_per_epoch(train_data)
    validation_batches = batches_per_epoch(validation_data) or 0
    what = (f"{config.image_size}x{config.image_size} network, widths {'/'.join(map(str, config.widths))}, "
            f"{model.network.count_params():,} parameters")
    if train_batches is None:
        return f"This run: {epochs} epoch(s) of the {what}; its length is not known in advance."
    steps = epochs * train_batches
    forward_seconds = time_forward_pass(model, config.batch_size)
    seconds = estimate_seconds(forward_seconds, epochs=epochs, train_batches=train_batches,
                               validation_batches=validation_batches, grid_images=grid_images,
                               grid_steps=config.plot_diffusion_steps, batch_size=config.batch_size,
                               guided=config.num_classes > 0)
    return (f"This run: {epochs} epoch(s) of {train_batches} batches of {config.batch_size} images "
            f"({steps:,} steps, {steps * config.batch_size:,} images) on the {what}.\n"
            f"Estimated time on this machine: about {duration_text(seconds)} "
            f"(one forward pass of a batch takes {forward_seconds:.2f} s here).")


# ------------------------------------------------------------------- the steps of train
def _check_arguments(config: Any, epochs: Any, max_train_batches: Any, out: Any, resume: bool,
                     initial_model: Any) -> None:
    if not isinstance(config, DDIMConfig):
        raise ValueError(f"config of type {type(config).__name__} is invalid: pass a DDIMConfig, "
                         "e.g. DDIMConfig.preset('smoke').")
    if epochs is not None:
        check_positive_int("epochs", epochs)
    if max_train_batches is not None:
        check_positive_int("max_train_batches", max_train_batches)
    if resume and out is None:
        raise ValueError("resume=True needs out=..., the folder of the run to continue.")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"out={str(out)!r} is a file; pass a folder for the checkpoints and samples.")
    if initial_model is not None:
        if resume:
            raise ValueError("initial_model and resume=True contradict each other: resume continues out/last.")
        _check_same_architecture(config, initial_model)


def _recorded_data(state: dict[str, Any], data_dir: Any, source: str, max_train_batches: Any) -> tuple:
    """Continue on the data the run started with, unless the caller names other data."""
    recorded = state.get("data") or {}
    if data_dir is None and source == "auto":
        data_dir, source = recorded.get("data_dir"), recorded.get("source", "auto")
    if max_train_batches is None:
        max_train_batches = recorded.get("max_train_batches")
    return data_dir, source, max_train_batches


def _report_changed_settings(config: DDIMConfig, out: Path, say: Any) -> None:
    changed = {name: values for name, values in read_checkpoint_config(out / "last").differences(config).items()
               if name != "num_epochs"}
    if changed:
        say("Resuming with changed settings: " + "; ".join(
            f"{name} {old!r} -> {new!r}" for name, (old, new) in changed.items()) + ".")


def _nothing_to_train(config: DDIMConfig, out: Path, epochs: int, done: int, say: Any) -> tuple:
    from ddim_tutorial.core.model import DiffusionModel

    say(f"{out / 'last'} already holds {done} epoch(s), which reaches epochs={epochs}; "
        "nothing to train. Ask for more epochs to continue.")
    model = DiffusionModel(config)
    model.compile()
    _build_optimizer(model)
    load_weights_into(model, out / "last")
    history = keras.callbacks.History()
    history.set_model(model)
    return model, history


def _load_data(config: DDIMConfig, data_dir: Any, source: str, validation: bool,
               max_train_batches: int | None) -> tuple[DDIMConfig, Any, Any]:
    """The training (and validation) batches; a class-conditional config learns the class names."""
    from ddim_tutorial.data.datasets import load_dataset

    labels = config.num_classes > 0  # a class-conditional model trains on labelled batches
    if labels:  # the config (and so every checkpoint) records what each label means
        config = config.replace(class_names=tuple(_check_classes(config, data_dir, source)))

    def batches(split: str) -> Any:
        dataset = load_dataset(config, split, data_dir=data_dir, source=source, labels=labels)
        return _limit_batches(dataset, max_train_batches)

    return config, batches("train"), batches("validation") if validation else None


def _start_model(config: DDIMConfig, train_data: Any, out: Path | None, state: dict[str, Any],
                 initial_model: Any, epochs: int, say: Any) -> Any:
    """A compiled model: resumed from ``out/last``, copied from ``initial_model``, or fresh."""
    from ddim_tutorial.core.model import DiffusionModel

    model = DiffusionModel(config)
    model.compile()
    if state:
        _build_optimizer(model)  # so that its saved variables can be loaded
        load_weights_into(model, out / "last")
        _use_config_learning_rate(model)
        _restore_seed_state(model, state.get("seed_state"))
        _advance_epochs(train_data, int(state["epoch"]))
        say(f"Resuming from {out / 'last'} after epoch {state['epoch']} "
            f"(optimizer step {state.get('optimizer_iterations')}); training to epoch {epochs}.")
        return model
    if out is not None and checkpoint_exists(out / "last"):
        say(f"Note: {out / 'last'} holds a checkpoint of an earlier run; this new run overwrites it "
            "(pass resume=True to continue that run instead).")
    if initial_model is not None:
        _copy_trained_state(initial_model, model)
    else:
        model.adapt_normalizer(train_data)
    return model


def _checkpoint_callback(out: Path | None, monitor: str, epochs: int, best_state: dict[str, Any],
                         extra_state: dict[str, Any]) -> CheckpointCallback | None:
    if out is None:
        return None
    same_monitor = best_state.get("monitor") == monitor
    return CheckpointCallback(out, monitor=monitor, extra_state=extra_state,
                              best_value=best_state.get("monitor_value") if same_monitor else None,
                              best_epoch=best_state.get("epoch") if same_monitor else None,
                              total_epochs=epochs)


def _output_callbacks(out: Path | None, config: DDIMConfig, resume: bool, initial_epoch: int,
                      checkpoint_callback: CheckpointCallback | None) -> list[keras.callbacks.Callback]:
    """The CSV history, the per-epoch sample grids and the checkpoints, when there is a folder."""
    if out is None:
        return []
    history_path = out / HISTORY_FILE
    if resume:
        _truncate_history(history_path, initial_epoch)
    out.mkdir(parents=True, exist_ok=True)
    return [keras.callbacks.CSVLogger(str(history_path), append=resume),
            SampleGridCallback(out / SAMPLES_DIR, seed=config.seed or 0), checkpoint_callback]


def _report_done(checkpoint_callback: CheckpointCallback | None, monitor: str, say: Any) -> None:
    if checkpoint_callback is None:
        return
    best = (f"; best ({monitor}={checkpoint_callback.best_value:.4g}, epoch {checkpoint_callback.best_epoch}): "
            f"{checkpoint_callback.best_dir}" if checkpoint_callback.best_value is not None else "")
    say(f"Done: last checkpoint (epoch {checkpoint_callback.last_epoch}): {checkpoint_callback.last_dir}{best}.")


def _check_classes(config: DDIMConfig, data_dir: Any, source: str) -> list[str]:
    """The data's class names; their number must be ``config.num_classes``."""
    from ddim_tutorial.data.datasets import class_names

    names = class_names(config, data_dir=data_dir, source=source)
    if len(names) != config.num_classes:
        raise ValueError(f"DDIMConfig.num_classes={config.num_classes} but the data has {len(names)} classes "
                         f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}): use "
                         f"config.replace(num_classes={len(names)}).")
    if config.class_names and list(config.class_names) != names:
        raise ValueError(f"DDIMConfig.class_names {list(config.class_names)[:5]}... are not the data's classes "
                         f"{names[:5]}...: the labels would mean other classes; train on the same data or drop "
                         "class_names (config.replace(class_names=())).")
    return names


def _check_same_architecture(config: DDIMConfig, initial_model: Any) -> None:
    start = getattr(initial_model, "config", None)
    if not isinstance(start, DDIMConfig):
        raise ValueError(f"initial_model of type {type(initial_model).__name__} is invalid: pass a trained "
                         "DiffusionModel, e.g. pretrained.load('flowers32').")
    # An unconditional model may become a class-conditional one: every layer but the class
    # embedding is shared, and that one starts at zero (the labels are learnt from there).
    fields = tuple(name for name in ARCHITECTURE_FIELDS if not (name == "num_classes" and start.num_classes == 0))
    listed = listed_differences(start, config, fields, names=("initial model", "config"))
    if listed:
        raise ValueError(f"initial_model does not fit the config; architecture fields that differ: {listed}. "
                         "Start from initial_model.config.replace(...) changing only training fields.")


def _copy_trained_state(source: Any, target: Any) -> None:
    """Weights, EMA weights and normalizer statistics of ``source`` into the fresh ``target``.

    Layer by layer, by name: a class-conditional ``target`` keeps its own (zero) class
    embedding, which an unconditional ``source`` does not have.
    """
    for group in ("network", "ema_network"):
        target_network = getattr(target, group)
        for layer in getattr(source, group).layers:
            if layer.weights:
                target_network.get_layer(layer.name).set_weights(layer.get_weights())
    target.set_normalizer(source.normalizer.adapt_mean, source.normalizer.adapt_variance)


def _resume_state(config: DDIMConfig, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training states of ``out/last`` and ``out/best``, after checking the config fits."""
    last = out / "last"
    if not checkpoint_exists(last):
        raise CheckpointError(f"cannot resume: {str(last)!r} holds no complete checkpoint (no epoch of a run "
                              f"with out={str(out)!r} finished). Train without resume to start afresh.")
    listed = listed_differences(read_checkpoint_config(last), config)
    if listed:
        raise CheckpointError(f"cannot resume {str(last)!r} with this config; architecture fields that differ: "
                              f"{listed}. Resume with the checkpoint's own config or train into another folder.")
    state = read_training_state(last)
    if not isinstance(state.get("epoch"), int) or state["epoch"] < 0:
        raise CheckpointError(f"cannot resume: {str(last)!r} has no training state ({last.name}/"
                              "training_state.json with the epoch); it was not written by train().")
    best_state = read_training_state(out / "best") if checkpoint_exists(out / "best") else {}
    return state, best_state


def _build_optimizer(model: Any) -> None:
    """Create the optimizer's variables (inside the data-parallel scope, if any) before loading them."""
    from ddim_tutorial.runtime.distribution import current_setup

    setup = current_setup()
    with setup.scope() if setup is not None else contextlib.nullcontext():
        model.optimizer.build(model.trainable_variables)


def _use_config_learning_rate(model: Any) -> None:
    """The optimizer's saved learning rate came back with its state; the config's (maybe lowered) one wins."""
    optimizer = model.optimizer
    if isinstance(getattr(optimizer, "_learning_rate", None), keras.Variable):
        optimizer.learning_rate = model.config.learning_rate


def _restore_seed_state(model: Any, seed_state: Any) -> None:
    """Continue the model's noise stream where the checkpoint left it, not from its start."""
    generator = getattr(model, "seed_generator", None)
    if generator is None or not isinstance(seed_state, list) or len(seed_state) != int(generator.state.shape[0]):
        return
    generator.state.assign(keras.ops.convert_to_tensor(seed_state, dtype=generator.state.dtype))


def _advance_epochs(dataset: Any, epochs: int) -> None:
    """Let NumPy batches draw the shuffle order of epoch ``epochs`` (tf.data reseeds globally)."""
    if isinstance(dataset, keras.utils.PyDataset):
        for _ in range(epochs):
            dataset.on_epoch_end()


def _truncate_history(path: Path, completed_epochs: int) -> None:
    """Drop CSV rows of epochs after the checkpoint (their weights were lost with the crash)."""
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and row[0].strip().isdigit() and int(row[0]) < completed_epochs]
    if len(kept) == len(body):
        return
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([header, *kept])
    os.replace(tmp, path)


class _FirstBatches(keras.utils.PyDataset):
    """The first ``limit`` batches of a PyDataset, every epoch."""

    def __init__(self, dataset: keras.utils.PyDataset, limit: int) -> None:
        super().__init__()
        self.dataset, self.limit = dataset, limit

    def __len__(self) -> int:
        return min(self.limit, len(self.dataset))

    def __getitem__(self, index: int) -> Any:
        if index >= len(self):
            raise IndexError(f"batch index {index} is out of range for {len(self)} batches")
        return self.dataset[index]

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()


def _limit_batches(dataset: Any, limit: int | None) -> Any:
    if limit is None:
        return dataset
    if hasattr(dataset, "take") and hasattr(dataset, "as_numpy_iterator"):  # tf.data
        from ddim_tutorial.data.datasets import for_partial_reading

        # A cache read part-way is discarded with a TensorFlow warning: cap the uncached pipeline.
        return for_partial_reading(dataset).take(limit)
    if isinstance(dataset, keras.utils.PyDataset):
        return _FirstBatches(dataset, limit)
    raise ValueError(f"max_train_batches cannot limit a dataset of type {type(dataset).__name__}.")
