"""Videos through `fer predict`: sampling, per-frame CSV, annotated mp4, summaries, broken files, webcam."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from fer_lib.cli import main
from fer_lib.inference.video import FrameResult, process_video, summarize_video
from fer_lib.labels import EMOTIONS

FPS = 10.0
SIZE = (320, 240)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained seed_cnn: the packaged model may not exist, and weights do not matter here."""
    from fer_lib.models.registry import build_model

    path = tmp_path_factory.mktemp("model") / "seed_cnn.keras"
    build_model("seed_cnn", seed=0).save(path)
    return path


def write_face_video(path, frames: int = 20, fourcc: str = "mp4v"):
    """A 320x240 video at 10 fps of the astronaut's face drifting right on a plain background."""
    face = cv2.resize(data.astronaut()[30:210, 140:310], (100, 106))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((SIZE[1], SIZE[0], 3), 180, np.uint8)
        frame[60:166, 40 + 5 * i:140 + 5 * i] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_fer_predict_video_writes_frames_csv_annotated_mp4_and_summary(tmp_path, model_path, capsys):
    video = write_face_video(tmp_path / "clip.mp4")
    out, annotated = tmp_path / "out", tmp_path / "annotated"
    code = main(["predict", str(video), "--every", "2", "--model", str(model_path), "--out", str(out),
                 "--annotate", str(annotated), "--json", str(tmp_path / "all.json"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    records = json.loads((tmp_path / "all.json").read_text())
    assert [r["frame"] for r in records] == list(range(0, 20, 2))
    assert [r["time_s"] for r in records] == pytest.approx([i / FPS for i in range(0, 20, 2)])
    assert sum(1 for r in records if len(r["faces"]) == 1) >= 9

    frames = pd.read_csv(out / "clip.frames.csv")
    assert list(frames.columns) == ["frame", "time_s", "face", "x", "y", "w", "h", "detection_score", "emotion", *EMOTIONS]
    assert set(frames["frame"]) == set(range(0, 20, 2))
    with_face = frames.dropna(subset=["face"])
    assert (with_face[list(EMOTIONS)].sum(axis=1) - 1).abs().max() < 1e-4
    assert with_face["x"].is_monotonic_increasing  # the face drifts right

    summary = json.loads((out / "clip.summary.json").read_text())
    assert summary["frames_read"] == 20 and summary["frames_sampled"] == 10 and summary["fps"] == FPS
    assert [b["start_s"] for b in summary["bins"]] == [0.0, 1.0]
    assert sum(b["faces"] for b in summary["bins"]) == summary["faces"] == len(with_face)
    assert sum(summary["overall"]["share"].values()) == pytest.approx(1.0, abs=1e-3)
    assert list(pd.read_csv(out / "clip.summary.csv")["bin"].astype(str)) == ["0", "1", "overall"]

    mp4 = cv2.VideoCapture(str(annotated / "clip.annotated.mp4"))
    assert mp4.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS / 2)
    shown = 0
    while True:
        ok, frame = mp4.read()
        if not ok:
            break
        assert frame.shape == (SIZE[1], SIZE[0], 3)
        shown += 1
    assert shown == 10


def test_video_corrupt_midway_keeps_the_frames_read(tmp_path, model_path):
    video = write_face_video(tmp_path / "clip.avi", frames=30, fourcc="MJPG")
    raw = video.read_bytes()
    video.write_bytes(raw[: int(len(raw) * 0.6)])
    from fer_lib.models.saving import load_model

    result = process_video(video, load_model(model_path), "haar", every=3, out_dir=tmp_path / "out", progress=False)
    assert 0 < result.frames_read < 30
    assert len(result.frames) == len(range(0, result.frames_read, 3))
    assert "decoding stopped at frame" in result.warnings[0]
    summary = json.loads((tmp_path / "out" / "clip.summary.json").read_text())
    assert summary["frames_read"] == result.frames_read and summary["warnings"] == result.warnings


def test_truncated_mp4_and_empty_video_are_reported_and_others_still_run(tmp_path, model_path, capsys):
    good = write_face_video(tmp_path / "good.mp4", frames=4)
    truncated = write_face_video(tmp_path / "truncated.mp4", frames=10)
    truncated.write_bytes(truncated.read_bytes()[:3000])  # mp4 keeps its index at the end: nothing readable
    empty = tmp_path / "empty.mp4"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE).release()  # no frames
    code = main(["predict", str(truncated), str(empty), str(good), "--model", str(model_path),
                 "--out", str(tmp_path / "out"), "--quiet", "--detector", "haar"])
    out, err = capsys.readouterr()
    assert code == 1
    records = json.loads(out)
    errors = {r["source"]: r["error"] for r in records if r.get("error")}
    assert set(errors) == {str(truncated), str(empty)}
    assert all("cannot open as a video" in e or "no frames" in e for e in errors.values())
    assert not [r for r in records if r["source"] == str(good)]  # its frames are in its files, not on stdout
    assert set(pd.read_csv(tmp_path / "out" / "good.frames.csv")["frame"]) == {0, 1, 2, 3} and "Traceback" not in err


def test_webcam_absent_is_one_clear_line(model_path, capfd):
    assert main(["predict", "--webcam", "--model", str(model_path)]) == 2
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert err == ["fer predict: error: no camera found at index 0; connect one or pick another with --webcam N"]
    assert main(["predict", "--webcam", "3"]) == 2
    assert "no camera found at index 3" in capfd.readouterr().err


def test_summary_shares_per_bin_and_overall():
    def face(emotion):
        return {"box": [0, 0, 1, 1], "emotion": emotion, "scores": {e: float(e == emotion) for e in EMOTIONS},
                "top2": [emotion, "angry"]}

    frames = [FrameResult(0, 0.0, [face("happy"), face("sad")]), FrameResult(5, 0.5, [face("happy")]),
              FrameResult(10, 1.0, []), FrameResult(15, 1.5, [face("fear")])]
    summary = summarize_video(frames, bin_seconds=1.0)
    assert summary["faces"] == 4 and summary["frames_with_faces"] == 3
    first, second = summary["bins"]
    assert first["share"]["happy"] == pytest.approx(2 / 3, abs=1e-4) and first["share"]["sad"] == pytest.approx(1 / 3, abs=1e-4)
    assert second["frames"] == 2 and second["share"]["fear"] == 1.0
    assert summary["overall"]["share"]["happy"] == 0.5 and summary["overall"]["mean_scores"]["fear"] == 0.25
