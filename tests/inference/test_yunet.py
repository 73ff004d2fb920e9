"""YuNet (yuface): the default detector, its thread pinning, the ctypes call, big images, the fallback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from skimage import data

from fer_lib.errors import FerError
from fer_lib.inference import detection

needs_yunet = pytest.mark.skipif(not detection.detector_available("yunet"), reason="yuface has no wheel here")


@pytest.fixture()
def yuface_missing(monkeypatch):
    """`import yuface` fails as it does where pip found no wheel; caches and one-time messages reset."""
    monkeypatch.setitem(sys.modules, "yuface", None)  # makes the import raise ImportError
    monkeypatch.setattr(detection, "_said", set())
    detection._yuface.cache_clear()
    yield
    detection._yuface.cache_clear()


def test_without_yuface_the_default_falls_back_to_mtcnn_saying_so_once(yuface_missing, capfd):
    expected = "mtcnn" if detection.detector_available("mtcnn") else "haar"
    assert detection.default_detector() == expected
    assert detection.resolve_detector(None) == expected
    err = capfd.readouterr().err
    assert err.count("\n") == 1, err  # one line, and only the first time
    assert "yunet" in err and "yuface" in err and f"detecting faces with {expected}" in err
    assert not detection.detector_available("yunet")


def test_without_yuface_asking_for_yunet_is_one_line(yuface_missing):
    with pytest.raises(FerError, match="'yunet' is unavailable .*use --detector mtcnn or haar") as error:
        detection.resolve_detector("yunet")
    assert "\n" not in str(error.value)


def test_without_yuface_fer_predict_still_finds_the_face(yuface_missing, tmp_path, capsys):
    if not detection.detector_available("mtcnn"):
        pytest.skip("mtcnn not installed")
    from PIL import Image

    from fer_lib.cli import main
    from fer_lib.models.registry import build_model

    build_model("seed_cnn", seed=0).save(tmp_path / "m.keras")
    Image.fromarray(data.astronaut()).save(tmp_path / "a.jpg")
    assert main(["predict", str(tmp_path / "a.jpg"), "--model", str(tmp_path / "m.keras"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "detector mtcnn" in err and err.count("yunet is unavailable") == 1
    import json

    assert len(json.loads(out)[0]["faces"]) == 1


@needs_yunet
def test_without_mtcnn_yunet_is_unavailable_since_o_net_checks_its_faces(monkeypatch, capfd):
    find_spec = detection.importlib.util.find_spec
    monkeypatch.setattr(detection.importlib.util, "find_spec", lambda name, *a: None if name == "mtcnn" else find_spec(name, *a))
    monkeypatch.setattr(detection, "_said", set())
    assert not detection.detector_available("yunet") and detection.default_detector() == "haar"
    err = capfd.readouterr().err
    assert "mtcnn, whose O-Net checks YuNet's faces, is not installed" in err and "detecting faces with haar" in err
    with pytest.raises(FerError, match="'yunet' is unavailable .*pip install mtcnn"):
        detection.resolve_detector("yunet")


@needs_yunet
def test_yunet_is_the_default():
    assert detection.default_detector() == "yunet"


@needs_yunet
def test_the_ctypes_call_gives_what_yuface_gives():
    for image in (data.astronaut(), detection.as_detection_rgb(data.hubble_deep_field()[:800, :800])):
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        native = detection._run_yunet(bgr, detection._yunet_function())
        wrapper = detection._run_yunet(bgr, None)
        np.testing.assert_array_equal(native[native[:, 0] > 0], wrapper)  # yuface drops score 0


@needs_yunet
@pytest.mark.slow
def test_repeated_detection_does_not_leak_memory():
    # yuface's own wrapper leaks a 36 KB buffer per call: 18 MB over these 500.
    if detection._yunet_function() is None:
        pytest.skip("no ctypes entry point on this platform")
    small = np.ascontiguousarray(data.astronaut()[:120, :160])
    for _ in range(20):
        detection.detect_faces(small, "yunet")

    def resident_mb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    before = resident_mb()
    for _ in range(500):
        detection.detect_faces(small, "yunet")
    assert resident_mb() - before < 6


@needs_yunet
def test_frames_detected_in_parallel_match_one_at_a_time(monkeypatch):
    frames = [np.roll(data.astronaut(), 40 * i, axis=1) for i in range(6)]
    monkeypatch.setattr(detection, "YUNET_WORKERS", 1)
    one_at_a_time = detection.detect_faces_batch(frames, "yunet")
    monkeypatch.setattr(detection, "YUNET_WORKERS", 3)
    assert detection.detect_faces_batch(frames, "yunet") == one_at_a_time
    assert all(len(boxes) == 1 for boxes in one_at_a_time)


@needs_yunet
def test_big_images_are_detected_at_960_px_without_yuface_warning(monkeypatch, recwarn):
    seen = []
    run = detection._run_yunet
    monkeypatch.setattr(detection, "_run_yunet", lambda bgr, function: seen.append(bgr.shape) or run(bgr, function))
    big = cv2.resize(data.astronaut(), (2000, 1500), interpolation=cv2.INTER_CUBIC)
    [box] = detection.detect_faces(big, "yunet")
    assert seen == [(720, 960, 3)]
    # boxes come back in the big image's pixels
    expected = (170 * 2000 / 512, 62 * 1500 / 512, 106 * 2000 / 512, 106 * 1500 / 512)
    assert abs(box[0] - expected[0]) < 40 and abs(box[1] - expected[1]) < 40 and box[2] == box[3]
    assert not [w for w in recwarn if "too large" in str(w.message)]


@needs_yunet
def test_tiny_and_odd_images_give_no_faces_rather_than_errors():
    for shape in [(16, 16), (16, 400), (400, 16, 3), (30, 30, 4)]:
        assert detection.detect_faces(np.zeros(shape, np.uint8), "yunet") == []


PINNING = textwrap.dedent("""
    import os, sys
    import numpy as np
    from skimage import data
    {before}
    from fer_lib.inference import detection
    {after}
    from fer_lib.inference import verification
    image = data.astronaut()
    detection.resolve_detector("yunet")  # imports yuface
    verification.onet_scores(image, [(0, 0, 48, 48)])  # TensorFlow's threads start before the count
    threads = len(os.listdir("/proc/self/task"))
    for _ in range(3):
        detection.detect_faces(image, "yunet")
    print(len(os.listdir("/proc/self/task")) - threads, os.environ.get("OMP_NUM_THREADS"),
          os.environ.get("OMP_WAIT_POLICY"), detection.YUNET_THREADS)
