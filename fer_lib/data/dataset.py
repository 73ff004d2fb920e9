"""Loading FER datasets: Kaggle image folders, single split folders and fer2013.csv.

One entry point, `load_dataset`, reads any of the three formats, applies FER2013's split
protocol and caches the decoded arrays. `load_eval_split` reads one split for evaluation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_lib import paths
from fer_lib.data.preprocessing import IMAGE_EXTENSIONS, MIN_FACE_SIDE, load_face_file
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS, IMAGE_SIZE

CACHE_VERSION = 2  # 2: images under MIN_FACE_SIDE skipped, skip reasons by category
SPLIT_NAMES = ("train", "val", "test")
DEFAULT_VAL_FRACTION = 0.1
# FER2013's `Usage` column, also encoded in Kaggle file names as Training_<id>.jpg etc.
USAGE_CODES = {"training": 0, "publictest": 1, "privatetest": 2}
USAGE_UNKNOWN = -1
# Generated demo faces per class (data/demo): enough for every notebook to run end to end,
# few enough to train on in seconds.
DEMO_TRAIN_PER_CLASS, DEMO_TEST_PER_CLASS = 120, 30
# Which folder a record came from in the Kaggle layout.
FOLDER_TRAIN, FOLDER_TEST, FOLDER_OTHER = 0, 1, 2
_EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}
_TRAIN_FOLDER_NAMES = ("train", "training")
_TEST_FOLDER_NAMES = ("test", "testing")


@dataclass(frozen=True)
class Skipped:
    """A file or CSV row left out of the dataset, and why."""

    source: str
    reason: str


@dataclass
class Split:
    """Images (N, 48, 48) uint8 with integer labels indexing `classes`.

    FER+ splits also carry each face's ten annotator votes (N, 10), in FER+'s column order
    (fer_lib.data.votes); their `labels` are the top-vote majority.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    votes: np.ndarray | None = None
    classes: tuple[str, ...] = EMOTIONS

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {emotion: int(n) for emotion, n in zip(self.classes, counts)}

    def take(self, rows: np.ndarray, name: str | None = None) -> Split:
        """The faces at `rows` (indices or a boolean mask), with their votes."""
        return Split(name or self.name, self.images[rows], self.labels[rows],
                     None if self.votes is None else self.votes[rows], self.classes)


@dataclass
class FerDataset:
    """A loaded dataset: its three splits and where and how they were made."""

    train: Split
    val: Split
    test: Split
    source: Path
    data_format: str
    protocol: str
    synthetic: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    @property
    def has_votes(self) -> bool:
        """FER+: every face carries its annotators' votes."""
        return self.train.votes is not None

    def split(self, name: str) -> Split:
        if name not in SPLIT_NAMES:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def counts(self):
        """Per-class counts per split as a pandas DataFrame (rows: splits)."""
        import pandas as pd

        table = pd.DataFrame({s: self.split(s).class_counts() for s in SPLIT_NAMES}).T
        table["total"] = table.sum(axis=1)
        return table

    def info(self) -> dict:
        """What a report needs to say about the data, JSON-serialisable."""
        return origin_info(self, classes=list(self.classes), votes=self.has_votes,
                           sizes={s: len(self.split(s)) for s in SPLIT_NAMES},
                           class_counts={s: self.split(s).class_counts() for s in SPLIT_NAMES})

    def describe(self) -> str:
        """A few lines for a terminal or notebook: source, protocol, sizes and class counts."""
        return _describe(self.source, self.data_format, self.protocol, self.counts().to_string(),
                         self.synthetic, self.skipped, self.warnings)


@dataclass
class EvalData:
    """One split to evaluate on, with where it came from."""

    split: Split
    source: Path
    data_format: str
    protocol: str
    synthetic: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def info(self) -> dict:
        return origin_info(self, split=self.split.name, size=len(self.split), class_counts=self.split.class_counts())

    def describe(self) -> str:
        counts = ", ".join(f"{e} {n}" for e, n in self.split.class_counts().items())
        return _describe(self.source, self.data_format, self.protocol,
                         f"{self.split.name}: {len(self.split)} images ({counts})",
                         self.synthetic, self.skipped, self.warnings)


def origin_info(data: FerDataset | EvalData, **contents) -> dict:
    """`info()` of a dataset or an evaluation split: where it came from, then `contents`, then what was skipped."""
    return {"source": str(data.source), "format": data.data_format, "protocol": data.protocol, "synthetic": data.synthetic,
            **contents, "skipped": len(data.skipped), "skipped_reasons": skip_reasons(data.skipped),
            "warnings": list(data.warnings)}


