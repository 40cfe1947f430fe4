"""Data-parallel training on several devices, with Keras' own tools.

Data parallelism keeps a full copy of the model on every device, splits each batch
between them, and averages the gradients, so the result matches one device that sees
the whole batch (up to float rounding). Keras offers it per backend:

* JAX: ``keras.distribution.DataParallel`` (GSPMD: one program, sharded batch);
* TensorFlow: ``tf.distribute.MirroredStrategy`` (one replica per device); the model
  must be *built* inside ``strategy.scope()``, which :class:`DiffusionModel` does by
  itself once :func:`configure_devices` has run; its BatchNormalization layers then use
  the statistics of the whole batch, like one device would;
* PyTorch: Keras has no data-parallel API there, so only one device is supported.

>>> setup = configure_devices(2)       # before building the model
>>> model = DiffusionModel(config)     # mirrored/replicated automatically
>>> setup.global_batch_size(64)        # 128: each device still sees 64 images

This module imports neither Keras nor TensorFlow at import time, so that
:func:`configure_devices` can still ask JAX for virtual CPU devices before JAX starts.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from ddim_tutorial.checks import check_positive_int

__all__ = ["DeviceSetup", "configure_devices", "current_setup", "reset_devices",
           "suggest_learning_rate"]

_ACTIVE: "DeviceSetup | None" = None
_CPU_FLAG = "--xla_force_host_platform_device_count"


@dataclass
class DeviceSetup:
    """Which devices train the model, and the backend object that spreads work over them."""

    backend: str
    devices: list[str]
    strategy: Any = None  # tf.distribute.MirroredStrategy (TensorFlow, several devices)
    distribution: Any = None  # keras.distribution.DataParallel (JAX, several devices)
    virtual: bool = False  # devices are slices of one CPU: right answers, no speed-up

    @property
    def num_replicas(self) -> int:
        return len(self.devices)

    @property
    def distributed(self) -> bool:
        return self.num_replicas > 1

    def scope(self) -> contextlib.AbstractContextManager:
        """Where models and optimizers must be built (TensorFlow); a no-op elsewhere."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def global_batch_size(self, per_device_batch_size: int) -> int:
        """The batch size to give the dataset so that each device sees ``per_device_batch_size``."""
        check_positive_int("per_device_batch_size", per_device_batch_size)
        return per_device_batch_size * self.num_replicas

    def describe(self) -> str:
        kind = {"tensorflow": "tf.distribute.MirroredStrategy", "jax": "keras.distribution.DataParallel"}
        how = kind.get(self.backend, "one device") if self.distributed else "one device, no distribution"
        text = f"{self.num_replicas} device(s) [{', '.join(self.devices)}] on {self.backend}: {how}"
        if self.virtual:
            text += " (virtual CPU devices: correct, but no faster than one CPU)"
        return text


def current_setup() -> DeviceSetup | None:
    """The setup made by the last :func:`configure_devices`, or None."""
    return _ACTIVE


def configure_devices(n: int | None = None, *, device_type: str | None = None) -> DeviceSetup:
    """Train on ``n`` devices with data parallelism; call it before building the model.

    ``n=None`` takes every accelerator (GPU/TPU), or one CPU when there is none; ``n=1``
    turns distribution off. With ``n > 1`` and no accelerator, the CPU is split into
    ``n`` virtual devices (for testing and teaching: no faster). ``device_type`` forces
    ``"cpu"``, ``"gpu"`` or ``"tpu"``. Raises ValueError for a bad ``n`` or an impossible
    request, with what to do instead.
    """
    global _ACTIVE
    if n is not None:
        check_positive_int("devices", n)
    if device_type is not None and device_type.lower() not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"device_type={device_type!r} is invalid: use 'cpu', 'gpu', 'tpu' or None.")
    device_type = device_type.lower() if device_type else None
    backend = _backend_name()
    if backend == "jax":
        setup = _configure_jax(n, device_type)
    elif backend == "tensorflow":
        setup = _configure_tensorflow(n, device_type)
    else:
        setup = _configure_single(backend, n)
    _ACTIVE = setup
    return setup


