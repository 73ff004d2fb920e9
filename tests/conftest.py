"""Shared fixtures: generated datasets, an isolated cache, tiny image-folder builders."""

from __future__ import annotations

import importlib.util
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_lib.labels import EMOTIONS  # noqa: E402

REAL_DATA = os.environ.get("FER_DATA")
SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="session")
def load_script():
    """Loads scripts/NAME.py as a module (the scripts are not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, SCRIPTS_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own decoded-array cache, never the user's."""
    monkeypatch.setenv("FER_CACHE", str(tmp_path_factory.getbasetemp() / "fer_cache"))


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """An untrained seed_cnn saved as .keras: for tests where the weights do not matter."""
    from fer_lib.models.registry import build_model

    path = tmp_path_factory.mktemp("model") / "seed_cnn.keras"
    build_model("seed_cnn", seed=0).save(path)
    return path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small generated dataset in the Kaggle layout, shared read-only by tests."""
    from fer_lib.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synthetic") / "fer", train_per_class=40, test_per_class=10, seed=7)


@pytest.fixture(scope="session")
def ferplus_root(tmp_path_factory) -> Path:
    """A small generated dataset in FER+'s PNG layout (votes in label.csv), shared read-only by tests."""
    from fer_lib.data.synthetic import generate_ferplus_dataset

    return generate_ferplus_dataset(tmp_path_factory.mktemp("ferplus") / "ferplus", train_per_class=24,
                                    valid_per_class=8, seed=3)


def write_face(path: Path, value: int = 128, size: int = 48, mode: str = "L") -> Path:
    """Write a small image file whose pixels encode `value` (for checking what was loaded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = np.clip(rng.normal(value, 5, (size, size)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "L").convert(mode).save(path)
    return path


def make_image_folders(root: Path, layout: dict[str, dict[str, list[str]]]) -> Path:
    """Build folders from {split: {class_folder: [file names]}}; '' as split means root."""
    for split, classes in layout.items():
        for class_folder, names in classes.items():
            for i, name in enumerate(names):
                write_face(root / split / class_folder / name, value=20 + 30 * (hash(class_folder) % 7) + i)
    return root


def kaggle_layout(n_train: int = 6, n_test: int = 2, test_prefixes=("PublicTest",)) -> dict:
    """A Kaggle-style layout with every emotion, FER2013 file-name prefixes included."""
    layout = {"train": {}, "test": {}}
    for emotion in EMOTIONS:
        layout["train"][emotion] = [f"Training_{emotion}{i}.png" for i in range(n_train)]
        layout["test"][emotion] = [f"{p}_{emotion}{i}.png" for p in test_prefixes for i in range(n_test)]
    return layout


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height 8-bit gray pixels, with almost no data: cheap to write."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture()
def tmp_records(tmp_path, monkeypatch):
    """fer_lib.records (tests/records/) writing into tmp_path: its records, README, docs/experiments.md and docs/training.md, and no
    benchmark file of the repository's own; the `locations` module, whose names the test may point elsewhere."""
    from fer_lib.records import locations

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
                 "GPU_CPU_SPEED_FILE", "CROSS_LABEL_PATH", "SERVING_PRECISION_FILE",
                 "FALSE_FACES_FILE", "ALIGNMENT_FILE"):
        monkeypatch.setattr(locations, name, tmp_path / f"no_{name.lower()}.json")  # not the repository's own
    return locations
