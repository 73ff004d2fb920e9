"""The pipeline's HTML pages: each executed notebook rendered as a report, with its title, links to the
index and its neighbours and its figures' alternative text, and the run's landing page (index.html).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from fer_lib.artifacts import write_text_atomic
from fer_lib.reporting.steps import DATA_SUMMARY, METRICS, METRICS_TTA, STEPS, Step

CONFIG = "pipeline_config.json"


NAV_STYLE = ("<style>.fer-nav{font-family:system-ui,sans-serif;padding:.6em 1em;display:flex;gap:1.5em;"
             "flex-wrap:wrap;border-bottom:1px solid #ddd}.fer-nav.bottom{border-top:1px solid #ddd;border-bottom:0}</style>")
NO_ALT = 'alt="No description has been provided for this image"'


def render_html(executed: Path, target: Path, with_code: bool, title: str | None = None,
                links: list[tuple[str, str]] = ()) -> None:
    """Render an executed notebook to standalone HTML, code hidden unless `with_code`, titled `title`, with
    `links` ((href, text), e.g. back to the index and on to the next report) above and below it, and each
    figure's titles as its alternative text."""
    import re

    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    if title:
        notebook.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = not with_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(notebook)
    descriptions = iter(figure_alt_texts(notebook))
    body = re.sub(re.escape(NO_ALT), lambda _: f'alt="{html.escape(next(descriptions, "Figure"))}"', body)
    if links:
        nav = " ".join(f"<a href='{html.escape(href)}'>{html.escape(text)}</a>" for href, text in links)
        body = re.sub(r"(<body[^>]*>)", lambda m: f"{m.group(1)}\n{NAV_STYLE}<nav class='fer-nav'>{nav}</nav>", body, count=1)
        body = body.replace("</body>", f"<nav class='fer-nav bottom'>{nav}</nav>\n</body>", 1)
    write_text_atomic(target, body)


def figure_alt_texts(notebook) -> list[str]:
    """The plain-text form of each image output, in order (fer_lib's notebooks give figures their titles
    there: `reporting.notebook.start_notebook`); "Figure" where it is only matplotlib's repr."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if "image/png" in data:
                text = str(data.get("text/plain", "")).strip()
                texts.append("Figure" if not text or text.startswith("<Figure") else text)
    return texts


def report_links(index: int) -> list[tuple[str, str]]:
    """The links atop step `index`'s report (0-based): the index page, the previous report and the next."""
    links = [("index.html", "\u2190 All reports (index)")]
    if index > 0:
        links.append((f"{STEPS[index - 1].notebook}.html", f"\u2190 {index}. {STEPS[index - 1].title}"))
    if index + 1 < len(STEPS):
        links.append((f"{STEPS[index + 1].notebook}.html", f"Next: {index + 2}. {STEPS[index + 1].title} \u2192"))
    return links


