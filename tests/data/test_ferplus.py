"""FER+: its two layouts, the majority rules, the four label modes, and bad input in one line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_lib.data.dataset import dataset_classes, detect_format, load_dataset
from fer_lib.data.votes import VOTE_COLUMNS, label_targets, majority_labels, vote_distribution
from fer_lib.errors import DataError
from fer_lib.labels import FERPLUS_EMOTIONS

NEUTRAL, HAPPY, SURPRISE, SAD, ANGRY, DISGUST, FEAR, CONTEMPT, UNKNOWN, NF = range(10)  # FER+'s columns
CLASS = {name: i for i, name in enumerate(FERPLUS_EMOTIONS)}


def votes(**columns) -> np.ndarray:
    row = np.zeros(10)
    for name, count in columns.items():
        row[VOTE_COLUMNS.index(name)] = count
    return row


def test_the_png_layout_loads_with_eight_classes_votes_and_the_top_vote_label(ferplus_root):
    dataset = load_dataset(ferplus_root)
    assert detect_format(ferplus_root) == "ferplus-folders" and dataset_classes(ferplus_root) == FERPLUS_EMOTIONS
    assert dataset.classes == FERPLUS_EMOTIONS and dataset.has_votes and dataset.synthetic
    assert dataset.train.votes.shape == (len(dataset.train), 10)
    assert np.array_equal(dataset.test.labels, majority_labels(dataset.test.votes, "top_vote"))
    # One face in twelve has most votes on unknown: left out, and said so.
    assert len(dataset.train) + len(dataset.val) == 8 * 22
    assert "16 faces whose top vote is unknown" in dataset.protocol and "Valid (PublicTest) is test" in dataset.protocol
    assert set(dataset.counts().columns) == {*FERPLUS_EMOTIONS, "total"}


def test_with_its_test_split_the_papers_protocol_is_used(ferplus_root, tmp_path):
    root = shutil.copytree(ferplus_root, tmp_path / "fp")
    shutil.copytree(root / "FER2013Valid", root / "FER2013Test")
    dataset = load_dataset(root)
    assert len(dataset.val) == len(dataset.test) == 64 and len(dataset.train) == 8 * 22
    assert "Test (PrivateTest) is test" in dataset.protocol


def _write_csv_form(ferplus_root: Path, folder: Path) -> Path:
    """fer2013.csv and fer2013new.csv made from the generated PNGs, with one FER2013 row FER+ has no label for."""
    from PIL import Image

    folder.mkdir()
    pixel_rows, vote_rows = [["emotion", "pixels", "Usage"]], [["Usage", "Image name", *VOTE_COLUMNS]]
    for part, usage in (("FER2013Train", "Training"), ("FER2013Valid", "PublicTest")):
        with open(ferplus_root / part / "label.csv") as handle:
            for row in csv.reader(handle):
                pixels = np.asarray(Image.open(ferplus_root / part / row[0]))
                pixel_rows.append(["0", " ".join(map(str, pixels.reshape(-1))), usage])
                vote_rows.append([usage, row[0], *row[2:]])
        pixel_rows.append(["3", " ".join(["7"] * 2304), usage])
        vote_rows.append([usage, "", *["0"] * 10])
    for name, rows in (("fer2013.csv", pixel_rows), ("fer2013new.csv", vote_rows)):
        with open(folder / name, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    return folder


def test_the_csv_form_gives_the_same_faces_and_votes_as_the_png_layout(ferplus_root, tmp_path):
    folder = _write_csv_form(ferplus_root, tmp_path / "csv")
    assert detect_format(folder) == "ferplus-csv" and dataset_classes(folder / "fer2013new.csv") == FERPLUS_EMOTIONS
    from_csv, from_png = load_dataset(folder), load_dataset(ferplus_root)
    for name in ("train", "val", "test"):
        assert np.array_equal(from_csv.split(name).images, from_png.split(name).images)
        assert np.array_equal(from_csv.split(name).votes, from_png.split(name).votes)


def test_the_official_rule_drops_single_votes_and_needs_more_than_half():
    rows = np.stack([
        votes(neutral=4, anger=3, disgust=2, sadness=1),  # 4 of 9 counted: not over half
        votes(neutral=6, happiness=1, surprise=1, unknown=2),  # 6 of 8
        votes(happiness=5, unknown=5),  # a tie with unknown: no majority
        votes(unknown=6, neutral=4),  # unknown's
        votes(contempt=5, disgust=3, fear=2),  # 5 of 10 is not over half
        votes(contempt=6, disgust=4),
    ])
    assert majority_labels(rows, "official").tolist() == [-1, CLASS["neutral"], -1, -1, -1, CLASS["contempt"]]
    # The paper's top vote: ties go to the first column, an emotion beats unknown.
    assert majority_labels(rows, "top_vote").tolist() == [CLASS["neutral"], CLASS["neutral"], CLASS["happy"], -1,
                                                          CLASS["contempt"], CLASS["contempt"]]
    with pytest.raises(ValueError, match="unknown majority rule"):
        majority_labels(rows, "plurality")


def test_the_label_modes_make_the_official_codes_targets():
    rows = np.stack([votes(neutral=4, anger=3, disgust=2, sadness=1), votes(happiness=2, surprise=2, fear=2, sadness=2,
                                                                            neutral=2)])
    targets, kept = label_targets(rows, "crossentropy")
    # The top emotions holding three quarters of the counted votes: neutral 4 and anger 3 (7 of 9).
    assert kept.tolist() == [True, False]  # five tied emotions are more than three: dropped
    assert targets[0, CLASS["neutral"]] == pytest.approx(4 / 7) and targets[0, CLASS["angry"]] == pytest.approx(3 / 7)
    multi, kept = label_targets(rows[:1], "multi_target")
    assert kept.tolist() == [True] and set(np.flatnonzero(multi[0])) == {CLASS["neutral"], CLASS["angry"]}
    majority, kept = label_targets(rows[:1], "majority")
    assert kept.tolist() == [False]  # 4 of 9 is no official majority
    assert np.allclose(vote_distribution(rows[:1])[0, [CLASS["neutral"], CLASS["sad"]]], [0.4, 0.1])
    with pytest.raises(ValueError, match="unknown label mode"):
        label_targets(rows, "soft")


def test_probability_mode_draws_each_label_as_often_as_the_annotators_chose_it():
    from fer_lib.training.targets import DrawnLabels

    distributions = np.tile(np.array([[0.7, 0.0, 0.0, 0.3, 0, 0, 0, 0]], np.float32), (4000, 1))
    batches = DrawnLabels(np.zeros((4000, 48, 48, 1), np.uint8), distributions, batch_size=500, seed=0)
    drawn = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert drawn.sum(axis=1).tolist() == [1.0] * 4000
    assert drawn[:, 0].mean() == pytest.approx(0.7, abs=0.03) and drawn[:, 3].mean() == pytest.approx(0.3, abs=0.03)


def _broken_copy(ferplus_root: Path, tmp_path: Path, edit) -> Path:
    root = shutil.copytree(ferplus_root, tmp_path / "broken")
    label_file = root / "FER2013Train" / "label.csv"
    lines = label_file.read_text().splitlines(keepends=True)
    lines[2] = edit(lines[2])
    label_file.write_text("".join(lines))
    return root


@pytest.mark.parametrize("edit, message", [
    (lambda line: line.rsplit(",", 1)[0] + "\n", r"label.csv:3: 9 vote counts, expected 10"),
    (lambda line: line.replace(",0,", ",x,", 1) if ",0," in line else line[:-2] + "x\n", r"label.csv:3: vote counts must be numbers"),
    (lambda line: "fer9999999.png" + line[line.index(","):], r"label.csv:3: image fer9999999.png is missing"),
])
def test_a_bad_label_row_fails_in_one_line_naming_the_file_and_row(ferplus_root, tmp_path, edit, message):
    root = _broken_copy(ferplus_root, tmp_path, edit)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(root, use_cache=False)
    assert "\n" not in str(error.value)


def test_a_folder_without_label_csv_fails_in_one_line(ferplus_root, tmp_path):
    root = shutil.copytree(ferplus_root, tmp_path / "fp")
    (root / "FER2013Valid" / "label.csv").unlink()
    with pytest.raises(DataError, match=r"FER2013Valid: no label.csv"):
        load_dataset(root)


def test_a_votes_csv_that_does_not_line_up_with_fer2013_csv_fails_in_one_line(ferplus_root, tmp_path):
    folder = _write_csv_form(ferplus_root, tmp_path / "csv")
    pixels = (folder / "fer2013.csv").read_text().splitlines(keepends=True)
    (folder / "fer2013.csv").write_text("".join(pixels[:1] + pixels[2:]))  # one row fewer: every row shifts
    with pytest.raises(DataError, match=r"do not line up"):
        load_dataset(folder, use_cache=False)
