"""Long runs: interrupted training and tuning resume, nothing finished is overwritten, artifacts land by rename.

Complements tests/cli/test_cli.py (a second `fer train` refuses an existing model.keras) and
tests/reporting/test_pipeline.py (a failing notebook keeps `latest` and the previous reports).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import kaggle_layout, make_image_folders

from fer_lib import models, training
from fer_lib.artifacts import write_json_atomic
from fer_lib.cli import main
from fer_lib.data.dataset import FerDataset, Split, load_dataset
from fer_lib.data.preprocessing import as_model_input
from fer_lib.errors import FerError
from fer_lib.labels import EMOTIONS
from fer_lib.training import trainer
from fer_lib.training.config import TrainConfig
from fer_lib.training.run_folder import RESUME_DIR, STATE_FILE


@pytest.fixture()
def tiny_model(monkeypatch):
    """Registers `tiny`, a 4-filter CNN, so that CLI runs take a second or two."""
    monkeypatch.setitem(models.MODEL_BUILDERS, "tiny", lambda augment=None, seed=None: models.build_cnn(
        (4,), (8,), augment=augment, seed=seed, name="tiny"))
    return "tiny"


class Spy(keras.callbacks.Callback):
    """Records, at the start of each epoch, what a resumed run must restore; raises Ctrl-C at `stop_at`."""

    def __init__(self, callbacks, stop_at=None):
        super().__init__()
        self.callbacks, self.stop_at, self.seen = callbacks, stop_at, {}

    def on_epoch_begin(self, epoch, logs=None):
        def find(kind):
            return next(c for c in self.callbacks if isinstance(c, kind))

        es, plateau, best = find(keras.callbacks.EarlyStopping), find(keras.callbacks.ReduceLROnPlateau), find(training.BestCheckpoint)
        self.seen[epoch] = {
            "early_stopping_wait": es.wait, "early_stopping_best": es.best, "early_stopping_best_epoch": es.best_epoch,
            "plateau_wait": plateau.wait, "plateau_best": plateau.best, "plateau_cooldown": plateau.cooldown_counter,
            "checkpoint_best": best.best,
            "learning_rate": float(self.model.optimizer.learning_rate),
            "iterations": int(self.model.optimizer.iterations),
            "weights": float(np.sum(np.abs(self.model.get_layer("conv1").kernel))),
        }
        if epoch == self.stop_at:
            raise KeyboardInterrupt


@pytest.fixture()
def spies(monkeypatch):
    """Adds a Spy to every training run; set `spies.stop_at` to interrupt the next one."""
    made = []
    original = trainer.make_callbacks

    def with_spy(*args, **kwargs):
        callbacks = original(*args, **kwargs)
        made.append(Spy(callbacks, stop_at=getattr(with_spy, "stop_at", None)))
        with_spy.stop_at = None
        return [*callbacks, made[-1]]

    monkeypatch.setattr(trainer, "make_callbacks", with_spy)
    with_spy.made = made
    return with_spy


def read_history(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "history.csv")


def val_accuracy_of(model_path: Path, dataset) -> float:
    model = models.load_model(model_path)
    predicted = np.argmax(model.predict(as_model_input(dataset.val.images), verbose=0), axis=1)
    return float(np.mean(predicted == dataset.val.labels))


@pytest.mark.slow
def test_ctrl_c_then_fer_train_resume_continues_as_if_never_stopped(tiny_model, spies, synthetic_root, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", tiny_model, "--data", str(synthetic_root), "--out", str(out), "--epochs", "6",
            "--batch-size", "32", "--learning-rate", "0.003", "--precision", "float32", "--no-eval"]
    spies.stop_at = 3
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == [f"fer train: interrupted after epoch 3 of 6; continue with: fer train --resume --out {out}"]
    assert not (out / "model.keras").exists()  # nothing half-finished is published
    assert (out / "INTERRUPTED").read_text().startswith("This training run was interrupted after epoch 3 of 6")
    partial_history = (out / RESUME_DIR / "history.csv").read_text().splitlines()
    assert len(partial_history) == 1 + 3

    # A plain re-run neither resumes nor starts over silently.
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fer train: error: an interrupted run is in {out} (3 of 6 epochs done); "
                   "pass --resume to continue or --overwrite to start over"]
    assert main([*argv, "--resume", "--overwrite"]) == 2
    assert "pass only one" in capsys.readouterr().err
    changed = TrainConfig.load(out / RESUME_DIR / "config.json")
    changed.epochs = 9
    with pytest.raises(FerError, match=r"the interrupted run used epochs=6, this one asks for epochs=9; resume with the same settings"):
        training.train(changed, resume=True)

    # As if the kill had landed between saving a better checkpoint and saving the state:
    # the checkpoint's own val_accuracy must win, not the stale record.
    state_file = out / RESUME_DIR / STATE_FILE
    state = json.loads(state_file.read_text())
    write_json_atomic(state_file, {**state, "checkpoint_best": 0.0})

    # A run saved before the config grew `loss` and `init_from` (session-1 format) still resumes.
    saved_config = out / RESUME_DIR / "config.json"
    old_format = {k: v for k, v in json.loads(saved_config.read_text()).items() if k not in ("loss", "init_from")}
    write_json_atomic(saved_config, old_format)

    # A run folder moved since (e.g. brought back from a GPU machine) resumes where it now is.
    interrupted_at, out = out, tmp_path / "moved" / "run"
    out.parent.mkdir()
    interrupted_at.rename(out)
    argv = [str(out) if arg == str(interrupted_at) else arg for arg in argv]

    assert main(["train", "--resume", "--out", str(out), "--no-eval", "--learning-rate", "0.5", "--seed", "7"]) == 0  # settings come from the run
    assert not interrupted_at.exists()
    printed = capsys.readouterr().out
    assert "Note: --learning-rate, --seed ignored; a resumed run keeps its saved settings" in printed
    assert f"Resuming the interrupted run in {out} (3 of 6 epochs done)" in printed
    assert "Trained 6 epoch(s) (resumed after epoch 3)" in printed
    interrupted, resumed = spies.made[0].seen[3], spies.made[-1].seen[3]
    assert resumed == pytest.approx(interrupted)  # weights, optimizer, LR schedule, early stopping, checkpoint
    assert min(spies.made[-1].seen) == 3  # epochs 1-3 were not run again

    history = read_history(out)
    assert history["epoch"].tolist() == list(range(6))  # no repeated or missing epoch
    assert (out / "history.csv").read_text().splitlines()[:4] == partial_history
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["epochs_run"] == 6 and summary["resumed_after_epoch"] == 3
    dataset = load_dataset(synthetic_root)
    assert val_accuracy_of(out / "model.keras", dataset) == pytest.approx(history["val_accuracy"].max(), abs=1e-6)
    assert models.read_model_classes(out / "model.keras") == list(EMOTIONS)
    assert not (out / RESUME_DIR).exists() and not (out / "INTERRUPTED").exists()

    # Finished: nothing to resume; --overwrite replaces it but keeps the old model.
    assert main(["train", "--resume", "--out", str(out)]) == 2
    assert "this run already finished, there is nothing to resume" in capsys.readouterr().err
    # The whole replaced run is kept beside the new one, and nothing older passes for it.
    kept = {"model.keras": "model.previous.keras", "config.json": "config.previous.json",
            "history.csv": "history.previous.csv", "train_summary.json": "train_summary.previous.json",
            "data.json": "data.previous.json"}
    old_files = {name: (out / name).read_bytes() for name in kept}
    (out / "metrics.previous.json").write_text("{}")  # from an older generation; the replaced run has no metrics
    assert main([*argv[:-1], "--epochs", "1", "--seed", "5", "--overwrite", "--no-eval"]) == 0
    assert "The run it replaced is kept as" in capsys.readouterr().out
    for name, previous in kept.items():
        assert (out / previous).read_bytes() == old_files[name], previous
    assert (out / "model.keras").read_bytes() != old_files["model.keras"]
    assert not (out / "metrics.previous.json").exists()
    assert json.loads((out / "config.json").read_text())["seed"] == 5
    assert json.loads((out / "config.previous.json").read_text())["seed"] != 5
    assert read_history(out)["epoch"].tolist() == [0]


@pytest.mark.slow
def test_killed_training_process_resumes_from_its_last_completed_epoch(tmp_path):
    """SIGKILL a real `fer train` after its first epoch is saved, then `fer train --resume`."""
    data = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=6, n_test=2))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "fer_lib.cli", "train", "--data", str(data), "--out", str(out), "--epochs", "6",
               "--batch-size", "16", "--precision", "float32", "--no-eval"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    state_file = out / RESUME_DIR / STATE_FILE
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while not state_file.exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    done = json.loads(state_file.read_text())["epochs_done"]
    assert done >= 1 and not (out / "model.keras").exists()

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming the interrupted run in {out} ({done} of 6 epochs done)" in resumed.stdout
    first_epoch_line = next(line for line in resumed.stdout.splitlines() if line.startswith("Epoch ") and "/6" in line)
    assert first_epoch_line.startswith(f"Epoch {done + 1}/6  ")
    epochs = read_history(out)["epoch"].tolist()
    summary = json.loads((out / "train_summary.json").read_text())
    assert epochs == list(range(len(epochs))) and len(epochs) > done  # continued, nothing repeated
    assert summary["epochs_run"] == len(epochs) and summary["resumed_after_epoch"] == done
    assert (out / "model.keras").is_file() and not (out / RESUME_DIR).exists()


def snapshot(folder: Path) -> dict[str, str]:
    """The run's files, less its TensorBoard logs (each run appends its own, beside the others')."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).parts[0] != "tensorboard"}


