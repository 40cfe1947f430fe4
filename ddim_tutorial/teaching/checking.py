"""How the exercise checkers run a student's function and say what is wrong, in one sentence.

The shared machinery behind :mod:`ddim_tutorial.teaching.exercises`, which holds the checkers themselves:
a :class:`Trial` is one random case with the package's outputs (and those of known mistakes);
:func:`compare` calls the student's function on every trial and either passes or names the
problem (an exception, a wrong type, shape or dtype, NaN, a known mistake, a sign, a constant
factor, else the largest difference and where); :func:`exercise_checker` turns a comparison into
a public checker that refuses misuse and prints its sentence. A wrong student function never
makes anything here raise. Keras is imported inside the functions, so that importing this module
never picks a backend.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ddim_tutorial.runtime import arrays

__all__ = ["CheckResult", "exercise_checker", "compare", "fail"]


@dataclass(frozen=True)
class CheckResult:
    """What a checker found; truthy when the student's function passed, so ``assert check(f)`` works."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:  # short: the sentence itself is printed already
        return f"CheckResult({self.exercise!r}, passed={self.passed})"


@dataclass(eq=False)
class Trial:
    """One random case: the arguments, the package's outputs, and words to describe the case."""

    args: tuple
    expected: tuple
    where: str
    points: dict = field(default_factory=dict)  # input name -> array broadcastable to the output
    alternatives: dict = field(default_factory=dict)  # "what the mistake is" -> the outputs it gives


KIND = {False: "NumPy arrays", True: "Keras tensors"}  # a student's code must take both


def to_numpy(value: Any) -> np.ndarray:
    """A float64 NumPy copy of a package output (array, Keras tensor or number)."""
    return arrays.to_numpy(value).astype(np.float64)


def student_inputs(arrays: tuple, as_tensors: bool) -> tuple:
    """The student's arguments: float32 NumPy arrays, or the same values as Keras tensors."""
    import keras

    arrays = tuple(np.asarray(a, dtype=np.float32) for a in arrays)
    return tuple(keras.ops.convert_to_tensor(a) for a in arrays) if as_tensors else arrays


def with_article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


#: What a starter cell's function says: it raises NotImplementedError until the student writes its body.
STARTER = "still raises NotImplementedError: replace that line with your code"


def raised(err: Exception, where: str) -> str:
    """The problem of a function that raised ``err`` ``where``: the starter's own line, or the error named."""
    if isinstance(err, NotImplementedError):  # the lessons' starters: no case to describe yet
        return STARTER
    numpy_on_torch = "unsupported operand" in str(err) and "NumPy" in where
    hint = ("; torch cannot combine NumPy arrays with its tensors: convert the inputs with "
            "keras.ops.convert_to_tensor" if numpy_on_torch else "")
    return f"raised {describe_error(err)} {where}{hint}"


def describe_error(err: Exception) -> str:
    """``TypeError (its message)``, one line, short enough for a sentence."""
    text = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
    return type(err).__name__ + (f" ({text})" if text else "")


def positional_arity(fn: Callable) -> tuple[int, int]:
    """(required, maximum) positional parameters of ``fn``; the maximum is 99 with ``*args``."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind.name.startswith(("POS", "VAR_P"))]
    except (TypeError, ValueError):
        return 0, 99
    required = sum(p.default is p.empty and p.kind.name != "VAR_POSITIONAL" for p in params)
    return required, 99 if any(p.kind.name == "VAR_POSITIONAL" for p in params) else len(params)


def _read(value: Any, name: str) -> tuple[np.ndarray | None, str | None]:
    """The student's output as float64 NumPy, or a problem in words."""
    import keras

    if value is None:
        return None, f"returned None instead of the {name}"
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:  # not something Keras can read: reported just below
        array = np.empty((), dtype=object)
    if array.dtype == object:
        return None, f"returned {with_article(type(value).__name__)} for the {name}, not an array or tensor,"
    if array.dtype.kind != "f" and "float" not in str(array.dtype):
        return None, f"returned the {name} with dtype {array.dtype}, not floats,"
    return array.astype(np.float64), None


def _point(trial: Trial, shape: tuple, index: tuple) -> str:
    """Where in the output, and the inputs there: `` at index (3,) (where diffusion_times=0.73)``."""
    if not shape:
        return ""
    values = []
    for name, array in trial.points.items():
        with contextlib.suppress(ValueError):  # an input that does not broadcast to the output is left out
            values.append(f"{name}={float(np.broadcast_to(array, shape)[index]):.4g}")
    return f" at index {index}" + (f" (where {', '.join(values)})" if values else "")


