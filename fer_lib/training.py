"""Training a registered model on a FER dataset with the original project's callbacks.

A finished run leaves in its output folder `model.keras` (best val_accuracy, with its
class list inside), `history.csv`, `config.json`, `data.json` and `train_summary.json`,
each written atomically. While it runs, everything in progress lives in `<out>/.resume/`:
the run's config, the best checkpoint so far, `history.csv` (updated every epoch) and,
after every epoch, the training state (weights, optimizer, callback counters), so an
interrupted run continues from its last completed epoch with `resume=True`
(`fer train --resume`), and the folder's published files always belong together.
`overwrite=True` keeps the replaced run as `model.previous.keras` with its metrics, config,
history, data and summary beside it (`metrics.previous.json`, `config.previous.json`, ...).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lib.artifacts import atomic_path, check_writable, copy_atomic, write_json_atomic, write_text_atomic
from fer_lib.augmentation import mixing_layer
from fer_lib.backend import keras
from fer_lib.config import TrainConfig
from fer_lib.data import FerDataset, Split, load_dataset, stratified_holdout
from fer_lib.errors import FerError
from fer_lib.evaluation import predict_probabilities
from fer_lib.labels import EMOTIONS, NUM_CLASSES
from fer_lib.model_stats import training_hardware
from fer_lib.models import build_model, load_model, save_model
from fer_lib.precision import precision_policy, set_precision

MODEL_FILE = "model.keras"
PREVIOUS_MODEL_FILE = "model.previous.keras"
METRICS_FILE = "metrics.json"
PREVIOUS_METRICS_FILE = "metrics.previous.json"
HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
SUMMARY_FILE = "train_summary.json"
RESUME_DIR = ".resume"
NO_DECAY_VARIABLES = ["gamma", "beta", "bias"]  # batch-norm scale/offset, layer biases
STATE_FILE = "state.json"
BEST_CHECKPOINT = "best.keras"  # in RESUME_DIR
TEACHER_FILE = "teacher_probabilities.npy"  # in RESUME_DIR: a resumed run keeps its targets without the teacher
REPLACED_DIR = "replaced"  # in RESUME_DIR: the finished run that --overwrite replaces, copied when it starts
# A finished run's files and the names they keep once a new run replaces them.
PREVIOUS_NAMES = {MODEL_FILE: PREVIOUS_MODEL_FILE, METRICS_FILE: PREVIOUS_METRICS_FILE,
                  CONFIG_FILE: "config.previous.json", HISTORY_FILE: "history.previous.csv",
                  DATA_FILE: "data.previous.json", SUMMARY_FILE: "train_summary.previous.json"}


@dataclass
class TrainResult:
    out_dir: Path
    model: keras.Model  # the published model.keras (best val_accuracy), not the last epoch's weights
    history: dict
    summary: dict

    @property
    def model_path(self) -> Path:
        return self.out_dir / MODEL_FILE


class ThroughputMeter(keras.callbacks.Callback):
    """Training images per second of each epoch, timing the fit phase only (not validation)."""

    def __init__(self, n_images: int):
        super().__init__()
        self.n_images = n_images
        self.images_per_second: list[float] = []
        self._started = None
        self._stopped = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._stopped = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._started is not None and self._stopped is None:
            self._stopped = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        stopped = self._stopped or time.perf_counter()
        self.images_per_second.append(self.n_images / max(stopped - self._started, 1e-9))
        self._started = None

    def steady_rate(self) -> float | None:
        """Median rate, leaving out the first epoch (graph tracing) when there are others."""
        rates = self.images_per_second[1:] or self.images_per_second
        return float(np.median(rates)) if rates else None


class EpochLines(keras.callbacks.Callback):
    """One short line per epoch (its time, loss and accuracy, train and validation, and the learning rate).

    Keras' own lines list every metric with its step time and run past 150 characters, which
    wrap mid-word in a notebook's report; the rest is in history.csv and the training curves.
    """

    SHOWN = (("loss", "loss {:.4f}"), ("accuracy", "accuracy {:.2%}"), ("val_loss", "val_loss {:.4f}"),
             ("val_accuracy", "val_accuracy {:.2%}"), ("learning_rate", "lr {:.2e}"))

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self._started = epochs, None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - (self._started or time.perf_counter())
        parts = [f"Epoch {epoch + 1}/{self.epochs}", f"{seconds:.0f} s"]
        parts += [text.format(float(logs[key])) for key, text in self.SHOWN if key in logs]
        print("  ".join(parts), flush=True)


class TimeBudget(keras.callbacks.Callback):
    """Ends training when another epoch would overrun `seconds` of the run, and says how many epochs fit.

    An epoch costs the median time between epoch ends so far, leaving out the first (it
    compiles) when there are others; the cosine schedule reads `planned_epochs`, so it
    anneals to the end of the budget instead of the end of `max_epochs`. `spent` is the
    time already used: loading before the fit, or the epochs before a resume.
    """

    def __init__(self, seconds: float, max_epochs: int, spent: float = 0.0, planned_epochs: int | None = None):
        super().__init__()
        self.seconds, self.max_epochs = float(seconds), int(max_epochs)
        self.planned_epochs = int(planned_epochs or max_epochs)
        self.spent_before = float(spent)
        self.epoch_seconds: list[float] = []
        self._clock = self._last = time.perf_counter()

    def elapsed(self, now: float | None = None) -> float:
        return self.spent_before + (time.perf_counter() if now is None else now) - self._clock

    def on_train_begin(self, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.epoch_seconds.append(now - self._last)  # end to end, so the checkpoints saved after an epoch count too
        self._last = now
        per_epoch = float(np.median(self.epoch_seconds[1:] or self.epoch_seconds))
        fit = int(max(self.seconds - self.elapsed(now), 0.0) // max(per_epoch, 1e-9))
        planned = max(epoch + 1, min(self.max_epochs, epoch + 1 + fit))
        if len(self.epoch_seconds) > 1 or planned <= epoch + 1:  # the first epoch's compiling says little of the rest
            self.planned_epochs = planned
        if self.planned_epochs <= epoch + 1 and epoch + 1 < self.max_epochs:
            self.model.stop_training = True
            print(f"Time budget: stopping after epoch {epoch + 1}, {self.elapsed(now):.0f} s of {self.seconds:.0f} s spent "
                  f"({per_epoch:.1f} s per epoch)", flush=True)


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 to the (N, 48, 48, 1) float32 batch every model takes."""
    return images[..., None].astype(np.float32)


