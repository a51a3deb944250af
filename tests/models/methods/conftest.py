"""The tiny RetinaNet pair the method tests distil: an 8-base-channel
student with a 32-channel FPN, a 16-base-channel teacher with a 64-channel
FPN (so feature methods need an adapter)."""
import pytest
import torch
from mmdet.registry import MODELS

from ...conftest import tiny_retina_pair


@pytest.fixture
def pair(save_state):
    """``(student_cfg, teacher_cfg, teacher_ckpt, teacher)``."""
    return tiny_retina_pair(save_state)


def distiller_with(pair, method: dict):
    """A ``Distiller`` with one method around the tiny pair, initialised."""
    s_cfg, t_cfg, ckpt, _ = pair
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt, methods=[method]))
    model.init_weights()
    return model


def recording_step(method, monkeypatch) -> dict:
    """Make ``method`` keep the record of the step it distils: the returned
    dict holds it under ``'record'`` after ``model.loss``."""
    seen = {}
    forward = method.forward

    def recorded(record):
        seen['record'] = record
        return forward(record)

    monkeypatch.setattr(method, 'forward', recorded)
    return seen


def flat_rows(maps, d: int):
    """Per-level (B, d·A, H, W) maps as (B·N, d) rows, image by image, level
    by level, position by position."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, d)
                      for m in maps], 1).reshape(-1, d)


def align_by_channel(s, t):
    """CrossKD's alignment, written as a plain loop over channels: each
    student channel standardised over (N, H, W), then given the teacher
    channel's mean and standard deviation."""
    out = torch.empty_like(s)
    for c in range(s.shape[1]):
        sc, tc = s[:, c].flatten(), t[:, c].flatten()
        out[:, c] = ((s[:, c] - sc.mean()) / (sc.std() + 1e-6) * tc.std() +
                     tc.mean())
    return out