@pytest.mark.slow
def test_artifacts_land_by_rename_and_a_full_disk_or_read_only_folder_changes_nothing(
        tiny_model, synthetic_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", tiny_model, "--data", str(synthetic_root), "--out", str(out), "--epochs", "2",
            "--precision", "float32"]
    renamed = []
    real_replace = os.replace

    def recording_replace(source, target):
        renamed.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    assert main(argv) == 0
    for name in ("config.json", "data.json", "history.csv", "train_summary.json", "metrics.json", "model.keras",
                 "best.keras", "state.json", "epoch-0002.weights.h5"):
        assert name in renamed, name
    before = snapshot(out)
    assert set(before) == {"config.json", "data.json", "history.csv", "train_summary.json", "metrics.json", "model.keras"}

    def full_disk(source, target):
        if Path(target).name == "best.keras":  # the first save of the new run's first epoch
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk)
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fer train: error: {out / RESUME_DIR / 'best.keras'}: could not be written (No space left on device); "
                   "free some space or choose another folder. The previous file is unchanged"]
    after = snapshot(out)
    assert {k: v for k, v in after.items() if not k.startswith(RESUME_DIR)} == before
    monkeypatch.setattr(os, "replace", real_replace)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fer train: error: {out}: cannot write there (Read-only file system); choose a writable output folder"]
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(RESUME_DIR)} == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through chmod; covered by the EROFS simulation")
def test_read_only_output_folder_by_permissions(tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    out.chmod(0o555)
    try:
        with pytest.raises(FerError, match=r"locked: cannot write there \(Permission denied\); choose a writable output folder"):
            write_json_atomic(out / "metrics.json", {"new": 1})
        assert (out / "metrics.json").read_text() == "{}"
    finally:
        out.chmod(0o755)


def tiny_dataset(n_per_class: int = 4, seed: int = 0) -> FerDataset:
    rng = np.random.default_rng(seed)

    def split(name, n):
        labels = np.repeat(np.arange(7), n)
        return Split(name, rng.integers(0, 255, (labels.size, 48, 48), dtype=np.uint8), labels)

    return FerDataset(split("train", n_per_class), split("val", 1), split("test", 1), Path("memory"), "arrays", "given")


@pytest.mark.slow
def test_interrupted_tuner_search_resumes_without_redoing_finished_trials(tmp_path, monkeypatch):
    from fer_lib.training import tuning

    dataset = tiny_dataset()
    built = []
    real_build = tuning.CnnHyperModel.build

    def counting_build(self, hp):
        built.append(dict(hp.values))
        if getattr(counting_build, "interrupt_at", None) == len(built):
            raise KeyboardInterrupt
        return real_build(self, hp)

    monkeypatch.setattr(tuning.CnnHyperModel, "build", counting_build)
    search = tuning.make_tuner("random", tmp_path, "search", max_trials=3, max_epochs=1, overwrite=True)
    built.clear()  # KerasTuner builds once to learn the search space
    counting_build.interrupt_at = 2  # Ctrl-C while the second trial builds its model
    with pytest.raises(KeyboardInterrupt):
        tuning.run_search(search, dataset, epochs=1, batch_size=16, verbose=0)
    first = {t.trial_id: (t.status, t.score) for t in search.oracle.trials.values() if t.status == "COMPLETED"}
    assert len(first) == 1

    counting_build.interrupt_at = None
    resumed = tuning.make_tuner("random", tmp_path, "search", max_trials=3, max_epochs=1, overwrite=False)
    built.clear()
    tuning.run_search(resumed, dataset, epochs=1, batch_size=16, verbose=0)
    completed = {t.trial_id: (t.status, t.score) for t in resumed.oracle.trials.values() if t.status == "COMPLETED"}
    assert len(completed) == 3
    assert all(completed[trial_id] == first[trial_id] for trial_id in first)  # kept, not re-run
    assert len(built) == 2  # only the interrupted trial and the last one were trained

    # A search state damaged by a kill mid-write is named, with the way out; --tuner-overwrite restarts.
    oracle = tmp_path / "search" / "oracle.json"
    oracle.write_text(oracle.read_text()[:40])
    with pytest.raises(FerError, match=r"search: the saved search cannot be resumed \(JSONDecodeError.*--tuner-overwrite"):
        tuning.make_tuner("random", tmp_path, "search", max_trials=3, max_epochs=1, overwrite=False)
    fresh = tuning.make_tuner("random", tmp_path, "search", max_trials=3, max_epochs=1, overwrite=True)
    assert not fresh.oracle.trials


def test_damaged_resume_state_is_named_and_overwrite_still_works(tmp_path):
    state = tmp_path / RESUME_DIR / STATE_FILE
    state.parent.mkdir()
    state.write_text('{"epochs_done": 3, "weights_')
    with pytest.raises(FerError, match=r"state.json: the saved state of the interrupted run is damaged; pass --overwrite"):
        training.check_out_dir(tmp_path, overwrite=False, resume=True)
    assert training.prepare_out_dir(tmp_path, overwrite=True) is None
    assert not state.exists()


@pytest.mark.slow
def test_pipeline_rerun_gets_its_own_folder_and_leaves_the_first_untouched(synthetic_root, tmp_path, monkeypatch):
    """Idempotence at the orchestration level; the notebooks themselves run in tests/reporting/test_pipeline.py."""
    import shutil

    from fer_lib.reporting import pipeline
    from fer_lib.reporting.steps import STEPS

    def fake_execute(notebook: Path, executed: Path, parameters: dict, cwd: Path) -> None:
        shutil.copy(notebook, executed)
        write_json_atomic(cwd / f"{notebook.stem}.json", {"seed": parameters["seed"]})
        [step] = [s for s in STEPS if s.notebook == notebook.stem]
        for file in step.writes:  # what the pipeline checks each notebook wrote
            write_json_atomic(cwd / file.path, {})

    monkeypatch.setattr(pipeline, "_execute", fake_execute)
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (renamed.append(Path(target).name), real_replace(source, target)))
    out = tmp_path / "reports"
    config = pipeline.PipelineConfig(data=str(synthetic_root), profile="smoke", out=str(out))
    first = pipeline.run_pipeline(config, progress=lambda _: None)
    before = snapshot(first)
    second = pipeline.run_pipeline(config, progress=lambda _: None)
    assert second != first and second.parent == first.parent
    assert (out / "latest").resolve() == second.resolve()
    assert snapshot(first) == before
    assert set(snapshot(second)) == set(before)
    for name in ("pipeline_config.json", "status.json", "index.html", "latest", *(f"{n}.html" for n in pipeline.NOTEBOOKS)):
        assert name in renamed, name