class MixedBatches(keras.utils.PyDataset):
    """Shuffled training batches blended by a MixUp or CutMix layer: pixels, targets and face weights alike."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, batch_size: int, layer, seed: int,
                 weights: np.ndarray | None = None):
        super().__init__()
        self.images, self.targets, self.batch_size, self.layer, self.weights = images, targets, batch_size, layer, weights
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        labels = self.targets[rows]
        if self.weights is not None:  # an extra column, so a face's weight blends exactly as its target does
            labels = np.concatenate([labels, self.weights[rows, None]], axis=1)
        mixed = self.layer({"images": self.images[rows], "labels": labels}, training=True)
        images, labels = keras.ops.convert_to_numpy(mixed["images"]), keras.ops.convert_to_numpy(mixed["labels"])
        if self.weights is None:
            return images, labels
        return images, labels[:, :-1], labels[:, -1]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))


def targets_and_weights(config: TrainConfig, targets: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The training targets and face weights as `fit` takes them for `config`'s model.

    Class weights are given as each face's weight by its true label, not as Keras' class_weight,
    which weighs a face by its largest target: with a teacher or mixing that need not be its label.
    With several training crops per face the model gives one output per crop (CropGroup), so
    each crop gets its face's target and weight.
    """
    weights = None
    if config.class_weights:
        by_class = class_weights_for(labels)
        weights = np.array([by_class.get(c, 1.0) for c in range(NUM_CLASSES)], np.float32)[labels]
    crops = config.training_crops
    if crops > 1:
        targets = np.repeat(targets[:, None, :], crops, axis=1)
        weights = None if weights is None else np.repeat(weights[:, None], crops, axis=1)
    return targets, weights


