"""Tests of ddim_tutorial.metrics.kid: the KID estimators, the InceptionV3 encoder and its weights.

The estimators are checked against an independent NumPy float64 implementation written
here. The encoder is InceptionV3 with random weights (ImageNet weights cannot be
downloaded offline); one encoder is built per test session and shared, because on JAX
the first build compiles a random initialiser per weight shape (tens of seconds on CPU).
Runs on every backend: KERAS_BACKEND=tensorflow, jax or torch.
"""

from __future__ import annotations

import re
import urllib.error
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest
from keras import ops

from ddim_tutorial.metrics import inception as inception_module
from ddim_tutorial.metrics import kid
from ddim_tutorial.metrics.inception import (
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    WEIGHTS_ENV_VAR,
    InceptionWeightsUnavailableError,
    RandomInceptionWeightsWarning,
    build_inception_encoder,
    extract_features,
    resolve_inception_weights,
)
from ddim_tutorial.metrics.kid import KID, KIDResult, compute_kid, kid_from_features, kid_per_batch, polynomial_kernel

BACKEND = keras.backend.backend()
IMAGE_SIZE = 16  # small pixels; the encoder resizes to 75x75 anyway
BATCH = 4  # one batch size everywhere: one compiled forward pass on JAX

pytestmark = pytest.mark.filterwarnings("ignore::ddim_tutorial.metrics.inception.RandomInceptionWeightsWarning")


# --------------------------------------------------------- independent reference
def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, written from the formula with loops' clarity."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = x.shape[1]
    m, n = len(x), len(y)
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    off_diagonal_xx = k_xx[~np.eye(m, dtype=bool)].mean()
    off_diagonal_yy = k_yy[~np.eye(n, dtype=bool)].mean()
    return off_diagonal_xx + off_diagonal_yy - 2.0 * k_xy.mean()


