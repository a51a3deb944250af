"""CKDLoss: InfoNCE against plain loops, IoU-filtered negatives, the
memory (FIFO, size, gathered across processes, not in checkpoints),
gradients and edge cases."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from sea_kd.models.losses import CKDLoss
from sea_kd.models.losses import ckd_loss as ckd_module


def iou(a, b):
    w = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def reference(loss, s_repr, t_repr, rois, memory=(), remote_before=(),
              remote_after=(), gamma=0.07, threshold=0.5,
              include_positive=True):
    """Loops: region i against every key of the batch (remote processes'
    keys around the local ones), then the memory."""
    project = loss.projection if loss.key_space == 'projected' else \
        (lambda r: r)  # 'teacher': keys are the teacher's own vectors
    with torch.no_grad():
        s = [F.normalize(project(loss.adapter(r)), dim=0) for r in s_repr]
        t = [F.normalize(project(r), dim=0) for r in t_repr]
    keys = []  # (vector, local index or None)
    keys += [(k, None) for k in remote_before]
    keys += [(k, j) for j, k in enumerate(t)]
    keys += [(k, None) for k in remote_after]
    keys += [(k, None) for k in memory]
    terms = []
    for i in range(len(s)):
        def g(k):
            return math.exp(float(torch.dot(s[i], k)) / gamma)
        den = 0.0
        for k, j in keys:
            if j == i:
                if include_positive:
                    den += g(k)
                continue
            if j is not None and rois[i][0] == rois[j][0] and \
                    iou(rois[i][1:].tolist(), rois[j][1:].tolist()) > \
                    threshold:
                continue
            den += g(k)
        terms.append(-math.log(g(t[i]) / den))
    return sum(terms) / len(terms)


def batch(num=6, seed=0, d_s=8, d_t=12):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(num, d_s, generator=gen)
    t = torch.randn(num, d_t, generator=gen)
    xy = torch.rand(num, 2, generator=gen) * 20
    rois = torch.cat([torch.randint(0, 2, (num, 1), generator=gen).float(),
                      xy, xy + 10 + torch.rand(num, 2, generator=gen) * 5],
                     1)
    return s, t, rois


def overlapping_rois():
    """Image 0: regions 0 and 1 overlap (IoU 0.81), region 2 apart;
    image 1: region 3 at the place of region 0."""
    return torch.tensor([[0., 0., 0., 10., 10.], [0., 0., 0., 10., 9.],
                         [0., 30., 30., 40., 40.], [1., 0., 0., 10., 10.]])


@pytest.mark.parametrize('include_positive', [True, False])
def test_matches_loops_with_memory(include_positive):
    torch.manual_seed(0)
    loss = CKDLoss(student_channels=8, teacher_channels=12,
                   embed_channels=4, include_positive=include_positive)
    memory = []
    for step in range(3):
        s, t, rois = batch(num=4 + step, seed=step)
        expected = reference(loss, s, t, rois, memory=memory,
                             include_positive=include_positive)
        value = loss(s, t, rois)
        assert value.item() == pytest.approx(expected, rel=1e-5)
        with torch.no_grad():
            memory = [F.normalize(loss.projection(r), dim=0)
                      for r in t] + memory


def test_teacher_key_space_matches_loops_without_a_projection():
    torch.manual_seed(0)
    loss = CKDLoss(student_channels=8, teacher_channels=12,
                   key_space='teacher')
    assert set(dict(loss.named_parameters())) == {'adapter.weight',
                                                  'adapter.bias'}
    assert loss.memory.shape == (0, 12)
    memory = []
    for step in range(3):
        s, t, rois = batch(num=4 + step, seed=step)
        expected = reference(loss, s, t, rois, memory=memory)
        assert loss(s, t, rois).item() == pytest.approx(expected, rel=1e-5)
        memory = [F.normalize(r, dim=0) for r in t] + memory
    assert torch.allclose(loss.memory, torch.stack(memory))
    # the keys are fixed: a student that reproduces the teacher wins
    same = CKDLoss(student_channels=12, teacher_channels=12,
                   key_space='teacher', memory_batches=0)
    s, t, rois = batch(num=6, d_s=12)
    assert same(t * 3, t, rois).item() < same(s, t, rois).item()
    with pytest.raises(ValueError, match='key_space'):
        CKDLoss(student_channels=8, teacher_channels=12, key_space='raw')


def test_same_image_overlaps_are_not_negatives():
    loss = CKDLoss(student_channels=8, teacher_channels=12, memory_batches=0)
    rois = overlapping_rois()
    excluded = loss.negative_mask(rois)
    assert excluded.tolist() == [[False, True, False, False],
                                 [True, False, False, False],
                                 [False] * 4, [False] * 4]
    s, t, _ = batch(num=4)
    value = loss(s, t, rois)
    assert value.item() == pytest.approx(reference(loss, s, t, rois),
                                         rel=1e-5)
    # with a threshold above 0.81 region 1 is a negative of region 0 again
    loose = CKDLoss(student_channels=8, teacher_channels=12,
                    memory_batches=0, iou_threshold=0.9)
    loose.load_state_dict(loss.state_dict())
    assert not loose.negative_mask(rois).any()
    assert loose(s, t, rois).item() > value.item()


def test_memory_is_a_fifo_of_the_last_batches():
    loss = CKDLoss(student_channels=8, teacher_channels=12, memory_batches=3)
    pushed = []
    for step, num in enumerate([2, 3, 4, 5, 6]):
        s, t, rois = batch(num=num, seed=step)
        loss(s, t, rois)
        with torch.no_grad():
            pushed.append(F.normalize(loss.projection(t), dim=1))
    assert loss.memory_sizes == [6, 5, 4]  # newest first, oldest dropped
    assert torch.allclose(loss.memory, torch.cat(pushed[::-1][:3]))
    assert not loss.memory.requires_grad
    # evaluation mode reads the memory but does not push
    loss.eval()
    loss(*batch(num=7, seed=9))
    assert loss.memory_sizes == [6, 5, 4]
    loss.reset_memory()
    assert loss.memory.shape == (0, 128)
    # memory_batches=0: no memory at all
    none = CKDLoss(student_channels=8, teacher_channels=12, memory_batches=0)
    none(*batch())
    assert none.memory_sizes == []


class FakeGroup:
    """Stands in for mmengine.dist with two processes: ``rank`` is ours,
    the other process contributes ``remote`` rows."""

    def __init__(self, rank, remote):
        self.rank, self.remote, self.calls = rank, remote, 0

    def install(self, monkeypatch):
        monkeypatch.setattr(ckd_module, 'get_world_size', lambda: 2)
        monkeypatch.setattr(ckd_module, 'get_rank', lambda: self.rank)
        monkeypatch.setattr(ckd_module, 'all_gather', self.all_gather)

    def all_gather(self, data):
        self.calls += 1
        if data.dtype == torch.long:  # the row counts
            other = torch.tensor([self.remote.shape[0]])
        else:  # rows padded to the largest count
            other = data.new_zeros(data.shape)
            other[:self.remote.shape[0]] = self.remote
        return [data, other] if self.rank == 0 else [other, data]


def test_gathered_keys_are_negatives_and_ranks_agree(monkeypatch):
    torch.manual_seed(0)
    rank0 = CKDLoss(student_channels=8, teacher_channels=12,
                    embed_channels=4)
    rank1 = copy.deepcopy(rank0)  # DDP: same weights on every process
    s0, t0, rois0 = batch(num=3, seed=1)
    s1, t1, rois1 = batch(num=5, seed=2)
    with torch.no_grad():
        keys0 = F.normalize(rank0.projection(t0), dim=1)
        keys1 = F.normalize(rank1.projection(t1), dim=1)

    FakeGroup(0, keys1).install(monkeypatch)
    t0 = t0.requires_grad_()
    value0 = rank0(s0, t0, rois0)
    assert value0.item() == pytest.approx(
        reference(rank0, s0, t0, rois0, remote_after=list(keys1)), rel=1e-5)

    group = FakeGroup(1, keys0)
    group.install(monkeypatch)
    value1 = rank1(s1, t1, rois1)
    assert group.calls == 2  # counts, then padded rows
    assert value1.item() == pytest.approx(
        reference(rank1, s1, t1, rois1, remote_before=list(keys0)),
        rel=1e-5)
    # both processes remember the same gathered rows, in rank order
    assert rank0.memory_sizes == rank1.memory_sizes == [8]
    assert torch.allclose(rank0.memory, rank1.memory)
    assert torch.allclose(rank0.memory, torch.cat([keys0, keys1]))
    # gradient: local rows into the projection, never into the teacher
    value0.backward()
    assert t0.grad is None
    assert rank0.projection.weight.grad.abs().sum() > 0


def test_gather_pads_unequal_counts_and_empty_ranks(monkeypatch):
    loss = CKDLoss(student_channels=8, teacher_channels=12, embed_channels=4)
    FakeGroup(0, torch.randn(4, 4)).install(monkeypatch)
    empty = loss(torch.zeros(0, 8), torch.zeros(0, 12), torch.zeros(0, 5))
    assert empty.item() == 0
    assert loss.memory_sizes == [4]  # the other process's rows still count


def test_memory_is_rebuilt_not_saved(tmp_path):
    loss = CKDLoss(student_channels=8, teacher_channels=12)
    for step in range(3):
        loss(*batch(seed=step))
    assert loss.memory_sizes == [6, 6, 6]
    state = loss.state_dict()
    assert set(state) == {'adapter.weight', 'adapter.bias',
                          'projection.weight', 'projection.bias'}
    path = tmp_path / 'ckd.pth'
    torch.save(state, path)
    resumed = CKDLoss(student_channels=8, teacher_channels=12)
    resumed.load_state_dict(torch.load(path, weights_only=True))
    assert resumed.memory_sizes == []
    # after resume it refills as before
    s, t, rois = batch(seed=7)
    fresh = CKDLoss(student_channels=8, teacher_channels=12)
    fresh.load_state_dict(state)
    assert resumed(s, t, rois).item() == pytest.approx(
        fresh(s, t, rois).item())
    assert resumed.memory_sizes == [6]


def test_gradients_reach_student_never_teacher():
    loss = CKDLoss(student_channels=8, teacher_channels=12)
    s, t, rois = batch()
    s.requires_grad_()
    t.requires_grad_()
    loss(s, t, rois).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    assert loss.adapter.weight.grad.abs().sum() > 0


def test_equal_sizes_need_no_adapter():
    loss = CKDLoss(student_channels=12, teacher_channels=12)
    assert isinstance(loss.adapter, torch.nn.Identity)
    s, t, rois = batch(d_s=12)
    assert torch.isfinite(loss(s, t, rois))


def test_empty_regions_give_a_finite_zero():
    loss = CKDLoss(student_channels=8, teacher_channels=12)
    s = torch.zeros(0, 8, requires_grad=True)
    value = loss(s, torch.zeros(0, 12), torch.zeros(0, 5))
    assert value.item() == 0 and torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None for p in loss.parameters())
    # one region alone, no memory: log(1) = 0 with the positive included
    one = CKDLoss(student_channels=8, teacher_channels=12, memory_batches=0)
    s, t, rois = batch(num=1)
    assert one(s, t, rois).item() == pytest.approx(0, abs=1e-6)
    # without the positive there is nothing to compare with: 0, not inf
    alone = CKDLoss(student_channels=8, teacher_channels=12,
                    memory_batches=0, include_positive=False)
    assert alone(s, t, rois).item() == 0


def test_fp16_inputs_give_fp32_loss():
    loss = CKDLoss(student_channels=8, teacher_channels=12, memory_batches=0)
    s, t, rois = batch()
    ref = loss(s.half().float(), t.half().float(), rois)
    half = loss(s.half(), t.half(), rois.half())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(ref.item(), rel=1e-4)


def test_bad_inputs_are_named():
    loss = CKDLoss(student_channels=8, teacher_channels=12)
    s, t, rois = batch()
    with pytest.raises(ValueError, match='student_channels=8'):
        loss(s[:, :4], t, rois)
    with pytest.raises(ValueError, match='teacher_channels=12'):
        loss(s, t[:3], rois)
    with pytest.raises(ValueError, match=r'\(K, 5\)'):
        loss(s, t, rois[:, :4])
    with pytest.raises(ValueError, match='temperature'):
        CKDLoss(student_channels=8, teacher_channels=12, temperature=0)
    with pytest.raises(ValueError, match='memory_batches'):
        CKDLoss(student_channels=8, teacher_channels=12, memory_batches=-1)
