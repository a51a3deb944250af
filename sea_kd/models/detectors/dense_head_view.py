"""What sea_kd knows about a dense head, in one object per head family.

A *view* answers, for one head, every question a method or the capture asks
about its family: how its assigner's targets are read, which logits score a
detection, how its box outputs become boxes in pixels, and how its towers are
laid out. Views are registered per head class (:func:`register_dense_view`)
and found by the head's class hierarchy (:func:`dense_head_view`), so a
subclass such as ``LDHead`` gets GFL's view. Adding a family means adding
one view file.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.coders import DistancePointBBoxCoder
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor, nn

from .class_hierarchy_map import ClassHierarchyMap
from .dense_layout import flatten_level_maps
from .dense_outputs import DenseHeadOutputs, DenseTargets
from .strides import level_strides

_VIEWS = ClassHierarchyMap('view')


def register_dense_view(*head_classes: type) -> Callable:
    """Register a view class for the given head classes (and, through
    :func:`dense_head_view`, their subclasses)."""
    return _VIEWS.register(*head_classes)


def dense_head_view(head: nn.Module) -> Optional['DenseHeadView']:
    """The view of ``head``: the one registered for the nearest class in
    its method resolution order, or ``None`` when sea_kd does not know
    the head's family."""
    view = _VIEWS.lookup(head)
    return None if view is None else view(head)


def known_dense_heads() -> List[str]:
    """Names of the head classes with a view, for messages."""
    return _VIEWS.names()


