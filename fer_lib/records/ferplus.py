"""FER+ in the records: its runs' page, the README's FER+ rows, and the cross-label table's data.

FER+ runs are ordinary records (scripts/results_table.py record, fer_lib.records.recording)
whose `dataset` is "ferplus"; their figures use the official majority rule, with the top-vote
rule and the agreement with the votes beside them. The cross-label table is measured by `record_cross_label` and kept in
docs/benchmarks/cross_label.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

from fer_lib.records.cells import pct, wrap

CROSS_LABEL_FILE = "docs/benchmarks/cross_label.json"  # relative to the project root

PROTOCOL = (
    "All figures are on FER+'s Valid split (3,579 faces, FER2013's PublicTest; FER+'s Test split, FER2013's "
    "PrivateTest, is held back for independent checks). Top-1 is against the majority of ten annotators under "
    "the official rule of microsoft/FERPlus (single votes dropped, the top emotion must hold more than half of "
    "the rest: 3,191 faces), 8 classes with contempt; the paper's top-vote rule keeps 3,555 faces. \"Annotators\" "
    "is the mean share of the ten who chose the model's top emotion, \"vote CE\" the cross-entropy from the "
    "distribution of the votes to the model's probabilities (lower is better). Validation is a seeded 10% of "
    "FER+ Train. Published marks, quoted: the paper's VGG13 from scratch about 85%, SCN 89.35%, POSTER 91.62% "
    "(pretrained, FER+ Test)."
)


def _tta(e: dict) -> dict:
    return e.get("test_tta") or {}


def _label_mode(config: dict) -> str:
    """A run's label mode; an ensemble's members' modes, each once."""
    members = config.get("ensemble_of")
    if members:
        return " + ".join(dict.fromkeys(member.get("label_mode", "majority") for member in members))
    return config.get("label_mode", "majority")


