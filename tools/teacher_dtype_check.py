"""How much a lighter teacher changes the distillation terms.

    python tools/teacher_dtype_check.py CONFIG [--dtype bfloat16|float16]
        [--batches 4] [--cfg-options k=v ...]

Builds the distiller of CONFIG twice, with ``teacher_dtype='float32'`` and
with ``--dtype``, gives both the same student and method weights, and on
the same training batches prints every distillation term of each and their
largest relative difference over the batches.
"""
import argparse
import copy

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import sea_kd  # noqa: F401


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a distiller config')
    parser.add_argument('--dtype', default='bfloat16',
                        choices=['bfloat16', 'float16'])
    parser.add_argument('--batches', type=int, default=4)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    models = {}
    for name in ('float32', args.dtype):
        models[name] = MODELS.build(dict(copy.deepcopy(cfg.model),
                                         teacher_dtype=name))
    full, light = models['float32'], models[args.dtype]
    full.init_weights()
    light.load_state_dict(full.state_dict())
    loader = Runner.build_dataloader(cfg.train_dataloader)
    prefixes = tuple(f'loss_{n}_' for n in full.method_names)
    worst = {}
    for i, data in enumerate(loader):
        if i == args.batches:
            break
        batch = full.data_preprocessor(data, True)
        with torch.no_grad():
            terms = {}
            for name, model in models.items():
                torch.manual_seed(i)  # the same random draws (e.g. MGD)
                losses = model.loss(batch['inputs'],
                                    copy.deepcopy(batch['data_samples']))
                terms[name] = {k: float(sum(v) if isinstance(v, list) else v)
                               for k, v in losses.items()
                               if k.startswith(prefixes)}
        for key, value in terms['float32'].items():
            other = terms[args.dtype][key]
            rel = abs(other - value) / max(abs(value), 1e-12)
            worst[key] = max(worst.get(key, 0.0), rel)
            print(f'batch {i} {key:<28} float32 {value:12.6g}  '
                  f'{args.dtype} {other:12.6g}  rel. diff {rel:.2e}')
    print(f'\nlargest relative difference over {args.batches} batches '
          f'({args.dtype} teacher vs float32):')
    for key, rel in worst.items():
        print(f'  {key:<28} {rel:.2e}')


if __name__ == '__main__':
    main()
