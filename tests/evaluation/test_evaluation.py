"""Metrics against values computed by hand on a tiny example."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fer_lib.evaluation.metrics import compute_metrics, format_metrics, write_metrics

LABELS = np.array([0, 0, 1, 2])
PROBABILITIES = np.array([[0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
CLASSES = ("a", "b", "c")


def test_metrics_match_hand_computed_values():
    m = compute_metrics(LABELS, PROBABILITIES, CLASSES)
    # predictions 0,1,1,0 against 0,0,1,2
    assert m["top1_accuracy"] == pytest.approx(0.5)
    assert m["top2_accuracy"] == pytest.approx(0.75)  # only the last sample misses its top-2
    assert m["loss"] == pytest.approx(-(math.log(0.6) + math.log(0.3) + math.log(0.7) + math.log(0.1)) / 4, rel=1e-5)
    assert m["precision_macro"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["f1_macro"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["precision_weighted"] == pytest.approx((2 * 0.5 + 0.5) / 4)
    assert m["recall_weighted"] == pytest.approx((2 * 0.5 + 1) / 4)
    assert m["f1_weighted"] == pytest.approx((2 * 0.5 + 2 / 3) / 4)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m["per_class"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["classes"] == list(CLASSES)


def test_metrics_file_is_json_with_context(tmp_path):
    probabilities = np.eye(7)[[0, 1, 2, 3, 4, 5, 6, 3]]
    metrics = compute_metrics(np.array([0, 1, 2, 3, 4, 5, 6, 4]), probabilities)
    write_metrics(metrics, tmp_path / "out" / "metrics.json", split="test")
    stored = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert stored["split"] == "test" and stored["top1_accuracy"] == pytest.approx(7 / 8)
    for key in ("top1_accuracy", "top2_accuracy", "loss", "precision_macro", "recall_macro", "f1_macro",
                "precision_weighted", "recall_weighted", "f1_weighted", "per_class", "confusion_matrix", "classes"):
        assert key in stored
    assert "original" in format_metrics(metrics)


@pytest.mark.slow
def test_tta_views_and_averaging():
    from fer_lib.evaluation.prediction import predict_probabilities, tta_views
    from fer_lib.models.registry import build_model

    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48)).astype(np.uint8)
    flip = tta_views(faces, "flip")
    assert len(flip) == 2 and np.array_equal(flip[1][:, :, 0], faces[:, :, -1])
    ten = tta_views(faces, "tencrop")
    assert len(ten) == 10 and all(v.shape == faces.shape and v.dtype == np.uint8 for v in ten)
    assert np.array_equal(ten[1], ten[0][:, :, ::-1])
    # Each crop comes from its own corner: on a face that brightens left to right (4 grey levels a
    # column) and top to bottom (1 a row), a 42-pixel crop covers columns and rows 0-41 or 6-47.
    ramp = (np.arange(48)[None, :] * 4 + np.arange(48)[:, None]).astype(np.uint8)[None]
    crops = tta_views(ramp, "tencrop")[::2]  # top-left, top-right, bottom-left, bottom-right, centre
    spans = [(int(c.min()), int(c.max())) for c in crops]
    corner = [(0, 0), (0, 6), (6, 0), (6, 6), (3, 3)]  # (first row, first column) of each crop
    assert spans == [(r + 4 * c, r + 41 + 4 * (c + 41)) for r, c in corner]
    # For a model that classifies central 40x40 crops, the views move the face so that the central
    # crop is each corner crop itself, unresized: the same pixels as slicing the face.
    from fer_lib.models.layers import TrainingCrop

    for crop in (40, 41):  # an odd margin too: 3 pixels before TrainingCrop's central crop, 4 after
        shifted = tta_views(ramp, "tencrop", model_crop=crop)
        assert len(shifted) == 10 and all(v.shape == ramp.shape for v in shifted)
        seen = [np.asarray(TrainingCrop(crop)(v[..., None].astype("float32")))[..., 0] for v in shifted]
        far = 48 - crop
        for i, (top, left) in enumerate([(0, 0), (0, far), (far, 0), (far, far), ((48 - crop) // 2, (48 - crop) // 2)]):
            for face, view in ((ramp, seen[2 * i]), (ramp[:, :, ::-1], seen[2 * i + 1])):  # the face, then its mirror
                np.testing.assert_array_equal(view, face[:, top:top + crop, left:left + crop])
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta_views(faces, "rotate")
    model = build_model("seed_cnn", seed=0)
    plain = predict_probabilities(model, faces)
    manual = (plain + predict_probabilities(model, faces[:, :, ::-1])) / 2
    np.testing.assert_allclose(predict_probabilities(model, faces, tta="flip"), manual, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict_probabilities(model, faces, tta="tencrop").sum(axis=1), 1.0, rtol=1e-5)


def test_expected_calibration_error_is_the_gap_between_confidence_and_accuracy():
    from fer_lib.evaluation.metrics import expected_calibration_error

    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    sure = np.tile([0.9, 0.1], (10, 1))  # 0.9 sure of class 0, right 4 times in 10
    assert expected_calibration_error(labels, sure) == pytest.approx(0.5)
    honest = np.array([[0.4, 0.6]] * 10)  # 0.6 sure of class 1, right 6 times in 10
    assert expected_calibration_error(labels, honest) == pytest.approx(0.0)
    # Two bins: 0.95 right 1 of 2, 0.55 right 2 of 2: (2/4) * 0.45 + (2/4) * 0.45
    mixed = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    assert expected_calibration_error(np.array([0, 1, 0, 0]), mixed) == pytest.approx(0.45)
    assert "expected_calibration_error" in compute_metrics(labels, np.hstack([sure, np.zeros((10, 5))]))


def test_macro_metrics_average_over_the_classes_the_data_has_and_say_so():
    labels = np.array([0, 0, 3, 3])
    probabilities = np.eye(7)[[0, 0, 3, 0]]
    metrics = compute_metrics(labels, probabilities)
    assert metrics["macro_classes"] == ["angry", "happy"]
    assert metrics["recall_macro"] == pytest.approx((1.0 + 0.5) / 2)  # not diluted by five absent classes
    text = format_metrics(metrics, "model.keras + tencrop")
    assert "model.keras + tencrop" in text.splitlines()[0] and "original" not in text
    assert "Macro averages over the classes present: angry, happy" in text
