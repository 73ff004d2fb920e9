"""Model files from anywhere: safe loading only, clear refusals, and the class list travelling with the file.

Complements tests/models/test_models.py (missing file, .h5, non-zip .keras, Lambda layer refused
by `load_model`).
"""

from __future__ import annotations

import json
import shutil
import zipfile

import keras
import pytest

from fer_lib.cli import main
from fer_lib.errors import ModelFileError
from fer_lib.labels import EMOTIONS
from fer_lib.models.registry import build_model
from fer_lib.models.saving import METADATA_MEMBER, load_model, read_model_classes, save_model

TINY = {"conv_filters": [4], "dense_units": [8]}


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_model(build_model("cnn", seed=0, **TINY), path)
    return path


def rewrite_member(source, target, member: str, content: bytes | None):
    """Copy a .keras archive, replacing (or, with None, dropping) one member."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            if name != member:
                archive.writestr(name, data)
            elif content is not None:
                archive.writestr(name, content)
    return target


def test_the_class_list_travels_inside_the_model_file(tiny_model_file, tmp_path):
    moved = tmp_path / "somewhere" / "renamed.keras"
    moved.parent.mkdir()
    shutil.copy(tiny_model_file, moved)
    assert read_model_classes(moved) == list(EMOTIONS)
    assert load_model(moved).output_shape == (None, 7)
    # A plain Keras save has no record: accepted on its output width, as before.
    build_model("cnn", seed=0, **TINY).save(tmp_path / "plain.keras")
    assert read_model_classes(tmp_path / "plain.keras") is None
    load_model(tmp_path / "plain.keras")


def test_a_model_for_other_classes_is_refused_even_with_seven_outputs(tiny_model_file, tmp_path):
    reordered = [*EMOTIONS[1:], EMOTIONS[0]]  # same width, different order: the output check alone misses it
    save_model(build_model("cnn", seed=0, **TINY), tmp_path / "reordered.keras", classes=reordered)
    with pytest.raises(ModelFileError, match=r"reordered\.keras: refused, the model predicts classes disgust, fear.*, angry "
                                             r"\(in that order\), which are neither FER2013's seven \(angry, disgust"):
        load_model(tmp_path / "reordered.keras")
    inputs = keras.Input((48, 48, 1))
    five = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs)))
    save_model(five, tmp_path / "five.keras", classes=["a", "b", "c", "d", "e"])
    with pytest.raises(ModelFileError, match=r"five\.keras: refused, the model predicts classes a, b, c, d, e \(in that order\)"):
        load_model(tmp_path / "five.keras")


def _lambda_model(path):
    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(keras.layers.Lambda(lambda t: t * 2)(inputs)))
    keras.Model(inputs, outputs).save(path)


@pytest.mark.parametrize("kind, message", [
    ("truncated", "corrupt or not a Keras model file"),
    ("broken_config", "corrupt model file, its config.json is not valid JSON"),
    ("foreign_class", "refused, its config names classes or functions that are not Keras layers"),
    ("no_config", "corrupt or unreadable model file (KeyError"),
    ("lambda", "refused, the model contains a Lambda layer"),
    ("other_classes", "refused, the model predicts classes"),
])
def test_fer_evaluate_refuses_bad_model_files_in_one_line(kind, message, tiny_model_file, synthetic_root, tmp_path, capsys):
    path = tmp_path / f"{kind}.keras"
    if kind == "truncated":
        path.write_bytes(tiny_model_file.read_bytes()[:5000])
    elif kind == "broken_config":
        rewrite_member(tiny_model_file, path, "config.json", b'{"class_name": "Functional", ')
    elif kind == "foreign_class":
        config = json.loads(zipfile.ZipFile(tiny_model_file).read("config.json"))
        config["config"]["layers"][1].update(module="os", class_name="system")
        rewrite_member(tiny_model_file, path, "config.json", json.dumps(config).encode())
    elif kind == "no_config":
        rewrite_member(tiny_model_file, path, "config.json", None)
    elif kind == "lambda":
        _lambda_model(path)
    else:
        rewrite_member(tiny_model_file, path, METADATA_MEMBER, json.dumps({"classes": ["happy", "sad"]}).encode())
    assert main(["evaluate", "--model", str(path), "--data", str(synthetic_root / "test")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"fer evaluate: error: {path}: ") and message in err[0], err


def test_a_model_that_would_run_code_is_refused_without_running_it(tiny_model_file, tmp_path):
    """A config.json pointing at a Python builtin must not be called while loading."""
    marker = tmp_path / "pwned"
    config = json.loads(zipfile.ZipFile(tiny_model_file).read("config.json"))
    config["config"]["layers"][1].update(module="builtins", class_name="exec", registered_name="exec",
                                         config={"source": f"open({str(marker)!r}, 'w')"})
    path = rewrite_member(tiny_model_file, tmp_path / "exec.keras", "config.json", json.dumps(config).encode())
    with pytest.raises(ModelFileError, match="refused"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.slow
def test_a_trained_model_is_saved_without_its_optimizer_state(tmp_path):
    import h5py
    import numpy as np

    model = build_model("cnn", seed=0, conv_filters=[8], dense_units=[16])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    faces = np.random.default_rng(0).integers(0, 255, (14, 48, 48, 1)).astype("float32")
    model.fit(faces, keras.utils.to_categorical(np.arange(14) % 7, 7), epochs=1, verbose=0)
    plain = tmp_path / "plain.keras"
    model.save(plain)  # what Keras alone writes: the weights and Adam's two moments
    saved = save_model(model, tmp_path / "saved.keras")

    def stored_arrays(path):
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as member:
            arrays = []
            with h5py.File(member) as weights:
                weights.visititems(lambda name, node: arrays.append(name) if isinstance(node, h5py.Dataset) else None)
        return arrays

    assert any(name.startswith("optimizer") for name in stored_arrays(plain))
    assert not any(name.startswith("optimizer") for name in stored_arrays(saved))
    assert saved.stat().st_size < 0.6 * plain.stat().st_size
    assert read_model_classes(saved) == list(EMOTIONS)
    np.testing.assert_allclose(load_model(saved).predict(faces, verbose=0), model.predict(faces, verbose=0), rtol=1e-5, atol=1e-6)
    assert model.optimizer is not None  # the caller's model is left compiled
