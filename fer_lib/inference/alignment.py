"""Levelling a face's eyes before its FER2013-style crop.

Every FER2013 face is upright with its eyes about level; people's photos hold tilted heads.
Given the eyes a detector found (`Detection.eyes`), `face_crop` turns the square crop about
its centre by the eyes' angle, so the model sees the face as training did. Pixels the turned
square takes from beyond the image border repeat the border, as `crop_face` pads an upright
crop. docs/inference.md has the tilted-face benchmark that chose the limits below.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fer_lib.inference.detection import Box, Point, crop_face

# Eyes closer than this share of the crop's side are taken as a landmark failure: their
# angle says nothing reliable, so the face is cropped upright.
MIN_EYE_SHARE = 0.1
# Below this tilt the crop stays upright: turning resamples every pixel (a slight blur) for
# less than the tilt of FER2013's own faces.
MIN_ALIGN_DEGREES = 3.0
# Beyond this the eyes' order is ambiguous (a head on its side); such a face is cropped upright.
MAX_ALIGN_DEGREES = 60.0


def eye_angle(eyes: tuple[Point, Point]) -> float:
    """The eye line's angle in degrees, clockwise in image coordinates (y down); 0 when level."""
    (x1, y1), (x2, y2) = sorted(tuple(map(float, eye)) for eye in eyes)
    return math.degrees(math.atan2(y2 - y1, x2 - x1))


def alignment_angle(box: Box, eyes: tuple[Point, Point] | None, min_degrees: float = MIN_ALIGN_DEGREES) -> float:
    """The angle `face_crop` turns the crop of `box` by: the eyes' angle, or 0 where it does not apply."""
    if eyes is None or not all(math.isfinite(v) for point in eyes for v in point):
        return 0.0
    (x1, y1), (x2, y2) = eyes
    if math.hypot(x2 - x1, y2 - y1) < MIN_EYE_SHARE * box[2]:
        return 0.0
    angle = eye_angle(eyes)
    return angle if min_degrees <= abs(angle) <= MAX_ALIGN_DEGREES else 0.0


def rotated_crop(image: np.ndarray, box: Box, degrees: float) -> np.ndarray:
    """The pixels of `box` turned by `degrees` (clockwise, image coordinates) about its centre.

    At 0 degrees this is exactly `crop_face(image, box)`; beyond the border the edge repeats.
    """
    if degrees == 0.0:
        return crop_face(image, box)
    x, y, width, height = box
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    middle_x, middle_y = (width - 1) / 2, (height - 1) / 2
    centre_x, centre_y = x + middle_x, y + middle_y
    # Output pixel (u, v) reads the input at centre + R(theta) @ ((u, v) - middle).
    warp = np.array([[cos, -sin, centre_x - cos * middle_x + sin * middle_y],
                     [sin, cos, centre_y - sin * middle_x - cos * middle_y]], np.float64)
    return cv2.warpAffine(image, warp, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def face_crop(image: np.ndarray, box: Box, eyes: tuple[Point, Point] | None = None, align: bool = True) -> np.ndarray:
    """The FER2013-style crop of `box`, its eyes levelled when `align` and the eyes allow it."""
    return rotated_crop(image, box, alignment_angle(box, eyes) if align else 0.0)
