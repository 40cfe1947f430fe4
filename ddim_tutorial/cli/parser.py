"""The command line: ``python -m ddim_tutorial {train,sample,kid,models,export}``.

This module parses the arguments, chooses the backend and turns errors into one line;
:mod:`ddim_tutorial.cli.commands` does the work of each command.

Keras is imported only after the arguments are parsed, because ``--backend`` must set
``KERAS_BACKEND`` before the first ``import keras``. Mistakes the user can fix (a bad
value, a missing folder, a damaged checkpoint, no network for a download) print one line
``error: ...`` and exit with status 2; a run stopped by Ctrl-C or SIGTERM exits with 130
or 143 after saying where its last checkpoint is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from typing import Any, Iterator, Sequence

from ddim_tutorial import __version__
from ddim_tutorial.checks import PATHS, SOURCES
from ddim_tutorial.cli import commands
from ddim_tutorial.cli.commands import CLIError
from ddim_tutorial.config import DEFAULT_GUIDANCE_SCALE, PRESETS
from ddim_tutorial.runtime.backends import BACKENDS, BackendError, select_backend

__all__ = ["main", "build_parser"]

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
    # --backend is accepted before the command and after it; given nowhere, args has no "backend".
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=sorted(BACKENDS), default=argparse.SUPPRESS,
                        help="Keras backend: tensorflow, jax or torch (default: $KERAS_BACKEND, else tensorflow); "
                             "set before Keras is imported")
    parser = argparse.ArgumentParser(
        prog="python -m ddim_tutorial", parents=[common], formatter_class=formatter, epilog=_MAIN_EPILOG,
        description="Train a denoising diffusion implicit model (DDIM), sample from it and measure its KID.")
    parser.add_argument("--version", action="version", version=f"ddim_tutorial {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    subcommands.required = True

    def command(name: str, handler: Any, epilog: str | None, help: str, description: str) -> argparse.ArgumentParser:
        """A subcommand that takes --backend too and runs ``handler(args)``."""
        subparser = subcommands.add_parser(name, parents=[common], formatter_class=formatter, epilog=epilog,
                                        help=help, description=description)
        subparser.set_defaults(handler=handler)
        return subparser

    train = command("train", commands.run_train, _TRAIN_EPILOG,
                    "train a model; writes samples, a loss history and checkpoints to --out",
                    "Train a DiffusionModel on a folder of images, Oxford Flowers 102 or synthetic flowers.")
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
    train.add_argument("--path", choices=PATHS,
                       help="the path from image to noise: cosine (the reference's schedule) or linear (flow "
                            "matching; predicts the flow velocity noise - image unless --set prediction_type=...)")
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

    sample = command("sample", commands.run_sample, _SAMPLE_EPILOG,
                     "generate images from a checkpoint and save them as a grid picture",
                     "Generate images with the EMA network of a checkpoint and save them as one grid.")
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

    kid = command("kid", commands.run_kid, _KID_EPILOG,
                  "measure the Kernel Inception Distance between generated and real images",
                  "Generate images from a checkpoint and print KID = mean ± std against real validation images.")
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

    command("models", commands.run_models, None, "list the trained models bundled with the package",
            "List the bundled models with their one-line summaries.")

    export = command("export", commands.run_export, None,
                     "turn a training checkpoint into a bundled model (float16 EMA weights, config, model card)",
                     "Write ddim_tutorial/pretrained/bundled/NAME/ from a checkpoint: the EMA weights in float16, "
                     "the config and normalizer, reference samples, and a model card with the measured figures.")
    export.add_argument("--checkpoint", required=True, metavar="DIR", help="the checkpoint to ship (e.g. runs/f/last)")
    export.add_argument("--name", required=True, help="the bundled model's name, e.g. flowers32")
    export.add_argument("--data-dir", required=True, metavar="DIR",
                        help="the image folder it was trained on; its test/ part gives the validation noise loss")
    export.add_argument("--summary", required=True, help="one line that says what the model is")
    export.add_argument("--train-command", required=True, help="the exact command that trained it")
    export.add_argument("--wall-time", required=True, help="how long training took, in words")
    export.add_argument("--hardware", required=True, help="where it was trained, in words")
    export.add_argument("--data", default=None, help="the card's data line (default: pretrained.DATA, flowers12)")
    export.add_argument("--split", default=None, help="the card's split line (default: pretrained.SPLIT, flowers12)")
    export.add_argument("--target-images", type=_positive_int, metavar="N",
                        help="the planned training budget, if the model has not reached it yet")
    export.add_argument("--script", help="the script that wraps both commands, for the card")
    export.add_argument("--progress-note", default="", help="a sentence on how training will continue")
    export.add_argument("--root", metavar="DIR", help="write under DIR instead of the package's bundled/ folder")
    return parser


# ------------------------------------------------------------------------------ helpers
def _select_backend(requested: str | None) -> str:
    """Set KERAS_BACKEND (before Keras is imported) and check that its package is installed."""
    name = requested if requested is not None else (os.environ.get("KERAS_BACKEND", "").strip() or None)
    try:
        return select_backend(name, check_installed=True)
    except BackendError as error:
        raise CLIError({
            "unknown": f"KERAS_BACKEND={name!r} is not a backend this package supports; set it to "
                       "tensorflow, jax or torch, or pass --backend.",
            "running": f"--backend {name} cannot take effect: Keras is already imported with the {error.active} "
                       "backend in this process; run the command in a fresh process.",
            "missing": f"the {name} backend needs the '{name}' package, which is not installed; "
                       f"pip install {name} or choose another --backend.",
        }[error.reason]) from None


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
    from ddim_tutorial.data.datasets import DatasetUnavailableError
    from ddim_tutorial.metrics.inception import InceptionWeightsUnavailableError
    from ddim_tutorial.training.callbacks import NonFiniteLossError
    from ddim_tutorial.training.checkpoints import CheckpointError

    return (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
            CheckpointError, DatasetUnavailableError, InceptionWeightsUnavailableError, NonFiniteLossError)


# --------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2, 130 or 143)."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    with _one_line_warnings():
        try:
            _select_backend(getattr(args, "backend", None))
            if getattr(args, "devices", None) is not None:
                from ddim_tutorial.runtime.distribution import configure_devices

                configure_devices(args.devices)  # before Keras starts: JAX can only split a CPU into devices then
        except ValueError as error:
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        from ddim_tutorial.training.interrupts import TrainingInterrupted

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