def training_batches(config: TrainConfig, images: np.ndarray, targets: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """`fit` arguments for the training data: arrays, or MixedBatches when the config mixes faces."""
    targets, weights = targets_and_weights(config, targets, labels)
    if config.mixing == "none":
        return dict(x=images, y=targets, sample_weight=weights, batch_size=config.batch_size, shuffle=True)
    layer = mixing_layer(config.mixing, config.mixing_strength, seed=seed)
    return dict(x=MixedBatches(images, targets, config.batch_size, layer, seed, weights))


def subset(split: Split, max_images: int | None, seed: int) -> Split:
    """A stratified subset of about `max_images` images (all of them when None or larger).

    Each class keeps its share, rounded, and at least one image, so the size can differ from
    `max_images` by up to one image per class.
    """
    if max_images is None or max_images >= len(split):
        return split
    mask = stratified_holdout(split.labels, max_images / len(split), seed)
    return Split(split.name, split.images[mask], split.labels[mask])


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    # Keras keeps the moving average itself; SwapEMAWeights (make_callbacks) puts it in the model.
    ema = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True,
                                         weight_decay=config.weight_decay or None, **ema)
    elif config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(config.learning_rate,
                                           weight_decay=1e-4 if config.weight_decay is None else config.weight_decay, **ema)
    else:
        optimizer = keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None, **ema)
    if optimizer.weight_decay:
        # Decay only kernels: shrinking batch-norm scales/offsets and biases regularises nothing
        # and, at the large decays AdamW needs (its decay is multiplied by the learning rate), hurts.
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY_VARIABLES)
    return optimizer


def _init_weights(config: TrainConfig) -> list[np.ndarray]:
    """The weights of `config.init_from`, checked to fit the model `config` builds (fine-tuning)."""
    if not Path(config.init_from).is_file():
        raise FerError(f"{config.init_from}: model file not found; --init-from takes a trained .keras model")
    source = load_model(config.init_from)
    set_precision(config.precision)
    target = build_model(config.model, augment=config.augment, seed=config.seed, **config.model_options)
    weights = source.get_weights()
    expected = [tuple(w.shape) for w in target.get_weights()]
    if [tuple(w.shape) for w in weights] != expected:
        raise FerError(f"{config.init_from}: its weights do not fit model {config.model!r} with these options "
                       f"({len(weights)} arrays, expected {len(expected)} of other shapes); "
                       "start from a model of the same architecture")
    return weights


def _load_teacher(config: TrainConfig) -> keras.Model:
    """The model of `config.teacher`, checked to exist (distillation)."""
    if not Path(config.teacher).is_file():
        raise FerError(f"{config.teacher}: teacher model not found; --teacher takes a trained .keras model "
                       "or an ensemble saved by `fer ensemble`")
    return load_model(config.teacher)


def _teacher_probabilities(config: TrainConfig, teacher: keras.Model | None, train_split: Split, saved: Path,
                           verbose: int) -> np.ndarray | None:
    """The teacher's probabilities for the training faces: predicted once, then read back on --resume."""
    if not config.teacher:
        return None
    if teacher is None:
        probabilities = np.load(saved)
        if probabilities.shape == (len(train_split), NUM_CLASSES):
            return probabilities
        teacher = _load_teacher(config)
    from fer_lib.evaluation import predict_probabilities

    # Averaged with the mirror image, so the targets do not depend on a face's orientation,
    # which the flip augmentation changes at random anyway.
    probabilities = predict_probabilities(teacher, train_split.images, tta="flip")
    with atomic_path(saved) as temporary, open(temporary, "wb") as handle:
        np.save(handle, probabilities)
    if verbose:
        agreement = float(np.mean(np.argmax(probabilities, axis=1) == train_split.labels))
        print(f"Teacher {config.teacher}: agrees with {agreement:.2%} of the training labels; "
              f"targets are {1 - config.distillation:g} x labels + {config.distillation:g} x its probabilities", flush=True)
    return probabilities


