"""Chart the losses and a validation metric of training runs as PNG files.

    python tools/plot_curves.py RUN [RUN ...] [--labels L ...] [--keys K ...]
        [--metric coco/bbox_mAP] [--hline teacher=17.5] [--percent] [--bar]
        [--smooth N] [--chart both|losses|metric] [--out DIR | FILE.png]

A RUN is a work dir (every ``<timestamp>/vis_data/scalars.json`` in it,
merged in time order: a resumed run continues, a fresh run into the same
dir replaces the older one), a timestamp dir, or a scalars.json file.
``--out DIR`` writes ``losses.png`` (one subplot per loss term, all runs
overlaid, against the iteration) and ``metric.png`` (the metric against
the iteration, or the epoch for epoch-based runs); ``--out FILE.png`` writes
the one chart that ``--chart`` names. With ``--bar`` the metric chart shows
each run's final value (runs with the same label: their mean as the bar,
each run as a dot). See sea_kd/analysis/training_curves.py for how the logs
are read.
"""
import argparse
import os.path as osp
import sys

from sea_kd.analysis.training_curves import (load_scalars, plot_losses,
                                             plot_metric)


def parse_hlines(items):
    """``['teacher=17.5']`` -> ``{'teacher': 17.5}``."""
    lines = {}
    for item in items or []:
        name, sep, value = item.partition('=')
        try:
            if not sep or not name:
                raise ValueError
            lines[name] = float(value)
        except ValueError:
            raise SystemExit(f'--hline {item!r}: write NAME=VALUE, e.g. '
                             'teacher=17.5.')
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('runs', nargs='+',
                        help='work dirs, timestamp dirs or scalars.json files')
    parser.add_argument('--labels', nargs='+',
                        help='legend names, one per run (default: the work '
                        'dir names); runs with the same label share a colour')
    parser.add_argument('--keys', nargs='+',
                        help='training scalars to draw (default: loss and '
                        'every loss_* term found)')
    parser.add_argument('--metric', default='coco/bbox_mAP',
                        help='validation scalar of the metric chart')
    parser.add_argument('--hline', action='append', metavar='NAME=VALUE',
                        help='a reference line on the metric chart, in the '
                        'plotted unit; repeatable. A logged '
                        'teacher/<metric> scalar adds one by itself')
    parser.add_argument('--percent', action='store_true',
                        help='plot the metric times 100 (COCO AP in %%)')
    parser.add_argument('--bar', action='store_true',
                        help="bar chart of each run's final metric value")
    parser.add_argument('--smooth', type=int, default=1, metavar='N',
                        help='trailing moving average over N logged points '
                        'of the loss curves (default 1: none)')
    parser.add_argument('--chart', choices=('both', 'losses', 'metric'),
                        default='both', help='which chart(s) to write')
    parser.add_argument('--out', default='curves',
                        help='output dir, or a .png file for one chart')
    parser.add_argument('--dpi', type=int, default=100)
    parser.add_argument('--title', help='chart title')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    hlines = parse_hlines(args.hline)
    single = args.out.lower().endswith('.png')
    if single and args.chart == 'both':
        raise SystemExit(f'--out {args.out} is one file: add --chart losses '
                         'or --chart metric (or give a dir for both).')
    try:
        runs = [load_scalars(path) for path in args.runs]
        written = []
        if args.chart in ('both', 'losses'):
            out = args.out if single else osp.join(args.out, 'losses.png')
            written.append(plot_losses(runs, out, keys=args.keys,
                                       labels=args.labels,
                                       smooth=args.smooth, dpi=args.dpi,
                                       title=args.title))
        has_val = any(run['val'] for run in runs)
        if args.chart == 'both' and not has_val:
            print('No run logged a validation: metric.png not written.')
        elif args.chart in ('both', 'metric'):
            out = args.out if single else osp.join(args.out, 'metric.png')
            written.append(plot_metric(runs, out, metric=args.metric,
                                       labels=args.labels, hlines=hlines,
                                       percent=args.percent, bar=args.bar,
                                       dpi=args.dpi, title=args.title))
            points = [len(run['val'][args.metric][0]) for run in runs]
            if not args.bar and max(points) == 1:
                print(f'Every run has a single {args.metric} point; --bar '
                      'compares final values more readably.')
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    for run in runs:
        kind = {True: 'by epoch', False: 'by iteration'}.get(
            run['by_epoch'], 'no training lines')
        points = len(run['val'].get(args.metric, ((), ()))[0])
        print(f'{run["name"]}: {len(run["files"])} session(s), {kind}, '
              f'{points} {args.metric} point(s)')
    for path in written:
        print(f'wrote {path}')


if __name__ == '__main__':
    sys.exit(main())
