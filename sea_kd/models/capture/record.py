"""The record a distillation step hands to its losses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from mmdet.structures import SampleList
from torch import Tensor

from ..detectors.dense_outputs import DenseHeadOutputs, DenseTargets


@dataclass
class RoIRecord:
    """Sampled R-CNN regions with both detectors' region outputs.

    Attributes:
        rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]``, the student's sampled
            RoIs in input-image coordinates.
        sampling_results: The student's ``SamplingResult`` per image.
        student_feats / teacher_feats: (K, C, h, w) RoI features.
        student_cls / teacher_cls: (K, num_classes + 1) R-CNN logits.
        student_reg / teacher_reg: (K, 4 or 4*num_classes) box deltas.
        labels, label_weights, bbox_targets, bbox_weights: The R-CNN targets
            of the sampled RoIs, as the student's bbox head built them.
        student_repr / teacher_repr: (K, D) region representations, the
            output of the bbox head's last shared FC layer after its ReLU
            (what the class and box predictors of a ``Shared2FCBBoxHead``
            read); ``None`` when the head has no shared FC layers.
    """
    rois: Tensor
    sampling_results: list
    student_feats: Tensor
    student_cls: Tensor
    student_reg: Tensor
    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    bbox_weights: Tensor
    teacher_feats: Optional[Tensor] = None
    teacher_cls: Optional[Tensor] = None
    teacher_reg: Optional[Tensor] = None
    student_repr: Optional[Tensor] = None
    teacher_repr: Optional[Tensor] = None


@dataclass
class QueryOutputs:
    """Decoder outputs of a DETR-family head, every decoder layer.

    The queries are the matching queries only: a DINO student's denoising
    queries (the first ``dn_meta['num_denoising_queries']`` of each layer
    in training) are left out.

    Attributes:
        cls_scores: (L, B, Q, C') class logits of the L decoder layers;
            C' is the number of classes for sigmoid classifiers
            (Deformable DETR, DINO) and one more, the last being "no
            object", for softmax classifiers (DETR).
        bbox_preds: (L, B, Q, 4) boxes as the head predicts them:
            normalised (cx, cy, w, h), relative to each image's
            ``img_shape``.
        decoder_inputs: The keyword arguments of the detector's
            ``forward_decoder`` call of the step (the encoder's memory,
            its masks and shapes, the queries), for methods that run the
            decoder again on queries of their own (KD-DETR, through
            :func:`~sea_kd.models.detectors.query_decoder_view`).
    """
    cls_scores: Tensor
    bbox_preds: Tensor
    decoder_inputs: Optional[dict] = None


@dataclass
class DistillRecord:
    """Everything one step's distillation losses may read.

    Only the parts the distiller asked for (see :mod:`.record_parts`) are
    filled; the others stay ``None``. ``dense_tower`` (student only) is the
    output of the dense head's last classification-tower layer
    (``bbox_head.cls_convs[-1]``, or each level's last layer for heads with
    one tower per level), one (B, C, H, W) tensor per level, in
    ``student_cls_tower``.

    ``student_queries`` / ``teacher_queries`` hold the decoder outputs of
    DETR-family detectors (:class:`QueryOutputs`).

    ``student_taps`` / ``teacher_taps`` hold the outputs of submodules the
    methods named by path (open capture, :class:`ModuleTaps`), one list
    entry per call. ``method_outputs[name]`` holds what method ``name``'s
    ``teacher_after_student`` returned.

    ``student_losses`` holds the student's own loss values of the step,
    detached, one scalar per name (mmdet's per-level lists summed), set by
    ``Distiller.loss`` before the distillation losses are computed, for
    methods that balance their terms by them (TBD's dynamic task weights).
    """
    data_samples: SampleList
    student_neck: Optional[Tuple[Tensor, ...]] = None
    teacher_neck: Optional[Tuple[Tensor, ...]] = None
    student_dense: Optional[DenseHeadOutputs] = None
    teacher_dense: Optional[DenseHeadOutputs] = None
    dense_targets: Optional[DenseTargets] = None
    student_cls_tower: Optional[List[Tensor]] = None
    roi: Optional[RoIRecord] = None
    student_queries: Optional[QueryOutputs] = None
    teacher_queries: Optional[QueryOutputs] = None
    parts: Tuple[str, ...] = field(default_factory=tuple)
    student_losses: Optional[Dict[str, Tensor]] = None
    student_taps: Dict[str, List[Any]] = field(default_factory=dict)
    teacher_taps: Dict[str, List[Any]] = field(default_factory=dict)
    method_outputs: Dict[str, Any] = field(default_factory=dict)

    @property
    def batch_gt_instances(self) -> list:
        """Ground-truth ``InstanceData`` per image."""
        return [s.gt_instances for s in self.data_samples]

    @property
    def batch_img_metas(self) -> List[dict]:
        """Meta information per image (``img_shape``, ``pad_shape``...)."""
        return [s.metainfo for s in self.data_samples]
