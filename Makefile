# Two commands: `make run` serves the platform on embedded defaults, `make test` runs the suite.
# Both create .venv and install the pinned requirements the first time (and again only when
# a requirements file changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup lint format migrate eval bench

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py serve

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Retrieval quality on ../shared/eval (DRCD, Cranfield) through the platform's own ingestion.
eval: setup
	$(PY) bench/evaluate_retrieval.py $(EVAL_ARGS)

# Every benchmark in bench/, one after another (BENCH_ARGS=--quick for small sizes); each prints
# its machine and figures. Their results are recorded in docs/benchmarks.md.
bench: setup
	$(PY) bench/run_all.py $(BENCH_ARGS)
