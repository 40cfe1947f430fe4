"""lesson.py: which model lessons 05-07 open, what lesson 04 trains here, and fine-tuning a bundled model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ddim_tutorial import lesson, pretrained
from ddim_tutorial.config import DDIMConfig


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (lesson.FAST_ENV_VAR, lesson.DATA_ENV_VAR, lesson.CHECKPOINT_ENV_VAR, lesson.LONG_TRAINING_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    import ddim_tutorial.training as training

    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("opening a model must never train"))
    return monkeypatch


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory):
    from ddim_tutorial import DiffusionModel, save_checkpoint
    from ddim_tutorial.synthetic import synthetic_flowers

    model = DiffusionModel(DDIMConfig.preset("smoke"))
    model.adapt_normalizer(synthetic_flowers(16, 32))
    return save_checkpoint(model, tmp_path_factory.mktemp("checkpoints") / "smoke",
                           training_state={"epoch": 2, "optimizer_iterations": 10})


def test_without_any_checkpoint_the_bundled_model_of_the_mode_opens(clean_env, capsys):
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    model = lesson.get_trained_model()
    out = capsys.readouterr().out
    assert getattr(model, "bundled_name", None) == "flowers32"
    assert "bundled model 'flowers32'" in out and pretrained.card("flowers32")["summary"] in out
    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    name, why = pretrained.default_name(fast=False)
    model = lesson.get_trained_model()
    assert model.bundled_name == name
    if why:
        assert why in capsys.readouterr().out


def test_order_is_argument_environment_lesson_04_then_bundled(clean_env, smoke_checkpoint, capsys):
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    scratch = lesson.run_dir() / "best"
    shutil.copytree(smoke_checkpoint, scratch)
    model = lesson.get_trained_model()
    assert not hasattr(model, "bundled_name") and model.config == DDIMConfig.preset("smoke")
    out = capsys.readouterr().out
    assert f"Opened {scratch}, lesson 04's run" in out and "160 images" in out

    finetuned = lesson.run_dir() / lesson.FINETUNED_DIR / "last"
    shutil.copytree(smoke_checkpoint, finetuned)
    assert lesson.find_checkpoint() == finetuned, "the fine-tuned bundled model comes before the scratch run"

    clean_env.setenv(lesson.CHECKPOINT_ENV_VAR, str(smoke_checkpoint))
    lesson.get_trained_model()
    assert "from $DDIM_CHECKPOINT" in capsys.readouterr().out
    lesson.get_trained_model(smoke_checkpoint)
    assert "from the checkpoint argument" in capsys.readouterr().out

    from ddim_tutorial.checkpoints import CheckpointError

    clean_env.setenv(lesson.CHECKPOINT_ENV_VAR, "no/such/folder")
    with pytest.raises(CheckpointError, match="does not exist"):
        lesson.get_trained_model()


def test_damaged_lesson_04_run_falls_back_to_the_bundled_model(clean_env, smoke_checkpoint, capsys):
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    target = lesson.run_dir() / "last"
    shutil.copytree(smoke_checkpoint, target)
    (target / "model.weights.h5").write_bytes(b"damaged")
    model = lesson.get_trained_model()
    assert model.bundled_name == "flowers32"
    assert "Could not open" in capsys.readouterr().out


def test_training_plan_per_mode_and_machine(clean_env):
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    plan = lesson.training_plan()
    assert plan.config == lesson.lesson_config() and plan.epochs == 2 and plan.max_train_batches is None

    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    clean_env.setattr(lesson, "accelerator_available", lambda: False)
    plan = lesson.training_plan()
    assert plan.config.image_size == 32 and plan.max_train_batches is not None
    assert "No GPU" in plan.reason and lesson.LONG_TRAINING_ENV_VAR in plan.reason
    assert plan.reason.count(";") == 1 and plan.reason.endswith(".")
    assert lesson.training_plan(long=True).config == DDIMConfig.preset("workshop")
    clean_env.setenv(lesson.LONG_TRAINING_ENV_VAR, "1")
    assert lesson.training_plan().config == DDIMConfig.preset("workshop")

    clean_env.delenv(lesson.LONG_TRAINING_ENV_VAR)
    clean_env.setattr(lesson, "accelerator_available", lambda: True)
    plan = lesson.training_plan()
    assert plan.config == DDIMConfig.preset("workshop") and plan.epochs == 5


def test_train_lesson_model_follows_the_plan(clean_env):
    calls = []
    import ddim_tutorial.training as training

    clean_env.setattr(training, "train", lambda config, **kwargs: calls.append((config, kwargs)) or ("m", "h"))
    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    clean_env.setattr(lesson, "accelerator_available", lambda: False)
    lesson.train_lesson_model()
    config, kwargs = calls[-1]
    plan = lesson.training_plan()
    assert config == plan.config and kwargs["epochs"] == plan.epochs
    assert kwargs["max_train_batches"] == plan.max_train_batches
    lesson.train_lesson_model(plan.config.replace(loss="mse"), out="runs/mse", epochs=1)
    assert calls[-1][0].loss == "mse" and calls[-1][1]["epochs"] == 1


def test_finetune_starts_from_the_bundled_weights(monkeypatch, tmp_path, flowers12_dir):
    for name in (lesson.CHECKPOINT_ENV_VAR, lesson.LONG_TRAINING_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(lesson.FAST_ENV_VAR, "1")
    monkeypatch.setenv(lesson.DATA_ENV_VAR, str(flowers12_dir))
    bundled = pretrained.load("flowers32")
    model, history = lesson.finetune_bundled(max_train_batches=2, verbose=0)
    assert len(history.epoch) == 1 and model.config.learning_rate == 2e-4
    assert lesson.find_checkpoint() == lesson.run_dir() / lesson.FINETUNED_DIR / "best"
    # Two steps with EMA 0.999 move the EMA weights by far less than a fresh network differs.
    before = np.concatenate([np.ravel(w) for w in bundled.ema_network.get_weights()])
    after = np.concatenate([np.ravel(w) for w in model.ema_network.get_weights()])
    assert np.abs(after - before).max() < 0.01
    np.testing.assert_allclose(np.asarray(model.normalizer.mean), np.asarray(bundled.normalizer.mean))


def test_training_from_an_initial_model_checks_the_architecture(tmp_path):
    from ddim_tutorial.training import train

    bundled = pretrained.load("flowers32")
    with pytest.raises(ValueError, match="widths"):
        train(DDIMConfig.preset("smoke"), initial_model=bundled, out=tmp_path, source="synthetic")
    with pytest.raises(ValueError, match="contradict"):
        train(bundled.config, initial_model=bundled, out=tmp_path, resume=True)
