"""Emotions of the faces in photos: `predict_expression` and batched classification.

Every input is opened upright (EXIF orientation applied), its faces are found with
`fer_lib.detection`, cropped the way FER2013 frames faces and turned into model input by
`fer_lib.preprocessing.to_face_array`, the function the training data goes through. The
crops of all inputs are classified together in batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Union

from fer_lib.backend import keras
import numpy as np
from PIL import Image, ImageOps

from fer_lib import paths
from fer_lib.detection import Box, clip_box, crop_face, detect_faces_batch, resolve_detector
from fer_lib.errors import DataError, FerError, ModelFileError
from fer_lib.labels import EMOTIONS
from fer_lib.preprocessing import MIN_FACE_SIDE, array_to_grayscale, open_image, to_face_array, to_grayscale

ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image]

DEFAULT_MODEL_PATH = paths.PRETRAINED_MODEL
# An input this small and this square is taken to be a face crop already, like FER2013's.
CROP_MAX_SIDE = 64
CROP_MAX_ASPECT = 1.25
PREDICT_BATCH_SIZE = 256
# How many inputs are held decoded at once by `classify_images`.
IMAGES_PER_CHUNK = 64


@dataclass
class ImageResult:
    """What one input yielded: its faces (dicts as `predict_expression` returns) or an error."""

    source: str
    faces: list[dict] = field(default_factory=list)
    error: str | None = None
    size: tuple[int, int] | None = None  # width, height after EXIF orientation


@dataclass
class DecodedImage:
    """An input decoded once: RGB (or gray) pixels for detection, gray for the crops."""

    source: str
    detect: np.ndarray  # HxWx3 or HxW uint8
    gray: np.ndarray  # HxW uint8, from the same conversion as the training data

    @property
    def is_face_crop(self) -> bool:
        height, width = self.gray.shape
        return max(height, width) <= CROP_MAX_SIDE and max(height, width) <= CROP_MAX_ASPECT * min(height, width)


def load_model_or_default(model: str | os.PathLike | keras.Model | None = None) -> keras.Model:
    """`model` itself, the .keras file it names, or the packaged pretrained model."""
    if isinstance(model, keras.Model):
        return model
    if model is None:
        if not DEFAULT_MODEL_PATH.is_file():
            raise ModelFileError(f"no packaged model at {DEFAULT_MODEL_PATH}; pass model= (Python) or --model M.keras (fer predict)")
        return _cached_model(str(DEFAULT_MODEL_PATH), DEFAULT_MODEL_PATH.stat().st_mtime_ns)
    path = Path(model).expanduser().resolve()
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    return _cached_model(str(path), stamp)


@lru_cache(maxsize=2)
def _cached_model(path: str, modified_ns: int) -> keras.Model:
    # Keyed on the modification time so a retrained file is picked up.
    from fer_lib.models import load_model

    return load_model(path)


def decode_image(image: ImageInput, source: str | None = None) -> DecodedImage:
    """Decode one input; DataError names it when it is not a usable image."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if path.is_dir():
            raise DataError(f"{path}: is a folder; pass image files (or use `fer predict FOLDER`)")
        return _decode_pil(open_image(path), str(path))
    if isinstance(image, Image.Image):
        return _decode_pil(ImageOps.exif_transpose(image), source or "<PIL image>")
    if isinstance(image, np.ndarray):
        return _decode_array(image, source or f"<array {'x'.join(map(str, image.shape))}>")
    raise DataError(f"cannot read {type(image).__name__} as an image; pass a path, a numpy array or a PIL image")


def _decode_pil(image: Image.Image, source: str) -> DecodedImage:
    _check_size(image.width, image.height, source)
    try:
        gray = to_grayscale(image)
        single_channel = image.mode in ("L", "1", "F") or image.mode.startswith("I")
        detect = gray if single_channel else np.asarray(image.convert("RGB"))
    except Exception as exc:  # odd modes Pillow cannot convert
        raise DataError(f"{source}: cannot convert image ({exc}); save it as an ordinary JPEG or PNG") from None
    return DecodedImage(source, detect, gray)


def _decode_array(array: np.ndarray, source: str) -> DecodedImage:
    if array.ndim not in (2, 3):
        raise DataError(f"{source}: expected an HxW, HxWx3 or HxWx4 image array, got shape {array.shape}")
    _check_size(array.shape[1], array.shape[0], source)
    try:
        gray = array_to_grayscale(array)
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from None
    colour = array.ndim == 3 and array.shape[2] in (3, 4) and array.dtype == np.uint8
    # Non-uint8 colour arrays are detected on their grayscale, which needs no rescaling rules.
    return DecodedImage(source, array[:, :, :3] if colour else gray, gray)


def _check_size(width: int, height: int, source: str) -> None:
    if min(width, height) < MIN_FACE_SIDE:
        raise DataError(f"{source}: image is {width}x{height} pixels, too small to hold a face (needs {MIN_FACE_SIDE}+ px a side)")


