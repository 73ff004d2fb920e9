"""The notebooks' figures and tables (fer_lib.reporting.figures)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from fer_lib.evaluation.metrics import compute_metrics  # noqa: E402
from fer_lib.reporting import figures as reports  # noqa: E402


def test_the_reliability_figure_shows_each_bins_accuracy_and_the_calibration_error():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    probabilities = np.hstack([np.tile([0.9, 0.1], (10, 1)), np.zeros((10, 5))])  # 0.9 sure, right 4 in 10
    fig = reports.reliability_figure(labels, probabilities)
    accuracy_axes, counts_axes = fig.axes
    heights = [bar.get_height() for bar in accuracy_axes.patches]
    assert np.isclose(heights[9], 0.4) and np.isnan(heights[:9]).all()
    assert [bar.get_height() for bar in counts_axes.patches][9] == 10
    assert "expected calibration error 0.500" in accuracy_axes.get_title()
    table = reports.metrics_table(compute_metrics(labels, probabilities))
    assert table.loc["Calibration error"].tolist() == ["0.5000", "\u2014"]


def _legend_covers_a_bar(fig) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        bars = [p.get_window_extent(renderer) for p in ax.patches if p.get_height() > 0]
        if any(box.overlaps(bar) for bar in bars):
            return True
    return False


def test_legends_stand_beside_the_bars_even_when_every_bar_is_full_height():
    import pandas as pd

    from fer_lib.labels import EMOTIONS

    balanced = pd.DataFrame({e: [108, 12, 30] for e in EMOTIONS}, index=["train", "val", "test"])
    assert not _legend_covers_a_bar(reports.class_counts_figure(balanced))
    perfect = {"per_class": {e: {"precision": 1.0, "recall": 1.0, "f1": 1.0} for e in EMOTIONS}}
    assert not _legend_covers_a_bar(reports.per_class_figure(perfect))
    trials = pd.DataFrame({"val_accuracy": [0.5, 0.4], "optimizer": ["adam", "sgd"]})
    assert not _legend_covers_a_bar(reports.trials_figure(trials))
    # The check itself sees a legend drawn over the bars.
    fig = reports.class_counts_figure(balanced)
    fig.axes[0].legend(loc="upper right")
    assert _legend_covers_a_bar(fig)


def test_a_run_reads_as_tables_not_as_a_dataclass_repr_or_a_dict():
    from fer_lib.training.presets import preset_config

    config = reports.config_table(preset_config("fer_vgg"))
    assert config.loc["optimizer", "value"] == "sgd"
    assert config.loc["augment.crops", "value"] == "10"
    assert config.loc["model_options.widths", "value"] == "64, 128, 256, 512"
    assert "init_from" not in config.index  # unset: left out, as are the knobs that only matter with another
    summary = {"model": "fer_cnn", "parameters": 1240000, "precision": "bfloat16", "hardware": "AMD EPYC, 2 cores",
               "train_images": 25837, "epochs_run": 3, "best_epoch": 2, "best_val_accuracy": 0.6123,
               "wall_seconds": 600.0, "images_per_second": 183.4, "images_per_second_per_epoch": [1.0, 2.0],
               "classes": ["angry"], "resumed_after_epoch": None}
    table = reports.training_summary_table(summary)
    shown = dict(zip(table.index, table.iloc[:, 0]))
    assert shown["parameters"] == "1,240,000" and shown["best validation accuracy"] == "61.23%"
    assert shown["wall time"] == "10.0 min" and shown["training speed"] == "183 faces/s, median epoch, fitting only"
    assert shown["over the whole run"] == "129 faces/s, validation and saving included"  # 25,837 faces x 3 epochs / 600 s
    assert "resumed after epoch" not in shown and "classes" not in shown  # nothing empty, no lists


def test_rebalancing_is_explained_for_the_data_at_hand():
    balanced = reports.rebalancing_note([1] * 7)
    assert "about equally frequent" in balanced and "rare" not in balanced
    skewed = reports.rebalancing_note([3995, 436, 4097, 7215, 4830, 3171, 4965])
    assert "**happy** is 16.5x as frequent as **disgust**" in skewed


def test_the_original_readme_column_stands_only_beside_fer2013_like_results():
    from fer_lib.evaluation.metrics import compares_with_original

    labels = np.arange(14) % 7
    metrics = compute_metrics(labels, np.eye(7)[labels])
    assert compares_with_original(metrics) and not compares_with_original(metrics, synthetic=True)
    assert "original README (seed CNN)" in reports.metrics_table(metrics)
    assert list(reports.metrics_table(metrics, reference=False)) == ["this model"]
    two = compute_metrics(labels[labels < 2], np.eye(7)[labels[labels < 2]])
    assert not compares_with_original(two)


def test_the_config_table_leaves_out_what_is_off_and_what_only_matters_with_it():
    """Issue 54: "ema_momentum -", "teacher -" beside "distillation 0.5" in notebook 03's table."""
    from fer_lib.training.presets import preset_config

    seed = reports.config_table(preset_config("seed_cnn"))
    for hidden in ("ema_momentum", "teacher", "distillation", "mixing", "mixing_strength", "init_from", "mlflow_uri",
                   "label_mode", "majority_rule", "time_budget"):
        assert hidden not in seed.index, hidden
    assert "\u2014" not in seed["value"].tolist() and "augment.erasing" not in seed.index  # no erasing: off
    assert "lr_factor" in seed.index  # seed_cnn's plateau schedule
    fer_cnn = reports.config_table(preset_config("fer_cnn"), votes=True)
    assert "lr_factor" not in fer_cnn.index and "label_mode" in fer_cnn.index


