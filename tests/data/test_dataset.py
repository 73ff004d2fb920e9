"""The data module: three formats, protocol detection, caching and bad input."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from conftest import kaggle_layout, make_image_folders, write_face
from PIL import Image

from fer_lib import paths
from fer_lib.data.dataset import demo_dataset, detect_format, load_dataset, load_eval_split, stratified_holdout
from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS


def write_csv(path, rows, header="emotion,pixels,Usage"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def pixel_string(value: int, n: int = 48 * 48) -> str:
    return " ".join([str(value)] * n)


def test_kaggle_layout_with_one_test_half_carves_validation(tmp_path):
    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=10, n_test=3))
    dataset = load_dataset(root, val_fraction=0.2, seed=3)
    assert dataset.data_format == "image-folders"
    assert "test folder is the test split" in dataset.protocol
    assert len(dataset.test) == 7 * 3
    assert len(dataset.val) == 7 * 2  # 20% of 10 per class, stratified
    assert len(dataset.train) == 7 * 8
    assert dataset.train.images.shape[1:] == (48, 48) and dataset.train.images.dtype == np.uint8
    assert set(dataset.val.class_counts().values()) == {2}


def test_kaggle_layout_with_both_test_halves_follows_usage(tmp_path):
    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=5, n_test=2, test_prefixes=("PublicTest", "PrivateTest")))
    dataset = load_dataset(root)
    assert dataset.protocol.startswith("FER2013 Usage")
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (35, 14, 14)


def test_folder_names_match_case_insensitively_and_any_image_becomes_48x48_gray(tmp_path):
    layout = kaggle_layout(n_train=3, n_test=1)
    layout["train"]["Happy"] = layout["train"].pop("happy")
    root = make_image_folders(tmp_path / "fer", layout)
    Image.new("RGB", (100, 60), (200, 10, 10)).save(root / "train" / "Happy" / "Training_big.jpg")
    Image.new("RGBA", (30, 30), (0, 0, 255, 255)).save(root / "train" / "Happy" / "Training_alpha.png")
    dataset = load_dataset(root)
    assert dataset.split("train").class_counts()["happy"] + dataset.val.class_counts()["happy"] == 5
    assert dataset.train.images.shape[1:] == (48, 48)


def test_single_split_folder_is_loaded_and_carved(tmp_path):
    root = make_image_folders(tmp_path / "faces", {"": {e: [f"{e}{i}.png" for i in range(10)] for e in EMOTIONS}})
    assert detect_format(root) == "split-folder"
    dataset = load_dataset(root, val_fraction=0.1)
    assert "no Usage known" in dataset.protocol
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == 70
    assert len(dataset.test) == 7 and len(dataset.val) == 7


def test_val_fraction_zero_trains_on_every_train_image_and_keeps_the_test_split(tmp_path):
    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=10, n_test=3))
    dataset = load_dataset(root, val_fraction=0)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (70, 0, 21)
    assert "no validation split (val_fraction 0)" in dataset.protocol
    assert dataset.val.images.shape == (0, 48, 48)
    # Without a test folder the carved test split keeps its usual 10%, not 0%.
    single = make_image_folders(tmp_path / "faces", {"": {e: [f"{e}{i}.png" for i in range(10)] for e in EMOTIONS}})
    carved = load_dataset(single, val_fraction=0)
    assert (len(carved.train), len(carved.val), len(carved.test)) == (63, 0, 7)
    assert np.array_equal(carved.test.images, load_dataset(single, val_fraction=0.1).test.images)
    with pytest.raises(DataError, match=r"val_fraction -0.1 is out of range; use a value in \[0, 0.5\)"):
        load_dataset(root, val_fraction=-0.1)


def test_csv_with_all_usages_follows_fer2013_protocol(tmp_path):
    rows = []
    for label in range(7):
        rows += [f"{label},{pixel_string(label * 30)},Training"] * 4
        rows += [f"{label},{pixel_string(label * 30)},PublicTest", f"{label},{pixel_string(label * 30)},PrivateTest"]
    csv = write_csv(tmp_path / "fer2013.csv", rows)
    for given in (csv, tmp_path):
        dataset = load_dataset(given)
        assert dataset.data_format == "csv"
        assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (28, 7, 7)
    assert dataset.test.images[dataset.test.labels == 3][0, 0, 0] == 90


def test_csv_bad_rows_are_counted_skips(tmp_path):
    good = [f"{label},{pixel_string(100)},Training" for label in range(7) for _ in range(3)]
    good += [f"{label},{pixel_string(100)},PublicTest" for label in range(7)]
    bad = [
        f"9,{pixel_string(1)},Training",  # unknown label
        f"1,{pixel_string(1, 100)},Training",  # wrong pixel count
        f"1,{pixel_string(1)[:-1]}x,Training",  # malformed pixels
        f"1,{pixel_string(1)},Validation",  # unknown usage
        f"1,{pixel_string(300)},Training",  # out of range
    ]
    dataset = load_dataset(write_csv(tmp_path / "fer2013.csv", good + bad))
    reasons = " | ".join(s.reason for s in dataset.skipped)
    assert len(dataset.skipped) == 5
    for expected in ("unknown emotion label", "wrong pixel count", "malformed pixel", "unknown Usage", "outside 0-255"):
        assert expected in reasons
    assert "Skipped 5" in dataset.describe()
    assert "PublicTest" in dataset.protocol


def test_csv_missing_column_is_an_error(tmp_path):
    csv = write_csv(tmp_path / "fer2013.csv", ["0,1 2 3"], header="label,pixels")
    with pytest.raises(DataError, match="missing column.*emotion"):
        load_dataset(csv)


def test_bad_files_are_skipped_and_counted(tmp_path):
    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=4, n_test=1))
    (root / "train" / "sad" / "Training_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "sad" / "Training_empty.png").write_bytes(b"")
    (root / "train" / "sad" / "notes.txt").write_text("hello")
    (root / "train" / ".DS_Store").write_bytes(b"\0\0")
    dataset = load_dataset(root)
    reasons = sorted(s.reason.split(" (")[0] for s in dataset.skipped)
    assert reasons == ["file outside a class folder", "not an image file", "unreadable image", "unreadable image"]
    assert len(dataset.train) + len(dataset.val) == 28


def test_unknown_class_folder_is_an_error_naming_it(tmp_path):
    layout = kaggle_layout(n_train=2, n_test=1)
    layout["train"]["happiness"] = ["x.png"]
    root = make_image_folders(tmp_path / "fer", layout)
    with pytest.raises(DataError, match="happiness.*rename it"):
        load_dataset(root)


def test_missing_dataset_and_missing_test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="dataset not found"):
        load_dataset(tmp_path / "nowhere")
    root = make_image_folders(tmp_path / "fer", {"train": kaggle_layout()["train"]})
    with pytest.raises(DataError, match="no test/ folder"):
        load_dataset(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train/ folder"):
        load_dataset(tmp_path / "empty")


def test_empty_class_folder_and_missing_class_are_reported(tmp_path):
    layout = kaggle_layout(n_train=4, n_test=1)
    del layout["train"]["disgust"]
    root = make_image_folders(tmp_path / "fer", layout)
    (root / "train" / "fear_extra").mkdir()
    (root / "train" / "Disgust").mkdir()
    with pytest.raises(DataError, match="fear_extra"):
        load_dataset(root)
    (root / "train" / "fear_extra").rmdir()
    dataset = load_dataset(root)
    assert any("Disgust has no images" in w for w in dataset.warnings)
    assert any("no images of disgust" in w for w in dataset.warnings)


def test_cache_is_used_and_invalidated_when_files_change(tmp_path, monkeypatch):
    from fer_lib.data import image_folders as data

    root = make_image_folders(tmp_path / "fer", kaggle_layout(n_train=3, n_test=1))
    first = load_dataset(root)
    decode = data._decode_files

    def no_decoding(*args):
        raise AssertionError("decoded again although nothing changed")

    monkeypatch.setattr(data, "_decode_files", no_decoding)
    cached = load_dataset(root)  # served from the cache
    assert np.array_equal(cached.train.images, first.train.images) and np.array_equal(cached.test.labels, first.test.labels)
    monkeypatch.setattr(data, "_decode_files", decode)
    target = root / "train" / "angry" / "Training_angry0.png"
    write_face(target, value=250)
    os.utime(target, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    second = load_dataset(root)
    all_first = np.concatenate([first.train.images, first.val.images])
    all_second = np.concatenate([second.train.images, second.val.images])
    assert all_second.max() > all_first.max()


def test_data_location_order(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA", str(tmp_path / "env"))
    assert paths.resolve_data_dir(tmp_path / "cli") == tmp_path / "cli"
    assert paths.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("FER_DATA")
    monkeypatch.setattr(paths, "DEFAULT_DATA_DIR", tmp_path / "default")
    assert paths.resolve_data_dir() is None
    (tmp_path / "default").mkdir()
    assert paths.resolve_data_dir() == tmp_path / "default"


def test_eval_split_accepts_root_or_single_folder(synthetic_root):
    from_root = load_eval_split(synthetic_root, "test")
    from_folder = load_eval_split(synthetic_root / "test")
    assert len(from_root.split) == len(from_folder.split) == 70
    assert from_root.synthetic and from_folder.synthetic
    np.testing.assert_array_equal(np.sort(from_root.split.labels), np.sort(from_folder.split.labels))


def test_stratified_holdout_is_seeded_and_stratified():
    labels = np.repeat(np.arange(7), [100, 10, 50, 200, 80, 60, 1])
    mask = stratified_holdout(labels, 0.1, seed=5)
    np.testing.assert_array_equal(mask, stratified_holdout(labels, 0.1, seed=5))
    assert not np.array_equal(mask, stratified_holdout(labels, 0.1, seed=6))
    held = np.bincount(labels[mask], minlength=7)
    assert held.tolist() == [10, 1, 5, 20, 8, 6, 0]


@pytest.mark.real_data
@pytest.mark.skipif(not os.environ.get("FER_DATA"), reason="FER_DATA not set")
def test_real_fer2013_loads_with_expected_counts():
    dataset = load_dataset(os.environ["FER_DATA"])
    assert len(dataset.train) + len(dataset.val) == 28709
    assert len(dataset.test) == 3589
    assert dataset.test.class_counts()["disgust"] == 56
    assert not dataset.synthetic


def test_demo_data_of_any_size_is_reused_and_foreign_files_are_refused(tmp_path, monkeypatch):
    from fer_lib.data.synthetic import generate_dataset

    # Demo faces an earlier version wrote with other sizes serve as they are, instead of failing.
    demo = generate_dataset(tmp_path / "demo", train_per_class=3, test_per_class=2)
    monkeypatch.setattr(paths, "DEMO_DATA_DIR", demo)
    assert demo_dataset() == demo
    assert len(load_dataset(demo, val_fraction=0.34).test) == 2 * len(EMOTIONS)

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes")
    monkeypatch.setattr(paths, "DEMO_DATA_DIR", foreign)
    with pytest.raises(DataError, match=r"mine: holds files that are not the project's generated demo faces; move them away, or pass --data"):
        demo_dataset()
    assert (foreign / "notes.txt").read_text() == "my notes"
