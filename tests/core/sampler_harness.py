"""One harness for every sampler in ``checks.SAMPLERS``, as keras-hub's ``run_backbone_test``:
a new sampler is tested by adding its name to SAMPLERS (tests/core/test_samplers.py runs this)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ddim_tutorial.checks import SAMPLERS
from ddim_tutorial.core.sampling import network_evaluations, reverse_diffusion
from tests.helpers import model_around, randomize_output_layer, to_numpy

STEP_COUNTS = (1, 2, 5)


class CallCounter(keras.layers.Layer):
    """Passes its input through and counts its (eager) calls."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def call(self, inputs):
        self.calls += 1
        return inputs


def counting(network: keras.Model) -> tuple[keras.Model, CallCounter]:
    """``network`` wrapped so that every call is counted."""
    size = network.inputs[0].shape[1]
    noisy_images, noise_variances = keras.Input((size, size, 3)), keras.Input((1, 1, 1))
    counter = CallCounter()
    return keras.Model([noisy_images, noise_variances], counter(network([noisy_images, noise_variances]))), counter


def conditioned_denoiser(image_size: int = 16, seed: int = 0) -> keras.Model:
    """The noisy input plus a small input-dependent correction from a U-Net with random output
    weights: bounded samples, so compiled and eager results can be compared."""
    from ddim_tutorial.config import DDIMConfig
    from ddim_tutorial.core.network import build_network

    keras.utils.set_random_seed(seed)
    config = DDIMConfig.preset("smoke", image_size=image_size, widths=(8, 16), embedding_dims=8, batch_size=4)
    unet = randomize_output_layer(build_network(config), 0.3, seed)
    noisy_images, noise_variances = keras.Input((image_size, image_size, 3)), keras.Input((1, 1, 1))
    correction = keras.layers.Rescaling(0.2)(unet([noisy_images, noise_variances]))
    return keras.Model([noisy_images, noise_variances], keras.layers.Add()([noisy_images, correction]))


def run_sampler_test(sampler_name: str, *, model=None, step_counts=STEP_COUNTS, atol: float = 1e-4) -> None:
    """Check one sampler: compiled (``model.sampler``) equals eager (``reverse_diffusion``); a seed
    fixes the images and another seed gives others; ``network_evaluations`` counts the network calls
    really made; bad arguments raise ValueError naming the argument."""
    assert sampler_name in SAMPLERS, f"{sampler_name!r} is not in checks.SAMPLERS"
    model = model or model_around(conditioned_denoiser())
    network, size = model.ema_network, model.config.image_size
    noise = np.random.default_rng(1).standard_normal((2, size, size, 3)).astype("float32")

    # 1. The compiled loop gives the eager loop's images.
    for steps in step_counts:
        eager = to_numpy(reverse_diffusion(network, noise, steps, sampler=sampler_name))
        compiled = to_numpy(model.sampler(noise, steps, normalized=True, sampler=sampler_name))
        assert np.abs(eager).max() > 0.1, "the network must change the images"
        np.testing.assert_allclose(compiled, eager, atol=atol, rtol=atol, err_msg=f"{sampler_name}, {steps} steps")

    # 2. The same seed gives the same images; another seed, other images.
    first = to_numpy(model.generate(2, 3, seed=3, sampler=sampler_name))
    np.testing.assert_array_equal(first, to_numpy(model.generate(2, 3, seed=3, sampler=sampler_name)))
    assert np.abs(first - to_numpy(model.generate(2, 3, seed=4, sampler=sampler_name))).mean() > 1e-3

    # 3. The stated number of network evaluations is the number of calls made.
    counted, counter = counting(network)
    for steps in step_counts:
        counter.calls = 0
        reverse_diffusion(counted, noise, steps, sampler=sampler_name)
        assert counter.calls == network_evaluations(sampler_name, steps), (sampler_name, steps)

    # 4. Bad arguments raise ValueError with a message naming the argument.
    for entry in (lambda **kw: reverse_diffusion(network, noise, kw.pop("steps", 2), sampler=sampler_name, **kw),
                  lambda **kw: model.sampler(noise, kw.pop("steps", 2), sampler=sampler_name, **kw)):
        for arguments, name in ((dict(steps=0), "diffusion_steps"), (dict(eta=-0.5), "eta"),
                                (dict(min_signal_rate=0.0), "min_signal_rate"),
                                (dict(max_signal_rate=1.5), "max_signal_rate"), (dict(seed=-1), "seed")):
            with pytest.raises(ValueError, match=name):
                entry(**arguments)
    with pytest.raises(ValueError, match="diffusion_steps"):
        network_evaluations(sampler_name, 0)
