#!/usr/bin/env bash
# Create .venv (once) with the pinned CPU torch first, then netatlas and its extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.netatlas-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, exactly this version: a bare `torch` requirement would fetch a multi-GB CUDA build.
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e ".[app,bench,dev,docs]"
  # Compile the numba kernels once now, so no later process pays for it (cached beside the sources).
  .venv/bin/python -m netatlas.regions._warm
  touch "$stamp"
fi
