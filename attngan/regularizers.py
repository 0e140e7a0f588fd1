"""Total variation and the attention-mask regulariser, Eq. (3) of AcGANs."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ._validation import check_choice, check_nonempty_batch, check_tensor

__all__ = ["AttentionRegularizer", "TotalVariation", "attention_regularizer", "total_variation"]

_REDUCTIONS = ("mean", "sum", "none")
_FORMS = ("paper", "euclidean", "released")
#: Default lambda_TV of every form: the paper's 5e-5. Multiplied by the
#: trainer's lambda_att = 2 it gives the released code's smoothness weight 1e-4.
DEFAULT_LAMBDA_TV = {"paper": 5e-5, "euclidean": 5e-5, "released": 5e-5}


def _reduce(per_sample: torch.Tensor, reduction: str, name: str) -> torch.Tensor:
    if reduction == "mean":
        check_nonempty_batch(per_sample, name, "the mean of an empty batch is undefined; use reduction='sum' or 'none'")
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def total_variation(
    x: torch.Tensor,
    *,
    squared: bool = True,
    normalize: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Anisotropic total variation of a batch of images or masks.

    Per sample,

    .. math::

        TV(A) = \sum_{c,i,j} (A_{c,i+1,j} - A_{c,i,j})^2 + (A_{c,i,j+1} - A_{c,i,j})^2

    (Eq. 3 of the paper) with ``squared=True``, or with absolute differences
    when ``squared=False`` (the authors' released code).

    Parameters
    ----------
    x : torch.Tensor
        Images or masks of shape (B, C, H, W), floating point.
    squared : bool, optional
        Square the neighbour differences (default) or take their absolute value.
    normalize : bool, optional
        Divide each sample's sum by its number of neighbour pairs,
        ``C * ((H - 1) * W + H * (W - 1))``, making the value independent of
        the resolution. Default ``False`` (the paper's sum).
    reduction : {"mean", "sum", "none"}, optional
        Over the batch: ``"mean"`` (default, the paper's expectation),
        ``"sum"`` or ``"none"`` for the per-sample values of shape (B,). An
        empty batch (B = 0) gives 0 with ``"sum"``, an empty (0,) tensor with
        ``"none"`` and a ValueError with ``"mean"``.

    Returns
    -------
    torch.Tensor
        A scalar, or shape (B,) with ``reduction="none"``.

    Examples
    --------
    >>> total_variation(torch.ones(2, 1, 4, 4))
    tensor(0.)
    >>> total_variation(torch.tensor([[[[0., 1.], [0., 1.]]]]))
    tensor(2.)
    """
    check_tensor(x, "x", ndim=4, layout="(B, C, H, W)")
    check_choice(reduction, "reduction", _REDUCTIONS)
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    if squared:
        per_sample = dh.pow(2).sum(dim=(1, 2, 3)) + dw.pow(2).sum(dim=(1, 2, 3))
    else:
        per_sample = dh.abs().sum(dim=(1, 2, 3)) + dw.abs().sum(dim=(1, 2, 3))
    if normalize:
        _, c, h, w = x.shape
        pairs = c * ((h - 1) * w + h * (w - 1))
        per_sample = per_sample / max(pairs, 1)
    return _reduce(per_sample, reduction, "x")


