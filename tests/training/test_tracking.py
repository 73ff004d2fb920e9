"""TensorBoard and MLflow tracking, read back with the tools' own readers (EventAccumulator, MlflowClient)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fer_lib.backend import keras
from fer_lib.data.dataset import load_dataset
from fer_lib.training.config import TrainConfig
from fer_lib.training.mlflow_tracking import EXPERIMENT, INSTALL_HINT, MlflowRun, resolve_uri
from fer_lib.training.run_folder import changed_settings
from fer_lib.training.tracking import RunTensorBoard, hparam_values

TINY_CNN = {"conv_filters": [8], "dense_units": [16]}


def _accumulator(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def _steps(folder, tag) -> list[int]:
    return [event.step for event in _accumulator(folder).Tensors(tag)]


def _hparams(folder) -> dict:
    """The HParams plugin's session values written in `folder`, as plain Python values."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = _accumulator(folder).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_the_settings_read_as_hparams_and_old_configs_still_load():
    values = hparam_values({"model": "cnn", "augment": {"crop": 40, "flip": True}, "model_options": {"widths": [32, 64]},
                            "teacher": None, "learning_rate": np.float32(0.5)})
    assert values == {"model": "cnn", "augment.crop": 40, "augment.flip": True, "model_options.widths": "[32, 64]",
                      "learning_rate": 0.5}
    old = TrainConfig().to_dict()
    del old["tensorboard"], old["mlflow_uri"]
    assert TrainConfig.from_dict(old).tensorboard is True and TrainConfig.from_dict(old).mlflow_uri is None
    # Turning tracking on or off is no change of recipe: a resumed or kept run accepts it.
    assert changed_settings({**old, "tensorboard": False, "mlflow_uri": "sqlite:///x.db"}, old) == []


def test_tracking_is_no_part_of_a_recorded_recipe():
    from fer_lib.records.reading import overrides
    from fer_lib.training.presets import preset_config

    config = preset_config("seed_cnn", tensorboard=False, mlflow_uri="sqlite:///runs/mlflow.db").to_dict()
    assert overrides(config, "seed_cnn") == {}


