"""KerasTuner's distributed mode: a chief oracle and worker processes on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_lib.errors import FerError
from fer_lib.training.distributed_search import SearchSettings, reload_search, run_distributed_search, trials_run_by


@pytest.mark.slow
def test_a_distributed_search_with_a_chief_and_two_workers_runs_every_trial_once(synthetic_root, tmp_path, capsys):
    import json

    from fer_lib.cli import main
    out = tmp_path / "tuning"
    assert main(["tune", "--data", str(synthetic_root), "--workers", "2", "--tuner", "random", "--trials", "4",
                 "--epochs", "1", "--batch-size", "32", "--max-train-images", "140", "--seed", "3", "--out", str(out),
                 "--search-space", "cnn"]) == 0
    (project,) = [p for p in out.iterdir() if p.name.startswith("distributed-")]
    ran = trials_run_by(project)
    assert "chief" not in ran and set(ran) <= {"tuner0", "tuner1"}  # the chief serves trials, workers train them
    trained = [trial for trials in ran.values() for trial in trials]
    assert len(trained) == len(set(trained)) == 4  # every trial exactly once
    # The search's state is the chief's: reloaded here, outside distributed mode, it holds those four trials.
    tuner = reload_search(SearchSettings(data=str(synthetic_root), directory=str(out), project=project.name,
                                         tuner="random", max_trials=4, max_epochs=1, seed=3, search_space="cnn"), 7)
    assert sorted(tuner.oracle.trials) == sorted(trained)
    assert all(trial.status == "COMPLETED" for trial in tuner.oracle.trials.values())
    best = json.loads((project / "best_hyperparameters.json").read_text())
    assert best["val_accuracy"] == max(trial.score for trial in tuner.oracle.trials.values())
    assert (project / "trials.csv").read_text().count("COMPLETED") == 4
    printed = capsys.readouterr().out
    assert "Trials trained per worker: tuner0" in printed and f"Best trial {best['trial_id']}" in printed


@pytest.mark.slow
@pytest.mark.parametrize("tuner0", ["ends at once", "starts too late"])
def test_a_search_whose_only_trial_another_worker_trained_is_read_back(tuner0, synthetic_root, tmp_path, monkeypatch,
                                                                         capsys):
    """fer tune --workers 2 --trials 1: when tuner1 asks first and trains the only trial, tuner0 gets none and
    writes no tuner0.json, the file a process outside the search (tuner id tuner0) reloaded the search from;
    the search then read back empty and fer tune ended in "no trial of the search ... completed". A tuner0
    that reaches the chief only after the search ended would wait an hour for it: it is stopped."""
    import os

    from fer_lib.cli import main
    from fer_lib.training import distributed_search

    # tuner0 gets no trial: here it ends at once, through a sitecustomize on its path only, leaving what a
    # worker that was told the search had stopped leaves (no file). Waiting for it instead would be a race.
    idle = tmp_path / "idle"
    idle.mkdir()
    hang = "import time\n\ntime.sleep(3600)\n"  # before the worker contacts the chief
    (idle / "sitecustomize.py").write_text("import os\n\nos._exit(0)\n" if tuner0 == "ends at once" else hang)
    monkeypatch.setattr(distributed_search, "WORKER_GRACE_SECONDS", 5.0)
    run = distributed_search.run_distributed_search

    def tuner0_idle(settings, workers, **kwargs):
        path = os.pathsep.join(p for p in (str(idle), os.environ.get("PYTHONPATH")) if p)
        return run(settings, workers, worker_env=[{"PYTHONPATH": path}], **kwargs)

    monkeypatch.setattr(distributed_search, "run_distributed_search", tuner0_idle)
    out = tmp_path / "tuning"
    assert main(["tune", "--data", str(synthetic_root), "--workers", "2", "--trials", "1", "--epochs", "1",
                 "--search-space", "demo", "--out", str(out)]) == 0
    (project,) = [p for p in out.iterdir() if p.name.startswith("distributed-")]
    assert trials_run_by(project) == {"tuner1": ["0"]} and not (project / "tuner0.json").exists()
    assert (project / "trials.csv").read_text().count("COMPLETED") == 1
    assert "Best trial 0: val_accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_a_failing_worker_is_reported_with_its_log(tmp_path):
    settings = SearchSettings(data=str(tmp_path / "no_data"), directory=str(tmp_path / "tuning"), project="broken",
                              max_trials=1, max_epochs=1)
    with pytest.raises(FerError, match=r"chief stopped before it listened|failed; see their logs") as failure:
        run_distributed_search(settings, workers=1, timeout=600)
    assert "logs" in str(failure.value)
    with pytest.raises(FerError, match="workers must be at least 1"):
        run_distributed_search(settings, workers=0)


@pytest.mark.slow
def test_a_search_without_a_completed_trial_ends_in_one_line(synthetic_root, tmp_path, monkeypatch, capsys):
    """No trial completed (here: the search's processes left nothing): fer tune's usual one-line error, exit 2."""
    from fer_lib.cli import main
    from fer_lib.training import distributed_search

    def nothing_ran(settings, workers, **kwargs):
        project_dir = Path(settings.directory) / settings.project
        (project_dir / "logs").mkdir(parents=True)
        return project_dir

    monkeypatch.setattr(distributed_search, "run_distributed_search", nothing_ran)
    assert main(["tune", "--data", str(synthetic_root), "--workers", "2", "--trials", "1", "--epochs", "1",
                 "--search-space", "demo", "--out", str(tmp_path / "tuning")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fer tune: error: no trial of the search in ") and "run fer tune again" in line