@pytest.mark.slow
def test_a_publish_redone_after_a_failure_keeps_the_replaced_run_not_the_new_one(tiny_model, synthetic_root, tmp_path,
                                                                                  monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", tiny_model, "--data", str(synthetic_root), "--out", str(out), "--epochs", "1",
            "--precision", "float32", "--no-eval"]
    assert main(argv) == 0
    old_config, old_model = (out / "config.json").read_bytes(), (out / "model.keras").read_bytes()
    real_replace = os.replace

    def fail_at_the_swap(source, target):
        if Path(target) == out / "model.keras":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", fail_at_the_swap)
    assert main([*argv, "--overwrite", "--seed", "5"]) == 2
    assert "run again with --resume" in capsys.readouterr().err
    # The new run's config was already published when the swap failed ...
    assert json.loads((out / "config.json").read_text())["seed"] == 5
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(["train", "--resume", "--out", str(out), "--no-eval"]) == 0
    # ... yet the redone publish keeps the replaced run's own files.
    assert (out / "config.previous.json").read_bytes() == old_config
    assert (out / "model.previous.keras").read_bytes() == old_model
    assert json.loads((out / "config.json").read_text())["seed"] == 5
    assert not (out / RESUME_DIR).exists()


def append_callback(monkeypatch, make) -> list:
    """Adds `make(runs so far)` last to every training run's callbacks; returns the list of those made."""
    made = []
    original = trainer.make_callbacks

    def with_extra(*args, **kwargs):
        made.append(make(len(made)))
        return [*original(*args, **kwargs), made[-1]]

    monkeypatch.setattr(trainer, "make_callbacks", with_extra)
    return made


