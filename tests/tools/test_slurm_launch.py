"""tools/slurm_train.sh and tools/slurm_test.sh without a Slurm cluster.

A stand-in ``srun`` on PATH records its arguments and runs the job step's
tasks as local processes with Slurm's task environment (``SLURM_PROCID``,
``SLURM_NTASKS``, ``SLURM_LOCALID``, ``SLURM_NODELIST``, ...); a stand-in
``scontrol`` answers ``scontrol show hostname``, which mmengine's Slurm
initialisation asks for the master node. The tasks then run
``--launcher slurm`` as shipped: a real two-process gloo run on the CPU.

On a machine without CUDA, ``sea_kd.compat.setup_cpu_distributed`` turns
Slurm's task environment into torchrun's and starts the gloo process group
itself (mmengine's own Slurm path calls ``torch.cuda.set_device``); nothing
in the tasks is patched.
"""
import json
import os
import stat
import sys

import pytest

from .helpers import (REPO, data_options, free_port,
                      keep_all_detections_configs, run_tool, short_run)

SRUN = '''#!{python} -S
"""Stand-in for Slurm's srun: runs the tasks of one job step locally.

Appends its arguments, the environment it was started with and each task's
exit status to $SRUN_STUB_LOG (one JSON object a line). With
$SRUN_STUB_DRY_RUN set it starts no task. Exits with the highest exit status
of the tasks; with --kill-on-bad-exit=1 the other tasks are terminated as
soon as one fails.
"""
import json
import os
import signal
import subprocess
import sys
import time

# options that take their value as the next argument when written without =
VALUE_OPTIONS = {{
    '-p', '--partition', '-J', '--job-name', '-n', '--ntasks', '-N',
    '--nodes', '-c', '--cpus-per-task', '-t', '--time', '-w', '--nodelist',
    '-o', '--output', '-e', '--error', '--gres', '--ntasks-per-node'
}}


def parse(argv):
    options, i = {{}}, 0
    while i < len(argv) and argv[i].startswith('-'):
        arg = argv[i]
        if arg.startswith('--') and '=' in arg:
            name, value = arg.split('=', 1)
        elif arg in VALUE_OPTIONS:
            name, value = arg, argv[i + 1]
            i += 1
        else:
            name, value = arg, ''
        options[name] = value
        i += 1
    return options, argv[i:]


def option(options, *names, default=None):
    for name in names:
        if name in options:
            return options[name]
    return default


def record(entry):
    with open(os.environ['SRUN_STUB_LOG'], 'a') as f:
        f.write(json.dumps(entry) + '\\n')


def main():
    argv = sys.argv[1:]
    options, command = parse(argv)
    record(dict(argv=argv, options=options, command=command,
                cwd=os.getcwd(), pythonpath=os.environ.get('PYTHONPATH')))
    if os.environ.get('SRUN_STUB_DRY_RUN'):
        return 0
    ntasks = int(option(options, '--ntasks', '-n', default='1'))
    per_node = int(option(options, '--ntasks-per-node', default=ntasks))
    nodes = 'localhost'  # every "node" of the stand-in is this machine
    tasks = []
    for rank in range(ntasks):
        env = dict(
            os.environ,
            SLURM_JOB_ID=str(os.getpid()),
            SLURM_JOB_NAME=option(options, '--job-name', '-J',
                                  default='stub'),
            SLURM_JOB_PARTITION=option(options, '--partition', '-p',
                                       default=''),
            SLURM_NTASKS=str(ntasks),
            SLURM_NPROCS=str(ntasks),
            SLURM_STEP_NUM_TASKS=str(ntasks),
            SLURM_NNODES=str(-(-ntasks // per_node)),
            SLURM_PROCID=str(rank),
            SLURM_LOCALID=str(rank % per_node),
            SLURM_NODEID=str(rank // per_node),
            SLURM_NODELIST=nodes,
            SLURM_JOB_NODELIST=nodes,
            SLURM_CPUS_PER_TASK=option(options, '--cpus-per-task', '-c',
                                       default='1'))
        tasks.append(subprocess.Popen(command, env=env))
    kill_on_bad_exit = option(options, '--kill-on-bad-exit', '-K') in (
        '', '1')
    codes = [None] * ntasks
    while None in codes:
        for rank, task in enumerate(tasks):
            if codes[rank] is None:
                codes[rank] = task.poll()
        if kill_on_bad_exit and any(code for code in codes if code):
            for rank, task in enumerate(tasks):
                if codes[rank] is None:
                    task.send_signal(signal.SIGTERM)
            for rank, task in enumerate(tasks):
                if codes[rank] is None:
                    try:
                        codes[rank] = task.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        task.kill()
                        codes[rank] = task.wait()
        time.sleep(0.1)
    record(dict(task_exit_codes=codes))
    # a task killed by a signal has a negative code; srun reports 128 + it
    return max(code if code >= 0 else 128 - code for code in codes)


sys.exit(main())
'''

