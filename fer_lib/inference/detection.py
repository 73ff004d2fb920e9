"""Finding faces in photos and framing them the way FER2013 frames its 48x48 crops.

Three backends, all offline from what PyPI installs:

- ``yunet``: libfacedetection's YuNet (package ``yuface`` 2023.5, weights compiled into
  its library, numpy only). About as accurate as MTCNN and several times faster; the
  default where ``yuface`` has a wheel (Linux x86-64 and Windows x64, CPython <= 3.11).
- ``mtcnn``: the MTCNN cascade (package ``mtcnn`` 1.0, weights inside its wheel, runs on
  TensorFlow). The default where ``yuface`` cannot be imported (said once on stderr).
- ``haar``: OpenCV's bundled Haar cascade (``haarcascade_frontalface_alt2``); needs only
  opencv-python-headless 4.x (OpenCV 5 dropped it).

`detect_faces` returns square boxes framed like FER2013 crops (see FRAMING), which may
reach past the image border; `crop_face` pads them, `clip_box` clips them for reporting.
`find_faces` returns them as `Detection`s, with the detector's score and the eyes, nose and
mouth corners where the detector gives them (YuNet and MTCNN; `fer_lib.inference.alignment`
levels the eyes with them).
docs/inference.md has the measured recall, speed and framing of the backends.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from fer_lib.errors import FerError
from fer_lib.inference.detected import Box, Detection, Point

__all__ = ["Box", "Detection", "Point"]  # detected faces' types, used through this module too


DETECTORS = ("yunet", "mtcnn", "haar")
# Larger images are downscaled to this longest side for detection and boxes mapped back:
# detection cost grows with pixels, and a face under ~2% of a 1024 px side is too small
# to read an expression from anyway.
DETECTION_MAX_SIDE = 1024
# MTCNN keeps its own final-stage threshold (0.8): on composed FER2013 scenes a stricter
# 0.9 or 0.95 lost 5-9 of 200 faces and removed no false detection (docs/inference.md).
HAAR_CASCADE = "haarcascade_frontalface_alt2.xml"
HAAR_MIN_NEIGHBORS = 3
HAAR_MIN_SIZE = 24  # the cascade's own window size
# yuface warns that YuNet may degrade on images over 960 px a side, so it gets 960. Smaller
# photos are detected at their own size: downscaling them would be faster but YuNet then
# misses the smaller faces (scripts/benchmark_false_faces.py --yunet-max-side).
YUNET_MAX_SIDE = 960
# YuNet scores faces in whole percent; lower-scoring ones are dropped, the others checked by
# MTCNN's O-Net (fer_lib.inference.verification), which lets a lower bar find more faces.
YUNET_MIN_SCORE = 0.5
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# YuNet runs on OpenMP. One image is split over this many threads, but only with the
# passive wait policy, which yuface's private libgomp reads when it is loaded: spinning
# threads (the default) waited for each other at every layer and made two threads several
# times slower than one whenever the other core was busy; sleeping ones cost about as much
# as one thread then, and are faster on idle cores.
YUNET_THREADS = max(1, min(4, _CPUS))
# Several images (video frames, a folder of photos) are detected this many at a time, each
# on its own single YuNet thread.
YUNET_WORKERS = max(1, min(4, _CPUS))


@dataclass(frozen=True)
class Framing:
    """How to turn a detector's box into a FER2013-style crop.

    The square crop is centred on the detector box's centre shifted by (dx, dy) box
    widths/heights, with side = scale x the box's height. Measured by pasting FER2013 test
    faces (whose 48x48 frame is known) into scenes and comparing with what the detector
    returned (median ratios, `measure_framing`).
    """

    scale: float
    dx: float = 0.0
    dy: float = 0.0


# Haar boxes are square and almost exactly FER2013's frame (both are Viola-Jones style,
# mid-forehead to chin); MTCNN boxes are taller than wide and their height is the frame.
# YuNet boxes are also taller than wide (h/w ~1.26) and their height is the frame: measured
# with `measure_framing` on FER2013 test faces pasted into the benchmark's scenes
# (docs/inference.md); the centre offsets, about 1% of the box, are left out as for MTCNN.
FRAMING = {"haar": Framing(scale=1.06), "mtcnn": Framing(scale=0.98), "yunet": Framing(scale=1.0)}

_said: set[str] = set()  # one-time messages already printed


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(f"fer_lib: {message}", file=sys.stderr, flush=True)


def detector_available(name: str) -> bool:
    """Whether backend `name` can run here (its packages import; YuNet's boxes are checked by MTCNN's O-Net)."""
    if name == "yunet":
        return _yuface() is not None and detector_available("mtcnn")
    if name == "mtcnn":
        return importlib.util.find_spec("mtcnn") is not None
    return name in DETECTORS


def default_detector() -> str:
    """``yunet`` when ``yuface`` imports, else ``mtcnn`` (saying why, once), else ``haar``."""
    if detector_available("yunet"):
        return "yunet"
    fallback = "mtcnn" if detector_available("mtcnn") else "haar"
    _say_once(f"face detector yunet is unavailable ({_yuface_problem()}); detecting faces with {fallback}")
    return fallback


def resolve_detector(name: str | None) -> str:
    """A valid backend name for `name` (None means `default_detector()`)."""
    if name is None:
        return default_detector()
    if name not in DETECTORS:
        raise FerError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if name == "yunet" and not detector_available("yunet"):
        raise FerError(f"face detector 'yunet' is unavailable ({_yuface_problem()}); use --detector mtcnn or haar")
    if name == "mtcnn" and not detector_available("mtcnn"):
        raise FerError("face detector 'mtcnn' is not installed; run `pip install mtcnn` or use --detector haar")
    return name


def as_detection_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 for the detectors from HxW, HxWx1, HxWx3 or HxWx4 uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"detection needs uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[:, :, :3])
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {image.shape}")


def detect_faces(image: np.ndarray, detector: str | None = None) -> list[Box]:
    """FER2013-framed square face boxes in `image` (RGB or grayscale uint8), left to right."""
    return detect_faces_batch([image], detector)[0]


def detect_faces_batch(images: list[np.ndarray], detector: str | None = None) -> list[list[Box]]:
    """`detect_faces` for several images (video frames of one size are detected together)."""
    return [[face.box for face in faces] for faces in find_faces_batch(images, detector)]


def find_faces(image: np.ndarray, detector: str | None = None) -> list[Detection]:
    """The faces in `image` as `Detection`s with FER2013-framed boxes, left to right."""
    return find_faces_batch([image], detector)[0]


def find_faces_batch(images: list[np.ndarray], detector: str | None = None) -> list[list[Detection]]:
    """`find_faces` for several images (video frames of one size are detected together)."""
    detector = resolve_detector(detector)
    framing = FRAMING[detector]
    raw = detect_raw_faces_batch(images, detector)
    return [sorted((replace(face, box=frame_box(face.box, framing)) for face in faces), key=lambda f: (f.box[0], f.box[1]))
            for faces in raw]


def detect_raw_batch(images: list[np.ndarray], detector: str) -> list[list[Box]]:
    """The detector's own boxes (not FER-framed) for each image, in its pixels."""
    return [[face.box for face in faces] for faces in detect_raw_faces_batch(images, detector)]


