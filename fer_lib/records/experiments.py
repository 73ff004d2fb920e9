"""docs/experiments.md, whole: the protocol, the findings with their runs, every run, the naming scheme.
"""

from __future__ import annotations

from pathlib import Path

from fer_lib.records.cells import (
    f1_cell,
    pct,
    recipe_text,
    short_hardware,
    training_cell,
    tta_cell,
    wrap,
)
from fer_lib.records.headline import headline_table
from fer_lib.records.naming import NAMING
from fer_lib.records.reading import recipe_of, seeds

# Findings: each record may name some; docs/experiments.md gives each a section in this order,
# its one-sentence summary (no figures: they come from the records in its table) and its runs.
FINDINGS = {
    "architecture": ("Network and recipe",
                     "The `fer_cnn` family beat the seed CNN; classifying 40x40 crops and widening the network helped, "
                     "while a flatten head, residual shortcuts and a tuned plain CNN did not."),
    "training_length": ("Longer training and low-learning-rate fine-tunes",
                        "A short anneal helps a run whose best checkpoint came mid-schedule; beyond that, more epochs "
                        "gain about as much as the seed noise."),
    "distillation": ("Distillation (`--teacher`)",
                     "A teacher ensemble helped the `fer_cnn_long` recipe trained from scratch (the packaged model is "
                     "such a run), but not the crop recipes, not a short fine-tune, and a second generation gained nothing."),
    "class_imbalance": ("Rare classes: rebalancing, class weights, focal loss",
                        "`fer rebalance` raises macro-F1 without retraining and without losing top-1; `--class-weights` "
                        "raises macro-F1 without TTA at a cost in top-1; focal loss changed little."),
    "calibration": ("Calibration (`fer calibrate`)",
                    "A temperature makes the scores mean what they say and changes no single-view prediction."),
    "mixing": ("MixUp and CutMix (`--mixing`)", "Neither helped, so no preset uses them."),
    "ema": ("Weight averaging (`--ema`)", "It did not help the final model."),
    "optimizer": ("SGD instead of AdamW", "SGD with the published settings did not help in the same budget."),
    "all_data": ("Training on every training face (`--val-fraction 0`)",
                 "The low-learning-rate fine-tune gives most of the gain; the held-out tenth of the data adds little."),
    "ensembles": ("Ensembles (`fer ensemble`)",
                  "Averaging two or three runs gained more than any change to a single run."),
    "seed_noise": ("Seed noise",
                   "Two seeds of one recipe differ by about a point with ten-crop: read single-run differences of "
                   "that size as noise."),
    "transfer": ("Transfer learning from ImageNet (`--preset transfer_lite0`)",
                 "EfficientNet-Lite0's ImageNet features, fine-tuned on upscaled faces in two CPU hours, matched the "
                 "best from-scratch 2-hour recipe within the seed noise but did not beat it."),
    "gpu": ("GPU runs",
            "On an H200 the CPU recipes train in minutes; their extra epochs gained about as much as the seed noise."),
}

PROTOCOL = (
    "All figures are on FER2013's PublicTest half (3,589 faces; the test folder of the Kaggle image-folder layout). "
    "Validation is a seeded, stratified 10% of Training (seed 1234 unless the run's seed differs), and FER2013's "
    "PrivateTest half was never available, so no run saw its test faces before evaluation. `fer evaluate` measures "
    "top-1, top-2 and macro-F1; \"with TTA\" is ten-crop (`--tta tencrop`) unless the cell says flip. Training "
    "minutes are wall-clock on the machine named, counting every run a model builds on (`--init-from`, ensemble "
    "members) and, separately, its teacher's runs; the 2-core development machine was an AMD EPYC for the earlier "
    "runs and an Intel Xeon with AMX bf16, a faster machine (roughly 1.3x, never measured side by side), for the "
    "`fer_cnn_crop` family, so compare times within one machine (`scripts/benchmark_training.py` measures models "
    "side by side). CPU inference is measured on the machine that recorded the run. Published figures are quoted "
    "on PrivateTest, FER2013's other test half."
)

RECORDING = """\
Record a training run, then regenerate every page:

```bash
python scripts/results_table.py record runs/x --preset fer_cnn_crop --control fer_cnn_crop \\
    --finding architecture --conclusion "One sentence: what the run shows."
python scripts/results_table.py record-ensemble runs/ens.keras --members runs/a runs/b --member-records a b \\
    --metrics runs/ens/metrics.json --label a_and_b
python scripts/results_table.py table
```

`record` takes `--teacher RECORD [RECORD ...]` (several: their `fer ensemble`), `--init-from RECORD` for a
fine-tune, `--from-record RECORD --after "fer rebalance ..."` for a model made from a recorded one without
training, `--note` for what the fields do not say, and names the record by the scheme unless `--name` is given.
`python scripts/results_table.py check` fails when a page is out of date."""