def attention_regularizer(
    attention: torch.Tensor,
    *,
    lambda_tv: Optional[float] = None,
    form: str = "paper",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Attention loss of Eq. (3): smooth masks that do not saturate at 1.

    Since ``A = 1`` keeps the input pixel, the norm term pulls ``A`` away from
    1 and makes the colour head do some work; the total variation keeps the
    mask smooth. Three readings of Eq. (3), per sample and then reduced over
    the batch:

    ``form="paper"`` (default), resolution independent:

    .. math::

        \mathcal L_{att} = \lambda_{TV}\, TV_{sq}(A) + \frac{\|A\|_2}{\sqrt{N}},
        \qquad N = C H W,

    the squared total variation plus the root mean square of the mask. The
    RMS is the paper's :math:`\ell_2` norm at the scale its weights were tuned
    for: on a constant mask it equals ``mean(A)`` (the authors' released code
    and GANimation), value and per-pixel gradient alike, at every resolution.

    ``form="euclidean"``: the literal :math:`\lambda_{TV} TV_{sq}(A) + \|A\|_2`
    with the Euclidean norm over all ``C * H * W`` values. Its value, and its
    pull on every pixel relative to ``mean(A)``, grow with :math:`\sqrt{CHW}`
    (64x, 128x and 224x at 64, 128 and 224 px): with the paper's weights the
    masks collapse to 0 within a few hundred iterations. Kept for comparison.

    ``form="released"``: the authors' released code, absolute-difference TV
    plus the mean of the mask, ``lambda_tv * TV_abs(A) + mean(A)``; with the
    trainer's ``lambda_att = 2`` this is their ``1e-4 * TV_abs + 2 * mean(A)``.

    Parameters
    ----------
    attention : torch.Tensor
        Masks of shape (B, 1, H, W) (or (B, C, H, W)) with values in [0, 1].
    lambda_tv : float, optional
        :math:`\lambda_{TV}`, a finite number >= 0; default 5e-5 (the paper's).
    form : {"paper", "euclidean", "released"}, optional
        Which reading of Eq. (3) to compute.
    reduction : {"mean", "sum", "none"}, optional
        Over the batch; ``"none"`` gives shape (B,). An empty batch is
        handled as in :func:`total_variation`.

    Returns
    -------
    torch.Tensor
        A scalar, or shape (B,) with ``reduction="none"``.

    Examples
    --------
    >>> half = torch.full((1, 1, 64, 64), 0.5)
    >>> attention_regularizer(half), attention_regularizer(half, form="euclidean")
    (tensor(0.5000), tensor(32.))
    >>> attention_regularizer(torch.full((1, 1, 224, 224), 0.5))   # the same at any size
    tensor(0.5000)
    """
    check_tensor(attention, "attention", ndim=4, layout="(B, 1, H, W)")
    check_choice(form, "form", _FORMS)
    check_choice(reduction, "reduction", _REDUCTIONS)
    lambda_tv = _check_lambda_tv(DEFAULT_LAMBDA_TV[form] if lambda_tv is None else lambda_tv)
    flat = attention.flatten(1)
    if form == "released":
        tv = total_variation(attention, squared=False, reduction="none")
        norm = flat.mean(dim=1)
    else:
        tv = total_variation(attention, squared=True, reduction="none")
        norm = torch.linalg.vector_norm(flat, ord=2, dim=1)
        if form == "paper":
            norm = norm / math.sqrt(max(flat.shape[1], 1))
    return _reduce(lambda_tv * tv + norm, reduction, "attention")


def _check_lambda_tv(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"lambda_tv must be a float, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"lambda_tv must be a finite number >= 0, got {value}")
    return float(value)


class TotalVariation(nn.Module):
    """Module form of :func:`total_variation`, storing its options.

    Examples
    --------
    >>> TotalVariation(squared=False)
    TotalVariation(squared=False, normalize=False, reduction='mean')
    """

    def __init__(self, *, squared: bool = True, normalize: bool = False, reduction: str = "mean") -> None:
        super().__init__()
        check_choice(reduction, "reduction", _REDUCTIONS)
        self.squared = squared
        self.normalize = normalize
        self.reduction = reduction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Total variation of ``x`` (B, C, H, W); see :func:`total_variation`."""
        return total_variation(x, squared=self.squared, normalize=self.normalize, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"squared={self.squared}, normalize={self.normalize}, reduction={self.reduction!r}"


class AttentionRegularizer(nn.Module):
    """Module form of :func:`attention_regularizer`, storing its options.

    Examples
    --------
    >>> AttentionRegularizer(form="released")
    AttentionRegularizer(lambda_tv=5e-05, form='released', reduction='mean')
    """

    def __init__(self, *, lambda_tv: Optional[float] = None, form: str = "paper", reduction: str = "mean") -> None:
        super().__init__()
        check_choice(form, "form", _FORMS)
        check_choice(reduction, "reduction", _REDUCTIONS)
        self.form = form
        self.lambda_tv = _check_lambda_tv(DEFAULT_LAMBDA_TV[form] if lambda_tv is None else lambda_tv)
        self.reduction = reduction

    def forward(self, attention: torch.Tensor) -> torch.Tensor:
        """Regulariser of masks (B, 1, H, W); see :func:`attention_regularizer`."""
        return attention_regularizer(attention, lambda_tv=self.lambda_tv, form=self.form, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"lambda_tv={self.lambda_tv}, form={self.form!r}, reduction={self.reduction!r}"
