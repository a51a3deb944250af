"""CKD: contrastive knowledge distillation of region representations (G-DetKD).

Yao et al., ICCV 2021 (arXiv 2108.07482); see ``docs/methods/gdetkd.md``.
"""
from __future__ import annotations

from collections import deque
from typing import Deque, List, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import OptMultiConfig
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice

#: Spaces CKD compares queries and keys in (see ``CKDLoss``).
KEY_SPACES = ('projected', 'teacher')


def gather_rows(rows: Tensor) -> Tuple[Tensor, int]:
    """Concatenate the rows of every process, in rank order.

    Processes may hold different numbers of rows: the counts are gathered
    first and every process pads to the largest. The local rows keep their
    gradient; the other processes' rows are constants. Without a process
    group this returns ``rows`` itself.

    Args:
        rows: (K, D) on this process.

    Returns:
        tuple: (Σ_r K_r, D) rows of all processes, and the offset of this
        process's rows in them.
    """
    if get_world_size() == 1:
        return rows, 0
    rank = get_rank()
    count = torch.tensor([rows.shape[0]], dtype=torch.long,
                         device=rows.device)
    counts = [int(c.item()) for c in all_gather(count)]
    padded = rows.new_zeros((max(counts), *rows.shape[1:]))
    padded[:rows.shape[0]] = rows.detach()
    parts: List[Tensor] = [p[:n] for p, n in zip(all_gather(padded), counts)]
    parts[rank] = rows
    return torch.cat(parts), sum(counts[:rank])


