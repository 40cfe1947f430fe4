"""Figures of ddim_tutorial.teaching.plotting: right panels, right data, clear errors."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from ddim_tutorial.teaching import plotting

PNG_MAGIC = b"\x89PNG"


def image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images]


def test_to_pixels_clips_batches_and_checks_the_shape():
    import keras

    pixels = plotting.to_pixels(np.array([[[[-1.0, 0.5, 2.0]]]]))
    np.testing.assert_array_equal(pixels, [[[[0.0, 0.5, 1.0]]]])
    assert plotting.to_pixels(np.zeros((4, 4, 3))).shape == (1, 4, 4, 3)
    assert plotting.to_pixels(keras.ops.ones((2, 4, 4, 3))).shape == (2, 4, 4, 3)
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        plotting.to_pixels(np.zeros((4, 4)))


def test_image_grid_lays_out_rows_and_columns():
    images = np.random.default_rng(0).random((5, 8, 8, 3))
    fig = plotting.image_grid(images, 3, titles=list("abcde"), row_labels=["top", "bottom"], title="grid")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6 and len(image_axes(fig)) == 5
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    assert fig.axes[3].get_ylabel() == "bottom"
    np.testing.assert_allclose(fig.axes[4].images[0].get_array(), images[4])
    assert len(image_axes(plotting.image_grid(images))) == 5  # one row by default (up to 8)


def test_image_grid_errors():
    images = np.zeros((3, 4, 4, 3))
    with pytest.raises(ValueError, match="titles"):
        plotting.image_grid(images, titles=["only one"])
    with pytest.raises(ValueError, match="row_labels"):
        plotting.image_grid(images, 3, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="num_cols"):
        plotting.image_grid(images, 0)
    with pytest.raises(ValueError, match="no images"):
        plotting.image_grid(np.zeros((0, 4, 4, 3)))


def test_figure_to_png():
    assert plotting.figure_to_png(plotting.image_grid(np.zeros((1, 4, 4, 3)))).startswith(PNG_MAGIC)


def test_plot_schedules_draws_the_schedule_it_is_given():
    from keras import ops

    from ddim_tutorial.core.schedule import diffusion_schedule

    fig = plotting.plot_schedules(0.1, 0.9, compare_linear=False)
    circle_ax, rates_ax = fig.axes
    arc = circle_ax.lines[1]  # after the grey reference circle
    noise_rates, signal_rates = (ops.convert_to_numpy(r) for r in diffusion_schedule(np.linspace(0, 1, 201), 0.1, 0.9))
    np.testing.assert_allclose(arc.get_xdata(), noise_rates, atol=1e-6)
    np.testing.assert_allclose(arc.get_ydata(), signal_rates, atol=1e-6)
    assert signal_rates[0] == pytest.approx(0.9, abs=1e-6) and signal_rates[-1] == pytest.approx(0.1, abs=1e-6)
    with_linear = plotting.plot_schedules(0.1, 0.9)
    assert len(with_linear.axes[1].lines) == len(rates_ax.lines) + 2
    with pytest.raises(ValueError, match="min_signal_rate"):
        plotting.plot_schedules(0.9, 0.1)


def test_plot_noising_titles_show_time_and_snr():
    noisy = np.random.default_rng(0).random((2, 3, 8, 8, 3))
    fig = plotting.plot_noising(noisy, [0.0, 0.5, 1.0], [0.95, 0.6, 0.02], [0.31, 0.8, 0.9998])
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles[0].startswith("t=0.00") and "SNR 9.39" in titles[0]
    assert "dB" in titles[2] and len(image_axes(fig)) == 6
    with pytest.raises(ValueError, match="one column per diffusion time"):
        plotting.plot_noising(noisy, [0.0, 1.0], [0.9, 0.1], [0.4, 0.99])


def test_plot_embedding_similarity_is_one_on_the_diagonal():
    from ddim_tutorial.core.network import SinusoidalEmbedding

    fig = plotting.plot_embedding(SinusoidalEmbedding(16), num_points=64)
    similarity = np.asarray(fig.axes[0].images[0].get_array())
    assert similarity.shape == (64, 64)
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)
    assert similarity[0, -1] < 0.5  # variances 0 and 1 get clearly different embeddings
    assert len(fig.axes[1].lines) == 3


def fake_steps(count: int, size: int = 4) -> list:
    return [SimpleNamespace(step=i, diffusion_times=np.full((2, 1, 1, 1), 1.0 - i / count, dtype="float32"),
                            noisy_images=np.full((2, size, size, 3), i / count, dtype="float32"),
                            pred_images=np.full((2, size, size, 3), 1.0 - i / count, dtype="float32"),
                            pred_noises=None)
            for i in range(count)]


def test_plot_trajectory_shows_noisy_and_predicted_rows():
    fig = plotting.plot_trajectory(fake_steps(4), lambda images: images)
    assert len(image_axes(fig)) == 8
    assert fig.axes[0].get_title().startswith("step 1") and fig.axes[3].get_title().startswith("step 4")
    assert fig.axes[0].get_ylabel() == "noisy image" and fig.axes[4].get_ylabel() == "predicted image"
    np.testing.assert_allclose(fig.axes[4].images[0].get_array(), 1.0)


def test_plot_trajectory_subsamples_long_runs_keeping_first_and_last():
    fig = plotting.plot_trajectory(fake_steps(40), lambda images: images, max_columns=5)
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes[:5]]
    assert titles[0] == "step 1" and titles[-1] == "step 40" and len(image_axes(fig)) == 10
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_trajectory([], lambda images: images)


def test_plot_sampler_comparison_shows_each_sample_beside_its_amplified_difference():
    reference = np.full((4, 6, 6, 3), 0.5, dtype="float32")
    close, far = reference + 0.05, reference - 0.2
    fig = plotting.plot_sampler_comparison(reference, [close, far], ["close", "far"], num_images=2, gain=4)
    assert len(image_axes(fig)) == 3 * 4  # three rows (the reference first), two images and two differences
    assert [fig.axes[4 * row].get_ylabel() for row in range(3)] == ["reference", "close", "far"]
    assert fig.axes[2].get_title() == "difference x4"
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), 0.0)  # the reference against itself
    np.testing.assert_allclose(fig.axes[6].images[0].get_array(), 0.2, rtol=1e-5)  # 4 * 0.05
    np.testing.assert_allclose(fig.axes[10].images[0].get_array(), 0.8, rtol=1e-5)  # 4 * 0.2
    with pytest.raises(ValueError, match="one label per set"):
        plotting.plot_sampler_comparison(reference, [close], ["a", "b"])
    with pytest.raises(ValueError, match="like the reference"):
        plotting.plot_sampler_comparison(reference, [reference[:, :4]], ["cropped"])


def test_read_history_from_history_dict_and_csv(tmp_path):
    values = {"n_loss": [0.5, 0.3], "val_n_loss": [0.6, 0.4]}
    assert plotting.read_history(SimpleNamespace(history=values)) == values
    assert plotting.read_history(values) == values
    path = tmp_path / "history.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "n_loss", "val_n_loss"])
        writer.writerows([[0, 0.5, 0.6], [1, 0.3, ""]])
    read = plotting.read_history(path)
    assert read["n_loss"] == [0.5, 0.3] and read["val_n_loss"][0] == 0.6 and np.isnan(read["val_n_loss"][1])
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,n_loss\n")
    with pytest.raises(ValueError, match="no epochs"):
        plotting.read_history(empty)
    with pytest.raises(ValueError, match="History"):
        plotting.read_history(42)


def test_plot_history_one_panel_per_metric_with_validation_dashed():
    fig = plotting.plot_history({"n_loss": [0.5, 0.3, 0.2], "val_n_loss": [0.6, 0.4, 0.3], "i_loss": [2, 1, 0.9]})
    assert [ax.get_title() for ax in fig.axes] == ["noise loss", "image loss"]
    training, validation = fig.axes[0].lines
    assert training.get_linestyle() == "-" and validation.get_linestyle() == "--"
    np.testing.assert_array_equal(validation.get_ydata(), [0.6, 0.4, 0.3])
    with pytest.raises(ValueError, match="none of the metrics"):
        plotting.plot_history({"loss": [1.0]})


def test_plot_kid_kernels_share_one_colour_scale():
    rng = np.random.default_rng(0)
    fig = plotting.plot_kid_kernels(rng.random((4, 4)), rng.random((4, 4)) + 1, rng.random((4, 4)))
    limits = {ax.images[0].get_clim() for ax in image_axes(fig)}
    assert len(image_axes(fig)) == 3 and len(limits) == 1


def test_figures_display_as_png_in_ipython():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        plotting._enable_inline_display()
        data, _ = shell.display_formatter.format(plotting.image_grid(np.zeros((1, 4, 4, 3))))
        assert data["image/png"].startswith(PNG_MAGIC)
    finally:
        InteractiveShell.clear_instance()
