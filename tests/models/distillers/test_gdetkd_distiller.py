"""G-DetKD in a Distiller end to end with tiny detectors: both pipelines,
the regions of a student that predicts nothing, head transfer, build
errors."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.logging import MessageHub

from sea_kd.models.capture import MethodTap
from sea_kd.models.distillers import Distiller

from ...conftest import build, make_batch, tiny_detector_cfg

PYTORCH_PREPROCESSOR = tiny_detector_cfg('faster_rcnn').data_preprocessor


def student_cfg(kind, **bbox_head):
    if kind == 'faster_rcnn':
        cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=16)
        cfg.roi_head.bbox_head.update(bbox_head)
    elif kind == 'fcos':
        # GroupNorm head: multiples of 32 channels; pytorch-style input
        # normalisation like the Faster R-CNN teacher's
        cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
        cfg.backbone.style = 'pytorch'
        cfg.data_preprocessor = copy.deepcopy(PYTORCH_PREPROCESSOR)
    else:
        cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=16)
    return cfg


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_detector_cfg('faster_rcnn', base_channels=16,
                            neck_channels=32)
    teacher = build(cfg)
    path = tmp_path_factory.mktemp('gdetkd') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return cfg, str(path)


def gdetkd(s_cfg, teacher_ckpt, distiller=None, **gdetkd_options):
    """A Distiller with one GDetKD method of ``gdetkd_options``;
    ``distiller``: the Distiller's own options (e.g. ``student_ckpt``)."""
    t_cfg, ckpt = teacher_ckpt
    model = MODELS.build(dict(type='Distiller', student=s_cfg,
                              teacher=copy.deepcopy(t_cfg),
                              teacher_ckpt=ckpt,
                              methods=[dict(type='GDetKD',
                                            **gdetkd_options)],
                              **(distiller or {})))
    model.init_weights()
    model.train()
    return model


def distill_terms(losses):
    return {k: v for k, v in losses.items() if k.startswith('loss_gdetkd')}


def grad_sum(params):
    return sum(p.grad.abs().sum().item() for p in params
               if p.grad is not None)


def test_homogeneous_pipeline(teacher_ckpt):
    model = gdetkd(student_cfg('faster_rcnn', fc_out_channels=16),
                   teacher_ckpt)
    method = model.methods['gdetkd']
    assert method.pipeline == 'homogeneous'
    assert model.record_parts == ('neck', 'roi')
    assert method.student_strides == [4., 8., 16., 32.]
    assert method.loss_ckd.adapter.in_features == 16  # student FC 16 -> 32
    inputs, samples = make_batch(model, num_items=[3, 2])
    with MethodTap(model.student.backbone, 'forward') as s_tap, \
            MethodTap(model.teacher.backbone, 'forward') as t_tap:
        losses = model.loss(inputs, samples)
    assert len(s_tap.calls) == 1 and len(t_tap.calls) == 1
    terms = distill_terms(losses)
    assert set(terms) == {'loss_gdetkd_sgfi', 'loss_gdetkd_ckd',
                          'loss_gdetkd_cls', 'loss_gdetkd_reg'}
    for value in terms.values():
        assert value.dim() == 0 and value.dtype == torch.float32
        assert torch.isfinite(value)
    sum(terms.values()).backward()
    assert grad_sum(model.student.backbone.parameters()) > 0
    assert grad_sum(model.student.roi_head.bbox_head.parameters()) > 0
    assert grad_sum(method.loss_sgfi.parameters()) > 0
    assert grad_sum(method.loss_ckd.parameters()) > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert method.loss_ckd.memory_sizes == [method.loss_ckd.memory.shape[0]]


