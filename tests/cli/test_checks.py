"""`fer`'s path mistakes are said in one line before the backend starts (fer_lib.cli.checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fer_lib import backend
from fer_lib.cli import main


@pytest.fixture()
def scratch(tmp_path, monkeypatch):
    """A working folder with a file, an empty folder, a photo and a (fake) model; the backend may not start."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "photo.jpg").write_bytes(b"not decoded before the backend starts")
    (tmp_path / "m.keras").write_bytes(b"not opened before the backend starts")

    def started():
        raise AssertionError("the backend was imported before the arguments were checked")

    monkeypatch.setattr(backend, "import_backend_quietly", started)
    return tmp_path


MISTAKES = [
    (["predict", "missing.jpg"], "missing.jpg: not found; check the path"),
    (["predict", "empty"], "empty: no images or videos in this folder"),
    (["predict", "photo.jpg", "--csv", "empty"], "empty is a folder; --csv takes a file name"),
    (["predict", "photo.jpg", "--json", "afile/x.json"], "afile is a file, not a folder; choose another --json path"),
    (["predict", "photo.jpg", "--annotate", "afile"], "afile is a file; --annotate takes a folder"),
    (["predict", "photo.jpg", "--model", "nope.keras"], "nope.keras: model file not found; check the path"),
    (["predict", "photo.jpg", "--boxes", "nope.json"], "nope.json: boxes file not found"),
    (["predict", "clip.mp4", "--out", "afile"], "afile is a file; --out takes a folder"),
    (["evaluate", "--data", "missing"], "missing: dataset not found"),
    (["evaluate", "--data", "empty"], "empty: no train/ folder, emotion folders or fer2013.csv found"),
    (["evaluate", "--data", "photo.jpg"], "photo.jpg: not a dataset"),
    (["evaluate", "--data", "data", "--model", "nope.keras"], "nope.keras: model file not found"),
    (["evaluate", "--data", "data", "--json", "empty"], "empty is a folder; --json takes a file name"),
    (["export", "--format", "tflite", "--out", "afile/m.tflite"], "afile is a file, not a folder"),
    (["export", "--format", "tflite", "--out", "m.tflite", "--model", "nope.keras"], "nope.keras: model file not found"),
    (["train", "--data", "missing"], "missing: dataset not found"),
    (["train", "--data", "data", "--out", "afile"], "afile is a file; --out takes a folder"),
    (["ensemble", "m.keras", "nope.keras", "--out", "e.keras"], "nope.keras: model file not found"),
    (["ensemble", "m.keras", "m.keras", "--out", "empty"], "empty is a folder; --out takes a file name"),
    (["rebalance", "--model", "nope.keras"], "nope.keras: model file not found"),
    (["rebalance", "--model", "m.keras", "--out", "m.keras"], "m.keras is the model being rebalanced"),
    (["calibrate", "--model", "m.keras", "--data", "missing"], "missing: dataset not found"),
    (["calibrate", "--model", "m.keras", "--out", "afile/c.keras"], "afile is a file, not a folder"),
]


@pytest.mark.parametrize("argv,message", MISTAKES, ids=[" ".join(argv) for argv, _ in MISTAKES])
def test_each_path_mistake_is_one_line_before_the_backend(scratch, argv, message, capsys):
    (scratch / "clip.mp4").write_bytes(b"")
    (scratch / "data" / "train" / "happy").mkdir(parents=True)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fer {argv[0]}: error: ") and message in lines[0], lines
    assert not any(scratch.glob("afile/*")) and not (scratch / "e.keras").exists()  # nothing created


def test_several_unusable_inputs_are_one_line_each_and_no_summary(scratch, capsys):
    assert main(["predict", "missing.jpg", "afile", "empty"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["fer predict: missing.jpg: not found; check the path",
                   "fer predict: afile: unsupported format (no extension); give images (.jpg, .png, ...) or videos "
                   "(.mp4, .avi, ...)",
                   "fer predict: empty: no images or videos in this folder (searched recursively)",
                   "fer predict: error: none of the 3 inputs can be used"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever the permissions say")
def test_an_unwritable_output_folder_is_refused_before_the_backend(scratch, capsys):
    locked = scratch / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert main(["predict", "photo.jpg", "--json", str(locked / "new" / "r.json")]) == 2
    finally:
        locked.chmod(0o700)
    assert f"{locked}: cannot write there (Permission denied); choose a writable folder for --json" in capsys.readouterr().err


@pytest.mark.slow
def test_the_checks_import_no_tensorflow(tmp_path):
    """In a fresh interpreter, as `fer` runs them: several mistakes, each one line, and TensorFlow never imported."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "photo.jpg").write_bytes(b"x")
    mistakes = [["predict", "missing.jpg"], ["predict", "empty"], ["predict", "photo.jpg", "--csv", "empty"],
                ["evaluate", "--data", "missing"], ["export", "--format", "onnx", "--out", "afile/m.onnx"],
                ["train", "--data", "empty"], ["ensemble", "a.keras", "b.keras", "--out", "e.keras"],
                ["rebalance", "--model", "nope.keras"]]
    driver = ("import contextlib, io, json, sys\nfrom fer_lib.cli import main\nresults = []\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    err = io.StringIO()\n"
              "    with contextlib.redirect_stderr(err):\n"
              "        code = main(argv)\n"
              "    results.append([code, err.getvalue(), sorted({'tensorflow', 'keras'} & set(sys.modules))])\n"
              "print(json.dumps(results))\n")
    done = subprocess.run([sys.executable, "-c", driver, json.dumps(mistakes)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    for argv, (code, err, imported) in zip(mistakes, json.loads(done.stdout)):
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"fer {argv[0]}: error: "), (argv, err)
        assert imported == [], (argv, imported)
