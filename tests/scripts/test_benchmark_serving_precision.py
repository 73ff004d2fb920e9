"""scripts/benchmark_serving_precision.py: float32 and the trained precision scored and timed side by side."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmark_serving_precision")


def test_timed_probabilities_take_turns(bench):
    import numpy as np

    order = []

    class Model:
        def __init__(self, name):
            self.name = name

        def predict(self, pixels, batch_size, verbose):
            order.append(self.name)
            return np.zeros((len(pixels), 7))

    probabilities, rates = bench.timed_probabilities({"a": Model("a"), "b": Model("b")}, np.zeros((4, 48, 48, 1)), 2, 3)
    assert order == ["a", "b"] * 4  # a warm-up each, then turns
    assert set(probabilities) == set(rates) == {"a", "b"} and all(rate > 0 for rate in rates.values())


def test_a_float32_model_scores_the_same_in_both(bench, model_path, synthetic_root, tmp_path, capsys):
    out = tmp_path / "serving.json"
    assert bench.main(["--model", f"{model_path}={synthetic_root}", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (row,) = data["models"]
    assert row["trained_precision"] == "float32" and row["same_class"] == 1.0 and row["max_abs_difference"] == 0.0
    assert row["float32"]["top1_accuracy"] == row["trained"]["top1_accuracy"] and row["faces"] == 70
    assert "--json" not in data["command"] and data["batch_size"] == 256
    assert "| top-1 float32 |" in capsys.readouterr().out