def reference_subsets(x, y, num_subsets, subset_size, seed):
    """The documented subset scheme, estimating each subset from scratch."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(x), len(y))
    values = [reference_mmd2(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
              for _ in range(num_subsets)]
    return np.mean(values), np.std(values)


def relu_features(rng, count, dims=32, shift=0.0):
    """Non-negative features like pooled ReLU activations."""
    return np.maximum(rng.normal(shift, 1.0, size=(count, dims)), 0.0)


# ------------------------------------------------------------------ estimators
def test_kid_per_batch_matches_reference():
    rng = np.random.default_rng(0)
    real, generated = relu_features(rng, 20), relu_features(rng, 15, shift=0.2)
    expected = reference_mmd2(real, generated)
    assert kid_per_batch(real, generated) == pytest.approx(expected, rel=1e-6)
    assert kid_per_batch(real.astype(np.float32), generated.astype(np.float32)) == pytest.approx(
        reference_mmd2(real.astype(np.float32), generated.astype(np.float32)), rel=1e-6)
    assert isinstance(kid_per_batch(real, generated), float)
    kernel = polynomial_kernel(real, generated)
    assert kernel.dtype == np.float64 and kernel.shape == (20, 15)
    np.testing.assert_allclose(kernel, (real @ generated.T / 32 + 1) ** 3, rtol=1e-12)


def test_kid_from_features_matches_reference_subsets():
    rng = np.random.default_rng(1)
    real, generated = relu_features(rng, 60), relu_features(rng, 45, shift=0.3)
    mean, std = kid_from_features(real, generated, num_subsets=25, subset_size=30, seed=7)
    expected_mean, expected_std = reference_subsets(real, generated, 25, 30, seed=7)
    assert mean == pytest.approx(expected_mean, rel=1e-6)
    assert std == pytest.approx(expected_std, rel=1e-6)
    assert std > 0
    # the per-subset path (used above a memory budget) gives the same numbers
    budget = kid._FULL_KERNEL_BUDGET_BYTES
    try:
        kid._FULL_KERNEL_BUDGET_BYTES = 0
        assert kid_from_features(real, generated, 25, 30, seed=7) == pytest.approx((mean, std), rel=1e-9)
    finally:
        kid._FULL_KERNEL_BUDGET_BYTES = budget


def test_subset_size_is_clipped_to_the_smaller_set():
    rng = np.random.default_rng(2)
    real, generated = relu_features(rng, 30), relu_features(rng, 12, shift=0.5)
    mean, std = kid_from_features(real, generated, num_subsets=10, subset_size=1000, seed=0)
    assert (mean, std) == pytest.approx(reference_subsets(real, generated, 10, 12, seed=0), rel=1e-6)
    # subsets as large as both sets are the full sets: the mean is the full estimate, std 0
    mean, std = kid_from_features(real[:12], generated, num_subsets=5, subset_size=1000)
    assert mean == pytest.approx(reference_mmd2(real[:12], generated), rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_estimators_are_symmetric():
    rng = np.random.default_rng(3)
    a, b = relu_features(rng, 25), relu_features(rng, 18, shift=0.4)
    assert kid_per_batch(a, b) == pytest.approx(kid_per_batch(b, a), rel=1e-12)
    # with subsets as large as both sets no sampling happens, so the order cannot matter
    a = a[:18]
    assert kid_from_features(a, b, 3, 1000)[0] == pytest.approx(kid_from_features(b, a, 3, 1000)[0], rel=1e-9)


def test_per_batch_average_agrees_with_subset_estimate():
    rng = np.random.default_rng(4)
    real, generated = relu_features(rng, 1000), relu_features(rng, 1000, shift=0.15)
    batch_estimates = [kid_per_batch(real[i:i + 50], generated[i:i + 50]) for i in range(0, 1000, 50)]
    subset_mean, subset_std = kid_from_features(real, generated, num_subsets=100, subset_size=50, seed=0)
    batch_mean, batch_std = np.mean(batch_estimates), np.std(batch_estimates)
    # both are unbiased for the same MMD^2; allow 3 standard errors of the difference
    tolerance = 3.0 * np.sqrt(batch_std**2 / len(batch_estimates) + subset_std**2 / 100)
    assert batch_mean > 0 and abs(batch_mean - subset_mean) < tolerance
    assert subset_std == pytest.approx(batch_std, rel=0.5)  # same subset size, similar spread


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(5)
    same_a, same_b = relu_features(rng, 300), relu_features(rng, 300)
    mean, std = kid_from_features(same_a, same_b, num_subsets=50, subset_size=100, seed=0)
    assert abs(mean) < 3 * std
    different = relu_features(rng, 300, shift=1.0)
    mean, std = kid_from_features(same_a, different, num_subsets=50, subset_size=100, seed=0)
    assert mean > 10 * std and mean > 0.1


def test_estimators_refuse_fewer_than_two_samples_and_bad_shapes():
    one, many = np.ones((1, 8)), np.random.default_rng(6).random((5, 8))
    with pytest.raises(ValueError, match="real_features"):
        kid_per_batch(one, many)
    with pytest.raises(ValueError, match="generated_features"):
        kid_from_features(many, one)
    with pytest.raises(ValueError, match="dimensions"):
        kid_per_batch(many, many[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        kid_per_batch(many[None], many)
    with pytest.raises(ValueError, match="subset_size"):
        kid_from_features(many, many, subset_size=1)
    with pytest.raises(ValueError, match="num_subsets"):
        kid_from_features(many, many, num_subsets=0)
    with pytest.raises(ValueError, match="NaN"):
        kid_per_batch(np.full((3, 8), np.nan), many)


def test_low_precision_features_get_the_float64_answer():
    rng = np.random.default_rng(7)
    real16 = rng.uniform(300, 400, size=(8, 64)).astype(np.float16)
    generated16 = rng.uniform(200, 300, size=(8, 64)).astype(np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = ((real16 @ real16.T) / np.float16(64) + np.float16(1)) ** 3
    assert not np.all(np.isfinite(naive))  # a float16 kernel overflows on these features
    expected = reference_mmd2(real16.astype(np.float64), generated16.astype(np.float64))
    assert np.isfinite(expected) and expected > 0
    assert kid_per_batch(real16, generated16) == pytest.approx(expected, rel=1e-9)
    assert kid_from_features(real16, generated16, 2, 1000)[0] == pytest.approx(expected, rel=1e-9)
    # backend tensors in float16, and in bfloat16
    real_tensor, generated_tensor = ops.convert_to_tensor(real16), ops.convert_to_tensor(generated16)
    assert kid_per_batch(real_tensor, generated_tensor) == pytest.approx(expected, rel=1e-9)
    real_b, generated_b = ops.cast(real_tensor, "bfloat16"), ops.cast(generated_tensor, "bfloat16")
    as_float64 = [np.asarray(ops.convert_to_numpy(ops.cast(t, "float32")), np.float64) for t in (real_b, generated_b)]
    assert kid_per_batch(real_b, generated_b) == pytest.approx(reference_mmd2(*as_float64), rel=1e-9)
    # the in-graph estimator of the metric, compiled where the backend compiles
    in_graph = float(ops.convert_to_numpy(_compiled(kid._kid_per_batch_tensor)(real_tensor, generated_tensor)))
    rel = 1e-9 if kid._accumulation_dtype() == "float64" else 1e-4
    assert in_graph == pytest.approx(expected, rel=rel)


def test_in_graph_estimator_matches_reference():
    rng = np.random.default_rng(8)
    real, generated = relu_features(rng, 12).astype(np.float32), relu_features(rng, 12, shift=0.1).astype(np.float32)
    expected = reference_mmd2(real, generated)
    value = _compiled(kid._kid_per_batch_tensor)(ops.convert_to_tensor(real), ops.convert_to_tensor(generated))
    rel = 1e-6 if kid._accumulation_dtype() == "float64" else 1e-3
    assert float(ops.convert_to_numpy(value)) == pytest.approx(expected, rel=rel)
    # tiny features (random-weight InceptionV3 gives ~1e-3) keep their digits too
    tiny_real, tiny_generated = real * 1e-3, generated * 1e-3
    value = _compiled(kid._kid_per_batch_tensor)(ops.convert_to_tensor(tiny_real),
                                                 ops.convert_to_tensor(tiny_generated))
    assert float(ops.convert_to_numpy(value)) == pytest.approx(reference_mmd2(tiny_real, tiny_generated), rel=rel)


def _compiled(function):
    """``function`` under the backend's compiler (tf.function / jax.jit; torch stays eager)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    return function


