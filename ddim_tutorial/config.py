"""Hyperparameters of the diffusion model, in one validated dataclass.

The defaults are those of the Keras example "Denoising Diffusion Implicit Models"
(A. Béres). Named presets trade quality for time: ``smoke`` for CI and quick CPU
checks, ``workshop`` for a short class on a free Colab GPU, ``reference`` for the
example's full recommended run.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from ddim_tutorial.checks import (
    LOSSES,
    PATH_PREDICTION_TYPES,
    PATHS,
    PREDICTION_TYPES,
    check_path_and_prediction,
    check_signal_rates,
    is_positive_int,
)

__all__ = ["DDIMConfig", "PRESETS", "DEFAULT_GUIDANCE_SCALE", "PATHS", "PREDICTION_TYPES", "PATH_PREDICTION_TYPES"]

#: The classifier-free guidance scale that class-conditional sampling uses unless told otherwise:
#: where species32's samples show their species without over-saturating (lesson 8's sweep).
DEFAULT_GUIDANCE_SCALE = 3.0
_PRECISIONS = (None, "float32", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class DDIMConfig:
    """Every knob of the model, the data pipeline and training.

    The object is immutable and checked on construction, so a bad value fails
    early with a message naming the field instead of deep inside Keras. Use
    ``config.replace(field=value)`` to derive a variant.
    """

    # data
    dataset_name: str = "oxford_flowers102"
    dataset_repetitions: int = 5
    image_size: int = 64
    augment_flip: bool = False  # "what to try next": horizontal flips help on small data
    # training length
    num_epochs: int = 1  # the reference trains 1 epoch and recommends at least 50
    # KID (Kernel Inception Distance)
    kid_image_size: int = 75
    kid_diffusion_steps: int = 5
    validation_kid: bool = True  # measure KID on the validation set each epoch
    kid_weights: str | None = "imagenet"  # "imagenet", a path to an .h5 file, or None
    plot_diffusion_steps: int = 20
    # sampling
    min_signal_rate: float = 0.02
    max_signal_rate: float = 0.95
    # architecture
    embedding_dims: int = 32
    embedding_min_frequency: float = 1.0
    embedding_max_frequency: float = 1000.0
    widths: tuple[int, ...] = (32, 64, 96, 128)
    block_depth: int = 2
    # what the network predicts: "noise" (the reference), "image" or "velocity" (v-prediction);
    # on the linear path, "flow" (the flow-matching velocity noise - image)
    prediction_type: str = "noise"
    # the path from image to noise: "cosine" (the reference) or "linear" (flow matching)
    path: str = "cosine"
    # class conditioning: 0 is the reference's unconditional model; with N > 0 classes each
    # image's label is replaced by "no label" with probability label_dropout during training,
    # which is what classifier-free guidance needs
    num_classes: int = 0
    label_dropout: float = 0.1
    class_names: tuple[str, ...] = ()  # what the labels 0, 1, ... mean; filled in by training
    # optimization
    batch_size: int = 64
    ema: float = 0.999
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "mae"
    # speed options; the defaults keep the reference's behaviour
    mixed_precision: str | None = None
    jit_compile: bool | str = "auto"  # "auto": per backend and device, see DiffusionModel.compile
    steps_per_execution: int = 1
    # reproducibility: None draws fresh randomness each run
    seed: int | None = None

    def __post_init__(self) -> None:
        # Accept lists from JSON/CLI but store an immutable tuple.
        if not isinstance(self.widths, tuple):
            try:
                object.__setattr__(self, "widths", tuple(self.widths))
            except TypeError:
                _fail("widths", self.widths, "must be a sequence of positive integers")
        if not isinstance(self.class_names, tuple):
            if isinstance(self.class_names, str):
                _fail("class_names", self.class_names, "must be a sequence of names, not one string")
            try:
                object.__setattr__(self, "class_names", tuple(self.class_names))
            except TypeError:
                _fail("class_names", self.class_names, "must be a sequence of names")
        self._validate()

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        _positive_int("image_size", self.image_size)
        _positive_int("dataset_repetitions", self.dataset_repetitions)
        _positive_int("num_epochs", self.num_epochs)
        _positive_int("kid_image_size", self.kid_image_size)
        if self.kid_image_size < 75:
            _fail("kid_image_size", self.kid_image_size, "must be at least 75, the smallest input InceptionV3 accepts")
        _positive_int("kid_diffusion_steps", self.kid_diffusion_steps)
        _positive_int("plot_diffusion_steps", self.plot_diffusion_steps)
        _positive_int("embedding_dims", self.embedding_dims)
        if self.embedding_dims % 2:
            _fail("embedding_dims", self.embedding_dims, "must be even (half sines, half cosines)")
        _positive_float("embedding_min_frequency", self.embedding_min_frequency)
        _positive_float("embedding_max_frequency", self.embedding_max_frequency)
        if self.embedding_max_frequency < self.embedding_min_frequency:
            _fail("embedding_max_frequency", self.embedding_max_frequency,
                  f"must be >= embedding_min_frequency ({self.embedding_min_frequency})")
        check_signal_rates(self.min_signal_rate, self.max_signal_rate)
        if len(self.widths) == 0:
            _fail("widths", self.widths, "must list at least one width")
        for width in self.widths:
            _positive_int("widths", width)
        _positive_int("block_depth", self.block_depth)
        if self.prediction_type not in PREDICTION_TYPES:
            _fail("prediction_type", self.prediction_type, f"must be one of {', '.join(map(repr, PREDICTION_TYPES))}")
        if not isinstance(self.path, str) or self.path not in PATHS:
            _fail("path", self.path, f"must be one of {', '.join(map(repr, PATHS))}")
        check_path_and_prediction(self.path, self.prediction_type)
        if not is_positive_int(self.num_classes, minimum=0):
            _fail("num_classes", self.num_classes, "must be 0 (unconditional) or the number of classes")
        if (not isinstance(self.label_dropout, (int, float)) or isinstance(self.label_dropout, bool)
                or not 0.0 <= self.label_dropout < 1.0):
            _fail("label_dropout", self.label_dropout, "must be a number in [0, 1)")
        if self.class_names and (len(self.class_names) != self.num_classes
                                 or not all(isinstance(name, str) for name in self.class_names)):
            _fail("class_names", self.class_names, f"must be empty or num_classes={self.num_classes} names")
        factor = self.network_stride
        if self.image_size % factor:
            _fail("image_size", self.image_size,
                  f"must be divisible by 2**(len(widths)-1) = {factor} so the U-Net can halve it "
                  f"{len(self.widths) - 1} times; try {max(factor, round(self.image_size / factor) * factor)}")
        _positive_int("batch_size", self.batch_size)
        if self.batch_size < 2:
            _fail("batch_size", self.batch_size, "must be at least 2 (batch statistics and KID need two images)")
        if not isinstance(self.ema, (int, float)) or isinstance(self.ema, bool) or not 0.0 <= self.ema < 1.0:
            _fail("ema", self.ema, "must be a number in [0, 1)")
        _positive_float("learning_rate", self.learning_rate)
        if (not isinstance(self.weight_decay, (int, float)) or isinstance(self.weight_decay, bool)
                or self.weight_decay < 0):
            _fail("weight_decay", self.weight_decay, "must be a number >= 0")
        if self.loss not in LOSSES:
            _fail("loss", self.loss, f"must be one of {', '.join(LOSSES)}")
        if self.mixed_precision not in _PRECISIONS:
            _fail("mixed_precision", self.mixed_precision,
                  "must be None, 'float32', 'mixed_float16' or 'mixed_bfloat16'")
        if self.jit_compile not in (True, False, "auto"):
            _fail("jit_compile", self.jit_compile, "must be True, False or 'auto'")
        _positive_int("steps_per_execution", self.steps_per_execution)
        if self.seed is not None and not is_positive_int(self.seed, minimum=0):
            _fail("seed", self.seed, "must be None or a non-negative integer")
        if self.kid_weights is not None and not isinstance(self.kid_weights, str):
            _fail("kid_weights", self.kid_weights, "must be 'imagenet', a path to an .h5 file, or None")
        if not isinstance(self.dataset_name, str) or not self.dataset_name:
            _fail("dataset_name", self.dataset_name, "must be a non-empty string")

    # ---------------------------------------------------------------- helpers
    def replace(self, **changes: Any) -> "DDIMConfig":
        """Return a validated copy with some fields changed."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"DDIMConfig has no field(s) {', '.join(unknown)}; "
                             f"known fields: {', '.join(f.name for f in fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["widths"] = list(self.widths)
        data["class_names"] = list(self.class_names)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DDIMConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DDIMConfig field(s) {', '.join(unknown)}; "
                             "was this file written by a newer ddim_tutorial?")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "DDIMConfig":
        return cls.from_dict(json.loads(text))

    def differences(self, other: "DDIMConfig") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ, as ``{name: (self_value, other_value)}``."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name))
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "DDIMConfig":
        """A named configuration: ``smoke``, ``workshop`` or ``reference``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def network_stride(self) -> int:
        """How many times smaller the U-Net's bottleneck is than its input."""
        return 2 ** (len(self.widths) - 1)