def deltas(e: dict, control: dict) -> tuple[str, str, str]:
    """Top-1, TTA top-1 (points) and macro-F1 against `control`; macro-F1 without TTA when their TTAs differ."""
    def d(a, b, scale=100, unit=" pt", digits=2):
        return f"{(a - b) * scale:+.{digits}f}{unit}"
    top1 = d(e["test"]["top1_accuracy"], control["test"]["top1_accuracy"])
    t, c = e.get("test_tta"), control.get("test_tta")
    if t and c and t.get("tta") == c.get("tta"):
        return top1, d(t["top1_accuracy"], c["top1_accuracy"]), d(t["f1_macro"], c["f1_macro"], 1, "", 3)
    return top1, "", d(e["test"]["f1_macro"], control["test"]["f1_macro"], 1, "", 3) + " (no TTA)"


def findings_section(records: dict[str, dict]) -> list[str]:
    unknown = sorted({f for e in records.values() for f in e.get("findings", [])} - set(FINDINGS))
    if unknown:
        raise SystemExit(f"unknown finding(s) {', '.join(unknown)}; add them to FINDINGS in {Path(__file__).name}")
    lines = ["## What helped and what did not", "",
             wrap("Each run is set against one other run (`control` in its record), mostly the same recipe and seed "
                  "without the change. Changes: top-1 and top-1 with TTA in percentage points, macro-F1 with TTA."), ""]
    for key, (title, summary) in FINDINGS.items():
        members = [e for e in records.values() if key in e.get("findings", [])]
        if not members:
            continue
        lines += [f"### {title}", "", wrap(summary), "",
                  "| run | against | top-1 | change | with TTA | change | macro-F1 change | conclusion |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in members:
            control = records.get(e.get("control", ""))
            change = deltas(e, control) if control else ("", "", "")
            against = f"`{control['name']}`" if control else ""
            lines.append(f"| `{e['name']}` | {against} | "
                         f"{pct(e['test']['top1_accuracy'])} | {change[0]} | {tta_cell(e)} | {change[1]} | "
                         f"{change[2]} | {e.get('conclusion', '')} |")
        lines.append("")
    return lines


def experiments(records: dict[str, dict]) -> str:
    lines = [
        "# Experiments",
        "",
        "<!-- Generated by `python scripts/results_table.py table` from docs/results/*.json: edit a record or the "
        "script, not this file. -->",
        "",
        wrap("Every recorded FER2013 run of this project: its recipe, computed from the record (the preset and the "
             "options that differ from it, the model it was fine-tuned from, its teacher), seed, hardware, figures and "
             "conclusion. The records are the JSON files in [results/](results/); the README's headline table is "
             "built from them too."),
        "",
        wrap(PROTOCOL),
        "",
        "## Headline",
        "",
        headline_table(records, "results/"),
        "",
        *findings_section(records),
        "## Every run",
        "",
        wrap("Training counts every run the model is made of (fine-tune starts, ensemble members), with its "
             "teacher's runs apart. Macro-F1 without / with TTA."),
        "",
        "| run | recipe | seed | training | top-1 | with TTA | macro-F1 | conclusion |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in records.items():
        lines.append(f"| `{name}` | {recipe_text(e)} | {', '.join(map(str, seeds(e)))} | {training_cell(name, records)} | "
                     f"{pct(e['test']['top1_accuracy'])} | {tta_cell(e)} | {f1_cell(e)} | {e.get('conclusion', '')} |")
    lines += [
        "",
        "## Run details",
        "",
        wrap("Own training only (epochs, wall time, speed on the machine that trained); top-2 without / with TTA; "
             "the expected calibration error (10 bins) without / with TTA where recorded; CPU inference speed as "
             "measured where the record was made."),
        "",
        "| run | parameters | MACs | own training | top-2 | calibration error | CPU inference | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in records.items():
        tr = e["training"]
        own = f"{tr['wall_seconds'] / 60:.0f} min, {tr['epochs_run']} epochs, {tr.get('precision')}"
        if tr.get("images_per_second"):
            own += f", {tr['images_per_second']:.0f} images/s"
        if tr.get("cpu_benchmark"):
            cpu = tr["cpu_benchmark"]
            own += f" (the same model on {short_hardware(cpu['hardware'])}: {cpu['images_per_second']:.0f} images/s)"
        if recipe_of(e).get("derived_from"):
            own = f"none (the run of `{recipe_of(e)['derived_from']}`)"
        top2 = pct(e["test"]["top2_accuracy"]) + (f" / {tta_cell(e, 'top2_accuracy')}" if e.get("test_tta") else "")
        ece = " / ".join(f"{t['expected_calibration_error']:.3f}" for t in (e["test"], e.get("test_tta") or {})
                         if "expected_calibration_error" in t)
        notes = [e.get("note", "")]
        if e.get("test_flip"):
            flip = e["test_flip"]
            notes.append(f"with flip TTA: {pct(flip['top1_accuracy'])} top-1, macro-F1 {flip['f1_macro']:.3f}")
        if e.get("former_names"):
            notes.append("formerly " + ", ".join(f"`{n}`" for n in e["former_names"]))
        lines.append(f"| `{name}` | {e['parameters'] / 1e6:.2f} M | {e['macs'] / 1e6:.0f} M | {own} | {top2} | {ece} | "
                     f"{e['cpu_inference_images_per_second']:.0f} faces/s ({short_hardware(e.get('inference_hardware'))}) | "
                     f"{'; '.join(filter(None, notes))} |")
    lines += ["", "## Run names", "", wrap(NAMING), "", "## Recording a run", "", RECORDING, ""]
    return "\n".join(lines)
