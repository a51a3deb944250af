"""Scaling, stopping and the non-finite guard of Distiller.loss."""
import copy

import pytest
import torch
import torch.distributed as dist
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from sea_kd.compat import CPUCompatibleDistributedDataParallel
from sea_kd.models.distillers import (NonFiniteDistillLossError,
                                      distill_loss_controls)

from ...conftest import build, make_batch, tiny_detector_cfg

STUDENT_KEYS = ('loss_cls', 'loss_bbox')


@pytest.fixture
def fi_cfg(save_state):
    torch.manual_seed(0)
    student = tiny_detector_cfg('retinanet', base_channels=8,
                                neck_channels=16)
    teacher = tiny_detector_cfg('retinanet', base_channels=8,
                                neck_channels=32)
    return dict(type='Distiller', student=student, teacher=teacher,
                teacher_ckpt=save_state(build(teacher), 'teacher.pth'),
                methods=[dict(type='FeatureImitation')])


def distiller(cfg, **distiller_options):
    """Build the Distiller config ``cfg`` with the Distiller's own options
    ``distiller_options`` (e.g. ``nonfinite_loss``)."""
    model = MODELS.build(copy.deepcopy(dict(cfg, **distiller_options)))
    model.init_weights()
    return model.train()


def count_teacher_forwards(model):
    calls = []
    extract = model.teacher.extract_feat

    def counting(*args, **kwargs):
        calls.append(1)
        return extract(*args, **kwargs)

    model.teacher.extract_feat = counting
    return calls


def student_grads(model):
    return {n: p.grad for n, p in model.named_parameters()
            if n.startswith('student.') and p.requires_grad}


def test_distillation_terms_are_scaled_student_terms_are_not(fi_cfg):
    model = distiller(fi_cfg)
    inputs, samples = make_batch(model)
    full = model.loss(inputs, copy.deepcopy(samples))
    model.set_distill_loss_scale(0.5)
    half = model.loss(inputs, copy.deepcopy(samples))
    assert half['loss_fi_feat'].item() == pytest.approx(
        0.5 * full['loss_fi_feat'].item(), rel=1e-5)
    for key in STUDENT_KEYS:
        assert torch.allclose(sum(half[key]), sum(full[key]))
    # a term factor multiplies the global one, by term or by loss name
    for key in ('feat', 'loss_fi_feat'):
        model.set_distill_loss_scale(0.5, {key: 0.5})
        quarter = model.loss(inputs, copy.deepcopy(samples))
        assert quarter['loss_fi_feat'].item() == pytest.approx(
            0.25 * full['loss_fi_feat'].item(), rel=1e-5)


def test_bad_factors_and_unknown_terms(fi_cfg):
    model = distiller(fi_cfg)
    with pytest.raises(ValueError, match="factor 'scale' must be a finite"):
        model.set_distill_loss_scale(float('nan'))
    with pytest.raises(ValueError, match="factor 'feat' must be"):
        model.set_distill_loss_scale(1.0, {'feat': -1})
    model.set_distill_loss_scale(1.0, {'rel': 0.5})
    inputs, samples = make_batch(model)
    with pytest.raises(KeyError, match=r"terms \['rel'\].*computes "
                       r"\['feat'\]"):
        model.loss(inputs, samples)
    with pytest.raises(ValueError, match="nonfinite_loss must be one of"):
        distiller(fi_cfg, nonfinite_loss='ignore')
    with pytest.raises(ValueError, match='max_consecutive_skips must be'):
        distiller(fi_cfg, max_consecutive_skips=-1)