SCONTROL = '''#!/bin/sh
# Stand-in for `scontrol show hostname LIST`: one host name a line.
echo "$*" >> "$SCONTROL_STUB_LOG"
if [ "$1" = show ] && { [ "$2" = hostname ] || [ "$2" = hostnames ]; }; then
    echo "$3" | tr ',' '\\n'
    exit 0
fi
echo "scontrol stand-in: unsupported: $*" >&2
exit 1
'''

def _executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP
               | stat.S_IXOTH)


@pytest.fixture
def slurm(tmp_path_factory):
    """Stand-ins for srun and scontrol.

    Yields:
        A class whose ``env(**extra)`` is the environment that runs the
        scripts with the stand-ins, and whose ``srun_calls()`` and
        ``scontrol_calls()`` read back what the stand-ins were asked.
    """
    root = tmp_path_factory.mktemp('slurm_stub')
    bin_dir = root / 'bin'
    bin_dir.mkdir()
    _executable(bin_dir / 'srun', SRUN.format(python=sys.executable))
    _executable(bin_dir / 'scontrol', SCONTROL)
    srun_log, scontrol_log = root / 'srun.jsonl', root / 'scontrol.log'

    class Slurm:

        @staticmethod
        def env(**extra):
            """Environment for ``bash tools/slurm_*.sh`` with the stubs."""
            env = dict(
                PATH=os.pathsep.join([str(bin_dir), os.environ['PATH']]),
                PYTHONPATH=REPO,
                PYTHON=sys.executable, SRUN_STUB_LOG=str(srun_log),
                SCONTROL_STUB_LOG=str(scontrol_log),
                MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1',
                # the CPU path on any machine (one GPU would not do for 2)
                CUDA_VISIBLE_DEVICES='')
            env.update(extra)
            return env

        @staticmethod
        def srun_calls():
            """What srun recorded: its call, then the tasks' exit codes."""
            if not srun_log.exists():
                return []
            return [json.loads(line)
                    for line in srun_log.read_text().splitlines()]

        @staticmethod
        def scontrol_calls():
            """The arguments of each scontrol call, one string each."""
            if not scontrol_log.exists():
                return []
            return scontrol_log.read_text().splitlines()

    with pytest.MonkeyPatch.context() as patch:
        # the master node must be found through scontrol
        patch.delenv('MASTER_ADDR', raising=False)
        yield Slurm


@pytest.mark.parametrize('script,fourth', [('slurm_train.sh', 'work_dir'),
                                           ('slurm_test.sh', 'ckpt.pth')])
