"""Running the four notebooks in order with papermill and rendering them to HTML reports.

The steps, and the files each notebook reads and writes, are declared in
`fer_lib.reporting.steps`. Each run gets its own timestamped folder under `out`;
`out/latest` points at the newest run that finished, and moves only when every notebook
succeeded and wrote the files its step declares.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from fer_lib import paths
from fer_lib.artifacts import write_json_atomic, write_text_atomic
from fer_lib.errors import FerError, Interrupted
from fer_lib.reporting.pages import CONFIG, landing_page, read_json_or_empty, render_html, report_links
from fer_lib.reporting.steps import METRICS, MODEL, STEPS, Step, file_parameters

NOTEBOOKS = tuple(step.notebook for step in STEPS)
KERNEL_NAME = "fer-lib"
# Budgets per profile; the command line may override epochs and trials. `epochs` None: the recipe's own
# (times `epochs_scale`), `early_stopping_patience` None: the recipe's own; `time_budget` bounds the final
# training in seconds (training.TimeBudget fits the epochs and the cosine schedule to it) and
# `tuner_time_budget` the search (no trial starts after it); `tta` auto: ten-crop for crop recipes, else flip.
PROFILES = {
    "smoke": {
        # Four random-search trials of small CNNs with batch norm (search space "demo"), which learn the
        # generated faces in their 3 epochs, so the demo's trials differ and its winner is one (the seed
        # CNN's one trial sat at chance there). The search takes longer than that trial did and the small
        # winner's training less than the seed CNN's: 107 s in all against 120 s before on this project's
        # Intel Xeon. Small batches give the few hundred generated faces enough steps to learn.
        "epochs": 8, "tuner": "random", "max_trials": 4, "tuner_max_epochs": 3, "batch_size": 16, "tta": "flip",
        "tuning_max_train_images": None, "max_train_images": None, "early_stopping_patience": 5,
        "search_space": "demo", "epochs_scale": 1.0, "time_budget": None, "tuner_time_budget": None,
    },
    # Two CPU cores, at most 3 hours for the whole pipeline on FER2013 (docs/pipeline.md has the estimate):
    # the search's 10 random trials of 6 epochs on 8,000 faces are 480,000 training images, 20-53 min at
    # 150-400 images/s, plus building and validating each trial (no trial starts after 50 min); the
    # winner then trains on all of train for at most 100 min (time_budget), its cosine fitted to the
    # epochs that fit (at most its recipe's 60 or 80); about 10 min for the other notebooks.
    "full": {
        "epochs": None, "tuner": "random", "max_trials": 10, "tuner_max_epochs": 6, "batch_size": 64, "tta": "auto",
        "tuning_max_train_images": 8000, "max_train_images": None, "early_stopping_patience": None,
        "search_space": "strong", "epochs_scale": 1.0, "time_budget": 6000, "tuner_time_budget": 3000,
    },
    # A GPU (chosen by auto when the Keras backend sees one): 30 trials of 20 epochs on all of train,
    # the GPU presets among them, at most 2 hours of search; the winner trains twice its recipe's
    # epochs (the long recipe), at most 4 hours. Several GPUs on JAX train it data-parallel.
    "gpu": {
        "epochs": None, "tuner": "random", "max_trials": 30, "tuner_max_epochs": 20, "batch_size": 64, "tta": "auto",
        "tuning_max_train_images": None, "max_train_images": None, "early_stopping_patience": None,
        "search_space": "strong_gpu", "epochs_scale": 2.0, "time_budget": 14400, "tuner_time_budget": 7200,
    },
}


class PipelineError(FerError):
    """A notebook failed; the message names the notebook, the cell and the error."""


@dataclass
class PipelineConfig:
    """One pipeline run; saved as pipeline_config.json in the run folder."""

    data: str | None = None
    profile: str = "auto"  # auto: smoke on generated data; on real data gpu where the Keras backend sees a GPU, else full
    out: str = str(paths.REPORTS_DIR)
    with_code: bool = False
    seed: int = 1234
    epochs: int | None = None
    trials: int | None = None
    tuner: str | None = None
    preset: str = ""  # train this named preset (fer_lib.training.presets) instead of the search's best
    search_space: str | None = None  # None: the profile's; strong, strong_gpu, cnn or presets (fer_lib.training.tuning)
    tta: str | None = None  # test-time augmentation reported beside the plain metrics: none, flip, tencrop, auto
    tuner_overwrite: bool = False
    label_mode: str | None = None  # FER+ only: what the votes train towards (fer_lib.data.votes); None: majority
    majority_rule: str = "official"  # FER+ only: the majority labels' rule
    fer2013_data: str | None = None  # FER+ only: FER2013, whose labels notebook 01 compares with the votes
    tensorboard: bool = True  # the search's trials and the training log to TensorBoard in their folders
    mlflow_uri: str | None = None  # an MLflow tracking URI for them and for the reports (fer_lib.training.mlflow_tracking)
    notebooks_dir: str = str(paths.NOTEBOOKS_DIR)


def validate(config: PipelineConfig) -> None:
    """Reject bad parameters before any notebook starts, one line each."""
    from fer_lib.training.tuning import TUNERS

    if config.profile not in ("auto", *PROFILES):
        raise FerError(f"unknown profile {config.profile!r}; choose one of auto, {', '.join(PROFILES)}")
    for name in ("epochs", "trials"):
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise FerError(f"{name} must be a positive integer, got {value!r}")
    if config.tuner is not None and config.tuner not in TUNERS:
        raise FerError(f"unknown tuner {config.tuner!r}; choose one of {', '.join(TUNERS)}")
    if config.data is not None and not Path(config.data).expanduser().exists():
        raise FerError(f"{config.data}: data path does not exist; pass an existing --data folder or CSV")
    if config.preset:
        from fer_lib.training.presets import get_preset

        get_preset(config.preset)
    from fer_lib.evaluation.prediction import TTA_MODES
    from fer_lib.training.tuning import SEARCH_SPACES

    if config.tta is not None and config.tta not in (*TTA_MODES, "auto"):
        raise FerError(f"unknown tta {config.tta!r}; choose one of {', '.join(TTA_MODES)}, auto")
    if config.search_space is not None and config.search_space not in SEARCH_SPACES:
        raise FerError(f"unknown search space {config.search_space!r}; choose one of {', '.join(SEARCH_SPACES)}")
    _validate_labels(config)
    check_notebooks(config.notebooks_dir, "run from a full checkout")


def _validate_labels(config: PipelineConfig) -> None:
    from fer_lib.data.dataset import dataset_classes
    from fer_lib.data.votes import LABEL_MODES, MAJORITY_RULES

    if config.label_mode is not None and config.label_mode not in LABEL_MODES:
        raise FerError(f"unknown label mode {config.label_mode!r}; choose one of {', '.join(LABEL_MODES)}")
    if config.majority_rule not in MAJORITY_RULES:
        raise FerError(f"unknown majority rule {config.majority_rule!r}; choose one of {', '.join(MAJORITY_RULES)}")
    votes = config.data is not None and len(dataset_classes(config.data)) == 8
    if config.label_mode not in (None, "majority") and not votes:
        raise FerError(f"label mode {config.label_mode} trains on FER+'s votes; pass FER+ data (--data with "
                       "FER2013Train/ and label.csv, or fer2013new.csv) or leave --label-mode out")
    if config.fer2013_data is not None and not Path(config.fer2013_data).expanduser().exists():
        raise FerError(f"{config.fer2013_data}: --fer2013-data does not exist; pass FER2013's folder or fer2013.csv")


def check_notebooks(notebooks_dir: str | Path, advice: str) -> None:
    """FerError naming the pipeline's notebooks missing from `notebooks_dir`, with `advice`."""
    missing = [n for n in NOTEBOOKS if not (Path(notebooks_dir) / f"{n}.ipynb").is_file()]
    if missing:
        raise FerError(f"{notebooks_dir}: notebook(s) {', '.join(missing)} missing; {advice}")


