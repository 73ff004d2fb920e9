"""The pipeline's steps, declared once in fer_lib.reporting.steps: the notebooks follow it, the pipeline checks it."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from fer_lib import paths
from fer_lib.reporting import pipeline
from fer_lib.reporting.steps import HISTORY, MODEL, STEPS, file_parameters
from fer_lib.training.run_folder import HISTORY_FILE, MODEL_FILE


def parameters_cell(notebook: str) -> dict:
    """The names and default values of a notebook's `parameters` cell."""
    cells = nbformat.read(paths.NOTEBOOKS_DIR / f"{notebook}.ipynb", as_version=4).cells
    [cell] = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    values = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.notebook)
def test_each_notebook_declares_the_files_of_its_step_and_no_other(step):
    declared = {name: value for name, value in parameters_cell(step.notebook).items() if name.endswith("_file")}
    assert declared == {file.parameter: file.path for file in step.files}


def test_every_file_a_step_reads_is_written_by_an_earlier_step():
    written = set()
    for step in STEPS:
        assert not [f.path for f in step.reads if f not in written], step.notebook
        written.update(step.writes)


def test_the_model_files_are_where_a_training_run_puts_them():
    assert Path(MODEL.path).name == MODEL_FILE and Path(HISTORY.path).name == HISTORY_FILE
    assert Path(MODEL.path).parent == Path(HISTORY.path).parent


def test_every_notebook_gets_the_declared_files_as_parameters(tmp_path):
    config = pipeline.PipelineConfig(out=str(tmp_path))
    parameters = pipeline.notebook_parameters(config, tmp_path / "run", tmp_path, True, "smoke")
    assert file_parameters().items() <= parameters.items()
    assert pipeline.NOTEBOOKS == tuple(step.notebook for step in STEPS)


def test_a_missing_declared_output_is_one_line_naming_the_notebook_and_the_file(tmp_path):
    evaluation = STEPS[-1]
    (tmp_path / "metrics.json").write_text("{}")
    pipeline.check_outputs(evaluation, tmp_path, {"tta": "none"})  # metrics_tta.json is written only with TTA
    with pytest.raises(pipeline.PipelineError) as failure:
        pipeline.check_outputs(evaluation, tmp_path, {"tta": "flip"})
    message = str(failure.value)
    assert "04_evaluation.ipynb" in message and "metrics_tta.json" in message and "\n" not in message


def test_a_notebook_that_skips_a_declared_file_fails_the_run_and_keeps_latest(tmp_path, monkeypatch):
    def execute_without_writing(notebook: Path, executed: Path, parameters: dict, cwd: Path) -> None:
        executed.write_text("{}")

    monkeypatch.setattr(pipeline, "_execute", execute_without_writing)
    monkeypatch.setattr(pipeline, "resolve_data", lambda config: (tmp_path, True, "smoke"))
    with pytest.raises(pipeline.PipelineError, match=r"01_data_exploration\.ipynb finished without writing data_summary\.json"):
        pipeline.run_pipeline(pipeline.PipelineConfig(out=str(tmp_path / "reports")), progress=lambda _: None)
    assert not (tmp_path / "reports" / "latest").exists()
