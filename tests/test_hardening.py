"""Bad inputs across the package get one clear sentence, never a crash deep inside Keras.

Each case here is a row of docs/ERRORS.md (the test ids are the ones the table names).
Checkpoint, training and CLI cases live in test_checkpoints.py, test_training.py and
test_cli.py; the cross-backend checkpoint checks are here, run in subprocesses.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from ddim_tutorial.data import datasets as data
from ddim_tutorial.data import folders
from ddim_tutorial.metrics import inception
from ddim_tutorial.metrics import kid
from ddim_tutorial.data import synthetic
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.sampling import reverse_diffusion

REPO = Path(__file__).resolve().parents[1]
TINY = dict(image_size=16, widths=(8, 16), block_depth=1, embedding_dims=8, batch_size=4, validation_kid=False,
            kid_weights=None, seed=0, jit_compile=False, dataset_repetitions=1)


def tiny_config(**overrides) -> DDIMConfig:
    return DDIMConfig(**{**TINY, **overrides})


# ----------------------------------------------------------------------------- config
CONFIG_CASES = {
    "min_signal_rate_zero": (dict(min_signal_rate=0.0), "min_signal_rate=0.0 is invalid: it must be at least 0.001"),
    "min_signal_rate_negative": (dict(min_signal_rate=-0.1), "min_signal_rate=-0.1 is invalid"),
    "max_signal_rate_above_one": (dict(max_signal_rate=1.5), "max_signal_rate=1.5 is invalid: it must be <= 1"),
    "min_above_max_signal_rate": (dict(min_signal_rate=0.9, max_signal_rate=0.5), "must be smaller than max_signal_rate"),
    "signal_rate_nan": (dict(max_signal_rate=float("nan")), "max_signal_rate=nan is invalid"),
    "image_size_zero": (dict(image_size=0), "image_size=0 is invalid: it must be a positive integer"),
    "image_size_negative": (dict(image_size=-64), "image_size=-64 is invalid"),
    "image_size_text": (dict(image_size="64"), "image_size='64' is invalid"),
    "image_size_not_divisible": (dict(image_size=30, widths=(8, 16, 32)), "must be divisible by 2**(len(widths)-1) = 4"),
    "batch_size_one": (dict(batch_size=1), "batch_size=1 is invalid: it must be at least 2"),
    "batch_size_zero": (dict(batch_size=0), "batch_size=0 is invalid"),
    "widths_empty": (dict(widths=()), "widths=() is invalid: it must list at least one width"),
    "widths_zero": (dict(widths=(8, 0)), "widths=0 is invalid"),
    "block_depth_zero": (dict(block_depth=0), "block_depth=0 is invalid"),
    "plot_steps_zero": (dict(plot_diffusion_steps=0), "plot_diffusion_steps=0 is invalid"),
    "kid_steps_negative": (dict(kid_diffusion_steps=-1), "kid_diffusion_steps=-1 is invalid"),
    "kid_image_size_small": (dict(kid_image_size=50), "kid_image_size=50 is invalid: it must be at least 75"),
    "embedding_dims_odd": (dict(embedding_dims=7), "embedding_dims=7 is invalid: it must be even"),
    "learning_rate_nan": (dict(learning_rate=float("nan")), "learning_rate=nan is invalid"),
    "ema_one": (dict(ema=1.0), "ema=1.0 is invalid: it must be a number in [0, 1)"),
    "loss_unknown": (dict(loss="l3"), "loss='l3' is invalid: it must be one of mae, mse"),
    "precision_unknown": (dict(mixed_precision="float16"), "mixed_precision='float16' is invalid"),
    "epochs_zero": (dict(num_epochs=0), "num_epochs=0 is invalid"),
    "seed_negative": (dict(seed=-1), "seed=-1 is invalid"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_config_errors(case):
    overrides, message = CONFIG_CASES[case]
    with pytest.raises(ValueError) as error:
        DDIMConfig(**overrides)
    assert message in str(error.value)
    assert str(error.value).startswith("DDIMConfig.")


def test_config_rejects_infinite_embedding_frequency():
    with pytest.raises(ValueError, match="embedding_max_frequency=inf is invalid"):
        DDIMConfig(embedding_max_frequency=float("inf"))


def test_config_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset 'big'; choose one of reference, smoke, workshop"):
        DDIMConfig.preset("big")
    with pytest.raises(ValueError, match="DDIMConfig has no field.* lr; known fields: .*learning_rate"):
        DDIMConfig().replace(lr=1e-4)
    with pytest.raises(ValueError, match="unknown DDIMConfig field.* lr; was this file written by a newer"):
        DDIMConfig.from_dict({"lr": 1e-4})


# ------------------------------------------------------------------------ data loaders
def write_images(folder: Path, count: int, size: int = 24, suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"img_{index:02d}{suffix}"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_data_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist; pass an existing folder"):
        data.load_dataset(tiny_config(), data_dir=tmp_path / "nowhere")


def test_data_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images found in .* accepted files end in .jpg"):
        data.load_dataset(tiny_config(), data_dir=tmp_path)


def test_data_folder_of_non_images(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "table.csv").write_text("1,2,3")
    with pytest.raises(FileNotFoundError, match="no images found"):
        data.load_dataset(tiny_config(), data_dir=tmp_path)
    for index in range(5):  # image names, text inside
        (tmp_path / f"fake_{index}.jpg").write_text("not a JPEG")
    with pytest.warns(folders.UnreadableImageWarning, match="skipping unreadable image"):
        with pytest.raises(ValueError, match="none of the 4 image file.* could be read"):
            data.load_dataset(tiny_config(), data_dir=tmp_path)


def test_data_truncated_image_is_skipped_with_a_warning(tmp_path):
    paths = write_images(tmp_path, 10, suffix=".jpg")
    content = paths[0].read_bytes()
    paths[0].write_bytes(content[: len(content) // 3])
    with pytest.warns(folders.UnreadableImageWarning, match=f"skipping unreadable image .*{paths[0].name}"):
        images = folders.load_image_folder(tmp_path, 16)
    assert images.shape == (9, 16, 16, 3)


def test_data_fewer_images_than_a_batch(tmp_path):
    write_images(tmp_path, 5)
    with pytest.raises(ValueError, match=r"only 4 image\(s\) for batch_size=8: .*use batch_size <= 4"):
        data.load_dataset(tiny_config(batch_size=8), data_dir=tmp_path)


def test_data_conflicting_source_and_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="conflicts with source='synthetic'"):
        data.load_dataset(tiny_config(), data_dir=tmp_path, source="synthetic")
    with pytest.raises(ValueError, match="source='imagenet' is invalid"):
        data.load_dataset(tiny_config(), source="imagenet")


def test_data_tfds_offline(monkeypatch):
    if importlib.util.find_spec("tensorflow_datasets") is not None and importlib.util.find_spec("tensorflow"):
        import tensorflow_datasets as tfds

        def offline(*args, **kwargs):  # what tfds raises without network, without waiting for it
            raise ConnectionError("Failed to establish a new connection: [Errno 101] Network is unreachable")

        monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.delenv("DDIM_DATA_DIR", raising=False)
    with pytest.raises(data.DatasetUnavailableError, match="could not be loaded .* pass a local folder"):
        data.load_dataset(tiny_config(), source="tfds")
    with pytest.warns(UserWarning, match="Falling back to 800 offline synthetic flowers"):
        data.load_dataset(tiny_config(), source="auto")


def test_data_nan_images_are_refused_before_training():
    model = DiffusionModel(tiny_config())
    images = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
    images[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="the images contain NaN or Inf values"):
        model.adapt_normalizer(images)
    with pytest.raises(ValueError, match="images have 1 channels; RGB images need 3"):
        model.adapt_normalizer(images[..., :1])


# ---------------------------------------------------------------------------- sampler
@pytest.fixture(scope="module")
def model():
    model = DiffusionModel(tiny_config())
    model.adapt_normalizer(synthetic.synthetic_flowers(8, 16))
    return model


NOISE = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")

SAMPLER_CASES = {
    "steps_zero": (dict(diffusion_steps=0), "diffusion_steps=0 is invalid: use an integer >= 1"),
    "steps_fraction": (dict(diffusion_steps=2.5), "diffusion_steps=2.5 is invalid"),
    "steps_bool": (dict(diffusion_steps=True), "diffusion_steps=True is invalid"),
    "eta_negative": (dict(eta=-0.1), "eta=-0.1 is invalid: use a number in [0, 1]"),
    "eta_nan": (dict(eta=float("nan")), "eta=nan is invalid"),
    "min_signal_rate_zero": (dict(min_signal_rate=0.0), "min_signal_rate=0.0 is invalid: it must be at least 0.001"),
    "max_signal_rate_above_one": (dict(max_signal_rate=1.01), "max_signal_rate=1.01 is invalid"),
    "signal_rates_swapped": (dict(min_signal_rate=0.9, max_signal_rate=0.2), "must be smaller than max_signal_rate"),
    "noise_rank_3": (dict(initial_noise=NOISE[0]), "initial_noise has shape (16, 16, 3): it must be [num_images"),
    "noise_one_channel": (dict(initial_noise=NOISE[..., :1]), "initial_noise has shape (2, 16, 16, 1)"),
    "noise_empty": (dict(initial_noise=NOISE[:0]), "initial_noise holds no images"),
    "noise_integers": (dict(initial_noise=NOISE.astype("int32")), "initial_noise has dtype int32: it must be a float"),
    "noise_wrong_size": (dict(initial_noise=NOISE[:, :8, :8]), "initial_noise has images of 8x8 pixels but the network takes 16x16"),
}


@pytest.mark.parametrize("case", SAMPLER_CASES)
@pytest.mark.parametrize("entry", ["reverse_diffusion", "generate"])
def test_sampler_errors(request, model, entry, case):
    changes, message = SAMPLER_CASES[case]
    arguments = dict(initial_noise=NOISE, diffusion_steps=2, min_signal_rate=0.02, max_signal_rate=0.95, eta=0.0)
    arguments.update(changes)
    with pytest.raises(ValueError) as error:
        if entry == "reverse_diffusion":
            noise, steps = arguments.pop("initial_noise"), arguments.pop("diffusion_steps")
            reverse_diffusion(model.ema_network, noise, steps, **arguments)
        else:
            model.generate(2, **arguments)
    assert message in str(error.value)


@pytest.mark.parametrize("num_images, seed, message", [
    (0, 0, "num_images=0 is invalid"), ("2", 0, "num_images='2' is invalid"), (2, -1, "seed=-1 is invalid"),
    (2, 2**40, "seed=1099511627776 is invalid"),
])
def test_generate_count_and_seed_errors(model, num_images, seed, message):
    with pytest.raises(ValueError, match=message):
        model.generate(num_images, 2, seed=seed)


def test_sampler_rejects_nan_initial_noise(model):
    with pytest.raises(ValueError, match="initial_noise"):
        model.generate(2, 2, initial_noise=np.full_like(NOISE, np.nan))


def test_sampler_accepts_or_refuses_a_nested_list(model):
    try:
        images = reverse_diffusion(model.ema_network, NOISE.tolist(), 2)
    except ValueError:
        return
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(images)))


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_reverse_diffusion_float16_and_float64_noise(request, model, dtype):
    try:
        images = reverse_diffusion(model.ema_network, NOISE.astype(dtype), 2)
    except ValueError:
        return
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(images)))


def test_sampler_float16_and_float64_noise(model):
    for dtype in ("float16", "float64"):
        images = keras.ops.convert_to_numpy(model.generate(2, 2, initial_noise=NOISE.astype(dtype)))
        assert images.shape == (2, 16, 16, 3) and np.all(np.isfinite(images))


# -------------------------------------------------------------------------------- KID
IMAGES = np.random.default_rng(1).random((8, 16, 16, 3), dtype=np.float32)

KID_CASES = {
    "rank_3": (lambda: kid.compute_kid(IMAGES[..., 0], IMAGES, weights=None), "has shape (8, 16, 16); expected 4-D"),
    "pixels_0_255": (lambda: kid.compute_kid(IMAGES * 255, IMAGES, weights=None), "expected pixel space [0, 1]"),
    "sizes_differ": (lambda: kid.compute_kid(IMAGES, np.zeros((8, 32, 32, 3), "float32"), weights=None),
                     "real_images are 32x32 but model_or_images is 16x16"),
    "one_image": (lambda: kid.compute_kid(IMAGES[:1], IMAGES, weights=None), "holds 1 image; KID needs at least 2"),
    "nan_pixels": (lambda: kid.compute_kid(np.full_like(IMAGES, np.nan), IMAGES, weights=None),
                   "contains NaN or infinite pixels"),
    "feature_widths_differ": (lambda: kid.kid_from_features(np.ones((10, 5)), np.ones((10, 6))),
                              "real_features have 5 dimensions but generated_features have 6"),
    "features_rank_1": (lambda: kid.kid_from_features(np.ones(10), np.ones(10)), "expected a 2-D [num_images"),
    "weights_not_h5": (lambda: kid.compute_kid(IMAGES, IMAGES, weights="weights.txt"), "must be an .h5 file"),
    "weights_wrong_type": (lambda: kid.compute_kid(IMAGES, IMAGES, weights=3), "weights=3 is invalid"),
}


@pytest.mark.parametrize("case", KID_CASES)
def test_kid_errors(case):
    call, message = KID_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inception.RandomInceptionWeightsWarning)
        with pytest.raises(ValueError) as error:
            call()
    assert message in str(error.value)


def test_kid_weights_missing_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("DDIM_INCEPTION_WEIGHTS", str(tmp_path / "inception.h5"))
    with pytest.raises(inception.InceptionWeightsUnavailableError, match="names no existing file; fix or unset it"):
        kid.compute_kid(IMAGES, IMAGES, weights="imagenet")
    with pytest.raises(inception.InceptionWeightsUnavailableError, match="names no existing file"):
        kid.compute_kid(IMAGES, IMAGES, weights=str(tmp_path / "other.h5"))


# ---------------------------------------------------------------------------- widgets
@pytest.fixture
def widgets():
    pytest.importorskip("ipywidgets")
    from ddim_tutorial.teaching import widgets

    return widgets


def test_widget_schedule_explorer_shows_an_impossible_range_as_a_message(widgets):
    explorer = widgets.schedule_explorer()
    explorer.controls["min signal"].value = 0.6
    explorer.controls["max signal"].value = 0.5
    assert "smaller than max signal" in explorer.status.value


def test_widget_bad_images_and_models(widgets):
    with pytest.raises(ValueError, match="zero spread"):
        widgets.noising_explorer(np.full((2, 8, 8, 3), 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match="pass a trained DiffusionModel"):
        widgets.sampler_explorer(object())
    with pytest.raises(ValueError, match="pass a trained DiffusionModel"):
        widgets.interpolation_explorer("model.h5")


# -------------------------------------------------------- checkpoints across backends
_SAVE_AND_SAMPLE = """
import sys, numpy as np, keras
from ddim_tutorial.training.checkpoints import load_checkpoint, save_checkpoint
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.data.synthetic import synthetic_flowers
from ddim_tutorial.core.model import DiffusionModel
source, target, noise_file, expected_file = sys.argv[1:5]
if source == "new":
    keras.utils.set_random_seed(0)
    model = DiffusionModel(DDIMConfig(**{TINY}))
    model.adapt_normalizer(synthetic_flowers(8, 16))
