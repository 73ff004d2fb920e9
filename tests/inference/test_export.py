"""`fer export`: ONNX and TFLite files that match their Keras model, and the runtimes that run them."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import pytest

from fer_lib import paths
from fer_lib.cli import main
from fer_lib.data.dataset import load_dataset
from fer_lib.errors import FerError, ModelFileError
from fer_lib.evaluation.rebalance import with_prior_correction
from fer_lib.inference.export import (
    PARITY_SAME_CLASS,
    PARITY_TOLERANCE,
    OnnxClassifier,
    TfliteClassifier,
    check_request,
    export_model,
    inference_model,
    load_classifier,
    parity_faces,
    served_precision,
)
from fer_lib.labels import EMOTIONS
from fer_lib.models.augmentation import AugmentConfig
from fer_lib.models.ensemble import build_ensemble
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model, model_classes, read_model_classes, save_model

pytest.importorskip("tf2onnx", reason="the `export` extra is not installed")
pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")


def _train(model, dataset, crops: int = 1):
    """One epoch on the generated faces (batch-norm statistics and weights off their initial values), then
    the output layer sharpened until most faces get a clear winner: a tiny model's near-ties would make
    the same-class share of a parity check meaningless."""
    targets = keras.utils.to_categorical(dataset.train.labels, len(EMOTIONS))
    if crops > 1:
        targets = np.repeat(targets[:, None], crops, axis=1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy")
    model.fit(dataset.train.images[..., None].astype("float32"), targets, batch_size=32, epochs=1, verbose=0)
    head = model.get_layer("emotion")
    kernel, bias = head.get_weights()
    features = keras.Model(model.input, head.input).predict(dataset.test.images[..., None].astype("float32"), verbose=0)
    features = features.reshape(-1, features.shape[-1])  # ten crops per face in training: one at inference
    # Centred on the faces' mean feature and scaled to a spread of 3 logits: winners differ from face to face.
    logits = (features - features.mean(axis=0)) @ kernel
    kernel = kernel * 3.0 / max(float(logits.std()), 1e-6)
    head.set_weights([kernel, -(features.mean(axis=0) @ kernel)])
    return model


@pytest.fixture(scope="module")
def dataset(synthetic_root):
    return load_dataset(synthetic_root)


@pytest.fixture(scope="module")
def model_files(dataset, tmp_path_factory):
    """A crop model trained in mixed bfloat16 (ten training crops, all augmentations), a plain CNN, their
    ensemble, and the ensemble rebalanced and calibrated (PriorCorrection with a temperature)."""
    folder = tmp_path_factory.mktemp("export_models")
    augment = AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.1, erasing=0.3, crop=40, crops=10)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        crop = build_model("fer_cnn", widths=(8, 16), dense_units=16, augment=augment, seed=0)
    finally:
        keras.config.set_dtype_policy(previous)
    crop = _train(crop, dataset, crops=10)
    plain = _train(build_model("cnn", conv_filters=(8, 16), dense_units=(16,), seed=1), dataset)
    files = {"crop": save_model(crop, folder / "crop.keras"), "plain": save_model(plain, folder / "plain.keras")}
    ensemble = build_ensemble([load_model(files["crop"]), load_model(files["plain"])])
    files["ensemble"] = save_model(ensemble, folder / "ensemble.keras")
    priors = np.bincount(dataset.train.labels, minlength=7) + 1.0
    calibrated = with_prior_correction(load_model(files["ensemble"]), priors / priors.sum(), 0.5, 1.7, suffix="calibrated")
    files["calibrated"] = save_model(calibrated, folder / "ensemble_calibrated.keras")
    return files


SERVING_TOLERANCE = 1e-4  # Keras as served (float32) against its float32 exports, any probability
SERVING_FACES = 512


def _serving_differences(model, faces: np.ndarray) -> dict[str, float]:
    """Max |difference| of any probability on `faces` between each export of `model` and Keras serving it in
    float32 (the default) and in its trained precision."""
    pixels = faces[..., None].astype(np.float32)
    keras_scores = {precision: load_classifier(model, "keras", precision=precision).predict(pixels, verbose=0)
                    for precision in ("float32", "trained")}
    differences = {}
    for fmt in ("onnx", "tflite"):
        exported = load_classifier(model, fmt).predict(pixels)
        for precision, scores in keras_scores.items():
            differences[f"{fmt} {precision}"] = float(np.abs(exported - scores).max())
    return differences


def _faces(dataset, count=64):
    return dataset.test.images[:count][..., None].astype(np.float32)


def _assert_parity(result):
    parity = result.parity
    assert parity.passed and parity.faces > 0
    assert parity.max_abs_diff <= PARITY_TOLERANCE and parity.same_class >= PARITY_SAME_CLASS


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.slow
def test_packaged_model_exports_with_parity(fmt, dataset, tmp_path):
    """The default packaged model (whichever it is: 7 or 8 classes) exports with parity."""
    out = tmp_path / f"{paths.DEFAULT_PACKAGED_MODEL}.{fmt}"
    result = export_model(None, fmt, out, dataset=dataset)
    _assert_parity(result)
    packaged = load_model(paths.PRETRAINED_MODEL)
    classes = model_classes(packaged)
    assert classes == tuple(read_model_classes(paths.PRETRAINED_MODEL))
    assert result.parity.served_precision == served_precision(packaged)  # the precision Keras computes it in
    if result.parity.served_precision:  # e.g. mixed bfloat16 (FER2013's): the float32 export agrees with it too
        assert result.parity.served_same_class >= 0.95
    runner = load_classifier(out, runtime=fmt)
    assert isinstance(runner, OnnxClassifier if fmt == "onnx" else TfliteClassifier)
    assert runner.classes == classes
    faces = _faces(dataset)
    reference = inference_model(packaged).predict(faces, verbose=0)
    probabilities = runner.predict(faces, batch_size=20, verbose=0)  # batches of 20, 20, 20 and 4
    assert probabilities.shape == (len(faces), len(classes)) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, reference, atol=PARITY_TOLERANCE)
    np.testing.assert_allclose(runner.predict_on_batch(faces[:5]), reference[:5], atol=PARITY_TOLERANCE)
    assert runner.predict(faces[:0]).shape == (0, len(classes))


@pytest.mark.parametrize("kind, fmt", [("crop", "onnx"), ("calibrated", "onnx"), ("calibrated", "tflite"),
                                       ("ensemble", "tflite")])
@pytest.mark.slow
def test_every_kind_of_saved_model_exports_with_parity(kind, fmt, model_files, dataset, tmp_path):
    out = tmp_path / f"{kind}.{fmt}"
    result = export_model(model_files[kind], fmt, out, dataset=dataset)
    _assert_parity(result)
    if kind == "crop":  # trained in mixed bfloat16 for a few epochs: near-ties that bf16 rounding may flip
        assert result.parity.served_precision == "mixed_bfloat16" and result.parity.served_same_class >= 0.9
    keras_model = load_model(model_files[kind])
    faces = _faces(dataset)
    exported = load_classifier(out, runtime=fmt).predict(faces)
    np.testing.assert_allclose(exported, inference_model(keras_model).predict(faces, verbose=0), atol=PARITY_TOLERANCE)
    # Augmentation is off in the exported graph: the same face twice gives the same probabilities.
    twice = load_classifier(out, runtime=fmt).predict(np.concatenate([faces[:1], faces[:1]]))
    np.testing.assert_allclose(twice[0], twice[1], atol=1e-6)
    if kind == "calibrated":  # the temperature and the prior correction travel with the file
        uncalibrated = load_classifier(model_files["ensemble"], runtime=fmt).predict(faces)
        assert np.abs(exported - uncalibrated).max() > 0.01


@pytest.mark.slow
def test_fer_export_command_writes_a_checked_file(model_files, synthetic_root, tmp_path, capsys):
    out = tmp_path / "deploy" / "ensemble.onnx"  # the folder is created
    assert main(["export", "--model", str(model_files["calibrated"]), "--format", "onnx", "--out", str(out),
                 "--data", str(synthetic_root), "--faces", "120"]) == 0
    printed = capsys.readouterr().out
    assert "Parity on 120 faces (70 test, 28 val, 22 train) of" in printed and "passed" in printed
    assert "ONNX float32 against Keras float32" in printed
    runner = OnnxClassifier(out)
    assert runner.session.get_outputs()[0].name == "probabilities"
    assert sorted(os.listdir(out.parent)) == ["ensemble.onnx"]  # no temporary file left beside it


@pytest.mark.parametrize("quantize", ["float16", "int8"])
@pytest.mark.slow
def test_quantized_tflite_is_measured_on_the_test_split(quantize, model_files, synthetic_root, tmp_path, capsys):
    out = tmp_path / f"plain_{quantize}.tflite"
    assert main(["export", "--model", str(model_files["plain"]), "--format", "tflite", "--quantize", quantize,
                 "--out", str(out), "--data", str(synthetic_root)]) == 0
    printed = capsys.readouterr().out
    assert "quantized: measured, not gated" in printed
    assert "Top-1 on the test split (70 faces): Keras" in printed and " pt)" in printed
    float32 = tmp_path / "plain.tflite"
    export_model(model_files["plain"], "tflite", float32)
    assert out.stat().st_size < 0.7 * float32.stat().st_size
    probabilities = TfliteClassifier(out).predict(np.zeros((3, 48, 48, 1), np.float32))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.02)


def _one_error_line(capsys, command="export") -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"fer {command}: error: "), err
    return err[0]


@pytest.mark.slow
def test_bad_requests_are_one_line_and_leave_no_file(model_files, tmp_path, capsys):
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("not a model")
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n")
    existing = tmp_path / "existing.onnx"
    existing.write_bytes(b"keep me")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (tmp_path / "folder.onnx").mkdir()
    out = str(tmp_path / "m.onnx")
    cases = [
        (["--model", str(not_a_model), "--format", "onnx", "--out", out], "notes.keras: corrupt or not a Keras model file"),
        (["--model", str(h5), "--format", "onnx", "--out", out], "only .keras model files are loaded"),
        (["--model", str(tmp_path / "missing.keras"), "--format", "onnx", "--out", out], "model file not found"),
        (["--format", "tensorrt", "--out", out], "unsupported format 'tensorrt'; choose one of onnx, tflite"),
        (["--out", out], "no format: pass --format onnx or --format tflite"),
        (["--format", "onnx"], "no output file: pass --out FILE.onnx"),
        (["--format", "tflite", "--quantize", "int4", "--out", str(tmp_path / "m.tflite")], "unsupported quantization 'int4'"),
        (["--format", "onnx", "--quantize", "int8", "--out", out], "--quantize int8 is for --format tflite"),
        (["--format", "onnx", "--out", str(tmp_path / "m.tflite")], "give a name ending in .onnx"),
        (["--format", "onnx", "--out", str(existing)], "existing.onnx already exists; pass --overwrite"),
        (["--format", "onnx", "--out", str(blocker / "m.onnx")], "a_file is a file, not a folder"),
        (["--format", "onnx", "--out", str(tmp_path / "folder.onnx")], "folder.onnx is a folder"),
    ]
    for arguments, message in cases:
        assert main(["export", *arguments]) == 2, arguments
        assert message in _one_error_line(capsys), (arguments, message)
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "existing.onnx", "folder.onnx", "model.h5", "notes.keras"]


@pytest.mark.slow
def test_int8_needs_training_faces(model_files, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FER_DATA", raising=False)
    monkeypatch.setattr(paths, "DEFAULT_DATA_DIR", tmp_path / "no_data")
    out = tmp_path / "m.tflite"
    assert main(["export", "--model", str(model_files["plain"]), "--format", "tflite", "--quantize", "int8",
                 "--out", str(out)]) == 2
    assert "int8 quantization is calibrated on training faces: pass --data" in _one_error_line(capsys)
    assert not out.exists()


def test_missing_extra_is_named_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` now raises ImportError
    assert main(["export", "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    line = _one_error_line(capsys)
    assert "needs tf2onnx" in line and "pip install 'fer_lib[export]'" in line
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(FerError, match=r"onnxruntime.*fer_lib\[export\]"):
        load_classifier(tmp_path / "m.onnx", runtime="onnx")


@pytest.mark.slow
def test_a_failed_parity_check_writes_nothing(model_files, tmp_path, monkeypatch):
    original = OnnxClassifier.predict_on_batch

    def off_by_a_little(self, images):
        probabilities = original(self, images)
        return probabilities + np.where(np.arange(7) == 0, 0.01, 0.0).astype(np.float32)

    monkeypatch.setattr(OnnxClassifier, "predict_on_batch", off_by_a_little)
    out = tmp_path / "m.onnx"
    with pytest.raises(FerError, match="parity check failed, nothing was written: .*max \\|difference\\| 0.01"):
        export_model(model_files["plain"], "onnx", out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_load_classifier_picks_the_runtime(model_files, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    assert isinstance(load_classifier(model_files["plain"], "keras"), keras.Model)
    runner = load_classifier(model_files["plain"], "onnx")  # a .keras file: exported once into the cache
    assert isinstance(runner, OnnxClassifier) and runner.path.parent == tmp_path / "cache" / "exported"
    assert load_classifier(model_files["plain"], "ONNX").path == runner.path  # reused, not exported again
    faces = np.random.default_rng(0).integers(0, 256, (10, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(runner.predict(faces), load_model(model_files["plain"]).predict(faces, verbose=0),
                               atol=PARITY_TOLERANCE)
    in_memory = load_classifier(load_model(model_files["plain"]), "tflite")
    np.testing.assert_allclose(in_memory.predict(faces), runner.predict(faces), atol=PARITY_TOLERANCE)
    with pytest.raises(FerError, match="unknown runtime 'tensorrt'; choose one of keras, onnx, tflite"):
        load_classifier(None, "tensorrt")
    with pytest.raises(ModelFileError, match="runs a .onnx file from `fer export` or a .keras model"):
        load_classifier(tmp_path / "m.tflite", "onnx")


def test_onnx_files_that_are_not_fer_models_are_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    wrong = tmp_path / "wrong.onnx"
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(wrong))
    with pytest.raises(ModelFileError, match="expected \\(faces, 48, 48, 1\\) pixels and 7 probabilities"):
        OnnxClassifier(wrong)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_text("not onnx")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        OnnxClassifier(garbage)
    with pytest.raises(ModelFileError, match="not found"):
        TfliteClassifier(tmp_path / "missing.tflite")


def test_check_request_normalises(tmp_path):
    assert check_request("ONNX", tmp_path / "a.onnx") == ("onnx", tmp_path / "a.onnx", None)
    assert check_request("tflite", tmp_path / "a.tflite", "none") == ("tflite", tmp_path / "a.tflite", None)
    assert check_request("tflite", tmp_path / "a.tflite", "INT8")[2] == "int8"


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FER_DATA"), reason="FER_DATA not set")
def test_packaged_model_int8_keeps_its_top1_on_publictest(tmp_path, capsys):
    """The packaged FER2013 model (FER_DATA is FER2013), whichever packaged model is the default."""
    out = tmp_path / "fer_model_int8.tflite"
    assert main(["export", "--model", "fer2013", "--format", "tflite", "--quantize", "int8", "--out", str(out),
                 "--data", os.environ["FER_DATA"]]) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("Top-1 on the test split"))
    change = float(line.rsplit("(", 1)[1].split(" pt")[0])
    assert change >= -1.0, line  # int8 costs at most 1 point of top-1


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
@pytest.mark.slow
def test_predict_expression_and_fer_predict_run_on_an_exported_runtime(runtime, tmp_path, capsys):
    import json as json_module

    from skimage import data

    from fer_lib import predict_expression
    from fer_lib.cli import main

    photo = data.astronaut()
    (keras_face,) = predict_expression(photo)
    (exported_face,) = predict_expression(photo, runtime=runtime)
    assert exported_face["box"] == keras_face["box"] and exported_face["emotion"] == keras_face["emotion"]
    # Keras serves the packaged model in float32, whatever it was trained in: the exported file's scores.
    assert max(abs(exported_face["scores"][e] - keras_face["scores"][e]) for e in keras_face["scores"]) <= SERVING_TOLERANCE
    image = tmp_path / "astronaut.png"
    __import__("PIL.Image", fromlist=["Image"]).fromarray(photo).save(image)
    out = tmp_path / "faces.json"
    assert main(["predict", str(image), "--runtime", runtime, "--json", str(out), "--quiet"]) == 0
    (record,) = json_module.loads(out.read_text())
    assert record["faces"][0]["emotion"] == keras_face["emotion"]


@pytest.mark.slow
def test_a_model_trained_in_bf16_is_served_with_its_exports_scores(model_files):
    """Keras serves the mixed-bfloat16 crop model in float32: its ONNX and TFLite files give the same probabilities
    on 512 generated faces, where Keras in the trained precision is further apart than the tolerance."""
    faces, _ = parity_faces(None, SERVING_FACES)
    differences = _serving_differences(model_files["crop"], faces)
    for fmt in ("onnx", "tflite"):
        assert differences[f"{fmt} float32"] <= SERVING_TOLERANCE, differences
        assert differences[f"{fmt} trained"] > SERVING_TOLERANCE, differences  # what served before: the check can fail


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FER_DATA"), reason="FER_DATA not set")
@pytest.mark.parametrize("packaged", ["fer2013", "ferplus"])
def test_packaged_models_are_served_with_their_exports_scores_on_publictest(packaged):
    """Both packaged models (trained in mixed bfloat16) on 512 PublicTest faces of FER_DATA (FER2013, whose
    PublicTest faces are FER+'s too): Keras as served gives the exports' probabilities within 1e-4."""
    from fer_lib.data.dataset import load_eval_split

    split = load_eval_split(os.environ["FER_DATA"], "test").split
    chosen = np.sort(np.random.default_rng(0).choice(len(split), size=min(SERVING_FACES, len(split)), replace=False))
    differences = _serving_differences(paths.resolve_model(packaged), split.images[chosen])
    print(packaged, differences)
    assert differences["onnx float32"] <= SERVING_TOLERANCE and differences["tflite float32"] <= SERVING_TOLERANCE, differences


@pytest.mark.slow
def test_an_onnx_file_records_the_crop_that_ten_crop_needs(model_files, dataset):
    """Ten-crop through an exported file: ONNX records the model's crop (or the whole face), and its scores are
    Keras' ten-crop scores; an ensemble of crop and whole-face members, and a TFLite file, take flip, not tencrop."""
    from fer_lib.inference.photos import check_tta, classify_faces

    faces = dataset.test.images[:16]
    for kind, crop in (("crop", 40), ("plain", None)):
        onnx = load_classifier(model_files[kind], "onnx")
        assert onnx.tencrop_crop == crop
        served = load_classifier(model_files[kind], "keras")
        np.testing.assert_allclose(classify_faces(onnx, faces, "tencrop"), classify_faces(served, faces, "tencrop"),
                                   atol=SERVING_TOLERANCE)
    for kind, runtime in (("ensemble", "onnx"), ("crop", "tflite")):
        exported = load_classifier(model_files[kind], runtime)
        with pytest.raises(FerError, match=r"--tta tencrop needs the crop .* use the \.keras model \(--runtime keras\)"):
            check_tta("tencrop", exported)
        assert classify_faces(exported, faces, "flip").shape == (16, len(EMOTIONS))
