"""How the cost of distillation grows: c / (a + b) against one quantity.

    python tools/scaling_curves.py CONFIG [CONFIG ...] --axis image-size \
        --values 128 320 640 800x1333 [--iters 3] [--warmup 1] \
        [--out-dir work_dirs/scaling] [--name NAME] [--batch-size N] \
        [--num-boxes K] [--image-size H W]
    python tools/scaling_curves.py CONFIG --axis cfg-option --key KEY \
        --values ...

For each config and each value it runs ``tools/benchmark.py CONFIG
--random`` (random weights and images; no data set or pretrained weight)
in its own process with that quantity changed:

- ``image-size``: images of that size, ``S`` (square) or ``HxW``
  (``--image-size H W``; the benchmark pads to the model's divisor);
- ``batch-size``: images per step (``--batch-size``);
- ``num-classes``: every head's class count (``--num-classes``);
- ``num-boxes``: ground-truth boxes per image (``--num-boxes``);
- ``cfg-option``: any integer config value, named by ``--key``
  (``--cfg-options KEY=value``), e.g. G-DetKD's regions per image,
  ``--key model.methods.0.region_sampling.sampler.num``.

Each value's figures are kept in ``<config>_<axis>_<value>.json``
(``<config>_<KEY>_<value>.json`` for a config value; an image size as
``S`` when square, else ``HxW``) under ``--out-dir``: the student step
(a), the teacher forward (b), the distiller step (c), and c / (a + b)
for time and memory, with what defines the measurement: the benchmark
command, the digest of the resolved config (its ``_base_`` files and the
student's and teacher's configs included), the host, ``--device`` and
``OMP_NUM_THREADS``. A value already measured with the same definition
is not measured again, so an interrupted run picks up where it stopped;
one measured otherwise is measured again. (Code is not digested: after a
change to the code, use a new ``--out-dir``.)

It writes ``<name>_<axis>.json`` (``<name>_<KEY>.json``), ``.md`` (a
summary, a row per config, and a table per config) and ``.png`` (both
ratios against the value, a line per config), where the name is the
config's for one config and ``--name`` for several.
"""
import argparse
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys
from typing import Dict, List, Optional, Tuple, Union

from sea_kd.analysis.comparison import config_name, config_sha256
from sea_kd.analysis.comparison_plot import tick_labels

AXES = ('batch-size', 'cfg-option', 'image-size', 'num-boxes',
        'num-classes')
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
Value = Union[int, Tuple[int, int]]


def parse_value(axis: str, text: str) -> Value:
    """``(H, W)`` for an image size (``S`` or ``HxW``), else an int > 0."""
    if axis == 'image-size':
        found = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
        if not found:
            raise ValueError(f'an image size is S or HxW (e.g. 640 or '
                             f'800x1333), got {text!r}')
        h, w = int(found.group(1)), int(found.group(2) or found.group(1))
        if h <= 0 or w <= 0:
            raise ValueError(f'an image size must be positive, got {text!r}')
        return h, w
    if not re.fullmatch(r'\d+', text) or int(text) <= 0:
        raise ValueError(f'--values of --axis {axis} are positive integers, '
                         f'got {text!r}')
    return int(text)


