"""Post-hoc prior correction: the layer, the choice of strength, the saved model and `fer rebalance`."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from fer_lib.cli import main
from fer_lib.errors import FerError
from fer_lib.evaluation.prediction import predict_probabilities
from fer_lib.evaluation.rebalance import choose_strength, corrected, prior_correction_of, rebalance_file, training_priors
from fer_lib.labels import INPUT_SHAPE
from fer_lib.models.layers import PriorCorrection
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model, save_model

CENTRES = np.arange(1, 8) / 8.0  # class c's faces have mean brightness CENTRES[c] (0-1)
PRIORS = np.array([0.14, 0.015, 0.14, 0.25, 0.17, 0.11, 0.175])  # FER2013-like: disgust rare, happy common


def brightness_model(disgust_bias: float = 0.0) -> keras.Model:
    """Classifies faces by mean brightness (nearest class centre); a negative bias under-predicts disgust."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    # float32 whatever the global policy: bfloat16 would blur brightness differences of 0.01.
    x = keras.layers.Rescaling(1.0 / 255.0, dtype="float32")(inputs)
    x = keras.layers.GlobalAveragePooling2D(dtype="float32")(x)
    dense = keras.layers.Dense(7, activation="softmax", dtype="float32", name="emotion")
    outputs = dense(x)
    sharpness = 200.0
    bias = -sharpness * CENTRES**2 / 2
    bias[1] += disgust_bias
    dense.set_weights([sharpness * CENTRES[None, :].astype(np.float32), bias.astype(np.float32)])
    return keras.Model(inputs, outputs)


def faces_of(labels: np.ndarray, seed: int) -> np.ndarray:
    """Flat faces whose brightness is their class centre, off by up to 0.05 (half the gap is 0.0625)."""
    offsets = np.random.default_rng(seed).uniform(-0.05, 0.05, len(labels))
    values = np.rint((CENTRES[labels] + offsets) * 255).astype(np.uint8)
    return np.broadcast_to(values[:, None, None], (len(labels), 48, 48)).copy()


def dataset_with_priors(per_face: int = 400, seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    train_labels = rng.choice(7, size=per_face * 7, p=PRIORS)
    val_labels = np.repeat(np.arange(7), 30)  # every class, disgust included, for a stable macro-F1
    return SimpleNamespace(train=SimpleNamespace(labels=train_labels),
                           val=SimpleNamespace(images=faces_of(val_labels, seed + 1), labels=val_labels))


def test_layer_divides_by_the_prior_and_renormalises():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(7), size=32).astype(np.float32)
    for strength in (0.0, 0.4, 1.0):
        layer = PriorCorrection(PRIORS, strength)
        out = keras.ops.convert_to_numpy(layer(probabilities))
        np.testing.assert_allclose(out, corrected(probabilities, PRIORS / PRIORS.sum(), strength), atol=1e-5)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(PriorCorrection(PRIORS, 0.0)(probabilities)), probabilities, atol=1e-5)
    full = keras.ops.convert_to_numpy(PriorCorrection(PRIORS, 1.0)(np.tile(PRIORS, (1, 1)).astype(np.float32)))
    np.testing.assert_allclose(full, np.full((1, 7), 1 / 7), atol=1e-5)  # the prior itself becomes uniform
    with pytest.raises(ValueError, match="positive class frequencies"):
        PriorCorrection([0.5, 0.0, 0.5], 0.5)


def test_strength_is_chosen_by_validation_macro_f1():
    dataset = dataset_with_priors()
    faces, labels = dataset.val.images, dataset.val.labels
    biased = predict_probabilities(brightness_model(disgust_bias=-3.0), faces)
    best, scores = choose_strength([biased], labels, PRIORS)
    assert best > 0
    assert scores[best][1] > scores[0.0][1] + 0.05  # disgust faces found again
    assert scores[1.0][1] <= scores[best][1]
    unbiased = predict_probabilities(brightness_model(), faces)
    best, scores = choose_strength([unbiased], labels, PRIORS)
    assert scores[0.0] == (1.0, 1.0) and best == 0.0  # a perfect model is left alone (ties go to the smaller strength)


def test_training_priors_need_every_class():
    np.testing.assert_allclose(training_priors(np.array([0, 1, 1, 2]), 3), [0.25, 0.5, 0.25])
    with pytest.raises(FerError, match=r"no faces of class\(es\) 1,"):
        training_priors(np.array([0, 0, 2]), 3)
    with pytest.raises(FerError, match=r"no faces of class\(es\) disgust, fear, so"):
        training_priors(np.array([0, 3, 4, 5, 6]), 7)


