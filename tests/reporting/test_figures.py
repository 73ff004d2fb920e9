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
    assert config.loc["init_from", "value"] == "\u2014"
    summary = {"model": "fer_cnn", "parameters": 1240000, "precision": "bfloat16", "hardware": "AMD EPYC, 2 cores",
               "train_images": 25837, "epochs_run": 3, "best_epoch": 2, "best_val_accuracy": 0.6123,
               "wall_seconds": 600.0, "images_per_second": 183.4, "images_per_second_per_epoch": [1.0, 2.0],
               "classes": ["angry"], "resumed_after_epoch": None}
    table = reports.training_summary_table(summary)
    shown = dict(zip(table.index, table.iloc[:, 0]))
    assert shown["parameters"] == "1,240,000" and shown["best validation accuracy"] == "61.23%"
    assert shown["wall time"] == "10.0 min" and shown["training speed"] == "183 faces/s"
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
