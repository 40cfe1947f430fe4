"""train(): outputs, resume, NaN guard and clean stops (in-process and a real CLI subprocess)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.training.callbacks import NaNGuard, NonFiniteLossError
from ddim_tutorial.training.checkpoints import CheckpointError, load_checkpoint, read_training_state
from ddim_tutorial.training.driver import train
from ddim_tutorial.training.interrupts import TrainingInterrupted

REPO = Path(__file__).resolve().parents[2]
BATCHES = 2  # per epoch, for the in-process runs


def tiny_config(**overrides) -> DDIMConfig:
    settings = dict(image_size=16, widths=(8, 16), block_depth=1, embedding_dims=8, batch_size=4,
                    plot_diffusion_steps=2, kid_diffusion_steps=2, dataset_repetitions=1, validation_kid=False,
                    kid_weights=None, seed=0, jit_compile=False, num_epochs=2)
    settings.update(overrides)
    return DDIMConfig(**settings)


def history_epochs(out: Path) -> list[int]:
    with open(out / "history.csv", newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 2-epoch run; tests that change it work on a copy."""
    out = tmp_path_factory.mktemp("run") / "out"
    model, history = train(tiny_config(), source="synthetic", out=out, max_train_batches=BATCHES, verbose=0)
    return out, model, history


def copy_run(run, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(run[0], out)
    return out


def test_train_writes_samples_history_and_checkpoints(run):
    out, model, history = run
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert history_epochs(out) == [0, 1]
    assert set(history.history) >= {"n_loss", "i_loss", "val_n_loss", "val_i_loss"}
    state = read_training_state(out / "last")
    assert state["epoch"] == 2 and state["optimizer_iterations"] == 2 * BATCHES
    assert state["monitor"] == "val_n_loss"
    best = read_training_state(out / "best")
    assert best["monitor_value"] == min(history.history["val_n_loss"])
    assert best["epoch"] == 1 + int(np.argmin(history.history["val_n_loss"]))
    loaded = load_checkpoint(out / "last")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.normalizer.mean),
                               keras.ops.convert_to_numpy(model.normalizer.mean), atol=1e-7)


def test_resume_with_a_lower_learning_rate_is_allowed_but_not_another_architecture(run, tmp_path):
    out = copy_run(run, tmp_path)
    with pytest.raises(CheckpointError, match=r"widths: checkpoint \(8, 16\) vs requested \(8, 24\)"):
        train(tiny_config(widths=(8, 24)), source="synthetic", out=out, resume=True, epochs=3, verbose=0)
    model, history = train(tiny_config(learning_rate=1e-4), source="synthetic", out=out, resume=True, epochs=2,
                           verbose=0)  # already 2 epochs: nothing to train, the checkpoint is returned
    assert history.history == {}
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2 * BATCHES


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(tiny_config(), source="synthetic", out=tmp_path / "empty", resume=True, verbose=0)
    with pytest.raises(ValueError, match="resume=True needs out"):
        train(tiny_config(), source="synthetic", resume=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs=0 is invalid"),
    (dict(max_train_batches=-2), "max_train_batches=-2 is invalid"),
    (dict(source="imagenet"), "source='imagenet' is invalid"),
])
def test_train_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(tiny_config(), **{"source": "synthetic", "verbose": 0, **kwargs})


def test_huge_learning_rate_stops_with_advice_and_keeps_the_checkpoint(run, tmp_path):
    out = copy_run(run, tmp_path)
    before = folder_digest(out / "last")
    with pytest.raises(NonFiniteLossError) as error:
        train(tiny_config(learning_rate=1e30), source="synthetic", out=out, resume=True, epochs=3,
              max_train_batches=4, validation=False, verbose=0)
    message = str(error.value)
    assert "training stopped at epoch 3" in message and "nan" in message.lower()
    assert "lower learning_rate (now 1e+30" in message and "float32" in message
    assert folder_digest(out / "last") == before


