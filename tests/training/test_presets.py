"""Named presets: configs, `fer train --preset`, overrides, the focal loss and the presets search space."""

from __future__ import annotations

import json
import re

import keras
import keras_tuner as kt
import numpy as np
import pytest

from fer_lib.cli import main
from fer_lib.data.dataset import load_dataset
from fer_lib.errors import FerError
from fer_lib.models.registry import build_model
from fer_lib.training import presets, tuning
from fer_lib.training.trainer import train


@pytest.mark.parametrize("name", presets.preset_names())
def test_every_preset_is_a_valid_config_that_builds(name):
    config = presets.preset_config(name, data="d", out="o")
    config.validate()
    model = build_model(config.model, augment=config.augment, **config.model_options)
    assert model.output_shape == (None, 7)
    assert config.data == "d" and presets.get_preset(name).description


def test_preset_values_and_overrides():
    config = presets.preset_config("fer_cnn", learning_rate=5e-3, epochs=3)
    assert (config.model, config.optimizer, config.lr_schedule, config.label_smoothing) == ("fer_cnn", "adamw", "cosine", 0.1)
    assert config.learning_rate == 5e-3 and config.epochs == 3
    assert config.augment.rotation_deg == 10.0
    # Overrides never leak into the table.
    assert presets.preset_config("fer_cnn").learning_rate == 2e-3
    vgg = presets.preset_config("fer_vgg")
    assert vgg.optimizer == "sgd" and vgg.lr_factor == 0.75 and vgg.augment.erasing == 0.5
    assert build_model(vgg.model, **vgg.model_options).count_params() > 3 * build_model("fer_cnn").count_params()
    with pytest.raises(FerError, match="unknown preset 'nope'; choose one of seed_cnn, fer_cnn"):
        presets.get_preset("nope")


def test_a_preset_that_runs_every_epoch_still_does_with_more_epochs():
    # fer_cnn_crop_vgg's patience of 60 is its 60 epochs: its cosine schedule ends it, not val_loss.
    assert presets.preset_config("fer_cnn_crop_vgg").early_stopping_patience == 60
    assert presets.preset_config("fer_cnn_crop_vgg", epochs=200).early_stopping_patience == 200
    assert presets.preset_config("fer_cnn_crop_vgg", epochs=20).early_stopping_patience == 60
    assert presets.preset_config("fer_cnn_crop_vgg", epochs=200, early_stopping_patience=7).early_stopping_patience == 7
    # A preset that does stop early keeps its patience.
    assert presets.preset_config("fer_cnn", epochs=200).early_stopping_patience == 12


