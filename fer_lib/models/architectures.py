"""The model architectures: the original seed CNN and its plain-CNN family, fer_cnn, EfficientNet-Lite.

Every model takes raw 48x48x1 pixels (0-255) and outputs softmax probabilities, 7 in EMOTIONS
order or FER+'s 8 (num_classes); scaling and augmentation layers live inside it. `fer_lib.models.registry`
names them for configs, presets and the command line.
"""

from __future__ import annotations

from fer_lib.backend import keras
from fer_lib.labels import INPUT_SHAPE, NUM_CLASSES
from fer_lib.models.augmentation import AugmentConfig, augmentation_layers
from fer_lib.models.layers import CropGroup, FusedBatchNormalization, Resizing


def _inputs_and_augmentation(augment: AugmentConfig, seed: int | None):
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    for layer in augmentation_layers(augment, seed):
        x = layer(x)
    return inputs, x


def _softmax_head(x, augment: AugmentConfig, num_classes: int = NUM_CLASSES, name: str = "emotion"):
    if augment.training_crops > 1:  # several training crops per face: one output row per face
        x = CropGroup(augment.training_crops, name="crop_group")(x)
    # float32 output keeps the softmax and loss stable under the mixed_bfloat16 policy.
    return keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name=name)(x)


def build_cnn(
    conv_filters=(75, 125, 256),
    dense_units=(260, 128, 64, 32),
    dropout: float = 0.0,
    batch_norm: bool = False,
    augment: AugmentConfig | None = None,
    seed: int | None = None,
    name: str = "cnn",
    num_classes: int = NUM_CLASSES,
    batch_norm_momentum: float = 0.99,
) -> keras.Model:
    """A plain CNN: one 3x3 conv (+ optional batch norm) and 2x2 max pooling per block, then dense layers.

    The KerasTuner search space is this family; `seed_cnn` is one of its points. `batch_norm_momentum`
    is how much of its moving statistics batch norm keeps at each step: Keras' 0.99 leaves them far from
    the batches' after the few hundred steps of a demo search's trial (its validation then sits at
    chance while training learns), 0.9 follows them within a few dozen.
    """
    augment = augment or AugmentConfig(flip=True)
    inputs, x = _inputs_and_augmentation(augment, seed)
    for i, filters in enumerate(conv_filters, start=1):
        x = keras.layers.Conv2D(int(filters), 3, padding="same", use_bias=not batch_norm, name=f"conv{i}")(x)
        if batch_norm:
            x = FusedBatchNormalization(momentum=batch_norm_momentum, name=f"bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=1):
        x = keras.layers.Dense(int(units), activation="relu", name=f"dense{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, seed=seed, name=f"dropout{i}")(x)
    return keras.Model(inputs, _softmax_head(x, augment, num_classes), name=name)


def build_seed_cnn(augment: AugmentConfig | None = None, seed: int | None = None,
                   num_classes: int = NUM_CLASSES) -> keras.Model:
    """The original project's CNN: conv 75/125/256 each with max pooling, dense 260/128/64/32."""
    return build_cnn((75, 125, 256), (260, 128, 64, 32), augment=augment, seed=seed, name="seed_cnn",
                     num_classes=num_classes)


FER_CNN_HEADS = ("average", "flatten")


def build_fer_cnn(
    widths=(32, 64, 128, 256),
    dense_units: int = 256,
    dropout: float = 0.4,
    residual: bool = False,
    head: str = "average",
    dense_layers: int = 1,
    feature_dropout: bool = True,
    augment: AugmentConfig | None = None,
    seed: int | None = None,
    num_classes: int = NUM_CLASSES,
) -> keras.Model:
    """A compact VGG-style network: per stage two 3x3 conv + batch norm, then pooling; a dense head.

    About 118M multiply-adds per face, so it trains on a CPU and serves hundreds of faces a second.
    `residual` adds a ResNet-style shortcut around each stage's two convs (a 1x1 projection + batch
    norm, since every stage changes the width), for about 3% more multiply-adds.
    `head` "average" pools the last feature map globally; "flatten" keeps where on the face each
    feature is (the last map is 2x2 or 3x3) for the dense layer, at more weights there.
    `dense_layers` of `dense_units` each follow (Khaireddin & Chen: two of 4096), each with
    dropout after it; `feature_dropout` also drops the pooled or flattened features before them.
    """
    if head not in FER_CNN_HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(FER_CNN_HEADS)}")
    augment = augment or AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.1)
    inputs, x = _inputs_and_augmentation(augment, seed)
    for stage, width in enumerate(widths, start=1):
        stage_input = x
        for conv in (1, 2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"s{stage}_conv{conv}")(x)
            x = FusedBatchNormalization(name=f"s{stage}_bn{conv}")(x)
            if residual and conv == 2:
                shortcut = keras.layers.Conv2D(width, 1, use_bias=False, name=f"s{stage}_proj")(stage_input)
                shortcut = FusedBatchNormalization(name=f"s{stage}_proj_bn")(shortcut)
                x = keras.layers.Add(name=f"s{stage}_add")([x, shortcut])
            x = keras.layers.Activation("relu", name=f"s{stage}_relu{conv}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"s{stage}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x) if head == "average" else keras.layers.Flatten(name="flatten")(x)
    if feature_dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name="dropout1")(x)
    for i in range(1, int(dense_layers) + 1):
        x = keras.layers.Dense(dense_units, activation="relu", name=f"dense{i}")(x)
        x = keras.layers.Dropout(dropout, seed=seed, name=f"dropout{i + 1}")(x)
    return keras.Model(inputs, _softmax_head(x, augment, num_classes), name="fer_cnn")


