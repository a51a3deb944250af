"""How the cost of distillation grows: c / (a + b) against one quantity.

    python tools/scaling_curves.py CONFIG --axis image-size \
        --values 256 512 800 1333 [--iters 3] [--warmup 1] \
        [--out-dir work_dirs/scaling] [--batch-size N] [--num-boxes K]
    python tools/scaling_curves.py CONFIG --axis cfg-option --key KEY \
        --values ...

For each value it runs ``tools/benchmark.py CONFIG --random`` (random
weights and images; no data set or pretrained weight) in its own process
with that quantity changed:

- ``image-size``: square images of that side (``--image-size S S``);
- ``num-classes``: every head's class count (``--num-classes``);
- ``num-boxes``: ground-truth boxes per image (``--num-boxes``);
- ``cfg-option``: any config value, named by ``--key`` (``--cfg-options
  KEY=value``), e.g. G-DetKD's regions per image,
  ``--key model.methods.0.region_sampling.sampler.num``.

It writes ``<config>_<axis>.json`` and ``.md`` (``<config>_<KEY>`` for a
config value) (the student step (a), the
teacher forward (b), the distiller step (c), and c / (a + b) for time and
memory, per value) and ``<config>_<axis>.png`` (both ratios against the
value) under ``--out-dir``. A value already measured (its benchmark JSON
exists) is not measured again, so an interrupted run picks up where it
stopped.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

AXES = {
    'image-size': lambda v: ['--image-size', str(v), str(v)],
    'num-classes': lambda v: ['--num-classes', str(v)],
    'num-boxes': lambda v: ['--num-boxes', str(v)],
    'cfg-option': None,  # --cfg-options KEY=value
}
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a distiller config')
    parser.add_argument('--axis', choices=sorted(AXES), required=True)
    parser.add_argument('--key', help='--axis cfg-option: the config key '
                        'to vary, e.g. '
                        'model.methods.0.region_sampling.sampler.num')
    parser.add_argument('--values', type=int, nargs='+', required=True)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--batch-size', type=int,
                        help='images per step (default: the config\'s)')
    parser.add_argument('--num-boxes', type=int,
                        help='boxes per image when the axis is not '
                        'num-boxes (default: the benchmark\'s)')
    parser.add_argument('--out-dir', default='work_dirs/scaling')
    args = parser.parse_args()
    if any(v <= 0 for v in args.values):
        parser.error(f'--values must be positive, got {args.values}.')
    if (args.axis == 'cfg-option') != (args.key is not None):
        parser.error('--key names the config value of --axis cfg-option '
                     '(and only of it), e.g. --axis cfg-option --key '
                     'model.methods.0.region_sampling.sampler.num.')
    return args


def axis_name(args) -> str:
    """The varied quantity: the axis, or the config key."""
    return args.key if args.axis == 'cfg-option' else args.axis


def axis_options(args, value: int) -> list:
    """The benchmark options that set the axis to ``value``."""
    if args.axis == 'cfg-option':
        return ['--cfg-options', f'{args.key}={value}']
    return AXES[args.axis](value)


def measure(args, value: int, path: str) -> dict:
    """One benchmark run with the axis at ``value`` (cached in ``path``)."""
    if not osp.exists(path):
        cmd = [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'),
               args.config, '--random', '--iters', str(args.iters),
               '--warmup', str(args.warmup), '--json-out', path + '.part',
               *axis_options(args, value)]
        if args.batch_size:
            cmd += ['--batch-size', str(args.batch_size)]
        if args.num_boxes and args.axis != 'num-boxes':
            cmd += ['--num-boxes', str(args.num_boxes)]
        print(f'[{axis_name(args)} = {value}] ' + ' '.join(cmd[1:]),
              flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f'benchmark failed for {axis_name(args)} = {value}:\n'
                     f'{done.stdout[-3000:]}{done.stderr[-3000:]}')
        os.replace(path + '.part', path)
    with open(path) as f:
        return json.load(f)


def table(args, rows) -> str:
    lines = [
        f'`{osp.basename(args.config)}`, {axis_name(args)} (batch '
        f'{rows[0][1]["batch"]}, {rows[0][1]["device"]}, '
        f'{rows[0][1]["threads"]} threads, median of {args.iters})', '',
        f'| {axis_name(args)} | (a) ms | (b) ms | (c) ms | time c/(a+b) | '
        'memory c/(a+b) |', '| --- | --- | --- | --- | --- | --- |']
    for value, r in rows:
        t = r['time_s']
        mem = r['memory_ratio']
        lines.append(
            f'| {value} | {1e3 * t["a"]:.1f} | {1e3 * t["b"]:.1f} | '
            f'{1e3 * t["c"]:.1f} | {r["time_ratio"]:.3f} | '
            + (f'{mem:.3f} |' if mem is not None else '— |'))
    return '\n'.join(lines) + '\n'


def plot(args, rows, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    values = [v for v, _ in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(values, [r['time_ratio'] for _, r in rows], 'o-', label='time')
    ax.plot(values, [r['memory_ratio'] or float('nan') for _, r in rows],
            's--', label='memory')
    ax.axhline(1.05, color='grey', lw=0.8, ls=':')
    ax.set_xlabel(axis_name(args))
    ax.set_ylabel('c / (a + b)')
    ax.set_title(osp.splitext(osp.basename(args.config))[0], fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, osp.splitext(osp.basename(args.config))[0]
                    + '_' + axis_name(args))
    rows = [(v, measure(args, v, f'{stem}_{v}.json')) for v in args.values]
    with open(stem + '.json', 'w') as f:
        json.dump({str(v): r for v, r in rows}, f, indent=2)
    text = table(args, rows)
    with open(stem + '.md', 'w') as f:
        f.write(text)
    plot(args, rows, stem + '.png')
    print(text)
    print(f'written: {stem}.json, .md, .png')


if __name__ == '__main__':
    main()