@pytest.mark.slow
def test_fer_train_preset_with_an_override(synthetic_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "fer_cnn_balanced", "--data", str(synthetic_root), "--epochs", "1",
                 "--learning-rate", "0.004", "--out", str(out), "--no-eval", "--precision", "float32"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "fer_cnn" and saved["class_weights"] is True and saved["optimizer"] == "adamw"
    assert saved["learning_rate"] == 0.004 and saved["epochs"] == 1 and saved["augment"]["shift"] == 0.1


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "fer_cnn", "--model", "seed_cnn"], "pass either --preset or --model"),
    (["--preset", "fer_cnn", "--label-smoothing", "1.5"], "label_smoothing must be in [0, 1), got 1.5"),
    (["--preset", "fer_cnn", "--weight-decay", "-1"], "weight_decay must be 0 or more, got -1.0"),
    (["--preset", "fer_cnn", "--init-from", "/no/such.keras"], "/no/such.keras: model file not found; --init-from takes"),
    (["--preset", "fer_cnn", "--teacher", "/no/teacher.keras"], "/no/teacher.keras: teacher model not found; --teacher takes"),
    (["--preset", "fer_cnn", "--teacher", "t.keras", "--distillation", "1.5"], "distillation must be in (0, 1], got 1.5"),
    (["--preset", "fer_cnn", "--distillation", "0.6"], "--distillation 0.6 needs --teacher T.keras"),
    (["--preset", "fer_cnn", "--mixing", "cutmix", "--mixing-strength", "2"], "mixing_strength must be in (0, 1] for cutmix, got 2.0"),
    (["--preset", "fer_cnn", "--mixing-strength", "0.4"], "mixing_strength 0.4 given without mixing; choose mixing mixup or cutmix"),
])
def test_bad_preset_arguments_are_one_line(args, message, synthetic_root, tmp_path, capsys):
    assert main(["train", *args, "--data", str(synthetic_root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_focal_loss_trains(synthetic_root, tmp_path):
    config = presets.preset_config("seed_cnn", data=str(synthetic_root), out=str(tmp_path / "f"), epochs=1,
                                   loss="focal", precision="float32", max_train_images=70)
    from fer_lib.training.recipe import make_loss

    loss = make_loss(config)
    assert isinstance(loss, keras.losses.CategoricalFocalCrossentropy) and loss.alpha == 1.0 and loss.gamma == 2.0
    result = train(config, load_dataset(synthetic_root))
    losses = result.history["loss"]
    assert len(losses) == 1 and np.isfinite(losses[0])


@pytest.mark.slow
def test_presets_search_space_starts_with_seed_cnn_and_trains_the_best_preset(synthetic_root, tmp_path):
    hp = kt.HyperParameters()
    tuning.PresetHyperModel().build(hp)
    assert tuning.is_seed_point(hp.values) and hp.values["preset"] == "seed_cnn"

    dataset = load_dataset(synthetic_root)
    search = tuning.make_tuner("random", tmp_path, "p", max_trials=2, seed=3, overwrite=True, search_space="presets")
    tuning.run_search(search, dataset, epochs=1, max_train_images=70, verbose=0)
    assert {"preset", "learning_rate_scale"} <= set(tuning.trials_table(search).columns)
    best = tuning.best_hyperparameters(search)
    config = tuning.train_config_from(best["values"], epochs=2)
    preset = presets.get_preset(best["values"]["preset"]).settings
    assert config.model == preset["model"] and config.epochs == 2
    assert config.learning_rate == pytest.approx(preset["learning_rate"] * best["values"]["learning_rate_scale"])
    with pytest.raises(ValueError, match="unknown search space"):
        tuning.make_tuner("random", tmp_path, "x", search_space="resnet")


@pytest.mark.slow
def test_init_from_starts_at_the_given_weights(synthetic_root, tmp_path):
    from fer_lib.models.saving import load_model, save_model

    start = save_model(build_model("fer_cnn", seed=11), tmp_path / "start.keras")
    config = presets.preset_config("fer_cnn", data=str(synthetic_root), out=str(tmp_path / "ft"), epochs=1,
                                   optimizer="sgd", learning_rate=1e-12, weight_decay=0.0, precision="float32",
                                   init_from=str(start))
    result = train(config, load_dataset(synthetic_root))
    tuned = load_model(result.model_path).get_layer("s1_conv1").get_weights()[0]
    np.testing.assert_allclose(tuned, load_model(start).get_layer("s1_conv1").get_weights()[0], atol=1e-6)
    fresh = build_model("fer_cnn", seed=config.seed).get_layer("s1_conv1").get_weights()[0]
    assert np.abs(tuned - fresh).max() > 1e-3  # a run without init_from would start elsewhere


def test_init_from_another_architecture_is_refused_before_writing(synthetic_root, tmp_path):
    from fer_lib.models.saving import save_model

    start = save_model(build_model("seed_cnn", seed=0), tmp_path / "seed.keras")
    config = presets.preset_config("fer_cnn", data=str(synthetic_root), out=str(tmp_path / "ft"), epochs=1,
                                   init_from=str(start))
    with pytest.raises(FerError, match="seed.keras: its weights do not fit model 'fer_cnn'"):
        train(config, load_dataset(synthetic_root))
    assert not (tmp_path / "ft").exists()


def test_distillation_targets_mix_labels_and_teacher_probabilities():
    from fer_lib.training.targets import training_targets

    labels = np.array([0, 3])
    teacher = np.full((2, 7), 0.1, np.float32)
    teacher[:, 6] = 0.4
    np.testing.assert_array_equal(training_targets(labels), np.eye(7, dtype=np.float32)[labels])
    mixed = training_targets(labels, teacher, distillation=0.25)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed[0], 0.75 * np.eye(7)[0] + 0.25 * teacher[0], rtol=1e-6)
    np.testing.assert_allclose(training_targets(labels, teacher, distillation=1.0), teacher)


@pytest.fixture()
def fit_calls(monkeypatch):
    """Records the keyword arguments of every Model.fit; `fit_calls.stop_after_epoch = N` Ctrl-C's the next fit then."""
    calls = []
    original = keras.Model.fit

    class StopAfter(keras.callbacks.Callback):
        def __init__(self, epochs):
            super().__init__()
            self.epochs = epochs

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == self.epochs:
                raise KeyboardInterrupt

    def recording_fit(model, *args, **kwargs):
        calls.append(kwargs)
        stop, record.stop_after_epoch = record.stop_after_epoch, None
        if stop:  # last, after the run's own state tracker has saved the epoch
            kwargs = {**kwargs, "callbacks": [*kwargs["callbacks"], StopAfter(stop)]}
        return original(model, *args, **kwargs)

    def record():
        return calls

    record.stop_after_epoch = None
    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    return record


@pytest.mark.slow
def test_fer_train_with_a_teacher_fits_its_soft_targets_and_resumes_without_it(synthetic_root, tmp_path, fit_calls, capsys):
    from fer_lib.models.saving import save_model

    teacher = save_model(build_model("seed_cnn", seed=5), tmp_path / "teacher.keras")
    out = tmp_path / "student"
    fit_calls.stop_after_epoch = 1
    assert main(["train", "--preset", "fer_cnn", "--data", str(synthetic_root), "--epochs", "2", "--out", str(out),
                 "--teacher", str(teacher), "--distillation", "0.7", "--max-train-images", "70", "--no-eval",
                 "--precision", "float32"]) == 130
    assert "agrees with" in capsys.readouterr().out
    targets = fit_calls()[0]["y"]
    assert targets.shape == (70, 7) and targets.max() < 1.0  # no one-hot row left: every face got the teacher's share
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-5)
    assert targets.max(axis=1).min() >= 0.3 - 1e-6  # the label keeps its 1 - 0.7 share

    teacher.rename(tmp_path / "moved.keras")  # a resumed run needs only the probabilities it saved
    assert main(["train", "--resume", "--out", str(out), "--no-eval"]) == 0
    np.testing.assert_array_equal(fit_calls()[1]["y"], targets)
    saved = json.loads((out / "config.json").read_text())
    assert saved["teacher"] == str(teacher) and saved["distillation"] == 0.7 and (out / "model.keras").is_file()


def test_class_weights_follow_the_true_label_not_the_largest_target():
    from fer_lib.training.targets import class_weights_for, training_batches, training_targets

    labels = np.array([0] * 10 + [1] * 2 + [2] * 4)
    teacher = np.zeros((16, 7), np.float32)
    teacher[:, 2] = 1.0  # a teacher sure that every face is class 2
    config = presets.preset_config("fer_cnn_balanced")
    batches = training_batches(config, np.zeros((16, 48, 48, 1), np.float32), training_targets(labels, teacher, 0.9),
                               labels, seed=0)
    by_class = class_weights_for(labels)
    np.testing.assert_allclose(batches["sample_weight"], [by_class[c] for c in labels])
    assert "class_weight" not in batches and len(set(np.round(batches["sample_weight"], 5))) == 3


def test_mixing_blends_each_faces_weight_like_its_target():
    from fer_lib.training.targets import training_batches, training_targets

    labels = np.array([0] * 12 + [1] * 4)
    config = presets.preset_config("fer_cnn_balanced", mixing="mixup", mixing_strength=1.0)
    batches = training_batches(config, np.zeros((16, 48, 48, 1), np.float32), training_targets(labels), labels, seed=0)["x"]
    images, targets, weights = batches[0]
    # Balanced weights: 16 / (2 * 12) for class 0, 16 / (2 * 4) for class 1; a blend lies on the line between.
    np.testing.assert_allclose(weights, targets[:, 0] * 16 / 24 + targets[:, 1] * 16 / 8, rtol=1e-5)
    assert images.shape == (16, 48, 48, 1) and ((weights > 16 / 24 + 1e-3) & (weights < 2 - 1e-3)).any()


def test_mixed_batches_cover_every_face_once_an_epoch():
    from fer_lib.training.targets import MixedBatches

    images = np.arange(40, dtype=np.float32)[:, None, None, None] * np.ones((1, 48, 48, 1), np.float32)
    targets = np.eye(7, dtype=np.float32)[np.arange(40) % 7]
    batches = MixedBatches(images, targets, 16, layer=lambda data, training: data, seed=1)  # no blending
    seen = [batches[i] for i in range(len(batches))]
    faces = np.concatenate([x for x, _ in seen])[:, 0, 0, 0]
    assert sorted(faces.tolist()) == list(range(40))
    np.testing.assert_array_equal(np.concatenate([y for _, y in seen]), targets[faces.astype(int)])


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixed_batches_blend_faces_and_targets(kind):
    from fer_lib.models.augmentation import mixing_layer
    from fer_lib.training.targets import MixedBatches

    labels = np.arange(40) % 7
    # Each face a flat grey level unique to it, so a blend of two faces shows as new pixel values.
    images = np.repeat(np.linspace(0, 255, 40, dtype=np.float32)[:, None, None, None], 48, axis=1).repeat(48, axis=2)
    targets = np.eye(7, dtype=np.float32)[labels]
    batches = MixedBatches(images, targets, batch_size=16, layer=mixing_layer(kind, 1.0, seed=3), seed=3)
    assert len(batches) == 3
    seen_images, seen_targets = zip(*(batches[i] for i in range(len(batches))))
    mixed_images, mixed_targets = np.concatenate(seen_images), np.concatenate(seen_targets)
    assert mixed_images.shape == (40, 48, 48, 1) and mixed_targets.shape == (40, 7)
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, rtol=1e-5)
    assert (mixed_targets.max(axis=1) < 0.999).mean() > 0.5  # most targets are blends of two labels
    blended = [not np.isin(np.unique(face), images[:, 0, 0, 0]).all() if kind == "mixup" else len(np.unique(face)) > 1
               for face in mixed_images]
    assert np.mean(blended) > 0.5
    before = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(before, batches.order)


