"""`train`: one training run of a registered model on a FER dataset, from its TrainConfig to a published model.

The run folder it leaves, and how an interrupted run resumes, are described in
`fer_lib.training.run_folder`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lib.backend import keras
from fer_lib.data.dataset import FerDataset, Split, load_dataset, stratified_holdout
from fer_lib.data.preprocessing import as_model_input
from fer_lib.errors import FerError
from fer_lib.evaluation.prediction import predict_probabilities
from fer_lib.models.registry import build_model
from fer_lib.models.saving import load_model
from fer_lib.models.stats import training_hardware
from fer_lib.training.callbacks import (
    BestCheckpoint,
    EpochLines,
    ThroughputMeter,
    TimeBudget,
    TrainingState,
    make_callbacks,
    restore_callbacks,
)
from fer_lib.training.config import TrainConfig
from fer_lib.training.precision import precision_policy, set_precision
from fer_lib.training.recipe import compile_for_training
from fer_lib.training.run_folder import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    DATA_FILE,
    HISTORY_FILE,
    INTERRUPTED_FILE,
    MODEL_FILE,
    RESUME_DIR,
    SUMMARY_FILE,
    TEACHER_FILE,
    check_same_run,
    first_changed_setting,
    mark_interrupted,
    prepare_out_dir,
    publish_run,
    read_resume_state,
)
from fer_lib.training.run_tracking import RunTracking
from fer_lib.training.targets import load_teacher, teacher_probabilities, training_batches, training_targets, vote_targets


@dataclass
class TrainResult:
    out_dir: Path
    model: keras.Model  # the published model.keras (best val_accuracy), not the last epoch's weights
    history: dict
    summary: dict

    @property
    def model_path(self) -> Path:
        return self.out_dir / MODEL_FILE


def _init_weights(config: TrainConfig) -> list[np.ndarray]:
    """The weights of `config.init_from`, checked to fit the model `config` builds (fine-tuning)."""
    if not Path(config.init_from).is_file():
        raise FerError(f"{config.init_from}: model file not found; --init-from takes a trained .keras model")
    source = load_model(config.init_from)
    set_precision(config.precision)
    target = build_model(config.model, augment=config.augment, seed=config.seed,
                         num_classes=int(source.output_shape[-1]), **config.model_options)
    weights = source.get_weights()
    expected = [tuple(w.shape) for w in target.get_weights()]
    if [tuple(w.shape) for w in weights] != expected:
        raise FerError(f"{config.init_from}: its weights do not fit model {config.model!r} with these options "
                       f"({len(weights)} arrays, expected {len(expected)} of other shapes); "
                       "start from a model of the same architecture")
    return weights


def _measured_checkpoint_best(partial: Path, val: Split, batch_size: int) -> float | None:
    """val_accuracy of the best-so-far checkpoint, measured, since a kill can land between its save and the state's."""
    if not partial.is_file():
        return None
    try:
        model = load_model(partial)
    except FerError:
        partial.unlink(missing_ok=True)  # unreadable: the run will save a new one
        return None
    probabilities = predict_probabilities(model, val.images, batch_size=batch_size)
    return float(np.mean(np.argmax(probabilities, axis=1) == val.labels))


def train(config: TrainConfig, dataset: FerDataset | None = None, *, overwrite: bool = False, resume: bool = False,
          verbose: int = 2, keep_finished: bool = False) -> TrainResult:
    """Train `config.model`, keeping the best val_accuracy checkpoint as model.keras.

    With no validation split (`config.val_fraction` 0) every training face is trained on
    and model.keras is the final epoch's weights.

    `resume=True` continues the interrupted run in `config.out` from its last completed
    epoch (and starts a new run when there is none); `overwrite=True` replaces a finished
    or interrupted run, keeping the old model as model.previous.keras. `keep_finished=True`
    returns a run that already finished in `config.out` as it is (a resumed pipeline whose
    notebook stopped after its training).
    """
    try:
        config.validate()
    except ValueError as exc:
        raise FerError(str(exc)) from None
    if config.mlflow_uri:
        from fer_lib.training.mlflow_tracking import require_mlflow

        require_mlflow()
    out_dir = Path(config.out)
    if keep_finished and not overwrite and (out_dir / MODEL_FILE).is_file() and read_resume_state(out_dir) is None:
        _check_finished_is(config, out_dir)
        return finished_run(out_dir)
    # The run's policy and distribution must not outlive it: models a caller builds afterwards keep their own.
    with precision_policy(config.precision), _distribution_restored():
        try:
            return _train(config, dataset, overwrite, resume, verbose, started=time.perf_counter())
        except KeyboardInterrupt:
            mark_interrupted(out_dir)  # the folder says it holds no finished run (fer train --resume continues it)
            raise


