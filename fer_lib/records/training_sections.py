"""docs/training.md's generated sections: the training speed table and the notes on speed.
"""

from __future__ import annotations

from pathlib import Path

from fer_lib.records.cells import wrap


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