@MODELS.register_module()
class CKDLoss(BaseModule):
    r"""Contrastive distillation of region representations (InfoNCE).

    For regions ``i = 1..K`` of this process with student representation
    ``r_i^s`` and teacher representation ``r_i^t``::

        s_i = normalize(P(A(r_i^s)))        t_j = normalize(P(r_j^t))
        g(a, b) = exp(cos(a, b) / γ)
        L_CKD = λ · mean_i −log( g(s_i, t_i) / Σ_{j ∈ N_i} g(s_i, t_j) )

    ``P`` is a linear projection to ``embed_channels`` (128) shared by
    student and teacher, ``A`` a linear adapter from the student's to the
    teacher's representation size (identity when equal). With
    ``key_space='teacher'`` there is no ``P``: ``s_i = normalize(A(r_i^s))``
    and ``t_j = normalize(r_j^t)``, the keys are the teacher's own
    representations and cannot collapse (a shared ``P`` can map every
    teacher region to one direction when the student's queries start out
    alike, leaving the loss at ``log`` of the number of keys; see
    ``docs/methods/gdetkd.md``). The keys ``t_j``
    are this step's teacher embeddings of all processes (gathered with
    ``mmengine.dist.all_gather``; a no-op in one process) followed by a
    memory of the gathered teacher embeddings of the last
    ``memory_batches`` steps. ``N_i`` holds all keys except the regions of
    the same image whose IoU with region ``i`` exceeds ``iou_threshold``;
    the positive ``t_i`` itself is in ``N_i`` (``include_positive=True``,
    the usual InfoNCE) or not (``False``, the third-party code's form).

    The memory is a FIFO of detached embeddings: after each training step
    (module in training mode) the gathered keys of the step are pushed and
    the oldest batch is dropped. Every process pushes the same gathered
    tensor, so the memories of all processes agree. It is **not** saved in
    checkpoints: it holds embeddings of an earlier projection, its size
    depends on the number of processes and images per process, and it
    refills within ``memory_batches`` steps after a resume (see
    ``docs/methods/gdetkd.md``).

    The teacher embeddings of this process carry gradient into ``P``, if
    any (the teacher representations themselves are detached); gathered
    rows of other processes and the memory are constants. Computed in fp32.
    With no region (K = 0) the loss is a zero that touches every parameter; the
    gather still runs so that all processes take part.

    Args:
        student_channels: Size of ``r^s``.
        teacher_channels: Size of ``r^t``.
        embed_channels: Output size of ``P`` (``key_space='projected'``).
        temperature: γ.
        memory_batches: Number of past steps kept in the memory; 0: none.
        iou_threshold: Same-image regions with IoU above it are not
            negatives.
        include_positive: Keep the positive in the denominator.
        key_space: ``'projected'`` (the paper: shared projection ``P``) or
            ``'teacher'`` (queries mapped into the teacher's representation
            space, keys unprojected).
        loss_weight: λ.
        init_cfg: Initialisation config.
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 embed_channels: int = 128,
                 temperature: float = 0.07,
                 memory_batches: int = 10,
                 iou_threshold: float = 0.5,
                 include_positive: bool = True,
                 key_space: str = 'projected',
                 loss_weight: float = 1.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}.')
        checked_choice('key_space', key_space, KEY_SPACES)
        if memory_batches < 0:
            raise ValueError(
                f'memory_batches must be >= 0, got {memory_batches}.')
        self.student_channels = int(student_channels)
        self.teacher_channels = int(teacher_channels)
        self.adapter = nn.Identity() \
            if self.student_channels == self.teacher_channels \
            else nn.Linear(self.student_channels, self.teacher_channels)
        self.key_space = key_space
        if key_space == 'projected':
            self.projection = nn.Linear(self.teacher_channels,
                                        embed_channels)
            self.embed_channels = int(embed_channels)
        else:
            self.projection = nn.Identity()
            self.embed_channels = self.teacher_channels
        self.temperature = float(temperature)
        self.memory_batches = int(memory_batches)
        self.iou_threshold = float(iou_threshold)
        self.include_positive = include_positive
        self.loss_weight = loss_weight
        # a plain attribute, not a buffer: not in state_dict, not broadcast
        # by DDP (every process pushes the same gathered rows)
        self._memory: Deque[Tensor] = deque(maxlen=self.memory_batches)

    # ----------------------------------------------------------------- memory
    @property
    def memory(self) -> Tensor:
        """(M, embed_channels) keys of the past steps, newest first."""
        if not self._memory:
            return torch.zeros((0, self.embed_channels))
        return torch.cat(list(reversed(self._memory)))

    @property
    def memory_sizes(self) -> List[int]:
        """Number of keys of each remembered step, newest first."""
        return [int(m.shape[0]) for m in reversed(self._memory)]

    def reset_memory(self) -> None:
        """Forget all remembered keys."""
        self._memory.clear()

    def _push(self, keys: Tensor) -> None:
        if self.memory_batches > 0:
            self._memory.append(keys.detach())

    # ------------------------------------------------------------- embedding
    def embed_student(self, student_repr: Tensor) -> Tensor:
        """``s = normalize(P(A(r^s)))``, (K, D_s) -> (K, E)."""
        return F.normalize(self.projection(self.adapter(student_repr)),
                           dim=1)

    def embed_teacher(self, teacher_repr: Tensor) -> Tensor:
        """``t = normalize(P(r^t))``, (K, D_t) -> (K, E); ``r^t`` detached.
        """
        return F.normalize(self.projection(teacher_repr.detach()), dim=1)

    def negative_mask(self, rois: Tensor) -> Tensor:
        """(K, K) bool, True where region ``j`` is excluded from region
        ``i``'s negatives: same image, IoU > ``iou_threshold``, ``j ≠ i``."""
        rois = rois.detach().float()
        same_image = rois[:, None, 0] == rois[None, :, 0]
        ious = bbox_overlaps(rois[:, 1:], rois[:, 1:])
        eye = torch.eye(rois.shape[0], dtype=torch.bool, device=rois.device)
        return same_image & (ious > self.iou_threshold) & ~eye

    # ---------------------------------------------------------------- forward
    def forward(self, student_repr: Tensor, teacher_repr: Tensor,
                rois: Tensor) -> Tensor:
        """Compute ``L_CKD`` and push this step's keys to the memory.

        Args:
            student_repr: (K, D_s) student region representations.
            teacher_repr: (K, D_t) teacher region representations.
            rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]`` of the regions
                (image index within this process's batch).

        Returns:
            Tensor: The scalar loss (fp32).
        """
        self._check(student_repr, teacher_repr, rois)
        with torch.autocast(rois.device.type, enabled=False):
            dtype = torch.promote_types(student_repr.dtype, torch.float32)
            queries = self.embed_student(student_repr.to(dtype))
            keys = self.embed_teacher(teacher_repr.to(dtype))
            batch_keys, offset = gather_rows(keys)
            memory = self.memory.to(device=keys.device, dtype=dtype)
            if self.training:
                self._push(batch_keys)
            num = rois.shape[0]
            if num == 0:
                return (sum(p.sum() * 0 for p in self.parameters()) +
                        student_repr.sum() * 0).float()
            all_keys = torch.cat([batch_keys, memory])
            logits = queries @ all_keys.t() / self.temperature  # (K, M)
            local = torch.arange(num, device=rois.device) + offset
            positive = logits[torch.arange(num, device=rois.device), local]
            excluded = torch.zeros_like(logits, dtype=torch.bool)
            excluded[:, offset:offset + num] = self.negative_mask(rois)
            if not self.include_positive:
                excluded[torch.arange(num, device=rois.device), local] = True
            has_keys = ~excluded.all(dim=1)
            denominator = logits.masked_fill(excluded, float('-inf')) \
                .logsumexp(dim=1)
            per_region = torch.where(has_keys, denominator - positive,
                                     torch.zeros_like(positive))
            loss = per_region.sum() / has_keys.sum().clamp(min=1)
            return self.loss_weight * loss

    def _check(self, student_repr: Tensor, teacher_repr: Tensor,
               rois: Tensor) -> None:
        num = rois.shape[0]
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f'rois must be (K, 5) [batch_idx, x1, y1, x2, '
                             f'y2], got {tuple(rois.shape)}.')
        if tuple(student_repr.shape) != (num, self.student_channels):
            raise ValueError(
                f'Student representations {tuple(student_repr.shape)} do not '
                f'match ({num}, student_channels={self.student_channels}); '
                'set CKDLoss(student_channels) to their size.')
        if tuple(teacher_repr.shape) != (num, self.teacher_channels):
            raise ValueError(
                f'Teacher representations {tuple(teacher_repr.shape)} do not '
                f'match ({num}, teacher_channels={self.teacher_channels}); '
                'set CKDLoss(teacher_channels) to their size.')
