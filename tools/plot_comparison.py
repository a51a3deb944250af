"""Draw the figure of a finished comparison again from its
``comparison.json`` (written by tools/compare.py), e.g. with other labels.

    python tools/plot_comparison.py WORK_DIR/comparison.json OUT.png \
        [--labels NAME=LABEL ...]
"""
import argparse
import json

from sea_kd.analysis.comparison_plot import parse_labels, plot_comparison


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('summary', help='comparison.json of tools/compare.py')
    parser.add_argument('out', help='the figure to write (.png, .pdf, .svg)')
    parser.add_argument('--labels', nargs='+', default=[],
                        metavar='NAME=LABEL',
                        help='labels of configs (added to those the '
                        'comparison was made with)')
    args = parser.parse_args(argv)
    try:
        extra = parse_labels(args.labels)
    except ValueError as error:
        raise SystemExit(f'tools/plot_comparison.py: {error}') from error
    with open(args.summary) as f:
        summary = json.load(f)
    plot_comparison(summary, args.out, {**summary.get('labels', {}),
                                        **extra})
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
