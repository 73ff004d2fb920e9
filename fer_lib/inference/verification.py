"""A second opinion on YuNet's faces: MTCNN's output network (O-Net) and a duplicate check.

YuNet alone found faces in textures (the Hubble deep field) and sometimes drew a second,
looser box around a face it had already found; MTCNN, whose last stage is O-Net, did
neither. Each YuNet box is cropped the way MTCNN crops its candidates for O-Net (made
square about its centre, resized to 48x48) and scored by O-Net, whose weights ship in the
``mtcnn`` wheel. A face is kept when O-Net agrees enough, and more so where YuNet itself
is unsure; then a box that holds most of a smaller kept box is dropped as a duplicate.
The thresholds were chosen on composed FER2013 scenes (docs/inference.md).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from functools import lru_cache

import cv2
import numpy as np

from fer_lib.inference.detected import Box, Detection

ONET_SIZE = 48
# O-Net's face probability a YuNet box needs, and the higher one it needs where YuNet's
# own score is under YUNET_SURE. On the false-face benchmark (scripts/benchmark_false_faces.py)
# every false face that got through scored 0.70-0.76 by YuNet and under 0.5 by O-Net, while
# every true face that O-Net doubted had YuNet 0.81 or more: hence 0.8, not 0.7.
ONET_MIN_SCORE = 0.2
ONET_MIN_SCORE_UNSURE = 0.5
YUNET_SURE = 0.8
# A box is a duplicate when this share of a smaller kept box lies inside it.
DUPLICATE_SHARE = 0.7

_onet_lock = threading.Lock()


@lru_cache(maxsize=1)
def onet():
    """MTCNN's O-Net with the weights from the mtcnn wheel, loaded once."""
    import importlib.resources

    from mtcnn.stages import StageONet

    # An absolute path: given a bare name, mtcnn first looks in the working directory and
    # unpickles whatever file of that name it finds there.
    weights = importlib.resources.files("mtcnn.assets.weights") / "onet.lz4"
    from fer_lib.backend import keras

    # In float32 whatever policy the process has (training sets mixed bfloat16): its scores are thresholds.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        return StageONet(weights=str(weights)).model
    finally:
        keras.config.set_dtype_policy(previous)


def onet_inputs(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """(N, 48, 48, 3) float32 O-Net inputs: each box made square about its centre, as MTCNN does,
    resized bilinearly, pixels outside the image mid-gray, scaled to about [-1, 1]."""
    crops = np.empty((len(boxes), ONET_SIZE, ONET_SIZE, 3), np.float32)
    for i, box in enumerate(boxes):
        left, top, side = _onet_square(box)
        step = side / (ONET_SIZE - 1)  # corner-aligned sampling, like tf.image.crop_and_resize
        warp = np.array([[step, 0, left], [0, step, top]], np.float64)
        crop = cv2.warpAffine(rgb, warp, (ONET_SIZE, ONET_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        crops[i] = crop
    return (crops - 127.5) / 128.0


def onet_scores(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """O-Net's face probability for each box of one RGB uint8 image."""
    return onet_scores_batch([rgb], [boxes])[0]


def onet_scores_batch(rgbs: list[np.ndarray], boxes: list[list[Box]]) -> list[np.ndarray]:
    """`onet_scores` for several images, in one O-Net call."""
    return [scores for scores, _ in onet_batch(rgbs, boxes)]


def onet_batch(rgbs: list[np.ndarray], boxes: list[list[Box]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image, O-Net's face probability (N,) and its five landmarks (N, 5, 2: x, y in image pixels;
    eyes, nose, mouth corners) for each box, all images in one O-Net call."""
    counts = [len(image_boxes) for image_boxes in boxes]
    if not sum(counts):
        return [(np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)) for _ in counts]
    inputs = np.concatenate([onet_inputs(rgb, image_boxes) for rgb, image_boxes in zip(rgbs, boxes) if image_boxes])
    with _onet_lock:  # the Keras model is built once and shared by the detecting threads
        _, landmarks, probabilities = onet().predict_on_batch(inputs)
    scores = np.asarray(probabilities, np.float32)[:, 1]
    # O-Net gives the landmarks as shares of its square input: five x's, then five y's.
    shares = np.asarray(landmarks, np.float32).reshape(-1, 2, 5).transpose(0, 2, 1)
    squares = np.array([_onet_square(box) for image_boxes in boxes for box in image_boxes], np.float32).reshape(-1, 3)
    points = squares[:, None, :2] + shares * squares[:, None, 2:3]
    splits = np.cumsum(counts)[:-1]
    return list(zip(np.split(scores, splits), np.split(points, splits)))


def _onet_square(box: Box) -> tuple[float, float, float]:
    """Left, top and side of the square `onet_inputs` crops for `box`."""
    x, y, w, h = box
    side = max(w, h)
    return x + (w - side) / 2, y + (h - side) / 2, side


def kept_by_onet(yunet_score: float, onet_score: float) -> bool:
    """Whether O-Net agrees enough with a YuNet face of this score."""
    return onet_score >= (ONET_MIN_SCORE if yunet_score >= YUNET_SURE else ONET_MIN_SCORE_UNSURE)


def drop_duplicates(items: list, box_of=lambda item: item) -> list:
    """`items` (boxes, or faces whose box `box_of` gives) without those whose box holds
    DUPLICATE_SHARE of a smaller box of the list."""
    def holds(outer: Box, inner: Box) -> bool:
        width = min(outer[0] + outer[2], inner[0] + inner[2]) - max(outer[0], inner[0])
        height = min(outer[1] + outer[3], inner[1] + inner[3]) - max(outer[1], inner[1])
        return max(0, width) * max(0, height) >= DUPLICATE_SHARE * inner[2] * inner[3]

    boxes = [box_of(item) for item in items]
    return [item for item, box in zip(items, boxes)
            if not any(other[2] * other[3] < box[2] * box[3] and holds(box, other) for other in boxes)]


def verified_batch(rgbs: list[np.ndarray], found: list[list[Detection]]) -> list[list[Detection]]:
    """Per image, the YuNet faces O-Net agrees with, duplicates dropped.

    Each kept face takes O-Net's landmarks: YuNet's stay close to an upright face's when the
    head is tilted (its eyes level within a few degrees for a face turned by 25), O-Net's follow it.
    """
    checked = onet_batch(rgbs, [[face.box for face in image_found] for image_found in found])
    return [drop_duplicates([replace(face, landmarks=tuple((float(px), float(py)) for px, py in points))
                             for face, score, points in zip(image_found, scores, landmarks)
                             if kept_by_onet(face.score, float(score))], box_of=lambda face: face.box)
            for image_found, (scores, landmarks) in zip(found, checked)]
