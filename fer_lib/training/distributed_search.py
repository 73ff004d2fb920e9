"""A KerasTuner search spread over several processes, devices or machines, on KerasTuner's own engine.

KerasTuner runs distributed when three variables are set: KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT (where the chief's gRPC oracle listens) and KERASTUNER_TUNER_ID
("chief" for the process that holds the oracle, any other name for a worker). The chief
hands out trials and keeps the search's state; each worker builds and trains the trials it
is given. `run_distributed_search` starts a chief and N workers on this machine;
`python -m fer_lib.training.distributed_search worker ...` is one process of such a search, which
is how workers on other machines or GPUs join (docs/pipeline.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fer_lib.errors import FerError

# How long a worker may run on after the chief ended the search (saving its last files takes seconds).
WORKER_GRACE_SECONDS = 120.0
TRIALS_LOG_SUFFIX = ".trials"  # logs/<tuner id>.trials: the trial ids that process trained, one a line


@dataclass
class SearchSettings:
    """What every process of one search must agree on."""

    data: str
    directory: str
    project: str
    tuner: str = "random"
    search_space: str = "strong"  # tuning.DEFAULT_SEARCH_SPACE, as for fer tune
    max_trials: int = 10
    max_epochs: int = 3
    batch_size: int = 64
    max_train_images: int | None = None
    seed: int = 1234
    label_mode: str = "majority"  # FER+: what the trials train towards (fer_lib.data.votes)
    majority_rule: str = "official"
    tensorboard: bool = True  # each trial logs to TensorBoard in its folder
    mlflow_uri: str | None = None  # each trial an MLflow child run of `mlflow_parent`
    mlflow_parent: str | None = None

    def arguments(self) -> list[str]:
        return [f"--{key.replace('_', '-')}={value}" for key, value in asdict(self).items() if value is not None]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_for_port(host: str, port: int, chief: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chief.poll() is not None:
            raise FerError(f"the search's chief stopped before it listened (exit {chief.returncode}); see {log}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.5)
    raise FerError(f"the search's chief did not listen on {host}:{port} within {timeout:.0f} s; see {log}")


def run_distributed_search(settings: SearchSettings, workers: int, host: str = "127.0.0.1", port: int | None = None,
                           worker_env: list[dict[str, str]] | None = None, timeout: float | None = None) -> Path:
    """Run a search with a chief and `workers` worker processes here; return the search's folder.

    `worker_env` adds variables to each worker (e.g. CUDA_VISIBLE_DEVICES, one GPU each).
    Each process's output goes to <search folder>/logs/<tuner id>.log.
    """
    if workers < 1:
        raise FerError(f"workers must be at least 1, got {workers}")
    port = port or free_port(host)
    project_dir = Path(settings.directory) / settings.project
    logs = project_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "fer_lib.training.distributed_search", "worker", *settings.arguments()]
    base_env = {**os.environ, "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port),
                "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}

    def start(tuner_id: str, extra: dict | None = None) -> subprocess.Popen:
        with open(logs / f"{tuner_id}.log", "w") as log:  # the process writes to its own copy of the file
            return subprocess.Popen(command, env={**base_env, **(extra or {}), "KERASTUNER_TUNER_ID": tuner_id},
                                    stdout=log, stderr=subprocess.STDOUT)

    chief = start("chief")
    processes = {"chief": chief}
    try:
        _wait_for_port(host, port, chief, logs / "chief.log")
        for index in range(workers):
            extra = worker_env[index] if worker_env and index < len(worker_env) else None
            processes[f"tuner{index}"] = start(f"tuner{index}", extra)
        deadline = None if timeout is None else time.monotonic() + timeout
        chief.wait(timeout=None if deadline is None else max(1.0, deadline - time.monotonic()))
        idle = _wait_for_workers(processes, chief.returncode, deadline)
    except subprocess.TimeoutExpired:
        raise FerError(f"the search did not finish within {timeout:.0f} s; its processes were stopped, see {logs}") from None
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    failed = {tuner_id: p.returncode for tuner_id, p in processes.items() if p.returncode != 0 and tuner_id not in idle}
    if failed:
        names = ", ".join(f"{tuner_id} (exit {code})" for tuner_id, code in failed.items())
        raise FerError(f"search process(es) {names} failed; see their logs in {logs}")
    return project_dir


def _wait_for_workers(processes: dict[str, subprocess.Popen], chief_code: int, deadline: float | None) -> set[str]:
    """Wait for the workers once the chief has ended; return those stopped idle.

    The chief ends when every trial has ended and the workers it knows of were told to stop. A worker
    that had not reached it by then (a slow start, with fewer trials than workers) never hears of it:
    KerasTuner's client waits up to an hour for a chief that is gone. Such a worker trained nothing,
    so after WORKER_GRACE_SECONDS it is stopped, and its exit is not a failure (unless the chief failed).
    """
    idle = set()
    for tuner_id, process in processes.items():
        if tuner_id == "chief":
            continue
        left = WORKER_GRACE_SECONDS if deadline is None else max(1.0, min(deadline - time.monotonic(), WORKER_GRACE_SECONDS))
        try:
            process.wait(timeout=left)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=30)
            if chief_code == 0:
                idle.add(tuner_id)
    return idle


def reload_search(settings: SearchSettings, num_classes: int):
    """The search `run_distributed_search` ran, reloaded here (outside it) from the state its chief saved.

    A KerasTuner tuner reloads a search only if its own <tuner id>.json is in the search's folder, and a
    process outside the search has the id "tuner0" (KERASTUNER_TUNER_ID unset): that file is there only if
    the worker tuner0 trained a trial. With one trial and two workers, tuner1 often trains it, and the search
    then read back empty ("no trial ... completed"). The chief writes chief.json as it starts serving, so the
    search is read as the chief; without KERASTUNER_ORACLE_IP that id only names the file, nothing connects.
    """
    from fer_lib.training.tuning import make_tuner

    before = os.environ.get("KERASTUNER_TUNER_ID")
    os.environ["KERASTUNER_TUNER_ID"] = "chief"
    try:
        return make_tuner(settings.tuner, settings.directory, settings.project, max_trials=settings.max_trials,
                          max_epochs=settings.max_epochs, seed=settings.seed, search_space=settings.search_space,
                          num_classes=num_classes)
    finally:
        if before is None:
            del os.environ["KERASTUNER_TUNER_ID"]
        else:
            os.environ["KERASTUNER_TUNER_ID"] = before


def trials_run_by(project_dir: Path) -> dict[str, list[str]]:
    """{tuner id: the trial ids it trained}, from the processes' trial logs."""
    return {log.name[: -len(TRIALS_LOG_SUFFIX)]: log.read_text().split()
            for log in sorted((Path(project_dir) / "logs").glob(f"*{TRIALS_LOG_SUFFIX}"))}


