"""Run the repository's tools in subprocesses on a small generated data set."""
import os
import os.path as osp
import socket
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')


def data_options(root: str, train_sources: int = 0) -> list:
    """--cfg-options that point every split and evaluator at ``root``.

    ``train_sources`` > 0: the training set is a ConcatDataset of that many
    sources (semi-supervised configs), each pointed at ``root``.
    """
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val.json'
    train = [f'train_dataloader.dataset.data_root={root}'] \
        if not train_sources else [
            f'train_dataloader.dataset.datasets.{i}.data_root={root}'
            for i in range(train_sources)]
    return train + [
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]


def short_run(iters: int, ckpt_interval: int = None) -> list:
    """--cfg-options for an ``iters``-long run with per-iteration logs."""
    interval = ckpt_interval or iters
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        'default_hooks.logger.interval=1',
        f'default_hooks.checkpoint.interval={interval}',
        'param_scheduler.0.end=1'
    ]


def cores_per_worker() -> int:
    """The cores of this machine divided among pytest-xdist's workers (all
    of them outside xdist), at least 1: the threads of a test's torch and of
    the tools it starts, so that the workers do not oversubscribe them."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    return max(1, (os.cpu_count() or 1) // workers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(args, cwd=REPO, env=None, timeout=600, check=True):
    """Run ``args`` (a list) and return the completed process (text out)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1',
                    OMP_NUM_THREADS=str(min(2, cores_per_worker())))
    # the tools import this checkout's sea_kd, not another installed copy
    full_env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
    full_env.update(env or {})
    proc = subprocess.run(args, cwd=cwd, env=full_env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, args))} exited '
                             f'{proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


def python(*args):
    return [sys.executable, *map(str, args)]


def keep_all_detections_configs(
        root, student: str = 'retinanet_r18-w16_synthetic.py',
        distiller: str = 'fi_retinanet_r18_to_r18-w16_synthetic.py'
) -> tuple:
    """Write a demo student (default the RetinaNet one) that keeps every
    detection (score threshold 0, 20 per image) and a demo distiller
    (default feature imitation, written as ``fi.py``: the config's method
    prefix) of that student into ``root``; return both paths. With it, COCO
    AP and prediction comparisons mean something after a few iterations."""
    student_path = osp.join(str(root), 'student.py')
    with open(student_path, 'w') as f:
        f.write(f"_base_ = '{DEMO}/{student}'\n"
                'model = dict(test_cfg=dict(score_thr=0.0, '
                'max_per_img=20))\n')
    # named by its method (fi.py for the default): tools that name runs by
    # config file show it
    distiller_path = osp.join(str(root),
                              distiller.split('_')[0] + '.py')
    with open(distiller_path, 'w') as f:
        f.write(f"_base_ = '{DEMO}/{distiller}'"
                f"\nmodel = dict(student='{student_path}')\n")
    return student_path, distiller_path
