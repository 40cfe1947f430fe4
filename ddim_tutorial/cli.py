"""The command line: ``python -m ddim_tutorial {train,sample,kid,models,export}``.

Keras is imported only after the arguments are parsed, because ``--backend`` must set
``KERAS_BACKEND`` before the first ``import keras``. Mistakes the user can fix (a bad
value, a missing folder, a damaged checkpoint, no network for a download) print one line
``error: ...`` and exit with status 2; a run stopped by Ctrl-C or SIGTERM exits with 130
or 143 after saying where its last checkpoint is.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import __version__
from ._shared import iterate_batches
from .config import DEFAULT_GUIDANCE_SCALE, PRESETS, DDIMConfig

__all__ = ["main", "build_parser", "parse_overrides", "BACKENDS"]

#: Keras backends the package supports, and the module each one needs.
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
SOURCES = ("auto", "tfds", "folder", "synthetic")
EXIT_USAGE = 2

_MAIN_EPILOG = """\
examples:
  python -m ddim_tutorial train --preset smoke --source synthetic --out runs/smoke
  python -m ddim_tutorial --backend jax train --preset workshop --data-dir ~/flowers --out runs/w
  python -m ddim_tutorial train --out runs/w --resume
  python -m ddim_tutorial sample --checkpoint runs/w/best --steps 20 --num 16 --out grid.png
  python -m ddim_tutorial kid --checkpoint runs/w/best --data-dir ~/flowers --num 500
  python -m ddim_tutorial models
  python -m ddim_tutorial sample --bundled flowers32 --num 6 --cols 3 --out flowers.png

Run `python -m ddim_tutorial COMMAND --help` for the options of each command.
Exit status: 0 done, 2 bad input (one line `error: ...`), 130/143 stopped by Ctrl-C/SIGTERM.
"""

_TRAIN_EPILOG = """\
outputs in --out DIR:
  samples/epoch_001.png  samples from the same seeded noise after every epoch
  history.csv            losses per epoch (epochs counted from 0, as Keras writes them)
  last/                  checkpoint of the last complete epoch (for --resume)
  best/                  checkpoint with the best val_kid (or val_n_loss) so far

Ctrl-C or SIGTERM stops after the current batch and keeps last/ intact (exit 130/143);
even after kill -9 last/ stays loadable. --resume continues from it with the same epoch
count, optimizer state, EMA weights and normalizer.

examples:
  python -m ddim_tutorial train --preset smoke --source synthetic --out runs/smoke
  python -m ddim_tutorial train --preset workshop --data-dir ~/flowers --out runs/w --epochs 10
  python -m ddim_tutorial train --preset smoke --out runs/s --set learning_rate=3e-4 widths=[16,32,64]
  python -m ddim_tutorial train --out runs/w --resume --epochs 20
"""

_SAMPLE_EPILOG = """\
examples:
  python -m ddim_tutorial sample --checkpoint runs/w/best --steps 20 --num 16 --out grid.png
  python -m ddim_tutorial sample --checkpoint runs/w/best --steps 50 --num 8 --eta 1 --seed 3 --out ddpm.png
  python -m ddim_tutorial sample --checkpoint runs/w/best --steps 10 --num 8 --max-signal-rate 0.9 --out g.png
  python -m ddim_tutorial sample --bundled flowers32 --sampler dpm++2s --steps 5 --num 8 --out second_order.png
"""

_KID_EPILOG = """\
KID needs InceptionV3's ImageNet weights (an 88 MB download, cached by Keras). Offline,
point DDIM_INCEPTION_WEIGHTS or --weights at the .h5 file; --weights none uses random
weights (a smoke test only: such numbers compare with nothing).

examples:
  python -m ddim_tutorial kid --checkpoint runs/w/best --data-dir ~/flowers --num 500 --steps 20
  python -m ddim_tutorial kid --checkpoint runs/smoke/last --source synthetic --num 64 --weights none
