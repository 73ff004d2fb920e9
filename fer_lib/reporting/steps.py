"""The pipeline's steps, declared once: each notebook, the files it reads and the files it writes.

`fer pipeline` runs the steps in this order and passes every file to the notebooks as a
parameter, `<key>_file`, a path relative to the run folder (a notebook's `parameters` cell
declares the files of its step, with these paths as defaults for a run by hand). After each
notebook it checks that the files the step writes are there; the landing page links the
steps' reports and reads their files from here too. tests/reporting/test_steps.py checks
that the notebooks declare what is declared here, and that every file read was written before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RunFile:
    """A file in the run folder that one notebook hands to the next (or to the landing page)."""

    key: str  # the notebooks' parameter is `<key>_file`
    path: str  # relative to the run folder
    description: str
    needed: Callable[[dict], bool] | None = None  # written only when this says so of the pipeline's parameters

    @property
    def parameter(self) -> str:
        return f"{self.key}_file"

    def expected(self, parameters: dict) -> bool:
        return self.needed is None or bool(self.needed(parameters))


@dataclass(frozen=True)
class Step:
    notebook: str  # its name in notebooks/, without .ipynb; also the name of its HTML report
    title: str
    reads: tuple[RunFile, ...] = ()
    writes: tuple[RunFile, ...] = ()

    @property
    def files(self) -> tuple[RunFile, ...]:
        return self.reads + self.writes


DATA_SUMMARY = RunFile("data_summary", "data_summary.json", "the data's source, protocol, split sizes and quality checks")
TRIALS = RunFile("trials", "trials.csv", "every trial of the hyperparameter search")
BEST_HYPERPARAMETERS = RunFile("best_hyperparameters", "best_hyperparameters.json",
                               "the search's best trial, which notebook 03 trains unless given a preset")
MODEL = RunFile("model", "model/model.keras", "the trained model (its run folder, model/, holds config.json and the rest)")
HISTORY = RunFile("history", "model/history.csv", "the training curves, epoch by epoch")
METRICS = RunFile("metrics", "metrics.json", "the test-split metrics, without test-time augmentation")
METRICS_TTA = RunFile("metrics_tta", "metrics_tta.json", "the test-split metrics with the `tta` parameter's augmentation",
                      needed=lambda parameters: parameters.get("tta", "none") != "none")

STEPS = (
    Step("01_data_exploration", "Data exploration", writes=(DATA_SUMMARY,)),
    Step("02_hyperparameter_search", "Hyperparameter search", writes=(TRIALS, BEST_HYPERPARAMETERS)),
    Step("03_training", "Training", reads=(BEST_HYPERPARAMETERS,), writes=(MODEL, HISTORY)),
    Step("04_evaluation", "Evaluation", reads=(MODEL,), writes=(METRICS, METRICS_TTA)),
)


def file_parameters() -> dict[str, str]:
    """Every step's files as notebook parameters: {`<key>_file`: path in the run folder}."""
    return {file.parameter: file.path for step in STEPS for file in step.files}