@pytest.mark.slow
def test_fer_train_with_cutmix_trains_on_mixed_batches(synthetic_root, tmp_path, fit_calls):
    from fer_lib.training.targets import MixedBatches

    out = tmp_path / "mix"
    assert main(["train", "--preset", "fer_cnn_balanced", "--data", str(synthetic_root), "--epochs", "2", "--out", str(out),
                 "--mixing", "cutmix", "--max-train-images", "70", "--no-eval", "--precision", "bfloat16"]) == 0
    batches = fit_calls()[0]["x"]
    assert isinstance(batches, MixedBatches) and batches.weights is not None and type(batches.layer).__name__ == "CutMix"
    saved = json.loads((out / "config.json").read_text())
    assert saved["mixing"] == "cutmix" and saved["mixing_strength"] is None
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "nan" not in history[-1]
    # The run trained in bfloat16 but handed the caller's float32 policy back.
    assert json.loads((out / "train_summary.json").read_text())["precision"] == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_adamw_weight_decay_zero_means_none():
    from fer_lib.training.recipe import make_optimizer

    assert make_optimizer(presets.preset_config("fer_cnn", weight_decay=0.0)).weight_decay == 0.0
    assert make_optimizer(presets.preset_config("seed_cnn", optimizer="adamw")).weight_decay == pytest.approx(1e-4)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_weight_decay_shrinks_kernels_but_not_batch_norm_or_biases(optimizer):
    from fer_lib.training.recipe import make_optimizer

    model = build_model("fer_cnn", seed=0)
    opt = make_optimizer(presets.preset_config("fer_cnn", optimizer=optimizer, learning_rate=0.1, weight_decay=0.5))
    before = {v.path: np.array(v) for v in model.trainable_variables}
    opt.apply_gradients([(keras.ops.zeros_like(v), v) for v in model.trainable_variables])  # decay alone
    shrunk = {v.path for v in model.trainable_variables if not np.allclose(np.array(v), before[v.path])}
    assert shrunk == {v.path for v in model.trainable_variables if v.path.endswith("/kernel")}
    assert np.allclose(np.array(model.get_layer("s1_bn1").gamma), 1.0)


