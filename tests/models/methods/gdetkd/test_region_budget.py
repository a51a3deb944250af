"""Per-image region budget: positives first, the cap per image, order."""
import pytest
import torch

from sea_kd.models.methods.gdetkd.region_budget import regions_within_budget


def reference(batch_idx, positive, max_per_img):
    """Plain per-image loop: count what a correct selection must keep."""
    kept = {}
    for image in batch_idx.unique().tolist():
        idx = (batch_idx == image).nonzero().flatten()
        pos = int(positive[idx].sum())
        kept[image] = (min(pos, max_per_img),
                       min(len(idx), max_per_img) - min(pos, max_per_img))
    return kept


@pytest.mark.parametrize('max_per_img', [1, 3, 5, 100])
def test_each_image_keeps_positives_first_up_to_the_budget(max_per_img):
    gen = torch.Generator().manual_seed(max_per_img)
    batch_idx = torch.tensor([0] * 7 + [1] * 2 + [3] * 9).float()
    positive = torch.rand(18, generator=gen) < 0.4
    keep = regions_within_budget(batch_idx, positive, max_per_img, gen)
    assert keep.dtype == torch.int64
    assert bool((keep.diff() > 0).all())  # ascending, no duplicate
    for image, (num_pos, num_neg) in reference(batch_idx, positive,
                                               max_per_img).items():
        mine = keep[batch_idx[keep] == image]
        assert int(positive[mine].sum()) == num_pos
        assert int((~positive[mine]).sum()) == num_neg


def test_negatives_are_drawn_at_random():
    batch_idx = torch.zeros(10)
    positive = torch.zeros(10, dtype=torch.bool)
    positive[4] = True
    picks = set()
    for seed in range(20):
        keep = regions_within_budget(batch_idx, positive, 2,
                                     torch.Generator().manual_seed(seed))
        assert 4 in keep.tolist()
        picks.update(keep.tolist())
    assert len(picks) > 5  # not always the same negative


def test_none_keeps_everything_and_empty_input_is_empty():
    batch_idx = torch.tensor([0., 0., 1.])
    positive = torch.tensor([False, True, False])
    assert regions_within_budget(batch_idx, positive, None).tolist() == \
        [0, 1, 2]
    empty = regions_within_budget(torch.zeros(0), torch.zeros(0, dtype=bool),
                                  4)
    assert empty.shape == (0, )


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='max_per_img'):
        regions_within_budget(torch.zeros(3), torch.zeros(3, dtype=bool), 0)
    with pytest.raises(ValueError, match='positive'):
        regions_within_budget(torch.zeros(3), torch.zeros(2, dtype=bool), 1)
