"""Attention composition, Eq. (1) of AcGANs (after GANimation).

``x_t = (1 - A) * C + A * x_s``: where the attention mask ``A`` is 1 the input
pixel is kept, where it is 0 the generated colour ``C`` is used.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validation import check_same_device, check_tensor

__all__ = ["AttentionComposition", "compose"]


def compose(attention: torch.Tensor, color: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    r"""Blend a colour proposal with the source image through an attention mask.

    Implements Eq. (1) of the paper,

    .. math::

        x_t = (1 - A) \odot C + A \odot x_s ,

    computed as the single fused interpolation ``torch.lerp(C, x_s, A)``.

    Parameters
    ----------
    attention : torch.Tensor
        Mask ``A`` of shape (B, 1, H, W), broadcast over channels, or
        (B, C, H, W); values are expected in [0, 1] (not checked, so that the
        function stays usable on unconstrained logits in research code).
    color : torch.Tensor
        Colour proposal ``C`` of shape (B, C, H, W).
    source : torch.Tensor
        Source image ``x_s`` of shape (B, C, H, W). The three inputs must be
        on one device; their floating dtypes may differ; B may be 0.

    Returns
    -------
    torch.Tensor
        Composed image of shape (B, C, H, W), in the promoted dtype of the
        inputs (so bf16 masks mix correctly with fp32 images under autocast).

    Examples
    --------
    >>> x, c = torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)
    >>> compose(torch.full((1, 1, 2, 2), 0.25), c, x)[0, 0]
    tensor([[-0.5000, -0.5000],
            [-0.5000, -0.5000]])
    """
    check_tensor(attention, "attention", ndim=4, layout="(B, 1, H, W) or (B, C, H, W)")
    check_tensor(color, "color", ndim=4, layout="(B, C, H, W)")
    check_tensor(source, "source", ndim=4, layout="(B, C, H, W)")
    check_same_device(source, "source", color, "color")
    check_same_device(source, "source", attention, "attention")
    if color.shape != source.shape:
        raise ValueError(
            "color and source must have the same shape (B, C, H, W), "
            f"got {tuple(color.shape)} and {tuple(source.shape)}"
        )
    b, c, h, w = source.shape
    if attention.shape[0] != b or attention.shape[2:] != source.shape[2:] or attention.shape[1] not in (1, c):
        raise ValueError(
            f"attention must have shape ({b}, 1, {h}, {w}) or ({b}, {c}, {h}, {w}) "
            f"to match source, got {tuple(attention.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(attention.dtype, color.dtype), source.dtype)
    return torch.lerp(color.to(dtype), source.to(dtype), attention.to(dtype))


class AttentionComposition(nn.Module):
    """Module form of :func:`compose` (no parameters).

    Examples
    --------
    >>> AttentionComposition()(torch.ones(1, 1, 2, 2), torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).mean()
    tensor(1.)
    """

    def forward(self, attention: torch.Tensor, color: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Apply :func:`compose`; see there for shapes."""
        return compose(attention, color, source)
