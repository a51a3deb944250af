"""Train a distiller a few iterations with mmengine's Runner, in process, on
the generated data set, recording what each step saw."""
import copy
import os.path as osp
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from sea_kd.models.capture import MethodTap

from ...runner_helpers import synthetic_train_loader


class StepRecorder(Hook):
    """Keeps, per training iteration, the raw data batch, the distiller's
    losses and the input of the teacher's and the student's necks."""

    def __init__(self) -> None:
        self.raw_batches: List[dict] = []
        self.taps: List[MethodTap] = []

    def before_train(self, runner) -> None:
        model = runner.model
        self.loss_tap = MethodTap(model, 'loss')
        self.teacher_tap = MethodTap(model.teacher, 'extract_feat')
        self.neck_tap = MethodTap(model.student.neck, 'forward')
        self.taps = [self.loss_tap, self.teacher_tap, self.neck_tap]
        for tap in self.taps:
            tap.__enter__()

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        self.raw_batches.append(copy.deepcopy(data_batch))

    def after_train(self, runner) -> None:
        for tap in self.taps:
            tap.__exit__(None, None, None)

    @property
    def losses(self) -> List[dict]:
        """The loss dict of every iteration (tensors)."""
        return [call.output for call in self.loss_tap.calls]


def dataloader(data_root: str, image_size: int = 96) -> dict:
    """The generated data set's training loader, 2 images a batch,
    resized to ``image_size``."""
    return synthetic_train_loader(data_root, image_size).to_dict()


def train_distiller(model_cfg: dict, data_root: str, work_dir: str,
                    optim_wrapper: Optional[dict] = None,
                    iters: int = 2) -> tuple:
    """Train ``iters`` iterations; return the runner and its
    :class:`StepRecorder`."""
    recorder = StepRecorder()
    runner = Runner(
        model=copy.deepcopy(model_cfg),
        work_dir=work_dir,
        train_dataloader=dataloader(data_root),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        optim_wrapper=optim_wrapper or dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=1e-3, momentum=0.9),
            clip_grad=dict(max_norm=10)),
        default_hooks=dict(checkpoint=None,
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[recorder],
        log_processor=dict(by_epoch=False),
        default_scope='mmdet',
        randomness=dict(seed=0),
        experiment_name=f'{osp.basename(work_dir)}_{id(recorder)}')
    runner.train()
    assert runner.iter == iters
    return runner, recorder


def finite_losses(losses: dict) -> bool:
    """Whether every loss tensor (or list of them) is finite."""
    values = []
    for key, value in losses.items():
        if 'loss' in key:
            values += value if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(
        torch.isfinite(v).all() for v in values if torch.is_tensor(v))
