"""Argument checks of the public entry points, written once.

The math never checks its arguments (compiled code traces it); the functions that a student or a
user calls check theirs here and fail with a sentence that names the argument and says what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: What the network can be trained to predict (see core/predictions.py).
PREDICTION_TYPES = ("noise", "image", "velocity", "flow")
#: The paths from image to noise (see core/schedule.py): the course's cosine schedule, and the
#: straight line of flow matching ("rectified flow").
PATHS = ("cosine", "linear")
#: The prediction types each path can train: v-prediction's formulas need the cosine path's
#: unit-length rates, and the flow velocity is the derivative of the linear path.
PATH_PREDICTION_TYPES = {"cosine": ("noise", "image", "velocity"), "linear": ("flow", "noise", "image")}
# Below this the first sampling step divides by a signal rate that float32 cannot resolve.
MIN_SIGNAL_RATE_FLOOR = 1e-3
#: The samplers: "ddim" (the reference's: first order, one network evaluation per step, optional eta)
#: and "dpm++2s" (DPM-Solver++(2S): second order, two evaluations per step, deterministic).
SAMPLERS = ("ddim", "dpm++2s")
#: Where training images come from (``load_dataset(source=...)``, ``--source``): ``auto`` tries a folder
#: (``DDIM_DATA_DIR``), then TFDS, then synthetic flowers.
SOURCES = ("auto", "folder", "tfds", "synthetic")
#: The pixel losses (``DDIMConfig.loss``): the reference's mean absolute error, or the squared one.
LOSSES = ("mae", "mse")
#: Seeds are 31-bit so that every backend's stateless generator accepts them as int32.
MAX_SEED = 2**31 - 1


def is_positive_int(value: Any, minimum: int = 1) -> bool:
    """Whether ``value`` is an ``int`` (not a bool) of at least ``minimum``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def check_positive_int(name: str, value: Any, minimum: int = 1, *, advice: str | None = None) -> None:
    """Raise ``ValueError("name=value is invalid: ...")`` unless ``value`` is an integer >= ``minimum``.

    ``advice`` replaces the default end of the sentence where the caller knows better.
    """
    if not is_positive_int(value, minimum):
        default = "use a positive integer" if minimum == 1 else f"use an integer >= {minimum}"
        raise ValueError(f"{name}={value!r} is invalid: {advice or default}.")


def check_generative_model(model: Any) -> None:
    """Raise unless ``model`` can sample like a ``DiffusionModel`` (a ``config`` and ``generate``)."""
    if getattr(model, "config", None) is None or not callable(getattr(model, "generate", None)):
        raise ValueError(f"model of type {type(model).__name__} is invalid: pass a trained DiffusionModel "
                         "(something with .config and .generate(...), e.g. lesson.get_trained_model()).")


def check_path(path: Any, owner: str = "DDIMConfig") -> str:
    """Return ``path`` if it is one of :data:`PATHS`; raise ValueError naming the choices otherwise."""
    if not isinstance(path, str) or path not in PATHS:
        raise ValueError(f"{owner}: path={path!r} is invalid: choose one of {', '.join(map(repr, PATHS))} (the "
                         "course's cosine schedule, or flow matching's straight line).")
    return path


def check_path_and_prediction(path: str, prediction_type: str, owner: str = "DDIMConfig") -> None:
    """The flow-matching velocity belongs to the linear path, v-prediction to the cosine one.

    ``velocity`` (``signal_rate * noise - noise_rate * image``) turns back into noise and
    image only where ``signal_rate**2 + noise_rate**2 = 1``; ``flow`` (``noise - image``) is
    the time derivative of the linear path alone.
    """
    if prediction_type in PATH_PREDICTION_TYPES.get(path, PREDICTION_TYPES):
        return
    if path == "linear":
        raise ValueError(f"{owner}.prediction_type={prediction_type!r} is invalid with path='linear': v-prediction "
                         "needs the cosine path's unit-length rates; the linear path's velocity is "
                         "prediction_type='flow'.")
    if path == "cosine":
        raise ValueError(f"{owner}.prediction_type={prediction_type!r} is invalid with path='cosine': the flow "
                         "velocity "
                         "noise - image is the time derivative of the linear path; use path='linear', or "
                         "prediction_type='velocity' on the cosine path.")


