"""Serving in float32 (fer_lib.models.serving): a model trained in mixed bfloat16 runs as a float32 copy at inference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_lib.cli import main
from fer_lib.errors import FerError
from fer_lib.evaluation.rebalance import with_prior_correction
from fer_lib.inference import photos
from fer_lib.inference.conversion import inference_model
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS
from fer_lib.models.augmentation import AugmentConfig
from fer_lib.models.ensemble import build_ensemble
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model, model_classes, save_model
from fer_lib.models.serving import float32_copy, is_float32, load_for_inference, serving_model
from fer_lib.models.stats import leaf_layers


def _compute_dtypes(model) -> set[str]:
    return {layer.compute_dtype for layer in leaf_layers(model) if not isinstance(layer, keras.layers.InputLayer)}


@pytest.fixture(scope="module")
def bf16_files(tmp_path_factory):
    """Models built in mixed bfloat16 and saved: a crop model with augmentation, and an 8-class ensemble of it
    with a plain float32 CNN, rebalanced and calibrated (a PriorCorrection layer)."""
    folder = tmp_path_factory.mktemp("bf16_models")
    augment = AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, crop=40, crops=10)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        crop = build_model("fer_cnn", widths=(8, 16), dense_units=16, augment=augment, seed=0)
        crop8 = build_model("fer_cnn", widths=(8, 16), dense_units=16, num_classes=8, seed=2)
    finally:
        keras.config.set_dtype_policy(previous)
    plain8 = build_model("cnn", conv_filters=(8,), dense_units=(8,), num_classes=8, seed=1)
    ensemble = build_ensemble([crop8, plain8])
    calibrated = with_prior_correction(ensemble, np.arange(1.0, 9.0), 0.5, 1.5, suffix="calibrated")
    return {"crop": save_model(crop, folder / "crop.keras"),
            "calibrated": save_model(calibrated, folder / "calibrated.keras", classes=FERPLUS_EMOTIONS)}


def _faces(count: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 48, 48, 1)).astype(np.float32)


@pytest.mark.parametrize("kind, classes", [("crop", EMOTIONS), ("calibrated", FERPLUS_EMOTIONS)])
def test_a_bf16_model_is_served_in_float32(kind, classes, bf16_files):
    trained = load_model(bf16_files[kind])  # what training and resuming load: the policy it was trained in
    assert "bfloat16" in _compute_dtypes(trained)
    served = load_for_inference(bf16_files[kind])
    assert _compute_dtypes(served) == {"float32"} and is_float32(served)
    assert model_classes(served) == classes
    # The copy keeps fer_lib's layers (fused batch norm included) and the weights.
    assert [type(layer) for layer in leaf_layers(served)] == [type(layer) for layer in leaf_layers(trained)]
    faces = _faces()
    np.testing.assert_allclose(served.predict(faces, verbose=0), inference_model(trained).predict(faces, verbose=0),
                               atol=1e-6)
    assert "bfloat16" in _compute_dtypes(load_for_inference(bf16_files[kind], precision="trained"))


def test_a_float32_model_is_served_as_it_is(model_path):
    model = load_model(model_path)
    assert float32_copy(model) is model and serving_model(model) is model


def test_the_copy_of_a_model_passed_in_is_kept_and_follows_its_weights(bf16_files):
    trained = load_model(bf16_files["crop"])
    first = serving_model(trained)
    assert first is not trained and serving_model(trained) is first
    head = trained.get_layer("emotion")
    head.set_weights([w * 2 for w in head.get_weights()])
    faces = _faces(8)
    np.testing.assert_allclose(serving_model(trained).predict(faces, verbose=0),
                               inference_model(trained).predict(faces, verbose=0), atol=1e-6)
    assert serving_model(trained, precision="trained") is trained


def test_an_unknown_precision_is_one_line(model_path):
    with pytest.raises(FerError, match="float32, trained"):
        load_for_inference(model_path, precision="bfloat16")


@pytest.mark.slow
def test_predict_expression_and_fer_evaluate_serve_float32_unless_asked(bf16_files, synthetic_root, tmp_path,
                                                                        monkeypatch, capsys):
    path = bf16_files["crop"]
    assert _compute_dtypes(photos.load_model_or_default(path)) == {"float32"}
    assert "bfloat16" in _compute_dtypes(photos.load_model_or_default(path, precision="trained"))
    face = np.full((48, 48), 128, np.uint8)
    scores = photos.predict_expression(face, model=path)[0]["scores"]
    expected = inference_model(load_model(path)).predict(face[None, ..., None].astype(np.float32), verbose=0)[0]
    np.testing.assert_allclose([scores[e] for e in EMOTIONS], expected, atol=1e-6)

    served = []
    import fer_lib.evaluation.votes as votes

    real = votes.split_metrics
    monkeypatch.setattr(votes, "split_metrics", lambda model, *a, **k: served.append(_compute_dtypes(model)) or real(model, *a, **k))
    for flags in ([], ["--precision", "trained"]):
        assert main(["evaluate", "--model", str(path), "--data", str(synthetic_root / "test"), *flags]) == 0
    assert served[0] == {"float32"} and "bfloat16" in served[1]
    capsys.readouterr()
