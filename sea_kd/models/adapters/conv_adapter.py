"""Adapters that map student features to the teacher's channels."""
from __future__ import annotations

from mmdet.registry import MODELS
from mmengine.model import BaseModule, ModuleList
from mmengine.utils import is_list_of
from torch import Tensor, nn


@MODELS.register_module()
class ConvAdapter(BaseModule):
    """A ``k x k`` convolution from student to teacher channels.

    ``φ(F_s) = W * F_s + b``, spatial size unchanged.

    Args:
        in_channels: Student channels.
        out_channels: Teacher channels.
        kernel_size: 1 (default) or an odd size.
        init_cfg: Defaults to Kaiming-uniform weights and zero bias
            (:func:`build_level_adapters` defaults it to ``None``).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 init_cfg=dict(type='Kaiming', layer='Conv2d',
                               distribution='uniform', a=1)) -> None:
        super().__init__(init_cfg=init_cfg)
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}.')
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def build_level_adapters(cfg, student_channels, teacher_channels
                         ) -> ModuleList:
    """One adapter per level (or per branch) from a config without channel
    numbers.

    The adapters sit in an mmengine ``ModuleList``, so the distiller's
    ``init_weights`` reaches them and an ``init_cfg`` given in ``cfg`` is
    applied. Without one they keep PyTorch's default ``Conv2d``
    initialisation (``init_cfg=None``), the setting under which every
    published figure of the methods that use level adapters (FI, PKD, CWD,
    TBD's TFD, CrossKD) was measured; a single adapter built directly
    (SEA, G-DetKD's SGFI) gets :class:`ConvAdapter`'s own default.
    """
    if not (is_list_of(student_channels, int)
            and is_list_of(teacher_channels, int)):
        raise TypeError('channels must be lists of int')
    cfg = dict(cfg)
    cfg.setdefault('init_cfg', None)
    return ModuleList(
        MODELS.build(dict(cfg, in_channels=s, out_channels=t))
        for s, t in zip(student_channels, teacher_channels))
