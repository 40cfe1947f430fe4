"""Where only JAX or PyTorch is installed, the package trains, samples and saves without TensorFlow.

Runs in CI's `.venv-notf` with KERAS_BACKEND=jax and =torch; skipped where TensorFlow exists.
"""

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None,
                                reason="TensorFlow is installed here; this test is for environments without it")


def test_train_sample_save_load_without_tensorflow(tmp_path, flowers12_dir):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import keras
        import ddim_tutorial
        from ddim_tutorial import DDIMConfig, DiffusionModel, save_checkpoint, load_checkpoint
        from ddim_tutorial.data.datasets import load_dataset
        from ddim_tutorial.data.folders import load_image_folder

        assert keras.backend.backend() != "tensorflow"
        config = DDIMConfig.preset("smoke", dataset_repetitions=1)
        train_data = load_dataset(config, "train", data_dir={str(flowers12_dir)!r})
        model = DiffusionModel(config)
        model.adapt_normalizer(train_data)
        model.compile()
        history = model.fit(train_data, epochs=1, verbose=0, steps_per_epoch=4)
        assert np.isfinite(history.history["n_loss"][-1])
        images = keras.ops.convert_to_numpy(model.generate(2, 3, seed=0))
        assert images.shape == (2, 32, 32, 3) and np.all((images >= 0) & (images <= 1))
        save_checkpoint(model, {str(tmp_path / "ckpt")!r})
        again = keras.ops.convert_to_numpy(load_checkpoint({str(tmp_path / "ckpt")!r}).generate(2, 3, seed=0))
        np.testing.assert_allclose(images, again, atol=1e-5)
        assert "tensorflow" not in sys.modules, "something imported tensorflow"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")
