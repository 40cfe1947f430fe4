"""Tests of ddim_tutorial.data.datasets: image folders, splits, batching, synthetic flowers, TFDS fallback.

They run with and without TensorFlow; only the tf.data / TFDS checks skip where it is absent.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.data import datasets as data
from ddim_tutorial.data import folders, synthetic

FLOWERS12 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "flowers12"
HAS_TF = importlib.util.find_spec("tensorflow") is not None


# --------------------------------------------------------------------------- helpers
def small_config(**overrides) -> DDIMConfig:
    settings = dict(image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4, dataset_repetitions=3,
                    seed=0, kid_weights=None, validation_kid=False)
    settings.update(overrides)
    return DDIMConfig(**settings)


def save_rgb(path: Path, pixels: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path, **kwargs)
    return path


def solid(height: int, width: int, color) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, dtype=np.uint8), (height, width, 3)).copy()


def write_gray_levels(folder: Path, count: int, size: int = 8) -> list[Path]:
    """``count`` flat grey PNGs whose level identifies them after loading (level = 10 * i + 5)."""
    return [save_rgb(folder / f"img_{i:03d}.png", solid(size, size, (10 * i + 5,) * 3)) for i in range(count)]


def identify(images: np.ndarray) -> list[int]:
    """Invert ``write_gray_levels``: the index of each loaded flat grey image."""
    return sorted(int(round((float(image.mean()) * 255 - 5) / 10)) for image in images)


def noise_jpeg_bytes(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Nested class folders holding every image kind the loader must read, plus non-image files."""
    root = tmp_path / "mixed"
    save_rgb(root / "roses" / "wide.jpg", solid(50, 80, (200, 30, 40)))
    save_rgb(root / "roses" / "odd.png", np.random.default_rng(1).integers(0, 256, (37, 91, 3)))
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(root / "roses" / "gray.png")
    rgba = np.zeros((24, 24, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, 12:, 3] = 255  # left half transparent, right half opaque red
    (root / "tulips").mkdir()
    Image.fromarray(rgba).save(root / "tulips" / "rgba.png")
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    palette.paste(1, (0, 0, 16, 8))
    palette.save(root / "tulips" / "palette.png", transparency=0)
    Image.fromarray(np.full((10, 10), 65535, np.uint16)).save(root / "tulips" / "deep.png")  # 16-bit
    save_rgb(root / "tulips" / "deep" / "nested.bmp", solid(12, 12, (0, 0, 255)))
    save_rgb(root / "tulips" / "anim.gif", solid(12, 12, (0, 255, 0)))
    if features.check("webp"):
        save_rgb(root / "tulips" / "photo.webp", solid(12, 12, (255, 255, 0)), lossless=True)
    (root / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("# flowers")
    (root / ".hidden.png").write_bytes(b"macOS resource fork, not a PNG")
    return root


# --------------------------------------------------------------------------- load_image_folder
def test_mixed_folder_loads_every_image_kind_silently(mixed_folder: Path) -> None:
    expected = 8 + features.check("webp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # non-images and hidden files are ignored without a warning
        images = folders.load_image_folder(mixed_folder, 16)
    assert images.shape == (expected, 16, 16, 3)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_conversions_of_gray_alpha_palette_and_16_bit(mixed_folder: Path) -> None:
    files = folders.list_image_files(mixed_folder)
    images = dict(zip((path.name for path in files), folders.load_image_folder(mixed_folder, 8), strict=True))
    gray = images["gray.png"]
    np.testing.assert_allclose(gray, 128 / 255, atol=1e-5)
    rgba = images["rgba.png"]  # transparent half composited onto white, opaque half stays red
    np.testing.assert_allclose(rgba[:, :3], 1.0, atol=1e-5)
    np.testing.assert_allclose(rgba[:, 5:], np.broadcast_to([1.0, 0.0, 0.0], (8, 3, 3)), atol=1e-5)
    palette = images["palette.png"]  # transparent colour 0 -> white; colour 1 -> red
    np.testing.assert_allclose(palette[5:], 1.0, atol=1e-5)
    np.testing.assert_allclose(palette[:3], np.broadcast_to([1.0, 0.0, 0.0], (3, 8, 3)), atol=1e-5)
    np.testing.assert_allclose(images["deep.png"], 1.0, atol=1e-5)
    np.testing.assert_allclose(images["nested.bmp"], np.broadcast_to([0, 0, 1.0], (8, 8, 3)), atol=1e-5)
    np.testing.assert_allclose(images["anim.gif"], np.broadcast_to([0, 1.0, 0], (8, 8, 3)), atol=1e-5)


def test_16_bit_gray_is_scaled_by_65535_not_clipped(tmp_path: Path) -> None:
    Image.fromarray(np.full((6, 6), 32768, np.uint16)).save(tmp_path / "half.png")
    (image,) = folders.load_image_folder(tmp_path, 6)
    np.testing.assert_allclose(image, 32768 / 65535, atol=1e-5)


def test_center_crop_keeps_only_the_middle(tmp_path: Path) -> None:
    wide = np.concatenate([solid(30, 30, (255, 0, 0)), solid(30, 30, (0, 255, 0)), solid(30, 30, (0, 0, 255))], 1)
    save_rgb(tmp_path / "wide.png", wide)
    save_rgb(tmp_path / "tall.png", wide.transpose(1, 0, 2))
    images = folders.load_image_folder(tmp_path, 10)
    np.testing.assert_allclose(images, np.broadcast_to([0.0, 1.0, 0.0], images.shape), atol=1e-6)


def test_crop_offsets_match_tf_crop_to_bounding_box(tmp_path: Path) -> None:
    # width 7, height 4: the reference's offset is (7 - 4) // 2 = 1 column from the left
    pixels = np.zeros((4, 7, 3), np.uint8)
    pixels[:, :, 0] = np.arange(7)[None, :] * 30
    save_rgb(tmp_path / "tiny.png", pixels)
    (image,) = folders.load_image_folder(tmp_path, 4)  # no resize: the crop itself
    np.testing.assert_allclose(image[0, :, 0] * 255, [30, 60, 90, 120], atol=1e-3)


def test_downsampling_is_antialiased() -> None:
    # a one-pixel checkerboard: aliasing would give 0s and 1s, antialiasing gives mid grey
    checker = ((np.indices((64, 64)).sum(0) % 2)[..., None] * np.ones(3)).astype(np.float32)
    small = folders.resize_center_square(checker, 8)
    np.testing.assert_allclose(small, 0.5, atol=0.02)


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow to compare against tf.image.resize")
@pytest.mark.parametrize("shape, size", [((50, 70), 16), ((224, 224), 64), ((37, 91), 20), ((20, 30), 32)])
def test_resize_matches_tf_image_resize_antialias(tmp_path: Path, shape, size) -> None:
    tf = pytest.importorskip("tensorflow")
    pixels = np.random.default_rng(3).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    save_rgb(tmp_path / "img.png", pixels)
    (ours,) = folders.load_image_folder(tmp_path, size)
    height, width = shape
    side = min(shape)
    crop = tf.image.crop_to_bounding_box(pixels, (height - side) // 2, (width - side) // 2, side, side)
    reference = tf.clip_by_value(tf.image.resize(crop, [size, size], antialias=True) / 255.0, 0.0, 1.0).numpy()
    assert np.abs(ours - reference).max() < 1e-4  # measured: about 2e-6


def test_unreadable_files_are_skipped_with_one_warning_each(tmp_path: Path) -> None:
    write_gray_levels(tmp_path / "good", 3)
    truncated = tmp_path / "bad" / "truncated.jpg"
    truncated.parent.mkdir()
    payload = noise_jpeg_bytes()
    truncated.write_bytes(payload[: len(payload) // 2])
    garbage = tmp_path / "bad" / "garbage.png"
    garbage.write_bytes(b"\x89PNG this is not really a png")
    with pytest.warns(folders.UnreadableImageWarning) as record:
        images = folders.load_image_folder(tmp_path, 8)
    assert images.shape == (3, 8, 8, 3)
    messages = [str(w.message) for w in record if issubclass(w.category, folders.UnreadableImageWarning)]
    assert len(messages) == 2
    assert sum(str(truncated) in m for m in messages) == 1
    assert sum(str(garbage) in m for m in messages) == 1


def test_every_image_unreadable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"nope")
    (tmp_path / "b.png").write_bytes(b"nope")
    with pytest.warns(folders.UnreadableImageWarning), pytest.raises(ValueError, match="none of the 2 image"):
        folders.load_image_folder(tmp_path, 8)


def test_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere") as info:
        folders.load_image_folder(missing, 8)
    assert "DDIM_DATA_DIR" in str(info.value)


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    path = save_rgb(tmp_path / "one.png", solid(4, 4, (1, 2, 3)))
    with pytest.raises(ValueError, match="not a folder"):
        folders.load_image_folder(path, 8)


def test_folder_without_images_lists_accepted_extensions(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"no images found .*\.jpg.*\.png"):
        folders.load_image_folder(tmp_path, 8)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=0), "image_size"),
    (dict(image_size=8, split="test"), "split"),
    (dict(image_size=8, max_images=0), "max_images"),
])
def test_bad_arguments(tmp_path: Path, kwargs, match) -> None:
    write_gray_levels(tmp_path, 2)
    with pytest.raises(ValueError, match=match):
        folders.load_image_folder(tmp_path, **kwargs)


def test_max_images_is_a_deterministic_subset(tmp_path: Path) -> None:
    write_gray_levels(tmp_path, 10)
    first = folders.load_image_folder(tmp_path, 4, max_images=4, seed=1)
    again = folders.load_image_folder(tmp_path, 4, max_images=4, seed=1)
    assert first.shape == (4, 4, 4, 3)
    np.testing.assert_array_equal(first, again)
    assert len(set(identify(first))) == 4


# --------------------------------------------------------------------------- splits
@pytest.mark.parametrize("validation_name", ["validation", "val", "test"])
def test_presplit_folders_are_used_as_they_are(tmp_path: Path, validation_name: str) -> None:
    levels = write_gray_levels(tmp_path / "train" / "daisy", 6)
    for path in levels[4:]:  # move two images to the validation folder
        target = tmp_path / validation_name / "daisy" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    train = folders.load_image_folder(tmp_path, 4, "train")
    validation = folders.load_image_folder(tmp_path, 4, "validation")
    assert identify(train) == [0, 1, 2, 3]
    assert identify(validation) == [4, 5]
    assert len(folders.load_image_folder(tmp_path, 4)) == 6  # split=None: everything


def test_80_20_split_is_disjoint_complete_and_deterministic(tmp_path: Path) -> None:
    write_gray_levels(tmp_path / "flat", 20)
    folder = tmp_path / "flat"
    train = folders.list_image_files(folder, "train")
    validation = folders.list_image_files(folder, "validation")
    assert (len(train), len(validation)) == (16, 4)
    assert not set(train) & set(validation)
    assert sorted(train + validation) == sorted(folders.list_image_files(folder))
    assert folders.list_image_files(folder, "train") == train
    other_seed = folders.list_image_files(folder, "validation", seed=7)
    assert len(other_seed) == 4 and other_seed != validation
    images = folders.load_image_folder(folder, 4, "validation")
    assert identify(images) == sorted(int(path.stem.split("_")[1]) for path in validation)


def test_a_single_image_cannot_be_split(tmp_path: Path) -> None:
    write_gray_levels(tmp_path, 1)
    with pytest.raises(ValueError, match="too few"):
        folders.load_image_folder(tmp_path, 4, "validation")


@pytest.mark.skipif(not FLOWERS12.is_dir(), reason="shared flowers12 photographs are not present")
def test_flowers12_train_and_validation_counts() -> None:
    """720 training photographs (60 per species) and 217 held out (14 to 20 per species), as the cards say."""
    train = folders.load_image_folder(FLOWERS12, 16, "train")
    validation = folders.load_image_folder(FLOWERS12, 16, "validation")
    assert train.shape == (720, 16, 16, 3) and validation.shape == (217, 16, 16, 3)
    assert 0.0 <= train.min() and train.max() <= 1.0
    assert 0.05 < float(train.std()) < 0.5  # real photographs, not blank or noise
    per_species = {folder.name: len(folders.list_image_files(folder)) for folder in (FLOWERS12 / "test").iterdir()
                   if folder.is_dir()}
    assert len(per_species) == 12 and (min(per_species.values()), max(per_species.values())) == (14, 20)


@pytest.mark.skipif(not (FLOWERS12 / "removed_test_duplicates.txt").is_file(),
                    reason="shared flowers12 photographs are not present")
def test_flowers12_test_photographs_that_copied_training_ones_are_gone() -> None:
    """The 23 held-out photographs that were copies of training photographs were removed from test/."""
    lines = (FLOWERS12 / "removed_test_duplicates.txt").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]
    assert len(pairs) == 23
    for removed, twin in pairs:
        assert removed.startswith("test/") and not (FLOWERS12 / removed).exists(), removed
        assert twin.startswith("train/") and (FLOWERS12 / twin).is_file(), twin


