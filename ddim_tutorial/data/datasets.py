"""Training images: Oxford Flowers 102, a folder of your own, or offline synthetic flowers.

The reference example streams Oxford Flowers 102 from TensorFlow Datasets, crops the
centre square, resizes it with antialiasing, scales to ``[0, 1]``, then caches, repeats,
shuffles and batches. :func:`load_dataset` is the single entry point that the CLI and the
notebooks use; it picks one of three sources:

* a local image folder (``data_dir=`` or the ``DDIM_DATA_DIR`` environment variable),
  read by :mod:`ddim_tutorial.data.folders` with PIL and NumPy only, so no TensorFlow is needed;
* Oxford Flowers 102 through ``tensorflow_datasets`` (needs TensorFlow and a download);
* procedurally drawn flowers (:mod:`ddim_tutorial.data.synthetic`), which need nothing at all
  and are the fallback when the download is impossible.

Batches are ``tf.data`` datasets when Keras runs on TensorFlow and
``keras.utils.PyDataset`` objects otherwise, so JAX and PyTorch users never import
TensorFlow. Either way a batch is a float32 array ``[batch_size, size, size, 3]`` in
``[0, 1]`` with no labels, or with ``labels=True`` (for a class-conditional model) a dict
``{"images": ..., "class_labels": ...}``: a folder's labels are its sub-folders (one per
class, sorted by name), Oxford Flowers 102's are its 102 species, and the synthetic
flowers' are their petal colours (``SYNTHETIC_CLASS_NAMES``).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import warnings
from typing import Any, Iterable
from urllib.parse import urlsplit

import keras
import numpy as np

from ddim_tutorial.checks import SOURCES, check_positive_int
from ddim_tutorial.data.folders import SPLITS, folder_class_names, load_image_folder
from ddim_tutorial.data.synthetic import SYNTHETIC_CLASS_NAMES, synthetic_flowers
from ddim_tutorial.runtime.arrays import iterate_batches, to_numpy

__all__ = ["load_dataset", "DatasetUnavailableError", "batch_images", "take_images", "class_names"]

#: The reference's 80/20 re-split of Oxford Flowers 102 (all three TFDS splits pooled).
TFDS_SPLITS = {
    "train": "train[:80%]+validation[:80%]+test[:80%]",
    "validation": "train[80%:]+validation[80%:]+test[80%:]",
}

#: Images in each of those splits (TFDS rounds each 80 % boundary: 816 + 816 + 4,919 and 204 + 204 + 1,230).
FLOWERS_SPLIT_SIZES = {"train": 6551, "validation": 1638}

#: How many synthetic flowers :func:`load_dataset` draws for each split.
SYNTHETIC_SIZES = {"train": 800, "validation": 200}


_SYNTHETIC_VALIDATION_SEED_OFFSET = 10_000


class DatasetUnavailableError(RuntimeError):
    """The requested dataset cannot be loaded in this environment (no TFDS, no network)."""


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
        _check_count("repetitions", repetitions)
        self.images, self.class_labels = _check_batchable(images, class_labels, batch_size, repetitions)
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
    if use_tf_data is None:
        use_tf_data = _tf_data_available()
    repetitions = config.dataset_repetitions if repeat else 1
    flip = bool(training and config.augment_flip)
    if not use_tf_data:  # ArrayBatches checks the images and labels itself
        return ArrayBatches(images, config.batch_size, repetitions=repetitions, shuffle=shuffle, flip=flip,
                            seed=config.seed, class_labels=class_labels)
    images, class_labels = _check_batchable(images, class_labels, config.batch_size, repetitions)
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
    tf = _import_tensorflow()
    pipeline = dataset.cache() if cache else dataset
    if repeat:
        pipeline = pipeline.repeat(config.dataset_repetitions)
    if shuffle:
        # The validation set is shuffled too: KID is estimated per batch, so order matters.
        pipeline = pipeline.shuffle(10 * config.batch_size, seed=config.seed)
    if training and config.augment_flip:
        def flip(element):
            if isinstance(element, dict):  # a labelled dataset: flip the image, keep the label
                return {**element, "images": tf.image.random_flip_left_right(element["images"], seed=config.seed)}
            return tf.image.random_flip_left_right(element, seed=config.seed)

        pipeline = pipeline.map(flip)
    pipeline = pipeline.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if cache:
        setattr(pipeline, _UNCACHED_PIPELINE,
                lambda: _finish_tf_pipeline(dataset, config, training=training, repeat=repeat, shuffle=shuffle,
                                            cache=False))
    return pipeline


def for_partial_reading(dataset: Any) -> Any:
    """The pipeline to read when stopping part-way: a cached pipeline's uncached twin, else itself."""
    uncached = getattr(dataset, _UNCACHED_PIPELINE, None)
    return uncached() if uncached is not None else dataset