def _check_finished_is(config: TrainConfig, out_dir: Path) -> None:
    """FerError unless the run that finished in `out_dir` was trained with `config`'s recipe."""
    changed = first_changed_setting(config, out_dir / CONFIG_FILE, "so the finished run there cannot be kept; move it "
                                                                   "away and train again")
    if changed:
        k, saved, given = changed
        raise FerError(f"{out_dir}: the run that finished there used {k}={saved!r}, this one asks for "
                       f"{k}={given!r}; move that run away to train this one")


def _check_label_mode(config: TrainConfig, dataset: FerDataset | None) -> None:
    """FerError, before the output folder is touched, for a vote label mode on data without votes."""
    from fer_lib.data.dataset import dataset_classes

    if config.label_mode == "majority":
        return
    votes = dataset.has_votes if dataset is not None else (
        config.data is not None and len(dataset_classes(config.data)) == 8)
    if not votes:
        raise FerError(f"label_mode {config.label_mode} trains on annotators' votes, which "
                       f"{dataset.source if dataset is not None else config.data} has none of; use FER+ data "
                       "(FER2013Train/ with label.csv, or fer2013new.csv) or label_mode majority")


def _with_saved_seeding(config: TrainConfig, out_dir: Path) -> TrainConfig:
    """`config` with the interrupted run's augmentation seeding: one started before each layer had its own
    seed (augment.shared_seed) resumes with the seeding it started with, whoever rebuilt its config."""
    from dataclasses import replace

    try:
        saved = TrainConfig.load(out_dir / RESUME_DIR / CONFIG_FILE)
    except (OSError, ValueError, TypeError):
        return config  # check_same_run says what is wrong with it
    if config.augment is None or saved.augment is None or saved.augment.shared_seed == config.augment.shared_seed:
        return config
    return replace(config, augment=replace(config.augment, shared_seed=saved.augment.shared_seed))


def finished_run(out_dir: str | Path) -> TrainResult:
    """The TrainResult of the run that finished in `out_dir`, read from its files."""
    import csv
    import json

    out_dir = Path(out_dir)
    with (out_dir / HISTORY_FILE).open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    history = {k: [float(r[k]) for r in rows if r.get(k) not in (None, "", "NA")] for k in (rows[0] if rows else {})
               if k != "epoch"}
    summary = json.loads((out_dir / SUMMARY_FILE).read_text())
    return TrainResult(out_dir=out_dir, model=load_model(out_dir / MODEL_FILE), history=history, summary=summary)


@contextlib.contextmanager
def _distribution_restored():
    previous = keras.distribution.distribution()
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def start_data_parallel(config: TrainConfig) -> int:
    """With `config.data_parallel`, train on every accelerator of this machine (JAX): variables replicated
    on each, every batch split between them (keras.distribution.DataParallel). Returns how many devices
    share a batch (1 without). Call it before the model is built; `train` restores the previous distribution."""
    if not config.data_parallel:
        return 1
    if keras.backend.backend() != "jax":
        raise FerError(f"data_parallel trains with keras.distribution, which needs the JAX backend (KERAS_BACKEND=jax), "
                       f"not {keras.backend.backend()}")
    devices = keras.distribution.list_devices()
    if config.batch_size % len(devices):
        raise FerError(f"batch_size {config.batch_size} does not split evenly over the {len(devices)} devices "
                       f"({', '.join(devices)}); choose a multiple of {len(devices)}")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def _whole_batches(split: Split, devices: int) -> Split:
    """`split` less its last len % devices faces, so that every batch (the last one too) splits evenly."""
    keep = len(split) - len(split) % devices
    return split if keep == len(split) else split.take(np.arange(keep))


