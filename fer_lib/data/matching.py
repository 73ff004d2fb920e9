"""Finding the same faces in two copies of FER2013: the Kaggle JPEG folders and FER+'s PNGs.

The JPEGs are contrast-equalized per image and the PNGs are not, so faces are compared after
histogram-equalizing both sides, first on small thumbnails (a one-to-one assignment over all
pairs), then checked on the full images: a pair whose mean absolute difference stays large is
no match.
"""

from __future__ import annotations

import numpy as np

THUMBNAIL = 16  # pixels a side for the assignment
MAX_MATCH_MAE = 36.0  # grey levels after equalization: matches sit at a median 3, the worst near 35; strangers near 47


def equalized(images: np.ndarray) -> np.ndarray:
    """Each uint8 image histogram-equalized on its own, as float32 0-255."""
    flat = images.reshape(len(images), -1)
    ranks = np.argsort(np.argsort(flat, axis=1, kind="stable"), axis=1, kind="stable")
    return (ranks * (255.0 / max(flat.shape[1] - 1, 1))).astype(np.float32).reshape(images.shape)


def _thumbnails(images: np.ndarray) -> np.ndarray:
    n, height, width = images.shape
    step = height // THUMBNAIL
    return images[:, :step * THUMBNAIL, :step * THUMBNAIL].reshape(n, THUMBNAIL, step, THUMBNAIL, step).mean(axis=(2, 4)).reshape(n, -1)


def match_faces(images: np.ndarray, candidates: np.ndarray, max_mae: float = MAX_MATCH_MAE) -> np.ndarray:
    """For each image, the index of the same face among `candidates` (-1 where none is close enough).

    One-to-one: no candidate is matched twice (scipy's linear_sum_assignment on thumbnail distances).
    """
    from scipy.optimize import linear_sum_assignment

    a, b = equalized(images), equalized(candidates)
    ta, tb = _thumbnails(a), _thumbnails(b)
    distances = (ta ** 2).sum(1)[:, None] + (tb ** 2).sum(1)[None, :] - 2.0 * ta @ tb.T
    rows, columns = linear_sum_assignment(np.maximum(distances, 0.0))
    matched = np.full(len(images), -1, np.int64)
    mae = np.abs(a[rows] - b[columns]).reshape(len(rows), -1).mean(axis=1)
    good = mae <= max_mae
    matched[rows[good]] = columns[good]
    return matched
