"""The InceptionV3 encoder behind KID: its weights, the model, and features of many images.

KID (see :mod:`ddim_tutorial.metrics.kid`) compares images through the 2048 features of an
ImageNet-trained InceptionV3. This module finds the weights, builds the encoder (float32
under any dtype policy, cached per size and weights file) and runs it over arrays or
datasets in fixed-size batches, so that the compiled forward pass is traced once.

Weights: ``weights="imagenet"`` looks for the Keras file
``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` in this order: an explicit
path, ``$DDIM_INCEPTION_WEIGHTS``, Keras' cache (``$KERAS_HOME/models`` or
``~/.keras/models``), then a download. ``weights=None`` gives random features: only for
smoke tests, the numbers are not comparable to anything.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from ddim_tutorial.checks import check_positive_int
from ddim_tutorial.runtime.arrays import dtype_policy, iterate_batches, to_numpy
from ddim_tutorial.runtime.backends import no_grad

__all__ = [
    "InceptionWeightsUnavailableError",
    "RandomInceptionWeightsWarning",
    "build_inception_encoder",
    "clear_encoder_cache",
    "extract_features",
    "inception_weights_cache_path",
    "resolve_inception_weights",
]

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                         "inception_v3/" + INCEPTION_WEIGHTS_FILE)
INCEPTION_WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
WEIGHTS_ENV_VAR = "DDIM_INCEPTION_WEIGHTS"
FEATURE_DIMENSIONS = 2048
MIN_KID_IMAGE_SIZE = 75  # the smallest input InceptionV3 accepts

# Tolerance of the [0, 1] pixel range check (resizing can overshoot a little).
_PIXEL_RANGE_TOLERANCE = 0.05


class InceptionWeightsUnavailableError(RuntimeError):
    """The ImageNet weights of InceptionV3 could not be found or downloaded."""


class RandomInceptionWeightsWarning(UserWarning):
    """KID is computed with a randomly initialised InceptionV3 (``weights=None``)."""


# --------------------------------------------------------------------------- weights
def _keras_home() -> str:
    """Keras' cache root as Keras itself picks it, but read now (tests change KERAS_HOME)."""
    if "KERAS_HOME" in os.environ:
        return os.path.expanduser(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def inception_weights_cache_path() -> str:
    """Where Keras keeps (and downloads) the notop InceptionV3 weights."""
    return os.path.join(_keras_home(), "models", INCEPTION_WEIGHTS_FILE)


def _where_to_put_weights() -> str:
    return (f"KID needs the file {INCEPTION_WEIGHTS_FILE} (about 88 MB). Fetch it from "
            f"{INCEPTION_WEIGHTS_URL} on a machine with internet access, then either set the "
            f"environment variable {WEIGHTS_ENV_VAR}=/path/to/{INCEPTION_WEIGHTS_FILE}, copy it to "
            f"{inception_weights_cache_path()} (Keras' cache; KERAS_HOME moves it), or pass its path "
            "as weights=. For smoke tests only, weights=None uses random weights (KID values are then "
            "not comparable to anything).")


def resolve_inception_weights(weights: Any = "imagenet") -> str | None:
    """Return a local weights file for InceptionV3, or None for random weights.

    ``weights`` is ``"imagenet"``, a path to an ``.h5`` file, or None. For ``"imagenet"`` the
    order is: ``$DDIM_INCEPTION_WEIGHTS``, then Keras' cache, then a download into that cache.
    Raises :class:`InceptionWeightsUnavailableError` (saying where to put the file) when none
    of them works, e.g. offline. Local files are trusted as they are (no checksum), so a file
    fetched by hand or written by a test works; a broken one fails when it is loaded.
    """
    if weights is None:
        warnings.warn(
            "KID with weights=None uses a randomly initialised InceptionV3: its values only "
            "compare runs made with these same random weights in this process and are NOT "
            "comparable to any published or ImageNet-based KID. Use weights='imagenet' for real numbers.",
            RandomInceptionWeightsWarning, stacklevel=2)
        return None
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str) or not weights:
        raise ValueError(f"weights={weights!r} is invalid: pass 'imagenet', a path to an .h5 weights "
                         "file, or None (random weights, smoke tests only).")
    if weights != "imagenet":
        path = os.path.abspath(os.path.expanduser(weights))
        if not path.endswith((".h5", ".hdf5")):
            raise ValueError(f"weights={weights!r} is invalid: an explicit weights file must be an .h5 "
                             f"file such as {INCEPTION_WEIGHTS_FILE}.")
        if not os.path.isfile(path):
            raise InceptionWeightsUnavailableError(
                f"weights={weights!r} names no existing file. {_where_to_put_weights()}")
        return path
    from_env = os.environ.get(WEIGHTS_ENV_VAR)
    if from_env:
        path = os.path.abspath(os.path.expanduser(from_env))
        if not os.path.isfile(path):
            raise InceptionWeightsUnavailableError(
                f"{WEIGHTS_ENV_VAR}={from_env!r} names no existing file; fix or unset it. "
                f"{_where_to_put_weights()}")
        return path
    cached = inception_weights_cache_path()
    if os.path.isfile(cached):
        return cached
    try:
        return _download_inception_weights()
    except Exception as error:  # any network / filesystem failure means "not available"
        raise InceptionWeightsUnavailableError(
            f"Could not download the InceptionV3 ImageNet weights ({type(error).__name__}: {error}). "
            f"{_where_to_put_weights()}") from error