# --------------------------------------------------------------------- encoder
@pytest.fixture(scope="module")
def encoder():
    """The shared random-weight encoder, deliberately built under a mixed-precision policy."""
    inception_module.clear_encoder_cache()
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        with pytest.warns(RandomInceptionWeightsWarning, match="not comparable|NOT"):
            model = build_inception_encoder(IMAGE_SIZE, weights=None)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"  # the build restored it
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def _images(seed, count, size=IMAGE_SIZE):
    return np.random.default_rng(seed).uniform(size=(count, size, size, 3)).astype(np.float32)


def test_encoder_runs_in_float32_under_mixed_precision(encoder):
    inception = encoder.get_layer("inception_v3")
    for layer in [*encoder.layers, *inception.layers]:
        assert layer.compute_dtype == "float32", layer.name
    assert {str(w.dtype) for w in encoder.weights} == {"float32"}
    assert encoder.output_shape == (None, inception_module.FEATURE_DIMENSIONS)
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        metric = KID(image_size=IMAGE_SIZE, weights=None)
        assert metric.encoder is encoder  # cached, not rebuilt under the new policy
        images = ops.cast(ops.convert_to_tensor(_images(0, BATCH)), "bfloat16")
        features = extract_features(images, encoder, batch_size=BATCH)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert features.dtype == np.float32 and features.shape == (BATCH, inception_module.FEATURE_DIMENSIONS)
    assert np.all(np.isfinite(features))


