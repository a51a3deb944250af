"""A dense head's features at region positions: the level rule, the cell,
against a plain per-region loop; gradients, empty input, fp16, errors."""
import math

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.methods.gdetkd.region_positions import (features_at_regions,
                                                           head_finest_scale,
                                                           region_levels)

from ....conftest import tiny_detector_cfg

STRIDES = [8., 16., 32.]


def levels_for(batch=2, channels=3, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, math.ceil(size / s),
                        math.ceil(size / s), generator=gen) for s in STRIDES]


def reference(feats, rois, strides, finest_scale):
    """One region at a time, with Python scalars."""
    out = []
    for b, x1, y1, x2, y2 in rois.tolist():
        scale = math.sqrt(max(x2 - x1, 0) * max(y2 - y1, 0))
        level = 0 if scale == 0 else math.floor(
            math.log2(scale / finest_scale + 1e-6))
        level = min(max(level, 0), len(feats) - 1)
        feat, stride = feats[level], strides[level]
        h, w = feat.shape[2:]
        col = min(max(math.floor((x1 + x2) / 2 / stride), 0), w - 1)
        row = min(max(math.floor((y1 + y2) / 2 / stride), 0), h - 1)
        out.append(feat[int(b), :, row, col])
    return torch.stack(out)


def test_level_rule_by_hand():
    # s_0 = 32: level 0 below 64 px, level 1 below 128, level 2 beyond
    rois = torch.tensor([[0, 0, 0, 10, 10], [0, 0, 0, 63, 63],
                         [0, 0, 0, 64, 64], [0, 0, 0, 127, 127],
                         [0, 0, 0, 128, 128], [0, 0, 0, 500, 500],
                         [0, 5, 5, 5, 5], [0, 0, 0, 32, 128]]).float()
    assert region_levels(rois, 3, 32.).tolist() == [0, 0, 1, 1, 2, 2, 0, 1]
    with pytest.raises(ValueError, match='finest_scale'):
        region_levels(rois, 3, 0.)


def test_cell_of_the_centre_by_hand():
    feats = levels_for(batch=1)
    # centre (20, 44) on level 0 (stride 8): row 5, column 2
    roi = torch.tensor([[0., 10., 34., 30., 54.]])
    out = features_at_regions(feats, roi, STRIDES)
    assert torch.equal(out, feats[0][0, :, 5, 2][None])
    # a 96 px box centred at (48, 48) reads level 1 (stride 16): cell (3, 3)
    roi = torch.tensor([[0., 0., 0., 96., 96.]])
    assert torch.equal(features_at_regions(feats, roi, STRIDES),
                       feats[1][0, :, 3, 3][None])


@pytest.mark.parametrize('finest_scale', [None, 16., 40.])
def test_matches_a_per_region_loop(finest_scale):
    gen = torch.Generator().manual_seed(1)
    feats = levels_for(batch=3, channels=5, size=72, seed=2)
    xy = torch.rand(40, 2, generator=gen) * 90 - 10  # some off the map
    wh = torch.rand(40, 2, generator=gen) * 260
    batch_idx = torch.randint(0, 3, (40, 1), generator=gen).float()
    rois = torch.cat([batch_idx, xy, xy + wh], 1)
    out = features_at_regions(feats, rois, STRIDES, finest_scale)
    expected = reference(feats, rois, STRIDES, finest_scale or 32.)
    assert torch.equal(out, expected)
    used = set(region_levels(rois, 3, finest_scale or 32.).tolist())
    assert used == {0, 1, 2}, 'the case should reach every level'


def test_gradient_reaches_only_the_read_cells():
    feats = [f.requires_grad_() for f in levels_for()]
    rois = torch.tensor([[1., 0., 0., 16., 16.], [1., 0., 0., 16., 16.],
                         [0., 0., 0., 100., 100.]])
    out = features_at_regions(feats, rois, STRIDES)
    (out * torch.arange(1., 4.)[:, None]).sum().backward()
    grad0 = torch.zeros_like(feats[0])
    grad0[1, :, 1, 1] = 1 + 2  # two regions read the same cell
    grad1 = torch.zeros_like(feats[1])
    grad1[0, :, 3, 3] = 3
    assert torch.equal(feats[0].grad, grad0)
    assert torch.equal(feats[1].grad, grad1)
    assert not feats[2].grad.any()


def test_no_regions_and_half_precision():
    feats = levels_for()
    out = features_at_regions(feats, torch.zeros(0, 5), STRIDES)
    assert out.shape == (0, 3)
    half = [f.half() for f in feats]
    rois = torch.tensor([[0., 8., 8., 40., 40.]])
    out = features_at_regions(half, rois, STRIDES)
    assert out.dtype == torch.float16
    assert torch.equal(out, half[0][0, :, 3, 3][None])


def test_errors_name_the_problem():
    feats = levels_for()
    with pytest.raises(ValueError, match='3 feature levels but 2 strides'):
        features_at_regions(feats, torch.zeros(1, 5), STRIDES[:2])
    with pytest.raises(ValueError, match='outside the batch'):
        features_at_regions(feats, torch.tensor([[2., 0., 0., 8., 8.]]),
                            STRIDES)


def test_finest_scale_read_off_the_head():
    retina = tiny_detector_cfg('retinanet')
    # RetinaNet: octave_base_scale 4 at stride 8, the smallest anchor 32 px
    assert head_finest_scale(MODELS.build(retina).bbox_head) == 32.
    retina.bbox_head.anchor_generator.octave_base_scale = 2
    assert head_finest_scale(MODELS.build(retina).bbox_head) == 16.
    # FCOS: the first level regresses boxes up to 64 px
    fcos = MODELS.build(tiny_detector_cfg('fcos')).bbox_head
    assert head_finest_scale(fcos) == 32.
    fcos.regress_ranges = ((-1, 48), (48, 1e8))
    assert head_finest_scale(fcos) == 24.
