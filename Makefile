# Two entry points for a fresh clone: `make demo` (the main job, end to end, embedded backend)
# and `make test` (the test suite). Both create .venv and install the project first.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: 2.13.0 is a local CPU build here; other versions pull CUDA wheels
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.PHONY: demo test lint bench
demo: $(VENV)/.installed
	$(VENV)/bin/harness demo --out results/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check harness teachers scenarios tests benchmarks
	$(VENV)/bin/mypy harness teachers scenarios

bench: $(VENV)/.installed
	for f in benchmarks/bench_*.py; do $(PY) $$f; done