def check_signal_rates(min_signal_rate: Any, max_signal_rate: Any, owner: str = "DDIMConfig") -> None:
    for name, value in (("min_signal_rate", min_signal_rate), ("max_signal_rate", max_signal_rate)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            raise ValueError(f"{owner}.{name}={value!r} is invalid: it must be a number in (0, 1].")
    if min_signal_rate < MIN_SIGNAL_RATE_FLOOR:
        raise ValueError(f"{owner}.min_signal_rate={min_signal_rate!r} is invalid: it must be at least "
                         f"{MIN_SIGNAL_RATE_FLOOR} (at 0 the first denoising step divides by zero, and "
                         "float32 cannot resolve smaller rates); the reference uses 0.02.")
    if max_signal_rate > 1:
        raise ValueError(f"{owner}.max_signal_rate={max_signal_rate!r} is invalid: it must be <= 1 "
                         "(a signal rate is the cosine of an angle); the reference uses 0.95.")
    if min_signal_rate >= max_signal_rate:
        raise ValueError(f"{owner}.min_signal_rate={min_signal_rate!r} is invalid: it must be smaller than "
                         f"max_signal_rate={max_signal_rate!r}.")


def check_loss(loss: Any) -> str:
    """Return ``loss`` if it is a pixel loss the model knows (``"mae"``, ``"mse"``); raise ValueError otherwise."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"compile(loss={loss!r}) is invalid: use 'mae' or 'mse' (DDIMConfig.loss, "
                         "which checkpoints record); for another loss, override compute_loss.")
    return loss


def check_prediction_type(prediction_type: Any) -> str:
    """Return ``prediction_type`` if it is one of :data:`PREDICTION_TYPES`; raise ValueError otherwise."""
    if not isinstance(prediction_type, str) or prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={prediction_type!r} is invalid: choose one of "
                         f"{', '.join(map(repr, PREDICTION_TYPES))} (what the network was trained to predict; "
                         "the reference predicts the noise).")
    return prediction_type


def check_sampler(sampler: Any, eta: Any = 0.0, path: str = "cosine") -> str:
    """Return ``sampler`` if it names a sampler that can run with ``eta`` on ``path``; raise ValueError otherwise."""
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} is invalid: choose one of {', '.join(map(repr, SAMPLERS))} "
                         "('ddim': the reference's sampler, one network evaluation per step; 'dpm++2s': "
                         "DPM-Solver++(2S), second order, two per step).")
    if sampler == "dpm++2s" and isinstance(eta, (int, float)) and eta > 0:
        raise ValueError(f"sampler='dpm++2s' with eta={eta!r} is invalid: DPM-Solver++(2S) solves the "
                         "deterministic probability-flow ODE and adds no fresh noise; use eta=0 with 'dpm++2s', "
                         "or sampler='ddim' for stochastic sampling.")
    if path == "linear" and isinstance(eta, (int, float)) and eta > 0:
        raise ValueError(f"eta={eta!r} is invalid on the linear path: the eta family of DDIM (its Eq. 16) "
                         "assumes the cosine path's unit-variance mix; flow matching samples deterministically "
                         "(eta=0: Euler steps on the velocity).")
    return sampler


def check_seed(seed: Any, name: str = "seed") -> None:
    """Raise ValueError unless ``seed`` is None, a ``keras.random.SeedGenerator`` or an int in [0, MAX_SEED]."""
    if seed is None or type(seed).__name__ == "SeedGenerator":
        return
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name}={seed!r} is invalid: use None or an integer in [0, {MAX_SEED}].")


def check_sampling_args(initial_noise: Any, diffusion_steps: Any, min_signal_rate: Any, max_signal_rate: Any,
                        eta: Any, *, image_size: int | None = None, sampler: Any = "ddim", path: Any = "cosine",
                        seed: Any = None, owner: str = "reverse_diffusion") -> Any:
    """Check a sampler's inputs and return the noise as a float32 tensor; raise ValueError otherwise.

    With ``image_size`` given, the noise's images must have that size. Noise handed in as host
    data (a NumPy array, a list) is checked for NaN and Inf here, where that costs nothing; a
    tensor is not read back, since that would copy it from the device at every call.
    """
    from keras import ops

    check_positive_int("diffusion_steps", diffusion_steps, advice="use an integer >= 1 (the reference samples "
                       "with 20; 5 is enough for a rough preview)")
    check_signal_rates(min_signal_rate, max_signal_rate, owner=owner)
    if not isinstance(eta, (int, float)) or isinstance(eta, bool) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta={eta!r} is invalid: use a number in [0, 1] "
                         "(0: deterministic DDIM, 1: DDPM-like stochastic sampling).")
    check_path(path, owner=owner)
    check_sampler(sampler, eta, path)
    check_seed(seed)
    if initial_noise is None:
        raise ValueError("initial_noise is None: pass a float tensor of shape [num_images, size, size, 3].")
    if not hasattr(initial_noise, "shape"):  # a nested list, say
        try:
            initial_noise = np.asarray(initial_noise, dtype="float32")
        except (TypeError, ValueError) as err:
            raise ValueError("initial_noise could not be read as an array of numbers: pass a float tensor "
                             "of shape [num_images, size, size, 3].") from err
    shape = tuple(initial_noise.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"initial_noise has shape {shape}: it must be [num_images, size, size, 3].")
    if shape[0] == 0:
        raise ValueError("initial_noise holds no images: ask for at least one image.")
    if image_size is not None and shape[1:3] != (image_size, image_size):
        raise ValueError(f"initial_noise has images of {shape[1]}x{shape[2]} pixels but the network takes "
                         f"{image_size}x{image_size}: draw the noise with model.initial_noise(num_images).")
    dtype = str(getattr(initial_noise, "dtype", ""))
    if "float" not in dtype:
        raise ValueError(f"initial_noise has dtype {dtype}: it must be a float tensor of standard normal noise.")
    if not ops.is_tensor(initial_noise) and not np.all(np.isfinite(np.asarray(initial_noise))):
        raise ValueError("initial_noise contains NaN or Inf values: pass finite standard normal noise, "
                         "e.g. from model.initial_noise(num_images, seed).")
    # The rates and the network compute in float32; half or double precision noise is converted.
    return ops.cast(ops.convert_to_tensor(initial_noise), "float32")


def check_guidance(num_classes: int, class_labels: Any, guidance_scale: Any, num_images: int) -> Any:
    """Check class labels and guidance scale for ``num_images`` images of a network conditioned on
    ``num_classes`` classes (0: unconditional); return the labels as an int32 tensor, or None.
    One label is repeated for every image."""
    from keras import ops

    if (not isinstance(guidance_scale, (int, float, np.floating, np.integer)) or isinstance(guidance_scale, bool)
            or not np.isfinite(guidance_scale) or guidance_scale < 0):
        raise ValueError(f"guidance_scale={guidance_scale!r} is invalid: use a number >= 0 (1: the conditional "
                         "model as trained, 0: ignore the label, 2-5: stronger guidance).")
    if class_labels is None:
        if guidance_scale != 1:
            raise ValueError(f"guidance_scale={guidance_scale!r} needs class_labels: guidance pushes the samples "
                             "towards a class, so say which (e.g. class_labels=3).")
        return None
    if not num_classes:
        raise ValueError("class_labels were given but this network is unconditional (trained without labels, "
                         "DDIMConfig.num_classes=0); train with num_classes > 0 for class-conditional sampling.")
    labels = np.asarray(ops.convert_to_numpy(class_labels) if ops.is_tensor(class_labels) else class_labels)
    if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise ValueError(f"class_labels={class_labels!r} is invalid: use integer class indices.")
    labels = labels.astype("int64").reshape(-1)
    if labels.size == 1:
        labels = np.repeat(labels, num_images)
    if labels.size != num_images:
        raise ValueError(f"class_labels holds {labels.size} labels for {num_images} images: give one label, "
                         "or one per image.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"class_labels={labels.tolist()} is invalid: this network knows classes 0 to "
                         f"{num_classes - 1}.")
    return ops.convert_to_tensor(labels.astype("int32"))
