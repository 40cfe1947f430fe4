"""The exponential moving average (EMA) of the weights, after each optimizer step, on every backend.

TensorFlow and PyTorch assign the averaged values to the EMA variables (PyTorch under ``no_grad``,
so that the update builds no autograd graph). JAX keeps a model's state outside its variables while
it trains, so there the same update is a function of the state tuple that Keras' ``train_step``
passes in and out.
"""

from __future__ import annotations

import keras
from keras import ops

from ddim_tutorial.runtime.backends import no_grad

__all__ = ["update_ema", "update_ema_in_jax_state"]


def update_ema(weights: list, ema_weights: list, momentum: float) -> None:
    """``ema = momentum * ema + (1 - momentum) * weight``, for each pair of variables."""
    with no_grad():
        for weight, ema_weight in zip(weights, ema_weights, strict=True):
            ema_weight.assign(momentum * ema_weight + (1.0 - momentum) * ops.cast(weight, ema_weight.dtype))


def update_ema_in_jax_state(model: keras.Model, weights: list, ema_weights: list, momentum: float,
                            state: tuple) -> tuple:
    """The same update on JAX's explicit ``(trainable, non_trainable, optimizer, metrics)`` state of
    ``model``, where ``weights`` and ``ema_weights`` are variables of ``model``."""
    trainable_values, non_trainable_values, optimizer_values, metric_values = state
    trainable_index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    non_trainable_index = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
    non_trainable_values = list(non_trainable_values)
    for weight, ema_weight in zip(weights, ema_weights, strict=True):
        if id(weight) in trainable_index:
            value = trainable_values[trainable_index[id(weight)]]
        else:
            value = non_trainable_values[non_trainable_index[id(weight)]]
        target = non_trainable_index[id(ema_weight)]
        non_trainable_values[target] = (momentum * non_trainable_values[target]
                                        + (1.0 - momentum) * value.astype(non_trainable_values[target].dtype))
    return trainable_values, non_trainable_values, optimizer_values, metric_values
