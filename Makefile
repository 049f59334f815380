# Two commands for a fresh machine: `make demo` (the main job) and `make test` (lint + full test suite).
.PHONY: setup demo test lint bench docs

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/netatlas demo

lint: setup
	.venv/bin/ruff check src tests benchmarks docs

test: setup lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -n 2 -q --durations=10

bench: setup
	.venv/bin/python benchmarks/regions.py
	.venv/bin/python benchmarks/metric.py

docs: setup
	bash scripts/docs.sh
