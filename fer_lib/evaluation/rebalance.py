"""Post-hoc prior correction: trade a little accuracy on frequent classes for recall of rare ones.

A model trained on FER2013 learns its class frequencies (happy 25%, disgust 1.5%) and so
under-predicts rare classes. Dividing its probabilities by prior**strength counters that
without retraining; the strength is chosen on the validation split the model was not
trained on, by macro-F1. The result is a new .keras file: the model plus a PriorCorrection
layer, which `fer evaluate`, `predict_expression`, TTA and ensembles treat like any model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from fer_lib import paths
from fer_lib.backend import keras
from fer_lib.errors import FerError
from fer_lib.labels import EMOTIONS, INPUT_SHAPE
from fer_lib.models.layers import EPSILON, PriorCorrection
from fer_lib.models.saving import load_model, save_model

STRENGTHS = tuple(np.round(np.arange(0.0, 1.0001, 0.05), 2).tolist())  # the grid searched on validation


@dataclass
class Rebalancing:
    """The chosen strength and what it did on the validation split."""

    strength: float
    priors: list[float]
    val_images: int
    tta: str
    # strength -> (top-1, macro-F1) on the validation split
    scores: dict[float, tuple[float, float]] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.scores:
            return f"strength {self.strength:g} (given, not fitted)"
        (top1_before, f1_before), (top1_after, f1_after) = self.scores[0.0], self.scores[self.strength]
        return (f"strength {self.strength:g}, chosen on {self.val_images} validation faces (TTA {self.tta}): "
                f"macro-F1 {f1_before:.3f} -> {f1_after:.3f}, top-1 {top1_before:.2%} -> {top1_after:.2%}")


def corrected(probabilities: np.ndarray, priors: np.ndarray, strength: float, temperature: float = 1.0) -> np.ndarray:
    """What PriorCorrection computes, in NumPy: (probabilities / priors**strength) ** (1 / temperature), renormalised."""
    logits = (np.log(np.maximum(probabilities, EPSILON)) - strength * np.log(np.asarray(priors))) / temperature
    scaled = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return scaled / scaled.sum(axis=-1, keepdims=True)


def training_priors(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of the training labels; every class needs at least one face."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if np.any(counts == 0):
        missing = [EMOTIONS[i] if n_classes == len(EMOTIONS) else str(i) for i in np.flatnonzero(counts == 0)]
        raise FerError(f"the training split has no faces of class(es) {', '.join(missing)}, so their prior is unknown; "
                       "rebalance with data that has every class")
    return counts / counts.sum()


def choose_strength(view_probabilities: list[np.ndarray], labels: np.ndarray, priors: np.ndarray,
                    strengths=STRENGTHS) -> tuple[float, dict[float, tuple[float, float]]]:
    """The strength with the best macro-F1 on these labels (ties: the smaller one), and every strength's scores.

    `view_probabilities` are the model's outputs for each TTA view; each is corrected before averaging,
    as the saved model with its PriorCorrection layer will do.
    """
    class_ids = list(range(len(priors)))
    scores = {}
    for strength in strengths:
        averaged = np.mean([corrected(p, priors, strength) for p in view_probabilities], axis=0)
        predicted = averaged.argmax(axis=1)
        scores[strength] = (float(accuracy_score(labels, predicted)),
                            float(f1_score(labels, predicted, labels=class_ids, average="macro", zero_division=0)))
    best = max(strengths, key=lambda s: (round(scores[s][1], 6), -s))
    return best, scores


def with_prior_correction(model: keras.Model, priors, strength: float, temperature: float = 1.0,
                          suffix: str = "rebalanced") -> keras.Model:
    """`model` followed by a PriorCorrection layer (the model's layers are shared, not copied)."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    base = keras.Model(model.input, model.output, name=f"uncorrected_{model.name}")
    outputs = PriorCorrection(priors, strength, temperature, name="emotion")(base(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_{suffix}")


def uncorrected_model(model: keras.Model) -> keras.Model:
    """The model before its PriorCorrection layer (the model itself when it has none)."""
    if prior_correction_of(model) is None:
        return model
    return keras.Model(model.input, model.layers[-1].input, name=model.layers[-2].name)


def prior_correction_of(model: keras.Model) -> PriorCorrection | None:
    """The model's PriorCorrection layer, if it ends with one."""
    last = model.layers[-1]
    return last if isinstance(last, PriorCorrection) else None


def check_derived_model_path(model_path: Path, out: Path, overwrite: bool, made: str) -> None:
    """Refuse, in one line, an `out` for a model `made` from `model_path` that is no .keras file, is the original,
    lies among the packaged models, or exists."""
    if out.suffix != ".keras":
        raise FerError(f"{out}: the {made} model is saved as a .keras file; give a name ending in .keras")
    if out.resolve() == model_path.resolve():
        raise FerError(f"{out} is the model being {made}; save the result under another name so the original is kept")
    if out.resolve().parent == paths.ASSETS_DIR.resolve():  # even with --overwrite: an update would undo it
        raise FerError(f"{out}: {out.resolve().parent} holds fer_lib's packaged models; save the {made} model "
                       "elsewhere (--out)")
    if out.exists() and not overwrite:
        raise FerError(f"{out} already exists; pass --overwrite to replace it or choose another name")


def rebalance_file(model_path: str | Path, dataset, out: str | Path, *, strength: float | None = None,
                   tta: str = "none", batch_size: int = 256, overwrite: bool = False) -> tuple[Path | None, Rebalancing]:
    """Fit (or take) the strength on `dataset`'s validation split and save the corrected model to `out`.

    Returns (None, result) without writing anything when no strength above 0 improves validation macro-F1.
    """
    from fer_lib.evaluation.prediction import predict_views

    model_path, out = Path(model_path), Path(out)
    check_derived_model_path(model_path, out, overwrite, "rebalanced")
    if strength is not None and not 0 < strength <= 1:
        raise FerError(f"--strength {strength:g} is out of range; give a value in (0, 1], e.g. 0.4")
    model = load_model(model_path)
    existing = prior_correction_of(model)
    if existing is not None:
        raise FerError(f"{model_path} is already rebalanced or calibrated (strength {existing.strength:g}, temperature "
                       f"{existing.temperature:g}); rebalance the original model, then calibrate")
    priors = training_priors(dataset.train.labels, model.output_shape[-1])
    if strength is not None:
        result = Rebalancing(strength, priors.tolist(), 0, tta)
    elif len(dataset.val.labels) == 0:
        raise FerError(f"{model_path}: no validation split to choose a strength on (its run held none out, val_fraction 0); "
                       "pass --strength S, e.g. the one chosen for the same recipe trained with validation")
    else:
        views = predict_views(model, dataset.val.images, batch_size, tta)
        best, scores = choose_strength(views, dataset.val.labels, priors)
        result = Rebalancing(best, priors.tolist(), len(dataset.val.labels), tta, scores)
        if best == 0.0:
            return None, result
    return save_model(with_prior_correction(model, priors, result.strength), out), result