def test_the_mlflow_uri_comes_from_the_option_then_the_variable_then_runs(monkeypatch, tmp_path):
    monkeypatch.delenv("FER_MLFLOW_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) is None
    assert resolve_uri("default") == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert resolve_uri("http://tracking:5000") == "http://tracking:5000"
    assert resolve_uri("store") == (tmp_path / "store").as_uri()
    monkeypatch.setenv("FER_MLFLOW_URI", "http://elsewhere:5000")
    assert resolve_uri(None) == resolve_uri("default") == "http://elsewhere:5000"


def test_mlflow_without_the_extra_is_one_line_before_training(monkeypatch, tmp_path, capsys):
    from fer_lib.cli import main

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: importing it raises ImportError
    assert main(["train", "--demo", "--mlflow", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fer train: error: {INSTALL_HINT}" and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_the_command_line_turns_tensorboard_off_and_mlflow_on():
    from fer_lib.cli.commands import build_parser

    parser = build_parser()
    for command in (["train"], ["tune"], ["pipeline"]):
        assert parser.parse_args(command).tensorboard is True and parser.parse_args(command).mlflow is None
        args = parser.parse_args([*command, "--no-tensorboard", "--mlflow"])
        assert args.tensorboard is False and args.mlflow == "default"
        assert parser.parse_args([*command, "--mlflow", "http://host:5000"]).mlflow == "http://host:5000"


def test_a_distributed_search_hands_its_tracking_to_every_worker():
    from fer_lib.training.distributed_search import SearchSettings, _settings_parser

    settings = SearchSettings(data="d", directory="t", project="p", tensorboard=False, mlflow_uri="sqlite:///m.db",
                              mlflow_parent="abc123")
    assert SearchSettings(**vars(_settings_parser().parse_args(settings.arguments()))) == settings
    on = SearchSettings(data="d", directory="t", project="p")
    assert SearchSettings(**{k: v for k, v in vars(_settings_parser().parse_args(on.arguments())).items() if v is not None}) == on


def test_without_tensorflow_a_run_trains_without_tensorboard_after_one_line(monkeypatch, tmp_path, capsys):
    from fer_lib.training.run_tracking import RunTracking

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # a JAX machine without TensorFlow
    tracking = RunTracking(TrainConfig(out=str(tmp_path)), tmp_path, resuming=False)
    assert tracking.callbacks() == [] and not (tmp_path / "tensorboard").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("Warning: TensorBoard logging") and "--no-tensorboard" in err and "\n" not in err


def test_a_folder_tensorboard_cannot_write_warns_once_and_training_goes_on(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).normal(size=(16, 4)), keras.utils.to_categorical(np.arange(16) % 2, 2)
    history = model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0, callbacks=[RunTensorBoard(blocker / "tb")])
    assert len(history.history["loss"]) == 3
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning: TensorBoard")]
    assert len(warnings) == 1 and "training goes on" in warnings[0]


@pytest.mark.slow
def test_an_mlflow_store_that_fails_mid_run_warns_once(tmp_path, capsys):
    run = MlflowRun(f"sqlite:///{tmp_path / 'mlflow.db'}", "run")
    run.log_metrics({"loss": 1.0}, step=0)

    class Gone:
        def __getattr__(self, name):
            raise ConnectionError("the tracking server went away")

    run.client = Gone()
    run.log_metrics({"loss": 0.5}, step=1)
    run.log_artifacts([tmp_path / "mlflow.db"])
    run.end()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning: MLflow")]
    assert run.failed and len(warnings) == 1 and "ConnectionError" in warnings[0]


@pytest.mark.slow
def test_a_run_logs_each_epoch_to_tensorboard_and_mlflow(synthetic_root, tmp_path):
    from fer_lib.training.trainer import train

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "run"
    config = TrainConfig(model="cnn", model_options=TINY_CNN, out=str(out), epochs=3, batch_size=32, precision="float32",
                         early_stopping_patience=10, mlflow_uri=uri)
    dataset = load_dataset(synthetic_root)
    result = train(config, dataset, verbose=0)
    epochs = list(range(result.summary["epochs_run"]))
    assert epochs == [0, 1, 2]
    (logs,) = (out / "tensorboard").iterdir()  # this run's, named by its start time
    for split in ("train", "validation"):
        for tag in ("epoch_loss", "epoch_accuracy"):
            assert _steps(logs / split, tag) == epochs
    assert _steps(logs / "train", "epoch_learning_rate") == epochs
    images = _accumulator(logs / "validation").Tags()["tensors"]
    assert {"confusion_matrix", "misclassified_faces"} <= set(images)
    assert _hparams(logs)["model"] == "cnn"
    # Small: no per-batch histograms, no graph.
    assert sum(f.stat().st_size for f in (out / "tensorboard").rglob("*") if f.is_file()) < 1_000_000

    client = _client(uri)
    run = client.get_run(result.summary["mlflow_run_id"])
    assert run.data.params["model"] == "cnn" and run.data.params["epochs"] == "3" and "mlflow_uri" not in run.data.params
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == epochs
    assert [m.step for m in client.get_metric_history(run.info.run_id, "learning_rate")] == epochs
    assert run.data.metrics["best_val_accuracy"] == pytest.approx(result.summary["best_val_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "config.json", "history.csv", "train_summary.json"} <= artifacts
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT


@pytest.mark.slow
def test_an_unreachable_mlflow_server_leaves_the_run_and_its_files(synthetic_root, tmp_path, capsys):
    from fer_lib.training.distributed_search import free_port
    from fer_lib.training.trainer import train

    config = TrainConfig(model="cnn", model_options=TINY_CNN, out=str(tmp_path / "run"), epochs=2, batch_size=32,
                         precision="float32", mlflow_uri=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    result = train(config, load_dataset(synthetic_root), verbose=0)
    assert result.model_path.is_file() and result.summary["epochs_run"] == 2 and "mlflow_run_id" not in result.summary
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning: MLflow")]
    assert len(warnings) == 1 and "training goes on" in warnings[0]


@pytest.mark.slow
def test_search_trials_log_hparams_and_become_child_runs(synthetic_root, tmp_path):
    from fer_lib.training import tuning

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner("random", tmp_path, "t", max_trials=2, max_epochs=2, overwrite=True)
    tuning.run_search(search, dataset, epochs=2, max_train_images=70, verbose=0, mlflow_uri=uri)
    trials = list(search.oracle.trials.values())
    assert len(trials) == 2
    for trial in trials:
        log_dir = tmp_path / "t" / f"trial_{trial.trial_id}" / "tensorboard"
        assert _hparams(log_dir)["conv_blocks"] == trial.hyperparameters.values["conv_blocks"]
        assert _steps(log_dir / "validation", "epoch_accuracy") == list(range(len(_steps(log_dir / "train", "epoch_loss"))))

    client = _client(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    parents = client.search_runs([experiment.experiment_id], "tags.`fer.kind` = 'search'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    assert sorted(c.data.tags["fer.trial_id"] for c in children) == sorted(t.trial_id for t in trials)
    for child in children:
        trial = search.oracle.trials[child.data.tags["fer.trial_id"]]
        assert child.data.params["conv_blocks"] == str(trial.hyperparameters.values["conv_blocks"])
        assert client.get_metric_history(child.info.run_id, "val_accuracy")[0].step == 0
        assert child.data.metrics["best_val_accuracy"] == pytest.approx(trial.score)


@pytest.mark.slow
def test_fer_tune_workers_log_their_trials_under_the_searchs_mlflow_run(synthetic_root, tmp_path):
    from fer_lib.cli import main

    uri, out = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuning"
    assert main(["tune", "--data", str(synthetic_root), "--workers", "2", "--tuner", "random", "--trials", "2",
                 "--epochs", "1", "--batch-size", "32", "--max-train-images", "70", "--out", str(out),
                 "--search-space", "cnn", "--mlflow", uri]) == 0
    (project,) = out.iterdir()
    trial_logs = sorted(project.glob("trial_*/tensorboard"))
    assert len(trial_logs) == 2 and all("conv_blocks" in _hparams(folder) for folder in trial_logs)
    client = _client(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`fer.kind` = 'search'")
    assert parent.info.status == "FINISHED" and parent.data.params["project"] == project.name
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"trials.csv", "best_hyperparameters.json"}
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)


@pytest.mark.slow
def test_a_pipeline_logs_its_search_training_and_reports(synthetic_root, tmp_path):
    import json

    import nbformat

    from fer_lib.reporting.pipeline import PipelineConfig, run_pipeline

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = run_pipeline(PipelineConfig(data=str(synthetic_root), profile="smoke", out=str(tmp_path / "reports"),
                                          mlflow_uri=uri), progress=lambda _: None)
    training = nbformat.read(run_dir / "notebooks" / "03_training.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for cell in training.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert f"tensorboard --logdir {run_dir.parent}  # this run: {run_dir / 'model' / 'tensorboard'}" in printed
    (logs,) = (run_dir / "model" / "tensorboard").iterdir()
    assert _steps(logs / "validation", "epoch_accuracy")
    summary = json.loads((run_dir / "model" / "train_summary.json").read_text())
    client = _client(uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["test_top1_accuracy"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["top1_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "metrics.json", "index.html", "04_evaluation.html"} <= artifacts
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (search,) = client.search_runs([experiment.experiment_id], "tags.`fer.kind` = 'search'")
    assert client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{search.info.run_id}'")
