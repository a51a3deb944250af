"""The teacher's inputs, converted from the student's preprocessed batch.

mmengine's ``ImgDataPreprocessor`` (and mmdet's ``DetDataPreprocessor``,
which calls it) turns raw images into a batch in this order:

1. channel conversion (``bgr_to_rgb`` / ``rgb_to_bgr``: channels reversed),
2. normalisation ``(x - mean) / std`` (skipped without ``mean``/``std``),
3. padding to the largest image, rounded up to ``pad_size_divisor``, with
   ``pad_value`` (in the normalised space).

Teacher and student may normalise differently (a caffe-style BGR teacher,
a pytorch-style RGB student). The distiller preprocesses the batch once,
the student's way; the teacher's batch is derived from it without loading
the data twice: undo the student's normalisation and channel order, apply
the teacher's (one fused per-channel affine map after a channel
permutation), and set the padded pixels (outside each image's
``img_shape``) to the teacher's ``pad_value``.

The teacher sees the student's padded canvas, whose size must also suit the
teacher: the student's ``pad_size_divisor`` must be a multiple of the
teacher's. With equal divisors the teacher's batch is exactly the one its
own preprocessor would make; with a larger student divisor the canvas may
be larger, filled with the teacher's ``pad_value`` like any batch padded for
a larger image. The data-sample settings (``pad_mask``, ``pad_seg``,
``boxtype2tensor``) do not change the images, and ``batch_augments`` run
only in training mode, which the frozen teacher never is (the student's
batch augments shape both models' images), so neither needs to agree.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
from mmdet.structures import SampleList
from mmengine.model import ImgDataPreprocessor
from torch import Tensor, nn

__all__ = ['check_convertible_preprocessing', 'convert_to_teacher_inputs',
           'same_pixel_values']


def _describe(preprocessor: nn.Module) -> str:
    return type(preprocessor).__name__


def _values(x: Optional[Tensor]) -> Optional[List[float]]:
    return None if x is None else [
        round(v, 3) for v in x.detach().float().flatten().cpu().tolist()]


def _normalisation(preprocessor: ImgDataPreprocessor):
    """``(mean, std)`` of a preprocessor, ``(None, None)`` when it does not
    normalise."""
    if not getattr(preprocessor, '_enable_normalize', False):
        return None, None
    return preprocessor.mean, preprocessor.std


def same_pixel_values(student: ImgDataPreprocessor,
                      teacher: ImgDataPreprocessor) -> bool:
    """Whether both preprocessors give an image and its padding the same
    values: channel conversion, mean, std and ``pad_value`` agree."""
    if bool(student._channel_conversion) != bool(
            teacher._channel_conversion):
        return False
    if float(student.pad_value) != float(teacher.pad_value):
        return False
    (s_mean, s_std), (t_mean, t_std) = _normalisation(student), \
        _normalisation(teacher)
    if s_mean is None or t_mean is None:
        return s_mean is None and t_mean is None
    return all(
        torch.equal(a.detach().float().flatten().cpu(),
                    b.detach().float().flatten().cpu())
        for a, b in ((s_mean, t_mean), (s_std, t_std)))


def check_convertible_preprocessing(student: nn.Module,
                                    teacher: nn.Module) -> bool:
    """Raise if the teacher's batch cannot be derived from the student's.

    Args:
        student: The data preprocessor that makes the batch (the
            distiller's; the student's by default).
        teacher: The teacher's own data preprocessor.

    Returns:
        bool: ``True`` when the student's batch is already the teacher's
        (the teacher then gets it as it is), ``False`` when it is converted.
    """
    if student is teacher:
        return True
    for role, preprocessor in (('distiller (student)', student),
                               ('teacher', teacher)):
        if not isinstance(preprocessor, ImgDataPreprocessor):
            raise TypeError(
                f'The {role} data_preprocessor is a '
                f'{_describe(preprocessor)}. sea_kd derives the teacher\'s '
                "batch from the student's by inverting mmengine's "
                'ImgDataPreprocessor steps (channel order, mean/std, '
                'padding), so both models need an ImgDataPreprocessor or '
                "DetDataPreprocessor. Give the teacher config a "
                "data_preprocessor=dict(type='DetDataPreprocessor', mean=..., "
                'std=..., bgr_to_rgb=..., pad_size_divisor=...) describing '
                'how it was trained (and the student config its own).')
    s_div, t_div = int(student.pad_size_divisor), int(teacher.pad_size_divisor)
    if s_div % t_div != 0:
        lcm = s_div * t_div // math.gcd(s_div, t_div)
        raise ValueError(
            f"The teacher's data_preprocessor pads to multiples of "
            f'pad_size_divisor={t_div}, but the student\'s batch (which the '
            f'teacher sees, converted) is padded to multiples of '
            f'pad_size_divisor={s_div}, so the teacher could get a size its '
            f'strides do not divide. Set the distiller\'s (student\'s) '
            f'data_preprocessor pad_size_divisor to a multiple of {t_div} '
            f'(e.g. {lcm}).')
    if same_pixel_values(student, teacher):
        return True
    for role, preprocessor in (('distiller (student)', student),
                               ('teacher', teacher)):
        mean, std = _normalisation(preprocessor)
        if mean is not None and (mean.numel() != std.numel() and
                                 1 not in (mean.numel(), std.numel())):
            raise ValueError(
                f'The {role} data_preprocessor has {mean.numel()} mean and '
                f'{std.numel()} std values; give 1 or one per channel.')
        if std is not None and bool((std == 0).any()):
            raise ValueError(
                f'The {role} data_preprocessor has a zero std '
                f'{_values(std)}; the teacher\'s batch cannot be recovered '
                'from it. Give a non-zero std per channel.')
    return False


def _per_channel(values: Optional[Tensor], channels: int, fill: float,
                 like: Tensor) -> Tensor:
    """``values`` (1 or C entries, or ``None`` for ``fill``) as a float64
    (C,) vector on ``like``'s device."""
    if values is None:
        return torch.full((channels, ), fill, dtype=torch.float64,
                          device=like.device)
    flat = values.detach().to(like.device, torch.float64).flatten()
    if flat.numel() == 1:
        return flat.expand(channels)
    if flat.numel() != channels:
        raise ValueError(f'A data_preprocessor has {flat.numel()} mean/std '
                         f'values but the batch has {channels} channels.')
    return flat


