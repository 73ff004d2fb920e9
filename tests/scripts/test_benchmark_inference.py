"""scripts/benchmark_inference.py: detectors measured side by side and summarised in one table."""

from __future__ import annotations

import argparse
import json

import pytest

from fer_lib.inference import detection


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmark_inference")


def test_interleaved_medians_take_turns(bench):
    order = []
    medians = bench.interleaved_medians({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3)
    assert order == ["a", "b"] * 4  # a warm-up each, then turns
    assert set(medians) == {"a", "b"} and all(m >= 0 for m in medians.values())


def test_summary_table_has_a_row_per_detector_and_speed_ups_against_mtcnn(bench):
    rows = {
        "yunet": {"faces": 400, "found": 337, "false_scenes": 2, "inside_pasted": 1, "false_negatives": 2, "detect_ms": 33.0,
                  "photo_ms": 38.0, "video_fps": 30.0},
        "mtcnn": {"faces": 400, "found": 335, "false_scenes": 1, "inside_pasted": 0, "false_negatives": 0, "detect_ms": 150.0,
                  "photo_ms": 176.0, "video_fps": 13.6},
        "haar": {"photo_ms": 88.0, "video_fps": 12.3},  # speed only (no --detectors)
    }
    lines = bench.summary_table(rows).splitlines()
    assert len(lines) == 5 and lines[0].startswith("| detector |")
    assert lines[2] == "| yunet | 337/400 = 84.2% | 2 | 1 | 2 | 33 | 38 | 30.0 | 4.6x | 2.2x |"
    assert lines[3].endswith("| 1.0x | 1.0x |")
    assert lines[4] == "| haar |  |  |  |  |  | 88 | 12.3 | 2.0x | 0.9x |"


@pytest.mark.slow
def test_a_tiny_speed_run_prints_the_side_by_side_table(bench, tmp_path, capsys):
    from fer_lib.models.registry import build_model

    model = tmp_path / "m.keras"
    build_model("seed_cnn", seed=0).save(model)
    detectors = [d for d in ("yunet", "haar") if detection.detector_available(d)]
    argv = ["--model", str(model), "--repeats", "1", "--video-frames", "2", "--json", str(tmp_path / "speed.json")]
    for name in detectors:
        argv += ["--detector", name]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    table = out.split("side by side")[1].splitlines()
    assert [line.split("|")[1].strip() for line in table if line.startswith("| ") and "detector" not in line] == detectors
    saved = json.loads((tmp_path / "speed.json").read_text())
    assert list(saved["detectors"]) == detectors and saved["classification_crops_per_second"] > 0
    assert all(row["photo_ms"] > 0 and row["video_fps"] > 0 for row in saved["detectors"].values())
    assert "--json" not in saved["command"] and saved["repeats"] == 1


@pytest.mark.slow
def test_runtimes_are_measured_side_by_side(bench, model_path, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    labels = {}
    rates = bench.benchmark_runtimes(str(model_path), ["keras", "onnx"], repeats=1, labels=labels)
    assert set(rates) == {"keras", "onnx"} and all(rate > 0 for rate in rates.values())
    assert labels["keras"].startswith("Keras ") and "the model as loaded" in labels["keras"]
    assert labels["onnx"].startswith("onnxruntime ") and labels["onnx"].endswith("ONNX float32")


def test_json_is_the_data_file_that_results_table_renders(bench):
    from fer_lib.records.inference_sections import detectors_section, runtimes_section

    rows = {
        "yunet": {"faces": 400, "found": 337, "false_scenes": 2, "inside_pasted": 1, "false_negatives": 2,
                  "false_negatives_by_photo": {"hubble_deep_field": 2}, "detect_ms": 32.44, "photo_ms": 38.0, "video_fps": 30.0},
        "mtcnn": {"faces": 400, "found": 335, "false_scenes": 1, "inside_pasted": 0, "false_negatives": 0, "false_negatives_by_photo": {},
                  "detect_ms": 150.0, "photo_ms": 176.0, "video_fps": 13.6},
    }
    args = argparse.Namespace(model=None, repeats=5, video_frames=50, detectors=True, scenes=100, seed=0)
    argv = ["--detectors", "--json", "out.json", "--scenes", "100", "--json=other.json", "--runtimes", "keras", "onnx"]
    data = bench.benchmark_data(argv, args, rows, 1706.4, {"keras": 1670.2, "onnx": 903.0},
                                {"keras": "Keras, as loaded", "onnx": "onnxruntime, ONNX float32"}, (1.2, 1.5))
    data = json.loads(json.dumps(data))  # as the file holds it
    assert data["command"] == "python scripts/benchmark_inference.py --detectors --scenes 100 --runtimes keras onnx"
    assert data["scenes"] == {"count": 100, "faces": 400, "seed": 0, "people_free_photos": list(bench.NEGATIVES)}
    assert data["load_average"] == [1.2, 1.5] and data["model"] == "packaged" and data["date"] and data["hardware"]
    assert data["detectors"]["yunet"]["detect_ms"] == 32.4

    detectors = detectors_section(data)
    assert "| yunet | 337/400 = 84.2% | 2 | 1 | 2 (`hubble_deep_field`) | 32 | 38 | 30.0 | 4.6x | 2.2x |" in detectors
    assert "| mtcnn | 335/400 = 83.8% | 1 | 0 | 0 | 150 | 176 | 13.6 | 1.0x | 1.0x |" in detectors
    assert f"on {len(bench.NEGATIVES)} people-free photos" in detectors
    runtimes = runtimes_section(data)
    assert "| Keras, as loaded | 1,670 | 1.00x |" in runtimes and "| onnxruntime, ONNX float32 | 903 | 0.54x |" in runtimes