def build_efficientnet_lite(
    backbone: str = "lite0",
    image_size: int = 96,
    pretrained: bool = True,
    frozen_blocks: int = 0,
    dropout: float = 0.2,
    augment: AugmentConfig | None = None,
    seed: int | None = None,
    num_classes: int = NUM_CLASSES,
) -> keras.Model:
    """EfficientNet-Lite0/1/2 from ImageNet weights (fer_lib.models.pretrained), fine-tuned on faces.

    The 48x48 grayscale face (or its crop) is upscaled to `image_size` pixels and fed as three
    equal channels; compute grows with the square of `image_size`. `frozen_blocks` keeps the
    stem and the first N of the backbone's 16 blocks at their ImageNet weights (no gradients
    there: faster steps, features kept). `pretrained` False starts from random weights.
    """
    from fer_lib.models import efficientnet_lite
    from fer_lib.models.pretrained import backbone_name, load_imagenet_weights, weights_path

    short = backbone_name(backbone)
    blocks = len(efficientnet_lite.block_args(efficientnet_lite.VARIANTS[short]))
    if not 32 <= int(image_size) <= 512:
        raise ValueError(f"image_size must be 32-512 pixels, got {image_size}")
    if not 0 <= int(frozen_blocks) <= blocks:
        raise ValueError(f"frozen_blocks must be 0-{blocks} for {short}, got {frozen_blocks}")
    checkpoint = weights_path(short) if pretrained else None  # before building: a missing extra fails fast
    augment = augment or AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.1)
    inputs, x = _inputs_and_augmentation(augment, seed)
    x = Resizing(int(image_size), int(image_size), name="upscale")(x)
    x = keras.layers.Concatenate(name="to_rgb")([x, x, x])
    x = keras.layers.Rescaling(255.0, name="to_255")(x)
    x = efficientnet_lite.preprocess(x)
    features, torch_names = efficientnet_lite.backbone(x, short, seed=seed)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(features)
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    model = keras.Model(inputs, _softmax_head(x, augment, num_classes), name=f"efficientnet_{short}")
    if checkpoint is not None:
        load_imagenet_weights(model, torch_names, checkpoint, skip_unused=("_fc.",))
    frozen = ("stem_",) + tuple(f"block{i}_" for i in range(int(frozen_blocks)))
    for layer in model.layers:
        if int(frozen_blocks) > 0 and layer.name.startswith(frozen):
            layer.trainable = False
    return model
