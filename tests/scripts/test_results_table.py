"""scripts/results_table.py: experiment records, and the README and docs pages built from them."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from fer_lib.cli import main

README_MAX_LINES = 180
README_MAX_LINE = 300
HEADLINE_MAX_ROWS = 8
# A measured figure: a percentage with decimals (settings such as "10%" are whole numbers), or a speed.
FIGURE = re.compile(r"\d+\.\d+ ?%")
SPEED = re.compile(r"\d[\d,.]* ?(?:ms|faces/s|crops/s|frames/s|images/s|TFLOP/s)\b")
# Settings that look like figures, by page: the export's parity gate.
SETTINGS = {"inference.md": ["99.5%"]}


@pytest.fixture(scope="module")
def repo_table(load_script):
    """The script as the repository uses it: its own records, README and docs."""
    return load_script("results_table")


@pytest.fixture()
def results_table(tmp_path, monkeypatch, load_script):
    """The script writing into tmp_path: its records, README, docs/experiments.md and docs/training.md."""
    module = load_script("results_table")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{module.HEADLINE_START}\nold table\n{module.HEADLINE_END}\n\nafter\n")
    training = tmp_path / "training.md"
    training.write_text(f"# t\n{module.SPEED_START}\nold speeds\n{module.SPEED_END}\nend\n")
    monkeypatch.setattr(module, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(module, "README", readme)
    monkeypatch.setattr(module, "EXPERIMENTS", tmp_path / "experiments.md")
    monkeypatch.setattr(module, "FERPLUS_DOC", tmp_path / "ferplus.md")
    monkeypatch.setattr(module, "TRAINING_DOC", training)
    for name in ("INFERENCE_DOC", "GPU_DOC"):  # none unless a test writes one
        monkeypatch.setattr(module, name, tmp_path / f"no_{name.lower()}.md")
    for name in ("SPEED_FILE", "SPEED_NOTES_FILE", "QUICK_START_FILE", "DETECTORS_FILE", "RUNTIMES_FILE",
                 "CALIBRATION_FILE", "VERIFICATION_FILE", "EXPORT_FILE", "FER_PACKAGE_FILE", "GPU_RUN_FILE",
                 "GPU_CPU_SPEED_FILE", "CROSS_LABEL_PATH"):
        monkeypatch.setattr(module, name, tmp_path / f"no_{name.lower()}.json")  # not the repository's own
    return module


@pytest.mark.slow
def test_records_of_runs_an_ensemble_and_a_rebalanced_model_make_the_pages(results_table, synthetic_root, tmp_path):
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
    assert results_table.main(["record", str(runs[0]), "--preset", "seed_cnn", "--conclusion", "A baseline."]) == 0
    assert results_table.main(["record", str(runs[1]), "--name", "plain"]) == 0
    assert results_table.main(["record-ensemble", str(ensemble), "--members", *map(str, runs),
                               "--member-records", "seed_cnn_e1", "plain", "--label", "pair", "--metrics", str(metrics),
                               "--control", "seed_cnn_e1", "--finding", "ensembles", "--conclusion", "Two beat one."]) == 0
    single = json.loads((tmp_path / "results" / "seed_cnn_e1.json").read_text())
    pair = json.loads((tmp_path / "results" / "ensemble_pair.json").read_text())
    summaries = [json.loads((r / "train_summary.json").read_text()) for r in runs]
    assert single["recipe"] == {"preset": "seed_cnn"} and results_table.run_overrides(single) == {"epochs": 1}
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
    assert results_table.main(["record", "--from-record", "seed_cnn_e1", "--model", str(runs[0] / "model_rebalanced.keras"),
                               "--metrics", str(rebalanced_metrics), "--after", "fer rebalance (strength 0.5)"]) == 0
    rebalanced = json.loads((tmp_path / "results" / "seed_cnn_e1_rebalanced.json").read_text())
    assert rebalanced["test"]["top1_accuracy"] == pytest.approx(json.loads(rebalanced_metrics.read_text())["top1_accuracy"])
    assert rebalanced["parameters"] == single["parameters"] and rebalanced["training"] == single["training"]
    assert rebalanced["recipe"] == {"derived_from": "seed_cnn_e1", "after": ["fer rebalance (strength 0.5)"]}

    assert results_table.main(["table"]) == 0
    readme = results_table.README.read_text()
    assert "old table" not in readme and readme.endswith("after\n")
    assert "[`ensemble_pair`](docs/results/ensemble_pair.json)" in readme  # the best (only) ensemble
    experiments = results_table.EXPERIMENTS.read_text()
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
    assert results_table.main(["check"]) == 0
    results_table.EXPERIMENTS.write_text(experiments + "edited by hand\n")
    assert results_table.main(["check"]) == 1


@pytest.mark.slow
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
    cpu_speed = 1000.0 if summary["precision"] == "bfloat16" else 400.0
    assert speed["hardware"] == "Dev CPU, 2 cores" and speed["images_per_second"] == cpu_speed
    assert results_table.main(["table"]) == 0
    experiments = results_table.EXPERIMENTS.read_text()
    every_run, details = experiments.split("## Every run")[1].split("## Run details")
    assert "NVIDIA H200 (GPU) |" in next(line for line in every_run.splitlines() if line.startswith("| `gpu`"))
    row = next(line for line in details.splitlines() if line.startswith("| `gpu`"))
    assert f"18000 images/s (the same model on Dev CPU, 2 cores: {cpu_speed:.0f} images/s)" in row
    assert "with flip TTA: " in row
    # The best single model on a GPU heads its own headline row.
    assert "best single model without a teacher, GPU" in results_table.README.read_text()
    with pytest.raises(SystemExit, match="measured seed_cnn, not 'fer_cnn'"):
        results_table.main(["record", str(run), "--name", "x", "--cpu-benchmark", str(benchmark), "fer_cnn"])
    with pytest.raises(SystemExit, match="pass --name"):  # no preset, no label: the scheme cannot name it
        results_table.main(["record", str(run)])


@pytest.mark.slow
def test_the_training_speed_table_is_rendered_from_the_benchmarks_json(results_table, synthetic_root, tmp_path,
                                                                       monkeypatch, load_script):
    speed = tmp_path / "training_speed.json"
    assert load_script("benchmark_training").main(["--data", str(synthetic_root), "--models", "seed_cnn", "fer_cnn_crop",
                                                   "--images", "32", "--repeats", "1", "--batch-size", "16",
                                                   "--precisions", "float32", "--json", str(speed)]) == 0
    monkeypatch.setattr(results_table, "SPEED_FILE", speed)
    assert results_table.main(["table"]) == 0
    text = results_table.TRAINING_DOC.read_text()
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



DETECTORS = {
    "date": "2026-12-04", "hardware": "Test CPU, 2 cores", "cpu_bf16": True, "load_average": [1.2, 1.5],
    "command": "python scripts/benchmark_inference.py --detectors --scenes 10", "model": "packaged", "repeats": 5,
    "classification_crops_per_second": 1706.4,
    "scenes": {"count": 10, "faces": 40, "seed": 0, "people_free_photos": ["coffee", "hubble_deep_field"]},
    "detectors": {
        "yunet": {"faces": 40, "found": 34, "false_scenes": 2, "inside_pasted": 1, "false_negatives": 2,
                  "false_negatives_by_photo": {"hubble_deep_field": 2}, "detect_ms": 32.4, "photo_ms": 49.2, "video_fps": 49.04},
        "mtcnn": {"faces": 40, "found": 33, "false_scenes": 1, "inside_pasted": 0, "false_negatives": 0, "false_negatives_by_photo": {},
                  "detect_ms": 137.0, "photo_ms": 159.4, "video_fps": 14.6},
    },
}
RUNTIMES = {
    "date": "2026-12-04", "hardware": "Test CPU, 2 cores", "command": "python scripts/benchmark_inference.py --runtimes keras onnx",
    "model": "packaged", "repeats": 5, "runtime_batch_size": 256,
    "runtimes": {"keras": {"label": "Keras, as loaded", "faces_per_second": 1670.0},
                 "onnx": {"label": "onnxruntime, ONNX float32", "faces_per_second": 903.0}},
}


def test_the_inference_sections_are_rendered_from_the_benchmark_files_and_check_sees_them_stale(
        results_table, tmp_path, monkeypatch):
    page = tmp_path / "inference.md"
    detectors_start, detectors_end = results_table.markers("inference-detectors")
    runtimes_start, runtimes_end = results_table.markers("inference-runtimes")
    page.write_text(f"# i\n{detectors_start}\nhand-written figures\n{detectors_end}\nprose\n"
                    f"{runtimes_start}\n{runtimes_end}\nend\n")
    detectors, runtimes = tmp_path / "inference_detectors.json", tmp_path / "inference_runtimes.json"
    detectors.write_text(json.dumps(DETECTORS))
    runtimes.write_text(json.dumps(RUNTIMES))
    monkeypatch.setattr(results_table, "INFERENCE_DOC", page)
    monkeypatch.setattr(results_table, "DETECTORS_FILE", detectors)
    monkeypatch.setattr(results_table, "RUNTIMES_FILE", runtimes)
    assert results_table.main(["check"]) == 1  # the sections were never rendered
    assert results_table.main(["table"]) == 0
    text = page.read_text()
    assert "hand-written figures" not in text and "\nprose\n" in text and text.endswith("end\n")
    assert "| yunet | 34/40 = 85.0% | 2 | 1 | 2 (`hubble_deep_field`) | 32 | 49 | 49.0 | 3.2x | 3.4x |" in text
    assert "| mtcnn | 33/40 = 82.5% | 1 | 0 | 0 | 137 | 159 | 14.6 | 1.0x | 1.0x |" in text
    flat = " ".join(text.split())  # the paragraphs are wrapped
    assert "on 2 people-free photos" in flat and "classification alone 1,706 crops/s" in flat
    assert "Test CPU, 2 cores with bfloat16 instructions, load average 1.2 at the start, 1.5 at the end" in flat
    assert "| Keras, as loaded | 1,670 | 1.00x |" in text and "| onnxruntime, ONNX float32 | 903 | 0.54x |" in text
    assert results_table.main(["check"]) == 0

    # A re-measured file makes the page stale until it is rendered again.
    detectors.write_text(json.dumps({**DETECTORS, "detectors": {"yunet": {**DETECTORS["detectors"]["yunet"], "photo_ms": 40.0}}}))
    assert results_table.main(["check"]) == 1
    assert results_table.main(["table"]) == 0 and results_table.main(["check"]) == 0
    assert "| yunet | 34/40 = 85.0% | 2 | 1 | 2 (`hubble_deep_field`) | 32 | 40 | 49.0 | 1.0x | 1.0x |" in page.read_text()
    # A page without the markers is an error naming them, not a silent skip.
    page.write_text("# i\n")
    with pytest.raises(SystemExit, match="inference-detectors"):
        results_table.main(["table"])


def test_the_gpu_sections_take_their_figures_from_the_records(results_table, repo_table, tmp_path, monkeypatch):
    run = json.loads(repo_table.GPU_RUN_FILE.read_text())
    records = repo_table.load_records()
    needed = {*run["members"], run["ensemble"], *(records[m]["control"] for m in run["members"])}
    needed |= {name for name, e in records.items() if e.get("packaged")}
    results = tmp_path / "results"
    results.mkdir()
    for name in needed:
        shutil.copy(repo_table.RESULTS_DIR / f"{name}.json", results)
    page = tmp_path / "gpu.md"
    page.write_text("".join(f"{start}\n{end}\n" for start, end in map(results_table.markers, results_table.GPU_SECTIONS)))
    monkeypatch.setattr(results_table, "GPU_DOC", page)
    monkeypatch.setattr(results_table, "GPU_RUN_FILE", repo_table.GPU_RUN_FILE)
    monkeypatch.setattr(results_table, "GPU_CPU_SPEED_FILE", repo_table.GPU_CPU_SPEED_FILE)
    assert results_table.main(["table"]) == 0
    text = page.read_text()
    member = records[run["members"][0]]
    flat = " ".join(text.split())  # the paragraphs are wrapped
    assert f"{member['training']['images_per_second']:,.0f} (`{member['name']}`)" in flat
    assert f"| {results_table.pct(member['test']['top1_accuracy'])} |" in text
    assert f"after {min(records[m]['training']['epochs_run'] for m in run['members'])}-" in flat
    assert results_table.main(["check"]) == 0

    # A record re-evaluated: the page is stale until rendered, then shows the record's figure.
    member_file = results / f"{member['name']}.json"
    member_file.write_text(json.dumps({**member, "test": {**member["test"], "top1_accuracy": 0.7123}}))
    assert results_table.main(["check"]) == 1
    assert results_table.main(["table"]) == 0 and "| 71.23% |" in page.read_text()


# -- the repository's own records and pages (no training) -----------------------------------------

def test_the_generated_pages_are_up_to_date_with_the_records(repo_table):
    stale = repo_table.stale_pages()
    assert not stale, f"{', '.join(map(str, stale))} out of date: run python scripts/results_table.py table"


def test_the_readme_is_a_short_first_page_with_the_headline_on_its_first_screen(repo_table):
    lines = repo_table.README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES
    too_long = [(number, len(line)) for number, line in enumerate(lines, 1) if len(line) > README_MAX_LINE]
    assert not too_long, f"README lines over {README_MAX_LINE} characters (line, length): {too_long}"
    start, end = lines.index(repo_table.HEADLINE_START), lines.index(repo_table.HEADLINE_END)
    assert start < 15, "the headline figure belongs on the first screen"
    table = [line for line in lines[start:end] if line.startswith("| ") and not line.startswith("| model |")]
    assert 0 < len(table) <= HEADLINE_MAX_ROWS
    assert table[0].startswith("| **the packaged model**")
    assert lines.index("## Quick start") < 40
    text = "\n".join(lines)
    assert "shared/datasets" not in text  # the development machine's dataset path
    for heading in ("## Quick start", "## Getting FER2013 and FER+", "## Notebooks and the pipeline", "## Command line",
                    "## Python", "## Your photos and videos"):
        assert heading in lines


def test_figures_in_the_readme_and_docs_come_only_from_generated_parts(repo_table):
    """Outside the blocks the script writes, the README and the docs quote no measured percentage or speed."""
    pages = [repo_table.README, repo_table.TRAINING_DOC, repo_table.INFERENCE_DOC, repo_table.GPU_DOC,
             *(repo_table.ROOT / "docs" / name for name in ("data.md", "pipeline.md", "development.md", "hardening.md"))]
    generated = [(repo_table.HEADLINE_START, repo_table.HEADLINE_END), (repo_table.QUICK_START, repo_table.QUICK_END),
                 (repo_table.SPEED_START, repo_table.SPEED_END), (repo_table.SPEED_NOTES_START, repo_table.SPEED_NOTES_END),
                 *map(repo_table.markers, (*repo_table.INFERENCE_SECTIONS, *repo_table.GPU_SECTIONS))]
    for page in pages:
        text = page.read_text()
        for start, end in generated:
            while start in text:
                head, rest = text.split(start, 1)
                text = head + rest.split(end, 1)[1]
        for setting in SETTINGS.get(page.name, []):
            text = text.replace(setting, "")
        found = FIGURE.findall(text) + SPEED.findall(text)
        assert not found, f"{page.name} quotes {found} by hand"


def test_every_section_rendered_from_the_benchmark_files_is_marked_on_its_page(repo_table):
    rendered = {page: [name for name, _ in named] for page, named in repo_table.sections(repo_table.load_records()).items()}
    assert rendered == {repo_table.INFERENCE_DOC: list(repo_table.INFERENCE_SECTIONS),
                        repo_table.GPU_DOC: list(repo_table.GPU_SECTIONS)}
    for page, names in rendered.items():
        text = page.read_text()
        for start, end in map(repo_table.markers, names):
            assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end)


def test_every_record_is_in_the_experiments_page_with_its_recipe_and_conclusion(repo_table):
    records = repo_table.load_records()
    page = repo_table.EXPERIMENTS.read_text()
    every_run, details = page.split("## Every run")[1].split("## Run details")
    listed = [line.split("|")[1].strip().strip("`") for line in every_run.splitlines() if line.startswith("| `")]
    assert listed == list(records)
    assert [line.split("|")[1].strip().strip("`") for line in details.splitlines() if line.startswith("| `")] == list(records)
    for name, e in records.items():
        assert f"| `{name}` | {repo_table.recipe_text(e)} |" in every_run
        conclusion = e.get("conclusion", "")
        assert conclusion.endswith(".") and ". " not in conclusion.rstrip("."), f"{name}: one sentence of conclusion"


def test_records_carry_their_recipe_as_data_and_follow_the_naming_scheme(repo_table):
    from fer_lib.training.presets import PRESETS

    records = repo_table.load_records(dataset=None)
    files = sorted(repo_table.RESULTS_DIR.glob("*.json"))
    assert [f.stem for f in files] == list(records), "each record's file is named after it"
    former = [n for e in records.values() for n in e.get("former_names", [])]
    assert len(former) == len(set(former)) and not set(former) & set(records)
    for dataset in ("fer2013", "ferplus"):  # one packaged model of each, at most
        assert len([e for e in records.values() if e.get("packaged") and e.get("dataset", "fer2013") == dataset]) <= 1
    assert len([e for e in records.values() if e.get("packaged") and "dataset" not in e]) == 1
    for name, e in records.items():
        recipe = e["recipe"]
        assert repo_table.scheme_name(e, records) == name, f"{name}: the scheme names it {repo_table.scheme_name(e, records)}"
        assert recipe.get("preset") is None or recipe["preset"] in PRESETS
        named = [recipe.get("init_from"), recipe.get("derived_from"), e.get("control"),
                 *recipe.get("ensemble_of", []), *repo_table.teacher_records(e)]
        missing = [n for n in named if n and n not in records]
        assert not missing, f"{name} names records that do not exist: {missing}"
        assert set(e.get("findings", [])) <= set(repo_table.FINDINGS)
        assert not e.get("findings") or e.get("control"), f"{name}: a finding needs a control to compare with"


def test_the_headline_rows_are_chosen_by_rule(repo_table):
    records = repo_table.load_records()
    chosen = {what.split(" (")[0]: e["name"] for what, e in repo_table.headline_records(records)}
    packaged = next(e for e in records.values() if e.get("packaged"))
    assert chosen["**the packaged model**, used by `fer predict` and `predict_expression`"] == packaged["name"]
    ensembles = [e for e in records.values() if repo_table.is_ensemble(e)]
    assert chosen["best ensemble"] == max(ensembles, key=lambda e: e["test_tta"]["top1_accuracy"])["name"]
    for kind, gpu in (("CPU", False), ("GPU", True)):
        best = records[chosen[f"best single model without a teacher, {kind}"]]
        assert not repo_table.has_teacher(best["name"], records) and repo_table.on_gpu(best) == gpu
        rivals = [e for e in records.values() if repo_table.on_gpu(e) == gpu and not repo_table.is_ensemble(e)
                  and not repo_table.has_teacher(e["name"], records) and (e.get("test_tta") or {}).get("tta") == "tencrop"]
        assert all(e["test_tta"]["top1_accuracy"] <= best["test_tta"]["top1_accuracy"] for e in rivals)


def test_the_verification_table_marks_the_rule_used_and_sums_design_and_check_seeds(repo_table):
    rule = {"onet_min": 0.2, "onet_min_unsure": 0.5, "drop_duplicates": True, "people_free": 0}
    data = {
        "date": "2026-12-05", "hardware": "Test CPU, 2 cores", "command": "python scripts/sweep_yunet_verification.py",
        "design_seeds": ["1", "2"], "check_seeds": ["0", "3"],
        "chosen": {"yunet_min": 0.5, "onet_min": 0.2, "onet_min_unsure": 0.5, "yunet_sure": 0.7},
        "scenes": {seed: {"scenes": 10, "faces": 40} for seed in "1203"},
        "mtcnn": {seed: {"found": 30, "false": 1, "inside": 0} for seed in "1203"}, "mtcnn_people_free": 0,
        "people_free_photos": ["coffee", "hubble_deep_field", "coins"],
        "rules": [
            {"yunet_min": 0.5, "onet_min": 0.0, "onet_min_unsure": None, "drop_duplicates": False, "people_free": 3,
             "seeds": {seed: {"found": 35, "false": 2, "inside": 1} for seed in "1203"}},
            {**rule, "yunet_min": 0.5, "seeds": {seed: {"found": 34, "false": 0, "inside": 1} for seed in "1203"}},
            {**rule, "yunet_min": 0.6, "seeds": {seed: {"found": 32, "false": 0, "inside": 0} for seed in "1203"}},
            # neither unchecked nor a checked rule with duplicates dropped: not shown
            {**rule, "yunet_min": 0.5, "drop_duplicates": False, "seeds": {seed: {"found": 1, "false": 0, "inside": 0}
                                                                           for seed in "1203"}},
        ]}
    lines = repo_table.yunet_verification(data).splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| rule")]
    assert rows == [
        "| YuNet >= 0.5, unchecked | 70 (87.5%) · 4 · 2 | 35 (87.5%) · 2 · 1 | 35 (87.5%) · 2 · 1 | 70 (87.5%) · 4 · 2 | 3 |",
        "| **YuNet >= 0.5, O-Net >= 0.2, O-Net >= 0.5 under YuNet 0.7, duplicates dropped (used)** | 68 (85.0%) · 0 · 2 | "
        "34 (85.0%) · 0 · 1 | 34 (85.0%) · 0 · 1 | 68 (85.0%) · 0 · 2 | 0 |",
        "| YuNet >= 0.6, O-Net >= 0.2, O-Net >= 0.5 under YuNet 0.7, duplicates dropped | 64 (80.0%) · 0 · 0 | "
        "32 (80.0%) · 0 · 0 | 32 (80.0%) · 0 · 0 | 64 (80.0%) · 0 · 0 | 0 |",
        "| MTCNN | 60 (75.0%) · 2 · 0 | 30 (75.0%) · 1 · 0 | 30 (75.0%) · 1 · 0 | 60 (75.0%) · 2 · 0 | 0 |",
    ]
    assert lines[lines.index("") + 1] == ("| rule | design: seeds 1 + 2 | check: seed 0 | check: seed 3 | check: seeds 0 + 3 | "
                                          "3 people-free photos |")


@pytest.mark.slow
def test_a_ferplus_run_is_recorded_apart_with_its_label_mode_and_the_cross_label_table(results_table, ferplus_root,
                                                                                      tmp_path):
    from PIL import Image

    from fer_lib.data.dataset import load_dataset
    from fer_lib.labels import EMOTIONS
    from fer_lib.records.ferplus import record_cross_label, write_cross_label

    run = tmp_path / "fp"
    assert main(["train", "--data", str(ferplus_root), "--preset", "fer_cnn", "--epochs", "1", "--label-mode",
                 "crossentropy", "--out", str(run)]) == 0
    written = results_table.record(run, preset="fer_cnn", conclusion="A FER+ run.")
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
    results_table.CROSS_LABEL_PATH = write_cross_label(data, tmp_path)
    results_table.write_pages()
    page = results_table.FERPLUS_DOC.read_text()
    assert "| `ferplus_fer_cnn_e1_crossentropy` | crossentropy |" in page and "| the run | FER+'s PNGs |" in page
    assert "ferplus_fer_cnn" not in results_table.EXPERIMENTS.read_text()
