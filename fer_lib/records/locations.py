"""Where the records and the pages rendered from them live, and the markers of a page's generated sections.

Every other module of fer_lib.records reads these as `locations.NAME` when it runs, so a test can point
them all at a temporary folder by setting them here.
"""

from __future__ import annotations

from fer_lib.paths import ROOT

RESULTS_DIR = ROOT / "docs" / "results"
README = ROOT / "README.md"
EXPERIMENTS = ROOT / "docs" / "experiments.md"
FERPLUS_DOC = ROOT / "docs" / "ferplus.md"
# `record-cross-label` writes this (fer_lib.records.ferplus.CROSS_LABEL_FILE); `table` renders it in docs/ferplus.md.
CROSS_LABEL_PATH = ROOT / "docs" / "benchmarks" / "cross_label.json"
TRAINING_DOC = ROOT / "docs" / "training.md"
# scripts/benchmark_training.py --json writes this; `table` renders it in docs/training.md.
SPEED_FILE = ROOT / "docs" / "benchmarks" / "training_speed.json"
SPEED_NOTES_FILE = ROOT / "docs" / "benchmarks" / "speed_notes.json"
QUICK_START_FILE = ROOT / "docs" / "benchmarks" / "quick_start.json"
INFERENCE_DOC = ROOT / "docs" / "inference.md"
GPU_DOC = ROOT / "docs" / "gpu.md"
# scripts/benchmark_inference.py --json writes these two; `table` renders them in docs/inference.md.
DETECTORS_FILE = ROOT / "docs" / "benchmarks" / "inference_detectors.json"
RUNTIMES_FILE = ROOT / "docs" / "benchmarks" / "inference_runtimes.json"
CALIBRATION_FILE = ROOT / "docs" / "benchmarks" / "detector_calibration.json"
# scripts/sweep_yunet_verification.py --json writes this one.
VERIFICATION_FILE = ROOT / "docs" / "benchmarks" / "yunet_verification.json"
EXPORT_FILE = ROOT / "docs" / "benchmarks" / "export_parity.json"
# scripts/benchmark_serving_precision.py --json writes this one.
SERVING_PRECISION_FILE = ROOT / "docs" / "benchmarks" / "serving_precision.json"
# scripts/benchmark_false_faces.py and scripts/benchmark_alignment.py --json write these.
FALSE_FACES_FILE = ROOT / "docs" / "benchmarks" / "false_faces.json"
ALIGNMENT_FILE = ROOT / "docs" / "benchmarks" / "alignment.json"
FER_PACKAGE_FILE = ROOT / "docs" / "benchmarks" / "fer_package_speed.json"
GPU_RUN_FILE = ROOT / "docs" / "benchmarks" / "gpu_h200_crop_trio.json"
GPU_CPU_SPEED_FILE = ROOT / "docs" / "benchmarks" / "cpu_training_gpu_trio.json"

HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
QUICK_START, QUICK_END = "<!-- quick-start:start -->", "<!-- quick-start:end -->"
SPEED_START, SPEED_END = "<!-- training-speed:start -->", "<!-- training-speed:end -->"
SPEED_NOTES_START, SPEED_NOTES_END = "<!-- speed-notes:start -->", "<!-- speed-notes:end -->"


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of a generated section."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


# The marked sections rendered from docs/benchmarks/ into docs/inference.md and docs/gpu.md (see SECTIONS).
INFERENCE_SECTIONS = ("yunet-calibration", "yunet-verification", "inference-detectors", "detector-settings", "detector-framing",
                      "fer-package-speed", "export-parity", "inference-runtimes", "serving-precision",
                      "false-faces", "face-alignment")
GPU_SECTIONS = ("gpu-op-by-op", "gpu-run")
