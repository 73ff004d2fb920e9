"""Emotions of the faces in photos: `predict_expression` and batched classification.

Every input is opened upright (EXIF orientation applied), its faces are found with
`fer_lib.inference.detection` (or given by the caller as boxes), cropped the way FER2013 frames faces
and turned into model input by `fer_lib.data.preprocessing.to_face_array`, the function the
training data goes through. The crops of all inputs are classified together in batches.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fer_lib import paths
from fer_lib.backend import keras
from fer_lib.data.preprocessing import MIN_FACE_SIDE, array_to_grayscale, open_image, to_face_array, to_grayscale
from fer_lib.errors import DataError, FerError, ModelFileError
from fer_lib.inference.alignment import face_crop
from fer_lib.inference.detection import Box, Detection, Point, clip_box, find_faces_batch, resolve_detector
from fer_lib.labels import classes_for

ImageInput = str | os.PathLike | np.ndarray | Image.Image

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


def load_model_or_default(model: str | os.PathLike | keras.Model | None = None, runtime: str = "keras",
                          precision: str = "float32"):
    """`model` itself, the packaged model it names ("fer2013", "ferplus"), the .keras file it names,
    or the default packaged model; with `runtime` "onnx" or "tflite", that model (or the .onnx/.tflite
    file `model` names) run by onnxruntime or TFLite (`fer_lib.inference.export.load_classifier`, which
    exports a .keras model once and checks it). `classifier_classes` gives the result's classes.
    A Keras model computes in float32 (`precision` "float32", `fer_lib.models.serving`), like the exported
    files, or in the precision it was trained in ("trained"); exported files always compute in float32."""
    from fer_lib.inference.exported import ExportedClassifier
    from fer_lib.models.serving import check_serving_precision, serving_model

    check_serving_precision(precision)
    if isinstance(model, ExportedClassifier):
        return model
    if isinstance(model, keras.Model):
        return serving_model(model, precision) if runtime == "keras" else _cached_classifier(model, runtime)
    path = _model_path(model)
    if path.suffix.lower() in (".onnx", ".tflite") and runtime == "keras":
        runtime = path.suffix.lower().lstrip(".")
    if runtime != "keras":
        return _cached_classifier(path, runtime)
    return _cached_model(str(path), path.stat().st_mtime_ns if path.is_file() else 0, precision)


def _model_path(model: str | os.PathLike | None) -> Path:
    """The absolute path of the model file `model` names (see `paths.resolve_model`)."""
    if model is None:
        # DEFAULT_MODEL_PATH rather than resolve_model(None): what tests (and users) patch to move the default.
        if not DEFAULT_MODEL_PATH.is_file():
            raise ModelFileError(f"no packaged model at {DEFAULT_MODEL_PATH}; pass model= (Python) or --model M.keras (fer predict)")
        return DEFAULT_MODEL_PATH
    return paths.resolve_model(model).resolve()


def _cached_classifier(model, runtime: str):
    from fer_lib.inference.export import load_classifier

    if isinstance(model, keras.Model):
        return load_classifier(model, runtime)
    path = _model_path(model)
    return _cached_exported(str(path), path.stat().st_mtime_ns if path.is_file() else 0, runtime)


@lru_cache(maxsize=2)
def _cached_exported(path: str, modified_ns: int, runtime: str):
    from fer_lib.inference.export import load_classifier

    return load_classifier(paths.resolve_model(path), runtime)


@lru_cache(maxsize=2)
def _cached_model(path: str, modified_ns: int, precision: str = "float32") -> keras.Model:
    # Keyed on the modification time so a retrained file is picked up.
    from fer_lib.models.serving import load_for_inference

    return load_for_inference(paths.resolve_model(path), precision=precision)


def classifier_classes(model) -> tuple[str, ...]:
    """The classes `model` predicts, in output order: a keras.Model's (`fer_lib.models.saving.model_classes`)
    or an exported classifier's (`ExportedClassifier.classes`)."""
    from fer_lib.inference.exported import ExportedClassifier
    from fer_lib.models.saving import model_classes

    if isinstance(model, ExportedClassifier):
        return tuple(model.classes)
    try:
        return model_classes(model)
    except ValueError as exc:
        raise ModelFileError(f"{getattr(model, 'name', type(model).__name__)}: {exc}; "
                             "save it with fer_lib's save_model, which records its classes") from None


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