def skip_reasons(skipped: list[Skipped]) -> dict[str, int]:
    """How many skips per reason, most frequent first."""
    reasons: dict[str, int] = {}
    for item in skipped:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    return dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


def _describe(source, data_format, protocol, counts_text, synthetic, skipped, warnings) -> str:
    lines = []
    if synthetic:
        lines.append("*** SYNTHETIC DEMO DATA: generated faces, not FER2013; metrics say nothing about real faces ***")
    lines.append(f"Data: {source} ({data_format})")
    lines.append(f"Protocol: {protocol}")
    lines.append(counts_text)
    if skipped:
        lines.append(f"Skipped {len(skipped)} file(s) or row(s):")
        for reason, n in skip_reasons(skipped).items():
            example = next(s.source for s in skipped if s.reason == reason)
            lines.append(f"  {n} x {reason} (e.g. {example})")
    lines.extend(f"Warning: {w}" for w in warnings)
    return "\n".join(lines)


@dataclass
class _Records:
    """Decoded images before the split protocol: what the cache stores."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    folder: np.ndarray
    skipped: list[Skipped]
    warnings: list[str]


# ---------------------------------------------------------------- format detection


def _emotion_of(folder_name: str) -> int | None:
    return _EMOTION_INDEX.get(folder_name.strip().lower())


def _child_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _find_child(path: Path, names: tuple[str, ...]) -> Path | None:
    for child in _child_dirs(path):
        if child.name.lower() in names:
            return child
    return None


def _find_csv(path: Path) -> Path | None:
    if path.is_file() and path.suffix.lower() == ".csv":
        return path
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_file() and child.name.lower() == "fer2013.csv":
                return child
    return None


def _is_split_folder(path: Path) -> bool:
    return any(_emotion_of(child.name) is not None for child in _child_dirs(path))


def detect_format(path: Path) -> str:
    """'image-folders' (train/ and test/), 'split-folder' (<emotion>/*), 'csv', or FER+'s
    'ferplus-folders' (FER2013Train/ with label.csv) and 'ferplus-csv' (fer2013new.csv beside fer2013.csv)."""
    if not path.exists():
        raise DataError(
            f"{path}: dataset not found; pass --data or set FER_DATA to a folder with "
            "train/<emotion>/ and test/<emotion>/, a folder of <emotion>/ subfolders, or fer2013.csv"
        )
    from fer_lib.data.ferplus import is_ferplus_folders, votes_csv_of

    if is_ferplus_folders(path):
        return "ferplus-folders"
    if votes_csv_of(path) is not None:
        return "ferplus-csv"
    if _find_csv(path) is not None and (path.is_file() or _find_child(path, _TRAIN_FOLDER_NAMES) is None):
        return "csv"
    if path.is_file():
        raise DataError(f"{path}: not a dataset; give a folder or a fer2013.csv file")
    if _find_child(path, _TRAIN_FOLDER_NAMES) is not None:
        return "image-folders"
    if _is_split_folder(path):
        return "split-folder"
    children = ", ".join(p.name for p in _child_dirs(path)[:8]) or "no subfolders"
    raise DataError(
        f"{path}: no train/ folder, emotion folders or fer2013.csv found ({children}); expected "
        f"train/<emotion>/ and test/<emotion>/ or <emotion>/ folders named {', '.join(EMOTIONS)}"
    )


def dataset_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The classes of the dataset at `path`, known from its layout before anything is decoded."""
    from fer_lib.labels import FERPLUS_EMOTIONS

    return FERPLUS_EMOTIONS if detect_format(Path(path).expanduser()).startswith("ferplus") else EMOTIONS


# ---------------------------------------------------------------- image folders


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


def _read_image_folders(path: Path, data_format: str, use_cache: bool, require_test: bool = True) -> _Records:
    skipped: list[Skipped] = []
    warnings: list[str] = []
    if data_format == "image-folders":
        train_dir = _find_child(path, _TRAIN_FOLDER_NAMES)
        test_dir = _find_child(path, _TEST_FOLDER_NAMES)
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
    cached = _cache_load(key) if use_cache else None
    if cached is None:
        decode_skips: list[Skipped] = []
        images, kept = _decode_files(pairs, decode_skips)
        if not kept:
            raise DataError(f"{path}: none of its {len(pairs)} image files could be read; check that they are images")
        cached = _Records(
            images=images,
            labels=np.array([listed[i][1] for i in kept], np.int64),
            usage=np.array([_usage_of(listed[i][0].name) for i in kept], np.int8),
            folder=np.array([listed[i][2] for i in kept], np.int8),
            skipped=decode_skips,
            warnings=[],
        )
        if use_cache:
            _cache_save(key, cached)
    # Listing skips and warnings describe the folder as it is now; only decoding is cached.
    cached.skipped = skipped + cached.skipped
    cached.warnings = warnings
    return cached


# ---------------------------------------------------------------- fer2013.csv


def _read_csv(csv_path: Path, use_cache: bool) -> _Records:
    stat = csv_path.stat()
    key = hashlib.sha1(f"v{CACHE_VERSION}|csv|{csv_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = _cache_load(key) if use_cache else None
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
    records = _Records(
        images=np.stack(images),
        labels=np.array(labels, np.int64),
        usage=np.array(usages, np.int8),
        folder=np.full(len(labels), FOLDER_OTHER, np.int8),
        skipped=skipped,
        warnings=[],
    )
    if use_cache:
        _cache_save(key, records)
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


# ---------------------------------------------------------------- cache


def _cache_path(key: str) -> Path:
    return paths.cache_dir() / f"{key}.npz"


def _cache_load(key: str) -> _Records | None:
    file = _cache_path(key)
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as stored:
            skipped = [Skipped(**item) for item in json.loads(str(stored["skipped"]))]
            return _Records(stored["images"], stored["labels"], stored["usage"], stored["folder"], skipped, [])
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


def _cache_save(key: str, records: _Records) -> None:
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


# ---------------------------------------------------------------- split protocol


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask selecting about `fraction` of each class, reproducibly for a seed."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_held = int(round(members.size * fraction))
        if members.size > 1:
            n_held = min(max(n_held, 1), members.size - 1)
        else:
            n_held = 0
        mask[rng.permutation(members)[:n_held]] = True
    return mask


def subset(split: Split, max_images: int | None, seed: int) -> Split:
    """A stratified subset of about `max_images` images (all of them when None or larger).

    Each class keeps its share, rounded, and at least one image, so the size can differ from
    `max_images` by up to one image per class.
    """
    if max_images is None or max_images >= len(split):
        return split
    return split.take(stratified_holdout(split.labels, max_images / len(split), seed))


def _apply_protocol(records: _Records, data_format: str, val_fraction: float, seed: int) -> tuple[dict, str]:
    usage, folder = records.usage, records.folder
    usage_known = bool(np.all(usage != USAGE_UNKNOWN))
    present = set(np.unique(usage).tolist()) if usage_known else set()
    selections: dict[str, np.ndarray]
    if usage_known and {0, 1, 2} <= present:
        selections = {"train": usage == 0, "val": usage == 1, "test": usage == 2}
        protocol = "FER2013 Usage: Training is train, PublicTest is validation, PrivateTest is test"
    else:
        if data_format == "image-folders":
            train_pool, test = folder == FOLDER_TRAIN, folder == FOLDER_TEST
            why = "the test folder is the test split"
        elif usage_known and 0 in present and present & {1, 2}:
            train_pool, test = usage == 0, usage != 0
            half = "PublicTest" if 1 in present else "PrivateTest"
            why = f"Usage has only one test half ({half}), which is the test split"
        else:
            # The test carve keeps its usual size when no validation is held out (val_fraction 0).
            test_fraction = val_fraction or DEFAULT_VAL_FRACTION
            test = np.zeros(len(usage), bool)
            test[stratified_holdout(records.labels, test_fraction, seed + 1)] = True
            train_pool = ~test
            why = f"no Usage known: a seeded stratified {test_fraction:.0%} test split is carved from all images"
        val = np.zeros(len(usage), bool)
        if val_fraction > 0:
            pool_index = np.flatnonzero(train_pool)
            val[pool_index[stratified_holdout(records.labels[pool_index], val_fraction, seed)]] = True
            protocol = f"{why}; validation is a seeded stratified {val_fraction:.0%} of train (seed {seed})"
        else:
            protocol = f"{why}; no validation split (val_fraction 0): every train image is trained on"
        selections = {"train": train_pool & ~val, "val": val, "test": test}
    return selections, protocol


def load_dataset(
    path: str | os.PathLike | None = None,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 1234,
    use_cache: bool = True,
    require_test: bool = True,
) -> FerDataset:
    """Load a FER dataset in any supported format and split it by FER2013's protocol.

    `path` defaults to `paths.resolve_data_dir()` (--data, then FER_DATA, then data/fer2013).
    `val_fraction` 0 holds out no validation from train (a final run on every training face);
    FER2013's csv with Usage keeps PublicTest as its validation split either way.
    With `require_test=False` a train/ folder without test/ loads with an empty test split
    (training elsewhere, e.g. on a GPU machine that was sent only the training images).
    """
    from fer_lib.data.synthetic import is_synthetic_dataset

    if not 0.0 <= val_fraction < 0.5:
        raise DataError(f"val_fraction {val_fraction} is out of range; use a value in [0, 0.5), e.g. 0.1 (0: no validation)")
    resolved = paths.resolve_data_dir(path)
    if resolved is None:
        raise DataError(
            f"no dataset given and {paths.DEFAULT_DATA_DIR} does not exist; pass --data or set FER_DATA"
        )
    data_format = detect_format(resolved)
    if data_format.startswith("ferplus"):
        from fer_lib.data.ferplus import ferplus_dataset

        return ferplus_dataset(resolved, data_format, val_fraction, seed, use_cache)
    if data_format == "csv":
        records = _read_csv(_find_csv(resolved), use_cache)
    else:
        records = _read_image_folders(resolved, data_format, use_cache, require_test)
    selections, protocol = _apply_protocol(records, data_format, val_fraction, seed)
    splits = {name: Split(name, records.images[mask], records.labels[mask]) for name, mask in selections.items()}
    warnings = list(records.warnings)
    for name, split in splits.items():
        if len(split) == 0:
            if (name == "test" and not require_test) or (name == "val" and val_fraction == 0):
                continue
            if name == "val":
                raise DataError(f"{resolved}: the val split is empty: train has too few images per class to hold "
                                "out validation images; add images (at least 2 per class)")
            hint = "; or train without it: fer train --no-eval" if name == "test" else ""
            raise DataError(f"{resolved}: the {name} split is empty ({protocol.split(';')[0]}); add images to it{hint}")
    missing_train = [e for e, n in splits["train"].class_counts().items() if n == 0]
    if missing_train:
        warnings.append(f"train split has no images of {', '.join(missing_train)}; the model cannot learn them")
    return FerDataset(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        source=resolved,
        data_format=data_format,
        protocol=protocol,
        synthetic=is_synthetic_dataset(resolved),
        skipped=records.skipped,
        warnings=warnings,
    )


def load_eval_split(path: str | os.PathLike, split: str = "test", **kwargs) -> EvalData:
    """One split for evaluation: `path` is a dataset root, or a single folder of <emotion>/ images.

    For a single split folder every image in it is evaluated.
    """
    from fer_lib.data.synthetic import is_synthetic_dataset

    path = Path(path).expanduser()
    if detect_format(path) == "split-folder":
        records = _read_image_folders(path, "split-folder", kwargs.get("use_cache", True))
        return EvalData(
            split=Split(path.name, records.images, records.labels),
            source=path,
            data_format="split-folder",
            protocol="every image of the folder is evaluated",
            synthetic=is_synthetic_dataset(path),
            skipped=records.skipped,
            warnings=records.warnings,
        )
    dataset = load_dataset(path, **kwargs)
    return EvalData(dataset.split(split), dataset.source, dataset.data_format, dataset.protocol,
                    dataset.synthetic, dataset.skipped, dataset.warnings)


def resolve_data_or_demo(explicit: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The dataset to use and whether it is generated demo data.

    Falls back to synthetic faces in data/demo when no dataset is given or found, so the
    main job always runs; callers must say so prominently.
    """
    resolved = paths.resolve_data_dir(explicit)
    if resolved is not None:
        return resolved, False
    return demo_dataset(), True


def demo_dataset() -> Path:
    """data/demo: generated faces, written on first use and reused afterwards."""
    from fer_lib.data.synthetic import generate_dataset, is_complete_synthetic_dataset

    root = paths.DEMO_DATA_DIR
    # Demo faces written with other sizes (an earlier version) serve a demo just as well.
    if is_complete_synthetic_dataset(root):
        return root
    try:
        return generate_dataset(root, train_per_class=DEMO_TRAIN_PER_CLASS, test_per_class=DEMO_TEST_PER_CLASS)
    except FileExistsError:
        raise DataError(f"{root}: holds files that are not the project's generated demo faces; "
                        "move them away, or pass --data") from None
