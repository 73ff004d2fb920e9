"""Looking at a dataset before training (fer_lib.data.exploration)."""

from __future__ import annotations

import numpy as np

from fer_lib.data.dataset import FerDataset, Split
from fer_lib.data.exploration import imbalance_summary


def dataset_with(counts: list[int]) -> FerDataset:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    images = np.zeros((len(labels), 48, 48), np.uint8)
    empty = Split("val", images[:0], labels[:0])
    return FerDataset(train=Split("train", images, labels), val=empty, test=Split("test", images[:0], labels[:0]),
                      source="generated", data_format="image-folders", protocol="generated")


def test_balanced_classes_are_called_balanced_and_imbalanced_ones_get_their_ratio():
    assert imbalance_summary(dataset_with([108] * 7)) == (
        "The classes are balanced: 108 training images each.")
    assert imbalance_summary(dataset_with([100, 110, 100, 120, 100, 100, 100])) == (
        "The classes are balanced: from 100 (angry) to 120 (happy) training images each.")
    text = imbalance_summary(dataset_with([400, 40, 400, 800, 400, 400, 400]))
    assert text.startswith("The classes are imbalanced: disgust has 40 training images") and "20.0x fewer than happy" in text
