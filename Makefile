# lbx: `make demo` and `make test` do everything on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# dg compares the active virtualenv with the project's .venv and warns when none is active: this is it
DG := VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/dg
export DAGSTER_HOME := $(CURDIR)/.dagster
export LBX_DUCKDB_PATH ?= $(CURDIR)/data/lbx.duckdb
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo demo-distributed test ui install lint eval bench bench-web serve snapshot dbt-parse clean chromium

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

# the instance configuration lives in config/ and is copied into DAGSTER_HOME: a dagster.yaml in
# the folder `dg dev` starts from would be ignored (and warned about)
$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp config/dagster.yaml $@

# parsed with the vars the dbt asset passes, so that its `dbt build` can reuse this parse
dbt-parse: install
	cd dbt_features && ../$(BIN)/dbt --quiet parse --profiles-dir . --vars '{"lbx_duckdb_path": "$(abspath $(LBX_DUCKDB_PATH))"}'

demo: install dbt-parse $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lbx demo

# the distributed profile on loopback: Postgres, Redis and an S3 stand-in (installed and started by
# scripts/services.sh), two Celery workers, DuckLake on Postgres + S3; data/distributed/summary.json
demo-distributed: install dbt-parse
	$(BIN)/python scripts/demo_distributed.py

ui: install dbt-parse $(DAGSTER_HOME)/dagster.yaml
	$(DG) dev

# the browser test drives Debian's chromium (Playwright downloads no browser here); CI runs as root
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

test: install dbt-parse chromium $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(DG) check defs
	$(BIN)/python -m pytest -q

# the same two commands as .pre-commit-config.yaml
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: install
	LBX_THREADS=$${LBX_THREADS:-1} $(BIN)/python scripts/write_evaluation.py docs/evaluation.md

# 200 and 1,000 synthetic users through the real graph, fold-in, `lbx recs`, nightly increment,
# and the TMDb client at its rate limit (about 100 s); results in benchmarks/results/
bench: install dbt-parse
	$(BIN)/python benchmarks/run.py --sizes $(or $(SIZES),200,1000)
	@if [ -f "$(LBX_DUCKDB_PATH)" ]; then $(BIN)/python benchmarks/web_load.py; \
	else echo "web load benchmark skipped: no warehouse at $(LBX_DUCKDB_PATH) (make demo, then make bench-web)"; fi

# 50 concurrent clients on loopback against `lbx serve`, also while another process writes the
# warehouse, and one 1,000-film upload; needs `make demo` first; results in benchmarks/results/web_load.json
bench-web: install
	$(BIN)/python benchmarks/web_load.py

# film search: 175 queries made from the demo warehouse, MRR and recall@10 per kind for each
# dense retriever; needs `make demo` first; results in benchmarks/results/search.json (docs/search.md)
bench-search: install
	$(BIN)/python benchmarks/search_bench.py --db $(LBX_DUCKDB_PATH)

serve: install
	$(BIN)/lbx serve

snapshot: install
	$(BIN)/python scripts/build_tmdb_snapshot.py

clean:
	rm -rf data .dagster dbt_features/target dbt_features/logs
