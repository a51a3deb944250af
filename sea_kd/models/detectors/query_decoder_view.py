"""Views of DETR-family decoders: running a detector's decoder and head
again on queries given from outside (KD-DETR's distillation points).

A view is found by the detector's class hierarchy. It reads the keyword
arguments of the detector's own ``forward_decoder`` call of the step (the
encoder's memory and its masks and shapes, recorded by the capture), puts
the given queries in place of the detector's matching queries and runs
``forward_decoder`` and the head's ``forward`` on them alone: the given
queries see no query of the detector's own (no self-attention across), as
the authors of KD-DETR run their points in a decoder call of their own.

Queries are given in one form for every family (:class:`DecoderQueries`):
content vectors and boxes, normalised ``(cx, cy, w, h)`` in ``[0, 1]``;
each view turns them into its decoder's inputs.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from mmdet.models.detectors import DABDETR, DINO, DeformableDETR
from mmdet.models.layers.transformer import inverse_sigmoid
from torch import Tensor, nn

from .class_hierarchy_map import ClassHierarchyMap

_VIEWS = ClassHierarchyMap('decoder view')


@dataclass
class DecoderQueries:
    """Queries of a decoder call, in the form every view takes.

    Attributes:
        content: (B, K, D) content queries (DINO's ``query``, DAB-DETR's
            ``query``).
        boxes: (B, K, 4) their boxes (reference points, anchors),
            normalised ``(cx, cy, w, h)`` in ``[0, 1]``.
    """
    content: Tensor
    boxes: Tensor

    def detach(self) -> 'DecoderQueries':
        """The same queries without autograd history."""
        return DecoderQueries(self.content.detach(), self.boxes.detach())


def register_decoder_view(*detector_classes: type) -> Callable:
    """Register a view class for the given detector classes."""
    return _VIEWS.register(*detector_classes)


def query_decoder_view(detector: nn.Module) -> Optional['QueryDecoderView']:
    """The decoder view of a DETR-family detector, or ``None`` where sea_kd
    has no view of its class.

    Raises:
        TypeError: The class has a view, but not of this configuration
            (a single-stage Deformable DETR); the message says why.
    """
    view = _VIEWS.lookup(detector)
    return None if view is None else view(detector)


def decoder_view_families() -> str:
    """The detector classes with a decoder view and the form each must
    have, for messages."""
    return ', '.join(f'{cls.__name__}{view.condition}'
                     for cls, view in _VIEWS.items())


class QueryDecoderView:
    """A DETR-family detector's decoder and head run on given queries.

    Subclasses implement :meth:`matching_queries` and :meth:`decoder_inputs`.

    Args:
        detector: The detector.
    """

    #: the form the detector must have, for messages (``' (two-stage)'``)
    condition = ''
    #: whether the decoder reads the given content queries (a two-stage
    #: Deformable DETR makes its content queries from the boxes)
    uses_content = True

    def __init__(self, detector: nn.Module) -> None:
        self.detector = detector

    @property
    def embed_dims(self) -> int:
        """The width of the decoder's content queries."""
        return self.detector.embed_dims

    @property
    def num_queries(self) -> int:
        """The number of the detector's matching queries."""
        return self.detector.num_queries

    def matching_queries(self, decoder_inputs: dict) -> DecoderQueries:
        """The detector's own matching queries of a step, from the keyword
        arguments of its ``forward_decoder`` call (in eval mode: no
        denoising queries)."""
        raise NotImplementedError

    def decoder_inputs(self, decoder_inputs: dict,
                       queries: DecoderQueries) -> dict:
        """The keyword arguments of ``forward_decoder`` with ``queries`` in
        place of the step's own."""
        raise NotImplementedError

    def decode(self, decoder_inputs: dict,
               queries: DecoderQueries) -> Tuple[Tensor, Tensor]:
        """Run the decoder and the head on ``queries`` alone.

        Args:
            decoder_inputs: The keyword arguments of the detector's own
                ``forward_decoder`` call of the step.
            queries: The queries, (B, K, ·).

        Returns:
            ``(cls_scores, bbox_preds)``: (L, B, K, C) class logits and
            (L, B, K, 4) normalised boxes of every decoder layer, in the
            precision of the decoder's parameters.
        """
        # in the decoder's own precision: the step's memory may come from
        # an autocast region, and a method runs with autocast off
        dtype = next(self.detector.decoder.parameters()).dtype
        inputs = {
            k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point()
            else v
            for k, v in self.decoder_inputs(decoder_inputs, queries).items()
        }
        outputs = self.detector.forward_decoder(**inputs)
        head = self.detector.bbox_head
        wanted = inspect.signature(head.forward).parameters
        cls_scores, bbox_preds = head(
            **{k: v for k, v in outputs.items() if k in wanted})[:2]
        return cls_scores, bbox_preds