def face_detections(images: list[DecodedImage], detector: str | None = None) -> list[list[Detection]]:
    """The faces of each image, FER-framed; a face crop is one face, the whole image, with no score."""
    faces: list[list[Detection]] = [[] for _ in images]
    to_detect = [i for i, image in enumerate(images) if not image.is_face_crop]
    for i, image in enumerate(images):
        if image.is_face_crop:
            faces[i] = [Detection((0, 0, image.gray.shape[1], image.gray.shape[0]), None)]
    found = find_faces_batch([images[i].detect for i in to_detect], detector) if to_detect else []
    for i, image_faces in zip(to_detect, found):
        faces[i] = image_faces
    return faces


def face_boxes(images: list[DecodedImage], detector: str | None = None) -> list[list[Box]]:
    """FER-framed face boxes per image; a face crop's box is the whole image."""
    return [[face.box for face in faces] for faces in face_detections(images, detector)]


def face_input(gray: np.ndarray, box: Box, eyes: tuple[Point, Point] | None = None, align: bool = True) -> np.ndarray:
    """The 48x48 model input for `box` of a grayscale image, as training makes it, eyes levelled when given."""
    return to_face_array(face_crop(gray, box, eyes, align))


def check_min_face_score(value) -> float | None:
    """`value` as a detection-score bar (None: keep every face); DataError unless it is a number from 0 to 1."""
    if value is None:
        return None
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise DataError(f"min_face_score must be a number from 0 to 1 (the detector's score a face needs), got {_shown(value)}")
    return float(value)


