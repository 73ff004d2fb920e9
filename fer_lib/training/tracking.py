"""TensorBoard logs of every run and tuning trial, written in its own folder: watchable while it trains.

Per epoch: Keras' TensorBoard callback (loss, accuracy, the validation metrics, the learning rate),
no per-batch histograms, so a 100-epoch run's event files stay small. At a run's end: its confusion
heatmap and a few misclassified faces as images. Trials and runs write their settings through the
HParams plugin, so its dashboard compares them. Logging never fails the run: the first error is a
one-line warning, and the run goes on without it (`warn_tracking`). `tensorboard --logdir runs/`.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np

from fer_lib.backend import keras

TENSORBOARD_DIR = "tensorboard"  # in a run's folder, or a trial's
_GUARDED_HOOKS = ("set_model", "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin", "on_test_end",
                  "on_train_batch_begin", "on_train_batch_end")


def warn_tracking(what: str, exc: BaseException) -> None:
    """The one line a tracking failure gets; the run carries on and keeps its own files."""
    detail = re.sub(r"\{\{.*?\}\}\s*", "", (str(exc).strip().splitlines() or [""])[0])[:200]  # TensorFlow's op prefix
    print(f"Warning: {what} stopped ({type(exc).__name__}: {detail}); training goes on and keeps its own outputs",
          file=sys.stderr, flush=True)


def can_write_tensorboard() -> bool:
    """Whether TensorFlow's summary writer, which TensorBoard logs need on any backend, imports here; one
    warning line when not (a JAX machine without TensorFlow), and the run goes on without logs."""
    try:
        import tensorflow  # noqa: F401
    except ImportError as exc:
        warn_tracking("TensorBoard logging (it needs TensorFlow's summary writer; --no-tensorboard skips it)", exc)
        return False
    return True


class RunTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback at per-epoch frequency, which warns once and stops logging on an error.

    Not named TensorBoard: KerasTuner would move such a callback's folder and add its own HParams
    callback (TensorFlow backend only); trials get theirs from `tuning` on every backend.
    """

    def __init__(self, log_dir: str | Path):
        super().__init__(log_dir=str(log_dir), histogram_freq=0, write_graph=False, write_images=False,
                         update_freq="epoch", profile_batch=0)
        self.failed = False

    def __deepcopy__(self, memo):  # KerasTuner copies a search's callbacks for each trial: a fresh one, same folder
        return RunTensorBoard(self.log_dir)


def _guarded(name: str):
    def hook(self, *args, **kwargs):
        if self.failed:
            return None
        try:
            return getattr(keras.callbacks.TensorBoard, name)(self, *args, **kwargs)
        except Exception as exc:  # a folder that cannot be written, a full disk: the run matters more than its logs
            self.failed = True
            warn_tracking(f"TensorBoard logging to {self.log_dir}", exc)
            return None

    hook.__name__ = name
    return hook


for _name in _GUARDED_HOOKS:
    setattr(RunTensorBoard, _name, _guarded(_name))


def hparam_values(values: dict) -> dict:
    """`values` as the HParams plugin takes them: bool, int, float or str (lists and dicts as text), unset ones left out."""
    plain = {}
    for key, value in values.items():
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            continue
        if isinstance(value, dict):
            plain.update(hparam_values({f"{key}.{k}": v for k, v in value.items()}))
        elif isinstance(value, bool | int | float | str):
            plain[key] = value
        elif isinstance(value, np.generic):
            plain[key] = value.item()
        else:
            plain[key] = str(value)
    return plain


def write_hparams(log_dir: str | Path, values: dict, trial_id: str | None = None) -> None:
    """A run's or trial's settings for TensorBoard's HParams dashboard, in `log_dir` (its TensorBoard folder)."""
    try:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        writer = tf.summary.create_file_writer(str(log_dir))
        with writer.as_default():
            hp.hparams(hparam_values(values), trial_id=trial_id)
        writer.close()
    except Exception as exc:
        warn_tracking(f"TensorBoard HParams in {log_dir}", exc)


def _figure_image(figure):
    """A matplotlib figure as a [1, height, width, 4] uint8 image, closed after."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA"))[None]


def write_final_images(log_dir: str | Path, model, split, classes, step: int, batch_size: int = 256) -> None:
    """The published model's confusion heatmap and misclassified faces on `split` (validation), as TensorBoard images."""
    if split is None or len(split) == 0:
        return
    try:
        import tensorflow as tf
        from sklearn.metrics import confusion_matrix

        from fer_lib.evaluation.prediction import predict_probabilities
        from fer_lib.reporting.figures import confusion_matrix_figure, misclassified_gallery_figure

        probabilities = predict_probabilities(model, split.images, batch_size=batch_size)
        matrix = confusion_matrix(split.labels, probabilities.argmax(axis=1), labels=range(len(classes)))
        heatmap = _figure_image(confusion_matrix_figure(matrix, list(classes), normalize=True))
        faces = _figure_image(misclassified_gallery_figure(split.images, split.labels, probabilities, n=16, classes=list(classes)))
        writer = tf.summary.create_file_writer(str(Path(log_dir) / "validation"))
        with writer.as_default():
            tf.summary.image("confusion_matrix", heatmap, step=step)
            tf.summary.image("misclassified_faces", faces, step=step)
        writer.close()
    except Exception as exc:
        warn_tracking(f"TensorBoard images in {log_dir}", exc)

