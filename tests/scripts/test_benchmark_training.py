"""scripts/benchmark_training.py: models and presets measured side by side (what it measures, not how fast)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
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


def test_a_name_can_change_its_model_options(load_script):
    benchmark = load_script("benchmark_training")
    assert benchmark.parse_name("transfer_lite0:image_size=64,frozen_blocks=0,backbone=lite1") == (
        "transfer_lite0", {"image_size": 64, "frozen_blocks": 0, "backbone": "lite1"})
    model, config = benchmark.build("fer_cnn_crop:widths=[16,32,32,64],dense_units=32", seed=0)
    assert config.model_options["widths"] == [16, 32, 32, 64]
    assert model.get_layer("s1_conv1").filters == 16 and model.get_layer("aug_crop").size == 40
    with pytest.raises(ValueError, match="key=value"):
        benchmark.parse_name("fer_cnn:widths")