class StopAndRemember(keras.callbacks.Callback):
    """Raises Ctrl-C at the end of epoch `stop_after` (before it is saved); remembers every epoch's final weights."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.stop_after, self.weights = stop_after, {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]
        if epoch == self.stop_after:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_a_run_without_validation_trains_on_every_face_resumes_and_publishes_its_final_epoch(
        tiny_model, synthetic_root, tmp_path, monkeypatch, capsys):
    made = append_callback(monkeypatch, lambda runs: StopAndRemember(stop_after=1 if runs == 0 else None))
    out = tmp_path / "run"
    argv = ["train", "--model", tiny_model, "--data", str(synthetic_root), "--out", str(out), "--epochs", "4",
            "--lr-schedule", "cosine", "--val-fraction", "0", "--precision", "float32", "--no-eval"]
    assert main(argv) == 130
    assert "No validation split: every training face is trained on" in capsys.readouterr().out
    assert main(["train", "--resume", "--out", str(out), "--no-eval"]) == 0
    assert "Trained 4 epoch(s) (resumed after epoch 1)" in capsys.readouterr().out

    summary = json.loads((out / "train_summary.json").read_text())
    with_validation = load_dataset(synthetic_root)
    assert summary["train_images"] == len(with_validation.train) + len(with_validation.val)
    assert summary["val_images"] == 0 and summary["best_epoch"] is None
    history = read_history(out)
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert not [c for c in history.columns if c.startswith("val_")]
    published = models.load_model(out / "model.keras").get_weights()
    final = made[-1].weights[3]
    assert all(np.array_equal(a, b) for a, b in zip(published, final))  # the final epoch, not a chosen one

    # What needs a validation split says so, in one line.
    assert main([*argv[:-3], "--out", str(tmp_path / "plateau"), "--lr-schedule", "plateau", "--no-eval"]) == 2
    assert "lr_schedule plateau watches the validation loss, and val_fraction 0 holds out none" in capsys.readouterr().err
    assert main(["rebalance", "--model", str(out / "model.keras")]) == 2
    assert "no validation split to choose a strength on" in capsys.readouterr().err


class RecordRawWeights(keras.callbacks.Callback):
    """Records the trainable weights after every step (the raw ones: EMA is swapped in only between epochs)."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.stop_after, self.steps = stop_after, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.steps[epoch] = epoch, []

    def on_train_batch_end(self, batch, logs=None):
        self.steps[self.epoch].append([np.array(v) for v in self.model.trainable_variables])

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop_after:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_ema_publishes_the_moving_average_of_every_step_and_survives_a_resume(
        tiny_model, synthetic_root, tmp_path, monkeypatch, capsys):
    made = append_callback(monkeypatch, lambda runs: RecordRawWeights(stop_after=1 if runs == 0 else None))
    out, momentum = tmp_path / "run", 0.8
    recipe = ["train", "--model", tiny_model, "--data", str(synthetic_root), "--epochs", "3", "--batch-size", "32",
              "--learning-rate", "0.01", "--lr-schedule", "cosine", "--precision", "float32", "--no-eval"]
    assert main([*recipe, "--out", str(out), "--val-fraction", "0", "--ema", str(momentum)]) == 130  # Ctrl-C at the end of epoch 2, before it is saved
    assert main(["train", "--resume", "--out", str(out), "--no-eval"]) == 0
    # The run that counts: epoch 1 of the first process, then epochs 2 and 3 of the resumed one.
    steps = made[0].steps[0] + made[1].steps[1] + made[1].steps[2]

    def averaged(steps):
        average = [w.copy() for w in steps[0]]
        for weights in steps[1:]:
            average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
        return average

    def same(a, b):
        return all(np.allclose(x, y, atol=1e-5) for x, y in zip(a, b))

    published = [np.array(v) for v in models.load_model(out / "model.keras").trainable_variables]
    assert same(published, averaged(steps))
    assert not same(published, steps[-1])  # not the raw weights

    # With validation, the epochs are scored and checkpointed with the average.
    validated = tmp_path / "validated"
    assert main([*recipe, "--out", str(validated), "--ema", str(momentum)]) == 0
    history = read_history(validated)
    best = int(history["val_accuracy"].idxmax())
    steps = [step for epoch in range(best + 1) for step in made[-1].steps[epoch]]
    assert same([np.array(v) for v in models.load_model(validated / "model.keras").trainable_variables], averaged(steps))
    assert val_accuracy_of(validated / "model.keras", load_dataset(synthetic_root)) == pytest.approx(
        history["val_accuracy"].max(), abs=1e-6)
    assert main([*recipe, "--out", str(tmp_path / "bad"), "--ema", "1.5"]) == 2
    assert "ema_momentum must be in (0, 1), e.g. 0.999, got 1.5" in capsys.readouterr().err
