"""The trained models bundled with the package (``bundled/NAME/``): ``load``, ``available``, ``card``,
``export``."""

from ddim_tutorial.pretrained.presets import (
    BUNDLED_ROOT,
    DATA,
    FULL_BUDGET_IMAGES,
    PROVENANCE,
    REFERENCE_IMAGES,
    SPLIT,
    BundledModelError,
    available,
    bundled_dir,
    card,
    default_name,
    export,
    load,
    reference_samples,
    validation_noise_loss,
    wall_time_seconds,
    write_card,
)

__all__ = [
    "BundledModelError", "available", "card", "load", "default_name", "bundled_dir", "validation_noise_loss",
    "export", "write_card", "wall_time_seconds", "reference_samples", "BUNDLED_ROOT", "FULL_BUDGET_IMAGES",
    "REFERENCE_IMAGES", "DATA", "SPLIT", "PROVENANCE"]
