"""FER+'s ten annotator votes per face: majority labels under both rules, and the four training targets.

The votes come in FER+'s column order (VOTE_COLUMNS); `emotion_votes` reorders the eight
emotions into FERPLUS_EMOTIONS order. The label modes are those of Barsoum et al. (ICMI 2016)
as microsoft/FERPlus implements them (`src/ferplus.py`, `_process_data`/`_process_target`).
"""

from __future__ import annotations

import numpy as np

from fer_lib.labels import FERPLUS_EMOTIONS

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
# FER+ column of each FERPLUS_EMOTIONS class (angry ... neutral, contempt).
_COLUMN_OF_CLASS = np.array([4, 5, 6, 1, 3, 2, 0, 7])
# FERPLUS_EMOTIONS class of each emotion column.
CLASS_OF_COLUMN = np.argsort(_COLUMN_OF_CLASS)
EMOTION_COLUMNS = 8

MAJORITY_RULES = ("official", "top_vote")
MAJORITY_RULE_TEXT = {
    "official": "official rule (single votes dropped, top emotion over half of the rest)",
    "top_vote": "top-vote rule (the emotion with most votes)",
}
LABEL_MODES = ("majority", "probability", "crossentropy", "multi_target")
LABEL_MODE_TEXT = {
    "majority": "one-hot majority label",
    "probability": "a label drawn from the vote distribution each epoch",
    "crossentropy": "the vote distribution as a soft target",
    "multi_target": "every emotion with 30% of the votes counts as right",
}


def emotion_votes(votes: np.ndarray) -> np.ndarray:
    """(N, 8) vote counts in FERPLUS_EMOTIONS order, from (N, 10) votes in VOTE_COLUMNS order."""
    return np.asarray(votes, np.float32)[:, _COLUMN_OF_CLASS]


def majority_labels(votes: np.ndarray, rule: str = "official") -> np.ndarray:
    """The majority emotion of each face in FERPLUS_EMOTIONS order, -1 where the rule drops it.

    `top_vote` (the paper's): the column with most votes; ties go to the first column in FER+'s
    order, an emotion beating unknown/NF; faces whose top vote is unknown or NF are dropped.
    `official` (microsoft/FERPlus, its validation and test): single votes are zeroed, and a face is
    kept only if its top column then holds more than half of the remaining votes and is an emotion.
    """
    votes = np.asarray(votes, np.float64)
    if rule == "top_vote":
        top = votes.max(axis=1, keepdims=True)
        emotion_top = votes[:, :EMOTION_COLUMNS] == top
        column = np.argmax(emotion_top, axis=1)
        kept = emotion_top.any(axis=1) & (top[:, 0] > 0)
    elif rule == "official":
        counted = np.where(votes > 1, votes, 0.0)
        total = counted.sum(axis=1)
        column = np.argmax(counted, axis=1)
        kept = (counted.max(axis=1) > 0.5 * total) & (column < EMOTION_COLUMNS) & (total > 0)
    else:
        raise ValueError(f"unknown majority rule {rule!r}; choose one of {', '.join(MAJORITY_RULES)}")
    return np.where(kept, CLASS_OF_COLUMN[np.minimum(column, EMOTION_COLUMNS - 1)], -1).astype(np.int64)


def _distribution_row(raw: np.ndarray, mode: str) -> np.ndarray | None:
    """microsoft/FERPlus `_process_data` for one face: the 10-column target, or None when it is dropped."""
    raw = np.where(raw > 1, raw, 0.0).astype(np.float64)  # single votes are outliers
    total = raw.sum()
    target = np.zeros_like(raw)
    if total <= 0:
        return None
    if mode == "multi_target":
        target = np.where(raw >= 0.3 * total, raw, 0.0)
        if target.sum() <= 0.5 * total:
            return None
    else:  # probability, crossentropy: the top emotions that hold three quarters of the votes, at most three
        taken, count, valid = 0.0, 0, True
        while taken < 0.75 * total and count < 3 and valid:
            peak = raw.max()
            for i in range(raw.size):
                if raw[i] == peak:
                    target[i], raw[i] = peak, 0.0
                    taken += peak
                    count += 1
                    if i >= EMOTION_COLUMNS:  # unknown or NF among the top ones
                        valid = False
                        if target.sum() > peak:
                            target[i] = 0.0
                            count -= 1
                        break
        if target.sum() <= 0.5 * total or count > 3:
            return None
    if np.argmax(target) >= EMOTION_COLUMNS:
        return None
    return target


def label_targets(votes: np.ndarray, mode: str, rule: str = "official") -> tuple[np.ndarray, np.ndarray]:
    """(targets (N, 8) in FERPLUS_EMOTIONS order, kept mask) for training under label `mode`.

    majority: one-hot of `rule`'s majority label. probability and crossentropy: the distribution
    of the votes that hold three quarters of them (the paper's; `probability` then draws one label
    from it per epoch, see DrawnLabels). multi_target: 1 for every emotion with 30% of the votes
    or more, which `multi_target_loss` rewards equally.
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {mode!r}; choose one of {', '.join(LABEL_MODES)}")
    votes = np.asarray(votes, np.float64)
    n = votes.shape[0]
    targets = np.zeros((n, len(FERPLUS_EMOTIONS)), np.float32)
    if mode == "majority":
        labels = majority_labels(votes, rule)
        kept = labels >= 0
        targets[np.flatnonzero(kept), labels[kept]] = 1.0
        return targets, kept
    kept = np.zeros(n, bool)
    for i in range(n):
        row = _distribution_row(votes[i], mode)
        if row is None:
            continue
        emotions = row[:EMOTION_COLUMNS][_COLUMN_OF_CLASS]
        if mode == "multi_target":
            emotions = (emotions > 0).astype(np.float64)
        targets[i] = emotions / emotions.sum()
        kept[i] = True
    return targets, kept


def vote_distribution(votes: np.ndarray) -> np.ndarray:
    """(N, 8) share of each face's emotion votes per class (unknown and NF left out); zeros for a face with none."""
    emotions = emotion_votes(votes).astype(np.float64)
    total = emotions.sum(axis=1, keepdims=True)
    return np.divide(emotions, total, out=np.zeros_like(emotions), where=total > 0).astype(np.float32)