def _fail(name: str, value: Any, requirement: str) -> None:
    raise ValueError(f"DDIMConfig.{name}={value!r} is invalid: it {requirement}.")


def _positive_int(name: str, value: Any) -> None:
    if not is_positive_int(value):
        _fail(name, value, "must be a positive integer")


def _positive_float(name: str, value: Any) -> None:
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
            or not math.isfinite(value)):
        _fail(name, value, "must be a positive, finite number")


PRESETS: dict[str, dict[str, Any]] = {
    # A few minutes on 2 CPU cores: small images, a small U-Net, no KID during training.
    "smoke": dict(
        image_size=32,
        widths=(16, 32, 48),
        block_depth=1,
        embedding_dims=16,
        batch_size=16,
        dataset_repetitions=1,
        num_epochs=2,
        kid_diffusion_steps=3,
        plot_diffusion_steps=10,
        validation_kid=False,
        kid_weights=None,
        seed=0,
    ),
    # The reference network on 64x64 images for a short class: 5 epochs, about 12 minutes on a
    # T4 by the reference's own figure (50 epochs in 2 hours, so about 144 s per epoch; we could
    # not time a T4 here). Flips double the effective data; KID is measured after training.
    # jit_compile stays "auto": XLA where it pays (a GPU/TPU, and JAX), never
    # torch.compile, and not on a TensorFlow CPU (slower there, benchmarks/README.md).
    "workshop": dict(
        num_epochs=5,
        augment_flip=True,
        validation_kid=False,
    ),
    # The reference's full recommendation: its defaults, trained for 50 epochs.
    "reference": dict(num_epochs=50),
}