def test_srun_gets_mmdet_style_arguments_and_defaults(slurm, script, fourth):
    run_tool(['bash', f'tools/{script}', 'gpu-part', 'my job', 'cfg.py',
              fourth, '--cfg-options', 'experiment_name=with space'],
             env=slurm.env(SRUN_STUB_DRY_RUN='1',
                           SRUN_ARGS='--time=1:00:00 --quotatype=auto'))
    (call, ) = slurm.srun_calls()
    assert call['argv'][:2] == ['-p', 'gpu-part']
    assert call['options'] == {
        '-p': 'gpu-part', '--job-name': 'my job', '--gres': 'gpu:8',
        '--ntasks': '8', '--ntasks-per-node': '8', '--cpus-per-task': '5',
        '--kill-on-bad-exit': '1', '--time': '1:00:00',
        '--quotatype': 'auto'
    }
    tool = 'tools/train.py' if script == 'slurm_train.sh' \
        else 'tools/test.py'
    fourth_arg = ['--work-dir=work_dir'] if script == 'slurm_train.sh' \
        else ['ckpt.pth']
    assert call['command'] == [
        sys.executable, '-u', tool, 'cfg.py', *fourth_arg,
        '--launcher=slurm', '--cfg-options', 'experiment_name=with space'
    ]
    assert call['pythonpath'].split(os.pathsep)[0] == 'tools/..'


def test_gpu_counts_come_from_the_environment(slurm):
    run_tool(['bash', 'tools/slurm_train.sh', 'p', 'j', 'cfg.py', 'w'],
             env=slurm.env(SRUN_STUB_DRY_RUN='1', GPUS='16',
                           GPUS_PER_NODE='4', CPUS_PER_TASK='2'))
    (call, ) = slurm.srun_calls()
    assert {k: call['options'][k] for k in (
        '--gres', '--ntasks', '--ntasks-per-node', '--cpus-per-task')} == {
            '--gres': 'gpu:4', '--ntasks': '16', '--ntasks-per-node': '4',
            '--cpus-per-task': '2'}


def test_a_failing_task_fails_the_script(slurm):
    # every task's "python" exits 1 at once
    proc = run_tool(['bash', 'tools/slurm_train.sh', 'p', 'j', 'cfg.py', 'w'],
                    env=slurm.env(PYTHON='false', GPUS='2',
                                  GPUS_PER_NODE='2'), check=False)
    assert proc.returncode != 0
    # a task still starting when the other failed is terminated (-15)
    codes = slurm.srun_calls()[-1]['task_exit_codes']
    assert 1 in codes and 0 not in codes


@pytest.mark.slow
def test_two_task_slurm_training_and_testing_on_the_cpu(
        slurm, tmp_path, synthetic_root):
    # the student keeps every detection, so a 2-iteration model has an AP
    student_cfg, _ = keep_all_detections_configs(tmp_path)
    work = tmp_path / 'work'
    # a CPU-only partition: GRES='' asks for no GPUs
    env = slurm.env(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1', GRES='')
    out = run_tool(['bash', 'tools/slurm_train.sh', 'cpu-part', 'sea-kd-ci',
                    student_cfg, str(work), '--cfg-options',
                    *data_options(synthetic_root), *short_run(2),
                    'train_cfg.val_interval=1000'],
                   env=env, timeout=300)
    call, done = slurm.srun_calls()
    assert call['options']['-p'] == 'cpu-part'
    assert call['options']['--job-name'] == 'sea-kd-ci'
    assert call['options']['--ntasks'] == '2'
    assert call['options']['--kill-on-bad-exit'] == '1'
    assert '--gres' not in call['options']
    assert done == {'task_exit_codes': [0, 0]}
    # each task asked scontrol for the master node
    assert slurm.scontrol_calls() == ['show hostname localhost'] * 2
    assert 'Distributed launcher: slurm' in out.stdout
    assert 'Distributed training: True' in out.stdout
    assert 'GPU number: 2' in out.stdout
    assert 'terminate called' not in out.stdout
    assert (work / 'iter_2.pth').exists()

    metrics = tmp_path / 'metrics.json'
    run_tool(['bash', 'tools/slurm_test.sh', 'cpu-part', 'sea-kd-ci-test',
              student_cfg, str(work / 'iter_2.pth'), '--work-dir',
              str(tmp_path / 'test'), '--metrics-out', str(metrics),
              '--cfg-options', *data_options(synthetic_root)],
             env=env, timeout=300)
    call, done = slurm.srun_calls()[2:]
    assert call['options']['--job-name'] == 'sea-kd-ci-test'
    assert call['command'][2] == 'tools/test.py'
    assert done == {'task_exit_codes': [0, 0]}
    assert 'coco/bbox_mAP' in metrics.read_text()
