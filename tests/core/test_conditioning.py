"""What the network predicts (noise, image, velocity) and class conditioning with classifier-free
guidance: the conversions, the samplers, training, label dropout, data labels and checkpoints.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_conditioning.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ddim_tutorial.config import PATH_PREDICTION_TYPES, PREDICTION_TYPES, DDIMConfig
from ddim_tutorial.training.checkpoints import CheckpointError, load_checkpoint, save_checkpoint

COSINE_PREDICTION_TYPES = PATH_PREDICTION_TYPES["cosine"]  # what the course's cosine path trains
from ddim_tutorial.core.model import DiffusionModel
from ddim_tutorial.core.network import OUTPUT_NAMES, build_network, num_classes_of
from ddim_tutorial.core.predictions import components_from_predictions, network_predictions, prediction_targets
from ddim_tutorial.core.sampling import SAMPLERS, reverse_diffusion
from ddim_tutorial.data.datasets import batch_images, class_names, load_dataset, take_images
from ddim_tutorial.data.folders import folder_class_names, load_image_folder
from ddim_tutorial.data.synthetic import SYNTHETIC_CLASS_NAMES, synthetic_flowers
from ddim_tutorial.runtime.compiled_sampling import CompiledSampler
from tests.helpers import model_around

TINY = DDIMConfig.preset("smoke", image_size=16, widths=(8, 16), embedding_dims=8, batch_size=4)
GAUSS_MEAN, GAUSS_STD = 0.3, 0.5


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


# ----------------------------------------------------------------- prediction types
@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_targets_and_components_invert_each_other(prediction_type):
    rng = np.random.default_rng(0)
    images, noises = rng.standard_normal((2, 2, 4, 4, 3))
    angles = rng.uniform(0.05, 1.5, size=(2, 1, 1, 1))
    noise_rates, signal_rates = np.sin(angles), np.cos(angles)
    noisy_images = signal_rates * images + noise_rates * noises
    targets = prediction_targets(images, noises, noise_rates, signal_rates, prediction_type)
    pred_noises, pred_images = components_from_predictions(targets, noisy_images, noise_rates, signal_rates,
                                                           prediction_type)
    np.testing.assert_allclose(to_numpy(pred_noises), noises, atol=1e-10)
    np.testing.assert_allclose(to_numpy(pred_images), images, atol=1e-10)


def test_velocity_is_signal_times_noise_minus_noise_times_image():
    # Salimans and Ho (2022): v = alpha * eps - sigma * x, with alpha the signal rate.
    images, noises = np.full((1, 1, 1, 1), 2.0), np.full((1, 1, 1, 1), 5.0)
    velocity = to_numpy(prediction_targets(images, noises, 0.6, 0.8, "velocity"))
    assert velocity.item() == pytest.approx(0.8 * 5.0 - 0.6 * 2.0)
    assert to_numpy(prediction_targets(images, noises, 0.6, 0.8, "image")).item() == 2.0
    assert to_numpy(prediction_targets(images, noises, 0.6, 0.8, "noise")).item() == 5.0


class ExactGaussianPredictor(keras.layers.Layer):
    """The exact answer, in the form of ``prediction_type``, when every pixel is N(GAUSS_MEAN, GAUSS_STD**2)."""

    def __init__(self, prediction_type, **kwargs):
        super().__init__(**kwargs)
        self.prediction_type = prediction_type

    def call(self, inputs):
        noisy_images, noise_variances = inputs
        noise_rates = keras.ops.sqrt(noise_variances)
        signal_rates = keras.ops.sqrt(1.0 - noise_variances)
        centred = noisy_images - signal_rates * GAUSS_MEAN
        denominator = (1.0 - noise_variances) * GAUSS_STD**2 + noise_variances
        noises = noise_rates * centred / denominator
        images = GAUSS_MEAN + signal_rates * GAUSS_STD**2 * centred / denominator
        return prediction_targets(images, noises, noise_rates, signal_rates, self.prediction_type)


def exact_network(prediction_type) -> keras.Model:
    noisy_images, noise_variances = keras.Input((8, 8, 3)), keras.Input((1, 1, 1))
    outputs = ExactGaussianPredictor(prediction_type)([noisy_images, noise_variances])
    return keras.Model([noisy_images, noise_variances], outputs)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_three_prediction_types_of_one_exact_denoiser_sample_the_same_images(sampler):
    noise = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype("float32")
    samples = {prediction_type: to_numpy(reverse_diffusion(exact_network(prediction_type), noise, 6, sampler=sampler,
                                                           prediction_type=prediction_type))
               for prediction_type in COSINE_PREDICTION_TYPES}
    np.testing.assert_allclose(samples["image"], samples["noise"], atol=2e-4)
    np.testing.assert_allclose(samples["velocity"], samples["noise"], atol=2e-4)
    # ... and a wrong prediction type gives other images (the argument is really used).
    wrong = to_numpy(reverse_diffusion(exact_network("velocity"), noise, 6, sampler=sampler))
    assert np.abs(wrong - samples["noise"]).max() > 0.1


@pytest.mark.parametrize("prediction_type", COSINE_PREDICTION_TYPES)
def test_compiled_sampler_follows_the_prediction_type(prediction_type):
    noise = np.random.default_rng(2).standard_normal((2, 8, 8, 3)).astype("float32")
    network = exact_network(prediction_type)
    compiled = CompiledSampler(model_around(network, prediction_type=prediction_type))
    for sampler in SAMPLERS:
        eager = to_numpy(reverse_diffusion(network, noise, 5, sampler=sampler, prediction_type=prediction_type))
        np.testing.assert_allclose(to_numpy(compiled(noise, 5, normalized=True, sampler=sampler)), eager, atol=1e-4)


@pytest.mark.parametrize("prediction_type", COSINE_PREDICTION_TYPES)
def test_model_trains_on_its_prediction_type_and_names_its_output(prediction_type):
    config = TINY.replace(prediction_type=prediction_type, seed=0)
    model = DiffusionModel(config)
    assert model.network.layers[-1].name == OUTPUT_NAMES[prediction_type]
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    model.adapt_normalizer(images)
    model.compile()
    outputs = model(images, training=True)
    loss = float(to_numpy(model.compute_loss(y_pred=outputs)))
    key = {"noise": ("noises", "pred_noises"), "image": ("images", "pred_images"),
           "velocity": ("targets", "pred_targets")}[prediction_type]
    expected = float(np.mean(np.abs(to_numpy(outputs[key[0]]) - to_numpy(outputs[key[1]]))))
    assert loss == pytest.approx(expected, rel=1e-5)
    history = model.fit(images, epochs=1, batch_size=4, verbose=0)
    assert ("loss" in history.history) == (prediction_type != "noise")


def test_prediction_type_is_validated():
    with pytest.raises(ValueError, match="prediction_type"):
        DDIMConfig(prediction_type="epsilon")
    with pytest.raises(ValueError, match="prediction_type='x0' is invalid"):
        reverse_diffusion(exact_network("noise"), np.zeros((1, 8, 8, 3), "float32"), 2, prediction_type="x0")


# ----------------------------------------------------------------------- guidance
class LabelShift(keras.layers.Layer):
    def call(self, inputs):
        noisy_images, shift = inputs
        return 0.1 * noisy_images + shift


def conditional_toy(num_classes: int = 3) -> keras.Model:
    """Output: 0.1 * noisy + a learnt colour per class (the "no label" class included)."""
    noisy_images, noise_variances = keras.Input((8, 8, 3)), keras.Input((1, 1, 1))
    labels = keras.Input((), dtype="int32")
    embedding = keras.layers.Embedding(num_classes + 1, 3, name="class_embedding")
    shift = keras.layers.Reshape((1, 1, 3))(embedding(labels))
    model = keras.Model([noisy_images, noise_variances, labels], LabelShift()([noisy_images, shift]))
    embedding.set_weights([np.arange((num_classes + 1) * 3, dtype="float32").reshape(num_classes + 1, 3) / 10])
    return model


def test_classifier_free_guidance_mixes_the_conditional_and_unconditional_answers():
    network = conditional_toy()
    assert num_classes_of(network) == 3 and num_classes_of(exact_network("noise")) == 0
    table = network.get_layer("class_embedding").get_weights()[0]
    noisy = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")
    variances = np.full((2, 1, 1, 1), 0.5, "float32")
    labels = np.array([0, 2], "int32")

    def call(inputs):
        return network(inputs, training=False)

    def predict(**kwargs):  # the math takes tensors
        tensors = map(keras.ops.convert_to_tensor, (noisy, variances))
        return to_numpy(network_predictions(call, *tensors, null_label=3, **kwargs))

    conditional = 0.1 * noisy + table[labels][:, None, None, :]
    unconditional = 0.1 * noisy + table[3]
    np.testing.assert_allclose(predict(class_labels=labels), conditional, atol=1e-6)
    np.testing.assert_allclose(predict(), unconditional, atol=1e-6)
    np.testing.assert_allclose(predict(class_labels=labels, guidance_scale=1.0), conditional, atol=1e-6)
    np.testing.assert_allclose(predict(class_labels=labels, guidance_scale=0.0), unconditional, atol=1e-6)
    np.testing.assert_allclose(predict(class_labels=labels, guidance_scale=3.0),
                               unconditional + 3.0 * (conditional - unconditional), atol=1e-5)


def test_guided_sampling_eager_and_compiled_agree_and_labels_matter():
    network = conditional_toy()
    noise = np.random.default_rng(5).standard_normal((3, 8, 8, 3)).astype("float32")
    compiled = CompiledSampler(model_around(network, num_classes=3))
    for sampler in SAMPLERS:
        for scale in (1.0, 2.5):
            eager = to_numpy(reverse_diffusion(network, noise, 4, sampler=sampler, class_labels=[0, 1, 2],
                                               guidance_scale=scale))
            fast = to_numpy(compiled(noise, 4, normalized=True, sampler=sampler, class_labels=[0, 1, 2],
                                     guidance_scale=scale))
            np.testing.assert_allclose(fast, eager, atol=1e-4)
    one_label = to_numpy(reverse_diffusion(network, noise, 4, class_labels=1))
    np.testing.assert_allclose(one_label, to_numpy(reverse_diffusion(network, noise, 4, class_labels=[1, 1, 1])))
    assert np.abs(one_label - to_numpy(reverse_diffusion(network, noise, 4, class_labels=2))).max() > 0.1
    assert compiled.trace_count <= 4  # two samplers, guided; the guidance scale is an argument, not a constant


@pytest.mark.parametrize("arguments, message", [
    (dict(class_labels=[0, 1]), "2 labels for 3 images"),
    (dict(class_labels=[0, 1, 3]), "classes 0 to 2"),
    (dict(class_labels=[0, -1, 1]), "classes 0 to 2"),
    (dict(class_labels=[0.5, 1, 2]), "integer class indices"),
    (dict(guidance_scale=2.0), "needs class_labels"),
    (dict(class_labels=1, guidance_scale=-1.0), "guidance_scale=-1.0 is invalid"),
    (dict(class_labels=1, guidance_scale=float("nan")), "guidance_scale=nan is invalid"),
])
def test_bad_labels_and_guidance_are_refused(arguments, message):
    noise = np.zeros((3, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match=message):
        reverse_diffusion(conditional_toy(), noise, 2, **arguments)


def test_labels_for_an_unconditional_network_are_refused():
    with pytest.raises(ValueError, match="this network is unconditional"):
        reverse_diffusion(exact_network("noise"), np.zeros((1, 8, 8, 3), "float32"), 2, class_labels=0)


def test_conditional_network_has_a_label_input_and_a_null_class():
    network = build_network(TINY.replace(num_classes=5))
    assert len(network.inputs) == 3 and num_classes_of(network) == 5
    assert network.get_layer("class_embedding").input_dim == 6  # five classes and "no label"


def test_label_dropout_replaces_labels_by_the_null_class_in_training_only():
    config = TINY.replace(num_classes=4, label_dropout=0.5, seed=0, batch_size=256)
    model = DiffusionModel(config)
    labels = np.arange(256, dtype="int32") % 4
    shape = (256, 16, 16, 3)
    dropped = to_numpy(model._training_labels(labels, shape, training=True))
    kept = dropped != 4
    assert 0.35 < kept.mean() < 0.65
    np.testing.assert_array_equal(dropped[kept], labels[kept])
    np.testing.assert_array_equal(to_numpy(model._training_labels(labels, shape, training=False)), labels)
    no_dropout = DiffusionModel(config.replace(label_dropout=0.0))
    np.testing.assert_array_equal(to_numpy(no_dropout._training_labels(labels, shape, training=True)), labels)


def test_conditional_model_trains_on_labelled_batches_and_refuses_unlabelled_ones():
    config = TINY.replace(num_classes=len(SYNTHETIC_CLASS_NAMES), seed=0)
    images, labels = synthetic_flowers(8, 16, seed=0, labels=True)
    model = DiffusionModel(config)
    model.adapt_normalizer(images)
    model.compile()
    model.fit(batch_images(images, config, training=True, class_labels=labels, use_tf_data=False), epochs=1,
              verbose=0)
    grid = to_numpy(model.generate(4, 3, seed=0, class_labels=[0, 1, 2, 3], guidance_scale=2.0))
    assert grid.shape == (4, 16, 16, 3) and np.isfinite(grid).all()
    with pytest.raises(ValueError, match="the batch has no labels"):
        model(images, training=True)


def test_conditional_checkpoints_keep_labels_and_prediction_type(tmp_path):
    config = TINY.replace(num_classes=3, prediction_type="velocity", seed=0)
    model = DiffusionModel(config)
    model.adapt_normalizer(np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32"))
    model.ema_network.get_layer("class_embedding").set_weights(
        [np.random.default_rng(1).standard_normal((4, 8)).astype("float32")])
    save_checkpoint(model, tmp_path / "run")
    loaded = load_checkpoint(tmp_path / "run")
    assert loaded.config.prediction_type == "velocity" and loaded.config.num_classes == 3
    np.testing.assert_allclose(to_numpy(loaded.generate(2, 3, seed=0, class_labels=[0, 2], guidance_scale=2.0)),
                               to_numpy(model.generate(2, 3, seed=0, class_labels=[0, 2], guidance_scale=2.0)),
                               atol=1e-5)
    with pytest.raises(CheckpointError, match="prediction_type|num_classes"):
        load_checkpoint(tmp_path / "run", config=config.replace(prediction_type="noise"))


# -------------------------------------------------------------------------- labels
def test_synthetic_labels_are_the_petal_colours_and_leave_the_images_unchanged():
    images, labels = synthetic_flowers(30, 16, seed=4, labels=True)
    np.testing.assert_array_equal(images, synthetic_flowers(30, 16, seed=4))
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < len(SYNTHETIC_CLASS_NAMES)
    assert len(set(labels.tolist())) >= 5


def write_class_folder(root, classes, per_class, colours):
    from PIL import Image

    for name, colour in zip(classes, colours, strict=True):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.new("RGB", (12, 10), colour).save(root / name / f"{index}.png")


def test_folder_labels_are_the_sorted_sub_folders(tmp_path):
    write_class_folder(tmp_path / "flat", ["tulip", "daisy", "rose"], 2, [(250, 0, 0), (0, 250, 0), (0, 0, 250)])
    assert folder_class_names(tmp_path / "flat") == ["daisy", "rose", "tulip"]
    images, labels = load_image_folder(tmp_path / "flat", 8, labels=True)
    # Sorted by path: daisy (green) 0, rose (blue) 1, tulip (red) 2.
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])
    assert images[0, 0, 0, 1] > 0.9 and images[2, 0, 0, 2] > 0.9 and images[4, 0, 0, 0] > 0.9


def test_pre_split_folder_labels_use_the_train_classes(tmp_path):
    write_class_folder(tmp_path / "split" / "train", ["a", "b"], 3, [(250, 0, 0), (0, 250, 0)])
    write_class_folder(tmp_path / "split" / "test", ["b"], 2, [(0, 250, 0)])
    assert folder_class_names(tmp_path / "split") == ["a", "b"]
    _, labels = load_image_folder(tmp_path / "split", 8, "validation", labels=True)
    np.testing.assert_array_equal(labels, [1, 1])
    config = TINY.replace(image_size=8, batch_size=2, num_classes=2)
    batch = next(iter(load_dataset(config, "validation", data_dir=tmp_path / "split", labels=True,
                                   shuffle=False)))
    assert set(batch) == {"images", "class_labels"}
    np.testing.assert_array_equal(to_numpy(batch["class_labels"]), [1, 1])
    assert class_names(config, data_dir=tmp_path / "split") == ["a", "b"]


def test_flat_folder_without_classes_cannot_give_labels(tmp_path):
    from PIL import Image

    for index in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{index}.png")
    with pytest.raises(ValueError, match="no sub-folders of images"):
        load_image_folder(tmp_path, 8, labels=True)


@pytest.mark.parametrize("use_tf_data", [False, True])
def test_labelled_batches_keep_each_label_with_its_image(use_tf_data):
    if use_tf_data and keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data pipelines are the TensorFlow backend's")
    images, labels = synthetic_flowers(12, 8, seed=0, labels=True)
    config = TINY.replace(image_size=8, batch_size=4, augment_flip=False, seed=1)
    batches = batch_images(images, config, training=True, class_labels=labels, use_tf_data=use_tf_data)
    seen = 0
    for batch in batches:
        for image, label in zip(to_numpy(batch["images"]), to_numpy(batch["class_labels"]), strict=True):
            index = int(np.argmin(np.abs(images - image).reshape(12, -1).max(axis=1)))
            assert np.abs(images[index] - image).max() == 0 and labels[index] == label
            seen += 1
    assert seen == 12
    assert take_images(batches, 4).shape == (4, 8, 8, 3)


def test_train_refuses_a_class_count_that_the_data_does_not_have(tmp_path):
    from ddim_tutorial.training.driver import train

    with pytest.raises(ValueError, match=r"num_classes=3 but the data has 10 classes"):
        train(TINY.replace(num_classes=3), source="synthetic", epochs=1, verbose=0, validation=False,
              max_train_batches=1)


def test_train_records_the_class_names(tmp_path):
    from ddim_tutorial.training.checkpoints import read_training_state
    from ddim_tutorial.training.driver import train

    config = TINY.replace(num_classes=len(SYNTHETIC_CLASS_NAMES), seed=0)
    train(config, source="synthetic", epochs=1, out=tmp_path / "run", verbose=0, max_train_batches=2)
    loaded = load_checkpoint(tmp_path / "run" / "last")
    assert loaded.config.class_names == SYNTHETIC_CLASS_NAMES
    assert read_training_state(tmp_path / "run" / "last")["epoch"] == 1
    with pytest.raises(ValueError, match="are not the data's classes"):
        train(config.replace(class_names=tuple(reversed(SYNTHETIC_CLASS_NAMES))), source="synthetic", epochs=1,
              verbose=0, validation=False, max_train_batches=1)
    with pytest.raises(ValueError, match="class_names"):
        DDIMConfig(num_classes=2, class_names=("a",))
