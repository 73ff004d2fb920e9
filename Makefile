# Two commands on a fresh machine: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name fer-lib --display-name "Python (fer_lib)" >/dev/null
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,transfer,export,tracking]'
	$(BIN)/python -m ipykernel install --sys-prefix --name fer-lib --display-name "Python (fer_lib)" >/dev/null
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/fer pipeline $(if $(PROFILE),--profile $(PROFILE))

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

# Every test but those marked slow (training runs, exports, the notebooks, subprocesses): under 2 minutes on 2 cores.
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not slow"

# pyflakes, bugbear, isort and pyupgrade over the code (pyproject.toml [tool.ruff]).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