def test_presets_search_trials_use_class_weights_when_the_preset_does(monkeypatch):
    seen = {}

    class FakeModel:
        def fit(self, x, y, **kwargs):
            seen.update(kwargs)

    hypermodel = tuning.PresetHyperModel(presets=["fer_cnn_balanced"])
    labels = np.array([0] * 30 + [1] * 10 + [2, 3, 4, 5, 6] * 2)
    hypermodel.fit(kt.HyperParameters(), FakeModel(), np.zeros((len(labels), 48, 48, 1)), np.eye(7)[labels], epochs=1)
    weights = seen["sample_weight"]  # each face's, by its label
    assert weights[labels == 1][0] > weights[labels == 0][0] and seen["epochs"] == 1
    seen.clear()
    tuning.PresetHyperModel(presets=["fer_cnn"]).fit(kt.HyperParameters(), FakeModel(), None, np.eye(7)[labels])
    assert "sample_weight" not in seen and "class_weight" not in seen


def test_presets_search_trials_of_ten_crop_presets_get_a_target_per_crop():
    seen = {}

    class FakeModel:
        def fit(self, x, y, **kwargs):
            seen["y"] = y

    labels = np.arange(14) % 7
    tuning.PresetHyperModel(presets=["fer_vgg_gap"]).fit(kt.HyperParameters(), FakeModel(), None, np.eye(7)[labels])
    assert seen["y"].shape == (14, 10, 7) and (seen["y"].argmax(axis=2) == labels[:, None]).all()