GPU_PROBE = """
from fer_lib.backend import keras
backend = keras.backend.backend()
try:
    if backend == "jax":
        import jax
        gpus = len([d for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")])
    elif backend == "tensorflow":
        import tensorflow as tf
        gpus = len(tf.config.list_physical_devices("GPU"))
    elif backend == "torch":
        import torch
        gpus = torch.cuda.device_count()
    else:
        gpus = 0
except Exception:
    gpus = 0
print(backend, gpus)
"""


@lru_cache(maxsize=1)
def backend_gpus() -> tuple[str, int]:
    """(the Keras backend, how many GPUs it sees), asked in a child process: the pipeline itself then
    neither imports the backend nor holds GPU memory its notebooks' kernels need."""
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    try:
        done = subprocess.run([sys.executable, "-c", GPU_PROBE], env=env, capture_output=True, text=True, timeout=300)
        backend, gpus = done.stdout.split()[-2:]
        return backend, int(gpus)
    except (OSError, ValueError, subprocess.SubprocessError):
        return os.environ.get("KERAS_BACKEND", "tensorflow"), 0


def resolve_data(config: PipelineConfig) -> tuple[Path, bool, str]:
    """(data path, synthetic?, profile): explicit data, else real data for full (gpu where the Keras
    backend sees a GPU), else demo faces."""
    from fer_lib.data.dataset import demo_dataset, resolve_data_or_demo

    if config.profile == "smoke" and config.data is None:
        data, synthetic = demo_dataset(), True
    else:
        data, synthetic = resolve_data_or_demo(config.data)
    # Absolute, because the notebooks run inside the run folder.
    data = data.resolve()
    if not synthetic:
        from fer_lib.data.synthetic import is_synthetic_dataset

        synthetic = is_synthetic_dataset(data)
    if config.profile != "auto":
        profile = config.profile
    else:
        profile = "smoke" if synthetic else ("gpu" if backend_gpus()[1] > 0 else "full")
    return data, synthetic, profile


