"""The search spaces of `tuning`: their hyperparameters, the TrainConfig of a point, and the hypermodels.

- "strong" (the default): the `fer_cnn` family of the project's best recipes (widths, crop, head,
  dropout, learning rate, weight decay, label smoothing, erasing; AdamW and a cosine schedule), or
  instead one of the named presets the family does not hold; its first trial is the best known
  recipe, `fer_cnn_crop_vgg`. "strong_gpu" adds the presets only a GPU trains in useful time.
- "cnn": the plain-CNN family around the original seed_cnn (one point of it, and its first trial).
- "demo" (the smoke profile's): small plain CNNs with batch norm, which learn the generated demo faces
  within a trial's few epochs, so the demo's trials differ; the seed CNN, without batch norm, sits at
  chance for its first 3-5 epochs there and then leaves it at a moment that the CPU's arithmetic decides.
- "presets": the named presets of `fer_lib.training.presets` and a scale of their learning rate.
"""

from __future__ import annotations

import math

from fer_lib.backend import keras  # before keras_tuner, which would start TensorFlow with its start-up chatter

# isort: split
import keras_tuner as kt
import numpy as np

from fer_lib.errors import FerError
from fer_lib.labels import NUM_CLASSES
from fer_lib.models.architectures import build_cnn
from fer_lib.models.augmentation import AugmentConfig
from fer_lib.models.registry import build_model
from fer_lib.training.config import OPTIMIZERS, TrainConfig
from fer_lib.training.presets import get_preset, preset_config, preset_names
from fer_lib.training.recipe import compile_for_training
from fer_lib.training.targets import targets_and_weights

SEARCH_SPACES = ("strong", "strong_gpu", "cnn", "presets", "demo")
# What a trial of each space is, in a sentence for notebook 02 (docs/pipeline.md has the full table).
SPACE_DESCRIPTIONS = {
    "strong": "the `fer_cnn` family of the project's best recipes (widths, whole face or crops, head, dropout, learning "
              "rate, weight decay, label smoothing, random erasing; AdamW, a cosine schedule) or a named preset the family "
              "does not hold; the first trial is the best known recipe, `fer_cnn_crop_vgg`",
    "strong_gpu": "the `strong` space plus the presets only a GPU trains in useful time; the first trial is "
                  "`fer_cnn_crop_vgg`",
    "cnn": "the original plain-CNN family (conv blocks and filters, dense widths, dropout, batch norm, learning rate, "
           "optimizer); the first trial is the original README's network",
    "presets": "any named preset and a scale (0.5, 1, 2) of its learning rate; the first trial is `seed_cnn`",
    "demo": "small plain CNNs with batch norm and Adam at 3e-4 (2-3 conv blocks of 16-128 filters, 1-2 dense layers, "
            "dropout 0 or 0.2), which learn the generated demo faces within a trial's few epochs; the first trial is "
            "the widest of them",
}
DEFAULT_SEARCH_SPACE = "strong"
LEARNING_RATE_SCALES = [0.5, 1.0, 2.0]
FILTER_CHOICES = [32, 64, 75, 96, 125, 128, 192, 256]
UNIT_CHOICES = [32, 64, 128, 256, 260, 512]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3]
MAX_CONV_BLOCKS, MAX_DENSE_LAYERS = 4, 4
# The original README's network as search-space values; also every hyperparameter's default.
SEED_CNN_POINT = {
    "conv_blocks": 3, "filters_1": 75, "filters_2": 125, "filters_3": 256, "filters_4": 256,
    "dense_layers": 4, "units_1": 260, "units_2": 128, "units_3": 64, "units_4": 32,
    "dropout": 0.0, "batch_norm": False, "optimizer": "adam", "learning_rate": 1e-3,
}
# The "demo" space: the same hyperparameters (so a point trains as a "cnn" one), narrowed to small networks,
# each a quarter or less of the seed CNN's cost per face, that learn the demo faces in a trial's 3 epochs on
# any CPU. Fixed: batch norm with momentum 0.9 (its statistics follow the batches within a trial's ~150
# steps; at Keras' 0.99 validation sat at chance while training learnt), Adam at 3e-4 and dropout at most
# 0.2: at 1e-3, or with dropout 0.4, Adam's first steps on the flattened 4,608-9,216 features killed the
# dense ReLUs of most of these networks (the loss jumps to 2.5-4.8, then stays at ln 7, chance), as they
# hold the seed CNN at chance on these faces until its learning rate is halved. The defaults (the first
# trial) are its widest network.
DEMO_CHOICES = {
    "conv_blocks": [2, 3], "filters_1": [16, 32], "filters_2": [32, 64], "filters_3": [64, 128],
    "dense_layers": [1, 2], "units_1": [64, 128], "units_2": [32, 64], "dropout": [0.0, 0.2],
}
DEMO_FIXED = {"batch_norm": True, "batch_norm_momentum": 0.9, "optimizer": "adam", "learning_rate": 3e-4}
DEMO_POINT = {"conv_blocks": 3, "filters_1": 32, "filters_2": 64, "filters_3": 128, "dense_layers": 1, "units_1": 128,
              "units_2": 64, "dropout": 0.2, **DEMO_FIXED}


