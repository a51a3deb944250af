"""Offline SAD pseudo labels: run a teacher over unlabeled images and write
its confident detections as a COCO annotation file.

    python tools/pseudo_label.py TEACHER_CONFIG TEACHER_CKPT OUT.json
        (--ann-file UNLABELED.json --img-dir DIR | --image-folder DIR)
        [--score-thr 0.5] [--batch-size 8] [--device cpu]
        [--cfg-options k=v ...]

The checkpoint is loaded strictly: one that does not fit TEACHER_CONFIG key
for key (a distiller's or a student's checkpoint, another model) is refused
with the file and the mismatching keys. The teacher's classes are the
checkpoint's ``meta['dataset_meta']['classes']`` (what ``tools/train.py``
saves), otherwise the teacher config's training set ``metainfo``. With
--ann-file, each teacher class is matched to the file's category of the same
name (a class the file lacks is an error) and the output keeps the file's
categories; with --image-folder the categories are the teacher's classes,
ids from 1.

Images with no detection at or above the threshold are left out. The
teacher's own ``test_cfg.score_thr`` filters first, so --score-thr below it
has no effect. A run that keeps no box at all writes nothing, says why on
stderr and exits with status 1. OUT may not be the --ann-file; it is written
through a temporary file, so an interrupted run leaves no partial file.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn

import sea_kd  # noqa: F401
from sea_kd.datasets.pseudo_labels import (category_ids_by_name,
                                           detections_to_coco)
from sea_kd.models.detectors.pair_checks import (checkpoint_classes,
                                                 num_classes_of)
from sea_kd.utils.atomic_write import atomic_open
from sea_kd.utils.checkpoint_loading import load_state_dict_strict

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


class ImageReadError(ValueError):
    """An image file cannot be read."""


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='teacher config')
    parser.add_argument('checkpoint', help='teacher checkpoint')
    parser.add_argument('out', help='pseudo-label COCO json to write')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--ann-file', help='COCO json of unlabeled images')
    source.add_argument('--image-folder', help='folder of unlabeled images')
    parser.add_argument('--img-dir', help='image folder of --ann-file')
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--batch-size', type=int, default=8,
                        help='images per inference call')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the teacher config')
    return parser.parse_args()


def config_classes(cfg: Config) -> Optional[List[str]]:
    """The classes of the teacher config's training set: its ``metainfo``
    (inside dataset wrappers: the first wrapped set's), otherwise the data
    set type's own ``METAINFO``; ``None`` when neither names them."""
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    while 'metainfo' not in dataset and (dataset.get('dataset')
                                         or dataset.get('datasets')):
        dataset = dataset.get('dataset') or dataset['datasets'][0]
    classes = (dataset.get('metainfo') or {}).get('classes')
    dataset_type = dataset.get('type')
    if classes is None and dataset_type is not None:
        dataset_cls = DATASETS.get(dataset_type) if isinstance(
            dataset_type, str) else dataset_type
        classes = getattr(dataset_cls, 'METAINFO', {}).get('classes')
    return None if classes is None else [str(c) for c in classes]


def teacher_classes(cfg: Config, meta: dict, checkpoint: str,
                    num_classes: int) -> List[str]:
    """The class names of the teacher's labels, label ``k`` first.

    Args:
        cfg: The teacher config.
        meta: The checkpoint's ``meta``.
        checkpoint: The checkpoint file, for messages.
        num_classes: Classes the teacher's head predicts.

    Returns:
        The checkpoint's recorded classes, otherwise the config's.

    Raises:
        ValueError: Neither names the classes, or their number is not the
            head's.
    """
    recorded = checkpoint_classes(meta)
    classes = recorded if recorded is not None else config_classes(cfg)
    source = f'checkpoint `{checkpoint}` (meta dataset_meta.classes)' \
        if recorded is not None else 'the training set of the teacher config'
    if not classes:
        raise ValueError(
            f'Cannot tell which classes the teacher predicts: checkpoint '
            f'`{checkpoint}` records none (meta dataset_meta.classes) and the '
            'teacher config\'s train_dataloader.dataset has no metainfo '
            'classes. Set train_dataloader.dataset.metainfo=dict(classes='
            '(...)) in the teacher config, in the order it was trained on.')
    if len(classes) != num_classes:
        raise ValueError(
            f'The teacher head predicts {num_classes} classes but {source} '
            f'names {len(classes)} ({", ".join(classes)}): the checkpoint '
            'and the config disagree. Use the config the checkpoint was '
            'trained with.')
    return list(classes)


def build_teacher(cfg: Config, checkpoint: str,
                  device: str) -> Tuple[nn.Module, List[str]]:
    """Build the teacher, load its checkpoint strictly, name its classes.

    Args:
        cfg: The teacher config.
        checkpoint: The teacher checkpoint.
        device: Where to run the teacher, e.g. ``'cpu'`` or ``'cuda'``.

    Returns:
        tuple: The teacher in eval mode on ``device`` (with ``cfg`` and
        ``dataset_meta`` set for ``inference_detector``) and its classes.

    Raises:
        RuntimeError: The checkpoint does not fit the config; the message
            names the file, the keys and the fix.
    """
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    try:
        meta = load_state_dict_strict(model, checkpoint, 'checkpoint')
    except RuntimeError as error:
        raise RuntimeError(
            f'{error}\n  tools/pseudo_label.py labels with the teacher config'
            ' given: pass the checkpoint trained with it (a distiller\'s '
            '`teacher_ckpt`, not the distiller\'s own checkpoint).') \
            from error
    classes = teacher_classes(cfg, meta, checkpoint, num_classes_of(model))
    model.dataset_meta = dict(classes=tuple(classes))
    model.cfg = cfg
    return model.to(device).eval(), classes


def check_out_path(out: str, ann_file: Optional[str]) -> None:
    """Refuse an output path that is the input annotation file."""
    if ann_file and osp.exists(out) and osp.samefile(out, ann_file):
        raise ValueError(
            f'OUT `{out}` is the --ann-file `{ann_file}`: writing the pseudo '
            'labels would replace the list of unlabeled images. Write them to '
            'another file (e.g. instances_train_pseudo.json).')


def unreadable_image_error(path: str, where: str) -> ImageReadError:
    """The error for an image file that cannot be read."""
    return ImageReadError(
        f'Cannot read image `{path}`: it is missing, empty, truncated or not '
        f'an image. Replace it, or remove it from {where}.')


def image_size(path: str, where: str) -> Tuple[int, int]:
    """``(height, width)`` of an image file, read with OpenCV."""
    img = cv2.imread(path)
    if img is None:
        raise unreadable_image_error(path, where)
    return img.shape[:2]


def list_images(args: argparse.Namespace,
                classes: Sequence[str]) -> Tuple[List[dict], List[dict],
                                                 str, np.ndarray]:
    """The images to label, the output categories, the image folder and the
    label-to-category-id lookup table."""
    if args.ann_file:
        with open(args.ann_file) as f:
            coco = json.load(f)
        categories = coco['categories']
        return (coco['images'], categories,
                args.img_dir or osp.dirname(args.ann_file),
                category_ids_by_name(classes, categories, args.ann_file))
    names = sorted(n for n in os.listdir(args.image_folder)
                   if n.lower().endswith(IMAGE_EXTENSIONS))
    images = []
    for i, name in enumerate(names, start=1):
        h, w = image_size(osp.join(args.image_folder, name),
                          f'the folder `{args.image_folder}`')
        images.append(dict(id=i, file_name=name, width=w, height=h))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    return images, categories, args.image_folder, category_ids_by_name(
        classes, categories, 'the teacher\'s classes')


def predict(model: nn.Module, paths: List[str], where: str) -> List[dict]:
    """The teacher's detections on ``paths`` as numpy arrays; an image the
    pipeline fails on and OpenCV cannot read raises
    :class:`ImageReadError` naming it."""
    from mmdet.apis import inference_detector
    try:
        results = inference_detector(model, paths)
    except Exception as error:
        broken = next((p for p in paths if cv2.imread(p) is None), None)
        if broken is not None:
            raise unreadable_image_error(broken, where) from error
        raise
    preds = [result.pred_instances.cpu() for result in results]
    return [dict(bboxes=p.bboxes.numpy(), scores=p.scores.numpy(),
                 labels=p.labels.numpy()) for p in preds]


def write_json(data: dict, out: str) -> None:
    """Write ``data`` to ``out`` through a temporary file in its folder
    (with the mode of any new file under the umask)."""
    with atomic_open(out) as f:
        json.dump(data, f)


def no_boxes_message(args: argparse.Namespace, num_images: int,
                     detections: Sequence[dict]) -> str:
    """Why a run kept no pseudo box, and what to try."""
    scores = [d['scores'] for d in detections if len(d['scores'])]
    best = (f'the highest score was {max(s.max() for s in scores):.3g}'
            if scores else 'the teacher detected nothing at all')
    return (
        f'pseudo_label.py: WARNING: no pseudo boxes: no detection on the '
        f'{num_images} images scored >= --score-thr {args.score_thr} '
        f'({best}; the teacher\'s test_cfg.score_thr filters first). '
        f'Nothing was written to `{args.out}`. Lower --score-thr, or check '
        f'that `{args.checkpoint}` is a trained teacher for these images.')


def main() -> int:
    args = parse_args()
    check_out_path(args.out, args.ann_file)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model, classes = build_teacher(cfg, args.checkpoint, args.device)
    images, categories, img_dir, category_ids = list_images(args, classes)
    where = f'`{args.ann_file}`' if args.ann_file else \
        f'the folder `{img_dir}`'
    detections = []
    for start in range(0, len(images), args.batch_size):
        batch = images[start:start + args.batch_size]
        detections += predict(
            model, [osp.join(img_dir, im['file_name']) for im in batch],
            where)
    coco = detections_to_coco(images, detections, categories, args.score_thr,
                              category_ids=category_ids)
    if not coco['annotations']:
        print(no_boxes_message(args, len(images), detections),
              file=sys.stderr)
        return 1
    write_json(coco, args.out)
    print(f'{args.out}: {len(coco["annotations"])} pseudo boxes on '
          f'{len(coco["images"])} of {len(images)} images '
          f'(score >= {args.score_thr})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