def face_boxes(images: list[DecodedImage], detector: str | None = None) -> list[list[Box]]:
    """FER-framed face boxes per image; a face crop's box is the whole image."""
    boxes: list[list[Box]] = [[] for _ in images]
    to_detect = [i for i, image in enumerate(images) if not image.is_face_crop]
    for i, image in enumerate(images):
        if image.is_face_crop:
            boxes[i] = [(0, 0, image.gray.shape[1], image.gray.shape[0])]
    found = detect_faces_batch([images[i].detect for i in to_detect], detector) if to_detect else []
    for i, image_boxes in zip(to_detect, found):
        boxes[i] = image_boxes
    return boxes


def face_input(gray: np.ndarray, box: Box) -> np.ndarray:
    """The 48x48 model input for `box` of a grayscale image, as training makes it."""
    return to_face_array(crop_face(gray, box))


def classify_faces(model: keras.Model, faces: np.ndarray) -> np.ndarray:
    """Probabilities (N, 7) for (N, 48, 48) uint8 faces, one model call per PREDICT_BATCH_SIZE faces."""
    from fer_lib.training import as_model_input

    if len(faces) == 0:
        return np.zeros((0, len(EMOTIONS)), np.float32)
    # predict_on_batch rather than predict: predict builds a data adapter on every call
    # (~65 ms on 2 cores), longer than the forward pass for the few faces of a photo.
    batches = [model.predict_on_batch(as_model_input(faces[i:i + PREDICT_BATCH_SIZE]))
               for i in range(0, len(faces), PREDICT_BATCH_SIZE)]
    return np.concatenate([np.asarray(b, np.float32) for b in batches])


def face_record(box: Box, probabilities: np.ndarray) -> dict:
    """One face as reported: box, top emotion, all seven scores and the two best labels."""
    order = np.argsort(-probabilities, kind="stable")
    return {
        "box": [int(v) for v in box],
        "emotion": EMOTIONS[order[0]],
        "scores": {name: float(p) for name, p in zip(EMOTIONS, probabilities)},
        "top2": [EMOTIONS[order[0]], EMOTIONS[order[1]]],
    }


def classify_decoded(images: list[DecodedImage], model: keras.Model, detector: str | None = None) -> list[list[dict]]:
    """Faces of already decoded images, all crops classified together."""
    boxes = face_boxes(images, detector)
    crops = [face_input(image.gray, box) for image, image_boxes in zip(images, boxes) for box in image_boxes]
    probabilities = classify_faces(model, np.stack(crops) if crops else np.zeros((0, 48, 48), np.uint8))
    results, k = [], 0
    for image, image_boxes in zip(images, boxes):
        results.append([face_record(clip_box(box, image.gray.shape), probabilities[k + i]) for i, box in enumerate(image_boxes)])
        k += len(image_boxes)
    return results


def classify_images(inputs: list[ImageInput], model: str | os.PathLike | keras.Model | None = None,
                    detector: str | None = None, sources: list[str] | None = None) -> list[ImageResult]:
    """An ImageResult per input; unusable inputs carry an `error` and do not stop the others.

    Inputs are decoded IMAGES_PER_CHUNK at a time so a long list does not fill memory.
    """
    model = load_model_or_default(model)
    detector = resolve_detector(detector)
    results: list[ImageResult] = []
    for start in range(0, len(inputs), IMAGES_PER_CHUNK):
        chunk = inputs[start:start + IMAGES_PER_CHUNK]
        chunk_sources = sources[start:start + IMAGES_PER_CHUNK] if sources else [None] * len(chunk)
        chunk_results, decoded, decoded_at = [], [], []
        for item, source in zip(chunk, chunk_sources):
            name = source or (str(item) if isinstance(item, (str, os.PathLike)) else None)
            try:
                image = decode_image(item, name)
            except FerError as exc:
                chunk_results.append(ImageResult(name or _describe(item), error=str(exc)))
                continue
            decoded_at.append(len(chunk_results))
            decoded.append(image)
            chunk_results.append(ImageResult(image.source, size=(image.gray.shape[1], image.gray.shape[0])))
        for position, faces in zip(decoded_at, classify_decoded(decoded, model, detector)):
            chunk_results[position].faces = faces
        results.extend(chunk_results)
    return results


def _describe(item) -> str:
    if isinstance(item, np.ndarray):
        return f"<array {'x'.join(map(str, item.shape))}>"
    return f"<{type(item).__name__}>"


def predict_expression(image: ImageInput | list[ImageInput], model: str | os.PathLike | keras.Model | None = None,
                       detector: str | None = None) -> list:
    """The emotion of every face in `image`: a path, numpy array (HxW, HxWx3 RGB, HxWx4) or PIL image.

    Returns one dict per face, left to right: ``box`` [x, y, w, h] in the upright image's
    pixels, ``emotion``, ``scores`` (the seven probabilities, in EMOTIONS order) and
    ``top2``. An input of at most 64x64 px and near-square is taken as a face crop and
    classified whole. A bad single input raises DataError.

    Given a list, returns one entry per input: its list of faces or, for an input that
    could not be used, ``{"error": "<why>"}``; the other inputs are still classified, and
    all their faces go through the model together. `model` is a .keras path or a loaded
    keras.Model (default: the packaged model); `detector` is ``"mtcnn"`` or ``"haar"``.
    """
    if isinstance(image, (list, tuple)):
        return [result.faces if result.error is None else {"error": result.error}
                for result in classify_images(list(image), model, detector)]
    model = load_model_or_default(model)
    return classify_decoded([decode_image(image)], model, detector)[0]
