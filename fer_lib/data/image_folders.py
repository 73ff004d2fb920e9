"""Reading image folders: Kaggle's train/<emotion>/ and test/<emotion>/, or one folder of <emotion>/ folders.

Class folders are named for FER2013's emotions; every file that is not a readable face is
skipped with its reason. Decoded faces are cached (fer_lib.data.records).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer_lib.data.preprocessing import IMAGE_EXTENSIONS, MIN_FACE_SIDE, load_face_file
from fer_lib.data.records import (
    CACHE_VERSION,
    FOLDER_OTHER,
    FOLDER_TEST,
    FOLDER_TRAIN,
    USAGE_CODES,
    USAGE_UNKNOWN,
    Records,
    cache_load,
    cache_save,
)
from fer_lib.data.splits import Skipped
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS, IMAGE_SIZE

TRAIN_FOLDER_NAMES = ("train", "training")
TEST_FOLDER_NAMES = ("test", "testing")
_EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}


def _emotion_of(folder_name: str) -> int | None:
    return _EMOTION_INDEX.get(folder_name.strip().lower())


def child_dirs(path: Path) -> list[Path]:
    """The visible subfolders of `path`, sorted."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_child(path: Path, names: tuple[str, ...]) -> Path | None:
    """The first subfolder of `path` whose name is one of `names`, in any case."""
    for child in child_dirs(path):
        if child.name.lower() in names:
            return child
    return None


def is_split_folder(path: Path) -> bool:
    """Whether `path` holds at least one folder named for an emotion."""
    return any(_emotion_of(child.name) is not None for child in child_dirs(path))


def _usage_of(file_name: str) -> int:
    prefix = file_name.split("_", 1)[0].lower() if "_" in file_name else ""
    return USAGE_CODES.get(prefix, USAGE_UNKNOWN)


def _list_split_folder(split_dir: Path, skipped: list[Skipped], warnings: list[str]) -> list[tuple[Path, int]]:
    """(file, label) pairs of a folder of emotion folders; oddities become skips or errors."""
    files: list[tuple[Path, int]] = []
    seen_labels: dict[int, Path] = {}
    for entry in sorted(split_dir.iterdir()):
        if entry.name.startswith(".") and entry.is_dir():
            skipped.append(Skipped(str(entry), "hidden folder"))
            continue
        if not entry.is_dir():
            reason = "broken symlink" if entry.is_symlink() and not entry.exists() else "file outside a class folder"
            skipped.append(Skipped(str(entry), reason))
            continue
        label = _emotion_of(entry.name)
        if label is None:
            hint = " (numbered folders are not read as FER2013 labels)" if entry.name.strip().isdigit() else ""
            raise DataError(
                f"{entry}: unknown class folder {entry.name!r}{hint}; rename it to one of "
                f"{', '.join(EMOTIONS)} or move it out of {split_dir}"
            )
        if label in seen_labels:
            raise DataError(
                f"{entry}: class {EMOTIONS[label]!r} has two folders ({seen_labels[label].name!r} and "
                f"{entry.name!r}); merge them into one"
            )
        seen_labels[label] = entry
        count_before = len(files)
        files += _list_class_folder(entry, label, skipped)
        if len(files) == count_before:
            warnings.append(f"class folder {entry} has no images")
    for label, emotion in enumerate(EMOTIONS):
        if label not in seen_labels:
            warnings.append(f"{split_dir} has no {emotion!r} folder")
    return files


