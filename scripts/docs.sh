#!/usr/bin/env bash
# Build the documentation site into site/, offline: run the tutorials (their outputs and figures go to
# docs/gallery/), then `mkdocs build --strict` (any warning — a broken link or cross-reference, a stale
# tutorial — fails the build). Uses .venv when it exists, else the python on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" NO_MKDOCS_2_WARNING=1
"$PY" docs/run_tutorials.py
start=$(date +%s)
"$PY" -m mkdocs build --strict --site-dir site "$@"
echo "site/ built in $(( $(date +%s) - start )) s (mkdocs only)"