def reset_devices() -> None:
    """Forget the active setup: models built afterwards live on one device again."""
    global _ACTIVE
    if _ACTIVE is not None and _ACTIVE.distribution is not None:
        import keras

        keras.distribution.set_distribution(None)
    _ACTIVE = None


def synchronize_batch_statistics(network: Any, setup: DeviceSetup | None) -> None:
    """Batch statistics over the whole global batch, as on one device: TensorFlow's replicas each see a
    slice (JAX's DataParallel computes them globally by construction)."""
    if setup is not None and setup.strategy is not None and setup.distributed:
        import keras

        for layer in network.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True


def suggest_learning_rate(batch_size: int, *, base_batch_size: int = 64, base_learning_rate: float = 1e-3,
                          rule: str = "sqrt") -> float:
    """A starting learning rate for a new batch size, from the reference's 1e-3 at batch 64.

    A larger batch gives a less noisy gradient, so it can take larger steps. For Adam-type
    optimizers such as the reference's AdamW the square-root rule (``lr * sqrt(k)`` for a
    ``k`` times larger batch) is the usual safe choice; the linear rule (``lr * k``) suits
    SGD and is often too aggressive for Adam. Treat the result as a first guess to check
    with a short run, and keep warm-up in mind beyond a few thousand images per batch.
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("base_batch_size", base_batch_size)
    if not isinstance(base_learning_rate, (int, float)) or isinstance(base_learning_rate, bool) \
            or not base_learning_rate > 0:
        raise ValueError(f"base_learning_rate={base_learning_rate!r} is invalid: it must be a positive number.")
    ratio = batch_size / base_batch_size
    if rule == "sqrt":
        return float(base_learning_rate * math.sqrt(ratio))
    if rule == "linear":
        return float(base_learning_rate * ratio)
    if rule == "none":
        return float(base_learning_rate)
    raise ValueError(f"rule={rule!r} is invalid: use 'sqrt' (Adam), 'linear' (SGD) or 'none'.")


# ----------------------------------------------------------------------- backends
def _backend_name() -> str:
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _configure_single(backend: str, n: int | None) -> DeviceSetup:
    if n is not None and n > 1:
        raise ValueError(f"devices={n} is not supported on the {backend} backend: Keras offers data-parallel "
                         "training only on JAX and TensorFlow; set KERAS_BACKEND=jax (or tensorflow), "
                         "or use --devices 1.")
    return DeviceSetup(backend, [_single_device_name(backend)])


def _single_device_name(backend: str) -> str:
    if backend == "torch":
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu:0"
    return "default"


def _configure_jax(n: int | None, device_type: str | None) -> DeviceSetup:
    if n is not None and n > 1 and "jax" not in sys.modules and device_type in (None, "cpu"):
        # Only possible before JAX starts: let the CPU platform show n devices. GPUs are unaffected.
        flags = os.environ.get("XLA_FLAGS", "")
        if _CPU_FLAG not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_CPU_FLAG}={n}".strip()
    import jax
    import keras

    accelerators = [d for d in jax.devices() if d.platform != "cpu"]
    if device_type is not None:
        candidates = jax.devices(device_type)
    else:
        candidates = accelerators or jax.devices("cpu")
    if n is None:
        n = len(candidates) if (accelerators or device_type) else 1
    if n == 1:
        keras.distribution.set_distribution(None)
        return DeviceSetup("jax", [f"{candidates[0].platform}:{candidates[0].id}"])
    if len(candidates) < n:
        platform = candidates[0].platform if candidates else (device_type or "cpu")
        hint = (f"start Python with XLA_FLAGS={_CPU_FLAG}={n} for {n} virtual CPU devices, or call "
                "configure_devices before importing keras or jax") if platform == "cpu" else \
            f"use --devices {len(candidates)} or fewer"
        raise ValueError(f"devices={n} is more than the {len(candidates)} {platform} device(s) JAX sees; {hint}.")
    chosen = candidates[:n]
    names = [f"{d.platform}:{d.id}" for d in chosen]
    distribution = keras.distribution.DataParallel(devices=names)
    keras.distribution.set_distribution(distribution)
    virtual = chosen[0].platform == "cpu"
    return DeviceSetup("jax", names, distribution=distribution, virtual=virtual)


def _configure_tensorflow(n: int | None, device_type: str | None) -> DeviceSetup:
    import tensorflow as tf  # only reached on the TensorFlow backend

    accelerators = [d for d in tf.config.list_physical_devices() if d.device_type in ("GPU", "TPU")]
    kind = device_type.upper() if device_type else (accelerators[0].device_type if accelerators else "CPU")
    if n is None:
        n = len(tf.config.list_physical_devices(kind)) if kind != "CPU" else 1
    virtual = False
    if kind == "CPU" and n > 1:
        # Listing logical devices would start the runtime, after which the CPU can no longer
        # be split: read the (not yet applied) configuration instead.
        physical = tf.config.list_physical_devices("CPU")[0]
        configured = tf.config.get_logical_device_configuration(physical) or []
        if len(configured) < n:
            try:
                tf.config.set_logical_device_configuration(
                    physical, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
            except RuntimeError as err:
                started = len(tf.config.list_logical_devices("CPU"))
                if started < n:
                    raise ValueError(
                        f"devices={n}: TensorFlow has already started with {started} CPU device(s) and can "
                        "no longer split the CPU; call configure_devices before running any TensorFlow "
                        "operation (first thing in the notebook or script).") from err
        virtual = True
        warnings.warn(f"configure_devices({n}): no GPU, so the CPU is split into {n} virtual devices; "
                      "training gives the same results but is not faster.", stacklevel=3)
    logical = tf.config.list_logical_devices(kind)
    if len(logical) < n:
        raise ValueError(f"devices={n} is more than the {len(logical)} {kind} device(s) TensorFlow sees; "
                         f"use --devices {max(len(logical), 1)} or fewer.")
    names = [device.name for device in logical[:n]]
    if n == 1:
        return DeviceSetup("tensorflow", names)
    strategy = tf.distribute.MirroredStrategy(devices=names)
    return DeviceSetup("tensorflow", names, strategy=strategy, virtual=virtual)


# ------------------------------------------------------ inside a replicated training step
def replica_draw(setup: DeviceSetup | None, draw: Any, shape: tuple) -> Any:
    """``draw(batch)`` for this replica's slice of the global batch; ``shape`` is the slice's.

    Under a TensorFlow MirroredStrategy each replica holds a slice of the batch but the
    same random state: drawing only its slice would give every replica the *same*
    noise. Each replica therefore draws the whole global batch and keeps its own slice,
    which also makes the draw identical to one device's.
    """
    replicas, replica_id = _replica_context(setup)
    if replicas == 1:
        return draw(shape[0])
    from keras import ops

    batch = shape[0]
    return ops.slice(draw(batch * replicas), (replica_id * batch, 0, 0, 0), (batch, *shape[1:]))


def _replica_context(setup: DeviceSetup | None) -> tuple[int, Any]:
    """(number of replicas in sync, this replica's id) under a TF strategy, else (1, 0)."""
    if setup is None or setup.strategy is None:
        return 1, 0
    import tensorflow as tf  # only reached on the TensorFlow backend with a strategy

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


def scale_loss_for_replicas(loss: Any) -> Any:
    """``loss / replicas`` under a TensorFlow distribution strategy, as Keras' own losses do
    (``keras.src.losses.loss.scale_loss_for_distribution``); unchanged elsewhere (JAX's
    DataParallel averages over the global batch by itself)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf  # only reached on the TensorFlow backend

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss * keras.ops.cast(1.0 / replicas, loss.dtype)
