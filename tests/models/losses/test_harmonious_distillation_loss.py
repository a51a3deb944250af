import functools
import math

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.losses import HDLoss


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


#: the harmony score as the GT class's target (the default before the
#: comparison of the readings chose the weight reading)
HARMONY_TARGET = dict(positive_target='harmony', harmony_weight=False)
HD = functools.partial(HDLoss, **HARMONY_TARGET)
#: the teacher's probabilities as targets, no harmony score at all
PLAIN = functools.partial(HDLoss, positive_target='teacher',
                          harmony_weight=False)


def test_default_is_the_weight_reading():
    loss = HDLoss()
    assert (loss.positive_target, loss.harmony_weight) == ('teacher', True)


def reference_hd(student, teacher, labels, harmony=None, weights=None,
                 beta=2.0, temperature=1.0, positive_target='harmony',
                 harmony_weight=False, loss_weight=1.0):
    """Per-element loops over rows and classes."""
    num_classes = len(student[0])
    total, positives = 0.0, 0
    for i in range(len(student)):
        w = 1.0 if weights is None else float(weights[i])
        label = int(labels[i])
        is_pos = 0 <= label < num_classes
        if is_pos and w > 0:
            positives += 1
        if harmony_weight and is_pos:
            w *= float(harmony[i])
        for c in range(num_classes):
            p = sigmoid(float(student[i][c]) / temperature)
            t = sigmoid(float(teacher[i][c]) / temperature)
            if positive_target == 'harmony' and is_pos and c == label:
                t = float(harmony[i])
            bce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
            total += w * abs(t - p)**beta * bce
    return loss_weight * total / max(positives, 1)


@pytest.fixture
def case():
    g = torch.Generator().manual_seed(0)
    n, c = 9, 4
    s = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    t = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    labels = torch.tensor([4, 0, 4, 2, 3, 4, 4, 1, 4])
    harmony = torch.rand(n, generator=g, dtype=torch.float64)
    weights = torch.tensor([1, 1, 0, 1, 1, 0, 1, 1, 1],
                           dtype=torch.float64)
    return s, t, labels, harmony, weights


@pytest.mark.parametrize('options', [
    dict(),
    dict(beta=1.0, temperature=2.0, loss_weight=3.0),
    dict(positive_target='teacher'),
    dict(beta=0.0),
    dict(positive_target='teacher', harmony_weight=True),
    dict(harmony_weight=True, temperature=2.0),
])
def test_matches_plain_reference(case, options):
    s, t, labels, harmony, weights = case
    options = {**HARMONY_TARGET, **options}  # explicit about the reading
    loss = HDLoss(**options)(s, t, labels, harmony=harmony, weights=weights)
    expected = reference_hd(s.tolist(), t.tolist(), labels.tolist(),
                            harmony.tolist(), weights.tolist(), **options)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_built_from_registry_and_without_weights(case):
    s, t, labels, harmony, _ = case
    loss = MODELS.build(dict(type='HDLoss', beta=2.0))  # the defaults
    assert loss(s, t, labels, harmony).item() == pytest.approx(
        reference_hd(s.tolist(), t.tolist(), labels.tolist(),
                     harmony.tolist(), positive_target='teacher',
                     harmony_weight=True), rel=1e-9)


def test_harmony_is_target_of_gt_class_only(case):
    s, t, labels, harmony, weights = case
    base = HD()(s, t, labels, harmony, weights)
    # changing the harmony of a negative row changes nothing
    h2 = harmony.clone()
    h2[0] = 0.123
    assert HD()(s, t, labels, h2, weights).item() == pytest.approx(
        base.item())
    # ...but of a positive row it does
    h2[1] = 0.9
    assert HD()(s, t, labels, h2, weights).item() != pytest.approx(
        base.item())
    # ignored rows count neither in the sum nor in the normaliser
    s2 = s.clone()
    s2[2] += 5
    assert HD()(s2, t, labels, harmony, weights).item() == \
        pytest.approx(base.item())


def test_zero_when_student_matches_the_targets(case):
    s, t, labels, harmony, _ = case
    loss = PLAIN()(t.clone(), t, labels)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    # harmony targets: logit of the target at the GT class
    target_logits = t.clone()
    pos = (labels < 4).nonzero()[:, 0]
    target_logits[pos, labels[pos]] = torch.logit(harmony[pos])
    assert HD()(target_logits, t, labels, harmony).item() == \
        pytest.approx(0.0, abs=1e-12)


def test_normaliser_is_number_of_positives():
    s = torch.zeros(4, 2, dtype=torch.float64)
    t = torch.full((4, 2), 1.0, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 2])  # two positives (C = 2)
    one = PLAIN()(s[:1], t[:1], labels[2:3])
    four = PLAIN()(s, t, labels)
    # four identical rows, two positives: 4 * row / 2
    assert four.item() == pytest.approx(2 * one.item(), rel=1e-9)


def test_gradcheck_and_teacher_gets_no_gradient(case):
    s, t, labels, harmony, weights = case
    s = s.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    h = harmony.clone().requires_grad_(True)
    loss_fn = HD()
    assert torch.autograd.gradcheck(
        lambda x: loss_fn(x, t.detach(), labels, h.detach(), weights),
        (s, ))
    loss_fn(s, t, labels, h, weights).backward()
    assert t.grad is None and h.grad is None
    assert s.grad.abs().sum() > 0


