"""scripts/device_train.sh and gpu_data.py bundle/unbundle: one device run trains, and what comes back
fits the device's limits and becomes the run folder again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from fer_lib import models
from fer_lib.data.preprocessing import as_model_input
from fer_lib.training.run_folder import read_resume_state

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "device_train.sh"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packed_faces(synthetic_root, tmp_path_factory, load_script):
    packed = tmp_path_factory.mktemp("carry") / "train.npy.xz"
    assert load_script("gpu_data").main(["pack", "--data", str(synthetic_root), "--out", str(packed)]) == 0
    return packed


def device_run(root: Path, packed: Path, *args) -> tuple[Path, str]:
    """The script as the device runs it, on this machine's TensorFlow and without the wheels."""
    out = root / "out"
    out.mkdir(parents=True)
    env = dict(os.environ, OUT=str(out), RUN_DIR=str(root / "run"), FACES_DIR=str(root / "faces"),
               PACKED_FACES=str(packed), WHEELS="", KERAS_BACKEND="tensorflow",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=SCRIPT.parents[1], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, packed_faces):
    """A run of 1000 epochs given 45 s: stopped, its checkpoint bundled in out/."""
    root = tmp_path_factory.mktemp("stopped")
    out, stdout = device_run(root, packed_faces, "fer_cnn_crop", "1000", "45", "--batch-size", "32")
    return root, out, stdout


def fits_what_comes_back(out: Path) -> bool:
    files = [f for f in out.rglob("*") if f.is_file()]
    return (len(files) <= 8 and all(f.stat().st_size <= 16 * 2**20 for f in files)
            and sum(f.stat().st_size for f in files) <= 64 * 2**20)


def same_predictions(a: Path, b: Path, dataset) -> bool:
    faces = as_model_input(dataset.val.images[:20])
    return np.allclose(models.load_model(a).predict(faces, verbose=0), models.load_model(b).predict(faces, verbose=0), atol=1e-6)


def unbundle(load_script, parts: Path, out: Path):
    return load_script("gpu_data").main(["unbundle", str(parts), "--out", str(out)])


def test_a_finished_run_comes_back_whole_and_without_the_optimizer(tmp_path, packed_faces, load_script):
    out, stdout = device_run(tmp_path, packed_faces, "seed_cnn", "1", "300", "--batch-size", "32")
    assert "device_train.sh: done" in stdout and "stopped" not in stdout
    assert fits_what_comes_back(out)
    assert unbundle(load_script, out, tmp_path / "back") == 0
    back, run = tmp_path / "back", tmp_path / "run"
    for name in ("config.json", "history.csv", "train_summary.json", "data.json", "model.keras"):
        assert (back / name).read_bytes() == (run / name).read_bytes(), name
    with zipfile.ZipFile(back / "model.keras") as model:  # Adam's two moments left out by save_model
        assert not [name for name in model.namelist() if "optimizer" in name]
        with model.open("model.weights.h5") as member, h5py.File(member) as weights:
            assert "optimizer" not in weights


def test_a_run_out_of_time_is_stopped_and_comes_back_resumable(stopped_run, tmp_path, load_script, synthetic_root):
    from fer_lib.data.dataset import load_dataset

    root, out, stdout = stopped_run
    assert "device_train.sh: stopped the training after" in stdout
    assert json.loads((out / "run.tar.json").read_text())["state"] == "resumable"
    assert fits_what_comes_back(out)
    back = tmp_path / "back"
    assert unbundle(load_script, out, back) == 0
    state = read_resume_state(back)
    assert state is not None and 1 <= state["epochs_done"] < 1000
    for name in ("state.json", "config.json", "history.csv", state["weights_file"]):
        assert (back / ".resume" / name).read_bytes() == (root / "run" / ".resume" / name).read_bytes(), name
    assert same_predictions(back / ".resume" / "best.keras", root / "run" / ".resume" / "best.keras", load_dataset(synthetic_root))


