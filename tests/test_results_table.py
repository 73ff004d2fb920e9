"""scripts/results_table.py: records of a run and of an ensemble, and the README table built from them."""

from __future__ import annotations

import json

import pytest

from fer_lib.cli import main


@pytest.fixture()
def results_table(tmp_path, monkeypatch, load_script):
    module = load_script("results_table")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{module.START}\nold table\n{module.END}\n\nafter\n")
    monkeypatch.setattr(module, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(module, "README", readme)
    monkeypatch.setattr(module, "SPEED_FILE", tmp_path / "no_benchmark.json")  # not the repository's own
    return module


def test_records_of_runs_and_an_ensemble_make_the_table(results_table, synthetic_root, tmp_path, capsys):
    runs = []
    for i, model in enumerate(["seed_cnn", "fer_cnn"]):
        out = tmp_path / f"run{i}"
        assert main(["train", "--data", str(synthetic_root), "--model", model, "--epochs", "1", "--out", str(out)]) == 0
        runs.append(out)
    ensemble = tmp_path / "ens.keras"
    assert main(["ensemble", str(runs[0] / "model.keras"), str(runs[1] / "model.keras"), "--out", str(ensemble)]) == 0
    metrics = tmp_path / "ens" / "metrics.json"
    assert main(["evaluate", "--model", str(ensemble), "--data", str(synthetic_root), "--json", str(metrics)]) == 0
    assert main(["evaluate", "--model", str(ensemble), "--data", str(synthetic_root), "--tta", "flip",
                 "--json", str(metrics.with_name("metrics_tta.json"))]) == 0

    # The record names the machine that trained (train_summary.json), not the one recording.
    summary_file = runs[0] / "train_summary.json"
    trained_on = json.loads(summary_file.read_text())
    assert trained_on["hardware"].endswith(" cores")
    summary_file.write_text(json.dumps({**trained_on, "hardware": "Training CPU, 64 cores"}))
    assert results_table.main(["record", str(runs[0]), "--name", "single"]) == 0
    assert results_table.main(["record-ensemble", str(ensemble), "--members", *map(str, runs), "--name", "pair",
                               "--metrics", str(metrics)]) == 0
    single = json.loads((tmp_path / "results" / "single.json").read_text())
    pair = json.loads((tmp_path / "results" / "pair.json").read_text())
    summaries = [json.loads((r / "train_summary.json").read_text()) for r in runs]
    assert pair["training"]["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in summaries))
    assert pair["training"]["epochs_run"] == 2
    assert pair["parameters"] > single["parameters"] and pair["macs"] > single["macs"]
    assert [c["model"] for c in pair["config"]["ensemble_of"]] == ["seed_cnn", "fer_cnn"]
    assert pair["test"]["top1_accuracy"] == pytest.approx(json.loads(metrics.read_text())["top1_accuracy"])
    assert pair["test_tta"]["tta"] == "flip" and single["test_tta"] is None
    assert single["training_hardware"] == "Training CPU, 64 cores"

    # A model made from a run (here by `fer rebalance`) is recorded with the run's training cost and its own metrics.
    assert main(["rebalance", "--model", str(runs[0] / "model.keras"), "--strength", "0.5", "--data", str(synthetic_root)]) == 0
    rebalanced_metrics = runs[0] / "rebalanced" / "metrics.json"
    assert main(["evaluate", "--model", str(runs[0] / "model_rebalanced.keras"), "--data", str(synthetic_root),
                 "--json", str(rebalanced_metrics)]) == 0
    assert results_table.main(["record", str(runs[0]), "--model", str(runs[0] / "model_rebalanced.keras"),
                               "--metrics", str(rebalanced_metrics), "--name", "single_rebalanced"]) == 0
    rebalanced = json.loads((tmp_path / "results" / "single_rebalanced.json").read_text())
    assert rebalanced["test"]["top1_accuracy"] == pytest.approx(json.loads(rebalanced_metrics.read_text())["top1_accuracy"])
    assert rebalanced["parameters"] == single["parameters"] and rebalanced["training"] == single["training"]

    assert results_table.main(["table"]) == 0
    readme = results_table.README.read_text()
    assert "old table" not in readme and readme.endswith("after\n")
    rows = [line for line in readme.splitlines() if line.startswith("| `") and "package" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["`pair`", "`single`", "`single_rebalanced`"]
    assert "ensemble of 2 runs, training summed" in rows[0] and "flip: " in rows[0] and "images/s" not in rows[0]
    assert f"{single['training']['images_per_second']:.0f} images/s, Training CPU, 64 cores" in rows[1]


def test_a_record_keeps_the_flip_figures_and_this_cpus_speed_beside_the_training_machines(
        results_table, synthetic_root, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic_root), "--model", "seed_cnn", "--epochs", "1", "--out", str(run)]) == 0
    assert main(["evaluate", "--model", str(run / "model.keras"), "--data", str(synthetic_root), "--tta", "flip",
                 "--json", str(run / "metrics_flip.json")]) == 0
    summary_file = run / "train_summary.json"
    summary = json.loads(summary_file.read_text())
    summary_file.write_text(json.dumps({**summary, "hardware": "NVIDIA H200 (GPU), beside Host CPU, 16 cores",
                                        "images_per_second": 18000.0}))
    benchmark = tmp_path / "speed.json"
    benchmark.write_text(json.dumps({"hardware": "Dev CPU, 2 cores", "backend": "tensorflow", "date": "2026-12-04",
                                     "models": {"seed_cnn": {"median": {"bfloat16": 1000.0, "float32": 400.0}}}}))
    assert results_table.main(["record", str(run), "--name", "gpu", "--cpu-benchmark", str(benchmark), "seed_cnn"]) == 0
    entry = json.loads((tmp_path / "results" / "gpu.json").read_text())
    flip = json.loads((run / "metrics_flip.json").read_text())
    assert entry["test_flip"]["top1_accuracy"] == pytest.approx(flip["top1_accuracy"]) and entry["test_flip"]["tta"] == "flip"
    assert entry["training_hardware"].startswith("NVIDIA H200 (GPU)")
    speed = entry["training"]["cpu_benchmark"]
    assert speed["hardware"] == "Dev CPU, 2 cores" and speed["images_per_second"] == (
        1000.0 if summary["precision"] == "bfloat16" else 400.0)
    assert results_table.main(["table"]) == 0
    row = next(line for line in results_table.README.read_text().splitlines() if line.startswith("| `gpu`"))
    assert "18000 images/s, NVIDIA H200 (GPU)" in row and "(the same model on Dev CPU, 2 cores: " in row
    with pytest.raises(SystemExit, match="measured seed_cnn, not 'fer_cnn'"):
        results_table.main(["record", str(run), "--name", "x", "--cpu-benchmark", str(benchmark), "fer_cnn"])


def test_the_training_speed_table_is_rendered_from_the_benchmarks_json(results_table, synthetic_root, tmp_path,
                                                                       monkeypatch, load_script):
    speed = tmp_path / "training_speed.json"
    assert load_script("benchmark_training").main(["--data", str(synthetic_root), "--models", "seed_cnn", "fer_cnn_crop",
                                                   "--images", "32", "--repeats", "1", "--batch-size", "16",
                                                   "--precisions", "float32", "--json", str(speed)]) == 0
    monkeypatch.setattr(results_table, "SPEED_FILE", speed)
    readme = results_table.README
    readme.write_text(readme.read_text() + f"\n{results_table.SPEED_START}\nold speeds\n{results_table.SPEED_END}\nend\n")
    assert results_table.main(["table"]) == 0
    text = readme.read_text()
    assert "old speeds" not in text and text.endswith("end\n")
    measured = json.loads(speed.read_text())
    crop = measured["models"]["fer_cnn_crop"]
    assert f"| `fer_cnn_crop` | {crop['median']['float32']:.0f} | {crop['over_seed_cnn_paired_median']:.2f}x |" in text
    assert "| model | float32 images/s | speed relative to `seed_cnn` |" in text
    assert measured["hardware"] in text and f"{measured['images']} faces of {synthetic_root.name}, batch 16" in text

    # Both precisions add the bf16/f32 ratio column.
    both = {**measured, "models": {
        "seed_cnn": {"median": {"float32": 155.0, "bfloat16": 310.0}, "bf16_over_f32_paired_median": 2.0},
        "fer_cnn_crop": {"median": {"float32": 100.0, "bfloat16": 250.0}, "bf16_over_f32_paired_median": 2.5,
                         "over_seed_cnn_paired_median": 0.7}}}
    rendered = results_table.speed_table(both)
    assert "| `seed_cnn` | 155 | 310 | 2.00x | 1 |" in rendered and "| `fer_cnn_crop` | 100 | 250 | 2.50x | 0.70x |" in rendered
