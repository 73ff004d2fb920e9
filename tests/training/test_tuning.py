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
    assert overview.index.name == "trial" and overview.index.tolist() == ["0", "1"]  # no second, unnamed index
    assert overview["epochs"].tolist() == [3, 3]
    assert overview["batch norm"].tolist() == ["no", "yes"]
    assert len(overview.columns) <= 10 < len(trials.columns)
    presets = pd.DataFrame([{"trial": "0", "status": "COMPLETED", "val_accuracy": 0.4, "epochs": 2,
                             "preset": "fer_cnn", "learning_rate_scale": 0.5}])
    assert trials_overview(presets).loc["0", "preset"] == "fer_cnn"  # rows are named by trial id
    assert tuning.matching_preset({"preset": "fer_cnn", "learning_rate_scale": 1.0}) == "fer_cnn"
    assert tuning.matching_preset({"preset": "fer_cnn", "learning_rate_scale": 0.5}) is None
    assert tuning.matching_preset(SEED_CNN_POINT) == "seed_cnn"
    assert tuning.matching_preset({**SEED_CNN_POINT, "dropout": 0.2}) is None


def _with_builder_defaults(config) -> dict:
    """A TrainConfig as a dict whose model_options spell out the builder's defaults too."""
    import inspect

    from fer_lib.models.registry import MODEL_BUILDERS

    values = config.to_dict()
    defaults = {name: p.default for name, p in inspect.signature(MODEL_BUILDERS[config.model]).parameters.items()
                if p.default is not inspect.Parameter.empty and name not in ("augment", "seed")}
    values["model_options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in {**defaults, **config.model_options}.items()}
    return values


def test_the_strong_spaces_first_trial_is_the_best_known_recipe(tmp_path):
    from fer_lib.training.presets import preset_config

    hp = kt.HyperParameters()
    config = tuning.StrongHyperModel()._config(hp)  # every hyperparameter at its default
    assert hp.values == tuning.BEST_KNOWN_POINT
    assert tuning.matching_preset(hp.values) == tuning.BEST_KNOWN_PRESET == "fer_cnn_crop_vgg"
    assert _with_builder_defaults(config) == _with_builder_defaults(preset_config("fer_cnn_crop_vgg"))
    for space in ("strong", "strong_gpu"):
        search = tuning.make_tuner("random", tmp_path, space, max_trials=3, search_space=space, overwrite=True)
        assert search.oracle._random_values() == tuning.BEST_KNOWN_POINT  # what a fresh search tries first
    assert {"fer_vgg", "transfer_lite2_gpu"} <= set(tuning.strong_presets("strong_gpu"))
    assert not {"fer_vgg", "transfer_lite2_gpu"} & set(tuning.strong_presets("strong"))
    assert not set(tuning.FAMILY_PRESETS) & set(tuning.strong_presets("strong_gpu"))  # the family holds those


@pytest.mark.parametrize("name", sorted(tuning.FAMILY_PRESETS))
def test_every_preset_the_strong_space_leaves_out_is_a_point_of_its_family(name):
    from fer_lib.training.presets import preset_config

    point = tuning.FAMILY_PRESETS[name]
    assert _with_builder_defaults(tuning.train_config_from(point)) == _with_builder_defaults(preset_config(name))
    assert tuning.matching_preset(point) == name


def test_a_family_point_becomes_a_cosine_adamw_train_config():
    from fer_lib.models.augmentation import AugmentConfig

    point = {"recipe": "fer_cnn", "widths": "32-64-128-256", "crop": 44, "head": "flatten", "dropout": 0.3,
             "learning_rate": 1e-3, "weight_decay": 0.01, "label_smoothing": 0.0, "erasing": 0.25}
    config = tuning.train_config_from(point, data="d", out="o", time_budget=600, early_stopping_patience=None)
    assert (config.model, config.optimizer, config.lr_schedule, config.batch_size) == ("fer_cnn", "adamw", "cosine", 64)
    assert (config.learning_rate, config.weight_decay, config.label_smoothing) == (1e-3, 0.01, 0.0)
    assert config.epochs == config.early_stopping_patience == 80  # the narrow network on crops, as fer_cnn_crop
    assert config.model_options == {"widths": [32, 64, 128, 256], "dense_units": 256, "head": "flatten", "dropout": 0.3}
    assert config.augment == AugmentConfig(flip=True, shift=0.1, rotation_deg=10.0, zoom=0.15, erasing=0.25, crop=44)
    assert (config.data, config.out, config.time_budget) == ("d", "o", 600)
    # A row of the trials table: pandas turns the column of a value some trials lack into floats, NaN where unset.
    row = {**point, "crop": 44.0, "preset": float("nan"), "trial": "3", "val_accuracy": 0.5}
    assert tuning.train_config_from(row).to_dict() == tuning.train_config_from(point).to_dict()
    wide = tuning.train_config_from({**point, "widths": "64-128-256-512", "crop": 0})
    assert wide.epochs == 60 and wide.augment.crop == 0 and wide.model_options["dense_units"] == 512
    longer = tuning.final_train_config(point, epochs_scale=2.0, time_budget=900)
    assert longer.epochs == longer.early_stopping_patience == 160 and longer.time_budget == 900
    assert tuning.final_train_config(point, epochs=5).epochs == 5
    preset = tuning.final_train_config({"recipe": "preset", "preset": "transfer_lite0"}, epochs_scale=2.0)
    assert preset.model == "efficientnet_lite" and preset.epochs == 50
    assert tuning.final_train_config(None, "fer_cnn_crop", epochs=None, time_budget=60).epochs == 80


@pytest.mark.slow
def test_the_strong_space_trains_its_first_trial_on_generated_faces(synthetic_root, tmp_path):
    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner("random", tmp_path, "s", max_trials=1, max_epochs=1, overwrite=True, search_space="strong")
    tuning.run_search(search, dataset, epochs=1, max_train_images=70, verbose=0)
    (trial,) = search.oracle.trials.values()
    assert trial.status == "COMPLETED" and trial.hyperparameters.values == tuning.BEST_KNOWN_POINT
    best = tuning.best_hyperparameters(search)
    assert best["model_options"]["widths"] == [64, 128, 256, 512]
    overview = tuning.trials_overview(tuning.trials_table(search))
    assert overview.loc["0", "recipe"] == "fer_cnn_crop_vgg" and "crop 40" in overview.loc["0", "network"]


def test_a_trial_of_a_cosine_recipe_anneals_over_its_epochs():
    schedule = tuning.trial_cosine(2e-3, 4)
    rates = [schedule.schedule(epoch, None) for epoch in range(4)]
    assert rates[0] == pytest.approx(2e-3) and rates == sorted(rates, reverse=True) and rates[-1] < 4e-4


@pytest.mark.slow
def test_no_trial_starts_once_the_search_time_budget_is_spent(synthetic_root, tmp_path, capsys):
    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner("random", tmp_path, "t", max_trials=4, max_epochs=1, overwrite=True)
    tuning.run_search(search, dataset, epochs=1, max_train_images=70, verbose=1, time_budget=1e-6)
    assert len(search.oracle.trials) == 1  # the first trial always runs: a search needs one to have a best
    assert search.oracle.max_trials == 4  # the undo: a resumed search has its trial count back
    assert "no further trial starts" in capsys.readouterr().out


def test_the_strong_spaces_trials_read_as_recipes():
    import pandas as pd

    nan = float("nan")
    family = {k: (nan if k == "preset" else v) for k, v in {**tuning.BEST_KNOWN_POINT, "preset": None}.items()}
    trials = pd.DataFrame([{"trial": "0", "status": "COMPLETED", "val_accuracy": 0.5, "epochs": None, **family},
                           {"trial": "1", "status": "COMPLETED", "val_accuracy": 0.4, "epochs": None, "recipe": "preset",
                            "preset": "fer_cnn_balanced", **{k: nan for k in tuning.FAMILY_CHOICES}},
                           {"trial": "2", "status": "COMPLETED", "val_accuracy": 0.3, "epochs": None,
                            **{**tuning.BEST_KNOWN_POINT, "head": "flatten", "crop": 0.0}, "preset": nan}])
    overview = tuning.trials_overview(trials)
    assert overview["recipe"].tolist() == ["fer_cnn_crop_vgg", "fer_cnn_balanced", "fer_cnn family"]
    assert overview["network"].tolist() == ["64-128-256-512, dense 512, global average, crop 40",
                                            "32-64-128-256, dense 256, global average, whole face",
                                            "64-128-256-512, dense 512, flatten, whole face"]
    assert "class weights" in overview.loc["1", "regularisation"] and overview.loc["0", "optimizer"] == "adamw 0.002, cosine"
    assert len(overview.columns) <= 10


def test_the_command_line_offers_the_search_spaces_tuning_has():
    from fer_lib.cli import commands

    assert commands.SEARCH_SPACES == tuning.SEARCH_SPACES and tuning.DEFAULT_SEARCH_SPACE == "strong"
    for space in tuning.SEARCH_SPACES:
        assert commands.build_parser().parse_args(["pipeline", "--search-space", space]).search_space == space
    assert commands.build_parser().parse_args(["tune"]).search_space == "strong"


@pytest.mark.slow
def test_a_resumed_search_counts_the_time_its_killed_process_spent(synthetic_root, tmp_path, capsys):
    import json

    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner("random", tmp_path, "t", max_trials=3, max_epochs=1, overwrite=True)
    record = tmp_path / "t" / tuning.SEARCH_SECONDS_FILE
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"seconds": 500.0}))  # what the killed process had spent
    tuning.run_search(search, dataset, epochs=1, max_train_images=70, verbose=1, time_budget=400)
    assert len(search.oracle.trials) == 1 and "no further trial starts" in capsys.readouterr().out
    assert json.loads(record.read_text())["seconds"] >= 500


