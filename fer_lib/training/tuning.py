"""KerasTuner searches: making one over a space of `search_space` (`make_tuner`), running it with its time
budget and tracking (`run_search`), and reading it back (`trials_table`, `best_hyperparameters`).

The best trial is written as `best_hyperparameters.json`, which training turns back into a
TrainConfig, so the final model is rebuilt from a file, not from tuner state.
"""

from __future__ import annotations

import hashlib
import inspect
import json
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
from fer_lib.models.registry import MODEL_BUILDERS
from fer_lib.training.config import TrainConfig

# The search spaces, moved to fer_lib.training.search_space: the names used here, and all of them re-exported
# for callers that read them from here (tuning.train_config_from, tuning.BEST_KNOWN_POINT, ...).
from fer_lib.training.search_space import (  # noqa: F401
    BEST_KNOWN_POINT,
    BEST_KNOWN_PRESET,
    DEFAULT_SEARCH_SPACE,
    DEMO_CHOICES,
    DEMO_FIXED,
    DEMO_POINT,
    FAMILY,
    FAMILY_CHOICES,
    FAMILY_PRESETS,
    FILTER_CHOICES,
    GPU_PRESETS,
    LEARNING_RATE_SCALES,
    LEARNING_RATES,
    MAX_CONV_BLOCKS,
    MAX_DENSE_LAYERS,
    PRESET,
    SEARCH_SPACES,
    SEED_CNN_POINT,
    SPACE_DESCRIPTIONS,
    UNIT_CHOICES,
    CnnHyperModel,
    DemoHyperModel,
    PresetHyperModel,
    RecipeHyperModel,
    StrongHyperModel,
    _set_values,
    family_config,
    final_train_config,
    model_options_from,
    strong_presets,
    train_config_from,
    trial_cosine,
)
from fer_lib.training.targets import training_targets, vote_targets

TUNERS = ("hyperband", "bayesian", "random")


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
    hold), "strong_gpu" (the same with the GPU presets), "cnn" (the plain-CNN family around seed_cnn),
    "presets" (the named recipes and their learning rate) or "demo" (small plain CNNs with batch norm, the
    smoke profile's).
    """
    if search_space not in SEARCH_SPACES:
        raise ValueError(f"unknown search space {search_space!r}; choose one of {', '.join(SEARCH_SPACES)}")
    n = num_classes
    hypermodel = {"cnn": lambda: CnnHyperModel(seed, n), "demo": lambda: DemoHyperModel(seed, n), "presets": lambda: PresetHyperModel(seed, num_classes=n),
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
    _log_trial_ids(tuner.oracle)
    return tuner


def _log_trial_ids(oracle: kt.Oracle) -> None:
    """Make the search's log name each trial by its id, as the trials table, the best trial and the
    trial_<id> folders do; KerasTuner's own log counts trials from 1 ("Trial 1 Complete" for trial 0)."""
    display = getattr(oracle, "_display", None)
    if display is None:
        return
    base = type(display)

    class TrialIdDisplay(base):
        def on_trial_begin(self, trial):
            if self.verbose < 1:
                return
            from datetime import datetime  # KerasTuner's on_trial_begin, with the id for its count of trials

            self.trial_start[trial.trial_id] = datetime.now()
            self.search_start = self.search_start or self.trial_start[trial.trial_id]
            self.trial_number[trial.trial_id] = trial.trial_id  # what on_trial_end prints: "Trial <id> Complete"
            print(f"\nSearch: running trial {trial.trial_id}\n")
            self.show_hyperparameter_table(trial)
            print()

    TrialIdDisplay.__name__ = TrialIdDisplay.__qualname__ = f"TrialId{base.__name__}"
    display.__class__ = TrialIdDisplay


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


def trials_table(tuner: kt.Tuner, epochs: int | None = None):
    """One row per trial: its hyperparameters, status, score and epochs (pandas DataFrame).

    A trial's epochs are those it was given: Hyperband's own for each trial, else `epochs`, the search's
    (`run_search`'s; early stopping may end a trial sooner, which KerasTuner does not record).
    """
    import pandas as pd

    rows = []
    for trial in tuner.oracle.trials.values():
        row = {"trial": trial.trial_id, "status": trial.status, "val_accuracy": trial.score}
        row["epochs"] = trial.hyperparameters.values.get("tuner/epochs", epochs)
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

    rows = [{"trial": t["trial"], "val_accuracy": t["val_accuracy"], "epochs": _whole(t.get("epochs")),
             **describe_point(t.to_dict()), "status": t["status"]} for _, t in trials.iterrows()]
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame(rows)  # the trial id is the row's name


def _whole(value):
    """A trials table's epochs (a float column once one is missing) as a whole number, or None."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else int(value)


def best_hyperparameters(tuner: kt.Tuner, what_to_do: str = "see the trial errors above, fix them and restart the "
                         "search with tuner_overwrite (fer pipeline --tuner-overwrite)") -> dict:
    """The best completed trial: its values (tuner bookkeeping dropped), score and id.

    With none, a FerError: "no trial ... completed; " and `what_to_do`.
    """
    best = [t for t in tuner.oracle.get_best_trials(len(tuner.oracle.trials)) if t.score is not None]
    if not best:
        raise FerError(f"no trial of the search in {tuner.project_dir} completed; {what_to_do}")
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