""")


def run_pinning(before: str, env: dict, tmp_path, after: str = "") -> list[str]:
    import os

    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")} | env
    result = subprocess.run([sys.executable, "-c", PINNING.format(before=before, after=after)], capture_output=True,
                            text=True, env=environment, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@needs_yunet
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
@pytest.mark.parametrize("before,env,expected_env,own_runtime", [
    ("", {}, "None", True),  # yuface loaded by us: the OpenMP settings only for that import
    ("", {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "active"}, "2", True),  # the user's are left for the rest
    ("import yuface", {"OMP_NUM_THREADS": "2"}, "2", False),  # loaded before us: it may spin-wait
])
@pytest.mark.slow
def test_yunet_threads_sleep_when_waiting_or_are_one(before, env, expected_env, own_runtime, tmp_path):
    grown, omp, policy, threads = run_pinning(before, env, tmp_path)
    # A team of n threads is the caller and n - 1 OpenMP workers; with a runtime loaded by
    # someone else (whose wait policy is unknown) YuNet runs on the caller alone.
    assert int(grown) == (int(threads) - 1 if own_runtime else 0)
    assert omp == expected_env
    assert policy == env.get("OMP_WAIT_POLICY", "None")


@needs_yunet
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
@pytest.mark.slow
def test_the_thread_check_sees_openmp_threads(tmp_path):
    """Without the per-call pin, yuface imported with OMP_NUM_THREADS=2 starts a worker thread."""
    grown, *_ = run_pinning("import yuface", {"OMP_NUM_THREADS": "2"}, tmp_path,
                           after="detection._yunet_set_threads = lambda: None")
    assert int(grown) >= 1