def test_encoder_is_serialisation_safe_and_preprocesses_like_inception(encoder):
    config = keras.saving.serialize_keras_object(encoder)
    class_names = set(re.findall(r"'class_name': '(\w+)'", str(config)))
    assert "Lambda" not in class_names and "Resizing" in class_names
    assert not re.search(r"'registered_name': '[^']*>", str(config))  # no custom objects
    pixels = ops.convert_to_tensor(_images(1, 2, size=75))  # already 75x75: resizing is the identity
    ours = encoder.get_layer("inception_preprocessing")(
        encoder.get_layer("resize_for_inception")(encoder.get_layer("pixels_to_0_255")(pixels)))
    theirs = keras.applications.inception_v3.preprocess_input(ops.convert_to_numpy(pixels) * 255.0)
    np.testing.assert_allclose(ops.convert_to_numpy(ours), theirs, atol=1e-5)


def test_extraction_compiles_once_for_many_batches(encoder):
    images = _images(2, 5 * BATCH - 1)  # five batches, the last one padded
    features = extract_features(images, encoder, batch_size=BATCH)
    extractor = inception_module._feature_extractor(encoder, BATCH)
    traces_after_first = extractor.traces
    assert features.shape == (len(images), inception_module.FEATURE_DIMENSIONS) and features.dtype == np.float32
    # uneven batches from a generator, and the cached encoder found by size and weights
    uneven = (images[start:stop] for start, stop in [(0, 3), (3, 4), (4, 9)])
    again = extract_features(uneven, batch_size=BATCH, weights=None)
    assert build_inception_encoder(IMAGE_SIZE, weights=None) is encoder
    assert inception_module._feature_extractor(encoder, BATCH) is extractor
    if BACKEND in ("tensorflow", "jax"):
        assert traces_after_first == 1 and extractor.traces == 1
    scale = np.abs(features).max()
    np.testing.assert_allclose(again, features[:9], rtol=1e-5, atol=1e-6 * scale)
    # padding changes nothing: the last, padded batch equals an unpadded forward pass
    direct = extract_features(images[-BATCH:], encoder, batch_size=BATCH)
    np.testing.assert_allclose(features[-BATCH:], direct, rtol=1e-4, atol=1e-5 * scale)
    assert np.abs(features[0] - features[1]).max() > 1e-3 * scale  # different images, different features


def test_extraction_validates_images(encoder):
    images = _images(3, BATCH)
    with pytest.raises(ValueError, match="4-D"):
        extract_features(images[0], encoder)
    with pytest.raises(ValueError, match="4-D"):
        extract_features(images[..., :1], encoder)
    with pytest.raises(ValueError, match="dtype int32"):
        extract_features(images.astype(np.int32), encoder)
    with pytest.raises(ValueError, match=r"divide 0\.\.255 images by 255"):
        extract_features(images * 255.0, encoder)
    with pytest.raises(ValueError, match="NaN"):
        extract_features(np.full_like(images, np.nan), encoder)
    with pytest.raises(ValueError, match="expects 16x16"):
        extract_features(_images(3, 2, size=8), encoder)
    with pytest.raises(ValueError, match="dicts"):
        extract_features([{"image": images}], encoder)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(images, encoder, batch_size=0)
    # uint8 pixels are divided by 255 (the documented conversion rule)
    as_uint8 = np.round(images * 255).astype(np.uint8)
    np.testing.assert_allclose(extract_features(as_uint8, encoder, batch_size=BATCH),
                               extract_features(as_uint8 / np.float32(255), encoder, batch_size=BATCH), rtol=1e-6)