def _log_trials(tuner, log: Path) -> None:
    """Append each trial id this process trains to `log`, so that who ran what can be checked."""
    run_trial = tuner.run_trial

    def logged(trial, *args, **kwargs):
        with open(log, "a") as out:
            out.write(f"{trial.trial_id}\n")
        return run_trial(trial, *args, **kwargs)

    tuner.run_trial = logged


def worker(settings: SearchSettings) -> None:
    """One process of a distributed search: the chief serves trials, a worker trains them."""
    from fer_lib.data.dataset import load_dataset
    from fer_lib.training.precision import set_precision
    from fer_lib.training.tuning import make_tuner, run_search

    if "KERASTUNER_TUNER_ID" not in os.environ:
        raise FerError("KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT must be set "
                       "(run_distributed_search sets them)")
    set_precision("auto")
    dataset = load_dataset(settings.data, seed=settings.seed)
    tuner = make_tuner(settings.tuner, settings.directory, settings.project, max_trials=settings.max_trials,
                       max_epochs=settings.max_epochs, seed=settings.seed, search_space=settings.search_space,
                       num_classes=len(dataset.classes))
    log = Path(settings.directory) / settings.project / "logs" / f"{os.environ['KERASTUNER_TUNER_ID']}{TRIALS_LOG_SUFFIX}"
    log.parent.mkdir(parents=True, exist_ok=True)
    _log_trials(tuner, log)
    run_search(tuner, dataset, epochs=settings.max_epochs, batch_size=settings.batch_size,
               max_train_images=settings.max_train_images, seed=settings.seed, verbose=0,
               label_mode=settings.label_mode, majority_rule=settings.majority_rule, tensorboard=settings.tensorboard,
               mlflow_uri=settings.mlflow_uri, mlflow_parent=settings.mlflow_parent)


def _settings_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_lib.training.distributed_search worker",
                                     description="One process of a distributed KerasTuner search (see the module docstring).")
    numbers = ("max_trials", "max_epochs", "batch_size", "max_train_images", "seed")
    for field in fields(SearchSettings):
        kind = int if field.name in numbers else (lambda text: text == "True") if field.name == "tensorboard" else str
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, required=field.name in ("data", "directory", "project"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "worker":
        print("usage: python -m fer_lib.training.distributed_search worker --data D --directory DIR --project NAME [...]",
              file=sys.stderr)
        return 2
    values = {k: v for k, v in vars(_settings_parser().parse_args(argv[1:])).items() if v is not None}
    try:
        worker(SearchSettings(**values))
    except FerError as error:
        print(f"fer search {os.environ.get('KERASTUNER_TUNER_ID', '')}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from fer_lib.backend import import_backend_quietly

    import_backend_quietly()
    sys.exit(main())