def notebook_parameters(config: PipelineConfig, run_dir: Path, data: Path, synthetic: bool, profile: str) -> dict:
    """The values injected into every notebook's `parameters` cell."""
    budget = dict(PROFILES[profile])
    if config.epochs is not None:
        budget["epochs"] = config.epochs
        budget["tuner_max_epochs"] = min(budget["tuner_max_epochs"], config.epochs)
    if config.trials is not None:
        budget["max_trials"] = config.trials
    if config.tuner is not None:
        budget["tuner"] = config.tuner
    if config.tta is not None:
        budget["tta"] = config.tta
    if config.search_space is not None:
        budget["search_space"] = config.search_space
    # Several GPUs on JAX: the final training spreads each batch over them (keras.distribution.DataParallel).
    backend, gpus = backend_gpus() if profile == "gpu" else ("", 0)
    return {
        "data": str(data),
        "run_dir": str(run_dir),
        "profile": profile,
        "synthetic": synthetic,
        "seed": config.seed,
        "preset": config.preset,
        "tuner_dir": str(run_dir.parent / "tuning"),
        "tuner_overwrite": config.tuner_overwrite,
        "data_parallel": backend == "jax" and gpus > 1,
        "label_mode": config.label_mode or "majority",
        "majority_rule": config.majority_rule,
        "fer2013_data": str(Path(config.fer2013_data).expanduser().resolve()) if config.fer2013_data else None,
        "tensorboard": config.tensorboard,
        "mlflow_uri": config.mlflow_uri,
        **budget,
        **file_parameters(),
    }


