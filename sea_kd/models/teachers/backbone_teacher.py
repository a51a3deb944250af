"""A teacher that is a backbone alone: features, no detection head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import Tensor

from ..detectors.detector_kind import BACKBONE, add_detector_kind

#: ImageNet normalisation, RGB: what classification and self-supervised
#: backbones (ResNets, DINOv2/DINOv3 ViTs) are trained with.
IMAGENET_PREPROCESSOR = dict(
    type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=1)
#: The side of the square the output shapes are probed with at build: a
#: multiple of 64, 32, 16 and 14 (the strides of ResNets and CSP backbones,
#: the patch sizes of ViTs).
_PROBE_SIZE = 448


@MODELS.register_module()
class BackboneTeacher(BaseModel):
    """A backbone as the teacher of any detector: a classification or
    self-supervised network (an mmdet backbone such as ``ResNet``, or a
    ViT) whose feature maps the feature methods read, with no detection
    head of its own.

    ``extract_feat(x) = backbone(resize(x, input_scale))``, each output a
    ``(B, C_l, H_l, W_l)`` map. The distiller treats them as the teacher's
    neck levels: their channels (:attr:`feature_channels`) and strides in
    the input image (:attr:`feature_strides`, the backbone's stride divided
    by ``input_scale``) are probed once at build on a 448×448 input, so
    that feature methods pair student levels with them by stride. Methods
    that read a detection head (logits, boxes, RoIs, queries) refuse such a
    teacher.

    Args:
        backbone: Config of the backbone, e.g. mmdet's ``ResNet`` with
            ``out_indices=(3, )``.
        data_preprocessor: The teacher's own normalisation; the distiller
            converts the student's batch to it. Defaults to ImageNet's (RGB
            mean/std, no padding divisor).
        input_scale: Factor the (normalised, padded) images are resized by
            before the backbone: RT-DETRv4 feeds DINOv3 the images average
            pooled 2×2 (``0.5``). Down-scaling averages areas
            (``mode='area'``, an average pool for integer factors),
            up-scaling is bilinear.
        ckpt_prefix: Which keys of ``teacher_ckpt`` are the backbone's:
            ``None`` (default) reads a checkpoint saved from a
            ``BackboneTeacher`` (keys ``backbone.*``) as it is; a prefix
            such as ``'backbone.'`` takes the keys under it (the backbone of
            a detector's checkpoint) and leaves the rest (logged); ``''``
            reads a bare backbone's checkpoint (every key is the
            backbone's). Within the chosen keys loading stays strict.
        ckpt_ignore: Prefixes of checkpoint keys (as the file names them)
            to leave out, logged: e.g. ``('fc.', )`` for the classifier of a
            torchvision ResNet file, which mmdet's ``ResNet`` does not
            have.
        init_cfg: Initialisation (unused: the weights come from
            ``teacher_ckpt``).
    """

    def __init__(self,
                 backbone: ConfigType,
                 data_preprocessor: ConfigType = IMAGENET_PREPROCESSOR,
                 input_scale: float = 1.0,
                 ckpt_prefix: Optional[str] = None,
                 ckpt_ignore: Sequence[str] = (),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f'input_scale must be a positive number, got '
                             f'{input_scale!r}.')
        if ckpt_prefix is not None and not isinstance(ckpt_prefix, str):
            raise TypeError(f'ckpt_prefix must be None or a string, got '
                            f'{ckpt_prefix!r}.')
        if isinstance(ckpt_ignore, str) or not all(
                isinstance(p, str) and p for p in ckpt_ignore):
            raise TypeError(f'ckpt_ignore must be a sequence of non-empty key '
                            f'prefixes, got {ckpt_ignore!r}.')
        self.input_scale = float(input_scale)
        self.ckpt_prefix = ckpt_prefix
        self.ckpt_ignore = tuple(ckpt_ignore)
        self.backbone = MODELS.build(backbone)
        self.feature_channels, self.feature_strides = self._probe_outputs()

    @torch.no_grad()
    def _probe_outputs(self) -> Tuple[List[int], List[Tuple[float, float]]]:
        """Channels and ``(s_x, s_y)`` strides of every output map."""
        was_training = self.backbone.training
        self.backbone.eval()
        size = _PROBE_SIZE
        out = self.backbone(torch.zeros(1, 3, size, size))
        self.backbone.train(was_training)
        if not isinstance(out, (tuple, list)) or not out or \
                not all(isinstance(f, Tensor) and f.dim() == 4 for f in out):
            raise TypeError(
                f'The backbone returns a {type(out).__name__}; a backbone '
                'teacher needs a tuple or list of (B, C, H, W) feature maps '
                '(mmdet backbones give one; set out_indices; a ViT must give '
                'its patch tokens as a grid).')
        feats = tuple(out)
        channels = [int(f.shape[1]) for f in feats]
        scale = self.input_scale
        strides = [(size / f.shape[-1] / scale, size / f.shape[-2] / scale)
                   for f in feats]
        return channels, strides

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """The backbone's feature maps of ``inputs`` (B, 3, H, W)."""
        if self.input_scale != 1.0:
            mode = 'area' if self.input_scale < 1 else 'bilinear'
            inputs = F.interpolate(inputs, scale_factor=self.input_scale,
                                   mode=mode, recompute_scale_factor=False)
        return tuple(self.backbone(inputs))

    def convert_checkpoint(self, state_dict: Dict[str, Tensor]
                           ) -> Dict[str, Tensor]:
        """The keys of ``state_dict`` this teacher loads (``ckpt_prefix``).

        Raises:
            ValueError: No key of the checkpoint starts with ``ckpt_prefix``.
        """
        # str.startswith(()) is False: nothing left out without ckpt_ignore
        ignored = [k for k in state_dict if k.startswith(self.ckpt_ignore)]
        if ignored:
            state_dict = {k: v for k, v in state_dict.items()
                          if not k.startswith(self.ckpt_ignore)}
            MMLogger.get_current_instance().info(
                f'BackboneTeacher: {len(ignored)} checkpoint keys left out '
                f'(ckpt_ignore={self.ckpt_ignore}), first: {ignored[:3]}')
        if self.ckpt_prefix is None:
            return state_dict
        prefix = self.ckpt_prefix
        chosen = {f'backbone.{k[len(prefix):]}': v
                  for k, v in state_dict.items() if k.startswith(prefix)}
        if chosen and len(chosen) < len(state_dict):
            MMLogger.get_current_instance().info(
                f'BackboneTeacher: the {len(chosen)} checkpoint keys under '
                f'{prefix!r} are the backbone\'s; '
                f'{len(state_dict) - len(chosen)} others are not read.')
        if not chosen:
            first = sorted(state_dict)[:3]
            raise ValueError(
                f'No key of the teacher checkpoint starts with '
                f'ckpt_prefix={prefix!r} (its first keys: {first}); set '
                'ckpt_prefix to the prefix of the backbone\'s keys, or '
                "'' for a bare backbone's checkpoint.")
        return chosen

    def forward(self, inputs: Tensor, data_samples=None,
                mode: str = 'tensor') -> Tuple[Tensor, ...]:
        """``mode='tensor'``: the feature maps (:meth:`extract_feat`), the
        whole of the teacher's inference; ``'predict'`` and ``'loss'`` are
        refused (no detection head)."""
        if mode != 'tensor':
            self.predict(inputs, data_samples)
        return self.extract_feat(inputs)

    def predict(self, *args, **kwargs):
        """Refused: a backbone teacher has no detection head."""
        raise NotImplementedError(
            'A BackboneTeacher has no detection head: it cannot predict, '
            'be evaluated or compute a detection loss; methods read its '
            'features through extract_feat.')


add_detector_kind(BackboneTeacher, BACKBONE)
