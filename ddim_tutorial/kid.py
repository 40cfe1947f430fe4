"""Kernel Inception Distance (KID): how far generated images are from real ones.

KID compares two sets of images through the features of an ImageNet-trained InceptionV3.
It is the squared maximum mean discrepancy (MMD^2) between the two feature sets under the
polynomial kernel ``k(x, y) = (x . y / d + 1) ** 3``. Unlike FID it has an unbiased
estimator, so even small samples give a fair (if noisy) number; 0 means "indistinguishable".

Two ways to estimate it live here:

* :class:`KID`, a Keras metric for ``test_step``: one unbiased estimate per batch, averaged
  over batches, exactly like the Keras DDIM example. Cheap and good for tracking training.
* :func:`kid_from_features` / :func:`compute_kid` for evaluation: features of *all* images
  first, then the mean and standard deviation over random subsets (the KID paper's and
  torch-fidelity's convention), reported as ``KID = mean ± std``.

Numerics: the encoder always runs in float32 (also under a mixed-precision policy) and the
kernel sums run in float64, so the cubic kernel neither overflows nor cancels away the
digits of a small KID. (Inside a compiled JAX step without ``jax_enable_x64`` float64 does
not exist; the metric then sums in float32, which is ample for 2048-d Inception features.)

Weights: ``weights="imagenet"`` looks for the Keras file
``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` in this order: an explicit
path, ``$DDIM_INCEPTION_WEIGHTS``, Keras' cache (``$KERAS_HOME/models`` or
``~/.keras/models``), then a download. ``weights=None`` gives random features: only for
smoke tests, the numbers are not comparable to anything.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "KID",
    "KIDResult",
    "InceptionWeightsUnavailableError",
    "RandomInceptionWeightsWarning",
    "build_inception_encoder",
    "clear_encoder_cache",
    "compute_kid",
    "extract_features",
    "inception_weights_cache_path",
    "kid_from_features",
    "kid_per_batch",
    "polynomial_kernel",
    "resolve_inception_weights",
]

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                         "inception_v3/" + INCEPTION_WEIGHTS_FILE)
INCEPTION_WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
WEIGHTS_ENV_VAR = "DDIM_INCEPTION_WEIGHTS"
FEATURE_DIMENSIONS = 2048
MIN_KID_IMAGE_SIZE = 75  # the smallest input InceptionV3 accepts

# Above this many bytes of float64 kernel matrices, kid_from_features computes the kernels
# subset by subset instead of once for all pairs.
_FULL_KERNEL_BUDGET_BYTES = 512 * 2**20
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


class _float32_policy:
    """Build layers under the float32 policy whatever the global (mixed) policy is."""

    def __enter__(self) -> None:
        self.previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("float32")

    def __exit__(self, *exc: Any) -> None:
        keras.config.set_dtype_policy(self.previous)


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
    _check_size("image_size", image_size, minimum=1)
    _check_size("kid_image_size", kid_image_size, minimum=MIN_KID_IMAGE_SIZE)
    weights_path = resolve_inception_weights(weights)
    key = (image_size, kid_image_size, weights_path, _file_stamp(weights_path))
    if cache and key in _ENCODERS:
        return _ENCODERS[key]
    if weights_path is not None:
        _check_hdf5(weights_path)
    with _float32_policy():
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


def _check_size(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        extra = " (the smallest input InceptionV3 accepts)" if minimum == MIN_KID_IMAGE_SIZE else ""
        raise ValueError(f"{name}={value!r} is invalid: it must be an integer >= {minimum}{extra}.")


def _encoder_image_size(encoder: keras.Model) -> int:
    shape = encoder.input_shape
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(f"encoder input shape {shape} is invalid: expected (None, size, size, 3), "
                         "as build_inception_encoder makes.")
    return int(shape[1])


# ------------------------------------------------------------------- the estimators
def _as_feature_matrix(features: Any, name: str) -> np.ndarray:
    """Features as a float64 [n, d] NumPy matrix, with a clear error for bad shapes."""
    array = _to_numpy(features, name)
    if array.dtype.kind not in "fiu" and array.dtype.name != "bfloat16":
        raise ValueError(f"{name} has dtype {array.dtype}; expected numeric features.")
    array = array.astype(np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} has shape {array.shape}; expected a 2-D [num_images, feature_dims] matrix.")
    if array.shape[0] < 2:
        raise ValueError(f"{name} holds {array.shape[0]} feature vector(s); the unbiased KID estimator "
                         "needs at least 2 per set.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _check_same_width(real: np.ndarray, generated: np.ndarray) -> None:
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"real_features have {real.shape[1]} dimensions but generated_features have "
                         f"{generated.shape[1]}; both must come from the same encoder.")


def polynomial_kernel(features_1: Any, features_2: Any) -> np.ndarray:
    """The KID kernel ``(x . y / d + 1) ** 3`` for all pairs, in float64 ([n1, n2])."""
    features_1 = np.asarray(_to_numpy(features_1, "features_1"), dtype=np.float64)
    features_2 = np.asarray(_to_numpy(features_2, "features_2"), dtype=np.float64)
    if features_1.ndim != 2 or features_2.ndim != 2 or features_1.shape[1] != features_2.shape[1]:
        raise ValueError(f"features_1 {features_1.shape} and features_2 {features_2.shape} must be 2-D "
                         "matrices with the same number of columns.")
    base = features_1 @ features_2.T / features_1.shape[1] + 1.0
    return base * base * base


def _unbiased_mmd2(kernel_real: np.ndarray, kernel_generated: np.ndarray, kernel_cross: np.ndarray) -> float:
    """MMD^2 from the three kernel blocks: within-set means skip the diagonal, cross is a plain mean."""
    m, n = kernel_real.shape[0], kernel_generated.shape[0]
    mean_real = (kernel_real.sum() - np.trace(kernel_real)) / (m * (m - 1))
    mean_generated = (kernel_generated.sum() - np.trace(kernel_generated)) / (n * (n - 1))
    return float(mean_real + mean_generated - 2.0 * kernel_cross.mean())


def kid_per_batch(real_features: Any, generated_features: Any) -> float:
    """Unbiased MMD^2 estimate for one batch of features, summed in float64."""
    real = _as_feature_matrix(real_features, "real_features")
    generated = _as_feature_matrix(generated_features, "generated_features")
    _check_same_width(real, generated)
    return _unbiased_mmd2(polynomial_kernel(real, real), polynomial_kernel(generated, generated),
                          polynomial_kernel(real, generated))


def kid_from_features(real_features: Any, generated_features: Any, num_subsets: int = 100,
                      subset_size: int = 1000, seed: int | None = 0) -> tuple[float, float]:
    """KID as ``(mean, std)`` of unbiased MMD^2 estimates over random subsets.

    Each of ``num_subsets`` rounds draws ``subset_size`` feature vectors without replacement
    from each set (``subset_size`` is clipped to the smaller set) and estimates MMD^2 on
    them; the standard deviation is NumPy's (ddof=0), as in torch-fidelity. When the
    subsets are as large as both sets, every round uses all vectors and the std is 0.
    The draws are ``rng.choice(n_real, m, replace=False)`` then
    ``rng.choice(n_generated, m, replace=False)`` per round, with
    ``rng = np.random.default_rng(seed)``.
    """
    real = _as_feature_matrix(real_features, "real_features")
    generated = _as_feature_matrix(generated_features, "generated_features")
    _check_same_width(real, generated)
    if not isinstance(num_subsets, int) or isinstance(num_subsets, bool) or num_subsets < 1:
        raise ValueError(f"num_subsets={num_subsets!r} is invalid: it must be an integer >= 1.")
    if not isinstance(subset_size, int) or isinstance(subset_size, bool) or subset_size < 2:
        raise ValueError(f"subset_size={subset_size!r} is invalid: it must be an integer >= 2.")
    n_real, n_generated = real.shape[0], generated.shape[0]
    m = min(subset_size, n_real, n_generated)
    rng = np.random.default_rng(seed)
    full_kernel_bytes = 8 * (n_real * n_real + n_generated * n_generated + n_real * n_generated)
    if full_kernel_bytes <= _FULL_KERNEL_BUDGET_BYTES:
        # All kernel values once; each subset then only sums a block of them.
        kernel_real = polynomial_kernel(real, real)
        kernel_generated = polynomial_kernel(generated, generated)
        kernel_cross = polynomial_kernel(real, generated)
        estimate = lambda r, g: _unbiased_mmd2(  # noqa: E731
            kernel_real[np.ix_(r, r)], kernel_generated[np.ix_(g, g)], kernel_cross[np.ix_(r, g)])
    else:
        estimate = lambda r, g: kid_per_batch(real[r], generated[g])  # noqa: E731
    estimates = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        real_index = rng.choice(n_real, m, replace=False)
        generated_index = rng.choice(n_generated, m, replace=False)
        estimates[i] = estimate(real_index, generated_index)
    return float(estimates.mean()), float(estimates.std())


# -------------------------------------------------------------- the in-graph metric
def _accumulation_dtype() -> str:
    """float64 wherever the backend has it inside compiled code."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    if backend == "torch":
        import torch

        if not torch.cuda.is_available() and torch.backends.mps.is_available():
            return "float32"  # Apple's MPS has no float64
    return "float64"


