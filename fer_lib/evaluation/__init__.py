"""Stage 4, evaluation: how good a trained model is, and post-hoc corrections chosen on validation.

- `prediction`: probabilities for a batch of faces, with test-time augmentation
- `metrics`: accuracy, macro scores, calibration error, confusion matrix; metrics.json
- `rebalance`: the prior correction for rare classes (`fer rebalance`)
- `calibration`: temperature scaling (`fer calibrate`)
"""

from fer_lib.lazy import package_attributes

EXPORTS = {
    "TTA_MODES": "fer_lib.evaluation.prediction",
    "TENCROP_SIZE": "fer_lib.evaluation.prediction",
    "tta_views": "fer_lib.evaluation.prediction",
    "model_crop_size": "fer_lib.evaluation.prediction",
    "predict_views": "fer_lib.evaluation.prediction",
    "predict_probabilities": "fer_lib.evaluation.prediction",
    "ORIGINAL_README": "fer_lib.evaluation.metrics",
    "confidence_bins": "fer_lib.evaluation.metrics",
    "expected_calibration_error": "fer_lib.evaluation.metrics",
    "compute_metrics": "fer_lib.evaluation.metrics",
    "evaluate_model": "fer_lib.evaluation.metrics",
    "write_metrics": "fer_lib.evaluation.metrics",
    "compares_with_original": "fer_lib.evaluation.metrics",
    "format_metrics": "fer_lib.evaluation.metrics",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = package_attributes(__name__, EXPORTS)