# --------------------------------------------------------------------- weights
def test_weights_resolution_order(tmp_path, monkeypatch):
    explicit, from_env = tmp_path / "explicit.h5", tmp_path / "from_env.h5"
    keras_home = tmp_path / "keras_home"
    cached = keras_home / "models" / INCEPTION_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    for path in (explicit, from_env, cached):
        path.write_bytes(b"placeholder")
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(from_env))
    downloads = []

    def fake_get_file(fname, origin, cache_subdir, file_hash, cache_dir):
        downloads.append((fname, origin, cache_dir))
        target = f"{cache_dir}/{cache_subdir}/{fname}"
        with open(target, "wb") as file:
            file.write(b"downloaded")
        return target

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    assert resolve_inception_weights(str(explicit)) == str(explicit)  # 1. explicit path
    assert resolve_inception_weights(explicit) == str(explicit)
    assert resolve_inception_weights("imagenet") == str(from_env)  # 2. environment variable
    monkeypatch.delenv(WEIGHTS_ENV_VAR)
    assert resolve_inception_weights("imagenet") == str(cached)  # 3. Keras' cache
    cached.unlink()
    assert resolve_inception_weights("imagenet") == str(cached)  # 4. download into that cache
    assert downloads == [(INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, str(keras_home))]
    # without KERAS_HOME the cache is ~/.keras/models
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    expected = tmp_path / "home" / ".keras" / "models" / INCEPTION_WEIGHTS_FILE
    assert inception_module.inception_weights_cache_path() == str(expected)


def test_offline_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(WEIGHTS_ENV_VAR, raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(InceptionWeightsUnavailableError) as error:
        resolve_inception_weights("imagenet")
    message = str(error.value)
    assert isinstance(error.value, RuntimeError)
    for needed in (INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, WEIGHTS_ENV_VAR,
                   str(tmp_path / "models" / INCEPTION_WEIGHTS_FILE), "name resolution"):
        assert needed in message
    with pytest.raises(InceptionWeightsUnavailableError):
        KID(image_size=IMAGE_SIZE)
    with pytest.raises(InceptionWeightsUnavailableError):
        compute_kid(_images(0, 2), _images(1, 2))


def test_bad_weights_arguments(tmp_path, monkeypatch):
    with pytest.raises(InceptionWeightsUnavailableError, match="missing.h5"):
        resolve_inception_weights(str(tmp_path / "missing.h5"))
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(tmp_path / "nowhere.h5"))
    with pytest.raises(InceptionWeightsUnavailableError, match=WEIGHTS_ENV_VAR):
        resolve_inception_weights("imagenet")
    for bad in ("inception.pt", 3, ""):
        with pytest.raises(ValueError, match="weights"):
            resolve_inception_weights(bad)
    not_hdf5 = tmp_path / "truncated.h5"
    not_hdf5.write_bytes(b"not an hdf5 file")
    with pytest.raises(InceptionWeightsUnavailableError, match="not an HDF5 file"):
        build_inception_encoder(IMAGE_SIZE, weights=str(not_hdf5))
    with pytest.raises(ValueError, match="kid_image_size"):
        build_inception_encoder(IMAGE_SIZE, kid_image_size=64, weights=None)
    with pytest.warns(RandomInceptionWeightsWarning):
        assert resolve_inception_weights(None) is None


def _write_keras_weights_file(model, path):
    """Write weights in the layout of Keras' downloadable .h5 files (one group per layer)."""
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.1.5"
        for layer in model.layers:
            group = file.create_group(layer.name)
            names = [f"{layer.name}/{weight.name}:0" for weight in layer.weights]
            group.attrs["weight_names"] = [name.encode("utf8") for name in names]
            for name, weight in zip(names, layer.weights, strict=True):
                group.create_dataset(name, data=ops.convert_to_numpy(weight))


def _read_keras_weights_file(path):
    text = lambda name: name.decode("utf8") if isinstance(name, bytes) else str(name)  # noqa: E731
    with h5py.File(path, "r") as file:
        values = []
        for layer_name in file.attrs["layer_names"]:
            group = file[text(layer_name)]
            values.extend(np.asarray(group[text(name)]) for name in group.attrs["weight_names"])
    return values


