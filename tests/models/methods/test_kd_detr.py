"""KD-DETR on DETR-family pairs: its terms, the points both decoders see,
the student's own predictions left alone, gradients to the student only,
options and refused pairs."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors import QueryDecoderView

from ...conftest import build, make_batch, tiny_detector_cfg
from .conftest import recording_step

TERMS = {f'loss_kddetr_{kind}_{term}' for kind in ('spec', 'gen')
         for term in ('cls', 'l1', 'giou')}


def teacher_ckpt(cfg, save_state):
    """A teacher whose box branches predict offsets (mmdet initialises
    their last layers to zero, which would make every box term 0)."""
    torch.manual_seed(0)
    teacher = build(cfg)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return save_state(teacher, 'teacher.pth')


def distiller(kind, save_state, teacher_kind=None, **method):
    t_cfg = tiny_detector_cfg(teacher_kind or kind, base_channels=16)
    s_cfg = tiny_detector_cfg(kind, base_channels=8)
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg,
        teacher_ckpt=teacher_ckpt(t_cfg, save_state),
        methods=[dict(type='KDDETR', **method)]))
    model.init_weights()
    return model


def kd_terms(losses):
    return {k: v for k, v in losses.items() if k.startswith('loss_kddetr_')}


@pytest.mark.parametrize('kind,teacher_kind',
                         [('dino', None), ('dab_detr', None),
                          ('dab_detr', 'dino'),
                          ('deformable_detr_two_stage', None),
                          ('deformable_detr_two_stage', 'dino')])
def test_a_step_trains_the_student_only(kind, teacher_kind, save_state):
    model = distiller(kind, save_state, teacher_kind)
    inputs, samples = make_batch(model)
    terms = kd_terms(model.loss(inputs, samples))
    assert set(terms) == TERMS
    assert all(torch.isfinite(v) and v > 0 for v in terms.values())
    sum(terms.values()).backward()
    branches = model.student.bbox_head.cls_branches \
        if kind != 'dab_detr' else [model.student.bbox_head.fc_cls]
    assert any(b.weight.grad is not None and b.weight.grad.abs().sum() > 0
               for b in branches)
    # through the decoder's cross-attention to the encoder and the neck
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.neck.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_the_students_own_losses_are_those_of_the_student_alone(
        save_state):
    """The points run in decoder calls of their own after the student's
    loss: its own (denoising and matching) losses are those of the
    student alone, and the step's full backward (own and KD-DETR terms)
    runs (no recorded tensor was changed in place)."""
    model = distiller('dino', save_state)
    inputs, samples = make_batch(model)
    torch.manual_seed(3)
    alone = model.student.loss(inputs, samples)
    torch.manual_seed(3)
    losses = model.loss(inputs, samples)
    assert kd_terms(losses)
    for name, value in alone.items():
        torch.testing.assert_close(losses[name], value, rtol=0, atol=0)
    total, _ = model.parse_losses(losses)
    total.backward()


def test_both_decoders_see_the_same_points(save_state, monkeypatch):
    model = distiller('dino', save_state)
    method = model.methods['kddetr']
    calls = []
    decode = QueryDecoderView.decode

    def recorded(view, decoder_inputs, queries):
        is_teacher = view.detector is model.teacher
        # the teacher decodes without autograd, the student with it
        assert torch.is_grad_enabled() != is_teacher
        calls.append((is_teacher, queries))
        return decode(view, decoder_inputs, queries)

    monkeypatch.setattr(QueryDecoderView, 'decode', recorded)
    seen = recording_step(method, monkeypatch)
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)
    (s_spec_t, spec), (s_gen_t, s_gen), (t_gen_t, t_gen) = \
        calls[0], calls[2] if calls[1][0] else calls[1], \
        calls[1] if calls[1][0] else calls[2]
    assert not s_spec_t and not s_gen_t and t_gen_t
    # specific points: the teacher's own matching queries of the step
    teacher_inputs = seen['record'].teacher_queries.decoder_inputs
    torch.testing.assert_close(spec.boxes,
                               teacher_inputs['reference_points'])
    torch.testing.assert_close(spec.content, teacher_inputs['query'])
    # general points: the same boxes for both, one set for the batch
    torch.testing.assert_close(s_gen.boxes, t_gen.boxes)
    assert s_gen.boxes.shape == (2, 30, 4)  # the student's 30 queries
    torch.testing.assert_close(s_gen.boxes[0], s_gen.boxes[1])
    assert not s_gen.content.any() and not t_gen.content.any()


def test_the_terms_are_the_loss_of_both_decoders_outputs(save_state,
                                                          monkeypatch):
    """Specific points: the student's decoder on the teacher's queries
    against the teacher's recorded last layer, every student layer."""
    model = distiller('dino', save_state, num_general_points=0)
    method = model.methods['kddetr']
    seen = recording_step(method, monkeypatch)
    inputs, samples = make_batch(model)
    terms = kd_terms(model.loss(inputs, samples))
    assert set(terms) == {t for t in TERMS if '_spec_' in t}
    record = seen['record']
    view = method.student_view
    cls, boxes = view.decode(
        record.student_queries.decoder_inputs,
        method.teacher_view.matching_queries(
            record.teacher_queries.decoder_inputs))
    assert cls.shape[0] == 2  # both student layers
    expected = MODELS.build(dict(type='KDDETRLoss'))(
        cls, boxes, record.teacher_queries.cls_scores[-1],
        record.teacher_queries.bbox_preds[-1])
    for term, value in expected.items():
        torch.testing.assert_close(terms[f'loss_kddetr_spec_{term}'],
                                   value)


