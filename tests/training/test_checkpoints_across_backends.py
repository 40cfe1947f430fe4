"""A checkpoint saved on one backend loads on the others and samples the same images (subprocesses)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TINY_FIELDS

REPO = Path(__file__).resolve().parents[2]


# -------------------------------------------------------- checkpoints across backends
_SAVE_AND_SAMPLE = """
import sys, numpy as np, keras
from ddim_tutorial.training.checkpoints import load_checkpoint, save_checkpoint
from ddim_tutorial.config import DDIMConfig
from ddim_tutorial.data.synthetic import synthetic_flowers
from ddim_tutorial.core.model import DiffusionModel
source, target, noise_file, expected_file = sys.argv[1:5]
if source == "new":
    keras.utils.set_random_seed(0)
    model = DiffusionModel(DDIMConfig(**{TINY_FIELDS}))
    model.adapt_normalizer(synthetic_flowers(8, 16))
else:
    model = load_checkpoint(source)
noise = np.load(noise_file)
images = keras.ops.convert_to_numpy(model.generate(2, 3, initial_noise=noise, compiled=False))
if expected_file != "-":
    np.testing.assert_allclose(images, np.load(expected_file), atol=2e-4)
    print("same samples as the saving backend")
save_checkpoint(model, target)
np.save(target + ".npy", images)
print("saved on", keras.backend.backend())
"""


def python_for(backend: str) -> str | None:
    """An interpreter that has ``backend``: this one, $DDIM_PYTHON_<BACKEND>, or the project's venvs."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is not None:
        return sys.executable
    candidates = [os.environ.get(f"DDIM_PYTHON_{backend.upper()}"), "/tmp/venv-tf/bin/python",
                  "/tmp/venv-nt/bin/python"]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file() and subprocess.run(
                [candidate, "-c",
                 f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"],
                capture_output=True).returncode == 0:
            return candidate
    return None


def run_on(backend: str, *args: str) -> str:
    python = python_for(backend)
    if python is None:
        pytest.skip(f"no Python with the {backend} backend (set DDIM_PYTHON_{backend.upper()})")
    script = _SAVE_AND_SAMPLE.replace("{TINY_FIELDS}", repr(TINY_FIELDS))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([python, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_checkpoint_saved_on_tensorflow_loads_on_jax_then_torch(tmp_path):
    noise = tmp_path / "noise.npy"
    np.save(noise, np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32"))
    saved_tf, saved_jax, saved_torch = (str(tmp_path / name) for name in ("tf", "jax", "torch"))
    assert "saved on tensorflow" in run_on("tensorflow", "new", saved_tf, str(noise), "-")
    output = run_on("jax", saved_tf, saved_jax, str(noise), saved_tf + ".npy")
    assert "same samples as the saving backend" in output and "saved on jax" in output
    output = run_on("torch", saved_jax, saved_torch, str(noise), saved_jax + ".npy")
    assert "same samples as the saving backend" in output and "saved on torch" in output
