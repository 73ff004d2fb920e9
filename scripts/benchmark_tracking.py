"""What tracking costs a training run: the same short `fer train` run without tracking, with TensorBoard, and with
TensorBoard and MLflow (when installed), side by side.

The arms are interleaved (each once, then again) so that background load hits all alike. A run's speed is
its training images times epochs over the seconds from the start of its first epoch to the end of its
last (every callback included, tracking too: train_summary.json's wall_seconds); the end-of-run images
and artifacts are timed apart, as the whole call. Prints the medians and each arm's speed over the
untracked one's (median of the ratios paired within a repeat), which should stay >= 0.98.

    python scripts/benchmark_tracking.py --data $FER_DATA --images 1600 --epochs 4 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fer_lib.backend import import_backend_quietly

HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_begin",
         "on_test_end", "on_train_end")


def _timing_tracking_hooks(seconds: list[float]):
    """Make every tracking callback add the time of its hooks to seconds[0]: the logging's own cost,
    which the host's load hides less than it hides a difference of two runs' speeds."""
    from fer_lib.training.run_tracking import RunTracking

    original = RunTracking.callbacks

    def callbacks(self):
        made = original(self)
        for callback in made:
            for name in HOOKS:
                setattr(callback, name, _timed(getattr(callback, name), seconds))
        return made

    RunTracking.callbacks = callbacks


def _timed(hook, seconds: list[float]):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            seconds[0] += time.perf_counter() - started

    return timed


def run_once(arm: str, dataset, args, folder: Path, hook_seconds: list[float]) -> tuple[float, float, float]:
    """(images per second over the epochs, seconds of the whole train() call, share of the epochs' time spent in
    tracking callbacks) of one run of `arm`."""
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.trainer import train

    out = folder / f"{arm}-{time.monotonic_ns()}"
    config = TrainConfig(model=args.model, out=str(out), epochs=args.epochs, batch_size=args.batch_size,
                         early_stopping_patience=args.epochs, lr_schedule="cosine", precision=args.precision,
                         tensorboard=arm != "none",
                         mlflow_uri=f"sqlite:///{folder / 'mlflow.db'}" if arm == "tensorboard+mlflow" else None)
    hook_seconds[0] = 0.0
    started = time.perf_counter()
    result = train(config, dataset, verbose=0)
    whole = time.perf_counter() - started
    s = result.summary
    return s["train_images"] * s["epochs_run"] / s["wall_seconds"], whole, hook_seconds[0] / s["wall_seconds"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset (default: $FER_DATA, then data/fer2013, else generated faces)")
    parser.add_argument("--model", default="seed_cnn")
    parser.add_argument("--images", type=int, default=1600, help="training images per run")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    import_backend_quietly()
    from dataclasses import replace

    import keras
    import numpy as np

    from fer_lib.data.dataset import load_dataset, resolve_data_or_demo, subset
    from fer_lib.models.stats import cpu_description

    data, synthetic = resolve_data_or_demo(args.data)
    full = load_dataset(data)
    dataset = replace(full, train=subset(full.train, args.images, 0), val=full.val.take(np.arange(min(256, len(full.val)))))
    arms = ["none", "tensorboard"]
    try:
        import mlflow  # noqa: F401

        arms.append("tensorboard+mlflow")
    except ImportError:
        print("MLflow is not installed (pip install -e '.[tracking]'): timing TensorBoard only", flush=True)
    rates = {arm: [] for arm in arms}
    wholes = {arm: [] for arm in arms}
    shares = {arm: [] for arm in arms}
    hook_seconds = [0.0]
    _timing_tracking_hooks(hook_seconds)
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for arm in arms:
                rate, whole, share = run_once(arm, dataset, args, Path(folder), hook_seconds)
                rates[arm].append(round(rate, 1))
                wholes[arm].append(round(whole, 1))
                shares[arm].append(round(share, 5))
                print(f"{arm:19s} run {repeat + 1}: {rate:7.1f} images/s, whole run {whole:5.1f} s, "
                      f"{share:.2%} of the epochs' time in tracking callbacks", flush=True)
    results = {"data": str(data), "synthetic": synthetic, "model": args.model, "images": len(dataset.train),
               "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
               "backend": keras.backend.backend(), "hardware": cpu_description(),
               "date": datetime.date.today().isoformat(), "arms": {}}
    for arm in arms:
        summary = {"images_per_second": rates[arm], "median": statistics.median(rates[arm]),
                   "whole_run_seconds": wholes[arm], "median_whole_run_seconds": statistics.median(wholes[arm]),
                   "tracking_hook_share": shares[arm], "median_tracking_hook_share": statistics.median(shares[arm])}
        line = f"{arm}: median {summary['median']:.0f} images/s, whole run {summary['median_whole_run_seconds']:.1f} s"
        if arm != "none":
            paired = statistics.median(t / n for n, t in zip(rates["none"], rates[arm]))
            hooks = summary["median_tracking_hook_share"]
            summary["speed_over_none_paired_median"] = round(paired, 3)
            summary["speed_ratio_from_hook_time"] = round(1 / (1 + hooks), 4)
            line += (f"; speed ratio {paired:.3f} of untracked (median paired ratio), {1 / (1 + hooks):.4f} from the "
                     f"time in its callbacks ({hooks:.2%}){'' if min(paired, 1 / (1 + hooks)) >= 0.98 else '  BELOW 0.98'}")
        results["arms"][arm] = summary
        print(line, flush=True)
    if args.json:
        from fer_lib.artifacts import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