def label_of(value: Value) -> str:
    """A value as files and tables name it: ``S`` for a square image size,
    ``HxW`` for another."""
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else '%dx%d' % value
    return str(value)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line, checked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', metavar='config',
                        help='one or more distiller configs')
    parser.add_argument('--axis', choices=AXES, required=True)
    parser.add_argument('--key', help='--axis cfg-option: the config key '
                        'to vary, e.g. '
                        'model.methods.0.region_sampling.sampler.num')
    parser.add_argument('--values', nargs='+', required=True,
                        help='the values of the axis (image size: S or HxW)')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--batch-size', type=int,
                        help='images per step when the axis is not '
                        'batch-size (default: the config\'s)')
    parser.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='image size when the axis is not image-size '
                        '(default: the config\'s training scale)')
    parser.add_argument('--num-boxes', type=int,
                        help='boxes per image when the axis is not '
                        'num-boxes (default: the benchmark\'s)')
    parser.add_argument('--device', help='passed to the benchmark (default: '
                        'CUDA where available)')
    parser.add_argument('--name', help='the output files\' name (required '
                        'with several configs)')
    parser.add_argument('--out-dir', default='work_dirs/scaling')
    args = parser.parse_args(argv)
    try:
        args.parsed = [parse_value(args.axis, v) for v in args.values]
    except ValueError as e:
        parser.error(str(e))
    args.labels = [label_of(v) for v in args.parsed]
    if len(set(args.labels)) < len(args.labels):
        parser.error(f'--values names a value twice: {args.values}.')
    if (args.batch_size is not None and args.batch_size <= 0) or \
            (args.image_size is not None and min(args.image_size) <= 0) or \
            (args.num_boxes is not None and args.num_boxes < 0):
        parser.error('--batch-size and --image-size must be positive and '
                     '--num-boxes at least 0.')
    stems = [config_name(c) for c in args.configs]
    if len(set(stems)) < len(stems):
        parser.error('two configs have the same file name, and their '
                     'figures would share files: copy one under another '
                     'name.')
    if (args.axis == 'cfg-option') != (args.key is not None):
        parser.error('--key names the config value of --axis cfg-option '
                     '(and only of it), e.g. --axis cfg-option --key '
                     'model.methods.0.region_sampling.sampler.num.')
    fixed = {'batch-size': args.batch_size, 'image-size': args.image_size,
             'num-boxes': args.num_boxes}
    if fixed.get(args.axis) is not None:
        parser.error(f'--{args.axis} fixes what --axis {args.axis} varies: '
                     f'give its values with --values only.')
    if len(args.configs) > 1 and not args.name:
        parser.error('several configs write one set of files: name it with '
                     '--name (e.g. --name dense-methods).')
    return args


def axis_name(args: argparse.Namespace) -> str:
    """The varied quantity: the axis, or the config key."""
    return args.key if args.axis == 'cfg-option' else args.axis


def axis_options(args: argparse.Namespace, value: Value) -> List[str]:
    """The benchmark options that set the axis to ``value``."""
    if args.axis == 'image-size':
        return ['--image-size', str(value[0]), str(value[1])]
    if args.axis == 'cfg-option':
        return ['--cfg-options', f'{args.key}={value}']
    return [f'--{args.axis}', str(value)]


def definition(config: str, command: List[str],
               device: Optional[str]) -> dict:
    """What a measurement depends on, beside the code: the benchmark
    command, the resolved config's digest, the host, the device and the
    thread count."""
    from mmengine.config import Config
    return dict(command=command,
                config_sha256=config_sha256(
                    config, Config.fromfile(config).model or {}, REPO),
                host=socket.gethostname(), device=device,
                omp_num_threads=os.environ.get('OMP_NUM_THREADS'))


