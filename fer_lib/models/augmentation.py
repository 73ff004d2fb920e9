"""Data augmentation as Keras layers inside the model: active in training, identity at inference
(except the crop, which the model takes at inference too).

Living in the model keeps augmentation off Python per-image loops, runs it on whatever
backend trains (TensorFlow here, JAX on a GPU) and saves it with the model. MixUp and
CutMix blend labels as well as pixels, so they cannot live in the model: `mixing_layer`
gives the Keras layer that the training input pipeline applies to whole batches.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Which random transforms to apply to training batches; zeros switch one off."""

    flip: bool = True
    shift: float = 0.0  # fraction of height/width
    rotation_deg: float = 0.0
    zoom: float = 0.0  # fraction, e.g. 0.1 for +-10%
    scale_jitter: float = 0.0  # zoom in by up to this fraction of the height and, drawn apart, the width (a random resized crop)
    contrast: float = 0.0
    erasing: float = 0.0  # probability that a face (its crop, with `crop`) gets one random erased rectangle
    crop: int = 0  # the model sees the central crop x crop pixels (after the shifts, so random crops in training)
    crops: int = 1  # 10: in training each face gives its four corner crops, centre crop and their mirrors, labels repeated
    affine: bool = False  # rotation, zoom, scale jitter and shift drawn as above but resampled once (RandomAffine)
    # True: every layer seeded alike, as all runs before 2026-12-05 were. Layers with one seed draw
    # the same random numbers, so each face's rotation fixed its zoom and mostly its flip. A saved
    # config without this key is such a run, and resumes as it started (`from_dict`).
    shared_seed: bool = False

    @property
    def training_crops(self) -> int:
        """How many outputs, and targets, the model has per training face: `crops` when it crops, else 1."""
        return self.crops if self.crop else 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, values: dict) -> AugmentConfig:
        """The config `to_dict` saved; one saved before `shared_seed` existed ran with shared seeds."""
        return cls(**{"shared_seed": True, **values})


def augmentation_layers(config: AugmentConfig, seed: int | None = None) -> list:
    """The Keras preprocessing layers for `config`, in application order."""
    import keras  # here, so that the config (and the CLI's choices) load without a backend

    # fer_lib's versions of Keras' layers, which act only when the model is called with training=True
    # (in fit), not on a direct call model(x) (fer_lib.models.layers.InferenceByDefault).
    from fer_lib.models.layers import RandomContrast, RandomErasing, RandomFlip, RandomRotation, RandomTranslation, RandomZoom
    layers: list[keras.layers.Layer] = []
    offsets = itertools.count()

    def layer_seed():  # each layer its own stream, unless the config keeps the old shared one
        offset = next(offsets)
        if seed is None or config.shared_seed:
            return seed
        # Hashed, not seed + offset: then seed 2's second layer would draw what seed 3's first draws.
        return int(np.random.SeedSequence([seed, offset, 17]).generate_state(1)[0] >> 1)
    if config.flip:
        layers.append(RandomFlip("horizontal", seed=layer_seed(), name="aug_flip"))
    geometric = (config.rotation_deg, config.zoom, config.scale_jitter, config.shift)
    if config.affine and any(geometric):
        from fer_lib.models.layers import RandomAffine
        layers.append(RandomAffine(*geometric, seed=layer_seed(), name="aug_affine"))
        geometric = ()
    if geometric and config.rotation_deg > 0:
        layers.append(
            RandomRotation(config.rotation_deg / 360.0, fill_mode="reflect", seed=layer_seed(), name="aug_rotation")
        )
    if geometric and config.zoom > 0:
        layers.append(RandomZoom(config.zoom, fill_mode="reflect", seed=layer_seed(), name="aug_zoom"))
    if geometric and config.scale_jitter > 0:
        # Negative factors zoom in: the face fills the frame from (1 - s) of its height and width,
        # each drawn on its own, so the aspect ratio varies too, like torchvision's RandomResizedCrop.
        jitter = (-config.scale_jitter, 0.0)
        layers.append(RandomZoom(jitter, jitter, fill_mode="reflect", seed=layer_seed(), name="aug_scale"))
    if geometric and config.shift > 0:
        layers.append(
            RandomTranslation(config.shift, config.shift, fill_mode="reflect", seed=layer_seed(), name="aug_shift")
        )
    if config.contrast > 0:
        layers.append(RandomContrast(config.contrast, value_range=(0, 1), seed=layer_seed(), name="aug_contrast"))
    if config.crop > 0:
        from fer_lib.models.layers import TrainingCrop
        layers.append(TrainingCrop(config.crop, crops=config.crops, name="aug_crop"))
    if config.erasing > 0:
        # After the crop, so the rectangle always lands on pixels the model sees (as Khaireddin &
        # Chen erase each crop). A (p, p) factor: a single float p makes Keras draw each face's
        # probability from (0, p), which erased about p/2 of the faces.
        layers.append(RandomErasing(factor=(config.erasing, config.erasing), value_range=(0, 1),
                                    seed=layer_seed(), name="aug_erasing"))
    if keras.backend.backend() == "jax":
        # Keras marks rotation, zoom and translation as not XLA-compilable (TensorFlow's XLA lacks
        # their transform op), which makes the whole training step run op by op. On JAX they are
        # plain jax.numpy, and op by op a step took 0.8 s on a GPU.
        for layer in layers:
            layer.supports_jit = True
    return layers


MIXINGS = ("none", "mixup", "cutmix")


def mixing_layer(kind: str, strength: float | None = None, seed: int | None = None):
    """Keras' MixUp (`strength` = Beta alpha, default 0.2) or CutMix (`strength` = factor, default 1.0) layer."""
    import keras
    # float32 whatever the global policy: the blended pixels and labels feed the model as data.
    if kind == "mixup":
        return keras.layers.MixUp(alpha=0.2 if strength is None else strength, seed=seed, dtype="float32")
    if kind == "cutmix":
        return keras.layers.CutMix(factor=1.0 if strength is None else strength, seed=seed, dtype="float32")
    raise ValueError(f"unknown mixing {kind!r}; choose one of {', '.join(MIXINGS)}")
