"""Every sampler of ``checks.SAMPLERS`` through the one harness (tests/core/sampler_harness.py).

Runs on every backend: ``KERAS_BACKEND=X pytest tests/core/test_samplers.py``.
"""

from __future__ import annotations

import pytest

from ddim_tutorial.checks import SAMPLERS
from tests.core.sampler_harness import run_sampler_test


@pytest.mark.parametrize("sampler_name", SAMPLERS)
def test_sampler(sampler_name):
    run_sampler_test(sampler_name)
