"""The VLR weights against a per-image, per-box, per-level loop written
after the source's ``get_vlr_region``."""
import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps

from sea_kd.models.methods.ld.valuable_localization_region import (
    distance_iou, vlr_weights)


def diou_loop(a, g):
    iou = float(bbox_overlaps(a[None], g[None])[0, 0])
    ca, cg = (a[:2] + a[2:]) / 2, (g[:2] + g[2:]) / 2
    lt, rb = torch.minimum(a[:2], g[:2]), torch.maximum(a[2:], g[2:])
    return iou - float(((ca - cg)**2).sum()) / (float(
        ((rb - lt)**2).sum()) + 1e-6)


def vlr_loop(anchors, sizes, gts, topk, low):
    n = anchors.shape[0]
    out = torch.zeros(n)
    if len(gts) == 0:
        return out
    iou = bbox_overlaps(anchors, gts)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    best = torch.full((n, ), -1.0)
    for g in range(len(gts)):
        cg = (gts[g, :2] + gts[g, 2:]) / 2
        dist = ((centres - cg)**2).sum(-1).sqrt()
        cand, start = [], 0
        for size in sizes:
            k = min(topk, size)
            idx = dist[start:start + size].topk(k, largest=False).indices
            cand += [float(iou[start + i, g]) for i in idx]
            start += size
        cand = torch.tensor(cand)
        thr = float(cand.mean() + cand.std())
        for i in range(n):
            d = diou_loop(anchors[i], gts[g])
            if low * thr <= d < thr and iou[i, g] > best[i]:
                best[i] = iou[i, g]
    return best.clamp(min=0)


def _anchors():
    # three levels of square anchors on a 64-px image: 8x8, 4x4, 2x2 grids
    out, sizes = [], []
    for stride in (8, 16, 32):
        n = 64 // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n),
                                indexing='ij')
        c = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * stride
        half = stride * 2
        out.append(torch.cat([c - half, c + half], 1))
        sizes.append(n * n)
    return torch.cat(out), sizes


def test_diou_matches_its_definition():
    torch.manual_seed(0)
    a = torch.rand(5, 2) * 30
    a = torch.cat([a, a + torch.rand(5, 2) * 20 + 1], 1)
    g = torch.rand(1, 3, 2) * 30
    g = torch.cat([g, g + torch.rand(1, 3, 2) * 20 + 1], -1)
    got = distance_iou(a, g)
    for i in range(5):
        for j in range(3):
            assert got[0, i, j].item() == pytest.approx(
                diou_loop(a[i], g[0, j]), abs=1e-5)


@pytest.mark.parametrize('topk', [9, 3])
def test_vlr_matches_the_loop(topk):
    torch.manual_seed(0)
    anchors, sizes = _anchors()
    xy = torch.rand(2, 3, 2) * 40
    gts = torch.cat([xy, xy + torch.rand(2, 3, 2) * 30 + 8], -1)
    valid = torch.tensor([[True, True, True], [True, False, False]])
    got = vlr_weights(anchors, sizes, gts, valid, topk=topk)
    for b in range(2):
        ref = vlr_loop(anchors, sizes, gts[b][valid[b]], topk, 0.25)
        torch.testing.assert_close(got[b], ref, atol=1e-5, rtol=0)
    assert (got > 0).any()


def test_no_ground_truth_gives_no_region():
    anchors, sizes = _anchors()
    got = vlr_weights(anchors, sizes, torch.zeros(2, 0, 4),
                      torch.zeros(2, 0, dtype=torch.bool))
    assert got.shape == (2, anchors.shape[0]) and not got.any()
    xy = torch.rand(1, 1, 2) * 40
    gts = torch.cat([xy, xy + 10], -1)
    none_valid = vlr_weights(anchors, sizes, gts,
                             torch.zeros(1, 1, dtype=torch.bool))
    assert not none_valid.any()
