"""Faces found elsewhere: predict_expression(image, boxes=...) and `fer predict --boxes FILE`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer_lib.cli import main
from fer_lib.errors import DataError
from fer_lib.inference import detection
from fer_lib.inference import photos as inference
from fer_lib.labels import EMOTIONS

FACE = [170, 62, 106, 106]  # the astronaut's face


@pytest.fixture()
def spied_model(model_path):
    """A loaded model recording the batches it is given."""
    from fer_lib.models.saving import load_model

    model = load_model(model_path)
    calls = []
    method = model.predict_on_batch

    def recording(x, *args, **kwargs):
        calls.append(np.array(x))
        return method(x, *args, **kwargs)

    model.predict_on_batch = recording
    return model, calls


@pytest.fixture()
def no_detection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a detector ran although boxes were given")

    monkeypatch.setattr(inference, "find_faces_batch", refuse)
    monkeypatch.setattr(detection, "resolve_detector", refuse)
    monkeypatch.setattr(inference, "resolve_detector", refuse)


def test_given_boxes_are_classified_exactly_in_the_order_given(spied_model, no_detection):
    model, calls = spied_model
    photo = data.astronaut()
    boxes = [[300, 300, 60, 80], FACE, (np.int64(0), 0.0, 48, 48)]  # not left to right, a tall one, numpy and float numbers
    faces = inference.predict_expression(photo, model=model, boxes=boxes)
    assert [face["box"] for face in faces] == [[300, 300, 60, 80], FACE, [0, 0, 48, 48]]
    assert all(type(v) is int for face in faces for v in face["box"])
    assert all(set(face) == {"box", "emotion", "scores", "top2", "detection_score"} for face in faces)
    assert all(face["detection_score"] is None for face in faces)  # no detector ran
    assert len(calls) == 1 and calls[0].shape == (3, 48, 48, 1)
    gray = inference.decode_image(photo).gray
    for i, box in enumerate([(300, 300, 60, 80), tuple(FACE), (0, 0, 48, 48)]):
        np.testing.assert_array_equal(calls[0][i, :, :, 0].astype(np.uint8), inference.face_input(gray, box))


def test_a_box_partly_past_the_border_is_padded_and_reported_as_given(spied_model, no_detection):
    model, calls = spied_model
    [face] = inference.predict_expression(data.astronaut(), model=model, boxes=[[-20, 480, 60, 60]])
    assert face["box"] == [-20, 480, 60, 60] and face["emotion"] in EMOTIONS


def test_bad_boxes_get_one_line_each_and_the_others_are_classified(spied_model, no_detection):
    model, calls = spied_model
    boxes = [FACE, [600, 0, 10, 10], [0, 0, 0, 5], [10, 10, -4, 20], [1, 2, 3], "face", [1, 2, "3", 4],
             [float("nan"), 0, 10, 10], [True, 0, 10, 10], [-100, -100, 50, 50], [20, 20, 50, 50]]
    faces = inference.predict_expression(data.astronaut(), model=model, boxes=boxes)
    assert len(faces) == len(boxes)
    good = [face for face in faces if "error" not in face]
    assert [face["box"] for face in good] == [FACE, [20, 20, 50, 50]]
    assert len(calls) == 1 and calls[0].shape[0] == 2
    errors = {i: face["error"] for i, face in enumerate(faces) if "error" in face}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    for i, error in errors.items():
        assert "\n" not in error and f"box {i + 1} of {len(boxes)}" in error and "<array 512x512x3>" in error
        assert set(faces[i]) == {"box", "error"}
    assert "lies outside the 512x512 image" in errors[1] and "[600, 0, 10, 10]" in errors[1]
    assert "zero or negative size" in errors[2] and "zero or negative size" in errors[3]
    for i in (4, 5, 6, 7, 8):
        assert "not four numbers" in errors[i]
    assert "lies outside" in errors[9]
    assert faces[1]["box"] == [600, 0, 10, 10] and faces[5]["box"] == "face"
    json.dumps(faces)  # NaN included: the bad box is kept as text


def test_boxes_that_are_not_a_list_of_boxes_raise_one_line(model_path):
    with pytest.raises(DataError, match=r"wrap a single box in a list, \[\[170, 62, 106, 106\]\]"):
        inference.predict_expression(data.astronaut(), model=model_path, boxes=FACE)
    with pytest.raises(DataError, match="boxes must be a list"):
        inference.predict_expression(data.astronaut(), model=model_path, boxes="170,62,106,106")
    assert inference.predict_expression(data.astronaut(), model=model_path, boxes=[]) == []


def test_a_list_of_images_takes_a_list_of_boxes_per_image(spied_model):
    model, calls = spied_model
    photo = data.astronaut()
    results = inference.predict_expression([photo, photo, data.coffee(), photo], model=model,
                                           boxes=[[FACE], None, [[0, 0, 100, 100], [9999, 0, 5, 5]], FACE])
    assert results[0][0]["box"] == FACE
    assert len(results[1]) == 1 and results[1][0]["box"] != FACE  # None: detected
    assert results[2][0]["box"] == [0, 0, 100, 100] and "lies outside" in results[2][1]["error"]
    assert "wrap a single box" in results[3]["error"]  # that image's boxes were one flat box
    assert len(calls) == 1 and calls[0].shape[0] == 3
    with pytest.raises(DataError, match="2 list"):
        inference.predict_expression([photo, photo, photo], model=model, boxes=[[FACE], [FACE]])


def test_a_face_crop_input_with_boxes_uses_the_boxes(spied_model, no_detection):
    model, _ = spied_model
    crop = np.full((48, 48), 100, np.uint8)
    [face] = inference.predict_expression(crop, model=model, boxes=[[4, 4, 40, 40]])
    assert face["box"] == [4, 4, 40, 40]


# --- fer predict --boxes


@pytest.fixture()
def photos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trip").mkdir()
    Image.fromarray(data.astronaut()).save(tmp_path / "trip" / "a.jpg")
    Image.fromarray(data.coffee()).save(tmp_path / "trip" / "c.jpg")
    return tmp_path


def run_predict(capsys, *argv):
    code = main(["predict", *map(str, argv), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_fer_predict_boxes_file_maps_photos_to_boxes(photos, model_path, capsys, no_detection):
    (photos / "boxes.json").write_text(json.dumps({"trip/a.jpg": [FACE, [0, 0, 0, 9]], str(photos / "trip" / "c.jpg"): []}))
    code, out, err = run_predict(capsys, "trip", "--boxes", "boxes.json", "--model", model_path)
    assert code == 1  # one box could not be used
    records = {r["source"]: r for r in json.loads(out)}
    a = records["trip/a.jpg"]
    assert a["faces"][0]["box"] == FACE and a["faces"][0]["emotion"] in EMOTIONS
    assert "zero or negative size" in a["faces"][1]["error"] and "error" not in a
    assert records["trip/c.jpg"]["faces"] == []
    lines = err.strip().splitlines()
    assert sum("box 2 of 2 [0, 0, 0, 9]" in line for line in lines) == 1
    assert "no face found" not in err and "Traceback" not in err
    assert lines[-1].startswith("fer predict: done: ") and ", 1 face(s), " in lines[-1] and "1 box(es) could not be used" in lines[-1]


def test_fer_predict_boxes_keys_may_be_relative_to_the_json_file(photos, model_path, capsys, no_detection):
    (photos / "trip" / "boxes.json").write_text(json.dumps({"a.jpg": [FACE], "c.jpg": [[10, 10, 100, 100]]}))
    code, out, err = run_predict(capsys, "trip/a.jpg", "trip/c.jpg", "--boxes", "trip/boxes.json", "--model", model_path,
                                 "--csv", "out.csv", "--annotate", "annotated")
    assert code == 0, err
    import pandas as pd

    table = pd.read_csv(photos / "out.csv")
    assert table[["x", "y", "w", "h"]].values.tolist() == [FACE, [10, 10, 100, 100]]
    assert (photos / "annotated" / "a.annotated.jpg").is_file()


def test_fer_predict_boxes_list_for_a_single_photo(photos, model_path, capsys, no_detection):
    (photos / "one.json").write_text(json.dumps([FACE, [1, 2, 3]]))
    code, out, err = run_predict(capsys, "trip/a.jpg", "--boxes", "one.json", "--model", model_path, "--csv", "out.csv")
    assert code == 1
    import pandas as pd

    table = pd.read_csv(photos / "out.csv")
    assert table.loc[0, ["x", "y", "w", "h"]].tolist() == FACE and table["error"].isna()[0]
    assert "not four numbers" in table.loc[1, "error"] and np.isnan(table.loc[1, "x"])


@pytest.mark.parametrize("content,argv,message", [
    ("{not json", ["trip/a.jpg"], "boxes.json: not a JSON file"),
    ('"a.jpg"', ["trip/a.jpg"], "boxes.json: holds a JSON str"),
    ("[[1, 2, 30, 30]]", ["trip/a.jpg", "trip/c.jpg"], "holds one list of boxes, which fits exactly one photo, and 2 were given"),
    ('{"trip/a.jpg": []}', ["trip/a.jpg", "trip/c.jpg"], "do not match those given: no boxes for trip/c.jpg"),
    ('{"trip/a.jpg": [], "trip/b.jpg": []}', ["trip/a.jpg"], "no photo given for trip/b.jpg"),
    (None, ["trip/a.jpg"], "boxes.json: boxes file not found"),
])
def test_fer_predict_boxes_file_problems_are_one_line(photos, model_path, capsys, content, argv, message):
    if content is not None:
        (photos / "boxes.json").write_text(content)
    code, out, err = run_predict(capsys, *argv, "--boxes", "boxes.json", "--model", model_path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fer predict: error:") and message in lines[0], err


def test_fer_predict_boxes_entry_that_is_not_a_list_is_that_photos_error(photos, model_path, capsys):
    (photos / "boxes.json").write_text(json.dumps({"trip/a.jpg": [FACE], "trip/c.jpg": {"x": 1}}))
    code, out, err = run_predict(capsys, "trip/a.jpg", "trip/c.jpg", "--boxes", "boxes.json", "--model", model_path)
    assert code == 1
    records = {r["source"]: r for r in json.loads(out)}
    assert records["trip/a.jpg"]["faces"][0]["box"] == FACE
    assert "boxes must be a list" in records["trip/c.jpg"]["error"]


def test_fer_predict_boxes_with_a_video_or_webcam_is_one_line(photos, model_path, capsys):
    (photos / "clip.mp4").write_bytes(b"")
    (photos / "boxes.json").write_text("{}")
    code, _, err = run_predict(capsys, "clip.mp4", "--boxes", "boxes.json", "--model", model_path)
    assert code == 2 and "not in videos" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_predict(capsys, "--webcam", "--boxes", "boxes.json", "--model", model_path)
    assert code == 2 and "--webcam" in err and len(err.strip().splitlines()) == 1