def test_factor_zero_skips_the_teacher_and_trains_the_student_alone(fi_cfg):
    model = distiller(fi_cfg)
    calls = count_teacher_forwards(model)
    inputs, samples = make_batch(model)
    model.loss(inputs, copy.deepcopy(samples))
    assert len(calls) == 1

    model.set_distill_loss_scale(0.0)
    losses = model.loss(inputs, copy.deepcopy(samples))
    assert len(calls) == 1  # no teacher forward
    assert losses['loss_fi_feat'].item() == 0.0
    own = model.student.loss(inputs, copy.deepcopy(samples))
    assert set(losses) == set(own) | {'loss_fi_feat'}
    total, _ = model.parse_losses(losses)
    own_total, _ = model.parse_losses(own)
    assert total.item() == pytest.approx(own_total.item(), rel=1e-6)
    # the zero term reaches the adapters (DDP needs every parameter used)
    total.backward()
    for p in model.methods['fi'].adapters.parameters():
        assert p.grad is not None and not p.grad.any()

    # back on: the teacher runs again
    model.set_distill_loss_scale(1.0)
    assert model.loss(inputs, copy.deepcopy(samples))['loss_fi_feat'] > 0
    assert len(calls) == 2


def test_factor_zero_at_the_first_step_learns_the_term_names_once(fi_cfg):
    model = distiller(fi_cfg)
    calls = count_teacher_forwards(model)
    model.set_distill_loss_scale(0.0)
    inputs, samples = make_batch(model)
    first = model.loss(inputs, copy.deepcopy(samples))
    second = model.loss(inputs, copy.deepcopy(samples))
    assert len(calls) == 1
    assert first['loss_fi_feat'].item() == second['loss_fi_feat'].item() == 0


def test_a_zero_term_factor_zeroes_that_term_only_and_stops_when_all_are(
        fi_cfg):
    model = distiller(fi_cfg)
    calls = count_teacher_forwards(model)
    model.set_distill_loss_scale(1.0, {'feat': 0.0})
    inputs, samples = make_batch(model)
    assert model.loss(inputs, samples)['loss_fi_feat'].item() == 0
    model.loss(inputs, samples)  # feat is the only term: teacher skipped
    assert len(calls) == 1


def _ddp_train_steps(model, steps):
    wrapped = CPUCompatibleDistributedDataParallel(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2,
                            num_items=[3, 3], num_classes=3)
    for _ in range(steps):
        wrapped.train_step(copy.deepcopy(packed), optim)


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_stopped_distillation_under_ddp_needs_no_unused_parameters(
        fi_cfg, process_group, monkeypatch):
    model = distiller(fi_cfg)
    model.set_distill_loss_scale(0.0)
    _ddp_train_steps(model, 3)  # raises if the adapters were unused
    # without the zero tied to the adapters, DDP refuses the second step
    model = distiller(fi_cfg)
    model.set_distill_loss_scale(0.0)
    monkeypatch.setattr(type(model), '_distill_zero',
                        lambda self, ref: ref.new_zeros(()))
    with pytest.raises(RuntimeError, match='finished reduction'):
        _ddp_train_steps(model, 3)


def test_nonfinite_loss_raises_with_a_diagnosis(fi_cfg):
    model = distiller(fi_cfg)
    inputs, samples = make_batch(model)
    samples[0].set_metainfo(dict(img_path='data/x/000007.png', img_id=7))
    with torch.no_grad():  # a diverging adapter: its squares overflow
        model.methods['fi'].adapters[1].conv.weight.fill_(1e30)
    MessageHub.get_current_instance().update_info('iter', 41)
    with pytest.raises(FloatingPointError) as err:
        model.loss(inputs, samples)
    assert isinstance(err.value, NonFiniteDistillLossError)
    text = str(err.value)
    assert 'loss_fi_feat=inf' in text
    assert 'iteration 42 (runner.iter 41)' in text
    stats = inputs.float()
    assert f'min {stats.min().item():.4g}, max {stats.max().item():.4g}' \
        in text
    assert 'image 0: 3 GT boxes (img_id=7, img_path=data/x/000007.png)' \
        in text
    assert 'image 1: 3 GT boxes' in text
    assert 'student neck features: min' in text
    assert 'teacher neck features: min' in text
    assert 'lower the distillation loss weight or the learning rate' in text


def test_nonfinite_inputs_are_pointed_at(fi_cfg):
    model = distiller(fi_cfg)
    inputs, samples = make_batch(model)
    inputs[0, 0, 0, 0] = float('nan')
    with pytest.raises(NonFiniteDistillLossError,
                       match=r'loss_fi_feat=nan(.|\n)*1 NON-FINITE of '
                       f'{inputs.numel()}'):
        model.loss(inputs, samples)