@pytest.mark.parametrize('kind', ['retinanet', 'fcos'])
def test_heterogeneous_pipeline(kind, teacher_ckpt):
    model = gdetkd(student_cfg(kind), teacher_ckpt)
    method = model.methods['gdetkd']
    assert method.pipeline == 'heterogeneous'
    assert model.record_parts == ('neck', 'dense_head')
    assert model.teacher_parts == ('neck', )
    assert method.loss_cls is None and method.loss_reg is None
    assert method.student_strides == [8., 16., 32., 64., 128.]
    inputs, samples = make_batch(model, num_items=[3, 2])
    with MethodTap(model.student.backbone, 'forward') as s_tap:
        losses = model.loss(inputs, samples)
    assert len(s_tap.calls) == 1  # no second student forward
    terms = distill_terms(losses)
    assert set(terms) == {'loss_gdetkd_sgfi', 'loss_gdetkd_ckd'}
    assert all(torch.isfinite(v) and v.dtype == torch.float32
               for v in terms.values())
    sum(terms.values()).backward()
    assert grad_sum(model.student.neck.parameters()) > 0
    assert grad_sum(method.region_projector.parameters()) > 0
    assert grad_sum(method.loss_sgfi.parameters()) > 0
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('kind', ['retinanet', 'fcos'])
def test_heterogeneous_ckd_on_the_head_tower(kind, teacher_ckpt):
    model = gdetkd(student_cfg(kind), teacher_ckpt, loss_sgfi=None,
                   dense_region_repr='head_tower',
                   region_projector=dict(type='RegionProjector',
                                         pooled_size=1))
    method = model.methods['gdetkd']
    assert model.record_parts == ('neck', 'dense_head', 'dense_tower')
    assert method.tower_finest_scale == 32.  # read off the student's head
    tower = model.student.bbox_head.cls_convs[-1]
    assert method.region_projector.fc1.in_features == tower.out_channels
    seen = {}
    original = method.region_projector.forward

    def spy(x):
        seen['in'] = x
        return original(x)

    inputs, samples = make_batch(model, num_items=[3, 2])
    with MethodTap(model.student.bbox_head, 'forward_single') as head_tap:
        method.region_projector.forward = spy
        losses = model.loss(inputs, samples)
    del method.region_projector.forward
    # the head ran once per level (no second student forward)
    assert len(head_tap.calls) == len(method.student_strides)
    assert set(distill_terms(losses)) == {'loss_gdetkd_ckd'}
    assert seen['in'].shape[1:] == (tower.out_channels, 1, 1)
    losses['loss_gdetkd_ckd'].backward()
    assert grad_sum(model.student.bbox_head.cls_convs.parameters()) > 0
    assert grad_sum(method.region_projector.parameters()) > 0
    # the classifier itself is not on the CKD path
    cls_layer = getattr(model.student.bbox_head, 'retina_cls', None) or \
        model.student.bbox_head.conv_cls
    assert all(p.grad is None or not p.grad.any()
               for p in cls_layer.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_dense_student_option_errors_name_the_problem(teacher_ckpt):
    retina = student_cfg('retinanet')
    with pytest.raises(ValueError, match="sgfi_regions must be one of"):
        gdetkd(retina, teacher_ckpt, sgfi_regions='objects')
    with pytest.raises(ValueError, match="dense_region_repr='fused_roi'"):
        gdetkd(retina, teacher_ckpt, sgfi_regions='positive')
    with pytest.raises(ValueError, match='pooled_size=1'):
        gdetkd(retina, teacher_ckpt, dense_region_repr='head_tower')
    with pytest.raises(ValueError, match="one of \\('fused_roi'"):
        gdetkd(retina, teacher_ckpt, dense_region_repr='tower')
    with pytest.raises(ValueError, match='tower_finest_scale'):
        gdetkd(retina, teacher_ckpt, tower_finest_scale=0)
    no_tower = copy.deepcopy(retina)
    no_tower.bbox_head.stacked_convs = 0
    with pytest.raises(ValueError, match='cls_convs'):
        gdetkd(no_tower, teacher_ckpt, dense_region_repr='head_tower',
               region_projector=dict(type='RegionProjector', pooled_size=1))


@pytest.mark.parametrize('kind', ['faster_rcnn', 'retinanet'])
def test_sgfi_on_positive_regions_only(kind, teacher_ckpt):
    extra = dict(fc_out_channels=16) if kind == 'faster_rcnn' else {}
    tower = {} if kind == 'faster_rcnn' else dict(
        dense_region_repr='head_tower',
        region_projector=dict(type='RegionProjector', pooled_size=1))
    model = gdetkd(student_cfg(kind, **extra), teacher_ckpt,
                   sgfi_regions='positive', **tower)
    method = model.methods['gdetkd']
    inputs, samples = make_batch(model, num_items=[3, 2])
    with MethodTap(method.loss_sgfi, 'forward') as sgfi_tap, \
            MethodTap(method.loss_ckd, 'forward') as ckd_tap:
        terms = distill_terms(model.loss(inputs, samples))
    assert all(torch.isfinite(v) for v in terms.values())
    # SGFI sees the positives of the regions CKD sees, and only those
    ckd_rois, sgfi_rois = ckd_tap.first.args[2], sgfi_tap.first.args[2]
    assert 0 < len(sgfi_rois) < len(ckd_rois)
    gt = torch.cat([torch.cat([torch.full((len(s.gt_instances), 1), float(b)),
                               s.gt_instances.bboxes], 1)
                    for b, s in enumerate(samples)])
    for roi in sgfi_rois:  # each overlaps a ground-truth box of its image
        same = gt[gt[:, 0] == roi[0], 1:]
        assert float(bbox_overlaps(roi[None, 1:], same).max()) >= 0.5
    assert {tuple(r.tolist()) for r in sgfi_rois} <= \
        {tuple(r.tolist()) for r in ckd_rois}


def test_student_without_boxes_gets_the_ground_truth_as_regions(
        teacher_ckpt, monkeypatch):
    model = gdetkd(student_cfg('retinanet'), teacher_ckpt)
    method = model.methods['gdetkd']
    with torch.no_grad():  # every class score 0 after the sigmoid
        model.student.bbox_head.retina_cls.bias.fill_(-1e4)
    seen = {}
    original = method.heterogeneous_rois

    def spy(record):
        seen['rois'] = original(record)
        return seen['rois']

    monkeypatch.setattr(method, 'heterogeneous_rois', spy)
    inputs, samples = make_batch(model, num_items=[3, 2])
    terms = distill_terms(model.loss(inputs, samples))
    rois, positive = seen['rois']
    assert positive.all()  # ground-truth boxes only
    for b, sample in enumerate(samples):
        boxes = rois[rois[:, 0] == b, 1:]
        gt = sample.gt_instances.bboxes
        assert boxes.shape == gt.shape
        assert torch.equal(boxes.sort(0).values, gt.sort(0).values)
    assert all(torch.isfinite(v) for v in terms.values())


def test_terms_are_skippable(teacher_ckpt):
    model = gdetkd(student_cfg('faster_rcnn'), teacher_ckpt,
                   loss_ckd=None, loss_cls=None)
    inputs, samples = make_batch(model)
    assert set(distill_terms(model.loss(inputs, samples))) == {
        'loss_gdetkd_sgfi', 'loss_gdetkd_reg'}
    assert not any('loss_ckd' in k for k in model.state_dict())
    model = gdetkd(student_cfg('faster_rcnn'), teacher_ckpt, loss_sgfi=None)
    assert set(distill_terms(model.loss(inputs, samples))) == {
        'loss_gdetkd_ckd', 'loss_gdetkd_cls', 'loss_gdetkd_reg'}


def test_memory_not_in_checkpoint(teacher_ckpt):
    model = gdetkd(student_cfg('retinanet'), teacher_ckpt)
    method = model.methods['gdetkd']
    model.loss(*make_batch(model))
    assert len(method.loss_ckd.memory_sizes) == 1
    # the method's modules are saved under methods.<name>. (sea_kd 0.2)
    keys = [k for k in model.state_dict()
            if k.startswith('methods.gdetkd.loss_ckd')]
    assert sorted(keys) == ['methods.gdetkd.loss_ckd.projection.bias',
                            'methods.gdetkd.loss_ckd.projection.weight']


def test_head_transfer_lists_the_copied_parameters(teacher_ckpt, save_state):
    # narrower FC: only the predictor biases have the teacher's shapes
    model = gdetkd(student_cfg('faster_rcnn', fc_out_channels=16),
                   teacher_ckpt)
    method = model.methods['gdetkd']
    t_head = model.teacher.roi_head.bbox_head
    s_head = model.student.roi_head.bbox_head
    assert method.transferred_head_params == ['fc_cls.bias', 'fc_reg.bias']
    assert torch.equal(s_head.fc_cls.bias, t_head.fc_cls.bias)
    # the same head shapes (32-channel neck, 32-d FCs): everything
    s_cfg = student_cfg('faster_rcnn')
    s_cfg.neck.out_channels = 32
    s_cfg.rpn_head.update(in_channels=32, feat_channels=32)
    s_cfg.roi_head.bbox_roi_extractor.out_channels = 32
    s_cfg.roi_head.bbox_head.in_channels = 32
    model = gdetkd(s_cfg, teacher_ckpt)
    method = model.methods['gdetkd']
    t_state = model.teacher.roi_head.bbox_head.state_dict()
    assert method.transferred_head_params == sorted(t_state)
    for name, value in model.student.roi_head.bbox_head.state_dict().items():
        assert torch.equal(value, t_state[name])
    assert gdetkd(s_cfg, teacher_ckpt, head_transfer=False).methods[
        'gdetkd'].transferred_head_params == []
    # a student checkpoint, loaded after the transfer, wins
    torch.manual_seed(5)
    own = build(s_cfg)
    model = gdetkd(s_cfg, teacher_ckpt,
                   distiller=dict(student_ckpt=save_state(own)))
    assert torch.equal(model.student.roi_head.bbox_head.fc_cls.weight,
                       own.roi_head.bbox_head.fc_cls.weight)
    # a dense student has no R-CNN head to transfer into
    assert gdetkd(student_cfg('retinanet'), teacher_ckpt).methods[
        'gdetkd'].transferred_head_params == []


def test_region_sampling_override(teacher_ckpt, monkeypatch):
    model = gdetkd(
        student_cfg('retinanet'), teacher_ckpt,
        region_sampling=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.5, min_pos_iou=0.5),
            sampler=dict(type='RandomSampler', num=8, pos_fraction=0.25,
                         add_gt_as_proposals=True)))
    method = model.methods['gdetkd']
    inputs, samples = make_batch(model, num_items=[2, 2])
    rois = []
    original = method.heterogeneous_rois
    monkeypatch.setattr(method, 'heterogeneous_rois',
                        lambda r: rois.append(original(r)) or rois[-1])
    model.loss(inputs, samples)
    assert all(int((rois[0][0][:, 0] == b).sum()) <= 8 for b in range(2))


