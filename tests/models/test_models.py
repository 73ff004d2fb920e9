"""Model registry, the seed CNN's architecture, precision choice and safe loading."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_lib.errors import ModelFileError
from fer_lib.models.registry import build_model, model_names
from fer_lib.models.saving import load_model
from fer_lib.training.precision import precision_policy, resolve_precision


def test_seed_cnn_matches_the_original_architecture():
    model = build_model("seed_cnn")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [c.filters for c in convs] == [75, 125, 256]
    assert [p.output.shape[1:] for p in pools] == [(24, 24, 75), (12, 12, 125), (6, 6, 256)]
    assert [d.units for d in dense] == [260, 128, 64, 32, 7]
    assert dense[-1].activation.__name__ == "softmax"
    assert any(isinstance(layer, keras.layers.RandomFlip) for layer in model.layers)
    # conv 750 + 84,500 + 288,256; dense 2,396,420 + 33,408 + 8,256 + 2,080 + 231 (hand-computed)
    assert model.count_params() == 2_813_901
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)


def test_registry_rejects_unknown_names():
    assert "seed_cnn" in model_names()
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model("nope")


def test_augmentation_is_identity_at_inference():
    from fer_lib.models.augmentation import AugmentConfig

    # fer_cnn flips, shifts, rotates and zooms; the same weights without those layers must agree at inference.
    model = build_model("fer_cnn", seed=1)
    bare = build_model("fer_cnn", augment=AugmentConfig(flip=False), seed=1)
    assert len(bare.layers) < len(model.layers)
    bare.set_weights(model.get_weights())
    batch = np.random.default_rng(0).integers(0, 255, (4, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(batch, verbose=0), bare.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)


def test_residual_fer_cnn_adds_a_projected_shortcut_before_each_stages_last_relu():
    widths = (8, 16, 24, 32)
    plain = build_model("fer_cnn", widths=widths, dense_units=16, seed=1)
    residual = build_model("fer_cnn", widths=widths, dense_units=16, residual=True, seed=1)
    adds = [layer for layer in residual.layers if isinstance(layer, keras.layers.Add)]
    assert [layer.name for layer in adds] == [f"s{stage}_add" for stage in (1, 2, 3, 4)]
    # 1x1 projections (in x out) plus their batch norms (4 x out): 1*8 + 8*16 + 16*24 + 24*32, 4*80.
    assert residual.count_params() - plain.count_params() == 1288 + 320

    # With the projections' batch norms zeroed the shortcut adds nothing: the residual model then
    # computes the plain one, so the shortcut enters after the second batch norm, before its relu.
    for layer in plain.layers:
        if layer.weights:
            residual.get_layer(layer.name).set_weights(layer.get_weights())
    for stage in (1, 2, 3, 4):
        bn = residual.get_layer(f"s{stage}_proj_bn")
        bn.set_weights([np.zeros_like(w) if i < 2 else w for i, w in enumerate(bn.get_weights())])
    batch = np.random.default_rng(0).integers(0, 255, (4, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(residual.predict(batch, verbose=0), plain.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)
    bn = residual.get_layer("s2_proj_bn")
    bn.set_weights([np.ones_like(w) if i < 2 else w for i, w in enumerate(bn.get_weights())])
    assert not np.allclose(residual.predict(batch, verbose=0), plain.predict(batch, verbose=0), atol=1e-4)


def test_fer_cnn_flatten_head_keeps_the_last_feature_map_in_place():
    from fer_lib.models.augmentation import AugmentConfig

    crop = AugmentConfig(flip=True, crop=40)
    average = build_model("fer_cnn", augment=crop, seed=1)
    flat = build_model("fer_cnn", augment=crop, head="flatten", seed=1)
    # 40x40 crops leave a 2x2x256 map after four poolings: 1,024 inputs to the dense layer instead of 256.
    assert flat.get_layer("dense1").kernel.shape == (2 * 2 * 256, 256)
    assert average.get_layer("dense1").kernel.shape == (256, 256)
    assert flat.count_params() - average.count_params() == 3 * 256 * 256
    with pytest.raises(ValueError, match="unknown head 'max'; choose one of average, flatten"):
        build_model("fer_cnn", head="max")


@pytest.mark.slow
def test_training_crop_sees_central_crops_in_training_and_at_inference(tmp_path):
    from fer_lib.evaluation.prediction import model_crop_size, predict_probabilities
    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.models.layers import TrainingCrop
    from fer_lib.models.saving import save_model

    faces = np.arange(2 * 48 * 48, dtype="float32").reshape(2, 48, 48, 1)
    crop = TrainingCrop(40)
    np.testing.assert_array_equal(crop(faces, training=True), faces[:, 4:44, 4:44])
    np.testing.assert_array_equal(crop(faces), faces[:, 4:44, 4:44])
    with pytest.raises(ValueError, match="crop size 50 is larger than the 48x48 images"):
        TrainingCrop(50)(faces, training=True)
    with pytest.raises(ValueError, match="positive number of pixels, got 0"):
        TrainingCrop(0)

    # A fer_cnn with the crop keeps 48x48 inputs, trains, and saves and loads with safe mode.
    model = build_model("fer_cnn", augment=AugmentConfig(flip=True, shift=0.1, crop=40), seed=1)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    labels = keras.utils.to_categorical(np.arange(8) % 7, 7)
    batch = np.random.default_rng(0).integers(0, 255, (8, 48, 48, 1)).astype("float32")
    assert np.isfinite(model.fit(batch, labels, epochs=1, verbose=0).history["loss"][0])
    save_model(model, tmp_path / "crop.keras")
    loaded = load_model(tmp_path / "crop.keras")
    assert loaded.get_layer("aug_crop").size == 40 and model_crop_size(loaded) == 40
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)
    # At inference only the central crop counts: a different border changes nothing.
    reframed = batch.copy()
    reframed[:, :4] = 0
    reframed[:, :, 44:] = 255
    np.testing.assert_allclose(loaded.predict(reframed, verbose=0), loaded.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)
    # Ten-crop on it averages the five 40x40 crops and their mirrors.
    faces = batch[..., 0].astype(np.uint8)
    crops = [faces[:, top:top + 40, left:left + 40] for top, left in [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]]
    after_crop = loaded.layers[loaded.layers.index(loaded.get_layer("aug_crop")) + 1:]
    bare = keras.Sequential([keras.Input((40, 40, 1))] + after_crop)  # the same weights on 40x40 inputs in [0, 1]
    expected = np.mean([bare.predict(v[..., None].astype("float32") / 255.0, verbose=0)
                        for c in crops for v in (c, c[:, :, ::-1])], axis=0)
    np.testing.assert_allclose(predict_probabilities(loaded, faces, tta="tencrop"), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_ten_crop_finds_the_crop_in_ensembles_and_rebalanced_models():
    from fer_lib.errors import FerError
    from fer_lib.evaluation.prediction import model_crop_size, predict_probabilities
    from fer_lib.evaluation.rebalance import with_prior_correction
    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.models.ensemble import build_ensemble

    faces = np.random.default_rng(3).integers(0, 256, (6, 48, 48)).astype(np.uint8)
    crop40 = build_model("fer_cnn", augment=AugmentConfig(crop=40), seed=1)
    crop36 = build_model("fer_cnn", augment=AugmentConfig(crop=36), seed=2)
    plain = build_model("fer_cnn", seed=3)
    mixed = build_ensemble([plain, crop40])
    assert model_crop_size(plain) is None and model_crop_size(mixed) == 40
    assert model_crop_size(with_prior_correction(crop40, np.full(7, 1 / 7), 0.5)) == 40
    # An ensemble's ten-crop gives each member its own ten crops: the crop model its 40-pixel crops,
    # the whole-face model its resized ones.
    own = (predict_probabilities(plain, faces, tta="tencrop") + predict_probabilities(crop40, faces, tta="tencrop")) / 2
    np.testing.assert_allclose(predict_probabilities(mixed, faces, tta="tencrop"), own, rtol=1e-4, atol=1e-5)
    assert predict_probabilities(build_ensemble([crop36, crop40]), faces, tta="tencrop").shape == (6, 7)
    # Behind one prior correction the members cannot get their own crops, and two crop sizes share none.
    joined = with_prior_correction(build_ensemble([crop36, crop40]), np.full(7, 1 / 7), 0.5)
    with pytest.raises(FerError, match=r"central crops of different sizes \(36, 40 pixels\)"):
        predict_probabilities(joined, faces, tta="tencrop")


def test_precision_choice():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("auto") in ("float32", "bfloat16")
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8")
    # precision_policy restores the previous global policy, also when the block fails.
    with pytest.raises(RuntimeError), precision_policy("bfloat16") as used:
        assert used == "bfloat16" and keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"


def test_save_and_safe_load_round_trip(tmp_path):
    model = build_model("seed_cnn")
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    batch = np.zeros((1, 48, 48, 1), "float32")
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-5)


def test_load_refuses_missing_corrupt_wrong_format_and_lambda(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "weights.h5").write_bytes(b"junk")
    with pytest.raises(ModelFileError, match="only .keras"):
        load_model(tmp_path / "weights.h5")
    (tmp_path / "corrupt.keras").write_bytes(b"this is not a zip file")
    with pytest.raises(ModelFileError, match="corrupt|not a loadable"):
        load_model(tmp_path / "corrupt.keras")
    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(keras.layers.Lambda(lambda t: t * 2)(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(ModelFileError, match="Lambda"):
        load_model(tmp_path / "lambda.keras")
