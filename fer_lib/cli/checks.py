"""What `fer` checks before it imports Keras: every input and output path a command is given.

A missing photo, dataset or model, an empty folder, or an output that is a folder, sits in
a missing folder under a file, or cannot be written, is said in one line in well under a
second instead of after TensorFlow's start (seconds) and the work. Nothing here imports
TensorFlow or Keras, and nothing is created: missing output folders are created when the
output is written (the rule for every output of every command, docs/hardening.md).
"""

from __future__ import annotations

from pathlib import Path

from fer_lib import paths
from fer_lib.artifacts import check_derived_model_path, check_output_file, check_output_folder
from fer_lib.errors import DataError

NO_DATASET = "no dataset: pass --data, set FER_DATA, or put FER2013 in {}"


def check_dataset(data: str | None, no_dataset: str = NO_DATASET) -> Path:
    """The dataset `data` (--data) resolves to, checked to be one by its layout (nothing is decoded)."""
    from fer_lib.data.dataset import dataset_classes

    path = paths.resolve_data_dir(data)
    if path is None:
        raise DataError(no_dataset.format(paths.DEFAULT_DATA_DIR))
    dataset_classes(path)  # missing, empty, or no dataset layout: one line naming it
    return path


def _evaluate(args) -> None:
    check_dataset(args.data)
    if args.model:
        paths.check_model_file(args.model)
    if args.json_out:
        check_output_file(args.json_out, "--json")


def _train(args) -> None:
    if args.data or not (args.resume or args.demo):
        check_dataset(args.data, NO_DATASET + ", or use --demo")
    check_output_folder(args.out or Path("runs") / (args.model or args.preset or "seed_cnn"), "--out")


def _ensemble(args) -> None:
    for model in args.models:
        paths.check_model_file(model)
    check_output_file(args.out, "--out", args.overwrite)


def _derived_model(made: str, packaged_names: bool):
    def check(args) -> None:  # rebalance and calibrate: what their shared code checks
        # As the command reads --model: calibrate takes a packaged model's name too, rebalance only a path.
        model = paths.check_model_file(args.model if packaged_names else Path(args.model))
        if args.data:
            check_dataset(args.data)
        out = Path(args.out) if args.out else paths.derived_model_path(model, made)
        check_derived_model_path(model, out, args.overwrite, made)
    return check


def _export(args) -> None:
    from fer_lib.inference.conversion import check_request

    check_request(args.export_format, args.out, args.quantize, args.overwrite, extras=False)
    paths.check_model_file(args.model)
    if args.data:
        check_dataset(args.data)


def _predict(args) -> None:
    from fer_lib.cli.predict import check_predict_request

    check_predict_request(args)


CHECKS = {"evaluate": _evaluate, "train": _train, "ensemble": _ensemble, "rebalance": _derived_model("rebalanced", packaged_names=False),
          "calibrate": _derived_model("calibrated", packaged_names=True), "export": _export, "predict": _predict}


def check_before_backend(args) -> None:
    """Run the checks of `args.command` (FerError in one line); commands without file arguments have none."""
    check = CHECKS.get(args.command)
    if check is not None:
        check(args)
