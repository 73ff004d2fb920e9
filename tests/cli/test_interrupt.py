"""Ctrl-C ends `fer` in one line and exit status 130 at any moment, and an interrupted training run says so
and resumes. Real processes and real SIGINTs: what a terminal's Ctrl-C sends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_lib.cli import EXIT_INTERRUPTED
from fer_lib.training.run_folder import INTERRUPTED_FILE, RESUME_DIR, STATE_FILE

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def start_fer(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fer_lib.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def wait_until(process: subprocess.Popen, ready, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"fer ended before {what}: {process.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.02)


def interrupt(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C; assert that `fer` ended with status 130 and one line on stderr, no traceback; return (stdout, that line)."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-3000:]
    return out, err.strip()


def tensorflow_mapped(pid: int) -> bool:
    try:
        return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see TensorFlow load")
def test_ctrl_c_while_tensorflow_loads_is_one_line(tmp_path, synthetic_root):
    # Real data, so that the checks made before the backend pass and TensorFlow starts loading.
    process = start_fer("train", "--data", str(synthetic_root), "--out", str(tmp_path / "run"))
    wait_until(process, lambda: tensorflow_mapped(process.pid), "TensorFlow library loaded")
    _, line = interrupt(process)
    assert line == "fer train: interrupted"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_during_training_marks_the_run_interrupted_and_resume_finishes_it(tmp_path):
    from fer_lib.data.synthetic import generate_dataset

    data = generate_dataset(tmp_path / "fer", train_per_class=8, test_per_class=2, seed=1)
    out = tmp_path / "run"
    command = ["train", "--data", str(data), "--out", str(out), "--epochs", "3", "--batch-size", "16",
               "--precision", "float32", "--no-eval", "--no-tensorboard"]
    process = start_fer(*command)
    wait_until(process, (out / RESUME_DIR / STATE_FILE).exists, "epoch saved")
    _, line = interrupt(process)
    done = line.split("after epoch ")[1].split(" ")[0]  # Ctrl-C may land after a later epoch than the first
    assert line == f"fer train: interrupted after epoch {done} of 3; continue with: fer train --resume --out {out}"
    assert not (out / "model.keras").exists() and not (out / "train_summary.json").exists()
    assert f"This training run was interrupted after epoch {done} of 3" in (out / INTERRUPTED_FILE).read_text()

    resumed = subprocess.run([sys.executable, "-m", "fer_lib.cli", "train", "--resume", "--out", str(out), "--no-eval"],
                             capture_output=True, text=True, env=ENV, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming the interrupted run in {out} ({done} of 3 epochs done)" in resumed.stdout
    assert (out / "model.keras").is_file() and not (out / INTERRUPTED_FILE).exists() and not (out / RESUME_DIR).exists()
