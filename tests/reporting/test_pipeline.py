"""The papermill pipeline end to end on generated data, its failure handling and validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from fer_lib.errors import FerError
from fer_lib.reporting.pipeline import NOTEBOOKS, PipelineConfig, PipelineError, notebook_parameters, resolve_data, run_pipeline, validate


@pytest.fixture(scope="module")
def smoke_run(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    run_dir = run_pipeline(PipelineConfig(data=str(synthetic_root), profile="smoke", out=str(out)), progress=lambda _: None)
    return out, run_dir


@pytest.mark.slow
def test_smoke_pipeline_writes_reports_without_errors(smoke_run):
    out, run_dir = smoke_run
    assert (out / "latest").resolve() == run_dir.resolve()
    for name in NOTEBOOKS:
        executed = nbformat.read(run_dir / "notebooks" / f"{name}.ipynb", as_version=4)
        outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], name
        assert not [o for o in outputs if o.get("name") == "stderr"], f"{name} printed to stderr"
        assert "SYNTHETIC DEMO DATA" in (out / "latest" / f"{name}.html").read_text(), f"{name} has no synthetic-data banner"
    index = (out / "latest" / "index.html").read_text()
    assert "SYNTHETIC DEMO DATA" in index
    for name in NOTEBOOKS:
        assert f"href='{name}.html'" in index
    evaluation = (out / "latest" / "04_evaluation.html").read_text()
    assert "Confusion matrix" in evaluation and evaluation.count("data:image/png;base64") >= 3
    # Balanced demo classes: the section says there is nothing to correct, without flat lines and two equal columns.
    assert "Rebalancing the class prior" in evaluation and "nothing to correct" in evaluation
    assert "rebalanced (strength " not in evaluation
    assert "import " not in evaluation.split("<body", 1)[1]  # code is hidden by default
    metrics = json.loads((out / "latest" / "metrics.json").read_text())
    assert 0.0 <= metrics["top1_accuracy"] <= 1.0 and len(metrics["confusion_matrix"]) == 7
    assert metrics["data"]["synthetic"] is True
    with_tta = json.loads((out / "latest" / "metrics_tta.json").read_text())  # smoke reports flip TTA too
    assert with_tta["tta"] == "flip" and 0.0 <= with_tta["top1_accuracy"] <= 1.0
    assert "this run, flip TTA" in index and "with flip TTA" in evaluation
    best = json.loads((run_dir / "best_hyperparameters.json").read_text())
    import pandas as pd

    from fer_lib.training.tuning import DEMO_POINT

    # The smoke search searches (issue 54): several trials of the demo space, the first its default, which differ,
    # and a winner that learnt (its one trial, the seed CNN, had sat at chance, 1/7).
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial": str})
    assert len(trials) == 4 and (trials["status"] == "COMPLETED").all() and trials["epochs"].tolist() == [3] * 4
    first = trials.loc[trials["trial"] == "0"].iloc[0]
    assert all(first[k] == v for k, v in DEMO_POINT.items())
    assert len(trials[["conv_blocks", "filters_1", "dense_layers", "dropout", "learning_rate"]].drop_duplicates()) > 1
    assert best["val_accuracy"] > 1 / 7 and best["val_accuracy"] == trials["val_accuracy"].max()  # 28 faces: above, not far
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "succeeded" and set(status["timings_s"]) == set(NOTEBOOKS)


@pytest.mark.slow
def test_the_pipeline_runs_on_ferplus_votes_with_eight_classes_and_both_rules(ferplus_root, synthetic_root, tmp_path):
    out = tmp_path / "reports"
    run_dir = run_pipeline(PipelineConfig(data=str(ferplus_root), profile="smoke", out=str(out), label_mode="crossentropy",
                                          fer2013_data=str(synthetic_root)), progress=lambda _: None)
    for name in NOTEBOOKS:
        executed = nbformat.read(run_dir / "notebooks" / f"{name}.ipynb", as_version=4)
        outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], name
        assert not [o for o in outputs if o.get("name") == "stderr"], f"{name} printed to stderr"
    exploration = (run_dir / "01_data_exploration.html").read_text()
    assert "top_vote" in exploration and "FER2013 label is the FER+ majority" in exploration
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["label_mode"] == "crossentropy"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["classes"][-1] == "contempt" and len(metrics["confusion_matrix"]) == 8
    assert metrics["majority_rule"] == "official" and "top_vote" in metrics and "votes" in metrics
    evaluation = (run_dir / "04_evaluation.html").read_text()
    assert "official rule" in evaluation and "top-vote rule" in evaluation and "Annotator share" in evaluation


@pytest.mark.slow
def test_a_finished_run_is_recorded_with_its_search_winner_and_all_its_time(smoke_run, tmp_path, monkeypatch):
    from fer_lib.records import commands as table
    from fer_lib.records import locations

    out, run_dir = smoke_run
    monkeypatch.setattr(locations, "RESULTS_DIR", tmp_path / "results")
    assert table.main(["record-pipeline", str(out / "latest"), "--label", "demo", "--conclusion", "It runs."]) == 0
    record = json.loads((tmp_path / "results" / "pipeline_demo.json").read_text())
    status = json.loads((run_dir / "status.json").read_text())
    assert record["recipe"] == {"command": "fer pipeline --profile smoke", "label": "demo"}
    assert record["pipeline"] == {"total_minutes": round(status["total_s"] / 60, 1), "attempts": 1,
                                  "notebook_seconds": status["timings_s"]}
    assert record["search_minutes"] == round(status["timings_s"]["02_hyperparameter_search"] / 60)
    best = json.loads((run_dir / "best_hyperparameters.json").read_text())
    assert record["search_winner"]["val_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-4)
    conv, dense = record["search_winner"]["network"].split(", ")  # the demo space's: 2-3 conv blocks, 1-2 dense
    assert conv.startswith("conv ") and len(conv[5:].split("-")) in (2, 3)
    assert dense.startswith("dense ") and len(dense[6:].split("-")) in (1, 2)
    assert record["test"]["top1_accuracy"] == json.loads((run_dir / "metrics.json").read_text())["top1_accuracy"]
    assert record["test_tta"]["tta"] == "flip" and record["model"] == json.loads((run_dir / "model" / "train_summary.json").read_text())["model"]

    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    (unfinished / "status.json").write_text(json.dumps({**status, "status": "running"}))
    with pytest.raises(SystemExit, match="not a finished pipeline run .*fer pipeline --resume"):
        table.main(["record-pipeline", str(unfinished), "--label", "demo2"])


@pytest.mark.slow
def test_the_reports_show_tables_and_short_lines_not_reprs(smoke_run):
    """What issue 39 saw in the reports: a config repr, 150-character epoch lines, raw dicts, FER2013's figures on demo data."""
    out, run_dir = smoke_run
    training = (out / "latest" / "03_training.html").read_text()
    assert "TrainConfig(" not in training and "'images_per_second_per_epoch'" not in training
    # Each epoch's line is an output of its own, so most open with their <pre>.
    epoch_lines = [line.removeprefix("<pre>") for line in training.splitlines() if line.removeprefix("<pre>").startswith("Epoch ")]
    assert epoch_lines and max(map(len, epoch_lines)) <= 100
    assert "best validation accuracy" in training and "model_options.conv_filters" in training
    search = (out / "latest" / "02_hyperparameter_search.html").read_text()
    assert "conv 32-64-128, dense 128" in search and "'filters_1'" not in search
    # Issue 54's page 02: the paragraph named the strong space on a demo-space run, the log counted trials from 1
    # where the table names them by id, the table had a second, unnamed index and epochs None, a chance-level
    # trial read as the winner and "the recipe of the preset seed_cnn".
    assert "over the <strong>demo</strong> space" in search and "over the <strong>strong</strong> space" not in search
    assert "Trial 3 Complete" in search and "Trial 4 Complete" not in search  # the last of trials 0-3 (the log keeps one)
    table = search.split("<table", 2)[1]
    assert "<th>trial</th>" in table and "None" not in table and "<td>3</td>" in table
    assert "no better than chance" not in search and "the recipe of the preset" not in search
    evaluation = (out / "latest" / "04_evaluation.html").read_text()
    assert "about equally frequent" in evaluation  # the generated faces are balanced
    assert "original README (seed CNN)" not in evaluation
    assert "<td>original README</td>" not in (out / "latest" / "index.html").read_text()


