"""`fer predict --webcam`: a live Tk window on a (virtual) display, recording, and no-display errors.

The camera is a video file opened through the same `cv2.VideoCapture` the webcam path uses.
The window tests need a display: the real one, or Xvfb when installed; otherwise they skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest
from test_video import write_face_video

from fer_lib.errors import FerError
from fer_lib.inference import live_window, video


@pytest.fixture(scope="module")
def untrained_model():
    from fer_lib.models.registry import build_model

    return build_model("seed_cnn", seed=0)


@pytest.fixture
def fake_camera(tmp_path, monkeypatch):
    """Camera 0 is a 12-frame clip of a face; returns the clip's path."""
    clip = write_face_video(tmp_path / "camera.mp4", frames=12)
    monkeypatch.setattr(video, "open_camera", lambda index: cv2.VideoCapture(str(clip)))
    return clip


@pytest.fixture(scope="module")
def display():
    """A display for Tk windows: the existing one, else a private Xvfb server."""
    if not live_window.tk_available():
        pytest.skip("no tkinter in this Python")
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if not shutil.which("Xvfb"):
        pytest.skip("no display and no Xvfb to make one")
    name = ":97"
    server = subprocess.Popen(["Xvfb", name, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    if server.poll() is not None:
        pytest.skip("Xvfb did not start")
    yield name
    server.terminate()
    server.wait()


def _frames_shown(monkeypatch):
    shown = []
    original = live_window.TkWindow.show

    def spy(self, rgb):
        shown.append(rgb.copy())
        return original(self, rgb)

    monkeypatch.setattr(live_window.TkWindow, "show", spy)
    return shown


def test_live_tk_window_shows_every_annotated_frame(display, fake_camera, untrained_model, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setattr(live_window, "opencv_has_gui", lambda: False)  # headless OpenCV, as installed
    assert live_window.window_backend() == "tk"
    shown = _frames_shown(monkeypatch)
    frames = video.run_webcam(0, untrained_model, "haar", record_dir=tmp_path / "rec", say=lambda m: None)
    assert frames == len(shown) == 12
    assert shown[0].shape == (240, 320, 3)
    # Boxes and labels are drawn: the shown frame differs from the raw camera frame around the face.
    raw = cv2.cvtColor(cv2.VideoCapture(str(fake_camera)).read()[1], cv2.COLOR_BGR2RGB)
    assert np.abs(shown[0].astype(int) - raw.astype(int)).max() > 100
    recorded = cv2.VideoCapture(str(tmp_path / "rec" / "webcam.annotated.mp4"))
    assert int(recorded.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_q_key_closes_the_tk_window(display, monkeypatch):
    monkeypatch.setenv("DISPLAY", display)
    window = live_window.TkWindow()
    frame = np.zeros((48, 64, 3), np.uint8)
    try:
        assert window.show(frame)
        window.root.event_generate("<Key>", keysym="q", when="now")
        assert not window.show(frame)
    finally:
        window.close()


def test_no_display_records_and_says_so(fake_camera, untrained_model, monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    messages = []
    frames = video.run_webcam(0, untrained_model, "haar", record_dir=tmp_path, say=messages.append)
    assert frames == 12
    assert messages == [f"no live window (no display (DISPLAY and WAYLAND_DISPLAY are unset)); "
                        f"recording to {tmp_path / 'webcam.annotated.mp4'} until Ctrl+C"]
    assert int(cv2.VideoCapture(str(tmp_path / "webcam.annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    # A second recording goes beside the first instead of replacing it.
    video.run_webcam(0, untrained_model, "haar", record_dir=tmp_path, say=messages.append)
    assert messages[-1].endswith(f"recording to {tmp_path / 'webcam-2.annotated.mp4'} until Ctrl+C")
    assert int(cv2.VideoCapture(str(tmp_path / "webcam.annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert int(cv2.VideoCapture(str(tmp_path / "webcam-2.annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_no_display_and_no_record_dir_is_one_line(fake_camera, untrained_model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(FerError) as error:
        video.run_webcam(0, untrained_model, "haar")
    assert str(error.value) == ("cannot open a live window: no display (DISPLAY and WAYLAND_DISPLAY are unset); "
                                "pass --annotate DIR to record the annotated stream instead")


def test_unreachable_display_is_one_line(fake_camera, untrained_model, monkeypatch, tmp_path):
    if not live_window.tk_available():
        pytest.skip("no tkinter in this Python")
    monkeypatch.setenv("DISPLAY", ":59")  # nothing listens there, like a stale ssh forwarding
    monkeypatch.setattr(live_window, "opencv_has_gui", lambda: False)
    with pytest.raises(FerError, match=r"cannot open a window on display ':59' \(.*\); pass --annotate DIR"):
        video.run_webcam(0, untrained_model, "haar")
    messages = []
    assert video.run_webcam(0, untrained_model, "haar", record_dir=tmp_path, say=messages.append) == 12
    assert messages[0].startswith("no live window (cannot open a window on display ':59'")


def test_wayland_without_x11_uses_no_tk(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setattr(live_window, "opencv_has_gui", lambda: False)
    assert live_window.window_backend() is None
