"""The `fer` command line: presets, tune, train, evaluate, ensemble, rebalance, calibrate, pipeline, predict, export
and records (train, predict and records in modules of their own: `fer_lib.cli.train`, `fer_lib.cli.predict`,
`fer_lib.records.commands`).

User mistakes end in one line on stderr and exit status 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from fer_lib.cli.arguments import add_precision_argument, positive_float, positive_int
from fer_lib.cli.predict import add_predict_parser, run_predict
from fer_lib.cli.shared import DEMO_BANNER, add_tracking_options, tracking_uri
from fer_lib.cli.train import add_train_parser, run_train
from fer_lib.records.commands import add_records_parser, run_records

# fer_lib.training.search_space.SEARCH_SPACES, without importing Keras to build the parser (tests/training/test_tuning.py checks they agree).
SEARCH_SPACES = ("strong", "strong_gpu", "cnn", "presets", "demo")


def build_parser() -> argparse.ArgumentParser:
    from fer_lib.data.votes import LABEL_MODES, MAJORITY_RULES

    parser = argparse.ArgumentParser(prog="fer", description="Facial expression recognition on FER2013-style data.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_train_parser(commands)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a split",
                                   description="Evaluate a saved .keras model and write metrics.json.")
    evaluate.add_argument("--model", default=None,
                          help="a packaged model (fer2013, ferplus) or a .keras model file (default: the packaged model for the "
                               "data: ferplus on FER+, fer2013 otherwise)")
    evaluate.add_argument("--data", help="dataset root (FER2013 or FER+, any layout fer train reads) or a single folder of "
                                         "<emotion>/ images (default: $FER_DATA, then data/fer2013)")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test", help="split of a dataset root (default: test)")
    evaluate.add_argument("--json", dest="json_out", help="write the metrics to this JSON file (missing folders are created)")
    evaluate.add_argument("--batch-size", type=positive_int, default=256)
    evaluate.add_argument("--tta", choices=("none", "flip", "tencrop"), default="none",
                          help="test-time augmentation: average over the mirror image (flip) or ten crops (tencrop)")
    add_precision_argument(evaluate)
    ensemble = commands.add_parser("ensemble", help="combine saved models into one model that averages their predictions",
                                   description="Average the probabilities of several saved .keras models in one .keras model.")
    ensemble.add_argument("models", nargs="+", metavar="MODEL.keras", help="two or more trained models")
    ensemble.add_argument("--out", required=True, metavar="E.keras", help="where to save the ensemble (missing folders are created)")
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
                    "top score of 0.7 is right about 70% of the time, and save the result as a new .keras model; "
                    "the log loss (NLL) and calibration error (ECE) before and after are measured on the test split "
                    "(without one, on a held-out half of the validation split). Rebalance first, if at all.")
    calibrate.add_argument("--model", required=True, metavar="M.keras",
                           help="a trained, rebalanced or ensemble model, or a packaged model (fer2013, ferplus)")
    calibrate.add_argument("--data", help="the dataset it was trained on (default: $FER_DATA, then data/fer2013)")
    calibrate.add_argument("--out", default=None, metavar="C.keras",
                           help="where to save it (default: <model>_calibrated.keras beside it; in the working directory "
                                "for a packaged model, which is never replaced)")
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
    export.add_argument("--out", default=None, metavar="FILE", help="the file to write, ending in .onnx or .tflite (missing folders are created)")
    export.add_argument("--quantize", default=None, metavar="KIND",
                        help="TFLite only: float16 (half the size) or int8 (a quarter; calibrated on training faces of "
                             "--data, and the top-1 of Keras and of the int8 file on its test split is printed)")
    export.add_argument("--data", help="dataset whose test faces the parity check uses and whose training faces calibrate int8 "
                                       "(default: $FER_DATA, then data/fer2013, else generated faces)")
    export.add_argument("--faces", type=positive_int, default=300, help="faces in the parity check (default 300)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_records_parser(commands)
    return parser


def _cmd_pipeline(args) -> int:
    from fer_lib import paths
    from fer_lib.reporting.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig(data=args.data, profile=args.profile, out=args.out or str(paths.REPORTS_DIR),
                            with_code=args.with_code, seed=args.seed, epochs=args.epochs, trials=args.trials,
                            tuner=args.tuner, preset=args.preset, search_space=args.search_space, tta=args.tta,
                            tuner_overwrite=args.tuner_overwrite, label_mode=args.label_mode,
                            majority_rule=args.majority_rule, fer2013_data=args.fer2013_data,
                            tensorboard=args.tensorboard, mlflow_uri=tracking_uri(args))
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
    from fer_lib.errors import FerError, Interrupted
    from fer_lib.training import tuning
    from fer_lib.training.distributed_search import SearchSettings, reload_search, run_distributed_search, trials_run_by

    mlflow_uri = tracking_uri(args)
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
    except BaseException as exc:
        if search_run is not None:
            search_run.end("FAILED")
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(f"fer tune: interrupted; the same command resumes the search in {directory / project} "
                              "(finished trials are kept)") from None
        raise
    search = reload_search(settings, num_classes=len(classes))
    trials = tuning.trials_table(search, epochs=args.epochs)
    tuning.write_trials(trials, project_dir / "trials.csv")
    best = tuning.best_hyperparameters(search, f"see the trial errors in the workers' logs in {project_dir / 'logs'}, "
                                               f"fix them, then remove {project_dir} and run fer tune again")
    tuning.write_best_hyperparameters(best, project_dir / "best_hyperparameters.json")
    print(tuning.trials_overview(trials).to_string())  # rows named by trial id
    if search_run is not None:
        search_run.log_metrics({"best_val_accuracy": best["val_accuracy"]})
        search_run.log_artifacts([project_dir / "trials.csv", project_dir / "best_hyperparameters.json"])
        search_run.end()
    ran = ", ".join(f"{tuner_id} {len(ids)}" for tuner_id, ids in trials_run_by(project_dir).items())
    print(f"Trials trained per worker: {ran}")
    print(f"Best trial {best['trial_id']}: val_accuracy {best['val_accuracy']:.4f}; "
          f"hyperparameters in {project_dir / 'best_hyperparameters.json'}")
    return 0


def _cmd_evaluate(args) -> int:
    from fer_lib import paths
    from fer_lib.data.dataset import dataset_classes, load_eval_split
    from fer_lib.errors import DataError
    from fer_lib.evaluation.metrics import format_metrics, write_metrics
    from fer_lib.evaluation.votes import check_classes, split_metrics
    from fer_lib.models.saving import model_classes
    from fer_lib.models.serving import load_for_inference

    data_path = paths.resolve_data_dir(args.data)
    if data_path is None:
        raise DataError(f"no dataset: pass --data, set FER_DATA, or put FER2013 in {paths.DEFAULT_DATA_DIR}")
    # Without --model, the packaged model for the data's classes: FER2013's seven or FER+'s eight.
    model_path = paths.resolve_model(args.model or ("ferplus" if len(dataset_classes(data_path)) == 8 else "fer2013"))
    model = load_for_inference(model_path, precision=args.precision)
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
    from fer_lib import paths
    from fer_lib.evaluation.rebalance import rebalance_file

    model_path = Path(args.model)
    out = Path(args.out) if args.out else paths.derived_model_path(model_path, "rebalanced")
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
    from fer_lib import paths
    from fer_lib.evaluation.calibration import calibrate_file
    from fer_lib.evaluation.rebalance import check_derived_model_path

    model_path = paths.resolve_model(args.model)  # a packaged model's name too
    out = Path(args.out) if args.out else paths.derived_model_path(model_path, "calibrated")
    check_derived_model_path(model_path, out, args.overwrite, "calibrated")  # before any data is read
    dataset = _validation_data(args, model_path, "temperature")
    print(f"Fitting the temperature on the validation split of {dataset.source} ({len(dataset.val)} faces)", flush=True)
    path, result = calibrate_file(model_path, dataset, out, tta=args.tta, overwrite=args.overwrite,
                                  seed=args.seed if args.seed is not None else 1234)
    fitted = "" if result.fit_faces == len(dataset.val) else f"fitted on the {result.fit_faces} not held out, "
    print(f"Temperature: {result.temperature:.3f} ({fitted}TTA {args.tta})")
    print(f"On {result.held_out_faces} held-out faces ({result.held_out}), before -> after:")
    print(f"  NLL (log loss)           {result.log_loss[0]:.4f} -> {result.log_loss[1]:.4f}")
    print(f"  ECE (calibration error)  {result.calibration_error[0]:.4f} -> {result.calibration_error[1]:.4f}")
    if result.log_loss[1] > result.log_loss[0]:
        print(f"Note: the temperature raises the held-out NLL; {result.fit_faces} validation faces may be too few to fit "
              "it on, or the model was calibrated already")
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


COMMANDS = {"presets": _cmd_presets, "tune": _cmd_tune, "train": run_train, "evaluate": _cmd_evaluate,
            "ensemble": _cmd_ensemble, "rebalance": _cmd_rebalance, "calibrate": _cmd_calibrate,
            "pipeline": _cmd_pipeline, "predict": run_predict}
COMMANDS["export"] = _cmd_export
COMMANDS["records"] = run_records


def main(argv: list[str] | None = None) -> int:
    """Run one `fer` command: a user's mistake ends in one line and exit status 2, Ctrl-C at any moment
    (TensorFlow loading included) in one line and 130."""
    from fer_lib.errors import FerError

    command = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        from fer_lib.cli.checks import check_before_backend

        check_before_backend(args)  # paths that cannot be used: said before TensorFlow's seconds of start-up
        if command not in ("presets", "records"):  # the only commands that need no Keras
            from fer_lib.backend import import_backend_quietly

            import_backend_quietly()
        return COMMANDS[command](args)
    except FerError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message carried
        print(f"fer {command}: error: {message}", file=sys.stderr)
        return 1 if type(exc).__name__ == "PipelineError" else 2
    except KeyboardInterrupt as exc:
        return interrupted(command, exc)


def interrupted(command: str | None, exc: KeyboardInterrupt) -> int:
    """Print the one line a Ctrl-C ends `fer <command>` with (an Interrupted's own, which says how to go on); return 130."""
    from fer_lib.cli import EXIT_INTERRUPTED
    from fer_lib.errors import Interrupted

    line = " ".join(str(exc).split()) if isinstance(exc, Interrupted) and str(exc) else None
    print(line or f"fer{f' {command}' if command else ''}: interrupted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
