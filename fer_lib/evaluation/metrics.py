"""Evaluating a model on a split: metrics from scikit-learn and Keras, written as metrics.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from fer_lib.artifacts import write_json_atomic
from fer_lib.backend import keras
from fer_lib.errors import FerError
from fer_lib.labels import EMOTIONS
from fer_lib.model_stats import leaf_layers

# The original project's README figures, for comparison rows in reports.
ORIGINAL_README = {
    "top1_accuracy": 0.5413,
    "top2_accuracy": 0.7623,
    "precision_macro": 0.5434,
    "recall_macro": 0.5445,
    "f1_macro": 0.530,
}


TTA_MODES = ("none", "flip", "tencrop")
TENCROP_SIZE = 42  # crops of 42 of the 48 pixels: the shifts training augmentation covers


def tta_views(images: np.ndarray, mode: str = "none", model_crop: int | None = None) -> list[np.ndarray]:
    """The views of (N, 48, 48) uint8 faces averaged by test-time augmentation.

    flip: the face and its mirror image. tencrop: four corner crops and the centre crop,
    each resized back to 48x48, and their mirror images. For a model that classifies the
    central `model_crop` pixels (a TrainingCrop layer), tencrop instead moves each face so
    that this central crop is one of the five `model_crop`-pixel crops, unresized: the
    crops it was trained on, at their scale.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images[:, :, ::-1]]
    if model_crop:
        return _shifted_crop_views(images, model_crop)
    size, crop = images.shape[1], TENCROP_SIZE
    offsets = [(0, 0), (0, size - crop), (size - crop, 0), (size - crop, size - crop), ((size - crop) // 2, (size - crop) // 2)]
    views = []
    for top, left in offsets:
        # One batched resize per crop position, not a Python loop over faces.
        cropped = images[:, top:top + crop, left:left + crop, None].astype(np.float32)
        resized = keras.ops.convert_to_numpy(keras.ops.image.resize(cropped, (size, size), interpolation="bilinear"))
        resized = np.clip(np.rint(resized[..., 0]), 0, 255).astype(np.uint8)
        views += [resized, resized[:, :, ::-1]]
    return views


def _shifted_crop_views(images: np.ndarray, crop: int) -> list[np.ndarray]:
    """Ten views whose central `crop` pixels (as TrainingCrop takes them) are the corner and centre crops, and of the mirrors."""
    size = images.shape[1]
    low = (size - crop) // 2  # where TrainingCrop's central crop starts
    # Edge-padded, so a model without the crop layer (in a rebalanced ensemble) sees shifted faces, not wrapped ones.
    pad = ((0, 0), (low, size - crop - low), (low, size - crop - low))
    # A view cut at (top, left) of the padded face has the face's crop at (top, left) in its centre.
    offsets = [(0, 0), (0, size - crop), (size - crop, 0), (size - crop, size - crop), (low, low)]
    padded, mirrored = np.pad(images, pad, mode="edge"), np.pad(images[:, :, ::-1], pad, mode="edge")
    return [p[:, top:top + size, left:left + size] for top, left in offsets for p in (padded, mirrored)]


def _crop_sizes(model: keras.Model) -> set[int]:
    """The sizes of the TrainingCrop layers in `model` and everything nested in it."""
    from fer_lib.layers import TrainingCrop

    return {layer.size for layer in leaf_layers(model) if isinstance(layer, TrainingCrop)}


def model_crop_size(model: keras.Model) -> int | None:
    """The central crop a model classifies (its TrainingCrop layer, in any member), or None."""
    found = _crop_sizes(model)
    if len(found) > 1:
        raise FerError(f"{model.name}: it joins models that classify central crops of different sizes "
                       f"({', '.join(map(str, sorted(found)))} pixels) behind one output, so no ten crops suit them all; "
                       "use --tta flip or none")
    return found.pop() if found else None


def predict_views(model: keras.Model, images: np.ndarray, batch_size: int = 256, tta: str = "none") -> list[np.ndarray]:
    """The model's probabilities (N, 7) for each TTA view of (N, 48, 48) uint8 images, not yet averaged."""
    from fer_lib.ensemble import ensemble_members
    from fer_lib.training import as_model_input

    members = ensemble_members(model) if tta == "tencrop" else None
    if members and _crop_sizes(model):
        # Each member gets its own ten crops (a crop model its unresized crops, the others resized ones),
        # averaged view by view: the ensemble's mean, without giving whole-face members shifted faces.
        per_member = [predict_views(member, images, batch_size, tta) for member in members]
        return [sum(views) / len(members) for views in zip(*per_member)]
    crop = model_crop_size(model) if tta == "tencrop" else None
    return [np.asarray(model.predict(as_model_input(view), batch_size=batch_size, verbose=0), np.float64)
            for view in tta_views(images, tta, model_crop=crop)]


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 256, tta: str = "none") -> np.ndarray:
    """Softmax probabilities (N, 7) for (N, 48, 48) uint8 images, averaged over the TTA views."""
    if len(images) == 0:
        return np.zeros((0, len(EMOTIONS)), np.float32)
    views = predict_views(model, images, batch_size, tta)
    return (sum(views) / len(views)).astype(np.float32)


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
    """Metrics of `model` on images (N, 48, 48) uint8 and their labels, with optional TTA."""
    metrics = compute_metrics(labels, predict_probabilities(model, images, batch_size, tta))
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
    return not synthetic and len(metrics.get("macro_classes", EMOTIONS)) == len(EMOTIONS)


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
    if len(metrics.get("macro_classes", EMOTIONS)) < len(EMOTIONS):
        lines.append(f"Macro averages over the classes present: {', '.join(metrics['macro_classes'])}")
    return "\n".join(lines)
