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


GEOMETRY = dict(flip=False, shift=0.1, rotation_deg=10.0, zoom=0.15, scale_jitter=0.1)


def augmented(config: AugmentConfig, faces: np.ndarray, seed: int = 3) -> np.ndarray:
    out = faces
    for layer in augmentation_layers(config, seed=seed):
        out = layer(out, training=True)
    return keras.ops.convert_to_numpy(out)


def blob_faces(count: int) -> np.ndarray:
    """A bright blob off the centre of each face: where it lands shows the transform."""
    y, x = np.mgrid[0:48, 0:48]
    blob = np.exp(-((x - 30.0) ** 2 + (y - 18.0) ** 2) / (2 * 3.0 ** 2)).astype(np.float32)
    return np.repeat(blob[None, :, :, None], count, axis=0)


def centroids(images: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[0:48, 0:48]
    weights = images[..., 0] / images[..., 0].sum(axis=(1, 2), keepdims=True)
    return np.stack([(weights * x).sum(axis=(1, 2)), (weights * y).sum(axis=(1, 2))], axis=1)


def test_single_affine_is_one_layer_and_only_with_geometric_transforms():
    names = [layer.name for layer in augmentation_layers(AugmentConfig(**GEOMETRY, erasing=0.5, crop=40, affine=True))]
    assert names == ["aug_affine", "aug_crop", "aug_erasing"]
    assert [layer.name for layer in augmentation_layers(AugmentConfig(flip=True, affine=True))] == ["aug_flip"]
    assert "aug_affine" not in [layer.name for layer in augmentation_layers(AugmentConfig(**GEOMETRY))]


def test_single_affine_moves_faces_as_the_separate_layers_do():
    faces = blob_faces(3000)
    separate = centroids(augmented(AugmentConfig(**GEOMETRY), faces))
    single = centroids(augmented(AugmentConfig(**GEOMETRY, affine=True), faces))
    # The same transforms drawn from the same ranges: the blob lands in the same places as often.
    np.testing.assert_allclose(single.mean(axis=0), separate.mean(axis=0), atol=0.3)
    np.testing.assert_allclose(single.std(axis=0), separate.std(axis=0), rtol=0.08)
    for quantile in (0.01, 0.5, 0.99):
        np.testing.assert_allclose(np.quantile(single, quantile, axis=0), np.quantile(separate, quantile, axis=0), atol=0.6)


def test_single_affine_blurs_less_than_four_resamplings():
    faces = np.zeros((500, 48, 48, 1), np.float32)
    faces[:, ::2] = 1.0  # stripes two pixels apart: each interpolation flattens them further
    contrast = {affine: augmented(AugmentConfig(**GEOMETRY, affine=affine), faces)[:, 12:36, 12:36].std()
                for affine in (False, True)}
    assert contrast[True] > 1.1 * contrast[False]


def test_each_map_keeps_its_transform_within_its_range():
    from fer_lib.models.layers import RandomAffine

    height = width = 48
    centre = np.array([(width - 1) / 2, (height - 1) / 2, 1.0])
    rotation = keras.ops.convert_to_numpy(RandomAffine(rotation_deg=10, seed=1).coordinate_maps(500, height, width))
    np.testing.assert_allclose(rotation @ centre, np.repeat(centre[None], 500, axis=0), atol=1e-4)  # about the centre
    angles = np.degrees(np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0]))
    assert np.abs(angles).max() <= 10 and np.abs(angles).max() > 9 and np.allclose(np.linalg.det(rotation[:, :2, :2]), 1, atol=1e-5)
    shift = keras.ops.convert_to_numpy(RandomAffine(shift=0.1, seed=1).coordinate_maps(500, height, width))
    assert np.abs(shift[:, :2, 2]).max() <= 4.8 and np.allclose(shift[:, :2, :2], np.eye(2))
    zoom = keras.ops.convert_to_numpy(RandomAffine(zoom=0.15, scale_jitter=0.1, seed=1).coordinate_maps(500, height, width))
    assert zoom[:, 0, 0].min() >= 0.85 * 0.9 - 1e-6 and zoom[:, 0, 0].max() <= 1.15 + 1e-6
    assert not np.allclose(zoom[:, 0, 0], zoom[:, 1, 1])  # the jitter's height and width are drawn apart


def test_single_affine_is_identity_at_inference_and_survives_saving(tmp_path):
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import load_model

    model = build_model("fer_cnn", augment=AugmentConfig(**GEOMETRY, crop=40, affine=True), seed=0)
    faces = np.random.default_rng(0).random((4, 48, 48, 1)).astype(np.float32) * 255
    model.save(tmp_path / "m.keras")
    restored = load_model(tmp_path / "m.keras")
    layer = restored.get_layer("aug_affine")
    assert (layer.rotation_deg, layer.zoom, layer.scale_jitter, layer.shift) == (10.0, 0.15, 0.1, 0.1)
    np.testing.assert_allclose(restored.predict_on_batch(faces), model.predict_on_batch(faces), atol=1e-5)


def drawn(config: AugmentConfig, faces: int = 2000) -> dict[str, np.ndarray]:
    """Each layer's first random number per face, as drawn for one batch."""
    batch = np.zeros((faces, 48, 48, 1), np.float32)
    values = {}
    for layer in augmentation_layers(config, seed=1234):
        transformation = layer.get_random_transformation(batch, training=True)
        key = {"aug_flip": "flips", "aug_rotation": "angle", "aug_zoom": "height_zoom", "aug_shift": "translations"}.get(layer.name)
        if key:
            values[layer.name] = keras.ops.convert_to_numpy(transformation[key]).reshape(faces, -1)[:, 0].astype(float)
    return values


def test_each_layer_draws_its_own_random_numbers():
    config = AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15)
    values = drawn(config)
    correlations = np.corrcoef(np.stack(list(values.values())))
    assert np.abs(correlations[np.triu_indices(len(values), 1)]).max() < 0.1
    # Seeded alike, as runs before the fix were, a face's rotation fixed its zoom and mostly its flip.
    shared = drawn(AugmentConfig(**{**config.to_dict(), "shared_seed": True}))
    assert np.corrcoef(shared["aug_rotation"], shared["aug_zoom"])[0, 1] > 0.99
    assert abs(np.corrcoef(shared["aug_rotation"], shared["aug_flip"])[0, 1]) > 0.5


def test_a_config_saved_before_the_fix_resumes_with_shared_seeds(tmp_path):
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.presets import preset_config

    config = preset_config("fer_cnn_crop_vgg")
    assert config.augment.shared_seed is False
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json").augment.shared_seed is False
    old = config.to_dict()
    del old["augment"]["shared_seed"]
    assert TrainConfig.from_dict(old).augment.shared_seed is True


def test_runs_with_neighbouring_seeds_share_no_layer_seed():
    config = AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15, erasing=0.5, crop=40)
    seeds = {seed: [layer.seed for layer in augmentation_layers(config, seed=seed) if getattr(layer, "seed", None) is not None]
             for seed in (1, 2, 3, 1234)}
    assert all(len(set(s)) == len(s) == 5 for s in seeds.values())  # flip, rotation, zoom, shift, erasing
    everything = [s for layer_seeds in seeds.values() for s in layer_seeds]
    assert len(set(everything)) == len(everything) and 1 not in seeds[1] and 2 not in seeds[1]
