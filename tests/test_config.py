"""DDIMConfig: the reference's defaults, presets, and one clear error per bad field."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        DDIMConfig().image_size = 32


# ------------------------------------------------- every bad field, one sentence (docs/ERRORS.md)
CONFIG_CASES = {
    "min_signal_rate_zero": (dict(min_signal_rate=0.0), "min_signal_rate=0.0 is invalid: it must be at least 0.001"),
    "min_signal_rate_negative": (dict(min_signal_rate=-0.1), "min_signal_rate=-0.1 is invalid"),
    "max_signal_rate_above_one": (dict(max_signal_rate=1.5), "max_signal_rate=1.5 is invalid: it must be <= 1"),
    "min_above_max_signal_rate": (dict(min_signal_rate=0.9, max_signal_rate=0.5),
                                  "must be smaller than max_signal_rate"),
    "signal_rate_nan": (dict(max_signal_rate=float("nan")), "max_signal_rate=nan is invalid"),
    "image_size_zero": (dict(image_size=0), "image_size=0 is invalid: it must be a positive integer"),
    "image_size_negative": (dict(image_size=-64), "image_size=-64 is invalid"),
    "image_size_text": (dict(image_size="64"), "image_size='64' is invalid"),
    "image_size_not_divisible": (dict(image_size=30, widths=(8, 16, 32)),
                                 "must be divisible by 2**(len(widths)-1) = 4"),
    "batch_size_one": (dict(batch_size=1), "batch_size=1 is invalid: it must be at least 2"),
    "batch_size_zero": (dict(batch_size=0), "batch_size=0 is invalid"),
    "widths_empty": (dict(widths=()), "widths=() is invalid: it must list at least one width"),
    "widths_zero": (dict(widths=(8, 0)), "widths=0 is invalid"),
    "block_depth_zero": (dict(block_depth=0), "block_depth=0 is invalid"),
    "plot_steps_zero": (dict(plot_diffusion_steps=0), "plot_diffusion_steps=0 is invalid"),
    "kid_steps_negative": (dict(kid_diffusion_steps=-1), "kid_diffusion_steps=-1 is invalid"),
    "kid_image_size_small": (dict(kid_image_size=50), "kid_image_size=50 is invalid: it must be at least 75"),
    "embedding_dims_odd": (dict(embedding_dims=7), "embedding_dims=7 is invalid: it must be even"),
    "learning_rate_nan": (dict(learning_rate=float("nan")), "learning_rate=nan is invalid"),
    "ema_one": (dict(ema=1.0), "ema=1.0 is invalid: it must be a number in [0, 1)"),
    "loss_unknown": (dict(loss="l3"), "loss='l3' is invalid: it must be one of mae, mse"),
    "precision_unknown": (dict(mixed_precision="float16"), "mixed_precision='float16' is invalid"),
    "epochs_zero": (dict(num_epochs=0), "num_epochs=0 is invalid"),
    "seed_negative": (dict(seed=-1), "seed=-1 is invalid"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_config_errors(case):
    overrides, message = CONFIG_CASES[case]
    with pytest.raises(ValueError) as error:
        DDIMConfig(**overrides)
    assert message in str(error.value)
    assert str(error.value).startswith("DDIMConfig.")


def test_config_rejects_infinite_embedding_frequency():
    with pytest.raises(ValueError, match="embedding_max_frequency=inf is invalid"):
        DDIMConfig(embedding_max_frequency=float("inf"))


def test_config_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset 'big'; choose one of reference, smoke, workshop"):
        DDIMConfig.preset("big")
    with pytest.raises(ValueError, match="DDIMConfig has no field.* lr; known fields: .*learning_rate"):
        DDIMConfig().replace(lr=1e-4)
    with pytest.raises(ValueError, match="unknown DDIMConfig field.* lr; was this file written by a newer"):
        DDIMConfig.from_dict({"lr": 1e-4})


# ------------------------------------------------- any config: valid, or a ValueError (property-based)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.integers(-2, 64), max_size=4), st.sampled_from(["auto", "mae", "mixed_float16"]))

FIELD_VALUES = {
    "image_size": st.one_of(st.integers(-8, 130), anything),
    "widths": st.one_of(st.lists(st.integers(-4, 64), max_size=5), st.tuples(st.integers(1, 64)), anything),
    "block_depth": st.one_of(st.integers(-1, 4), anything),
    "batch_size": st.one_of(st.integers(-1, 70), anything),
    "embedding_dims": st.one_of(st.integers(-2, 40), anything),
    "embedding_min_frequency": st.one_of(st.floats(-1, 10), anything),
    "embedding_max_frequency": st.one_of(st.floats(-1, 2000), anything),
    "min_signal_rate": st.one_of(st.floats(-0.5, 1.5), anything),
    "max_signal_rate": st.one_of(st.floats(-0.5, 1.5), anything),
    "kid_image_size": st.one_of(st.integers(0, 300), anything),
    "kid_diffusion_steps": st.one_of(st.integers(-1, 50), anything),
    "plot_diffusion_steps": st.one_of(st.integers(-1, 50), anything),
    "num_epochs": st.one_of(st.integers(-1, 60), anything),
    "dataset_repetitions": st.one_of(st.integers(-1, 10), anything),
    "learning_rate": st.one_of(st.floats(-1, 1), anything),
    "weight_decay": st.one_of(st.floats(-1, 1), anything),
    "ema": st.one_of(st.floats(-1, 2), anything),
    "loss": st.one_of(st.sampled_from(["mae", "mse", "huber"]), anything),
    "mixed_precision": st.one_of(st.sampled_from([None, "float32", "mixed_float16", "float16"]), anything),
    "jit_compile": st.one_of(st.sampled_from([True, False, "auto", "yes"]), anything),
    "steps_per_execution": st.one_of(st.integers(-1, 8), anything),
    "seed": st.one_of(st.integers(-3, 2**40), anything),
    "kid_weights": st.one_of(st.sampled_from([None, "imagenet", "weights.h5"]), anything),
    "dataset_name": anything,
    "augment_flip": anything,
    "validation_kid": anything,
}


@FAST
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_any_config_is_valid_or_a_value_error(overrides):
    try:
        config = DDIMConfig(**overrides)
    except ValueError as error:
        assert str(error).startswith(("DDIMConfig.", "unknown")), error
        return
    assert DDIMConfig.from_json(config.to_json()) == config
    assert config.image_size % config.network_stride == 0
    assert 0 < config.min_signal_rate < config.max_signal_rate <= 1


def test_workshop_preset_leaves_xla_to_auto():
    assert DDIMConfig.preset("workshop").jit_compile == "auto"
