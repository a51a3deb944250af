#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv.
#
# Idempotent: a second run checks the environment and returns in seconds.
#
# Environment variables:
#   SEA_KD_VENV      where the environment lives (default: <repo>/.venv)
#   SEA_KD_PYTHON    the interpreter that creates it (default: python3)
#   SEA_KD_STACK     "openmmlab" (default: mmengine 0.10.7, mmcv 2.1.0,
#                    mmdet 3.3.0) or "onedl" (the maintained OneDL fork)
#   TORCH_VERSION    torch release to install (default: 2.13.0)
#   MAX_JOBS         parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SEA_KD_VENV:-$repo/.venv}"
python="${SEA_KD_PYTHON:-python3}"
stack="${SEA_KD_STACK:-openmmlab}"
torch_version="${TORCH_VERSION:-2.13.0}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"

say() { printf '[setup] %s\n' "$*"; }
start=$(date +%s)

case "$stack" in
  openmmlab)
    mm_pkgs=(mmengine==0.10.7 mmdet==3.3.0)
    mmcv_pkg="mmcv==2.1.0"
    mmcv_cache=()
    ;;
  onedl)
    mm_pkgs=(onedl-mmengine==0.10.12 onedl-mmdetection==3.5.1)
    mmcv_pkg="onedl-mmcv==2.3.6"
    # an isolated or cached build of onedl-mmcv can lack its compiled ops
    mmcv_cache=(--no-cache-dir)
    ;;
  *) echo "SEA_KD_STACK must be 'openmmlab' or 'onedl', got '$stack'" >&2; exit 2 ;;
esac

# A stamp records the inputs of the last successful set-up; when they have
# not changed and the imports still work, nothing is reinstalled.
stamp_inputs="$(cat "$repo/tools/setup_env.sh" "$repo/pyproject.toml"; echo "$stack $torch_version")"
stamp_hash="$(printf '%s' "$stamp_inputs" | sha256sum | cut -d' ' -f1)"
stamp="$venv/.sea_kd_setup"

check_imports() {
  "$venv/bin/python" - <<'PY'
import mmcv, mmdet, mmengine, torch
import isort, ruff  # the lint tools of tests/test_lint.py
import xdist  # the test workers of tools/run_tests.sh
from mmcv.ops import RoIAlign, batched_nms, nms  # compiled ops must load
import sea_kd
print(f'[setup] torch {torch.__version__}, mmengine {mmengine.__version__}, '
      f'mmcv {mmcv.__version__} (ops ok), mmdet {mmdet.__version__}, '
      f'sea_kd {sea_kd.__version__}')
PY
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_hash" ] && check_imports 2>/dev/null; then
  say "environment $venv is up to date ($(( $(date +%s) - start )) s)"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# 1. torch. On a machine with an NVIDIA driver the registry's default build
#    carries CUDA and torchvision matches it; on CPU-only machines the CPU
#    wheel is used and torchvision is left out (its reachable wheels are CUDA
#    builds that break with a CPU torch).
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
  say "installing torch $torch_version"
  "${pip[@]}" install "torch==$torch_version"
fi
installed_torch="$("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
constraints="$venv/constraints.txt"
echo "torch==$installed_torch" > "$constraints"
say "torch $installed_torch pinned in $constraints"
if "$venv/bin/python" -c "import torch, sys; sys.exit(torch.version.cuda is None)"; then
  "${pip[@]}" install -c "$constraints" torchvision
fi

# 2. build tools and the pure-Python packages of the stack.
"${pip[@]}" install -c "$constraints" "setuptools>=77.0.3,<80.9" ninja wheel \
  "${mm_pkgs[@]}" pycocotools numpy scipy pytest pytest-xdist ruff==0.17.6 isort==9.0.2

# 3. mmcv with its compiled ops, built against the torch installed above.
#    CFLAGS replaces Python's own flags, so -O3 must stay in it.
if ! "$venv/bin/python" -c "import mmcv, mmcv._ext" 2>/dev/null; then
  say "building $mmcv_pkg against torch $installed_torch (several minutes the first time)"
  CFLAGS="-DNDEBUG -O3 -g0 -fwrapv -Wall" \
    "${pip[@]}" install --no-build-isolation "${mmcv_cache[@]}" -c "$constraints" "$mmcv_pkg"
fi

# 4. sea_kd itself, editable.
"${pip[@]}" install --no-build-isolation --no-deps -c "$constraints" -e "$repo"

check_imports
echo "$stamp_hash" > "$stamp"
say "done in $(( $(date +%s) - start )) s"
