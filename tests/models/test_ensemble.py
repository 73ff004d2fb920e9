"""Ensembles of saved models as one `.keras` model."""

from __future__ import annotations

import numpy as np
import pytest

from fer_lib.cli import main
from fer_lib.errors import FerError
from fer_lib.evaluation.prediction import predict_probabilities
from fer_lib.labels import EMOTIONS
from fer_lib.models.ensemble import build_ensemble, ensemble_files
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model, read_model_classes, save_model


@pytest.fixture(scope="module")
def member_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    paths = []
    for i, name in enumerate(["seed_cnn", "fer_cnn", "fer_cnn"]):
        paths.append(save_model(build_model(name, seed=i), folder / f"m{i}.keras"))
    return paths


@pytest.mark.slow
def test_saved_ensemble_averages_its_members(member_files, tmp_path):
    out = ensemble_files(member_files, tmp_path / "ensemble.keras")
    ensemble = load_model(out)  # safe mode, class list checked
    assert read_model_classes(out) == list(EMOTIONS)
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    members = [predict_probabilities(load_model(p), faces) for p in member_files]
    combined = predict_probabilities(ensemble, faces)
    np.testing.assert_allclose(combined, np.mean(members, axis=0), atol=1e-5)
    np.testing.assert_allclose(combined.sum(axis=1), 1.0, atol=1e-5)
    tta = predict_probabilities(ensemble, faces, tta="flip")
    assert tta.shape == (16, 7)


def test_ensemble_mistakes_are_one_line(member_files, tmp_path, capsys):
    with pytest.raises(FerError, match="at least 2 models, got 1"):
        build_ensemble([load_model(member_files[0])])
    with pytest.raises(FerError, match="listed twice"):
        ensemble_files([member_files[0], member_files[0]], tmp_path / "e.keras")
    with pytest.raises(FerError, match="is one of the ensemble's members"):
        ensemble_files(member_files, member_files[1], overwrite=True)
    with pytest.raises(FerError, match="ending in .keras"):
        ensemble_files(member_files, tmp_path / "e.h5")
    (tmp_path / "bad.keras").write_text("not a model")
    assert main(["ensemble", str(member_files[0]), str(tmp_path / "bad.keras"), "--out", str(tmp_path / "e.keras")]) == 2
    assert "bad.keras: corrupt or not a Keras model file" in capsys.readouterr().err
    assert not (tmp_path / "e.keras").exists()


@pytest.mark.slow
def test_fer_ensemble_command_keeps_an_existing_file(member_files, tmp_path, capsys):
    out = tmp_path / "e.keras"
    assert main(["ensemble", *map(str, member_files[:2]), "--out", str(out)]) == 0
    assert "Ensemble of 2 models" in capsys.readouterr().out
    before = out.read_bytes()
    assert main(["ensemble", *map(str, member_files), "--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["ensemble", *map(str, member_files), "--out", str(out), "--overwrite"]) == 0
    assert load_model(out).count_params() == sum(load_model(p).count_params() for p in member_files)
