"""SGFI: semantic-guided feature imitation on region features (G-DetKD).

Yao et al., "G-DetKD: Towards General Distillation Framework for Object
Detectors via Contrastive and Semantic-guided Feature Imitation", ICCV 2021
(arXiv 2108.07482). See ``docs/methods/gdetkd.md``.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence, Tuple, Union

import mmcv.ops
import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice
from ..adapters import ConvAdapter
from ..utils.sparse_roi_align import sparse_twin

#: Ways of computing the student's RoIAlign (see ``SGFILoss``).
ROI_ALIGN_IMPLS = ('auto', 'sparse', 'mmcv')

#: Floor of the learnable temperature in the level softmax.
TAU_MIN = 1e-4


def build_roi_layers(layer_cfg: ConfigType,
                     featmap_strides: Sequence[float]) -> nn.ModuleList:
    """One RoI layer (an ``mmcv.ops`` class, e.g. ``RoIAlign``) per stride,
    as mmdet's RoI extractors build them: ``spatial_scale = 1 / stride``."""
    cfg = copy.deepcopy(dict(layer_cfg))
    layer_type = cfg.pop('type')
    layer_cls = getattr(mmcv.ops, layer_type, None)
    if layer_cls is None:
        raise ValueError(f'roi_layer type `{layer_type}` is not an mmcv.ops '
                         'class; use e.g. `RoIAlign`.')
    return nn.ModuleList(
        layer_cls(spatial_scale=1.0 / float(s), **cfg)
        for s in featmap_strides)


