"""Bad data for the loaders gets one clear sentence, never a crash deep inside Keras.

Each case here is a row of docs/ERRORS.md (the test ids are the ones the table names).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.data import datasets as data
from ddim_tutorial.data import folders
from tests.helpers import tiny_config


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
