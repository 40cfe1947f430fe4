"""Extension of the core: what else the network can predict, and classifier-free guidance.

The reference's network predicts the noise. It may instead predict the image, the velocity
``v = signal_rate * noise - noise_rate * image`` (Salimans and Ho 2022) or, on flow matching's
straight path, the flow velocity ``noise - image``: any one of them, with the noisy image, gives both
noise and image. A class-conditional network also takes a label, and classifier-free guidance (Ho and
Salimans 2022) mixes its prediction with and without it. Every sampler, eager or compiled, and the
training step ask :func:`make_denoiser` for the pair ``(pred_noises, pred_images)``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from ddim_tutorial.core.network import num_classes_of

__all__ = ["make_denoiser", "network_predictions", "components_from_predictions", "prediction_targets",
           "null_label_of"]


def make_denoiser(call_network: Any, *, prediction_type: str = "noise", null_label: int | None = None,
                  class_labels: Any = None, guidance_scale: Any = None) -> Any:
    """``denoise(noisy_images, noise_rates, signal_rates) -> (pred_noises, pred_images)``.

    ``call_network(inputs)`` runs the network on ``[noisy_images, noise_variances]`` (plus the
    labels of a conditional network, whose "no label" class is ``null_label``). ``guidance_scale``
    may be a tensor; None means no guidance (one network pass).
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

    An unconditional network (``null_label`` None) sees ``[noisy_images, noise_variances]``; a
    conditional one also one label per image, ``null_label`` ("no label", trained by label dropout)
    where ``class_labels`` is None. **Classifier-free guidance** (Ho and Salimans 2022, Eq. 6) with
    scale ``w`` runs the network with the labels and with the null label, as one batch of twice the
    size, and returns ``unconditional + w * (conditional - unconditional)``: ``w = 1`` is the
    conditional model, ``w > 1`` pushes past it towards images more typical of their class. (The
    paper's ``w'`` is this ``w - 1``; this ``w`` is Imagen's and diffusers' ``guidance_scale``.)
    """
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
    return unconditional + ops.cast(guidance_scale, conditional.dtype) * (conditional - unconditional)


def components_from_predictions(predictions: Any, noisy_images: Any, noise_rates: Any, signal_rates: Any,
                                prediction_type: str = "noise") -> tuple[Any, Any]:
    """``(pred_noises, pred_images)`` from what the network predicts, using
    ``noisy = signal_rate * image + noise_rate * noise``:

    * ``"noise"`` (the reference, DDPM's epsilon): ``image = (noisy - noise_rate * noise) / signal_rate``;
    * ``"image"`` (x0): ``noise = (noisy - signal_rate * image) / noise_rate``;
    * ``"velocity"`` (v-prediction, Salimans and Ho 2022, Sec. 4, where ``signal**2 + noise**2 = 1``):
      ``image = signal_rate * noisy - noise_rate * v`` and ``noise = noise_rate * noisy + signal_rate * v``;
    * ``"flow"`` (the linear path, where ``signal + noise = 1``): ``u = noise - image``, so
      ``image = noisy - noise_rate * u`` and ``noise = noisy + signal_rate * u`` (written divided by
      ``signal_rate + noise_rate``, which is 1 there).
    """
    if prediction_type == "noise":
        return predictions, (noisy_images - noise_rates * predictions) / signal_rates
    if prediction_type == "image":
        return (noisy_images - signal_rates * predictions) / noise_rates, predictions
    if prediction_type == "flow":
        rate_sums = signal_rates + noise_rates
        return ((noisy_images + signal_rates * predictions) / rate_sums,
                (noisy_images - noise_rates * predictions) / rate_sums)
    return (noise_rates * noisy_images + signal_rates * predictions,
            signal_rates * noisy_images - noise_rates * predictions)


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


def null_label_of(network: keras.Model) -> int | None:
    """The "no label" class of a class-conditional network (its number of classes), or None."""
    return num_classes_of(network) or None
