"""SEA: semantic-aware alignment of pixel-to-category-anchor relations.

Chen et al., arXiv 2203.00862. Only the abstract is public; the equations
below are a reconstruction, every reconstructed choice an option (see
``docs/methods/sea.md``).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice
from ..detectors.dense_layout import flatten_level_maps
from ..detectors.strides import StrideLike, normalize_strides
from ..utils.category_masks import (CategoryMasks, category_masks,
                                    infer_strides, pixel_centres)


def category_anchors(feats: Tensor, masks: Tensor,
                     scope: str = 'image') -> Tuple[Tensor, Tensor]:
    """Masked average pooling of pixel features into category anchors.

    ``a_{b,k} = Σ_i M_{b,k,i}·f_{b,i} / Σ_i M_{b,k,i}`` (``scope='image'``)
    or ``a_k = Σ_{b,i} M_{b,k,i}·f_{b,i} / Σ_{b,i} M_{b,k,i}`` shared by all
    images (``scope='batch'``). An anchor whose mask is empty is absent
    (its vector is 0).

    Args:
        feats: (B, N, C) pixel features.
        masks: (B, K, N) bool or 0/1 masks.
        scope: ``'image'`` or ``'batch'``.

    Returns:
        anchors (B, K, C) and present (B, K) bool; for ``'batch'`` the same
        anchors and presence repeated for every image.
    """
    weights = masks.to(feats.dtype)
    sums = torch.bmm(weights, feats)  # (B, K, C)
    counts = weights.sum(dim=-1)  # (B, K)
    if scope == 'batch':
        sums = sums.sum(dim=0, keepdim=True).expand_as(sums)
        counts = counts.sum(dim=0, keepdim=True).expand_as(counts)
    else:
        checked_choice('scope', scope, ('image', 'batch'))
    anchors = sums / counts.clamp(min=1)[..., None]
    return anchors, counts > 0


def relation_logits(feats: Tensor,
                    anchors: Tensor,
                    temperature: float,
                    distance: str = 'cosine',
                    eps: float = 1e-6) -> Tensor:
    """Pixel-to-anchor relation logits ``r_{b,i,k}``.

    ``cos(f_i, a_k) / τ`` for ``distance='cosine'``, ``−‖f_i − a_k‖² / τ``
    for ``distance='l2'``.

    Args:
        feats: (B, N, C).
        anchors: (B, K, C).
        temperature: τ.
        distance: ``'cosine'`` or ``'l2'``.
        eps: Norm floor of the cosine.

    Returns:
        (B, N, K).
    """
    if distance == 'cosine':
        # f_i·a_k / max(‖f_i‖, ε), the pixel's norm divided out of the
        # (B, N, K) products rather than out of the (B, N, C) features:
        # the same values as normalising both, with no (B, N, C)
        # temporary and its backward (K, an image's classes and the
        # background, is usually far smaller than C; L times that with
        # anchor_levels='per_level')
        norms = torch.linalg.vector_norm(feats, dim=-1).clamp(min=eps)
        sim = torch.bmm(feats, F.normalize(anchors, dim=-1, eps=eps)
                        .transpose(1, 2)) / norms[..., None]
    elif distance == 'l2':
        sq = feats.pow(2).sum(-1, keepdim=True) + \
            anchors.pow(2).sum(-1)[:, None] - \
            2 * torch.bmm(feats, anchors.transpose(1, 2))
        sim = -sq.clamp(min=0)
    else:
        checked_choice('distance', distance, ('cosine', 'l2'))
    return sim / temperature


def relation_kl(teacher_logits: Tensor, student_logits: Tensor,
                present: Tensor) -> Tensor:
    """``KL(P_t ‖ P_s)`` per pixel, softmax over the present anchors only.

    ``P_{b,i} = softmax_{k: present[b,k]}(r_{b,i,k})``. Pixels without any
    present anchor get 0.

    Args:
        teacher_logits, student_logits: (B, N, K).
        present: (B, K) bool, the anchors of each image, or (B, N, K), the
            anchors each pixel relates to.

    Returns:
        (B, N).
    """
    keep = present[:, None, :] if present.dim() == 2 else present
    has_any = keep.any(-1)  # (B, N) or (B, 1)
    # a row without any anchor would give softmax over nothing (NaN);
    # treat it as all-present, its value is 0 either way
    keep = keep | ~has_any[..., None]
    log_pt = teacher_logits.masked_fill(~keep, float('-inf')).log_softmax(-1)
    log_ps = student_logits.masked_fill(~keep, float('-inf')).log_softmax(-1)
    # absent anchors: 0·(−∞ − (−∞)) would be NaN; fill the logs with 0
    log_pt = log_pt.masked_fill(~keep, 0.)
    log_ps = log_ps.masked_fill(~keep, 0.)
    kl = (log_pt.exp() * (log_pt - log_ps)).masked_fill(~keep, 0.).sum(-1)
    return kl * has_any


def relation_mse(teacher_sim: Tensor, student_sim: Tensor,
                 keep: Tensor) -> Tensor:
    """Mean squared difference of the pixel-to-anchor similarities per
    pixel, over the anchors each pixel relates to.

    ``mean_{k: keep} (sim^t_{b,i,k} − sim^s_{b,i,k})²``; 0 for a pixel
    without any anchor.

    Args:
        teacher_sim, student_sim: (B, N, K) similarities (cosines, or
            negative squared distances).
        keep: (B, K) or (B, N, K) bool.

    Returns:
        (B, N).
    """
    keep = keep[:, None, :] if keep.dim() == 2 else keep
    keep = keep.expand_as(teacher_sim)
    sq = (teacher_sim - student_sim).pow(2).masked_fill(~keep, 0.)
    return sq.sum(-1) / keep.sum(-1).clamp(min=1).to(sq.dtype)


@MODELS.register_module()
class SEALoss(nn.Module):
    r"""Semantic-aware alignment loss on FPN features.

    With category masks ``M`` from the ground truth (a pixel of level ``l``
    belongs to class ``c`` when its centre ``((w+0.5)·s_l, (h+0.5)·s_l)`` lies
    in an instance of class ``c``; background: valid pixel in no instance;
    padding pixels are invalid), for teacher (``t``) and student (``s``)
    separately, each in its own feature space::

        a_c     = Σ_i M_{c,i}·f_i / Σ_i M_{c,i}          category anchors
        r_{i,c} = cos(f_i, a_c) / τ       (or −‖f_i − a_c‖² / τ)
        P_i     = softmax_c(r_{i,c})      over the anchors present
        KL_i    = Σ_c P_{i,c}^t · (log P_{i,c}^t − log P_{i,c}^s)

        L_rel = λ · τ² · (w_fg · mean_{i∈fg} KL_i + w_bg · mean_{i∈bg} KL_i)
                (balance=True; else λ · τ² · mean_{i valid} KL_i)

    Two further readings (reconstructions too):

    * ``anchor_levels='per_level'``: each level has its own anchors
      ``a_{l,c}``, pooled over that level's pixels, and a pixel of level
      ``l`` relates to the anchors of level ``l`` only. The default
      ``'pooled'`` pools the anchors over all chosen levels; P3 holds most
      pixels, so those anchors are close to P3 prototypes.
    * ``relation_loss='mse'``: instead of ``KL_i``, the per-pixel mean of
      ``(sim^t_{i,c} − sim^s_{i,c})²`` over the present anchors, with
      ``sim = τ·r`` (the cosine, or ``−‖f − a‖²``); no τ² factor. This
      aligns the similarity maps themselves, not their softmax.
        L_anc = λ_anc · mean_c ‖φ(a_c^s) − a_c^t‖²        (λ_anc > 0 only)

    Means over pixels run over all chosen levels and images of the batch.
    ``φ`` is an optional adapter from student to teacher channels applied to
    the student's anchors (for a 1×1 affine adapter this equals pooling the
    adapted features). The teacher side is detached; everything is computed
    in fp32 (fp64 stays fp64).

    Args:
        temperature: τ.
        distance: ``'cosine'`` or ``'l2'``.
        anchor_scope: ``'image'`` (anchors and softmax per image) or
            ``'batch'`` (anchors pooled over the batch; softmax over the
            anchors present in the batch).
        anchor_levels: ``'pooled'`` (anchors over all chosen levels) or
            ``'per_level'`` (anchors per level, pixels relate to their own
            level's anchors).
        relation_loss: ``'kl'`` (KL of the softmaxed relations) or
            ``'mse'`` (squared difference of the similarities).
        background_anchor: Add the anchor of the background pixels.
        balance: Average foreground and background pixels separately.
        fg_weight: ``w_fg`` (with ``balance``).
        bg_weight: ``w_bg`` (with ``balance``).
        levels: Indices of the neck levels used; ``None`` for all.
        use_masks: Use instance masks for the category masks when the
            ground truth has them; boxes otherwise.
        loss_weight: λ of ``L_rel``.
        anchor_weight: λ_anc of ``L_anc``; 0 disables the term.
        eps: Norm floor of the cosine.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 distance: str = 'cosine',
                 anchor_scope: str = 'image',
                 anchor_levels: str = 'pooled',
                 relation_loss: str = 'kl',
                 background_anchor: bool = True,
                 balance: bool = True,
                 fg_weight: float = 1.0,
                 bg_weight: float = 1.0,
                 levels: Optional[Sequence[int]] = None,
                 use_masks: bool = True,
                 loss_weight: float = 1.0,
                 anchor_weight: float = 0.0,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}.')
        checked_choice('distance', distance, ('cosine', 'l2'))
        checked_choice('anchor_scope', anchor_scope, ('image', 'batch'))
        checked_choice('anchor_levels', anchor_levels, ('pooled', 'per_level'))
        checked_choice('relation_loss', relation_loss, ('kl', 'mse'))
        if anchor_weight < 0:
            raise ValueError(f'anchor_weight must be >= 0, got '
                             f'{anchor_weight}.')
        if levels is not None:
            levels = [int(i) for i in levels]
            if not levels or len(set(levels)) != len(levels):
                raise ValueError(f'levels must be distinct indices, got '
                                 f'{levels}.')
        self.temperature = temperature
        self.distance = distance
        self.anchor_scope = anchor_scope
        self.anchor_levels = anchor_levels
        self.relation_loss = relation_loss
        self.background_anchor = background_anchor
        self.balance = balance
        self.fg_weight = fg_weight
        self.bg_weight = bg_weight
        self.levels = levels
        self.use_masks = use_masks
        self.loss_weight = loss_weight
        self.anchor_weight = anchor_weight
        self.eps = eps

    def resolve_levels(self, num_levels: int) -> List[int]:
        """The chosen level indices for a neck of ``num_levels`` levels."""
        if self.levels is None:
            return list(range(num_levels))
        bad = [i for i in self.levels if not 0 <= i < num_levels]
        if bad:
            raise ValueError(f'SEALoss levels {self.levels} out of range for '
                             f'{num_levels} neck levels (bad: {bad}).')
        return list(self.levels)

    def forward(self,
                student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                batch_gt_instances: Sequence,
                batch_img_metas: Sequence[dict],
                strides: Optional[Sequence[StrideLike]] = None,
                anchor_adapter: Optional[Callable[[Tensor], Tensor]] = None
                ) -> Dict[str, Tensor]:
        """Compute the SEA terms.

        Args:
            student_feats: (B, C_s, H_l, W_l) per neck level.
            teacher_feats: (B, C_t, H_l, W_l) per neck level, same sizes.
            batch_gt_instances: ``InstanceData`` per image with ``bboxes``,
                ``labels`` and optionally ``masks``.
            batch_img_metas: Meta information per image (``img_shape``; and
                ``batch_input_shape`` when ``strides`` is ``None``).
            strides: Stride of every neck level (number or ``(s_x, s_y)``);
                ``None`` infers them from the feature sizes and
                ``batch_input_shape`` (see :func:`infer_strides`).
            anchor_adapter: Maps student anchors (..., C_s) to teacher
                channels (..., C_t) for ``L_anc``.

        Returns:
            ``dict(rel=L_rel)``, plus ``anc=L_anc`` when ``anchor_weight >
            0``.
        """
        with torch.autocast(
                (student_feats[0].device.type if len(student_feats) else
                 'cpu'), enabled=False):
            return self._forward(student_feats, teacher_feats,
                                 batch_gt_instances, batch_img_metas,
                                 strides, anchor_adapter)

    def _check_inputs(self, student_feats, teacher_feats,
                      batch_gt_instances, batch_img_metas) -> List[int]:
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(
                'SEALoss needs the same non-zero number of student and '
                f'teacher levels, got {len(student_feats)} and '
                f'{len(teacher_feats)}.')
        levels = self.resolve_levels(len(student_feats))
        batch = student_feats[0].shape[0]
        for i in levels:
            s, t = student_feats[i], teacher_feats[i]
            if s.dim() != 4 or t.dim() != 4:
                raise ValueError(f'Level {i}: features must be (B, C, H, W), '
                                 f'got {tuple(s.shape)} and {tuple(t.shape)}.')
            if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
                raise ValueError(
                    f'Level {i}: student {tuple(s.shape)} and teacher '
                    f'{tuple(t.shape)} features differ in batch or spatial '
                    'size; both necks must give the same strides.')
            if s.shape[0] != batch:
                raise ValueError('All levels must hold the same batch.')
        for role, feats in (('student', student_feats),
                            ('teacher', teacher_feats)):
            channels = {feats[i].shape[1] for i in levels}
            if len(channels) > 1:
                raise ValueError(
                    f'The {role} levels {levels} have different channel '
                    f'numbers {sorted(channels)}; category anchors pool over '
                    'levels and need one channel number.')
        if len(batch_gt_instances) != batch or len(batch_img_metas) != batch:
            raise ValueError(
                f'{batch} images in the features but '
                f'{len(batch_gt_instances)} ground-truth entries and '
                f'{len(batch_img_metas)} image metas.')
        return levels

    def _strides(self, strides, feat_sizes_all, batch_img_metas):
        if strides is not None:
            strides = normalize_strides(strides)
            if len(strides) != len(feat_sizes_all):
                raise ValueError(
                    f'{len(strides)} strides given for '
                    f'{len(feat_sizes_all)} neck levels.')
            return strides
        shape = batch_img_metas[0].get('batch_input_shape')
        if shape is None:
            raise ValueError(
                'SEALoss needs the level strides: pass `strides`, or image '
                'metas with `batch_input_shape` (set by mmdet\'s '
                'DetDataPreprocessor).')
        return infer_strides(feat_sizes_all, tuple(shape))

    def _forward(self, student_feats, teacher_feats, batch_gt_instances,
                 batch_img_metas, strides, anchor_adapter):
        levels = self._check_inputs(student_feats, teacher_feats,
                                    batch_gt_instances, batch_img_metas)
        feat_sizes_all = [tuple(f.shape[-2:]) for f in student_feats]
        strides = self._strides(strides, feat_sizes_all, batch_img_metas)

        dtype = torch.promote_types(student_feats[levels[0]].dtype,
                                    torch.float32)
        # (B, N, C), pixels ordered level → H → W
        f_s = flatten_level_maps([student_feats[i] for i in levels],
                                 student_feats[levels[0]].shape[1]).to(dtype)
        f_t = flatten_level_maps([teacher_feats[i] for i in levels],
                                 teacher_feats[levels[0]].shape[1]
                                 ).detach().to(dtype)

        centres = pixel_centres([feat_sizes_all[i] for i in levels],
                                [strides[i] for i in levels], f_s.device)
        masks: CategoryMasks = category_masks(
            batch_gt_instances, batch_img_metas, centres,
            use_masks=self.use_masks)
        regions = masks.classes
        if self.background_anchor:
            regions = torch.cat([regions, masks.background[:, None]], dim=1)
        keep_of_pixel = None
        if self.anchor_levels == 'per_level':
            # regions (B, K, N) -> (B, L*K, N): region k restricted to level
            # l; pixel i relates to the K anchors of its own level only
            level_of_pixel = torch.repeat_interleave(
                torch.arange(len(levels), device=f_s.device),
                torch.tensor([feat_sizes_all[i][0] * feat_sizes_all[i][1]
                              for i in levels], device=f_s.device))
            on_level = torch.arange(len(levels), device=f_s.device)[
                :, None] == level_of_pixel[None]  # (L, N)
            num_regions = regions.shape[1]
            regions = (regions[:, None] & on_level[None, :, None]).flatten(
                1, 2)
            keep_of_pixel = on_level.T.repeat_interleave(
                num_regions, dim=1)  # (N, L*K)

        a_s, present = category_anchors(f_s, regions, self.anchor_scope)
        a_t, _ = category_anchors(f_t, regions, self.anchor_scope)
        keep = present if keep_of_pixel is None else \
            present[:, None, :] & keep_of_pixel[None]
        r_s = relation_logits(f_s, a_s, self.temperature, self.distance,
                              self.eps)
        r_t = relation_logits(f_t, a_t, self.temperature, self.distance,
                              self.eps)
        if self.relation_loss == 'kl':
            per_pixel = relation_kl(r_t, r_s, keep)  # (B, N)
            scale = self.loss_weight * self.temperature**2
        else:
            per_pixel = relation_mse(r_t * self.temperature,
                                     r_s * self.temperature, keep)
            scale = self.loss_weight

        usable = masks.valid & (keep.any(-1) if keep.dim() == 3 else
                                keep.any(-1)[:, None])
        if self.balance:
            fg = usable & masks.foreground
            bg = usable & ~masks.foreground
            rel = self.fg_weight * self._masked_mean(per_pixel, fg) + \
                self.bg_weight * self._masked_mean(per_pixel, bg)
        else:
            rel = self._masked_mean(per_pixel, usable)
        losses = dict(rel=scale * rel)

        if self.anchor_weight > 0:
            if anchor_adapter is not None:
                a_s = anchor_adapter(a_s)
            if a_s.shape != a_t.shape:
                raise ValueError(
                    f'Anchor alignment compares student anchors '
                    f'{tuple(a_s.shape)} with teacher anchors '
                    f'{tuple(a_t.shape)}; give an adapter from student to '
                    'teacher channels.')
            dist = (a_s.to(dtype) - a_t).pow(2).sum(-1)  # (B, K)
            if self.anchor_scope == 'batch':  # the same anchors in each row
                dist, present = dist[:1], present[:1]
            losses['anc'] = self.anchor_weight * self._masked_mean(
                dist, present)
        return losses

    @staticmethod
    def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
        """Mean of ``values`` where ``mask``; 0 (with a zero gradient) when
        the mask is empty."""
        total = torch.where(mask, values, values.new_zeros(())).sum()
        return total / mask.sum().clamp(min=1).to(values.dtype)
