"""SparseRoIAlign against mmcv's RoIAlign kernel: values and gradients."""
import pytest
import torch
from mmcv.ops import roi_align

from sea_kd.models.utils.sparse_roi_align import (SparseRoIAlign,
                                                  roi_align_matrix,
                                                  sparse_roi_layers)


def random_rois(num, batch, size, seed=0):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * size * 1.1 - 0.1 * size
    wh = torch.rand(num, 2, generator=gen) * size * 0.7
    rois = torch.cat([torch.randint(0, batch, (num, 1), generator=gen).float(),
                      xy, xy + wh], 1)
    # regions partly or wholly off the map, a zero-size and a thin one
    rois[0, 1:] = torch.tensor([-40., -30., -5., 10.])
    rois[1, 1:] = torch.tensor([size + 5., 3., size + 60., 40.])
    rois[2, 1:] = torch.tensor([10., 10., 10., 10.])
    rois[3, 1:] = torch.tensor([30., 30., 30.2, 85.])
    return rois


@pytest.mark.parametrize('stride', [4, 8, 32])
@pytest.mark.parametrize('sampling_ratio', [0, 1, 2])
@pytest.mark.parametrize('aligned', [True, False])
def test_values_and_gradients_equal_mmcv(stride, sampling_ratio, aligned):
    torch.manual_seed(stride + sampling_ratio)
    batch, channels, size = 3, 5, 96
    feat = torch.randn(batch, channels, size // stride, size // stride + 1,
                       dtype=torch.float64, requires_grad=True)
    rois = random_rois(40, batch, size).double()
    layer = SparseRoIAlign((7, 6), 1.0 / stride, sampling_ratio, aligned)
    ours = layer(feat, rois)
    ref = roi_align(feat.float(), rois.float(), (7, 6), 1.0 / stride,
                    sampling_ratio, 'avg', aligned).double()
    assert ours.shape == ref.shape == (40, channels, 7, 6)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)

    grad_out = torch.randn_like(ours)
    grad, = torch.autograd.grad(ours, feat, grad_out)
    feat32 = feat.detach().float().requires_grad_()
    ref32 = roi_align(feat32, rois.float(), (7, 6), 1.0 / stride,
                      sampling_ratio, 'avg', aligned)
    grad_ref, = torch.autograd.grad(ref32, feat32, grad_out.float())
    torch.testing.assert_close(grad, grad_ref.double(), atol=1e-4,
                               rtol=1e-4)


def test_gradcheck_in_double_precision():
    feat = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1., 2., 17., 14.], [1, -3., 4., 9., 30.]],
                        dtype=torch.float64)
    layer = SparseRoIAlign(3, 1 / 4.)
    assert torch.autograd.gradcheck(lambda f: layer(f, rois), (feat, ))


def test_hand_computed_single_sample():
    # aligned: the region (1, 1)-(3, 3) spans (0.5, 0.5)-(2.5, 2.5) in pixel
    # centres; one bin, one sample at (1.5, 1.5): the mean of four pixels
    feat = torch.arange(16.).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0., 1., 1., 3., 3.]])
    out = SparseRoIAlign(1, 1.0, sampling_ratio=1, aligned=True)(feat, rois)
    assert out.item() == pytest.approx((5 + 6 + 9 + 10) / 4)
    # legacy (not aligned): the sample falls on the pixel (2, 2) itself
    out = SparseRoIAlign(1, 1.0, sampling_ratio=1, aligned=False)(feat, rois)
    assert out.item() == pytest.approx(10.0)


def test_matrix_rows_are_in_region_bin_order_without_zeros():
    rois = torch.tensor([[0., 0., 0., 8., 8.], [1., 4., 4., 12., 12.]])
    crow, col, value = roi_align_matrix(rois, (2, 4, 4), (2, 2), 0.25)
    assert crow.shape == (2 * 2 * 2 + 1, )
    assert bool((value != 0).all())
    # every in-map bin averages weights summing to 1
    sums = torch.stack([value[crow[i]:crow[i + 1]].sum() for i in range(8)])
    torch.testing.assert_close(sums, torch.ones(8))
    # region 1 lies in image 1: its columns index the second map
    assert bool((col[crow[4]:] >= 16).all())


def test_no_region_gives_an_empty_result_connected_to_the_input():
    feat = torch.randn(2, 4, 5, 5, requires_grad=True)
    out = SparseRoIAlign(7, 0.5)(feat, torch.zeros(0, 5))
    assert out.shape == (0, 4, 7, 7)
    out.sum().backward()
    assert feat.grad is not None and not feat.grad.any()


def test_reversed_region_is_refused_with_the_fix():
    feat = torch.randn(1, 2, 8, 8)
    rois = torch.tensor([[0., 10., 10., 5., 20.]])
    with pytest.raises(ValueError, match='x2 >= x1'):
        SparseRoIAlign(7, 0.25)(feat, rois)


def test_sparse_roi_layers_swaps_an_extractor_and_restores_it():
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    torch.manual_seed(0)
    extractor = SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=6, featmap_strides=[4, 8, 16, 32])
    feats = tuple(torch.randn(2, 6, 128 // s, 128 // s)
                  for s in (4, 8, 16, 32))
    rois = random_rois(30, 2, 128)
    rois[:, 3:] = torch.maximum(rois[:, 3:], rois[:, 1:3])
    originals = list(extractor.roi_layers)
    ref = extractor(feats, rois)
    with sparse_roi_layers(extractor):
        assert all(isinstance(layer, SparseRoIAlign)
                   for layer in extractor.roi_layers)
        ours = extractor(feats, rois)
    assert list(extractor.roi_layers) == originals
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    with sparse_roi_layers(extractor, enabled=False):
        assert list(extractor.roi_layers) == originals
