"""Statistics of attention masks: is the mask doing its job, or saturating?

The most common failure of attention-masked GANs is a mask stuck at 0 (the
generator repaints the whole image and the attention does nothing) or at 1
(the output copies the input and nothing changes). :func:`mask_statistics`
measures both in one pass, without a host synchronisation, so a training loop
can log it every iteration and warn early.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validation import check_tensor

__all__ = ["MaskStatistics", "mask_statistics"]


class MaskStatistics(NamedTuple):
    """Summary of a batch of attention masks; every field is a 0-d tensor.

    Attributes
    ----------
    mean : torch.Tensor
        Mean mask value over the batch and all pixels.
    near_zero : torch.Tensor
        Fraction of mask values below ``low`` (pixels repainted from the colour head).
    near_one : torch.Tensor
        Fraction of mask values above ``high`` (pixels copied from the input).
    spread : torch.Tensor
        Mean over samples of the spatial standard deviation of each mask: 0
        for a constant mask, up to 0.5 for a mask that is half 0 and half 1.
        A low spread with a mean near 0 or 1 means the mask has saturated
        everywhere; a high spread means it selects regions.
    """

    mean: torch.Tensor
    near_zero: torch.Tensor
    near_one: torch.Tensor
    spread: torch.Tensor


def mask_statistics(attention: torch.Tensor, *, low: float = 0.05, high: float = 0.95) -> MaskStatistics:
    r"""Mean, saturated fractions and spatial spread of attention masks.

    Parameters
    ----------
    attention : torch.Tensor
        Masks of shape (B, 1, H, W) (or (B, C, H, W)) with values in [0, 1],
        ``B >= 1``. Computed in float32 (or float64 for float64 input)
        without gradients.
    low, high : float, optional
        Thresholds of the saturated fractions, ``0 <= low < high <= 1``;
        defaults 0.05 and 0.95.

    Returns
    -------
    MaskStatistics
        ``(mean, near_zero, near_one, spread)``, each a 0-d tensor on the
        device of ``attention``. Nothing is read back to the host.

    Examples
    --------
    >>> a = torch.zeros(2, 1, 4, 4)
    >>> a[:, :, :, 2:] = 1.0                     # left half repainted, right half kept
    >>> s = mask_statistics(a)
    >>> round(s.mean.item(), 3), round(s.near_zero.item(), 3), round(s.near_one.item(), 3)
    (0.5, 0.5, 0.5)
    >>> round(s.spread.item(), 3)
    0.5
    >>> mask_statistics(torch.full((3, 1, 8, 8), 0.02)).near_zero
    tensor(1.)
    """
    check_tensor(attention, "attention", ndim=4, layout="(B, 1, H, W)")
    if attention.shape[0] == 0 or attention[0].numel() == 0:
        raise ValueError(f"attention must hold at least one mask with at least one pixel, "
                         f"got shape {tuple(attention.shape)}")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number in [0, 1], got {value!r}")
    if not 0 <= low < high <= 1:
        raise ValueError(f"low and high must satisfy 0 <= low < high <= 1, got low={low}, high={high}")
    with torch.no_grad():
        a = attention.detach()
        a = a.double() if a.dtype == torch.float64 else a.float()
        flat = a.flatten(1)
        spread = flat.std(dim=1, unbiased=False).mean()
        return MaskStatistics(
            mean=flat.mean(),
            near_zero=(flat < low).to(a.dtype).mean(),
            near_one=(flat > high).to(a.dtype).mean(),
            spread=spread,
        )
