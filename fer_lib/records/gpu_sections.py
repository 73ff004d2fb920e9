"""docs/gpu.md's generated sections: the H200 run's op-by-op timings and its members against the CPU records.
"""

from __future__ import annotations

from fer_lib.records import locations
from fer_lib.records.cells import (
    and_list,
    number_text,
    pct,
    record_link,
    short_hardware,
    tta_cell,
    wrap,
)
from fer_lib.records.headline import PACKAGED_MIN_FACES_PER_SECOND
from fer_lib.records.reading import is_ensemble, recipe_of, seeds


def _gpu_members(run: dict, records: dict[str, dict]) -> list[dict]:
    missing = [name for name in run["members"] if name not in records]
    if missing:
        raise SystemExit(f"{locations.GPU_RUN_FILE.name} names records that do not exist: {', '.join(missing)}")
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
    batch = and_list(sorted({str(m["config"]["batch_size"]) for m in members}))
    text = (f"Measured {run['date']} on {run['hardware']} ({run['software']}): `{run['command']}`. It took "
            f"{run['total_seconds']} s in all: {run['setup_seconds']} s to install the wheels and unpack the faces, then "
            f"each member had a {run['time_budget_seconds']} s time budget (compiling included) and stopped itself, "
            f"annealed, after {min(epochs)}-{max(epochs)} epochs, with the GPU busy (nvidia-smi's utilization) "
            f"{run['gpu_busy_median_percent']}% of the time in the median {run['utilization_sample_seconds']} s sample. "
            "Sharing the GPU, the members trained at "
            + and_list([f"{number_text(rate)} (`{m['name']}`)" for m, rate in zip(members, rates)])
            + f" faces/s, {number_text(sum(rates))} together: about {flops:.0f} TFLOP/s, counting a training step as three "
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
            + and_list([f"{next(iter(m['median'].values())):.0f} (`{name}`)" for name, m in cpu["models"].items()])
            + f" faces/s (`{command}`, median of {cpu['repeats']}; `docs/benchmarks/{locations.GPU_CPU_SPEED_FILE.name}`), so each "
            "member trained "
            + and_list([f"{m['training']['images_per_second'] / m['training']['cpu_benchmark']['images_per_second']:.0f}x "
                    f"(`{m['name']}`)" for m in members if m["training"].get("cpu_benchmark")])
            + " as fast as there while sharing the GPU; the records put the two side by side."))
    n_faces = members[0]["test"].get("n_images", 0)
    table = [f"| model (PublicTest, {number_text(n_faces)} faces) | epochs | top-1 | flip | ten-crop | macro-F1 ten-crop |",
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
                 + and_list([f"{number_text(m['cpu_inference_images_per_second'])} faces/s for `{p}`" for p, m in presets.items()])
                 + f"; a packaged model must classify {number_text(PACKAGED_MIN_FACES_PER_SECOND)}.")
        paragraphs.append(wrap(text))
    return "\n\n".join(paragraphs)
