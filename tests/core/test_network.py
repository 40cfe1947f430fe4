"""The residual U-Net: the reference's size, shapes, zero-initialised output, serialization."""

import keras
import numpy as np
import pytest

from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.core.network import SinusoidalEmbedding, build_network


def test_default_network_has_the_reference_parameter_count():
    assert build_network(DDIMConfig()).count_params() == 1_953_507


def test_shapes_and_zero_initial_prediction():
    config = DDIMConfig.preset("smoke")
    network = build_network(config)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    variances = np.full((2, 1, 1, 1), 0.5, "float32")
    pred_noises = keras.ops.convert_to_numpy(network([images, variances]))
    assert pred_noises.shape == (2, 32, 32, 3)
    assert np.all(pred_noises == 0.0)  # zero-initialised last convolution


def test_sinusoidal_embedding_values_and_config():
    layer = SinusoidalEmbedding(embedding_dims=8, min_frequency=1.0, max_frequency=1000.0)
    x = np.array([[[[0.25]]]], "float32")
    out = keras.ops.convert_to_numpy(layer(x)).ravel()
    frequencies = np.exp(np.linspace(0.0, np.log(1000.0), 4))
    expected = np.concatenate([np.sin(2 * np.pi * frequencies * 0.25), np.cos(2 * np.pi * frequencies * 0.25)])
    np.testing.assert_allclose(out, expected, atol=1e-4)
    clone = SinusoidalEmbedding.from_config(layer.get_config())
    assert clone.embedding_dims == 8 and clone.max_frequency == 1000.0
    with pytest.raises(ValueError, match="even"):
        SinusoidalEmbedding(embedding_dims=7)


def test_network_round_trips_through_keras_serialization(tmp_path):
    network = build_network(DDIMConfig.preset("smoke"))
    path = tmp_path / "unet.keras"
    network.save(path)
    restored = keras.saving.load_model(path)
    assert restored.count_params() == network.count_params()
    assert any(isinstance(layer, SinusoidalEmbedding) for layer in restored.layers)