def _download_inception_weights() -> str:
    """Download the notop weights into Keras' cache (the path checked above)."""
    return keras.utils.get_file(INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, cache_subdir="models",
                                file_hash=INCEPTION_WEIGHTS_MD5, cache_dir=_keras_home())


# --------------------------------------------------------------------------- encoder
_ENCODERS: dict[tuple, keras.Model] = {}
_EXTRACTORS: dict[tuple[int, int], "_FeatureExtractor"] = {}


def clear_encoder_cache() -> None:
    """Forget cached encoders and their compiled feature functions (frees their memory).

    The compiled functions also hold encoders passed to :func:`extract_features` by hand.
    """
    _ENCODERS.clear()
    _EXTRACTORS.clear()


def build_inception_encoder(image_size: int, kid_image_size: int = 75, weights: Any = "imagenet",
                            *, cache: bool = True) -> keras.Model:
    """InceptionV3 feature extractor: [B, image_size, image_size, 3] pixels in [0, 1] -> [B, 2048].

    Pixels are scaled to 0..255, resized to ``kid_image_size`` (75 is the smallest size the
    network accepts; the example uses it for speed) and mapped to [-1, 1] as InceptionV3's
    ImageNet training did; the last feature map is average pooled. Every layer is float32,
    whatever the global dtype policy. Only built-in layers are used (no Lambda), so the model
    serialises on every backend.

    Encoders are cached per (sizes, weights file), because building one costs seconds and
    every KID evaluation would otherwise rebuild it; ``cache=False`` builds a fresh one.
    """
    check_positive_int("image_size", image_size)
    check_positive_int("kid_image_size", kid_image_size, MIN_KID_IMAGE_SIZE,
                       advice=f"use an integer >= {MIN_KID_IMAGE_SIZE}, the smallest input InceptionV3 accepts")
    weights_path = resolve_inception_weights(weights)
    key = (image_size, kid_image_size, weights_path, _file_stamp(weights_path))
    if cache and key in _ENCODERS:
        return _ENCODERS[key]
    if weights_path is not None:
        _check_hdf5(weights_path)
    with dtype_policy("float32"):
        images = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
        x = layers.Rescaling(255.0, name="pixels_to_0_255")(images)
        x = layers.Resizing(kid_image_size, kid_image_size, name="resize_for_inception")(x)
        # InceptionV3's own preprocessing, x / 127.5 - 1, as a serialisable built-in layer.
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="inception_preprocessing")(x)
        try:
            inception = keras.applications.InceptionV3(
                include_top=False, weights=weights_path, input_shape=(kid_image_size, kid_image_size, 3))
        except (OSError, ValueError, KeyError) as error:
            raise InceptionWeightsUnavailableError(
                f"The weights file {weights_path} could not be loaded into InceptionV3 "
                f"({type(error).__name__}: {error}); it is probably truncated or not the notop "
                f"InceptionV3 file. {_where_to_put_weights()}") from error
        features = layers.GlobalAveragePooling2D(name="average_pool")(inception(x))
        encoder = keras.Model(images, features, name="inception_encoder")
    encoder.trainable = False
    if cache:
        _ENCODERS[key] = encoder
    return encoder


