"""FusedBatchNormalization must be Keras' BatchNormalization in everything but speed."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_lib.models.layers import FusedBatchNormalization
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model


def _pair(shape, momentum=0.9):
    """A Keras BatchNormalization and a FusedBatchNormalization with the same non-trivial weights."""
    rng = np.random.default_rng(1)
    gamma, beta = rng.normal(1.0, 0.2, shape[-1]), rng.normal(0.0, 0.2, shape[-1])
    layers = keras.layers.BatchNormalization(momentum=momentum), FusedBatchNormalization(momentum=momentum)
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(gamma.astype("float32"))
        layer.beta.assign(beta.astype("float32"))
    return layers


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_trains_and_infers_like_keras_batch_norm(policy):
    import tensorflow as tf

    keras.config.set_dtype_policy(policy)
    try:
        x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (8, 6, 6, 5)).astype("float32"))
        reference, fused = _pair(x.shape)
        assert fused._fusable(x, None), "the fused path must run here, or this test compares Keras with itself"
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            outputs = [tf.cast(layer(x, training=True), tf.float32) for layer in (reference, fused)]
            losses = [tf.reduce_sum(out ** 2) for out in outputs]
        assert fused(x, training=True).dtype == reference(x, training=True).dtype
        tolerance = 1e-5 if policy == "float32" else 1e-2
        np.testing.assert_allclose(outputs[1].numpy(), outputs[0].numpy(), atol=tolerance)
        np.testing.assert_allclose(tape.gradient(losses[1], x).numpy(), tape.gradient(losses[0], x).numpy(),
                                   atol=tolerance * 10)
        for name in ("gamma", "beta"):
            grads = [tape.gradient(loss, getattr(layer, name)) for loss, layer in zip(losses, (reference, fused))]
            np.testing.assert_allclose(grads[1].numpy(), grads[0].numpy(), rtol=1e-3, atol=1e-3)
        # Two training calls each above; the moving statistics (biased variance) must agree.
        for name in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(getattr(fused, name).numpy(), getattr(reference, name).numpy(), rtol=1e-5)
        assert not np.allclose(reference.moving_variance.numpy(), 1.0), "the statistics were not updated"
        np.testing.assert_allclose(tf.cast(fused(x), tf.float32).numpy(), tf.cast(reference(x), tf.float32).numpy(),
                                   atol=tolerance)
    finally:
        keras.config.set_dtype_policy("float32")


def test_fused_batch_norm_falls_back_to_keras_where_the_fused_op_does_not_apply():
    x = np.random.default_rng(0).normal(size=(16, 7)).astype("float32")  # 2-D: no fused kernel
    reference, fused = _pair(x.shape)
    assert not fused._fusable(keras.ops.convert_to_tensor(x), None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x, training=True)),
                               keras.ops.convert_to_numpy(reference(x, training=True)), rtol=1e-6)


@pytest.mark.slow
def test_a_fer_cnn_with_fused_batch_norm_saves_and_loads(tmp_path):
    model = build_model("fer_cnn")
    assert any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    batch = np.random.default_rng(0).random((2, 48, 48, 1)).astype("float32")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(batch, keras.utils.to_categorical([0, 3], 7), epochs=1, verbose=0)  # moves the statistics off 0 / 1
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_models_saved_with_keras_batch_norm_load_with_the_fused_layer(tmp_path):
    from fer_lib.models.ensemble import build_ensemble
    from fer_lib.models.layers import with_fused_batch_norm

    # A model as saved before FusedBatchNormalization existed, nested inside an ensemble.
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    old = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x), name="old")
    bn = old.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.normal(1, 0.3, 4), rng.normal(0, 0.3, 4), rng.normal(0, 0.5, 4), rng.uniform(0.5, 2, 4)])
    ensemble = build_ensemble([old, build_model("fer_cnn")])
    ensemble.save(tmp_path / "old.keras")

    loaded = load_model(tmp_path / "old.keras")
    members = [layer for layer in loaded.layers if isinstance(layer, keras.Model)]
    assert isinstance(members[0].get_layer("bn"), FusedBatchNormalization)
    assert not any(type(layer) is keras.layers.BatchNormalization for m in members for layer in m.layers)
    batch = rng.random((4, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), ensemble.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)
    assert with_fused_batch_norm(loaded) is loaded  # nothing left to convert


def test_ten_training_crops_are_the_corners_centre_and_mirrors_face_by_face():
    from fer_lib.models.layers import TrainingCrop

    faces = np.random.default_rng(0).random((2, 48, 48, 1)).astype(np.float32)
    crops = keras.ops.convert_to_numpy(TrainingCrop(40, crops=10)(faces, training=True))
    assert crops.shape == (20, 40, 40, 1)
    for face in range(2):
        expected = [faces[face, y:y + 40, x:x + 40] for y, x in ((0, 0), (0, 8), (8, 0), (8, 8), (4, 4))]
        expected += [crop[:, ::-1] for crop in expected]
        np.testing.assert_array_equal(crops[face * 10:(face + 1) * 10], np.stack(expected))
    central = keras.ops.convert_to_numpy(TrainingCrop(40, crops=10)(faces, training=False))
    np.testing.assert_array_equal(central, faces[:, 4:44, 4:44])


def test_crop_group_gives_one_row_of_crops_per_face_in_training_only():
    from fer_lib.models.layers import CropGroup

    features = np.arange(20 * 3, dtype=np.float32).reshape(20, 3)
    grouped = keras.ops.convert_to_numpy(CropGroup(10)(features, training=True))
    assert grouped.shape == (2, 10, 3) and grouped[1, 0, 0] == features[10, 0]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(CropGroup(10)(features, training=False)), features)


def test_a_ten_crop_model_saves_loads_and_classifies_one_crop_per_face(tmp_path):
    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.models.saving import save_model

    model = build_model("fer_cnn", augment=AugmentConfig(crop=40, crops=10, erasing=0.5), widths=(8, 8, 8, 8), dense_units=8)
    faces = np.random.default_rng(1).integers(0, 255, (3, 48, 48, 1)).astype(np.float32)
    assert keras.ops.convert_to_numpy(model(faces, training=True)).shape == (3, 10, 7)
    save_model(model, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(faces, verbose=0), model.predict(faces, verbose=0), atol=1e-5)
    assert loaded.predict(faces, verbose=0).shape == (3, 7)
