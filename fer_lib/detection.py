"""Finding faces in photos and framing them the way FER2013 frames its 48x48 crops.

Two backends, both offline from what PyPI installs:

- ``mtcnn``: the MTCNN cascade (package ``mtcnn`` 1.0, weights inside its wheel, runs on
  TensorFlow). Higher recall; the default when installed.
- ``haar``: OpenCV's bundled Haar cascade (``haarcascade_frontalface_alt2``); needs only
  opencv-python-headless 4.x (OpenCV 5 dropped it).

`detect_faces` returns square boxes framed like FER2013 crops (see FRAMING), which may
reach past the image border; `crop_face` pads them, `clip_box` clips them for reporting.
docs/inference.md has the measured recall, speed and framing of both backends.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from fer_lib.errors import FerError

Box = tuple[int, int, int, int]  # x, y, width, height in pixels

DETECTORS = ("mtcnn", "haar")
# Larger images are downscaled to this longest side for detection and boxes mapped back:
# detection cost grows with pixels, and a face under ~2% of a 1024 px side is too small
# to read an expression from anyway.
DETECTION_MAX_SIDE = 1024
# MTCNN keeps its own final-stage threshold (0.8): on composed FER2013 scenes a stricter
# 0.9 or 0.95 lost 5-9 of 200 faces and removed no false detection (docs/inference.md).
HAAR_CASCADE = "haarcascade_frontalface_alt2.xml"
HAAR_MIN_NEIGHBORS = 3
HAAR_MIN_SIZE = 24  # the cascade's own window size


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
FRAMING = {"haar": Framing(scale=1.06), "mtcnn": Framing(scale=0.98)}


def default_detector() -> str:
    """``mtcnn`` when its package is installed, else ``haar``."""
    return "mtcnn" if importlib.util.find_spec("mtcnn") is not None else "haar"


def resolve_detector(name: str | None) -> str:
    """A valid backend name for `name` (None means `default_detector()`)."""
    if name is None:
        return default_detector()
    if name not in DETECTORS:
        raise FerError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if name == "mtcnn" and importlib.util.find_spec("mtcnn") is None:
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
    detector = resolve_detector(detector)
    framing = FRAMING[detector]
    raw = detect_raw_batch(images, detector)
    return [sorted((frame_box(box, framing) for box in boxes), key=lambda b: (b[0], b[1])) for boxes in raw]


def detect_raw_batch(images: list[np.ndarray], detector: str) -> list[list[Box]]:
    """The detector's own boxes (not FER-framed) for each image, in its pixels."""
    rgbs = [as_detection_rgb(image) for image in images]
    scaled, factors = zip(*(_downscale(rgb) for rgb in rgbs)) if rgbs else ((), ())
    if detector == "mtcnn":
        boxes = _detect_mtcnn(list(scaled))
    else:
        boxes = [_detect_haar(rgb) for rgb in scaled]
    return [[_unscale(box, factor) for box in found] for found, factor in zip(boxes, factors)]


def _downscale(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    longest = max(rgb.shape[:2])
    if longest <= DETECTION_MAX_SIDE:
        return rgb, 1.0
    factor = DETECTION_MAX_SIDE / longest
    size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), factor


def _unscale(box: Box, factor: float) -> Box:
    if factor == 1.0:
        return box
    return tuple(int(round(v / factor)) for v in box)


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


def _detect_mtcnn(rgbs: list[np.ndarray]) -> list[list[Box]]:
    # mtcnn stacks a batch into one tensor, so only images of one size go together.
    results: list[list[Box]] = [[] for _ in rgbs]
    by_shape: dict[tuple, list[int]] = {}
    for i, rgb in enumerate(rgbs):
        if min(rgb.shape[:2]) >= 24:  # smaller images make mtcnn's pyramid empty
            by_shape.setdefault(rgb.shape, []).append(i)
    for indices in by_shape.values():
        # min_face_size stays at its default 20: mtcnn 1.0 sizes its image pyramid for
        # 20 and silently finds nothing for other values; big images are downscaled instead.
        found = _mtcnn().detect_faces([rgbs[i] for i in indices], box_format="xywh")
        for i, faces in zip(indices, found):
            results[i] = [tuple(int(round(v)) for v in face["box"]) for face in faces if face["box"][2] > 0 and face["box"][3] > 0]
    return results


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
