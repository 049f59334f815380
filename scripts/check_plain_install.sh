#!/usr/bin/env bash
# A plain `pip install .` (no extras) must give a working CLI: every command but `serve`, which says in
# one line what to install. Uses its own venv (default /tmp/netatlas-plain) with the pinned CPU torch first.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-/tmp/netatlas-plain}
PY=${PYTHON:-python3}
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q torch==2.13.0   # first: a bare torch requirement would pull a CUDA build
"$VENV/bin/python" -m pip install -q .
cli="$VENV/bin/netatlas"
"$cli" --help >/dev/null
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
extra = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m)]
sys.exit(f"plain install unexpectedly has the app extra: {extra}" if extra else 0)
PY
out=$(mktemp -d)
"$cli" demo --out "$out/demo" --epochs 30 >/dev/null
test -s "$out/demo/report.html"
set +e
msg=$("$cli" serve 2>&1); rc=$?
set -e
if [[ $rc -ne 1 || $(printf '%s\n' "$msg" | wc -l) -ne 1 || $msg != *"pip install 'netatlas[app]'"* ]]; then
  echo "plain install: 'netatlas serve' should exit 1 with one line naming the app extra; got rc=$rc: $msg" >&2
  exit 1
fi
rm -rf "$out" "$VENV"
echo "plain install: netatlas --help, demo and the serve message work without extras"
