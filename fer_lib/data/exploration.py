"""Looking at a dataset before training: imbalance, mean faces and data-quality checks."""

from __future__ import annotations

import hashlib

import numpy as np

from fer_lib.data.dataset import SPLIT_NAMES, FerDataset, Split
from fer_lib.labels import EMOTIONS

BLANK_STD = 1.0  # every pixel the same, give or take JPEG noise
NEAR_CONSTANT_STD = 6.0  # almost no structure: a face has far more contrast


BALANCED_RATIO = 1.5  # commonest over rarest class below which the classes count as balanced


def imbalance_summary(dataset: FerDataset) -> str:
    """One sentence on the training classes' balance: the rarest and commonest and their ratio when they differ."""
    counts = dataset.train.class_counts()
    rarest = min(counts, key=counts.get)
    commonest = max(counts, key=counts.get)
    ratio = counts[commonest] / max(counts[rarest], 1)
    share = counts[rarest] / max(sum(counts.values()), 1)
    if counts[rarest] == counts[commonest]:
        return f"The classes are balanced: {counts[rarest]} training images each."
    if ratio < BALANCED_RATIO:
        return (f"The classes are balanced: from {counts[rarest]} ({rarest}) to {counts[commonest]} ({commonest}) "
                "training images each.")
    return (f"The classes are imbalanced: {rarest} has {counts[rarest]} training images ({share:.1%} of train), "
            f"{ratio:.1f}x fewer than {commonest} ({counts[commonest]}).")


def mean_faces(split: Split) -> np.ndarray:
    """The mean image of each class, shape (classes, 48, 48) float; NaN for an absent class."""
    means = np.full((len(split.classes), *split.images.shape[1:]), np.nan)
    for label in range(len(split.classes)):
        members = split.images[split.labels == label]
        if len(members):
            means[label] = members.mean(axis=0)
    return means


def quality_report(dataset: FerDataset) -> dict:
    """Blank, near-constant and duplicate images across all splits, with counts and examples."""
    found = {"blank": [], "near_constant": []}
    digests: dict[str, list[tuple[str, int]]] = {}
    for name in SPLIT_NAMES:
        images = dataset.split(name).images
        stds = images.reshape(len(images), -1).std(axis=1)
        found["blank"] += [(name, int(i)) for i in np.flatnonzero(stds < BLANK_STD)]
        found["near_constant"] += [(name, int(i)) for i in np.flatnonzero((stds >= BLANK_STD) & (stds < NEAR_CONSTANT_STD))]
        for index, image in enumerate(images):
            digests.setdefault(hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest(), []).append((name, index))
    groups = [members for members in digests.values() if len(members) > 1]
    cross_split = [g for g in groups if len({split for split, _ in g}) > 1]
    return {
        "blank": len(found["blank"]),
        "near_constant": len(found["near_constant"]),
        "duplicate_groups": len(groups),
        "duplicate_images": sum(len(g) - 1 for g in groups),
        "cross_split_duplicate_groups": len(cross_split),
        "examples": {
            "blank": found["blank"][:8],
            "near_constant": found["near_constant"][:8],
            "duplicates": groups[:8],
        },
    }


def intensity_statistics(dataset: FerDataset):
    """Mean and standard deviation of pixel intensity per split and emotion (pandas DataFrame)."""
    import pandas as pd

    rows = []
    for name in SPLIT_NAMES:
        split = dataset.split(name)
        for label, emotion in enumerate(split.classes):
            pixels = split.images[split.labels == label]
            if len(pixels):
                rows.append({"split": name, "emotion": emotion, "mean": float(pixels.mean()), "std": float(pixels.std())})
    return pd.DataFrame(rows)


def majority_rule_counts(dataset: FerDataset):
    """FER+: faces per class and split under each majority rule (pandas DataFrame, rows split x rule)."""
    import pandas as pd

    from fer_lib.data.votes import MAJORITY_RULES, majority_labels

    rows = {}
    for name in SPLIT_NAMES:
        split = dataset.split(name)
        for rule in MAJORITY_RULES:
            labels = majority_labels(split.votes, rule)
            counts = np.bincount(labels[labels >= 0], minlength=len(split.classes))
            rows[(name, rule)] = {**dict(zip(split.classes, counts.tolist())), "total": int((labels >= 0).sum()),
                                  "dropped": int((labels < 0).sum())}
    return pd.DataFrame(rows).T


def mean_vote_shares(split: Split):
    """FER+: the mean share of the ten votes per column (eight emotions, unknown, not-a-face) for the faces
    of each top-vote class: how much annotators agree on each emotion, and what they confuse it with."""
    import pandas as pd

    from fer_lib.data.votes import CLASS_OF_COLUMN, VOTE_COLUMNS

    votes = np.asarray(split.votes, np.float64)
    shares = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)
    order = np.argsort(CLASS_OF_COLUMN)  # the emotion columns in class order, then unknown and NF
    columns = [split.classes[c] for c in CLASS_OF_COLUMN[order]] + ["unknown", "not a face"]
    table = [shares[split.labels == label][:, list(order) + [8, 9]].mean(axis=0) if np.any(split.labels == label)
             else np.full(len(VOTE_COLUMNS), np.nan) for label in range(len(split.classes))]
    return pd.DataFrame(table, index=list(split.classes), columns=columns)


def top_vote_shares(split: Split) -> np.ndarray:
    """FER+: the share of the ten annotators behind each face's top emotion."""
    from fer_lib.data.votes import emotion_votes

    votes = np.asarray(split.votes, np.float64)
    return emotion_votes(votes).max(axis=1) / np.maximum(votes.sum(axis=1), 1)


def fer2013_agreement(ferplus_split: Split, fer2013_split: Split):
    """How often FER2013's own label is FER+'s majority, under each rule, on the faces both hold
    (matched by pixels, `fer_lib.data.matching`); contempt, which FER2013 lacks, left out. A DataFrame."""
    import pandas as pd

    from fer_lib.data.matching import match_faces
    from fer_lib.data.votes import MAJORITY_RULES, majority_labels

    matched = match_faces(ferplus_split.images, fer2013_split.images)
    rows = []
    for rule in MAJORITY_RULES:
        labels = majority_labels(ferplus_split.votes, rule)
        shared = (matched >= 0) & (labels >= 0) & (labels < len(EMOTIONS))
        same = fer2013_split.labels[matched[shared]] == labels[shared]
        rows.append({"rule": rule, "faces": int(shared.sum()),
                     "FER2013 label is the FER+ majority": float(same.mean()) if same.size else None})
    return pd.DataFrame(rows).set_index("rule")
