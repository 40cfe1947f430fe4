"""Kernel Inception Distance (KID): how far generated images are from real ones.

KID compares two sets of images through the features of an ImageNet-trained InceptionV3
(:mod:`ddim_tutorial.metrics.inception`). It is the squared maximum mean discrepancy (MMD^2)
between the two feature sets under the polynomial kernel ``k(x, y) = (x . y / d + 1) ** 3``.
Unlike FID it has an unbiased estimator, so even small samples give a fair (if noisy)
number; 0 means "indistinguishable".

One estimator, :func:`_unbiased_mmd2`, serves two ways of using it:

* :class:`KID`, a Keras metric for ``test_step``: one unbiased estimate per batch, averaged
  over batches, exactly like the Keras DDIM example. Cheap and good for tracking training.
* :func:`kid_from_features` / :func:`compute_kid` for evaluation: features of *all* images
  first, then the mean and standard deviation over random subsets (the KID paper's and
  torch-fidelity's convention), reported as ``KID = mean ± std``.

Numerics: the encoder always runs in float32 (also under a mixed-precision policy) and the
kernel sums run in float64, so the cubic kernel neither overflows nor cancels away the
digits of a small KID. (Inside a compiled JAX step without ``jax_enable_x64`` float64 does
not exist; the metric then sums in float32, which is ample for 2048-d Inception features.)
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from ddim_tutorial.checks import check_positive_int
from ddim_tutorial.metrics.inception import (
    as_pixel_batch,
    build_inception_encoder,
    extract_features,
    iterate_pixel_batches,
)
from ddim_tutorial.runtime.arrays import to_numpy

__all__ = ["KID", "KIDResult", "compute_kid", "kid_from_features", "kid_per_batch", "polynomial_kernel"]

# Above this many bytes of float64 kernel matrices, kid_from_features computes the kernels
# subset by subset instead of once for all pairs.
_FULL_KERNEL_BUDGET_BYTES = 512 * 2**20


# ------------------------------------------------------------------- the estimator
class _ArrayFunctions(NamedTuple):
    """The few array operations the estimator needs, from NumPy or a backend's own library."""

    cast: Any  # to the accumulation dtype
    count: Any  # (array, axis) -> its size along axis, as a float
    pairwise_dots: Any  # (a, b) -> a @ b.T
    total: Any  # sum of all elements
    trace: Any


_NUMPY = _ArrayFunctions(cast=lambda x: np.asarray(x, dtype=np.float64), count=lambda x, axis: float(x.shape[axis]),
                         pairwise_dots=lambda a, b: a @ b.T, total=np.sum, trace=np.trace)


def _kernel_minus_one(features_1: Any, features_2: Any, xp: _ArrayFunctions = _NUMPY) -> Any:
    """The KID kernel without its constant: ``(s + 1)^3 - 1 = s (3 + s (3 + s))``, ``s = x . y / d``.

    The constant 1 cancels exactly in the MMD^2 estimate; leaving it out keeps the small
    differences that make up KID from drowning in it when only float32 is available.
    """
    s = xp.pairwise_dots(features_1, features_2) / xp.count(features_1, 1)
    return s * (3.0 + s * (3.0 + s))


def _unbiased_mmd2(kernel_real: Any, kernel_generated: Any, kernel_cross: Any, xp: _ArrayFunctions = _NUMPY) -> Any:
    """MMD^2 from the three kernel blocks: within-set means skip the diagonal, cross is a plain mean."""
    m, n = xp.count(kernel_real, 0), xp.count(kernel_generated, 0)
    mean_real = (xp.total(kernel_real) - xp.trace(kernel_real)) / (m * (m - 1.0))
    mean_generated = (xp.total(kernel_generated) - xp.trace(kernel_generated)) / (n * (n - 1.0))
    return mean_real + mean_generated - 2.0 * xp.total(kernel_cross) / (m * n)


def _mmd2_of_features(real: Any, generated: Any, xp: _ArrayFunctions = _NUMPY) -> Any:
    """The per-batch estimate, shared by the NumPy functions and the in-graph metric."""
    return _unbiased_mmd2(_kernel_minus_one(real, real, xp), _kernel_minus_one(generated, generated, xp),
                          _kernel_minus_one(real, generated, xp), xp)


# ---------------------------------------------------------------- NumPy functions
def _as_feature_matrix(features: Any, name: str) -> np.ndarray:
    """Features as a float64 [n, d] NumPy matrix, with a clear error for bad shapes."""
    array = to_numpy(features)
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
    features_1 = to_numpy(features_1).astype(np.float64)
    features_2 = to_numpy(features_2).astype(np.float64)
    if features_1.ndim != 2 or features_2.ndim != 2 or features_1.shape[1] != features_2.shape[1]:
        raise ValueError(f"features_1 {features_1.shape} and features_2 {features_2.shape} must be 2-D "
                         "matrices with the same number of columns.")
    return _kernel_minus_one(features_1, features_2) + 1.0


