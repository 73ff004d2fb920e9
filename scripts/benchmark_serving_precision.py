"""Accuracy and speed of models served in float32 (the default) against their trained precision (mixed bfloat16).

    python scripts/benchmark_serving_precision.py \
        --model fer2013=../shared/datasets/fer2013 --model ferplus=../shared/datasets/ferplus \
        --repeats 3 --json docs/benchmarks/serving_precision.json

Each MODEL=DATA pair scores the model on DATA's test split (FER2013's PublicTest, or FER+'s Valid: the same
faces) as `fer evaluate` does, once in float32 (`fer_lib.models.serving`, what inference runs by default)
and once in the precision it was trained in (`--precision trained`). Speed is faces/s of `model.predict` in
batches of --batch-size over the whole split: the median of --repeats runs after one warm-up each, the two
precisions taking turns in every repeat so that a change in the machine's load touches both alike.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PRECISIONS = ("float32", "trained")


def timed_probabilities(models: dict, pixels: np.ndarray, batch_size: int, repeats: int) -> tuple[dict, dict]:
    """Each model's probabilities on `pixels`, and its median faces/s; the models take turns in every repeat."""
    probabilities = {name: np.asarray(model.predict(pixels, batch_size=batch_size, verbose=0), np.float64)
                     for name, model in models.items()}  # also the warm-up
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.predict(pixels, batch_size=batch_size, verbose=0)
            seconds[name].append(time.perf_counter() - start)
    return probabilities, {name: len(pixels) / statistics.median(values) for name, values in seconds.items()}


def measure(model_name: str, data: str, batch_size: int, repeats: int) -> dict:
    from fer_lib import paths
    from fer_lib.data.dataset import load_eval_split
    from fer_lib.evaluation.votes import check_classes, metrics_of
    from fer_lib.inference.conversion import served_precision
    from fer_lib.models.saving import load_model, model_classes
    from fer_lib.models.serving import serving_model

    path = paths.resolve_model(model_name)
    trained = load_model(path)
    models = {precision: serving_model(trained, precision) for precision in PRECISIONS}
    split = load_eval_split(data, "test").split
    check_classes(model_classes(trained), split.classes, model_name, data)
    probabilities, rates = timed_probabilities(models, split.images[..., None].astype(np.float32), batch_size, repeats)
    row = {"model": model_name, "data": data, "split": split.name, "faces": len(split),
           "trained_precision": served_precision(trained) or "float32"}
    for precision in PRECISIONS:
        metrics = metrics_of(split, probabilities[precision])
        row[precision] = {"top1_accuracy": round(metrics["top1_accuracy"], 5), "f1_macro": round(metrics["f1_macro"], 5),
                          "faces_per_second": round(rates[precision], 1)}
    row["same_class"] = round(float(np.mean(probabilities["float32"].argmax(1) == probabilities["trained"].argmax(1))), 5)
    row["max_abs_difference"] = float(f"{np.abs(probabilities['float32'] - probabilities['trained']).max():.3g}")
    return row


def table(rows: list[dict]) -> str:
    lines = ["| model | faces | top-1 float32 | top-1 trained | faces/s float32 | faces/s trained | same class | max diff |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        f32, trained = row["float32"], row["trained"]
        lines.append(f"| {row['model']} ({row['trained_precision']}) | {row['faces']} | {f32['top1_accuracy']:.2%} | "
                     f"{trained['top1_accuracy']:.2%} | {f32['faces_per_second']:.0f} | {trained['faces_per_second']:.0f} | "
                     f"{row['same_class']:.2%} | {row['max_abs_difference']:.2g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, metavar="MODEL=DATA",
                        help="a packaged model or .keras file, and the dataset whose test split scores it (repeatable)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write what was measured to PATH")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    pairs = []
    for item in args.model:
        if "=" not in item:
            parser.error(f"--model {item}: give MODEL=DATA")
        pairs.append(item.split("=", 1))
    load_at_start = os.getloadavg()[0]
    rows = []
    for model_name, data in pairs:
        rows.append(measure(model_name, data, args.batch_size, args.repeats))
        print(table(rows[-1:]), flush=True)
    print(f"\n{table(rows)}")
    if args.json:
        from fer_lib.artifacts import write_json_atomic
        from fer_lib.models.stats import cpu_description
        from fer_lib.training.precision import cpu_supports_bf16

        command = [a for i, a in enumerate(argv) if a != "--json" and (i == 0 or argv[i - 1] != "--json")]
        write_json_atomic(args.json, {
            "date": datetime.date.today().isoformat(), "hardware": cpu_description(), "cpu_bf16": cpu_supports_bf16(),
            "load_average": [round(load_at_start, 1), round(os.getloadavg()[0], 1)],
            "command": "python scripts/benchmark_serving_precision.py" + "".join(f" {shlex.quote(a)}" for a in command),
            "batch_size": args.batch_size, "repeats": args.repeats, "models": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