def check_tta(tta, model=None) -> str:
    """`tta` as a test-time augmentation mode (TTA_MODES), or DataError in one line naming it and the choices; with
    `model`, also FerError when it cannot take ten crops (an exported file that does not record its crop)."""
    from fer_lib.evaluation.prediction import TTA_MODES, model_crop_size

    if not isinstance(tta, str) or tta not in TTA_MODES:
        raise DataError(f"unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    if tta == "tencrop" and model is not None:
        model_crop_size(model)  # before any face is detected
    return tta


def classify_faces(model: keras.Model, faces: np.ndarray, tta: str = "none") -> np.ndarray:
    """Probabilities (N, classes) for (N, 48, 48) uint8 faces, one model call per PREDICT_BATCH_SIZE of their views.

    `tta` "flip" or "tencrop" averages the model's probabilities over the views of each face that `fer evaluate
    --tta` averages (fer_lib.evaluation.prediction: the same views, the same means); "none" classifies each once.
    """
    from fer_lib.evaluation.prediction import predict_probabilities

    if len(faces) == 0:
        return np.zeros((0, len(classifier_classes(model))), np.float32)
    return predict_probabilities(model, faces, PREDICT_BATCH_SIZE, check_tta(tta), predict=_predict_batches)


def _predict_batches(model, faces: np.ndarray) -> np.ndarray:
    from fer_lib.data.preprocessing import as_model_input

    # predict_on_batch rather than predict: predict builds a data adapter on every call
    # (tens of ms), longer than the forward pass for the few faces of a photo.
    batches = [model.predict_on_batch(as_model_input(faces[i:i + PREDICT_BATCH_SIZE]))
               for i in range(0, len(faces), PREDICT_BATCH_SIZE)]
    return np.concatenate([np.asarray(b, np.float32) for b in batches])


def face_record(box: Box, probabilities: np.ndarray, classes: Sequence[str] | None = None,
                detection_score: float | None = None) -> dict:
    """One face as reported: box, top emotion, a score per class, the two best labels and the detection score.

    `classes` are the model's (`classifier_classes`); by default FER2013's or FER+'s, by the
    number of probabilities. `detection_score` is None where no detector ran (a face crop, a
    caller's box).
    """
    classes = classes_for(len(probabilities)) if classes is None else classes
    order = np.argsort(-probabilities, kind="stable")
    return {
        "box": [int(v) for v in box],
        "emotion": classes[order[0]],
        "scores": {name: float(p) for name, p in zip(classes, probabilities)},
        "top2": [classes[order[0]], classes[order[1]]],
        "detection_score": None if detection_score is None else round(float(detection_score), 4),
    }


def box_list(boxes, source: str) -> list:
    """The caller's boxes for one image as a list; DataError when they are not a list of boxes."""
    if isinstance(boxes, np.ndarray):
        boxes = boxes.tolist()
    if isinstance(boxes, (str, bytes, dict)) or not isinstance(boxes, Sequence):
        raise DataError(f"{source}: boxes must be a list of [x, y, width, height] boxes, got {_shown(boxes)}")
    boxes = list(boxes)
    if boxes and all(_is_number(v) for v in boxes):
        raise DataError(f"{source}: boxes must be a list of boxes: wrap a single box in a list, "
                        f"[{_shown(boxes)}] rather than {_shown(boxes)}")
    return boxes


def check_box(box, index: int, count: int, shape: tuple[int, ...], source: str) -> tuple[Box | None, str | None]:
    """`box` in whole pixels, or None and a one-line message naming the box and what is wrong."""
    values = box.tolist() if isinstance(box, np.ndarray) else box
    name = f"{source}: box {index + 1} of {count} {_shown(values)}"
    if (isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence) or len(values) != 4
            or not all(_is_number(v) and math.isfinite(v) for v in values)):
        return None, f"{name}: not four numbers; give [x, y, width, height] in pixels"
    x, y, w, h = (int(round(v)) for v in values)
    if w <= 0 or h <= 0:
        return None, f"{name}: zero or negative size; width and height must be at least 1 pixel"
    height, width = shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return None, f"{name}: lies outside the {width}x{height} image"
    return (x, y, w, h), None


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _shown(value) -> str:
    """`value` as JSON (numpy numbers as plain ones), or repr when it is not JSON, cut to 80 characters."""
    plain = _plain(value)
    try:
        text = json.dumps(plain)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _jsonable(value):
    plain = _plain(value)
    try:
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return plain


def classify_decoded(images: list[DecodedImage], model: keras.Model, detector: str | None = None,
                     boxes: list[list | None] | None = None, min_face_score: float | None = None,
                     align: bool = True, tta: str = "none") -> list[list[dict]]:
    """Faces of already decoded images, all crops classified together.

    `boxes` gives, per image, the caller's boxes to classify instead of detecting (None:
    detect that image's faces). Those faces come back in the order given, each with its
    box as given; a box that cannot be used gives ``{"box": <as given>, "error": "<why>"}``
    in its place and the others are still classified. Detected faces scoring under
    `min_face_score` are left out; `align` levels detected faces' eyes before the crop; `tta` averages each
    face's probabilities over its flipped or ten-crop views (`classify_faces`).
    """
    min_face_score = check_min_face_score(min_face_score)
    tta = check_tta(tta)
    given = boxes if boxes is not None else [None] * len(images)
    to_detect = [image for image, image_boxes in zip(images, given) if image_boxes is None]
    detected = iter(face_detections(to_detect, detector) if to_detect else [])
    # Per image: (detected face or caller's box, reported box, error) per face.
    plans: list[list[tuple[Detection | None, object, str | None]]] = []
    for image, image_boxes in zip(images, given):
        if image_boxes is None:
            faces = [face for face in next(detected)
                     if min_face_score is None or face.score is None or face.score >= min_face_score]
            plans.append([(face, clip_box(face.box, image.gray.shape), None) for face in faces])
            continue
        plan = []
        for i, box in enumerate(image_boxes):
            checked, error = check_box(box, i, len(image_boxes), image.gray.shape, image.source)
            plan.append((None if error else Detection(checked, None), checked if error is None else _jsonable(box), error))
        plans.append(plan)
    crops = [face_input(image.gray, face.box, face.eyes, align)
             for image, plan in zip(images, plans) for face, _, error in plan if error is None]
    classes = classifier_classes(model)
    probabilities = classify_faces(model, np.stack(crops) if crops else np.zeros((0, 48, 48), np.uint8), tta)
    if probabilities.shape[1] != len(classes):  # a keras.Model whose recorded classes were set by hand
        raise ModelFileError(f"{getattr(model, 'name', 'the model')}: returns {probabilities.shape[1]} probabilities "
                             f"per face but names {len(classes)} classes; re-save it with fer_lib's save_model")
    results, k = [], 0
    for plan in plans:
        faces = []
        for face, reported, error in plan:
            if error is None:
                faces.append(face_record(reported, probabilities[k], classes, face.score))
                k += 1
            else:
                faces.append({"box": reported, "error": error})
        results.append(faces)
    return results