def test_the_last_layer_only(save_state, monkeypatch):
    model = distiller('dino', save_state, num_general_points=0,
                      layers='last')
    method = model.methods['kddetr']
    shapes = []
    loss_kd = method.loss_kd.forward

    def recorded(s_cls, *args):
        shapes.append(s_cls.shape)
        return loss_kd(s_cls, *args)

    monkeypatch.setattr(method.loss_kd, 'forward', recorded)
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)
    assert shapes == [(1, 2, 30, 3)]


def test_general_points_only_with_random_content(save_state):
    model = distiller('dino', save_state, specific_points=False,
                      num_general_points=7, general_content='random')
    inputs, samples = make_batch(model)
    terms = kd_terms(model.loss(inputs, samples))
    assert set(terms) == {t for t in TERMS if '_gen_' in t}


@pytest.mark.parametrize('options,match', [
    (dict(specific_points=False, num_general_points=0), 'nothing'),
    (dict(general_content='learned'), 'general_content'),
    (dict(layers='first'), 'layers'),
    (dict(num_general_points=-1), 'num_general_points'),
    (dict(num_general_points=2.5), 'num_general_points'),
    (dict(num_general_points=True), 'num_general_points'),
])
def test_bad_options_are_refused(options, match, save_state):
    with pytest.raises(ValueError, match=match):
        distiller('dino', save_state, **options)


def test_specific_points_must_be_a_bool(save_state):
    with pytest.raises(TypeError, match='specific_points'):
        distiller('dino', save_state, specific_points='False')


@pytest.mark.parametrize('kind,match', [
    ('detr', 'no decoder view of its DETR'),
    ('deformable_detr', 'as_two_stage=True'),
    ('retinanet', 'not a DetectionTransformer')])
def test_pairs_without_a_decoder_view_are_refused(kind, match, save_state):
    with pytest.raises(TypeError, match=match):
        distiller(kind, save_state)


def general_points_of(model, monkeypatch, steps=1):
    """The queries of each decoder call of ``steps`` steps, as
    ``[(is_teacher, queries), ...]``."""
    calls = []
    decode = QueryDecoderView.decode

    def recorded(view, decoder_inputs, queries):
        calls.append((view.detector is model.teacher, queries))
        return decode(view, decoder_inputs, queries)

    monkeypatch.setattr(QueryDecoderView, 'decode', recorded)
    for _ in range(steps):
        inputs, samples = make_batch(model)
        model.loss(inputs, samples)
    return calls


def test_random_content_is_the_same_for_both_decoders(save_state,
                                                      monkeypatch):
    model = distiller('dino', save_state, specific_points=False,
                      general_content='random')
    (_, student), (_, teacher) = sorted(
        general_points_of(model, monkeypatch), key=lambda c: c[0])
    assert student.content.abs().sum() > 0
    torch.testing.assert_close(student.content, teacher.content)
    torch.testing.assert_close(student.boxes, teacher.boxes)


def test_general_points_are_drawn_anew_every_step(save_state, monkeypatch):
    model = distiller('dino', save_state, specific_points=False)
    calls = general_points_of(model, monkeypatch, steps=2)
    students = [q for is_teacher, q in calls if not is_teacher]
    assert len(students) == 2
    assert not torch.allclose(students[0].boxes, students[1].boxes)
    assert 0 < students[0].boxes.min() and students[0].boxes.max() < 1


@pytest.mark.parametrize('num_items', [[0, 0], [0, 2]])
def test_images_without_ground_truth(num_items, save_state):
    model = distiller('dino', save_state)
    inputs, samples = make_batch(model, num_items=num_items)
    terms = kd_terms(model.loss(inputs, samples))
    assert set(terms) == TERMS
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()


def two_widths(monkeypatch, save_state, kind, teacher_width=128):
    """``build(**method)`` of a pair of ``kind`` whose teacher's decoder
    the views take for ``teacher_width`` wide."""
    widths = {}
    monkeypatch.setattr(
        QueryDecoderView, 'embed_dims',
        property(lambda view: widths.get(id(view.detector),
                                         view.detector.embed_dims)))
    t_cfg = tiny_detector_cfg(kind, base_channels=16)
    s_cfg = tiny_detector_cfg(kind, base_channels=8)
    ckpt = teacher_ckpt(t_cfg, save_state)

    def build_with(**method):
        model = MODELS.build(dict(
            type='Distiller', student=s_cfg, teacher=t_cfg,
            teacher_ckpt=ckpt, methods=[dict(type='KDDETR', **method)],
            init_cfg=None))
        return model

    original = MODELS.get('KDDETR').setup

    def setup(method):
        widths[id(method.teacher)] = teacher_width
        original(method)

    monkeypatch.setattr(MODELS.get('KDDETR'), 'setup', setup)
    return build_with


def test_decoders_of_two_widths_are_refused_with_the_fix(save_state,
                                                         monkeypatch):
    """Specific points feed the teacher's content queries to the student,
    which needs one width; zero content without them does not."""
    build_with = two_widths(monkeypatch, save_state, 'dino')
    with pytest.raises(ValueError, match='specific_points=False'):
        build_with()
    with pytest.raises(ValueError, match='same random content'):
        build_with(specific_points=False, general_content='random')
    build_with(specific_points=False)


def test_two_stage_deformable_detr_reads_no_content_of_the_other_width(
        save_state, monkeypatch):
    """A two-stage Deformable DETR makes its queries from the boxes alone,
    so decoders of two widths share specific and random points."""
    build_with = two_widths(monkeypatch, save_state,
                            'deformable_detr_two_stage')
    build_with()
    build_with(specific_points=False, general_content='random')


def test_a_single_stage_deformable_detr_is_refused_naming_its_role(
        save_state):
    with pytest.raises(TypeError, match="run the student's decoder.*"
                       'as_two_stage=True'):
        distiller('deformable_detr', save_state,
                  teacher_kind='deformable_detr_two_stage')
