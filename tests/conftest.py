"""Shared pytest set-up: the repo root on sys.path and the offline flower photographs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Quieter TensorFlow logs in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLOWERS12 = REPO_ROOT.parent / "shared" / "data" / "flowers12"


@pytest.fixture(scope="session")
def flowers12_dir() -> Path:
    """The 937 real flower photographs beside the repo (720 train, 217 test); tests that need them skip without them."""
    if not FLOWERS12.is_dir():
        pytest.skip(f"offline flower photographs not found at {FLOWERS12}")
    return FLOWERS12