def test_encoder_loads_the_weights_file(encoder, tmp_path, monkeypatch):
    path = tmp_path / INCEPTION_WEIGHTS_FILE
    _write_keras_weights_file(encoder.get_layer("inception_v3"), path)
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(path))
    loaded = build_inception_encoder(IMAGE_SIZE, cache=False)  # "imagenet" -> the env var's file
    assert loaded is not encoder
    file_values = _read_keras_weights_file(path)
    loaded_values = [ops.convert_to_numpy(w) for layer in loaded.get_layer("inception_v3").layers
                     for w in layer.weights]
    assert len(file_values) == len(loaded_values) == 376
    for from_file, in_model in zip(file_values, loaded_values, strict=True):
        np.testing.assert_array_equal(in_model, from_file)


# ---------------------------------------------------------------- the metric
class _KIDProbe(keras.Model):
    """A weightless model whose compute_loss updates KID, like DiffusionModel's test step."""

    def __init__(self, metric: KID) -> None:
        super().__init__(name="kid_probe")
        self.kid = metric

    def call(self, images):
        return ops.clip(images * 0.5 + 0.3, 0.0, 1.0)  # the "generated" images

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        self.kid.update_state(y, y_pred)
        return ops.mean(y_pred) * 0.0


def _expected_batch_average(encoder, real, generated, batch_size):
    """The reference estimator on the encoder's features, averaged over batches."""
    features = extract_features(np.concatenate([real, generated]), encoder, batch_size=BATCH)
    real_features, generated_features = features[:len(real)], features[len(real):]
    return np.mean([reference_mmd2(real_features[i:i + batch_size], generated_features[i:i + batch_size])
                    for i in range(0, len(real), batch_size)])


def test_kid_metric_inside_compiled_evaluate(encoder):
    metric = KID(image_size=IMAGE_SIZE, weights=None)
    assert metric.encoder is encoder
    model = _KIDProbe(metric)
    model.compile(jit_compile=BACKEND == "jax")  # XLA-compiling InceptionV3 on TF's CPU is slow
    images = _images(4, 4)
    logs = model.evaluate(images, images, batch_size=2, verbose=0, return_dict=True)  # two batches
    expected = _expected_batch_average(encoder, images, np.clip(images * 0.5 + 0.3, 0.0, 1.0), batch_size=2)
    assert expected > 0
    assert logs["kid"] == pytest.approx(expected, rel=1e-3)
    assert str(ops.convert_to_numpy(metric.result()).dtype) == "float32"


@pytest.mark.skipif(BACKEND == "jax", reason="eager JAX compiles InceptionV3 op by op (minutes on CPU); "
                                             "the compiled evaluate test covers JAX")
def test_kid_metric_eager_update_and_reset(encoder):
    metric = KID(image_size=IMAGE_SIZE, weights=None)
    real, generated = _images(5, 4), _images(6, 4) ** 2
    for start in (0, 2):
        metric.update_state(real[start:start + 2], generated[start:start + 2])
    expected = _expected_batch_average(encoder, real, generated, batch_size=2)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-3)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_kid_metric_config_round_trip(encoder):
    metric = KID(name="val_kid", image_size=IMAGE_SIZE, weights=None)
    config = metric.get_config()
    assert config["image_size"] == IMAGE_SIZE and config["weights"] is None and config["kid_image_size"] == 75
    clone = KID.from_config(config)
    assert clone.name == "val_kid" and clone.encoder is encoder
    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == "ddim_tutorial>KID"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, KID) and restored.get_config() == config
    # the tracker is the metric's only state; the encoder's weights are not metric variables
    assert len(metric.variables) == 2


# --------------------------------------------------------------- compute_kid
def test_compute_kid_with_image_arrays(encoder):
    real, generated = _images(7, 6), _images(8, 5) ** 2
    result = compute_kid(generated, real, batch_size=BATCH, weights=None, num_subsets=20, seed=3)
    real_features = extract_features(real, encoder, batch_size=BATCH)
    generated_features = extract_features(generated, encoder, batch_size=BATCH)
    expected = kid_from_features(real_features, generated_features, num_subsets=20, subset_size=1000, seed=3)
    assert (result.mean, result.std) == pytest.approx(expected, rel=1e-6)
    assert (result.num_real, result.num_generated, result.subset_size, result.num_subsets) == (6, 5, 5, 20)
    assert result.weights is None
    assert re.fullmatch(r"KID = -?\d\.\d{3,} ± \d\.\d{3,} \(6 real, 5 generated\) \[random .*\]", str(result))


