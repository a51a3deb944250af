"""The dense student's region representations are registered components:
the shipped two by name, an unknown name refused with the names, and a new
one plugged in by registering it."""
import pytest
import torch

from sea_kd.models.methods.gdetkd import DENSE_REGION_REPRS, DenseRegionRepr
from sea_kd.models.methods.gdetkd.region_repr import (FusedRoIRepr,
                                                      HeadTowerRepr)

from ....conftest import make_batch
from ...distillers.test_gdetkd_distiller import (distill_terms, gdetkd,
                                                 student_cfg, teacher_ckpt)

__all__ = ['teacher_ckpt']  # the module fixture, shared


def test_the_shipped_representations_by_name():
    assert DENSE_REGION_REPRS.get('fused_roi') is FusedRoIRepr
    assert DENSE_REGION_REPRS.get('head_tower') is HeadTowerRepr
    assert HeadTowerRepr.record_parts == ('dense_tower', )
    assert FusedRoIRepr.record_parts == ()


def test_an_unknown_name_is_refused_with_the_names(teacher_ckpt):
    with pytest.raises(ValueError, match=r"one of \('fused_roi', "
                       r"'head_tower'.*got 'pooled'"):
        gdetkd(student_cfg('retinanet'), teacher_ckpt,
               dense_region_repr='pooled')
    # an importable name or a non-string is not a registered reading
    for name in ('os', None):
        with pytest.raises(ValueError, match='dense_region_repr must be'):
            gdetkd(student_cfg('retinanet'), teacher_ckpt,
                   dense_region_repr=name)


def test_the_chosen_representation_sets_the_record_parts(teacher_ckpt):
    fused = gdetkd(student_cfg('retinanet'), teacher_ckpt)
    assert isinstance(fused.methods['gdetkd'].region_repr, FusedRoIRepr)
    assert fused.record_parts == ('neck', 'dense_head')
    tower = gdetkd(student_cfg('retinanet'), teacher_ckpt,
                   dense_region_repr='head_tower',
                   region_projector=dict(type='RegionProjector',
                                         pooled_size=1))
    assert isinstance(tower.methods['gdetkd'].region_repr, HeadTowerRepr)
    assert tower.record_parts == ('neck', 'dense_head', 'dense_tower')


class _MeanNeckRepr(DenseRegionRepr):
    """A test reading: the mean of the student's first neck level, the same
    vector for every region (one per image)."""

    seen = []

    def in_channels(self, method):
        return int(method.student.neck.out_channels)

    def features(self, method, record, rois, fused):
        means = record.student_neck[0].mean((2, 3))
        self.seen.append(rois.shape[0])
        return means[rois[:, 0].long()][:, :, None, None]


def test_a_registered_representation_plugs_in(teacher_ckpt):
    DENSE_REGION_REPRS.register_module(name='mean_neck',
                                       module=_MeanNeckRepr)
    try:
        model = gdetkd(student_cfg('retinanet'), teacher_ckpt,
                       dense_region_repr='mean_neck',
                       region_projector=dict(type='RegionProjector',
                                             pooled_size=1))
        method = model.methods['gdetkd']
        assert method.region_projector.fc1.in_features == 16
        inputs, samples = make_batch(model, num_items=[3, 2])
        terms = distill_terms(model.loss(inputs, samples))
        assert set(terms) == {'loss_gdetkd_sgfi', 'loss_gdetkd_ckd'}
        assert _MeanNeckRepr.seen and _MeanNeckRepr.seen[-1] > 0
        terms['loss_gdetkd_ckd'].backward()
        neck_grad = sum(p.grad.abs().sum() for p in model.student.neck
                        .parameters() if p.grad is not None)
        assert torch.isfinite(neck_grad) and neck_grad > 0
    finally:
        DENSE_REGION_REPRS.module_dict.pop('mean_neck', None)