def test_the_demo_space_is_small_cnns_whose_batch_norm_follows_a_trials_few_steps(tmp_path):
    """The smoke profile's space: its trials learn the demo faces in 3 epochs where the seed CNN sat at chance
    (issue 54); batch norm at Keras' momentum 0.99 kept validation at chance while training learnt."""
    hp = kt.HyperParameters()
    model = tuning.DemoHyperModel().build(hp)  # every hyperparameter at its default: the widest demo network
    assert hp.values == tuning.DEMO_POINT and not tuning.is_seed_point(hp.values)
    assert {layer.momentum for layer in model.layers if "bn" in layer.name} == {0.9}
    assert model.count_params() < build_model("seed_cnn").count_params() / 4
    options = tuning.train_config_from(tuning.DEMO_POINT).model_options
    assert options["batch_norm_momentum"] == 0.9 and options["conv_filters"] == [32, 64, 128]
    assert "batch_norm_momentum" not in tuning.train_config_from(tuning.SEED_CNN_POINT).model_options  # others keep 0.99
    search = tuning.make_tuner("random", tmp_path, "demo", max_trials=5, search_space="demo", overwrite=True)
    assert search.oracle._random_values() == tuning.DEMO_POINT  # a fresh search's first trial
    assert "demo" in tuning.SPACE_DESCRIPTIONS and set(tuning.SPACE_DESCRIPTIONS) == set(tuning.SEARCH_SPACES)


@pytest.mark.slow
def test_the_search_log_the_table_and_the_figure_name_each_trial_by_its_id(synthetic_root, tmp_path, capsys):
    """Issue 54's page 02: the log said "Trial 1 Complete" for the table's trial 0, the table's epochs were
    None, and the figure had no chance line."""
    import matplotlib.pyplot as plt

    from fer_lib.reporting.figures import trials_figure

    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner("random", tmp_path, "t", max_trials=2, max_epochs=1, overwrite=True, search_space="demo")
    tuning.run_search(search, dataset, epochs=1, max_train_images=70, verbose=1, tensorboard=False)
    log = capsys.readouterr().out
    assert "running trial 0" in log and "Trial 0 Complete" in log and "Trial 1 Complete" in log and "Trial 2" not in log
    table = tuning.trials_table(search, epochs=1)
    assert table["epochs"].tolist() == [1, 1]
    assert set(tuning.trials_overview(table).index) == {"0", "1"}
    figure = trials_figure(table, chance=1 / 7)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == table["trial"].tolist()  # ids, best first
    assert ax.get_ylabel() == "validation accuracy"
    assert any(line.get_ydata()[0] == pytest.approx(1 / 7) for line in ax.get_lines())  # the chance line
    plt.close(figure)
