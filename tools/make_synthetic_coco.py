"""Write the generated COCO-format data set used by the demo and the tests.

    python tools/make_synthetic_coco.py [--out data/synthetic_coco]
        [--num-train 2000] [--num-val 200] [--num-test 200] [--img-size 128]
        [--seed 0] [--num-classes 6] [--min-objects 1] [--max-objects 6]
        [--min-size-frac 0.08] [--max-size-frac 0.5]
        [--overwrite] [--unlabeled-fraction 0.5]

Deterministic for a given seed; an existing data set generated with the same
arguments is kept unless --overwrite is given. The test split (--num-test,
0 for none) is for reporting only: choose hyper-parameters on val.
--unlabeled-fraction also writes
annotations/instances_train_{labeled,unlabeled}.json, holding out the labels
of that share of the training images (for semi-supervised configs).

The generator options make data sets that differ the way users' data
differ from the demo's: more classes (up to 20 shapes), larger images,
smaller objects (diameter as a fraction of the image side), more objects
per image. The second demo data set (docs/results.md):

    python tools/make_synthetic_coco.py --out data/synthetic_coco_varied \
        --num-classes 20 --img-size 160 --min-objects 4 --max-objects 12 \
        --min-size-frac 0.05 --max-size-frac 0.3
"""
import argparse
import json

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco
from sea_kd.datasets import split_labeled_unlabeled


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic_coco')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--num-test', type=int, default=200)
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-classes', type=int, default=6)
    parser.add_argument('--min-objects', type=int, default=1)
    parser.add_argument('--max-objects', type=int, default=6)
    parser.add_argument('--min-size-frac', type=float, default=0.08)
    parser.add_argument('--max-size-frac', type=float, default=0.5)
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--unlabeled-fraction', type=float, default=None)
    args = parser.parse_args()
    summary = generate_synthetic_coco(
        args.out, num_train=args.num_train, num_val=args.num_val,
        img_size=args.img_size, seed=args.seed, num_test=args.num_test,
        num_classes=args.num_classes, min_objects=args.min_objects,
        max_objects=args.max_objects, min_size_frac=args.min_size_frac,
        max_size_frac=args.max_size_frac, overwrite=args.overwrite)
    if args.unlabeled_fraction is not None:
        summary['train_ann_files_semi'] = split_labeled_unlabeled(
            summary['train_ann_file'], args.unlabeled_fraction, args.seed)
    print(json.dumps(summary, indent=2))


if __name__ == '__main__':
    main()