def detect_raw_faces_batch(images: list[np.ndarray], detector: str) -> list[list[Detection]]:
    """The detector's own faces (boxes not FER-framed) for each image, in its pixels."""
    rgbs = [as_detection_rgb(image) for image in images]
    max_side = YUNET_MAX_SIDE if detector == "yunet" else DETECTION_MAX_SIDE
    scaled, factors = zip(*(_downscale(rgb, max_side) for rgb in rgbs)) if rgbs else ((), ())
    if detector == "yunet":
        found = _detect_yunet_batch(list(scaled))
    elif detector == "mtcnn":
        found = _detect_mtcnn(list(scaled))
    else:
        found = _detect_haar_batch(list(scaled))
    return [[_unscale(face, factor) for face in faces] for faces, factor in zip(found, factors)]


def _downscale(rgb: np.ndarray, max_side: int = DETECTION_MAX_SIDE) -> tuple[np.ndarray, float]:
    longest = max(rgb.shape[:2])
    if longest <= max_side:
        return rgb, 1.0
    factor = max_side / longest
    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), factor


def _unscale(face: Detection, factor: float) -> Detection:
    if factor == 1.0:
        return face
    landmarks = tuple((x / factor, y / factor) for x, y in face.landmarks) if face.landmarks else face.landmarks
    return replace(face, box=tuple(int(round(v / factor)) for v in face.box), landmarks=landmarks)


