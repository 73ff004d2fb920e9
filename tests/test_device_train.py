"""scripts/device_train.sh: one device run trains, and what comes back joins into a run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_lib.training import read_resume_state

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_train.sh"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packed_faces(synthetic_root, tmp_path_factory, load_script):
    packed = tmp_path_factory.mktemp("carry") / "train.npy.xz"
    assert load_script("gpu_data").main(["pack", "--data", str(synthetic_root), "--out", str(packed)]) == 0
    return packed


def _device_run(tmp_path, packed, *args):
    """The script as the device runs it, on this machine's TensorFlow and without the wheels."""
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OUT=str(out), RUN_DIR=str(tmp_path / "run"), FACES_DIR=str(tmp_path / "faces"),
               PACKED_FACES=str(packed), WHEELS="", KERAS_BACKEND="tensorflow",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=SCRIPT.parents[1], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    back = tmp_path / "back"
    subprocess.run(["bash", str(SCRIPT), "--join", str(out), str(back)], check=True, capture_output=True)
    return out, back, done.stdout


def test_a_finished_run_comes_back_in_parts_and_joins_into_the_same_files(tmp_path, packed_faces):
    out, back, stdout = _device_run(tmp_path, packed_faces, "seed_cnn", "1", "300", "--batch-size", "32")
    assert "training exit status 0" in stdout
    assert all(part.stat().st_size < 16 * 2**20 for part in out.iterdir())  # what the device lets come back
    for name in ("model.keras", "config.json", "history.csv", "train_summary.json"):
        assert (back / name).read_bytes() == (tmp_path / "run" / name).read_bytes(), name


def test_a_run_out_of_time_is_stopped_and_its_checkpoint_comes_back_resumable(tmp_path, packed_faces):
    out, back, stdout = _device_run(tmp_path, packed_faces, "seed_cnn", "1000", "45", "--batch-size", "32")
    assert "stopped after" in stdout
    assert not (back / "model.keras").exists()
    state = read_resume_state(back)
    assert state is not None and 1 <= state["epochs_done"] < 1000
    weights = Path(".resume") / state["weights_file"]
    assert (back / weights).read_bytes() == (tmp_path / "run" / weights).read_bytes()