def classify_images(inputs: list[ImageInput], model: str | os.PathLike | keras.Model | None = None,
                    detector: str | None = None, sources: list[str] | None = None,
                    boxes: list | None = None, runtime: str = "keras", precision: str = "float32",
                    min_face_score: float | None = None, align: bool = True, tta: str = "none") -> list[ImageResult]:
    """An ImageResult per input; unusable inputs carry an `error` and do not stop the others.

    `boxes`, when given, holds per input the caller's face boxes (see `classify_decoded`)
    or None to detect its faces. Inputs are decoded IMAGES_PER_CHUNK at a time so a long
    list does not fill memory. `min_face_score`, `align` and `tta` as for `predict_expression`.
    """
    min_face_score = check_min_face_score(min_face_score)
    tta = check_tta(tta)
    if boxes is not None and len(boxes) != len(inputs):
        raise DataError(f"boxes: {len(boxes)} list(s) of boxes for {len(inputs)} image(s); give one list per image "
                        "(None to detect that image's faces)")
    model = load_model_or_default(model, runtime, precision)
    check_tta(tta, model)
    if boxes is None or any(image_boxes is None for image_boxes in boxes):
        detector = resolve_detector(detector)
    results: list[ImageResult] = []
    for start in range(0, len(inputs), IMAGES_PER_CHUNK):
        chunk = inputs[start:start + IMAGES_PER_CHUNK]
        chunk_sources = sources[start:start + IMAGES_PER_CHUNK] if sources else [None] * len(chunk)
        chunk_boxes = boxes[start:start + IMAGES_PER_CHUNK] if boxes is not None else [None] * len(chunk)
        chunk_results, decoded, decoded_at, decoded_boxes = [], [], [], []
        for item, source, image_boxes in zip(chunk, chunk_sources, chunk_boxes):
            name = source or (str(item) if isinstance(item, (str, os.PathLike)) else None)
            try:
                if image_boxes is not None:
                    image_boxes = box_list(image_boxes, name or _describe(item))
                image = decode_image(item, name)
            except FerError as exc:
                chunk_results.append(ImageResult(name or _describe(item), error=str(exc)))
                continue
            decoded_at.append(len(chunk_results))
            decoded.append(image)
            decoded_boxes.append(image_boxes)
            chunk_results.append(ImageResult(image.source, size=(image.gray.shape[1], image.gray.shape[0])))
        for position, faces in zip(decoded_at, classify_decoded(decoded, model, detector, decoded_boxes,
                                                                min_face_score, align, tta)):
            chunk_results[position].faces = faces
        results.extend(chunk_results)
    return results


