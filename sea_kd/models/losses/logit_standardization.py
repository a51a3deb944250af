"""Logit standardisation (Sun et al., CVPR 2024)."""
from __future__ import annotations

from torch import Tensor


def standardize_logits(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """The z-score of each row of logits over its last dimension::

        Z(z) = (z − mean(z)) / (std(z) + ε)

    with the unbiased standard deviation and ε = 1e-7, as
    sunshangquan/logit-standardization-KD@f6e5aa5 (``normalize`` in
    ``mdistiller/distillers/KD.py``) computes it: the student then matches
    the teacher's logit relations, not their scale or shift. The losses
    that take ``logit_standardization=True`` apply it to both the student's
    and the teacher's logits before their temperature.

    Args:
        logits: (..., C) logits, C >= 2.
        eps: ε.

    Returns:
        Tensor: The standardised logits, same shape and dtype.
    """
    if logits.shape[-1] < 2:
        raise ValueError(
            'Logit standardisation needs at least two classes per row (a '
            f'z-score over one value is undefined), got {logits.shape[-1]}; '
            'set logit_standardization=False for one-class heads.')
    mean = logits.mean(dim=-1, keepdim=True)
    std = logits.std(dim=-1, keepdim=True)
    return (logits - mean) / (std + eps)
