"""memorization.py: nearest training images, the copy check against held-out photographs, duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from ddim_tutorial.data.synthetic import synthetic_flowers
from ddim_tutorial.metrics.memorization import COPY_FACTOR, copy_check, find_duplicates, nearest_neighbours


@pytest.fixture(scope="module")
def photographs(flowers12_dir):
    from ddim_tutorial.data.folders import load_image_folder

    return (load_image_folder(flowers12_dir, 32, "train"), load_image_folder(flowers12_dir, 32, "validation"))


def test_nearest_neighbours_finds_each_image_and_its_distance():
    references = synthetic_flowers(20, 16, seed=0)
    queries = references[[3, 7]] + 0.01  # a uniform shift of 0.01: RMS difference 0.01
    distances, indices = nearest_neighbours(queries, references, batch_size=1)
    assert indices.tolist() == [3, 7]
    np.testing.assert_allclose(distances, 0.01, atol=1e-6)


@pytest.mark.parametrize("queries, references, message", [
    (np.zeros((2, 8, 8, 3)), np.zeros((2, 4, 4, 3)), "compare images of the same size"),
    (np.full((2, 4), np.nan), np.zeros((2, 4)), "queries contains NaN"),
    (np.zeros((0, 4)), np.zeros((2, 4)), "non-empty array"),
])
def test_bad_inputs_are_named(queries, references, message):
    with pytest.raises(ValueError, match=message):
        nearest_neighbours(queries, references)


def test_a_model_that_returns_its_training_photographs_is_caught(photographs):
    train, held_out = photographs
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(train), 12, replace=False)
    samples = np.clip(train[chosen] + rng.normal(0.0, 0.01, train[chosen].shape), 0, 1)  # copies, slightly noisy
    report = copy_check(samples, train, held_out)
    assert sorted(report.copies.tolist()) == list(range(12)), report.summary()
    assert all(np.abs(train[report.sample_neighbours[i]] - train[chosen[i]]).mean() < 0.01 for i in range(12)), \
        "each copy's nearest training image is the photograph it copies (or its twin in the data)"
    assert report.closer_than_held_out == 1.0
    assert "12 of 12 samples are closer to a training image" in report.summary()


def test_new_images_like_the_data_pass(photographs):
    train, held_out = photographs
    samples, yardstick = held_out[::2], held_out[1::2]  # photographs the training set has never seen
    report = copy_check(samples, train, yardstick)
    assert len(report.copies) == 0, report.summary()
    assert 0.3 < report.closer_than_held_out < 0.7
    assert "no copies found" in report.summary()
    assert report.threshold == pytest.approx(COPY_FACTOR * np.percentile(report.held_out_distances, 5))


def test_flowers12_training_set_holds_near_identical_pairs_and_its_test_set_none(photographs):
    train, held_out = photographs
    pairs = find_duplicates(train, 0.04)
    # The data's README: 35 pairs of near-identical photographs in train/ (the gap after them is wide).
    assert 30 <= len(pairs) <= 40 and all(distance < 0.03 for _, _, distance in pairs)
    assert all(i < j for i, j, _ in pairs) and [d for *_, d in pairs] == sorted(d for *_, d in pairs)
    distances, _ = nearest_neighbours(held_out, train)
    assert distances.min() > 0.04, "the 23 test copies of training photographs were removed"


def test_find_duplicates_checks_its_threshold():
    with pytest.raises(ValueError, match="max_distance=0 is invalid"):
        find_duplicates(np.zeros((3, 4)), 0)
    points = np.array([[0.0, 0.0], [0.0, 0.001], [1.0, 1.0]])
    assert find_duplicates(points, 0.01) == [(0, 1, pytest.approx(0.001 / np.sqrt(2)))]