class _FakeDiffusionModel:
    """Stands in for DiffusionModel: deterministic images per seed, and a record of the calls."""

    def __init__(self, image_size=IMAGE_SIZE, kid_diffusion_steps=3):
        self.config = SimpleNamespace(image_size=image_size, kid_diffusion_steps=kid_diffusion_steps)
        self.calls = []

    def generate(self, num_images, diffusion_steps=None, *, seed=None):
        self.calls.append((num_images, diffusion_steps, seed))
        rng = np.random.default_rng(seed)
        return ops.convert_to_tensor(rng.uniform(size=(num_images, *[self.config.image_size] * 2, 3)) ** 3)


def test_compute_kid_with_a_model_generates_in_batches(encoder):
    model = _FakeDiffusionModel()
    real_batches = [_images(9, 3), _images(10, 1)]  # an iterable of batches
    result = compute_kid(model, real_batches, num_images=2 * BATCH + 1, batch_size=BATCH, weights=None,
                         num_subsets=10, subset_size=6)
    assert [call[:2] for call in model.calls] == [(BATCH, 3)] * 3  # full batches, config's steps
    assert len({call[2] for call in model.calls}) == 3  # a different seed per batch
    assert (result.num_real, result.num_generated, result.subset_size) == (4, 2 * BATCH + 1, 4)
    assert np.isfinite(result.mean) and result.std > 0
    model.calls.clear()
    with pytest.warns(UserWarning, match="std is 0"):  # 4 real, 4 generated: one possible subset
        compute_kid(model, real_batches, batch_size=BATCH, diffusion_steps=7, weights=None, num_subsets=2)
    assert [call[:2] for call in model.calls] == [(BATCH, 7)]  # default count: as many as real


def test_compute_kid_is_reproducible_and_warns_about_identical_subsets(encoder):
    real = _images(11, BATCH)
    results = []
    for _ in range(2):
        with pytest.warns(UserWarning, match="std is 0"):
            results.append(compute_kid(_FakeDiffusionModel(), real, batch_size=BATCH, weights=None, seed=5))
    assert results[0] == results[1] and results[0].num_generated == BATCH


def test_compute_kid_validates_its_inputs(encoder):
    real = _images(12, 3)
    with pytest.raises(ValueError, match="model_or_images"):
        compute_kid("not a model", real, weights=None)
    with pytest.raises(ValueError, match="model_or_images"):
        compute_kid(_images(0, 3).astype(np.int64), real, weights=None)
    with pytest.raises(ValueError, match="real_images.*16x16"):
        compute_kid(_images(0, 3, size=8), real, weights=None)
    with pytest.raises(ValueError, match="config.image_size"):
        compute_kid(_FakeDiffusionModel(image_size=8), real, weights=None)
    with pytest.raises(ValueError, match="num_images"):
        compute_kid(_images(0, 3), real, num_images=2, weights=None)
    with pytest.raises(ValueError, match="real_images"):
        compute_kid(_images(0, 3), real[:, :, :, :2], weights=None)
    with pytest.raises(ValueError, match="model_or_images holds 1"):
        compute_kid(_images(0, 1), real, batch_size=BATCH, weights=None)
    with pytest.raises(ValueError, match="real_images holds 1"):
        compute_kid(_images(0, 3), real[:1], batch_size=BATCH, weights=None)


def test_kid_result_text():
    assert str(KIDResult(0.1234, 0.0042, 100, 50, "imagenet")) == "KID = 0.123 ± 0.004 (100 real, 50 generated)"
    assert str(KIDResult(0.00123, 0.00046, 10, 10, "imagenet")).startswith("KID = 0.0012 ± 0.0005 ")
    assert "random" in str(KIDResult(0.5, 0.1, 10, 10, None))
