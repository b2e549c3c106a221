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

.PHONY: demo test lint bench drivejepa-model
demo: $(VENV)/.installed
	$(VENV)/bin/harness demo --out results/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check harness teachers scenarios tests benchmarks leaderboard srunner agents drivejepa
	$(VENV)/bin/mypy harness teachers scenarios drivejepa

bench: $(VENV)/.installed
	for f in benchmarks/bench_*.py; do $(PY) $$f; done

# The default DriveJEPA checkpoint agents/drivejepa/model.pt, made by the project's own commands
# on the CPU (2 cores): data (~26 min, not counted in the 1 h training budget), JEPA pretraining
# (~21 min), planner (~23 min), one aggregation round (~15 min). Figures, data and routes:
# agents/drivejepa/MODEL_CARD.md. Every step resumes where it stopped.
DJ ?= results/drivejepa
drivejepa-model: $(VENV)/.installed
	$(VENV)/bin/harness collect --out $(DJ)/data --workers 2 $(if $(wildcard $(DJ)/data/settings.json),--resume)
	$(VENV)/bin/harness train pretrain $(DJ)/data --out $(DJ)/encoder --epochs 3 $(if $(wildcard $(DJ)/encoder/checkpoint.pt),--resume)
	$(VENV)/bin/harness train planner $(DJ)/data --encoder $(DJ)/encoder/encoder.pt --out $(DJ)/planner --epochs 3 $(if $(wildcard $(DJ)/planner/train_state.pt),--resume)
	$(VENV)/bin/harness train aggregate $(DJ)/data --checkpoint $(DJ)/planner/model.pt --rounds 1 --routes-per-round 2 --max-drive-s 90 --out $(DJ)/aggregate $(if $(wildcard $(DJ)/aggregate/settings.json),--resume)
	mkdir -p agents/drivejepa && cp $(DJ)/aggregate/best.pt agents/drivejepa/model.pt
