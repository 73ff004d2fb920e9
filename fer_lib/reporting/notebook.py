"""The opening of every project notebook: quiet set-up, its run folder and its dataset."""

from __future__ import annotations

from pathlib import Path

from fer_lib import paths
from fer_lib.data.dataset import FerDataset

SYNTHETIC_BANNER = ("> **SYNTHETIC DEMO DATA.** These results come from generated faces, not FER2013; "
                    "they say nothing about real faces.")


def start_notebook(data: str | None, run_dir: str | None, *, seed: int,
                   synthetic: bool = False) -> tuple[Path, Path, FerDataset]:
    """(run folder, data path, dataset) from a notebook's parameters, with a banner on generated data.

    Without a run folder (a notebook opened by hand) its files go to reports/interactive; without
    data it is $FER_DATA, data/fer2013, else generated demo faces.
    """
    from IPython.display import Markdown, display

    from fer_lib.backend import setup_notebook
    from fer_lib.data.dataset import load_dataset, resolve_data_or_demo

    setup_notebook()
    folder = Path(run_dir or paths.REPORTS_DIR / "interactive")
    folder.mkdir(parents=True, exist_ok=True)
    data_path, _ = resolve_data_or_demo(data)
    dataset = load_dataset(data_path, seed=seed)
    _describe_figures()
    # The banner once, then the data in a sentence; notebook 01 shows the class counts as a table.
    display(Markdown("\n\n".join(([SYNTHETIC_BANNER] if synthetic or dataset.synthetic else []) + [data_paragraph(dataset)])))
    return folder, data_path, dataset


FORMATS = {"image-folders": "image folders", "csv": "fer2013.csv", "ferplus-folders": "FER+ folders and votes",
           "ferplus-csv": "FER+ votes"}


def data_paragraph(dataset: FerDataset) -> str:
    """The data in Markdown: source and format, how it was split, split sizes, classes, and what was skipped."""
    sizes = {name: len(dataset.split(name)) for name in ("train", "val", "test")}
    lines = [f"**Data:** `{dataset.source}` ({FORMATS.get(dataset.data_format, dataset.data_format)}): "
             f"{sizes['train']:,} training, {sizes['val']:,} validation and {sizes['test']:,} test faces of "
             f"{len(dataset.classes)} emotions ({', '.join(dataset.classes)}).",
             f"**Splits:** {dataset.protocol[:1].upper() + dataset.protocol[1:]}."]
    if dataset.skipped:
        from fer_lib.data.splits import skip_reasons

        reasons = "; ".join(f"{n} \u00d7 {reason}" for reason, n in skip_reasons(dataset.skipped).items())
        lines.append(f"**Skipped:** {len(dataset.skipped)} file(s) or row(s): {reasons}.")
    lines += [f"**Warning:** {warning}" for warning in dataset.warnings]
    return "\n\n".join(lines)


def _describe_figures() -> None:
    """Give matplotlib figures a plain-text form of their titles, which the HTML reports use as the images'
    alternative text (`pages.render_html`)."""
    from IPython import get_ipython
    from matplotlib.figure import Figure

    from fer_lib.reporting.figures import figure_description

    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/plain"].for_type(
            Figure, lambda fig, printer, cycle: printer.text(figure_description(fig)))
