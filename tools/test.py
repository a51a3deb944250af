"""Evaluate a checkpoint on the config's test set (mmdet 3.x flags).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--metrics-out FILE.json] [--cfg-options k=v ...]
        [--launcher none|pytorch|slurm|mpi]

CONFIG may be a plain detector config (with an exported student checkpoint)
or a distiller config (with a distiller checkpoint; only the student is built
and predicts, so the teacher's checkpoint is not needed). The checkpoint is
loaded strictly: one that does not belong to CONFIG stops the test with a
message saying which config it belongs to, instead of scoring a randomly
initialised model. The test run's config is dumped next to its log, into
``WORK_DIR/<timestamp>/``, not over the training run's
``WORK_DIR/<config name>.py``.
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction

import sea_kd  # noqa: F401
from sea_kd.compat import cleanup_distributed, setup_cpu_distributed
from sea_kd.utils.checkpoint_for_test import (build_test_runner, load_for_test,
                                              prepare_test)
from sea_kd.utils.model_wrappers import unwrap_model


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a pickle file')
    parser.add_argument(
        '--metrics-out',
        type=str,
        help='also write the evaluation metrics to this JSON file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def numeric_metrics(metrics: dict) -> dict:
    """The metrics that are numbers (numpy and torch scalars included)."""
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            pass
    return out


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg, state, origin = prepare_test(cfg, args.checkpoint)
    cfg.load_from = None  # loaded strictly below, not by the Runner
    if args.out is not None:
        assert args.out.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpDetResults', out_file_path=args.out))
    setup_cpu_distributed(cfg)
    try:
        # its config goes to its log dir: the training run's dump in the
        # work dir stays as it was
        runner = build_test_runner(cfg)
        model = unwrap_model(runner.model)
        load_for_test(model, state, args.checkpoint, origin)
        metrics = runner.test()
        if args.metrics_out and runner.rank == 0:
            with open(args.metrics_out, 'w') as f:
                json.dump(numeric_metrics(metrics), f, indent=2)
    finally:
        cleanup_distributed()


if __name__ == '__main__':
    main()
