"""fer_lib.records.recording: records of training runs, ensembles, derived models and FER+ runs, through
`python scripts/results_table.py` (fer_lib.records.commands.main), and the pages rendered from them."""

from __future__ import annotations

import json

import pytest

from fer_lib.cli import main
from fer_lib.records import commands, locations, recording
from fer_lib.records.pages import write_pages
from fer_lib.records.reading import run_overrides


@pytest.mark.slow
def test_records_of_runs_an_ensemble_and_a_rebalanced_model_make_the_pages(tmp_records, synthetic_root, tmp_path):
    runs = [tmp_path / "run0", tmp_path / "run1"]
    assert main(["train", "--data", str(synthetic_root), "--preset", "seed_cnn", "--epochs", "1", "--out", str(runs[0])]) == 0
    assert main(["train", "--data", str(synthetic_root), "--model", "fer_cnn", "--epochs", "1", "--out", str(runs[1])]) == 0
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
    # Named by the scheme: the preset, then the epochs that differ from its own.
    assert commands.main(["record", str(runs[0]), "--preset", "seed_cnn", "--conclusion", "A baseline."]) == 0
    assert commands.main(["record", str(runs[1]), "--name", "plain"]) == 0
    assert commands.main(["record-ensemble", str(ensemble), "--members", *map(str, runs),
                               "--member-records", "seed_cnn_e1", "plain", "--label", "pair", "--metrics", str(metrics),
                               "--control", "seed_cnn_e1", "--finding", "ensembles", "--conclusion", "Two beat one."]) == 0
    single = json.loads((tmp_path / "results" / "seed_cnn_e1.json").read_text())
    pair = json.loads((tmp_path / "results" / "ensemble_pair.json").read_text())
    summaries = [json.loads((r / "train_summary.json").read_text()) for r in runs]
    assert single["recipe"] == {"preset": "seed_cnn"} and run_overrides(single) == {"epochs": 1}
    assert pair["recipe"] == {"ensemble_of": ["seed_cnn_e1", "plain"], "label": "pair"}
    assert pair["training"]["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in summaries))
    assert pair["training"]["epochs_run"] == 2
    assert pair["parameters"] > single["parameters"] and pair["macs"] > single["macs"]
    assert [c["model"] for c in pair["config"]["ensemble_of"]] == ["seed_cnn", "fer_cnn"]
    assert pair["test"]["top1_accuracy"] == pytest.approx(json.loads(metrics.read_text())["top1_accuracy"])
    assert pair["test_tta"]["tta"] == "flip" and single["test_tta"] is None
    assert single["training_hardware"] == "Training CPU, 64 cores"
    assert pair["control"] == "seed_cnn_e1" and pair["findings"] == ["ensembles"]

    # A model made from a recorded run (here by `fer rebalance`) keeps the run's training and has its own metrics.
    assert main(["rebalance", "--model", str(runs[0] / "model.keras"), "--strength", "0.5", "--data", str(synthetic_root)]) == 0
    rebalanced_metrics = runs[0] / "rebalanced" / "metrics.json"
    assert main(["evaluate", "--model", str(runs[0] / "model_rebalanced.keras"), "--data", str(synthetic_root),
                 "--json", str(rebalanced_metrics)]) == 0
    assert commands.main(["record", "--from-record", "seed_cnn_e1", "--model", str(runs[0] / "model_rebalanced.keras"),
                               "--metrics", str(rebalanced_metrics), "--after", "fer rebalance (strength 0.5)"]) == 0
    rebalanced = json.loads((tmp_path / "results" / "seed_cnn_e1_rebalanced.json").read_text())
    assert rebalanced["test"]["top1_accuracy"] == pytest.approx(json.loads(rebalanced_metrics.read_text())["top1_accuracy"])
    assert rebalanced["parameters"] == single["parameters"] and rebalanced["training"] == single["training"]
    assert rebalanced["recipe"] == {"derived_from": "seed_cnn_e1", "after": ["fer rebalance (strength 0.5)"]}

    assert commands.main(["table"]) == 0
    readme = locations.README.read_text()
    assert "old table" not in readme and readme.endswith("after\n")
    assert "[`ensemble_pair`](docs/results/ensemble_pair.json)" in readme  # the best (only) ensemble
    experiments = locations.EXPERIMENTS.read_text()
    rows = {line.split("|")[1].strip(): line for line in experiments.split("## Every run")[1].split("## Run details")[0]
            .splitlines() if line.startswith("| `")}
    assert list(rows) == ["`ensemble_pair`", "`plain`", "`seed_cnn_e1`", "`seed_cnn_e1_rebalanced`"]
    assert "`fer ensemble` of `seed_cnn_e1` and `plain`" in rows["`ensemble_pair`"] and "Two beat one." in rows["`ensemble_pair`"]
    assert "flip" in rows["`ensemble_pair`"] and "Training CPU, 64 cores" in rows["`seed_cnn_e1`"]
    assert "| `seed_cnn` `--epochs 1` |" in rows["`seed_cnn_e1`"]
    assert "the model of `seed_cnn_e1`; then `fer rebalance` (strength 0.5)" in rows["`seed_cnn_e1_rebalanced`"]
    details = experiments.split("## Run details")[1]
    assert f"{single['training']['images_per_second']:.0f} images/s" in details
    assert "### Ensembles" in experiments and "| `ensemble_pair` | `seed_cnn_e1` |" in experiments
    assert commands.main(["check"]) == 0
    locations.EXPERIMENTS.write_text(experiments + "edited by hand\n")
    assert commands.main(["check"]) == 1


@pytest.mark.slow
def test_a_record_keeps_the_flip_figures_and_this_cpus_speed_beside_the_training_machines(
        tmp_records, synthetic_root, tmp_path):
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
    assert commands.main(["record", str(run), "--name", "gpu", "--cpu-benchmark", str(benchmark), "seed_cnn"]) == 0
    entry = json.loads((tmp_path / "results" / "gpu.json").read_text())
    flip = json.loads((run / "metrics_flip.json").read_text())
    assert entry["test_flip"]["top1_accuracy"] == pytest.approx(flip["top1_accuracy"]) and entry["test_flip"]["tta"] == "flip"
    assert entry["training_hardware"].startswith("NVIDIA H200 (GPU)")
    speed = entry["training"]["cpu_benchmark"]
    cpu_speed = 1000.0 if summary["precision"] == "bfloat16" else 400.0
    assert speed["hardware"] == "Dev CPU, 2 cores" and speed["images_per_second"] == cpu_speed
    assert commands.main(["table"]) == 0
    experiments = locations.EXPERIMENTS.read_text()
    every_run, details = experiments.split("## Every run")[1].split("## Run details")
    assert "NVIDIA H200 (GPU) |" in next(line for line in every_run.splitlines() if line.startswith("| `gpu`"))
    row = next(line for line in details.splitlines() if line.startswith("| `gpu`"))
    assert f"18000 images/s (the same model on Dev CPU, 2 cores: {cpu_speed:.0f} images/s)" in row
    assert "with flip TTA: " in row
    # The best single model on a GPU heads its own headline row.
    assert "best single model without a teacher, GPU" in locations.README.read_text()
    with pytest.raises(SystemExit, match="measured seed_cnn, not 'fer_cnn'"):
        commands.main(["record", str(run), "--name", "x", "--cpu-benchmark", str(benchmark), "fer_cnn"])
    with pytest.raises(SystemExit, match="pass --name"):  # no preset, no label: the scheme cannot name it
        commands.main(["record", str(run)])


@pytest.mark.slow
def test_a_ferplus_run_is_recorded_apart_with_its_label_mode_and_the_cross_label_table(tmp_records, ferplus_root,
                                                                                      tmp_path, monkeypatch):
    from PIL import Image

    from fer_lib.data.dataset import load_dataset
    from fer_lib.labels import EMOTIONS
    from fer_lib.records.ferplus import record_cross_label, write_cross_label

    run = tmp_path / "fp"
    assert main(["train", "--data", str(ferplus_root), "--preset", "fer_cnn", "--epochs", "1", "--label-mode",
                 "crossentropy", "--out", str(run)]) == 0
    written = recording.record(run, preset="fer_cnn", conclusion="A FER+ run.")
    record = json.loads(written.read_text())
    assert record["dataset"] == "ferplus" and written.stem == "ferplus_fer_cnn_e1_crossentropy"
    assert record["test"]["majority_rule"] == "official" and "annotator_share" in record["test"]["votes"]
    # FER2013's copy of the test faces, labelled by the top vote except every fifth face.
    test = load_dataset(ferplus_root).test
    for i, (face, label) in enumerate(zip(test.images, test.labels)):
        emotion = EMOTIONS[(label + (i % 5 == 0)) % 7]
        (tmp_path / "f13" / "test" / emotion).mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(tmp_path / "f13" / "test" / emotion / f"PublicTest_{i}.png")
    for emotion in EMOTIONS:
        (tmp_path / "f13" / "train" / emotion).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(test.images[i]).save(tmp_path / "f13" / "train" / emotion / f"Training_{i}.png")
    data = record_cross_label(ferplus_root, tmp_path / "f13", {"the run": str(run / "model.keras")}, "test")
    assert data["pairs"] == len(test)
    own = data["models"]["FER2013's own label (one annotator)"]["scores"]
    assert own["fer2013"]["top1_accuracy"] == 1.0 and own["top_vote_7"]["top1_accuracy"] < 1.0
    assert "official_8" in data["models"]["the run"]["scores"]
    monkeypatch.setattr(locations, "CROSS_LABEL_PATH", write_cross_label(data, tmp_path))
    write_pages()
    page = locations.FERPLUS_DOC.read_text()
    assert "| `ferplus_fer_cnn_e1_crossentropy` | crossentropy |" in page and "| the run | FER+'s PNGs |" in page
    assert "ferplus_fer_cnn" not in locations.EXPERIMENTS.read_text()
