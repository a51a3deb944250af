"""MGD: masked generative distillation of the neck features."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmengine.dist import get_rank
from mmengine.logging import MessageHub
from torch import Tensor, nn

from ..capture import DistillRecord
from ..detectors.pair_checks import neck_channels_of
from ..utils.precision import at_least_fp32
from .distill_method import DistillMethod, checked_level_matching
from .pair_requirement import NECK_LEVELS


class MaskedFeatureGenerator(nn.Module):
    """``G(A(x))``: a 1×1 alignment of the student's channels to the
    teacher's (when they differ) and a 3×3 conv, ReLU, 3×3 conv generator.

    The mask acts between the two: :meth:`forward` takes the mask.
    """

    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.align = None if student_channels == teacher_channels else \
            nn.Conv2d(student_channels, teacher_channels, 1)
        self.generation = nn.Sequential(
            nn.Conv2d(teacher_channels, teacher_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(teacher_channels, teacher_channels, 3, padding=1))

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """Generate from ``x`` with positions where ``keep`` is 0 masked."""
        if self.align is not None:
            x = self.align(x)
        return self.generation(x * keep)


@MODELS.register_module()
class MGD(DistillMethod):
    """MGD (Yang et al., ECCV 2022): the student's neck feature, with random
    positions masked, must let a small generator reproduce the teacher's.

    For each level ``l`` a mask ``M_l`` (N, 1, H, W) zeroes each position
    with probability λ (the same positions in every channel), and::

        L_mgd = α · Σ_l (1/N) · Σ_{n,c,h,w} (G_l(M_l ⊙ A_l(S_l)) − T_l)²

    with ``A_l`` a 1×1 alignment (only when the channels differ) and
    ``G_l`` conv3×3–ReLU–conv3×3; both are trained and dropped at export.

    The masks are drawn from a generator seeded with ``(seed, rank,
    iteration)``: reproducible, the same after ``--resume``, different on
    every DDP rank (each sees other images) and in every step.

    Args:
        alpha: α (the authors: 2e-5 for RetinaNet students).
        mask_ratio: λ, the share of masked positions (the authors: 0.65).
        levels: Indices of the student's neck levels; ``None`` for all (the
            authors).
        level_matching: ``'stride'`` (default) pairs each student level
            with the teacher level of the same stride, leaving out (and
            logging) the student levels without one; ``'index'`` pairs
            level ``i`` with level ``i`` and requires equal strides
            (:class:`FeatureImitation`).
        seed: Seed of the masks.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'mgd'
    display_name = 'MGD'
    pair_requirements = (NECK_LEVELS, )
    record_parts = ('neck', )

    def __init__(self,
                 alpha: float = 2e-5,
                 mask_ratio: float = 0.65,
                 levels: Optional[Sequence[int]] = None,
                 level_matching: str = 'stride',
                 seed: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.level_matching = checked_level_matching(level_matching)
        if not 0 <= mask_ratio < 1:
            raise ValueError(f'MGD mask_ratio is the share of masked '
                             f'positions and must be in [0, 1), got '
                             f'{mask_ratio}.')
        self.alpha = alpha
        self.mask_ratio = mask_ratio
        self.seed = int(seed)
        self._levels_cfg = levels
        self._calls = 0

    def setup(self) -> None:
        s_ch = neck_channels_of(self.student)
        t_ch = neck_channels_of(self.teacher)
        self.level_pairs = self.pair_levels(self._levels_cfg,
                                            self.level_matching)
        self.levels: List[int] = [i for i, _ in self.level_pairs]
        self.generators = nn.ModuleList(
            MaskedFeatureGenerator(s_ch[i], t_ch[j])
            for i, j in self.level_pairs)

    def keep_masks(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """One (N, 1, H, W) keep-mask per level: 0 with probability λ."""
        step = MessageHub.get_current_instance().get_info('iter')
        if step is None:  # no Runner: count the calls
            step, self._calls = self._calls, self._calls + 1
        generator = torch.Generator(device=feats[0].device)
        generator.manual_seed(
            ((self.seed * 1_000_003 + get_rank()) * 1_000_003 + int(step))
            % 2**64)
        return [(torch.rand((f.shape[0], 1, *f.shape[2:]),
                            generator=generator, device=f.device)
                 <= 1 - self.mask_ratio).float() for f in feats]

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        student = [at_least_fp32(record.student_neck[i]) for i in self.levels]
        teacher = [record.teacher_neck[j].detach().float()
                   for _, j in self.level_pairs]
        total = 0.
        for generate, s, t, keep in zip(self.generators, student, teacher,
                                        self.keep_masks(student)):
            if s.shape[-2:] != t.shape[-2:]:
                raise ValueError(
                    f'MGD compares student {tuple(s.shape)} and teacher '
                    f'{tuple(t.shape)} levels position by position; use '
                    'necks of the same strides.')
            total = total + (generate(s, keep) - t).pow(2).sum() / s.shape[0]
        return dict(feat=self.alpha * total)
