"""The training augmentation's layers: what they do to a batch of faces."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_lib.models.augmentation import AugmentConfig, augmentation_layers


def erased_share(config: AugmentConfig, faces: int = 4000) -> float:
    """The share of faces whose output the erasing changed (plain grey faces: only erasing changes them)."""
    batch = np.full((faces, 48, 48, 1), 0.5, np.float32)
    out = batch
    for layer in augmentation_layers(config, seed=11):
        out = layer(out, training=True)
    out = keras.ops.convert_to_numpy(out)
    return float(np.mean(np.any(np.abs(out - 0.5) > 1e-3, axis=(1, 2, 3))))


@pytest.mark.parametrize("crop", [0, 40])
def test_erasing_erases_the_share_of_faces_it_says(crop):
    # Keras draws each face's probability from (0, p) for a plain float p: about 0.26 for 0.5.
    assert erased_share(AugmentConfig(flip=False, erasing=0.5, crop=crop)) == pytest.approx(0.5, abs=0.03)


def test_erasing_comes_after_the_crop_so_the_model_sees_every_rectangle():
    names = [layer.name for layer in augmentation_layers(AugmentConfig(shift=0.1, erasing=0.5, crop=40))]
    assert names.index("aug_crop") < names.index("aug_erasing") == len(names) - 1


def test_scale_jitter_only_zooms_in_with_height_and_width_drawn_apart():
    layers = augmentation_layers(AugmentConfig(flip=False, scale_jitter=0.1), seed=5)
    assert [layer.name for layer in layers] == ["aug_scale"]
    faces = np.zeros((200, 48, 48, 1), np.float32)
    faces[:, 16:32, 16:32] = 1.0  # a centred square: zooming in can only enlarge it
    out = keras.ops.convert_to_numpy(layers[0](faces, training=True))
    bright = (out > 0.5).sum(axis=(1, 2, 3))
    assert bright.min() >= 0.95 * 16 * 16 and bright.max() <= (16 / 0.9) ** 2 + 40
    rows = (out[:, :, 24, 0] > 0.5).sum(axis=1)
    cols = (out[:, 24, :, 0] > 0.5).sum(axis=1)
    assert np.mean(rows != cols) > 0.3  # the two sides grow by different amounts: the aspect varies
