"""`fer predict --tta`: the option reaches the scores written, and an unknown mode is one line before the backend."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer_lib import backend
from fer_lib.cli import main
from fer_lib.cli.predict import TTA_CHOICES


@pytest.fixture()
def face_png(tmp_path):
    """The astronaut's face as a 48x48 PNG, which fer predict classifies whole (no detector needed)."""
    gray = data.astronaut()[20:240, 140:360].mean(axis=2).astype(np.uint8)
    path = tmp_path / "face.png"
    Image.fromarray(gray).resize((48, 48), Image.BILINEAR).save(path)
    return path


def test_the_choices_are_evaluations_modes():
    from fer_lib.evaluation.prediction import TTA_MODES

    assert TTA_CHOICES == TTA_MODES


def test_an_unknown_mode_is_one_line_before_the_backend(face_png, monkeypatch, capsys):
    def started():
        raise AssertionError("the backend was imported before --tta was checked")

    monkeypatch.setattr(backend, "import_backend_quietly", started)
    assert main(["predict", str(face_png), "--tta", "tencrops"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["fer predict: error: unknown test-time augmentation 'tencrops' for --tta; "
                                         "choose one of none, flip, tencrop"]


def test_help_names_the_modes(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--tta {none,flip,tencrop}" in text and "test-time augmentation" in text


def _csv_scores(path) -> dict[str, float]:
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 1 and rows[0]["face"] == "0"
    columns = list(rows[0])
    return {name: float(rows[0][name]) for name in columns[columns.index("second") + 1:columns.index("error")]}


def test_the_mode_reaches_csv_and_json_scores(face_png, tmp_path):
    from fer_lib.inference.photos import predict_expression

    written = {}
    for tta in TTA_CHOICES:
        out = tmp_path / f"{tta}.csv"
        assert main(["predict", str(face_png), "--csv", str(out), "--tta", tta, "--quiet"]) == 0
        written[tta] = _csv_scores(out)
        expected = predict_expression(face_png, tta=tta)[0]["scores"]
        assert written[tta] == pytest.approx({k: round(v, 6) for k, v in expected.items()}, abs=2e-6)
    assert written["flip"] != written["none"] and written["tencrop"] != written["none"]
    json_out = tmp_path / "tencrop.json"
    assert main(["predict", str(face_png), "--json", str(json_out), "--tta", "tencrop", "--quiet"]) == 0
    scores = json.loads(json_out.read_text())[0]["faces"][0]["scores"]
    assert {k: round(v, 6) for k, v in scores.items()} == pytest.approx(written["tencrop"], abs=2e-6)
