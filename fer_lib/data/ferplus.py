"""Reading FER+ (FER2013 relabelled by ten annotators): the FERPlus code's PNG folders or the two CSVs.

Two forms are read:
- the PNG layout of microsoft/FERPlus's code: `FER2013Train/`, `FER2013Valid/` and optionally
  `FER2013Test/`, each holding `fer<row>.png` files and a `label.csv` whose lines are
  `name, box, ten vote counts` (VOTE_COLUMNS order);
- the form people download: FER2013's `fer2013.csv` beside FERPlus's `fer2013new.csv`, whose rows
  line up one to one (`Usage, Image name, ten votes`; an empty name marks a face FER+ has no label for).

Faces whose top vote is unknown or not-a-face are left out; every other face keeps its votes,
and its label is the top-vote majority. Splits follow the paper where FER+'s test split is
there (Train, Valid for validation, Test); without it, validation is a seeded stratified share
of Train and Valid (FER2013's PublicTest) is the test split.
"""

from __future__ import annotations

import csv
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_lib import paths
from fer_lib.data.splits import FerDataset, Split, stratified_holdout
from fer_lib.data.votes import VOTE_COLUMNS, majority_labels
from fer_lib.errors import DataError
from fer_lib.labels import FERPLUS_EMOTIONS, IMAGE_SIZE

CACHE_VERSION = 1
SPLIT_FOLDERS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
LABEL_FILE = "label.csv"
VOTES_CSV = "fer2013new.csv"
PIXELS_CSV = "fer2013.csv"
_USAGE_PARTS = {"training": "train", "publictest": "valid", "privatetest": "test"}


@dataclass
class FerPlusParts:
    """FER+'s parts as read: per part (train, valid, test) its images and votes."""

    images: dict[str, np.ndarray]
    votes: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


def is_ferplus_folders(path: Path) -> bool:
    return path.is_dir() and (path / SPLIT_FOLDERS["train"]).is_dir()


def votes_csv_of(path: Path) -> Path | None:
    """fer2013new.csv at `path` (a file or a folder holding it), when it sits beside fer2013.csv."""
    candidate = path if path.is_file() else path / VOTES_CSV
    if candidate.name == VOTES_CSV and candidate.is_file():
        return candidate
    return None


def _parse_votes(values: list[str], where: str) -> np.ndarray:
    if len(values) != len(VOTE_COLUMNS):
        raise DataError(f"{where}: {len(values)} vote counts, expected {len(VOTE_COLUMNS)} "
                        f"({', '.join(VOTE_COLUMNS)}); fix or remove that row")
    try:
        votes = np.array([float(v) for v in values], np.float32)
    except ValueError:
        raise DataError(f"{where}: vote counts must be numbers, got {', '.join(values)}; fix or remove that row") from None
    if not np.all(np.isfinite(votes)) or (votes < 0).any():
        raise DataError(f"{where}: vote counts must be 0 or more, got {', '.join(values)}; fix or remove that row")
    return votes


def _read_label_file(folder: Path) -> tuple[list[Path], np.ndarray]:
    label_file = folder / LABEL_FILE
    if not label_file.is_file():
        raise DataError(f"{folder}: no {LABEL_FILE}; a FER+ folder holds its PNGs and the label.csv of "
                        "microsoft/FERPlus (data/<split>/label.csv)")
    files, votes = [], []
    with label_file.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            where = f"{label_file}:{line}"
            if len(row) < 2:
                raise DataError(f"{where}: expected an image name, a face box and ten vote counts; fix or remove that row")
            image = folder / row[0].strip()
            if not image.is_file():
                raise DataError(f"{where}: image {image.name} is missing from {folder}; restore it or remove that row")
            files.append(image)
            votes.append(_parse_votes(row[2:], where))
    if not files:
        raise DataError(f"{label_file}: no rows; it needs one line per image: name, box, ten vote counts")
    return files, np.stack(votes)


def _decode_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L"), np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: unreadable image ({exc}); restore it from the FER+ PNGs") from None
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: {array.shape[1]}x{array.shape[0]} pixels, FER+ faces are {IMAGE_SIZE}x{IMAGE_SIZE}; "
                        "restore it from the FER+ PNGs")
    return array


