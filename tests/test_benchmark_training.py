"""scripts/benchmark_training.py: models and presets measured side by side (what it measures, not how fast)."""

from __future__ import annotations

import json

import pytest


def test_a_model_and_a_preset_are_measured_in_interleaved_runs(synthetic_root, tmp_path, capsys, load_script):
    benchmark = load_script("benchmark_training")
    out = tmp_path / "bench.json"
    assert benchmark.main(["--data", str(synthetic_root), "--models", "seed_cnn", "fer_cnn_crop", "--images", "32",
                           "--repeats", "2", "--batch-size", "16", "--precisions", "float32", "--json", str(out)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if " run " in line]
    assert [line.split()[0] for line in printed] == ["seed_cnn", "fer_cnn_crop"] * 2  # interleaved
    results = json.loads(out.read_text())
    crop = results["models"]["fer_cnn_crop"]
    assert len(crop["images_per_second"]["float32"]) == 2 and crop["median"]["float32"] > 0
    assert crop["over_seed_cnn_paired_median"] > 0 and "bfloat16" not in crop["median"]
    # A preset is built with its own augmentation: fer_cnn_crop's training crop is in the measured model.
    assert benchmark.build("fer_cnn_crop", seed=0)[0].get_layer("aug_crop").size == 40


def test_an_unknown_name_is_refused_in_one_line(capsys, load_script):
    with pytest.raises(SystemExit):
        load_script("benchmark_training").main(["--models", "nope"])
    assert "unknown model or preset nope; choose from cnn, seed_cnn" in capsys.readouterr().err
