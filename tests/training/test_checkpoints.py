"""Checkpoints: round trip, config mismatches, damaged files and crash safety of the save."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.data.synthetic import synthetic_flowers
from ddim_tutorial.training import checkpoints
from ddim_tutorial.training.checkpoints import (
    CONFIG_FILE,
    TRAINING_STATE_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    load_checkpoint,
    load_weights_into,
    read_training_state,
    save_checkpoint,
)


def tiny_config(**overrides) -> DDIMConfig:
    settings = dict(image_size=16, widths=(8, 16), block_depth=1, embedding_dims=8, batch_size=4,
                    plot_diffusion_steps=2, kid_diffusion_steps=2, dataset_repetitions=1, validation_kid=False,
                    kid_weights=None, seed=0, jit_compile=False)
    settings.update(overrides)
    return DDIMConfig(**settings)


def make_model(config: DDIMConfig | None = None, *, seed: int = 0) -> DiffusionModel:
    """An adapted, compiled model whose EMA differs from its network and whose optimizer has run."""
    keras.utils.set_random_seed(seed)
    model = DiffusionModel(config or tiny_config())
    model.adapt_normalizer(synthetic_flowers(8, model.config.image_size, seed=seed))
    model.compile()
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(7)
    rng = np.random.default_rng(seed)
    for weight in model.ema_network.weights:  # make the EMA weights distinguishable
        weight.assign(keras.ops.convert_to_numpy(weight) + rng.normal(0, 0.01, weight.shape).astype("float32"))
    return model


def samples(model: DiffusionModel) -> np.ndarray:
    noise = np.random.default_rng(1).standard_normal((2, model.config.image_size, model.config.image_size, 3))
    return keras.ops.convert_to_numpy(model.generate(2, 2, initial_noise=noise.astype("float32"), compiled=False))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = make_model()
    directory = tmp_path_factory.mktemp("ckpt") / "last"
    save_checkpoint(model, directory, training_state={"epoch": 3})
    return model, directory


def test_round_trip_gives_the_same_samples(saved):
    model, directory = saved
    loaded = load_checkpoint(directory)
    np.testing.assert_allclose(samples(loaded), samples(model), atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.normalizer.mean),
                               keras.ops.convert_to_numpy(model.normalizer.mean), atol=1e-7)
    assert loaded.config == model.config
    assert read_training_state(directory) == {"epoch": 3}


def test_round_trip_restores_ema_and_optimizer_for_resuming(saved):
    model, directory = saved
    target = DiffusionModel(tiny_config())
    target.compile()
    target.optimizer.build(target.trainable_variables)
    load_weights_into(target, directory)
    assert int(keras.ops.convert_to_numpy(target.optimizer.iterations)) == 7
    for restored, original in zip(target.ema_network.weights, model.ema_network.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), keras.ops.convert_to_numpy(original))


def test_checkpoint_records_backend_and_versions(saved):
    _, directory = saved
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["backend"] == keras.backend.backend()
    assert metadata["keras_version"] == keras.__version__


def test_config_mismatch_names_every_differing_field(saved):
    _, directory = saved
    other = tiny_config(widths=(8, 32), learning_rate=5e-4)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(directory, other)
    message = str(error.value)
    assert "widths: checkpoint (8, 16) vs requested (8, 32)" in message
    assert "learning_rate: checkpoint 0.001 vs requested 0.0005" in message
    assert "image_size" not in message  # only the fields that differ


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_training_folder_instead_of_checkpoint_suggests_last_or_best(tmp_path, saved):
    _, directory = saved
    (tmp_path / "last").mkdir()
    with pytest.raises(CheckpointError, match="training folder"):
        load_checkpoint(tmp_path)


def test_missing_weights_file(tmp_path, saved):
    _, directory = saved
    copy = tmp_path / "ckpt"
    copy.mkdir()
    (copy / CONFIG_FILE).write_text((directory / CONFIG_FILE).read_text())
    with pytest.raises(CheckpointError, match=f"no {WEIGHTS_FILE}"):
        load_checkpoint(copy)


def test_truncated_weights_file(tmp_path, saved):
    _, directory = saved
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (copy / name).write_bytes((directory / name).read_bytes())
    data = (copy / WEIGHTS_FILE).read_bytes()
    (copy / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        load_checkpoint(copy)


def test_weights_of_another_architecture(tmp_path, saved):
    _, directory = saved
    copy = tmp_path / "ckpt"
    copy.mkdir()
    (copy / WEIGHTS_FILE).write_bytes((directory / WEIGHTS_FILE).read_bytes())
    (copy / CONFIG_FILE).write_text(tiny_config(widths=(8, 24)).to_json())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about each layer it cannot match
        with pytest.raises(CheckpointError, match="do not fit the config"):
            load_checkpoint(copy)


def test_damaged_config_file(tmp_path, saved):
    _, directory = saved
    copy = tmp_path / "ckpt"
    copy.mkdir()
    (copy / CONFIG_FILE).write_text('{"image_size": -3}')
    with pytest.raises(CheckpointError, match="damaged or from an incompatible version"):
        load_checkpoint(copy)


def test_crash_during_weights_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    first, second = make_model(seed=0), make_model(seed=1)
    directory = tmp_path / "last"
    save_checkpoint(first, directory)
    expected = samples(first)

    def crash(filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"\x89HDF\r\n half a file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(second, "save_weights", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(second, directory)
    np.testing.assert_allclose(samples(load_checkpoint(directory)), expected, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no half-written folder left


def test_crash_between_the_two_renames_is_recovered(tmp_path, monkeypatch):
    first, second = make_model(seed=0), make_model(seed=1)
    directory = tmp_path / "last"
    save_checkpoint(first, directory)
    expected = samples(first)
    real_rename = os.rename
    calls = []

    def rename(source, target):
        calls.append(target)
        if len(calls) == 2:  # the old folder is already moved aside: die before the new one lands
            raise KeyboardInterrupt("killed (simulated)")
        real_rename(source, target)

    monkeypatch.setattr(checkpoints.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(second, directory)
    monkeypatch.setattr(checkpoints.os, "rename", real_rename)
    assert not directory.exists()
    np.testing.assert_allclose(samples(load_checkpoint(directory)), expected, atol=1e-6)
    assert directory.is_dir()  # renamed back into place


def test_save_replaces_an_older_checkpoint(tmp_path):
    first, second = make_model(seed=0), make_model(seed=1)
    directory = tmp_path / "last"
    save_checkpoint(first, directory, training_state={"epoch": 1})
    save_checkpoint(second, directory, training_state={"epoch": 2})
    assert read_training_state(directory)["epoch"] == 2
    np.testing.assert_allclose(samples(load_checkpoint(directory)), samples(second), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_save_never_deletes_foreign_files(tmp_path, saved):
    model, _ = saved
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="holds other files"):
        save_checkpoint(model, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_save_needs_an_adapted_normalizer(tmp_path):
    with pytest.raises(CheckpointError, match="never adapted"):
        save_checkpoint(DiffusionModel(tiny_config()), tmp_path / "ckpt")


class FakeKID(keras.metrics.Metric):
    """Stands in for the KID metric: a metric that owns a large, never-trained encoder."""

    def __init__(self):
        super().__init__(name="kid")
        self.encoder = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4096)])
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, *args, **kwargs):
        pass

    def result(self):
        return self.total


def test_kid_encoder_is_not_saved_and_not_needed_to_load(tmp_path):
    model = make_model()
    reference = tmp_path / "without"
    save_checkpoint(model, reference)
    object.__setattr__(model, "kid", FakeKID())  # what DiffusionModel does when validation_kid=True
    model.config = model.config.replace(validation_kid=True)
    save_checkpoint(model, tmp_path / "ckpt")
    # the 1 MB encoder would dominate the file; it is left out
    size, reference_size = ((d / WEIGHTS_FILE).stat().st_size for d in (tmp_path / "ckpt", reference))
    assert size < reference_size + 100_000
    assert model.kid is not None  # put back after the save
    loaded = load_checkpoint(tmp_path / "ckpt")  # does not build KID (no InceptionV3 weights needed)
    assert loaded.kid is None and loaded.config.validation_kid is False
    np.testing.assert_allclose(samples(loaded), samples(model), atol=1e-6)


def test_training_state_damaged(tmp_path, saved):
    _, directory = saved
    (tmp_path / TRAINING_STATE_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        read_training_state(tmp_path)
