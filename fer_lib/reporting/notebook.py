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
    if synthetic or dataset.synthetic:  # demo faces carry the generator's marker, so dataset.synthetic covers them
        display(Markdown(SYNTHETIC_BANNER))
    print(dataset.describe())
    return folder, data_path, dataset