def evaluation_tta(tta: str, model_dir: str | Path) -> str:
    """The test-time augmentation notebook 04 reports: `tta`, or for auto ten-crop when the trained recipe
    (its config.json in `model_dir`) classifies crops or learnt shifted and zoomed faces, as the fer_cnn
    family and the transfer presets do; flip for the plain CNNs, which train with flips only and for which
    ten-crop scored below no TTA (docs/results/pipeline_full_cnn.json)."""
    if tta != "auto":
        return tta
    config = read_json_or_empty(Path(model_dir) / "config.json")
    augment = config.get("augment")
    if augment is None:  # the model's default augmentation: shifts and zoom for these two
        return "tencrop" if config.get("model") in ("fer_cnn", "efficientnet_lite") else "flip"
    return "tencrop" if any(augment.get(k) for k in ("crop", "shift", "zoom", "scale_jitter")) else "flip"


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def _local_kernel_manager(socket_dir: Path):
    """A kernel manager talking over IPC sockets in `socket_dir` instead of unencrypted TCP ports.

    Besides being private to this user, it keeps ipykernel's TCP warning off the terminal.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class LocalKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            return str(socket_dir / "kernel")

    return LocalKernelManager


def _execute(notebook: Path, executed: Path, parameters: dict, cwd: Path) -> None:
    import tempfile

    import papermill as pm

    # Each notebook gets only the parameters its `parameters` cell declares.
    declared = pm.inspect_notebook(str(notebook))
    parameters = {k: v for k, v in parameters.items() if k in declared}
    try:
        with tempfile.TemporaryDirectory(prefix="fer-kernel-") as socket_dir:
            pm.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name=_kernel_name(),
                                cwd=str(cwd), progress_bar=False, log_output=False,
                                kernel_manager_class=_local_kernel_manager(Path(socket_dir)))
    except pm.PapermillExecutionError as exc:
        if exc.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel too (same terminal) before papermill
            raise KeyboardInterrupt from None
        raise PipelineError(
            f"{notebook.name} failed in cell {exc.exec_count} (`{_failed_line(exc)[:80]}`): {exc.ename}: {exc.evalue}. "
            f"Partial notebook kept at {executed}"
        ) from None
    except Exception as exc:  # the kernel died (e.g. out of memory) or did not answer in time
        raise PipelineError(f"{notebook.name} stopped: {type(exc).__name__}: {exc}. "
                            f"Partial notebook kept at {executed}") from None


def check_outputs(step: Step, run_dir: Path, parameters: dict) -> None:
    """Raise PipelineError, naming the notebook and the file, when a file its step declares was not written."""
    for file in step.writes:
        if file.expected(parameters) and not (run_dir / file.path).is_file():
            raise PipelineError(f"{step.notebook}.ipynb finished without writing {file.path} ({file.description}), "
                                "which fer_lib.reporting.steps declares and the later steps need")


def _move_latest(out: Path, run_dir: Path) -> None:
    """Point out/latest at run_dir with one atomic rename of a fresh symlink."""
    latest = out / "latest"
    if latest.exists() and not latest.is_symlink():
        raise FerError(f"{latest} is a real folder, not the pipeline's link; move it away and run again")
    temporary = out / f".latest.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(temporary, latest)


def _failed_line(error) -> str:
    """The cell's line that raised, from IPython's traceback ("Cell In[3], line 5"); else its first line."""
    import re

    lines = error.source.splitlines()
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback or []))
    found = re.search(r"Cell In\[\d+\], line (\d+)", traceback)
    if found and 0 < int(found.group(1)) <= len(lines):
        return lines[int(found.group(1)) - 1].strip()
    return next((line for line in lines if line.strip()), "").strip()


STATUS = "status.json"


def resumable_run(out: str | Path, run_dir: str | Path | None = None) -> Path:
    """`run_dir`, or the newest run folder in `out` that did not finish; FerError when there is none to resume."""
    if run_dir is not None:
        run_dir = Path(run_dir).expanduser().resolve()
        if not (run_dir / CONFIG).is_file():
            raise FerError(f"{run_dir}: not a pipeline run folder (no {CONFIG}); pass one under reports/")
        if read_json_or_empty(run_dir / STATUS).get("status") == "succeeded":
            raise FerError(f"{run_dir}: this run finished; there is nothing to resume")
        return run_dir
    out = Path(out).expanduser().resolve()
    runs = sorted((d for d in out.iterdir() if d.is_dir() and not d.is_symlink() and (d / CONFIG).is_file()),
                  key=lambda d: d.name) if out.is_dir() else []
    # Only a run newer than the newest that succeeded: an older failure was left behind on purpose.
    newest = next((i for i in range(len(runs) - 1, -1, -1) if read_json_or_empty(runs[i] / STATUS).get("status") == "succeeded"), -1)
    unfinished = runs[newest + 1:]
    if not unfinished:
        raise FerError(f"{out}: no unfinished pipeline run newer than the last one that finished; start one with "
                       "fer pipeline, or name an older run folder after --resume")
    return unfinished[-1]


def _newest_write(folder: Path) -> float:
    """When anything under `folder` was last written (seconds since the epoch)."""
    return max((f.stat().st_mtime for f in folder.rglob("*") if f.is_file()), default=folder.stat().st_mtime)


def run_pipeline(config: PipelineConfig, progress: Callable[[str], None] = print, resume: str | Path | bool = False) -> Path:
    """Run notebooks 01-04, render the reports and the landing page; return the run folder.

    `resume` (True: the newest unfinished run in `config.out`; or a run folder) carries on an
    interrupted run with its saved parameters: finished notebooks are kept, the interrupted one
    runs again (the search resumes from its tuner state, the training from its last epoch), and
    the run's time counts every attempt.
    """
    if resume:
        return _resume_pipeline(config, progress, None if resume is True else resume)
    validate(config)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the notebook kernels
    data, synthetic, profile = resolve_data(config)
    if not synthetic:
        # Read (and cache for the notebooks) the data now: a folder that holds no faces fails in one line
        # here, not in notebook 01 after its kernel has started and a run folder exists.
        from fer_lib.data.dataset import load_dataset

        load_dataset(data, seed=config.seed)
    out = Path(config.out).expanduser().resolve()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = out / f"{stamp}-{profile}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = out / f"{stamp}-{profile}-{suffix}"
    try:
        (run_dir / "notebooks").mkdir(parents=True)
    except OSError as exc:
        raise FerError(f"{out}: cannot create the run folder ({exc.strerror}); choose a writable --out") from None
    if synthetic:
        progress("*** Using GENERATED DEMO DATA (synthetic faces), not FER2013: the reports say nothing about real faces. ***")
    progress(f"Data: {data}\nProfile: {profile}\nRun folder: {run_dir}")
    parameters = notebook_parameters(config, run_dir, data, synthetic, profile)
    write_json_atomic(run_dir / CONFIG, {**asdict(config), "resolved": parameters})
    return _run_steps(run_dir, out, parameters, config.notebooks_dir, config.with_code, progress, {}, [])


def _resume_pipeline(config: PipelineConfig, progress: Callable[[str], None], run_dir: str | Path | None) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_dir = resumable_run(Path(config.out).expanduser().resolve(), run_dir)
    out = run_dir.parent  # where its `latest` belongs, wherever the run folder is now
    saved = read_json_or_empty(run_dir / CONFIG)
    parameters = saved.get("resolved")
    if not parameters:
        raise FerError(f"{run_dir / CONFIG}: unreadable, so the run cannot be resumed; start a new one with fer pipeline")
    if not Path(parameters["data"]).exists():
        raise FerError(f"{parameters['data']}: the run's data is gone; put it back there to resume {run_dir.name}")
    notebooks_dir = saved.get("notebooks_dir", config.notebooks_dir)
    check_notebooks(notebooks_dir, "the run needs the notebooks it started with")
    (run_dir / "notebooks").mkdir(exist_ok=True)
    status = read_json_or_empty(run_dir / STATUS)
    timings = dict(status.get("timings_s", {}))
    attempts = list(status.get("attempts", []))
    if timings and not attempts:  # written before attempts were kept: at least its notebooks' time
        attempts = [{"seconds": round(sum(timings.values()), 1), "started_unix": None}]
    if attempts and attempts[-1].get("open"):
        # Killed without a word (a machine's time ran out): it ran until its last write.
        attempts[-1] = {"seconds": round(max(0.0, _newest_write(run_dir) - attempts[-1]["started_unix"]), 1),
                        "started_unix": attempts[-1]["started_unix"]}
    done = [name for name in NOTEBOOKS if name in timings]
    progress(f"Resuming {run_dir} ({', '.join(done) or 'no notebook'} done; "
             f"{sum(a['seconds'] for a in attempts):.0f} s spent in {len(attempts)} earlier attempt(s))")
    moved_from = Path(parameters.get("run_dir", run_dir))
    parameters = {**parameters, "run_dir": str(run_dir), "resume_training": True,
                  # Wiping the search again would throw away what the first attempt searched.
                  "tuner_overwrite": False}
    if parameters.get("tuner_dir") == str(moved_from.parent / "tuning"):
        parameters["tuner_dir"] = str(run_dir.parent / "tuning")  # moved with its run
    return _run_steps(run_dir, out, parameters, notebooks_dir, bool(saved.get("with_code", config.with_code)),
                      progress, timings, attempts)


def _run_steps(run_dir: Path, out: Path, parameters: dict, notebooks_dir: str, with_code: bool,
               progress: Callable[[str], None], timings: dict[str, float], attempts: list[dict]) -> Path:
    """Run the steps not yet in `timings`, render everything and move `latest`; status.json keeps the
    finished notebooks and the time of every attempt, so that a killed run can be resumed."""
    started, started_unix = time.perf_counter(), time.time()

    def save_status(**extra) -> None:
        attempt = {"seconds": round(time.perf_counter() - started, 1), "started_unix": started_unix, "open": True}
        write_json_atomic(run_dir / STATUS, {"status": "running", "timings_s": timings,
                                             "attempts": [*attempts, attempt], **extra})

    for index, step in enumerate(STEPS, start=1):
        name = step.notebook
        if name in timings:
            continue
        progress(f"[{index}/{len(STEPS)}] {name} ...")
        save_status(running_notebook=name)
        begin = time.perf_counter()
        executed = run_dir / "notebooks" / f"{name}.ipynb"
        try:
            _execute(Path(notebooks_dir) / f"{name}.ipynb", executed, parameters, run_dir)
            check_outputs(step, run_dir, parameters)
        except (PipelineError, KeyboardInterrupt) as exc:
            status = "failed" if isinstance(exc, PipelineError) else "interrupted"
            attempt = {"seconds": round(time.perf_counter() - started, 1), "started_unix": started_unix}
            write_json_atomic(run_dir / STATUS, {"status": status, "failed_notebook": name, "timings_s": timings,
                                                 "attempts": [*attempts, attempt]})
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(f"fer pipeline: interrupted in {name}; continue with: "
                                  f"fer pipeline --resume {shlex.quote(str(run_dir))}") from None
            raise
        timings[name] = round(time.perf_counter() - begin, 1)
        save_status()
        progress(f"[{index}/{len(STEPS)}] {name} done in {timings[name]:.1f} s")

    for index, step in enumerate(STEPS):
        render_html(run_dir / "notebooks" / f"{step.notebook}.ipynb", run_dir / f"{step.notebook}.html", with_code,
                    title=f"{index + 1}. {step.title} \u2014 FER pipeline report", links=report_links(index))
    attempts = [*attempts, {"seconds": round(time.perf_counter() - started, 1), "started_unix": started_unix}]
    summary = {"status": "succeeded", "profile": parameters["profile"], "data": parameters["data"],
               "synthetic": parameters["synthetic"], "timings_s": timings, "attempts": attempts,
               "total_s": round(sum(a["seconds"] for a in attempts), 1)}
    write_json_atomic(run_dir / STATUS, summary)
    write_text_atomic(run_dir / "index.html", landing_page(run_dir, summary, parameters))
    _log_reports(run_dir, parameters.get("mlflow_uri"))
    _move_latest(out, run_dir)
    attempts_text = f" in {len(attempts)} attempts" if len(attempts) > 1 else ""
    progress(f"Reports: {out / 'latest' / 'index.html'} (total {summary['total_s']:.0f} s{attempts_text})")
    return run_dir


def _log_reports(run_dir: Path, mlflow_uri: str | None) -> None:
    """The test metrics and the HTML reports into the MLflow run of the pipeline's training."""
    if not mlflow_uri:
        return
    from fer_lib.training.mlflow_tracking import log_evaluation
    from fer_lib.training.run_folder import SUMMARY_FILE

    run_id = read_json_or_empty(run_dir / Path(MODEL.path).parent / SUMMARY_FILE).get("mlflow_run_id")
    log_evaluation(mlflow_uri, run_id, read_json_or_empty(run_dir / METRICS.path),
                   [run_dir / METRICS.path, run_dir / "index.html", *sorted(run_dir.glob("0*.html"))])
