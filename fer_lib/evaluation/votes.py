"""Scoring against FER+'s annotators: top-1 under both majority rules, agreement with the votes, and
the class checks that keep a model from being scored on data with other classes."""

from __future__ import annotations

import numpy as np

from fer_lib.data.dataset import Split
from fer_lib.data.votes import emotion_votes, majority_labels, vote_distribution
from fer_lib.errors import FerError

VOTE_SUMMARY_KEYS = ("n_images", "top1_accuracy", "top2_accuracy", "f1_macro", "expected_calibration_error")


def check_classes(model_classes, data_classes, model_name: str, data_name: str) -> None:
    """FerError in one line unless the model predicts the data's classes in the data's order."""
    if tuple(model_classes) == tuple(data_classes):
        return
    raise FerError(
        f"{model_name} predicts {len(model_classes)} classes ({', '.join(model_classes)}) but {data_name} has "
        f"{len(data_classes)} ({', '.join(data_classes)}); score a {len(data_classes)}-class model on it "
        f"(fer evaluate --model {'ferplus' if len(data_classes) == 8 else 'fer2013'}), or see docs/results for "
        "the cross-label table"
    )


def vote_agreement(votes: np.ndarray, probabilities: np.ndarray) -> dict:
    """How the model's outputs sit with the ten annotators, over every face with emotion votes.

    annotator_share: the mean share of annotators (of all ten, unknown and not-a-face included) who
    chose the model's top emotion. vote_crossentropy: the mean cross-entropy from the distribution of
    the emotion votes to the model's probabilities (nats; 0 only for a model that matches the votes).
    """
    emotions = emotion_votes(votes).astype(np.float64)
    with_votes = emotions.sum(axis=1) > 0
    emotions, probabilities, votes = emotions[with_votes], np.asarray(probabilities, np.float64)[with_votes], votes[with_votes]
    predicted = probabilities.argmax(axis=1)
    share = emotions[np.arange(len(predicted)), predicted] / np.asarray(votes, np.float64).sum(axis=1)
    distribution = vote_distribution(votes).astype(np.float64)
    crossentropy = -(distribution * np.log(np.clip(probabilities, 1e-7, 1.0))).sum(axis=1)
    return {"n_images": int(len(predicted)), "annotator_share": float(share.mean()) if len(share) else 0.0,
            "vote_crossentropy": float(crossentropy.mean()) if len(share) else 0.0}


def ferplus_metrics(votes: np.ndarray, probabilities: np.ndarray, classes) -> dict:
    """compute_metrics under the official majority rule, with the top-vote rule's summary and the vote agreement."""
    from fer_lib.evaluation.metrics import compute_metrics

    official = majority_labels(votes, "official")
    kept = official >= 0
    metrics = compute_metrics(official[kept], probabilities[kept], classes)
    metrics["majority_rule"] = "official"
    top_vote = majority_labels(votes, "top_vote")
    kept = top_vote >= 0
    summary = compute_metrics(top_vote[kept], probabilities[kept], classes)
    metrics["top_vote"] = {key: summary[key] for key in VOTE_SUMMARY_KEYS}
    metrics["votes"] = vote_agreement(votes, probabilities)
    return metrics


def split_metrics(model, split: Split, batch_size: int = 256, tta: str = "none", model_name: str = "the model",
                  data_name: str = "the data") -> dict:
    """All metrics of `model` on `split`: FER+'s vote metrics when the split has votes."""
    from fer_lib.evaluation.prediction import predict_probabilities
    from fer_lib.models.saving import model_classes

    classes = model_classes(model)
    check_classes(classes, split.classes, model_name, data_name)
    metrics = metrics_of(split, predict_probabilities(model, split.images, batch_size, tta))
    metrics["tta"] = tta
    return metrics


def metrics_of(split: Split, probabilities: np.ndarray) -> dict:
    """compute_metrics of `probabilities` on `split`, or on FER+ `ferplus_metrics` (the official rule's, and the rest)."""
    from fer_lib.evaluation.metrics import compute_metrics

    if split.votes is None:
        return compute_metrics(split.labels, probabilities, split.classes)
    return ferplus_metrics(split.votes, probabilities, split.classes)


def scored_faces(split: Split, rule: str = "official") -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels) that a split is scored on: every face with its label, or on FER+ the faces `rule` keeps
    with its majority label."""
    if split.votes is None:
        return np.arange(len(split)), split.labels
    labels = majority_labels(split.votes, rule)
    rows = np.flatnonzero(labels >= 0)
    return rows, labels[rows]
