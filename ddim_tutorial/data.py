"""Training images: Oxford Flowers 102, a folder of your own, or offline synthetic flowers.

The reference example streams Oxford Flowers 102 from TensorFlow Datasets, crops the
centre square, resizes it with antialiasing, scales to ``[0, 1]``, then caches, repeats,
shuffles and batches. :func:`load_dataset` is the single entry point that the CLI and the
notebooks use; it picks one of three sources:

* a local image folder (``data_dir=`` or the ``DDIM_DATA_DIR`` environment variable),
  read with PIL and NumPy only, so no TensorFlow is needed;
* Oxford Flowers 102 through ``tensorflow_datasets`` (needs TensorFlow and a download);
* procedurally drawn flowers (:func:`synthetic_flowers`), which need nothing at all and
  are the fallback when the download is impossible.

Batches are ``tf.data`` datasets when Keras runs on TensorFlow and
``keras.utils.PyDataset`` objects otherwise, so JAX and PyTorch users never import
TensorFlow. Either way a batch is a float32 array ``[batch_size, size, size, 3]`` in
``[0, 1]`` with no labels, or with ``labels=True`` (for a class-conditional model) a dict
``{"images": ..., "class_labels": ...}``: a folder's labels are its sub-folders (one per
class, sorted by name), Oxford Flowers 102's are its 102 species, and the synthetic
flowers' are their petal colours (:data:`SYNTHETIC_CLASS_NAMES`).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

import keras
import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "ArrayBatches",
    "DatasetUnavailableError",
    "IMAGE_EXTENSIONS",
    "UnreadableImageWarning",
    "batch_images",
    "class_names",
    "folder_class_names",
    "SYNTHETIC_CLASS_NAMES",
    "flowers_dataset",
    "image_folder_dataset",
    "list_image_files",
    "load_dataset",
    "load_image_folder",
    "synthetic_flowers",
    "take_images",
]

#: File name endings that :func:`load_image_folder` reads; every other file is ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Sub-folder names that hold the validation images when a folder is pre-split.
VALIDATION_FOLDER_NAMES = ("validation", "val", "test")

#: The reference's 80/20 re-split of Oxford Flowers 102 (all three TFDS splits pooled).
TFDS_SPLITS = {
    "train": "train[:80%]+validation[:80%]+test[:80%]",
    "validation": "train[80%:]+validation[80%:]+test[80%:]",
}

#: How many synthetic flowers :func:`load_dataset` draws for each split.
SYNTHETIC_SIZES = {"train": 800, "validation": 200}

SOURCES = ("auto", "folder", "tfds", "synthetic")
SPLITS = ("train", "validation")

_VALIDATION_FRACTION = 0.2
_SYNTHETIC_VALIDATION_SEED_OFFSET = 10_000


class DatasetUnavailableError(RuntimeError):
    """The requested dataset cannot be loaded in this environment (no TFDS, no network)."""


class UnreadableImageWarning(UserWarning):
    """An image file in a folder could not be decoded and was skipped."""


# --------------------------------------------------------------------------- folders
def list_image_files(directory: str | os.PathLike, split: str | None = None, *, seed: int = 0) -> list[Path]:
    """The image files of ``directory`` that belong to ``split``, in a deterministic order.

    A folder with a ``train/`` sub-folder and one of ``validation/``, ``val/`` or ``test/``
    is pre-split: those sub-folders are used as they are. Any other folder is split 80/20
    after a seeded shuffle of the sorted file list, like the reference's re-split of
    Oxford Flowers 102; the same ``seed`` always gives the same, disjoint halves.
    """
    root = _check_directory(directory)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split={split!r} is invalid: use None (all images), 'train' or 'validation'.")

    train_dir = root / "train"
    validation_dir = next((root / name for name in VALIDATION_FOLDER_NAMES if (root / name).is_dir()), None)
    if split is not None and train_dir.is_dir() and validation_dir is not None:
        folder = train_dir if split == "train" else validation_dir
        files = _find_images(folder)
        if not files:
            raise FileNotFoundError(
                f"no images found in {folder} (the {split!r} split of {root}); "
                f"add files ending in {', '.join(IMAGE_EXTENSIONS)}.")
        return files

    files = _find_images(root)
    if not files:
        raise FileNotFoundError(
            f"no images found in {root} or its sub-folders; accepted files end in "
            f"{', '.join(IMAGE_EXTENSIONS)} (one sub-folder per class or a flat folder both work).")
    if split is None:
        return files
    order = np.random.default_rng(seed).permutation(len(files))
    num_validation = int(round(len(files) * _VALIDATION_FRACTION))
    if len(files) >= 2:
        num_validation = min(max(num_validation, 1), len(files) - 1)
    chosen = order[num_validation:] if split == "train" else order[:num_validation]
    if len(chosen) == 0:
        raise ValueError(
            f"{root} holds only {len(files)} image(s), too few for an 80/20 train/validation split; "
            "add images or use split=None.")
    return [files[i] for i in sorted(chosen)]


def load_image_folder(
    directory: str | os.PathLike,
    image_size: int,
    split: str | None = None,
    *,
    max_images: int | None = None,
    seed: int = 0,
    labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Read every image under ``directory`` as float32 ``[N, image_size, image_size, 3]`` in [0, 1].

    With ``labels=True`` the result is ``(images, class_labels)``: each image's class is the
    sub-folder it lies in (see :func:`folder_class_names`), an int32 array ``[N]``.

    Preprocessing follows the reference: crop the centre square, resize it with an
    antialiased bilinear (triangle) filter, which is what ``tf.image.resize(...,
    antialias=True)`` computes, and clip to ``[0, 1]``. The filter runs in float32, so
    the result matches TensorFlow's to well under one grey level.

    Files are found recursively (one sub-folder per class, or flat). Grayscale, palette,
    CMYK and 16-bit images become RGB; transparent pixels are composited onto white so that
    cut-out images get a white, not black, background. EXIF rotation is applied. Files with
    other extensions are ignored; unreadable images are skipped with one
    :class:`UnreadableImageWarning` each. See :func:`list_image_files` for ``split`` and
    ``seed``. ``max_images`` keeps a seeded random subset of that many images.
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: it must be a positive integer such as 64.")
    if max_images is not None and (not isinstance(max_images, int) or isinstance(max_images, bool) or max_images < 1):
        raise ValueError(f"max_images={max_images!r} is invalid: it must be None or a positive integer.")

    files = list_image_files(directory, split, seed=seed)
    if max_images is not None and max_images < len(files):
        keep = np.random.default_rng(seed).choice(len(files), size=max_images, replace=False)
        files = [files[i] for i in sorted(keep)]

    label_of = _folder_labeller(directory, split) if labels else None
    images, class_labels = [], []
    for path in files:
        label = label_of(path) if label_of is not None else 0
        try:
            pixels = _read_rgb(path)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            warnings.warn(f"skipping unreadable image {path}: {err}", UnreadableImageWarning, stacklevel=2)
            continue
        images.append(resize_center_square(pixels, image_size))
        class_labels.append(label)
    if not images:
        raise ValueError(
            f"none of the {len(files)} image file(s) in {Path(directory)} could be read "
            "(see the warnings above); check that they are valid JPEG/PNG files.")
    images = np.stack(images).astype(np.float32, copy=False)
    return (images, np.asarray(class_labels, dtype=np.int32)) if labels else images


def folder_class_names(directory: str | os.PathLike) -> list[str]:
    """The classes of an image folder: its sub-folders (of ``train/`` when it is pre-split), sorted.

    This is the layout of ``keras.utils.image_dataset_from_directory``: one sub-folder per
    class, e.g. ``flowers/daisy/*.jpg``. Raises ValueError when there are none.
    """
    root = _class_root(_check_directory(directory))
    names = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
                   and _find_images(entry))
    if not names:
        raise ValueError(f"{root} has no sub-folders of images, so its images have no classes; for class "
                         "labels put each class in its own sub-folder (e.g. flowers/daisy/1.jpg).")
    return names


def _class_root(root: Path) -> Path:
    """Where the class sub-folders of ``root`` lie: ``train/`` in a pre-split folder, else ``root``."""
    pre_split = (root / "train").is_dir() and any((root / name).is_dir() for name in VALIDATION_FOLDER_NAMES)
    return root / "train" if pre_split else root


def _folder_labeller(directory: str | os.PathLike, split: str | None) -> Any:
    """``label_of(path)``: the index of a file's class sub-folder among :func:`folder_class_names`.

    In a pre-split folder the classes of ``validation/`` (or ``test/``) are named like those
    of ``train/``: ``test/daisy/7.jpg`` is a daisy.
    """
    root = _check_directory(directory)
    names = folder_class_names(root)
    index = {name: i for i, name in enumerate(names)}
    pre_split = _class_root(root) != root

    def label_of(path: Path) -> int:
        parts = path.relative_to(root).parts[1:] if pre_split else path.relative_to(root).parts
        if len(parts) < 2 or parts[0] not in index:
            raise ValueError(f"{path} lies in no class sub-folder of {root} (classes: {', '.join(names)}); "
                             "move it into one, or load without labels.")
        return index[parts[0]]

    return label_of


def resize_center_square(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """Centre-crop an ``[H, W, 3]`` float image in [0, 1] to a square and resize it with antialiasing.

    The crop offsets are those of ``tf.image.crop_to_bounding_box`` in the reference:
    ``(H - side) // 2`` and ``(W - side) // 2``. PIL's bilinear filter widens its triangle
    kernel by the downscaling factor, exactly like TensorFlow's ``antialias=True``.
    """
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top:top + side, left:left + side]
    if side != image_size:
        square = np.stack(
            [np.asarray(Image.fromarray(np.ascontiguousarray(square[..., channel], dtype=np.float32))
                        .resize((image_size, image_size), Image.Resampling.BILINEAR))
             for channel in range(3)],
            axis=-1,
        )
    return np.clip(square, 0.0, 1.0).astype(np.float32, copy=False)


def _check_directory(directory: str | os.PathLike) -> Path:
    if directory is None or (isinstance(directory, str) and not directory.strip()):
        raise ValueError("directory is empty: pass the path of a folder of images.")
    root = Path(directory).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"image folder {root} does not exist; pass an existing folder of JPEG/PNG images "
            "(data_dir=, --data-dir or DDIM_DATA_DIR).")
    if not root.is_dir():
        raise ValueError(f"{root} is a file, not a folder; pass the folder that contains the images.")
    return root


def _find_images(root: Path) -> list[Path]:
    """Image files under ``root``, sorted by relative path; hidden files and folders are skipped."""
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found.extend(Path(folder) / name for name in names
                     if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _read_rgb(path: Path) -> np.ndarray:
    """Decode one file into float32 RGB ``[H, W, 3]`` in [0, 1]."""
    with Image.open(path) as image:
        image.seek(0)  # first frame of a GIF / animated WebP
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode.startswith("I;16") or image.mode in ("I", "F"):
            gray = np.asarray(image, dtype=np.float32)
            # 16-bit files (PIL's "I;16" modes, or "I" holding values above 255) span 0..65535.
            scale = 65535.0 if image.mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
            if image.mode == "F" and gray.max(initial=0) <= 1.0:
                scale = 1.0
            return np.repeat(np.clip(gray / scale, 0.0, 1.0)[..., None], 3, axis=-1)
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    return rgb / 255.0


# --------------------------------------------------------------------------- batching
class ArrayBatches(keras.utils.PyDataset):
    """Batches of an in-memory image array for Keras' ``fit``, without TensorFlow.

    Mirrors the reference's ``repeat(repetitions).shuffle().batch(drop_remainder=True)``:
    each epoch walks ``repetitions`` copies of the images in a fresh seeded order, drops the
    last incomplete batch and optionally flips images left-right at random. A batch is a
    float32 NumPy array ``[batch_size, size, size, 3]`` (Keras hands it to ``train_step``
    wrapped in a one-element tuple), or with ``class_labels`` a dict ``{"images": ...,
    "class_labels": ...}``.
    """

    def __init__(self, images: np.ndarray, batch_size: int, *, repetitions: int = 1, shuffle: bool = True,
                 flip: bool = False, seed: int | None = None, class_labels: np.ndarray | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = _check_images(images)
        self.class_labels = None if class_labels is None else _check_labels(class_labels, len(self.images))
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is invalid: it must be a positive integer.")
        if not isinstance(repetitions, int) or isinstance(repetitions, bool) or repetitions < 1:
            raise ValueError(f"repetitions={repetitions!r} is invalid: it must be a positive integer.")
        _check_enough_images(len(self.images), batch_size)
        self.batch_size = batch_size
        self.repetitions = repetitions
        self.shuffle = shuffle
        self.flip = flip
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
        self.epoch = 0
        self._start_epoch()

    def __len__(self) -> int:
        return len(self.images) * self.repetitions // self.batch_size

    def __getitem__(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch index {index} is out of range for {len(self)} batches")
        index %= len(self)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        batch = self.images[self._order[rows]]  # fancy indexing copies
        flips = self._flips[rows]
        if flips.any():
            batch[flips] = batch[flips, :, ::-1, :]
        if self.class_labels is not None:
            return {"images": batch, "class_labels": self.class_labels[self._order[rows]]}
        return batch

    def on_epoch_end(self) -> None:
        """Draw a new order (and new flips) for the next epoch, like ``tf.data``'s reshuffle."""
        self.epoch += 1
        self._start_epoch()

    def _start_epoch(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.tile(np.arange(len(self.images)), self.repetitions)
        if self.shuffle:
            rng.shuffle(order)
        self._order = order
        self._flips = rng.random(len(order)) < 0.5 if self.flip else np.zeros(len(order), dtype=bool)


def batch_images(images: np.ndarray, config: Any, training: bool, *, repeat: bool = True, shuffle: bool = True,
                 use_tf_data: bool | None = None, class_labels: np.ndarray | None = None) -> Any:
    """Turn an image array into the reference's batched pipeline.

    Returns a ``tf.data.Dataset`` (repeat, shuffle with a ``10 * batch_size`` buffer, batch
    with ``drop_remainder``, prefetch) when Keras runs on TensorFlow, and an
    :class:`ArrayBatches` doing the same in NumPy otherwise. ``use_tf_data`` forces one of
    the two. Horizontal flips are applied when ``training`` and ``config.augment_flip``.
    The reference's ``cache()`` is left out here: the images are already preprocessed and in
    memory, so a cache would only hold a second copy. With ``class_labels`` (one int per image)
    the batches are dicts ``{"images": ..., "class_labels": ...}``.
    """
    images = _check_images(images)
    if class_labels is not None:
        class_labels = _check_labels(class_labels, len(images))
    _check_enough_images(len(images), config.batch_size)
    repetitions = config.dataset_repetitions if repeat else 1
    flip = bool(training and config.augment_flip)
    if use_tf_data is None:
        use_tf_data = _tf_data_available()
    if not use_tf_data:
        return ArrayBatches(images, config.batch_size, repetitions=repetitions, shuffle=shuffle, flip=flip,
                            seed=config.seed, class_labels=class_labels)
    tf = _import_tensorflow()
    dataset = tf.data.Dataset.from_tensor_slices(
        images if class_labels is None else {"images": images, "class_labels": class_labels})
    return _finish_tf_pipeline(dataset, config, training=training, repeat=repeat, shuffle=shuffle, cache=False)


#: The attribute of a cached pipeline from :func:`_finish_tf_pipeline` that builds the same
#: pipeline without its cache; :func:`take_images` reads from that one.
_UNCACHED_PIPELINE = "_ddim_uncached_pipeline"


def _finish_tf_pipeline(dataset: Any, config: Any, *, training: bool, repeat: bool, shuffle: bool,
                        cache: bool = True) -> Any:
    """cache -> repeat -> shuffle -> (flip) -> batch -> prefetch, in the reference's order.

    An iterator that stops before the end of the first pass leaves ``cache()`` half
    written, and TensorFlow then logs "The calling iterator did not fully read the dataset
    being cached" as it discards it. Training always reads whole passes, but a preview of
    a few batches does not, so a cached pipeline carries (under ``_UNCACHED_PIPELINE``) a
    function that builds the same pipeline without the cache, for :func:`take_images`.
    """
    pipeline = _assemble_tf_pipeline(dataset, config, training=training, repeat=repeat, shuffle=shuffle,
                                     cache=cache)
    if cache:
        setattr(pipeline, _UNCACHED_PIPELINE,
                lambda: _assemble_tf_pipeline(dataset, config, training=training, repeat=repeat,
                                              shuffle=shuffle, cache=False))
    return pipeline


def _assemble_tf_pipeline(dataset: Any, config: Any, *, training: bool, repeat: bool, shuffle: bool,
                          cache: bool) -> Any:
    tf = _import_tensorflow()
    if cache:
        dataset = dataset.cache()
    if repeat:
        dataset = dataset.repeat(config.dataset_repetitions)
    if shuffle:
        # The validation set is shuffled too: KID is estimated per batch, so order matters.
        dataset = dataset.shuffle(10 * config.batch_size, seed=config.seed)
    if training and config.augment_flip:
        def flip(element):
            if isinstance(element, dict):  # a labelled dataset: flip the image, keep the label
                return {**element, "images": tf.image.random_flip_left_right(element["images"], seed=config.seed)}
            return tf.image.random_flip_left_right(element, seed=config.seed)

        dataset = dataset.map(flip)
    dataset = dataset.batch(config.batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _check_images(images: Any) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"images must be an array of shape [N, height, width, 3]; got shape {array.shape}.")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_labels(class_labels: Any, num_images: int) -> np.ndarray:
    labels = np.asarray(class_labels)
    if labels.ndim != 1 or len(labels) != num_images or labels.dtype.kind not in "iu":
        raise ValueError(f"class_labels must be {num_images} integers, one per image; got an array of shape "
                         f"{labels.shape} and dtype {labels.dtype}.")
    return labels.astype(np.int32, copy=False)


def _check_enough_images(num_images: int, batch_size: int) -> None:
    if num_images < batch_size:
        raise ValueError(
            f"only {num_images} image(s) for batch_size={batch_size}: batches drop the remainder, so "
            f"not even one batch fits; use batch_size <= {num_images} "
            f"(config.replace(batch_size={max(2, min(num_images, batch_size))})) or add images.")


def _tf_data_available() -> bool:
    return keras.backend.backend() == "tensorflow" and importlib.util.find_spec("tensorflow") is not None


def _import_tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError as err:
        raise DatasetUnavailableError(
            "tf.data pipelines need TensorFlow, which is not installed; run with KERAS_BACKEND=jax "
            "or torch (NumPy batches) or `pip install tensorflow`.") from err
    return tf


# --------------------------------------------------------------------------- datasets
def image_folder_dataset(directory: str | os.PathLike, config: Any, split: str | None = "train", *,
                         repeat: bool = True, shuffle: bool = True, labels: bool = False) -> Any:
    """The reference's pipeline over a local folder of images (see :func:`load_image_folder`)."""
    if labels:
        images, class_labels = load_image_folder(directory, config.image_size, split, labels=True)
        return batch_images(images, config, training=split == "train", repeat=repeat, shuffle=shuffle,
                            class_labels=class_labels)
    images = load_image_folder(directory, config.image_size, split)
    return batch_images(images, config, training=split == "train", repeat=repeat, shuffle=shuffle)


def flowers_dataset(config: Any, split: str = "train", *, repeat: bool = True, shuffle: bool = True,
                    labels: bool = False) -> Any:
    """Oxford Flowers 102 from TensorFlow Datasets, preprocessed and batched as in the reference.

    Raises :class:`DatasetUnavailableError` when TensorFlow Datasets is missing or the
    download fails, with the ways to continue offline. When the dataset is not prepared yet
    and no download host answers, that happens in seconds instead of after TFDS' minutes of
    retries.
    """
    if split not in TFDS_SPLITS:
        raise ValueError(f"split={split!r} is invalid: use 'train' or 'validation'.")
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DatasetUnavailableError(_unavailable_message(config.dataset_name, err)) from err
    unreachable = _unreachable_download_hosts(tfds, config.dataset_name)
    if unreachable is not None:
        cause = ConnectionError(unreachable)
        raise DatasetUnavailableError(_unavailable_message(config.dataset_name, cause)) from cause
    try:
        dataset = tfds.load(config.dataset_name, split=TFDS_SPLITS[split], shuffle_files=True)
    except Exception as err:  # noqa: BLE001 - network, DownloadError, checksum... all mean "unavailable"
        raise DatasetUnavailableError(_unavailable_message(config.dataset_name, err)) from err

    image_size = config.image_size

    def preprocess_image(example: dict) -> Any:
        image = example["image"]
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)
        # Antialiasing matters when downsampling, or fine detail aliases into noise.
        image = tf.image.resize(image, size=[image_size, image_size], antialias=True)
        image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
        if labels:  # the species, 0-101
            return {"images": image, "class_labels": tf.cast(example["label"], "int32")}
        return image

    dataset = dataset.map(preprocess_image, num_parallel_calls=tf.data.AUTOTUNE)
    return _finish_tf_pipeline(dataset, config, training=split == "train", repeat=repeat, shuffle=shuffle)


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_TFDS_MIRROR_HOST = "storage.googleapis.com"


def _unreachable_download_hosts(tfds: Any, dataset_name: str, timeout: float = 5.0) -> str | None:
    """Why downloading ``dataset_name`` cannot work right now, or None when it may.

    Offline, TFDS retries every URL with back-off for minutes before it gives up. A quick
    connection attempt to the dataset's download hosts and TFDS' mirror turns that into an
    answer in seconds. Nothing is probed when the dataset is already prepared, when a proxy
    is configured, or when the URLs are unknown: then ``tfds.load`` decides.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    try:
        builder = tfds.builder(dataset_name)
        if builder.is_prepared():
            return None
        hosts = {urlsplit(url).hostname for url in (builder.url_infos or {})} - {None}
    except Exception:  # noqa: BLE001 - unknown name etc.: tfds.load reports it properly
        return None
    if not hosts:
        return None
    failures = []
    for host in sorted(hosts) + [_TFDS_MIRROR_HOST]:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return None
        except OSError as err:
            failures.append(f"{host} ({err.strerror or err})")
    return "cannot reach " + ", ".join(failures)


def _unavailable_message(dataset_name: str, err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    cause = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    if len(cause) > 200:
        cause = cause[:197] + "..."
    return (f"the TFDS dataset {dataset_name!r} could not be loaded ({cause}). To continue, pass a local "
            "folder of images (data_dir=... in Python, --data-dir DIR on the command line, or the "
            "DDIM_DATA_DIR environment variable), or train on the offline synthetic flowers "
            "(source='synthetic').")


def load_dataset(config: Any, split: str = "train", *, data_dir: str | os.PathLike | None = None,
                 source: str = "auto", repeat: bool = True, shuffle: bool = True, labels: bool = False) -> Any:
    """The one way the CLI and notebooks get batches of training or validation images.

    ``source``: ``"auto"`` uses ``data_dir`` (or ``DDIM_DATA_DIR``) when given, else Oxford
    Flowers 102, falling back with a warning to synthetic flowers when it cannot be
    downloaded; ``"folder"`` needs ``data_dir`` or ``DDIM_DATA_DIR``; ``"tfds"`` always uses
    Oxford Flowers 102 and lets its errors through; ``"synthetic"`` draws
    ``SYNTHETIC_SIZES[split]`` flowers. ``labels=True`` yields ``{"images", "class_labels"}``
    batches for a class-conditional model; :func:`class_names` names the classes.
    """
    if source not in SOURCES:
        raise ValueError(f"source={source!r} is invalid: choose one of {', '.join(map(repr, SOURCES))}.")
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is invalid: use 'train' or 'validation'.")
    if data_dir is not None and source in ("tfds", "synthetic"):
        raise ValueError(f"data_dir={str(data_dir)!r} conflicts with source={source!r}; "
                         "drop one of them (data_dir alone reads the folder).")
    if data_dir is None and source in ("auto", "folder"):
        data_dir = os.environ.get("DDIM_DATA_DIR") or None
    if source == "folder" and data_dir is None:
        raise ValueError("source='folder' needs data_dir=... or the DDIM_DATA_DIR environment variable.")

    if data_dir is not None:
        return image_folder_dataset(data_dir, config, split, repeat=repeat, shuffle=shuffle, labels=labels)
    if source == "tfds":
        return flowers_dataset(config, split, repeat=repeat, shuffle=shuffle, labels=labels)
    if source == "auto":
        try:
            return flowers_dataset(config, split, repeat=repeat, shuffle=shuffle, labels=labels)
        except DatasetUnavailableError as err:
            warnings.warn(
                f"{err} Falling back to {SYNTHETIC_SIZES[split]} offline synthetic flowers for the "
                f"{split!r} split; samples will look like drawings, not photographs.",
                stacklevel=2)
    return _synthetic_dataset(config, split, repeat=repeat, shuffle=shuffle, labels=labels)


def _synthetic_dataset(config: Any, split: str, *, repeat: bool, shuffle: bool, labels: bool = False) -> Any:
    seed = (config.seed or 0) + (_SYNTHETIC_VALIDATION_SEED_OFFSET if split == "validation" else 0)
    if labels:
        images, class_labels = synthetic_flowers(SYNTHETIC_SIZES[split], config.image_size, seed=seed, labels=True)
        return batch_images(images, config, training=split == "train", repeat=repeat, shuffle=shuffle,
                            class_labels=class_labels)
    images = synthetic_flowers(SYNTHETIC_SIZES[split], config.image_size, seed=seed)
    return batch_images(images, config, training=split == "train", repeat=repeat, shuffle=shuffle)


def class_names(config: Any, *, data_dir: str | os.PathLike | None = None, source: str = "auto") -> list[str]:
    """The names of the classes that ``load_dataset(config, ..., labels=True)`` numbers 0, 1, 2, ...

    The sub-folders of a folder, the 102 species of Oxford Flowers 102 (from TFDS' metadata,
    in TFDS' order), or the synthetic flowers' petal colours. Same arguments as :func:`load_dataset`.
    """
    if data_dir is None and source in ("auto", "folder"):
        data_dir = os.environ.get("DDIM_DATA_DIR") or None
    if data_dir is not None and source not in ("tfds", "synthetic"):
        return folder_class_names(data_dir)
    if source == "synthetic" or (source == "auto" and importlib.util.find_spec("tensorflow_datasets") is None):
        return list(SYNTHETIC_CLASS_NAMES)
    try:
        import tensorflow_datasets as tfds

        return list(tfds.builder(config.dataset_name).info.features["label"].names)
    except Exception as err:  # noqa: BLE001 - no metadata offline: as load_dataset, fall back or fail
        if source == "tfds":
            raise DatasetUnavailableError(_unavailable_message(config.dataset_name, err)) from err
        return list(SYNTHETIC_CLASS_NAMES)


def take_images(dataset_or_array: Any, num_images: int) -> np.ndarray:
    """The first ``num_images`` images of an array, a ``tf.data.Dataset`` or any iterable of batches.

    Batches may be arrays or tensors of any backend, or tuples whose first element holds
    the images. Raises ``ValueError`` if fewer images are available. A cached pipeline of
    this module is read through its uncached twin (the same steps without ``cache()``), so
    that stopping part-way leaves no half-written cache behind for TensorFlow to warn about.
    """
    if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 0:
        raise ValueError(f"num_images={num_images!r} is invalid: it must be a non-negative integer.")
    if isinstance(dataset_or_array, np.ndarray):
        chunks: Iterable[Any] = [dataset_or_array]
    elif hasattr(dataset_or_array, "as_numpy_iterator"):  # tf.data.Dataset, without importing TF
        uncached = getattr(dataset_or_array, _UNCACHED_PIPELINE, None)
        chunks = (uncached() if uncached is not None else dataset_or_array).as_numpy_iterator()
    elif isinstance(dataset_or_array, keras.utils.PyDataset):
        chunks = (dataset_or_array[i] for i in range(len(dataset_or_array)))
    else:
        chunks = dataset_or_array

    collected, count = [], 0
    for chunk in chunks:
        if count >= num_images:
            break
        if isinstance(chunk, dict):  # {"images", "class_labels"} from a labelled dataset
            chunk = chunk["images"]
        elif isinstance(chunk, (tuple, list)):
            chunk = chunk[0]
        array = _to_numpy(chunk)
        if array.ndim == 3:  # an unbatched dataset yields single images
            array = array[None]
        collected.append(array[: num_images - count])
        count += len(collected[-1])
    if count < num_images:
        raise ValueError(f"asked for {num_images} images but the dataset holds only {count}.")
    if not collected:
        return np.zeros((0, 0, 0, 3), dtype=np.float32)
    return np.concatenate(collected).astype(np.float32, copy=False)


def _to_numpy(tensor: Any) -> np.ndarray:
    try:
        return np.asarray(tensor)
    except (TypeError, ValueError, RuntimeError):
        return np.asarray(keras.ops.convert_to_numpy(tensor))


# --------------------------------------------------------------------------- synthetic flowers
_BACKGROUND_COLORS = np.array([
    (0.20, 0.36, 0.13), (0.29, 0.43, 0.17), (0.17, 0.29, 0.14), (0.36, 0.34, 0.19),
    (0.13, 0.27, 0.19), (0.40, 0.46, 0.23), (0.33, 0.27, 0.17), (0.24, 0.40, 0.26),
], dtype=np.float32)
_PETAL_COLORS = np.array([
    (0.98, 0.85, 0.15), (0.96, 0.95, 0.92), (0.96, 0.56, 0.72), (0.86, 0.12, 0.16),
    (0.56, 0.26, 0.78), (0.98, 0.56, 0.10), (0.36, 0.46, 0.92), (0.86, 0.20, 0.60),
    (0.80, 0.66, 0.94), (0.99, 0.72, 0.55),
], dtype=np.float32)
_DISC_COLORS = np.array([
    (0.96, 0.76, 0.10), (0.45, 0.28, 0.08), (0.16, 0.10, 0.05), (0.92, 0.58, 0.10),
    (0.34, 0.50, 0.16), (0.98, 0.92, 0.45),
], dtype=np.float32)


#: The classes of the synthetic flowers: the petal colour of the main flower (``_PETAL_COLORS``' order).
SYNTHETIC_CLASS_NAMES = ("yellow", "white", "pink", "red", "purple", "orange", "blue", "magenta", "lilac", "peach")


def synthetic_flowers(num_images: int, image_size: int, seed: int = 0,
                      labels: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Procedurally drawn flowers, float32 ``[num_images, image_size, image_size, 3]`` in [0, 1].

    The offline stand-in for Oxford Flowers 102: each image is a flower (petals from a polar
    rose curve with 4-12 petals, sometimes a second inner ring, a textured centre disc, a
    soft shadow, often a stem) on a blurred green or earthy background. Petal count, shape,
    colour, size, rotation, tilt and position vary, so a model has real structure to learn.
    Image ``i`` depends only on ``(seed, i)``: the first images of a longer set are the same.
    NumPy only; roughly a millisecond per 64x64 image. With ``labels=True`` the result is
    ``(images, class_labels)``, the class being the main flower's petal colour
    (:data:`SYNTHETIC_CLASS_NAMES`).
    """
    for name, value in (("num_images", num_images), ("image_size", image_size), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name}={value!r} is invalid: it must be a non-negative integer.")
    if image_size < 1:
        raise ValueError(f"image_size={image_size!r} is invalid: it must be at least 1.")
    coords = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size
    grid_y, grid_x = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((num_images, image_size, image_size, 3), dtype=np.float32)
    class_labels = np.empty(num_images, dtype=np.int32)
    for index in range(num_images):
        rng = np.random.default_rng([int(seed), index])
        # Drawing happens channel-first ([3, H, W]): NumPy is far faster on long inner rows.
        scene, class_labels[index] = _draw_scene(rng, grid_x, grid_y)
        images[index] = scene.transpose(1, 2, 0)
    return (images, class_labels) if labels else images


def _draw_scene(rng: np.random.Generator, grid_x: np.ndarray, grid_y: np.ndarray) -> tuple[np.ndarray, int]:
    """One ``[3, H, W]`` scene and the petal-colour index of its main flower."""
    size = grid_x.shape[0]
    image = _draw_background(rng, grid_x, grid_y)
    if rng.random() < 0.3:  # a smaller, out-of-focus flower behind the main one
        corner = [float(c) for c in rng.choice([0.12, 0.88], size=2) + rng.uniform(-0.06, 0.06, size=2)]
        _draw_flower(image, rng, grid_x, grid_y, center=corner, radius=rng.uniform(0.10, 0.18), edge=2.5,
                     stem=False)
        image = _blur(image, passes=1)
    center = [float(c) for c in 0.5 + rng.uniform(-0.12, 0.12, size=2)]
    petal_color = _draw_flower(image, rng, grid_x, grid_y, center=center, radius=rng.uniform(0.22, 0.40), edge=0.8,
                               stem=rng.random() < 0.7)
    if size >= 32:
        image = _blur(image, passes=1)
    image *= 1.0 + 0.025 * rng.standard_normal(size=grid_x.shape, dtype=np.float32)  # film grain
    return np.clip(image, 0.0, 1.0), petal_color


def _draw_background(rng: np.random.Generator, grid_x: np.ndarray, grid_y: np.ndarray) -> np.ndarray:
    base = _rgb(_BACKGROUND_COLORS[rng.integers(len(_BACKGROUND_COLORS))] + rng.uniform(-0.05, 0.05, size=3))
    brightness = 1.15 - rng.uniform(0.1, 0.4) * grid_y  # light falls from above
    for _ in range(3):  # smooth, low-frequency variation of light
        fx, fy = (float(f) for f in rng.uniform(0.5, 3.0, size=2) * np.where(rng.random(2) < 0.5, -1, 1))
        brightness += rng.uniform(0.03, 0.09) * np.sin(2 * np.pi * (fx * grid_x + fy * grid_y) + rng.uniform(0, 2 * np.pi))
    grain = 0.03 * rng.standard_normal(size=grid_x.shape, dtype=np.float32)
    brightness *= 1.0 + _blur(grain[None], passes=1)[0]
    image = brightness[None] * base
    for _ in range(rng.integers(2, 5)):  # blurry leaves
        mask = _soft_ellipse(grid_x, grid_y, [float(c) for c in rng.uniform(0, 1, size=2)], rng.uniform(0.08, 0.25),
                             rng.uniform(0.3, 0.7), rng.uniform(0, np.pi), edge=6.0)
        tint = _rgb(base[:, 0, 0] * rng.uniform(0.6, 1.5) + rng.uniform(-0.04, 0.04, size=3))
        image += (0.7 * mask)[None] * (tint - image)
    return image


def _draw_flower(image: np.ndarray, rng: np.random.Generator, grid_x: np.ndarray, grid_y: np.ndarray, *,
                 center: list[float], radius: float, edge: float, stem: bool) -> int:
    """Paint one flower into the ``[3, H, W]`` ``image`` in place; ``edge`` is the edge softness in pixels.
    Returns the index of its petal colour in ``_PETAL_COLORS``."""
    size = grid_x.shape[0]
    cx, cy = center
    if stem:
        bend = rng.uniform(-0.8, 0.8)
        stem_x = cx + bend * (grid_y - cy) ** 2
        half_width = rng.uniform(0.012, 0.025) + 0.5 / size
        mask = _sigmoid((half_width - np.abs(grid_x - stem_x)) * (size / edge)) * (grid_y > cy)
        stem_color = _rgb(np.array((0.22, 0.45, 0.14)) * rng.uniform(0.7, 1.2))
        image += mask[None] * (stem_color - image)

    tilt_angle, squash = rng.uniform(0, np.pi), rng.uniform(0.75, 1.0)
    dx, dy = grid_x - cx, grid_y - cy
    u = dx * np.cos(tilt_angle) + dy * np.sin(tilt_angle)
    v = (-dx * np.sin(tilt_angle) + dy * np.cos(tilt_angle)) / squash
    r = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)

    # soft shadow a little below the flower
    shadow = _sigmoid((radius * 1.05 - np.sqrt(dx * dx + (dy - 0.03) ** 2)) * (size / 4.0))
    image *= 1.0 - 0.3 * shadow[None]

    petals = int(rng.integers(4, 13))
    rotation = rng.uniform(0, 2 * np.pi)
    petal_color = int(rng.integers(len(_PETAL_COLORS)))
    color = np.clip(_PETAL_COLORS[petal_color] + rng.uniform(-0.06, 0.06, size=3), 0, 1)
    eye = rng.random() < 0.35  # a darker or contrasting ring near the centre, like a pansy
    eye_color = _rgb(color * rng.uniform(0.3, 0.6) if rng.random() < 0.6
                     else _PETAL_COLORS[rng.integers(len(_PETAL_COLORS))])
    layers = [(radius, rotation, _rgb(color))]
    if rng.random() < 0.5:
        inner = np.clip(color * rng.uniform(0.8, 1.15) + rng.uniform(-0.05, 0.05, size=3), 0, 1)
        layers.append((radius * rng.uniform(0.55, 0.75), rotation + np.pi / petals, _rgb(inner)))
    base_width, sharpness = rng.uniform(0.15, 0.5), rng.uniform(0.5, 2.5)
    for layer_radius, layer_rotation, layer_color in layers:
        wave = np.abs(np.cos((0.5 * petals) * (theta - layer_rotation)))
        edge_radius = layer_radius * (base_width + (1 - base_width) * wave ** sharpness)
        mask = _sigmoid((edge_radius - r) * (size / edge))
        relative = np.minimum(r / np.maximum(edge_radius, 1e-6), 1.0)
        shade = (0.72 + 0.28 * relative) * (0.8 + 0.2 * wave)  # darker seams and centre, light tips
        paint = shade[None] * layer_color
        if eye:
            ring = _sigmoid((0.45 * layer_radius - r) * (size / 2.0))[None]
            paint += ring * (shade[None] * eye_color - paint)
        image += mask[None] * (paint - image)

    disc_radius = radius * rng.uniform(0.15, 0.35)
    disc = _sigmoid((disc_radius - r) * (size / edge))
    disc_color = _rgb(_DISC_COLORS[rng.integers(len(_DISC_COLORS))] + rng.uniform(-0.05, 0.05, size=3))
    seeds = 1.0 + 0.15 * rng.standard_normal(size=r.shape, dtype=np.float32)
    disc_shade = (1.0 - 0.35 * np.minimum(r / disc_radius, 1.0) ** 2) * seeds
    image += disc[None] * (disc_shade[None] * disc_color - image)
    return petal_color


def _rgb(color: np.ndarray) -> np.ndarray:
    """A colour as a float32 ``[3, 1, 1]`` array that broadcasts over a channel-first image."""
    return np.asarray(color, dtype=np.float32).reshape(3, 1, 1)


def _soft_ellipse(grid_x: np.ndarray, grid_y: np.ndarray, center: list[float], radius: float, aspect: float,
                  angle: float, edge: float) -> np.ndarray:
    dx, dy = grid_x - center[0], grid_y - center[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
    return _sigmoid((radius - np.sqrt(u * u + v * v)) * (grid_x.shape[0] / edge))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * np.tanh(0.5 * x) + 0.5).astype(np.float32, copy=False)


def _blur(image: np.ndarray, passes: int) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur of a ``[C, H, W]`` image with edge padding, ``passes`` times."""
    for _ in range(passes):
        padded = np.concatenate([image[:, :1], image, image[:, -1:]], axis=1)
        image = 0.25 * (padded[:, :-2] + padded[:, 2:]) + 0.5 * image
        padded = np.concatenate([image[:, :, :1], image, image[:, :, -1:]], axis=2)
        image = 0.25 * (padded[:, :, :-2] + padded[:, :, 2:]) + 0.5 * image
    return image.astype(np.float32, copy=False)