def _inside_images(batch_data_samples: Sequence, height: int, width: int,
                   device: torch.device) -> Optional[Tensor]:
    """(B, 1, H, W) bool mask of the pixels inside each image's
    ``img_shape``; ``None`` when no pixel of the batch is padding."""
    shapes = [tuple(s.metainfo['img_shape'][:2]) for s in batch_data_samples]
    if all(h >= height and w >= width for h, w in shapes):
        return None
    sizes = torch.tensor(shapes, device=device)
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = (rows < sizes[:, 0].view(-1, 1, 1)) & \
        (cols < sizes[:, 1].view(-1, 1, 1))
    return inside.unsqueeze(1)


def convert_to_teacher_inputs(batch_inputs: Tensor,
                              batch_data_samples: SampleList,
                              student: ImgDataPreprocessor,
                              teacher: ImgDataPreprocessor) -> Tensor:
    """The student's preprocessed batch as the teacher's preprocessor would
    have made it from the same raw images.

    With ``p`` the channel permutation (reversal when exactly one side swaps
    channels), the teacher's pixel is ``x_t[c] = a[c] * x_s[p[c]] + b[c]``
    with ``a[c] = std_s[p[c]] / std_t[c]`` and
    ``b[c] = (mean_s[p[c]] - mean_t[c]) / std_t[c]``; pixels outside each
    image's ``img_shape`` become the teacher's ``pad_value``.

    Args:
        batch_inputs: (B, C, H, W) batch made by ``student``.
        batch_data_samples: The batch's data samples (``img_shape``).
        student: The preprocessor that made the batch.
        teacher: The teacher's preprocessor.

    Returns:
        Tensor: A new (B, C, H, W) tensor of ``batch_inputs``'s dtype.
    """
    channels = batch_inputs.shape[1]
    s_mean, s_std = _normalisation(student)
    t_mean, t_std = _normalisation(teacher)
    s_mean = _per_channel(s_mean, channels, 0.0, batch_inputs)
    s_std = _per_channel(s_std, channels, 1.0, batch_inputs)
    t_mean = _per_channel(t_mean, channels, 0.0, batch_inputs)
    t_std = _per_channel(t_std, channels, 1.0, batch_inputs)
    x = batch_inputs
    if bool(student._channel_conversion) != bool(
            teacher._channel_conversion):
        if channels != 3:
            raise ValueError(
                'Teacher and student differ in channel order (bgr_to_rgb / '
                f'rgb_to_bgr), which needs 3 channels; the batch has '
                f'{channels}.')
        order = torch.tensor([2, 1, 0], device=x.device)
        x = x.index_select(1, order)
        s_mean, s_std = s_mean[order], s_std[order]
    scale = (s_std / t_std).to(x.dtype).view(1, channels, 1, 1)
    shift = ((s_mean - t_mean) / t_std).to(x.dtype).view(1, channels, 1, 1)
    converted = torch.addcmul(shift, x, scale)
    inside = _inside_images(batch_data_samples, *x.shape[-2:], x.device)
    if inside is not None:
        converted = converted.masked_fill(~inside, float(teacher.pad_value))
    return converted
