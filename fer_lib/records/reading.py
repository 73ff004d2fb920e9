"""Reading records: loading docs/results/*.json and what a record says about itself (its recipe, the
overrides against its preset, the runs and teachers it is made of, its training minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_lib.records import locations

DEFAULT_SEED = 1234
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

def load_records(directory: Path | None = None, dataset: str | None = "fer2013") -> dict[str, dict]:
    """The records in docs/results/ of `dataset` (fer2013, ferplus; None: every one), by name, in name order."""
    directory = directory or locations.RESULTS_DIR
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