def poison(model):
    """Make the feature loss NaN (connected to student and adapters)."""
    model.methods['fi'].loss_feat.loss_weight = float('nan')


def heal(model):
    model.methods['fi'].loss_feat.loss_weight = 1.0


def test_skip_mode_trains_the_student_with_finite_gradients(
        fi_cfg, monkeypatch):
    warnings = []
    monkeypatch.setattr(distill_loss_controls, 'print_log',
                        lambda msg, **kw: warnings.append((msg, kw)))
    model = distiller(fi_cfg, nonfinite_loss='skip')
    inputs, samples = make_batch(model)
    poison(model)
    losses = model.loss(inputs, copy.deepcopy(samples))
    assert losses['loss_fi_feat'].item() == 0
    total, _ = model.parse_losses(losses)
    own_total, _ = model.parse_losses(
        model.student.loss(inputs, copy.deepcopy(samples)))
    assert torch.isfinite(total)
    assert total.item() == pytest.approx(own_total.item(), rel=1e-6)
    model.zero_grad()
    total.backward()
    grads = student_grads(model)
    assert all(g is not None and torch.isfinite(g).all()
               for g in grads.values())
    assert any(g.abs().sum() > 0 for g in grads.values())
    assert all(not p.grad.any()
               for p in model.methods['fi'].adapters.parameters())
    assert model.skipped_steps == 1
    assert MessageHub.get_current_instance().get_scalar(
        'train/distill_skipped_steps').current() >= 1
    (message, kwargs), = warnings
    assert 'loss_fi_feat=nan' in message and 'Skipped' in message
    assert kwargs['level'] == 30  # logging.WARNING


def test_skip_mode_raises_after_max_consecutive_skips(fi_cfg, monkeypatch):
    monkeypatch.setattr(distill_loss_controls, 'print_log',
                        lambda *a, **k: None)
    model = distiller(fi_cfg, nonfinite_loss='skip', max_consecutive_skips=2)
    inputs, samples = make_batch(model)
    poison(model)
    model.loss(inputs, copy.deepcopy(samples))
    heal(model)  # a finite step resets the count
    model.loss(inputs, copy.deepcopy(samples))
    poison(model)
    model.loss(inputs, copy.deepcopy(samples))
    model.loss(inputs, copy.deepcopy(samples))
    assert model.skipped_steps == 3
    with pytest.raises(NonFiniteDistillLossError,
                       match='3 consecutive steps.*max_consecutive_skips=2'):
        model.loss(inputs, copy.deepcopy(samples))


@pytest.mark.parametrize('method, kind, options', [
    ('ADL', 'retinanet', {}), ('SEA', 'retinanet', {}),
    ('TBD', 'retinanet', {}),
    # no memory of past steps: both calls see the same negatives
    ('GDetKD', 'faster_rcnn',
     dict(loss_ckd=dict(type='CKDLoss', loss_weight=0.5, memory_batches=0)))
])
def test_every_distiller_takes_the_controls_and_scales_all_its_terms(
        method, kind, options, save_state):
    torch.manual_seed(0)
    student = tiny_detector_cfg(kind, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
    model = distiller(dict(type='Distiller', student=student,
                           teacher=teacher,
                           teacher_ckpt=save_state(build(teacher)),
                           methods=[dict(type=method, **options)]),
                      nonfinite_loss='skip', max_consecutive_skips=3)
    assert (model.nonfinite_loss, model.max_consecutive_skips) == ('skip', 3)
    inputs, samples = make_batch(model)
    (method_name, ) = model.method_names
    prefix = f'loss_{method_name}_'

    def terms(scale):
        model.set_distill_loss_scale(scale)
        torch.manual_seed(1)  # the same R-CNN samples in both calls
        losses = model.loss(inputs, copy.deepcopy(samples))
        return {k: v.item() for k, v in losses.items()
                if k.startswith(prefix)}

    full, half = terms(1.0), terms(0.5)
    assert full and full.keys() == half.keys()
    for key, value in full.items():
        assert half[key] == pytest.approx(0.5 * value, rel=1e-4, abs=1e-7)