"""


class CLIError(ValueError):
    """A bad command line the parser itself cannot catch."""


# ------------------------------------------------------------------------------ parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    backend_help = ("Keras backend: tensorflow, jax or torch (default: $KERAS_BACKEND, else tensorflow); "
                    "set before Keras is imported")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=sorted(BACKENDS), default=argparse.SUPPRESS, help=backend_help)

    parser = argparse.ArgumentParser(
        prog="python -m ddim_tutorial", formatter_class=formatter, epilog=_MAIN_EPILOG,
        description="Train a denoising diffusion implicit model (DDIM), sample from it and measure its KID.")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=None, help=backend_help)
    parser.add_argument("--version", action="version", version=f"ddim_tutorial {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser(
        "train", parents=[common], formatter_class=formatter, epilog=_TRAIN_EPILOG,
        help="train a model; writes samples, a loss history and checkpoints to --out",
        description="Train a DiffusionModel on a folder of images, Oxford Flowers 102 or synthetic flowers.")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="starting config: smoke (CPU minutes), workshop (short GPU class), reference "
                            "(the Keras example, 50 epochs); with --resume the checkpoint's config is the default")
    train.add_argument("--data-dir", metavar="DIR",
                       help="folder of images (train/ and test/ subfolders, or one folder split 80/20); "
                            "default $DDIM_DATA_DIR")
    train.add_argument("--source", choices=SOURCES, default="auto",
                       help="auto: --data-dir if given, else Oxford Flowers 102 from TFDS, else synthetic "
                            "(default: auto)")
    train.add_argument("--epochs", type=_positive_int, metavar="N",
                       help="total epochs, including those before a --resume (default: the config's num_epochs)")
    train.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    train.add_argument("--resume", action="store_true", help="continue the run saved in DIR/last")
    train.add_argument("--overwrite", action="store_true",
                       help="start afresh even if DIR already holds a checkpoint of an earlier run")
    train.add_argument("--batch-size", type=_positive_int, metavar="N", help="shortcut for --set batch_size=N")
    train.add_argument("--seed", type=int, metavar="N", help="shortcut for --set seed=N")
    train.add_argument("--set", nargs="+", action="append", default=[], metavar="FIELD=VALUE", dest="overrides",
                       help="override any DDIMConfig field; VALUE is read as JSON if it can be "
                            "(3, 1e-4, [16,32], null, true), else as text")
    train.add_argument("--steps-per-epoch", type=_positive_int, metavar="N",
                       help="train at most N batches per epoch (and validate on N): for quick checks")
    train.add_argument("--no-validation", action="store_true", help="skip validation; best/ then follows n_loss")
    train.add_argument("--devices", type=_positive_int, metavar="N",
                       help="data-parallel training on N accelerators")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                       help="Keras' progress output: 0 silent, 1 progress bar, 2 one line per epoch")
    train.add_argument("--start-from", metavar="NAME|DIR",
                       help="fine-tune: start from a bundled model (e.g. flowers32) or a checkpoint folder; its "
                            "config is the default (an unconditional model may become class-conditional with "
                            "--set num_classes=N)")
    train.set_defaults(handler=_train)

    sample = commands.add_parser(
        "sample", parents=[common], formatter_class=formatter, epilog=_SAMPLE_EPILOG,
        help="generate images from a checkpoint and save them as a grid picture",
        description="Generate images with the EMA network of a checkpoint and save them as one grid.")
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="DIR", help="a checkpoint folder (e.g. runs/w/best)")
    source.add_argument("--bundled", metavar="NAME",
                        help="a trained model that ships with the package (see `python -m ddim_tutorial models`)")
    sample.add_argument("--steps", type=int, metavar="N",
                        help="diffusion steps (default: the config's plot_diffusion_steps)")
    sample.add_argument("--num", type=int, default=16, metavar="K", help="number of images (default: 16)")
    sample.add_argument("--out", required=True, metavar="FILE", help="picture to write, e.g. grid.png")
    sample.add_argument("--eta", type=float, default=0.0, metavar="E",
                        help="0: deterministic DDIM (default), 1: DDPM-like stochastic sampling")
    sample.add_argument("--sampler", choices=("ddim", "dpm++2s"), default="ddim",  # sampling.SAMPLERS, without Keras
                        help="ddim: the reference's sampler, one network evaluation per step (default); dpm++2s: "
                             "DPM-Solver++(2S), second order, 2 * steps - 1 evaluations, needs --eta 0")
    sample.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the initial noise (default: 0)")
    sample.add_argument("--class", dest="class_label", type=int, metavar="K",
                        help="class-conditional models: sample class K (default: one class per image, in turn)")
    sample.add_argument("--guidance", type=float, default=None, metavar="W",
                        help=f"class-conditional models: classifier-free guidance scale "
                             f"(default: {DEFAULT_GUIDANCE_SCALE:g}; 1 is none)")
    sample.add_argument("--cols", type=_positive_int, metavar="N", help="images per row (default: a square grid)")
    sample.add_argument("--min-signal-rate", type=float, metavar="R",
                        help="signal rate at the noisiest step (default: the config's)")
    sample.add_argument("--max-signal-rate", type=float, metavar="R",
                        help="signal rate at the cleanest step (default: the config's)")
    sample.set_defaults(handler=_sample)

    kid = commands.add_parser(
        "kid", parents=[common], formatter_class=formatter, epilog=_KID_EPILOG,
        help="measure the Kernel Inception Distance between generated and real images",
        description="Generate images from a checkpoint and print KID = mean ± std against real validation images.")
    kid.add_argument("--checkpoint", required=True, metavar="DIR", help="a checkpoint folder")
    kid.add_argument("--data-dir", metavar="DIR", help="folder of real images (its validation/test part is used)")
    kid.add_argument("--source", choices=SOURCES, default="auto", help="where real images come from (default: auto)")
    kid.add_argument("--num", type=_positive_int, metavar="N",
                     help="real and generated images (default: every validation image, at most 1000)")
    kid.add_argument("--steps", type=_positive_int, metavar="N",
                     help="diffusion steps per generated image (default: the config's kid_diffusion_steps)")
    kid.add_argument("--weights", default="imagenet", metavar="imagenet|PATH|none",
                     help="InceptionV3 weights: imagenet (default), a path to the .h5 file, or none (random)")
    kid.add_argument("--batch-size", type=_positive_int, default=50, metavar="N",
                     help="images per generation and encoder batch (default: 50)")
    kid.add_argument("--subset-size", type=_positive_int, metavar="N",
                     help="images per KID subset (default: half the images, at most 1000)")
    kid.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the generated images (default: 0)")
    kid.set_defaults(handler=_kid)

    models = commands.add_parser("models", parents=[common], help="list the trained models bundled with the package",
                                 description="List the bundled models with their one-line summaries.")
    models.set_defaults(handler=_models)

    export = commands.add_parser(
        "export", parents=[common], formatter_class=formatter,
        help="turn a training checkpoint into a bundled model (float16 EMA weights, config, model card)",
        description="Write ddim_tutorial/bundled/NAME/ from a checkpoint: the EMA weights in float16, the config "
                    "and normalizer, reference samples, and a model card with the measured figures.")
    export.add_argument("--checkpoint", required=True, metavar="DIR", help="the checkpoint to ship (e.g. runs/f/last)")
    export.add_argument("--name", required=True, help="the bundled model's name, e.g. flowers32")
    export.add_argument("--data-dir", required=True, metavar="DIR",
                        help="the image folder it was trained on; its test/ part gives the validation noise loss")
    export.add_argument("--summary", required=True, help="one line that says what the model is")
    export.add_argument("--train-command", required=True, help="the exact command that trained it")
    export.add_argument("--wall-time", required=True, help="how long training took, in words")
    export.add_argument("--hardware", required=True, help="where it was trained, in words")
    export.add_argument("--data", default="flowers12: 960 photographs of 12 flower species, a subset of the Oxford "
                        "flower datasets (Nilsback and Zisserman); train/ (720) for training", help="the card's data line")
    export.add_argument("--split", default="train/ (720 images, 60 per species) trains; test/ (240 images) is held "
                        "out and gives the validation figures", help="the card's split line")
    export.add_argument("--target-images", type=_positive_int, metavar="N",
                        help="the planned training budget, if the model has not reached it yet")
    export.add_argument("--script", help="the script that wraps both commands, for the card")
    export.add_argument("--progress-note", default="", help="a sentence on how training will continue")
    export.add_argument("--root", metavar="DIR", help="write under DIR instead of the package's bundled/ folder")
    export.set_defaults(handler=_export)
    return parser


# ------------------------------------------------------------------------------ helpers
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


def _select_backend(requested: str | None) -> str:
    """Set KERAS_BACKEND (before Keras is imported) and check that its package is installed."""
    if requested is None:
        name = os.environ.get("KERAS_BACKEND", "").strip() or None
        if name is not None and name not in BACKENDS:
            raise CLIError(f"KERAS_BACKEND={name!r} is not a backend this package supports; set it to "
                           "tensorflow, jax or torch, or pass --backend.")
    else:
        name = requested
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if name is not None and name != current:
            raise CLIError(f"--backend {name} cannot take effect: Keras is already imported with the {current} "
                           "backend in this process; run the command in a fresh process.")
        return current
    if name is not None:
        os.environ["KERAS_BACKEND"] = name
        if importlib.util.find_spec(BACKENDS[name]) is None:
            raise CLIError(f"the {name} backend needs the '{BACKENDS[name]}' package, which is not installed; "
                           f"pip install {BACKENDS[name]} or choose another --backend.")
    return name or "tensorflow"


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show warnings as ``warning: message`` lines, without file names and source lines."""
    previous = warnings.showwarning

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        print(f"warning: {_one_line(message)}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _one_line(error: Any) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "fix your input or environment": one line, no traceback."""
    from .callbacks import NonFiniteLossError
    from .checkpoints import CheckpointError
    from .data import DatasetUnavailableError
    from .kid import InceptionWeightsUnavailableError

    return (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
            CheckpointError, DatasetUnavailableError, InceptionWeightsUnavailableError, NonFiniteLossError)


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


# ----------------------------------------------------------------------------- commands
def _train(args: argparse.Namespace) -> int:
    from .checkpoints import checkpoint_exists, read_checkpoint_config
    from .training import train

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
    for field, value in (("batch_size", args.batch_size), ("seed", args.seed), ("num_epochs", args.epochs)):
        if value is not None:
            overrides[field] = value
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
    from . import pretrained
    from .checkpoints import load_checkpoint

    if name_or_folder in pretrained.available():
        return pretrained.load(name_or_folder)
    if not Path(name_or_folder).is_dir():
        raise CLIError(f"--start-from {name_or_folder!r} is neither a bundled model "
                       f"({', '.join(pretrained.available())}) nor a checkpoint folder.")
    return load_checkpoint(name_or_folder)


def _configure_devices(count: int) -> None:
    from .distribution import configure_devices

    configure_devices(count)


def _sample(args: argparse.Namespace) -> int:
    from .plotting import save_image_grid
    from .checkpoints import load_checkpoint

    picture = _check_picture_path(args.out)
    if args.bundled is not None:
        from . import pretrained

        model = pretrained.load(args.bundled)
    else:
        model = load_checkpoint(args.checkpoint)
    steps = model.config.plot_diffusion_steps if args.steps is None else args.steps
    labels = {}
    if model.config.num_classes:
        import numpy as np

        class_labels = (np.arange(args.num) % model.config.num_classes if args.class_label is None
                        else args.class_label)
        labels = dict(class_labels=class_labels, guidance_scale=DEFAULT_GUIDANCE_SCALE if args.guidance is None else args.guidance)
    elif args.class_label is not None or args.guidance is not None:
        raise CLIError("--class and --guidance need a class-conditional model (trained with num_classes > 0); "
                       "this one is unconditional.")
    images = model.generate(args.num, steps, eta=args.eta, seed=args.seed, sampler=args.sampler,
                            min_signal_rate=args.min_signal_rate, max_signal_rate=args.max_signal_rate, **labels)
    save_image_grid(images, picture, num_cols=args.cols)
    sampler = "" if args.sampler == "ddim" else f", {args.sampler}"
    print(f"Saved {args.num} samples ({steps} steps{sampler}, eta={args.eta:g}, seed {args.seed}) to {picture}.")
    return 0


def _kid(args: argparse.Namespace) -> int:
    from .checkpoints import load_checkpoint
    from .kid import compute_kid

    weights = None if args.weights.strip().lower() == "none" else args.weights
    model = load_checkpoint(args.checkpoint)
    real_images = _real_images(model.config, args)
    subset_size = args.subset_size or min(1000, max(2, len(real_images) // 2))
    result = compute_kid(model, real_images, num_images=len(real_images), batch_size=args.batch_size,
                         diffusion_steps=args.steps, weights=weights, subset_size=subset_size, seed=args.seed)
    print(result)
    return 0


def _models(args: argparse.Namespace) -> int:
    from . import pretrained

    listed = pretrained.available()
    if not listed:
        print("No bundled models are installed.")
    for name, summary in listed.items():
        print(f"{name:10s} {summary}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import platform

    import keras

    from . import pretrained
    from .checkpoints import read_checkpoint_config
    from .folders import load_image_folder

    config = read_checkpoint_config(args.checkpoint)
    images = load_image_folder(args.data_dir, config.image_size, "validation")
    backend = keras.backend.backend()
    software = f"Keras {keras.__version__} on {backend}, Python {platform.python_version()}"
    if backend == "tensorflow":
        import tensorflow as tf

        software += f", TensorFlow {tf.__version__}"
    root = Path(args.root) if args.root else None
    export_command = (f"python -m ddim_tutorial export --checkpoint runs/{args.name}/last --name {args.name} "
                      "--data-dir flowers12 --summary ... --train-command ... --wall-time ... --hardware ...")
    training = {"command": args.train_command, "export_command": export_command, "wall_time": args.wall_time,
                "hardware": args.hardware, "software": software, "data": args.data, "split": args.split,
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
    import numpy as np

    from .data import load_dataset

    limit = args.num or 1000
    # Batches of 2: the pipeline drops an incomplete last batch, so at most one image is lost.
    dataset = load_dataset(config.replace(batch_size=2), "validation", data_dir=args.data_dir, source=args.source,
                           repeat=False, shuffle=False)
    batches, count = [], 0
    for batch in iterate_batches(dataset):
        batch = np.asarray(batch, dtype="float32")
        batches.append(batch[: limit - count])
        count += len(batches[-1])
        if count >= limit:
            break
    if args.num is not None and count < args.num:
        raise CLIError(f"--num {args.num} is more than the {count} validation images available; ask for fewer.")
    if count < 2:
        raise CLIError(f"only {count} validation image(s) found; KID needs at least 2.")
    return np.concatenate(batches)


# --------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2, 130 or 143)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    with _one_line_warnings():
        try:
            _select_backend(getattr(args, "backend", None))
            if getattr(args, "devices", None) is not None:
                # Before Keras starts: JAX can only split a CPU into virtual devices then.
                _configure_devices(args.devices)
        except ValueError as error:
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        from .interrupts import TrainingInterrupted

        user_errors = _user_errors()
        try:
            return args.handler(args)
        except TrainingInterrupted as interruption:
            print(f"stopped: {_one_line(interruption)}", file=sys.stderr, flush=True)
            return interruption.exit_code
        except KeyboardInterrupt:
            print("stopped: interrupted by Ctrl-C.", file=sys.stderr)
            return 130
        except user_errors as error:
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
