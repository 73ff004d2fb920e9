"""Training a registered model on a FER dataset with the original project's callbacks.

A run writes into its output folder: `model.keras` (best val_accuracy), `history.csv`,
`config.json`, `data.json` and `train_summary.json`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from fer_lib.artifacts import write_json_atomic
from fer_lib.config import TrainConfig
from fer_lib.data import FerDataset, Split, load_dataset, stratified_holdout
from fer_lib.errors import FerError
from fer_lib.labels import NUM_CLASSES
from fer_lib.models import build_model
from fer_lib.precision import set_precision

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
SUMMARY_FILE = "train_summary.json"
_PARTIAL_MODEL = ".model.partial.keras"


@dataclass
class TrainResult:
    out_dir: Path
    model: keras.Model
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


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 to the (N, 48, 48, 1) float32 batch every model takes."""
    return images[..., None].astype(np.float32)


def subset(split: Split, max_images: int | None, seed: int) -> Split:
    """A stratified subset of at most `max_images` images (all of them when None or larger)."""
    if max_images is None or max_images >= len(split):
        return split
    mask = stratified_holdout(split.labels, max_images / len(split), seed)
    return Split(split.name, split.images[mask], split.labels[mask])


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay or 1e-4)
    return keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None)


def make_callbacks(config: TrainConfig, out_dir: Path, meter: ThroughputMeter) -> list[keras.callbacks.Callback]:
    callbacks = [
        meter,
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True, verbose=1
        ),
        keras.callbacks.ModelCheckpoint(
            out_dir / _PARTIAL_MODEL, monitor="val_accuracy", mode="max", save_best_only=True, verbose=0
        ),
    ]
    if config.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-6, verbose=1
            )
        )
    elif config.lr_schedule == "cosine":
        total, base = config.epochs, config.learning_rate

        def cosine(epoch, lr):
            return float(base * 0.5 * (1 + np.cos(np.pi * epoch / total)))

        callbacks.append(keras.callbacks.LearningRateScheduler(cosine))
    # Last, so that the learning rate the schedulers put in the logs reaches the CSV.
    callbacks.append(keras.callbacks.CSVLogger(out_dir / HISTORY_FILE))
    return callbacks


def class_weights_for(labels: np.ndarray) -> dict[int, float]:
    """'Balanced' class weights (scikit-learn) for the classes present in `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(w) for c, w in zip(present, weights)}


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create `out_dir`, refusing to replace a finished run's model unless asked."""
    if (out_dir / MODEL_FILE).exists() and not overwrite:
        raise FerError(f"{out_dir / MODEL_FILE} already exists; choose another --out or pass --overwrite to replace it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerError(f"{out_dir}: cannot create the output folder ({exc.strerror}); choose a writable --out") from None


def train(config: TrainConfig, dataset: FerDataset | None = None, *, overwrite: bool = False, verbose: int = 2) -> TrainResult:
    """Train `config.model`, keeping the best val_accuracy checkpoint as model.keras."""
    try:
        config.validate()
    except ValueError as exc:
        raise FerError(str(exc)) from None
    out_dir = Path(config.out)
    prepare_out_dir(out_dir, overwrite)
    if dataset is None:
        dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    train_split = subset(dataset.train, config.max_train_images, config.seed)

    keras.utils.set_random_seed(config.seed)
    precision = set_precision(config.precision)
    model = build_model(config.model, augment=config.augment, seed=config.seed, **config.model_options)
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(k=2, name="top2_accuracy")],
    )
    config.save(out_dir / CONFIG_FILE)
    write_json_atomic(out_dir / DATA_FILE, dataset.info())

    meter = ThroughputMeter(len(train_split))
    started = time.perf_counter()
    fit = model.fit(
        as_model_input(train_split.images),
        keras.utils.to_categorical(train_split.labels, NUM_CLASSES),
        validation_data=(as_model_input(dataset.val.images), keras.utils.to_categorical(dataset.val.labels, NUM_CLASSES)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        class_weight=class_weights_for(train_split.labels) if config.class_weights else None,
        callbacks=make_callbacks(config, out_dir, meter),
        verbose=verbose,
    )
    wall_seconds = time.perf_counter() - started
    partial = out_dir / _PARTIAL_MODEL
    if not partial.exists():  # no epoch improved val_accuracy from nothing: keep the final weights
        model.save(partial)
    shutil.move(partial, out_dir / MODEL_FILE)

    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    best_epoch = int(np.argmax(history["val_accuracy"])) + 1
    summary = {
        "model": config.model,
        "parameters": int(model.count_params()),
        "precision": precision,
        "backend": keras.backend.backend(),
        "train_images": len(train_split),
        "epochs_run": len(history["loss"]),
        "best_epoch": best_epoch,
        "best_val_accuracy": history["val_accuracy"][best_epoch - 1],
        "wall_seconds": round(wall_seconds, 1),
        "images_per_second": meter.steady_rate(),
        "images_per_second_per_epoch": [round(r, 1) for r in meter.images_per_second],
        "synthetic_data": dataset.synthetic,
    }
    write_json_atomic(out_dir / SUMMARY_FILE, summary)
    return TrainResult(out_dir=out_dir, model=model, history=history, summary=summary)