@pytest.mark.slow
def test_the_reports_read_as_pages_of_one_report_on_the_data_at_hand(smoke_run):
    """What issue 54 saw on a demo run's pages (the glitches' own words in the asserts' comments)."""
    import re

    out, run_dir = smoke_run
    pages = {name: (out / "latest" / f"{name}.html").read_text() for name in NOTEBOOKS}
    for index, (name, page) in enumerate(pages.items()):
        assert page.count("SYNTHETIC DEMO DATA") == 1, name  # the banner once, not twice
        assert "       angry  disgust" not in page  # no plain-text class-count dump
        assert re.search(r"<title>\d\. [A-Z][a-z]+.*FER pipeline report</title>", page), name  # not "Notebook"
        assert "href='index.html'" in page and (index == len(NOTEBOOKS) - 1 or f"href='{NOTEBOOKS[index + 1]}.html'" in page)
        assert "No description has been provided" not in page and 'alt="Figure"' not in page, name
    exploration = pages["01_data_exploration"]
    assert "far from balanced" not in exploration and "FER2013's split protocol" not in exploration
    assert "<th>train mean</th>" in exploration and "0 black to 255 white" in exploration
    training = pages["03_training"]
    assert "ReduceLROnPlateau" not in training and "0.000500000" not in training
    assert "The run trained all 8 epochs" in training or "Early stopping ended the run" in training
    assert "over the whole run" in training and "<th>teacher</th>" not in training and "ema_momentum" not in training
    evaluation = pages["04_evaluation"]
    assert "share_of_true" not in evaluation and "original README" not in evaluation
    assert "mirror image" in evaluation and "calibration error is" in evaluation and "top score" in evaluation
    assert 'alt="Confusion matrix (counts)' in evaluation
    index = (out / "latest" / "index.html").read_text()
    assert "<pre>" not in index and "data_summary_file" not in index and "<td>search trials</td>" in index
    status = json.loads((run_dir / "status.json").read_text())
    rows = [float(x) for x in re.findall(r"<tr><td>.*?</td><td>([0-9.]+) s</td></tr>", index)]
    assert len(rows) >= len(NOTEBOOKS) and sum(rows) == pytest.approx(status["total_s"], abs=0.05)  # the rows add up


