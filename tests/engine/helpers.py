"""Configs of real Runner runs of tiny detectors on a tiny generated set."""
import copy
import glob
import json
import os.path as osp
import uuid

from mmengine.config import Config
from mmengine.runner import Runner

from ..conftest import REPO, tiny_detector_cfg

DATASET_CFG = osp.join(REPO, 'configs', '_base_', 'datasets',
                       'synthetic_coco_detection.py')
IMG_SIZE = 64


def tiny_teacher_cfg() -> dict:
    """A RetinaNet that learns the tiny set in about a hundred steps."""
    cfg = tiny_detector_cfg('retinanet', num_classes=6, base_channels=8,
                            neck_channels=32)
    cfg.bbox_head.anchor_generator.octave_base_scale = 2
    cfg.bbox_head.norm_cfg = dict(type='GN', num_groups=8,
                                  requires_grad=True)
    cfg.test_cfg.score_thr = 0.0
    return cfg.to_dict()


def tiny_student_cfg() -> dict:
    """A narrower RetinaNet that keeps every detection (so that an
    untrained student still gets COCO metrics)."""
    cfg = tiny_detector_cfg('retinanet', num_classes=6, base_channels=4,
                            neck_channels=16)
    cfg.bbox_head.anchor_generator.octave_base_scale = 2
    cfg.test_cfg.score_thr = 0.0
    return cfg.to_dict()


def fi_distiller_cfg(teacher_ckpt: str, student: dict = None) -> dict:
    return dict(type='Distiller',
                student=student or tiny_student_cfg(),
                teacher=tiny_teacher_cfg(), teacher_ckpt=teacher_ckpt,
                methods=[dict(type='FeatureImitation',
                              adapter=dict(type='ConvAdapter'),
                              loss_feat=dict(type='FeatureMSELoss',
                                             loss_weight=0.01))])


def data_cfg(root: str, val_ann: str = None) -> dict:
    """Dataloaders and evaluators of the generated set at 64 px.

    Validation runs on the training images (``val_ann``: another annotation
    file of them), where a teacher trained for a few steps already scores.
    """
    data = Config.fromfile(DATASET_CFG)
    root = root.rstrip('/') + '/'
    val_ann = val_ann or root + 'annotations/instances_train.json'
    train = copy.deepcopy(data.train_dataloader.to_dict())
    val = copy.deepcopy(data.val_dataloader.to_dict())
    for loader in (train, val):
        loader['dataset']['data_root'] = root
        for step in loader['dataset']['pipeline']:
            if step['type'] == 'Resize':
                step['scale'] = (IMG_SIZE, IMG_SIZE)
    val['dataset'].update(ann_file=val_ann, data_prefix=dict(img='train/'))
    evaluator = dict(data.val_evaluator.to_dict(), ann_file=val_ann)
    return dict(train_dataloader=train, val_dataloader=val,
                val_evaluator=evaluator, test_dataloader=copy.deepcopy(val),
                test_evaluator=copy.deepcopy(evaluator))


def run_cfg(root: str, model: dict, work_dir: str, max_iters: int = 2,
            val_interval: int = 1, val_ann: str = None, **extra) -> Config:
    """A complete Runner config (iteration-based, logs every iteration,
    validation metrics logged at their iteration)."""
    return Config(dict(
        model=model,
        work_dir=work_dir,
        experiment_name=f'{osp.basename(work_dir)}_{uuid.uuid4().hex[:8]}',
        default_scope='mmdet',
        **data_cfg(root, val_ann),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=val_interval),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.02, momentum=0.9,
                           weight_decay=1e-4),
            clip_grad=dict(max_norm=35, norm_type=2)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1,
                        log_metric_by_epoch=False),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=max_iters)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        **extra))


def plain_test_metrics(root: str, model: dict, ckpt: str, work_dir: str,
                       val_ann: str = None) -> dict:
    """Metrics of a plain mmdet model from mmengine's own test loop."""
    cfg = run_cfg(root, model, work_dir, val_ann=val_ann, load_from=ckpt)
    return Runner.from_cfg(cfg).test()


def scalars(work_dir: str) -> list:
    """The records of ``scalars.json`` (LocalVisBackend) of one run."""
    paths = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(paths) == 1, paths
    with open(paths[0]) as f:
        return [json.loads(line) for line in f if line.strip()]


def subset_annotations(ann_file: str, img_ids, out: str) -> str:
    """A COCO file holding only ``img_ids`` and their objects."""
    with open(ann_file) as f:
        coco = json.load(f)
    keep = set(img_ids)
    coco['images'] = [i for i in coco['images'] if i['id'] in keep]
    coco['annotations'] = [a for a in coco['annotations']
                           if a['image_id'] in keep]
    with open(out, 'w') as f:
        json.dump(coco, f)
    return out


def first_images_test_metrics(root: str, ckpt: str, work_dir: str,
                              num_images: int) -> dict:
    """The tiny teacher's test metrics on the first ``num_images``
    validation images, in the order the validation loader reads them."""
    runner = Runner.from_cfg(run_cfg(root, tiny_teacher_cfg(),
                                     osp.join(work_dir, 'ids')))
    img_ids = [runner.val_dataloader.dataset.get_data_info(i)['img_id']
               for i in range(num_images)]
    ann = subset_annotations(
        osp.join(root, 'annotations', 'instances_train.json'), img_ids,
        osp.join(work_dir, f'first_{num_images}.json'))
    return plain_test_metrics(root, tiny_teacher_cfg(), ckpt,
                              osp.join(work_dir, f'plain_{num_images}'),
                              val_ann=ann)
