"""Attention transfer on any intermediate outputs (Zagoruyko and
Komodakis, ICLR 2017), the worked example of docs/adding_a_method.md."""
from __future__ import annotations

from typing import Dict, Sequence

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..capture import DistillRecord, checked_module_paths, tapped_tensor
from ..utils.precision import at_least_fp32
from .distill_method import DistillMethod


def attention_map(x: Tensor) -> Tensor:
    """``a = vec(mean_c x_c²) / ||vec(mean_c x_c²)||_2``, (B, H*W)."""
    return F.normalize(x.float().pow(2).mean(1).flatten(1), dim=1)


@MODELS.register_module()
class AttentionTransfer(DistillMethod):
    """Match the student's spatial attention maps to the teacher's.

    For each tapped module path ``p`` (the same path in both models)::

        L_at = β · (1/|P|) Σ_p mean_{b,i} (a_p^s[b, i] − a_p^t[b, i])²

    with :func:`attention_map` ``a``. Channels may differ between the
    models (the map averages them away); the spatial sizes must match.

    Args:
        paths: Module paths whose outputs are compared, e.g.
            ``('backbone.layer2', 'backbone.layer3')``.
        beta: ``β``; the authors use 1e3 with the maps of a classifier.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'at'
    record_parts = ()  # reads only its taps

    def __init__(self, paths: Sequence[str] = ('backbone.layer3', ),
                 beta: float = 1e3, **kwargs) -> None:
        super().__init__(**kwargs)
        # a list of paths, each tapped in both models
        self.student_taps = self.teacher_taps = checked_module_paths(
            paths, type(self).__name__)
        self.beta = beta

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        losses = []
        for path in self.student_taps:
            # a module returning a tuple (a backbone, a neck) is refused
            s = at_least_fp32(tapped_tensor(record.student_taps, path,
                                            'student', type(self).__name__))
            t = tapped_tensor(record.teacher_taps, path, 'teacher',
                              type(self).__name__)
            if s.shape[-2:] != t.shape[-2:]:
                raise ValueError(
                    f'AttentionTransfer compares `{path}` position by '
                    f'position, but its output is {tuple(s.shape[-2:])} in '
                    f'the student and {tuple(t.shape[-2:])} in the teacher. '
                    'Tap modules of the same stride in both models.')
            losses.append((attention_map(s) - attention_map(t)).pow(2).mean())
        return dict(map=self.beta * sum(losses) / len(losses))
