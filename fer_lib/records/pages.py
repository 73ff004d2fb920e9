"""Every generated page at once: README.md and the docs/ pages with their marked sections renewed,
docs/experiments.md and docs/ferplus.md whole; `write_pages` writes them, `stale_pages` lists the out-of-date ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_lib.records import locations
from fer_lib.records.cells import recipe_text, training_cell
from fer_lib.records.experiments import experiments
from fer_lib.records.face_sections import alignment_section, false_faces_section
from fer_lib.records.gpu_sections import gpu_op_by_op, gpu_run
from fer_lib.records.headline import headline, quick_start
from fer_lib.records.inference_sections import (
    detector_settings,
    detectors_section,
    export_parity,
    fer_package_speed,
    framing_table,
    runtimes_section,
    serving_precision,
    yunet_calibration,
    yunet_verification,
)
from fer_lib.records.locations import (
    HEADLINE_END,
    HEADLINE_START,
    QUICK_END,
    QUICK_START,
    SPEED_END,
    SPEED_NOTES_END,
    SPEED_NOTES_START,
    SPEED_START,
    markers,
)
from fer_lib.records.reading import is_ferplus, load_records
from fer_lib.records.training_sections import speed_notes, speed_table


def _json_file(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def sections(records: dict[str, dict]) -> dict[Path, list[tuple[str, callable]]]:
    """Per page, its marked sections rendered from docs/benchmarks/ (and the records): (name, render), where the
    data file is there."""
    detectors, runtimes, calibration = _json_file(locations.DETECTORS_FILE), _json_file(locations.RUNTIMES_FILE), _json_file(locations.CALIBRATION_FILE)
    verification, serving = _json_file(locations.VERIFICATION_FILE), _json_file(locations.SERVING_PRECISION_FILE)
    false_faces, aligned = _json_file(locations.FALSE_FACES_FILE), _json_file(locations.ALIGNMENT_FILE)
    export, fer_package, gpu = _json_file(locations.EXPORT_FILE), _json_file(locations.FER_PACKAGE_FILE), _json_file(locations.GPU_RUN_FILE)
    inference = [
        ("yunet-calibration", calibration and (lambda: yunet_calibration(calibration))),
        ("yunet-verification", verification and (lambda: yunet_verification(verification))),
        ("inference-detectors", detectors and (lambda: detectors_section(detectors))),
        ("detector-settings", calibration and (lambda: detector_settings(calibration))),
        ("detector-framing", calibration and (lambda: framing_table(calibration))),
        ("fer-package-speed", fer_package and (lambda: fer_package_speed(fer_package, records))),
        ("export-parity", export and (lambda: export_parity(export, records))),
        ("inference-runtimes", runtimes and (lambda: runtimes_section(runtimes, export))),
        ("serving-precision", serving and (lambda: serving_precision(serving))),
        ("false-faces", false_faces and (lambda: false_faces_section(false_faces))),
        ("face-alignment", aligned and (lambda: alignment_section(aligned))),
    ]
    gpu_sections = [
        ("gpu-op-by-op", gpu and (lambda: gpu_op_by_op(gpu, records))),
        ("gpu-run", gpu and (lambda: gpu_run(gpu, records, _json_file(locations.GPU_CPU_SPEED_FILE)))),
    ]
    return {locations.INFERENCE_DOC: [(n, r) for n, r in inference if r], locations.GPU_DOC: [(n, r) for n, r in gpu_sections if r]}


def _replace_between(text: str, start: str, end: str, body: str, where: Path) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{where}: no {start} ... {end} markers; add them where the text belongs")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def generated() -> dict[Path, str]:
    """Every generated file's text: README.md and docs/ pages with their marked parts renewed, docs/experiments.md
    and docs/ferplus.md whole."""
    from fer_lib.records.ferplus import ferplus_headline, ferplus_page

    everything = load_records(dataset=None)
    records = {name: e for name, e in everything.items() if not is_ferplus(e)}
    ferplus = {name: e for name, e in everything.items() if is_ferplus(e)}
    cross_label = _json_file(locations.CROSS_LABEL_PATH)
    pages = {}
    if locations.README.is_file():
        text = _replace_between(locations.README.read_text(), HEADLINE_START, HEADLINE_END, headline(records), locations.README)
        if markers("ferplus-headline")[0] in text:
            text = _replace_between(text, *markers("ferplus-headline"), ferplus_headline(ferplus, "docs/", cross_label), locations.README)
        if locations.QUICK_START_FILE.is_file() and QUICK_START in text:
            text = _replace_between(text, QUICK_START, QUICK_END,
                                    quick_start(json.loads(locations.QUICK_START_FILE.read_text()), records), locations.README)
        pages[locations.README] = text
    if locations.TRAINING_DOC.is_file():
        text = locations.TRAINING_DOC.read_text()
        if locations.SPEED_FILE.is_file():
            text = _replace_between(text, SPEED_START, SPEED_END, speed_table(json.loads(locations.SPEED_FILE.read_text())),
                                    locations.TRAINING_DOC)
        if locations.SPEED_NOTES_FILE.is_file():
            text = _replace_between(text, SPEED_NOTES_START, SPEED_NOTES_END,
                                    speed_notes(json.loads(locations.SPEED_NOTES_FILE.read_text())), locations.TRAINING_DOC)
        pages[locations.TRAINING_DOC] = text
    for page, rendered in sections(records).items():
        if page.is_file():
            text = page.read_text()
            for name, render in rendered:
                text = _replace_between(text, *markers(name), render(), page)
            pages[page] = text
    pages[locations.EXPERIMENTS] = experiments(records)
    pages[locations.FERPLUS_DOC] = ferplus_page(ferplus, cross_label, recipe_text, training_cell_of=lambda n: training_cell(n, everything))
    return pages


def write_pages() -> list[Path]:
    written = []
    for path, text in generated().items():
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written


def stale_pages() -> list[Path]:
    return [path for path, text in generated().items() if not path.is_file() or path.read_text() != text]
