# Two commands for a fresh machine: `make demo` (the main job) and `make test` (lint + full test suite).
.PHONY: setup demo test lint bench bench-big docs

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

# ~10^7 regions in one tiled slice (tens of minutes; rerun to resume): count, wall/CPU time, peak memory
bench-big: setup
	/usr/bin/time -v .venv/bin/python benchmarks/big_slice.py --out runs/big_slice

docs: setup
	bash scripts/docs.sh
