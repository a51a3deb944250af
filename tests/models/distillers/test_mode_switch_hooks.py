"""mmdet's hooks that switch a detector's training mode reach the student
of a distiller."""
from types import SimpleNamespace

import torch
from mmdet.engine.hooks import YOLOXModeSwitchHook
from mmdet.registry import MODELS

from ...conftest import build, make_batch, tiny_detector_cfg


class _Dataset:

    def __init__(self):
        self.skipped = None

    def update_skip_type_keys(self, keys):
        self.skipped = tuple(keys)


def test_yolox_mode_switch_turns_on_the_students_l1_loss(save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('yolox', base_channels=16, neck_channels=64)
    s_cfg = tiny_detector_cfg('yolox', base_channels=8, neck_channels=32)
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg,
        teacher_ckpt=save_state(build(t_cfg)),
        methods=[dict(type='PKD', adapter=dict(type='ConvAdapter'))]))
    model.init_weights()
    assert model.detector is model.student
    assert not model.student.bbox_head.use_l1
    loader = SimpleNamespace(dataset=_Dataset())
    runner = SimpleNamespace(
        epoch=9, max_epochs=10, train_dataloader=loader, model=model,
        logger=SimpleNamespace(info=lambda *_: None))
    YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(runner)
    assert model.student.bbox_head.use_l1
    assert not model.teacher.bbox_head.use_l1
    assert loader.dataset.skipped == ('Mosaic', 'RandomAffine', 'MixUp')
    model.train()
    losses = model.loss(*make_batch(model))
    assert 'loss_l1' in losses and torch.isfinite(losses['loss_l1'])
    assert 'loss_pkd_feat' in losses
