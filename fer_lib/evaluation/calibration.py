"""Temperature scaling: scores that mean what they say, without changing a single prediction.

Label smoothing, distillation, test-time augmentation and the prior correction each flatten a
model's probabilities, so a top score of 0.4 can be right two times in three. One temperature,
fitted on the validation split by log loss (Guo et al., 2017), rescales every face's logits;
the ranking of the classes, and so every metric but the calibration, stays as it was. It is
kept inside the saved model, in the PriorCorrection layer that a rebalanced model ends with
(strength 0 for a model that was not rebalanced), so `fer evaluate`, `predict_expression`,
TTA and ensembles apply it like any model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from fer_lib.errors import FerError
from fer_lib.evaluation.rebalance import check_derived_model_path, corrected, prior_correction_of, uncorrected_model, with_prior_correction
from fer_lib.models.layers import EPSILON
from fer_lib.models.saving import load_model, save_model

TEMPERATURE_RANGE = (0.05, 20.0)


@dataclass
class Calibration:
    """The fitted temperature, the faces it was fitted on, and the log loss (NLL) and calibration error (ECE)
    before and after it on held-out faces, which the fit did not see."""

    temperature: float
    fit_faces: int  # validation faces the temperature was fitted on
    tta: str
    held_out: str  # which faces the before/after are measured on
    held_out_faces: int
    log_loss: tuple[float, float]
    calibration_error: tuple[float, float]

    def describe(self) -> str:
        return (f"temperature {self.temperature:.3f}, fitted on {self.fit_faces} validation faces (TTA {self.tta}); "
                f"on {self.held_out_faces} held-out faces ({self.held_out}): "
                f"NLL {self.log_loss[0]:.4f} -> {self.log_loss[1]:.4f}, "
                f"ECE {self.calibration_error[0]:.4f} -> {self.calibration_error[1]:.4f}")


def _averaged(view_probabilities: list[np.ndarray], priors, strength: float, temperature: float) -> np.ndarray:
    # Each view goes through the correction, then the views are averaged: what the saved model does under TTA.
    return np.mean([corrected(p, priors, strength, temperature) for p in view_probabilities], axis=0)


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(probabilities[np.arange(len(labels)), labels], EPSILON))))


def fit_temperature(view_probabilities: list[np.ndarray], labels: np.ndarray, priors, strength: float = 0.0) -> float:
    """The temperature that minimises the log loss of the corrected, view-averaged probabilities on `labels`."""
    def loss(log_temperature: float) -> float:
        return _log_loss(_averaged(view_probabilities, priors, strength, float(np.exp(log_temperature))), labels)

    low, high = np.log(TEMPERATURE_RANGE)
    return float(np.exp(minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-4}).x))


def calibrate_file(model_path: str | Path, dataset, out: str | Path, *, tta: str = "none", batch_size: int = 256,
                   overwrite: bool = False, seed: int = 1234) -> tuple[Path, Calibration]:
    """Fit a temperature on `dataset`'s validation split and save the model with it to `out`.

    The before and after are measured on faces the fit did not see: the test split, or, for data
    without one, a stratified half of the validation split (seeded by `seed`) that the fit then leaves out.
    """
    from fer_lib.data.splits import stratified_holdout
    from fer_lib.evaluation.metrics import expected_calibration_error
    from fer_lib.evaluation.prediction import predict_views

    model_path, out = Path(model_path), Path(out)
    check_derived_model_path(model_path, out, overwrite, "calibrated")
    if len(dataset.val.labels) == 0:
        raise FerError(f"{model_path}: no validation split to fit a temperature on (val_fraction 0); "
                       "calibrate on data with a validation split, e.g. the run's own dataset")
    if len(dataset.test.labels):
        fit, held, held_out = dataset.val, dataset.test, "the test split"
    else:
        half = stratified_holdout(dataset.val.labels, 0.5, seed)
        if half.all() or not half.any():
            raise FerError(f"{dataset.source}: no test split, and its validation split ({len(dataset.val)} faces) is "
                           "too small to hold out faces for checking the fit; calibrate on data with a test split")
        fit, held = dataset.val.take(~half), dataset.val.take(half)
        held_out = "half of the validation split, left out of the fit: the data has no test split"
    model = load_model(model_path)
    existing = prior_correction_of(model)
    n_classes = model.output_shape[-1]
    priors = existing.priors if existing is not None else [1.0 / n_classes] * n_classes
    strength = existing.strength if existing is not None else 0.0
    base = uncorrected_model(model)
    temperature = fit_temperature(predict_views(base, fit.images, batch_size, tta), fit.labels, priors, strength)
    views, labels = predict_views(base, held.images, batch_size, tta), held.labels
    before = _averaged(views, priors, strength, existing.temperature if existing is not None else 1.0)
    after = _averaged(views, priors, strength, temperature)
    result = Calibration(temperature, len(fit.labels), tta, held_out, len(labels),
                         (_log_loss(before, labels), _log_loss(after, labels)),
                         (expected_calibration_error(labels, before), expected_calibration_error(labels, after)))
    calibrated = with_prior_correction(base, priors, strength, temperature, suffix="calibrated")
    return save_model(calibrated, out), result
