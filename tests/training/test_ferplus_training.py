"""Training and scoring on FER+'s votes: every label mode, eight classes carried by the model, one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_lib.cli import main
from fer_lib.data.dataset import load_dataset
from fer_lib.errors import FerError
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS
from fer_lib.models.saving import load_model, model_classes, read_model_classes
from fer_lib.training.config import TrainConfig
from fer_lib.training.trainer import train

SMALL_CNN = {"conv_filters": [8, 16], "dense_units": [32]}


@pytest.mark.slow
@pytest.mark.parametrize("label_mode", ["majority", "probability", "crossentropy", "multi_target"])
def test_every_label_mode_trains_an_eight_class_model_that_records_its_classes(ferplus_root, tmp_path, label_mode):
    dataset = load_dataset(ferplus_root)
    config = TrainConfig(model="cnn", model_options=SMALL_CNN, out=str(tmp_path / "run"), epochs=2, batch_size=16,
                         precision="float32", label_mode=label_mode)
    result = train(config, dataset, verbose=0)
    assert read_model_classes(result.model_path) == list(FERPLUS_EMOTIONS)
    model = load_model(result.model_path)
    assert model.output_shape[-1] == 8 and model_classes(model) == FERPLUS_EMOTIONS
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["label_mode"] == label_mode and summary["majority_rule"] == "official"
    assert summary["classes"] == list(FERPLUS_EMOTIONS)
    assert TrainConfig.load(tmp_path / "run" / "config.json").label_mode == label_mode
    if label_mode == "majority":  # the official rule keeps fewer faces than the top vote
        assert summary["train_images"] < len(dataset.train)


def test_a_vote_label_mode_on_fer2013_data_fails_before_the_run_folder_exists(synthetic_root, tmp_path):
    config = TrainConfig(data=str(synthetic_root), out=str(tmp_path / "run"), label_mode="crossentropy")
    with pytest.raises(FerError, match="trains on annotators' votes") as error:
        train(config)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="unknown label_mode"):
        TrainConfig(label_mode="votes").validate()


@pytest.mark.slow
def test_fer_evaluate_on_ferplus_prints_both_rules_and_the_votes(ferplus_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(ferplus_root), "--model", "cnn", "--epochs", "1", "--out", str(out),
                 "--label-mode", "crossentropy", "--precision", "float32"]) == 0
    capsys.readouterr()
    json_out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(out / "model.keras"), "--data", str(ferplus_root), "--json", str(json_out)]) == 0
    printed = capsys.readouterr().out
    assert "ferplus-folders" in printed and "on the test split" in printed
    assert "official rule" in printed and "Top-1, top-vote rule" in printed and "Annotator share" in printed
    metrics = json.loads(json_out.read_text())
    assert metrics["majority_rule"] == "official" and metrics["classes"] == list(FERPLUS_EMOTIONS)
    assert set(metrics["per_class"]) == set(FERPLUS_EMOTIONS)
    assert 0 <= metrics["votes"]["annotator_share"] <= 1 and metrics["votes"]["vote_crossentropy"] > 0


def test_a_model_for_other_classes_is_refused_in_one_line_before_the_data_is_read(ferplus_root, synthetic_root,
                                                                                  tmp_path, capsys):
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import save_model

    seven, eight = tmp_path / "seven.keras", tmp_path / "eight.keras"
    save_model(build_model("cnn", num_classes=7, **SMALL_CNN), seven)
    save_model(build_model("cnn", num_classes=8, **SMALL_CNN), eight)
    assert model_classes(load_model(seven)) == EMOTIONS
    for model, data, expected in ((eight, synthetic_root, "predicts 8 classes"), (seven, ferplus_root, "predicts 7 classes")):
        assert main(["evaluate", "--model", str(model), "--data", str(data)]) == 2
        error = capsys.readouterr().err.strip()
        assert expected in error and str(data) in error and len(error.splitlines()) == 1


def test_vote_metrics_score_a_known_answer():
    from fer_lib.evaluation.votes import ferplus_metrics

    votes = np.array([[8, 0, 0, 0, 0, 0, 0, 0, 2, 0],  # neutral, officially too
                      [0, 5, 0, 0, 0, 0, 0, 0, 5, 0],  # happy by top vote only (a tie with unknown)
                      [0, 0, 0, 0, 0, 0, 0, 9, 0, 1]], np.float64)  # contempt
    probabilities = np.zeros((3, 8))
    probabilities[0, EMOTIONS.index("neutral")] = 1
    probabilities[1, EMOTIONS.index("sad")] = 1
    probabilities[2, 7] = 1
    metrics = ferplus_metrics(votes, probabilities, FERPLUS_EMOTIONS)
    assert metrics["n_images"] == 2 and metrics["top1_accuracy"] == 1.0
    assert metrics["top_vote"]["n_images"] == 3 and metrics["top_vote"]["top1_accuracy"] == pytest.approx(2 / 3)
    assert metrics["votes"]["annotator_share"] == pytest.approx((0.8 + 0 + 0.9) / 3)
