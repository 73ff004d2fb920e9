"""Faces drawn on their image: each box with its top two emotions and the detector's score.

What `fer predict --annotate` writes, the annotated video frames and the webcam window show.
"""

from __future__ import annotations

import cv2
import numpy as np

BOX_COLOUR = (0, 220, 0)  # RGB


def draw_faces(image, faces: list[dict]) -> np.ndarray:
    """An RGB copy of `image` with each face's box, top-two emotions and detection score drawn on it.

    `image` is what `predict_expression` took (a path, PIL image or array; drawn upright, as the
    boxes are) and `faces` what it returned for it.
    """
    rgb = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 else _upright_rgb(image)
    canvas = np.ascontiguousarray(rgb[:, :, :3] if rgb.ndim == 3 else np.repeat(rgb[:, :, None], 3, axis=2)).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        if "error" in face:  # a caller's box that could not be used: nothing to draw
            continue
        x, y, w, h = face["box"]
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), BOX_COLOUR, thickness)
        first, second = face["top2"]
        label = f"{first} {face['scores'][first]:.0%}, {second} {face['scores'][second]:.0%}"
        if face.get("detection_score") is not None:
            label += f" (face {face['detection_score']:.2f})"
        scale = max(0.4, w / 250)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y - th - base - 2 if y - th - base - 2 >= 0 else min(y + h, canvas.shape[0] - th - base - 2)
        cv2.rectangle(canvas, (x, top), (x + tw + 2, top + th + base + 2), BOX_COLOUR, -1)
        cv2.putText(canvas, label, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def _upright_rgb(image) -> np.ndarray:
    from fer_lib.inference.photos import decode_image

    return decode_image(image).detect