# The "strong" space. Its top-level `recipe` is FAMILY, whose hyperparameters below are active only
# then (KerasTuner conditional scopes), or PRESET, whose one hyperparameter `preset` names a recipe of
# fer_lib.training.presets that the family does not hold. Two top-level choices, not one per preset, so that
# random search gives the family half of its trials.
FAMILY, PRESET = "fer_cnn", "preset"
FAMILY_CHOICES = {
    "widths": ["32-64-128-256", "48-96-192-384", "64-128-256-512"],  # the dense layer is as wide as the last stage
    "crop": [0, 40, 44],  # 0: the whole 48x48 face; else random crops in training, the centre at inference
    "head": ["average", "flatten"],
    "dropout": [0.2, 0.3, 0.4, 0.5],
    "learning_rate": [1e-3, 2e-3, 4e-3],
    "weight_decay": [1e-4, 0.01, 0.05, 0.1],  # AdamW's, decoupled, on kernels only
    "label_smoothing": [0.0, 0.1, 0.2],
    "erasing": [0.0, 0.25, 0.5],
}
# The best known recipe, fer_cnn_crop_vgg (64.39% top-1, 67.07% with ten-crop: docs/experiments.md), as
# family values; also every family hyperparameter's default, so a fresh search's first trial.
BEST_KNOWN_POINT = {"recipe": FAMILY, "widths": "64-128-256-512", "crop": 40, "head": "average", "dropout": 0.4,
                    "learning_rate": 2e-3, "weight_decay": 0.05, "label_smoothing": 0.1, "erasing": 0.5}
BEST_KNOWN_PRESET = "fer_cnn_crop_vgg"
# Presets that are points of the family (tests/training/test_tuning.py checks that each converts to its preset's config);
# the strong space reaches them through the family, so its `preset` choice leaves them out.
FAMILY_PRESETS = {
    "fer_cnn_long": {**BEST_KNOWN_POINT, "widths": "32-64-128-256", "crop": 0},
    "fer_cnn_crop": {**BEST_KNOWN_POINT, "widths": "32-64-128-256"},
    "fer_cnn_crop_flat": {**BEST_KNOWN_POINT, "widths": "32-64-128-256", "head": "flatten"},
    "fer_cnn_crop_wide": {**BEST_KNOWN_POINT, "widths": "48-96-192-384"},
    BEST_KNOWN_PRESET: BEST_KNOWN_POINT,
}
# Presets that two CPU cores cannot train in useful time (ten crops of every face per step, 300 epochs, or
# EfficientNet-Lite2 at 160 px with every layer trained): only "strong_gpu" offers them.
GPU_PRESETS = ("fer_vgg", "fer_vgg_gap", "transfer_lite2_gpu")


def strong_presets(search_space: str = "strong") -> list[str]:
    """The presets the strong space offers beside the family: those it does not hold, less the GPU ones on
    "strong"; transfer presets only where their ImageNet weights are installed (the transfer extra)."""
    names = [n for n in preset_names() if n not in FAMILY_PRESETS and (search_space == "strong_gpu" or n not in GPU_PRESETS)]
    return [n for n in names if _installed(n)]


def _installed(preset: str) -> bool:
    settings = get_preset(preset).settings
    if settings.get("model") != "efficientnet_lite":
        return True
    from fer_lib.models.pretrained import weights_path

    try:
        weights_path(settings.get("model_options", {}).get("backbone", "lite0"))
    except FerError:
        return False
    return True


def _family_widths(values: dict) -> list[int]:
    return [int(w) for w in str(values["widths"]).split("-")]


