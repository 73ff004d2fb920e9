"""Evaluating a model on a split: metrics from scikit-learn and Keras, written as metrics.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from fer_lib.artifacts import write_json_atomic
from fer_lib.backend import keras
from fer_lib.data.votes import MAJORITY_RULE_TEXT
from fer_lib.evaluation.prediction import predict_probabilities
from fer_lib.labels import EMOTIONS

# The original project's README figures, for comparison rows in reports.
ORIGINAL_README = {
    "top1_accuracy": 0.5413,
    "top2_accuracy": 0.7623,
    "precision_macro": 0.5434,
    "recall_macro": 0.5445,
    "f1_macro": 0.530,
}


def confidence_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10):
    """Faces grouped by their top probability into `bins` equal-width bins: each bin's count,
    accuracy and mean top probability (NaN for an empty bin)."""
    confidence = np.asarray(probabilities).max(axis=1)
    correct = np.asarray(probabilities).argmax(axis=1) == np.asarray(labels)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    accuracy = np.array([correct[which == b].mean() if counts[b] else np.nan for b in range(bins)])
    mean_confidence = np.array([confidence[which == b].mean() if counts[b] else np.nan for b in range(bins)])
    return counts, accuracy, mean_confidence


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """How far the top probability is from the accuracy, averaged over `bins` equal-width confidence bins
    weighted by their faces (ECE, Guo et al. 2017): 0 when a 0.7 means right 70% of the time."""
    counts, accuracy, mean_confidence = confidence_bins(labels, probabilities, bins)
    filled = counts > 0
    return float(np.sum(np.abs(accuracy - mean_confidence)[filled] * counts[filled]) / max(counts.sum(), 1))


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray, classes=EMOTIONS) -> dict:
    """All reported metrics for true `labels` and predicted `probabilities` (N, len(classes))."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, np.float64)
    class_ids = list(range(len(classes)))
    predicted = probabilities.argmax(axis=1)
    loss = keras.losses.SparseCategoricalCrossentropy()(labels, np.clip(probabilities, 1e-7, 1.0))
    per_class = skm.precision_recall_fscore_support(labels, predicted, labels=class_ids, zero_division=0)
    # Over the classes the data has: a class with no faces has no recall, and counting it as 0 said nothing.
    present = [c for c in class_ids if np.any(labels == c)] or class_ids
    macro = skm.precision_recall_fscore_support(labels, predicted, labels=present, average="macro", zero_division=0)
    weighted = skm.precision_recall_fscore_support(labels, predicted, labels=class_ids, average="weighted", zero_division=0)
    return {
        "n_images": int(labels.size),
        "top1_accuracy": float(skm.accuracy_score(labels, predicted)),
        "top2_accuracy": float(skm.top_k_accuracy_score(labels, probabilities, k=2, labels=class_ids)),
        "loss": float(keras.ops.convert_to_numpy(loss)),
        "expected_calibration_error": expected_calibration_error(labels, probabilities) if labels.size else 0.0,
        "precision_macro": float(macro[0]),
        "recall_macro": float(macro[1]),
        "f1_macro": float(macro[2]),
        "macro_classes": [classes[c] for c in present],
        "precision_weighted": float(weighted[0]),
        "recall_weighted": float(weighted[1]),
        "f1_weighted": float(weighted[2]),
        "per_class": {
            name: {
                "precision": float(per_class[0][i]),
                "recall": float(per_class[1][i]),
                "f1": float(per_class[2][i]),
                "support": int(per_class[3][i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=class_ids).tolist(),
        "classes": list(classes),
    }


def evaluate_model(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = 256, tta: str = "none") -> dict:
    """Metrics of `model` on images (N, 48, 48) uint8 and their labels, with optional TTA
    (`fer_lib.evaluation.votes.split_metrics` scores a FER+ split against its votes)."""
    from fer_lib.models.saving import model_classes

    metrics = compute_metrics(labels, predict_probabilities(model, images, batch_size, tta), model_classes(model))
    metrics["tta"] = tta
    return metrics


def write_metrics(metrics: dict, path: str | Path, **context) -> dict:
    """Write `metrics` plus context (model, data, split...) to a JSON file, atomically."""
    document = {**context, **metrics}
    write_json_atomic(path, document)
    return document


def compares_with_original(metrics: dict, synthetic: bool = False) -> bool:
    """Whether the original README's FER2013 figures belong beside `metrics`: real faces of all seven
    classes (as FER2013's test split has), not generated ones."""
    return (not synthetic and list(metrics.get("classes", EMOTIONS)) == list(EMOTIONS)
            and len(metrics.get("macro_classes", EMOTIONS)) == len(EMOTIONS))


def format_metrics(metrics: dict, model_name: str = "this model", reference: bool | None = None) -> str:
    """A short human-readable summary under `model_name`; the original README's FER2013 figures beside it
    when `reference` (by default: `compares_with_original`, the data counted as real)."""
    if reference is None:
        reference = compares_with_original(metrics)
    rows = [
        ("Top-1 accuracy", "top1_accuracy"),
        ("Top-2 accuracy", "top2_accuracy"),
        ("Precision (macro)", "precision_macro"),
        ("Recall (macro)", "recall_macro"),
        ("F1 (macro)", "f1_macro"),
    ]
    width = max(12, len(model_name) + 2)
    lines = [f"{'':20s}{model_name:>{width}s}" + (f"{'original':>10s}" if reference else "")]
    for title, key in rows:
        lines.append(f"{title:20s}{metrics[key]:>{width}.2%}" + (f"{ORIGINAL_README[key]:>10.2%}" if reference else ""))
    lines.append(f"{'Loss':20s}{metrics['loss']:>{width}.4f}")
    if "expected_calibration_error" in metrics:
        lines.append(f"{'Calibration error':20s}{metrics['expected_calibration_error']:>{width}.4f}")
    lines.append(f"{'Images':20s}{metrics['n_images']:>{width}d}")
    if len(metrics.get("macro_classes", EMOTIONS)) < len(metrics.get("classes", EMOTIONS)):
        lines.append(f"Macro averages over the classes present: {', '.join(metrics['macro_classes'])}")
    if "votes" in metrics:
        lines.append(format_vote_metrics(metrics))
    return "\n".join(lines)


def format_vote_metrics(metrics: dict) -> str:
    """The lines `format_metrics` adds for a FER+ evaluation: which rule its figures use, and the votes."""
    top_vote, votes = metrics["top_vote"], metrics["votes"]
    return "\n".join([
        f"Figures above: FER+ majority label, {MAJORITY_RULE_TEXT['official']}, {metrics['n_images']} faces",
        f"{'Top-1, top-vote rule':20s}{top_vote['top1_accuracy']:>12.2%}  ({top_vote['n_images']} faces, "
        f"F1 macro {top_vote['f1_macro']:.2%}, ECE {top_vote['expected_calibration_error']:.4f})",
        f"{'Annotator share':20s}{votes['annotator_share']:>12.2%}  (mean share of the ten annotators who chose "
        "the model's top emotion)",
        f"{'Vote cross-entropy':20s}{votes['vote_crossentropy']:>12.4f}  (from the emotion votes' distribution to the "
        "model's probabilities)",
    ])
