"""What a training run logs besides its own files: TensorBoard always (unless turned off), MLflow when asked."""

from __future__ import annotations

import time
from pathlib import Path

from fer_lib.training.tracking import TENSORBOARD_DIR, RunTensorBoard, can_write_tensorboard, write_final_images, write_hparams

TENSORBOARD_RUN_FILE = "tensorboard_run"  # in a run's .resume/: the log folder a resumed run appends to


class RunTracking:
    """What a training run logs besides its own files: TensorBoard in `<out>/tensorboard/<start time>/`, and an
    MLflow run when its config names a tracking URI. A resumed run appends to both; a new run in the same
    folder (--overwrite) logs beside the older ones, so nothing of theirs is moved or lost."""

    def __init__(self, config, out_dir: Path, resuming: bool):
        from fer_lib.artifacts import write_text_atomic
        from fer_lib.training.run_folder import RESUME_DIR

        self.log_dir = None
        if config.tensorboard and can_write_tensorboard():
            saved = Path(out_dir) / RESUME_DIR / TENSORBOARD_RUN_FILE
            name = saved.read_text().strip() if resuming and saved.is_file() else None
            if not name:
                name = _new_log_name(Path(out_dir) / TENSORBOARD_DIR)
                write_text_atomic(saved, name)
                write_hparams(Path(out_dir) / TENSORBOARD_DIR / name, _settings(config))
            self.log_dir = Path(out_dir) / TENSORBOARD_DIR / name
        self.mlflow = None
        if config.mlflow_uri:
            from fer_lib.training.mlflow_tracking import RUN_ID_FILE, MlflowRun

            saved = Path(out_dir) / RESUME_DIR / RUN_ID_FILE
            run_id = saved.read_text().strip() if resuming and saved.is_file() else None
            self.mlflow = MlflowRun(config.mlflow_uri, Path(out_dir).name, run_id=run_id)
            if run_id is None and self.mlflow.run_id:
                self.mlflow.log_params(_settings(config))
                write_text_atomic(saved, self.mlflow.run_id)

    @property
    def mlflow_run_id(self) -> str | None:
        return None if self.mlflow is None or self.mlflow.failed else self.mlflow.run_id

    def callbacks(self) -> list:
        from fer_lib.training.mlflow_tracking import MlflowEpochs

        return ([RunTensorBoard(self.log_dir)] if self.log_dir is not None else []) + (
            [MlflowEpochs(self.mlflow)] if self.mlflow is not None else [])

    def finish(self, model, val_split, classes, out_dir: Path, summary: dict, files) -> None:
        """After the run published: its images, its summary's figures and its files as artifacts."""
        if self.log_dir is not None:
            write_final_images(self.log_dir, model, val_split, classes, step=max(int(summary.get("epochs_run") or 1) - 1, 0))
        if self.mlflow is not None:
            self.mlflow.log_metrics({k: v for k, v in summary.items() if k in (
                "best_val_accuracy", "best_epoch", "epochs_run", "wall_seconds", "images_per_second", "parameters")})
            self.mlflow.log_artifacts([Path(out_dir) / name for name in files])
            self.mlflow.end()


def _settings(config) -> dict:
    """A config's recipe, less where it is tracked."""
    values = config.to_dict()
    values.pop("mlflow_uri", None)
    return values


def _new_log_name(folder: Path) -> str:
    """This run's folder in `folder`: its start time, unique."""
    name = stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while (folder / name).exists():
        suffix += 1
        name = f"{stamp}-{suffix}"
    return name
