"""Decoded images before the split protocol, and their cache on disk.

`Records` is what a reader (image_folders, fer2013_csv) hands to the split protocol: images,
labels, FER2013's Usage code and the Kaggle folder of each face. The cache keeps them as .npz
files under paths.cache_dir(), keyed by the readers with CACHE_VERSION.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lib import paths
from fer_lib.data.splits import Skipped

CACHE_VERSION = 2  # 2: images under MIN_FACE_SIDE skipped, skip reasons by category
# FER2013's `Usage` column, also encoded in Kaggle file names as Training_<id>.jpg etc.
USAGE_CODES = {"training": 0, "publictest": 1, "privatetest": 2}
USAGE_UNKNOWN = -1
# Which folder a record came from in the Kaggle layout.
FOLDER_TRAIN, FOLDER_TEST, FOLDER_OTHER = 0, 1, 2


@dataclass
class Records:
    """Decoded images before the split protocol: what the cache stores."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    folder: np.ndarray
    skipped: list[Skipped]
    warnings: list[str]


def _cache_path(key: str) -> Path:
    return paths.cache_dir() / f"{key}.npz"


def cache_load(key: str) -> Records | None:
    """The records cached under `key`, or None when there are none or they are damaged."""
    file = _cache_path(key)
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as stored:
            skipped = [Skipped(**item) for item in json.loads(str(stored["skipped"]))]
            return Records(stored["images"], stored["labels"], stored["usage"], stored["folder"], skipped, [])
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


def cache_save(key: str, records: Records) -> None:
    """Cache `records` under `key` (without their warnings); a failure to write is ignored."""
    file = _cache_path(key)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(
                handle,
                images=records.images,
                labels=records.labels,
                usage=records.usage,
                folder=records.folder,
                skipped=json.dumps([s.__dict__ for s in records.skipped]),
            )
        os.replace(temporary, file)
    except OSError:
        pass  # caching is an optimisation; a read-only or full cache folder must not fail the load