def training_targets(labels: np.ndarray, teacher_probabilities: np.ndarray | None = None,
                     distillation: float = 0.5) -> np.ndarray:
    """One-hot targets, mixed with a teacher's probabilities when given (knowledge distillation).

    The teacher's probabilities carry what one-hot labels cannot: which faces are ambiguous
    and between which emotions, the soft knowledge that lets one small model approach an ensemble.
    """
    onehot = keras.utils.to_categorical(labels, NUM_CLASSES).astype(np.float32)
    if teacher_probabilities is None:
        return onehot
    return ((1.0 - distillation) * onehot + distillation * teacher_probabilities).astype(np.float32)


def make_loss(config: TrainConfig) -> keras.losses.Loss:
    if config.loss == "focal":
        # gamma 2 down-weights the easy, confident faces (mostly happy and neutral); alpha 1 because
        # Keras' default 0.25 is a binary-detection balance that here only scales the loss down.
        return keras.losses.CategoricalFocalCrossentropy(gamma=2.0, alpha=1.0, label_smoothing=config.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


def jit_compile_choice() -> bool | str:
    """`model.compile`'s jit_compile: always XLA on JAX, whose steps otherwise run op by op
    (`augmentation_layers` says why Keras' "auto" would not); Keras' choice elsewhere."""
    return True if keras.backend.backend() == "jax" else "auto"


def compile_for_training(model: keras.Model, config: TrainConfig) -> keras.Model:
    """Compile with the config's optimizer and loss and the project's metrics (accuracy, top-2)."""
    model.compile(
        optimizer=make_optimizer(config),
        loss=make_loss(config),
        metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(k=2, name="top2_accuracy")],
        jit_compile=jit_compile_choice(),
    )
    if config.training_crops > 1:
        _build_for_training_crops(model, config.training_crops)
    return model