# --------------------------------------------------------------------------- batching
def asymmetric_images(count: int, size: int = 8) -> np.ndarray:
    """Images whose left half is dark and right half bright, each with its own grey level."""
    images = np.zeros((count, size, size, 3), np.float32)
    images[:, :, size // 2:] = 1.0
    images[:, :, : size // 2] = (np.arange(count, dtype=np.float32) / (2 * count))[:, None, None, None]
    return images


def ids_of(batch: np.ndarray, count: int) -> list[int]:
    """Recover the image index from the dark half (on either side, so flips still identify it)."""
    dark = np.minimum(batch[:, :, 0, 0], batch[:, :, -1, 0]).mean(axis=1)
    return [int(round(value * 2 * count)) for value in dark]


def test_array_batches_counts_repetitions_and_drop_remainder() -> None:
    config = small_config(batch_size=4, dataset_repetitions=3)
    images = asymmetric_images(10)
    batches = data.batch_images(images, config, training=True, use_tf_data=False)
    assert isinstance(batches, data.ArrayBatches)
    assert len(batches) == 7  # 30 images -> 7 full batches, 2 dropped
    seen = []
    for batch in batches:
        assert batch.shape == (4, 8, 8, 3) and batch.dtype == np.float32
        seen += ids_of(batch, 10)
    assert len(seen) == 28 and max(np.bincount(seen)) <= 3 and set(seen) <= set(range(10))
    assert len(data.batch_images(images, config, training=True, repeat=False, use_tf_data=False)) == 2


def test_array_batches_without_shuffle_keep_order() -> None:
    config = small_config(batch_size=4, dataset_repetitions=2)
    batches = data.batch_images(asymmetric_images(6), config, training=False, shuffle=False, use_tf_data=False)
    assert [ids_of(batch, 6) for batch in batches] == [[0, 1, 2, 3], [4, 5, 0, 1], [2, 3, 4, 5]]


def test_array_batches_shuffle_is_seeded_and_changes_each_epoch() -> None:
    config = small_config(batch_size=5, dataset_repetitions=1, seed=3)
    images = asymmetric_images(20)
    first = data.batch_images(images, config, training=False, use_tf_data=False)
    second = data.batch_images(images, config, training=False, use_tf_data=False)
    epoch_one = [ids_of(b, 20) for b in first]
    assert epoch_one == [ids_of(b, 20) for b in second]
    assert sorted(sum(epoch_one, [])) == list(range(20))
    assert sum(epoch_one, []) != list(range(20))
    first.on_epoch_end()
    assert [ids_of(b, 20) for b in first] != epoch_one


def test_flips_only_when_training_with_augment_flip() -> None:
    images = asymmetric_images(16)
    config = small_config(batch_size=4, dataset_repetitions=2, augment_flip=True)
    flipped_counts = []
    for training in (True, False):
        batches = data.batch_images(images, config, training=training, use_tf_data=False)
        flipped = 0
        for batch in batches:
            for image, index in zip(batch, ids_of(batch, 16), strict=True):
                if np.array_equal(image, images[index][:, ::-1]):
                    flipped += 1
                else:
                    np.testing.assert_array_equal(image, images[index])
        flipped_counts.append(flipped)
    assert 0 < flipped_counts[0] < 32 and flipped_counts[1] == 0
    unflipped = data.batch_images(images, config.replace(augment_flip=False), training=True, use_tf_data=False)
    assert all(np.array_equal(image, images[i])
               for batch in unflipped for image, i in zip(batch, ids_of(batch, 16), strict=True))


def test_fewer_images_than_a_batch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"only 3 image\(s\) for batch_size=4.*batch_size <= 3"):
        data.batch_images(asymmetric_images(3), small_config(batch_size=4, dataset_repetitions=1), training=True,
                          use_tf_data=False)
    with pytest.raises(ValueError, match=r"only 3 image\(s\), repeated 2 times, for batch_size=8.*batch_size <= 6"):
        data.batch_images(asymmetric_images(3), small_config(batch_size=8, dataset_repetitions=2), training=True,
                          use_tf_data=False)


@pytest.mark.parametrize("use_tf_data", [False, True])
def test_a_small_folder_fills_batches_with_its_repetitions(use_tf_data: bool) -> None:
    if use_tf_data and not data._tf_data_available():
        pytest.skip("tf.data needs TensorFlow")
    config = small_config(batch_size=4, dataset_repetitions=3)  # 3 images x 3 repetitions: 2 whole batches
    batches = list(data.batch_images(asymmetric_images(3), config, training=True, use_tf_data=use_tf_data))
    assert [len(np.asarray(batch)) for batch in batches] == [4, 4]


def test_batch_images_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        data.batch_images(np.zeros((8, 4, 4)), small_config(), training=True, use_tf_data=False)


def test_default_pipeline_follows_the_keras_backend() -> None:
    import keras

    batches = data.batch_images(asymmetric_images(8), small_config(), training=True)
    if keras.backend.backend() == "tensorflow" and HAS_TF:
        assert type(batches).__module__.startswith("tensorflow")
    else:
        assert isinstance(batches, data.ArrayBatches)


@pytest.mark.skipif(not HAS_TF, reason="tf.data needs TensorFlow")
def test_tf_data_pipeline_counts_and_flips() -> None:
    tf = pytest.importorskip("tensorflow")
    images = asymmetric_images(10)
    config = small_config(batch_size=4, dataset_repetitions=3, augment_flip=True)
    dataset = data.batch_images(images, config, training=True, use_tf_data=True)
    assert isinstance(dataset, tf.data.Dataset)
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 7 and all(b.shape == (4, 8, 8, 3) and b.dtype == np.float32 for b in batches)
    flips = sum(not np.array_equal(image, images[i])
                for b in batches for image, i in zip(b, ids_of(b, 10), strict=True))
    assert 0 < flips < 28
    plain = data.batch_images(images, config, training=False, repeat=False, shuffle=False, use_tf_data=True)
    assert [ids_of(b, 10) for b in plain.as_numpy_iterator()] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_image_folder_dataset_batches_a_folder(tmp_path: Path) -> None:
    write_gray_levels(tmp_path, 10)
    config = small_config(batch_size=4, dataset_repetitions=2)
    images = data.take_images(data.image_folder_dataset(tmp_path, config, "train", shuffle=False), 8)
    assert images.shape == (8, 16, 16, 3)
    assert set(identify(images)) < set(range(10))


def test_a_held_out_split_smaller_than_a_batch_gives_one_smaller_batch(tmp_path: Path) -> None:
    write_gray_levels(tmp_path, 20)  # a flat folder of 20 photographs: 16 train, 4 held out
    config = small_config(batch_size=8, dataset_repetitions=1)
    validation = list(data.image_folder_dataset(tmp_path, config, "validation", shuffle=False))
    assert [len(np.asarray(batch)) for batch in validation] == [4], "all 4 held-out images, in one batch"
    assert len(list(data.image_folder_dataset(tmp_path, config, "train"))) == 2, "training keeps its batch size"
    with pytest.raises(ValueError, match="not even one batch fits"):
        data.image_folder_dataset(tmp_path, small_config(batch_size=32, dataset_repetitions=1), "train")


# --------------------------------------------------------------------------- take_images
def test_take_images_from_arrays_batches_and_tuples() -> None:
    images = asymmetric_images(10)
    np.testing.assert_array_equal(data.take_images(images, 3), images[:3])
    batches = data.ArrayBatches(images, 4, shuffle=False)
    np.testing.assert_array_equal(data.take_images(batches, 6), images[:6])
    pairs = [(images[:4], np.zeros(4)), (images[4:8], np.zeros(4))]
    np.testing.assert_array_equal(data.take_images(pairs, 5), images[:5])
    assert data.take_images(images, 0).shape[0] == 0
    with pytest.raises(ValueError, match="only 8"):
        data.take_images(batches, 9)


@pytest.mark.skipif(not HAS_TF, reason="tf.data needs TensorFlow")
def test_take_images_from_tf_dataset() -> None:
    tf = pytest.importorskip("tensorflow")
    images = asymmetric_images(10)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(3)
    np.testing.assert_array_equal(data.take_images(dataset, 7), images[:7])


# --------------------------------------------------------------------------- synthetic flowers
def test_synthetic_flowers_shape_range_and_determinism() -> None:
    images = synthetic.synthetic_flowers(12, 32, seed=5)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, synthetic.synthetic_flowers(12, 32, seed=5))
    np.testing.assert_array_equal(images[:4], synthetic.synthetic_flowers(4, 32, seed=5))
    assert not np.allclose(images, synthetic.synthetic_flowers(12, 32, seed=6))