class DenseHeadView:
    """The base view: an mmdet dense head with a prior generator and a box
    coder whose ``get_targets`` returns labels, label weights, box targets,
    box weights and the average factor (``AnchorHead``).

    Class attributes a family overrides:

    * ``has_towers``: the forward runs a classification and a box tower in
      turn and then the predictors (what running the head's last layers on
      given features relies on);
    * ``tower_attributes``: the two towers' attribute names;
    * ``relu_towers``: whether the towers' layers end in a ReLU when the
      head has no ``act_cfg`` to say;
    * ``predicts_distributions``: box edges as distributions over bins
      (GFL);
    * ``target_output_offset``: items of ``get_targets``' output before the
      labels (the anchors, for ATSS and GFL);
    * ``box_targets``: the targets are always boxes in pixels (GFL,
      RTMDet, TOOD, YOLOX);
    * ``predicts_boxes_alone``: ``predict_by_feat`` makes detections from
      the class scores, box outputs and score factors alone (not
      RTMDet-Ins, whose detections need its mask kernels and mask feature).

    Args:
        head: The dense head.
    """

    has_towers = False
    tower_attributes = ('cls_convs', 'reg_convs')
    relu_towers = True
    predicts_distributions = False
    target_output_offset = 0
    box_targets = False
    predicts_boxes_alone = True

    def __init__(self, head: nn.Module) -> None:
        self.head = head

    # ------------------------------------------------------------ targets
    def target_tap_points(self) -> List[Tuple[nn.Module, str]]:
        """The (module, method name) calls whose records hold the targets
        the head's loss builds, for :meth:`read_targets`."""
        return [(self.head, 'get_targets')]

    def read_targets(self, taps: Sequence, batch_size: int,
                     num_per_level: Sequence[int]) -> DenseTargets:
        """The targets, from the taps (``MethodTap``, one per
        :meth:`target_tap_points` entry) that recorded the student's loss.

        Args:
            taps: The taps, in the order of :meth:`target_tap_points`.
            batch_size: Number of images.
            num_per_level: Priors per level (H_l * W_l * A).
        """
        return self.targets(taps[0].first.output, batch_size)

    def targets(self, output: Optional[tuple],
                batch_size: int) -> DenseTargets:
        """:class:`DenseTargets` from what ``head.get_targets`` returned.

        Args:
            output: The output of ``get_targets`` during the loss.
            batch_size: Number of images in the batch.
        """
        if output is None:
            raise RuntimeError(
                f'{type(self.head).__name__}.get_targets found no valid '
                'prior in the batch; check the images\' sizes against the '
                'head\'s strides.')
        labels, label_weights, bbox_targets, bbox_weights, avg_factor = \
            output[self.target_output_offset:self.target_output_offset + 5]
        return DenseTargets(list(labels), list(label_weights),
                            list(bbox_targets), list(bbox_weights),
                            float(avg_factor))

    @property
    def regresses_boxes(self) -> bool:
        """Whether the regression targets are boxes (x1, y1, x2, y2) in
        input pixels rather than codes of the box coder: for families whose
        targets always are (:attr:`box_targets`), and ``reg_decoded_bbox``
        heads (ATSS)."""
        return self.box_targets or \
            bool(getattr(self.head, 'reg_decoded_bbox', False))

    # ------------------------------------------------------------- scores
    def score_logits(self, dense: DenseHeadOutputs) -> List[Tensor]:
        """Per-level logits of the head's detection score: its class
        logits, for most heads."""
        return list(dense.cls_scores)

    # -------------------------------------------------------------- boxes
    @property
    def box_code_size(self) -> int:
        """Channels of one prior's box output."""
        return int(getattr(getattr(self.head, 'bbox_coder', None),
                           'encode_size', 4))

    def priors_and_strides(self, featmap_sizes: Sequence[Tuple[int, int]],
                           device: torch.device
                           ) -> Tuple[Tensor, Tensor, List[int]]:
        """All priors (N, 4 or 2) in the head's order, each position's
        stride (N,), and the number of positions per level."""
        generator = self.head.prior_generator
        priors = generator.grid_priors(
            list(featmap_sizes), dtype=torch.float32, device=device)
        counts = [int(p.shape[0]) for p in priors]
        strides = [torch.full((count, ), stride, device=device)
                   for count, stride in zip(counts, level_strides(self.head))]
        return torch.cat(priors), torch.cat(strides), counts

    def eval_box_outputs(self, bbox_preds: Sequence[Tensor]
                         ) -> List[Tensor]:
        """Per level, the recorded box outputs as the head gives them in
        eval mode, which its ``predict_by_feat`` reads: unchanged for most
        heads."""
        return list(bbox_preds)

    def level_predictions_in_pixels(self, bbox_preds: Sequence[Tensor]
                                    ) -> List[Tensor]:
        """Per level (B, A*D, H, W), the head's box outputs in the units its
        box coder decodes: its eval-mode outputs for most heads."""
        return self.eval_box_outputs(bbox_preds)

    def predict(self, dense: DenseHeadOutputs, batch_img_metas: List[dict],
                cfg: Optional[dict] = None) -> list:
        """The head's own detections (``predict_by_feat``, NMS included,
        boxes in input pixels) from recorded outputs, detached; the
        extras (centerness, objectness) passed as the head takes them."""
        return self.head.predict_by_feat(
            [c.detach() for c in dense.cls_scores],
            [b.detach() for b in self.eval_box_outputs(dense.bbox_preds)],
            *([e.detach() for e in extra] for extra in dense.extras),
            batch_img_metas=batch_img_metas, cfg=cfg, rescale=False,
            with_nms=True)

    def predictions_in_pixels(self, bbox_preds: Sequence[Tensor]) -> Tensor:
        """(B, N, D) box codes of the head's raw regression outputs, in
        fp32 and in the units its box coder decodes."""
        return flatten_level_maps(
            self.level_predictions_in_pixels([p.float() for p in bbox_preds]),
            self.box_code_size)

    def targets_in_pixels(self, bbox_targets: Sequence[Tensor],
                          strides: Tensor) -> Tensor:
        """(B, N, D) regression targets, in fp32 and in the units its box
        coder decodes."""
        return torch.cat([t.float() for t in bbox_targets], dim=1)

    def decode_rows(self, priors: Tensor, codes: Tensor, strides: Tensor,
                    bounded: bool = False) -> Tensor:
        """(M, 4) boxes of (M, D) codes at (M, d) priors of (M,) strides,
        with the head's box coder.

        Args:
            bounded: Keep the codes inside the range where they make
                proper boxes first (:meth:`bound_codes`).
        """
        if bounded:
            codes = self.bound_codes(codes)
        return get_box_tensor(self.head.bbox_coder.decode(priors, codes))

    def bound_codes(self, codes: Tensor) -> Tensor:
        """Codes that decode to proper boxes: distances to a point clamped
        at 0 (an unbounded regression such as RTMDet's would make inverted
        boxes); box deltas unchanged."""
        if isinstance(self.head.bbox_coder, DistancePointBBoxCoder):
            return codes.clamp(min=0)
        return codes

    def decode(self, priors: Tensor, codes: Tensor, strides: Tensor,
               mask: Optional[Tensor] = None,
               bounded: bool = False) -> Tensor:
        """Decode (B, N, D) codes against (N, d) priors of (N,) strides:
        (B, N, 4) boxes, or the (P, 4) boxes where ``mask`` (B, N) is
        true (:meth:`decode_rows`)."""
        batch, num = codes.shape[:2]
        priors = priors.unsqueeze(0).expand(batch, -1, -1)
        strides = strides.unsqueeze(0).expand(batch, -1)
        if mask is not None:
            priors, codes, strides = priors[mask], codes[mask], strides[mask]
            if codes.shape[0] == 0:
                return codes.new_zeros((0, 4))
            return self.decode_rows(priors, codes, strides, bounded)
        boxes = self.decode_rows(priors.reshape(batch * num, -1),
                                 codes.reshape(batch * num, -1),
                                 strides.reshape(-1), bounded)
        return boxes.reshape(batch, num, 4)

    # ------------------------------------------------------------- towers
    def activates_given_features(self) -> bool:
        """Whether features standing for a tower layer's output go through
        a ReLU: when the head's layers end in one (its ``act_cfg``, where
        it has one; :attr:`relu_towers` otherwise)."""
        act_cfg = getattr(self.head, 'act_cfg', None)
        if isinstance(act_cfg, dict):
            return act_cfg.get('type') == 'ReLU'
        return self.relu_towers


