#!/usr/bin/env bash
# Testing on a Slurm cluster through srun (one task per GPU).
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT \
#       [test.py options]
# The master port is MASTER_PORT (default 29500); the master node is
# MASTER_ADDR, or else the first node `scontrol show hostname` names
# (scontrol must then be on PATH); PYTHON picks the interpreter that the
# tasks run.
set -e
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
# GRES="" (set and empty) asks for no GPUs: CPU-only nodes, where GPUS and
# GPUS_PER_NODE count tasks
GRES=${GRES-gpu:${GPUS_PER_NODE}}
PYTHON=${PYTHON:-python}

# each task asks `scontrol show hostname` for the master node, unless
# MASTER_ADDR is set; without scontrol it would fail with no useful message
if [ -z "${MASTER_ADDR:-}" ] && ! command -v scontrol > /dev/null; then
    set +x
    echo "$(basename "$0"): scontrol is not on PATH; each task needs it to" \
        "find the master node (scontrol show hostname \$SLURM_NODELIST)." \
        "Add Slurm's bin directory to PATH, or set MASTER_ADDR to the" \
        "first node's host name." >&2
    exit 1
fi

# SRUN_ARGS is split into words on purpose: it holds several srun options
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    ${GRES:+"--gres=$GRES"} \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher="slurm" "${@:5}"