def _describe(item) -> str:
    if isinstance(item, np.ndarray):
        return f"<array {'x'.join(map(str, item.shape))}>"
    return f"<{type(item).__name__}>"


def predict_expression(image: ImageInput | list[ImageInput], model: str | os.PathLike | keras.Model | None = None,
                       detector: str | None = None, boxes: list | None = None, runtime: str = "keras",
                       precision: str = "float32", min_face_score: float | None = None, align: bool = True,
                       tta: str = "none") -> list:
    """The emotion of every face in `image`: a path, numpy array (HxW, HxWx3 RGB, HxWx4) or PIL image.

    Returns one dict per face, left to right: ``box`` [x, y, w, h] in the upright image's
    pixels, ``emotion``, ``scores`` (one probability per class of the model, in its order:
    FER2013's seven EMOTIONS, or FERPLUS_EMOTIONS' eight for a FER+ model), ``top2`` and
    ``detection_score``, how sure the detector is that this is a face (0-1; see
    `fer_lib.inference.detection.Detection`; None where no detector ran). Faces scoring
    under ``min_face_score`` are left out. With ``align`` (the default) a tilted face is
    turned so that its eyes are level before it is cropped, as FER2013's faces are
    (`fer_lib.inference.alignment`). An input of at most 64x64 px and near-square is taken
    as a face crop and classified whole. A bad single input raises DataError.

    ``boxes=[[x, y, w, h], ...]`` classifies exactly those regions instead of detecting
    faces: one dict per box, in the order given, whose ``box`` is the box given. A box
    that is not four numbers, has no area or lies wholly outside the image gives
    ``{"box": <as given>, "error": "<why>"}`` in its place; the other boxes are classified.

    Given a list, returns one entry per input: its list of faces or, for an input that
    could not be used, ``{"error": "<why>"}``; the other inputs are still classified, and
    all their faces go through the model together. `boxes` is then a list with one list
    of boxes per input (None for an input whose faces are to be detected). `model` is a
    packaged model's name, ``"fer2013"`` or ``"ferplus"``, a .keras path or a loaded keras.Model
    (default: the packaged model `fer_lib.paths.DEFAULT_PACKAGED_MODEL` names); `detector` is
    ``"yunet"``, ``"mtcnn"`` or ``"haar"`` (default: `fer_lib.inference.detection.default_detector`).
    `runtime` "onnx" or "tflite" classifies through onnxruntime or TFLite (the `export` extra):
    `model` may then also be a .onnx or .tflite file from `fer export`. A Keras model computes in float32
    whatever precision it was trained in, so its scores match the exported files' and do not depend on the
    CPU; ``precision="trained"`` runs it in its trained precision (e.g. mixed bfloat16) instead.

    ``tta`` is test-time augmentation, as `fer evaluate --tta` does it (fer_lib.evaluation.prediction): "none"
    (the default) classifies each face once; "flip" averages the probabilities of the face and its mirror image
    (twice the faces through the model); "tencrop" those of ten views, the four corner crops and the centre crop
    and their mirrors (ten times; for a model that classifies a central crop, its own crops, unresized). An
    exported file takes "tencrop" only when it records that crop (an ONNX file from `fer export`); a TFLite
    file takes "none" or "flip".
    """
    tta = check_tta(tta)
    if isinstance(image, (list, tuple)):
        return [result.faces if result.error is None else {"error": result.error}
                for result in classify_images(list(image), model, detector, boxes=boxes, runtime=runtime,
                                              precision=precision, min_face_score=min_face_score, align=align,
                                              tta=tta)]
    min_face_score = check_min_face_score(min_face_score)
    model = load_model_or_default(model, runtime, precision)
    check_tta(tta, model)
    decoded = decode_image(image)
    given = None if boxes is None else [box_list(boxes, decoded.source)]
    return classify_decoded([decoded], model, detector, given, min_face_score, align, tta)[0]
