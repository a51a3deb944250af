"""Record parts as registered objects: their order, the teacher modules
they run, and a new part added by registration alone."""
from contextlib import ExitStack

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.capture import (RECORD_PARTS, MethodTap, RecordPart,
                                   check_parts, ordered_parts,
                                   record_part_names, register_record_part,
                                   teacher_modules)
from sea_kd.models.methods import DistillMethod

from ...conftest import make_batch, tiny_retina_pair


def test_the_built_in_parts_in_record_order():
    assert record_part_names()[:5] == ('neck', 'dense_head', 'dense_tower',
                                       'roi', 'queries')
    assert ordered_parts(['roi', 'neck', 'roi']) == ('neck', 'roi')
    with pytest.raises(ValueError, match="Unknown record parts \\['necks'\\]"):
        ordered_parts(['necks'])


def test_the_teacher_runs_the_modules_of_its_parts():
    assert teacher_modules(()) == ('backbone', 'neck')
    assert teacher_modules(('dense_head', )) == ('backbone', 'neck',
                                                 'bbox_head')
    assert teacher_modules(('roi', 'dense_tower')) == ('backbone', 'neck',
                                                       'roi_head')
    assert teacher_modules(('queries', )) == ('backbone', 'neck', 'encoder',
                                              'decoder', 'bbox_head')


class _ProbePart(RecordPart):
    """Records the student's first backbone stage output; runs the
    teacher's RetinaNet head on its neck features."""
    name = 'probe'
    requirement = 'needs a probe'
    teacher_modules = ('bbox_head', )
    checked = []

    def check(self, detector, role):
        type(self).checked.append(role)
        if not hasattr(detector, 'bbox_head'):
            raise TypeError(f'the {role} has no bbox_head to probe')

    def tap_student(self, student, stack: ExitStack):
        tap = stack.enter_context(MethodTap(student.backbone, 'forward'))

        def fill(record, inputs):
            record.method_outputs['probe_student'] = tap.first.output[0]
        return fill

    def run_teacher(self, teacher, inputs, record):
        # the neck ran first: its features are in the record
        record.method_outputs['probe_teacher'] = teacher.bbox_head(
            record.teacher_neck)[0]


class _ProbeMethod(DistillMethod):
    default_name = 'probe'
    record_parts = ('neck', 'probe')
    teacher_taps = ('bbox_head.retina_cls', )

    def forward(self, record):
        student = record.method_outputs['probe_student']
        teacher = record.method_outputs['probe_teacher']
        self.seen = (len(teacher),
                     len(record.teacher_taps['bbox_head.retina_cls']))
        return dict(probe=student.pow(2).mean())


@pytest.fixture
def probe_part():
    register_record_part(_ProbePart)
    _ProbePart.checked = []
    yield _ProbePart
    RECORD_PARTS.module_dict.pop('probe')


def test_a_registered_part_is_checked_run_and_filled(save_state,
                                                     probe_part):
    s_cfg, t_cfg, ckpt, _ = tiny_retina_pair(save_state)
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt,
                              methods=[dict(type=_ProbeMethod)]))
    # checked on both sides at build; its teacher module may be tapped
    assert {'student', 'teacher'} <= set(probe_part.checked)
    assert model.record_parts == ('neck', 'probe')
    assert teacher_modules(model.teacher_parts) == ('backbone', 'neck',
                                                    'bbox_head')
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    # the teacher's head ran once per level, its tapped classifier too
    levels = len(model.teacher.bbox_head.prior_generator.strides)
    assert model.methods['probe'].seen == (levels, levels)
    losses['loss_probe_probe'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.backbone.parameters())


def test_a_part_refuses_a_detector_by_its_own_check(save_state, probe_part):
    with pytest.raises(TypeError, match='no bbox_head to probe'):
        check_parts(torch.nn.Module(), ['probe'], 'student')
    assert _ProbeMethod.pair_refusal(torch.nn.Module(),
                                     torch.nn.Module()) == 'needs a probe'