@MODELS.register_module()
class SGFILoss(BaseModule):
    r"""Semantic-guided feature imitation of region features.

    For every region ``i`` (a box in input-image pixels) and every student
    level ``l = 1..L``::

        S_i^l   = RoIAlign(F_l^s, box_i)                 (C_s, h, w)
        T_i     = teacher RoI feature of box i on the level the teacher's
                  own RoI extractor maps it to           (C_t, h, w)
        e(x)    = flatten(conv_2(conv_1(x)))   3×3 stride-2 convs,
                  C_t → C_t/2 → C_t/4, shared by student and teacher
        α_i^l   = softmax_l( <e(f_adap(S_i^l)), e(T_i)> / τ )
        S_i^agg = Σ_l α_i^l · f_adap(S_i^l)
        L_SGFI  = λ · mean_{i, c, y, x} (S_i^agg − T_i)²

    ``f_adap`` is a 1×1 convolution from student to teacher channels, ``τ``
    a learnable temperature (initialised to 1, floored at 1e-4). All levels
    and regions are processed as one (L, K, C, h, w) tensor.

    When ``f_adap`` is a :class:`ConvAdapter` and the embedding has no
    activation (the default), ``e ∘ f_adap`` is affine, ``e(f_adap(x)) =
    M x + m``, and the same loss is computed with far less work
    (``linear_shortcut``): the constant ``<m, e(T_i)>`` is the same on every
    level and cancels in the softmax, so ``α_i^l = softmax_l(<S_i^l, M^T
    e(T_i)> / τ)``, where ``E`` (``e(x) = E x + e_0``) and ``M`` are built
    as explicit (D × C·h·w) matrices from D = C_t/4·h'·w' transposed
    passes (:meth:`embedding_matrices`), so no region goes through a
    convolution to get ``α``; and since the
    ``α`` sum to 1, ``S_i^agg = f_adap(Σ_l α_i^l S_i^l)`` adapts one map per
    region instead of ``L``. Values and gradients equal the direct
    computation up to rounding (tested). The teacher
    features are detached; the embedding and ``τ`` learn only through
    ``α``. Computed in fp32 (fp64 stays fp64). With no region (K = 0) the
    loss is a zero that still touches every parameter (so that DDP sees
    them used).

    Args:
        student_channels: Channels ``C_s`` of the student levels.
        teacher_channels: Channels ``C_t`` of the teacher RoI features, a
            multiple of 4.
        featmap_strides: Stride of each student level the regions are
            pooled from, in level order.
        roi_layer: RoI layer config (an ``mmcv.ops`` class), like mmdet's
            ``SingleRoIExtractor.roi_layer``; its ``output_size`` must match
            the teacher's RoI features.
        adapter: Config of ``f_adap`` built with ``in_channels=C_s`` and
            ``out_channels=C_t`` (default a 1×1 :class:`ConvAdapter`).
        embed_padding: Padding of the two embedding convolutions; 0 (the
            third-party code) turns a 7×7 RoI into a 1×1 map (vector of
            ``C_t/4``), 1 into 2×2.
        embed_act_cfg: Activation after each embedding convolution, e.g.
            ``dict(type='ReLU')``; ``None`` (default): none.
        tau: Initial temperature τ.
        learn_tau: Learn τ (default) or keep it fixed.
        linear_shortcut: Use the shortcut above when ``e ∘ f_adap`` is
            affine (default); ``False`` always takes the direct route.
        roi_align_impl: How the student's RoIAlign (average mode) is
            computed: ``'sparse'``, as one sparse matrix product per level
            (:class:`SparseRoIAlign`, same values, several times faster on
            the CPU); ``'mmcv'``, mmcv's kernel; ``'auto'`` (default):
            sparse on the CPU, mmcv's kernel on other devices. Other RoI
            layers always use mmcv.
        loss_weight: λ.
        init_cfg: Initialisation of the embedding (the adapter has its own).
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 featmap_strides: Sequence[float],
                 roi_layer: ConfigType = dict(
                     type='RoIAlign', output_size=7, sampling_ratio=0),
                 adapter: ConfigType = dict(type='ConvAdapter'),
                 embed_padding: int = 0,
                 embed_act_cfg: OptConfigType = None,
                 tau: float = 1.0,
                 learn_tau: bool = True,
                 linear_shortcut: bool = True,
                 roi_align_impl: str = 'auto',
                 loss_weight: float = 1.0,
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', distribution='uniform',
                     a=1)) -> None:
        super().__init__(init_cfg=init_cfg)
        if teacher_channels < 4 or teacher_channels % 4:
            raise ValueError(
                f'SGFI embeds teacher features with C_t -> C_t/2 -> C_t/4 '
                f'channels, so teacher_channels must be a multiple of 4, got '
                f'{teacher_channels}.')
        if not featmap_strides:
            raise ValueError('SGFILoss needs the stride of at least one '
                             'student level (featmap_strides).')
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}.')
        self.student_channels = int(student_channels)
        self.teacher_channels = int(teacher_channels)
        self.featmap_strides = [float(s) for s in featmap_strides]
        self.roi_layers = build_roi_layers(roi_layer, self.featmap_strides)
        checked_choice('roi_align_impl', roi_align_impl, ROI_ALIGN_IMPLS)
        self.roi_align_impl = roi_align_impl
        self._sparse_layers = [
            sparse_twin(layer) for layer in self.roi_layers
        ]
        size = self.roi_layers[0].output_size
        self.output_size: Tuple[int, int] = tuple(
            size if isinstance(size, (tuple, list)) else (size, size))
        self.adapter = MODELS.build(
            dict(adapter, in_channels=self.student_channels,
                 out_channels=self.teacher_channels))
        c = self.teacher_channels
        layers = []
        for c_in, c_out in ((c, c // 2), (c // 2, c // 4)):
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=2,
                                    padding=embed_padding))
            if embed_act_cfg is not None:
                layers.append(build_activation_layer(dict(embed_act_cfg)))
        self.embed = nn.Sequential(*layers)
        tau_tensor = torch.tensor(float(tau))
        if learn_tau:
            self.tau = nn.Parameter(tau_tensor)
        else:
            self.register_buffer('tau', tau_tensor)
        self.loss_weight = loss_weight
        self.linear_shortcut = bool(linear_shortcut) and self._is_affine()

    def _is_affine(self) -> bool:
        """Whether ``e ∘ f_adap`` is affine: a plain convolution adapter and
        an embedding of convolutions only."""
        conv = getattr(self.adapter, 'conv', None)
        plain_adapter = isinstance(self.adapter, ConvAdapter) and \
            isinstance(conv, nn.Conv2d) and conv.groups == 1 and \
            conv.dilation == (1, 1) and conv.stride == (1, 1)
        return plain_adapter and all(
            isinstance(m, nn.Conv2d) for m in self.embed)

    # ----------------------------------------------------------------- parts
    def pool_levels(self, student_feats: Sequence[Tensor],
                    rois: Tensor) -> Tensor:
        """RoIAlign every region on every student level.

        Args:
            student_feats: (B, C_s, H_l, W_l) per level, as many as
                ``featmap_strides``.
            rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]``.

        Returns:
            Tensor: (L, K, C_s, h, w).
        """
        if len(student_feats) != len(self.roi_layers):
            raise ValueError(
                f'SGFILoss was built for {len(self.roi_layers)} student '
                f'levels (featmap_strides {self.featmap_strides}) but got '
                f'{len(student_feats)} feature maps.')
        dtype = torch.promote_types(student_feats[0].dtype, torch.float32)
        rois = rois.detach().to(dtype)
        sparse = self.roi_align_impl == 'sparse' or (
            self.roi_align_impl == 'auto' and rois.device.type == 'cpu')
        layers = [
            twin if sparse and twin is not None else layer
            for layer, twin in zip(self.roi_layers, self._sparse_layers)
        ]
        # one RoIAlign call per level (their sizes differ), stacked at once
        return torch.stack([
            layer(feat.to(dtype), rois)
            for layer, feat in zip(layers, student_feats)
        ])

    def embed_regions(self, feats: Tensor) -> Tensor:
        """``e(x)``: (N, C_t, h, w) -> (N, D)."""
        return self.embed(feats).flatten(1)

    def level_weights(self, adapted: Tensor, teacher: Tensor) -> Tensor:
        """``α``: (L, K, C_t, h, w) and (K, C_t, h, w) -> (L, K), summing to
        1 over levels."""
        num_levels, num = adapted.shape[:2]
        embedded = self.embed_regions(
            torch.cat([adapted.flatten(0, 1), teacher]))
        e_s = embedded[:num_levels * num].reshape(num_levels, num, -1)
        e_t = embedded[num_levels * num:]
        similarity = (e_s * e_t[None]).sum(-1)  # (L, K)
        return (similarity / self.tau.clamp(min=TAU_MIN)).softmax(dim=0)

    def embedding_matrices(self, region_size: Tuple[int, int]
                           ) -> Tuple[Tensor, Tensor, Tensor]:
        """The affine maps of the shortcut as explicit matrices.

        ``e(x) = E x + e_0`` for a (C_t, h, w) region feature ``x``
        flattened, and ``e(f_adap(s)) = M s + m`` for a (C_s, h, w) student
        one. Row ``d`` of ``E`` is the embedding's transposed convolutions
        applied to the ``d``-th unit vector of the embedding space (D =
        C_t/4 · h' · w', 32 with the defaults), so building them costs D
        transposed passes, not K; gradients reach the convolution weights
        through them.

        Returns:
            tuple: ``E`` (D, C_t·h·w), ``e_0`` (D,) and ``M`` (D, C_s·h·w).
        """
        sizes = [tuple(region_size)]
        for conv in self.embed:
            h, w = sizes[-1]
            sizes.append(tuple(
                (n + 2 * p - k) // s + 1 for n, p, k, s in zip(
                    (h, w), conv.padding, conv.kernel_size, conv.stride)))
        first = self.embed[0].weight
        zero = first.new_zeros((1, self.teacher_channels, *sizes[0]))
        offset = self.embed(zero).flatten()  # e_0 = e(0): the biases
        dim = offset.numel()
        rows = torch.eye(dim, dtype=first.dtype, device=first.device)
        rows = rows.reshape(dim, -1, *sizes[-1])
        for conv, size in zip(reversed(list(self.embed)), sizes[-2::-1]):
            natural = [(m - 1) * s - 2 * p + k for m, s, p, k in zip(
                rows.shape[-2:], conv.stride, conv.padding,
                conv.kernel_size)]
            rows = F.conv_transpose2d(
                rows, conv.weight, stride=conv.stride, padding=conv.padding,
                output_padding=tuple(n - a for n, a in zip(size, natural)))
        adapter = self.adapter.conv
        student_rows = F.conv_transpose2d(rows, adapter.weight,
                                          padding=adapter.padding)
        return rows.flatten(1), offset, student_rows.flatten(1)

    def level_weights_linear(self, pooled: Tensor,
                             teacher: Tensor) -> Tensor:
        """``α`` by the affine shortcut: (L, K, C_s, h, w) student RoI
        features and (K, C_t, h, w) teacher ones -> (L, K).

        ``α_i^l = softmax_l(<S_i^l, Mᵀ e(T_i)> / τ)`` with ``e(T_i) = E T_i +
        e_0`` (see :meth:`embedding_matrices`): two small matrix products
        for all regions, then one dot product per region and level.
        """
        embed_t, offset, embed_s = self.embedding_matrices(
            tuple(teacher.shape[-2:]))
        guide = (teacher.flatten(1) @ embed_t.t() + offset) @ embed_s
        similarity = (pooled.flatten(2) * guide).sum(-1)  # (L, K)
        return (similarity / self.tau.clamp(min=TAU_MIN)).softmax(dim=0)

    def fuse(self, student_feats: Sequence[Tensor], teacher_feats: Tensor,
             rois: Tensor) -> Tuple[Tensor, Tensor]:
        """The fused student region features and the level weights.

        Args:
            student_feats: (B, C_s, H_l, W_l) per student level.
            teacher_feats: (K, C_t, h, w) teacher RoI features.
            rois: (K, 5) regions.

        Returns:
            tuple: ``S^agg`` (K, C_t, h, w) and ``α`` (L, K).
        """
        self._check(teacher_feats, rois)
        teacher = teacher_feats.detach().to(
            torch.promote_types(teacher_feats.dtype, torch.float32))
        pooled = self.pool_levels(student_feats, rois)  # (L, K, C_s, h, w)
        if self.linear_shortcut:
            alpha = self.level_weights_linear(pooled, teacher.to(pooled.dtype))
            fused = self.adapter((alpha[..., None, None, None] *
                                  pooled).sum(0))
            return fused, alpha
        num_levels, num = pooled.shape[:2]
        adapted = self.adapter(pooled.flatten(0, 1)).reshape(
            num_levels, num, self.teacher_channels, *pooled.shape[-2:])
        alpha = self.level_weights(adapted, teacher.to(adapted.dtype))
        fused = (alpha[..., None, None, None] * adapted).sum(0)
        return fused, alpha

    # ---------------------------------------------------------------- forward
    def forward(self,
                student_feats: Sequence[Tensor],
                teacher_feats: Tensor,
                rois: Tensor,
                return_fused: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Optional[Tensor]]]:
        """Compute ``L_SGFI``.

        Args:
            student_feats: (B, C_s, H_l, W_l) per student level.
            teacher_feats: (K, C_t, h, w) teacher RoI features of the same
                regions (from the teacher's own RoI extractor).
            rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]`` in input pixels.
            return_fused: Also return ``S^agg`` (K, C_t, h, w).

        Returns:
            Tensor or tuple: the scalar loss (fp32), and ``S^agg`` when asked.
        """
        with torch.autocast(rois.device.type, enabled=False):
            self._check(teacher_feats, rois)
            if rois.shape[0] == 0:
                loss = self._zero(student_feats)
                fused = loss.new_zeros(
                    (0, self.teacher_channels, *self.output_size))
                return (loss, fused) if return_fused else loss
            fused, _ = self.fuse(student_feats, teacher_feats, rois)
            target = teacher_feats.detach().to(fused.dtype)
            loss = self.loss_weight * F.mse_loss(fused, target)
        return (loss, fused) if return_fused else loss

    def _check(self, teacher_feats: Tensor, rois: Tensor) -> None:
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f'rois must be (K, 5) [batch_idx, x1, y1, x2, '
                             f'y2], got {tuple(rois.shape)}.')
        expected = (rois.shape[0], self.teacher_channels, *self.output_size)
        if tuple(teacher_feats.shape) != expected:
            raise ValueError(
                f'Teacher RoI features {tuple(teacher_feats.shape)} do not '
                f'match {expected} (regions, teacher_channels, roi_layer '
                'output_size); build SGFILoss with the teacher\'s RoI '
                'extractor channels and output size.')

    def _zero(self, student_feats: Sequence[Tensor]) -> Tensor:
        """A zero loss connected to every parameter and input level."""
        zero = sum(p.sum() * 0 for p in self.parameters())
        zero = zero + sum(f.float().sum() * 0 for f in student_feats)
        return zero.float()