def test_build_errors_name_the_problem(teacher_ckpt, save_state):
    t_cfg, ckpt = teacher_ckpt
    retina = student_cfg('retinanet')
    with pytest.raises(TypeError, match='two-stage teacher'):
        dense_teacher = build(tiny_detector_cfg('retinanet'))
        MODELS.build(dict(type='Distiller', student=retina,
                          teacher=tiny_detector_cfg('retinanet'),
                          teacher_ckpt=save_state(dense_teacher),
                          methods=[dict(type='GDetKD')]))
    with pytest.raises(ValueError, match='no term to compute'):
        gdetkd(retina, teacher_ckpt, loss_sgfi=None, loss_ckd=None)
    with pytest.raises(ValueError, match='loss_sgfi is None'):
        gdetkd(retina, teacher_ckpt, loss_sgfi=None)
    no_train_cfg = copy.deepcopy(t_cfg)
    no_train_cfg.train_cfg = None
    with pytest.raises(ValueError, match='region_sampling'):
        MODELS.build(dict(type='Distiller', student=retina,
                          teacher=no_train_cfg, teacher_ckpt=ckpt,
                          methods=[dict(type='GDetKD')]))
    agnostic = student_cfg('faster_rcnn', reg_class_agnostic=True)
    with pytest.raises(ValueError, match='reg_class_agnostic'):
        gdetkd(agnostic, teacher_ckpt)
    assert isinstance(gdetkd(agnostic, teacher_ckpt, loss_reg=None),
                      Distiller)
    with pytest.raises(ValueError, match='no shared FC layers'):
        gdetkd(student_cfg('faster_rcnn', type='ConvFCBBoxHead',
                           num_shared_fcs=0, num_cls_fcs=1, num_reg_fcs=1),
               teacher_ckpt)