def family_config(values: dict, **overrides) -> TrainConfig:
    """The TrainConfig of a point of the `fer_cnn` family, built as the presets are: AdamW, a cosine schedule
    over all its epochs (80 for the narrowest network on crops, 60 otherwise, as fer_cnn_crop and the wider
    crop presets), shifts, rotations, zoom 15% and flips, batch 64. `overrides` apply on top (None: kept)."""
    widths, crop = _family_widths(values), int(values["crop"])
    epochs = 80 if widths[0] == 32 and crop else 60
    settings = dict(
        model="fer_cnn", epochs=epochs, batch_size=64, optimizer="adamw", learning_rate=float(values["learning_rate"]),
        weight_decay=float(values["weight_decay"]), lr_schedule="cosine", label_smoothing=float(values["label_smoothing"]),
        early_stopping_patience=epochs,  # the schedule ends the run, not val_loss
        model_options={"widths": widths, "dense_units": widths[-1], "head": str(values["head"]), "dropout": float(values["dropout"])},
        augment=AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15, erasing=float(values["erasing"]), crop=crop))
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in overrides and "early_stopping_patience" not in overrides:
        overrides["early_stopping_patience"] = max(overrides["epochs"], epochs)
    config = TrainConfig(**{**settings, **overrides})
    config.validate()
    return config


def model_options_from(values: dict) -> dict:
    """`build_cnn` keyword arguments for a point of the search space."""
    options = {
        "conv_filters": [int(values[f"filters_{i}"]) for i in range(1, int(values["conv_blocks"]) + 1)],
        "dense_units": [int(values[f"units_{i}"]) for i in range(1, int(values["dense_layers"]) + 1)],
        "dropout": float(values["dropout"]),
        "batch_norm": bool(values["batch_norm"]),
    }
    if values.get("batch_norm_momentum") is not None and options["batch_norm"]:  # the demo space's; else Keras' 0.99
        options["batch_norm_momentum"] = float(values["batch_norm_momentum"])
    return options


def train_config_from(values: dict, **overrides) -> TrainConfig:
    """The TrainConfig that trains the model a tuner trial described (any search space); `overrides`
    (None: the recipe's own) apply on top."""
    values = _set_values(values)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if values.get("recipe") == FAMILY:
        return family_config(values, **overrides)
    if values.get("recipe") == PRESET:
        return preset_config(values["preset"], **overrides)
    if "preset" in values:
        base = get_preset(values["preset"]).settings["learning_rate"]
        return preset_config(values["preset"], learning_rate=base * float(values["learning_rate_scale"]), **overrides)
    return TrainConfig(
        model="cnn",
        model_options=model_options_from(values),
        optimizer=values["optimizer"],
        learning_rate=float(values["learning_rate"]),
        **overrides,
    )


def final_train_config(values: dict | None = None, preset: str = "", *, epochs: int | None = None,
                       epochs_scale: float = 1.0, **overrides) -> TrainConfig:
    """What notebook 03 trains: `preset` when named, else the search's best point `values`, at the
    pipeline's budget. `epochs` None keeps the recipe's own epochs, times `epochs_scale` (the gpu
    profile's long recipe); `time_budget` (seconds) then fits the epochs and the cosine schedule to the time."""
    def config(**more):
        return preset_config(preset, **overrides, **more) if preset else train_config_from(values, **overrides, **more)

    if epochs is None and epochs_scale != 1:
        epochs = max(1, round(config().epochs * epochs_scale))
    return config(epochs=epochs)


def _set_values(values: dict) -> dict:
    """`values` without the unset ones (NaN in a trials table's row, None from an inactive hyperparameter)."""
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


class CnnHyperModel(kt.HyperModel):
    """Conv blocks, filters, dense widths, dropout, batch norm, learning rate and optimizer."""

    def __init__(self, seed: int = 1234, num_classes: int = NUM_CLASSES):
        super().__init__(name="cnn")
        self.seed, self.num_classes = seed, num_classes

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        values = self._values(hp)
        model = build_cnn(**model_options_from(values), seed=self.seed, num_classes=self.num_classes)
        return compile_for_training(model, train_config_from(values))

    def _values(self, hp: kt.HyperParameters) -> dict:
        s = SEED_CNN_POINT
        values = {"conv_blocks": hp.Int("conv_blocks", 2, MAX_CONV_BLOCKS, default=s["conv_blocks"])}
        for i in range(1, MAX_CONV_BLOCKS + 1):
            values[f"filters_{i}"] = hp.Choice(f"filters_{i}", FILTER_CHOICES, default=s[f"filters_{i}"])
        values["dense_layers"] = hp.Int("dense_layers", 1, MAX_DENSE_LAYERS, default=s["dense_layers"])
        for i in range(1, MAX_DENSE_LAYERS + 1):
            values[f"units_{i}"] = hp.Choice(f"units_{i}", UNIT_CHOICES, default=s[f"units_{i}"])
        values["dropout"] = hp.Choice("dropout", [0.0, 0.2, 0.3, 0.5], default=s["dropout"])
        values["batch_norm"] = hp.Boolean("batch_norm", default=s["batch_norm"])
        values["optimizer"] = hp.Choice("optimizer", list(OPTIMIZERS), default=s["optimizer"])
        values["learning_rate"] = hp.Choice("learning_rate", LEARNING_RATES, default=s["learning_rate"])
        return values


