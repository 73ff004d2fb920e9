"""Stage 1, the data: FER datasets read into 48x48 grayscale arrays.

- `dataset`: the three formats (Kaggle folders, one folder of class folders, fer2013.csv),
  FER2013's split protocol and the decoded-array cache; `load_dataset` is the entry point
- `preprocessing`: any image to a 48x48 grayscale face, shared by training and inference
- `synthetic`: the generated demo faces that the smoke pipeline and the tests use
- `exploration`: data-quality checks and class balance, for notebook 01
"""

from fer_lib.lazy import package_attributes

EXPORTS = {
    "CACHE_VERSION": "fer_lib.data.dataset",
    "SPLIT_NAMES": "fer_lib.data.dataset",
    "DEFAULT_VAL_FRACTION": "fer_lib.data.dataset",
    "USAGE_CODES": "fer_lib.data.dataset",
    "USAGE_UNKNOWN": "fer_lib.data.dataset",
    "Skipped": "fer_lib.data.dataset",
    "Split": "fer_lib.data.dataset",
    "FerDataset": "fer_lib.data.dataset",
    "EvalData": "fer_lib.data.dataset",
    "skip_reasons": "fer_lib.data.dataset",
    "detect_format": "fer_lib.data.dataset",
    "stratified_holdout": "fer_lib.data.dataset",
    "subset": "fer_lib.data.dataset",
    "load_dataset": "fer_lib.data.dataset",
    "load_eval_split": "fer_lib.data.dataset",
    "resolve_data_or_demo": "fer_lib.data.dataset",
    "demo_dataset": "fer_lib.data.dataset",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = package_attributes(__name__, EXPORTS)
