"""The repository's own records and pages (no training): the generated pages are byte for byte what the
records render, the README stays short, every record follows the naming scheme."""

from __future__ import annotations

import re

from fer_lib.records import locations
from fer_lib.records.cells import recipe_text
from fer_lib.records.experiments import FINDINGS
from fer_lib.records.headline import headline_records
from fer_lib.records.inference_sections import yunet_verification
from fer_lib.records.naming import scheme_name
from fer_lib.records.pages import sections, stale_pages
from fer_lib.records.reading import has_teacher, is_ensemble, load_records, on_gpu, teacher_records

README_MAX_LINES = 200  # 180 before FER+ got its own paragraph, table and getting-the-data entry
README_MAX_LINE = 300
HEADLINE_MAX_ROWS = 8
# A measured figure: a percentage with decimals (settings such as "10%" are whole numbers), or a speed.
FIGURE = re.compile(r"\d+\.\d+ ?%")
SPEED = re.compile(r"\d[\d,.]* ?(?:ms|faces/s|crops/s|frames/s|images/s|TFLOP/s)\b")
# Settings that look like figures, by page: the export's parity gate.
SETTINGS = {"inference.md": ["99.5%"]}


def test_the_generated_pages_are_up_to_date_with_the_records():
    stale = stale_pages()
    assert not stale, f"{', '.join(map(str, stale))} out of date: run python scripts/results_table.py table"


def test_the_readme_is_a_short_first_page_with_the_headline_on_its_first_screen():
    lines = locations.README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES
    too_long = [(number, len(line)) for number, line in enumerate(lines, 1) if len(line) > README_MAX_LINE]
    assert not too_long, f"README lines over {README_MAX_LINE} characters (line, length): {too_long}"
    start, end = lines.index(locations.HEADLINE_START), lines.index(locations.HEADLINE_END)
    assert start < 15, "the headline figure belongs on the first screen"
    table = [line for line in lines[start:end] if line.startswith("| ") and not line.startswith("| model |")]
    assert 0 < len(table) <= HEADLINE_MAX_ROWS
    assert table[0].startswith("| **the packaged model**")
    assert lines.index("## Quick start") < 40
    text = "\n".join(lines)
    assert "shared/datasets" not in text  # the development machine's dataset path
    for heading in ("## Quick start", "## Getting FER2013 and FER+", "## Notebooks and the pipeline", "## Command line",
                    "## Python", "## Your photos and videos"):
        assert heading in lines


def test_figures_in_the_readme_and_docs_come_only_from_generated_parts():
    """Outside the blocks the script writes, the README and the docs quote no measured percentage or speed."""
    pages = [locations.README, locations.TRAINING_DOC, locations.INFERENCE_DOC, locations.GPU_DOC,
             *(locations.ROOT / "docs" / name for name in ("data.md", "pipeline.md", "development.md", "hardening.md"))]
    generated = [(locations.HEADLINE_START, locations.HEADLINE_END), (locations.QUICK_START, locations.QUICK_END),
                 (locations.SPEED_START, locations.SPEED_END), (locations.SPEED_NOTES_START, locations.SPEED_NOTES_END),
                 *map(locations.markers, (*locations.INFERENCE_SECTIONS, *locations.GPU_SECTIONS, "ferplus-headline"))]
    for page in pages:
        text = page.read_text()
        for start, end in generated:
            while start in text:
                head, rest = text.split(start, 1)
                text = head + rest.split(end, 1)[1]
        for setting in SETTINGS.get(page.name, []):
            text = text.replace(setting, "")
        found = FIGURE.findall(text) + SPEED.findall(text)
        assert not found, f"{page.name} quotes {found} by hand"


def test_every_section_rendered_from_the_benchmark_files_is_marked_on_its_page():
    rendered = {page: [name for name, _ in named] for page, named in sections(load_records()).items()}
    assert rendered == {locations.INFERENCE_DOC: list(locations.INFERENCE_SECTIONS),
                        locations.GPU_DOC: list(locations.GPU_SECTIONS)}
    for page, names in rendered.items():
        text = page.read_text()
        for start, end in map(locations.markers, names):
            assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end)


def test_every_record_is_in_the_experiments_page_with_its_recipe_and_conclusion():
    records = load_records()
    page = locations.EXPERIMENTS.read_text()
    every_run, details = page.split("## Every run")[1].split("## Run details")
    listed = [line.split("|")[1].strip().strip("`") for line in every_run.splitlines() if line.startswith("| `")]
    assert listed == list(records)
    assert [line.split("|")[1].strip().strip("`") for line in details.splitlines() if line.startswith("| `")] == list(records)
    for name, e in records.items():
        assert f"| `{name}` | {recipe_text(e)} |" in every_run
        conclusion = e.get("conclusion", "")
        assert conclusion.endswith(".") and ". " not in conclusion.rstrip("."), f"{name}: one sentence of conclusion"


