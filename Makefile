# Two commands: `make train` and `make test`. Both create .venv (Python 3.11) and install the project.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test compare bench install clean

# Installs the project (editable) with its test tools; reruns only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Train the default model (ridge_residual: ridge plus E-GEX's network on what it misses) on the embedded
## synthetic data and print the final metrics.
train: $(STAMP)
	$(BIN)/python -m src.train $(ARGS)

## Run the whole test suite: two workers (pytest-xdist), each test file in one of them; ARGS="-n 0" runs it
## in one process.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope $(ARGS)

## Every baseline, D-GEX and E-GEX on the synthetic data, then the report (outputs/compare/<time>/report.md).
compare: $(STAMP)
	$(BIN)/python -m src.train experiment=compare $(ARGS)

## Every benchmark in bench/ (GEO preprocessing, training throughput, memory), results in docs/BENCHMARKS.md.
## `make bench ARGS=--quick` checks in a few minutes that they all run.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(ARGS)

## Remove the environment and everything runs wrote (outputs/: run folders, sweeps, generated and cached data).
clean:
	rm -rf $(VENV) outputs/train outputs/eval outputs/predict outputs/compare outputs/dgex outputs/dgex_grid outputs/egex_staged outputs/data