def _native_array_functions(dtype: str) -> tuple[Any, Any, Any, Any, Any]:
    """(cast, size along an axis, pairwise dot products, sum, trace) in the backend's own library.

    keras.ops cannot be used here: outside TensorFlow, Keras' type promotion turns float64
    results into float32 (to mimic JAX's default), which would undo the float64 sums.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return ((lambda x: tf.cast(x, dtype)), (lambda x, axis: tf.cast(tf.shape(x)[axis], dtype)),
                (lambda a, b: tf.linalg.matmul(a, b, transpose_b=True)), tf.reduce_sum, tf.linalg.trace)
    if backend == "jax":
        import jax.numpy as jnp

        return ((lambda x: jnp.asarray(x).astype(dtype)), (lambda x, axis: float(x.shape[axis])),
                (lambda a, b: a @ b.T), jnp.sum, jnp.trace)
    if backend == "torch":
        import torch

        torch_dtype = getattr(torch, dtype)
        return ((lambda x: x.to(torch_dtype)), (lambda x, axis: float(x.shape[axis])),
                (lambda a, b: a @ b.T), torch.sum, torch.trace)
    raise NotImplementedError(f"KID supports the tensorflow, jax and torch backends, not {backend!r}.")


def _kid_per_batch_tensor(real_features: Any, generated_features: Any) -> Any:
    """:func:`kid_per_batch` on backend tensors, for compiled steps; returns a scalar tensor.

    Sums run in float64 (float32 only under JAX without ``jax_enable_x64``).
    """
    dtype = _accumulation_dtype()
    cast, size, pairwise_dots, total, trace = _native_array_functions(dtype)
    real = cast(ops.convert_to_tensor(real_features))
    generated = cast(ops.convert_to_tensor(generated_features))
    for name, features in (("real", real), ("generated", generated)):
        count = features.shape[0]
        if isinstance(count, int) and count < 2:
            raise ValueError(f"KID got {count} {name} image(s) in a batch; the unbiased estimate needs at "
                             "least 2 per batch.")
    dimensions = size(real, 1)

    def kernel_minus_one(features_1: Any, features_2: Any) -> Any:
        # (s + 1)^3 - 1 = s (3 + s (3 + s)). The constant 1 cancels exactly in
        # mean_real + mean_generated - 2 mean_cross, and dropping it keeps the small
        # differences from drowning in it when only float32 is available.
        s = pairwise_dots(features_1, features_2) / dimensions
        return s * (3.0 + s * (3.0 + s))

    m = size(real, 0)
    n = size(generated, 0)
    kernel_real = kernel_minus_one(real, real)
    kernel_generated = kernel_minus_one(generated, generated)
    mean_real = (total(kernel_real) - trace(kernel_real)) / (m * (m - 1.0))
    mean_generated = (total(kernel_generated) - trace(kernel_generated)) / (n * (n - 1.0))
    mean_cross = total(kernel_minus_one(real, generated)) / (m * n)
    return mean_real + mean_generated - 2.0 * mean_cross


@keras.saving.register_keras_serializable(package="ddim_tutorial")
class KID(keras.metrics.Metric):
    """KID during ``model.evaluate``: an unbiased estimate per batch, averaged over batches.

    This follows the Keras DDIM example: cheap enough for every validation epoch, but the
    per-batch estimates are noisy. For reported numbers use :func:`compute_kid`.
    ``update_state(real_images, generated_images)`` takes pixel-space images in [0, 1].
    """

    def __init__(self, name: str = "kid", image_size: int = 64, kid_image_size: int = 75,
                 weights: Any = "imagenet", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.image_size = image_size
        self.kid_image_size = kid_image_size
        self.inception_weights = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
        self.kid_tracker = keras.metrics.Mean(name="kid_tracker")
        # A cached, frozen encoder; not a metric variable, so it is neither reset nor saved.
        self.encoder = build_inception_encoder(image_size, kid_image_size, self.inception_weights)

    def update_state(self, real_images: Any, generated_images: Any, sample_weight: Any = None) -> None:
        """Add one batch's estimate. ``sample_weight`` is ignored: KID is a set statistic."""
        real_features = self.encoder(ops.cast(real_images, "float32"), training=False)
        generated_features = self.encoder(ops.cast(generated_images, "float32"), training=False)
        kid = _kid_per_batch_tensor(real_features, generated_features)
        self.kid_tracker.update_state(ops.cast(kid, self.dtype))

    def result(self) -> Any:
        return self.kid_tracker.result()

    def reset_state(self) -> None:
        self.kid_tracker.reset_state()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "image_size": self.image_size,
                "kid_image_size": self.kid_image_size, "weights": self.inception_weights}