@lru_cache(maxsize=1)
def _yuface():
    """The ``yuface`` module, its OpenMP runtime loaded with passive waiting where we import it; or None."""
    global _yunet_image_threads
    try:
        loaded_before = "yuface" in sys.modules
        module = _import_yuface()
    except Exception as exc:  # ImportError without a wheel; OSError when its library cannot load
        _yuface_errors.append(exc)
        return None
    # Imported before us, its runtime may spin-wait, so it gets one thread.
    _yunet_image_threads = 1 if loaded_before else YUNET_THREADS
    return module


_yuface_errors: list[Exception] = []
_yunet_image_threads = 1  # threads for one image, set when yuface is imported


def _yuface_problem() -> str:
    if _yuface() is not None:  # then what is missing is the package whose O-Net checks its faces
        return "mtcnn, whose O-Net checks YuNet's faces, is not installed; pip install mtcnn"
    error = _yuface_errors[-1] if _yuface_errors else None
    if error is None or isinstance(error, ImportError) and getattr(error, "name", None) == "yuface":
        return "yuface is not installed; it has wheels only for CPython <= 3.11 on Linux x86-64 and Windows x64"
    detail = str(error).splitlines()[0] if str(error) else ""
    return f"yuface did not load: {type(error).__name__}: {detail}"


def _import_yuface():
    # libgomp reads its variables once, when it is loaded, which for the private copy in
    # yuface's wheel is this import; they are restored so nothing else sees them.
    settings = {"OMP_NUM_THREADS": str(YUNET_THREADS), "OMP_WAIT_POLICY": "PASSIVE"}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        import yuface
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return yuface


@lru_cache(maxsize=1)
def _yunet_set_threads():
    """omp_set_num_threads of the OpenMP runtime private to yuface's wheel, or None.

    Covers yuface having been imported before us with other settings; it sets the calling
    thread's count, so it is called before every detection.
    """
    package = Path(_yuface().__file__).parent
    for library in sorted(package.parent.glob("yuface.libs/libgomp*")):
        try:
            return ctypes.CDLL(str(library)).omp_set_num_threads
        except (OSError, AttributeError):
            continue
    return None


# libfacedetection's facedetect_cnn as the C++ compilers of yuface's wheels export it.
_FACEDETECT_CNN_SYMBOLS = ("_Z14facedetect_cnnPhS_iii", "?facedetect_cnn@@YAPEAHPEAE0HHH@Z")
_YUNET_RESULT_BYTES = 0x9000  # an int32 count, then 16 int16 per face: score %, x, y, w, h, 5 landmarks
_yunet_lock = threading.Lock()
_yunet_native = None  # facedetect_cnn through ctypes, once loaded and warmed up


def _yunet_function():
    """libfacedetection's facedetect_cnn called through ctypes, or None to use ``yuface.detect``.

    yuface's own wrapper never frees the 36 KB result buffer it allocates on every call
    (70 MB per 2,000 detections, so gigabytes over an hour of video) and holds the GIL while
    it detects. Through ctypes the buffer is ours and the GIL is released, so frames can be
    detected on two cores at once. The first call fills the model's global weights without
    a lock of its own, so it is made here, once, before any concurrent use.
    """
    global _yunet_native
    with _yunet_lock:
        if _yunet_native is None:
            _yunet_native = False
            package = Path(_yuface().__file__).parent
            for library in sorted(package.glob("*facedetection*")):
                try:
                    handle = ctypes.CDLL(str(library))
                except OSError:
                    continue
                function = next((getattr(handle, name) for name in _FACEDETECT_CNN_SYMBOLS if hasattr(handle, name)), None)
                if function is not None:
                    function.restype = ctypes.c_void_p
                    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
                    _yunet_native = function
                    _pin_yunet_threads()
                    _run_yunet(np.zeros((32, 32, 3), np.uint8), function)  # the warm-up call
                    break
        return _yunet_native or None


def _run_yunet(bgr: np.ndarray, function) -> np.ndarray:
    """(N, 15) int: score in percent, x, y, w, h, then five landmarks' x, y for a contiguous BGR uint8 image."""
    if function is None:
        scores, boxes, landmarks = _yuface().detect(bgr, conf=0.0)
        if not len(scores):
            return np.zeros((0, 15), int)
        return np.column_stack([scores, boxes, np.reshape(landmarks, (len(scores), 10))]).astype(int)
    result = np.empty(_YUNET_RESULT_BYTES, np.uint8)
    function(result.ctypes.data, bgr.ctypes.data, bgr.shape[1], bgr.shape[0], bgr.strides[0])
    count = int(result[:4].view(np.int32)[0])
    return result[4:4 + 32 * count].view(np.int16).reshape(count, 16)[:, :15].astype(int)


