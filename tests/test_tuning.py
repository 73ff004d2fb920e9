"""The KerasTuner search space and its seed-point-first behaviour."""

from __future__ import annotations

import keras_tuner as kt
import pytest

from fer_lib import tuning
from fer_lib.data import load_dataset
from fer_lib.models import build_model


def test_seed_cnn_is_a_point_of_the_search_space():
    hp = kt.HyperParameters()
    model = tuning.CnnHyperModel().build(hp)  # every hyperparameter at its default
    assert tuning.is_seed_point(hp.values)
    assert model.count_params() == build_model("seed_cnn").count_params()
    config = tuning.train_config_from(tuning.SEED_CNN_POINT)
    assert config.model_options == {"conv_filters": [75, 125, 256], "dense_units": [260, 128, 64, 32],
                                    "dropout": 0.0, "batch_norm": False}


@pytest.mark.parametrize("kind", ["random", "hyperband"])
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