# ------------------------------------------------------------ feature extraction
def _to_numpy(value: Any, name: str) -> np.ndarray:
    """A NumPy view of an array or backend tensor (TF, JAX, torch incl. bfloat16 / GPU)."""
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (TypeError, RuntimeError):
        if hasattr(value, "detach"):  # torch: bfloat16 or on a GPU
            tensor = value.detach()
            if tensor.is_floating_point():
                tensor = tensor.float()
            return tensor.cpu().numpy()
        raise ValueError(f"{name} of type {type(value).__name__} cannot be converted to an array.") from None


def _as_pixel_batch(batch: Any, name: str) -> np.ndarray:
    """Validate a [B, H, W, 3] batch of pixel-space images and return it as float32.

    Conversion rule: uint8 images (0..255) are divided by 255; float images must already
    lie in [0, 1]; other integer or boolean dtypes are refused.
    """
    if isinstance(batch, dict):
        raise ValueError(f"{name} yields dicts (keys {sorted(batch)}); map it to image batches first, "
                         "e.g. dataset.map(lambda d: d['image']) rescaled to [0, 1].")
    if isinstance(batch, (tuple, list)) and batch and not isinstance(batch[0], (int, float)):
        batch = batch[0]  # (images, labels) pairs from Keras / torch loaders
    array = _to_numpy(batch, name)
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


