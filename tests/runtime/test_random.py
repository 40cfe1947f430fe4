"""ddim_tutorial.runtime.random: the step noise of stochastic sampling, a pure function of (seed, step).

Runs on every backend: ``KERAS_BACKEND=X pytest tests/runtime/test_random.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from ddim_tutorial.checks import MAX_SEED
from ddim_tutorial.runtime.random import step_noise

BACKEND = keras.backend.backend()
REPO_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------ collision-free step noise
def test_step_noise_never_shares_noise_between_seed_step_pairs():
    inverse = pow(1_000_003, -1, 2**31)  # seed * 1_000_003 + step (mod 2**31) mapped these pairs together
    for first, second in [((inverse, 0), (0, 1)), ((1, 0), (0, 1_000_003)), ((MAX_SEED, 5), (MAX_SEED - 1, 5))]:
        a = keras.ops.convert_to_numpy(step_noise((2, 4, 4, 3), *first))
        b = keras.ops.convert_to_numpy(step_noise((2, 4, 4, 3), *second))
        assert np.abs(a - b).max() > 0.1, (first, second)
    noise = keras.ops.convert_to_numpy(step_noise((64, 16, 16, 3), 7, 3))
    assert noise.dtype == np.float32
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1.0) < 0.02  # still standard normal


def test_step_noise_is_the_same_in_a_fresh_process():
    # What docs/DESIGN.md ("Reproducibility") promises: a seed's noise does not depend on the process.
    code = ("import sys, numpy as np, keras; sys.path.insert(0, sys.argv[1]); "
            "from ddim_tutorial.runtime.random import step_noise; "
            "np.save(sys.argv[2], keras.ops.convert_to_numpy(step_noise((2, 4, 4, 3), 7, 3)))")
    target = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / f"step_noise_{os.getpid()}.npy"
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), str(target)], check=True, env=env, timeout=300)
    try:
        np.testing.assert_array_equal(np.load(target), keras.ops.convert_to_numpy(step_noise((2, 4, 4, 3), 7, 3)))
    finally:
        target.unlink(missing_ok=True)
