"""lesson.py: which model lessons 05-07 open, what lesson 04 trains here, and fine-tuning a bundled model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.pretrained import presets as pretrained
from ddim_tutorial.teaching import lesson


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (lesson.FAST_ENV_VAR, lesson.DATA_ENV_VAR, lesson.CHECKPOINT_ENV_VAR, lesson.LONG_TRAINING_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    import ddim_tutorial.training.driver as training

    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("opening a model must never train"))
    return monkeypatch


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory):
    from ddim_tutorial import DiffusionModel, save_checkpoint
    from ddim_tutorial.data.synthetic import synthetic_flowers

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

    from ddim_tutorial.training.checkpoints import CheckpointError

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
    import ddim_tutorial.training.driver as training

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


def test_finetune_starts_from_the_bundled_weights(monkeypatch, tmp_path, flowers12_dir, capsys):
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
    from ddim_tutorial.training.checkpoints import read_training_state

    assert read_training_state(lesson.find_checkpoint())["started_from"] == "flowers32"
    lesson.get_trained_model()
    assert "the bundled flowers32 fine-tuned for 1 more epoch(s), 64 more images" in capsys.readouterr().out


def test_training_from_an_initial_model_checks_the_architecture(tmp_path):
    from ddim_tutorial.training.driver import train

    bundled = pretrained.load("flowers32")
    with pytest.raises(ValueError, match="widths"):
        train(DDIMConfig.preset("smoke"), initial_model=bundled, out=tmp_path, source="synthetic")
    with pytest.raises(ValueError, match="contradict"):
        train(bundled.config, initial_model=bundled, out=tmp_path, resume=True)


# ------------------------------------------------------- long work only on request
def _recording_train(monkeypatch):
    """Replace training.train by a recorder: what each lesson helper asks to train."""
    import ddim_tutorial.training.driver as training

    calls = []
    monkeypatch.setattr(training, "train", lambda config, **kwargs: calls.append((config, kwargs)) or ("m", "h"))
    return calls


def test_without_a_gpu_fine_tuning_is_capped_unless_asked_for(clean_env, capsys):
    calls = _recording_train(clean_env)
    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    clean_env.setattr(lesson, "accelerator_available", lambda: False)
    lesson.finetune_bundled()
    config, kwargs = calls[-1]
    assert config.image_size == 64, "full mode fine-tunes flowers64"
    assert kwargs["max_train_batches"] == lesson.SHORT_FINETUNE_BATCHES
    assert lesson.LONG_TRAINING_ENV_VAR in capsys.readouterr().out, "the capped run says how to ask for more"
    lesson.finetune_bundled(long=True)
    assert calls[-1][1]["max_train_batches"] is None, "long=True trains whole epochs"
    clean_env.setenv(lesson.LONG_TRAINING_ENV_VAR, "1")
    lesson.finetune_bundled()
    assert calls[-1][1]["max_train_batches"] is None
    clean_env.delenv(lesson.LONG_TRAINING_ENV_VAR)
    clean_env.setattr(lesson, "accelerator_available", lambda: True)
    lesson.finetune_bundled()
    assert calls[-1][1]["max_train_batches"] is None, "a GPU trains whole epochs"


def test_without_a_gpu_lesson_08_teaches_the_labels_to_the_32x32_model(clean_env, flowers12_dir):
    calls = _recording_train(clean_env)
    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    clean_env.setenv(lesson.DATA_ENV_VAR, str(flowers12_dir))
    clean_env.setattr(lesson, "accelerator_available", lambda: False)
    lesson.train_guidance_model()
    config, kwargs = calls[-1]
    assert (config.image_size, config.num_classes) == (32, 12)
    assert kwargs["epochs"] == 2 and kwargs["max_train_batches"] == lesson.GUIDANCE_CPU_BATCHES
    lesson.train_guidance_model(long=True)
    config, kwargs = calls[-1]
    assert config.image_size == 64 and kwargs["epochs"] == 5 and "max_train_batches" not in kwargs


def test_the_cpu_run_of_lesson_04_has_an_ema_sized_to_its_steps(clean_env):
    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    clean_env.setattr(lesson, "accelerator_available", lambda: False)
    plan = lesson.training_plan()
    steps = plan.epochs * plan.max_train_batches
    untrained_share = plan.config.ema ** steps
    assert 1e-4 < untrained_share < 0.01, "the untrained start must be averaged away, yet the EMA must average"
    assert DDIMConfig.preset("workshop").ema ** steps > 0.8, "what the reference's EMA would keep of it"


def test_ema_for_steps_halves_the_start_ten_times_in_a_run():
    for steps in (20, 200, 5000):
        assert lesson.ema_for_steps(steps) ** steps == pytest.approx(0.5**10, rel=0.2)
    assert lesson.ema_for_steps(200, half_lives=1) ** 200 == pytest.approx(0.5, rel=0.02)
    with pytest.raises(ValueError, match="steps"):
        lesson.ema_for_steps(0)


# ------------------------------------------------------- any data size
def test_count_images_per_source(clean_env, flowers12_dir, tmp_path):
    from PIL import Image

    clean_env.setenv(lesson.FAST_ENV_VAR, "0")
    clean_env.setenv(lesson.DATA_ENV_VAR, str(flowers12_dir))
    assert (lesson.count_images("train"), lesson.count_images("validation")) == (720, 217)
    folder = tmp_path / "few"
    folder.mkdir()
    for index in range(30):  # a flat folder of a few dozen photographs: split 80/20
        Image.fromarray(np.full((8, 8, 3), index, np.uint8)).save(folder / f"{index}.png")
    clean_env.setenv(lesson.DATA_ENV_VAR, str(folder))
    assert (lesson.count_images("train"), lesson.count_images("validation")) == (24, 6)
    clean_env.delenv(lesson.DATA_ENV_VAR)
    from ddim_tutorial.data.datasets import FLOWERS_SPLIT_SIZES, SYNTHETIC_SIZES

    assert lesson.count_images("validation") == FLOWERS_SPLIT_SIZES["validation"]
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    assert lesson.count_images("train") == SYNTHETIC_SIZES["train"]


def test_flowers_split_sizes_follow_the_reference_split():
    from ddim_tutorial.data.datasets import FLOWERS_SPLIT_SIZES

    # Oxford Flowers 102 in TFDS: train 1,020, validation 1,020, test 6,149; 80 % of each trains.
    assert FLOWERS_SPLIT_SIZES["train"] + FLOWERS_SPLIT_SIZES["validation"] == 1020 + 1020 + 6149
    assert FLOWERS_SPLIT_SIZES["train"] * 5 // 64 == 511, "the reference's 511 steps per epoch"


def test_kid_weights_fall_back_to_random_with_one_sentence(clean_env, capsys):
    import ddim_tutorial.metrics.inception as inception

    clean_env.setenv(lesson.FAST_ENV_VAR, "0")

    def unavailable(weights):
        raise inception.InceptionWeightsUnavailableError("Could not download the weights (no network). Put them there.")

    clean_env.setattr(inception, "resolve_inception_weights", unavailable)
    assert lesson.kid_weights() is None
    said = capsys.readouterr().out.strip()
    assert said.count("\n") == 0 and "random InceptionV3 weights" in said and "DDIM_INCEPTION_WEIGHTS" in said
    clean_env.setattr(inception, "resolve_inception_weights", lambda weights: "/some/weights.h5")
    assert lesson.kid_weights() == "/some/weights.h5"
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    assert lesson.kid_weights() is None