def test_the_training_outcome_says_what_ended_the_run_and_whether_it_was_still_climbing():
    """Issue 54: a run that stopped at its last epoch while still climbing 45% -> 64% said nothing of it."""
    climbing = {"val_loss": [1.9, 1.5, 1.3, 1.1], "val_accuracy": [0.2, 0.3, 0.45, 0.64]}
    text = reports.training_outcome(climbing, epochs=4, patience=5)
    assert "trained all 4 epochs" in text and "still climbing at the end (30% at epoch 2, 64% at epoch 4)" in text
    assert "epoch 4's, the best validation accuracy (64.0%)" in text
    stopped = {"val_loss": [1.5, 1.2, 1.3, 1.4, 1.5], "val_accuracy": [0.3, 0.5, 0.45, 0.44, 0.46]}
    text = reports.training_outcome(stopped, epochs=20, patience=3)
    assert "Early stopping ended the run after epoch 5 of 20" in text and "still climbing" not in text
    assert "epoch 2's" in text
    budget = reports.training_outcome({"val_loss": [1.5, 1.2], "val_accuracy": [0.3, 0.5]}, epochs=60, patience=10,
                                      time_budget=6000)
    assert "The time budget (6000 s) ended the run after epoch 2 of 60" in budget


def test_never_predicted_classes_and_lucky_tta_precision_are_said():
    """Issue 54: neutral never predicted (empty column, empty bar, recall 0) went unmentioned, and macro precision's
    jump with TTA was one lucky prediction of it."""
    labels = np.repeat(np.arange(7), 10)
    predicted = labels.copy()
    predicted[labels == 6] = 5  # neutral is never predicted ...
    plain = compute_metrics(labels, np.eye(7)[predicted])
    lucky = predicted.copy()
    lucky[np.flatnonzero(labels == 6)[0]] = 6  # ... but once, rightly, with TTA
    tta = compute_metrics(labels, np.eye(7)[lucky])
    notes = reports.prediction_notes(plain, {"with flip TTA": tta})
    assert "The model never predicts **neutral**" in notes and "recall is 0" in notes
    assert ("With flip TTA, **neutral** is predicted once (right once) against never without; its precision goes "
            "from 0% to 100%, which alone moves the macro precision by +14.3 points") in notes
    assert reports.prediction_notes(compute_metrics(labels, np.eye(7)[labels])) == ""
    one_class = reports.prediction_notes(compute_metrics(labels, np.eye(7)[np.full(70, 5)]))
    assert "never predicts **angry**, **disgust**, **fear**, **happy**, **sad** and **neutral**" in one_class
    assert "It predicts only **surprise**" in one_class
    assert "all 0" in [t.get_text() for t in reports.per_class_figure(plain).axes[0].texts]


def test_the_metrics_prose_explains_its_terms_and_names_only_columns_that_are_there():
    plain = reports.metrics_intro(reference=False)
    assert "original README" not in plain and "TTA" not in plain and "FER+" not in plain
    assert "calibration error is" in plain and "top score (the probability of the predicted emotion)" in plain
    both = reports.metrics_intro(reference=True, votes=True, tta="flip")
    assert "its mirror image" in both and "original README's seed CNN" in both and "official rule" in both


def test_the_most_confused_pairs_read_in_words():
    matrix = np.diag([10] * 7)
    matrix[5, 2], matrix[4, 0] = 4, 1
    table = reports.most_confused_pairs(matrix)
    assert list(table.columns) == ["true emotion", "predicted as", "faces", "share of the true emotion's faces"]
    assert table.index.tolist() == [1, 2] and table.iloc[0].tolist() == ["surprise", "fear", 4, "29%"]


def test_rebalancing_is_skipped_on_balanced_classes():
    assert not reports.worth_rebalancing([1] * 7) and reports.worth_rebalancing([3995, 436, 4097, 7215, 4830, 3171, 4965])


def test_the_intensity_table_has_one_header_row_splits_and_classes_in_order():
    """Issue 54: the pivot's two header rows sat over the wrong columns, splits and emotions sorted by name."""
    import pandas as pd

    from fer_lib.labels import EMOTIONS

    stats = pd.DataFrame([{"split": s, "emotion": e, "mean": 100.04, "std": 40.0}
                          for s in ("test", "val", "train") for e in sorted(EMOTIONS)])
    table = reports.intensity_table(stats, EMOTIONS)
    assert table.index.tolist() == list(EMOTIONS)
    assert table.columns.tolist() == ["train mean", "train SD", "val mean", "val SD", "test mean", "test SD"]
    assert table.loc["angry", "val mean"] == 100.0 and table.index.name is None and table.columns.name == "emotion"
    assert table.to_html().count("<tr") == len(EMOTIONS) + 1  # one header row


def test_figures_carry_their_titles_as_alternative_text():
    fig = reports.confusion_matrix_figure(np.eye(7), labels="true: FER+ majority, official rule")
    assert reports.figure_description(fig) == "Confusion matrix (counts) true: FER+ majority, official rule"
    labels = np.arange(7)
    gallery = reports.misclassified_gallery_figure(np.zeros((7, 48, 48)), labels, np.eye(7)[(labels + 1) % 7], n=2)
    assert reports.figure_description(gallery).startswith("2 misclassified test faces, each titled true")
