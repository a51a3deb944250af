"""Build a real mmengine Runner around a tiny distiller, in this process."""
import copy
import glob
import itertools
import json
import os.path as osp
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco

from .conftest import REPO, build, tiny_detector_cfg

DATASET_CFG = osp.join(REPO, 'configs', '_base_', 'datasets',
                       'synthetic_coco_detection.py')
_names = itertools.count()


def synthetic_train_loader(data_root: str, image_size: int = 64) -> Config:
    """The generated data set's training loader config, 2 images a batch,
    resized to ``image_size``."""
    loader = copy.deepcopy(Config.fromfile(DATASET_CFG).train_dataloader)
    loader.batch_size = 2
    loader.dataset.data_root = data_root.rstrip('/') + '/'
    for step in loader.dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (image_size, image_size)
    return loader


def tiny_fi_pair(num_classes: int = 6):
    """Student and teacher configs of a tiny RetinaNet pair."""
    student = tiny_detector_cfg('retinanet', num_classes=num_classes,
                                base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg('retinanet', num_classes=num_classes,
                                base_channels=8, neck_channels=32)
    return student, teacher


def tiny_fi_on_generated_data(root, seed: int, **fi_options):
    """Write a small generated data set to ``root`` and a randomly
    initialised teacher checkpoint; return the data root and the config of a
    tiny Distiller (:func:`tiny_fi_pair`) of it with one FeatureImitation
    method of ``fi_options``."""
    generate_synthetic_coco(str(root), num_train=8, num_val=2, img_size=64,
                            seed=seed)
    torch.manual_seed(0)
    student, teacher = tiny_fi_pair()
    ckpt = osp.join(str(root), 'teacher.pth')
    torch.save(dict(state_dict=build(teacher).state_dict()), ckpt)
    model = dict(type='Distiller', student=student, teacher=teacher,
                 teacher_ckpt=ckpt,
                 methods=[dict(type='FeatureImitation', **fi_options)])
    return str(root), model


def _wait_for_a_fresh_log_dir(work_dir: str) -> None:
    """mmengine names a run's log folder ``work_dir/<timestamp>`` to the
    second; two runs of one work dir started in the same second (a run and
    its resume) would share it and append to one ``scalars.json``. Wait
    until the current second names no folder yet."""
    while osp.isdir(osp.join(work_dir, time.strftime('%Y%m%d_%H%M%S'))):
        time.sleep(0.05)


def distiller_runner(work_dir: str,
                     data_root: str,
                     model: dict,
                     max_iters: int,
                     custom_hooks=(),
                     ckpt_interval: int = None,
                     resume: bool = False,
                     max_epochs: int = None) -> Runner:
    """A Runner training ``model`` for ``max_iters`` iterations (batch 2,
    64-px images of ``data_root``), logging every iteration.

    ``max_epochs``: an epoch-based loop of that many epochs (passes over
    the data set) instead; ``max_iters`` is then ignored.
    """
    _wait_for_a_fresh_log_dir(work_dir)
    loader = synthetic_train_loader(data_root)
    train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                     val_interval=max_iters + 1)
    if max_epochs is not None:
        loader.sampler = dict(type='DefaultSampler', shuffle=True)
        train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                         val_interval=max_epochs + 1)
    cfg = Config(dict(
        default_scope='mmdet',
        model=copy.deepcopy(model),
        work_dir=work_dir,
        experiment_name=f'run{next(_names)}',
        train_dataloader=loader,
        train_cfg=train_cfg,
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=1e-3,
                                          momentum=0.9)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=ckpt_interval or max_iters),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=list(custom_hooks),
        log_processor=dict(type='LogProcessor', window_size=1,
                           by_epoch=False),
        visualizer=dict(type='DetLocalVisualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        randomness=dict(seed=0),
        env_cfg=dict(cudnn_benchmark=False,
                     dist_cfg=dict(backend='gloo')),
        resume=resume,
        load_from=None))
    return Runner.from_cfg(cfg)


def logged_scalars(work_dir: str, runner: Runner) -> list:
    """The per-iteration records of the run's ``vis_data/scalars.json``."""
    path = osp.join(work_dir, runner.timestamp, 'vis_data', 'scalars.json')
    found = glob.glob(path)
    assert found, f'{path} not written'
    with open(found[0]) as f:
        return [json.loads(line) for line in f if line.strip()]