def test_region_budget_homogeneous_caps_feature_terms_only(teacher_ckpt,
                                                           monkeypatch):
    budget = 3
    model = gdetkd(student_cfg('faster_rcnn', fc_out_channels=16),
                   teacher_ckpt, max_regions_per_img=budget)
    method = model.methods['gdetkd']
    seen = {}
    for name in ('loss_sgfi', 'loss_ckd', 'loss_cls'):
        module = getattr(method, name)

        def spy(*args, _forward=module.forward, _name=name, **kwargs):
            seen[_name] = args
            return _forward(*args, **kwargs)

        monkeypatch.setattr(module, 'forward', spy)
    records = []
    original = model.distill_losses_from
    monkeypatch.setattr(model, 'distill_losses_from',
                        lambda r: records.append(r) or original(r))
    inputs, samples = make_batch(model, num_items=[3, 2])
    terms = distill_terms(model.loss(inputs, samples))
    assert all(torch.isfinite(v) for v in terms.values())

    roi = records[0].roi
    sgfi_rois = seen['loss_sgfi'][2]
    assert seen['loss_ckd'][0].shape[0] == sgfi_rois.shape[0]
    assert seen['loss_cls'][0].shape[0] == roi.rois.shape[0]  # every RoI
    for b, result in enumerate(roi.sampling_results):
        mine = sgfi_rois[sgfi_rois[:, 0] == b, 1:]
        assert mine.shape[0] == min(budget, len(result.priors))
        # the positives come first: as many kept as the budget allows
        kept_pos = sum(bool((mine == p).all(1).any())
                       for p in result.pos_priors)
        assert kept_pos == min(budget, len(result.pos_priors))