def read_json_or_empty(path: Path) -> dict:
    """The JSON object in `path`, or {} where it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def landing_page(run_dir: Path, summary: dict, parameters: dict) -> str:
    """index.html: banner, headline metrics, links to the reports, config, timings and data."""
    from fer_lib.evaluation.metrics import ORIGINAL_README, compares_with_original

    metrics = read_json_or_empty(run_dir / METRICS.path)
    data_summary = read_json_or_empty(run_dir / DATA_SUMMARY.path)
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>FER pipeline report</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
        "th:first-child,td:first-child{text-align:left}.banner{background:#b00020;color:#fff;padding:1em;font-weight:bold;"
        "font-size:1.2em;border-radius:6px}pre{background:#f6f6f6;padding:1em;overflow:auto}",
        "</style></head><body>",
    ]
    if summary.get("synthetic"):
        parts.append("<div class='banner'>SYNTHETIC DEMO DATA: these reports were made on generated faces, "
                     "not FER2013. The metrics say nothing about real faces.</div>")
    parts.append(f"<h1>FER pipeline report</h1><p>Run <code>{e(run_dir.name)}</code>, profile <b>{e(summary['profile'])}</b>.</p>")
    parts.append("<h2>Headline metrics (test split)</h2>")
    if metrics:
        keys = [("Top-1", "top1_accuracy"), ("Top-2", "top2_accuracy"), ("Precision (macro)", "precision_macro"),
                ("Recall (macro)", "recall_macro"), ("F1 (macro)", "f1_macro")]
        parts.append("<table><tr><th></th>" + "".join(f"<th>{t}</th>" for t, _ in keys) + "</tr>")
        parts.append("<tr><td>this run</td>" + "".join(f"<td>{metrics[k]:.2%}</td>" for _, k in keys) + "</tr>")
        tta_metrics = read_json_or_empty(run_dir / METRICS_TTA.path)
        if tta_metrics:
            parts.append(f"<tr><td>this run, {e(str(tta_metrics.get('tta')))} TTA</td>"
                         + "".join(f"<td>{tta_metrics[k]:.2%}</td>" for _, k in keys) + "</tr>")
        if compares_with_original(metrics, bool(summary.get("synthetic"))):
            parts.append("<tr><td>original README</td>" + "".join(f"<td>{ORIGINAL_README[k]:.2%}</td>" for _, k in keys) + "</tr>")
        parts.append("</table>")
    else:
        parts.append(f"<p>No {e(METRICS.path)} was written.</p>")
    parts.append("<h2>Reports</h2><table><tr><th>report</th><th>time</th></tr>")
    for step, seconds in timing_rows(summary):
        name = f"<a href='{e(step.notebook)}.html'>{e(step.title)}</a>" if isinstance(step, Step) else e(step)
        parts.append(f"<tr><td>{name}</td><td>{seconds:.1f} s</td></tr>")
    attempts = len(summary.get("attempts", []))
    spread = (f" in {attempts} attempts (a resumed notebook shows its last attempt's time)" if attempts > 1 else "")
    parts.append(f"<tr><th>total</th><th>{summary['total_s']:.1f} s</th></tr></table>"
                 f"<p>Total {summary['total_s']:.1f} s{spread}.</p>")
    parts.append(f"<h2>Data</h2><p>Source: <code>{e(str(summary['data']))}</code></p>")
    if data_summary:
        parts.append(f"<p>{e(data_summary.get('protocol', ''))}</p>")
        sizes = data_summary.get("sizes", {})
        parts.append("<p>" + ", ".join(f"{e(k)}: {v}" for k, v in sizes.items()) + "</p>")
    parts.append("<h2>Configuration</h2><table>")
    parts += [f"<tr><td>{e(label)}</td><td>{e(value)}</td></tr>"
              for label, value in configuration_rows(parameters, votes=bool(data_summary.get("votes")))]
    parts.append(f"</table><p>Every parameter the notebooks were given is in <a href='{CONFIG}'>{CONFIG}</a>.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def timing_rows(summary: dict) -> list[tuple[Step | str, float]]:
    """(step, seconds) for each report, then what else the run's time went to, so the rows add up to its total."""
    rows = [(step, float(summary["timings_s"].get(step.notebook, 0.0))) for step in STEPS]
    rest = round(float(summary.get("total_s", 0.0)) - sum(seconds for _, seconds in rows), 1)
    if rest > 0:
        what = ("rendering the reports, and the earlier attempts' unfinished notebooks"
                if len(summary.get("attempts", [])) > 1 else "rendering the reports and this page")
        rows.append((what, rest))
    return rows


# The landing page's configuration table: parameter, its label. Others but the file parameters follow by name.
CONFIGURATION_LABELS = {
    "profile": "profile", "data": "data", "synthetic": "generated demo data", "seed": "seed",
    "preset": "trained preset (instead of the search's best)", "search_space": "search space", "tuner": "tuner",
    "max_trials": "search trials", "tuner_max_epochs": "epochs per trial",
    "tuning_max_train_images": "training faces per trial", "tuner_time_budget": "search time budget (s)",
    "epochs": "final training epochs", "epochs_scale": "recipe's epochs scaled by", "batch_size": "batch size",
    "max_train_images": "training faces (final training)", "early_stopping_patience": "early-stopping patience (epochs)",
    "time_budget": "training time budget (s)", "data_parallel": "data-parallel over several GPUs",
    "tta": "test-time augmentation", "label_mode": "FER+ labels trained towards", "majority_rule": "FER+ majority rule",
    "fer2013_data": "FER2013 data compared with FER+", "tensorboard": "TensorBoard logs", "mlflow_uri": "MLflow tracking URI",
    "tuner_dir": "search state folder", "tuner_overwrite": "search restarted",
}
INTERNAL_PARAMETERS = {"run_dir", "resume_training"}  # the run folder is named above the table


def configuration_rows(parameters: dict, votes: bool = False) -> list[tuple[str, str]]:
    """The pipeline's parameters as (label, value) rows in words: unset and off ones left out, and FER+'s label
    settings on other data; the file parameters are the steps' (fer_lib.reporting.steps), the same every run."""
    rows = []
    ordered = [k for k in CONFIGURATION_LABELS if k in parameters] + \
        [k for k in parameters if k not in CONFIGURATION_LABELS and not k.endswith("_file") and k not in INTERNAL_PARAMETERS]
    for key in ordered:
        value = parameters[key]
        if value is None or value is False or value == "" or (key in ("label_mode", "majority_rule") and not votes):
            continue
        if key == "epochs_scale" and value == 1:
            continue
        shown = "yes" if value is True else (f"{value:,}" if isinstance(value, int) and key != "seed" else str(value))
        rows.append((CONFIGURATION_LABELS.get(key, key), shown))
    return rows