def test_a_checkpoint_too_big_to_come_back_leaves_its_best_model_and_a_warning(stopped_run, tmp_path, load_script, capsys):
    root, _, _ = stopped_run
    gpu_data = load_script("gpu_data")
    # What travels: a kill during a save can leave a temporary (".NAME.xxxx"), which stays behind.
    run_bytes = sum(f.stat().st_size for f in (root / "run").rglob("*") if f.is_file() and not f.name.startswith("."))
    epoch_weights = sum(f.stat().st_size for f in (root / "run" / ".resume").glob("epoch-*.weights.h5"))
    gpu_data.bundle(root / "run", tmp_path / "out", limit=run_bytes - epoch_weights // 2)
    assert "cannot be resumed; give it fewer epochs next time" in capsys.readouterr().out
    assert unbundle(load_script, tmp_path / "out", tmp_path / "back") == 0
    back = tmp_path / "back"
    assert read_resume_state(back) is None and (back / "unfinished" / "best.keras").is_file()
    assert not list((back / "unfinished").glob("epoch-*"))


def test_unbundle_refuses_missing_or_damaged_parts_and_a_used_folder(stopped_run, tmp_path, load_script):
    _, out, _ = stopped_run
    parts = tmp_path / "parts"
    parts.mkdir()
    for file in out.iterdir():
        (parts / file.name).write_bytes(file.read_bytes())
    first = parts / "run.tar.part-00"
    damaged = bytearray(first.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    first.write_bytes(bytes(damaged))
    with pytest.raises(SystemExit, match=r"\(SHA-256 differs\); fetch them again"):
        unbundle(load_script, parts, tmp_path / "back")
    first.unlink()
    with pytest.raises(SystemExit, match=r"run.tar.part-00: missing, the run cannot be put back together"):
        unbundle(load_script, parts, tmp_path / "back")
    used = tmp_path / "used"
    used.mkdir()
    (used / "model.keras").write_text("a user's model")
    with pytest.raises(SystemExit, match="already exists and is not empty"):
        unbundle(load_script, out, used)
    assert (used / "model.keras").read_text() == "a user's model"


@pytest.fixture(scope="module")
def members_run(tmp_path_factory, packed_faces):
    """Two models trained side by side: one stopped by its time budget, one finishing its single epoch."""
    root = tmp_path_factory.mktemp("members")
    members = root / "members.txt"
    members.write_text("# NAME PRESET options\n"
                       "crop    fer_cnn_crop --epochs 1000 --batch-size 32 --seed 5\n\n"
                       "seed    seed_cnn --epochs 1 --batch-size 32\n")
    os.environ["MEMBER_MARGIN_SECONDS"] = "30"
    try:
        out, stdout = device_run(root, packed_faces, "--members", str(members), "100")
    finally:
        del os.environ["MEMBER_MARGIN_SECONDS"]
    return root, out, stdout


def test_several_members_train_at_once_and_come_back_finished(members_run, tmp_path, load_script, synthetic_root):
    from fer_lib.data.dataset import load_dataset

    root, out, stdout = members_run
    assert "device_train.sh: done" in stdout and "stopped the training" not in stdout
    assert json.loads((out / "run.tar.json").read_text())["runs"] == {"crop": "finished", "seed": "finished"}
    assert fits_what_comes_back(out)
    back = tmp_path / "back"
    assert unbundle(load_script, out, back) == 0
    crop = json.loads((back / "crop" / "train_summary.json").read_text())
    assert 1 <= crop["epochs_run"] < 1000 and crop["time_budget_seconds"] > 0  # its budget ended it, annealed
    assert "Time budget: stopping after epoch" in (back / "crop" / "train.log").read_text()
    assert json.loads((back / "seed" / "train_summary.json").read_text())["epochs_run"] == 1
    for name in ("crop", "seed"):
        assert same_predictions(back / name / "model.keras", root / "run" / name / "model.keras", load_dataset(synthetic_root))


def test_a_member_that_failed_comes_back_as_its_log(members_run, tmp_path, load_script, capsys):
    import shutil

    root, _, _ = members_run
    runs = tmp_path / "runs"
    shutil.copytree(root / "run" / "seed", runs / "seed")
    (runs / "broken").mkdir()
    (runs / "broken" / "train.log").write_text("fer: unknown preset 'nope'\n")
    (runs / "cut" / ".resume").mkdir(parents=True)  # started, then stopped before its first epoch ended
    (runs / "cut" / ".resume" / "config.json").write_text("{}")
    load_script("gpu_data").bundle(runs, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "run.tar.json").read_text())["runs"] == {
        "broken": "failed", "cut": "failed", "seed": "finished"}
    assert unbundle(load_script, tmp_path / "out", tmp_path / "back") == 0
    assert "broken: failed; it finished no epoch; its train.log says why" in capsys.readouterr().out
    assert (tmp_path / "back" / "broken" / "train.log").read_text() == "fer: unknown preset 'nope'\n"
    assert (tmp_path / "back" / "seed" / "model.keras").is_file()


def test_a_members_file_with_a_bad_line_is_refused_before_training(tmp_path, packed_faces):
    members = tmp_path / "members.txt"
    members.write_text("../escape fer_cnn\n")
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OUT=str(out), RUN_DIR=str(tmp_path / "run"), FACES_DIR=str(tmp_path / "faces"),
               PACKED_FACES=str(packed_faces), WHEELS="", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", str(SCRIPT), "--members", str(members), "100"], cwd=SCRIPT.parents[1], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "member name '../escape' must be letters" in done.stderr
    assert not (tmp_path / "run" / "escape").exists()
