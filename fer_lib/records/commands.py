"""Experiment records (docs/results/*.json) and every page figure built from them: the commands.

`main` is `python scripts/results_table.py` (record, record-ensemble, record-pipeline, record-cross-label,
table, check); `add_records_parser` and `run_records` are `fer records check|render|show NAME`, where
render is the script's `table`.

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
import sys
from pathlib import Path

from fer_lib.errors import FerError
from fer_lib.records import locations
from fer_lib.records.cells import pct, recipe_text, training_cell, tta_cell
from fer_lib.records.experiments import FINDINGS
from fer_lib.records.pages import stale_pages, write_pages
from fer_lib.records.reading import load_records
from fer_lib.records.recording import record, record_ensemble, record_pipeline


def render() -> list[Path]:
    """Rewrite every generated page that is out of date; the pages written."""
    return write_pages()


def check(script: str = "python scripts/results_table.py table") -> int:
    """0 when every generated page is current, else 1, naming each stale page and what renews it."""
    stale = stale_pages()
    for path in stale:
        print(f"out of date: {path}; run {script}")
    return 1 if stale else 0


def _relative(path: Path) -> Path:
    return path.relative_to(locations.ROOT) if path.is_relative_to(locations.ROOT) else path


def show(name: str) -> str:
    """One record in a few lines: its recipe, training, figures and conclusion."""
    records = load_records(dataset=None)
    if name not in records:
        close = [n for n in records if name in n][:5]
        raise FerError(f"no record {name!r} in {locations.RESULTS_DIR}"
                       + (f"; did you mean {', '.join(close)}?" if close else "; `ls docs/results/` lists them"))
    e = records[name]
    test = e["test"]
    lines = [f"{name} ({e.get('dataset', 'fer2013')}, {_relative(locations.RESULTS_DIR / f'{name}.json')})",
             f"recipe: {recipe_text(e)}",
             f"training: {training_cell(name, records)}",
             f"test: top-1 {pct(test['top1_accuracy'])}, macro-F1 {test['f1_macro']:.3f}"
             + (f"; with TTA {tta_cell(e)}" if e.get("test_tta") else ""),
             f"parameters: {e['parameters']:,}, CPU inference {e['cpu_inference_images_per_second']:,.0f} faces/s"]
    lines += [f"{key}: {e[key]}" for key in ("control", "conclusion", "note") if e.get(key)]
    return "\n".join(lines)


def add_records_parser(commands) -> None:
    """`fer records`: the subcommands of the `fer` parser that check, render and show the records."""
    records = commands.add_parser("records", help="check or render the pages generated from docs/results/, "
                                                  "or show one record")
    actions = records.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    actions.add_parser("check", help="exit 1 if a generated page is out of date")
    actions.add_parser("render", help="rewrite the generated pages (README.md's headline, docs/experiments.md, "
                                      "docs/ferplus.md and the marked sections of docs/)")
    one = actions.add_parser("show", help="one record's recipe, training and figures")
    one.add_argument("name", help="the record's name (its file in docs/results/ without .json)")


def run_records(args) -> int:
    if args.records_command == "check":
        return check("fer records render")
    if args.records_command == "render":
        for path in render():
            print(f"Wrote {_relative(path)}")
        return 0
    print(show(args.name))
    return 0


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
        print(f"Wrote {write_cross_label(record_cross_label(args.ferplus, args.fer2013, models, command), locations.ROOT)}")
    elif args.command == "table":
        for path in render():
            print(f"Wrote {_relative(path)}")
    else:
        return check()
    return 0
