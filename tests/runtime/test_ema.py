"""ddim_tutorial.runtime.ema: the EMA update of the weights.

Runs on every backend: ``KERAS_BACKEND=X pytest tests/runtime/test_ema.py``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from tests.helpers import adapted_model, tiny_images

BACKEND = keras.backend.backend()
REPO_ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------- no autograd graph
@pytest.mark.skipif(BACKEND != "torch", reason="autograd is PyTorch's")
def test_pytorch_ema_update_builds_no_autograd_graph(monkeypatch):
    import torch

    model = adapted_model()
    model.compile()
    ema_ids = {id(weight) for weight in model.ema_network.weights}
    seen = []
    original = type(model.ema_network.weights[0]).assign

    def assign(self, value):
        if id(self) in ema_ids:
            seen.append((torch.is_grad_enabled(), bool(getattr(value, "requires_grad", False))))
        return original(self, value)

    monkeypatch.setattr(type(model.ema_network.weights[0]), "assign", assign)
    model.fit(tiny_images(), batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert len(seen) == 2 * len(model.ema_network.weights)  # two steps
    assert not any(grad or requires for grad, requires in seen)
