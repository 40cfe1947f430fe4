"""ddim_tutorial: Denoising Diffusion Implicit Models in Keras 3, for learning.

The package holds the code that the notebooks import: a validated config, the diffusion
schedule, the residual U-Net, the diffusion model, samplers, the KID metric, data loading,
checkpoints, plots and widgets. Submodules load lazily, so ``import ddim_tutorial`` is
cheap and never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import PRESETS, DDIMConfig

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    "diffusion_schedule": "schedule",
    "build_network": "network",
    "SinusoidalEmbedding": "network",
    "DiffusionModel": "model",
    "reverse_diffusion": "sampling",
    "reverse_diffusion_steps": "sampling",
    "ddim_step": "sampling",
    "save_checkpoint": "checkpoints",
    "load_checkpoint": "checkpoints",
    "CheckpointError": "checkpoints",
    "load_dataset": "data",
    "flowers_dataset": "data",
    "image_folder_dataset": "data",
    "load_image_folder": "folders",
    "synthetic_flowers": "synthetic",
    "DatasetUnavailableError": "data",
    "KID": "kid",
    "compute_kid": "kid",
    "kid_from_features": "kid",
    "extract_features": "kid",
    "build_inception_encoder": "kid",
    "resolve_inception_weights": "kid",
    "InceptionWeightsUnavailableError": "kid",
    "KIDResult": "kid",
    "CompiledSampler": "compiled_sampling",
    "InteractiveSampler": "compiled_sampling",
    "configure_devices": "distribution",
    "suggest_learning_rate": "distribution",
    "train": "training",
}

__all__ = ["DDIMConfig", "PRESETS", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'ddim_tutorial' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
