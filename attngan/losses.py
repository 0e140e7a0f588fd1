"""Adversarial (WGAN) and auxiliary classification losses on raw scores.

All losses take critic scores or logits, never probabilities: the
classification loss is ``F.cross_entropy`` on logits (log-softmax inside),
avoiding the softmax-then-log of the authors' released code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import check_choice, check_labels, check_tensor

__all__ = ["classification_loss", "per_sample_scores", "wgan_critic_loss", "wgan_generator_loss"]


def per_sample_scores(scores: torch.Tensor, name: str = "scores") -> torch.Tensor:
    """Reduce critic scores of shape (B,) or (B, ...) to one score per sample.

    Patch scores are summed per sample, matching :func:`attngan.gradient_penalty`
    so that the penalty constrains the very function the loss uses.

    Parameters
    ----------
    scores : torch.Tensor
        Shape (B,) or (B, ...), e.g. patch scores (B, 1, h, w).
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
        Critic scores of shape (B,) or (B, ...); the batch sizes may differ.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> wgan_critic_loss(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0]))
    tensor(-2.)
    """
    return per_sample_scores(fake_scores, "fake_scores").mean() - per_sample_scores(real_scores, "real_scores").mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    r"""Wasserstein generator loss :math:`-\mathbb E[D(G(x_s, y_t))]`.

    Parameters
    ----------
    fake_scores : torch.Tensor
        Critic scores of generated samples, shape (B,) or (B, ...).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> wgan_generator_loss(torch.tensor([1.0, 3.0]))
    tensor(-2.)
    """
    return -per_sample_scores(fake_scores, "fake_scores").mean()


def classification_loss(logits: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    r"""Auxiliary classification loss, Eq. (4): softmax cross-entropy from logits.

    Parameters
    ----------
    logits : torch.Tensor
        Unnormalised class scores of shape (B, K).
    target : torch.Tensor
        Integer labels of shape (B,) in ``[0, K)``, or one-hot / soft label
        rows of shape (B, K) (each row a probability vector).
    reduction : {"mean", "sum", "none"}, optional
        As in ``torch.nn.functional.cross_entropy``.

    Returns
    -------
    torch.Tensor
        Scalar loss, or shape (B,) with ``reduction="none"``.

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
    return F.cross_entropy(acc, target.long(), reduction=reduction)