def _build_for_training_crops(model: keras.Model, crops: int) -> None:
    """Build a ten-crop model's loss and metrics for its training output, one row per crop.

    Keras builds them on the first fit from the model's inference output (one row per face),
    which the per-crop targets do not match; on JAX that fails. Built here, symbolically, from
    the training output, fit finds them built and leaves them.
    """
    from keras.src.backend import compute_output_spec

    x = keras.KerasTensor((1, *model.input_shape[1:]), "float32")
    y = keras.KerasTensor((1, crops, NUM_CLASSES), "float32")
    y_pred = compute_output_spec(model, x, training=True)
    compute_output_spec(model.compute_metrics, x, y, y_pred, sample_weight=None)
    compute_output_spec(model._compute_loss, x, y, y_pred, sample_weight=None, training=False)


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the model of the best `monitor` value so far (like ModelCheckpoint with save_best_only).

    Saves atomically through `save_model`, so a kill mid-save never leaves a broken
    checkpoint, and starts from `best` when a run resumes, so an epoch after the
    interruption replaces the checkpoint only if it beats every epoch before it.
    """

    def __init__(self, path: Path, monitor: str = "val_accuracy", best: float | None = None):
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, best

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None or not np.isfinite(current):
            return
        if self.best is None or current > self.best:
            self.best = float(current)
            save_model(self.model, self.path)


class TrainingState(keras.callbacks.Callback):
    """After every epoch: rewrites .resume/history.csv and saves what a resumed run needs, atomically.

    `.resume/state.json` names the epoch's weights file (model and optimizer, learning
    rate included) and holds the history and the callbacks' counters; it is written last,
    so it always describes files that are complete. Restores those counters at the start
    of a resumed fit, after the callbacks have reset themselves (it is the last callback).
    """

    def __init__(self, out_dir: Path, config: TrainConfig, early_stopping, plateau, checkpoint: BestCheckpoint,
                 meter: ThroughputMeter, data_info: dict, state: dict | None, budget: TimeBudget | None = None):
        super().__init__()
        self.budget = budget
        self.out_dir, self.resume_dir = out_dir, out_dir / RESUME_DIR
        self.config, self.early_stopping, self.plateau, self.checkpoint, self.meter = config, early_stopping, plateau, checkpoint, meter
        self.data_info = data_info
        self.state = state or {}
        self.rows: list[dict] = list(self.state.get("history", []))
        self.wall_before = float(self.state.get("wall_seconds", 0.0))
        self.started = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        if self.state:
            restore_callbacks(self.state, self.early_stopping, self.plateau, self.meter)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}}
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        write_text_atomic(self.resume_dir / HISTORY_FILE, history_csv(self.rows))
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        with atomic_path(self.resume_dir / weights, suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary)
        es = self.early_stopping
        self.state = {
            "epochs_done": epoch + 1,
            "epochs": self.config.epochs,
            "stopped": bool(self.model.stop_training),
            "weights_file": weights,
            "history": self.rows,
            "checkpoint_best": self.checkpoint.best,
            "early_stopping": None if es is None else {"wait": es.wait, "best": _plain(es.best), "best_epoch": es.best_epoch},
            "plateau": None if self.plateau is None else {
                "wait": self.plateau.wait, "best": _plain(self.plateau.best), "cooldown_counter": self.plateau.cooldown_counter},
            "images_per_second_per_epoch": list(self.meter.images_per_second),
            "planned_epochs": None if self.budget is None else self.budget.planned_epochs,
            "wall_seconds": self.wall_seconds(),
            "data": _data_fingerprint(self.data_info),
        }
        write_json_atomic(self.resume_dir / STATE_FILE, self.state)
        for stale in self.resume_dir.iterdir():  # older epochs' files, and temporaries of a killed save
            per_epoch = stale.name.startswith("epoch-") and stale.name != weights
            if per_epoch or stale.name.startswith("."):
                stale.unlink(missing_ok=True)

    def wall_seconds(self) -> float:
        return round(self.wall_before + time.perf_counter() - self.started, 1)


def _plain(value):
    return None if value is None else float(value)


def _data_fingerprint(info: dict) -> dict:
    return {"sizes": info["sizes"], "class_counts": info["class_counts"]}


def restore_callbacks(state: dict, early_stopping, plateau, meter: ThroughputMeter) -> None:
    """Put the counters of an interrupted run back into freshly reset callbacks."""
    saved = state.get("early_stopping")
    if early_stopping is not None and saved:
        early_stopping.wait, early_stopping.best, early_stopping.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
    if plateau is not None and state.get("plateau"):
        plateau.wait, plateau.best = state["plateau"]["wait"], state["plateau"]["best"]
        plateau.cooldown_counter = state["plateau"]["cooldown_counter"]
    meter.images_per_second = list(state.get("images_per_second_per_epoch", []))


def history_csv(rows: list[dict]) -> str:
    """The history as CSVLogger writes it: `epoch`, then the metrics in name order."""
    keys = sorted({k for row in rows for k in row if k != "epoch"})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for row in rows:
        writer.writerow([row["epoch"], *(row.get(k, "NA") for k in keys)])
    return buffer.getvalue()


def make_callbacks(config: TrainConfig, out_dir: Path, meter: ThroughputMeter, checkpoint_best: float | None = None,
                   validation: bool = True, budget: TimeBudget | None = None) -> list[keras.callbacks.Callback]:
    """The original project's callbacks: early stopping, plateau schedule, best-val_accuracy checkpoint.

    Without `validation` there is nothing to stop early on; the checkpoint then never saves,
    so the run publishes its final weights. With `config.ema_momentum` the averaged weights
    are swapped in for validation and at every epoch's end, so every callback after the swap
    (early stopping, checkpoint, the resume state) sees and saves them. With a time `budget`
    the cosine schedule ends where the budget does (its `planned_epochs`), and the budget stops the run.
    """
    callbacks = [
        meter,
        BestCheckpoint(out_dir / RESUME_DIR / BEST_CHECKPOINT, monitor="val_accuracy", best=checkpoint_best),
    ]
    if validation:
        callbacks.insert(1, keras.callbacks.EarlyStopping(
            # No restore_best_weights: model.keras is BestCheckpoint's val_accuracy pick, and
            # restoring the val_loss-best weights only printed a different epoch than it.
            monitor="val_loss", patience=config.early_stopping_patience, verbose=1
        ))
    if config.ema_momentum:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if config.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=config.lr_monitor, mode="max" if config.lr_monitor == "val_accuracy" else "min",
                factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-6, verbose=1
            )
        )
    elif config.lr_schedule == "cosine":
        base = config.learning_rate

        def cosine(epoch, lr):
            total = config.epochs if budget is None else budget.planned_epochs
            return float(base * 0.5 * (1 + np.cos(np.pi * min(epoch / total, 1.0))))

        callbacks.append(keras.callbacks.LearningRateScheduler(cosine))
    if budget is not None:
        callbacks.append(budget)
    return callbacks


def class_weights_for(labels: np.ndarray) -> dict[int, float]:
    """'Balanced' class weights (scikit-learn) for the classes present in `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(w) for c, w in zip(present, weights)}


def read_resume_state(out_dir: Path) -> dict | None:
    """The saved state of an interrupted run in `out_dir`, or None."""
    path = Path(out_dir) / RESUME_DIR / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        state["epochs_done"], state["weights_file"]  # noqa: B018 - the keys a resume needs
    except (OSError, ValueError, KeyError, TypeError):
        raise FerError(f"{path}: the saved state of the interrupted run is damaged; pass --overwrite to start over") from None
    return state


def check_out_dir(out_dir: Path, overwrite: bool, resume: bool = False) -> dict | None:
    """Refuse, in one line, what would replace a finished or interrupted run unasked; changes nothing.

    Returns the interrupted run's state when there is one.
    """
    if overwrite and resume:
        raise FerError("--resume continues an interrupted run and --overwrite discards it; pass only one")
    model_file = out_dir / MODEL_FILE
    try:
        state = read_resume_state(out_dir)
    except FerError:
        if not overwrite:
            raise
        state = None  # damaged, and about to be discarded anyway
    if resume:
        if state is None and model_file.exists():
            raise FerError(f"{model_file}: this run already finished, there is nothing to resume; "
                           "choose another --out or pass --overwrite to train again")
    elif state is not None and not overwrite:
        raise FerError(f"an interrupted run is in {out_dir} ({state['epochs_done']} of {state.get('epochs', '?')} epochs done); "
                       "pass --resume to continue or --overwrite to start over")
    elif model_file.exists() and not overwrite:
        raise FerError(f"{model_file} already exists; choose another --out or pass --overwrite to replace it "
                       f"(the old model is then kept as {PREVIOUS_MODEL_FILE})")
    return state


def prepare_out_dir(out_dir: Path, overwrite: bool, resume: bool = False) -> dict | None:
    """Check `out_dir` before training; return the interrupted run's state when resuming.

    Refuses to replace a finished run's model unless `overwrite`, and to start over on
    an interrupted run unless `overwrite` (`resume` continues it instead). Nothing in
    the folder is changed before it is known to be writable.
    """
    state = check_out_dir(out_dir, overwrite, resume)
    check_writable(out_dir)
    if overwrite or state is None:  # the leftovers of a run killed before its first epoch ended go too
        shutil.rmtree(out_dir / RESUME_DIR, ignore_errors=True)
    check_writable(out_dir / RESUME_DIR)
    if overwrite and (out_dir / MODEL_FILE).exists():
        _keep_replaced_run(out_dir)
    return state if resume else None


def _keep_replaced_run(out_dir: Path) -> None:
    """Copy the finished run that is being replaced into .resume/, before anything of it changes.

    Copied now, not when the new run publishes, so that a publish redone after a kill
    cannot mistake the new run's files for the old ones.
    """
    replaced = out_dir / RESUME_DIR / REPLACED_DIR
    try:
        replaced.mkdir(parents=True)
        for name in PREVIOUS_NAMES:
            if (out_dir / name).exists():
                copy_atomic(out_dir / name, replaced / name)
    except OSError as exc:
        raise FerError(f"{replaced}: could not keep a copy of the run being replaced ({exc.strerror}); "
                       "free some space or choose another --out. Nothing of that run was changed") from None


def _check_same_run(config: TrainConfig, out_dir: Path, state: dict, dataset: FerDataset) -> None:
    """A resumed run must have the interrupted run's settings and data (which may have moved, as may the run)."""
    saved_path = out_dir / RESUME_DIR / CONFIG_FILE
    try:
        saved = TrainConfig.load(saved_path).to_dict()
    except (OSError, ValueError, TypeError):
        raise FerError(f"{saved_path}: missing or unreadable, so the interrupted run cannot be resumed; pass --overwrite to start over") from None
    given = config.to_dict()
    # data_parallel is where it runs, not what it learns: a run may resume on a machine with more or fewer devices.
    changed = [k for k in given if k not in ("data", "out", "data_parallel") and given[k] != saved.get(k)]
    if changed:
        k = changed[0]
        raise FerError(f"{saved_path}: the interrupted run used {k}={saved.get(k)!r}, this one asks for {k}={given[k]!r}; "
                       "resume with the same settings (fer train --resume reads them from there) or pass --overwrite")
    if state.get("data") and state["data"] != _data_fingerprint(dataset.info()):
        raise FerError(f"{dataset.source}: the data changed since the interrupted run in {out_dir} (split sizes "
                       f"{state['data']['sizes']} then, {dataset.info()['sizes']} now); resume on the same data or pass --overwrite")


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
          verbose: int = 2) -> TrainResult:
    """Train `config.model`, keeping the best val_accuracy checkpoint as model.keras.

    With no validation split (`config.val_fraction` 0) every training face is trained on
    and model.keras is the final epoch's weights.

    `resume=True` continues the interrupted run in `config.out` from its last completed
    epoch (and starts a new run when there is none); `overwrite=True` replaces a finished
    or interrupted run, keeping the old model as model.previous.keras.
    """
    try:
        config.validate()
    except ValueError as exc:
        raise FerError(str(exc)) from None
    # The run's policy and distribution must not outlive it: models a caller builds afterwards keep their own.
    with precision_policy(config.precision), _distribution_restored():
        return _train(config, dataset, overwrite, resume, verbose, started=time.perf_counter())


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
    return split if keep == len(split) else Split(split.name, split.images[:keep], split.labels[:keep])


def _train(config: TrainConfig, dataset: FerDataset | None, overwrite: bool, resume: bool, verbose: int,
           started: float) -> TrainResult:
    out_dir = Path(config.out)
    # Checked before the output folder is touched, so a wrong --init-from leaves nothing behind.
    resuming = resume and read_resume_state(out_dir) is not None
    init_weights = _init_weights(config) if config.init_from and not resuming else None
    saved_teacher = out_dir / RESUME_DIR / TEACHER_FILE
    teacher = _load_teacher(config) if config.teacher and not (resuming and saved_teacher.is_file()) else None
    state = prepare_out_dir(out_dir, overwrite, resume)
    if dataset is None:
        dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    if state is not None:
        _check_same_run(config, out_dir, state, dataset)
    train_split = subset(dataset.train, config.max_train_images, config.seed)

    teacher_probabilities = _teacher_probabilities(config, teacher, train_split, saved_teacher, verbose)
    del teacher
    data_info, val_split = dataset.info(), dataset.val
    devices = start_data_parallel(config)
    if devices > 1:  # a batch that does not split evenly over the devices fails: drop fewer than `devices` faces
        train_split, val_split = _whole_batches(train_split, devices), _whole_batches(dataset.val, devices)
        if teacher_probabilities is not None:
            teacher_probabilities = teacher_probabilities[:len(train_split)]
        if verbose:
            print(f"Data parallel over {devices} devices: {len(train_split)} training and {len(val_split)} validation "
                  "faces, each batch split between them", flush=True)
    keras.utils.set_random_seed(config.seed)
    precision = set_precision(config.precision)
    model = build_model(config.model, augment=config.augment, seed=config.seed, **config.model_options)
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
    finished = state is not None and (state.get("stopped") or initial_epoch >= config.epochs)
    if not finished:
        model.fit(
            **training_batches(config, as_model_input(train_split.images),
                               training_targets(train_split.labels, teacher_probabilities, config.distillation),
                               train_split.labels, seed=config.seed + initial_epoch),
            validation_data=(as_model_input(val_split.images), keras.utils.to_categorical(val_split.labels, NUM_CLASSES))
            if validation else None,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            # The tracker last: it saves what the others did this epoch.
            callbacks=[*callbacks, *([EpochLines(config.epochs)] if verbose else []), tracker],
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
        "classes": list(EMOTIONS),
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
    _publish(out_dir, model, checkpoint, config, dataset, rows, summary)
    shutil.rmtree(resume_dir, ignore_errors=True)  # last: until here a kill leaves a resumable run
    return TrainResult(out_dir=out_dir, model=load_model(out_dir / MODEL_FILE), history=history, summary=summary)


def _publish(out_dir: Path, model: keras.Model, checkpoint: BestCheckpoint, config: TrainConfig, dataset: FerDataset,
             rows: list[dict], summary: dict) -> None:
    """Move the finished run out of .resume/: its files, then the best checkpoint as model.keras.

    A run being replaced (`--overwrite`) is kept from the copy made when the new run
    started: model.previous.keras, config.previous.json and so on, all in place before the
    new model.keras is renamed in (so a model.keras always exists). Every step can be
    redone, so a run killed halfway through this finishes it on --resume.
    """
    resume_dir, model_file = out_dir / RESUME_DIR, out_dir / MODEL_FILE
    best, replaced = resume_dir / BEST_CHECKPOINT, resume_dir / REPLACED_DIR
    keeps_previous = (replaced / MODEL_FILE).exists()
    summary["previous_model"] = str(out_dir / PREVIOUS_MODEL_FILE) if keeps_previous else None
    write_text_atomic(out_dir / HISTORY_FILE, history_csv(rows))
    config.save(out_dir / CONFIG_FILE)
    write_json_atomic(out_dir / DATA_FILE, dataset.info())
    write_json_atomic(out_dir / SUMMARY_FILE, summary)
    if not best.exists():
        if checkpoint.best is not None and model_file.exists():
            return  # published already, by the run that was killed just after doing it
        save_model(model, best)  # no epoch had a finite val_accuracy: keep the final weights
    try:
        if keeps_previous:
            for name, previous_name in PREVIOUS_NAMES.items():
                if (replaced / name).exists():
                    copy_atomic(replaced / name, out_dir / previous_name)
                else:  # an older generation's file would be taken for the replaced run's
                    (out_dir / previous_name).unlink(missing_ok=True)
            (out_dir / METRICS_FILE).unlink(missing_ok=True)  # it describes the old model, not the new one
        best.replace(model_file)
    except OSError as exc:
        raise FerError(f"{model_file}: could not be written ({exc.strerror}); free some space or choose another folder. "
                       "The previous file is unchanged; run again with --resume") from None
