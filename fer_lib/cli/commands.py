"""The `fer` command line: presets, tune, train, evaluate, ensemble, rebalance, calibrate, pipeline, predict, export
and records.

User mistakes end in one line on stderr and exit status 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from fer_lib.cli.arguments import positive_float, positive_int
from fer_lib.cli.predict import add_predict_parser, run_predict
from fer_lib.records.commands import add_records_parser, run_records

DEMO_BANNER = "*** No dataset found: using GENERATED DEMO DATA (synthetic faces). Metrics say nothing about real faces. ***"
# fer_lib.training.tuning.SEARCH_SPACES, without importing Keras to build the parser (tests/training/test_tuning.py checks they agree).
SEARCH_SPACES = ("strong", "strong_gpu", "cnn", "presets")


def build_parser() -> argparse.ArgumentParser:
    from fer_lib.data.votes import LABEL_MODES, MAJORITY_RULES
    from fer_lib.models.augmentation import MIXINGS
    from fer_lib.training.config import LOSSES, LR_SCHEDULES, OPTIMIZERS
    from fer_lib.training.precision import PRECISIONS
    from fer_lib.training.presets import preset_names

    parser = argparse.ArgumentParser(prog="fer", description="Facial expression recognition on FER2013-style data.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model and evaluate it on the test split",
                                description="Train a model, keep its best val_accuracy checkpoint and evaluate it on the test split.")
    train.add_argument("--data", help="dataset: Kaggle folders (train/, test/), a folder of <emotion>/ folders, fer2013.csv, "
                                      "or FER+ (FER2013Train/ and FER2013Valid/ with label.csv, or fer2013new.csv beside "
                                      "fer2013.csv), recognised by its layout (default: $FER_DATA, then data/fer2013)")
    train.add_argument("--preset", default=None,
                       help=f"a named recipe (`fer presets` describes them): {', '.join(preset_names())} (default: seed_cnn); "
                            "the options below override its settings")
    train.add_argument("--model", default=None, help="a registered model name with the plain default recipe, instead of --preset")
    train.add_argument("--epochs", type=positive_int, default=None,
                       help="maximum epochs; early stopping may end sooner (default: the preset's, 60 for seed_cnn; 30 with --model)")
    train.add_argument("--time-budget", type=positive_float, default=None, metavar="SECONDS",
                       help="train for as many epochs as fit in SECONDS (at most --epochs), the cosine schedule fitted to "
                            "them, then stop (e.g. a rented GPU's hour); counted from the start of training")
    train.add_argument("--data-parallel", action="store_true", default=None,
                       help="JAX: train on every accelerator of this machine, each batch split between them "
                            "(keras.distribution.DataParallel); --batch-size must be a multiple of their count")
    train.add_argument("--out", default=None, help="output folder (default: runs/<preset or model>)")
    train.add_argument("--batch-size", type=positive_int, default=None, help="(default: the preset's, 64)")
    train.add_argument("--learning-rate", type=positive_float, default=None, help="(default: the preset's)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="(default: the preset's)")
    train.add_argument("--weight-decay", type=float, default=None,
                       help="decay of conv and dense kernels, not of batch norm or biases (default: the preset's)")
    train.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None)
    train.add_argument("--label-smoothing", type=float, default=None)
    train.add_argument("--loss", choices=LOSSES, default=None)
    train.add_argument("--init-from", metavar="M.keras", default=None,
                       help="start from this trained model's weights (same architecture) instead of random ones")
    train.add_argument("--mixing", choices=MIXINGS, default=None,
                       help="blend pairs of training faces and their labels: mixup or cutmix (default: the preset's, none)")
    train.add_argument("--mixing-strength", type=positive_float, default=None, metavar="S",
                       help="mixup's Beta alpha (default 0.2) or cutmix's factor in (0, 1] (default 1.0)")
    train.add_argument("--ema", type=float, default=None, metavar="M", dest="ema_momentum",
                       help="average the weights (EMA, momentum M in (0, 1), e.g. 0.999): validation, the checkpoint "
                            "and model.keras use the average (default: the preset's, none)")
    train.add_argument("--teacher", metavar="T.keras", default=None,
                       help="distil this trained model or ensemble: train on a mix of the labels and its probabilities")
    train.add_argument("--distillation", type=float, default=None, metavar="W",
                       help="weight of the teacher's probabilities in the targets, in (0, 1] (default 0.5)")
    train.add_argument("--single-affine", action=argparse.BooleanOptionalAction, default=None,
                       help="draw the preset's rotation, zoom and shifts as usual but resample each face once "
                            "(one affine transform) instead of once per transform (default: the preset's, off)")
    train.add_argument("--label-mode", choices=LABEL_MODES, default=None,
                       help="FER+ only, what its ten votes per face train towards: majority (one-hot), probability (a label "
                            "drawn from the votes each epoch), crossentropy (the vote distribution), multi_target (any "
                            "emotion with 30%% of the votes counts as right) (default: majority)")
    train.add_argument("--majority-rule", choices=MAJORITY_RULES, default=None,
                       help="FER+ majority labels: official (microsoft/FERPlus: single votes dropped, the top emotion "
                            "over half of the rest) or top_vote (the paper's) (default: official)")
    train.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None,
                       help="weight the loss by inverse class frequency (helps macro-F1)")
    train.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="auto (the default) uses mixed bfloat16 on CPUs with native bf16, else float32")
    train.add_argument("--seed", type=int, default=None,
                       help="seeds the validation split, the initial weights and the augmentation (default: 1234)")
    train.add_argument("--max-train-images", type=positive_int, default=None, help="train on a stratified subset of about this size")
    train.add_argument("--val-fraction", type=float, default=None, metavar="F",
                       help="share of train held out for validation, checkpoint choice and early stopping (default 0.1); "
                            "0 trains on every training face and keeps the final epoch (a final run of a settled recipe)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a finished or interrupted run in --out (a finished one is kept as model.previous.keras, "
                            "config.previous.json, ...)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out from its last completed epoch, with its saved settings")
    train.add_argument("--demo", action="store_true", help="use generated demo data when no dataset is found")
    train.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation after training")
    add_tracking_options(train, "the run")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a split",
                                   description="Evaluate a saved .keras model and write metrics.json.")
    evaluate.add_argument("--model", default=None,
                          help="a packaged model (fer2013, ferplus) or a .keras model file (default: the packaged default)")
    evaluate.add_argument("--data", help="dataset root (FER2013 or FER+, any layout fer train reads) or a single folder of "
                                         "<emotion>/ images (default: $FER_DATA, then data/fer2013)")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test", help="split of a dataset root (default: test)")
    evaluate.add_argument("--json", dest="json_out", help="write the metrics to this JSON file")
    evaluate.add_argument("--batch-size", type=positive_int, default=256)
    evaluate.add_argument("--tta", choices=("none", "flip", "tencrop"), default="none",
                          help="test-time augmentation: average over the mirror image (flip) or ten crops (tencrop)")
    ensemble = commands.add_parser("ensemble", help="combine saved models into one model that averages their predictions",
                                   description="Average the probabilities of several saved .keras models in one .keras model.")
    ensemble.add_argument("models", nargs="+", metavar="MODEL.keras", help="two or more trained models")
    ensemble.add_argument("--out", required=True, metavar="E.keras", help="where to save the ensemble")
    ensemble.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    rebalance = commands.add_parser(
        "rebalance", help="correct a model's bias towards frequent classes (better macro-F1, disgust and fear recall)",
        description="Divide a saved model's probabilities by the training class frequencies raised to a strength "
                    "chosen on the validation split by macro-F1, and save the result as a new .keras model.")
    rebalance.add_argument("--model", required=True, metavar="M.keras", help="a trained model or ensemble")
    rebalance.add_argument("--data", help="the dataset it was trained on (default: $FER_DATA, then data/fer2013)")
    rebalance.add_argument("--out", default=None, metavar="R.keras", help="where to save it (default: <model>_rebalanced.keras beside it)")
    rebalance.add_argument("--strength", type=positive_float, default=None,
                           help="use this strength in (0, 1] instead of choosing one on the validation split")
    rebalance.add_argument("--tta", choices=("none", "flip", "tencrop"), default="none",
                           help="choose the strength for predictions made with this test-time augmentation")
    rebalance.add_argument("--seed", type=int, default=None,
                           help="seed of the train/validation split (default: the run's config.json beside the model, else 1234)")
    rebalance.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    calibrate = commands.add_parser(
        "calibrate", help="make a model's scores mean what they say (temperature scaling; predictions unchanged)",
        description="Fit one temperature for a saved model's logits on the validation split by log loss, so that a "
                    "top score of 0.7 is right about 70% of the time, and save the result as a new .keras model. "
                    "Rebalance first, if at all.")
    calibrate.add_argument("--model", required=True, metavar="M.keras", help="a trained, rebalanced or ensemble model")
    calibrate.add_argument("--data", help="the dataset it was trained on (default: $FER_DATA, then data/fer2013)")
    calibrate.add_argument("--out", default=None, metavar="C.keras", help="where to save it (default: <model>_calibrated.keras beside it)")
    calibrate.add_argument("--tta", choices=("none", "flip", "tencrop"), default="none",
                           help="fit the temperature for predictions made with this test-time augmentation")
    calibrate.add_argument("--seed", type=int, default=None,
                           help="seed of the train/validation split (default: the run's config.json beside the model, else 1234)")
    calibrate.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    listing = commands.add_parser("presets", help="list the named training recipes, or show one's settings",
                                  description="List the named training recipes (fer train --preset NAME), one line each; "
                                              "with a NAME, print that recipe's full settings as JSON.")
    listing.add_argument("name", nargs="?", help="a preset to show in full")

    tune = commands.add_parser("tune", help="a KerasTuner search spread over worker processes (distributed mode)",
                               description="Run a KerasTuner search with a chief oracle and N worker processes on this "
                                           "machine (KerasTuner's distributed mode); write the trials and the best "
                                           "hyperparameters (which notebook 03 and fer pipeline train from). Workers on "
                                           "other machines or GPUs join as docs/pipeline.md describes.")
    tune.add_argument("--data", help="dataset (default: $FER_DATA, then data/fer2013)")
    tune.add_argument("--workers", type=positive_int, default=2, help="worker processes, one trial each at a time (default 2)")
    tune.add_argument("--tuner", choices=("random", "bayesian", "hyperband"), default="random")
    tune.add_argument("--search-space", choices=SEARCH_SPACES, default="strong",
                      help="strong (default): the fer_cnn family around the best known recipe and the presets it does not "
                           "hold; strong_gpu: with the GPU presets; cnn: the plain CNNs around seed_cnn; presets")
    tune.add_argument("--trials", type=positive_int, default=10, help="trials (random and bayesian; default 10)")
    tune.add_argument("--epochs", type=positive_int, default=3, help="epochs per trial (default 3)")
    tune.add_argument("--batch-size", type=positive_int, default=64)
    tune.add_argument("--max-train-images", type=positive_int, default=None, help="search on a stratified subset of train")
    tune.add_argument("--seed", type=int, default=1234)
    tune.add_argument("--label-mode", choices=LABEL_MODES, default=None,
                      help="FER+ only: what the trials train towards, as fer train's option (default: majority)")
    tune.add_argument("--majority-rule", choices=MAJORITY_RULES, default=None,
                      help="FER+ majority labels: official or top_vote, as fer train's option (default: official)")
    tune.add_argument("--out", default=None, help="searches folder (default: reports/tuning); the search resumes there")
    tune.add_argument("--port", type=positive_int, default=None, help="the chief's port on 127.0.0.1 (default: a free one)")
    add_tracking_options(tune, "each trial (a child run of the search's)")

    pipeline = commands.add_parser("pipeline", help="run the four notebooks and render HTML reports",
                                   description="Run notebooks 01-04 with papermill, render them to HTML and write <out>/latest/index.html.")
    pipeline.add_argument("--data", help="dataset (default: $FER_DATA, then data/fer2013, else generated demo faces)")
    pipeline.add_argument("--profile", default="auto", help="smoke (generated data, tiny budgets), full (2 CPU cores, at most "
                                                            "3 hours), gpu (a larger search, the long recipe), or auto: on "
                                                            "real data gpu where the Keras backend sees a GPU, else full; "
                                                            "smoke on generated data (default)")
    pipeline.add_argument("--out", default=None, help="reports folder (default: reports/)")
    pipeline.add_argument("--epochs", type=int, default=None,
                          help="override the profile's training epochs (full and gpu: the recipe's own, within the time budget)")
    pipeline.add_argument("--trials", type=int, default=None,
                          help="override the profile's tuner trials (random and bayesian; Hyperband sizes itself from the epochs)")
    pipeline.add_argument("--tuner", default=None, help="random (every profile's), bayesian or hyperband")
    pipeline.add_argument("--preset", default="", help="train this named preset (seed_cnn, fer_cnn, ...) instead of the search's best")
    pipeline.add_argument("--search-space", choices=SEARCH_SPACES, default=None,
                          help="what the tuner searches (default: the profile's, strong for full, strong_gpu for gpu, cnn "
                               "for smoke): the fer_cnn family around the best known recipe and the presets it does not hold "
                               "(strong; strong_gpu adds the GPU presets), the plain CNNs around seed_cnn (cnn) or the presets")
    pipeline.add_argument("--tta", choices=("none", "flip", "tencrop", "auto"), default=None,
                          help="test-time augmentation reported beside the plain metrics (default: the profile's, auto for "
                               "full and gpu: ten-crop for recipes trained on crops or shifted faces, flip otherwise; flip for smoke)")
    pipeline.add_argument("--tuner-overwrite", action="store_true", help="restart the hyperparameter search instead of resuming it")
    pipeline.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_FOLDER",
                          help="carry on an interrupted run (default: the newest unfinished one in --out) with its own "
                               "settings: finished notebooks are kept, the search and the training continue where they stopped")
    pipeline.add_argument("--with-code", action="store_true", help="show code cells in the HTML reports")
    pipeline.add_argument("--seed", type=int, default=1234)
    pipeline.add_argument("--label-mode", choices=LABEL_MODES, default=None,
                          help="FER+ only: what the search and the training learn from the votes, as fer train's option "
                               "(default: majority)")
    pipeline.add_argument("--majority-rule", choices=MAJORITY_RULES, default="official",
                          help="FER+ only: official or top_vote majority labels (default: official)")
    pipeline.add_argument("--fer2013-data", default=None, metavar="PATH",
                          help="FER+ only: FER2013 (Kaggle folders or fer2013.csv), whose labels notebook 01 compares "
                               "with the FER+ majority")
    add_tracking_options(pipeline, "the search's trials and the training")
    add_predict_parser(commands)
    export = commands.add_parser(
        "export", help="export a model to ONNX or TFLite for deployment, checked against Keras",
        description="Convert a saved .keras model (trained, crop, ensemble, rebalanced or calibrated) to an ONNX or "
                    "TFLite file that takes the same 48x48x1 pixels (0-255) and returns the same seven probabilities. "
                    "Before the file is written its probabilities on a few hundred faces are compared with Keras': "
                    "in float32 they must agree within 0.001 and give the same class for 99.5% of the faces, "
                    "or nothing is written.")
    export.add_argument("--model", default=None, metavar="MODEL",
                        help="a packaged model (fer2013, ferplus) or a .keras file (default: the packaged default)")
    export.add_argument("--format", dest="export_format", default=None, metavar="FORMAT", help="onnx or tflite")
    export.add_argument("--out", default=None, metavar="FILE", help="the file to write, ending in .onnx or .tflite")
    export.add_argument("--quantize", default=None, metavar="KIND",
                        help="TFLite only: float16 (half the size) or int8 (a quarter; calibrated on training faces of "
                             "--data, and the top-1 of Keras and of the int8 file on its test split is printed)")
    export.add_argument("--data", help="dataset whose test faces the parity check uses and whose training faces calibrate int8 "
                                       "(default: $FER_DATA, then data/fer2013, else generated faces)")
    export.add_argument("--faces", type=positive_int, default=300, help="faces in the parity check (default 300)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_records_parser(commands)
    return parser


def add_tracking_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help=f"do not write TensorBoard logs of {what} (written by default in its folder's tensorboard/; "
                             "watch with tensorboard --logdir runs/ or reports/)")
    parser.add_argument("--mlflow", nargs="?", const="default", default=None, metavar="URI",
                        help=f"log {what} to MLflow (pip install -e '.[tracking]'): the tracking URI, else $FER_MLFLOW_URI, "
                             "else sqlite:///runs/mlflow.db (mlflow ui --backend-store-uri sqlite:///runs/mlflow.db); "
                             "FER_MLFLOW_URI alone turns it on")


def _tracking_uri(args) -> str | None:
    """The MLflow URI asked for, checked to be usable before anything starts."""
    from fer_lib.training.mlflow_tracking import require_mlflow, resolve_uri

    uri = resolve_uri(args.mlflow)
    if uri:
        require_mlflow()
    return uri


def _cmd_pipeline(args) -> int:
    from fer_lib import paths
    from fer_lib.reporting.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig(data=args.data, profile=args.profile, out=args.out or str(paths.REPORTS_DIR),
                            with_code=args.with_code, seed=args.seed, epochs=args.epochs, trials=args.trials,
                            tuner=args.tuner, preset=args.preset, search_space=args.search_space, tta=args.tta,
                            tuner_overwrite=args.tuner_overwrite, label_mode=args.label_mode,
                            majority_rule=args.majority_rule, fer2013_data=args.fer2013_data,
                            tensorboard=args.tensorboard, mlflow_uri=_tracking_uri(args))
    if args.resume:
        ignored = [option for option, given in (("--data", args.data), ("--profile", args.profile != "auto"),
                                                ("--epochs", args.epochs), ("--trials", args.trials), ("--tuner", args.tuner),
                                                ("--preset", args.preset), ("--search-space", args.search_space),
                                                ("--tta", args.tta), ("--tuner-overwrite", args.tuner_overwrite),
                                                ("--with-code", args.with_code), ("--seed", args.seed != 1234),
                                                ("--label-mode", args.label_mode),
                                                ("--majority-rule", args.majority_rule != "official"),
                                                ("--fer2013-data", args.fer2013_data)) if given]
        if ignored:
            print(f"Note: {', '.join(ignored)} ignored; a resumed run keeps its saved settings", flush=True)
    run_pipeline(config, progress=lambda line: print(line, flush=True), resume=args.resume)
    return 0


def _cmd_tune(args) -> int:
    from fer_lib import paths
    from fer_lib.data.dataset import dataset_classes, resolve_data_or_demo
    from fer_lib.errors import FerError
    from fer_lib.training import tuning
    from fer_lib.training.distributed_search import SearchSettings, run_distributed_search, trials_run_by

    mlflow_uri = _tracking_uri(args)
    data, synthetic = resolve_data_or_demo(args.data)
    if synthetic:
        print(DEMO_BANNER, flush=True)
    classes = dataset_classes(data)
    votes = len(classes) == 8  # FER+: the trials train towards --label-mode's targets
    if not votes and args.label_mode not in (None, "majority"):
        raise FerError(f"--label-mode {args.label_mode} trains on annotators' votes, which {data} has none of; "
                       "use FER+ data or leave --label-mode out")
    label_mode = args.label_mode or "majority"
    print(f"Searching on {data} ({len(classes)} classes" + (f", FER+ label mode {label_mode}" if votes else "") + ")",
          flush=True)
    directory = Path(args.out) if args.out else paths.REPORTS_DIR / "tuning"
    project = "distributed-" + tuning.project_name(data, "tune", args.tuner, args.search_space, seed=args.seed,
                                                   max_trials=args.trials, max_epochs=args.epochs,
                                                   batch_size=args.batch_size, max_train_images=args.max_train_images,
                                                   label_mode=label_mode if votes else None)
    settings = SearchSettings(data=str(Path(data).resolve()), directory=str(directory.resolve()), project=project,
                              tuner=args.tuner, search_space=args.search_space, max_trials=args.trials,
                              max_epochs=args.epochs, batch_size=args.batch_size,
                              max_train_images=args.max_train_images, seed=args.seed, label_mode=label_mode,
                              majority_rule=args.majority_rule or "official", tensorboard=args.tensorboard,
                              mlflow_uri=mlflow_uri)
    print(f"Searching with a chief and {args.workers} worker(s); logs in {directory / project / 'logs'}", flush=True)
    if args.tensorboard:
        print(f"Watch the trials: tensorboard --logdir {directory / project}", flush=True)
    search_run = None
    if mlflow_uri:
        from fer_lib.training.mlflow_tracking import MlflowRun

        search_run = MlflowRun(mlflow_uri, project, tags={"fer.kind": "search"})
        search_run.log_params({k: v for k, v in dataclasses.asdict(settings).items() if not k.startswith("mlflow")})
        settings.mlflow_parent = search_run.run_id
        if search_run.failed or search_run.run_id is None:  # warned: the workers' trials would have no search to join
            settings.mlflow_uri = search_run = None
    try:
        project_dir = run_distributed_search(settings, args.workers, port=args.port)
    except BaseException:
        if search_run is not None:
            search_run.end("FAILED")
        raise
    search = tuning.make_tuner(args.tuner, settings.directory, project, max_trials=args.trials,
                               max_epochs=args.epochs, seed=args.seed, search_space=args.search_space,
                               num_classes=len(classes))
    trials = tuning.trials_table(search)
    tuning.write_trials(trials, project_dir / "trials.csv")
    best = tuning.best_hyperparameters(search)
    tuning.write_best_hyperparameters(best, project_dir / "best_hyperparameters.json")
    print(tuning.trials_overview(trials).to_string(index=False))
    if search_run is not None:
        search_run.log_metrics({"best_val_accuracy": best["val_accuracy"]})
        search_run.log_artifacts([project_dir / "trials.csv", project_dir / "best_hyperparameters.json"])
        search_run.end()
    ran = ", ".join(f"{tuner_id} {len(ids)}" for tuner_id, ids in trials_run_by(project_dir).items())
    print(f"Trials trained per worker: {ran}")
    print(f"Best trial {best['trial_id']}: val_accuracy {best['val_accuracy']:.4f}; "
          f"hyperparameters in {project_dir / 'best_hyperparameters.json'}")
    return 0


# Options that set a run's recipe; a resumed run keeps its saved ones.
RECIPE_OPTIONS = ("preset", "model", "epochs", "batch_size", "learning_rate", "optimizer", "weight_decay",
                  "lr_schedule", "label_smoothing", "loss", "class_weights", "init_from", "mixing", "mixing_strength",
                  "teacher", "distillation", "ema_momentum", "max_train_images", "val_fraction", "precision", "seed", "time_budget",
                  "single_affine", "label_mode", "majority_rule")


def _cmd_train(args) -> int:
    from fer_lib import paths
    from fer_lib.data.dataset import load_dataset, resolve_data_or_demo
    from fer_lib.errors import DataError, FerError
    from fer_lib.evaluation.metrics import compares_with_original, format_metrics, write_metrics
    from fer_lib.evaluation.votes import split_metrics
    from fer_lib.models.saving import load_model
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.presets import get_preset, preset_config
    from fer_lib.training.run_folder import CONFIG_FILE, METRICS_FILE, RESUME_DIR, check_out_dir, read_resume_state
    from fer_lib.training.trainer import train

    if args.preset and args.model:
        raise FerError("--preset already names the model; pass either --preset or --model")
    recipe = args.model or args.preset or "seed_cnn"
    mlflow_uri = _tracking_uri(args)  # a missing extra fails before anything else
    if not args.model:
        get_preset(recipe)  # an unknown name fails before any data is loaded
    out = Path(args.out or Path("runs") / recipe)
    state = check_out_dir(out, args.overwrite, args.resume)  # refuse before loading any data
    if not args.resume:
        state = None
    if state is not None:
        # A resumed run keeps the interrupted run's settings; only the data's location may change.
        saved = out / RESUME_DIR / CONFIG_FILE
        try:
            config = TrainConfig.load(saved)
        except (OSError, ValueError, TypeError):
            raise FerError(f"{saved}: missing or unreadable, so the interrupted run cannot be resumed; "
                           "pass --overwrite to start over") from None
        if args.data:
            config.data = str(paths.resolve_data_dir(args.data))
        config.out = str(out)  # the folder may have moved since (e.g. brought back from a GPU machine)
        if args.data_parallel is not None:  # where it runs, not what it learns: this machine's choice
            config.data_parallel = args.data_parallel
        config.tensorboard, config.mlflow_uri = args.tensorboard, mlflow_uri  # where it is tracked, as this command says
        ignored = [f"--{name.replace('_', '-')}" for name in RECIPE_OPTIONS if getattr(args, name) is not None]
        if ignored:
            print(f"Note: {', '.join(ignored)} ignored; a resumed run keeps its saved settings", flush=True)
        print(f"Resuming the interrupted run in {out} ({state['epochs_done']} of {config.epochs} epochs done) "
              f"with its settings from {saved}", flush=True)
    else:
        if args.demo:
            data_path, synthetic = resolve_data_or_demo(args.data)
            if synthetic:
                print(DEMO_BANNER, flush=True)
        else:
            data_path = paths.resolve_data_dir(args.data)
            if data_path is None:
                raise DataError(f"no dataset: pass --data, set FER_DATA, put FER2013 in {paths.DEFAULT_DATA_DIR}, or use --demo")
        settings = dict(data=str(data_path), out=str(out), epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=args.learning_rate, optimizer=args.optimizer, weight_decay=args.weight_decay,
                        lr_schedule=args.lr_schedule, label_smoothing=args.label_smoothing, loss=args.loss,
                        class_weights=args.class_weights, init_from=args.init_from, mixing=args.mixing,
                        mixing_strength=args.mixing_strength,
                        teacher=os.path.abspath(args.teacher) if args.teacher else None,  # resumable from anywhere
                        distillation=args.distillation, ema_momentum=args.ema_momentum, precision=args.precision, seed=args.seed,
                        max_train_images=args.max_train_images, val_fraction=args.val_fraction, time_budget=args.time_budget,
                        data_parallel=args.data_parallel, label_mode=args.label_mode, majority_rule=args.majority_rule)
        settings = {k: v for k, v in settings.items() if v is not None}
        settings.update(tensorboard=args.tensorboard, mlflow_uri=mlflow_uri)
        if args.distillation is not None and not args.teacher:
            raise FerError(f"--distillation {args.distillation:g} needs --teacher T.keras, the model to distil")
        try:
            config = TrainConfig(model=args.model, **settings) if args.model else preset_config(recipe, **settings)
            if args.single_affine is not None:
                if config.augment is None:
                    raise FerError(f"--single-affine changes a preset's augmentation; {recipe} has its model's default "
                                   "one, so pass --preset (fer presets lists them)")
                config.augment = dataclasses.replace(config.augment, affine=args.single_affine)
            config.validate()
        except ValueError as exc:
            raise FerError(str(exc)) from None
        if args.resume:
            print(f"Nothing to resume in {out}; starting a new run", flush=True)
    dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed,
                           require_test=not args.no_eval)
    print(dataset.describe(), flush=True)
    if len(dataset.val) == 0:
        print("No validation split: every training face is trained on, without early stopping; "
              "model.keras will be the final epoch's weights", flush=True)
    if config.tensorboard:
        print(f"TensorBoard logs in {out / 'tensorboard'}: watch with tensorboard --logdir {out.parent}", flush=True)
    try:
        result = train(config, dataset, overwrite=args.overwrite, resume=args.resume)
    except KeyboardInterrupt:
        done = read_resume_state(out)
        if done is not None:
            print(f"fer train: interrupted after epoch {done['epochs_done']}; continue with: "
                  f"fer train --resume --out {out}", file=sys.stderr, flush=True)
        raise
    s = result.summary
    rate = f", {s['images_per_second']:.0f} images/s" if s["images_per_second"] else ""
    best = f"; best val_accuracy {s['best_val_accuracy']:.2%} at epoch {s['best_epoch']}" if s["best_epoch"] else ""
    resumed = f" (resumed after epoch {s['resumed_after_epoch']})" if s["resumed_after_epoch"] is not None else ""
    print(f"Trained {s['epochs_run']} epoch(s){resumed} in {s['wall_seconds']:.0f} s ({s['precision']}{rate}){best}")
    print(f"Model: {result.model_path}")
    if s.get("previous_model"):
        print(f"The run it replaced is kept as {s['previous_model']}, with its config, history and metrics "
              "as *.previous.* beside it")
    if not args.no_eval:
        model = load_model(result.model_path)
        metrics = split_metrics(model, dataset.test, model_name=str(result.model_path), data_name=str(dataset.source))
        out = result.out_dir / METRICS_FILE
        write_metrics(metrics, out, model=str(result.model_path), data=dataset.info(), split="test")
        if config.mlflow_uri:
            from fer_lib.training.mlflow_tracking import log_evaluation

            log_evaluation(config.mlflow_uri, s.get("mlflow_run_id"), metrics, [out])
        if dataset.synthetic:
            print(DEMO_BANNER)
        print(format_metrics(metrics, reference=compares_with_original(metrics, dataset.synthetic)))
        print(f"Metrics: {out}")
    return 0


def _cmd_evaluate(args) -> int:
    from fer_lib import paths
    from fer_lib.data.dataset import dataset_classes, load_eval_split
    from fer_lib.errors import DataError
    from fer_lib.evaluation.metrics import format_metrics, write_metrics
    from fer_lib.evaluation.votes import check_classes, split_metrics
    from fer_lib.models.saving import load_model, model_classes

    data_path = paths.resolve_data_dir(args.data)
    if data_path is None:
        raise DataError(f"no dataset: pass --data, set FER_DATA, or put FER2013 in {paths.DEFAULT_DATA_DIR}")
    model_path = paths.resolve_model(args.model)
    model = load_model(model_path)
    # Before the faces are decoded: a model for other classes fails at once.
    check_classes(model_classes(model), dataset_classes(data_path), str(args.model or model_path), str(data_path))
    evaluated = load_eval_split(data_path, args.split)
    print(evaluated.describe(), flush=True)
    print(f"Evaluating {model_path} on the {evaluated.split.name} split ({len(evaluated.split)} faces)", flush=True)
    metrics = split_metrics(model, evaluated.split, args.batch_size, tta=args.tta, model_name=str(model_path),
                            data_name=str(data_path))
    if evaluated.synthetic:
        print(DEMO_BANNER)
    name = Path(model_path).name + ("" if args.tta == "none" else f" + {args.tta}")
    print(format_metrics(metrics, name, reference=None if not evaluated.synthetic else False))
    if args.json_out:
        write_metrics(metrics, args.json_out, model=str(model_path), data=evaluated.info(), split=evaluated.split.name)
        print(f"Metrics: {args.json_out}")
    return 0


def _cmd_ensemble(args) -> int:
    from fer_lib.models.ensemble import ensemble_files
    from fer_lib.models.saving import load_model
    from fer_lib.models.stats import count_macs

    path = ensemble_files(args.models, args.out, overwrite=args.overwrite)
    model = load_model(path)
    print(f"Ensemble of {len(args.models)} models: {path} ({model.count_params():,} parameters, "
          f"{count_macs(model) / 1e6:.0f}M multiply-adds per face)")
    return 0


def _validation_data(args, model_path: Path, fitted: str):
    """The dataset whose validation split `fitted` (what is chosen on it) is fitted on: the model's own run's split."""
    from fer_lib import paths
    from fer_lib.data.dataset import load_dataset
    from fer_lib.errors import DataError
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.run_folder import CONFIG_FILE, MODEL_FILE

    # The validation split must be the one the model was not trained on: the run's own, when its config is there.
    # A run folder's config.json describes its model.keras only (not model.previous.keras or a copy).
    run_config = model_path.parent / CONFIG_FILE
    saved = None
    if model_path.name == MODEL_FILE and run_config.is_file():
        try:
            saved = TrainConfig.load(run_config)
        except (OSError, ValueError, TypeError):
            print(f"Note: {run_config} is unreadable; using seed {args.seed or 1234} for the validation split", flush=True)
    data_path = paths.resolve_data_dir(args.data) or (Path(saved.data) if saved and saved.data else None)
    if data_path is None:
        raise DataError(f"no dataset: pass --data, set FER_DATA, or put FER2013 in {paths.DEFAULT_DATA_DIR}")
    seed = args.seed if args.seed is not None else (saved.seed if saved else 1234)
    if saved and seed != saved.seed:
        print(f"Note: the model was trained with seed {saved.seed}; with --seed {seed} its validation split "
              "holds faces it was trained on, which biases the choice", flush=True)
    elif saved is None and args.seed is None and getattr(args, "strength", None) is None:
        print(f"Note: {model_path} has no run {CONFIG_FILE} beside it; fitting the {fitted} on the validation split "
              "of seed 1234 (pass --seed to use the split the model was trained without)", flush=True)
    return load_dataset(data_path, val_fraction=saved.val_fraction if saved else 0.1, seed=seed, require_test=False)


def _cmd_rebalance(args) -> int:
    from fer_lib.evaluation.rebalance import rebalance_file

    model_path = Path(args.model)
    out = Path(args.out) if args.out else model_path.with_name(f"{model_path.stem}_rebalanced.keras")
    dataset = _validation_data(args, model_path, "strength")
    path, result = rebalance_file(model_path, dataset, out, strength=args.strength, tta=args.tta,
                                  overwrite=args.overwrite)
    if path is None:
        print(f"No strength above 0 improves validation macro-F1 ({result.scores[0.0][1]:.3f}); "
              f"{model_path} needs no rebalancing, nothing saved")
        return 0
    print(f"Rebalanced with {result.describe()}")
    print(f"Model: {path}")
    return 0


def _cmd_calibrate(args) -> int:
    from fer_lib.evaluation.calibration import calibrate_file

    model_path = Path(args.model)
    out = Path(args.out) if args.out else model_path.with_name(f"{model_path.stem}_calibrated.keras")
    path, result = calibrate_file(model_path, _validation_data(args, model_path, "temperature"), out, tta=args.tta,
                                  overwrite=args.overwrite)
    print(f"Calibrated with {result.describe()}")
    print(f"Model: {path}")
    return 0


def _cmd_presets(args) -> int:
    import json

    from fer_lib.training.presets import PRESETS, preset_config

    if args.name:
        print(json.dumps(preset_config(args.name).to_dict(), indent=2))
        return 0
    width = max(map(len, PRESETS))
    for name, preset in PRESETS.items():
        print(f"{name:<{width}}  {preset.description}")
    return 0


def _cmd_export(args) -> int:
    from fer_lib import paths
    from fer_lib.data.dataset import load_dataset
    from fer_lib.inference.export import check_request, export_model
    from fer_lib.models.saving import load_model

    fmt, out, quantize = check_request(args.export_format, args.out, args.quantize, args.overwrite)  # before any loading
    model_path = paths.resolve_model(args.model)
    model = load_model(model_path)  # a file that is not a project model fails before the data is read
    data_path = paths.resolve_data_dir(args.data)
    dataset = None
    if data_path is not None:
        dataset = load_dataset(data_path, require_test=False)
        print(f"Faces from {dataset.source}: {len(dataset.test)} test, {len(dataset.train)} train", flush=True)
    result = export_model(model, fmt, out, quantize=quantize, dataset=dataset, overwrite=args.overwrite,
                          faces=args.faces, source=str(model_path), progress=lambda line: print(line, flush=True))
    print(result.describe())
    for line in result.parity.lines():
        print(line)
    return 0


COMMANDS = {"presets": _cmd_presets, "tune": _cmd_tune, "train": _cmd_train, "evaluate": _cmd_evaluate,
            "ensemble": _cmd_ensemble, "rebalance": _cmd_rebalance, "calibrate": _cmd_calibrate,
            "pipeline": _cmd_pipeline, "predict": run_predict}
COMMANDS["export"] = _cmd_export
COMMANDS["records"] = run_records


def main(argv: list[str] | None = None) -> int:
    from fer_lib.errors import FerError

    parser = build_parser()
    args = parser.parse_args(argv)
    from fer_lib.backend import import_backend_quietly

    if args.command not in ("presets", "records"):  # the only commands that need no Keras
        import_backend_quietly()
    try:
        return COMMANDS[args.command](args)
    except FerError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message carried
        print(f"fer {args.command}: error: {message}", file=sys.stderr)
        return 1 if type(exc).__name__ == "PipelineError" else 2
    except KeyboardInterrupt:
        print(f"fer {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
