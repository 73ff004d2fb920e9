"""Fixtures of the records' tests: fer_lib.records pointed at a temporary folder."""

from __future__ import annotations

import pytest

from fer_lib.records import locations


@pytest.fixture()
def tmp_records(tmp_path, monkeypatch):
    """fer_lib.records writing into tmp_path: its records, README, docs/experiments.md and docs/training.md, and no
    benchmark file of the repository's own; the `locations` module, whose names the test may point elsewhere."""
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{locations.HEADLINE_START}\nold table\n{locations.HEADLINE_END}\n\nafter\n")
    training = tmp_path / "training.md"
    training.write_text(f"# t\n{locations.SPEED_START}\nold speeds\n{locations.SPEED_END}\nend\n")
    monkeypatch.setattr(locations, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(locations, "README", readme)
    monkeypatch.setattr(locations, "EXPERIMENTS", tmp_path / "experiments.md")
    monkeypatch.setattr(locations, "FERPLUS_DOC", tmp_path / "ferplus.md")
    monkeypatch.setattr(locations, "TRAINING_DOC", training)
    for name in ("INFERENCE_DOC", "GPU_DOC"):  # none unless a test writes one
        monkeypatch.setattr(locations, name, tmp_path / f"no_{name.lower()}.md")
    for name in ("SPEED_FILE", "SPEED_NOTES_FILE", "QUICK_START_FILE", "DETECTORS_FILE", "RUNTIMES_FILE",
                 "CALIBRATION_FILE", "VERIFICATION_FILE", "EXPORT_FILE", "FER_PACKAGE_FILE", "GPU_RUN_FILE",
                 "GPU_CPU_SPEED_FILE", "CROSS_LABEL_PATH"):
        monkeypatch.setattr(locations, name, tmp_path / f"no_{name.lower()}.json")  # not the repository's own
    return locations