@pytest.mark.slow
def test_failing_notebook_names_the_cell_and_keeps_latest(smoke_run, synthetic_root, tmp_path):
    out, good_run = smoke_run
    notebooks = tmp_path / "notebooks"
    shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks", notebooks)
    broken = nbformat.read(notebooks / "01_data_exploration.ipynb", as_version=4)
    broken.cells.append(nbformat.v4.new_code_cell("import os\n\nvalue = os.sep\nraise RuntimeError('deliberate failure')"))
    nbformat.write(broken, notebooks / "01_data_exploration.ipynb")
    before = (out / "latest" / "index.html").read_text()
    with pytest.raises(PipelineError) as failure:
        run_pipeline(PipelineConfig(data=str(synthetic_root), profile="smoke", out=str(out), notebooks_dir=str(notebooks)),
                     progress=lambda _: None)
    message = str(failure.value)
    assert "01_data_exploration.ipynb failed in cell" in message and "deliberate failure" in message
    assert "(`raise RuntimeError('deliberate failure')`)" in message  # the line that failed, not the cell's import
    assert (out / "latest").resolve() == good_run.resolve()
    assert (out / "latest" / "index.html").read_text() == before
    partial = Path(message.split("Partial notebook kept at ")[1].rstrip("."))
    assert partial.is_file()


