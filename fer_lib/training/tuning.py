"""KerasTuner searches: over the plain-CNN family (the original seed_cnn is one point of it), or
over the named presets of `fer_lib.training.presets` and their learning rate.

The best trial is written as `best_hyperparameters.json`, which training turns back into a
TrainConfig, so the final model is rebuilt from a file, not from tuner state.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fer_lib.backend import keras  # before keras_tuner, which would start TensorFlow with its start-up chatter

# isort: split
import keras_tuner as kt
import numpy as np

from fer_lib.artifacts import write_json_atomic, write_text_atomic
from fer_lib.data.dataset import FerDataset, subset
from fer_lib.data.preprocessing import as_model_input
from fer_lib.errors import FerError
from fer_lib.labels import NUM_CLASSES
from fer_lib.models.architectures import build_cnn
from fer_lib.models.registry import build_model
from fer_lib.training.config import OPTIMIZERS, TrainConfig
from fer_lib.training.presets import get_preset, preset_config, preset_names
from fer_lib.training.recipe import compile_for_training
from fer_lib.training.targets import targets_and_weights

TUNERS = ("hyperband", "bayesian", "random")
SEARCH_SPACES = ("cnn", "presets")
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


def model_options_from(values: dict) -> dict:
    """`build_cnn` keyword arguments for a point of the search space."""
    return {
        "conv_filters": [int(values[f"filters_{i}"]) for i in range(1, int(values["conv_blocks"]) + 1)],
        "dense_units": [int(values[f"units_{i}"]) for i in range(1, int(values["dense_layers"]) + 1)],
        "dropout": float(values["dropout"]),
        "batch_norm": bool(values["batch_norm"]),
    }


def train_config_from(values: dict, **overrides) -> TrainConfig:
    """The TrainConfig that trains the model a tuner trial described (either search space)."""
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


class CnnHyperModel(kt.HyperModel):
    """Conv blocks, filters, dense widths, dropout, batch norm, learning rate and optimizer."""

    def __init__(self, seed: int = 1234):
        super().__init__(name="cnn")
        self.seed = seed

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
        model = build_cnn(**model_options_from(values), seed=self.seed)
        return compile_for_training(model, train_config_from(values))


class PresetHyperModel(kt.HyperModel):
    """A named preset (model, optimizer, augmentation, loss) and a scale of its learning rate.

    Trials train at a constant learning rate; the preset's schedule applies to the final
    training that notebook 03 runs from the best trial. The first choice, seed_cnn, is the default.
    """

    def __init__(self, seed: int = 1234, presets: list[str] | None = None):
        super().__init__(name="presets")
        self.seed = seed
        self.presets = list(presets or preset_names())

    def _config(self, hp: kt.HyperParameters) -> TrainConfig:
        return train_config_from({"preset": hp.Choice("preset", self.presets, default=self.presets[0]),
                                  "learning_rate_scale": hp.Choice("learning_rate_scale", LEARNING_RATE_SCALES, default=1.0)})

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        config = self._config(hp)
        model = build_model(config.model, augment=config.augment, seed=self.seed, **config.model_options)
        return compile_for_training(model, config)

    def fit(self, hp: kt.HyperParameters, model: keras.Model, x, y, **kwargs):
        """Train a trial; presets with class weights get them, and ten-crop presets their repeated targets,
        as in their final training."""
        y, weights = targets_and_weights(self._config(hp), y, np.argmax(y, axis=1))
        if weights is not None:
            kwargs["sample_weight"] = weights
        return model.fit(x, y, **kwargs)


def project_name(data: str | Path, profile: str, kind: str, search_space: str, *, seed: int, max_trials: int,
                 max_epochs: int, batch_size: int, max_train_images: int | None) -> str:
    """The search's folder name: readable settings plus a key of everything that shapes its trials.

    A search resumes only with the same data and budgets; changing any of them starts a new
    one beside it instead of quietly continuing the old.
    """
    settings = {"data": str(Path(data).expanduser().resolve()), "seed": seed, "max_epochs": max_epochs,
                "batch_size": batch_size, "max_train_images": max_train_images,
                # Hyperband sizes itself from max_epochs; the trial count only bounds the others.
                "max_trials": None if kind == "hyperband" else max_trials}
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
) -> kt.Tuner:
    """A Hyperband, BayesianOptimization or RandomSearch tuner that resumes unless `overwrite`.

    `search_space` is "cnn" (the plain-CNN family around seed_cnn) or "presets" (the named recipes).
    """
    if search_space not in SEARCH_SPACES:
        raise ValueError(f"unknown search space {search_space!r}; choose one of {', '.join(SEARCH_SPACES)}")
    hypermodel = CnnHyperModel(seed) if search_space == "cnn" else PresetHyperModel(seed)
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
    """Make a fresh search's first trial the original seed_cnn (every hyperparameter's default).

    The search then always measures the baseline, so its best trial is never worse than
    the original network on the same budget. KerasTuner has no option for an initial point;
    every oracle draws new points through `_random_values`, which this wraps.
    """
    base = type(oracle)

    class SeedPointFirst(base):
        def _random_values(self):
            if not self.trials:  # no trial yet: this is the search's first point
                values = {hp.name: hp.default for hp in self.hyperparameters.space}
                if values and not self._duplicate(values):
                    return values
            return super()._random_values()

    SeedPointFirst.__name__ = SeedPointFirst.__qualname__ = f"SeedPointFirst{base.__name__}"
    oracle.__class__ = SeedPointFirst


def run_search(tuner: kt.Tuner, dataset: FerDataset, *, epochs: int, batch_size: int = 64,
               max_train_images: int | None = None, seed: int = 1234, verbose: int = 1) -> None:
    """Search on (a stratified subset of) train, scoring trials on validation accuracy."""
    train_split = subset(dataset.train, max_train_images, seed)
    tuner.search(
        as_model_input(train_split.images),
        keras.utils.to_categorical(train_split.labels, NUM_CLASSES),
        validation_data=(as_model_input(dataset.val.images), keras.utils.to_categorical(dataset.val.labels, NUM_CLASSES)),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)],
        verbose=verbose,
    )


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
    """A search-space point in a few readable columns: the preset and its learning-rate scale, or the
    network (conv filters, dense widths) and its training settings."""
    if isinstance(values.get("preset"), str):
        return {"preset": values["preset"], "learning rate scale": values.get("learning_rate_scale")}
    options = model_options_from(values)
    return {
        "network": f"conv {'-'.join(map(str, options['conv_filters']))}, dense {'-'.join(map(str, options['dense_units']))}",
        "dropout": options["dropout"], "batch norm": "yes" if options["batch_norm"] else "no",
        "optimizer": values["optimizer"], "learning rate": f"{float(values['learning_rate']):g}",
    }


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


def is_seed_point(values: dict) -> bool:
    """Whether `values` describe exactly the original seed_cnn (for the search-space test)."""
    if "preset" in values:
        return values["preset"] == "seed_cnn" and float(values["learning_rate_scale"]) == 1.0
    options = model_options_from(values)
    return (options == model_options_from(SEED_CNN_POINT) and values["optimizer"] == "adam"
            and np.isclose(values["learning_rate"], 1e-3))
