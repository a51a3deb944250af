"""Matching student queries to teacher queries: costs and pairs."""
import itertools
import math

import pytest
import torch

from sea_kd.models.methods.hmld.query_matching import (hungarian_pairs,
                                                       query_match_costs)

from ...losses.test_query_kd_loss import _giou, _xyxy


def _outputs(g=2, b=2, qs=3, qt=4, c=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(g, b, qs, c, generator=gen),
            torch.rand(g, b, qs, 4, generator=gen) * 0.4 + 0.2,
            torch.randn(g, b, qt, c, generator=gen),
            torch.rand(g, b, qt, 4, generator=gen) * 0.4 + 0.2,
            torch.tensor([[64., 48., 64., 48.], [32., 32., 32., 32.]][:b]))


@pytest.mark.parametrize('use_sigmoid', [True, False])
def test_costs_match_a_plain_loop(use_sigmoid):
    s_cls, s_box, t_cls, t_box, scale = _outputs()
    costs = query_match_costs(s_cls, s_box, t_cls, t_box, scale,
                              use_sigmoid, 1.0, 5.0, 2.0)
    assert costs.shape == (2, 2, 3, 4)
    for g, b, i, j in itertools.product(range(2), range(2), range(3),
                                        range(4)):
        s, t = s_cls[g, b, i].tolist(), t_cls[g, b, j].tolist()
        if use_sigmoid:
            ce = sum(-(1 / (1 + math.exp(-tc))) * math.log(
                1 / (1 + math.exp(-sc))) - (1 - 1 / (1 + math.exp(-tc))) *
                math.log(1 - 1 / (1 + math.exp(-sc)))
                for sc, tc in zip(s, t))
        else:
            zt, zs = sum(map(math.exp, t)), sum(map(math.exp, s))
            ce = -sum(math.exp(tc) / zt * (sc - math.log(zs))
                      for sc, tc in zip(s, t))
        l1 = sum(abs(x - y) for x, y in zip(s_box[g, b, i].tolist(),
                                            t_box[g, b, j].tolist()))
        w, h = scale[b, 0].item(), scale[b, 1].item()
        giou = _giou(_xyxy(s_box[g, b, i].tolist(), w, h),
                     _xyxy(t_box[g, b, j].tolist(), w, h))
        assert costs[g, b, i, j].item() == pytest.approx(
            ce + 5 * l1 - 2 * giou, rel=1e-5, abs=1e-5)


def _brute_force_min(cost):
    rows, cols = cost.shape
    if rows <= cols:
        return min(sum(cost[i, p[i]] for i in range(rows))
                   for p in itertools.permutations(range(cols), rows))
    return _brute_force_min(cost.T)


def test_pairs_are_one_to_one_and_of_minimum_cost():
    costs = torch.rand(2, 3, 3, 4, generator=torch.Generator().manual_seed(1))
    group, image, s_idx, t_idx = hungarian_pairs(costs)
    assert len(group) == 2 * 3 * 3  # every student query is paired
    for g, b in itertools.product(range(2), range(3)):
        sel = (group == g) & (image == b)
        assert sorted(s_idx[sel].tolist()) == [0, 1, 2]
        assert len(set(t_idx[sel].tolist())) == 3
        total = costs[g, b, s_idx[sel], t_idx[sel]].sum().item()
        assert total == pytest.approx(
            _brute_force_min(costs[g, b].numpy()), rel=1e-6)


def test_more_student_than_teacher_queries_pairs_each_teacher_query_once():
    costs = torch.rand(1, 1, 5, 2, generator=torch.Generator().manual_seed(2))
    _, _, s_idx, t_idx = hungarian_pairs(costs)
    assert sorted(t_idx.tolist()) == [0, 1]
    assert len(set(s_idx.tolist())) == 2


def test_teacher_keep_restricts_the_targets():
    costs = torch.rand(2, 2, 4, 5, generator=torch.Generator().manual_seed(3))
    keep = [[torch.tensor([1, 3]), torch.tensor([], dtype=torch.long)],
            [torch.tensor([4]), torch.tensor([0, 2, 4])]]
    group, image, s_idx, t_idx = hungarian_pairs(costs, keep)
    for g, b in itertools.product(range(2), range(2)):
        sel = (group == g) & (image == b)
        assert sorted(t_idx[sel].tolist()) == sorted(keep[g][b].tolist())
        if sel.any():
            sub = costs[g, b][:, keep[g][b]].numpy()
            assert costs[g, b, s_idx[sel], t_idx[sel]].sum().item() == \
                pytest.approx(_brute_force_min(sub), rel=1e-6)


def test_no_targets_give_no_pairs():
    costs = torch.rand(1, 2, 3, 3)
    keep = [[torch.tensor([], dtype=torch.long)] * 2]
    pairs = hungarian_pairs(costs, keep)
    assert all(p.numel() == 0 and p.dtype == torch.long for p in pairs)