def _pin_yunet_threads(threads: int = 1) -> None:
    set_threads = _yunet_set_threads()
    if set_threads is not None:
        set_threads(threads)


def _detect_yunet(rgb: np.ndarray, threads: int = 1, min_score: float | None = None) -> list[Detection]:
    """YuNet's faces scoring at least `min_score` (default YUNET_MIN_SCORE)."""
    _pin_yunet_threads(threads)
    # YuNet wants contiguous BGR (given a strided view, yuface reads the wrong pixels).
    found = _run_yunet(np.ascontiguousarray(rgb[:, :, ::-1]), _yunet_function())
    keep = found[:, 0] >= round(100 * (YUNET_MIN_SCORE if min_score is None else min_score))
    return [Detection(tuple(int(v) for v in row[1:5]), float(row[0]) / 100,
                      tuple((float(row[i]), float(row[i + 1])) for i in range(5, 15, 2)))
            for row in found[keep] if row[3] > 0 and row[4] > 0]


def _detect_yunet_batch(rgbs: list[np.ndarray]) -> list[list[Detection]]:
    from fer_lib.inference.verification import verified_batch

    # Each worker runs YuNet on one thread; they share nothing but the read-only weights.
    # Unlike YuNet's own OpenMP threads they never wait for each other, so a busy core
    # slows them no more than it slows one.
    workers = min(YUNET_WORKERS, len(rgbs))
    if workers < 2 or _yunet_function() is None:  # yuface's wrapper holds the GIL: no gain
        found = [_detect_yunet(rgb, _yunet_image_threads) for rgb in rgbs]
    else:
        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(_detect_yunet, rgbs))
    return verified_batch(rgbs, found)


@lru_cache(maxsize=1)
def _haar_cascade() -> cv2.CascadeClassifier:
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)  # gone in OpenCV 5
    path = (folder or "") + HAAR_CASCADE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise FerError(f"{path}: OpenCV's Haar cascade is missing; install opencv-python-headless>=4.9,<5")
    return cascade


def _detect_haar(rgb: np.ndarray) -> list[Box]:
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    if min(gray.shape) < HAAR_MIN_SIZE:
        return []
    found = _haar_cascade().detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=HAAR_MIN_NEIGHBORS, minSize=(HAAR_MIN_SIZE, HAAR_MIN_SIZE)
    )
    return [tuple(int(v) for v in box) for box in found]


def _detect_haar_batch(rgbs: list[np.ndarray]) -> list[list[Detection]]:
    """Haar's boxes, scored by O-Net (the cascade has no score of its own), or 1.0 without mtcnn."""
    boxes = [_detect_haar(rgb) for rgb in rgbs]
    if not detector_available("mtcnn"):
        return [[Detection(box, 1.0) for box in image_boxes] for image_boxes in boxes]
    from fer_lib.inference.verification import onet_scores_batch

    scores = onet_scores_batch(rgbs, boxes)
    return [[Detection(box, float(score)) for box, score in zip(image_boxes, image_scores)]
            for image_boxes, image_scores in zip(boxes, scores)]


@lru_cache(maxsize=1)
def _mtcnn():
    import importlib.resources

    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    # Absolute paths on purpose: given a bare name, mtcnn first looks for the file in the
    # working directory and unpickles whatever it finds there.
    weights = importlib.resources.files("mtcnn.assets.weights")
    stages = [StagePNet(weights=str(weights / "pnet.lz4")), StageRNet(weights=str(weights / "rnet.lz4")),
              StageONet(weights=str(weights / "onet.lz4"))]
    return MTCNN(stages=stages)


_MTCNN_LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _detect_mtcnn(rgbs: list[np.ndarray]) -> list[list[Detection]]:
    # mtcnn stacks a batch into one tensor, so only images of one size go together.
    results: list[list[Detection]] = [[] for _ in rgbs]
    by_shape: dict[tuple, list[int]] = {}
    for i, rgb in enumerate(rgbs):
        if min(rgb.shape[:2]) >= 24:  # smaller images make mtcnn's pyramid empty
            by_shape.setdefault(rgb.shape, []).append(i)
    for indices in by_shape.values():
        # min_face_size stays at its default 20: mtcnn 1.0 sizes its image pyramid for
        # 20 and silently finds nothing for other values; big images are downscaled instead.
        found = _mtcnn().detect_faces([rgbs[i] for i in indices], box_format="xywh")
        for i, faces in zip(indices, found):
            results[i] = [_mtcnn_detection(face) for face in faces if face["box"][2] > 0 and face["box"][3] > 0]
    return results