def test_synthetic_flowers_have_structure_not_noise() -> None:
    images = synthetic.synthetic_flowers(40, 32, seed=0)
    assert images.std(axis=(1, 2, 3)).min() > 0.05  # every image has content
    flat = images.reshape(len(images), -1)
    distances = np.abs(flat[:, None] - flat[None]).mean(-1)
    assert distances[~np.eye(len(images), dtype=bool)].min() > 0.02  # all images differ
    # smooth: neighbouring pixels are far closer than independent noise of the same spread would be
    neighbour = np.abs(np.diff(images, axis=2)).mean()
    assert neighbour < 0.3 * images.std()
    # a flower in the middle that stands out from a green or earthy surround
    centre = images[:, 12:20, 12:20].mean(axis=(1, 2))
    border = np.concatenate([images[:, :3].reshape(40, -1, 3), images[:, -3:].reshape(40, -1, 3)], 1).mean(1)
    assert np.abs(centre - border).sum(-1).mean() > 0.25
    assert (border[:, 1] > border[:, 2]).mean() > 0.9


@pytest.mark.parametrize("args", [(-1, 32), (4, 0), (4, 32.5)])
def test_synthetic_flowers_bad_arguments(args) -> None:
    with pytest.raises(ValueError):
        synthetic.synthetic_flowers(*args)