else:
    model = load_checkpoint(source)
noise = np.load(noise_file)
images = keras.ops.convert_to_numpy(model.generate(2, 3, initial_noise=noise, compiled=False))
if expected_file != "-":
    np.testing.assert_allclose(images, np.load(expected_file), atol=2e-4)
    print("same samples as the saving backend")
save_checkpoint(model, target)
np.save(target + ".npy", images)
print("saved on", keras.backend.backend())
"""


def python_for(backend: str) -> str | None:
    """An interpreter that has ``backend``: this one, $DDIM_PYTHON_<BACKEND>, or the project's venvs."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is not None:
        return sys.executable
    candidates = [os.environ.get(f"DDIM_PYTHON_{backend.upper()}"), "/tmp/venv-tf/bin/python",
                  "/tmp/venv-nt/bin/python"]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file() and subprocess.run(
                [candidate, "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"],
                capture_output=True).returncode == 0:
            return candidate
    return None


def run_on(backend: str, *args: str) -> str:
    python = python_for(backend)
    if python is None:
        pytest.skip(f"no Python with the {backend} backend (set DDIM_PYTHON_{backend.upper()})")
    script = _SAVE_AND_SAMPLE.replace("{TINY}", repr(TINY))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([python, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_checkpoint_saved_on_tensorflow_loads_on_jax_then_torch(tmp_path):
    noise = tmp_path / "noise.npy"
    np.save(noise, NOISE[:, :, :, :])
    saved_tf, saved_jax, saved_torch = (str(tmp_path / name) for name in ("tf", "jax", "torch"))
    assert "saved on tensorflow" in run_on("tensorflow", "new", saved_tf, str(noise), "-")
    output = run_on("jax", saved_tf, saved_jax, str(noise), saved_tf + ".npy")
    assert "same samples as the saving backend" in output and "saved on jax" in output
    output = run_on("torch", saved_jax, saved_torch, str(noise), saved_jax + ".npy")
    assert "same samples as the saving backend" in output and "saved on torch" in output