def test_rebalanced_model_saves_loads_and_predicts_the_correction(tmp_path):
    model_path = save_model(brightness_model(disgust_bias=-3.0), tmp_path / "biased.keras")
    dataset = dataset_with_priors()
    out, result = rebalance_file(model_path, dataset, tmp_path / "balanced.keras")
    assert out == tmp_path / "balanced.keras" and result.strength > 0
    assert "macro-F1" in result.describe() and "210 validation faces" in result.describe()
    rebalanced = load_model(out)  # safe mode: the registered layer loads, nothing else is needed
    assert prior_correction_of(rebalanced).strength == result.strength
    base = predict_probabilities(load_model(model_path), dataset.val.images)
    np.testing.assert_allclose(predict_probabilities(rebalanced, dataset.val.images),
                               corrected(base, np.asarray(result.priors), result.strength), atol=1e-5)
    with pytest.raises(FerError, match="already rebalanced"):
        rebalance_file(out, dataset, tmp_path / "twice.keras")


def test_nothing_is_saved_when_no_strength_helps(tmp_path):
    model_path = save_model(brightness_model(), tmp_path / "fair.keras")
    out, result = rebalance_file(model_path, dataset_with_priors(), tmp_path / "balanced.keras")
    assert out is None and result.strength == 0.0
    assert not (tmp_path / "balanced.keras").exists()


def test_rebalance_mistakes_keep_the_users_files(tmp_path):
    model_path = save_model(brightness_model(disgust_bias=-3.0), tmp_path / "m.keras")
    dataset = dataset_with_priors()
    with pytest.raises(FerError, match="is the model being rebalanced"):
        rebalance_file(model_path, dataset, model_path, overwrite=True)
    with pytest.raises(FerError, match="ending in .keras"):
        rebalance_file(model_path, dataset, tmp_path / "m.h5")
    with pytest.raises(FerError, match="out of range"):
        rebalance_file(model_path, dataset, tmp_path / "r.keras", strength=1.5)
    (tmp_path / "taken.keras").write_bytes(b"the user's file")
    with pytest.raises(FerError, match="already exists; pass --overwrite"):
        rebalance_file(model_path, dataset, tmp_path / "taken.keras")
    assert (tmp_path / "taken.keras").read_bytes() == b"the user's file"


def test_fer_rebalance_command_on_generated_data(synthetic_root, tmp_path, capsys):
    model_path = save_model(build_model("seed_cnn", seed=0), tmp_path / "m.keras")
    assert main(["rebalance", "--model", str(model_path), "--data", str(synthetic_root), "--strength", "0.5"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "m_rebalanced.keras"
    assert "strength 0.5 (given, not fitted)" in printed and str(out) in printed
    assert prior_correction_of(load_model(out)).strength == 0.5
    assert main(["rebalance", "--model", str(model_path), "--data", str(synthetic_root), "--strength", "0.5"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["rebalance", "--model", str(tmp_path / "missing.keras"), "--data", str(synthetic_root),
                 "--out", str(tmp_path / "r.keras")]) == 2
    assert "missing.keras: model file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_calibrate_fits_a_temperature_that_changes_no_prediction_and_lowers_the_log_loss(synthetic_root, tmp_path, capsys):
    import json

    from fer_lib.data.dataset import load_dataset

    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic_root), "--model", "fer_cnn", "--epochs", "2", "--out", str(run),
                 "--label-smoothing", "0.3", "--no-eval"]) == 0  # smoothing flattens its probabilities
    assert main(["calibrate", "--model", str(run / "model.keras"), "--data", str(synthetic_root)]) == 0
    printed = capsys.readouterr().out
    assert "Temperature: " in printed
    before, after = (float(x) for x in printed.split("NLL (log loss)")[1].splitlines()[0].split(" -> "))
    assert after <= before + 0.01  # measured on the test split, which the fit did not see
    dataset = load_dataset(synthetic_root, seed=json.loads((run / "config.json").read_text())["seed"])
    original = predict_probabilities(load_model(run / "model.keras"), dataset.test.images)
    calibrated = predict_probabilities(load_model(run / "model_calibrated.keras"), dataset.test.images)
    assert (original.argmax(axis=1) == calibrated.argmax(axis=1)).all()
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-5)
    # A rebalanced model keeps its strength when calibrated; calibrating it again needs --overwrite.
    assert main(["rebalance", "--model", str(run / "model.keras"), "--strength", "0.5", "--data", str(synthetic_root)]) == 0
    assert main(["calibrate", "--model", str(run / "model_rebalanced.keras"), "--data", str(synthetic_root),
                 "--seed", "1234"]) == 0
    layer = load_model(run / "model_rebalanced_calibrated.keras").layers[-1]
    assert layer.strength == 0.5 and layer.temperature > 0
    assert main(["calibrate", "--model", str(run / "model_rebalanced.keras"), "--data", str(synthetic_root),
                 "--seed", "1234"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_fit_temperature_finds_the_temperature_that_made_the_probabilities():
    from fer_lib.evaluation.calibration import fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 7)) * 2
    true_probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(7, p=p) for p in true_probabilities])
    overconfident = corrected(true_probabilities, [1 / 7] * 7, 0.0, temperature=0.5)  # logits doubled
    assert fit_temperature([overconfident], labels, [1 / 7] * 7) == pytest.approx(2.0, rel=0.1)
