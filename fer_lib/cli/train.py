"""`fer train`: train a model from a preset (or a registered model), resume an interrupted run, and
evaluate the result on the test split."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from pathlib import Path

from fer_lib.cli.arguments import positive_float, positive_int
from fer_lib.cli.shared import DEMO_BANNER, add_tracking_options, tracking_uri

# Options that set a run's recipe; a resumed run keeps its saved ones.
RECIPE_OPTIONS = ("preset", "model", "epochs", "batch_size", "learning_rate", "optimizer", "weight_decay",
                  "lr_schedule", "label_smoothing", "loss", "class_weights", "init_from", "mixing", "mixing_strength",
                  "teacher", "distillation", "ema_momentum", "max_train_images", "val_fraction", "precision", "seed", "time_budget",
                  "single_affine", "label_mode", "majority_rule")


def add_train_parser(commands) -> argparse.ArgumentParser:
    """Add the `train` command to the `fer` argparse subparsers."""
    from fer_lib.data.votes import LABEL_MODES, MAJORITY_RULES
    from fer_lib.models.augmentation import MIXINGS
    from fer_lib.training.config import LOSSES, LR_SCHEDULES, OPTIMIZERS
    from fer_lib.training.precision import PRECISIONS
    from fer_lib.training.presets import preset_names

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
    train.add_argument("--out", default=None, help="output folder, created if missing (default: runs/<preset or model>)")
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
    return train


def run_train(args) -> int:
    from fer_lib import paths
    from fer_lib.data.dataset import load_dataset, resolve_data_or_demo
    from fer_lib.errors import DataError, FerError, Interrupted
    from fer_lib.evaluation.metrics import compares_with_original, format_metrics, write_metrics
    from fer_lib.evaluation.votes import split_metrics
    from fer_lib.models.saving import load_model
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.presets import get_preset, preset_config
    from fer_lib.training.run_folder import CONFIG_FILE, METRICS_FILE, RESUME_DIR, check_out_dir, interruption
    from fer_lib.training.trainer import train

    if args.preset and args.model:
        raise FerError("--preset already names the model; pass either --preset or --model")
    recipe = args.model or args.preset or "seed_cnn"
    mlflow_uri = tracking_uri(args)  # a missing extra fails before anything else
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
    try:
        dataset = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed,
                               require_test=not args.no_eval)
        print(dataset.describe(), flush=True)
        if len(dataset.val) == 0:
            print("No validation split: every training face is trained on, without early stopping; "
                  "model.keras will be the final epoch's weights", flush=True)
        if config.tensorboard:
            print(f"TensorBoard logs in {out / 'tensorboard'}: watch with tensorboard --logdir {out.parent}", flush=True)
        result = train(config, dataset, overwrite=args.overwrite, resume=args.resume)
    except KeyboardInterrupt:
        raise Interrupted(f"fer train: {interruption(out)}") from None
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
        try:
            model = load_model(result.model_path)
            metrics = split_metrics(model, dataset.test, model_name=str(result.model_path), data_name=str(dataset.source))
            out = result.out_dir / METRICS_FILE
            write_metrics(metrics, out, model=str(result.model_path), data=dataset.info(), split="test")
        except KeyboardInterrupt:
            raise Interrupted(f"fer train: interrupted during the test evaluation; the trained model is complete, "
                              f"evaluate it with: fer evaluate --model {shlex.quote(str(result.model_path))}") from None
        if config.mlflow_uri:
            from fer_lib.training.mlflow_tracking import log_evaluation

            log_evaluation(config.mlflow_uri, s.get("mlflow_run_id"), metrics, [out])
        if dataset.synthetic:
            print(DEMO_BANNER)
        print(format_metrics(metrics, reference=compares_with_original(metrics, dataset.synthetic)))
        print(f"Metrics: {out}")
    return 0