def test_focusing_factor_carries_gradient():
    s = torch.tensor([[0.3, -1.2]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[2.0, 0.5]], dtype=torch.float64)
    labels = torch.tensor([2])
    PLAIN()(s, t, labels).backward()
    q, p = torch.sigmoid(t), torch.sigmoid(s.detach())
    # gradient of Σ |q−p|²·BCE with the factor held constant: |q−p|²·(p−q)
    detached = (q - p).abs().pow(2) * (p - q)
    assert not torch.allclose(s.grad, detached)


def test_images_without_ground_truth_are_finite():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(6, 3, generator=g, requires_grad=True)
    t = torch.randn(6, 3, generator=g)
    labels = torch.full((6, ), 3)
    loss = HD()(s, t, labels, torch.zeros(6))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert torch.isfinite(s.grad).all()
    # normaliser 1: the plain sum
    assert loss.item() == pytest.approx(
        reference_hd(s.tolist(), t.tolist(), labels.tolist(), [0.0] * 6),
        rel=1e-5)


def test_one_class():
    s = torch.tensor([[0.5], [-2.0], [1.0]], dtype=torch.float64)
    t = torch.tensor([[3.0], [-4.0], [0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    h = torch.tensor([0.8, 0.0, 0.3], dtype=torch.float64)
    assert HD()(s, t, labels, h).item() == pytest.approx(
        reference_hd(s.tolist(), t.tolist(), labels.tolist(), h.tolist()),
        rel=1e-9)


def test_extreme_logits_are_finite():
    s = torch.tensor([[100.0, -100.0, 0.0]], requires_grad=True)
    t = torch.tensor([[-100.0, 100.0, 1000.0]])
    loss = HD()(s, t, torch.tensor([0]), torch.tensor([1.0]))
    (grad, ) = torch.autograd.grad(loss, s)
    assert torch.isfinite(loss) and torch.isfinite(grad).all() and loss > 0


def test_fp16_inputs_computed_in_fp32(case):
    s, t, labels, harmony, weights = case
    loss16 = HD()(s.half(), t.half(), labels, harmony.half(),
                      weights.half())
    assert loss16.dtype == torch.float32
    ref = HD()(s.half().double(), t.half().double(), labels,
                   harmony.half().double(), weights)
    assert loss16.item() == pytest.approx(ref.item(), rel=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert HD()(s.float(), t.float(), labels,
                        harmony.float()).dtype == torch.float32


def test_errors_name_the_problem(case):
    s, t, labels, harmony, _ = case
    with pytest.raises(ValueError, match='same \\(N, C\\) shape'):
        HD()(s, t[:, :2], labels, harmony)
    with pytest.raises(ValueError, match='labels must have shape'):
        HD()(s, t, labels[:3], harmony)
    with pytest.raises(ValueError, match='pass `harmony`'):
        HD()(s, t, labels)
    with pytest.raises(ValueError, match='positive_target'):
        HDLoss(positive_target='iou')
    with pytest.raises(ValueError, match='beta'):
        HDLoss(beta=0.5)
    with pytest.raises(ValueError, match='temperature'):
        HDLoss(temperature=0)


def test_harmony_weight_scales_positive_rows_only(case):
    """Weighting by the harmony score with the teacher as target: a
    positive row's loss is multiplied by HS_i, background rows keep weight
    1, and the scores are needed."""
    s, t, labels, harmony, _ = case
    weighted = HDLoss(positive_target='teacher', harmony_weight=True)
    plain = PLAIN()
    background = labels == 4
    # background rows alone: identical with and without the weight
    bg_weights = background.to(s.dtype)
    assert weighted(s, t, labels, harmony, bg_weights).item() == \
        pytest.approx(plain(s, t, labels, harmony, bg_weights).item())
    # one positive row alone: exactly HS times the unweighted loss
    one = torch.zeros_like(bg_weights)
    one[3] = 1
    assert weighted(s, t, labels, harmony, one).item() == pytest.approx(
        harmony[3].item() * plain(s, t, labels, harmony, one).item())
    with pytest.raises(ValueError, match='harmony_weight=True'):
        weighted(s, t, labels)


@pytest.mark.parametrize('options', [
    dict(), dict(beta=1.5, temperature=2.0), dict(beta=0.0),
    dict(positive_target='harmony', harmony_weight=False)])
def test_blocked_sum_matches_the_plain_graph_in_value_and_gradient(
        case, options, monkeypatch):
    """The loss runs in row blocks with a hand-written backward; with
    blocks of 2 rows (9 rows: 5 blocks) value and gradient equal those of
    the formula written as plain tensor operations, and gradcheck
    passes."""
    from sea_kd.models.losses.blocked_row_sum import BlockedRowSum
    monkeypatch.setattr(BlockedRowSum, 'block_rows', 2)
    s, t, labels, harmony, weights = case
    fn = HDLoss(**options)
    x = s.clone().requires_grad_(True)
    fn(x, t, labels, harmony=harmony, weights=weights).backward()

    beta = options.get('beta', 2.0)
    temp = options.get('temperature', 1.0)
    y = s.clone().requires_grad_(True)
    p = torch.sigmoid(y / temp)
    target = torch.sigmoid(t / temp)
    positive = labels < 4
    rows = positive.nonzero().flatten()
    if options.get('positive_target') == 'harmony':
        target = target.index_put((rows, labels[rows]), harmony[rows])
    bce = -(target * p.log() + (1 - target) * (1 - p).log())
    row = weights.clone()
    if options.get('harmony_weight', True):
        row = row * torch.where(positive, harmony, torch.ones_like(harmony))
    plain = ((target - p).abs().pow(beta) * bce * row[:, None]).sum() / (
        positive & (weights > 0)).sum()
    plain.backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-9, atol=1e-12)
    z = s.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda v: fn(v, t, labels, harmony=harmony, weights=weights), (z, ))