def _cached(key: str, build) -> FerPlusParts:
    """`build()`'s parts, kept as arrays in the cache folder under `key`."""
    cache = paths.cache_dir() / f"ferplus-{key}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                parts = sorted({k.split("/", 1)[1] for k in stored.files})
                return FerPlusParts({p: stored[f"images/{p}"] for p in parts}, {p: stored[f"votes/{p}"] for p in parts})
        except (OSError, ValueError, KeyError):
            cache.unlink(missing_ok=True)
    parts = build()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp.npz")
        np.savez(temporary, **{f"images/{p}": a for p, a in parts.images.items()},
                 **{f"votes/{p}": a for p, a in parts.votes.items()})
        temporary.replace(cache)
    except OSError:
        pass  # a read-only cache only costs the next load its decoding
    return parts


def read_ferplus_folders(root: Path, use_cache: bool = True) -> FerPlusParts:
    """The PNG layout: each present part's faces and votes, checked row by row before decoding."""
    listed = {}
    for part, folder_name in SPLIT_FOLDERS.items():
        folder = root / folder_name
        if folder.is_dir():
            listed[part] = _read_label_file(folder)
    if "valid" not in listed:
        raise DataError(f"{root}: no {SPLIT_FOLDERS['valid']}/ beside {SPLIT_FOLDERS['train']}/; "
                        "FER+'s validation split is needed as the test split (or as validation beside FER2013Test/)")
    digest = hashlib.sha1(f"folders|v{CACHE_VERSION}|{root.resolve()}".encode())
    for part, (files, votes) in listed.items():
        label_file = files[0].parent / LABEL_FILE
        digest.update(f"{part}|{len(files)}|{label_file.stat().st_mtime_ns}".encode())
        digest.update(votes.tobytes())

    def build() -> FerPlusParts:
        images = {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            for part, (files, _) in listed.items():
                images[part] = np.stack(list(pool.map(_decode_png, files)))
        return FerPlusParts(images, {part: votes for part, (_, votes) in listed.items()})

    return _cached(digest.hexdigest()[:16], build) if use_cache else build()


def read_ferplus_csv(votes_csv: Path, use_cache: bool = True) -> FerPlusParts:
    """fer2013.csv and fer2013new.csv side by side: row i of one is row i of the other."""
    pixels_csv = votes_csv.parent / PIXELS_CSV
    if not pixels_csv.is_file():
        raise DataError(f"{votes_csv}: FER+'s votes need FER2013's pixels; put {PIXELS_CSV} beside it")
    key = hashlib.sha1(f"csv|v{CACHE_VERSION}|{votes_csv.resolve()}|{votes_csv.stat().st_mtime_ns}|"
                       f"{pixels_csv.stat().st_mtime_ns}".encode()).hexdigest()[:16]

    def build() -> FerPlusParts:
        with votes_csv.open(newline="") as votes_handle, pixels_csv.open(newline="") as pixels_handle:
            vote_rows, pixel_rows = csv.reader(votes_handle), csv.reader(pixels_handle)
            vote_header, pixel_header = next(vote_rows, None), next(pixel_rows, None)
            if not vote_header or len(vote_header) != 2 + len(VOTE_COLUMNS):
                raise DataError(f"{votes_csv}: expected the header Usage, Image name and ten vote columns "
                                f"({', '.join(VOTE_COLUMNS)}); is it microsoft/FERPlus's fer2013new.csv?")
            columns = [c.strip().lower() for c in pixel_header or []]
            if "pixels" not in columns or "usage" not in columns:
                raise DataError(f"{pixels_csv}: needs the columns pixels and Usage, found {', '.join(columns) or 'none'}")
            pixels_at, usage_at = columns.index("pixels"), columns.index("usage")
            images: dict[str, list] = {p: [] for p in _USAGE_PARTS.values()}
            votes: dict[str, list] = {p: [] for p in _USAGE_PARTS.values()}
            line = 1
            for vote_row, pixel_row in _zip_rows(vote_rows, pixel_rows, votes_csv, pixels_csv):
                line += 1
                if not vote_row[1].strip():
                    continue  # FER+ has no votes for this face
                where = f"{votes_csv}:{line}"
                usage = vote_row[0].strip().lower()
                if usage != pixel_row[usage_at].strip().lower():
                    raise DataError(f"{where}: Usage {vote_row[0]!r} but {pixels_csv.name} line {line} says "
                                    f"{pixel_row[usage_at]!r}; the two files do not line up, use the fer2013.csv "
                                    "that FER+ was made from")
                if usage not in _USAGE_PARTS:
                    raise DataError(f"{where}: unknown Usage {vote_row[0]!r}; expected Training, PublicTest or PrivateTest")
                try:
                    face = np.array(pixel_row[pixels_at].split(), np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
                except ValueError:
                    raise DataError(f"{pixels_csv}:{line}: pixels are not {IMAGE_SIZE * IMAGE_SIZE} numbers 0-255; "
                                    "restore the file") from None
                images[_USAGE_PARTS[usage]].append(face)
                votes[_USAGE_PARTS[usage]].append(_parse_votes(vote_row[2:], where))
        present = [p for p in images if images[p]]
        return FerPlusParts({p: np.stack(images[p]) for p in present}, {p: np.stack(votes[p]) for p in present})

    parts = _cached(key, build) if use_cache else build()
    if "train" not in parts.images or "valid" not in parts.images:
        raise DataError(f"{votes_csv}: needs Training and PublicTest rows; found {', '.join(parts.images) or 'none'}")
    return parts


def _zip_rows(vote_rows, pixel_rows, votes_csv: Path, pixels_csv: Path):
    line = 1
    while True:
        line += 1
        vote_row, pixel_row = next(vote_rows, None), next(pixel_rows, None)
        if vote_row is None and pixel_row is None:
            return
        if vote_row is None or pixel_row is None:
            longer, shorter = (pixels_csv, votes_csv) if vote_row is None else (votes_csv, pixels_csv)
            raise DataError(f"{longer}:{line}: has more rows than {shorter.name}; the two files do not line up, "
                            "use the fer2013.csv that FER+ was made from")
        if len(vote_row) < 2 + len(VOTE_COLUMNS):
            raise DataError(f"{votes_csv}:{line}: {max(len(vote_row) - 2, 0)} vote counts, expected {len(VOTE_COLUMNS)}; "
                            "fix or remove that row")
        yield vote_row, pixel_row


def labelled_faces(images: np.ndarray, votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, top-vote labels, votes) of the faces whose top vote is an emotion."""
    labels = majority_labels(votes, "top_vote")
    kept = labels >= 0
    return images[kept], labels[kept], votes[kept]


def ferplus_dataset(root: Path, data_format: str, val_fraction: float, seed: int, use_cache: bool = True) -> FerDataset:
    """A FerDataset of FER+ (8 classes, votes on every face) by the protocol in this module's docstring."""
    parts = read_ferplus_folders(root, use_cache) if data_format == "ferplus-folders" else read_ferplus_csv(
        votes_csv_of(root), use_cache)
    splits, dropped = {}, 0
    for part in parts.images:
        images, labels, votes = labelled_faces(parts.images[part], parts.votes[part])
        dropped += len(parts.votes[part]) - len(labels)
        splits[part] = Split(part, images, labels, votes, FERPLUS_EMOTIONS)
    train = splits["train"]
    if "test" in splits:
        val, test = replace(splits["valid"], name="val"), splits["test"]
        protocol = "FER+: Train is train, Valid (PublicTest) is validation, Test (PrivateTest) is test"
    else:
        test = replace(splits["valid"], name="test")
        held = stratified_holdout(train.labels, val_fraction, seed) if val_fraction > 0 else np.zeros(len(train), bool)
        val = train.take(held, "val")
        train = train.take(~held)
        protocol = ("FER+: Valid (PublicTest) is test; " + (f"validation is a seeded stratified {val_fraction:.0%} of "
                    f"Train (seed {seed})" if val_fraction > 0 else "no validation split (val_fraction 0)"))
    protocol += f"; labels are the top vote, {dropped} faces whose top vote is unknown or not-a-face left out"
    from fer_lib.data.synthetic import is_synthetic_dataset

    return FerDataset(train=replace(train, name="train"), val=val, test=test, source=root,
                      data_format=data_format, protocol=protocol, synthetic=is_synthetic_dataset(root))
