"""The notebooks' figures and tables (fer_lib.reports)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from fer_lib import reports  # noqa: E402
from fer_lib.evaluation import compute_metrics  # noqa: E402


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
