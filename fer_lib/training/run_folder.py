"""A training run's output folder: what a finished run publishes, and the resume state while it runs.

A finished run leaves in its output folder `model.keras` (best val_accuracy, with its
class list inside), `history.csv`, `config.json`, `data.json` and `train_summary.json`,
each written atomically. While it runs, everything in progress lives in `<out>/.resume/`:
the run's config, the best checkpoint so far, `history.csv` (updated every epoch) and,
after every epoch, the training state (weights, optimizer, callback counters), so an
interrupted run continues from its last completed epoch with `resume=True`
(`fer train --resume`), and the folder's published files always belong together.
`overwrite=True` keeps the replaced run as `model.previous.keras` with its metrics, config,
history, data and summary beside it (`metrics.previous.json`, `config.previous.json`, ...).
A run stopped by Ctrl-C leaves a file `INTERRUPTED` saying so and how to go on, so that the
folder never passes for a finished run (a replaced run's files may still be there); the run
that finishes it, or starts over, removes it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from fer_lib.artifacts import check_writable, copy_atomic, write_json_atomic, write_text_atomic
from fer_lib.backend import keras
from fer_lib.data.dataset import FerDataset
from fer_lib.errors import FerError
from fer_lib.models.saving import save_model
from fer_lib.training.config import TrainConfig

MODEL_FILE = "model.keras"
PREVIOUS_MODEL_FILE = "model.previous.keras"
METRICS_FILE = "metrics.json"
PREVIOUS_METRICS_FILE = "metrics.previous.json"
HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
SUMMARY_FILE = "train_summary.json"
RESUME_DIR = ".resume"
STATE_FILE = "state.json"
BEST_CHECKPOINT = "best.keras"  # in RESUME_DIR
TEACHER_FILE = "teacher_probabilities.npy"  # in RESUME_DIR: a resumed run keeps its targets without the teacher
INTERRUPTED_FILE = "INTERRUPTED"  # a run stopped by Ctrl-C: what it left and how to go on
REPLACED_DIR = "replaced"  # in RESUME_DIR: the finished run that --overwrite replaces, copied when it starts
# A finished run's files and the names they keep once a new run replaces them.
PREVIOUS_NAMES = {MODEL_FILE: PREVIOUS_MODEL_FILE, METRICS_FILE: PREVIOUS_METRICS_FILE,
                  CONFIG_FILE: "config.previous.json", HISTORY_FILE: "history.previous.csv",
                  DATA_FILE: "data.previous.json", SUMMARY_FILE: "train_summary.previous.json"}


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
        (out_dir / INTERRUPTED_FILE).unlink(missing_ok=True)  # that run is not continued: its note goes with it
    check_writable(out_dir / RESUME_DIR)
    if overwrite and (out_dir / MODEL_FILE).exists():
        _keep_replaced_run(out_dir)
    return state if resume else None


def interruption(out_dir: Path) -> str:
    """What a Ctrl-C left in `out_dir` and how to go on, in one line: "interrupted after epoch 3 of 6; continue with: ..."."""
    from shlex import quote

    try:
        state = read_resume_state(out_dir)
    except FerError:
        state = None
    if state is not None:
        return (f"interrupted after epoch {state['epochs_done']} of {state.get('epochs', '?')}; "
                f"continue with: fer train --resume --out {quote(str(out_dir))}")
    if (out_dir / RESUME_DIR).is_dir():
        return "interrupted before its first epoch ended, so there is nothing to resume; run it again to start over"
    return f"interrupted before training started; nothing in {out_dir} was changed"


def mark_interrupted(out_dir: Path) -> None:
    """Leave `out_dir`/INTERRUPTED, saying the run there stopped unfinished and how to go on (only where it started)."""
    out_dir = Path(out_dir)
    if not (out_dir / RESUME_DIR).is_dir():
        return
    lines = [f"This training run was {interruption(out_dir)}.", f"Its progress is kept in {RESUME_DIR}/."]
    if (out_dir / MODEL_FILE).exists():
        lines.append(f"{MODEL_FILE} and the other files here belong to the finished run it was replacing.")
    try:
        write_text_atomic(out_dir / INTERRUPTED_FILE, "\n".join(lines) + "\n")
    except FerError:
        pass  # a folder that cannot take the note still holds the resume state, which fer train reports


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


def changed_settings(given: dict, saved: dict) -> list[str]:
    """The config keys whose values differ, less where the run's data and folder are, how many devices share
    it and where it is tracked (where it runs, not what it learns: a run may resume with more or fewer
    devices, or with its TensorBoard or MLflow logging turned on or off)."""
    return [k for k in given if k not in ("data", "out", "data_parallel", "tensorboard", "mlflow_uri") and given[k] != saved.get(k)]


def first_changed_setting(config: TrainConfig, saved_path: Path, unreadable: str) -> tuple[str, object, object] | None:
    """The first setting in which `config` differs from the config saved at `saved_path`, as (key, saved value,
    given value), or None; a FerError ending in `unreadable` (what that means, what to do) if the file cannot be read.

    Shared by resuming an interrupted run and keeping a finished one, which word their errors differently."""
    try:
        saved = TrainConfig.load(saved_path).to_dict()
    except (OSError, ValueError, TypeError):
        raise FerError(f"{saved_path}: missing or unreadable, {unreadable}") from None
    given = config.to_dict()
    changed = changed_settings(given, saved)
    return (changed[0], saved.get(changed[0]), given[changed[0]]) if changed else None


def check_same_run(config: TrainConfig, out_dir: Path, state: dict, dataset: FerDataset) -> None:
    """A resumed run must have the interrupted run's settings and data (which may have moved, as may the run)."""
    saved_path = out_dir / RESUME_DIR / CONFIG_FILE
    changed = first_changed_setting(config, saved_path, "so the interrupted run cannot be resumed; pass --overwrite to "
                                                        "start over")
    if changed:
        k, saved, given = changed
        raise FerError(f"{saved_path}: the interrupted run used {k}={saved!r}, this one asks for {k}={given!r}; "
                       "resume with the same settings (fer train --resume reads them from there) or pass --overwrite")
    if state.get("data") and state["data"] != data_fingerprint(dataset.info()):
        raise FerError(f"{dataset.source}: the data changed since the interrupted run in {out_dir} (split sizes "
                       f"{state['data']['sizes']} then, {dataset.info()['sizes']} now); resume on the same data or pass --overwrite")


def data_fingerprint(info: dict) -> dict:
    return {"sizes": info["sizes"], "class_counts": info["class_counts"]}


def history_csv(rows: list[dict]) -> str:
    """The history as CSVLogger writes it: `epoch`, then the metrics in name order."""
    keys = sorted({k for row in rows for k in row if k != "epoch"})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for row in rows:
        writer.writerow([row["epoch"], *(row.get(k, "NA") for k in keys)])
    return buffer.getvalue()


def publish_run(out_dir: Path, model: keras.Model, checkpoint_best: float | None, config: TrainConfig, dataset: FerDataset,
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
        if checkpoint_best is not None and model_file.exists():
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