def _check_batchable(images: Any, class_labels: Any, batch_size: int,
                     repetitions: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as contiguous float32 ``[N, H, W, 3]``, labels as int32 ``[N]`` (or None), enough for a batch.

    An epoch walks ``repetitions`` copies of the images before batching (as the reference's
    ``repeat().shuffle().batch()``), so a small folder fills a batch with its repetitions.
    """
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"images must be an array of shape [N, height, width, 3]; got shape {array.shape}.")
    if class_labels is not None:
        labels = np.asarray(class_labels)
        if labels.ndim != 1 or len(labels) != len(array) or labels.dtype.kind not in "iu":
            raise ValueError(f"class_labels must be {len(array)} integers, one per image; got an array of shape "
                             f"{labels.shape} and dtype {labels.dtype}.")
        class_labels = labels.astype(np.int32, copy=False)
    _check_count("batch_size", batch_size)
    if len(array) * repetitions < batch_size:
        repeated = "" if repetitions == 1 else f", repeated {repetitions} times,"
        most = len(array) * repetitions
        raise ValueError(
            f"only {len(array)} image(s){repeated} for batch_size={batch_size}: batches drop the remainder, so "
            f"not even one batch fits; use batch_size <= {most} "
            f"(config.replace(batch_size={max(2, min(most, batch_size))})) or add images.")
    return np.ascontiguousarray(array, dtype=np.float32), class_labels


def _check_count(name: str, value: Any, minimum: int = 1) -> None:
    """Raise unless ``value`` is an int (not a bool) of at least ``minimum`` (1: positive, 0: non-negative)."""
    kind = "a positive integer" if minimum == 1 else "a non-negative integer"
    check_positive_int(name, value, minimum, advice=f"it must be {kind}")


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
    """The reference's pipeline over a local folder of images
    (see :func:`~ddim_tutorial.data.folders.load_image_folder`)."""
    loaded = load_image_folder(directory, config.image_size, split, labels=labels)
    return _batch_loaded(loaded, config, split, repeat=repeat, shuffle=shuffle, labels=labels)


def _batch_loaded(loaded: Any, config: Any, split: str | None, *, repeat: bool, shuffle: bool, labels: bool) -> Any:
    """:func:`batch_images` of ``images`` or of ``(images, class_labels)`` when ``labels``."""
    images, class_labels = loaded if labels else (loaded, None)
    if split != "train" and 0 < len(images) < config.batch_size:
        # A small held-out split (a folder of a few dozen photographs) still gives one smaller
        # validation batch instead of none: evaluation needs no fixed batch size.
        config = config.replace(batch_size=len(images))
    return batch_images(images, config, training=split == "train", repeat=repeat, shuffle=shuffle,
                        class_labels=class_labels)


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
        raise _unavailable_error(config.dataset_name, err) from err
    unreachable = _unreachable_download_hosts(tfds, config.dataset_name)
    if unreachable is not None:
        cause = ConnectionError(unreachable)
        raise _unavailable_error(config.dataset_name, cause) from cause
    try:
        dataset = tfds.load(config.dataset_name, split=TFDS_SPLITS[split], shuffle_files=True)
    except Exception as err:  # noqa: BLE001 - network, DownloadError, checksum... all mean "unavailable"
        raise _unavailable_error(config.dataset_name, err) from err

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


def _unavailable_error(dataset_name: str, err: BaseException) -> DatasetUnavailableError:
    lines = str(err).strip().splitlines()
    cause = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    if len(cause) > 200:
        cause = cause[:197] + "..."
    return DatasetUnavailableError(
        f"the TFDS dataset {dataset_name!r} could not be loaded ({cause}). To continue, pass a local "
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
    data_dir = _data_dir(data_dir, source)
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


def _data_dir(data_dir: str | os.PathLike | None, source: str) -> str | os.PathLike | None:
    """``data_dir``, or for the sources that read folders the ``DDIM_DATA_DIR`` environment variable."""
    if data_dir is None and source in ("auto", "folder"):
        return os.environ.get("DDIM_DATA_DIR") or None
    return data_dir


def _synthetic_dataset(config: Any, split: str, *, repeat: bool, shuffle: bool, labels: bool = False) -> Any:
    seed = (config.seed or 0) + (_SYNTHETIC_VALIDATION_SEED_OFFSET if split == "validation" else 0)
    loaded = synthetic_flowers(SYNTHETIC_SIZES[split], config.image_size, seed=seed, labels=labels)
    return _batch_loaded(loaded, config, split, repeat=repeat, shuffle=shuffle, labels=labels)


def class_names(config: Any, *, data_dir: str | os.PathLike | None = None, source: str = "auto") -> list[str]:
    """The names of the classes that ``load_dataset(config, ..., labels=True)`` numbers 0, 1, 2, ...

    The sub-folders of a folder, the 102 species of Oxford Flowers 102 (from TFDS' metadata,
    in TFDS' order), or the synthetic flowers' petal colours. Same arguments as :func:`load_dataset`.
    """
    data_dir = _data_dir(data_dir, source)
    if data_dir is not None and source not in ("tfds", "synthetic"):
        return folder_class_names(data_dir)
    if source == "synthetic" or (source == "auto" and importlib.util.find_spec("tensorflow_datasets") is None):
        return list(SYNTHETIC_CLASS_NAMES)
    try:
        import tensorflow_datasets as tfds

        return list(tfds.builder(config.dataset_name).info.features["label"].names)
    except Exception as err:  # noqa: BLE001 - no metadata offline: as load_dataset, fall back or fail
        if source == "tfds":
            raise _unavailable_error(config.dataset_name, err) from err
        return list(SYNTHETIC_CLASS_NAMES)


def take_images(dataset_or_array: Any, num_images: int, *, at_most: bool = False) -> np.ndarray:
    """The first ``num_images`` images of an array, a ``tf.data.Dataset`` or any iterable of batches.

    Batches may be arrays or tensors of any backend, or tuples whose first element holds
    the images. Raises ``ValueError`` if fewer images are available, unless ``at_most``
    (then all there are, up to ``num_images``). A cached pipeline of
    this module is read through its uncached twin (the same steps without ``cache()``), so
    that stopping part-way leaves no half-written cache behind for TensorFlow to warn about.
    """
    _check_count("num_images", num_images, minimum=0)
    if isinstance(dataset_or_array, np.ndarray):
        chunks: Iterable[Any] = [dataset_or_array]
    else:
        chunks = iterate_batches(for_partial_reading(dataset_or_array))

    collected, count = [], 0
    for chunk in chunks:
        if count >= num_images:
            break
        if isinstance(chunk, dict):  # {"images", "class_labels"} from a labelled dataset
            chunk = chunk["images"]
        elif isinstance(chunk, (tuple, list)):
            chunk = chunk[0]
        array = to_numpy(chunk)
        if array.ndim == 3:  # an unbatched dataset yields single images
            array = array[None]
        collected.append(array[: num_images - count])
        count += len(collected[-1])
    if count < num_images and not at_most:
        raise ValueError(f"asked for {num_images} images but the dataset holds only {count}.")
    if not collected:
        return np.zeros((0, 0, 0, 3), dtype=np.float32)
    return np.concatenate(collected).astype(np.float32, copy=False)


