"""Category masks against a plain per-pixel reference."""
import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from mmengine.structures import InstanceData

from sea_kd.models.detectors.strides import normalize_strides
from sea_kd.models.utils import category_masks, infer_strides, pixel_centres


def reference_masks(gts, metas, sizes, strides, num_classes, use_masks):
    """Slow reference: one Python loop per image, level, pixel, instance."""
    out, valid_out = [], []
    for gt, meta in zip(gts, metas):
        img_h, img_w = meta['img_shape'][:2]
        masks = None
        if use_masks and 'masks' in gt:
            masks = gt.masks.to_ndarray()
        rows, valid_rows = [], []
        for (h, w), s in zip(sizes, strides):
            for yi in range(h):
                for xi in range(w):
                    x, y = (xi + 0.5) * s, (yi + 0.5) * s
                    valid = x < img_w and y < img_h
                    member = [False] * num_classes
                    for g in range(len(gt.labels)):
                        if masks is not None:
                            mh, mw = masks.shape[1:]
                            inside = (int(y) < mh and int(x) < mw
                                      and bool(masks[g, int(y), int(x)]))
                        else:
                            x1, y1, x2, y2 = gt.bboxes[g].tolist()
                            inside = x1 <= x < x2 and y1 <= y < y2
                        if inside and valid:
                            member[int(gt.labels[g])] = True
                    rows.append(member)
                    valid_rows.append(valid)
        out.append(torch.tensor(rows, dtype=torch.bool).reshape(
            -1, num_classes).T)
        valid_out.append(torch.tensor(valid_rows))
    return torch.stack(out), torch.stack(valid_out)


def random_gt(num, img_h, img_w, num_classes, gen, with_mask=False,
              polygons=False):
    xy = torch.rand(num, 2, generator=gen) * torch.tensor([img_w, img_h])
    wh = torch.rand(num, 2, generator=gen) * torch.tensor([img_w, img_h]) / 2
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(max=img_w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(max=img_h)
    gt = InstanceData(
        bboxes=boxes,
        labels=torch.randint(0, num_classes, (num, ), generator=gen))
    if with_mask and polygons:
        polys = []
        for x1, y1, x2, y2 in boxes.tolist():  # a triangle in each box
            polys.append([np.array([x1, y1, x2, y1, x1, y2], dtype=float)])
        gt.masks = PolygonMasks(polys, img_h, img_w)
    elif with_mask:
        gt.masks = BitmapMasks(
            (torch.rand(num, img_h, img_w, generator=gen) > 0.6).numpy(),
            img_h, img_w)
    return gt


SIZES = [(8, 10), (4, 5), (2, 3)]  # a batch input of 64 x 80 (H x W)
STRIDES = [8, 16, 32]


@pytest.mark.parametrize('mode', ['boxes', 'bitmap', 'polygon'])
def test_masks_match_reference_with_mixed_image_sizes(mode):
    gen = torch.Generator().manual_seed(0)
    metas = [dict(img_shape=(64, 80)), dict(img_shape=(40, 56)),
             dict(img_shape=(64, 30))]
    gts = [random_gt(n, m['img_shape'][0], m['img_shape'][1], 4, gen,
                     with_mask=mode != 'boxes', polygons=mode == 'polygon')
           for n, m in zip([5, 0, 3], metas)]
    centres = pixel_centres(SIZES, STRIDES)
    masks = category_masks(gts, metas, centres, num_classes=4)
    expected, valid = reference_masks(gts, metas, SIZES, STRIDES, 4,
                                      use_masks=mode != 'boxes')
    assert torch.equal(masks.valid, valid)
    assert torch.equal(masks.classes, expected)
    assert torch.equal(masks.foreground, expected.any(1))
    assert torch.equal(masks.background, valid & ~expected.any(1))
    # padding is neither foreground nor background
    assert not valid[1].all() and not masks.background[1][~valid[1]].any()
    assert masks.classes.any()


def test_boxes_used_when_masks_disabled_or_absent():
    gen = torch.Generator().manual_seed(1)
    metas = [dict(img_shape=(64, 80))] * 2
    with_masks = random_gt(4, 64, 80, 3, gen, with_mask=True)
    plain = InstanceData(bboxes=with_masks.bboxes.clone(),
                         labels=with_masks.labels.clone())
    centres = pixel_centres(SIZES, STRIDES)
    boxes_only = category_masks([plain, plain], metas, centres, 3)
    disabled = category_masks([with_masks, with_masks], metas, centres, 3,
                              use_masks=False)
    assert torch.equal(boxes_only.classes, disabled.classes)
    # one image with masks, one without: each image its own way
    mixed = category_masks([with_masks, plain], metas, centres, 3)
    ref_mask, _ = reference_masks([with_masks], metas[:1], SIZES, STRIDES, 3,
                                  use_masks=True)
    assert torch.equal(mixed.classes[0], ref_mask[0])
    assert torch.equal(mixed.classes[1], boxes_only.classes[1])
    assert not torch.equal(mixed.classes[0], boxes_only.classes[0])


def test_compact_classes_and_images_without_ground_truth():
    metas = [dict(img_shape=(64, 80))] * 2
    gts = [InstanceData(bboxes=torch.tensor([[0., 0., 40., 40.],
                                             [30., 30., 80., 64.]]),
                        labels=torch.tensor([5, 2])),
           InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long))]
    centres = pixel_centres(SIZES, STRIDES)
    compact = category_masks(gts, metas, centres)
    full = category_masks(gts, metas, centres, num_classes=6)
    assert compact.class_ids.tolist() == [2, 5]
    assert torch.equal(compact.classes, full.classes[:, [2, 5]])
    assert not full.classes[1].any()
    assert torch.equal(full.background[1], full.valid[1])
    # no ground truth anywhere: no class rows at all
    empty = category_masks(gts[1:], metas[1:], centres)
    assert empty.classes.shape == (1, 0, centres.shape[0])
    with pytest.raises(ValueError, match='Labels must lie'):
        category_masks(gts, metas, centres, num_classes=3)


def test_pixel_centres_order_and_half_open_boxes():
    centres = pixel_centres([(2, 3), (1, 2)], [4, (8, 6)])
    assert centres.tolist() == [[2, 2], [6, 2], [10, 2], [2, 6], [6, 6],
                                [10, 6], [4, 3], [12, 3]]
    gts = [InstanceData(bboxes=torch.tensor([[2., 2., 6., 6.]]),
                        labels=torch.tensor([0]))]
    masks = category_masks(gts, [dict(img_shape=(8, 12))],
                           pixel_centres([(2, 3)], [4]), num_classes=1)
    # (2, 2) is inside (left/top edges included), (6, *) outside
    assert masks.classes[0, 0].tolist() == [True, False, False, False,
                                            False, False]


def test_strides():
    # COCO-size input: P6/P7 sizes are rounded up by strided convolutions
    sizes = [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)]
    assert infer_strides(sizes, (800, 1344)) == [
        (float(s), float(s)) for s in (8, 16, 32, 64, 128)]
    assert normalize_strides([4, (8, 16)]) == [(4., 4.), (8., 16.)]
    with pytest.raises(ValueError, match='stride'):
        normalize_strides([(1, 2, 3)])
    with pytest.raises(ValueError, match='2 feature levels but 1 strides'):
        pixel_centres([(2, 2), (1, 1)], [4])