def test_nan_guard_names_epoch_and_batch_and_the_fixes():
    model = DiffusionModel(tiny_config(mixed_precision="mixed_float16"))
    guard = NaNGuard()
    guard.set_model(model)
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"n_loss": 0.5, "i_loss": 0.7})
    with pytest.raises(NonFiniteLossError) as error:
        guard.on_train_batch_end(6, {"n_loss": np.float32("inf"), "i_loss": np.float32("nan")})
    assert str(error.value) == (
        "training stopped at epoch 5, batch 7: the loss n_loss became inf. The last good checkpoint is "
        "untouched. To fix it, lower learning_rate (now 0.001; try 0.0001), check the training images for NaN "
        "or Inf values, or train in float32 instead of mixed_float16 (mixed_precision=None).")


def test_nan_guard_checks_the_weights_before_the_epoch_is_saved():
    model = DiffusionModel(tiny_config())
    weight = model.network.weights[0]
    weight.assign(np.full(weight.shape, np.nan, dtype="float32"))
    guard = NaNGuard()
    guard.set_model(model)
    with pytest.raises(NonFiniteLossError, match="at the end of epoch 2: the weight .* became NaN or Inf"):
        guard.on_epoch_end(1, {"n_loss": 0.5})


class SignalAt(keras.callbacks.Callback):
    """Send ``signal_number`` to this very process after a given batch of a given epoch."""

    def __init__(self, signal_number, epoch, batch):
        super().__init__()
        self.signal_number, self.epoch, self.batch, self._epoch = signal_number, epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self._epoch, batch) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.signal_number)


def test_sigint_stops_cleanly_then_resume_continues_epochs_optimizer_and_history(run, tmp_path):
    out = copy_run(run, tmp_path)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        train(tiny_config(), source="synthetic", out=out, resume=True, epochs=4, max_train_batches=BATCHES,
              validation=False, callbacks=[SignalAt(signal.SIGINT, epoch=3, batch=0)], verbose=0)
    assert stop.value.exit_code == 130
    assert "SIGINT at epoch 4, batch 2" in str(stop.value)
    assert stop.value.epoch == 3 and stop.value.checkpoint == out / "last"
    assert f"--out {out} --resume" in str(stop.value)
    assert read_training_state(out / "last")["epoch"] == 3  # epoch 3 done; epoch 4 abandoned
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back
    assert history_epochs(out) == [0, 1, 2]

    with open(out / "history.csv", "a") as file:  # as if killed after the CSV row, before the checkpoint
        file.write("3,9,9\n")
    model, history = train(tiny_config(), source="synthetic", out=out, resume=True, epochs=4,
                           max_train_batches=BATCHES, validation=False, verbose=0)
    assert history.epoch == [3]  # only the missing epoch was trained
    assert history_epochs(out) == [0, 1, 2, 3]  # the stale row was replaced
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4 * BATCHES
    assert read_training_state(out / "last")["epoch"] == 4
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3, 4)]


# ------------------------------------------------------------------- real processes
def wait_for_epoch(out: Path, process: subprocess.Popen, minimum: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            epoch = read_training_state(out / "last").get("epoch", 0)
        except (CheckpointError, OSError):  # caught between the renames of a save
            epoch = 0
        if epoch >= minimum:
            return epoch
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    output = process.communicate()[0]
    pytest.fail(f"no epoch {minimum} checkpoint in {timeout:.0f} s; output:\n{output[-3000:]}")


def launch(args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "KERAS_BACKEND": keras.backend.backend(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ddim_tutorial", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_cli_survives_sigterm_and_kill_9_then_resumes_to_the_end(tmp_path):
    out = tmp_path / "run"
    steps = 200  # long enough epochs that a signal lands mid-epoch
    tiny = ["image_size=16", "widths=[8,16]", "block_depth=1", "embedding_dims=8", "batch_size=4",
            "plot_diffusion_steps=2", "jit_compile=false", "dataset_repetitions=1"]
    first = launch(["train", "--preset", "smoke", "--source", "synthetic", "--out", str(out), "--epochs", "3",
                    "--steps-per-epoch", str(steps), "--no-validation", "--verbose", "0", "--set", *tiny], tmp_path)
    wait_for_epoch(out, first, 1, timeout=400)
    time.sleep(0.5)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=180)[0]
    assert first.returncode == 143, output
    epoch = read_training_state(out / "last")["epoch"]
    assert epoch < 3, output
    assert f"The last complete epoch ({epoch}) is saved in {out / 'last'}" in output
    assert "--resume" in output and "SIGTERM at epoch" in output
    load_checkpoint(out / "last")  # loadable

    second = launch(["train", "--out", str(out), "--resume", "--verbose", "0"], tmp_path)
    killed_after = wait_for_epoch(out, second, epoch + 1, timeout=400)
    time.sleep(0.5)
    second.kill()  # SIGKILL: no handler runs
    second.communicate(timeout=60)
    assert second.returncode == -signal.SIGKILL
    state = read_training_state(out / "last")
    assert state["epoch"] >= killed_after
    load_checkpoint(out / "last")  # still loadable after kill -9

    if state["epoch"] < 3:
        third = launch(["train", "--out", str(out), "--resume", "--verbose", "0"], tmp_path)
        output = third.communicate(timeout=400)[0]
        assert third.returncode == 0, output
    state = read_training_state(out / "last")
    assert state["epoch"] == 3
    assert state["optimizer_iterations"] == 3 * steps  # the optimizer continued, never restarted
    assert history_epochs(out) == [0, 1, 2]
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3)]
    assert json.loads((out / "last" / "config.json").read_text())["num_epochs"] == 3


