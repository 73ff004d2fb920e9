"""predict_expression and `fer predict` on photos: schema, batching, training-identical pixels, bad inputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from fer_lib import paths
from fer_lib.cli import main
from fer_lib.data.preprocessing import load_face_file
from fer_lib.errors import DataError, ModelFileError
from fer_lib.inference import photos as inference
from fer_lib.labels import EMOTIONS


@pytest.fixture()
def spied_model(model_path):
    """A loaded model whose calls are recorded (their input batches)."""
    from fer_lib.models.saving import load_model

    model = load_model(model_path)
    calls = []
    for name in ("predict", "predict_on_batch"):
        method = getattr(model, name)

        def recording(x, *args, _method=method, **kwargs):
            calls.append(np.array(x))
            return _method(x, *args, **kwargs)

        setattr(model, name, recording)
    return model, calls


def assert_face_schema(face: dict, image_size: tuple[int, int]):
    assert set(face) == {"box", "emotion", "scores", "top2", "detection_score"}
    assert face["detection_score"] is None or (type(face["detection_score"]) is float and 0 <= face["detection_score"] <= 1)
    x, y, w, h = face["box"]
    assert all(type(v) is int for v in face["box"])
    assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= image_size[0] and y + h <= image_size[1]
    assert list(face["scores"]) == list(EMOTIONS)
    assert all(type(p) is float for p in face["scores"].values())
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    ranked = sorted(EMOTIONS, key=lambda e: -face["scores"][e])
    assert face["emotion"] == ranked[0] and face["top2"][0] == ranked[0]
    assert face["scores"][face["top2"][1]] == face["scores"][ranked[1]]
    json.dumps(face)  # plain JSON types only


def test_photo_gives_one_face_with_the_documented_schema(tmp_path, model_path):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path)
    faces = inference.predict_expression(path, model=model_path)
    assert len(faces) == 1
    assert_face_schema(faces[0], (512, 512))
    assert faces[0]["box"][0] in range(150, 200) and faces[0]["box"][1] in range(40, 90)


@pytest.mark.parametrize("kind", ["gray", "rgb", "rgba", "float", "pil"])
def test_arrays_and_pil_images_are_accepted(kind, spied_model):
    model, _ = spied_model
    rgb = data.astronaut()
    image = {
        "gray": np.asarray(Image.fromarray(rgb).convert("L")),
        "rgb": rgb,
        "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "float": rgb.astype(np.float32) / 255.0,
        "pil": Image.fromarray(rgb),
    }[kind]
    faces = inference.predict_expression(image, model=model)
    assert len(faces) == 1
    assert_face_schema(faces[0], (512, 512))


def test_no_face_gives_an_empty_list(spied_model):
    model, calls = spied_model
    assert inference.predict_expression(data.coffee(), model=model) == []


def test_a_list_is_classified_in_one_model_call(spied_model):
    model, calls = spied_model
    face = np.asarray(Image.fromarray(data.astronaut()[60:172, 168:280]).resize((48, 48)).convert("L"))
    inputs = [data.astronaut(), face, data.coffee(), face[:40, :44], Image.fromarray(data.astronaut())]
    results = inference.predict_expression(inputs, model=model)
    assert [len(r) for r in results] == [1, 1, 0, 1, 1]
    assert len(calls) == 1 and calls[0].shape == (4, 48, 48, 1)
    assert results[1][0]["box"] == [0, 0, 48, 48] and results[3][0]["box"] == [0, 0, 44, 40]


def test_many_faces_take_a_bounded_number_of_model_calls(spied_model, monkeypatch):
    model, calls = spied_model
    monkeypatch.setattr(inference, "PREDICT_BATCH_SIZE", 16)
    crops = [np.full((48, 48), i, np.uint8) for i in range(40)]
    results = inference.predict_expression(crops, model=model)
    assert all(len(r) == 1 for r in results)
    assert [c.shape[0] for c in calls] == [16, 16, 8]


def test_tight_crop_reaches_the_model_with_the_training_loaders_pixels(tmp_path, spied_model):
    """A face-crop file is classified whole, and the model sees what `fer_lib.data` trains on."""
    model, calls = spied_model
    path = tmp_path / "crop.png"
    Image.fromarray(data.astronaut()[40:200, 150:300]).resize((60, 58)).save(path)  # RGB, not 48x48
    [face] = inference.predict_expression(path, model=model)
    assert face["box"] == [0, 0, 60, 58]
    np.testing.assert_array_equal(calls[0][0, :, :, 0].astype(np.uint8), load_face_file(path))


def test_detected_crop_has_the_training_loaders_pixels(tmp_path, spied_model):
    """A face cut from a photo gives exactly the pixels the training loader reads from that cut saved alone."""
    model, calls = spied_model
    photo = tmp_path / "photo.png"
    image = Image.fromarray(data.astronaut()).convert("RGBA")  # alpha: flattened the same way on both paths
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    image.save(photo)
    [face] = inference.predict_expression(photo, model=model, align=False)  # a tilted face is turned: other pixels
    x, y, w, h = face["box"]  # well inside the image, so not clipped or padded
    crop_file = tmp_path / "crop.png"
    Image.open(photo).crop((x, y, x + w, y + h)).save(crop_file)
    np.testing.assert_array_equal(calls[0][0, :, :, 0].astype(np.uint8), load_face_file(crop_file))
    # and through the dataset loader itself, as a one-image split folder
    from fer_lib.data.dataset import load_eval_split

    folder = tmp_path / "split"
    (folder / "happy").mkdir(parents=True)
    crop_file.rename(folder / "happy" / "crop.png")
    for emotion in EMOTIONS[:2]:  # the loader wants more than one class
        (folder / emotion).mkdir(exist_ok=True)
        Image.new("L", (48, 48), 100).save(folder / emotion / "other.png")
    loaded = load_eval_split(folder).split
    index = list(loaded.labels).index(EMOTIONS.index("happy"))
    np.testing.assert_array_equal(calls[0][0, :, :, 0].astype(np.uint8), loaded.images[index])


def test_exif_orientation_is_applied_and_boxes_are_upright(tmp_path, spied_model):
    model, _ = spied_model
    upright = Image.fromarray(data.astronaut())
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a sideways camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    [expected] = inference.predict_expression(np.asarray(upright), model=model)
    [from_file] = inference.predict_expression(path, model=model)
    [from_pil] = inference.predict_expression(Image.open(path), model=model)
    for face in (from_file, from_pil):
        assert all(abs(a - b) <= 6 for a, b in zip(face["box"], expected["box"]))


def test_bad_inputs_in_a_list_are_reported_and_the_rest_classified(tmp_path, spied_model):
    model, calls = spied_model
    (tmp_path / "text.jpg").write_text("not an image")
    Image.fromarray(data.astronaut()).save(tmp_path / "full.jpg")
    raw = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(raw[: len(raw) // 3])
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    Image.new("1", (10_000, 9_000)).save(tmp_path / "huge.png")  # 90M pixels: decompression-bomb guard
    inputs = [tmp_path / n for n in ("text.jpg", "truncated.jpg", "dot.png", "huge.png", "missing.jpg", "full.jpg")]
    inputs.append(tmp_path)  # a folder
    results = inference.predict_expression(inputs, model=model)
    errors = [r["error"] for r in results if isinstance(r, dict)]
    assert len(errors) == 6
    for name, error in zip(("text.jpg", "truncated.jpg", "dot.png", "huge.png", "missing.jpg"), errors):
        assert name in error
    assert "too small" in errors[2] and "too large" in errors[3] and "not found" in errors[4] and "folder" in errors[5]
    assert len(results[5]) == 1 and len(calls) == 1


def test_a_bad_single_input_raises_a_data_error(tmp_path, model_path):
    with pytest.raises(DataError, match="missing.jpg: file not found"):
        inference.predict_expression(tmp_path / "missing.jpg", model=model_path)
    with pytest.raises(DataError, match="too small"):
        inference.predict_expression(np.zeros((1, 1), np.uint8), model=model_path)


def test_missing_packaged_model_says_how_to_pass_one(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "DEFAULT_MODEL_PATH", tmp_path / paths.PRETRAINED_MODEL.name)
    with pytest.raises(ModelFileError, match=r"pass model= .*--model") as error:
        inference.predict_expression(data.astronaut())
    assert "\n" not in str(error.value)


def test_fer_predict_folder_to_stdout_json_with_per_file_problems(tmp_path, model_path, capsys):
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(photos / "trip" / "astronaut.jpg")
    Image.fromarray(data.coffee()).save(photos / "coffee.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (photos / "notes.txt").write_text("skipped: not an image")
    (tmp_path / "table.xlsx").write_text("x")
    code = main(["predict", str(photos), str(tmp_path / "table.xlsx"), "--model", str(model_path),
                 "--annotate", str(tmp_path / "annotated"), "--detector", "haar"])
    out, err = capsys.readouterr()
    assert code == 1  # one unreadable and one unsupported input
    records = {r["source"].replace(str(tmp_path) + "/", ""): r for r in json.loads(out)}
    assert set(records) == {"photos/trip/astronaut.jpg", "photos/coffee.png", "photos/broken.jpg", "table.xlsx"}
    for record in records.values():
        assert record["frame"] is None and record["time_s"] is None
    assert len(records["photos/trip/astronaut.jpg"]["faces"]) == 1
    assert records["photos/coffee.png"]["faces"] == [] and "error" not in records["photos/coffee.png"]
    assert "cannot read image" in records["photos/broken.jpg"]["error"]
    assert "unsupported format .xlsx" in records["table.xlsx"]["error"]
    assert "coffee.png: no face found" in err and "Traceback" not in err
    assert (tmp_path / "annotated" / "trip__astronaut.annotated.jpg").is_file()


def test_fer_predict_csv_has_one_row_per_face(tmp_path, model_path, capsys):
    Image.fromarray(data.astronaut()).save(tmp_path / "a.jpg")
    assert main(["predict", str(tmp_path / "a.jpg"), "--csv", str(tmp_path / "out.csv"), "--model", str(model_path)]) == 0
    assert capsys.readouterr().out == ""  # results went to the file
    import pandas as pd

    table = pd.read_csv(tmp_path / "out.csv")
    assert len(table) == 1 and list(table.columns[-8:-1]) == list(EMOTIONS)
    assert table.loc[0, "emotion"] in EMOTIONS and table.loc[0, [*EMOTIONS]].sum() == pytest.approx(1, abs=1e-4)


def test_fer_predict_says_what_failed_and_counts_photos_faces_and_photos_without_one(tmp_path, model_path, capsys):
    Image.fromarray(data.astronaut()).save(tmp_path / "a.jpg")
    Image.new("L", (400, 300), 128).save(tmp_path / "blank.png")  # no face
    (tmp_path / "notes.png").write_text("not an image")
    argv = ["predict", str(tmp_path / "a.jpg"), str(tmp_path / "blank.png"), str(tmp_path / "notes.png"),
            str(tmp_path / "missing.jpg"), "--model", str(model_path), "--detector", "haar"]
    assert main([*argv, "--csv", str(tmp_path / "new" / "out.csv")]) == 1  # missing folders are created
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "fer predict: done: 2 photo(s), 1 face(s), 1 photo(s) without a face, 2 input(s) could not be used"
    assert sum("missing.jpg: not found" in line for line in err) == 1
    assert sum("notes.png: cannot read image" in line for line in err) == 1
    assert sum("blank.png: no face found" in line for line in err) == 1
    import pandas as pd

    table = pd.read_csv(tmp_path / "new" / "out.csv")
    rows = {source.rsplit("/", 1)[-1]: row for source, row in table.set_index("source").iterrows()}
    assert set(rows) == {"a.jpg", "blank.png", "notes.png", "missing.jpg"}  # a row for the photo without a face too
    assert pd.isna(rows["blank.png"]["emotion"]) and pd.isna(rows["blank.png"]["error"])
    assert main([*argv, "--json", str(tmp_path / "out.json")]) == 1
    records = {r["source"].rsplit("/", 1)[-1]: r for r in json.loads((tmp_path / "out.json").read_text())}
    assert records["blank.png"]["faces"] == [] and "error" not in records["blank.png"]


def test_fer_predict_one_missing_photo_is_one_line_and_no_summary(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing.jpg")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"fer predict: error: {tmp_path / 'missing.jpg'}: not found; check the path"]


@pytest.mark.parametrize("argv,message", [
    (["predict"], "nothing to do"),
    (["predict", "photo.jpg", "--model", "missing.keras"], "missing.keras: model file not found"),
])
def test_fer_predict_user_mistakes_are_one_line(tmp_path, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(data.astronaut()).save(tmp_path / "photo.jpg")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fer predict: error:") and message in err[-1]


def test_fer_predict_messages_do_not_overwrite_the_progress_bar(tmp_path, capsys):
    from PIL import Image

    from fer_lib.cli import main

    for name in ("a.png", "b.png", "c.png"):  # no faces: each gets a "no face found" line while the bar runs
        Image.new("L", (400, 300), 128).save(tmp_path / name)  # too big to be a face crop itself
    assert main(["predict", str(tmp_path), "--detector", "haar"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "no face found" in line]
    assert len(lines) == 3 and all(line.startswith("fer predict: ") for line in lines)


@pytest.mark.slow
def test_using_the_library_prints_no_tensorflow_start_up_chatter(tmp_path):
    """Importing fer_lib and predicting starts TensorFlow without its native logs (oneDNN, CUDA, cuInit)."""
    import subprocess
    import sys

    from fer_lib.models.saving import read_model_classes

    code = ("import numpy as np\nfrom fer_lib import predict_expression\n"
            "print(predict_expression(np.full((48, 48), 128, np.uint8))[0]['emotion'])")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in read_model_classes(paths.PRETRAINED_MODEL)  # the default packaged model's
    for chatter in ("cuInit", "oneDNN", "cuda", "absl"):
        assert chatter not in done.stderr, done.stderr
