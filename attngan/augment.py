"""Differentiable random views of images: zoom, shift and mirror by one affine resampling.

A loss that follows a fixed network (a frozen classifier, a critic) can be
met by a pixel pattern that network happens to read, rather than by the
content it was trained to recognise. Scoring a randomly zoomed, shifted and
mirrored view instead, a new one at every step, averages the loss over such
views (expectation over transformations), and a pattern that holds only at
one placement no longer pays. The views are differentiable in the image, so
gradients reach whatever made it.

:func:`random_affine_params` draws the views (from a ``torch.Generator``, so a
caller can draw them from a seed of its own); :func:`apply_affine` resamples.

:func:`grayscale` removes the colour of images (their luma in every channel),
so that a model trained on colour photographs can also be shown greyscale
ones during training.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ._validation import check_choice, check_generator, check_positive_int, check_real, check_tensor

__all__ = ["apply_affine", "grayscale", "random_affine_params"]

#: ITU-R BT.601 luma weights of (R, G, B): the default of :func:`grayscale`.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

_PADDING = ("reflection", "border", "zeros")


def random_affine_params(
    n: int,
    *,
    max_shift: float = 0.0,
    max_zoom: float = 0.0,
    flip: bool = False,
    generator: Optional[torch.Generator] = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw ``n`` random views: a zoom, a shift and (optionally) a left-right mirror each.

    Each view scales by ``exp(u)``, ``u`` uniform in ``[-log(1 + max_zoom),
    log(1 + max_zoom)]`` (zooming in and out alike), shifts by a uniform
    fraction in ``[-max_shift, max_shift]`` of the image's side along each
    axis, and mirrors with probability 1/2 where ``flip``. With
    ``max_shift = max_zoom = 0`` and no flip every view is the identity.

    Parameters
    ----------
    n : int
        The number of views (>= 1).
    max_shift : float, optional
        The largest shift, as a fraction of the side (0 <= max_shift <= 1). Default 0.
    max_zoom : float, optional
        The largest relative zoom (>= 0); 0.1 scales within [1/1.1, 1.1]. Default 0.
    flip : bool, optional
        Mirror each view left-right with probability 1/2. Default ``False``.
    generator : torch.Generator, optional
        A CPU generator the draws come from (the global one when ``None``).
    dtype : torch.dtype, optional
        The floating dtype of the result. Default float32.

    Returns
    -------
    torch.Tensor
        (n, 2, 3) affine matrices on the CPU, in the normalised coordinates of
        :func:`torch.nn.functional.affine_grid`, for :func:`apply_affine`.

    Examples
    --------
    >>> theta = random_affine_params(4, max_shift=0.05, max_zoom=0.1, flip=True,
    ...                              generator=torch.Generator().manual_seed(0))
    >>> tuple(theta.shape)
    (4, 2, 3)
    """
    check_positive_int(n, "n")
    max_shift = check_real(max_shift, "max_shift")
    max_zoom = check_real(max_zoom, "max_zoom")
    if not 0.0 <= max_shift <= 1.0:
        raise ValueError(f"max_shift must lie in [0, 1] (a fraction of the side), got {max_shift}")
    if max_zoom < 0:
        raise ValueError(f"max_zoom must be >= 0, got {max_zoom}")
    if not isinstance(flip, bool):
        raise TypeError(f"flip must be a bool, got {type(flip).__name__}")
    if generator is not None:
        check_generator(generator, "generator", torch.empty(0), "the CPU")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    draws = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    log_zoom = torch.log1p(torch.tensor(max_zoom, dtype=torch.float64))
    scale = torch.exp((2 * draws[:, 0] - 1) * log_zoom)
    shift = (2 * draws[:, 1:3] - 1) * (2 * max_shift)  # the side spans 2 in normalised coordinates
    mirror = torch.where(draws[:, 3] < 0.5, -1.0, 1.0) if flip else torch.ones(n, dtype=torch.float64)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    # the grid maps output to input coordinates: sampling a region 1/scale as wide zooms in by scale
    theta[:, 0, 0] = mirror / scale
    theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    return theta.to(dtype)


def apply_affine(x: torch.Tensor, theta: torch.Tensor, *, padding_mode: str = "reflection") -> torch.Tensor:
    """Resample each image through its affine view (bilinear; differentiable in ``x``).

    Output pixel ``p`` takes the value of ``x`` at ``theta @ [p, 1]`` in the
    normalised coordinates of :func:`torch.nn.functional.affine_grid`
    (``align_corners=False``): the identity matrix returns ``x`` up to
    rounding. Points outside the image are filled per ``padding_mode``.

    Parameters
    ----------
    x : torch.Tensor
        (B, C, H, W) floating images.
    theta : torch.Tensor
        (B, 2, 3) affine matrices (:func:`random_affine_params`); moved to
        ``x``'s device and dtype.
    padding_mode : {"reflection", "border", "zeros"}, optional
        How points outside the image are filled. Default ``"reflection"``,
        which keeps a constant image constant.

    Returns
    -------
    torch.Tensor
        (B, C, H, W), the views.
    """
    check_tensor(x, "x", ndim=4, layout="(B, C, H, W)", floating=True)
    check_tensor(theta, "theta", ndim=3, layout="(B, 2, 3)", floating=True)
    check_choice(padding_mode, "padding_mode", _PADDING)
    if tuple(theta.shape) != (x.shape[0], 2, 3):
        raise ValueError(f"theta must have shape (B, 2, 3) = ({x.shape[0]}, 2, 3) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(theta.shape)}")
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def grayscale(x: torch.Tensor, weights: Optional[Sequence[float]] = None) -> torch.Tensor:
    """Each image's luma, a weighted sum of its channels, repeated in every channel.

    ``out[:, c] = sum_k weights[k] * x[:, k]`` for every ``c``. Linear and
    differentiable in ``x``; with weights that sum to 1 (the default) an
    image whose channels are already equal is returned unchanged, so the
    operation is idempotent.

    Parameters
    ----------
    x : torch.Tensor
        (B, C, H, W) floating images.
    weights : sequence of float, optional
        C finite channel weights. Default :data:`LUMA_WEIGHTS` (ITU-R BT.601,
        which needs C = 3).

    Returns
    -------
    torch.Tensor
        (B, C, H, W), the same dtype and device as ``x``.
    """
    check_tensor(x, "x", ndim=4, layout="(B, C, H, W)", floating=True)
    w = torch.as_tensor(LUMA_WEIGHTS if weights is None else weights, dtype=x.dtype, device=x.device)
    if w.dim() != 1 or w.numel() != x.shape[1]:
        what = "the default luma weights need" if weights is None else f"{w.numel()} weights need"
        raise ValueError(f"grayscale: {what} {w.numel()} channels, x has {x.shape[1]} (shape {tuple(x.shape)})")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"grayscale: weights must be finite, got {w.tolist()}")
    luma = torch.einsum("bchw,c->bhw", x, w).unsqueeze(1)
    return luma.expand_as(x).contiguous()
