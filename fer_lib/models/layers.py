"""Keras layers of our own, registered so that saved models using them load with safe mode on."""

from __future__ import annotations

import numpy as np

from fer_lib.backend import keras

CROPS_PER_FACE = (1, 10)  # the central crop, or Khaireddin & Chen's ten (TrainingCrop)
EPSILON = 1e-7  # floor for probabilities before the log: a softmax output can underflow to 0


@keras.saving.register_keras_serializable(package="fer_lib")
class PriorCorrection(keras.layers.Layer):
    """Divides class probabilities by the training prior raised to `strength`, then renormalises.

    Post-hoc logit adjustment (Menon et al., 2021): softmax(log p - strength * log prior).
    strength 0 leaves the probabilities unchanged; 1 treats every class as equally likely a priori,
    which raises recall of rare classes (disgust, fear) at the expense of frequent ones.
    `temperature` then divides those logits (temperature scaling, Guo et al. 2017; `fer calibrate`):
    above 1 it softens over-confident probabilities, below 1 sharpens flat ones; the ranking stays.
    """

    def __init__(self, priors, strength: float, temperature: float = 1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        priors = np.asarray(priors, np.float64)
        if priors.ndim != 1 or np.any(priors <= 0):
            raise ValueError(f"priors must be positive class frequencies, got {priors.tolist()}")
        self.priors = (priors / priors.sum()).tolist()
        self.strength = float(strength)
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self._offsets = (-self.strength * np.log(np.asarray(self.priors))).astype(np.float32)

    def call(self, probabilities):
        probabilities = keras.ops.cast(probabilities, "float32")
        logits = keras.ops.log(keras.ops.maximum(probabilities, EPSILON)) + self._offsets
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "priors": self.priors, "strength": self.strength, "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="fer_lib")
class TrainingCrop(keras.layers.Layer):
    """The central `size` x `size` pixels of every face, in training and at inference.

    After random shifts this is a random crop of each training face; at inference the model
    sees the central crop (and ten-crop TTA moves the face so that it sees the corner crops,
    as Khaireddin & Chen 2021 do). Convolutions on the crops cost (size/48)^2 of the compute
    per face. Whole faces at inference were tried first: the network, trained on crops,
    scored far below on them than on the central crop.
    With `crops` 10 each training face gives ten crops instead of one (see `call`).
    """

    def __init__(self, size: int, crops: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.size, self.crops = int(size), int(crops)
        if self.size < 1:
            raise ValueError(f"crop size must be a positive number of pixels, got {size}")
        if self.crops not in CROPS_PER_FACE:
            raise ValueError(f"crops per face must be one of {', '.join(map(str, CROPS_PER_FACE))}, got {crops}")

    def call(self, images, training=None):
        height, width = images.shape[1], images.shape[2]
        if self.size > min(height, width):
            raise ValueError(f"crop size {self.size} is larger than the {height}x{width} images")
        top, left = (height - self.size) // 2, (width - self.size) // 2
        if not training or self.crops == 1:
            return images[:, top:top + self.size, left:left + self.size, :]
        # Khaireddin & Chen's ten crops, each a training example: the four corners, the centre and
        # their mirrors, face by face (face 0's ten crops, then face 1's), as CropGroup regroups them.
        low_y, low_x = height - self.size, width - self.size
        corners = [(0, 0), (0, low_x), (low_y, 0), (low_y, low_x), (top, left)]
        crops = [images[:, y:y + self.size, x:x + self.size, :] for y, x in corners]
        crops += [keras.ops.flip(crop, axis=2) for crop in crops]
        return keras.ops.reshape(keras.ops.stack(crops, axis=1), (-1, self.size, self.size, images.shape[3]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, *input_shape[3:])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "crops": self.crops}


@keras.saving.register_keras_serializable(package="fer_lib")
class RandomAffine(keras.layers.Layer):
    """Rotation, zoom, scale jitter and shift of each training face in one bilinear resampling.

    Draws what Keras' RandomRotation, RandomZoom, RandomZoom((-s, 0), (-s, 0)) and
    RandomTranslation (reflect fill) draw, in that order, and composes their maps into one
    affine transform, so each face is interpolated once instead of up to four times (each
    pass blurs it a little more) and the reflection fills the border once. Identity at inference.
    """

    def __init__(self, rotation_deg: float = 0.0, zoom: float = 0.0, scale_jitter: float = 0.0, shift: float = 0.0,
                 seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.rotation_deg, self.zoom = float(rotation_deg), float(zoom)
        self.scale_jitter, self.shift = float(scale_jitter), float(shift)
        for name, value, limit in (("rotation_deg", self.rotation_deg, 180.0), ("zoom", self.zoom, 1.0),
                                   ("scale_jitter", self.scale_jitter, 1.0), ("shift", self.shift, 1.0)):
            if not 0 <= value < limit:
                raise ValueError(f"{name} must be in [0, {limit:g}), got {value}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # TensorFlow's XLA has no kernel for the projective transform; JAX compiles it.
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def coordinate_maps(self, batch: int, height: int, width: int):
        """(batch, 3, 3) maps from output pixel coordinates (x, y, 1) to the input's, as drawn for one batch."""
        ops = keras.ops

        def uniform(low, high):
            return keras.random.uniform((batch,), low, high, seed=self.seed_generator)

        zeros, ones = ops.zeros((batch,)), ops.ones((batch,))
        cx, cy = (width - 1) / 2, (height - 1) / 2

        def about_centre(a, b, c, d):  # [[a b] [c d]] applied about the image centre
            return ops.stack([ops.stack([a, b, cx - a * cx - b * cy], axis=-1),
                              ops.stack([c, d, cy - c * cx - d * cy], axis=-1),
                              ops.stack([zeros, zeros, ones], axis=-1)], axis=1)

        maps = []  # in the order the separate layers apply them
        if self.rotation_deg:
            angle = uniform(-self.rotation_deg, self.rotation_deg) * (np.pi / 180)
            cos, sin = ops.cos(angle), ops.sin(angle)
            maps.append(about_centre(cos, -sin, sin, cos))
        if self.zoom:
            factor = uniform(1 - self.zoom, 1 + self.zoom)
            maps.append(about_centre(factor, zeros, zeros, factor))
        if self.scale_jitter:
            factor_y, factor_x = uniform(1 - self.scale_jitter, 1.0), uniform(1 - self.scale_jitter, 1.0)
            maps.append(about_centre(factor_x, zeros, zeros, factor_y))
        if self.shift:
            dy, dx = uniform(-self.shift, self.shift) * height, uniform(-self.shift, self.shift) * width
            maps.append(ops.stack([ops.stack([ones, zeros, -dx], axis=-1), ops.stack([zeros, ones, -dy], axis=-1),
                                   ops.stack([zeros, zeros, ones], axis=-1)], axis=1))
        combined = maps[0] if maps else about_centre(ones, zeros, zeros, ones)
        # The first transform applied to the image is the last map applied to the coordinates.
        for later in maps[1:]:
            combined = ops.matmul(combined, later)
        return combined

    def call(self, images, training=None):
        if not training or not (self.rotation_deg or self.zoom or self.scale_jitter or self.shift):
            return images
        ops = keras.ops
        batch = ops.shape(images)[0]
        maps = self.coordinate_maps(batch, images.shape[1], images.shape[2])
        transform = ops.concatenate([ops.reshape(maps[:, :2, :], (-1, 6)), ops.zeros((batch, 2))], axis=1)
        return ops.image.affine_transform(ops.cast(images, "float32"), transform, interpolation="bilinear",
                                          fill_mode="reflect")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation_deg": self.rotation_deg, "zoom": self.zoom,
                "scale_jitter": self.scale_jitter, "shift": self.shift, "seed": self.seed}


@keras.saving.register_keras_serializable(package="fer_lib")
class CropGroup(keras.layers.Layer):
    """In training, regroups the outputs of TrainingCrop's `crops` crops per face as (faces, crops, ...).

    The training targets are repeated to match, so every crop is an example with its face's
    label in the same step, as Khaireddin & Chen train. At inference there is one crop per face
    and nothing to regroup.
    """

    def __init__(self, crops: int, **kwargs):
        super().__init__(**kwargs)
        self.crops = int(crops)

    def call(self, features, training=None):
        if not training or self.crops == 1:
            return features
        return keras.ops.reshape(features, (-1, self.crops, *features.shape[1:]))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "crops": self.crops}


@keras.saving.register_keras_serializable(package="fer_lib")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization, computed by TensorFlow's fused kernel when TensorFlow runs it.

    Keras 3 normalises with separate float32 ops (a cast, the moments, then scale and shift);
    in bfloat16 on a CPU they dominated fer_cnn's training time (docs/training.md). TensorFlow's
    fused op (oneDNN) does the same in one pass. The weights, statistics and results are
    Keras' own, so a model trains and loads on any backend; on others (JAX on a GPU, where
    XLA fuses the ops anyway) and in the cases the fused op does not cover, Keras' code runs.
    """

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and self.center and self.scale
                and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16", "float16"))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True)
            # The fused op returns the unbiased variance; Keras' moving statistics use the biased one.
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = variance * (count - 1.0) / count
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon, is_training=False)
        return tf.cast(outputs, self.compute_dtype)


class InferenceByDefault:
    """Makes a Keras layer whose `call` defaults to training=True default to inference instead.

    Keras' augmentation layers (RandomFlip, RandomErasing, ...) and Resizing, one of them, take
    training=True when nobody says otherwise, as in a direct call `model(x)`, where Keras 3 passes
    training=None. Keras also hands a layer's resolved value on to every layer called after it in
    the same call: one such layer made a direct call a training call from there on, augmentation
    on and batch norm on the batch's own statistics (and its moving ones updated). These layers
    take the value their model is called with, and inference when it is called without one;
    `fit` calls with training=True, so training still augments.
    """

    def call(self, data, training=None):
        return super().call(data, training=False if training is None else training)


def _inference_by_default(base):
    """`base`, the Keras layer, as a fer_lib layer that defaults to inference (InferenceByDefault)."""
    layer = type(base.__name__, (InferenceByDefault, base), {
        "__module__": __name__, "__qualname__": base.__name__,
        "__doc__": f"Keras' {base.__name__}, which acts only when its model is called with training=True."})
    return keras.saving.register_keras_serializable(package="fer_lib")(layer)


RandomFlip = _inference_by_default(keras.layers.RandomFlip)
RandomRotation = _inference_by_default(keras.layers.RandomRotation)
RandomZoom = _inference_by_default(keras.layers.RandomZoom)
RandomTranslation = _inference_by_default(keras.layers.RandomTranslation)
RandomContrast = _inference_by_default(keras.layers.RandomContrast)
RandomErasing = _inference_by_default(keras.layers.RandomErasing)
Resizing = _inference_by_default(keras.layers.Resizing)
# The Keras layers that saved models hold and that `with_fer_layers` replaces.
INFERENCE_BY_DEFAULT = {keras.layers.RandomFlip: RandomFlip, keras.layers.RandomRotation: RandomRotation,
                        keras.layers.RandomZoom: RandomZoom, keras.layers.RandomTranslation: RandomTranslation,
                        keras.layers.RandomContrast: RandomContrast, keras.layers.RandomErasing: RandomErasing,
                        keras.layers.Resizing: Resizing}


def with_fer_layers(model: keras.Model) -> keras.Model:
    """A copy of `model`, nested models included, whose Keras layers are fer_lib's where fer_lib has its own.

    For models saved before these layers existed (the packaged ones): Keras' augmentation layers
    and Resizing become the InferenceByDefault ones, so that `model(x)` is inference, without the
    training=True that building the model recorded with their calls; on TensorFlow, Keras'
    BatchNormalization becomes FusedBatchNormalization (several times the inference speed on a CPU).
    Same weights and, in `predict`, the same outputs. Models without such layers and subclassed
    models get `model` itself back.
    """
    replacements = dict(INFERENCE_BY_DEFAULT)
    if keras.backend.backend() == "tensorflow":  # elsewhere the fused layer runs Keras' code: nothing to gain
        replacements[keras.layers.BatchNormalization] = FusedBatchNormalization

    def replaceable(layer) -> bool:
        if type(layer) in replacements:
            return True
        return any(replaceable(inner) for inner in getattr(layer, "layers", []))

    if not replaceable(model):
        return model

    def clone(layer):
        return replacements.get(type(layer), layer.__class__).from_config(layer.get_config())

    def call(layer, *args, **kwargs):
        if isinstance(layer, InferenceByDefault):
            kwargs.pop("training", None)  # the training=True recorded when the model was built
        return layer(*args, **kwargs)

    try:
        converted = keras.models.clone_model(model, clone_function=clone, recursive=True,
                                             call_function=None if isinstance(model, keras.Sequential) else call)
    except ValueError:  # a subclassed model, which clone_model cannot rebuild: keep Keras' layers
        return model
    converted.set_weights(model.get_weights())
    return converted


with_fused_batch_norm = with_fer_layers  # its name before it converted more than batch norm
