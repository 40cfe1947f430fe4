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

from .config import PRESETS, DDIMConfig

__version__ = "0.1.0"

# public name -> (submodule that defines it, its name there)
_LAZY = {
    "DiffusionModel": ("model", "DiffusionModel"),
    "train": ("training", "train"),
    "load_dataset": ("data", "load_dataset"),
    "DatasetUnavailableError": ("data", "DatasetUnavailableError"),
    "diffusion_schedule": ("schedule", "diffusion_schedule"),
    "ddim_step": ("sampling", "ddim_step"),
    "reverse_diffusion": ("sampling", "reverse_diffusion"),
    "compute_kid": ("kid", "compute_kid"),
    "KID": ("kid", "KID"),
    "InceptionWeightsUnavailableError": ("inception", "InceptionWeightsUnavailableError"),
    "save_checkpoint": ("checkpoints", "save_checkpoint"),
    "load_checkpoint": ("checkpoints", "load_checkpoint"),
    "CheckpointError": ("checkpoints", "CheckpointError"),
    "load_pretrained": ("pretrained", "load"),
}

__all__ = ["DDIMConfig", "PRESETS", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(f".{module_name}", __name__), attribute)
    raise AttributeError(f"module 'ddim_tutorial' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
