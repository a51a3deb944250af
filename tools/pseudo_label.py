"""Offline SAD pseudo labels: run a teacher over unlabeled images and write
its confident detections as a COCO annotation file.

    python tools/pseudo_label.py TEACHER_CONFIG TEACHER_CKPT OUT.json
        (--ann-file UNLABELED.json --img-dir DIR | --image-folder DIR)
        [--score-thr 0.5] [--batch-size 8] [--device cpu]
        [--cfg-options k=v ...]

Images with no detection at or above the threshold are left out. The
teacher's own ``test_cfg.score_thr`` filters first, so --score-thr below it
has no effect.
"""
import argparse
import json
import os
import os.path as osp

import cv2
from mmengine.config import Config, DictAction

import sea_kd  # noqa: F401
from sea_kd.datasets import detections_to_coco

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='teacher config')
    parser.add_argument('checkpoint', help='teacher checkpoint')
    parser.add_argument('out', help='pseudo-label COCO json to write')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--ann-file', help='COCO json of unlabeled images')
    source.add_argument('--image-folder', help='folder of unlabeled images')
    parser.add_argument('--img-dir', help='image folder of --ann-file')
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the teacher config')
    return parser.parse_args()


def list_images(args, classes):
    if args.ann_file:
        with open(args.ann_file) as f:
            coco = json.load(f)
        img_dir = args.img_dir or osp.dirname(args.ann_file)
        return coco['images'], coco['categories'], img_dir
    names = sorted(n for n in os.listdir(args.image_folder)
                   if n.lower().endswith(IMAGE_EXTENSIONS))
    images = []
    for i, name in enumerate(names, start=1):
        h, w = cv2.imread(osp.join(args.image_folder, name)).shape[:2]
        images.append(dict(id=i, file_name=name, width=w, height=h))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    return images, categories, args.image_folder


def main():
    args = parse_args()
    from mmdet.apis import inference_detector, init_detector
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = init_detector(cfg, args.checkpoint, device=args.device)
    classes = model.dataset_meta.get('classes') or cfg.get(
        'metainfo', {}).get('classes')
    images, categories, img_dir = list_images(args, classes)
    detections = []
    for start in range(0, len(images), args.batch_size):
        batch = images[start:start + args.batch_size]
        results = inference_detector(
            model, [osp.join(img_dir, im['file_name']) for im in batch])
        for result in results:
            pred = result.pred_instances.cpu()
            detections.append(dict(bboxes=pred.bboxes.numpy(),
                                   scores=pred.scores.numpy(),
                                   labels=pred.labels.numpy()))
    coco = detections_to_coco(images, detections, categories, args.score_thr)
    with open(args.out, 'w') as f:
        json.dump(coco, f)
    print(f'{args.out}: {len(coco["annotations"])} pseudo boxes on '
          f'{len(coco["images"])} of {len(images)} images '
          f'(score >= {args.score_thr})')


if __name__ == '__main__':
    main()
