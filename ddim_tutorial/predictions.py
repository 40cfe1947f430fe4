"""What the network predicts, and how its output becomes a predicted image and noise.

The network may be trained to predict the noise (the reference), the image, the velocity
``v = signal_rate * noise - noise_rate * image`` (Salimans and Ho 2022), or on flow matching's
straight path the flow velocity ``noise - image``: any one of them, with the noisy image, gives
noise and image. A class-conditional network also takes a label, and
classifier-free guidance (Ho and Salimans 2022) mixes its prediction with and without it.
Every sampler asks :func:`make_denoiser` for the pair ``(pred_noises, pred_images)``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from .config import PREDICTION_TYPES

__all__ = ["PREDICTION_TYPES", "network_predictions", "make_denoiser", "prediction_targets",
           "pred_images_from_noises", "components_from_predictions"]


def predict_components(network: keras.Model, noisy_images: Any, noise_rates: Any, signal_rates: Any,
                       training: bool = False, *, prediction_type: str = "noise", class_labels: Any = None,
                       guidance_scale: float = 1.0) -> tuple[Any, Any]:
    """Split noisy images into ``(pred_noises, pred_images)`` with one network call.

    ``prediction_type`` says what the network was trained to predict (``"noise"`` in the
    reference; see :func:`components_from_predictions`). A class-conditional network gets
    ``class_labels`` (none: the "no label" class), and ``guidance_scale != 1`` adds
    classifier-free guidance (:func:`network_predictions`).
    """
    noisy_images = ops.convert_to_tensor(noisy_images)
    noise_rates = ops.convert_to_tensor(noise_rates, noisy_images.dtype)
    signal_rates = ops.convert_to_tensor(signal_rates, noisy_images.dtype)
    denoise = make_denoiser(lambda inputs: network(inputs, training=training), prediction_type=prediction_type,
                            null_label=null_label_of(network), class_labels=class_labels,
                            guidance_scale=None if guidance_scale == 1 else guidance_scale)
    return denoise(noisy_images, noise_rates, signal_rates)


def make_denoiser(call_network: Any, *, prediction_type: str = "noise", null_label: int | None = None,
                  class_labels: Any = None, guidance_scale: Any = None) -> Any:
    """``denoise(noisy_images, noise_rates, signal_rates) -> (pred_noises, pred_images)``.

    The one denoiser of every sampler, eager and compiled: ``call_network(inputs)`` runs the
    network on ``[noisy_images, noise_variances]`` (plus ``class_labels`` for a conditional
    network, whose "no label" class is ``null_label``); :func:`network_predictions` adds the
    labels and the guidance, :func:`components_from_predictions` turns the answer into noise
    and image. ``guidance_scale`` may be a tensor; None means no guidance (one network pass).
    """

    def denoise(noisy_images, noise_rates, signal_rates):
        predictions = network_predictions(call_network, noisy_images, noise_rates**2, null_label=null_label,
                                          class_labels=class_labels, guidance_scale=guidance_scale)
        predictions = ops.cast(predictions, noisy_images.dtype)
        return components_from_predictions(predictions, noisy_images, noise_rates, signal_rates, prediction_type)

    return denoise


def network_predictions(call_network: Any, noisy_images: Any, noise_variances: Any, *,
                        null_label: int | None = None, class_labels: Any = None, guidance_scale: Any = None) -> Any:
    """The network's output for a batch, class-conditional and guided where asked.

    * An unconditional network (``null_label`` None) sees ``[noisy_images, noise_variances]``.
    * A conditional one also sees a label per image; without ``class_labels`` every image
      gets ``null_label``, the extra class that label dropout trained as "no label".
    * **Classifier-free guidance** (Ho and Salimans 2022, Eq. 6): with ``guidance_scale``
      ``w``, the network runs twice (as one batch of twice the size), with the labels and
      with the null label, and the answer is ``unconditional + w * (conditional -
      unconditional)``. ``w = 1`` is the conditional model, ``w = 0`` the unconditional one,
      and ``w > 1`` pushes past the conditional answer, away from what fits every class:
      images more typical of their class, at some cost in variety. The paper writes
      ``(1 + w') * conditional - w' * unconditional``: this ``w`` is their ``w' + 1``, as
      Imagen's guidance weight and diffusers' ``guidance_scale``.
    """
    noisy_images = ops.convert_to_tensor(noisy_images)
    noise_variances = ops.convert_to_tensor(noise_variances, noisy_images.dtype)
    if null_label is None:
        return call_network([noisy_images, noise_variances])
    batch = noisy_images.shape[0] if noisy_images.shape[0] is not None else ops.shape(noisy_images)[0]
    null_labels = ops.full((batch,), null_label, dtype="int32")
    if class_labels is None:
        return call_network([noisy_images, noise_variances, null_labels])
    class_labels = ops.cast(class_labels, "int32")
    if guidance_scale is None:
        return call_network([noisy_images, noise_variances, class_labels])
    both = call_network([ops.concatenate([noisy_images, noisy_images], axis=0),
                         ops.concatenate([noise_variances, noise_variances], axis=0),
                         ops.concatenate([class_labels, null_labels], axis=0)])
    conditional, unconditional = both[:batch], both[batch:]
    guidance_scale = ops.cast(guidance_scale, conditional.dtype)
    return unconditional + guidance_scale * (conditional - unconditional)


def components_from_predictions(predictions: Any, noisy_images: Any, noise_rates: Any, signal_rates: Any,
                                prediction_type: str = "noise") -> tuple[Any, Any]:
    """``(pred_noises, pred_images)`` from what the network predicts (a pure function).

    A noisy image is ``noisy = signal_rate * image + noise_rate * noise`` with
    ``signal_rate**2 + noise_rate**2 = 1``, so knowing one of noise and image gives the other:

    * ``"noise"`` (the reference, DDPM's epsilon): ``image = (noisy - noise_rate * noise) / signal_rate``;
    * ``"image"`` (the clean image, x0): ``noise = (noisy - signal_rate * image) / noise_rate``;
    * ``"velocity"`` (v-prediction, Salimans and Ho 2022, Sec. 4):
      ``v = signal_rate * noise - noise_rate * image``, from which
      ``image = signal_rate * noisy - noise_rate * v`` and ``noise = noise_rate * noisy + signal_rate * v``,
      with no division at all;
    * ``"flow"`` (flow matching on the linear path, where ``signal_rate + noise_rate = 1``): the
      velocity ``u = noise - image`` of the straight line, from which ``image = noisy - noise_rate * u``
      and ``noise = noisy + signal_rate * u`` (written divided by ``signal_rate + noise_rate``, which
      is 1 there).
    """
    if prediction_type == "noise":
        return predictions, pred_images_from_noises(noisy_images, predictions, noise_rates, signal_rates)
    if prediction_type == "image":
        return (noisy_images - signal_rates * predictions) / noise_rates, predictions
    if prediction_type == "flow":
        rate_sums = signal_rates + noise_rates
        return ((noisy_images + signal_rates * predictions) / rate_sums,
                (noisy_images - noise_rates * predictions) / rate_sums)
    return noise_rates * noisy_images + signal_rates * predictions, signal_rates * noisy_images - noise_rates * predictions


def prediction_targets(images: Any, noises: Any, noise_rates: Any, signal_rates: Any,
                       prediction_type: str = "noise") -> Any:
    """What the network should output for ``noisy = signal_rate * images + noise_rate * noises``
    (the training target; the inverse of :func:`components_from_predictions`)."""
    if prediction_type == "noise":
        return noises
    if prediction_type == "image":
        return images
    if prediction_type == "flow":
        return noises - images
    return signal_rates * noises - noise_rates * images


def pred_images_from_noises(noisy_images: Any, pred_noises: Any, noise_rates: Any, signal_rates: Any) -> Any:
    """The image that a predicted noise implies: ``noisy = signal_rate * image + noise_rate * noise``
    solved for the image (a pure function, shared by the eager and the compiled samplers)."""
    return (noisy_images - noise_rates * pred_noises) / signal_rates


def null_label_of(network: keras.Model) -> int | None:
    """The "no label" class of a class-conditional network (its number of classes), or None."""
    from .network import num_classes_of  # imported here: network.py imports nothing of sampling

    num_classes = num_classes_of(network)
    return num_classes if num_classes else None


def validate_prediction_type(prediction_type: Any) -> str:
    """Return ``prediction_type`` if it is one of :data:`PREDICTION_TYPES`; raise ValueError otherwise."""
    if not isinstance(prediction_type, str) or prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={prediction_type!r} is invalid: choose one of "
                         f"{', '.join(map(repr, PREDICTION_TYPES))} (what the network was trained to predict; "
                         "the reference predicts the noise).")
    return prediction_type


def validate_guidance(network: keras.Model, class_labels: Any, guidance_scale: Any, num_images: int) -> Any:
    """Check class labels and guidance scale for ``num_images`` images; return the labels as an
    int32 tensor (or None). One label is repeated for every image."""
    if (not isinstance(guidance_scale, (int, float, np.floating, np.integer)) or isinstance(guidance_scale, bool)
            or not np.isfinite(guidance_scale) or guidance_scale < 0):
        raise ValueError(f"guidance_scale={guidance_scale!r} is invalid: use a number >= 0 (1: the conditional "
                         "model as trained, 0: ignore the label, 2-5: stronger guidance).")
    num_classes = null_label_of(network) or 0
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
