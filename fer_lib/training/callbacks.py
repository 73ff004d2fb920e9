"""The callbacks of a training run: throughput, epoch lines, time budget, best checkpoint and resume state.

`make_callbacks` assembles them with Keras' early stopping and learning-rate schedules, as the
original project trained; `TrainingState` saves after every epoch what `--resume` needs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fer_lib.artifacts import atomic_path, write_json_atomic, write_text_atomic
from fer_lib.backend import keras
from fer_lib.models.saving import save_model
from fer_lib.training.config import TrainConfig
from fer_lib.training.run_folder import BEST_CHECKPOINT, HISTORY_FILE, RESUME_DIR, STATE_FILE, data_fingerprint, history_csv


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
    The `lr` shown is the rate the epoch trained with; when a plateau schedule lowers it at the
    epoch's end (`plateau`, whose own raw line is off), a second line says so and from which epoch.
    """

    SHOWN = (("loss", "loss {:.4f}"), ("accuracy", "accuracy {:.2%}"), ("val_loss", "val_loss {:.4f}"),
             ("val_accuracy", "val_accuracy {:.2%}"), ("learning_rate", "lr {:.2e}"))

    def __init__(self, epochs: int, plateau=None):
        super().__init__()
        self.epochs, self.plateau, self._started = epochs, plateau, None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - (self._started or time.perf_counter())
        parts = [f"Epoch {epoch + 1}/{self.epochs}", f"{seconds:.0f} s"]
        parts += [text.format(float(logs[key])) for key, text in self.SHOWN if key in logs]
        print("  ".join(parts), flush=True)
        if self.plateau is not None and "learning_rate" in logs:
            trained = float(logs["learning_rate"])
            now = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if now < trained * (1 - 1e-6):
                print(f"  learning rate lowered to {now:.2e} from epoch {epoch + 2}: {self.plateau.monitor} has not "
                      f"improved for {self.plateau.patience} epochs", flush=True)


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
            "data": data_fingerprint(self.data_info),
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


def restore_callbacks(state: dict, early_stopping, plateau, meter: ThroughputMeter) -> None:
    """Put the counters of an interrupted run back into freshly reset callbacks."""
    saved = state.get("early_stopping")
    if early_stopping is not None and saved:
        early_stopping.wait, early_stopping.best, early_stopping.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
    if plateau is not None and state.get("plateau"):
        plateau.wait, plateau.best = state["plateau"]["wait"], state["plateau"]["best"]
        plateau.cooldown_counter = state["plateau"]["cooldown_counter"]
    meter.images_per_second = list(state.get("images_per_second_per_epoch", []))


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
                factor=config.lr_factor, patience=config.lr_patience, min_lr=1e-6,
                verbose=0,  # EpochLines says it in words, under the epoch's line
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
