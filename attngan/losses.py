"""Adversarial (WGAN) and auxiliary classification losses on raw scores.

All losses take critic scores or logits, never probabilities: the
classification loss is the softmax cross-entropy computed from logits
(``log_softmax``), avoiding the softmax-then-log of the authors' released code.

An expectation over an empty batch is undefined, so the losses that average
over the batch reject B = 0 with a :class:`ValueError` instead of returning NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import (
    check_choice,
    check_labels,
    check_nonempty_batch,
    check_same_device,
    check_same_dtype,
    check_tensor,
)

__all__ = ["classification_loss", "per_sample_scores", "wgan_critic_loss", "wgan_generator_loss"]


def per_sample_scores(scores: torch.Tensor, name: str = "scores") -> torch.Tensor:
    """Reduce critic scores of shape (B,) or (B, ...) to one score per sample.

    Patch scores are summed per sample, matching :func:`attngan.gradient_penalty`
    so that the penalty constrains the very function the loss uses.

    Parameters
    ----------
    scores : torch.Tensor
        Shape (B,) or (B, ...), e.g. patch scores (B, 1, h, w); B may be 0.
    name : str, optional
        Argument name used in error messages.

    Returns
    -------
    torch.Tensor
        Shape (B,).

    Examples
    --------
    >>> per_sample_scores(torch.ones(2, 1, 3, 3))
    tensor([9., 9.])
    """
    check_tensor(scores, name)
    if scores.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension (B,) or (B, ...), got a scalar")
    if scores.ndim == 1:
        return scores
    return scores.flatten(1).sum(dim=1)


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    r"""Wasserstein critic loss :math:`\mathbb E[D(x_{fake})] - \mathbb E[D(x_{real})]`.

    The critic minimises this (it maximises the first two terms of Eq. 2); add
    :math:`\lambda_{gp}` times :func:`attngan.gradient_penalty`.

    Parameters
    ----------
    real_scores, fake_scores : torch.Tensor
        Critic scores of shape (B,) or (B, ...), B >= 1; the batch sizes may
        differ, the device and the dtype may not (cast both, e.g. with
        ``.float()``, rather than mixing precisions).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Raises
    ------
    ValueError
        For an empty batch (the mean would be NaN) or scores on two devices.
    TypeError
        For scores of two dtypes.

    Examples
    --------
    >>> wgan_critic_loss(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0]))
    tensor(-2.)
    """
    fake = per_sample_scores(fake_scores, "fake_scores")
    real = per_sample_scores(real_scores, "real_scores")
    check_same_device(real_scores, "real_scores", fake_scores, "fake_scores")
    check_same_dtype(real_scores, "real_scores", fake_scores, "fake_scores")
    check_nonempty_batch(real_scores, "real_scores", "the mean of an empty batch is undefined")
    check_nonempty_batch(fake_scores, "fake_scores", "the mean of an empty batch is undefined")
    return fake.mean() - real.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    r"""Wasserstein generator loss :math:`-\mathbb E[D(G(x_s, y_t))]`.

    Parameters
    ----------
    fake_scores : torch.Tensor
        Critic scores of generated samples, shape (B,) or (B, ...), B >= 1.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Raises
    ------
    ValueError
        For an empty batch (the mean would be NaN).

    Examples
    --------
    >>> wgan_generator_loss(torch.tensor([1.0, 3.0]))
    tensor(-2.)
    """
    fake = per_sample_scores(fake_scores, "fake_scores")
    check_nonempty_batch(fake_scores, "fake_scores", "the mean of an empty batch is undefined")
    return -fake.mean()


def classification_loss(logits: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    r"""Auxiliary classification loss, Eq. (4): softmax cross-entropy from logits.

    Parameters
    ----------
    logits : torch.Tensor
        Unnormalised class scores of shape (B, K), K >= 1.
    target : torch.Tensor
        Integer labels of shape (B,) in ``[0, K)``, or one-hot / soft label
        rows of shape (B, K) (each row a probability vector), on the device
        of ``logits``.
    reduction : {"mean", "sum", "none"}, optional
        As in ``torch.nn.functional.cross_entropy``. For an empty batch
        (B = 0) ``"sum"`` gives 0 and ``"none"`` an empty (0,) tensor, while
        ``"mean"`` raises (the mean of nothing is undefined).

    Returns
    -------
    torch.Tensor
        Scalar loss, or shape (B,) with ``reduction="none"``.

    Raises
    ------
    ValueError
        For integer labels outside ``[0, K)``, checked on the CPU in eager
        mode with value checks on (:class:`attngan.set_value_checks`).
    RuntimeError
        For out-of-range labels where that check is skipped: the label's
        log-probability is picked with the bounds-checked ``gather`` (a
        device-side assertion on CUDA, an assertion in the kernel under
        ``torch.compile``). Unlike ``F.cross_entropy`` there is no
        ``ignore_index``, so no label value is silently skipped.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> classification_loss(logits, torch.tensor([1]))
    tensor(0.6931)
    """
    check_tensor(logits, "logits", ndim=2, layout="(B, K)")
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if logits.shape[1] == 0:
        raise ValueError(f"logits must have at least one class (K >= 1), got shape {tuple(logits.shape)}")
    check_same_device(logits, "logits", target, "target")
    if reduction == "mean":
        check_nonempty_batch(logits, "logits", 'the mean of an empty batch is undefined (use reduction="sum")')
    # reduced-precision logits are upcast to float32; float64 stays float64
    acc = logits if logits.dtype == torch.float64 else logits.float()
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"one-hot target must have the shape of logits {tuple(logits.shape)}, got {tuple(target.shape)}"
            )
        return F.cross_entropy(acc, target.to(acc.dtype), reduction=reduction)
    check_labels(target, "target", logits.shape[1])
    if target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"target must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(target.shape)}"
        )
    # -log p(target): gather is bounds-checked on every backend, and unlike
    # F.cross_entropy there is no ignore_index (-100) to skip a bad label silently
    per_sample = -torch.log_softmax(acc, dim=1).gather(1, target.long().unsqueeze(1))[:, 0]
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
