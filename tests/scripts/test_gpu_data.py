"""scripts/gpu_data.py: the training faces packed for a GPU machine come back pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from fer_lib.data.dataset import load_dataset


def _rows(images, labels):
    return sorted((int(label), image.tobytes()) for image, label in zip(images, labels))


def test_pack_then_unpack_gives_the_same_training_faces(synthetic_root, tmp_path, load_script):
    gpu_data = load_script("gpu_data")
    packed = tmp_path / "carry" / "train.npy.xz"
    assert gpu_data.main(["pack", "--data", str(synthetic_root), "--out", str(packed)]) == 0
    assert gpu_data.main(["unpack", str(packed), "--out", str(tmp_path / "fer")]) == 0
    original = load_dataset(synthetic_root, use_cache=False)
    unpacked = load_dataset(tmp_path / "fer", use_cache=False, require_test=False)
    assert len(unpacked.test) == 0
    sent = _rows(np.concatenate([original.train.images, original.val.images]),
                 np.concatenate([original.train.labels, original.val.labels]))
    received = _rows(np.concatenate([unpacked.train.images, unpacked.val.images]),
                     np.concatenate([unpacked.train.labels, unpacked.val.labels]))
    assert received == sent


@pytest.mark.slow
def test_models_too_big_to_come_back_travel_as_float16_and_come_back_as_float32(tmp_path, load_script, capsys):
    import zipfile

    import h5py

    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import load_model, save_model

    gpu_data = load_script("gpu_data")
    runs = tmp_path / "runs"
    faces = np.random.default_rng(0).random((64, 48, 48, 1)).astype(np.float32) * 255
    for name in ("a", "b"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text("{}")
        model = build_model("fer_cnn", augment=AugmentConfig(flip=True, shift=0.1, erasing=0.5, crop=40), seed=len(name))
        save_model(model, runs / name / "model.keras")
    model_bytes = (runs / "a" / "model.keras").stat().st_size
    gpu_data.bundle(runs, tmp_path / "out", limit=int(1.5 * model_bytes))  # two models fit only at half size
    assert "travel with float16 weights" in capsys.readouterr().out
    assert sum(f.stat().st_size for f in (tmp_path / "out").iterdir()) < 1.2 * model_bytes
    assert gpu_data.main(["unbundle", str(tmp_path / "out"), "--out", str(tmp_path / "back")]) == 0
    assert "restored to float32" in capsys.readouterr().out
    for name in ("a", "b"):
        back, original = tmp_path / "back" / name / "model.keras", runs / name / "model.keras"
        with zipfile.ZipFile(back) as archive, archive.open("model.weights.h5") as member, h5py.File(member) as weights:
            names = []
            weights.visit(names.append)
            dtypes = {weights[n].dtype for n in names if isinstance(weights[n], h5py.Dataset)}
        assert np.dtype(np.float16) not in dtypes and np.dtype(np.float32) in dtypes
        restored, trained = load_model(back).predict(faces, verbose=0), load_model(original).predict(faces, verbose=0)
        assert np.abs(restored - trained).max() < 1e-2
        assert (restored.argmax(axis=1) == trained.argmax(axis=1)).mean() >= 0.95


def test_a_bundle_that_fits_keeps_its_models_as_they_are(tmp_path, load_script):
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import save_model

    gpu_data = load_script("gpu_data")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    save_model(build_model("seed_cnn", seed=0), tmp_path / "run" / "model.keras")
    gpu_data.bundle(tmp_path / "run", tmp_path / "out")
    assert gpu_data.main(["unbundle", str(tmp_path / "out"), "--out", str(tmp_path / "back")]) == 0
    assert (tmp_path / "back" / "model.keras").read_bytes() == (tmp_path / "run" / "model.keras").read_bytes()


def test_a_weight_beyond_float16s_range_travels_as_float32(tmp_path, load_script):
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import load_model, save_model

    gpu_data = load_script("gpu_data")
    model = build_model("seed_cnn", seed=0)
    kernel = model.layers[-1].kernel
    kernel.assign(np.full(kernel.shape, 1e6, np.float32))  # no float16 holds it
    save_model(model, tmp_path / "m.keras")
    halved = gpu_data.halve_keras_file(tmp_path / "m.keras")
    assert halved > 0
    gpu_data.restore_keras_file(tmp_path / "m.keras")
    restored = load_model(tmp_path / "m.keras").layers[-1].kernel
    assert np.all(np.asarray(restored) == 1e6)