def _check_hdf5(path: str) -> None:
    """Refuse a non-HDF5 file before spending seconds on building the network."""
    import h5py

    if not h5py.is_hdf5(path):
        raise InceptionWeightsUnavailableError(
            f"The weights file {path} is not an HDF5 file (truncated download or wrong file?). "
            f"{_where_to_put_weights()}")


def _file_stamp(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_size)


def _encoder_image_size(encoder: keras.Model) -> int:
    shape = encoder.input_shape
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(f"encoder input shape {shape} is invalid: expected (None, size, size, 3), "
                         "as build_inception_encoder makes.")
    return int(shape[1])


def as_pixel_batch(batch: Any, name: str) -> np.ndarray:
    """Validate a [B, H, W, 3] batch of pixel-space images and return it as float32.

    Conversion rule: uint8 images (0..255) are divided by 255; float images must already
    lie in [0, 1]; other integer or boolean dtypes are refused.
    """
    if isinstance(batch, dict):
        raise ValueError(f"{name} yields dicts (keys {sorted(batch)}); map it to image batches first, "
                         "e.g. dataset.map(lambda d: d['image']) rescaled to [0, 1].")
    if isinstance(batch, (tuple, list)) and batch and not isinstance(batch[0], (int, float)):
        batch = batch[0]  # (images, labels) pairs from Keras / torch loaders
    array = to_numpy(batch)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{name} has shape {tuple(array.shape)}; expected 4-D [batch, height, width, 3] "
                         "RGB images (stack single images with np.stack).")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype.kind != "f" and array.dtype.name != "bfloat16":
        raise ValueError(f"{name} has dtype {array.dtype}; expected float images in [0, 1] (or uint8 "
                         "in 0..255, which are divided by 255). Convert with images.astype('float32') / 255.")
    array = array.astype(np.float32)
    if array.size:
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite pixels (a diverged model?).")
        low, high = float(array.min()), float(array.max())
        if low < -_PIXEL_RANGE_TOLERANCE or high > 1.0 + _PIXEL_RANGE_TOLERANCE:
            raise ValueError(f"{name} has pixel values in [{low:.3g}, {high:.3g}]; expected pixel space "
                             "[0, 1] (divide 0..255 images by 255; map [-1, 1] images with (x + 1) / 2).")
    return array


def iterate_pixel_batches(images_or_batches: Any, name: str) -> Iterator[np.ndarray]:
    """Validated float32 batches from an image array or an iterable of batches."""
    if hasattr(images_or_batches, "shape") and hasattr(images_or_batches, "dtype"):
        yield as_pixel_batch(images_or_batches, name)
        return
    if isinstance(images_or_batches, (str, bytes, dict)) or not (
            isinstance(images_or_batches, Iterable) or hasattr(images_or_batches, "as_numpy_iterator")):
        raise ValueError(f"{name} of type {type(images_or_batches).__name__} is invalid: pass an image "
                         "array [N, H, W, 3] in [0, 1] or an iterable of such batches.")
    for batch in iterate_batches(images_or_batches):
        yield as_pixel_batch(batch, name)