def _train(config: TrainConfig, dataset: FerDataset | None, overwrite: bool, resume: bool, verbose: int,
           started: float) -> TrainResult:
    out_dir = Path(config.out)
    _check_label_mode(config, dataset)
    # Checked before the output folder is touched, so a wrong --init-from leaves nothing behind.
    resuming = resume and read_resume_state(out_dir) is not None
    init_weights = _init_weights(config) if config.init_from and not resuming else None
    saved_teacher = out_dir / RESUME_DIR / TEACHER_FILE
    teacher = load_teacher(config) if config.teacher and not (resuming and saved_teacher.is_file()) else None
    state = prepare_out_dir(out_dir, overwrite, resume)
    if dataset is None:
        dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    if state is not None:
        config = _with_saved_seeding(config, out_dir)
        check_same_run(config, out_dir, state, dataset)
    train_split, label_targets = vote_targets(config, dataset.train)
    if config.max_train_images is not None and config.max_train_images < len(train_split):  # as `subset` chooses
        rows = stratified_holdout(train_split.labels, config.max_train_images / len(train_split), config.seed)
        train_split, label_targets = train_split.take(rows), None if label_targets is None else label_targets[rows]
    classes = dataset.classes

    distilled = teacher_probabilities(config, teacher, train_split, saved_teacher, verbose)
    del teacher
    data_info, val_split = dataset.info(), dataset.val
    devices = start_data_parallel(config)
    if devices > 1:  # a batch that does not split evenly over the devices fails: drop fewer than `devices` faces
        train_split, val_split = _whole_batches(train_split, devices), _whole_batches(dataset.val, devices)
        if distilled is not None:
            distilled = distilled[:len(train_split)]
        if label_targets is not None:
            label_targets = label_targets[:len(train_split)]
        if verbose:
            print(f"Data parallel over {devices} devices: {len(train_split)} training and {len(val_split)} validation "
                  "faces, each batch split between them", flush=True)
    keras.utils.set_random_seed(config.seed)
    precision = set_precision(config.precision)
    model = build_model(config.model, augment=config.augment, seed=config.seed, num_classes=len(classes),
                        **config.model_options)
    compile_for_training(model, config)
    initial_epoch, checkpoint_best = 0, None
    resume_dir = out_dir / RESUME_DIR
    if state is None:
        if init_weights is not None:
            model.set_weights(init_weights)
        config.save(resume_dir / CONFIG_FILE)
    else:
        model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(resume_dir / state["weights_file"])
        except Exception as exc:  # missing, damaged, or saved by another architecture
            raise FerError(f"{resume_dir / state['weights_file']}: cannot restore the interrupted run's weights "
                           f"({type(exc).__name__}); pass --overwrite to start over") from None
        initial_epoch = int(state["epochs_done"])
        keras.utils.set_random_seed(config.seed + initial_epoch)  # fresh shuffles, not a replay of epoch 1's
        measured = _measured_checkpoint_best(resume_dir / BEST_CHECKPOINT, val_split, config.batch_size * max(1, 256 // config.batch_size))
        recorded = [v for v in (state.get("checkpoint_best"), measured) if v is not None]
        checkpoint_best = max(recorded) if recorded else None
        if verbose:
            print(f"Restored the weights, optimizer and callbacks of epoch {initial_epoch} of {config.epochs}; "
                  f"best val_accuracy so far {checkpoint_best if checkpoint_best is not None else float('nan'):.4f}", flush=True)

    meter = ThroughputMeter(len(train_split))
    validation = len(val_split) > 0  # empty only for val_fraction 0, which TrainConfig.validate keeps from plateau
    budget = None
    if config.time_budget:
        spent = time.perf_counter() - started + float((state or {}).get("wall_seconds", 0.0))
        budget = TimeBudget(config.time_budget, config.epochs, spent, (state or {}).get("planned_epochs"))
    callbacks = make_callbacks(config, out_dir, meter, checkpoint_best, validation, budget)
    early_stopping = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
    plateau = next((c for c in callbacks if isinstance(c, keras.callbacks.ReduceLROnPlateau)), None)
    checkpoint = next(c for c in callbacks if isinstance(c, BestCheckpoint))
    swap = next((c for c in callbacks if isinstance(c, keras.callbacks.SwapEMAWeights)), None)
    if swap is not None and state is not None:
        # The saved epoch holds the averaged weights in the model and the raw ones in the
        # optimizer's average, as swapped at its end: the next epoch must swap them back.
        swap._ema_weights_in_model = True
    tracker = TrainingState(out_dir, config, early_stopping, plateau, checkpoint, meter, data_info, state, budget)
    tracking = RunTracking(config, out_dir, resuming=state is not None)
    finished = state is not None and (state.get("stopped") or initial_epoch >= config.epochs)
    if not finished:
        model.fit(
            **training_batches(config, as_model_input(train_split.images),
                               training_targets(train_split.labels, distilled, config.distillation, len(classes),
                                                label_targets),
                               train_split.labels, seed=config.seed + initial_epoch),
            validation_data=(as_model_input(val_split.images), keras.utils.to_categorical(val_split.labels, len(classes)))
            if validation else None,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            # The tracker last: it saves what the others did this epoch.
            callbacks=[*callbacks, *tracking.callbacks(), *([EpochLines(config.epochs, plateau)] if verbose else []), tracker],
            verbose=0,
        )
    else:  # killed after the last epoch, before everything was published: finish publishing
        restore_callbacks(state, early_stopping, plateau, meter)

    rows = tracker.rows
    history = {k: [float(r[k]) for r in rows if k in r] for k in rows[0] if k != "epoch"} if rows else {}
    scores = np.array(history.get("val_accuracy", []), dtype=float)
    best_epoch = int(np.nanargmax(scores)) + 1 if np.isfinite(scores).any() else None
    summary = {
        "model": config.model,
        "parameters": int(model.count_params()),
        "precision": precision,
        "backend": keras.backend.backend(),
        "hardware": training_hardware(),  # the results table names the machine that trained, not the one recording
        "classes": list(classes),
        "label_mode": config.label_mode if dataset.has_votes else None,
        "majority_rule": config.majority_rule if dataset.has_votes else None,
        "train_images": len(train_split),
        "val_images": len(val_split),
        "data_parallel_devices": devices if config.data_parallel else None,
        "epochs_run": len(rows),
        "time_budget_seconds": config.time_budget,
        "resumed_after_epoch": initial_epoch if state is not None else None,
        "best_epoch": best_epoch,
        "best_val_accuracy": history["val_accuracy"][best_epoch - 1] if best_epoch else None,
        "wall_seconds": tracker.wall_seconds(),
        "images_per_second": meter.steady_rate(),
        "images_per_second_per_epoch": [round(r, 1) for r in meter.images_per_second],
        "synthetic_data": dataset.synthetic,
    }
    if tracking.mlflow_run_id:
        summary["mlflow_run_id"] = tracking.mlflow_run_id
    publish_run(out_dir, model, checkpoint.best, config, dataset, rows, summary)
    (out_dir / INTERRUPTED_FILE).unlink(missing_ok=True)  # finished: until the resume state goes, a kill still resumes
    published = load_model(out_dir / MODEL_FILE)
    tracking.finish(published, val_split, classes, out_dir, summary,
                    (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, DATA_FILE, SUMMARY_FILE))
    shutil.rmtree(resume_dir, ignore_errors=True)  # last: until here a kill leaves a resumable run
    return TrainResult(out_dir=out_dir, model=published, history=history, summary=summary)
