"""The Keras backends the package supports: choosing one before Keras starts, and what it runs on.

The command line (``--backend``) and the notebooks (``lesson.choose_backend``) both go through
:func:`select_backend`; each words the failures for its own readers. Keras is imported only
inside the functions that need it, because ``KERAS_BACKEND`` must be set before the first
``import keras``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "BackendError", "select_backend", "accelerator_available",
           "auto_jit_compile", "compile_options", "no_grad", "inference_mode", "keras_backend", "software_versions"]

#: Keras backends the package supports; each needs the package of the same name.
BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"


class BackendError(ValueError):
    """A backend choice that cannot take effect.

    ``reason`` says which check failed: ``"unknown"`` (not one of ``BACKENDS``), ``"running"``
    (Keras is already imported with the backend ``active``) or ``"missing"`` (its package is
    not installed); ``name`` is the backend asked for.
    """

    def __init__(self, reason: str, name: str, active: str | None = None) -> None:
        messages = {"unknown": f"{name!r} is not a Keras backend; use one of {', '.join(BACKENDS)}",
                    "running": f"Keras is already running on {active!r}, so {name!r} cannot take effect",
                    "missing": f"the {name} backend needs the {name!r} package, which is not installed"}
        super().__init__(messages[reason])
        self.reason, self.name, self.active = reason, name, active


def select_backend(name: str | None, *, check_installed: bool = False) -> str:
    """Set ``KERAS_BACKEND`` to ``name`` before Keras is imported; returns the backend Keras runs on.

    ``name=None`` keeps the current choice (``$KERAS_BACKEND``, else Keras' default). Once Keras
    is imported its backend is fixed: asking for another one raises. ``check_installed`` also
    checks that the backend's package can be imported. Raises :class:`BackendError`.
    """
    if name is not None and name not in BACKENDS:
        raise BackendError("unknown", name)
    if "keras" in sys.modules:
        active = sys.modules["keras"].backend.backend()
        if name is not None and name != active:
            raise BackendError("running", name, active)
        return active
    if name is not None:
        os.environ["KERAS_BACKEND"] = name
        if check_installed and importlib.util.find_spec(name) is None:
            raise BackendError("missing", name)
    return name or DEFAULT_BACKEND


def accelerator_available() -> bool:
    """Whether the active Keras backend sees a GPU or TPU (imports the backend's package)."""
    backend = keras_backend()
    try:
        if backend == "jax":
            import jax

            return jax.default_backend() != "cpu"
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available() or getattr(torch.backends, "mps", None)
                        and torch.backends.mps.is_available())
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    except ImportError:
        return False


def auto_jit_compile(distributed: bool = False) -> bool:
    """What a training step's ``jit_compile="auto"`` means here: always on JAX (``jax.jit`` is how JAX
    compiles a step at all); never ``torch.compile`` (minutes to compile, fragile, little gain); on
    TensorFlow where it sees a GPU or TPU, but not under ``tf.distribute`` (as Keras' own "auto"): on a
    CPU, XLA trains slower than the plain graph and takes long to compile (benchmarks/README.md)."""
    backend = keras_backend()
    if backend in ("jax", "torch"):
        return backend == "jax"
    return not distributed and accelerator_available()


def compile_options(options: dict, *, jit_compile: bool | str, steps_per_execution: int,
                    distributed: bool = False) -> dict:
    """Keras ``compile``'s speed options: the config's values where ``options`` has none, ``"auto"``
    resolved by :func:`auto_jit_compile`, and one step per execution on PyTorch (the only one Keras
    supports there), with a warning, so that one config runs on every backend."""
    options = {"jit_compile": jit_compile, "steps_per_execution": steps_per_execution, **options}
    if options["jit_compile"] == "auto" and not options.get("run_eagerly"):
        options["jit_compile"] = auto_jit_compile(distributed)
    if keras_backend() == "torch" and options["steps_per_execution"] != 1:
        warnings.warn(f"steps_per_execution={options['steps_per_execution']} has no effect on the PyTorch "
                      "backend (Keras supports only 1 there); training one step per call.", stacklevel=3)
        options["steps_per_execution"] = 1
    return options


def no_grad() -> contextlib.AbstractContextManager:
    """``torch.no_grad()`` on PyTorch, so that an update or a forward pass builds no autograd graph;
    nothing elsewhere (TensorFlow and JAX record gradients only when asked)."""
    if keras_backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def inference_mode() -> contextlib.AbstractContextManager:
    """``torch.inference_mode()`` on PyTorch (no autograd bookkeeping at all, for sampling loops);
    nothing elsewhere."""
    if keras_backend() == "torch":
        import torch

        return torch.inference_mode()
    return contextlib.nullcontext()


def keras_backend() -> str:
    """The backend Keras runs on (or will run on), without importing Keras."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND)


def software_versions() -> str:
    """``"Keras 3.x on tensorflow, Python 3.y, TensorFlow 2.z"``: what the running backend is (imports Keras)."""
    import platform

    import keras

    backend = keras.backend.backend()
    software = f"Keras {keras.__version__} on {backend}, Python {platform.python_version()}"
    if backend == "tensorflow":
        import tensorflow as tf

        software += f", TensorFlow {tf.__version__}"
    return software
