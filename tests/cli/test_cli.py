"""The `fer` command line: help, one-line errors, and train + evaluate end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fer_lib.cli import main


def run_fer(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fer_lib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_the_fer_console_script_names_this_main():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    module, _, function = pyproject["project"]["scripts"]["fer"].partition(":")
    assert getattr(__import__(module, fromlist=[function]), function) is main


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"]])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: fer" in out
    if not command:
        assert "train" in out and "evaluate" in out


@pytest.mark.slow
def test_user_mistakes_are_one_line_errors_without_traceback(tmp_path):
    result = run_fer("train", "--data", str(tmp_path / "missing"), "--epochs", "1", "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("fer train: error:")
    assert "missing: dataset not found" in result.stderr

    (tmp_path / "bad.keras").write_text("not a model")
    (tmp_path / "data" / "happy").mkdir(parents=True)  # a dataset by its layout, so the model is what fails
    result = run_fer("evaluate", "--model", str(tmp_path / "bad.keras"), "--data", str(tmp_path / "data"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.keras" in result.stderr


def test_bad_argument_values_are_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_evaluate_on_generated_data(synthetic_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(synthetic_root), "--epochs", "2", "--out", str(out), "--precision", "float32"]) == 0
    for name in ("model.keras", "history.csv", "config.json", "data.json", "train_summary.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert "SYNTHETIC" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "seed_cnn" and config["epochs"] == 2
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch") and len(history) == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 70 and metrics["data"]["synthetic"] is True

    # A second run into the same folder must not replace the model without --overwrite.
    before = (out / "model.keras").stat().st_mtime_ns
    assert main(["train", "--data", str(synthetic_root), "--epochs", "1", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "model.keras").stat().st_mtime_ns == before

    json_out = tmp_path / "eval" / "metrics.json"
    assert main(["evaluate", "--model", str(out / "model.keras"), "--data", str(synthetic_root / "test"), "--json", str(json_out)]) == 0
    evaluated = json.loads(json_out.read_text())
    assert evaluated["top1_accuracy"] == pytest.approx(metrics["top1_accuracy"])
    assert evaluated["confusion_matrix"] == metrics["confusion_matrix"]


@pytest.mark.slow
def test_train_folder_without_test_needs_no_eval(synthetic_root, tmp_path, capsys):
    """A GPU machine may be sent only train/: training works with --no-eval, and the error says so otherwise."""
    import shutil

    root = tmp_path / "train_only"
    shutil.copytree(synthetic_root / "train", root / "train")
    args = ["train", "--data", str(root), "--epochs", "1", "--precision", "float32"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "has train/ but no test/ folder" in err and "fer train --no-eval" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--no-eval"]) == 0
    assert (tmp_path / "b" / "model.keras").is_file() and not (tmp_path / "b" / "metrics.json").exists()


@pytest.mark.slow
def test_single_affine_sets_the_presets_augmentation(synthetic_root, tmp_path):
    out = tmp_path / "affine"
    args = ["train", "--preset", "fer_cnn_crop", "--data", str(synthetic_root), "--epochs", "1", "--max-train-images", "70",
            "--precision", "float32", "--no-eval", "--out", str(out)]
    assert main([*args, "--single-affine"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["augment"]["affine"] is True and config["augment"]["shared_seed"] is False
    assert config["augment"]["rotation_deg"] == 10.0  # the preset's draws, resampled once


def test_pipeline_resume_without_an_unfinished_run_says_so_in_one_line(tmp_path, capsys):
    assert main(["pipeline", "--resume", "--out", str(tmp_path), "--epochs", "3"]) == 2
    captured = capsys.readouterr()
    assert "--epochs ignored; a resumed run keeps its saved settings" in captured.out
    assert f"{tmp_path.resolve()}: no unfinished pipeline run newer than the last one that finished" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.slow
def test_single_affine_needs_a_preset(tmp_path, capsys):
    assert main(["train", "--model", "fer_cnn", "--single-affine", "--demo", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "--single-affine changes a preset's augmentation" in err and len(err.strip().splitlines()) == 1