def _iterate_pixel_batches(images_or_batches: Any, name: str) -> Iterator[np.ndarray]:
    """Validated float32 batches from an image array or an iterable of batches."""
    if hasattr(images_or_batches, "shape") and hasattr(images_or_batches, "dtype"):
        yield _as_pixel_batch(images_or_batches, name)
        return
    if isinstance(images_or_batches, (str, bytes, dict)) or not isinstance(images_or_batches, Iterable):
        raise ValueError(f"{name} of type {type(images_or_batches).__name__} is invalid: pass an image "
                         "array [N, H, W, 3] in [0, 1] or an iterable of such batches.")
    for batch in images_or_batches:
        yield _as_pixel_batch(batch, name)


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
            import torch

            def forward(images: Any) -> Any:
                with torch.no_grad():
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
    _check_size("batch_size", batch_size, minimum=1)
    batches = _iterate_pixel_batches(images_or_batches, name)
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
        for batch in _chain(first, batches):
            if batch.shape[1:3] != (size, size):
                raise ValueError(f"{name} has a batch of {batch.shape[1]}x{batch.shape[2]} images but the "
                                 f"encoder expects {size}x{size}; all images must have one size.")
            yield batch

    features = [extractor(batch)[:valid] for batch, valid in _fixed_size_batches(checked(), batch_size)]
    return np.concatenate(features)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


