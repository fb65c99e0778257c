#!/usr/bin/env bash
# aqaa_ref: one entry point that sets everything up, then runs what you asked for.
#
#   ./run.sh demo    set up, then run the demo (python -m aqaa_ref demo): the shipped toy models
#                    in checkpoints/toy answer the 20 questions in data_samples/ (no training)
#   ./run.sh train   set up, then train every toy model here from scratch with this code (the
#                    vocoder chain beside the backbone chain), then run the demo on them
#   ./run.sh test    set up, then lint (ruff) and run every test: unit tests and nbval over
#                    every notebook
#   ./run.sh lab     set up, then open JupyterLab on notebooks/
#   ./run.sh setup   set up only
#   ./run.sh lock    refresh requirements.lock: resolve the newest versions pyproject.toml
#                    allows, test them in a scratch environment, rewrite the lock only if
#                    every test passes
#
# Setup = a virtual environment in .venv (or $AQAA_VENV) holding exactly the versions in
# requirements.lock (installed with --no-deps: nothing is resolved again), then the package
# itself, then `pip check`. It re-runs whenever requirements.lock or pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${AQAA_VENV:-.venv}"
LOCK=requirements.lock

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

# install_locked VENV LOCKFILE: the lock's exact versions, the package, then pip check
install_locked() {
  local venv="$1" lock="$2"
  if [ ! -x "$venv/bin/python" ]; then
    local py; py="$(find_python)"
    echo "[setup] creating $venv with $("$py" --version)"
    "$py" -m venv "$venv"
  fi
  echo "[setup] installing $lock into $venv (torch is a large download the first time)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$lock"
  # the package itself, editable, built with the locked setuptools: no second resolve
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation -e .
  "$venv/bin/python" -m pip check --disable-pip-version-check
}

setup() {
  local stamp="$VENV/.aqaa-installed" want
  want="$(cat "$LOCK" pyproject.toml | python3 -c 'import hashlib,sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest())' 2>/dev/null \
          || cat "$LOCK" pyproject.toml | cksum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    install_locked "$VENV" "$LOCK"
    echo "$want" > "$stamp"
  fi
}

# The lock is written by uv (`uv pip compile --universal`): one file for Linux and macOS,
# x86_64 and arm64, Python 3.11+, with environment markers where the tree differs.
compile_lock() {
  "$VENV/bin/uv" pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
    --custom-compile-command "./run.sh lock" --quiet -o "$1"
}

refresh_lock() {
  setup
  local scratch; scratch="$(mktemp -d "${TMPDIR:-/tmp}/aqaa-lock.XXXXXX")"
  echo "[lock] resolving the newest versions pyproject.toml allows (scratch: $scratch)"
  compile_lock "$scratch/requirements.lock"
  install_locked "$scratch/venv" "$scratch/requirements.lock"
  echo "[lock] running the whole test suite against the new versions"
  if ! AQAA_QUICK=1 AQAA_LOCK_FILE="$scratch/requirements.lock" "$scratch/venv/bin/python" -m pytest -q "$@"; then
    echo "[lock] tests failed: $LOCK left as it was (candidate kept in $scratch/requirements.lock)" >&2
    return 1
  fi
  "$VENV/bin/python" -m aqaa_ref.lockfile diff "$LOCK" "$scratch/requirements.lock"
  if cmp -s "$scratch/requirements.lock" "$LOCK"; then
    echo "[lock] $LOCK unchanged"
  else
    cp "$scratch/requirements.lock" "$LOCK"
    echo "[lock] $LOCK rewritten; ./run.sh setup installs it"
  fi
  rm -rf "$scratch"
}

cmd="${1:-demo}"; shift || true
case "$cmd" in
  demo) setup; exec "$VENV/bin/python" -m aqaa_ref demo "$@" ;;
  train) setup; exec "$VENV/bin/python" -m aqaa_ref demo --train "$@" ;;
  test) setup; "$VENV/bin/ruff" check .; export AQAA_QUICK=1; exec "$VENV/bin/python" -m pytest "$@" ;;
  lab)  setup; exec "$VENV/bin/jupyter" lab notebooks "$@" ;;
  setup) setup ;;
  lock) refresh_lock "$@" ;;
  *) echo "usage: ./run.sh demo|train|test|lab|setup|lock" >&2; exit 2 ;;
esac
