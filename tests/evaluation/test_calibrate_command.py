"""`fer calibrate`: what it prints (the data and faces it fitted on, the temperature, NLL and ECE before and
after on held-out faces, where it wrote) and what it refuses to overwrite."""

from __future__ import annotations

import re
import shutil

import pytest

from fer_lib import paths
from fer_lib.cli import main
from fer_lib.data.dataset import load_dataset
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model, save_model

NUMBER = r"(\d+\.\d{4})"


@pytest.fixture()
def untrained(tmp_path):
    return save_model(build_model("seed_cnn", seed=0), tmp_path / "m.keras")


def printed_scores(printed: str) -> dict[str, tuple[float, float]]:
    scores = {}
    for name in ("NLL (log loss)", "ECE (calibration error)"):
        found = re.search(rf"^  {re.escape(name)} +{NUMBER} -> {NUMBER}$", printed, re.MULTILINE)
        assert found, printed
        scores[name] = (float(found[1]), float(found[2]))
    return scores


def test_fer_calibrate_names_its_data_and_faces_and_scores_held_out_test_faces(untrained, synthetic_root, capsys):
    dataset = load_dataset(synthetic_root)
    assert main(["calibrate", "--model", str(untrained), "--data", str(synthetic_root)]) == 0
    printed = capsys.readouterr().out
    out = untrained.with_name("m_calibrated.keras")
    assert f"Fitting the temperature on the validation split of {synthetic_root} ({len(dataset.val)} faces)\n" in printed
    temperature = float(re.search(r"^Temperature: (\d+\.\d{3}) \(TTA none\)$", printed, re.MULTILINE)[1])
    assert f"On {len(dataset.test)} held-out faces (the test split), before -> after:" in printed
    scores = printed_scores(printed)
    assert all(0 <= value <= 1 for value in scores["ECE (calibration error)"])
    assert printed.rstrip().endswith(f"Model: {out}")
    assert load_model(out).layers[-1].temperature == pytest.approx(temperature, abs=1e-3)


def test_without_a_test_split_it_scores_a_held_out_half_of_validation(untrained, synthetic_root, tmp_path, capsys):
    shutil.copytree(synthetic_root / "train", tmp_path / "fer" / "train")  # no test/
    dataset = load_dataset(tmp_path / "fer", require_test=False)
    assert main(["calibrate", "--model", str(untrained), "--data", str(tmp_path / "fer"), "--out",
                 str(tmp_path / "c.keras")]) == 0
    printed = capsys.readouterr().out
    fitted = re.search(r"^Temperature: \d+\.\d{3} \(fitted on the (\d+) not held out, TTA none\)$", printed, re.MULTILINE)
    held = re.search(r"^On (\d+) held-out faces \(half of the validation split, left out of the fit: the data has no "
                     r"test split\), before -> after:$", printed, re.MULTILINE)
    assert fitted and held, printed
    assert int(fitted[1]) + int(held[1]) == len(dataset.val) and int(held[1]) > 0
    printed_scores(printed)


@pytest.mark.slow
def test_fer_calibrate_overwrites_nothing_without_overwrite_and_never_a_packaged_model(
        untrained, synthetic_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "taken.keras"
    out.write_bytes(b"the user's file")
    argv = ["calibrate", "--model", str(untrained), "--data", str(synthetic_root), "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"fer calibrate: error: {out} already exists; pass --overwrite to replace it or choose "
                            "another name\n")
    assert "Fitting" not in captured.out  # refused before any data was read
    assert out.read_bytes() == b"the user's file"
    assert main([*argv, "--overwrite"]) == 0
    assert load_model(out).layers[-1].temperature > 0
    capsys.readouterr()

    packaged = paths.PACKAGED_MODELS["fer2013"]
    before = packaged.stat().st_mtime_ns
    assert main(["calibrate", "--model", str(untrained), "--data", str(synthetic_root), "--out", str(packaged),
                 "--overwrite"]) == 2
    assert "holds fer_lib's packaged models; save the calibrated model elsewhere (--out)" in capsys.readouterr().err
    assert packaged.stat().st_mtime_ns == before

    # A packaged model by name: the result goes to the working directory, not beside it in the package.
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--model", "fer2013", "--data", str(synthetic_root)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"Model: {tmp_path / 'fer_model_calibrated.keras'}")
    assert not (packaged.parent / "fer_model_calibrated.keras").exists()
