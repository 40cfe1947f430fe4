"""DDIMConfig: the reference's defaults, presets, and one clear error per bad field."""

import json

import pytest

from ddim_tutorial.config import PRESETS, DDIMConfig


def test_defaults_are_the_reference_hyperparameters():
    config = DDIMConfig()
    assert config.image_size == 64
    assert config.widths == (32, 64, 96, 128)
    assert config.block_depth == 2
    assert config.embedding_dims == 32
    assert config.embedding_max_frequency == 1000.0
    assert config.embedding_min_frequency == 1.0
    assert (config.min_signal_rate, config.max_signal_rate) == (0.02, 0.95)
    assert config.batch_size == 64
    assert config.ema == 0.999
    assert config.learning_rate == 1e-3
    assert config.weight_decay == 1e-4
    assert config.dataset_repetitions == 5
    assert config.kid_image_size == 75
    assert config.kid_diffusion_steps == 5
    assert config.plot_diffusion_steps == 20
    assert config.loss == "mae"
    assert config.dataset_name == "oxford_flowers102"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_valid_configs(name):
    config = DDIMConfig.preset(name)
    assert isinstance(config, DDIMConfig)
    assert config.image_size % config.network_stride == 0


def test_smoke_preset_is_small_and_reference_preset_keeps_the_network():
    smoke, reference = DDIMConfig.preset("smoke"), DDIMConfig.preset("reference")
    assert smoke.image_size < 64 and max(smoke.widths) < 128 and not smoke.validation_kid
    assert reference.widths == DDIMConfig().widths and reference.num_epochs >= 50


def test_preset_overrides_and_unknown_preset():
    assert DDIMConfig.preset("smoke", batch_size=8).batch_size == 8
    with pytest.raises(ValueError, match="unknown preset 'tiny'.*smoke"):
        DDIMConfig.preset("tiny")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("min_signal_rate", 0.0, "min_signal_rate"),
        ("min_signal_rate", -0.1, "min_signal_rate"),
        ("min_signal_rate", 0.96, "min_signal_rate"),
        ("max_signal_rate", 1.01, "max_signal_rate"),
        ("max_signal_rate", float("nan"), "max_signal_rate"),
        ("image_size", 60, "image_size.*divisible by 2\\*\\*\\(len\\(widths\\)-1\\) = 8"),
        ("image_size", 0, "image_size"),
        ("image_size", -64, "image_size"),
        ("widths", (), "widths"),
        ("widths", (32, 0), "widths"),
        ("block_depth", 0, "block_depth"),
        ("batch_size", 1, "batch_size"),
        ("batch_size", 0, "batch_size"),
        ("embedding_dims", 31, "embedding_dims"),
        ("embedding_max_frequency", 0.5, "embedding_max_frequency"),
        ("ema", 1.0, "ema"),
        ("ema", -0.1, "ema"),
        ("learning_rate", 0, "learning_rate"),
        ("weight_decay", -1e-4, "weight_decay"),
        ("loss", "huber", "loss"),
        ("kid_image_size", 64, "kid_image_size"),
        ("kid_diffusion_steps", 0, "kid_diffusion_steps"),
        ("plot_diffusion_steps", 0, "plot_diffusion_steps"),
        ("dataset_repetitions", 0, "dataset_repetitions"),
        ("num_epochs", 0, "num_epochs"),
        ("mixed_precision", "float8", "mixed_precision"),
        ("jit_compile", "yes", "jit_compile"),
        ("steps_per_execution", 0, "steps_per_execution"),
        ("seed", -1, "seed"),
        ("image_size", 64.0, "image_size"),
        ("batch_size", True, "batch_size"),
    ],
)
def test_each_bad_value_names_its_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DDIMConfig(**{field: value})


def test_replace_validates_and_rejects_unknown_fields():
    config = DDIMConfig()
    assert config.replace(batch_size=32).batch_size == 32
    with pytest.raises(ValueError, match="min_signal_rate"):
        config.replace(min_signal_rate=0.99)
    with pytest.raises(ValueError, match="no field.*imagesize"):
        config.replace(imagesize=32)


def test_json_round_trip_and_differences():
    config = DDIMConfig.preset("smoke")
    restored = DDIMConfig.from_json(config.to_json())
    assert restored == config
    assert json.loads(config.to_json())["widths"] == list(config.widths)
    other = config.replace(block_depth=2, batch_size=8)
    assert set(config.differences(other)) == {"block_depth", "batch_size"}
    with pytest.raises(ValueError, match="unknown DDIMConfig field"):
        DDIMConfig.from_dict({**config.to_dict(), "colour": "red"})


def test_config_is_immutable():
    with pytest.raises(Exception):
        DDIMConfig().image_size = 32
