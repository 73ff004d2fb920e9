"""Named training recipes: a model plus optimizer, schedule, augmentation and loss settings.

`fer train --preset NAME`, notebook 03's `preset` parameter and the KerasTuner "presets"
search space all read this table. A preset fixes the recipe; the caller may still override
any TrainConfig field (budget, batch size, output folder, ...).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from fer_lib.errors import FerError
from fer_lib.models.augmentation import AugmentConfig
from fer_lib.training.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict = field(default_factory=dict)  # TrainConfig fields


_FER_CNN = dict(model="fer_cnn", epochs=40, batch_size=64, optimizer="adamw", learning_rate=2e-3, weight_decay=1e-4,
                lr_schedule="cosine", label_smoothing=0.1, early_stopping_patience=12,
                augment=AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.1))

_CROP = {**_FER_CNN, "epochs": 80, "weight_decay": 0.05, "early_stopping_patience": 80,
         "augment": AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15, erasing=0.5, crop=40)}

_CROP_WIDE = {**_CROP, "epochs": 60, "early_stopping_patience": 60,
              "model_options": {"widths": [48, 96, 192, 384], "dense_units": 384}}

_FER_VGG = dict(
    model="fer_cnn", epochs=300, batch_size=64, optimizer="sgd", learning_rate=0.01, weight_decay=1e-4,
    lr_schedule="plateau", lr_monitor="val_accuracy", lr_factor=0.75, lr_patience=5, early_stopping_patience=300,
    model_options={"widths": [64, 128, 256, 512], "head": "flatten", "dense_units": 4096, "dense_layers": 2,
                   "dropout": 0.2, "feature_dropout": False},
    augment=AugmentConfig(flip=True, shift=0.2, rotation_deg=10.0, scale_jitter=0.1, erasing=0.5, crop=40, crops=10))

# Fine-tuning ImageNet's EfficientNet-Lite (fer_lib.models.pretrained) on upscaled faces: AdamW at a rate a
# pretrained network tolerates, a cosine schedule, fer_cnn_long's augmentation.
_TRANSFER = dict(
    model="efficientnet_lite", epochs=25, batch_size=64, optimizer="adamw", learning_rate=1e-3, weight_decay=0.05,
    lr_schedule="cosine", label_smoothing=0.1, early_stopping_patience=25,
    model_options={"backbone": "lite0", "image_size": 112, "frozen_blocks": 6},
    augment=AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15, erasing=0.5))

# Where fer_vgg departs from usef-kh/fer's training, and why.
FER_VGG_DEVIATIONS = (
    "Their random resized crop (RandomResizedCrop(48, scale=(0.8, 1.2)): area 0.8-1.0 once the image bounds it, "
    "aspect 3/4-4/3) is scale_jitter 0.1: a zoom in by 0-10% of the height and, drawn apart, of the width (area "
    "0.81-1.0, aspect about 0.9-1.1); their shift (up to 20%) and rotation (10 degrees) apply with probability "
    "0.5, ours to every face (Keras has no RandomApply).",
    "Erasing fills with Gaussian noise (Keras' RandomErasing) where torchvision's fills with zeros.",
    "Keras' SGD weight decay is decoupled (w -= lr * decay * w) where PyTorch's adds decay * w to the gradient "
    "before the momentum: the same for plain SGD, slightly different with Nesterov momentum.",
    "Validation is a seeded 10% of Training, not PrivateTest (which we do not have), and early stopping is off "
    "(patience 300), as in their 300-epoch run.",
    "Mixed bfloat16 on GPUs and bf16 CPUs (they used float16 autocast); ten-crop TTA averages probabilities, "
    "theirs logits.",
    "Their final cosine fine-tune on train plus validation is a second run: fer train --init-from the model "
    "--val-fraction 0 --lr-schedule cosine --learning-rate 1e-3 --epochs 30 (73.06% -> 73.28% for them).",
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "seed_cnn",
            "The original README's CNN and recipe (Adam 1e-3, reduce-on-plateau, flips): the baseline.",
            dict(model="seed_cnn", epochs=60, optimizer="adam", learning_rate=1e-3, lr_schedule="plateau",
                 early_stopping_patience=5, augment=AugmentConfig(flip=True)),
        ),
        Preset(
            "fer_cnn",
            "Compact VGG-style CNN (32-64-128-256, batch norm, global pooling); AdamW, cosine, label smoothing, "
            "flips, shifts, rotations and zoom; 40 epochs.",
            _FER_CNN,
        ),
        Preset(
            "fer_cnn_balanced",
            "fer_cnn with class-balanced loss weights, for macro-F1 (disgust and fear).",
            {**_FER_CNN, "class_weights": True},
        ),
        Preset(
            "fer_cnn_long",
            "fer_cnn for 60 epochs with more regularisation: weight decay 0.05 on kernels, random erasing, zoom 15%; "
            "the packaged model's recipe (with --teacher, then fer rebalance and fer calibrate).",
            {**_FER_CNN, "epochs": 60, "weight_decay": 0.05, "early_stopping_patience": 60,
             "augment": AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15, erasing=0.5)},
        ),
        Preset(
            "fer_cnn_crop",
            "fer_cnn_long on 40x40 crops for 80 epochs: random crops in training, the central crop at inference, "
            "its own five crops and their mirrors with ten-crop TTA.",
            _CROP,
        ),
        Preset(
            "fer_cnn_crop_wide",
            "fer_cnn_crop with 1.5x the channels (48-96-192-384, dense 384) for 60 epochs.",
            _CROP_WIDE,
        ),
        Preset(
            "fer_cnn_crop_vgg",
            "fer_cnn_crop at fer_vgg's widths (64-128-256-512, dense 512) for 60 epochs: the 2-hour CPU recipe "
            "without a teacher.",
            {**_CROP_WIDE, "model_options": {"widths": [64, 128, 256, 512], "dense_units": 512}},
        ),
        Preset(
            "fer_cnn_crop_flat",
            "fer_cnn_crop with a flatten head: the dense layer sees where on the face each feature of the last "
            "2x2 map is, which global pooling discards.",
            {**_CROP, "model_options": {"head": "flatten"}},
        ),
        Preset(
            "fer_cnn_crop_res",
            "fer_cnn_crop_wide with a residual shortcut (1x1 projection + batch norm) around each stage's two convs.",
            {**_CROP_WIDE, "model_options": {**_CROP_WIDE["model_options"], "residual": True}},
        ),
        Preset(
            "fer_vgg",
            "Khaireddin & Chen's VGGNet recipe as they ran it (usef-kh/fer): 64-128-256-512 convs, dense 4096 x 2, "
            "ten erased 40x40 crops of each face per step, SGD Nesterov, plateau schedule, 300 epochs; a GPU recipe "
            "(deviations: FER_VGG_DEVIATIONS).",
            _FER_VGG,
        ),
        Preset(
            "fer_vgg_gap",
            "fer_vgg with fer_cnn_crop_vgg's global-average head (dense 512, 4.96 M parameters, a 20 MB file) in place "
            "of the 4096 x 2 head (a 120 MB file).",
            {**_FER_VGG, "model_options": {"widths": [64, 128, 256, 512], "dense_units": 512, "dropout": 0.2}},
        ),
        Preset(
            "transfer_lite0",
            "EfficientNet-Lite0 from ImageNet weights (the transfer extra), faces upscaled to 112 px, the stem and "
            "first 6 of 16 blocks frozen; AdamW 1e-3, cosine, 25 epochs: the CPU transfer recipe.",
            _TRANSFER,
        ),
        Preset(
            "transfer_lite2_gpu",
            "EfficientNet-Lite2 from ImageNet weights at 160 px, every layer fine-tuned, batch 128, 40 epochs: "
            "the GPU transfer recipe.",
            {**_TRANSFER, "epochs": 40, "batch_size": 128, "early_stopping_patience": 40,
             "model_options": {"backbone": "lite2", "image_size": 160, "frozen_blocks": 0}},
        ),
    )
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise FerError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str, **overrides) -> TrainConfig:
    """The TrainConfig of preset `name`, with `overrides` (e.g. data, out, epochs) applied on top.

    A preset whose early-stopping patience spans all its epochs (the cosine ones, which their
    schedule ends, not val_loss) keeps spanning them when `epochs` is raised.
    """
    settings = copy.deepcopy(get_preset(name).settings)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    runs_every_epoch = settings.get("early_stopping_patience", 0) >= settings.get("epochs", 1)
    if runs_every_epoch and "epochs" in overrides and "early_stopping_patience" not in overrides:
        overrides["early_stopping_patience"] = max(overrides["epochs"], settings["early_stopping_patience"])
    settings.update(overrides)
    config = TrainConfig(**settings)
    config.validate()
    return config