@pytest.mark.parametrize("change, message", [
    ({"profile": "huge"}, "unknown profile 'huge'"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"trials": -2}, "trials must be a positive integer"),
    ({"data": "/no/such/folder"}, "data path does not exist"),
    ({"tuner": "grid"}, "unknown tuner 'grid'"),
    ({"preset": "nonexistent"}, "unknown preset"),
    ({"search_space": "resnet"}, "unknown search space 'resnet'"),
    ({"tta": "fivecrop"}, "unknown tta 'fivecrop'"),
    ({"label_mode": "soft"}, "unknown label mode 'soft'"),
    ({"label_mode": "crossentropy"}, "trains on FER\\+'s votes"),
    ({"fer2013_data": "/no/such/fer2013"}, "--fer2013-data does not exist"),
])
def test_parameters_are_validated_before_any_notebook(change, message, tmp_path):
    with pytest.raises(FerError, match=message):
        validate(PipelineConfig(out=str(tmp_path), **change))
    assert not any(tmp_path.iterdir())


def test_relative_data_and_out_reach_the_notebooks_as_absolute_paths(synthetic_root, tmp_path, monkeypatch):
    # The notebooks run inside the run folder, so a path relative to the caller would not be found there.
    monkeypatch.chdir(synthetic_root.parent)
    config = PipelineConfig(data=synthetic_root.name, profile="auto", out="reports")
    data, synthetic, profile = resolve_data(config)
    assert data == synthetic_root.resolve() and synthetic and profile == "smoke"
    run_dir = (Path("reports") / "20260101-000000-smoke").resolve()
    parameters = notebook_parameters(config, run_dir, data, synthetic, profile)
    assert parameters["data"] == str(synthetic_root.resolve())
    assert parameters["tuner_dir"] == str(synthetic_root.parent.resolve() / "reports" / "tuning")


def test_a_folder_without_faces_fails_in_one_line_before_a_run_folder_exists(tmp_path):
    empty = tmp_path / "not_fer"
    (empty / "train" / "happy").mkdir(parents=True)
    (empty / "test" / "happy").mkdir(parents=True)
    (empty / "train" / "happy" / "notes.txt").write_text("no faces here")
    out = tmp_path / "reports"
    with pytest.raises(FerError) as failure:
        run_pipeline(PipelineConfig(data=str(empty), profile="full", out=str(out)), progress=lambda _: None)
    assert str(empty) in str(failure.value) and "\n" not in str(failure.value)
    assert not out.exists() or not any(out.iterdir())


def test_the_notebooks_in_git_carry_no_outputs():
    """Outputs belong in the reports, not in git (what nbstripout would enforce)."""
    notebooks = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
    assert [n.stem for n in notebooks] == list(NOTEBOOKS)
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: a cell has outputs; clear them"


def _real_looking_data(root: Path) -> Path:
    """A tiny Kaggle-layout folder that is not generated demo data (so the pipeline takes it for real data)."""
    from conftest import kaggle_layout, make_image_folders

    return make_image_folders(root, kaggle_layout(n_train=2, n_test=1))


def test_auto_picks_the_gpu_profile_where_the_backend_sees_a_gpu(synthetic_root, tmp_path, monkeypatch):
    from fer_lib.reporting import pipeline

    data = _real_looking_data(tmp_path / "fer")
    for seen, profile in ((("tensorflow", 0), "full"), (("tensorflow", 1), "gpu"), (("jax", 4), "gpu")):
        monkeypatch.setattr(pipeline, "backend_gpus", lambda seen=seen: seen)
        assert resolve_data(PipelineConfig(data=str(data)))[2] == profile
        assert resolve_data(PipelineConfig(data=str(data), profile="full"))[2] == "full"  # asked for, kept

    def no_probe():
        raise AssertionError("generated faces need no GPU probe: they get smoke")

    monkeypatch.setattr(pipeline, "backend_gpus", no_probe)
    assert resolve_data(PipelineConfig(data=str(synthetic_root)))[2] == "smoke"


