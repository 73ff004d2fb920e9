"""Test-time augmentation in predict_expression: the views and means of fer_lib.evaluation, for photos too."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer_lib import paths
from fer_lib.errors import DataError, FerError
from fer_lib.evaluation.prediction import TTA_MODES, predict_views
from fer_lib.inference import photos
from fer_lib.inference.exported import ExportedClassifier

TOLERANCE = 1e-6  # float32 probabilities: the same model calls, averaged in the same order


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """The astronaut's face as a 48x48 grayscale crop: an input of at most 64x64 is classified whole."""
    gray = data.astronaut()[20:240, 140:360].mean(axis=2).astype(np.uint8)
    return np.asarray(Image.fromarray(gray).resize((48, 48), Image.BILINEAR))


def _scores(faces: list[dict]) -> np.ndarray:
    assert len(faces) == 1
    return np.array(list(faces[0]["scores"].values()))


def _evaluation_mean(model, face: np.ndarray, tta: str) -> np.ndarray:
    """What `fer evaluate --tta` averages for this face: predict_views' views, their mean."""
    views = predict_views(model, face[None], tta=tta)
    return (sum(views) / len(views))[0]


@pytest.mark.parametrize("name", ["fer2013", "ferplus"])
def test_each_mode_gives_the_mean_that_evaluation_gives(name, face):
    """fer2013 takes the whole face (tencrop: resized crops), ferplus a 40-pixel central crop (its own crops)."""
    if not paths.PACKAGED_MODELS[name].is_file():
        pytest.skip(f"the {name} model is not in this install")
    model = photos.load_model_or_default(name)
    for tta in TTA_MODES:
        faces = photos.predict_expression(face, model=name, tta=tta)
        np.testing.assert_allclose(_scores(faces), _evaluation_mean(model, face, tta), rtol=0, atol=TOLERANCE,
                                   err_msg=f"{name} {tta}")
        assert faces[0]["box"] == [0, 0, 48, 48] and faces[0]["detection_score"] is None


def test_none_is_one_model_call_per_face_as_before(face):
    model = photos.load_model_or_default(None)
    default = photos.predict_expression(face)
    assert photos.predict_expression(face, tta="none") == default
    once = np.asarray(model.predict_on_batch(face[None, ..., None].astype(np.float32)), np.float32)[0]
    np.testing.assert_array_equal(_scores(default), once.astype(float))


def test_the_modes_differ_and_reach_lists_and_boxes(face):
    flipped = photos.predict_expression([face, face[:, ::-1]], tta="flip")
    # The face and its mirror image have the same two views, so the same flip mean.
    np.testing.assert_allclose(_scores(flipped[0]), _scores(flipped[1]), atol=TOLERANCE)
    assert not np.allclose(_scores(photos.predict_expression(face)), _scores(flipped[0]), atol=1e-4)
    big = np.asarray(Image.fromarray(face).resize((200, 200)))
    boxed = photos.predict_expression(big, boxes=[[0, 0, 200, 200]], tta="tencrop")
    assert boxed[0]["box"] == [0, 0, 200, 200] and len(boxed[0]["scores"]) == len(photos.classifier_classes(
        photos.load_model_or_default(None)))


@pytest.mark.parametrize("bad", ["tencrops", "FLIP", None, 10])
def test_an_unknown_mode_is_one_line_before_the_model_loads(bad, face):
    with pytest.raises(DataError) as raised:
        photos.predict_expression(face, model="no_such_model.keras", tta=bad)
    message = str(raised.value)
    assert "\n" not in message and "unknown test-time augmentation" in message
    assert "none, flip, tencrop" in message and (repr(bad) in message or str(bad) in message)


class KerasBehindAFile(ExportedClassifier):
    """An exported classifier (as an .onnx or .tflite file runs) that calls a Keras model: what predict_expression
    does with a file's `tencrop_crop`, without exporting one."""

    def __init__(self, model, runtime: str, crop):
        super().__init__(f"model.{runtime}")
        self.runtime, self.model, self._tencrop_crop = runtime, model, crop
        self.classes = photos.classifier_classes(model)
        self.output_shape = (None, len(self.classes))

    def predict_on_batch(self, images) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(images), np.float32)


def test_an_exported_file_takes_tencrop_only_with_its_crop_recorded(face):
    from fer_lib.inference.conversion import UNRECORDED

    name = "ferplus" if paths.PACKAGED_MODELS["ferplus"].is_file() else "fer2013"
    model = photos.load_model_or_default(name)
    crop = 40 if name == "ferplus" else None
    recorded = KerasBehindAFile(model, "onnx", crop)
    np.testing.assert_allclose(_scores(photos.predict_expression(face, model=recorded, tta="tencrop")),
                               _evaluation_mean(model, face, "tencrop"), atol=TOLERANCE)
    tflite = KerasBehindAFile(model, "tflite", UNRECORDED)
    np.testing.assert_allclose(_scores(photos.predict_expression(face, model=tflite, tta="flip")),
                               _evaluation_mean(model, face, "flip"), atol=TOLERANCE)
    for unrecorded in (tflite, KerasBehindAFile(model, "onnx", UNRECORDED)):
        with pytest.raises(FerError) as raised:
            photos.predict_expression(face, model=unrecorded, tta="tencrop")
        message = str(raised.value)
        assert "\n" not in message and "--tta tencrop needs the crop" in message
        assert "--runtime keras" in message and "--tta flip" in message
        assert ("re-export" in message) == (unrecorded.runtime == "onnx")
