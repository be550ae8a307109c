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

# Every benchmark in bench/, one after another, about 30 minutes on 2 cores (web_servers.py needs
# wrk: apt-get install wrk); writes
# docs/benchmarks.md (machine, date, each figure beside its floor; prose from
# docs/benchmark-notes.md). BENCH_ARGS=--quick: small sizes in a few minutes, written to
# var/benchmarks-quick.md; BENCH_ARGS="--only NAME" runs one again, BENCH_ARGS=--rewrite
# rewrites the file after the notes change (bench/run_all.py --help).
bench: setup
	$(PY) bench/run_all.py $(BENCH_ARGS)