def measure(args: argparse.Namespace, config: str, label: str,
            value: Value) -> dict:
    """One benchmark run of ``config`` with the axis at ``value``.

    Args:
        args: The command line.
        config: The distiller config.
        label: The value as the file names it.
        value: The value of the axis.

    Returns:
        The benchmark's figures and their ``request`` (:func:`definition`),
        read from the value's JSON file when it holds a measurement of the
        same definition, else measured now and written there.
    """
    path = osp.join(args.out_dir,
                    f'{config_name(config)}_{axis_name(args)}_{label}.json')
    cmd = [config, '--random', '--iters', str(args.iters), '--warmup',
           str(args.warmup), *axis_options(args, value)]
    if args.batch_size is not None:
        cmd += ['--batch-size', str(args.batch_size)]
    if args.image_size is not None:
        cmd += ['--image-size', *map(str, args.image_size)]
    if args.num_boxes is not None:
        cmd += ['--num-boxes', str(args.num_boxes)]
    if args.device is not None:
        cmd += ['--device', args.device]
    request = definition(config, cmd, args.device)
    if osp.exists(path):
        with open(path) as f:
            record = json.load(f)
        if record.get('request') == request:
            return record
        print(f'[{config_name(config)}, {axis_name(args)} = {label}] '
              'measured before with other settings, config, host or threads: '
              'measuring again', flush=True)
    print(f'[{config_name(config)}, {axis_name(args)} = {label}] '
          + ' '.join(cmd), flush=True)
    done = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'), *cmd,
         '--json-out', path + '.part'], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f'benchmark failed for {config}, {axis_name(args)} = '
                 f'{label}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}')
    with open(path + '.part') as f:
        record = dict(json.load(f), request=request)
    with open(path + '.part', 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(path + '.part', path)
    return record


def table(args: argparse.Namespace, config: str,
          rows: List[Tuple[str, dict]]) -> str:
    """A Markdown table of one config's measurements."""
    first = rows[0][1]
    lines = [
        f'`{osp.basename(config)}`, {axis_name(args)} ({first["device"]}, '
        f'{first["threads"]} threads, median of {args.iters})', '',
        f'| {axis_name(args)} | batch × size | (a) ms | (b) ms | (c) ms | '
        'time c/(a+b) | memory c/(a+b) |',
        '| --- | --- | --- | --- | --- | --- | --- |']
    for label, r in rows:
        t = r['time_s']
        mem = r['memory_ratio']
        size = '×'.join(map(str, r['image_size']))
        lines.append(
            f'| {label} | {r["batch"]} × {size} | {1e3 * t["a"]:.1f} | '
            f'{1e3 * t["b"]:.1f} | {1e3 * t["c"]:.1f} | '
            f'{r["time_ratio"]:.3f} | '
            + (f'{mem:.3f} |' if mem is not None else '— |'))
    return '\n'.join(lines) + '\n'


def summary(args: argparse.Namespace,
            results: Dict[str, List[Tuple[str, dict]]]) -> str:
    """One row per config: time and memory c / (a + b) at each value."""
    lines = [f'c / (a + b), time / memory, against {axis_name(args)}', '',
             '| config | ' + ' | '.join(args.labels) + ' |',
             '| --- |' + ' --- |' * len(args.labels)]
    for config, rows in results.items():
        cells = [f'{r["time_ratio"]:.3f} / ' + (
            '—' if r['memory_ratio'] is None else f'{r["memory_ratio"]:.2f}')
            for _, r in rows]
        lines.append(f'| `{config_name(config)}` | ' + ' | '.join(cells)
                     + ' |')
    return '\n'.join(lines) + '\n'


def x_of(args: argparse.Namespace, value: Value) -> float:
    """Where a value sits on the plot: megapixels for an image size."""
    return value[0] * value[1] / 1e6 if args.axis == 'image-size' else value


def plot(args: argparse.Namespace,
         results: Dict[str, List[Tuple[str, dict]]], path: str) -> None:
    """Both ratios against the value, a line per config, in ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    xs = [x_of(args, v) for v in args.parsed]
    labels = tick_labels([dict(name=config_name(c)) for c in results], {})
    colours = plt.get_cmap('tab20').colors  # distinct for up to 20 lines
    for i, (label, rows) in enumerate(zip(labels, results.values())):
        style = dict(label=label, color=colours[i % 20])
        axes[0].plot(xs, [r['time_ratio'] for _, r in rows], 'o-', **style)
        axes[1].plot(xs, [float('nan') if r['memory_ratio'] is None
                          else r['memory_ratio'] for _, r in rows], 's--',
                     **style)
    for ax, what in zip(axes, ('time', 'memory')):
        ax.axhline(1.05, color='grey', lw=0.8, ls=':')
        if args.axis in ('image-size', 'batch-size'):
            ax.set_xscale('log')
        ax.set_xticks(xs, args.labels, fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel(axis_name(args) + {
            'image-size': ' (log scale, by pixels)',
            'batch-size': ' (log scale)'}.get(args.axis, ''))
        ax.set_ylabel(f'{what} c / (a + b)')
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(args.name or config_name(args.configs[0]), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    """Measure every config at every value; write the tables and plot."""
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    name = args.name or config_name(args.configs[0])
    stem = osp.join(args.out_dir, f'{name}_{axis_name(args)}')
    results = {
        config: [(label, measure(args, config, label, value))
                 for label, value in zip(args.labels, args.parsed)]
        for config in args.configs}
    with open(stem + '.json', 'w') as f:
        json.dump({config: dict(rows) for config, rows in results.items()},
                  f, indent=2)
    text = '\n'.join([summary(args, results)] + [
        table(args, config, rows) for config, rows in results.items()])
    with open(stem + '.md', 'w') as f:
        f.write(text)
    plot(args, results, stem + '.png')
    print(text)
    print(f'written: {stem}.json, .md, .png')


if __name__ == '__main__':
    main()
