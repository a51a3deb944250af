"""LD: localization distillation of GFL's box distributions."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import OptConfigType
from torch import Tensor

from ...adapters import build_level_adapters
from ...capture import DistillRecord
from ...detectors import dense_head_view, flatten_level_maps, level_priors
from ...detectors.pair_checks import neck_channels_of
from ...utils.category_masks import pad_instances
from ...utils.precision import at_least_fp32
from ..distill_method import DistillMethod
from ..pair_requirement import PairRequirement, for_both
from .valuable_localization_region import vlr_weights


def _predicts_distributions(detector, role: str) -> None:
    """Raise unless the dense head predicts box-edge distributions."""
    view = dense_head_view(detector.bbox_head)
    if view is None or not view.predicts_distributions:
        raise TypeError(
            f'LD distils box-edge distributions, which only GFL-type '
            f'heads (GFLHead, LDHead) predict; the {role}\'s head is '
            f'a {type(detector.bbox_head).__name__}. Use CrossKD or ADL '
            'for logits, or PKD/FI for features.')


def _same_reg_max(student, teacher) -> None:
    """Raise unless both heads have the same number of bins."""
    s_max, t_max = student.bbox_head.reg_max, teacher.bbox_head.reg_max
    if s_max != t_max:
        raise ValueError(
            f'LD compares distributions over 0..reg_max bins; the '
            f'student has reg_max={s_max}, the teacher {t_max}. Give '
            'both heads the same reg_max.')


@MODELS.register_module()
class LD(DistillMethod):
    """LD (Zheng et al., CVPR 2022; TPAMI 2023): the student's distribution
    of each box edge over GFL's bins mimics the teacher's, on the main
    region and on the valuable localization region (VLR), with logit KD on
    the main region.

    Following HikariTJU/LD@4287990 (``mmdet/models/dense_heads/ld_head.py``,
    ``ATSSAssigner.get_vlr_region``; the default terms are those of its
    ``ld_r18_gflv1_r101_fpn_coco_1x.py``, "Main KD + Main LD + VLR LD").
    With ``P`` the student's positives (its ATSS assignment), ``e`` the
    four edges, ``D`` :class:`DistributionKLLoss`:

    - ``loss_ld_main = Σ_{i∈P} Σ_e ŝ_i · D(b^s_ie, b^t_ie) / 4``, ``ŝ_i`` the
      student's detached max class probability (T = 10, λ = 0.25);
    - ``loss_ld_vlr = Σ_i Σ_e v_i · D(b^s_ie, b^t_ie) / 16``, ``v_i`` the
      VLR weight (:func:`vlr_weights`; T = 10, λ = 0.25);
    - ``loss_ld_kd = Σ_l Σ_{i∈P_l} w_i · D(s_i, t_i) / |P_l|`` on the class
      logits (softmax over classes, T = 2, λ = 10), normalised per level
      as the source's per-level loss is.

    - ``loss_ld_im`` (option ``loss_im``, off by default as in the source's
      head): the student's neck features (through ``adapter``) imitate the
      teacher's at the fine-grained positions (``imitation_method=
      'finegrained'`` of the source's ``ld_r50_gflv1_r101_fpn_coco_1x.py``,
      weight 2): the anchors whose IoU with a ground-truth box exceeds half
      of that box's largest IoU with any anchor (Wang et al., CVPR 2019),
      :class:`MaskedFeatureMSELoss` per level.

    Not implemented: the source's other imitation regions (``'gibox'``,
    ``'decouple'``, ``'fitnet'``) and its VLR logit term (multiplied by 0
    in the source).

    Args:
        loss_main / loss_vlr / loss_kd: The terms' losses, or ``None`` to
            drop a term.
        loss_im: The imitation term's loss, e.g.
            ``dict(type='MaskedFeatureMSELoss', loss_weight=2.0)``; ``None``
            (default) leaves it out.
        adapter: Per-level adapter of the student's neck channels for
            ``loss_im`` (e.g. ``dict(type='ConvAdapter')``); ``None``
            requires equal channels.
        im_ratio: A position is fine-grained when its anchor's IoU with a
            box exceeds this fraction of the box's largest IoU (source: 0.5).
        vlr_topk: Anchors per level per box for the VLR threshold;
            ``None``: the student head's ATSS ``topk``.
        vlr_low: The VLR's lower DIoU bound as a fraction of the threshold.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'ld'
    display_name = 'LD'
    record_parts = ('neck', 'dense_head')
    requires_same_dense_layout = True
    pair_requirements = (
        PairRequirement('needs GFL box distributions',
                        for_both(_predicts_distributions)),
        PairRequirement('needs the same reg_max', _same_reg_max))

    def __init__(self,
                 loss_main: OptConfigType = dict(type='DistributionKLLoss',
                                                 temperature=10.0,
                                                 loss_weight=0.25),
                 loss_vlr: OptConfigType = dict(type='DistributionKLLoss',
                                                temperature=10.0,
                                                loss_weight=0.25),
                 loss_kd: OptConfigType = dict(type='DistributionKLLoss',
                                               temperature=2.0,
                                               loss_weight=10.0),
                 vlr_topk: Optional[int] = None,
                 vlr_low: float = 0.25,
                 loss_im: OptConfigType = None,
                 adapter: OptConfigType = None,
                 im_ratio: float = 0.5,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._cfgs = dict(main=loss_main, vlr=loss_vlr, kd=loss_kd,
                          im=loss_im)
        if all(cfg is None for cfg in self._cfgs.values()):
            raise ValueError('LD has no term to compute: loss_main, '
                             'loss_vlr, loss_kd and loss_im are all None. '
                             'Configure one.')
        if not 0 < im_ratio <= 1:
            raise ValueError(f'im_ratio must be in (0, 1], got {im_ratio!r}.')
        self.im_ratio = float(im_ratio)
        self._adapter_cfg = adapter
        self._vlr_topk = vlr_topk
        self.vlr_low = vlr_low

    def setup(self) -> None:
        self.bins = self.student.bbox_head.reg_max + 1
        assigner = getattr(self.student.bbox_head, 'assigner', None)
        self.vlr_topk = self._vlr_topk if self._vlr_topk is not None else \
            getattr(assigner, 'topk', 9)
        for term, cfg in self._cfgs.items():
            setattr(self, f'loss_{term}',
                    None if cfg is None else MODELS.build(cfg))
        self.adapters = None
        if self.loss_im is not None:
            s_ch, t_ch = neck_channels_of(self.student), \
                neck_channels_of(self.teacher)
            if self._adapter_cfg is not None:
                self.adapters = build_level_adapters(self._adapter_cfg, s_ch,
                                                     t_ch)
            elif s_ch != t_ch:
                raise ValueError(
                    "LD's loss_im compares neck features, but the student's "
                    f"have {s_ch} channels and the teacher's {t_ch}; set "
                    "adapter=dict(type='ConvAdapter').")

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        s_dense, t_dense = record.student_dense, record.teacher_dense
        head = self.student.bbox_head
        num_classes = head.cls_out_channels
        s_box = flatten_level_maps(s_dense.bbox_preds, 4 * self.bins)
        t_box = flatten_level_maps(t_dense.bbox_preds, 4 * self.bins)
        labels = torch.cat(record.dense_targets.labels, dim=1)     # B,N
        pos = (labels >= 0) & (labels < head.num_classes)
        losses = {}
        if self.loss_main is not None or self.loss_kd is not None:
            s_cls = flatten_level_maps(s_dense.cls_scores, num_classes)
        if self.loss_main is not None:
            score = s_cls.detach().sigmoid().max(dim=-1).values[pos]
            losses['main'] = self.loss_main(
                s_box[pos].reshape(-1, self.bins),
                t_box[pos].reshape(-1, self.bins),
                weight=score[:, None].expand(-1, 4).reshape(-1),
                avg_factor=4.0)
        if self.loss_vlr is not None:
            vlr = self._vlr(record, s_dense.bbox_preds)
            keep = vlr > 0
            losses['vlr'] = self.loss_vlr(
                s_box[keep].reshape(-1, self.bins),
                t_box[keep].reshape(-1, self.bins),
                weight=vlr[keep][:, None].expand(-1, 4).reshape(-1),
                avg_factor=16.0)
        if self.loss_kd is not None:
            t_cls = flatten_level_maps(t_dense.cls_scores, num_classes)
            sizes = torch.tensor([m.shape[-2] * m.shape[-1]
                                  for m in s_dense.cls_scores],
                                 device=labels.device)
            level = torch.repeat_interleave(
                torch.arange(len(sizes), device=labels.device),
                sizes).expand_as(labels)[pos]
            per_level = torch.bincount(level, minlength=len(
                s_dense.cls_scores)).clamp(min=1).float()
            weight = torch.cat(record.dense_targets.label_weights,
                               dim=1)[pos] / per_level[level]
            losses['kd'] = self.loss_kd(s_cls[pos], t_cls[pos],
                                        weight=weight, avg_factor=1.0)
        if self.loss_im is not None:
            losses['im'] = self._im(record, s_dense.bbox_preds)
        return losses

    def fine_grained_masks(self, record: DistillRecord,
                           maps) -> List[Tensor]:
        """Per level, (B, H, W): the positions whose anchor's IoU with a
        ground-truth box exceeds ``im_ratio`` times that box's largest IoU
        with any anchor."""
        anchors = level_priors(self.student.bbox_head, maps)        # N, 4
        gts, _, valid = pad_instances(record.batch_gt_instances,
                                      anchors.device)
        batch = gts.shape[0]
        if gts.shape[1] == 0:
            fine = anchors.new_zeros((batch, anchors.shape[0]),
                                     dtype=torch.bool)
        else:
            iou = bbox_overlaps(anchors.expand(batch, -1, -1), gts)  # B,N,M
            best = iou.max(dim=1, keepdim=True).values
            fine = ((iou > self.im_ratio * best) & valid[:, None]).any(-1)
        sizes = [tuple(m.shape[-2:]) for m in maps]
        return [m.reshape(batch, *hw) for m, hw in zip(
            torch.split(fine, [h * w for h, w in sizes], dim=1), sizes)]

    def _im(self, record: DistillRecord, maps) -> Tensor:
        """The imitation term at the fine-grained positions."""
        # fp32 also for the adapters: autocast is off here (AMP)
        student = [at_least_fp32(f) for f in record.student_neck]
        if self.adapters is not None:
            student = [a(s) for a, s in zip(self.adapters, student)]
        return self.loss_im(student, list(record.teacher_neck),
                            self.fine_grained_masks(record, maps))

    def _vlr(self, record: DistillRecord, maps) -> Tensor:
        anchors = level_priors(self.student.bbox_head, maps)
        sizes = [m.shape[-2] * m.shape[-1] for m in maps]
        gts, _, valid = pad_instances(record.batch_gt_instances,
                                      anchors.device)
        return vlr_weights(anchors, sizes, gts, valid, self.vlr_topk,
                           self.vlr_low)