def kid_per_batch(real_features: Any, generated_features: Any) -> float:
    """Unbiased MMD^2 estimate for one batch of features, summed in float64."""
    real = _as_feature_matrix(real_features, "real_features")
    generated = _as_feature_matrix(generated_features, "generated_features")
    _check_same_width(real, generated)
    return float(_mmd2_of_features(real, generated))


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
    check_positive_int("num_subsets", num_subsets)
    check_positive_int("subset_size", subset_size, minimum=2)
    n_real, n_generated = real.shape[0], generated.shape[0]
    m = min(subset_size, n_real, n_generated)
    rng = np.random.default_rng(seed)
    full_kernel_bytes = 8 * (n_real * n_real + n_generated * n_generated + n_real * n_generated)
    if full_kernel_bytes <= _FULL_KERNEL_BUDGET_BYTES:
        # All kernel values once; each subset then only sums a block of them.
        kernel_real = _kernel_minus_one(real, real)
        kernel_generated = _kernel_minus_one(generated, generated)
        kernel_cross = _kernel_minus_one(real, generated)
        estimate = lambda r, g: _unbiased_mmd2(  # noqa: E731
            kernel_real[np.ix_(r, r)], kernel_generated[np.ix_(g, g)], kernel_cross[np.ix_(r, g)])
    else:
        estimate = lambda r, g: _mmd2_of_features(real[r], generated[g])  # noqa: E731
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


def _native_array_functions(dtype: str) -> _ArrayFunctions:
    """The estimator's array operations in the backend's own library, summing in ``dtype``.

    keras.ops cannot be used here: outside TensorFlow, Keras' type promotion turns float64
    results into float32 (to mimic JAX's default), which would undo the float64 sums.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return _ArrayFunctions(cast=lambda x: tf.cast(x, dtype),
                               count=lambda x, axis: tf.cast(tf.shape(x)[axis], dtype),
                               pairwise_dots=lambda a, b: tf.linalg.matmul(a, b, transpose_b=True),
                               total=tf.reduce_sum, trace=tf.linalg.trace)
    if backend == "jax":
        import jax.numpy as jnp

        return _ArrayFunctions(cast=lambda x: jnp.asarray(x).astype(dtype), count=lambda x, axis: float(x.shape[axis]),
                               pairwise_dots=lambda a, b: a @ b.T, total=jnp.sum, trace=jnp.trace)
    if backend == "torch":
        import torch

        torch_dtype = getattr(torch, dtype)
        return _ArrayFunctions(cast=lambda x: x.to(torch_dtype), count=lambda x, axis: float(x.shape[axis]),
                               pairwise_dots=lambda a, b: a @ b.T, total=torch.sum, trace=torch.trace)
    raise NotImplementedError(f"KID supports the tensorflow, jax and torch backends, not {backend!r}.")


def _kid_per_batch_tensor(real_features: Any, generated_features: Any) -> Any:
    """:func:`kid_per_batch` on backend tensors, for compiled steps; returns a scalar tensor.

    Sums run in float64 (float32 only under JAX without ``jax_enable_x64``).
    """
    xp = _native_array_functions(_accumulation_dtype())
    real = xp.cast(ops.convert_to_tensor(real_features))
    generated = xp.cast(ops.convert_to_tensor(generated_features))
    for name, features in (("real", real), ("generated", generated)):
        count = features.shape[0]
        if isinstance(count, int) and count < 2:
            raise ValueError(f"KID got {count} {name} image(s) in a batch; the unbiased estimate needs at "
                             "least 2 per batch.")
    return _mmd2_of_features(real, generated, xp)


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
    check_positive_int("batch_size", batch_size)
    is_array = hasattr(model_or_images, "shape") and hasattr(model_or_images, "dtype")
    if not is_array and not callable(getattr(model_or_images, "generate", None)):
        raise ValueError(f"model_or_images of type {type(model_or_images).__name__} is invalid: pass generated "
                         "images [N, H, W, 3] in [0, 1] or a model with a generate(num_images, diffusion_steps) "
                         "method.")
    if is_array:
        generated = as_pixel_batch(model_or_images, "model_or_images")
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
        check_positive_int("diffusion_steps", diffusion_steps)
    real_batches = iterate_pixel_batches(real_images, "real_images")
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
    real_features = extract_features(itertools.chain([first_real], real_batches), encoder, batch_size=batch_size,
                                     name="real_images")
    if len(real_features) < 2:
        raise ValueError(f"real_images holds {len(real_features)} image; KID needs at least 2.")
    if is_array:
        generated_features = extract_features(generated, encoder, batch_size=batch_size, name="model_or_images")
    else:
        if num_images is None:
            num_images = len(real_features)
        check_positive_int("num_images", num_images, minimum=2)
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
        images = as_pixel_batch(model.generate(batch_size, diffusion_steps, seed=batch_seed), "generated images")
        if len(images) == 0:
            raise ValueError("model.generate returned no images; it must return [num_images, H, W, 3].")
        yield images[:remaining]
        remaining -= len(images[:remaining])
