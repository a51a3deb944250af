"""The method × detector-family cells of docs/compatibility.md, run: a tiny
pair of the family, the method, one training step."""
from typing import Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub

from ..conftest import build, tiny_detector_cfg

#: column -> (teacher kind, student kind); the teacher is twice as wide
FAMILIES = {
    'RetinaNet': ('retinanet', 'retinanet'),
    'FCOS': ('fcos', 'fcos'),
    'GFL': ('gfl', 'gfl'),
    'RTMDet': ('rtmdet', 'rtmdet'),
    'YOLOX': ('yolox', 'yolox'),
    'TOOD': ('tood', 'tood'),
    'Faster R-CNN': ('faster_rcnn', 'faster_rcnn'),
    'Mask R-CNN': ('mask_rcnn', 'mask_rcnn'),
    'Cascade R-CNN': ('cascade_rcnn', 'cascade_rcnn'),
    'DINO': ('dino', 'dino'),
    'Faster R-CNN → RetinaNet': ('faster_rcnn', 'retinanet'),
}
#: column -> (teacher kind, student kind) of the heterogeneous dense pairs
DENSE_PAIRS = {
    'GFL → FCOS': ('gfl', 'fcos'),
    'FCOS → ATSS': ('fcos', 'atss'),
    'RTMDet → YOLOX': ('rtmdet', 'yolox'),
    'GFL → RetinaNet': ('gfl', 'retinanet'),
    'RTMDet → FCOS': ('rtmdet', 'fcos'),
}
PAIRS = {**FAMILIES, **DENSE_PAIRS}
ADAPTER = dict(type='ConvAdapter')
#: row -> (method config, the names a message may suggest it by)
METHODS = {
    'SEA': (dict(type='SEA'), ('SEA', )),
    'G-DetKD': (dict(type='GDetKD'), ('G-DetKD', 'GDetKD')),
    'TBD': (dict(type='TBD'), ('TBD', )),
    'ADL': (dict(type='ADL'), ('ADL', )),
    'FI': (dict(type='FeatureImitation'), ('FI', 'FeatureImitation')),
    'PKD': (dict(type='PKD', adapter=ADAPTER), ('PKD', )),
    'CWD': (dict(type='CWD', adapter=ADAPTER), ('CWD', )),
    'MGD': (dict(type='MGD'), ('MGD', )),
    'FGD': (dict(type='FGD'), ('FGD', )),
    'LD': (dict(type='LD'), ('LD', )),
    'CrossKD': (dict(type='CrossKD', reused_teacher_head_idx=1,
                     adapter=ADAPTER), ('CrossKD', )),
    'HMLD': (dict(type='HMLD'), ('HMLD', )),
    'BCKD': (dict(type='BCKD'), ('BCKD', )),
    'DSI': (dict(type='DSI'), ('DSI', )),
    'KD-DETR': (dict(type='KDDETR'), ('KD-DETR', 'KDDETR')),
}
REFUSALS = (TypeError, ValueError, NotImplementedError)


def pair_cfgs(column: str):
    teacher, student = PAIRS[column]
    return (tiny_detector_cfg(teacher, base_channels=16, neck_channels=64),
            tiny_detector_cfg(student, base_channels=8, neck_channels=32))


def run_cell(row: str, column: str, teacher_ckpt: str
             ) -> Tuple[bool, Optional[str]]:
    """``(True, None)`` when the pair builds and trains one step with
    finite terms, gradients in the student and none in the teacher;
    ``(False, message)`` when the build or step refuses the pair."""
    t_cfg, s_cfg = pair_cfgs(column)
    method = METHODS[row][0]
    # what the Runner's RuntimeInfoHook sets (TOOD's assignment reads it)
    MessageHub.get_current_instance().update_info('epoch', 0)
    try:
        model = MODELS.build(dict(type='Distiller', student=s_cfg,
                                  teacher=t_cfg, teacher_ckpt=teacher_ckpt,
                                  methods=[method]))
        model.init_weights()
        torch.manual_seed(0)
        packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2,
                                num_items=[3, 2], num_classes=3,
                                with_mask='mask' in PAIRS[column][1])
        data = model.data_preprocessor(packed, True)
        losses = model.loss(data['inputs'], data['data_samples'])
    except REFUSALS as error:
        return False, str(error)
    name = model.method_names[0]
    terms = {k: v for k, v in losses.items() if k.startswith(f'loss_{name}_')}
    assert terms, f'{row} on {column}: no loss_{name}_* term'
    total = sum(v for v in terms.values())
    assert torch.isfinite(total), (row, column, terms)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.parameters()), (row, column)
    assert all(p.grad is None for p in model.teacher.parameters())
    return True, None


def method_answer(row: str, column: str) -> Optional[str]:
    """The method's own answer for the pair: ``None`` when it distils
    it, else its short reason (:meth:`DistillMethod.pair_refusal`)."""
    t_cfg, s_cfg = pair_cfgs(column)
    cls = MODELS.get(METHODS[row][0]['type'])
    return cls.pair_refusal(build(s_cfg), build(t_cfg))


def teacher_checkpoint(column: str, path: str) -> str:
    torch.manual_seed(0)
    teacher = build(pair_cfgs(column)[0])
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return path
