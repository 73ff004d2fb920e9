"""Training throughput of registered models in float32 against mixed bfloat16, side by side.

Runs are interleaved (f32, bf16, f32, bf16, ...) so that background load hits both alike;
each run trains 2 epochs on the same images and times the second (the first traces graphs).
Prints medians and the bf16/f32 ratio; --json saves them.

    python scripts/benchmark_training.py --data $FER_DATA --models seed_cnn --images 6400 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys

from fer_lib.backend import import_backend_quietly


def measure(model_name: str, precision: str, train, val, batch_size: int, seed: int) -> float:
    import keras

    from fer_lib.config import TrainConfig
    from fer_lib.labels import NUM_CLASSES
    from fer_lib.models import build_model
    from fer_lib.precision import set_precision
    from fer_lib.training import ThroughputMeter, as_model_input, make_optimizer

    keras.utils.set_random_seed(seed)
    set_precision(precision)
    model = build_model(model_name, seed=seed)
    model.compile(optimizer=make_optimizer(TrainConfig()), loss="categorical_crossentropy", metrics=["accuracy"])
    meter = ThroughputMeter(len(train))
    model.fit(as_model_input(train.images), keras.utils.to_categorical(train.labels, NUM_CLASSES),
              validation_data=(as_model_input(val.images), keras.utils.to_categorical(val.labels, NUM_CLASSES)),
              epochs=2, batch_size=batch_size, callbacks=[meter], verbose=0)
    keras.backend.clear_session()
    return meter.images_per_second[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset (default: $FER_DATA, then data/fer2013, else generated faces)")
    parser.add_argument("--models", nargs="+", default=["seed_cnn"])
    parser.add_argument("--images", type=int, default=6400, help="training images per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    import_backend_quietly()
    import keras

    from fer_lib.data import Split, load_dataset, resolve_data_or_demo
    from fer_lib.precision import cpu_supports_bf16
    from fer_lib.training import subset

    data, synthetic = resolve_data_or_demo(args.data)
    dataset = load_dataset(data)
    train = subset(dataset.train, args.images, 0)
    val = Split("val", dataset.val.images[:256], dataset.val.labels[:256])
    results = {"data": str(data), "synthetic": synthetic, "images": len(train), "batch_size": args.batch_size,
               "repeats": args.repeats, "backend": keras.backend.backend(), "cpu_bf16": cpu_supports_bf16(),
               "machine": platform.processor() or platform.machine(), "models": {}}
    for name in args.models:
        rates = {"float32": [], "bfloat16": []}
        for repeat in range(args.repeats):
            for precision in rates:
                rate = measure(name, precision, train, val, args.batch_size, seed=repeat)
                rates[precision].append(round(rate, 1))
                print(f"{name} {precision:8s} run {repeat + 1}: {rate:7.1f} images/s", flush=True)
        medians = {p: statistics.median(r) for p, r in rates.items()}
        # Each f32 run and the bf16 run right after it share the machine's state; their ratio
        # is steadier than the ratio of medians when the host's speed drifts between runs.
        paired = statistics.median(b / f for f, b in zip(rates["float32"], rates["bfloat16"]))
        results["models"][name] = {"images_per_second": rates, "median": medians,
                                   "bf16_over_f32_medians": round(medians["bfloat16"] / medians["float32"], 2),
                                   "bf16_over_f32_paired_median": round(paired, 2)}
        print(f"{name}: median float32 {medians['float32']:.0f} images/s, bfloat16 {medians['bfloat16']:.0f} images/s; "
              f"ratio of medians {medians['bfloat16'] / medians['float32']:.2f}x, median paired ratio {paired:.2f}x")
    if args.json:
        from fer_lib.artifacts import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