@register_decoder_view(DINO)
class DINODecoderView(QueryDecoderView):
    """DINO: content ``query`` and sigmoid ``reference_points``; the given
    queries run without the step's denoising mask."""

    def matching_queries(self, decoder_inputs: dict) -> DecoderQueries:
        if decoder_inputs.get('dn_mask') is not None:
            raise RuntimeError(
                'The decoder call holds denoising queries; the matching '
                'queries are read from a detector in eval mode.')
        return DecoderQueries(decoder_inputs['query'],
                              decoder_inputs['reference_points'])

    def decoder_inputs(self, decoder_inputs: dict,
                       queries: DecoderQueries) -> dict:
        return dict(decoder_inputs, query=queries.content,
                    reference_points=queries.boxes, dn_mask=None)


@register_decoder_view(DABDETR)
class DABDETRDecoderView(QueryDecoderView):
    """DAB-DETR: content ``query`` and anchors ``query_pos`` before the
    sigmoid (its decoder applies it)."""

    def matching_queries(self, decoder_inputs: dict) -> DecoderQueries:
        return DecoderQueries(decoder_inputs['query'],
                              decoder_inputs['query_pos'].sigmoid())

    def decoder_inputs(self, decoder_inputs: dict,
                       queries: DecoderQueries) -> dict:
        return dict(decoder_inputs, query=queries.content,
                    query_pos=inverse_sigmoid(queries.boxes))


@register_decoder_view(DeformableDETR)
class DeformableDETRDecoderView(QueryDecoderView):
    """Two-stage Deformable DETR (``as_two_stage=True``): a query is its box
    alone. The detector makes both halves of a proposal's query from its
    box (``pos_trans_fc`` and ``pos_trans_norm`` of the box's sine
    embedding: positional query, then content query), and the view does
    the same for a given box with the decoding detector's own map; the
    given content is not read.

    Single-stage Deformable DETR is refused: its positional queries are
    learned per query slot and its references are 2-D points derived from
    them, so no box gives a query it would have made.
    """

    condition = ' (two-stage)'
    uses_content = False

    def __init__(self, detector: nn.Module) -> None:
        if not detector.as_two_stage:
            raise TypeError(
                'sea_kd runs a Deformable DETR decoder on given boxes only '
                'in its two-stage form (as_two_stage=True, with '
                'with_box_refine=True as mmdet\'s '
                'deformable-detr-refine-twostage configs): the single-stage '
                'form learns one positional query per query slot, and no '
                'box gives one. Use the two-stage form, DINO or DAB-DETR, '
                'or distil this decoder with HMLD.')
        super().__init__(detector)

    def matching_queries(self, decoder_inputs: dict) -> DecoderQueries:
        return DecoderQueries(decoder_inputs['query'],
                              decoder_inputs['reference_points'])

    def decoder_inputs(self, decoder_inputs: dict,
                       queries: DecoderQueries) -> dict:
        detector = self.detector
        embedding = detector.get_proposal_pos_embed(
            inverse_sigmoid(queries.boxes))
        query_pos, query = detector.pos_trans_norm(detector.pos_trans_fc(
            embedding.to(detector.pos_trans_fc.weight.dtype))).split(
                self.embed_dims, dim=-1)
        return dict(decoder_inputs, query=query, query_pos=query_pos,
                    reference_points=queries.boxes)