class DemoHyperModel(CnnHyperModel):
    """The smoke profile's space: small plain CNNs (DEMO_CHOICES) with batch norm, Adam and a learning rate
    (DEMO_FIXED) at which every one learns the demo faces in 3 epochs; the first trial is DEMO_POINT."""

    def __init__(self, seed: int = 1234, num_classes: int = NUM_CLASSES):
        super().__init__(seed, num_classes)
        self.name = "demo"

    def _values(self, hp: kt.HyperParameters) -> dict:
        d, values = DEMO_POINT, {}
        for name, choices in DEMO_CHOICES.items():
            if name in ("conv_blocks", "dense_layers"):
                values[name] = hp.Int(name, min(choices), max(choices), default=d[name])
            else:
                values[name] = hp.Choice(name, choices, default=d[name])
        values.update({name: hp.Fixed(name, value) for name, value in DEMO_FIXED.items()})
        return values


class RecipeHyperModel(kt.HyperModel):
    """A trial is a TrainConfig (`_config`), built and fitted as its final training would be."""

    anneal = False  # cosine recipes anneal over the trial's epochs, as their final training does over its own

    def __init__(self, name: str, seed: int = 1234, num_classes: int = NUM_CLASSES):
        super().__init__(name=name)
        self.seed, self.num_classes = seed, num_classes

    def _config(self, hp: kt.HyperParameters) -> TrainConfig:
        raise NotImplementedError

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        config = self._config(hp)
        model = build_model(config.model, augment=config.augment, seed=self.seed, num_classes=self.num_classes,
                            **config.model_options)
        return compile_for_training(model, config)

    def fit(self, hp: kt.HyperParameters, model: keras.Model, x, y, **kwargs):
        """Train a trial; recipes with class weights get them, and ten-crop recipes their repeated targets,
        as in their final training."""
        config = self._config(hp)
        y, weights = targets_and_weights(config, y, np.argmax(y, axis=1))
        if weights is not None:
            kwargs["sample_weight"] = weights
        if self.anneal and config.lr_schedule == "cosine" and kwargs.get("epochs"):
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), trial_cosine(config.learning_rate, int(kwargs["epochs"]))]
        return model.fit(x, y, **kwargs)


def trial_cosine(learning_rate: float, epochs: int) -> keras.callbacks.LearningRateScheduler:
    """The final training's cosine schedule, over a trial's epochs: a short trial is then scored annealed."""
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: float(learning_rate * 0.5 * (1 + np.cos(np.pi * min(epoch / epochs, 1.0)))))


class PresetHyperModel(RecipeHyperModel):
    """A named preset (model, optimizer, augmentation, loss) and a scale of its learning rate.

    Trials train at a constant learning rate; the preset's schedule applies to the final
    training that notebook 03 runs from the best trial. The first choice, seed_cnn, is the default.
    """

    def __init__(self, seed: int = 1234, presets: list[str] | None = None, num_classes: int = NUM_CLASSES):
        super().__init__("presets", seed, num_classes)
        self.presets = list(presets or preset_names())

    def _config(self, hp: kt.HyperParameters) -> TrainConfig:
        return train_config_from({"preset": hp.Choice("preset", self.presets, default=self.presets[0]),
                                  "learning_rate_scale": hp.Choice("learning_rate_scale", LEARNING_RATE_SCALES, default=1.0)})


class StrongHyperModel(RecipeHyperModel):
    """The `fer_cnn` family around the best known recipe, or one of the presets it does not hold.

    Every family hyperparameter's default is the best known recipe (BEST_KNOWN_POINT), which is
    therefore a fresh search's first trial. Trials of cosine recipes anneal over their epochs.
    """

    anneal = True

    def __init__(self, seed: int = 1234, presets: list[str] | None = None, name: str = "strong",
                 num_classes: int = NUM_CLASSES):
        super().__init__(name, seed, num_classes)
        self.presets = list(strong_presets() if presets is None else presets)

    def _config(self, hp: kt.HyperParameters) -> TrainConfig:
        recipes = [FAMILY, PRESET] if self.presets else [FAMILY]
        values = {"recipe": hp.Choice("recipe", recipes, default=FAMILY)}
        with hp.conditional_scope("recipe", [FAMILY]):
            for name, choices in FAMILY_CHOICES.items():
                values[name] = hp.Choice(name, choices, default=BEST_KNOWN_POINT[name])
        if self.presets:
            with hp.conditional_scope("recipe", [PRESET]):
                values["preset"] = hp.Choice("preset", self.presets, default=self.presets[0])
        return train_config_from(values)
