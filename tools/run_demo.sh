#!/usr/bin/env bash
# Set everything up, then run the demo (see README).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec "${SEA_KD_VENV:-$repo/.venv}/bin/python" tools/demo.py "$@"
