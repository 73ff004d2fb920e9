"""Training throughput of registered models or presets, in float32 against mixed bfloat16, side by side.

A name is a registered model (with its default augmentation) or a preset (its model, options
and augmentation, e.g. fer_cnn_crop's 40x40 training crops). Runs are interleaved (every name
and precision once, then again) so that background load hits all alike; each run trains
2 epochs on the same images and times the second (the first traces graphs). Prints medians,
the bf16/f32 ratio and each name's speed relative to the first; --json saves them.

    python scripts/benchmark_training.py --data $FER_DATA --models seed_cnn --images 6400 --repeats 3
    python scripts/benchmark_training.py --data $FER_DATA --models fer_cnn_long fer_cnn_crop --precisions bfloat16
    python scripts/benchmark_training.py --data $FER_DATA --precisions bfloat16 \
        --models transfer_lite0 transfer_lite0:image_size=64,frozen_blocks=0   # input size and frozen blocks
    python scripts/benchmark_training.py --data $FER_DATA --models seed_cnn fer_cnn_crop fer_cnn_crop_wide \
        --images 1600 --repeats 3 --json docs/benchmarks/training_speed.json   # docs/training.md's speed table (results_table.py table)
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys

from fer_lib.backend import import_backend_quietly


def parse_name(spec: str) -> tuple[str, dict]:
    """'transfer_lite0:image_size=64,frozen_blocks=0' -> the name and its model options (JSON values)."""
    name, _, options = spec.partition(":")
    overrides = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", options)):  # commas inside [...] belong to a list
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"{spec}: model options are key=value pairs, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def build(spec: str, seed: int):
    """The registered model or preset `spec` names (its options changed as the spec says), and its config."""
    from dataclasses import replace

    from fer_lib.models.registry import MODEL_BUILDERS, build_model
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.presets import preset_config

    name, overrides = parse_name(spec)
    config = TrainConfig(model=name) if name in MODEL_BUILDERS else preset_config(name)
    config = replace(config, model_options={**config.model_options, **overrides})
    augment = config.augment if name not in MODEL_BUILDERS else None
    return build_model(config.model, augment=augment, seed=seed, **config.model_options), config


def measure(name: str, precision: str, train, val, batch_size: int, seed: int) -> float:
    from dataclasses import replace

    import keras

    from fer_lib.data.preprocessing import as_model_input
    from fer_lib.labels import NUM_CLASSES
    from fer_lib.training.callbacks import ThroughputMeter
    from fer_lib.training.config import TrainConfig
    from fer_lib.training.precision import set_precision
    from fer_lib.training.recipe import compile_for_training
    from fer_lib.training.targets import targets_and_weights

    keras.utils.set_random_seed(seed)
    set_precision(precision)
    model, config = build(name, seed)
    # The same optimizer and loss for every model, so that only the network and its crops differ.
    compile_for_training(model, replace(TrainConfig(), augment=config.augment))
    targets, _ = targets_and_weights(config, keras.utils.to_categorical(train.labels, NUM_CLASSES), train.labels)
    meter = ThroughputMeter(len(train))
    model.fit(as_model_input(train.images), targets,
              validation_data=(as_model_input(val.images), keras.utils.to_categorical(val.labels, NUM_CLASSES)),
              epochs=2, batch_size=batch_size, callbacks=[meter], verbose=0)
    keras.backend.clear_session()
    return meter.images_per_second[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset (default: $FER_DATA, then data/fer2013, else generated faces)")
    parser.add_argument("--models", nargs="+", default=["seed_cnn"],
                        help="registered models or presets, each optionally with changed model options: "
                             "NAME:key=value,key=value (e.g. transfer_lite0:image_size=64,frozen_blocks=0)")
    parser.add_argument("--precisions", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    parser.add_argument("--images", type=int, default=6400, help="training images per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    import_backend_quietly()
    import keras

    from fer_lib.models.registry import MODEL_BUILDERS
    from fer_lib.training.presets import PRESETS

    known = list(dict.fromkeys([*MODEL_BUILDERS, *PRESETS]))
    unknown = [name for name in args.models if parse_name(name)[0] not in known]
    if unknown:
        parser.error(f"unknown model or preset {', '.join(unknown)}; choose from {', '.join(known)}")

    from fer_lib.data.dataset import Split, load_dataset, resolve_data_or_demo, subset
    from fer_lib.models.stats import cpu_description
    from fer_lib.training.precision import cpu_supports_bf16

    data, synthetic = resolve_data_or_demo(args.data)
    dataset = load_dataset(data)
    train = subset(dataset.train, args.images, 0)
    val = Split("val", dataset.val.images[:256], dataset.val.labels[:256])
    results = {"data": str(data), "synthetic": synthetic, "images": len(train), "batch_size": args.batch_size,
               "repeats": args.repeats, "backend": keras.backend.backend(), "cpu_bf16": cpu_supports_bf16(),
               "hardware": cpu_description(),
               "date": datetime.date.today().isoformat(), "models": {}}
    rates = {name: {precision: [] for precision in args.precisions} for name in args.models}
    for repeat in range(args.repeats):
        for name in args.models:
            for precision in args.precisions:
                rate = measure(name, precision, train, val, args.batch_size, seed=repeat)
                rates[name][precision].append(round(rate, 1))
                print(f"{name} {precision:8s} run {repeat + 1}: {rate:7.1f} images/s", flush=True)
    first = args.models[0]
    for name in args.models:
        medians = {p: statistics.median(r) for p, r in rates[name].items()}
        summary = {"images_per_second": rates[name], "median": medians}
        line = f"{name}: " + ", ".join(f"median {p} {m:.0f} images/s" for p, m in medians.items())
        if len(args.precisions) == 2:
            # Each f32 run and the bf16 run right after it share the machine's state; their ratio
            # is steadier than the ratio of medians when the host's speed drifts between runs.
            paired = statistics.median(b / f for f, b in zip(rates[name]["float32"], rates[name]["bfloat16"]))
            summary["bf16_over_f32_medians"] = round(medians["bfloat16"] / medians["float32"], 2)
            summary["bf16_over_f32_paired_median"] = round(paired, 2)
            line += f"; bf16/f32: ratio of medians {summary['bf16_over_f32_medians']:.2f}x, median paired ratio {paired:.2f}x"
        if name != first:
            # Paired per repeat and precision, like the bf16/f32 ratio.
            paired = statistics.median(r / f for p in args.precisions for f, r in zip(rates[first][p], rates[name][p]))
            summary[f"over_{first}_paired_median"] = round(paired, 2)
            line += f"; {paired:.2f}x {first}'s speed (median paired ratio)"
        results["models"][name] = summary
        print(line, flush=True)
    if args.json:
        from fer_lib.artifacts import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
