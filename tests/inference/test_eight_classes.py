"""FER+ models (8 classes, contempt last) downstream: scores, CSV columns, video summaries, exports, model names."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer_lib import paths
from fer_lib.cli import main
from fer_lib.errors import ModelFileError
from fer_lib.inference import photos
from fer_lib.inference.video import FrameResult, process_video, summarize_video
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS

FACE = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)  # a face crop: classified whole, no detector
UNKNOWN = "unknown model 'fer2014'; choose fer2013, ferplus or a .keras/.onnx/.tflite file"


@pytest.fixture(scope="module")
def ferplus_path(tmp_path_factory):
    """An untrained 8-output seed_cnn saved with its class list: weights do not matter here."""
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import save_model

    return save_model(build_model("seed_cnn", num_classes=8, seed=0), tmp_path_factory.mktemp("ferplus") / "ferplus.keras")


def assert_scores(face: dict, classes):
    assert list(face["scores"]) == list(classes)
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    ranked = sorted(classes, key=lambda e: -face["scores"][e])
    assert face["emotion"] == ranked[0] and face["top2"] == ranked[:2]


def test_an_eight_class_model_scores_contempt(ferplus_path, model_path):
    (face,) = photos.predict_expression(FACE, model=ferplus_path)
    assert_scores(face, FERPLUS_EMOTIONS)
    assert "contempt" in face["scores"]
    (face,) = photos.predict_expression(FACE, model=str(ferplus_path))  # a path as a string
    assert_scores(face, FERPLUS_EMOTIONS)
    (face,) = photos.predict_expression(FACE, model=model_path)  # a FER2013 model keeps its seven
    assert_scores(face, EMOTIONS)
    loaded = photos.load_model_or_default(ferplus_path)
    assert photos.classifier_classes(loaded) == FERPLUS_EMOTIONS
    assert photos.classify_faces(loaded, np.zeros((0, 48, 48), np.uint8)).shape == (0, 8)
    (face,) = photos.predict_expression(FACE, model=loaded)  # an in-memory model
    assert_scores(face, FERPLUS_EMOTIONS)


def test_packaged_model_names_resolve(ferplus_path, monkeypatch):
    assert paths.resolve_model(None) == paths.PACKAGED_MODELS[paths.DEFAULT_PACKAGED_MODEL] == paths.PRETRAINED_MODEL
    assert paths.resolve_model("FER2013") == paths.ASSETS_DIR / "fer_model.keras"
    assert paths.resolve_model(Path("ferplus")) == Path("ferplus")  # a PathLike is always a file
    assert paths.resolve_model("gone.onnx") == Path("gone.onnx")  # missing, but a model file's name
    monkeypatch.setitem(paths.PACKAGED_MODELS, "ferplus", ferplus_path)
    assert paths.resolve_model("ferplus") == ferplus_path
    (face,) = photos.predict_expression(FACE, model="ferplus")
    assert_scores(face, FERPLUS_EMOTIONS)


def test_unknown_model_name_is_one_line(tmp_path, capsys):
    with pytest.raises(ModelFileError) as error:
        photos.predict_expression(FACE, model="fer2014")
    assert str(error.value) == UNKNOWN
    Image.fromarray(FACE).save(tmp_path / "face.png")
    assert main(["predict", str(tmp_path / "face.png"), "--model", "fer2014", "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[-1] == f"fer predict: error: {UNKNOWN}"


def test_missing_packaged_ferplus_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(paths.PACKAGED_MODELS, "ferplus", tmp_path / "ferplus_model.keras")
    with pytest.raises(ModelFileError, match=r"^packaged model 'ferplus' is not shipped in this install .*"
                                             r"choose fer2013 or a \.keras/\.onnx/\.tflite file$") as error:
        photos.predict_expression(FACE, model="ferplus")
    assert "\n" not in str(error.value)
    Image.fromarray(FACE).save(tmp_path / "face.png")
    assert main(["predict", str(tmp_path / "face.png"), "--model", "ferplus", "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[-1].startswith("fer predict: error: packaged model 'ferplus' is not shipped in this install")


def test_fer_predict_csv_and_json_have_a_column_per_class(ferplus_path, model_path, tmp_path, capsys):
    Image.fromarray(FACE).save(tmp_path / "face.png")
    out = tmp_path / "out.csv"
    assert main(["predict", str(tmp_path / "face.png"), "--csv", str(out), "--model", str(ferplus_path), "--quiet"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[-9:-1]) == list(FERPLUS_EMOTIONS) and "contempt" in table.columns
    assert table.loc[0, [*FERPLUS_EMOTIONS]].sum() == pytest.approx(1, abs=1e-4)
    assert main(["predict", str(tmp_path / "face.png"), "--json", str(tmp_path / "out.json"),
                 "--model", str(ferplus_path), "--quiet"]) == 0
    (record,) = json.loads((tmp_path / "out.json").read_text())
    assert list(record["faces"][0]["scores"]) == list(FERPLUS_EMOTIONS)
    # A FER2013 model keeps its seven columns, even for an input without faces.
    Image.new("L", (200, 150), 128).save(tmp_path / "blank.png")
    assert main(["predict", str(tmp_path / "blank.png"), "--csv", str(out), "--model", str(model_path),
                 "--detector", "haar", "--quiet"]) == 0
    assert "contempt" not in pd.read_csv(out).columns and list(pd.read_csv(out).columns[-8:-1]) == list(EMOTIONS)
    capsys.readouterr()


def test_video_tables_use_the_model_classes(ferplus_path, tmp_path):
    video = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for _ in range(3):
        writer.write(np.full((120, 160, 3), 128, np.uint8))
    writer.release()
    model = photos.load_model_or_default(ferplus_path)
    result = process_video(video, model, "haar", out_dir=tmp_path, progress=False)
    assert result.classes == FERPLUS_EMOTIONS
    assert list(pd.read_csv(tmp_path / "blank.frames.csv").columns[-8:]) == list(FERPLUS_EMOTIONS)
    assert list(pd.read_csv(tmp_path / "blank.summary.csv").columns[-8:]) == list(FERPLUS_EMOTIONS)
    summary = json.loads((tmp_path / "blank.summary.json").read_text())
    assert summary["classes"] == list(FERPLUS_EMOTIONS) and list(summary["overall"]["mean_scores"]) == list(FERPLUS_EMOTIONS)


def test_video_summary_takes_the_classes_of_the_faces():
    def face(emotion):
        return {"box": [0, 0, 1, 1], "emotion": emotion, "scores": {e: float(e == emotion) for e in FERPLUS_EMOTIONS},
                "top2": [emotion, "angry"]}

    summary = summarize_video([FrameResult(0, 0.0, [face("contempt"), face("happy")])])
    assert summary["overall"]["share"]["contempt"] == 0.5 and summary["overall"]["mean_scores"]["contempt"] == 0.5
    assert summarize_video([])["classes"] == list(EMOTIONS)


def _onnx_classifier_file(path, outputs: int, classes=None):
    """A hand-made ONNX file taking (faces, 48, 48, 1) pixels to `outputs` softmax probabilities."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(1).normal(0, 1e-3, (48 * 48, outputs)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["pixels"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)], "g",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["faces", 48, 48, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["faces", outputs])],
        initializer=[numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    if classes is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "fer_lib.classes", json.dumps(list(classes))
    onnx.save(model, str(path))
    return path


def test_onnx_classes_come_from_the_file(tmp_path):
    pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")
    pytest.importorskip("onnx", reason="the `export` extra is not installed")
    from fer_lib.inference.export import OnnxClassifier

    assert OnnxClassifier(_onnx_classifier_file(tmp_path / "plain8.onnx", 8)).classes == FERPLUS_EMOTIONS
    assert OnnxClassifier(_onnx_classifier_file(tmp_path / "plain7.onnx", 7)).classes == EMOTIONS
    named = ("a", "b", "c")
    runner = OnnxClassifier(_onnx_classifier_file(tmp_path / "abc.onnx", 3, named))  # recorded classes of its own
    assert runner.classes == named and runner.predict(np.zeros((0, 48, 48, 1), np.float32)).shape == (0, 3)
    (face,) = photos.predict_expression(FACE, model=runner)
    assert list(face["scores"]) == list(named)
    with pytest.raises(ModelFileError, match="refused, its metadata names 7 classes .* returns 8 probabilities") as error:
        OnnxClassifier(_onnx_classifier_file(tmp_path / "wrong.onnx", 8, EMOTIONS))
    assert "\n" not in str(error.value)
    with pytest.raises(ModelFileError, match="pixels and 7 probabilities \\(FER2013\\) or 8 \\(FER\\+\\)"):
        OnnxClassifier(_onnx_classifier_file(tmp_path / "five.onnx", 5))  # no record, and no known class list


@pytest.mark.slow
def test_an_eight_class_onnx_export_keeps_its_classes(ferplus_path, tmp_path, monkeypatch):
    pytest.importorskip("tf2onnx", reason="the `export` extra is not installed")
    pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")
    from fer_lib.inference.export import OnnxClassifier, export_model

    out = tmp_path / "ferplus.onnx"
    assert export_model(ferplus_path, "onnx", out, faces=20).parity.passed
    runner = OnnxClassifier(out)
    assert runner.classes == FERPLUS_EMOTIONS and runner.session.get_modelmeta().custom_metadata_map[
        "fer_lib.classes"] == json.dumps(list(FERPLUS_EMOTIONS))
    (keras_face,) = photos.predict_expression(FACE, model=ferplus_path)
    (onnx_face,) = photos.predict_expression(FACE, model=out)  # a .onnx file runs on onnxruntime
    assert list(onnx_face["scores"]) == list(FERPLUS_EMOTIONS) and onnx_face["emotion"] == keras_face["emotion"]
    assert max(abs(onnx_face["scores"][e] - keras_face["scores"][e]) for e in FERPLUS_EMOTIONS) < 1e-3
