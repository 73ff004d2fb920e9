"""Reading fer2013.csv (emotion, pixels and optionally Usage columns) into decoded records.

Every malformed line is skipped and counted with its line number and reason.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from fer_lib.data.records import CACHE_VERSION, FOLDER_OTHER, USAGE_CODES, USAGE_UNKNOWN, Records, cache_load, cache_save
from fer_lib.data.splits import Skipped
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS, IMAGE_SIZE


def find_csv(path: Path) -> Path | None:
    """`path` itself when it is a .csv file, or the fer2013.csv in the folder `path`."""
    if path.is_file() and path.suffix.lower() == ".csv":
        return path
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_file() and child.name.lower() == "fer2013.csv":
                return child
    return None


def read_csv(csv_path: Path, use_cache: bool) -> Records:
    """The faces of fer2013.csv with their labels and Usage, unusable rows skipped."""
    stat = csv_path.stat()
    key = hashlib.sha1(f"v{CACHE_VERSION}|csv|{csv_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = cache_load(key) if use_cache else None
    if cached is not None:
        return cached
    skipped: list[Skipped] = []
    images, labels, usages = [], [], []
    # The csv module rather than pandas: every malformed line is counted with its line number.
    with open(csv_path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = _next_csv_row(reader, csv_path, skipped)
        if header is None:
            raise DataError(f"{csv_path}: empty file; fer2013.csv needs a header line emotion,pixels,Usage and one row per image")
        columns = [c.strip().lower() for c in header]
        missing = [c for c in ("emotion", "pixels") if c not in columns]
        if missing:
            found = ", ".join(repr(c) for c in columns[:6]) or "nothing"
            raise DataError(
                f"{csv_path}: missing column(s) {', '.join(missing)} in the header (found {found}); "
                "fer2013.csv needs emotion, pixels and optionally Usage"
            )
        emotion_at, pixels_at = columns.index("emotion"), columns.index("pixels")
        usage_at = columns.index("usage") if "usage" in columns else None
        while True:
            row = _next_csv_row(reader, csv_path, skipped)
            if row is None:
                break
            where = f"{csv_path}:{reader.line_num}"
            if not any(field.strip() for field in row):
                continue  # blank line
            parsed = _parse_csv_row(row, len(columns), emotion_at, pixels_at, usage_at)
            if isinstance(parsed, str):
                skipped.append(Skipped(where, parsed))
                continue
            image, label, usage = parsed
            images.append(image)
            labels.append(label)
            usages.append(usage)
    if not images:
        raise DataError(f"{csv_path}: no usable rows ({len(skipped)} skipped); check the emotion and pixels columns")
    records = Records(
        images=np.stack(images),
        labels=np.array(labels, np.int64),
        usage=np.array(usages, np.int8),
        folder=np.full(len(labels), FOLDER_OTHER, np.int8),
        skipped=skipped,
        warnings=[],
    )
    if use_cache:
        cache_save(key, records)
    return records


def _next_csv_row(reader, csv_path: Path, skipped: list[Skipped]) -> list[str] | None:
    """The next row, counting lines the csv module cannot parse (NUL bytes, huge fields)."""
    while True:
        try:
            return next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            skipped.append(Skipped(f"{csv_path}:{reader.line_num}", f"unparsable CSV line ({exc})"))


def _parse_csv_row(row: list[str], n_columns: int, emotion_at: int, pixels_at: int, usage_at: int | None):
    """(image, label, usage) of one fer2013.csv row, or the reason it cannot be used."""
    if len(row) != n_columns:
        return f"wrong number of fields ({len(row)}, expected {n_columns})"
    emotion = row[emotion_at].strip()
    if not (emotion.isascii() and emotion.isdigit()) or int(emotion) >= len(EMOTIONS):
        return f"unknown emotion label {emotion[:20]!r} (expected 0-6)"
    usage = USAGE_UNKNOWN
    if usage_at is not None:
        usage = USAGE_CODES.get(row[usage_at].strip().lower())
        if usage is None:
            return f"unknown Usage {row[usage_at][:20]!r} (expected Training, PublicTest, PrivateTest)"
    try:
        pixels = np.array(row[pixels_at].split(), dtype=np.int64)
    except (ValueError, OverflowError):
        return "malformed pixel string (expected space-separated integers)"
    if pixels.size != IMAGE_SIZE * IMAGE_SIZE:
        return f"wrong pixel count {pixels.size} (expected {IMAGE_SIZE * IMAGE_SIZE})"
    if pixels.min() < 0 or pixels.max() > 255:
        return "pixel values outside 0-255"
    return pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), int(emotion), usage

