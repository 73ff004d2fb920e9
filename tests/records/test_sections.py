"""The generated sections rendered from docs/benchmarks/ files and the records: training speed, inference, GPU;
`check` sees them stale until `table` renders them again."""

from __future__ import annotations

import json
import shutil

import pytest

from fer_lib.paths import ROOT
from fer_lib.records import commands, locations
from fer_lib.records.cells import pct
from fer_lib.records.reading import load_records
from fer_lib.records.training_sections import speed_table

# The repository's own files, which the tests copy while fer_lib.records points at tmp_path.
REPO_RESULTS = ROOT / "docs" / "results"
REPO_BENCHMARKS = ROOT / "docs" / "benchmarks"


@pytest.mark.slow
def test_the_training_speed_table_is_rendered_from_the_benchmarks_json(tmp_records, synthetic_root, tmp_path,
                                                                       monkeypatch, load_script):
    speed = tmp_path / "training_speed.json"
    assert load_script("benchmark_training").main(["--data", str(synthetic_root), "--models", "seed_cnn", "fer_cnn_crop",
                                                   "--images", "32", "--repeats", "1", "--batch-size", "16",
                                                   "--precisions", "float32", "--json", str(speed)]) == 0
    monkeypatch.setattr(locations, "SPEED_FILE", speed)
    assert commands.main(["table"]) == 0
    text = locations.TRAINING_DOC.read_text()
    assert "old speeds" not in text and text.endswith("end\n")
    measured = json.loads(speed.read_text())
    crop = measured["models"]["fer_cnn_crop"]
    assert f"| `fer_cnn_crop` | {crop['median']['float32']:.0f} | {crop['over_seed_cnn_paired_median']:.2f}x |" in text
    assert "| model | float32 images/s | speed relative to `seed_cnn` |" in text
    flat = " ".join(text.split())  # the paragraph is wrapped, maybe inside the machine's name
    assert measured["hardware"] in flat and f"{measured['images']} faces of {synthetic_root.name}, batch 16" in flat

    # Both precisions add the bf16/f32 ratio column.
    both = {**measured, "models": {
        "seed_cnn": {"median": {"float32": 155.0, "bfloat16": 310.0}, "bf16_over_f32_paired_median": 2.0},
        "fer_cnn_crop": {"median": {"float32": 100.0, "bfloat16": 250.0}, "bf16_over_f32_paired_median": 2.5,
                         "over_seed_cnn_paired_median": 0.7}}}
    rendered = speed_table(both)
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
        tmp_records, tmp_path, monkeypatch):
    page = tmp_path / "inference.md"
    detectors_start, detectors_end = locations.markers("inference-detectors")
    runtimes_start, runtimes_end = locations.markers("inference-runtimes")
    page.write_text(f"# i\n{detectors_start}\nhand-written figures\n{detectors_end}\nprose\n"
                    f"{runtimes_start}\n{runtimes_end}\nend\n")
    detectors, runtimes = tmp_path / "inference_detectors.json", tmp_path / "inference_runtimes.json"
    detectors.write_text(json.dumps(DETECTORS))
    runtimes.write_text(json.dumps(RUNTIMES))
    monkeypatch.setattr(locations, "INFERENCE_DOC", page)
    monkeypatch.setattr(locations, "DETECTORS_FILE", detectors)
    monkeypatch.setattr(locations, "RUNTIMES_FILE", runtimes)
    assert commands.main(["check"]) == 1  # the sections were never rendered
    assert commands.main(["table"]) == 0
    text = page.read_text()
    assert "hand-written figures" not in text and "\nprose\n" in text and text.endswith("end\n")
    assert "| yunet | 34/40 = 85.0% | 2 | 1 | 2 (`hubble_deep_field`) | 32 | 49 | 49.0 | 3.2x | 3.4x |" in text
    assert "| mtcnn | 33/40 = 82.5% | 1 | 0 | 0 | 137 | 159 | 14.6 | 1.0x | 1.0x |" in text
    flat = " ".join(text.split())  # the paragraphs are wrapped
    assert "on 2 people-free photos" in flat and "classification alone 1,706 crops/s" in flat
    assert "Test CPU, 2 cores with bfloat16 instructions, load average 1.2 at the start, 1.5 at the end" in flat
    assert "| Keras, as loaded | 1,670 | 1.00x |" in text and "| onnxruntime, ONNX float32 | 903 | 0.54x |" in text
    assert commands.main(["check"]) == 0

    # A re-measured file makes the page stale until it is rendered again.
    detectors.write_text(json.dumps({**DETECTORS, "detectors": {"yunet": {**DETECTORS["detectors"]["yunet"], "photo_ms": 40.0}}}))
    assert commands.main(["check"]) == 1
    assert commands.main(["table"]) == 0 and commands.main(["check"]) == 0
    assert "| yunet | 34/40 = 85.0% | 2 | 1 | 2 (`hubble_deep_field`) | 32 | 40 | 49.0 | 1.0x | 1.0x |" in page.read_text()
    # A page without the markers is an error naming them, not a silent skip.
    page.write_text("# i\n")
    with pytest.raises(SystemExit, match="inference-detectors"):
        commands.main(["table"])


def test_the_gpu_sections_take_their_figures_from_the_records(tmp_records, tmp_path, monkeypatch):
    run = json.loads((REPO_BENCHMARKS / "gpu_h200_crop_trio.json").read_text())
    records = load_records(REPO_RESULTS)
    needed = {*run["members"], run["ensemble"], *(records[m]["control"] for m in run["members"])}
    needed |= {name for name, e in records.items() if e.get("packaged")}
    results = tmp_path / "results"
    results.mkdir()
    for name in needed:
        shutil.copy(REPO_RESULTS / f"{name}.json", results)
    page = tmp_path / "gpu.md"
    page.write_text("".join(f"{start}\n{end}\n" for start, end in map(locations.markers, locations.GPU_SECTIONS)))
    monkeypatch.setattr(locations, "GPU_DOC", page)
    monkeypatch.setattr(locations, "GPU_RUN_FILE", REPO_BENCHMARKS / "gpu_h200_crop_trio.json")
    monkeypatch.setattr(locations, "GPU_CPU_SPEED_FILE", REPO_BENCHMARKS / "cpu_training_gpu_trio.json")
    assert commands.main(["table"]) == 0
    text = page.read_text()
    member = records[run["members"][0]]
    flat = " ".join(text.split())  # the paragraphs are wrapped
    assert f"{member['training']['images_per_second']:,.0f} (`{member['name']}`)" in flat
    assert f"| {pct(member['test']['top1_accuracy'])} |" in text
    assert f"after {min(records[m]['training']['epochs_run'] for m in run['members'])}-" in flat
    assert commands.main(["check"]) == 0

    # A record re-evaluated: the page is stale until rendered, then shows the record's figure.
    member_file = results / f"{member['name']}.json"
    member_file.write_text(json.dumps({**member, "test": {**member["test"], "top1_accuracy": 0.7123}}))
    assert commands.main(["check"]) == 1
    assert commands.main(["table"]) == 0 and "| 71.23% |" in page.read_text()