def test_the_gpu_profile_searches_more_and_trains_longer_data_parallel_on_several_jax_gpus(tmp_path, monkeypatch):
    from fer_lib.reporting import pipeline

    config, data = PipelineConfig(profile="gpu"), tmp_path / "fer"
    monkeypatch.setattr(pipeline, "backend_gpus", lambda: ("jax", 2))
    gpu = notebook_parameters(config, tmp_path / "run", data, False, "gpu")
    full = notebook_parameters(PipelineConfig(profile="full"), tmp_path / "run", data, False, "full")
    assert gpu["search_space"] == "strong_gpu" and full["search_space"] == "strong"
    assert gpu["tuning_max_train_images"] is None and gpu["max_trials"] * gpu["tuner_max_epochs"] > full["max_trials"] * full["tuner_max_epochs"]
    assert gpu["epochs_scale"] == 2 and gpu["time_budget"] > full["time_budget"]
    assert gpu["data_parallel"] is True and full["data_parallel"] is False
    monkeypatch.setattr(pipeline, "backend_gpus", lambda: ("tensorflow", 2))  # keras.distribution is JAX's
    assert notebook_parameters(config, tmp_path / "run", data, False, "gpu")["data_parallel"] is False
    smoke = notebook_parameters(PipelineConfig(profile="smoke"), tmp_path / "run", data, True, "smoke")
    assert smoke["search_space"] == "demo" and smoke["time_budget"] is None  # small CNNs that learn the demo faces
    chosen = notebook_parameters(PipelineConfig(profile="full", search_space="presets", tta="none"), tmp_path / "run",
                                 data, False, "full")
    assert chosen["search_space"] == "presets" and chosen["tta"] == "none"


def test_the_full_profile_fits_three_hours_of_two_cpu_cores():
    """The split docs/pipeline.md states: the search stops starting trials at its budget, the training at its."""
    from fer_lib.reporting.pipeline import PROFILES

    full = PROFILES["full"]
    search_images = full["max_trials"] * full["tuner_max_epochs"] * full["tuning_max_train_images"]
    assert search_images / 150 <= full["tuner_time_budget"] + 600  # the slow end of the estimate, a trial over at most
    assert full["tuner_time_budget"] + 600 + full["time_budget"] + 15 * 60 <= 3 * 3600  # + the other notebooks, margin
    assert full["tta"] == "auto" and full["epochs"] is None and full["early_stopping_patience"] is None


def test_the_full_profiles_time_budget_reaches_notebook_03s_training(tmp_path):
    """Notebook 03's own cells, given what the pipeline passes it, build the TrainConfig that trains."""
    import papermill as pm

    from fer_lib.training import tuning

    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "03_training.ipynb"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tuning.write_best_hyperparameters({"values": tuning.BEST_KNOWN_POINT}, run_dir / "best_hyperparameters.json")
    passed = notebook_parameters(PipelineConfig(profile="full"), run_dir, tmp_path / "fer", False, "full")
    declared = pm.inspect_notebook(str(notebook))
    assert {"time_budget", "epochs", "epochs_scale", "early_stopping_patience", "data_parallel"} <= set(declared)
    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    namespace = {}
    exec(next(c for c in cells if c.startswith("# Parameters")), namespace)
    namespace.update({k: v for k, v in passed.items() if k in declared}, run_dir=run_dir, data_path=tmp_path / "fer",
                     dataset=SimpleNamespace(has_votes=False))  # what the notebook's opening cell loaded
    exec(next(c for c in cells if "final_train_config" in c), namespace)
    config = namespace["config"]
    assert config.time_budget == passed["time_budget"] == 6000
    assert config.model == "fer_cnn" and config.model_options["widths"] == [64, 128, 256, 512]
    assert config.epochs == config.early_stopping_patience == 60  # the recipe's own: the budget fits the cosine to the time


def test_auto_tta_is_ten_crop_for_recipes_trained_on_crops_or_shifts(tmp_path):
    from fer_lib.reporting.pipeline import evaluation_tta
    from fer_lib.training.presets import preset_config
    from fer_lib.training.tuning import SEED_CNN_POINT, train_config_from

    cases = {"crop": (preset_config("fer_cnn_crop"), "tencrop"), "shift": (preset_config("fer_cnn"), "tencrop"),
             "seed": (preset_config("seed_cnn"), "flip"), "cnn": (train_config_from(SEED_CNN_POINT), "flip")}
    for name, (config, expected) in cases.items():
        config.save(tmp_path / name / "config.json")
        assert evaluation_tta("auto", tmp_path / name) == expected, name
        assert evaluation_tta("none", tmp_path / name) == "none"
    validate(PipelineConfig(out=str(tmp_path), tta="auto", search_space="strong"))


