"""CWD: channel-wise distillation of neck features and dense logits."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor

from ..capture import DistillRecord
from .feature_imitation import FeatureImitation


@MODELS.register_module()
class CWD(FeatureImitation):
    """CWD (Shu et al., ICCV 2021): each channel's spatial distribution
    (softmax over positions with temperature) imitated by KL divergence.

    - ``loss_cwd_feat``: :class:`CWDLoss` on the (optionally adapted) neck
      levels (``loss_feat``; ``None`` to skip);
    - ``loss_cwd_logit`` (option ``loss_logits``): :class:`CWDLoss` on the
      dense head's class logits of every level, one channel per anchor and
      class; needs the same dense prior layout in both models.

    Args:
        loss_feat: Config of the neck term (default :class:`CWDLoss` with
            the authors' τ = 1, λ = 10) or ``None``.
        loss_logits: Config of the logit term, or ``None`` (default).
        adapter: Per-level adapter of the student's neck channels; ``None``
            (the authors) requires equal channels.
        levels: Indices of the neck levels; ``None`` for all (the authors).
        **kwargs: ``level_matching`` (:class:`FeatureImitation`),
            ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'cwd'
    display_name = 'CWD'

    def __init__(self,
                 loss_feat: OptConfigType = dict(type='CWDLoss', tau=1.0,
                                                 loss_weight=10.0),
                 loss_logits: OptConfigType = None,
                 adapter: OptConfigType = None,
                 levels: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if loss_feat is None and loss_logits is None:
            raise ValueError('CWD has no term to compute: loss_feat and '
                             'loss_logits are both None. Configure one.')
        super().__init__(loss_feat=loss_feat, adapter=adapter,
                         levels=levels, **kwargs)
        self._loss_logits_cfg = loss_logits
        if loss_logits is not None:
            self.record_parts = ('neck', 'dense_head')
            self.requires_same_dense_layout = True

    def setup(self) -> None:
        if self._loss_feat_cfg is not None:
            super().setup()
        else:
            self.adapters = self.loss_feat = None
        self.loss_logits = None if self._loss_logits_cfg is None else \
            MODELS.build(self._loss_logits_cfg)

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        losses = super().forward(record) if self.loss_feat is not None \
            else {}
        if self.loss_logits is not None:
            losses['logit'] = self.loss_logits(
                record.student_dense.cls_scores,
                record.teacher_dense.cls_scores)
        return losses
