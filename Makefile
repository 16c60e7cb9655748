# lbx: `make demo` and `make test` do everything on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster
export LBX_DUCKDB_PATH ?= $(CURDIR)/data/lbx.duckdb
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test ui install lint eval bench snapshot dbt-parse clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $@

dbt-parse: install
	cd dbt_features && ../$(BIN)/dbt --quiet parse --profiles-dir .

demo: install dbt-parse $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lbx demo

ui: install dbt-parse $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

test: install dbt-parse $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ruff check .
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/python -m pytest -q

# the same two commands as .pre-commit-config.yaml
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: install
	$(BIN)/python scripts/write_evaluation.py docs/evaluation.md

# 200 and 1,000 synthetic users through the real graph, fold-in, `lbx recs`, nightly increment,
# and the TMDb client at its rate limit (about 100 s); results in benchmarks/results/
bench: install dbt-parse
	$(BIN)/python benchmarks/run.py --sizes $(or $(SIZES),200,1000)

snapshot: install
	$(BIN)/python scripts/build_tmdb_snapshot.py

clean:
	rm -rf data .dagster dbt_features/target dbt_features/logs
