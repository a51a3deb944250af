"""Check a teacher/student pair before training (a compatibility report).

    python tools/check_pair.py CONFIG [--cfg-options k=v ...]
        [--num-val-images 20] [--device cpu|cuda] [--out report.json]

Builds the distiller of a distillation config (its build-time pair checks,
the teacher checkpoint loaded strictly, the student checkpoint when given),
runs one batch of the config's training set through the distiller's loss,
evaluates the teacher on the first validation images and prints: the method,
the classes of the data set and of both heads, the neck levels (stride,
channels, size) of teacher and student, the dense prior layouts, the RoI
extractors, the distillation modules (adapters with their channels and
parameters), the loss values on the batch and the teacher's metrics.

Exits with status 1 and the reason when the pair cannot be distilled (a
build-time check, a checkpoint, the training batch) or the report finds a
problem (e.g. the data set's classes differ from the heads').
"""
import argparse
import json
import sys

import torch
from mmengine.config import Config, DictAction

import sea_kd  # noqa: F401
from sea_kd.analysis.pair_report import (PairCheckError, build_pair_report,
                                         format_pair_report)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a distillation config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument(
        '--num-val-images', type=int, default=20,
        help='validation images the teacher is evaluated on (0: skip)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='also write the report to this JSON '
                        'file')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        report = build_pair_report(cfg, args.num_val_images, args.device)
    except PairCheckError as err:
        print(f'\nPair check FAILED ({err.stage}) for {args.config}:\n{err}',
              flush=True)
        return 1
    report['config'] = args.config
    print(f'\nPair check of {args.config}\n{format_pair_report(report)}',
          flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return 1 if report['problems'] else 0


if __name__ == '__main__':
    sys.exit(main())
