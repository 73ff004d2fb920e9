"""Loading FER datasets: `load_dataset` reads any supported format and applies its split protocol.

`detect_format` tells the formats apart: Kaggle image folders and single split folders
(image_folders), fer2013.csv (fer2013_csv) and FER+ (ferplus). FER2013's split protocol is here;
`load_eval_split` reads one split for evaluation and `demo_dataset` writes the generated demo faces.
The data model (splits) and the cache's names (records) are importable from here too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_lib import paths
from fer_lib.data.fer2013_csv import find_csv, read_csv
from fer_lib.data.ferplus import ferplus_dataset, is_ferplus_folders, votes_csv_of
from fer_lib.data.image_folders import TRAIN_FOLDER_NAMES, child_dirs, find_child, is_split_folder, read_image_folders
from fer_lib.data.records import CACHE_VERSION, FOLDER_OTHER, FOLDER_TEST, FOLDER_TRAIN, USAGE_CODES, USAGE_UNKNOWN, Records
from fer_lib.data.splits import (
    SPLIT_NAMES,
    EvalData,
    FerDataset,
    Skipped,
    Split,
    origin_info,
    skip_reasons,
    stratified_holdout,
    subset,
)
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS

__all__ = [
    "CACHE_VERSION", "SPLIT_NAMES", "DEFAULT_VAL_FRACTION", "USAGE_CODES", "USAGE_UNKNOWN",
    "DEMO_TRAIN_PER_CLASS", "DEMO_TEST_PER_CLASS", "FOLDER_TRAIN", "FOLDER_TEST", "FOLDER_OTHER",
    "Skipped", "Split", "FerDataset", "EvalData", "origin_info", "skip_reasons", "stratified_holdout", "subset",
    "detect_format", "dataset_classes", "load_dataset", "load_eval_split", "resolve_data_or_demo", "demo_dataset",
]

DEFAULT_VAL_FRACTION = 0.1
# Generated demo faces per class (data/demo): enough for every notebook to run end to end,
# few enough to train on in seconds.
DEMO_TRAIN_PER_CLASS, DEMO_TEST_PER_CLASS = 120, 30


def detect_format(path: Path) -> str:
    """'image-folders' (train/ and test/), 'split-folder' (<emotion>/*), 'csv', or FER+'s
    'ferplus-folders' (FER2013Train/ with label.csv) and 'ferplus-csv' (fer2013new.csv beside fer2013.csv)."""
    if not path.exists():
        raise DataError(
            f"{path}: dataset not found; pass --data or set FER_DATA to a folder with "
            "train/<emotion>/ and test/<emotion>/, a folder of <emotion>/ subfolders, or fer2013.csv"
        )
    if is_ferplus_folders(path):
        return "ferplus-folders"
    if votes_csv_of(path) is not None:
        return "ferplus-csv"
    if find_csv(path) is not None and (path.is_file() or find_child(path, TRAIN_FOLDER_NAMES) is None):
        return "csv"
    if path.is_file():
        raise DataError(f"{path}: not a dataset; give a folder or a fer2013.csv file")
    if find_child(path, TRAIN_FOLDER_NAMES) is not None:
        return "image-folders"
    if is_split_folder(path):
        return "split-folder"
    children = ", ".join(p.name for p in child_dirs(path)[:8]) or "no subfolders"
    raise DataError(
        f"{path}: no train/ folder, emotion folders or fer2013.csv found ({children}); expected "
        f"train/<emotion>/ and test/<emotion>/ or <emotion>/ folders named {', '.join(EMOTIONS)}"
    )


def dataset_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The classes of the dataset at `path`, known from its layout before anything is decoded."""
    return FERPLUS_EMOTIONS if detect_format(Path(path).expanduser()).startswith("ferplus") else EMOTIONS


def _apply_protocol(records: Records, data_format: str, val_fraction: float, seed: int) -> tuple[dict, str]:
    """FER2013's split protocol: a boolean mask per split name, and the protocol in words."""
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
        return ferplus_dataset(resolved, data_format, val_fraction, seed, use_cache)
    if data_format == "csv":
        records = read_csv(find_csv(resolved), use_cache)
    else:
        records = read_image_folders(resolved, data_format, use_cache, require_test)
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
        records = read_image_folders(path, "split-folder", kwargs.get("use_cache", True))
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