def _mtcnn_detection(face: dict) -> Detection:
    points = face.get("keypoints") or {}
    landmarks = tuple((float(points[name][0]), float(points[name][1])) for name in _MTCNN_LANDMARKS) \
        if all(name in points for name in _MTCNN_LANDMARKS) else None
    return Detection(tuple(int(round(v)) for v in face["box"]), float(face.get("confidence", 1.0)), landmarks)


def frame_box(box: Box, framing: Framing) -> Box:
    """The square FER2013-style crop for a detector box (may extend past the image)."""
    x, y, w, h = box
    side = max(1, int(round(framing.scale * h)))
    cx = x + w / 2 + framing.dx * w
    cy = y + h / 2 + framing.dy * h
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side, side


def clip_box(box: Box, shape: tuple[int, ...]) -> Box:
    """`box` clipped to an image of `shape` (height, width, ...)."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(shape[1], x + w), min(shape[0], y + h)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def crop_face(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `box`, edge-padded where the box reaches past the image border.

    Padding rather than shifting keeps the face centred as in FER2013's crops.
    """
    x, y, w, h = box
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} lies outside the {width}x{height} image")
    crop = image[y0:y1, x0:x1]
    pad = ((y0 - y, y + h - y1), (x0 - x, x + w - x1)) + ((0, 0),) * (image.ndim - 2)
    if any(before or after for before, after in pad):
        crop = np.pad(crop, pad, mode="edge")
    return crop


# --- Measuring detectors on composed scenes (used by tests and scripts/benchmark_inference.py)


def compose_face_scene(faces: list[np.ndarray], background: np.ndarray, rng: np.random.Generator,
                       min_side: int = 60, max_side: int = 200, gap: int = 10) -> tuple[np.ndarray, list[Box]]:
    """Paste grayscale face crops, upscaled to random sizes, at random non-overlapping places.

    Returns the RGB scene and each pasted face's square, which is the face's FER2013 frame.
    """
    scene = as_detection_rgb(background).copy()
    height, width = scene.shape[:2]
    placed: list[Box] = []
    for face in faces:
        for _ in range(100):
            side = int(rng.integers(min_side, max_side + 1))
            if side >= min(width, height):
                continue
            x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
            if not any(x < px + pw + gap and px < x + side + gap and y < py + ph + gap and py < y + side + gap
                       for px, py, pw, ph in placed):
                break
        else:
            continue  # no room left for this face
        pasted = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
        scene[y:y + side, x:x + side] = pasted[:, :, None] if pasted.ndim == 2 else pasted[:, :, :3]
        placed.append((x, y, side, side))
    return scene, placed


def box_iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def box_inside(inner: Box, outer: Box) -> bool:
    """Whether `inner` lies wholly within `outer`."""
    return (outer[0] <= inner[0] and outer[1] <= inner[1]
            and inner[0] + inner[2] <= outer[0] + outer[2] and inner[1] + inner[3] <= outer[1] + outer[3])


def match_boxes(truth: list[Box], found: list[Box], min_iou: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one (truth index, found index) pairs with IoU >= `min_iou`, best first."""
    pairs = sorted(((box_iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    used_truth, used_found, matches = set(), set(), []
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in used_truth and j not in used_found:
            used_truth.add(i)
            used_found.add(j)
            matches.append((i, j))
    return matches


def measure_framing(truth: list[Box], raw: list[Box]) -> list[tuple[float, float, float]]:
    """(truth side / box height, centre dx / box width, centre dy / box height) per match.

    Matched loosely (IoU >= 0.3) since raw boxes are not FER-framed yet.
    """
    ratios = []
    for i, j in match_boxes(truth, raw, min_iou=0.3):
        t, r = truth[i], raw[j]
        ratios.append((t[3] / r[3], (t[0] + t[2] / 2 - r[0] - r[2] / 2) / r[2], (t[1] + t[3] / 2 - r[1] - r[3] / 2) / r[3]))
    return ratios
