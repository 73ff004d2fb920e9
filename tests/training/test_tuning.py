"""The KerasTuner search space and its seed-point-first behaviour."""

from __future__ import annotations

import keras_tuner as kt
import pytest

from fer_lib.data.dataset import load_dataset
from fer_lib.models.registry import build_model
from fer_lib.training import tuning


def test_seed_cnn_is_a_point_of_the_search_space():
    hp = kt.HyperParameters()
    model = tuning.CnnHyperModel().build(hp)  # every hyperparameter at its default
    assert tuning.is_seed_point(hp.values)
    assert model.count_params() == build_model("seed_cnn").count_params()
    config = tuning.train_config_from(tuning.SEED_CNN_POINT)
    assert config.model_options == {"conv_filters": [75, 125, 256], "dense_units": [260, 128, 64, 32],
                                    "dropout": 0.0, "batch_norm": False}


@pytest.mark.parametrize("kind", ["random", "hyperband"])
@pytest.mark.slow
def test_a_fresh_search_starts_with_the_seed_cnn_and_records_its_best(kind, synthetic_root, tmp_path):
    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner(kind, tmp_path, "t", max_trials=1, max_epochs=1, overwrite=True)
    tuning.run_search(search, dataset, epochs=1, max_train_images=70, verbose=0)
    first = search.oracle.trials[min(search.oracle.trials)]
    assert tuning.is_seed_point(first.hyperparameters.values)
    table = tuning.trials_table(search)
    assert {"trial", "val_accuracy", "conv_blocks", "learning_rate"} <= set(table.columns)
    best = tuning.best_hyperparameters(search)
    tuning.write_best_hyperparameters(best, tmp_path / "best.json")
    assert tuning.read_best_hyperparameters(tmp_path / "best.json")["values"] == best["values"]


def test_project_name_changes_with_every_setting_that_shapes_the_search(tmp_path, monkeypatch):
    from fer_lib.training.tuning import project_name

    monkeypatch.chdir(tmp_path)
    base = dict(seed=1, max_trials=5, max_epochs=3, batch_size=64, max_train_images=None)
    name = project_name("data", "smoke", "random", "cnn", **base)
    assert name.startswith("smoke-random-")
    assert project_name(tmp_path / "data", "smoke", "random", "cnn", **base) == name  # relative or absolute
    changed = [project_name("other", "smoke", "random", "cnn", **base),
               project_name("data", "full", "random", "cnn", **base),
               project_name("data", "smoke", "bayesian", "cnn", **base),
               project_name("data", "smoke", "random", "presets", **base)]
    changed += [project_name("data", "smoke", "random", "cnn", **{**base, key: value})
                for key, value in (("seed", 2), ("max_trials", 6), ("max_epochs", 4), ("batch_size", 32),
                                   ("max_train_images", 1000))]
    assert len({name, *changed}) == len(changed) + 1
    # Hyperband's size comes from max_epochs alone: another trial count resumes the same search.
    assert (project_name("data", "smoke", "hyperband", "cnn", **base)
            == project_name("data", "smoke", "hyperband", "cnn", **{**base, "max_trials": 9}))


def test_the_trials_overview_fits_a_page_and_keeps_every_point_readable():
    import pandas as pd

    from fer_lib.training.tuning import SEED_CNN_POINT, trials_overview

    trials = pd.DataFrame([{"trial": "0", "status": "COMPLETED", "val_accuracy": 0.31, "epochs": 3, **SEED_CNN_POINT},
                           {"trial": "1", "status": "COMPLETED", "val_accuracy": 0.29, "epochs": 3,
                            **{**SEED_CNN_POINT, "conv_blocks": 2, "dense_layers": 1, "batch_norm": True}}])
    overview = trials_overview(trials)
    assert overview["network"].tolist() == ["conv 75-125-256, dense 260-128-64-32", "conv 75-125, dense 260"]
    assert overview["batch norm"].tolist() == ["no", "yes"]
    assert len(overview.columns) <= 10 < len(trials.columns)
    presets = pd.DataFrame([{"trial": "0", "status": "COMPLETED", "val_accuracy": 0.4, "epochs": 2,
                             "preset": "fer_cnn", "learning_rate_scale": 0.5}])
    assert trials_overview(presets).loc[0, "preset"] == "fer_cnn"
