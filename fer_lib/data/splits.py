"""What a loaded dataset holds: splits of faces and labels, their origin and skips, and the split helpers.

`Split` is one split's images and labels (with FER+'s votes where there are any), `FerDataset`
the three splits of a dataset and `EvalData` one split to evaluate; `stratified_holdout` and
`subset` take seeded, stratified shares of a split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_lib.errors import DataError
from fer_lib.labels import EMOTIONS

SPLIT_NAMES = ("train", "val", "test")


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

