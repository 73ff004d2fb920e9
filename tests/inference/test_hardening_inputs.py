"""`fer predict` on one mixed list of broken inputs: each is reported, the good ones are still processed.

tests/inference/test_photos.py and tests/inference/test_video.py try each kind on its own (Python API or
separate CLI calls); this puts them all in one command line.
"""

from __future__ import annotations

import json

import cv2
import pandas as pd
import pytest
from conftest import png_claiming
from PIL import Image
from skimage import data
from test_video import write_face_video

from fer_lib.cli import main


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import save_model

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_model(build_model("cnn", conv_filters=(4,), dense_units=(8,), seed=0), path)
    return path


def test_fer_predict_reports_each_bad_input_and_processes_the_rest(tmp_path, model_path, capsys):
    Image.fromarray(data.astronaut()).save(tmp_path / "good.jpg")
    raw = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "notes.png").write_text("not an image at all")
    Image.new("L", (1, 1), 90).save(tmp_path / "dot.png")
    (tmp_path / "huge.png").write_bytes(png_claiming(20_000, 20_000))
    cv2.VideoWriter(str(tmp_path / "empty.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240)).release()
    cut = write_face_video(tmp_path / "cut.avi", frames=20, fourcc="MJPG")
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    names = ["notes.png", "truncated.jpg", "dot.png", "huge.png", "empty.mp4", "cut.avi", "missing.jpg", "good.jpg"]
    code = main(["predict", *(str(tmp_path / n) for n in names), "--model", str(model_path), "--detector", "haar",
                 "--every", "4", "--out", str(tmp_path / "out"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1  # some inputs could not be used
    records = json.loads(out)
    errors = {r["source"].rsplit("/", 1)[-1]: r["error"] for r in records if r.get("error")}
    assert set(errors) == {"notes.png", "truncated.jpg", "dot.png", "huge.png", "empty.mp4", "missing.jpg"}
    expected = {
        "notes.png": "cannot read image (not an image format Pillow knows, despite the .png name)",
        "truncated.jpg": "cannot read image (truncated",
        "dot.png": "image is 1x1 pixels, too small to hold a face",
        "huge.png": "image is too large to be a face photo",
        "empty.mp4": "",
        "missing.jpg": "not found; check the path",
    }
    for name, fragment in expected.items():
        assert errors[name].startswith(str(tmp_path / name)) and fragment in errors[name], errors[name]
        assert f"fer predict: {errors[name]}" in err  # also said on stderr, one line each
    assert "cannot open as a video" in errors["empty.mp4"] or "no frames" in errors["empty.mp4"]
    good = [r for r in records if r["source"].endswith("good.jpg")]
    assert len(good) == 1 and len(good[0]["faces"]) == 1
    assert not [r for r in records if r["source"].endswith("cut.avi")]  # a video's frames are in its files
    cut_frames = sorted(set(pd.read_csv(tmp_path / "out" / "cut.frames.csv")["frame"]))
    assert cut_frames and cut_frames == list(range(0, 4 * len(cut_frames), 4))  # the frames before the cut
    assert "cut.avi: decoding stopped at frame" in err and (tmp_path / "out" / "cut.frames.csv").is_file()
    assert "Traceback" not in err
