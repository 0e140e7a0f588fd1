"""Conditioning: one-hot codes, target sampling and spatial condition maps.

A class condition ``y`` of shape (B, K) is "padded" to K constant maps of shape
(B, K, H, W) and concatenated with the image, as in the AcGANs generator input
``(x_s, y_t)`` of shape (B, C + K, H, W).

Every function here takes integer labels without a host synchronisation, so
it can run inside a compiled (``torch.compile(fullgraph=True)``) training
step: the label range is checked up front only on CPU tensors in eager mode
(see :class:`attngan.set_value_checks`); elsewhere an out-of-range label
fails in the bounds-checked ``F.one_hot`` instead.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from einops import repeat

from ._validation import check_generator, check_labels, check_positive_int, check_same_device, check_tensor

__all__ = ["broadcast_condition", "concat_condition", "one_hot", "sample_target_labels"]


def one_hot(
    labels: torch.Tensor, num_classes: int, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Encode integer labels as one-hot rows.

    Parameters
    ----------
    labels : torch.Tensor
        Integer class labels of shape (B,), values in ``[0, num_classes)``;
        B may be 0.
    num_classes : int
        Number of classes K.
    dtype : torch.dtype, optional
        Dtype of the result. Default ``torch.float32``.

    Returns
    -------
    torch.Tensor
        One-hot codes of shape (B, K) on the device of ``labels``.

    Raises
    ------
    ValueError
        For labels outside ``[0, K)`` on the CPU in eager mode with value
        checks on (:class:`attngan.set_value_checks`).
    RuntimeError
        For out-of-range labels where that check is skipped: the encoding is
        ``torch.nn.functional.one_hot``, whose bounds check needs no host
        synchronisation (a device-side assertion on CUDA, an assertion in the
        kernel under ``torch.compile``), so a bad label never becomes a
        plausible code.

    Examples
    --------
    >>> one_hot(torch.tensor([0, 2]), 3)
    tensor([[1., 0., 0.],
            [0., 0., 1.]])
    """
    check_positive_int(num_classes, "num_classes")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
    check_labels(labels, "labels", num_classes)
    return F.one_hot(labels.long(), num_classes).to(dtype)


def sample_target_labels(
    labels: torch.Tensor,
    num_classes: int,
    *,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Draw, for every source label, a random target class different from it.

    Each target is uniform over the ``num_classes - 1`` other classes: a random
    non-zero offset is added modulo K, so there is no rejection loop, no
    Python loop over the batch and no host synchronisation.

    Parameters
    ----------
    labels : torch.Tensor
        Source labels of shape (B,), integers in ``[0, num_classes)``; B may
        be 0.
    num_classes : int
        Number of classes K, at least 2.
    generator : torch.Generator, optional
        Random generator (on the device of ``labels``) for reproducible draws.

    Returns
    -------
    torch.Tensor
        Target labels of shape (B,), dtype int64, ``target[i] != labels[i]``.

    Raises
    ------
    ValueError
        For labels outside ``[0, K)`` on the CPU in eager mode with value
        checks on (:class:`attngan.set_value_checks`). Where that check is
        skipped, an out-of-range label is returned unchanged as its own
        target (instead of a valid class modulo K), so that the function
        that encodes the targets (:func:`one_hot`, :func:`classification_loss`)
        fails on it.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> src = torch.tensor([0, 1, 2, 3, 4])
    >>> bool((sample_target_labels(src, 5, generator=g) != src).all())
    True
    """
    check_positive_int(num_classes, "num_classes", minimum=2)
    check_labels(labels, "labels", num_classes)
    check_generator(generator, "generator", labels, "labels")
    offset = torch.randint(
        1, num_classes, labels.shape, generator=generator, device=labels.device
    )
    source = labels.long()
    valid = (source >= 0) & (source < num_classes)
    return torch.where(valid, (source + offset) % num_classes, source)


def _as_codes(condition: torch.Tensor, num_classes: Optional[int]) -> torch.Tensor:
    if not isinstance(condition, torch.Tensor):
        raise TypeError(f"condition must be a torch.Tensor, got {type(condition).__name__}")
    if condition.ndim == 1:
        if num_classes is None:
            raise ValueError(
                "condition of shape (B,) holds integer labels: pass num_classes "
                f"to encode them, got condition shape {tuple(condition.shape)}"
            )
        check_positive_int(num_classes, "num_classes")
        check_labels(condition, "condition", num_classes)
        return one_hot(condition, num_classes)
    check_tensor(condition, "condition", ndim=2, layout="(B, K) or labels (B,)")
    if num_classes is not None and condition.shape[1] != num_classes:
        raise ValueError(
            f"condition must have num_classes={num_classes} columns, "
            f"got shape {tuple(condition.shape)}"
        )
    return condition


def broadcast_condition(
    condition: torch.Tensor,
    height: int,
    width: int,
    *,
    num_classes: Optional[int] = None,
) -> torch.Tensor:
    """Broadcast a class condition to constant spatial maps.

    Parameters
    ----------
    condition : torch.Tensor
        One-hot or soft codes of shape (B, K), or integer labels of shape (B,)
        together with ``num_classes`` (encoded by :func:`one_hot`, with its
        range checks); B may be 0.
    height, width : int
        Spatial size H, W of the maps.
    num_classes : int, optional
        K; required for integer labels, checked against (B, K) codes.

    Returns
    -------
    torch.Tensor
        Maps of shape (B, K, H, W) where ``maps[b, k]`` is the constant
        ``condition[b, k]``.

    Examples
    --------
    >>> broadcast_condition(torch.tensor([1]), 2, 3, num_classes=2)[0, 1]
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    codes = _as_codes(condition, num_classes)
    return repeat(codes, "b k -> b k h w", h=height, w=width)


def concat_condition(
    image: torch.Tensor,
    condition: torch.Tensor,
    *,
    num_classes: Optional[int] = None,
) -> torch.Tensor:
    """Concatenate an image with the spatial maps of its condition.

    Parameters
    ----------
    image : torch.Tensor
        Images of shape (B, C, H, W).
    condition : torch.Tensor
        Codes of shape (B, K), or integer labels (B,) with ``num_classes``,
        on the device of ``image`` (codes are cast to the dtype of ``image``).
    num_classes : int, optional
        K; required for integer labels.

    Returns
    -------
    torch.Tensor
        Shape (B, C + K, H, W), image channels first, in the dtype of ``image``.

    Examples
    --------
    >>> concat_condition(torch.zeros(2, 3, 8, 8), torch.tensor([0, 4]), num_classes=5).shape
    torch.Size([2, 8, 8, 8])
    """
    check_tensor(image, "image", ndim=4, layout="(B, C, H, W)")
    if isinstance(condition, torch.Tensor):
        check_same_device(image, "image", condition, "condition")
    codes = _as_codes(condition, num_classes)
    if codes.shape[0] != image.shape[0]:
        raise ValueError(
            "condition and image must have the same batch size B, "
            f"got condition shape {tuple(codes.shape)} and image shape {tuple(image.shape)}"
        )
    maps = broadcast_condition(codes.to(image.dtype), image.shape[2], image.shape[3])
    return torch.cat([image, maps], dim=1)
