"""KerasTuner searches, over one of four spaces:

- "strong" (the default): the `fer_cnn` family of the project's best recipes (widths, crop, head,
  dropout, learning rate, weight decay, label smoothing, erasing; AdamW and a cosine schedule), or
  instead one of the named presets the family does not hold; its first trial is the best known
  recipe, `fer_cnn_crop_vgg`. "strong_gpu" adds the presets only a GPU trains in useful time.
- "cnn": the plain-CNN family around the original seed_cnn (one point of it, and its first trial).
- "presets": the named presets of `fer_lib.training.presets` and a scale of their learning rate.

The best trial is written as `best_hyperparameters.json`, which training turns back into a
TrainConfig, so the final model is rebuilt from a file, not from tuner state.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from pathlib import Path

from fer_lib.backend import keras  # before keras_tuner, which would start TensorFlow with its start-up chatter

# isort: split
import keras_tuner as kt
import numpy as np

from fer_lib.artifacts import write_json_atomic, write_text_atomic
from fer_lib.data.dataset import FerDataset, stratified_holdout
from fer_lib.data.preprocessing import as_model_input
from fer_lib.errors import FerError
from fer_lib.labels import NUM_CLASSES
from fer_lib.models.architectures import build_cnn
from fer_lib.models.augmentation import AugmentConfig
from fer_lib.models.registry import MODEL_BUILDERS, build_model
from fer_lib.training.config import OPTIMIZERS, TrainConfig
from fer_lib.training.presets import get_preset, preset_config, preset_names
from fer_lib.training.recipe import compile_for_training
from fer_lib.training.targets import targets_and_weights, training_targets, vote_targets

TUNERS = ("hyperband", "bayesian", "random")
SEARCH_SPACES = ("strong", "strong_gpu", "cnn", "presets")
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
    return {
        "conv_filters": [int(values[f"filters_{i}"]) for i in range(1, int(values["conv_blocks"]) + 1)],
        "dense_units": [int(values[f"units_{i}"]) for i in range(1, int(values["dense_layers"]) + 1)],
        "dropout": float(values["dropout"]),
        "batch_norm": bool(values["batch_norm"]),
    }


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
        model = build_cnn(**model_options_from(values), seed=self.seed, num_classes=self.num_classes)
        return compile_for_training(model, train_config_from(values))


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


def project_name(data: str | Path, profile: str, kind: str, search_space: str, *, seed: int, max_trials: int,
                 max_epochs: int, batch_size: int, max_train_images: int | None, label_mode: str | None = None) -> str:
    """The search's folder name: readable settings plus a key of everything that shapes its trials.

    A search resumes only with the same data and budgets (and, in the strong spaces, the same
    presets on offer); changing any of them starts a new one beside it instead of quietly continuing the old.
    """
    settings = {"data": str(Path(data).expanduser().resolve()), "seed": seed, "max_epochs": max_epochs,
                "batch_size": batch_size, "max_train_images": max_train_images,
                # Hyperband sizes itself from max_epochs; the trial count only bounds the others.
                "max_trials": None if kind == "hyperband" else max_trials}
    if label_mode:  # FER+: what the trials train towards (absent for FER2013, so its searches keep their folders)
        settings["label_mode"] = label_mode
    if search_space in ("strong", "strong_gpu"):
        settings["presets"] = strong_presets(search_space)
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    space = "" if search_space == "cnn" else f"-{search_space}"
    return f"{profile}-{kind}{space}-{key}"


def make_tuner(
    kind: str,
    directory: str | Path,
    project_name: str,
    *,
    max_trials: int = 10,
    max_epochs: int = 10,
    seed: int = 1234,
    overwrite: bool = False,
    search_space: str = "cnn",
    num_classes: int = NUM_CLASSES,
) -> kt.Tuner:
    """A Hyperband, BayesianOptimization or RandomSearch tuner that resumes unless `overwrite`.

    `search_space` is "strong" (the fer_cnn family around the best known recipe, or a preset it does not
    hold), "strong_gpu" (the same with the GPU presets), "cnn" (the plain-CNN family around seed_cnn)
    or "presets" (the named recipes and their learning rate).
    """
    if search_space not in SEARCH_SPACES:
        raise ValueError(f"unknown search space {search_space!r}; choose one of {', '.join(SEARCH_SPACES)}")
    n = num_classes
    hypermodel = {"cnn": lambda: CnnHyperModel(seed, n), "presets": lambda: PresetHyperModel(seed, num_classes=n),
                  "strong": lambda: StrongHyperModel(seed, strong_presets("strong"), num_classes=n),
                  "strong_gpu": lambda: StrongHyperModel(seed, strong_presets("strong_gpu"), name="strong_gpu",
                                                         num_classes=n)}[search_space]()
    common = dict(
        hypermodel=hypermodel,
        objective="val_accuracy",
        seed=seed,
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )
    budgets = {"hyperband": (kt.Hyperband, {"max_epochs": max_epochs, "factor": 3}),
               "bayesian": (kt.BayesianOptimization, {"max_trials": max_trials}),
               "random": (kt.RandomSearch, {"max_trials": max_trials})}
    if kind not in budgets:
        raise ValueError(f"unknown tuner {kind!r}; choose one of {', '.join(TUNERS)}")
    tuner_class, budget = budgets[kind]
    try:
        tuner = tuner_class(**budget, **common)
    except (ValueError, KeyError, TypeError, OSError) as exc:  # reloading a damaged or foreign search
        if overwrite:
            raise
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise FerError(f"{Path(directory) / project_name}: the saved search cannot be resumed ({type(exc).__name__}: "
                       f"{detail}); restart it with tuner_overwrite (fer pipeline --tuner-overwrite)") from None
    _try_seed_point_first(tuner.oracle)
    return tuner


def _try_seed_point_first(oracle: kt.Oracle) -> None:
    """Make a fresh search's first trial every hyperparameter's default: the best known recipe
    (fer_cnn_crop_vgg) in the strong spaces, the original seed_cnn in the others.

    The search then always measures that point, so its best trial is never worse than it on
    the same budget. KerasTuner has no option for an initial point; every oracle draws new
    points through `_random_values`, which this wraps.
    """
    base = type(oracle)

    class SeedPointFirst(base):
        def _random_values(self):
            if not self.trials:  # no trial yet: this is the search's first point
                defaults = kt.HyperParameters()
                defaults.merge(self.hyperparameters.space)  # keeps the defaults of the active ones only
                values = dict(defaults.values)
                if values and not self._duplicate(values):
                    return values
            return super()._random_values()

    SeedPointFirst.__name__ = SeedPointFirst.__qualname__ = f"SeedPointFirst{base.__name__}"
    oracle.__class__ = SeedPointFirst


def run_search(tuner: kt.Tuner, dataset: FerDataset, *, epochs: int, batch_size: int = 64,
               max_train_images: int | None = None, seed: int = 1234, verbose: int = 1,
               time_budget: float | None = None, label_mode: str = "majority", majority_rule: str = "official",
               tensorboard: bool = True, mlflow_uri: str | None = None, mlflow_parent: str | None = None) -> None:
    """Search on (a stratified subset of) train, scoring trials on validation accuracy.

    Each trial logs to TensorBoard in its folder (`trial_<id>/tensorboard`, its hyperparameters through
    the HParams plugin) unless `tensorboard` is False; with `mlflow_uri` each trial is an MLflow child run
    of the search's run (`mlflow_parent`, or one started and ended here).

    On FER+ the trials train towards `label_mode`'s targets from the votes (`probability`'s drawn
    labels by their expectation, the vote distribution) and validate on the top-vote majority.

    With `time_budget` (seconds) no trial starts once that much time has passed: the trial
    running then finishes, and the search ends with the trials it has (at least one).
    """
    train_split, label_targets = vote_targets(TrainConfig(label_mode=label_mode, majority_rule=majority_rule), dataset.train)
    if max_train_images is not None and max_train_images < len(train_split):  # as `subset` chooses
        rows = stratified_holdout(train_split.labels, max_train_images / len(train_split), seed)
        train_split, label_targets = train_split.take(rows), None if label_targets is None else label_targets[rows]
    classes = len(dataset.classes)
    restore = _stop_starting_trials_after(tuner, time_budget, verbose) if time_budget else None
    search_run = None
    if mlflow_uri and not mlflow_parent:
        from fer_lib.training.mlflow_tracking import MlflowRun

        search_run = MlflowRun(mlflow_uri, Path(tuner.project_dir).name, tags={"fer.kind": "search"})
        search_run.log_params({"tuner": type(tuner.oracle).__name__, "hypermodel": tuner.hypermodel.name, "epochs": epochs,
                               "batch_size": batch_size, "max_train_images": max_train_images, "seed": seed,
                               "label_mode": label_mode, "train_images": len(train_split)})
        mlflow_parent = search_run.run_id
    untrack = track_trials(tuner, tensorboard, mlflow_uri, mlflow_parent)
    status = "FAILED"
    try:
        tuner.search(
            as_model_input(train_split.images),
            training_targets(train_split.labels, num_classes=classes, label_targets=label_targets),
            validation_data=(as_model_input(dataset.val.images), keras.utils.to_categorical(dataset.val.labels, classes)),
            epochs=epochs,
            batch_size=batch_size,
            callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)],
            verbose=verbose,
        )
        status = "FINISHED"
    finally:
        untrack()
        if restore:
            restore()
        if search_run is not None:
            scores = [t.score for t in tuner.oracle.trials.values() if t.score is not None]
            search_run.log_metrics({"best_val_accuracy": max(scores)} if scores else {})
            search_run.end(status)


def track_trials(tuner: kt.Tuner, tensorboard: bool, mlflow_uri: str | None, parent_run_id: str | None):
    """Make each trial this process trains log to TensorBoard and MLflow (see `run_search`); returns the undo."""
    from fer_lib.training.tracking import TENSORBOARD_DIR, RunTensorBoard, can_write_tensorboard, write_hparams

    run_trial = tuner.run_trial
    tensorboard = tensorboard and can_write_tensorboard()
    if not tensorboard and not mlflow_uri:
        return lambda: None

    def tracked(trial, *args, **kwargs):
        values = dict(trial.hyperparameters.values)
        extra, run = [], None
        if tensorboard:
            log_dir = Path(tuner.get_trial_dir(trial.trial_id)) / TENSORBOARD_DIR
            write_hparams(log_dir, values, trial_id=trial.trial_id)
            extra.append(RunTensorBoard(log_dir))
        if mlflow_uri:
            from fer_lib.training.mlflow_tracking import MlflowEpochs, MlflowRun

            run = MlflowRun(mlflow_uri, f"trial {trial.trial_id}", parent_run_id=parent_run_id, tags={"fer.trial_id": trial.trial_id})
            run.log_params(values)
            extra.append(MlflowEpochs(run))
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), *extra]
        try:
            result = run_trial(trial, *args, **kwargs)
        except BaseException:
            if run is not None:
                run.end("FAILED")
            raise
        if run is not None:
            scores = [max(h.history.get("val_accuracy") or [np.nan]) for h in (result if isinstance(result, list) else [])
                      if hasattr(h, "history")]
            run.log_metrics({"best_val_accuracy": float(np.nanmax(scores))} if scores and np.isfinite(scores).any() else {})
            run.end()
        return result

    tuner.run_trial = tracked

    def undo():
        tuner.run_trial = run_trial

    return undo


SEARCH_SECONDS_FILE = "search_seconds.json"  # in a search's folder: the time its search() calls have spent


def _stop_starting_trials_after(tuner: kt.Tuner, seconds: float, verbose: int):
    """Make the oracle answer "stopped" to requests for a trial after `seconds`; returns the undo.

    The oracle stops a search whose trial count reaches its `max_trials` (Hyperband's too),
    so past the time that count is lowered to the trials it has. The time spent is saved in
    the search's folder whenever a trial is asked for, so a search resumed after its process
    was killed counts the time it had already spent (up to the last trial it started).
    """
    oracle, started, before = tuner.oracle, time.monotonic(), tuner.pre_create_trial
    limit = oracle.max_trials
    record = Path(tuner.project_dir) / SEARCH_SECONDS_FILE
    try:
        earlier = float(json.loads(record.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        earlier = 0.0

    def pre_create_trial():
        spent = earlier + time.monotonic() - started
        write_json_atomic(record, {"seconds": round(spent, 1)})
        if spent > seconds and oracle.trials and oracle.max_trials != len(oracle.trials):
            oracle.max_trials = len(oracle.trials)
            if verbose:
                print(f"Search time budget: {spent:.0f} s of {seconds:.0f} s spent; no further trial starts "
                      f"({len(oracle.trials)} trials)", flush=True)
        before()

    tuner.pre_create_trial = pre_create_trial

    def restore():
        tuner.pre_create_trial, oracle.max_trials = before, limit

    return restore


def trials_table(tuner: kt.Tuner):
    """One row per trial: its hyperparameters, status, score and epochs (pandas DataFrame)."""
    import pandas as pd

    rows = []
    for trial in tuner.oracle.trials.values():
        row = {"trial": trial.trial_id, "status": trial.status, "val_accuracy": trial.score}
        row["epochs"] = trial.hyperparameters.values.get("tuner/epochs")
        row.update({k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")})
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values("val_accuracy", ascending=False, na_position="last").reset_index(drop=True)
    return table


def describe_point(values: dict) -> dict:
    """A search-space point in a few readable columns: in the strong spaces the recipe, its network, optimizer
    and regularisation; the preset and its learning-rate scale; or the network (conv filters, dense widths)
    and its training settings."""
    if isinstance(values.get("recipe"), str):
        return describe_recipe(train_config_from(values), matching_preset(values) or "fer_cnn family")
    if isinstance(values.get("preset"), str):
        return {"preset": values["preset"], "learning rate scale": values.get("learning_rate_scale")}
    options = model_options_from(values)
    return {
        "network": f"conv {'-'.join(map(str, options['conv_filters']))}, dense {'-'.join(map(str, options['dense_units']))}",
        "dropout": options["dropout"], "batch norm": "yes" if options["batch_norm"] else "no",
        "optimizer": values["optimizer"], "learning rate": f"{float(values['learning_rate']):g}",
    }


def describe_recipe(config: TrainConfig, recipe: str) -> dict:
    """A recipe's TrainConfig in four readable columns: its name, network, optimizer and regularisation."""
    options = {name: p.default for name, p in inspect.signature(MODEL_BUILDERS[config.model]).parameters.items()
               if p.default is not inspect.Parameter.empty}
    options.update(config.model_options)
    crop = config.augment.crop if config.augment else 0
    face = f"crop {crop}" if crop else "whole face"
    if config.augment and config.augment.training_crops > 1:
        face = f"{config.augment.training_crops} crops of {crop}"
    if config.model == "fer_cnn":
        dense = f"dense {options['dense_units']}" + (f" x {options['dense_layers']}" if options["dense_layers"] != 1 else "")
        head = {"average": "global average"}.get(options["head"], options["head"])
        network = (f"{'-'.join(map(str, options['widths']))}, {dense}, {head}"
                   f"{', residual' if options['residual'] else ''}, {face}")
    elif config.model == "efficientnet_lite":
        network = f"EfficientNet-{options['backbone']}, {options['image_size']} px, {options['frozen_blocks']} blocks frozen"
    elif config.model in ("cnn", "seed_cnn"):
        filters, units = options.get("conv_filters", (75, 125, 256)), options.get("dense_units", (260, 128, 64, 32))
        network = f"conv {'-'.join(map(str, filters))}, dense {'-'.join(map(str, units))}"
    else:
        network = config.model
    decay = config.weight_decay if config.weight_decay is not None else (1e-4 if config.optimizer == "adamw" else 0.0)
    parts = [f"dropout {options['dropout']:g}" if "dropout" in options else None, f"decay {decay:g}",
             f"smoothing {config.label_smoothing:g}" if config.label_smoothing else None,
             f"erasing {config.augment.erasing:g}" if config.augment and config.augment.erasing else None,
             "class weights" if config.class_weights else None]
    return {"recipe": recipe, "network": network,
            "optimizer": f"{config.optimizer} {config.learning_rate:g}, {config.lr_schedule}",
            "regularisation": ", ".join(p for p in parts if p)}


def trials_overview(trials):
    """`trials_table` narrowed to fit a report's width: score, epochs, the point in words, status.

    The full table (a column per hyperparameter) is what `write_trials` saves.
    """
    import pandas as pd

    rows = [{"trial": t["trial"], "val_accuracy": t["val_accuracy"], "epochs": t.get("epochs"),
             **describe_point(t.to_dict()), "status": t["status"]} for _, t in trials.iterrows()]
    return pd.DataFrame(rows)


def best_hyperparameters(tuner: kt.Tuner) -> dict:
    """The best completed trial: its values (tuner bookkeeping dropped), score and id."""
    best = [t for t in tuner.oracle.get_best_trials(len(tuner.oracle.trials)) if t.score is not None]
    if not best:
        raise RuntimeError(f"no trial of the search in {tuner.project_dir} completed; see the trial errors above, fix them "
                           "and restart the search with tuner_overwrite (fer pipeline --tuner-overwrite)")
    trial = best[0]
    values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
    return {"values": values, "val_accuracy": trial.score, "trial_id": trial.trial_id,
            "model_options": train_config_from(values).model_options}


def write_best_hyperparameters(best: dict, path: str | Path) -> None:
    write_json_atomic(path, best)


def write_trials(table, path: str | Path) -> None:
    """The trials table (`trials_table`) as CSV, written atomically."""
    write_text_atomic(path, table.to_csv(index=False))


def read_best_hyperparameters(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: no best hyperparameters found; run 02_hyperparameter_search first or choose a preset")
    return json.loads(path.read_text())


def matching_preset(values: dict) -> str | None:
    """The named preset whose recipe the point `values` is, if any (e.g. fer_cnn_crop_vgg for the strong
    spaces' first trial), else None."""
    values = _set_values(values)
    if values.get("recipe") == PRESET:
        return values["preset"]
    if values.get("recipe") == FAMILY:
        found = [name for name, point in FAMILY_PRESETS.items() if _same_point(point, values)]
        return found[0] if found else None
    if "preset" in values:  # the presets space: a preset at a scale of its learning rate
        return values["preset"] if np.isclose(float(values["learning_rate_scale"]), 1.0) else None
    return "seed_cnn" if is_seed_point(values) else None


def _same_point(a: dict, b: dict) -> bool:
    return all(str(a[k]) == str(b.get(k)) if isinstance(a[k], str) else np.isclose(float(a[k]), float(b.get(k, np.nan)))
               for k in a)


def is_seed_point(values: dict) -> bool:
    """Whether `values` describe exactly the original seed_cnn (for the search-space test)."""
    if "recipe" in values:
        return values["recipe"] == PRESET and values.get("preset") == "seed_cnn"
    if "preset" in values:
        return values["preset"] == "seed_cnn" and float(values["learning_rate_scale"]) == 1.0
    options = model_options_from(values)
    return (options == model_options_from(SEED_CNN_POINT) and values["optimizer"] == "adam"
            and np.isclose(values["learning_rate"], 1e-3))