def _outputs(raw: Any, trial: Trial, names: tuple, squeeze: bool) -> tuple[list | None, str | None]:
    """Split, convert and check the student's outputs: their number, type, shape and finiteness."""
    if len(names) > 1 and (not isinstance(raw, (tuple, list)) or len(raw) != len(names)):
        return None, f"returned {with_article(type(raw).__name__)}, not the {len(names)} outputs ({', '.join(names)}),"
    arrays = []
    for part, want, name in zip(raw if len(names) > 1 else [raw], trial.expected, names, strict=False):
        array, problem = _read(part, name)
        if problem:
            return None, problem
        if squeeze and array.shape == (1, *want.shape):
            array = array[0]
        if array.shape != want.shape and not (want.size == 1 == array.size):
            need = "be a single number" if want.shape == () else f"have shape {want.shape}"
            return None, f"returned the {name} with shape {array.shape}, but it must {need}"
        array = array.reshape(want.shape)
        if not np.all(np.isfinite(array)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            return None, f"returned NaN or Inf in the {name}{_point(trial, want.shape, index)}"
        arrays.append(array)
    return arrays, None


def fail(exercise: str, problem: str) -> CheckResult:
    return CheckResult(exercise, False, f"{exercise}: not yet, your function {problem}.")


def _diagnose(exercise: str, trials: list[Trial], results: list, names: tuple, close: Callable,
              atol: float) -> CheckResult:
    """Name what is wrong: a known mistake, a sign, a constant factor, else the largest difference."""
    for label in trials[0].alternatives:
        if all(all(close(g, a) for g, a in zip(got, t.alternatives[label], strict=False))
               for t, got in zip(trials, results, strict=True)):
            return fail(exercise, label)
    for k, name in enumerate(names):
        got = np.concatenate([r[k].ravel() for r in results])
        expected = np.concatenate([t.expected[k].ravel() for t in trials])
        if close(got, expected):
            continue
        if np.allclose(got, 0.0, atol=atol):
            return fail(exercise, f"returns all zeros for the {name}")
        usable = np.abs(expected) > 1e-3 * np.max(np.abs(expected))
        c = float(np.median(got[usable] / expected[usable])) if usable.any() else 1.0
        if abs(c - 1.0) > 1e-3 and np.allclose(got, c * expected, rtol=1e-3, atol=atol * max(1.0, abs(c))):
            if abs(c + 1.0) < 1e-3:
                return fail(exercise, f"has the wrong sign: its {name} is exactly minus the package's")
            return fail(exercise, f"is off by a constant factor: its {name} is {c:.4g} times the package's")
    diff, i, k = max((float(np.max(np.abs(g - e))), i, k)
                     for i, (t, got) in enumerate(zip(trials, results, strict=True))
                     for k, (g, e) in enumerate(zip(got, t.expected, strict=False)))
    trial, got, want = trials[i], results[i][k], trials[i].expected[k]
    index = tuple(int(j) for j in np.unravel_index(np.argmax(np.abs(got - want)), got.shape))
    return fail(exercise, f"differs from the package by up to {diff:.3g} in the {names[k]} {trial.where}"
                          f"{_point(trial, got.shape, index)}: yours is {float(got[index]):.5g}, "
                          f"the package's {float(want[index]):.5g}")


def compare(exercise: str, fn: Callable, trials: list[Trial], names: tuple = ("output",), *,
            rtol: float = 1e-4, atol: float = 1e-5, squeeze: bool = False, note: str = "") -> CheckResult:
    """Call ``fn`` on every trial; pass when all outputs match the package's, else diagnose."""
    results = []
    for trial in trials:
        try:
            raw = fn(*trial.args)
        except Exception as err:  # a wrong student function is reported, never raised
            return fail(exercise, raised(err, trial.where))
        got, problem = _outputs(raw, trial, names, squeeze)
        if problem:
            return fail(exercise, f"{problem} {trial.where}")
        results.append(got)
    close = functools.partial(np.allclose, rtol=rtol, atol=atol)
    if all(close(g, e) for t, got in zip(trials, results, strict=True) for g, e in zip(got, t.expected, strict=False)):
        return CheckResult(exercise, True, f"{exercise}: passed, your function matches the package on "
                                           f"{len(trials)} random cases{note}.")
    return _diagnose(exercise, trials, results, names, close, atol)


def exercise_checker(exercise: str, signature: str = "", arguments: int = 0) -> Callable:
    """Make ``inner(fn) -> CheckResult`` a public checker: refuse a non-function, check that ``fn``
    takes ``arguments`` positional arguments (as ``signature`` shows), and print the sentence."""
    def decorate(inner: Callable) -> Callable:
        @functools.wraps(inner)
        def checker(fn: Callable) -> CheckResult:
            if not callable(fn):
                raise ValueError(f"check_{exercise}: pass your function itself (e.g. my_{exercise}, without "
                                 f"parentheses), not a value of type {type(fn).__name__}.")
            required, maximum = positional_arity(fn)
            if arguments and (maximum < arguments or required > arguments):
                result = fail(exercise, f"must take {arguments} arguments: {signature}")
            else:
                result = inner(fn)
            print(result.message)
            return result
        return checker
    return decorate