def test_records_carry_their_recipe_as_data_and_follow_the_naming_scheme():
    from fer_lib.training.presets import PRESETS

    records = load_records(dataset=None)
    files = sorted(locations.RESULTS_DIR.glob("*.json"))
    assert [f.stem for f in files] == list(records), "each record's file is named after it"
    former = [n for e in records.values() for n in e.get("former_names", [])]
    assert len(former) == len(set(former)) and not set(former) & set(records)
    for dataset in ("fer2013", "ferplus"):  # one packaged model of each, at most
        assert len([e for e in records.values() if e.get("packaged") and e.get("dataset", "fer2013") == dataset]) <= 1
    assert len([e for e in records.values() if e.get("packaged") and "dataset" not in e]) == 1
    for name, e in records.items():
        recipe = e["recipe"]
        assert scheme_name(e, records) == name, f"{name}: the scheme names it {scheme_name(e, records)}"
        assert recipe.get("preset") is None or recipe["preset"] in PRESETS
        named = [recipe.get("init_from"), recipe.get("derived_from"), e.get("control"),
                 *recipe.get("ensemble_of", []), *teacher_records(e)]
        missing = [n for n in named if n and n not in records]
        assert not missing, f"{name} names records that do not exist: {missing}"
        assert set(e.get("findings", [])) <= set(FINDINGS)
        assert not e.get("findings") or e.get("control"), f"{name}: a finding needs a control to compare with"


def test_the_headline_rows_are_chosen_by_rule():
    records = load_records()
    chosen = {what.split(" (")[0]: e["name"] for what, e in headline_records(records)}
    packaged = next(e for e in records.values() if e.get("packaged"))
    assert chosen["**the packaged model**, used by `fer predict` and `predict_expression`"] == packaged["name"]
    ensembles = [e for e in records.values() if is_ensemble(e)]
    assert chosen["best ensemble"] == max(ensembles, key=lambda e: e["test_tta"]["top1_accuracy"])["name"]
    for kind, gpu in (("CPU", False), ("GPU", True)):
        best = records[chosen[f"best single model without a teacher, {kind}"]]
        assert not has_teacher(best["name"], records) and on_gpu(best) == gpu
        rivals = [e for e in records.values() if on_gpu(e) == gpu and not is_ensemble(e)
                  and not has_teacher(e["name"], records) and (e.get("test_tta") or {}).get("tta") == "tencrop"]
        assert all(e["test_tta"]["top1_accuracy"] <= best["test_tta"]["top1_accuracy"] for e in rivals)


def test_the_verification_table_marks_the_rule_used_and_sums_design_and_check_seeds():
    rule = {"onet_min": 0.2, "onet_min_unsure": 0.5, "drop_duplicates": True, "people_free": 0}
    data = {
        "date": "2026-12-05", "hardware": "Test CPU, 2 cores", "command": "python scripts/sweep_yunet_verification.py",
        "design_seeds": ["1", "2"], "check_seeds": ["0", "3"],
        "chosen": {"yunet_min": 0.5, "onet_min": 0.2, "onet_min_unsure": 0.5, "yunet_sure": 0.7},
        "scenes": {seed: {"scenes": 10, "faces": 40} for seed in "1203"},
        "mtcnn": {seed: {"found": 30, "false": 1, "inside": 0} for seed in "1203"}, "mtcnn_people_free": 0,
        "people_free_photos": ["coffee", "hubble_deep_field", "coins"],
        "rules": [
            {"yunet_min": 0.5, "onet_min": 0.0, "onet_min_unsure": None, "drop_duplicates": False, "people_free": 3,
             "seeds": {seed: {"found": 35, "false": 2, "inside": 1} for seed in "1203"}},
            {**rule, "yunet_min": 0.5, "seeds": {seed: {"found": 34, "false": 0, "inside": 1} for seed in "1203"}},
            {**rule, "yunet_min": 0.6, "seeds": {seed: {"found": 32, "false": 0, "inside": 0} for seed in "1203"}},
            # neither unchecked nor a checked rule with duplicates dropped: not shown
            {**rule, "yunet_min": 0.5, "drop_duplicates": False, "seeds": {seed: {"found": 1, "false": 0, "inside": 0}
                                                                           for seed in "1203"}},
        ]}
    lines = yunet_verification(data).splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| rule")]
    assert rows == [
        "| YuNet >= 0.5, unchecked | 70 (87.5%) · 4 · 2 | 35 (87.5%) · 2 · 1 | 35 (87.5%) · 2 · 1 | 70 (87.5%) · 4 · 2 | 3 |",
        "| **YuNet >= 0.5, O-Net >= 0.2, O-Net >= 0.5 under YuNet 0.7, duplicates dropped (used)** | 68 (85.0%) · 0 · 2 | "
        "34 (85.0%) · 0 · 1 | 34 (85.0%) · 0 · 1 | 68 (85.0%) · 0 · 2 | 0 |",
        "| YuNet >= 0.6, O-Net >= 0.2, O-Net >= 0.5 under YuNet 0.7, duplicates dropped | 64 (80.0%) · 0 · 0 | "
        "32 (80.0%) · 0 · 0 | 32 (80.0%) · 0 · 0 | 64 (80.0%) · 0 · 0 | 0 |",
        "| MTCNN | 60 (75.0%) · 2 · 0 | 30 (75.0%) · 1 · 0 | 30 (75.0%) · 1 · 0 | 60 (75.0%) · 2 · 0 | 0 |",
    ]
    assert lines[lines.index("") + 1] == ("| rule | design: seeds 1 + 2 | check: seed 0 | check: seed 3 | check: seeds 0 + 3 | "
                                          "3 people-free photos |")


def test_fer_records_checks_the_pages_and_shows_one_record(capsys):
    from fer_lib.cli import main

    assert main(["records", "check"]) == 0
    packaged = next(e for e in load_records().values() if e.get("packaged"))
    capsys.readouterr()
    assert main(["records", "show", packaged["name"]]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{packaged['name']} (fer2013, docs/results/{packaged['name']}.json)")
    assert f"recipe: {recipe_text(packaged)}" in shown and packaged["conclusion"] in shown
    assert main(["records", "show", "no_such_record"]) == 2
    assert "no record 'no_such_record'" in capsys.readouterr().err
