"""Trained models that ship inside the package, so a lesson can sample flowers in seconds, offline.

Each bundled model is a folder ``ddim_tutorial/pretrained/bundled/NAME/`` holding only what sampling
needs:

* ``ema.weights.h5``: the EMA network (Keras' ``*.weights.h5`` layout, values stored as
  float16 to halve the download; they load into the usual float32 network);
* ``model.json``: the ``DDIMConfig``, the normalizer's mean and variance, the SHA-256 of the
  weights file and the model card's figures (data, images seen, losses, the command);
* ``reference_samples.npz``: a few samples with the initial noise that made them, so tests
  can check that every backend draws the same pictures from the same noise;
* ``README.md``: the model card, written from ``model.json``.

``load("flowers32")`` rebuilds a ready :class:`~ddim_tutorial.core.model.DiffusionModel` on any
Keras backend; ``available()`` lists the models with their one-line summaries.
:func:`export` turns a training checkpoint into such a folder (``python -m ddim_tutorial
export``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ddim_tutorial.config import DEFAULT_GUIDANCE_SCALE, DDIMConfig
from ddim_tutorial.metrics.evaluation import validation_noise_loss
from ddim_tutorial.training.checkpoints import CheckpointError
from ddim_tutorial.training.driver import duration_text

__all__ = ["BundledModelError", "available", "card", "load", "default_name", "bundled_dir", "validation_noise_loss",
           "export", "write_card", "wall_time_seconds", "reference_samples", "BUNDLED_ROOT", "FULL_BUDGET_IMAGES",
           "REFERENCE_IMAGES", "DATA", "SPLIT", "PROVENANCE"]

#: Where the bundled models live, inside the installed package.
BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"
WEIGHTS_NAME = "ema.weights.h5"
INFO_NAME = "model.json"
SAMPLES_NAME = "reference_samples.npz"
CARD_NAME = "README.md"
#: Images a 64x64 model must have seen before full mode prefers it: this project's training budget
#: for ``flowers64`` (140 epochs of 5 x 720 photographs at batch 64 reach it). It is about a third of
#: what the reference recommends, 50 epochs of Oxford Flowers 102 (:data:`REFERENCE_IMAGES`).
FULL_BUDGET_IMAGES = 500_000
#: The reference's recommended training: 50 epochs of 511 steps (5 x the 80 % of Oxford Flowers 102
#: it trains on, batches of 64, the last incomplete batch dropped) of 64 images, about 1.6 M images.
REFERENCE_IMAGES = 50 * 511 * 64
#: The offline photographs: ``train/`` and ``test/`` of ``../shared/data/flowers12`` (see its README).
FLOWERS12_TRAIN_IMAGES, FLOWERS12_TEST_IMAGES, FLOWERS12_REMOVED_DUPLICATES = 720, 217, 23
DUPLICATES_REMOVED_ON = "2026-12-07"
#: The card's data and split lines for models trained on flowers12 (``export --data/--split``).
DATA = (f"flowers12: {FLOWERS12_TRAIN_IMAGES + FLOWERS12_TEST_IMAGES} photographs of 12 flower species, a subset "
        f"of the Oxford flower datasets (Nilsback and Zisserman); train/ ({FLOWERS12_TRAIN_IMAGES}) for training")
SPLIT = (f"train/ ({FLOWERS12_TRAIN_IMAGES} images, 60 per species) trains; test/ ({FLOWERS12_TEST_IMAGES} images, "
         f"14 to 20 per species, after {FLOWERS12_REMOVED_DUPLICATES} copies of training photographs were removed) "
         "is held out and gives the validation figures")
PROVENANCE = (f"The {FLOWERS12_TRAIN_IMAGES + FLOWERS12_TEST_IMAGES} photographs (12 species: bluebell, buttercup, "
              "colts-foot, daisy, dandelion, fritillary, iris, lily-valley, pansy, sunflower, tigerlily, windflower; "
              f"60 train and 14 to 20 test images each, {FLOWERS12_TRAIN_IMAGES} and {FLOWERS12_TEST_IMAGES} in all, "
              "224x224) are a subset of the Oxford flower datasets by Maria-Elena Nilsback and Andrew Zisserman "
              "(Visual Geometry Group, University of Oxford; https://www.robots.ox.ac.uk/~vgg/data/flowers/), as "
              "redistributed at 224x224 in a public course repository. The original data holds duplicates: the "
              f"{FLOWERS12_REMOVED_DUPLICATES} test photographs that were copies of training photographs were removed "
              f"on {DUPLICATES_REMOVED_ON}, so that test/ is truly held out. The package's image-folder loader "
              "center-crops and resizes them. The photographs are not redistributed with this package; only "
              "weights trained on them are.")
_REPAIR = ("Reinstall the package to get it back (pip install --force-reinstall --no-deps \"ddim-tutorial @ "
           "git+https://github.com/ddim-tutorial/ddim-tutorial\"), or in a clone run "
           "`git checkout -- ddim_tutorial/pretrained/bundled`.")


class BundledModelError(CheckpointError):
    """A bundled model is unknown, missing or damaged."""


# ------------------------------------------------------------------------ catalogue
def bundled_dir(name: str) -> Path:
    """The folder of the bundled model ``name`` (which need not exist)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name={name!r} is invalid: use the name of a bundled model, e.g. 'flowers32'.")
    return BUNDLED_ROOT / name