# ------------------------------------------------------------------- the price said first
def test_train_says_what_it_trains_and_how_long_before_it_starts(tmp_path, capsys):
    import ddim_tutorial.training.driver as training

    calls = []
    real_fit = DiffusionModel.fit

    def fit(self, *args, **kwargs):
        calls.append(capsys.readouterr().out)  # what was printed before fit started
        return real_fit(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DiffusionModel, "fit", fit)
        train(tiny_config(num_epochs=3), source="synthetic", out=tmp_path / "out", max_train_batches=BATCHES,
              verbose=1)
    said = calls[0]
    assert f"3 epoch(s) of {BATCHES} batches of 4 images ({3 * BATCHES} steps, {3 * BATCHES * 4} images)" in said
    assert "16x16 network, widths 8/16" in said and "Estimated time on this machine: about" in said
    assert training.GRID_IMAGES == 18


def test_the_estimate_adds_steps_validation_and_grids():
    from ddim_tutorial.training.driver import STARTUP_SECONDS, TRAIN_STEP_FORWARDS, estimate_seconds

    base = dict(epochs=2, train_batches=10, validation_batches=3, grid_images=18, grid_steps=20, batch_size=32)
    seconds = estimate_seconds(0.5, **base)
    per_epoch = 10 * TRAIN_STEP_FORWARDS * 0.5 + 3 * 0.5 + 18 * 20 * 0.5 / 32
    assert seconds == pytest.approx(STARTUP_SECONDS + 2 * per_epoch)
    assert estimate_seconds(1.0, **base) - STARTUP_SECONDS == pytest.approx(2 * (seconds - STARTUP_SECONDS))
    assert estimate_seconds(0.5, **{**base, "epochs": 4}) > seconds
    assert estimate_seconds(0.5, **base, guided=True) > seconds, "a guided grid runs the network twice"


def test_batches_per_epoch_of_each_kind_of_data():
    tf = pytest.importorskip("tensorflow")

    from ddim_tutorial.data.datasets import ArrayBatches
    from ddim_tutorial.training.driver import batches_per_epoch

    images = np.zeros((10, 4, 4, 3), "float32")
    assert batches_per_epoch(ArrayBatches(images, 4, repetitions=2)) == 5
    assert batches_per_epoch(tf.data.Dataset.from_tensor_slices(images).batch(4, drop_remainder=True)) == 2
    assert batches_per_epoch(tf.data.Dataset.from_tensor_slices(images).filter(lambda x: True).batch(4)) is None
    assert batches_per_epoch(None) == 0


def test_generate_can_sample_with_the_trained_weights_instead_of_the_average(run):
    _, model, _ = run
    noise = model.initial_noise(2, seed=0)
    ema = keras.ops.convert_to_numpy(model.generate(2, 3, initial_noise=noise))
    raw = keras.ops.convert_to_numpy(model.generate(2, 3, initial_noise=noise, use_ema=False))
    assert np.abs(ema - raw).max() > 1e-3, "after training the two networks differ"
    saved = model.ema_network.get_weights()
    try:
        model.ema_network.set_weights(model.network.get_weights())
        same = keras.ops.convert_to_numpy(model.generate(2, 3, initial_noise=noise))
    finally:
        model.ema_network.set_weights(saved)
    np.testing.assert_allclose(same, raw, atol=1e-4)