def _fixed_size_batches(batches: Iterable[np.ndarray], batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Re-cut batches to exactly ``batch_size`` images, zero-padding the last one.

    Yields ``(batch, num_valid)``: one fixed shape means the compiled encoder is traced once.
    """
    pending: list[np.ndarray] = []
    pending_count = 0
    for batch in batches:
        start = 0
        while start < len(batch):
            take = min(batch_size - pending_count, len(batch) - start)
            pending.append(batch[start:start + take])
            pending_count += take
            start += take
            if pending_count == batch_size:
                yield np.concatenate(pending), batch_size
                pending, pending_count = [], 0
    if pending_count:
        partial = np.concatenate(pending)
        padding = np.zeros((batch_size - pending_count, *partial.shape[1:]), dtype=partial.dtype)
        yield np.concatenate([partial, padding]), pending_count


class _FeatureExtractor:
    """The encoder's forward pass compiled once for one batch size.

    ``traces`` counts how often the Python body was traced (TensorFlow / JAX); torch runs
    eagerly under ``no_grad`` and never traces.
    """

    def __init__(self, encoder: keras.Model, batch_size: int) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.traces = 0
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            def forward(trainable: Any, non_trainable: Any, images: Any) -> Any:
                self.traces += 1
                features, _ = encoder.stateless_call(trainable, non_trainable, images, training=False)
                return features

            jitted = jax.jit(forward)
            # Weights go in as arguments, not as 22M baked-in constants.
            self._call = lambda images: jitted([v.value for v in encoder.trainable_variables],
                                               [v.value for v in encoder.non_trainable_variables], images)
        elif backend == "tensorflow":
            import tensorflow as tf

            size = _encoder_image_size(encoder)

            @tf.function(input_signature=[tf.TensorSpec([batch_size, size, size, 3], tf.float32)])
            def forward(images: Any) -> Any:
                self.traces += 1
                return encoder(images, training=False)

            self._call = forward
        else:
            def forward(images: Any) -> Any:
                with no_grad():
                    return encoder(ops.convert_to_tensor(images), training=False)

            self._call = forward

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(self._call(images)), dtype=np.float32)


def _feature_extractor(encoder: keras.Model, batch_size: int) -> _FeatureExtractor:
    key = (id(encoder), batch_size)
    extractor = _EXTRACTORS.get(key)
    if extractor is None or extractor.encoder is not encoder:
        extractor = _EXTRACTORS[key] = _FeatureExtractor(encoder, batch_size)
    return extractor


def extract_features(images_or_batches: Any, encoder: keras.Model | None = None, *,
                     image_size: int | None = None, batch_size: int = 50, weights: Any = "imagenet",
                     kid_image_size: int = 75, name: str = "images") -> np.ndarray:
    """InceptionV3 features [N, 2048] (float32) of pixel-space images, batch by batch.

    ``images_or_batches`` is an array [N, H, W, 3] in [0, 1] (uint8 0..255 is divided by
    255) or an iterable of such batches (a tf.data.Dataset, a list, a generator; an
    ``(images, labels)`` tuple contributes its images). Batches are re-cut to exactly
    ``batch_size`` (the last one zero-padded, its padding dropped again) so the compiled
    forward pass is traced once. Without ``encoder`` the cached one for
    ``(image_size, kid_image_size, weights)`` is used; ``image_size`` defaults to the images'.
    """
    check_positive_int("batch_size", batch_size)
    batches = iterate_pixel_batches(images_or_batches, name)
    first = next(batches, None)
    if first is None or len(first) == 0:
        raise ValueError(f"{name} holds no images.")
    height, width = first.shape[1:3]
    if encoder is None:
        if height != width:
            raise ValueError(f"{name} are {height}x{width}; KID's encoder takes square images.")
        if image_size is not None and image_size != height:
            raise ValueError(f"{name} are {height}x{width} but image_size={image_size}; they must match.")
        encoder = build_inception_encoder(int(height), kid_image_size, weights)
    size = _encoder_image_size(encoder)
    extractor = _feature_extractor(encoder, batch_size)

    def checked() -> Iterator[np.ndarray]:
        for batch in itertools.chain([first], batches):
            if batch.shape[1:3] != (size, size):
                raise ValueError(f"{name} has a batch of {batch.shape[1]}x{batch.shape[2]} images but the "
                                 f"encoder expects {size}x{size}; all images must have one size.")
            yield batch

    features = [extractor(batch)[:valid] for batch, valid in _fixed_size_batches(checked(), batch_size)]
    return np.concatenate(features)
