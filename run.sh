#!/usr/bin/env bash
# aqaa_ref: one entry point that sets everything up, then runs what you asked for.
#
#   ./run.sh demo    set up, then run the demo (python -m aqaa_ref demo)
#   ./run.sh test    set up, then run every test: unit tests and nbval over every notebook
#   ./run.sh lab     set up, then open JupyterLab on notebooks/
#
# Setup = a virtual environment in .venv (or $AQAA_VENV) with the package and its dev
# extra installed from pyproject.toml; repeated only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${AQAA_VENV:-.venv}"

find_python() {
  for py in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 10))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "error: Python 3.11 (or 3.10+) not found; install it or set PYTHON=/path/to/python3.11" >&2
  return 1
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    local py; py="$(find_python)"
    echo "[setup] creating $VENV with $("$py" --version)"
    "$py" -m venv "$VENV"
  fi
  local stamp="$VENV/.aqaa-installed" want
  want="$(cat pyproject.toml | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest())')"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing aqaa_ref and its dependencies into $VENV (torch is a large download the first time)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

cmd="${1:-demo}"; shift || true
case "$cmd" in
  demo) setup; exec "$VENV/bin/python" -m aqaa_ref demo "$@" ;;
  test) setup; export AQAA_QUICK=1; exec "$VENV/bin/python" -m pytest "$@" ;;
  lab)  setup; exec "$VENV/bin/jupyter" lab notebooks "$@" ;;
  setup) setup ;;
  *) echo "usage: ./run.sh demo|test|lab|setup" >&2; exit 2 ;;
esac