def _names() -> list[str]:
    if not BUNDLED_ROOT.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_ROOT.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def card(name: str) -> dict[str, Any]:
    """The model card of ``name`` as a dict (config, normalizer, training figures, summary)."""
    path = bundled_dir(name) / INFO_NAME
    if not path.parent.is_dir():
        known = ", ".join(_names()) or "none (the bundled folder is missing)"
        raise BundledModelError(f"there is no bundled model {name!r}; bundled models: {known}. "
                                + ("" if _names() else _REPAIR))
    if not path.is_file():
        raise BundledModelError(f"the bundled model {name!r} is damaged: {path} is missing. {_REPAIR}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        DDIMConfig.from_dict(info["config"])
        info["normalizer"]["mean"], info["normalizer"]["variance"], info["summary"]  # noqa: B018 - presence
    except (ValueError, KeyError, TypeError) as err:
        raise BundledModelError(f"the bundled model {name!r} is damaged: {path} cannot be read ({err}). "
                                f"{_REPAIR}") from err
    return info


def available() -> dict[str, str]:
    """``{name: one-line summary}`` of every bundled model."""
    return {name: card(name)["summary"] for name in _names()}


def default_name(fast: bool) -> tuple[str, str | None]:
    """The bundled model a lesson should open, and why, if not the obvious one.

    Fast mode opens ``flowers32``. Full mode opens ``flowers64`` once it has seen this project's
    training budget for it (:data:`FULL_BUDGET_IMAGES`); until then it opens ``flowers32`` and
    says why in one sentence.
    """
    if fast:
        return "flowers32", None
    names = _names()
    if "flowers64" in names:
        seen = int(card("flowers64")["training"]["images_seen"])
        if seen >= FULL_BUDGET_IMAGES:
            return "flowers64", None
        return "flowers32", (f"The bundled 64x64 model has seen only {seen:,} of the {FULL_BUDGET_IMAGES:,} training "
                             "images this project trains it for, so the 32x32 model is used instead.")
    return "flowers32", "No bundled 64x64 model is installed, so the 32x32 model is used."


# ---------------------------------------------------------------------------- loading
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(name: str = "flowers32") -> Any:
    """A ready-to-sample ``DiffusionModel`` from the bundled model ``name``, offline, on any backend.

    The training network starts as a copy of the EMA network, so ``fit`` fine-tunes it.
    A missing or damaged file raises :class:`BundledModelError` naming the file and how to
    get it back; nothing is ever retrained silently.
    """
    from ddim_tutorial.core.model import DiffusionModel

    info = card(name)
    weights = bundled_dir(name) / WEIGHTS_NAME
    if not weights.is_file():
        raise BundledModelError(f"the bundled model {name!r} is damaged: {weights} is missing. {_REPAIR}")
    expected = info.get("weights_sha256")
    if expected and _sha256(weights) != expected:
        raise BundledModelError(f"the bundled model {name!r} is damaged: {weights} does not match the checksum in "
                                f"{INFO_NAME} (a truncated or altered file). {_REPAIR}")
    config = DDIMConfig.from_dict(info["config"]).replace(validation_kid=False, kid_weights=None)
    model = DiffusionModel(config)
    try:
        model.ema_network.load_weights(str(weights))
    except Exception as err:  # h5py or Keras: unreadable file, wrong layers or shapes
        raise BundledModelError(f"the bundled model {name!r} is damaged: {weights} cannot be loaded "
                                f"({type(err).__name__}: {str(err).strip().splitlines()[0][:160]}). "
                                f"{_REPAIR}") from err
    for weight, ema_weight in zip(model.network.weights, model.ema_network.weights, strict=True):
        weight.assign(ema_weight)
    normalizer = info["normalizer"]
    model.set_normalizer(np.asarray(normalizer["mean"]), np.asarray(normalizer["variance"]))
    model.bundled_name = name
    return model


def reference_samples(name: str) -> dict[str, np.ndarray]:
    """The stored ``initial_noise``, ``diffusion_steps`` and ``images`` a backend must reproduce."""
    path = bundled_dir(name) / SAMPLES_NAME
    if not path.is_file():
        raise BundledModelError(f"the bundled model {name!r} is damaged: {path} is missing. {_REPAIR}")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


# ---------------------------------------------------------------------------- export
def _to_float16_h5(source: Path, target: Path) -> None:
    """Copy a Keras weights file, storing float arrays as float16 (same groups and attributes)."""
    import h5py

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def copy(group_in: Any, group_out: Any) -> None:
            for key, value in group_in.attrs.items():
                group_out.attrs[key] = value
            for key, item in group_in.items():
                if isinstance(item, h5py.Dataset):
                    data = item[()]
                    if np.issubdtype(np.asarray(data).dtype, np.floating):
                        data = np.asarray(data, dtype="float16")
                    out = group_out.create_dataset(key, data=data)
                    for attr, attr_value in item.attrs.items():
                        out.attrs[attr] = attr_value
                else:
                    copy(item, group_out.create_group(key))

        copy(src, dst)


def export(checkpoint: str | os.PathLike, name: str, *, summary: str, training: dict[str, Any],
           validation_images: np.ndarray, root: str | os.PathLike | None = None, num_reference: int = 4,
           reference_steps: int = 10) -> Path:
    """Write the bundled model ``name`` from a training checkpoint; returns its folder.

    ``training`` holds the card's figures that only the caller knows (command, wall time,
    hardware, data); the rest (images seen, losses, the float16 check) is measured here.
    ``summary`` may use ``{images_seen}``, ``{optimizer_steps}``, ``{epochs}``,
    ``{parameters}`` and ``{validation_noise_loss}`` (``str.format`` fields).
    """
    from keras import ops

    from ddim_tutorial.training.checkpoints import load_checkpoint, read_training_state

    checkpoint = Path(checkpoint)
    model = load_checkpoint(checkpoint)
    state = read_training_state(checkpoint)
    recorded_names = (state.get("data") or {}).get("class_names")
    if model.config.num_classes and not model.config.class_names and recorded_names:
        # Checkpoints written before DDIMConfig.class_names kept the names in the training state.
        model.config = model.config.replace(class_names=tuple(recorded_names))
    folder = (BUNDLED_ROOT if root is None else Path(root)) / name
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent if folder.parent.is_dir() else None))
    work.chmod(0o755)  # mkdtemp makes it private; the package folder must be readable by all
    try:
        full = work / "ema-float32.weights.h5"
        model.ema_network.save_weights(str(full))
        _to_float16_h5(full, work / WEIGHTS_NAME)
        noise = np.random.default_rng(1234).standard_normal(
            (num_reference, model.config.image_size, model.config.image_size, 3)).astype("float32")
        # A class-conditional model's reference samples are guided, one class after another.
        labels = (dict(class_labels=np.arange(num_reference) % model.config.num_classes, guidance_scale=2.0)
                  if model.config.num_classes else {})
        float32_samples = np.asarray(ops.convert_to_numpy(model.generate(num_reference, reference_steps,
                                                                          initial_noise=noise, **labels)))
        float32_loss = validation_noise_loss(model, validation_images)
        model.ema_network.load_weights(str(work / WEIGHTS_NAME))  # now the shipped float16 values
        images = np.asarray(ops.convert_to_numpy(model.generate(num_reference, reference_steps, initial_noise=noise,
                                                                **labels)))
        loss = validation_noise_loss(model, validation_images)
        full.unlink()
        np.savez_compressed(work / SAMPLES_NAME, initial_noise=noise, images=images,
                            diffusion_steps=np.int64(reference_steps),
                            **{key: np.asarray(value) for key, value in labels.items()})
        logs = state.get("logs", {})
        batch_size = model.config.batch_size
        steps = int(state.get("optimizer_iterations", 0))
        # The summary may name measured figures: "{images_seen:,} images, loss {validation_noise_loss:.3f}".
        summary = summary.format(images_seen=steps * batch_size, optimizer_steps=steps,
                                 epochs=int(state.get("epoch", 0)), validation_noise_loss=loss,
                                 parameters=int(model.ema_network.count_params()))
        info = {
            "name": name,
            "summary": summary,
            "config": model.config.to_dict(),
            "parameters": int(model.ema_network.count_params()),
            "normalizer": {"mean": ops.convert_to_numpy(model.normalizer.adapt_mean).tolist(),
                           "variance": ops.convert_to_numpy(model.normalizer.adapt_variance).tolist()},
            "weights_file": WEIGHTS_NAME,
            "weights_dtype": "float16",
            "weights_sha256": _sha256(work / WEIGHTS_NAME),
            "training": {
                **training,
                "epochs": int(state.get("epoch", 0)),
                "optimizer_steps": steps,
                "images_seen": steps * batch_size,
                "final_train_noise_loss": logs.get("n_loss"),
                "final_val_noise_loss_keras": logs.get("val_n_loss"),
            },
            "evaluation": {
                "validation_noise_loss": loss,
                "validation_noise_loss_float32": float32_loss,
                "validation_images": int(len(validation_images)),
                "how": "validation_noise_loss(model, test images, seed=0, repetitions=2): EMA network, mean "
                       "absolute noise error, NumPy-seeded noise and times",
                "float16_max_pixel_difference": float(np.abs(images - float32_samples).max()),
            },
        }
        (work / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (work / CARD_NAME).write_text(write_card(info), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return folder


#: The rows of the model card's table: (name, ``str.format`` template of the config ``c``, the training
#: figures ``t``, the evaluation ``e``, ``info`` and the values that ``write_card`` derives).
_CARD_ROWS = (
    ("Architecture", "residual U-Net, widths {widths}, block depth {c[block_depth]}, {info[parameters]:,} parameters, "
                     "{c[image_size]}x{c[image_size]} RGB"),
    ("Method", "{method}, signal rates {c[min_signal_rate]}..{c[max_signal_rate]}, {loss} loss on the predicted "
               "{prediction_type}, EMA {c[ema]}"),
    ("Data", "{t[data]}"),
    ("Split", "{t[split]}"),
    ("Labels", "{c[num_classes]} species ({class_names}) through a class embedding, label dropout {c[label_dropout]}; "
               "sample one with `model.generate(8, class_labels=k, guidance_scale={guidance})`"),
    ("Augmentation", "{augmentation}"),
    ("Optimizer", "AdamW, learning rate {c[learning_rate]}, weight decay {c[weight_decay]}, batch {c[batch_size]}"),
    ("Images seen", "{seen:,} ({t[optimizer_steps]:,} optimizer steps, {t[epochs]} epochs of "
                    "{c[dataset_repetitions]} x the training images)"),
    ("Wall time", "{t[wall_time]}{rate}"),
    ("Hardware", "{t[hardware]}"),
    ("Software", "{t[software]}"),
    ("Seed", "{c[seed]}"),
    ("Final training noise loss", "{final_train}"),
    ("Final validation noise loss (Keras log)", "{final_val}{keras_log_images}"),
    ("Validation noise loss, fixed noise", "{e[validation_noise_loss]:.4f} ({float16_vs_float32})"),
    ("float16 storage", "largest pixel difference to float32 samples: {e[float16_max_pixel_difference]:.2g}"),
)


def wall_time_seconds(text: str) -> int | None:
    """The duration that a card's wall time starts with ("1 h 54 min ...", "about 17 min ..."), in seconds."""
    match = re.match(r"(?:about )?(?:(\d+) h)? ?(?:(\d+) min)?\b", text)
    if not match or not any(match.groups()):
        return None
    hours, minutes = (int(group or 0) for group in match.groups())
    return 3600 * hours + 60 * minutes


def write_card(info: dict[str, Any]) -> str:
    """The model card (Markdown) for ``info`` as stored in ``model.json``."""
    config, training, evaluation = info["config"], info["training"], info["evaluation"]
    seen = int(training["images_seen"])
    budget = training.get("target_images")
    progress = ""
    if budget and seen < budget:
        progress = (f"\n**Training is not finished**: this model has seen {seen:,} of its planned {budget:,} images "
                    f"({100 * seen / budget:.0f} %). {training.get('progress_note', '')}\n")
    elif budget:
        progress = (f"\nIts {seen:,} images reach the {budget:,} that this project planned to train it on. That is "
                    f"{100 * seen / REFERENCE_IMAGES:.0f} % of the {REFERENCE_IMAGES:,} images (50 epochs of 511 "
                    "steps of 64) that the Keras reference recommends for Oxford Flowers 102.\n")
    seconds = wall_time_seconds(training["wall_time"])
    rate = (f"; {seen / seconds:.1f} images/s over the {duration_text(seconds)} ({seen:,} images in {seconds:,} s)"
            if seconds else "")
    held_out = evaluation.get("validation_images")
    held_out_count = f" {held_out}" if held_out else ""
    if evaluation.get("validation_noise_loss_float32") is not None:
        float16_vs_float32 = f"float16 weights; {evaluation['validation_noise_loss_float32']:.4f} in float32"
    else:
        float16_vs_float32 = "the shipped float16 weights"
    logged = training.get("keras_log_validation_images")
    keras_log_images = (f" (logged in training, on the {logged} test photographs of that time)"
                        if logged and logged != held_out else "")
    values = dict(c=config, t=training, e=evaluation, info=info, seen=seen, rate=rate,
                  float16_vs_float32=float16_vs_float32, keras_log_images=keras_log_images,
                  widths="/".join(str(w) for w in config["widths"]), loss=config["loss"].upper(),
                  prediction_type={"flow": "flow velocity (noise - image)"}.get(config["prediction_type"],
                                                                                  config["prediction_type"]),
                  method=("flow matching on the straight path (noise rate + signal rate = 1), sampled with DDIM "
                          "steps, which are Euler steps there" if config["path"] == "linear"
                          else "DDIM on the cosine path"),
                  class_names=", ".join(config["class_names"]), guidance=DEFAULT_GUIDANCE_SCALE,
                  augmentation="horizontal flips" if config["augment_flip"] else "none",
                  final_train=_fmt(training.get("final_train_noise_loss")),
                  final_val=_fmt(training.get("final_val_noise_loss_keras")))
    rows = [(key, template.format(**values)) for key, template in _CARD_ROWS
            if key != "Labels" or config["num_classes"]]  # only a class-conditional model has labels
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    recomputed = evaluation.get("recomputed")
    if recomputed:
        before = recomputed["before"]
        before_float32 = before.get("validation_noise_loss_float32")
        recomputed_text = (f" {recomputed['why']}, and this figure was recomputed on the {held_out} that remain, "
                           f"with the shipped weights; on the {before['validation_images']} it was "
                           f"{before['validation_noise_loss']:.4f}"
                           + (f" ({before_float32:.4f} with the float32 weights, which are not shipped)"
                              if before_float32 is not None else "") + ".")
    else:
        recomputed_text = ""
    return f"""# Model card: `{info['name']}`

{info['summary']}
{progress}
Load it with `ddim_tutorial.pretrained.load("{info['name']}")` (offline, TensorFlow, JAX or PyTorch).

| | |
|---|---|
{table}

The validation noise loss with fixed noise is `pretrained.validation_noise_loss` on the{held_out_count}
held-out test photographs: the EMA network's mean absolute error in predicting the noise,
with noise and diffusion times drawn by NumPy (seed 0, each image twice), so that it is the
same on every backend. An untrained network scores about 0.8. The test suite recomputes it.{recomputed_text}

## Reproduce

From the repository's root, with the photographs in `flowers12/`:

```bash
{training['command']}
{training.get('export_command', '')}
```
{f"(both wrapped in `{training['script']}`)" if training.get('script') else ""}

## Data provenance

{training['provenance']}
"""


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"
