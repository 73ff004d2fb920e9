"""Stage 1, the data: FER datasets read into 48x48 grayscale arrays.

- `dataset`: `load_dataset`, the entry point: tells the formats apart, applies FER2013's split
  protocol; `load_eval_split` and the demo data
- `splits`: what a loaded dataset holds (`Split`, `FerDataset`, `EvalData`) and the seeded
  stratified split helpers
- `image_folders`: Kaggle's train/ and test/ folders, or one folder of <emotion>/ folders
- `fer2013_csv`: fer2013.csv
- `ferplus`: FER+ (the FERPlus PNG folders, or fer2013new.csv beside fer2013.csv) with its votes
- `records`: decoded images before the split protocol, and their cache
- `votes`: FER+'s annotator votes and the labels made from them
- `preprocessing`: any image to a 48x48 grayscale face, shared by training and inference
- `synthetic`: the generated demo faces that the smoke pipeline and the tests use
- `exploration`: data-quality checks and class balance, for notebook 01
- `matching`: the same faces found in two copies of FER2013 (Kaggle JPEGs, FER+ PNGs)
"""

from fer_lib.lazy import package_attributes

EXPORTS = {
    "CACHE_VERSION": "fer_lib.data.records",
    "SPLIT_NAMES": "fer_lib.data.splits",
    "DEFAULT_VAL_FRACTION": "fer_lib.data.dataset",
    "USAGE_CODES": "fer_lib.data.records",
    "USAGE_UNKNOWN": "fer_lib.data.records",
    "Skipped": "fer_lib.data.splits",
    "Split": "fer_lib.data.splits",
    "FerDataset": "fer_lib.data.splits",
    "EvalData": "fer_lib.data.splits",
    "skip_reasons": "fer_lib.data.splits",
    "detect_format": "fer_lib.data.dataset",
    "stratified_holdout": "fer_lib.data.splits",
    "subset": "fer_lib.data.splits",
    "load_dataset": "fer_lib.data.dataset",
    "load_eval_split": "fer_lib.data.dataset",
    "resolve_data_or_demo": "fer_lib.data.dataset",
    "demo_dataset": "fer_lib.data.dataset",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = package_attributes(__name__, EXPORTS)
