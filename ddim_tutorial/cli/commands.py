"""What each command of ``python -m ddim_tutorial`` does once :mod:`ddim_tutorial.cli.parser` has parsed it.

Each ``run_*`` function takes the parsed arguments and returns the exit status; a mistake the
user can fix raises :class:`CLIError` (or another ``ValueError``), which the command line
prints as one line. Keras and the heavy modules are imported inside the functions, after
the backend has been chosen.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Sequence

from ddim_tutorial.config import DEFAULT_GUIDANCE_SCALE, PRESETS, DDIMConfig
from ddim_tutorial.runtime.backends import software_versions

__all__ = ["CLIError", "parse_overrides", "run_train", "run_sample", "run_kid", "run_models", "run_export"]


class CLIError(ValueError):
    """A bad command line the parser itself cannot catch."""


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["lr=1e-4", "widths=[16,32]"]`` -> ``{"lr": 1e-4, "widths": [16, 32]}`` (JSON, else text)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        field, separator, text = pair.partition("=")
        field = field.strip()
        if not separator or not field:
            raise CLIError(f"--set {pair!r} is invalid: write FIELD=VALUE, e.g. --set learning_rate=3e-4.")
        overrides[field] = _parse_value(text.strip())
    return overrides


def _parse_value(text: str) -> Any:
    python_literals = {"None": None, "none": None, "True": True, "False": False}
    if text in python_literals:
        return python_literals[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_picture_path(path: str) -> Path:
    from matplotlib.figure import Figure

    picture = Path(path)
    if picture.is_dir():
        raise CLIError(f"--out {path!r} is a folder; name the picture file, e.g. {str(picture / 'grid.png')!r}.")
    formats = Figure().canvas.get_supported_filetypes()
    suffix = picture.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise CLIError(f"--out {path!r} is invalid: name a picture file ending in one of "
                       f"{', '.join('.' + name for name in sorted(formats))} (e.g. grid.png).")
    return picture


def run_train(args: argparse.Namespace) -> int:
    from ddim_tutorial.training.checkpoints import checkpoint_exists, read_checkpoint_config
    from ddim_tutorial.training.driver import train

    out = Path(args.out)
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other; pick one.")
    initial_model = None
    if args.start_from is not None:
        if args.resume:
            raise CLIError("--start-from and --resume contradict each other: --resume continues DIR/last.")
        initial_model = _open_model(args.start_from)
    if args.preset is not None:
        config = DDIMConfig.preset(args.preset)
    elif initial_model is not None:
        config = initial_model.config
    elif args.resume:
        config = read_checkpoint_config(out / "last")
    else:
        raise CLIError(f"train needs --preset NAME (one of {', '.join(sorted(PRESETS))}), "
                       "or --resume to continue a run.")
    overrides = parse_overrides([pair for group in args.overrides for pair in group])
    for field, value in (("batch_size", args.batch_size), ("seed", args.seed), ("num_epochs", args.epochs),
                         ("path", getattr(args, "path", None))):
        if value is not None:
            overrides[field] = value
    if overrides.get("path") == "linear" and "prediction_type" not in overrides:
        overrides["prediction_type"] = "flow"  # the straight path's own target: its velocity
    config = config.replace(**overrides) if overrides else config
    if not args.resume and not args.overwrite and checkpoint_exists(out / "last"):
        raise CLIError(f"--out {str(out)!r} already holds a checkpoint of an earlier run ({out / 'last'}); "
                       "pass --resume to continue it, --overwrite to start afresh, or choose another --out.")
    verbose = "auto" if args.verbose is None else args.verbose
    train(config, data_dir=args.data_dir, source=args.source, epochs=config.num_epochs, out=out,
          resume=args.resume, verbose=verbose, validation=not args.no_validation,
          max_train_batches=args.steps_per_epoch, initial_model=initial_model)
    return 0


def _open_model(name_or_folder: str) -> Any:
    """A bundled model by name, or a checkpoint folder."""
    from ddim_tutorial.pretrained import presets as pretrained
    from ddim_tutorial.training.checkpoints import load_checkpoint

    if name_or_folder in pretrained.available():
        return pretrained.load(name_or_folder)
    if not Path(name_or_folder).is_dir():
        raise CLIError(f"--start-from {name_or_folder!r} is neither a bundled model "
                       f"({', '.join(pretrained.available())}) nor a checkpoint folder.")
    return load_checkpoint(name_or_folder)


def run_sample(args: argparse.Namespace) -> int:
    from ddim_tutorial.data.pictures import save_image_grid
    from ddim_tutorial.pretrained import presets as pretrained
    from ddim_tutorial.training.checkpoints import load_checkpoint

    picture = _check_picture_path(args.out)
    model = pretrained.load(args.bundled) if args.bundled is not None else load_checkpoint(args.checkpoint)
    steps = model.config.plot_diffusion_steps if args.steps is None else args.steps
    labels = {}
    if model.config.num_classes:
        import numpy as np

        class_labels = (np.arange(args.num) % model.config.num_classes if args.class_label is None
                        else args.class_label)
        scale = DEFAULT_GUIDANCE_SCALE if args.guidance is None else args.guidance
        labels = dict(class_labels=class_labels, guidance_scale=scale)
    elif args.class_label is not None or args.guidance is not None:
        raise CLIError("--class and --guidance need a class-conditional model (trained with num_classes > 0); "
                       "this one is unconditional.")
    images = model.generate(args.num, steps, eta=args.eta, seed=args.seed, sampler=args.sampler,
                            min_signal_rate=args.min_signal_rate, max_signal_rate=args.max_signal_rate, **labels)
    save_image_grid(images, picture, num_cols=args.cols)
    sampler = "" if args.sampler == "ddim" else f", {args.sampler}"
    print(f"Saved {args.num} samples ({steps} steps{sampler}, eta={args.eta:g}, seed {args.seed}) to {picture}.")
    return 0


def run_kid(args: argparse.Namespace) -> int:
    from ddim_tutorial.metrics.kid import compute_kid
    from ddim_tutorial.training.checkpoints import load_checkpoint

    weights = None if args.weights.strip().lower() == "none" else args.weights
    model = load_checkpoint(args.checkpoint)
    real_images = _real_images(model.config, args)
    subset_size = args.subset_size or min(1000, max(2, len(real_images) // 2))
    result = compute_kid(model, real_images, num_images=len(real_images), batch_size=args.batch_size,
                         diffusion_steps=args.steps, weights=weights, subset_size=subset_size, seed=args.seed)
    print(result)
    return 0


def run_models(args: argparse.Namespace) -> int:
    from ddim_tutorial.pretrained import presets as pretrained

    listed = pretrained.available()
    if not listed:
        print("No bundled models are installed.")
    for name, summary in listed.items():
        print(f"{name:10s} {summary}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ddim_tutorial.data.folders import load_image_folder
    from ddim_tutorial.pretrained import presets as pretrained
    from ddim_tutorial.training.checkpoints import read_checkpoint_config

    config = read_checkpoint_config(args.checkpoint)
    images = load_image_folder(args.data_dir, config.image_size, "validation")
    # Without --data/--split the card describes flowers12 as it is now (pretrained.DATA and SPLIT).
    data = pretrained.DATA if getattr(args, "data", None) is None else args.data
    split = pretrained.SPLIT if getattr(args, "split", None) is None else args.split
    stated = re.search(r"test/ \((\d+) images", split)
    if stated and int(stated.group(1)) != len(images):
        raise CLIError(f"the card's split line says test/ holds {stated.group(1)} images, but {args.data_dir} has "
                       f"{len(images)} held-out images, which give the validation figures; pass --split with the "
                       "true count.")
    root = Path(args.root) if args.root else None
    export_command = (f"python -m ddim_tutorial export --checkpoint runs/{args.name}/last --name {args.name} "
                      "--data-dir flowers12 --summary ... --train-command ... --wall-time ... --hardware ...")
    training = {"command": args.train_command, "export_command": export_command, "wall_time": args.wall_time,
                "hardware": args.hardware, "software": software_versions(), "data": data, "split": split,
                "target_images": args.target_images, "progress_note": args.progress_note, "script": args.script,
                "provenance": pretrained.PROVENANCE}
    folder = pretrained.export(args.checkpoint, args.name, summary=args.summary, training=training,
                               validation_images=images, root=root)
    info = pretrained.card(args.name) if root is None else json.loads((folder / pretrained.INFO_NAME).read_text())
    print(f"Wrote {folder}: {info['training']['images_seen']:,} images seen, validation noise loss "
          f"{info['evaluation']['validation_noise_loss']:.4f}.")
    return 0


def _real_images(config: DDIMConfig, args: argparse.Namespace) -> Any:
    """Up to ``--num`` (default 1000) validation images in [0, 1], as one array."""
    from ddim_tutorial.data.datasets import load_dataset, take_images

    # Batches of 2: the pipeline drops an incomplete last batch, so at most one image is lost.
    dataset = load_dataset(config.replace(batch_size=2), "validation", data_dir=args.data_dir, source=args.source,
                           repeat=False, shuffle=False)
    images = take_images(dataset, args.num or 1000, at_most=True)
    if args.num is not None and len(images) < args.num:
        raise CLIError(f"--num {args.num} is more than the {len(images)} validation images available; ask for fewer.")
    if len(images) < 2:
        raise CLIError(f"only {len(images)} validation image(s) found; KID needs at least 2.")
    return images
