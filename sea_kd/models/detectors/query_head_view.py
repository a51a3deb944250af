"""Views of DETR-family query heads."""
from __future__ import annotations

from typing import Callable, Optional

from mmdet.models.dense_heads import DDQDETRHead, DETRHead, DINOHead
from torch import nn

from .class_hierarchy_map import ClassHierarchyMap

_VIEWS = ClassHierarchyMap('view')


def register_query_view(*head_classes: type) -> Callable:
    """Register a view class for the given query head classes."""
    return _VIEWS.register(*head_classes)


def query_head_view(head: nn.Module) -> Optional['QueryHeadView']:
    """The view of a DETR-family head, or ``None`` for another head."""
    view = _VIEWS.lookup(head)
    return None if view is None else view(head)


@register_query_view(DETRHead)
class QueryHeadView:
    """A DETR-family head whose training outputs are every decoder layer's
    class logits and normalised boxes of its matching queries.

    Class attributes a family overrides:

    * ``denoising``: its training outputs start with denoising queries,
      told apart by the ``dn_meta`` its ``loss`` is called with (DINO);
    * ``separable``: its matching queries can be told from the rest of its
      training outputs.

    Args:
        head: The query head.
    """

    denoising = False
    separable = True

    def __init__(self, head: nn.Module) -> None:
        self.head = head

    @property
    def uses_sigmoid_classes(self) -> bool:
        """Whether the head classifies with one sigmoid per class (no "no
        object" logit), as Deformable DETR and DINO do; DETR's softmax
        head has one more logit."""
        return bool(getattr(self.head.loss_cls, 'use_sigmoid', False))


@register_query_view(DINOHead)
class DINOHeadView(QueryHeadView):
    """DINO: denoising queries first in its training outputs."""

    denoising = True


@register_query_view(DDQDETRHead)
class DDQDETRHeadView(DINOHeadView):
    """DDQ-DETR: dense one-to-many queries added to its training outputs,
    which sea_kd does not separate from the matching queries yet."""

    separable = False
