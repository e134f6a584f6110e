VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# What `make install` installs, exactly: the dev lock (extras cpu,dev,langchain,lm).
LOCK ?= requirements/dev.txt
LOCOMO ?= ../shared/bench/locomo/locomo_dev.json

# `make lock`: pip-tools (pinned in requirements/tools.txt) in its own venv.
TOOLS_VENV ?= .venv-tools
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make $@" $(TOOLS_VENV)/bin/pip-compile --quiet --no-config \
	--allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url
# `make lock UPGRADE="name other"` re-resolves those packages; `make lock UPGRADE_ALL=1` everything.
UPGRADE ?=
UPGRADE_ALL ?=
UPGRADE_FLAGS := $(if $(UPGRADE_ALL),--upgrade) $(foreach p,$(UPGRADE),--upgrade-package $(p))

.PHONY: install lock lock-tools check-lock run test bench lint

## Install exactly $(LOCK) into $(VENV) (llama-cpp-python built portably, see scripts/install.sh).
## The stamp records the lock and CMAKE_ARGS: another lock or other llama.cpp flags reinstall too.
$(STAMP): pyproject.toml $(LOCK) scripts/install.sh scripts/check_lock.py
	scripts/install.sh $(VENV) $(LOCK)
	printf '%s\nCMAKE_ARGS=%s\n' '$(LOCK)' "$$CMAKE_ARGS" > $(STAMP)
ifneq ($(strip $(shell cat $(STAMP) 2>/dev/null)),$(strip $(LOCK) CMAKE_ARGS=$(CMAKE_ARGS)))
.PHONY: $(STAMP)
endif

install: $(STAMP)

## Compare $(VENV) with $(LOCK), both ways; exits 1 on any difference.
check-lock:
	@test -x $(PY) || { echo "check-lock: no $(VENV); run make install"; exit 1; }
	$(PY) scripts/check_lock.py $(LOCK)

$(TOOLS_VENV)/.installed-stamp: requirements/tools.txt
	test -x $(TOOLS_VENV)/bin/python || python3 -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --no-deps -r requirements/tools.txt
	touch $@

## Regenerate the lock files from pyproject.toml (existing pins are kept unless UPGRADE/UPGRADE_ALL).
## The runtime locks (Dockerfile) are constrained to the dev lock, so shared packages agree.
lock: $(TOOLS_VENV)/.installed-stamp
	$(PIP_COMPILE) $(UPGRADE_FLAGS) --extra=cpu,dev,langchain,lm --output-file=requirements/dev.txt pyproject.toml
	$(PIP_COMPILE) --extra=cpu --constraint=requirements/dev.txt --output-file=requirements/runtime.txt pyproject.toml
	$(PIP_COMPILE) --extra=cpu,lm --constraint=requirements/dev.txt --output-file=requirements/runtime-lm.txt pyproject.toml
	@grep -q '^torch==.*+cpu' requirements/dev.txt || { echo "lock: torch is not the CPU build; give pip PyTorch's CPU wheels (PIP_FIND_LINKS or PIP_EXTRA_INDEX_URL, see README, Install)"; exit 1; }

## Re-pin the lock tools themselves (requirements/tools.in -> requirements/tools.txt).
lock-tools: $(TOOLS_VENV)/.installed-stamp
	$(PIP_COMPILE) $(UPGRADE_FLAGS) --output-file=requirements/tools.txt requirements/tools.in

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