def metric_weighted_targets(output: tuple) -> DenseTargets:
    """:class:`DenseTargets` of heads whose ``get_targets`` returns the
    anchors, labels, label weights, boxes in pixels and the assignment
    metrics (RTMDet, TOOD): the metrics become ``quality``; such a head's
    loss weighs each positive's box by its metric and divides both terms
    by the metrics' sum, so they are also the box weights and the
    normaliser."""
    labels, label_weights, bbox_targets, metrics = output[1:5]
    bbox_weights = [m.unsqueeze(-1).expand_as(box)
                    for m, box in zip(metrics, bbox_targets)]
    total = float(sum(m.sum() for m in metrics))
    return DenseTargets(list(labels), list(label_weights),
                        list(bbox_targets), bbox_weights,
                        max(total, 1.0), quality=list(metrics))


def normalize_dense_targets(head: nn.Module, output: tuple,
                            batch_size: int) -> DenseTargets:
    """:class:`DenseTargets` from what ``head.get_targets`` returned during
    its loss (:meth:`DenseHeadView.targets` of the head's view).

    Args:
        head: The dense head that produced the targets.
        output: What ``head.get_targets`` returned during the loss.
        batch_size: Number of images in the batch.

    Returns:
        DenseTargets: per-level tensors of shape (B, N_l, ...).
    """
    return checked_dense_view(head, 'student').targets(output, batch_size)


def detection_score_logits(head: nn.Module,
                           dense: DenseHeadOutputs) -> List[Tensor]:
    """Per-level logits of the head's detection score
    (:meth:`DenseHeadView.score_logits` of its view).

    Args:
        head: The dense head that produced ``dense``.
        dense: Its :class:`DenseHeadOutputs`.
    """
    return checked_dense_view(head, 'student').score_logits(dense)


def checked_dense_view(head: nn.Module, role: str) -> DenseHeadView:
    """The view of the ``role``'s head; raise, naming the heads sea_kd
    reads, when it has none."""
    view = dense_head_view(head)
    if view is None:
        raise NotImplementedError(
            f'This distiller reads the {role}\'s dense-head targets, which '
            f'sea_kd cannot read yet for a {type(head).__name__} (heads with '
            f'a view, and their subclasses: {", ".join(known_dense_heads())};'
            ' docs/architecture.md, "Detector views"). Methods that read '
            'only the neck (FI, PKD, CWD, MGD, FGD, SEA) work with it.')
    return view