# --------------------------------------------------------------------------- TFDS and load_dataset
def test_flowers_dataset_without_tfds_installed(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now raises ImportError
    with pytest.raises(data.DatasetUnavailableError, match="DDIM_DATA_DIR") as info:
        data.flowers_dataset(small_config())
    assert isinstance(info.value.__cause__, ImportError)
    assert "synthetic" in str(info.value)


@pytest.mark.skipif(not HAS_TF, reason="TFDS needs TensorFlow")
def test_flowers_dataset_offline_raises_dataset_unavailable(monkeypatch) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline_load(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'\n  deep\n  stack\n  lines")

    monkeypatch.setattr(tfds, "load", offline_load)
    monkeypatch.setattr(data, "_unreachable_download_hosts", lambda *args: None)  # as if a host answered
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.flowers_dataset(small_config(), "validation")
    message = str(info.value)
    assert "oxford_flowers102" in message and "ConnectionError: Failed to resolve" in message
    assert "data_dir" in message and "--data-dir" in message and "DDIM_DATA_DIR" in message
    assert "source='synthetic'" in message and "stack" not in message and "\n" not in message
    assert isinstance(info.value.__cause__, ConnectionError)


class FakeBuilder:
    def __init__(self, prepared: bool) -> None:
        self.prepared = prepared
        self.url_infos = {"https://flowers.example.org/102flowers.tgz": None}

    def is_prepared(self) -> bool:
        return self.prepared


@pytest.mark.skipif(not HAS_TF, reason="TFDS needs TensorFlow")
def test_unreachable_download_host_fails_fast_without_calling_tfds_load(monkeypatch) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    probed = []

    def refuse(address, timeout):
        probed.append(address)
        raise OSError(-2, "Name or service not known")

    def must_not_load(*args, **kwargs):
        raise AssertionError("tfds.load should not run when no download host answers")

    for variable in data._PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(data.socket, "create_connection", refuse)
    monkeypatch.setattr(tfds, "builder", lambda name: FakeBuilder(prepared=False))
    monkeypatch.setattr(tfds, "load", must_not_load)
    with pytest.raises(data.DatasetUnavailableError, match="cannot reach flowers.example.org") as info:
        data.flowers_dataset(small_config())
    assert probed == [("flowers.example.org", 443), ("storage.googleapis.com", 443)]
    assert "DDIM_DATA_DIR" in str(info.value) and isinstance(info.value.__cause__, ConnectionError)
    # prepared datasets and proxied networks are not probed: tfds.load decides
    monkeypatch.setattr(tfds, "builder", lambda name: FakeBuilder(prepared=True))
    assert data._unreachable_download_hosts(tfds, "oxford_flowers102") is None
    monkeypatch.setattr(tfds, "builder", lambda name: FakeBuilder(prepared=False))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    assert data._unreachable_download_hosts(tfds, "oxford_flowers102") is None
    assert len(probed) == 2


@pytest.mark.skipif(not HAS_TF, reason="TFDS needs TensorFlow")
def test_flowers_dataset_preprocesses_like_the_reference(monkeypatch) -> None:
    tf = pytest.importorskip("tensorflow")
    tfds = pytest.importorskip("tensorflow_datasets")
    calls = []
    wide = np.concatenate([solid(30, 30, (255, 0, 0)), solid(30, 30, (0, 255, 0)), solid(30, 30, (0, 0, 255))], 1)

    def fake_load(name, split, shuffle_files):
        calls.append((name, split, shuffle_files))
        return tf.data.Dataset.from_tensor_slices({"image": np.stack([wide] * 10), "label": np.arange(10)})

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(data, "_unreachable_download_hosts", lambda *args: None)
    config = small_config(image_size=16, batch_size=4, dataset_repetitions=2)
    dataset = data.flowers_dataset(config, "train")
    assert calls == [("oxford_flowers102", "train[:80%]+validation[:80%]+test[:80%]", True)]
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 5 and batches[0].shape == (4, 16, 16, 3) and batches[0].dtype == np.float32
    np.testing.assert_allclose(np.concatenate(batches), np.broadcast_to([0, 1.0, 0], (20, 16, 16, 3)), atol=1e-6)
    data.flowers_dataset(config, "validation")
    assert calls[-1][1] == "train[80%:]+validation[80%:]+test[80%:]"


def test_load_dataset_auto_falls_back_to_synthetic_with_a_warning(monkeypatch) -> None:
    monkeypatch.delenv("DDIM_DATA_DIR", raising=False)

    def unavailable(*args, **kwargs):
        raise data.DatasetUnavailableError("the TFDS dataset could not be loaded (offline).")

    monkeypatch.setattr(data, "flowers_dataset", unavailable)
    config = small_config(batch_size=8, dataset_repetitions=1)
    with pytest.warns(UserWarning, match="synthetic flowers") as record:
        dataset = data.load_dataset(config, "validation", shuffle=False)
    assert any("offline" in str(w.message) for w in record)
    images = data.take_images(dataset, 200)
    assert images.shape == (200, 16, 16, 3)
    expected = data.take_images(data.load_dataset(config, "validation", source="synthetic", shuffle=False), 200)
    np.testing.assert_array_equal(images, expected)


def test_load_dataset_synthetic_splits_differ() -> None:
    config = small_config(batch_size=8, dataset_repetitions=1)
    train = data.load_dataset(config, "train", source="synthetic", shuffle=False)
    validation = data.load_dataset(config, "validation", source="synthetic", shuffle=False)
    train_images, validation_images = data.take_images(train, 800), data.take_images(validation, 200)
    assert len(train) == 100 and len(validation) == 25
    assert not np.allclose(train_images[:200], validation_images)


def test_load_dataset_reads_folder_from_argument_and_environment(tmp_path: Path, monkeypatch) -> None:
    write_gray_levels(tmp_path / "train" / "a", 8)
    write_gray_levels(tmp_path / "test" / "a", 4)
    config = small_config(batch_size=4, dataset_repetitions=1)
    from_argument = data.load_dataset(config, "validation", data_dir=tmp_path, shuffle=False)
    assert data.take_images(from_argument, 4).shape == (4, 16, 16, 3)
    monkeypatch.setenv("DDIM_DATA_DIR", str(tmp_path))
    from_environment = data.load_dataset(config, "train", shuffle=False)
    assert len(data.take_images(from_environment, 8)) == 8


def test_load_dataset_tfds_errors_propagate(monkeypatch) -> None:
    def unavailable(*args, **kwargs):
        raise data.DatasetUnavailableError("offline")

    monkeypatch.setattr(data, "flowers_dataset", unavailable)
    with pytest.raises(data.DatasetUnavailableError):
        data.load_dataset(small_config(), source="tfds")


@pytest.mark.parametrize("kwargs, match", [
    (dict(source="imagenet"), "'auto', 'folder', 'tfds', 'synthetic'"),
    (dict(split="test"), "split"),
    (dict(source="synthetic", data_dir="somewhere"), "conflicts"),
    (dict(source="folder"), "DDIM_DATA_DIR"),
])
def test_load_dataset_bad_arguments(monkeypatch, kwargs, match) -> None:
    monkeypatch.delenv("DDIM_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match=match):
        data.load_dataset(small_config(), **kwargs)


# ------------------------------------------------- partial reads of cached pipelines
_CACHE_WARNING = "did not fully read the dataset being cached"

_PREVIEW_SCRIPT = r"""
import gc
import sys
import time

import numpy as np
import tensorflow as tf

from ddim_tutorial.data import datasets as data
from ddim_tutorial.data import synthetic
from ddim_tutorial.config import DDIMConfig

config = DDIMConfig(image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4, dataset_repetitions=3,
                    seed=0, kid_weights=None, validation_kid=False)
images = synthetic.synthetic_flowers(400, 16)  # far more than the shuffle buffer reads for one batch
pipelines = {"array": data.batch_images(images, config, training=True, use_tf_data=True)}
try:
    import tensorflow_datasets as tfds
except ImportError:
    tfds = None
if tfds is not None:  # Oxford Flowers' pipeline, with the download replaced by the same images
    pixels = np.round(images * 255).astype("uint8")
    tfds.load = lambda name, split, shuffle_files: tf.data.Dataset.from_tensor_slices(
        {"image": pixels, "label": np.zeros(len(pixels), "int64")})
    data._unreachable_download_hosts = lambda *args: None
    pipelines["tfds"] = data.flowers_dataset(config, "train")
for name, pipeline in pipelines.items():
    assert data.take_images(pipeline, 6).shape == (6, 16, 16, 3), name
    assert data.take_images(pipeline, 2).shape == (2, 16, 16, 3), name
gc.collect()
time.sleep(0.5)
print("previewed:", ", ".join(pipelines), flush=True)
sys.stderr.write("CONTROL\n")
sys.stderr.flush()
# The control: a cache read part-way by hand must warn, or this process would prove nothing.
iterator = iter(tf.data.Dataset.range(1000).cache())
next(iterator)
del iterator
gc.collect()
time.sleep(0.5)
"""


@pytest.mark.skipif(not HAS_TF, reason="tf.data needs TensorFlow")
def test_take_images_of_a_cached_pipeline_logs_no_tensorflow_cache_warning(tmp_path: Path) -> None:
    """Lesson 02 previews one batch of the training pipeline: TensorFlow must not warn about it."""
    import os
    import subprocess

    script = tmp_path / "preview.py"
    script.write_text(_PREVIEW_SCRIPT, encoding="utf-8")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="0",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "previewed: array" in result.stdout
    before, marker, control = result.stderr.partition("CONTROL\n")
    assert marker, result.stderr[-3000:]
    assert _CACHE_WARNING in control, "the control did not warn: TensorFlow's log is not visible here"
    assert _CACHE_WARNING not in before, before[-3000:]


@pytest.mark.skipif(not HAS_TF, reason="TFDS needs TensorFlow")
def test_take_images_of_a_cached_pipeline_gives_its_first_batches(monkeypatch) -> None:
    tf = pytest.importorskip("tensorflow")
    tfds = pytest.importorskip("tensorflow_datasets")
    images = asymmetric_images(40)
    pixels = np.round(images * 255).astype(np.uint8)
    monkeypatch.setattr(tfds, "load", lambda name, split, shuffle_files: tf.data.Dataset.from_tensor_slices(
        {"image": pixels, "label": np.arange(len(pixels))}))
    monkeypatch.setattr(data, "_unreachable_download_hosts", lambda *args: None)
    config = small_config(image_size=8, batch_size=4, dataset_repetitions=2)
    for shuffle in (False, True):  # a seeded shuffle: a fresh pipeline's first pass is always the same
        first_pass = data.flowers_dataset(config, "train", shuffle=shuffle).take(3).as_numpy_iterator()
        preview = data.take_images(data.flowers_dataset(config, "train", shuffle=shuffle), 10)
        np.testing.assert_allclose(preview, np.concatenate(list(first_pass))[:10], atol=1e-6)
    assert ids_of(preview, 40) != list(range(10)), "the seeded shuffle did not reorder the images"
