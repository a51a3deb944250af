"""Parts of a step timed alone: a step's record cut from its graph, the
methods' terms on it, and the own passes of CrossKD and KD-DETR (none for
the others)."""
import dataclasses
from typing import NamedTuple

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.analysis.step_parts import (detached, own_passes, own_passes_step,
                                        record_of_step, terms_step)

from ..conftest import build, make_batch, tiny_detector_cfg, tiny_retina_pair

CROSSKD = dict(type='CrossKD', reused_teacher_head_idx=1,
               adapter=dict(type='ConvAdapter'))


def retina_distiller(save_state, method):
    s_cfg, t_cfg, ckpt, _ = tiny_retina_pair(save_state)
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt, methods=[method]))
    model.init_weights()
    return model


class Pair(NamedTuple):
    first: torch.Tensor
    second: object


@dataclasses.dataclass
class Holder:
    items: list
    pair: Pair
    table: dict
    name: str = 'x'


def test_detached_cuts_every_tensor_and_keeps_the_structure():
    leaf = torch.ones(3, requires_grad=True)
    made = leaf * 2  # in a graph
    plain = torch.zeros(2)
    holder = Holder([made, plain], Pair(made, 'label'), {'k': (made, 1)})
    copy = detached(holder)
    assert isinstance(copy, Holder) and isinstance(copy.pair, Pair)
    assert copy.name == 'x' and copy.pair.second == 'label'
    cut = copy.items[0]
    assert cut.grad_fn is None and cut.requires_grad and cut.is_leaf
    torch.testing.assert_close(cut, made.detach())
    # one tensor stays one tensor wherever it appears
    assert copy.pair.first is cut and copy.table['k'][0] is cut
    assert not copy.items[1].requires_grad
    # the original is untouched
    assert holder.items[0] is made and made.grad_fn is not None


def test_the_record_of_a_step_is_cut_from_the_graph(save_state):
    model = retina_distiller(save_state, CROSSKD)
    inputs, samples = make_batch(model)
    record = record_of_step(model, inputs, samples)
    assert 'distill_losses_from' not in vars(model)  # put back
    neck = record.student_neck[0]
    assert neck.is_leaf and neck.requires_grad
    taps = [t for outs in record.student_taps.values() for t in outs]
    assert taps and all(t.grad_fn is None for t in taps)


def test_crosskd_runs_the_teacher_head_tail_on_the_students_features(
        save_state):
    model = retina_distiller(save_state, CROSSKD)
    method = model.methods['crosskd']
    inputs, samples = make_batch(model)
    record = record_of_step(model, inputs, samples)
    outputs = own_passes(model, record)
    # the teacher head's class and box maps of its 5 levels, made from the
    # student's features (they carry the student's gradient)
    dense = record.teacher_dense
    teacher_maps = [*dense.cls_scores, *dense.bbox_preds]
    assert [o.shape for o in outputs] == [t.shape for t in teacher_maps]
    assert all(o.requires_grad for o in outputs)
    assert not any(torch.allclose(o, t)
                   for o, t in zip(outputs, teacher_maps))
    own_passes_step(model, record)
    # the backward reaches the adapters and ends at the record's features:
    # nothing of the student, nothing of the teacher
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in method.adapters.parameters())
    assert all(p.grad is None for p in model.student.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    # fresh leaves each call: the record's own stay without gradient
    taps = [t for outs in record.student_taps.values() for t in outs]
    assert all(t.grad is None for t in taps)


def test_the_patch_is_removed_when_the_step_fails(save_state, monkeypatch):
    model = retina_distiller(save_state, CROSSKD)
    inputs, samples = make_batch(model)

    def broken(*args):
        raise RuntimeError('broken step')

    monkeypatch.setattr(model.student, 'loss', broken)
    with pytest.raises(RuntimeError, match='broken step'):
        record_of_step(model, inputs, samples)
    assert 'distill_losses_from' not in vars(model)


def test_feature_methods_run_no_network_of_their_own(save_state):
    model = retina_distiller(save_state, dict(type='FeatureImitation'))
    inputs, samples = make_batch(model)
    record = record_of_step(model, inputs, samples)
    assert own_passes(model, record) == []


def test_kd_detr_runs_both_decoders_on_its_points(save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('dino', base_channels=16)
    s_cfg = tiny_detector_cfg('dino', base_channels=8)
    teacher = build(t_cfg)
    ckpt = save_state(teacher, 'teacher.pth')
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt,
                              methods=[dict(type='KDDETR')]))
    model.init_weights()
    inputs, samples = make_batch(model)
    record = record_of_step(model, inputs, samples)
    outputs = own_passes(model, record)
    # specific and general points: the student's (cls, boxes) of every
    # layer and the teacher's of its last layer, each
    assert len(outputs) == 8
    student = [o for o in outputs if o.requires_grad]
    assert len(student) == 4 and all(o.dim() == 4 for o in student)
    assert student[0].shape[:3] == (2, 2, 30)  # layers, images, queries
    own_passes_step(model, record)
    # the student's decoder and head learn; the backward ends at the
    # encoder's memory of the record
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.decoder.parameters())
    assert all(p.grad is None for p in model.student.encoder.parameters())
    assert all(p.grad is None for p in model.student.backbone.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_the_terms_alone_are_the_steps_terms_and_end_at_the_record(
        save_state):
    """(d): ``terms_step`` on a step's record (handed to it uncut, as the
    step made it) gives the step's own terms (same batch, same weights);
    its backward reaches the methods' parameters and stops at the record:
    no student or teacher parameter gets a gradient (it would without the
    cut, the record's tensors being in the step's graph)."""
    model = retina_distiller(save_state, dict(type='FGD'))
    inputs, samples = make_batch(model)
    step_terms = {k[len('loss_'):]: v.detach()
                  for k, v in model.loss(inputs, samples).items()
                  if k.startswith('loss_fgd')}
    # the record as the step hands it to the methods, still in its graph
    captured = []
    distill_losses_from = model.distill_losses_from
    model.distill_losses_from = lambda record: (
        captured.append(record) or distill_losses_from(record))
    model.loss(inputs, samples)
    del model.distill_losses_from
    record = captured[0]
    neck = record.student_neck[0]
    assert neck.grad_fn is not None  # uncut
    alone = terms_step(model, record)
    assert set(alone) == set(step_terms) and len(alone) > 1
    for name, value in alone.items():
        torch.testing.assert_close(value, step_terms[name])
    method = model.methods['fgd']
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in method.parameters())
    assert all(p.grad is None for p in model.student.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