# ------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class KIDResult:
    """A KID estimate over random subsets, with how it was obtained."""

    mean: float
    std: float
    num_real: int
    num_generated: int
    weights: str | None
    subset_size: int = 0
    num_subsets: int = 0

    def __str__(self) -> str:
        decimals = _decimals(self.mean, self.std)
        text = (f"KID = {self.mean:.{decimals}f} ± {self.std:.{decimals}f} "
                f"({self.num_real} real, {self.num_generated} generated)")
        if self.weights is None:
            text += " [random InceptionV3 weights: not comparable to other KIDs]"
        return text


def _decimals(mean: float, std: float) -> int:
    """Enough decimals to show the std's first digit (at least 3, as in 0.123 ± 0.004)."""
    scale = std if std > 0 else abs(mean)
    if not scale or not math.isfinite(scale):
        return 3
    return int(min(10, max(3, -math.floor(math.log10(scale)) + (0 if std > 0 else 1))))


def compute_kid(model_or_images: Any, real_images: Any, *, num_images: int | None = None, batch_size: int = 50,
                diffusion_steps: int | None = None, weights: Any = "imagenet", num_subsets: int = 100,
                subset_size: int = 1000, seed: int | None = 0, kid_image_size: int = 75) -> KIDResult:
    """KID between real images and generated ones (given, or sampled from a model).

    ``model_or_images`` is either an array of generated images [N, H, W, 3] in [0, 1] or a
    model with ``generate(num_images, diffusion_steps, seed=...)`` returning such images and a
    ``config`` (``image_size``, ``kid_diffusion_steps``). A model generates ``num_images``
    images (default: as many as there are real ones) in full batches of ``batch_size`` (one
    traced shape; the surplus of the last batch is dropped); each batch gets a seed drawn
    from ``seed``, so the whole evaluation is reproducible (``seed=None``: fresh randomness).
    Features of all images are extracted first, then :func:`kid_from_features` estimates once
    with ``num_subsets``, ``subset_size`` and ``seed``. ``real_images`` is an array or an
    iterable of batches, each real image given once. Pixels are floats in [0, 1]; uint8 images
    are divided by 255; other integer dtypes are refused with a ValueError.
    """
    _check_size("batch_size", batch_size, minimum=1)
    is_array = hasattr(model_or_images, "shape") and hasattr(model_or_images, "dtype")
    if not is_array and not callable(getattr(model_or_images, "generate", None)):
        raise ValueError(f"model_or_images of type {type(model_or_images).__name__} is invalid: pass generated "
                         "images [N, H, W, 3] in [0, 1] or a model with a generate(num_images, diffusion_steps) "
                         "method.")
    if is_array:
        generated = _as_pixel_batch(model_or_images, "model_or_images")
        if num_images is not None:
            raise ValueError("num_images is only used with a model; slice the generated images instead.")
        image_size = generated.shape[1]
        if generated.shape[1] != generated.shape[2]:
            raise ValueError(f"model_or_images are {generated.shape[1]}x{generated.shape[2]}; KID's encoder "
                             "takes square images.")
        if len(generated) < 2:
            raise ValueError(f"model_or_images holds {len(generated)} image; KID needs at least 2.")
    else:
        config = getattr(model_or_images, "config", None)
        image_size = getattr(config, "image_size", None)
        if diffusion_steps is None:
            diffusion_steps = getattr(config, "kid_diffusion_steps", None)
            if diffusion_steps is None:
                raise ValueError("diffusion_steps is required: the model has no config.kid_diffusion_steps.")
        _check_size("diffusion_steps", diffusion_steps, minimum=1)
    real_batches = _iterate_pixel_batches(real_images, "real_images")
    first_real = next(real_batches, None)
    if first_real is None or len(first_real) == 0:
        raise ValueError("real_images holds no images.")
    if image_size is not None and first_real.shape[1:3] != (image_size, image_size):
        source = "model_or_images" if is_array else "the model's config.image_size"
        raise ValueError(f"real_images are {first_real.shape[1]}x{first_real.shape[2]} but {source} is "
                         f"{image_size}x{image_size}; resize the real images to the generated size.")
    if first_real.shape[1] != first_real.shape[2]:
        raise ValueError(f"real_images are {first_real.shape[1]}x{first_real.shape[2]}; KID's encoder takes "
                         "square images.")
    encoder = build_inception_encoder(int(first_real.shape[1]), kid_image_size, weights)
    real_features = extract_features(_chain(first_real, real_batches), encoder, batch_size=batch_size,
                                     name="real_images")
    if len(real_features) < 2:
        raise ValueError(f"real_images holds {len(real_features)} image; KID needs at least 2.")
    if is_array:
        generated_features = extract_features(generated, encoder, batch_size=batch_size, name="model_or_images")
    else:
        if num_images is None:
            num_images = len(real_features)
        _check_size("num_images", num_images, minimum=2)
        generated_batches = _generate_batches(model_or_images, num_images, batch_size, diffusion_steps, seed)
        generated_features = extract_features(generated_batches, encoder, batch_size=batch_size,
                                              name="generated images")
    mean, std = kid_from_features(real_features, generated_features, num_subsets=num_subsets,
                                  subset_size=subset_size, seed=seed)
    effective_subset = min(subset_size, len(real_features), len(generated_features))
    if num_subsets > 1 and effective_subset == len(real_features) == len(generated_features):
        warnings.warn(f"subset_size={effective_subset} covers both image sets, so every subset is the same "
                      "and the std is 0; pass a smaller subset_size to see the estimate's spread.",
                      stacklevel=2)
    weights_label = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    return KIDResult(mean=mean, std=std, num_real=len(real_features), num_generated=len(generated_features),
                     weights=weights_label, subset_size=effective_subset, num_subsets=num_subsets)


def _generate_batches(model: Any, num_images: int, batch_size: int, diffusion_steps: int,
                      seed: int | None) -> Iterator[np.ndarray]:
    """Full batches from ``model.generate`` (one traced shape), the surplus of the last dropped."""
    rng = np.random.default_rng(None if seed is None else [seed, 1])
    remaining = num_images
    while remaining > 0:
        batch_seed = None if seed is None else int(rng.integers(0, 2**31 - 1))
        images = _as_pixel_batch(model.generate(batch_size, diffusion_steps, seed=batch_seed), "generated images")
        if len(images) == 0:
            raise ValueError("model.generate returned no images; it must return [num_images, H, W, 3].")
        yield images[:remaining]
        remaining -= len(images[:remaining])
