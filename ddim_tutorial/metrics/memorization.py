"""Does the model copy its training photographs? Nearest neighbours, measured against held-out photographs.

A generator trained long on few images may reproduce some of them. The check that Carlini et
al. (2023) and Somepalli et al. (2023) ran on large models fits in a few lines: for every
generated image find its nearest training image, and compare that distance with how far
*held-out* photographs, which the model never saw, lie from the same training set. A sample
much closer to a training photograph than any held-out photograph is, is a copy (or close to
one); samples at the held-out photographs' distances are new images.

Distances are root-mean-square differences of pixels in [0, 1] (or of any feature vectors,
e.g. InceptionV3's from :func:`ddim_tutorial.metrics.inception.extract_features`). The same search
inside one set finds its duplicates (:func:`find_duplicates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["nearest_neighbours", "find_duplicates", "CopyReport", "copy_check", "COPY_FACTOR", "HELD_OUT_PERCENTILE"]

#: A sample counts as a copy when it is closer to a training image than this fraction of the
#: distance that all but 5 % of the held-out photographs keep from the training set (a
#: percentile rather than the minimum, so that a stray duplicate in the held-out set does not
#: switch the check off).
COPY_FACTOR = 0.5
HELD_OUT_PERCENTILE = 5


def _as_rows(images: Any, name: str) -> np.ndarray:
    array = np.asarray(images, dtype="float64")
    if array.ndim < 2 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty array of images or feature vectors [N, ...]; "
                         f"got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf values.")
    return array.reshape(len(array), -1)


def _rms_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """RMS differences of every query row to every reference row, ``[len(queries), len(references)]``."""
    squared = ((queries**2).sum(1)[:, None] + (references**2).sum(1)[None, :] - 2.0 * queries @ references.T)
    return np.sqrt(np.maximum(squared, 0.0) / queries.shape[1])


def nearest_neighbours(queries: Any, references: Any, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query, ``(distance, index)`` of its nearest reference: RMS difference, row index."""
    queries, references = _as_rows(queries, "queries"), _as_rows(references, "references")
    if queries.shape[1] != references.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} numbers each but references {references.shape[1]}: "
                         "compare images of the same size (or features of the same encoder).")
    distances, indices = [], []
    for start in range(0, len(queries), batch_size):
        block = _rms_distances(queries[start:start + batch_size], references)
        indices.append(block.argmin(1))
        distances.append(block[np.arange(len(block)), indices[-1]])
    return np.concatenate(distances), np.concatenate(indices)


def find_duplicates(images: Any, max_distance: float) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, distance)``, ``i < j``, of images in one set closer than ``max_distance``, closest first."""
    if not isinstance(max_distance, (int, float)) or isinstance(max_distance, bool) or max_distance <= 0:
        raise ValueError(f"max_distance={max_distance!r} is invalid: use a positive RMS difference, e.g. 0.04.")
    rows = _as_rows(images, "images")
    distances = _rms_distances(rows, rows)
    first, second = np.nonzero(np.triu(distances < max_distance, k=1))
    return sorted(((int(i), int(j), float(distances[i, j])) for i, j in zip(first, second, strict=True)),
                  key=lambda pair: pair[2])


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_check` found: each sample's nearest training image, and the yardstick."""

    sample_distances: np.ndarray  # each sample's distance to its nearest training image
    sample_neighbours: np.ndarray  # that training image's index
    held_out_distances: np.ndarray  # each held-out photograph's distance to its nearest training image
    threshold: float  # COPY_FACTOR x the 5th percentile of the held-out distances

    @property
    def copies(self) -> np.ndarray:
        """Indices of the samples closer to a training image than ``threshold``, closest first."""
        flagged = np.flatnonzero(self.sample_distances < self.threshold)
        return flagged[np.argsort(self.sample_distances[flagged])]

    @property
    def closer_than_held_out(self) -> float:
        """The share of samples closer to the training set than the median held-out photograph."""
        return float(np.mean(self.sample_distances < np.median(self.held_out_distances)))

    def summary(self) -> str:
        """One paragraph a student can read: the distances, and the verdict."""
        samples, held_out = self.sample_distances, self.held_out_distances
        lines = [f"nearest training image, RMS difference: samples median {np.median(samples):.3f} "
                 f"(min {samples.min():.3f}); held-out photographs median {np.median(held_out):.3f} "
                 f"(min {held_out.min():.3f})",
                 f"{self.closer_than_held_out:.0%} of the samples lie closer to the training set than the median "
                 "held-out photograph (about 50 % for a model that makes new images like the data)"]
        copies = self.copies
        if len(copies):
            lines.append(f"{len(copies)} of {len(samples)} samples are closer to a training image than "
                         f"{self.threshold:.3f} (half of what 95 % of the held-out photographs keep): copies, "
                         "or nearly")
        else:
            lines.append(f"no sample is closer to a training image than {self.threshold:.3f} (half of what 95 % "
                         "of the held-out photographs keep): no copies found")
        return "\n".join(lines)


def copy_check(samples: Any, training_images: Any, held_out_images: Any) -> CopyReport:
    """Compare the samples' nearest-training-image distances with the held-out photographs'.

    All three are arrays of images of one size in [0, 1] (or feature vectors of one encoder).
    """
    sample_distances, sample_neighbours = nearest_neighbours(samples, training_images)
    held_out_distances, _ = nearest_neighbours(held_out_images, training_images)
    return CopyReport(sample_distances, sample_neighbours, held_out_distances,
                      COPY_FACTOR * float(np.percentile(held_out_distances, HELD_OUT_PERCENTILE)))
