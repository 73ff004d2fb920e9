"""The model registry: every architecture by the name configs, presets and `fer train --model` use."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from fer_lib.backend import keras
from fer_lib.labels import NUM_CLASSES
from fer_lib.models.architectures import build_cnn, build_efficientnet_lite, build_fer_cnn, build_seed_cnn
from fer_lib.models.augmentation import AugmentConfig

MODEL_BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "cnn": build_cnn,
    "seed_cnn": build_seed_cnn,
    "fer_cnn": build_fer_cnn,
    "efficientnet_lite": build_efficientnet_lite,
}


def register_model(name: str):
    """Decorator adding a builder to the registry under `name`."""

    def add(builder):
        MODEL_BUILDERS[name] = builder
        return builder

    return add


def model_names() -> list[str]:
    return sorted(MODEL_BUILDERS)


def build_model(name: str, augment: AugmentConfig | None = None, seed: int | None = None,
                num_classes: int = NUM_CLASSES, **options) -> keras.Model:
    """Build the registered model `name` with `num_classes` outputs; `augment` overrides its default augmentation."""
    if name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    builder = MODEL_BUILDERS[name]
    parameters = inspect.signature(builder).parameters
    if "num_classes" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        options["num_classes"] = num_classes
    elif num_classes != NUM_CLASSES:  # a builder registered before FER+ builds FER2013's seven classes only
        raise ValueError(f"model {name!r} builds {NUM_CLASSES} classes only; its builder takes no num_classes")
    return builder(augment=augment, seed=seed, **options)
