"""What the label change is worth: FER2013 and FER+ models scored on PublicTest with both sets of labels.

PublicTest is in both datasets: as FER2013's contrast-equalized JPEGs (labelled by one person)
and as FER+'s raw PNGs (ten votes). The faces are paired by pixels (`fer_lib.data.matching`),
and every model is scored on the pairs, each seeing the copy of the faces it was trained on.
FER2013 has no contempt: on FER2013's labels an 8-class model's contempt output is left out (its
top emotion is taken among the other seven), and the FER+ columns for seven classes leave out
the faces whose FER+ majority is contempt.
"""

from __future__ import annotations

import numpy as np

from fer_lib.data.splits import Split
from fer_lib.data.votes import majority_labels
from fer_lib.labels import EMOTIONS

COLUMNS = {
    "fer2013": "FER2013's labels, 7 classes",
    "official_7": "FER+ majority (official rule), the 7 shared classes",
    "official_8": "FER+ majority (official rule), 8 classes",
    "top_vote_7": "FER+ majority (top-vote rule), the 7 shared classes",
}
CONTEMPT_NOTE = ("contempt: on FER2013's labels an 8-class model's contempt output is left out and its top emotion "
                 "taken among the other seven; the 7-class FER+ columns leave out faces whose majority is contempt")


def paired_faces(ferplus_test: Split, fer2013_test: Split) -> tuple[np.ndarray, np.ndarray]:
    """(rows in ferplus_test, rows in fer2013_test) of the faces both hold."""
    from fer_lib.data.matching import match_faces

    matched = match_faces(ferplus_test.images, fer2013_test.images)
    rows = np.flatnonzero(matched >= 0)
    return rows, matched[rows]


def cross_label_scores(probabilities: np.ndarray, ferplus_votes: np.ndarray, fer2013_labels: np.ndarray) -> dict:
    """Top-1 of one model's `probabilities` (paired faces, 7 or 8 columns) under each COLUMNS labelling:
    {column: {"top1_accuracy", "n_images"}}, official_8 only for an 8-class model."""
    probabilities = np.asarray(probabilities, np.float64)
    seven = probabilities[:, :len(EMOTIONS)].argmax(axis=1)
    scores = {"fer2013": _top1(seven, fer2013_labels)}
    for rule, key in (("official", "official_7"), ("top_vote", "top_vote_7")):
        labels = majority_labels(ferplus_votes, rule)
        shared = (labels >= 0) & (labels < len(EMOTIONS))
        scores[key] = _top1(seven[shared], labels[shared])
    if probabilities.shape[1] > len(EMOTIONS):
        labels = majority_labels(ferplus_votes, "official")
        kept = labels >= 0
        scores["official_8"] = _top1(probabilities[kept].argmax(axis=1), labels[kept])
    return scores


def _top1(predicted: np.ndarray, labels: np.ndarray) -> dict:
    return {"top1_accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0, "n_images": int(len(labels))}
