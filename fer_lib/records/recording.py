"""Writing a record: a training run, an ensemble, a pipeline run or a model made from a recorded one,
with its recipe as data, as one JSON file in docs/results/.
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_lib.records import locations
from fer_lib.records.cells import short_hardware
from fer_lib.records.naming import scheme_name
from fer_lib.records.reading import load_records, overrides


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
            raise SystemExit(f"no record {from_record!r} in {locations.RESULTS_DIR}")
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
            "benchmark": str(Path(file).resolve().relative_to(locations.ROOT)) if Path(file).resolve().is_relative_to(locations.ROOT) else str(file)}


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
    from fer_lib.models.stats import (
        count_macs,
        cpu_description,
        inference_images_per_second,
    )

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
    locations.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = locations.RESULTS_DIR / f"{entry['name']}.json"
    target.write_text(json.dumps(entry, indent=2) + "\n")
    return target
