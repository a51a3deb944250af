"""Write the generated COCO-format data set used by the demo and the tests.

    python tools/make_synthetic_coco.py [--out data/synthetic_coco]
        [--num-train 200] [--num-val 50] [--img-size 128] [--seed 0]
        [--overwrite]

Deterministic for a given seed; an existing data set generated with the same
arguments is kept unless --overwrite is given.
"""
import argparse
import json

from sea_kd.datasets import generate_synthetic_coco


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic_coco')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args()
    summary = generate_synthetic_coco(
        args.out, num_train=args.num_train, num_val=args.num_val,
        img_size=args.img_size, seed=args.seed, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))


if __name__ == '__main__':
    main()
