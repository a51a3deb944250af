"""Distillation methods: the parts a :class:`Distiller` composes."""
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import nn

from .distill_method import DistillMethod
from .feature_imitation import FeatureImitation
from .adl import ADL
from .sea import SEA
from .tbd import TBD
from .gdetkd import GDetKD, GDetKDDense, GDetKDTwoStage
from .attention_transfer import AttentionTransfer
from .pkd import PKD
from .cwd import CWD
from .mgd import MGD
from .fgd import FGD
from .crosskd import CrossKD
from .ld import LD
from .hmld import HMLD
from .bckd import BCKD
from .dsi import DSI
from .kd_detr import KDDETR


def build_method(cfg: ConfigType, student: nn.Module,
                 teacher: nn.Module) -> DistillMethod:
    """Build a method from its config for a built pair and bind it.

    The registered class may hand over to the class that serves this pair
    (:meth:`DistillMethod.for_pair`).
    """
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if cls is None:
        raise KeyError(f'Unknown distillation method type {kind!r}; a '
                       'method must be registered in mmdet MODELS (see '
                       'docs/adding_a_method.md).')
    if not (isinstance(cls, type) and issubclass(cls, DistillMethod)):
        raise TypeError(
            f'`methods` entries must be distillation methods (DistillMethod '
            f'subclasses such as FeatureImitation or SEA), got {kind!r}.')
    cls.check_pair(student, teacher)
    chosen, cfg = cls.for_pair(student, teacher, cfg)
    if chosen is not cls:
        chosen.check_pair(student, teacher)
    method = chosen(**cfg)
    method.bind(student, teacher)
    return method


__all__ = [
    'DistillMethod', 'FeatureImitation', 'ADL', 'SEA', 'TBD', 'GDetKD',
    'GDetKDDense', 'GDetKDTwoStage', 'AttentionTransfer', 'PKD', 'CWD',
    'MGD', 'FGD', 'CrossKD', 'LD', 'HMLD', 'BCKD', 'DSI', 'KDDETR',
    'build_method'
]