@pytest.mark.slow
def test_the_gpu_probe_answers_with_the_backend_and_its_gpus():
    from fer_lib.reporting import pipeline

    pipeline.backend_gpus.cache_clear()
    backend, gpus = pipeline.backend_gpus()
    assert backend in ("tensorflow", "jax", "torch") and gpus >= 0


@pytest.mark.slow
def test_an_interrupted_run_resumes_keeping_its_finished_notebooks_and_counting_both_attempts(synthetic_root, tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks", notebooks)
    training = notebooks / "03_training.ipynb"
    original = training.read_text()
    broken = nbformat.read(training, as_version=4)
    broken.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('the machine went away')"))  # after the training
    nbformat.write(broken, training)
    out = tmp_path / "reports"
    config = PipelineConfig(data=str(synthetic_root), profile="smoke", out=str(out), notebooks_dir=str(notebooks))
    with pytest.raises(PipelineError, match="the machine went away"):
        run_pipeline(config, progress=lambda _: None)
    [run_dir] = [d for d in out.iterdir() if (d / "pipeline_config.json").is_file()]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and set(status["timings_s"]) == {"01_data_exploration", "02_hyperparameter_search"}
    kept = {name: (run_dir / "notebooks" / f"{name}.ipynb").stat().st_mtime_ns for name in status["timings_s"]}
    model = (run_dir / "model" / "model.keras").stat().st_mtime_ns

    training.write_text(original)  # what went wrong is put right; the run carries on
    lines = []
    assert run_pipeline(PipelineConfig(out=str(out)), progress=lines.append, resume=True) == run_dir
    assert lines[0].startswith(f"Resuming {run_dir}") and "01_data_exploration, 02_hyperparameter_search done" in lines[0]
    assert {name: (run_dir / "notebooks" / f"{name}.ipynb").stat().st_mtime_ns for name in kept} == kept
    assert (run_dir / "model" / "model.keras").stat().st_mtime_ns == model  # its finished training was kept, not redone
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "succeeded" and set(status["timings_s"]) == set(NOTEBOOKS)
    assert len(status["attempts"]) == 2 and status["total_s"] == pytest.approx(sum(a["seconds"] for a in status["attempts"]))
    assert (out / "latest").resolve() == run_dir.resolve()
    assert f"Total {status['total_s']:.1f} s in 2 attempts" in (run_dir / "index.html").read_text()
    with pytest.raises(FerError, match="no unfinished pipeline run newer than the last one that finished"):
        run_pipeline(PipelineConfig(out=str(out)), progress=lambda _: None, resume=True)


def test_resume_picks_the_newest_unfinished_run_and_counts_a_killed_attempt_to_its_last_write(synthetic_root, tmp_path):
    import time

    from fer_lib.reporting.pipeline import resumable_run

    out = tmp_path / "reports"
    for name, status in (("20261205-010000-full", "running"), ("20261205-020000-full", "succeeded"),
                         ("20261205-030000-full", None)):
        (out / name).mkdir(parents=True)
        (out / name / "pipeline_config.json").write_text("{}")
        if status:
            (out / name / "status.json").write_text(json.dumps({"status": status}))
    assert resumable_run(out) == (out / "20261205-030000-full").resolve()
    assert resumable_run(out, out / "20261205-010000-full") == (out / "20261205-010000-full").resolve()
    with pytest.raises(FerError, match="this run finished"):
        resumable_run(out, out / "20261205-020000-full")
    with pytest.raises(FerError, match="not a pipeline run folder"):
        resumable_run(out, tmp_path)

    # A run killed in notebook 02, 1000 s after it started; its folder was last written just now.
    run_dir = out / "20261205-010000-full"
    notebooks = tmp_path / "notebooks"
    shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks", notebooks)
    failing = nbformat.read(notebooks / "02_hyperparameter_search.ipynb", as_version=4)  # its kernel, new cells
    failing.cells = [nbformat.v4.new_code_cell("data = None", metadata={"tags": ["parameters"]}),
                     nbformat.v4.new_code_cell("raise RuntimeError('still broken')")]
    nbformat.write(failing, notebooks / "02_hyperparameter_search.ipynb")
    saved = {"notebooks_dir": str(tmp_path / "gone"), "resolved": {"data": "/no/such/data", "profile": "full"}}
    (run_dir / "pipeline_config.json").write_text(json.dumps(saved))
    (run_dir / "status.json").write_text(json.dumps({
        "status": "running", "running_notebook": "02_hyperparameter_search", "timings_s": {"01_data_exploration": 5.0},
        "attempts": [{"seconds": 5.0, "started_unix": time.time() - 1000, "open": True}]}))
    with pytest.raises(FerError, match="the run's data is gone"):
        run_pipeline(PipelineConfig(out=str(out)), progress=lambda _: None, resume=run_dir)
    saved["resolved"]["data"] = str(synthetic_root)
    (run_dir / "pipeline_config.json").write_text(json.dumps(saved))
    with pytest.raises(FerError, match="notebook.* missing"):
        run_pipeline(PipelineConfig(out=str(out)), progress=lambda _: None, resume=run_dir)
    saved["notebooks_dir"] = str(notebooks)
    (run_dir / "pipeline_config.json").write_text(json.dumps(saved))
    lines = []
    with pytest.raises(PipelineError, match="still broken"):
        run_pipeline(PipelineConfig(out=str(out)), progress=lines.append, resume=run_dir)
    assert "01_data_exploration done" in lines[0] and "in 1 earlier attempt(s)" in lines[0]
    status = json.loads((run_dir / "status.json").read_text())
    killed, failed = status["attempts"]
    assert killed["seconds"] == pytest.approx(1000, abs=30) and "open" not in killed and "open" not in failed
    assert status["status"] == "failed" and status["timings_s"] == {"01_data_exploration": 5.0}


def test_the_landing_pages_times_add_up_and_its_configuration_reads_in_words():
    from fer_lib.reporting.pages import configuration_rows, report_links, timing_rows

    summary = {"timings_s": {name: 10.0 for name in NOTEBOOKS}, "total_s": 41.5, "attempts": [{"seconds": 41.5}]}
    rows = timing_rows(summary)
    assert sum(seconds for _, seconds in rows) == pytest.approx(41.5) and rows[-1] == ("rendering the reports and this page", 1.5)
    shown = dict(configuration_rows({"profile": "smoke", "max_trials": 1, "seed": 1234, "tuning_max_train_images": 8000,
                                     "mlflow_uri": None, "label_mode": "majority", "model_file": "model/model.keras",
                                     "run_dir": "/x", "synthetic": True}))
    assert shown == {"profile": "smoke", "generated demo data": "yes", "seed": "1234", "search trials": "1",
                     "training faces per trial": "8,000"}
    assert dict(configuration_rows({"label_mode": "crossentropy"}, votes=True)) == {"FER+ labels trained towards": "crossentropy"}
    assert report_links(0) == [("index.html", "\u2190 All reports (index)"),
                               ("02_hyperparameter_search.html", "Next: 2. Hyperparameter search \u2192")]
    assert report_links(3)[-1] == ("03_training.html", "\u2190 3. Training")


def test_rendered_pages_carry_their_title_links_and_the_figures_titles_as_alt_text(tmp_path):
    import base64

    from fer_lib.reporting.pages import render_html

    png = base64.b64encode(b"\x89PNG fake").decode()
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("figure")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "Mean face per emotion"}),
                    nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 9x4>"})]
    notebook.cells = [nbformat.v4.new_markdown_cell("# 1. Data exploration"), cell]
    nbformat.write(notebook, tmp_path / "n.ipynb")
    render_html(tmp_path / "n.ipynb", tmp_path / "n.html", False, title="1. Data exploration",
                links=[("index.html", "All reports")])
    page = (tmp_path / "n.html").read_text()
    assert "<title>1. Data exploration</title>" in page and page.count("<a href='index.html'>All reports</a>") == 2
    assert 'alt="Mean face per emotion"' in page and 'alt="Figure"' in page