def test_region_budget_heterogeneous_caps_the_teacher_regions(
        teacher_ckpt, monkeypatch):
    model = gdetkd(student_cfg('retinanet'), teacher_ckpt,
                   max_regions_per_img=4)
    import sea_kd.models.methods.gdetkd.dense as module
    seen = []
    original = module.teacher_region_forward
    monkeypatch.setattr(module, 'teacher_region_forward',
                        lambda t, f, rois: seen.append(rois) or
                        original(t, f, rois))
    inputs, samples = make_batch(model, num_items=[3, 2])
    terms = distill_terms(model.loss(inputs, samples))
    assert all(torch.isfinite(v) for v in terms.values())
    rois = seen[0]
    for b in range(2):
        assert int((rois[:, 0] == b).sum()) == 4
    with pytest.raises(ValueError, match='max_regions_per_img'):
        gdetkd(student_cfg('retinanet'), teacher_ckpt, max_regions_per_img=0)


@pytest.mark.parametrize('kind', ['gfl', 'tood', 'yolox'])
def test_dense_students_of_other_families_train(kind, teacher_ckpt):
    """The dense pipeline reads any family through its view: one step
    with finite terms, gradients in the student, regions within the
    images' scale."""
    torch.manual_seed(0)
    # what the Runner's RuntimeInfoHook sets (TOOD's assignment reads it)
    MessageHub.get_current_instance().update_info('epoch', 0)
    model = gdetkd(tiny_detector_cfg(kind, base_channels=8,
                                     neck_channels=32), teacher_ckpt)
    with MethodTap(model.teacher.roi_head, '_bbox_forward') as tap:
        inputs, samples = make_batch(model, num_items=[3, 2])
        terms = distill_terms(model.loss(inputs, samples))
    assert set(terms) == {'loss_gdetkd_sgfi', 'loss_gdetkd_ckd'}
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert grad_sum(model.student.backbone.parameters()) > 0
    rois = tap.first.args[-1]
    sizes = rois[:, 3:] - rois[:, 1:3]
    assert float(sizes.median()) < 4 * max(inputs.shape[-2:])