def _list_class_folder(folder: Path, label: int, skipped: list[Skipped]) -> list[tuple[Path, int]]:
    """Image files anywhere under one class folder, following directory symlinks but not loops."""
    files: list[tuple[Path, int]] = []
    visited: set[tuple[int, int]] = set()

    def unreadable(error: OSError) -> None:
        skipped.append(Skipped(str(error.filename), f"unreadable folder ({error.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable, followlinks=True):
        try:
            stat = os.stat(dirpath)
        except OSError as error:
            unreadable(error)
            dirnames[:] = []
            continue
        if (stat.st_dev, stat.st_ino) in visited:  # a symlink back to a folder already read
            skipped.append(Skipped(dirpath, "directory symlink loop"))
            dirnames[:] = []
            continue
        visited.add((stat.st_dev, stat.st_ino))
        for hidden in sorted(d for d in dirnames if d.startswith(".")):
            skipped.append(Skipped(os.path.join(dirpath, hidden), "hidden folder"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(Skipped(str(file), "not an image file"))
            elif not file.exists():
                skipped.append(Skipped(str(file), "broken symlink"))
            else:
                files.append((file, label))
    return files


def _fingerprint(files: list[tuple[Path, int]], extra: str) -> str:
    digest = hashlib.sha1(f"v{CACHE_VERSION}|{extra}".encode())
    for file, label in files:
        try:
            stat = file.stat()
            digest.update(f"{file}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:  # vanished since listing: decoding will count it
            digest.update(f"{file}|{label}|missing\n".encode())
    return digest.hexdigest()


def _decode_files(files: list[tuple[Path, int]], skipped: list[Skipped]) -> tuple[np.ndarray, list[int]]:
    """Decode files in parallel; unreadable ones become skips. Returns images and kept indices."""

    def decode(item):
        try:
            return load_face_file(item[0], min_side=MIN_FACE_SIDE)
        except Exception as exc:  # DataError, MemoryError on absurd files: skip, never crash the load
            return exc

    workers = min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(decode, files, chunksize=256))
    kept, arrays = [], []
    for index, (result, (file, _)) in enumerate(zip(results, files)):
        if isinstance(result, Exception):
            reason = getattr(result, "reason", None) or type(result).__name__
            skipped.append(Skipped(str(file), f"unreadable image ({reason})"))
        else:
            kept.append(index)
            arrays.append(result)
    images = np.stack(arrays) if arrays else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return images, kept


def read_image_folders(path: Path, data_format: str, use_cache: bool, require_test: bool = True) -> Records:
    """The faces of an 'image-folders' (train/, test/) or 'split-folder' (<emotion>/) dataset at `path`."""
    skipped: list[Skipped] = []
    warnings: list[str] = []
    if data_format == "image-folders":
        train_dir = find_child(path, TRAIN_FOLDER_NAMES)
        test_dir = find_child(path, TEST_FOLDER_NAMES)
        if test_dir is None and require_test:
            raise DataError(f"{path}: has train/ but no test/ folder; add test/<emotion>/ images, point --data at "
                            "train/ alone, or train without a test split: fer train --no-eval")
        listed = [(f, label, FOLDER_TRAIN) for f, label in _list_split_folder(train_dir, skipped, warnings)]
        if test_dir is not None:
            listed += [(f, label, FOLDER_TEST) for f, label in _list_split_folder(test_dir, skipped, warnings)]
    else:
        listed = [(f, label, FOLDER_OTHER) for f, label in _list_split_folder(path, skipped, warnings)]
    if not listed:
        raise DataError(f"{path}: no images found in its class folders; add .jpg/.png faces under <emotion>/")
    pairs = [(f, label) for f, label, _ in listed]
    key = _fingerprint(pairs, f"{data_format}|{path.resolve()}")
    cached = cache_load(key) if use_cache else None
    if cached is None:
        decode_skips: list[Skipped] = []
        images, kept = _decode_files(pairs, decode_skips)
        if not kept:
            raise DataError(f"{path}: none of its {len(pairs)} image files could be read; check that they are images")
        cached = Records(
            images=images,
            labels=np.array([listed[i][1] for i in kept], np.int64),
            usage=np.array([_usage_of(listed[i][0].name) for i in kept], np.int8),
            folder=np.array([listed[i][2] for i in kept], np.int8),
            skipped=decode_skips,
            warnings=[],
        )
        if use_cache:
            cache_save(key, cached)
    # Listing skips and warnings describe the folder as it is now; only decoding is cached.
    cached.skipped = skipped + cached.skipped
    cached.warnings = warnings
    return cached