def ferplus_rows(records: dict[str, dict], training_cell_of: Callable[[str], str], link_prefix: str) -> list[str]:
    rows = ["| run | label mode | training | top-1 | ten-crop | top-1, top-vote rule | annotators | vote CE | "
            "macro-F1 | record |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in records.items():
        test, tta = e["test"], _tta(e)
        f1 = f"{test['f1_macro']:.3f}" + (f" / {tta['f1_macro']:.3f}" if tta else "")
        rows.append(f"| {'**packaged** ' if e.get('packaged') else ''}`{name}` | "
                    f"{_label_mode(e['config'])} | {training_cell_of(name)} | "
                    f"{pct(test['top1_accuracy'])} | {pct(tta.get('top1_accuracy'))} | "
                    f"{pct(test.get('top_vote', {}).get('top1_accuracy'))} | "
                    f"{pct(test.get('votes', {}).get('annotator_share'))} | "
                    f"{test.get('votes', {}).get('vote_crossentropy', float('nan')):.3f} | "
                    f"{f1} | "
                    f"[`{name}`]({link_prefix}results/{name}.json) |")
    return rows


def ferplus_headline(records: dict[str, dict], link_prefix: str, cross_label: dict | None = None) -> str:
    """The README's FER+ paragraph and table, with what the label change is worth when it is measured."""
    if not records:
        return "No FER+ model is recorded yet."
    best = max(records.values(), key=lambda e: (_tta(e).get("top1_accuracy", 0), e["test"]["top1_accuracy"]))
    with_tta = f", {pct(_tta(best)['top1_accuracy'])} with ten-crop" if _tta(best) else ""
    sentence = (f"**FER+ (eight emotions, ten annotators per face):** the best FER+ model trained here labels "
                f"{pct(best['test']['top1_accuracy'])} of FER+ Valid's faces as the annotators' majority does "
                f"(official rule{with_tta}); the paper's VGG13 reached about 85%, pretrained models 88-91%.")
    worth = _label_change_sentence(cross_label)
    if worth:
        sentence += " " + worth
    # No table here: the README's quick start must stay on its first screen; docs/ferplus.md has the runs.
    return wrap(sentence + f" Every FER+ run and the cross-label table: [{link_prefix}ferplus.md]({link_prefix}ferplus.md).")


def _label_change_sentence(cross_label: dict | None) -> str:
    """One sentence from the cross-label table: the packaged models on what people said and on FER2013's labels."""
    models = (cross_label or {}).get("models", {})
    if "fer2013" not in models or "ferplus" not in models:
        return ""
    fer2013, ferplus = models["fer2013"]["scores"], models["ferplus"]["scores"]
    return (f"On PublicTest's faces the packaged FER+ model gives the annotators' majority emotion (official rule, "
            f"the seven emotions both datasets share) for {pct(ferplus['official_7']['top1_accuracy'])} of them, "
            f"the packaged FER2013 model for {pct(fer2013['official_7']['top1_accuracy'])}; on FER2013's own single "
            f"labels they score {pct(ferplus['fer2013']['top1_accuracy'])} and "
            f"{pct(fer2013['fer2013']['top1_accuracy'])}.")


def cross_label_table(data: dict) -> list[str]:
    from fer_lib.evaluation.cross_label import COLUMNS

    lines = ["| model | images it sees | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for name, row in data["models"].items():
        cells = [f"{pct(row['scores'][k]['top1_accuracy'])} ({row['scores'][k]['n_images']})" if k in row["scores"]
                 else "\u2014" for k in COLUMNS]
        lines.append(f"| {name} | {row['images']} | " + " | ".join(cells) + " |")
    return lines


def ferplus_page(records: dict[str, dict], cross_label: dict | None, recipe_text: Callable[[dict], str],
                 training_cell_of: Callable[[str], str]) -> str:
    """docs/ferplus.md, whole."""
    lines = ["# FER+ results", "",
             "<!-- Generated by `python scripts/results_table.py table` from docs/results/*.json (the records whose "
             "dataset is ferplus) and docs/benchmarks/cross_label.json: edit those or the code, not this file. -->", "",
             wrap(PROTOCOL), "", "## Every FER+ run", ""]
    if records:
        lines += ferplus_rows(records, training_cell_of, "")
        lines += ["", "| run | recipe | per-class F1 (official rule) | conclusion |", "|---|---|---|---|"]
        for name, e in records.items():
            per_class = ", ".join(f"{c} {v['f1']:.2f}" for c, v in e["test"].get("per_class", {}).items())
            lines.append(f"| `{name}` | {recipe_text(e)} | {per_class} | {e.get('conclusion', '')} |")
    else:
        lines.append("No FER+ run is recorded yet.")
    lines += ["", "## What the label change is worth", ""]
    if cross_label:
        lines += [wrap(cross_label["note"]), "", *cross_label_table(cross_label), "",
                  wrap(f"Top-1 with the faces counted in brackets; measured {cross_label['date']} by "
                        f"`{cross_label['command']}`.")]
    else:
        lines.append("Not measured yet: `python scripts/results_table.py record-cross-label` measures it.")
    return "\n".join(lines) + "\n"


def record_cross_label(ferplus_data: Path, fer2013_data: Path, models: dict[str, str], command: str,
                       batch_size: int = 256) -> dict:
    """Score each model (name: packaged name or .keras file) on PublicTest's paired faces under both datasets'
    labels (fer_lib.evaluation.cross_label) and return the table's data, FER2013's own labels as a first row."""
    import numpy as np

    from fer_lib import paths
    from fer_lib.data.dataset import load_dataset, load_eval_split
    from fer_lib.evaluation.cross_label import CONTEMPT_NOTE, cross_label_scores, paired_faces
    from fer_lib.evaluation.prediction import predict_probabilities
    from fer_lib.labels import EMOTIONS
    from fer_lib.models.saving import load_model, model_classes

    ferplus = load_dataset(ferplus_data).test
    fer2013 = load_eval_split(fer2013_data, "test").split
    if ferplus.votes is None:
        raise ValueError(f"{ferplus_data}: not FER+ (no votes); pass the FER+ folder as the first dataset")
    fp_rows, f13_rows = paired_faces(ferplus, fer2013)
    votes, labels = ferplus.votes[fp_rows], fer2013.labels[f13_rows]
    one_annotator = np.eye(len(EMOTIONS))[labels]
    table = {"FER2013's own label (one annotator)": {"images": "\u2014", "file": None,
                                                     "scores": cross_label_scores(one_annotator, votes, labels)}}
    for name, model in models.items():
        path = paths.resolve_model(model)
        loaded = load_model(path)
        eight = len(model_classes(loaded)) == 8
        images = ferplus.images[fp_rows] if eight else fer2013.images[f13_rows]
        probabilities = predict_probabilities(loaded, images, batch_size)
        table[name] = {"images": "FER+'s PNGs" if eight else "FER2013's JPEGs", "file": str(model),
                       "classes": list(model_classes(loaded)),
                       "scores": cross_label_scores(probabilities, votes, labels)}
    note = (f"PublicTest's faces as both datasets hold them: {len(fp_rows)} faces paired by their pixels "
            f"(of {len(ferplus)} FER+ Valid faces with an emotion as top vote and {len(fer2013)} FER2013 PublicTest "
            "faces). Each model sees the copy of the faces it was trained on (FER2013's contrast-equalized JPEGs or "
            f"FER+'s raw PNGs). {CONTEMPT_NOTE[0].upper()}{CONTEMPT_NOTE[1:]}. The first row scores FER2013's own "
            "label against the FER+ majority.")
    return {"date": date.today().isoformat(), "command": command, "pairs": int(len(fp_rows)), "note": note,
            "models": table}


def write_cross_label(data: dict, root: Path) -> Path:
    target = root / CROSS_LABEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")
    return target
