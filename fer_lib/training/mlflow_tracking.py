"""MLflow runs of trainings and searches, with the `tracking` extra (`pip install -e .[tracking]`).

A training run logs its config as params, its metrics per epoch, its final evaluation, and its
model, history, summary and report as artifacts; a search is a parent run whose trials are child
runs. The default store is `runs/mlflow.db` (SQLite, artifacts in `runs/mlartifacts/`), which
`mlflow ui --backend-store-uri sqlite:///runs/mlflow.db` opens; any tracking URI works
(`--mlflow URI` or FER_MLFLOW_URI). MLflow never fails the run: an unreachable or unwritable
store, or a server that goes away, costs one warning line and the run keeps its own files.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_lib.backend import keras
from fer_lib.errors import FerError
from fer_lib.training.tracking import warn_tracking

URI_VARIABLE = "FER_MLFLOW_URI"
DEFAULT = "default"  # `--mlflow` without a URI: $FER_MLFLOW_URI, else the SQLite store under runs/
EXPERIMENT = "fer_lib"
RUN_ID_FILE = "mlflow_run_id"  # in a run's .resume/: a resumed training carries on its MLflow run
INSTALL_HINT = "MLflow is not installed: pip install -e '.[tracking]' (or pip install mlflow), or leave out --mlflow"


def require_mlflow() -> None:
    """FerError in one line, before any training, when the tracking extra is missing."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise FerError(INSTALL_HINT) from None


def default_store(runs_dir: str | Path = "runs") -> str:
    return f"sqlite:///{Path(runs_dir).expanduser().resolve() / 'mlflow.db'}"


def resolve_uri(option: str | None) -> str | None:
    """The tracking URI `--mlflow [URI]` asks for: None without the option unless FER_MLFLOW_URI is set."""
    if option is None:
        option = os.environ.get(URI_VARIABLE) or None
    elif option == DEFAULT:
        option = os.environ.get(URI_VARIABLE) or DEFAULT
    if option is None:
        return None
    if option == DEFAULT:
        return default_store()
    if "://" not in option and not option.startswith("databricks"):  # a plain folder: MLflow's file store there
        return Path(option).expanduser().resolve().as_uri()
    return option


def _artifact_root(uri: str) -> str | None:
    """Artifacts beside a local SQLite store (MLflow's own default is ./mlartifacts of wherever it runs)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


def _fail_fast() -> None:
    # MLflow retries an HTTP request for minutes by default; a server that went away must not hold up training.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class MlflowRun:
    """One MLflow run; every call after the first failure does nothing (that failure is one warning line)."""

    def __init__(self, uri: str, name: str, *, parent_run_id: str | None = None, run_id: str | None = None,
                 tags: dict | None = None):
        self.uri, self.run_id, self.failed = uri, None, False
        try:
            _fail_fast()
            from mlflow import MlflowClient
            from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

            self.client = MlflowClient(tracking_uri=uri)
            if run_id:  # a resumed training, or the search a worker's trials belong to
                self.client.update_run(run_id, status="RUNNING")
                self.run_id = run_id
                return
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
                EXPERIMENT, artifact_location=_artifact_root(uri))
            run_tags = {MLFLOW_RUN_NAME: name, **(tags or {})}
            if parent_run_id:
                run_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
            self.run_id = self.client.create_run(experiment_id, tags=run_tags, run_name=name).info.run_id
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.failed = True
        warn_tracking(f"MLflow tracking to {self.uri}", exc)

    def _call(self, method: str, *args, **kwargs) -> None:
        if self.failed or self.run_id is None:
            return
        try:
            getattr(self.client, method)(self.run_id, *args, **kwargs)
        except Exception as exc:
            self._fail(exc)

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        from fer_lib.training.tracking import hparam_values

        self._call("log_batch", params=[Param(k, str(v)[:6000]) for k, v in sorted(hparam_values(params).items())])

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and v == v]
        if values:
            self._call("log_batch", metrics=values)

    def log_artifacts(self, files, artifact_path: str | None = None) -> None:
        for file in files:
            if Path(file).is_file():
                self._call("log_artifact", str(file), artifact_path)
            elif Path(file).is_dir():
                self._call("log_artifacts", str(file), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        self._call("set_terminated", status=status)


class MlflowEpochs(keras.callbacks.Callback):
    """Each epoch's metrics (learning rate included) into an MLflow run, stepped by epoch."""

    def __init__(self, run: MlflowRun):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        self.run.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=int(epoch))

    def __deepcopy__(self, memo):  # KerasTuner copies a search's callbacks: the copy logs to the same run
        return MlflowEpochs(self.run)


def log_evaluation(uri: str | None, run_id: str | None, metrics: dict, files=()) -> None:
    """A finished run's test metrics (scalars, prefixed `test_`) and their files, into its MLflow run."""
    if not uri or not run_id:
        return
    run = MlflowRun(uri, "", run_id=run_id)
    run.log_metrics({f"test_{k}": v for k, v in metrics.items()})
    run.log_artifacts(files)
    run.end()
