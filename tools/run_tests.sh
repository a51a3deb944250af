#!/usr/bin/env bash
# Set everything up, then run the test suite (see README). Extra arguments go
# to pytest, e.g. `bash tools/run_tests.sh -m "not slow"`. The tests run in
# one worker process per core, at most 4 (pytest-xdist; each worker's torch
# and the tools it starts use its share of the cores, tests/conftest.py);
# `-n 0` runs them in this process (`-n 0 -s` to see a test's output).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec "${SEA_KD_VENV:-$repo/.venv}/bin/python" -m pytest tests \
  -n auto --maxprocesses 4 --dist worksteal "$@"