def test_fer_vgg_is_khaireddin_and_chens_network_and_fer_vgg_gap_its_shippable_head():
    from fer_lib.models.stats import count_macs

    vgg = presets.preset_config("fer_vgg")
    model = build_model(vgg.model, augment=vgg.augment, **vgg.model_options)
    assert model.count_params() == 29_892_679 and count_macs(model) == 350_519_296  # 29.9 M, 350 M per crop
    assert vgg.augment.crop == 40 and vgg.augment.crops == 10 and vgg.lr_monitor == "val_accuracy"
    gap = presets.preset_config("fer_vgg_gap")
    assert build_model(gap.model, augment=gap.augment, **gap.model_options).count_params() == 4_956_231
    assert len(presets.FER_VGG_DEVIATIONS) >= 5


@pytest.mark.slow
def test_ten_crops_per_face_train_with_each_faces_label_and_classify_one_crop(synthetic_root, tmp_path, fit_calls):
    from fer_lib.data.dataset import load_dataset
    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.training.config import TrainConfig

    config = TrainConfig(model="fer_cnn", out=str(tmp_path / "run"), epochs=1, batch_size=8, precision="float32",
                         class_weights=True, model_options={"widths": [8, 8, 8, 8], "dense_units": 8},
                         augment=AugmentConfig(crop=40, crops=10, erasing=0.5))
    result = train(config, load_dataset(synthetic_root), verbose=0)
    targets, weights = fit_calls()[-1]["y"], fit_calls()[-1]["sample_weight"]
    assert targets.shape[1:] == (10, 7) and (targets == targets[:, :1]).all()  # every crop has its face's target
    assert weights.shape == targets.shape[:2]
    assert np.isfinite(result.history["loss"][0]) and 0 <= result.history["accuracy"][0] <= 1
    assert result.model.predict(np.zeros((2, 48, 48, 1), np.float32), verbose=0).shape == (2, 7)


@pytest.mark.parametrize("augment, options, message", [
    (dict(crops=10), {}, "set augment.crop to their size"),
    (dict(crop=40, crops=5), {}, "augment.crops must be one of 1, 10"),
    (dict(crop=40, crops=10), dict(mixing="mixup"), "use one of the two"),
])
def test_bad_crop_settings_are_one_line(augment, options, message, tmp_path):
    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.training.config import TrainConfig

    with pytest.raises(FerError, match=message):
        train(TrainConfig(model="fer_cnn", out=str(tmp_path), augment=AugmentConfig(**augment), **options))


def test_the_plateau_schedule_can_watch_validation_accuracy(tmp_path):
    import keras

    from fer_lib.training.callbacks import ThroughputMeter, make_callbacks
    from fer_lib.training.config import TrainConfig

    config = TrainConfig(lr_schedule="plateau", lr_monitor="val_accuracy", lr_factor=0.75, lr_patience=5)
    plateau = next(c for c in make_callbacks(config, tmp_path, ThroughputMeter(1))
                   if isinstance(c, keras.callbacks.ReduceLROnPlateau))
    assert plateau.monitor == "val_accuracy" and plateau.mode == "max"  # higher is better
    with pytest.raises(FerError, match="unknown lr_monitor 'accuracy'"):
        train(TrainConfig(out=str(tmp_path), lr_monitor="accuracy"))


def test_fer_presets_lists_every_recipe_in_one_line_and_shows_one_in_full(capsys):
    import json

    from fer_lib.cli import main

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == presets.preset_names()
    for preset in presets.PRESETS.values():  # a recipe, not its results (those live in docs/results)
        assert "\n" not in preset.description
        assert not re.search(r"\d\.\d+%|images/s|faces/s|\d min\b|\bpt\b", preset.description), preset.name
    assert main(["presets", "fer_vgg"]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer"] == "sgd"
    assert main(["presets", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
