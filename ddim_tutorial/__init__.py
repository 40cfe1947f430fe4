"""ddim_tutorial: Denoising Diffusion Implicit Models in Keras 3, for learning.

The package holds the code that the notebooks import. The names here are the ones a
student or user calls; everything else lives in the module its name points to
(``docs/DESIGN.md`` has the map)::

    config = DDIMConfig.preset("reference")            # the settings, checked
    dataset = load_dataset(config, "train")            # the one data entry point
    model, history = train(config)                     # or DiffusionModel(config) and fit
    model = load_pretrained("flowers64")               # or a bundled, trained model
    images = model.generate(8, 20)                     # 8 images in 20 steps, compiled
    print(compute_kid(model, real_images))             # KID = mean ± std

Submodules load lazily, so ``import ddim_tutorial`` is cheap and never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from ddim_tutorial.config import PRESETS, DDIMConfig

__version__ = "0.1.0"

# public name -> (submodule that defines it, its name there)
_LAZY = {
    "DiffusionModel": ("core.model", "DiffusionModel"),
    "train": ("training.driver", "train"),
    "load_dataset": ("data.datasets", "load_dataset"),
    "DatasetUnavailableError": ("data.datasets", "DatasetUnavailableError"),
    "diffusion_schedule": ("core.schedule", "diffusion_schedule"),
    "ddim_step": ("core.sampling", "ddim_step"),
    "reverse_diffusion": ("core.sampling", "reverse_diffusion"),
    "compute_kid": ("metrics.kid", "compute_kid"),
    "KID": ("metrics.kid", "KID"),
    "InceptionWeightsUnavailableError": ("metrics.inception", "InceptionWeightsUnavailableError"),
    "save_checkpoint": ("training.checkpoints", "save_checkpoint"),
    "load_checkpoint": ("training.checkpoints", "load_checkpoint"),
    "CheckpointError": ("training.checkpoints", "CheckpointError"),
    "load_pretrained": ("pretrained.presets", "load"),
}

# The modules the lessons import by their short names (``from ddim_tutorial import lesson, plotting``).
_MODULES = {
    "lesson": "teaching.lesson", "plotting": "teaching.plotting", "widgets": "teaching.widgets",
    "exercises": "teaching.exercises", "interpolation": "teaching.interpolation", "kid": "metrics.kid",
}

__all__ = ["DDIMConfig", "PRESETS", "__version__", *_LAZY, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module_name}", __name__), attribute)
    if name in _MODULES:
        return importlib.import_module(f".{_MODULES[name]}", __name__)
    raise AttributeError(f"module 'ddim_tutorial' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
