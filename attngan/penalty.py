"""WGAN-GP gradient penalty (Gulrajani et al., 2017), Eq. (2) of AcGANs."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch

from ._validation import check_same_shape, check_tensor

__all__ = ["gradient_norm_penalty", "gradient_penalty", "random_interpolates", "select_head"]

Head = Union[None, str, int, Callable[[Any], torch.Tensor]]


def select_head(output: Any, head: Head = None) -> torch.Tensor:
    """Pick the realness scores out of a critic's output.

    Parameters
    ----------
    output : Any
        What the critic returned: a tensor, a mapping, a named tuple or any
        object with attributes, or a plain tuple / list.
    head : None, str, int or callable
        ``None`` (default): the tensor itself; otherwise the ``"realness"`` key
        or attribute; otherwise element 0 of a tuple or list. A ``str`` names a
        key or attribute, an ``int`` indexes a sequence, a callable maps the
        output to the scores.

    Returns
    -------
    torch.Tensor
        The selected scores, shape (B, ...).

    Examples
    --------
    >>> select_head({"realness": torch.ones(2, 1), "logits": torch.zeros(2, 5)}).shape
    torch.Size([2, 1])
    """
    if callable(head) and not isinstance(head, (str, int)):
        scores = head(output)
    elif head is None:
        if isinstance(output, torch.Tensor):
            scores = output
        elif isinstance(output, dict) and "realness" in output:
            scores = output["realness"]
        elif hasattr(output, "realness"):
            scores = output.realness
        elif isinstance(output, (tuple, list)) and len(output) > 0:
            scores = output[0]
        else:
            raise TypeError(
                "critic output must be a tensor, have a 'realness' key or attribute, "
                f"or be a non-empty tuple; got {type(output).__name__} (pass head=...)"
            )
    elif isinstance(head, str):
        scores = output[head] if isinstance(output, dict) else getattr(output, head)
    elif isinstance(head, int):
        scores = output[head]
    else:
        raise TypeError(f"head must be None, a str, an int or a callable, got {type(head).__name__}")
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"the selected critic head must be a tensor, got {type(scores).__name__}")
    return scores


def random_interpolates(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: Optional[torch.Generator] = None,
    alpha: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    r"""Random points on the segments between real and fake samples.

    :math:`\tilde x = \alpha x_{real} + (1 - \alpha) x_{fake}` with one
    :math:`\alpha \sim U[0, 1]` per sample. Both inputs are detached, and the
    result requires grad, ready for :func:`gradient_norm_penalty`.

    Parameters
    ----------
    real, fake : torch.Tensor
        Samples of shape (B, ...), e.g. images (B, C, H, W).
    generator : torch.Generator, optional
        Random generator on the inputs' device.
    alpha : torch.Tensor, optional
        Explicit weights of shape (B,) instead of random ones.

    Returns
    -------
    torch.Tensor
        Interpolates of the shape of ``real``, requiring grad.
    """
    check_tensor(real, "real")
    check_tensor(fake, "fake")
    check_same_shape(real, "real", fake, "fake")
    if real.ndim < 1 or real.shape[0] == 0:
        raise ValueError(f"real must have a non-empty batch dimension, got shape {tuple(real.shape)}")
    b = real.shape[0]
    if alpha is None:
        alpha = torch.rand(b, generator=generator, device=real.device, dtype=real.dtype)
    else:
        check_tensor(alpha, "alpha", ndim=1, layout="(B,)")
        if alpha.shape[0] != b:
            raise ValueError(f"alpha must have shape ({b},), got {tuple(alpha.shape)}")
    alpha = alpha.to(real.dtype).reshape(b, *([1] * (real.ndim - 1)))
    mixed = torch.lerp(fake.detach(), real.detach(), alpha)
    return mixed.requires_grad_(True)


def gradient_norm_penalty(
    scores: torch.Tensor,
    inputs: torch.Tensor,
    *,
    create_graph: bool = True,
    retain_graph: Optional[bool] = None,
    grad_scale: Optional[float] = None,
) -> torch.Tensor:
    r"""The penalty :math:`\mathbb E[(\|\nabla_x D(x)\|_2 - 1)^2]` from given scores.

    The lower-level half of :func:`gradient_penalty`, for training steps that
    evaluate the critic on real, fake and interpolated samples in one batched
    forward pass and slice the interpolates' scores out.

    Parameters
    ----------
    scores : torch.Tensor
        Critic scores of shape (B,) or (B, ...) computed from ``inputs``;
        patch scores are summed per sample.
    inputs : torch.Tensor
        The points the scores were computed at, shape (B, ...), requiring grad.
    create_graph : bool, optional
        Keep the graph of the gradient so that the penalty can be
        back-propagated to the critic's parameters (double backward).
        Default ``True``.
    retain_graph : bool, optional
        Keep the graph of ``scores`` after differentiating (default: the value
        of ``create_graph``); needed with ``create_graph=False`` when the same
        forward pass also feeds another loss.
    grad_scale : float, optional
        Multiply the scores by this factor before differentiating and divide
        the gradient by it afterwards: protects fp16 gradients from underflow
        (pass the ``GradScaler``'s scale). The result is unchanged in exact
        arithmetic.

    Returns
    -------
    torch.Tensor
        Scalar, the batch mean of the squared distance of per-sample gradient
        norms from 1, in float32 (or float64 for float64 inputs).
    """
    check_tensor(scores, "scores")
    check_tensor(inputs, "inputs")
    if scores.ndim == 0 or inputs.ndim == 0:
        raise ValueError(
            "scores and inputs must have a batch dimension (B, ...), "
            f"got shapes {tuple(scores.shape)} and {tuple(inputs.shape)}"
        )
    if scores.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"scores and inputs must share the batch size, got {tuple(scores.shape)} and {tuple(inputs.shape)}"
        )
    if not inputs.requires_grad:
        raise ValueError("inputs must require grad (create them with random_interpolates)")
    total = scores.sum()
    if grad_scale is not None:
        total = total * grad_scale
    (grad,) = torch.autograd.grad(total, inputs, create_graph=create_graph, retain_graph=retain_graph)
    acc = torch.float64 if grad.dtype == torch.float64 else torch.float32
    grad = grad.to(acc)
    if grad_scale is not None:
        grad = grad / grad_scale
    norms = torch.linalg.vector_norm(grad.flatten(1), ord=2, dim=1)
    return (norms - 1.0).pow(2).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], Any],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    head: Head = None,
    generator: Optional[torch.Generator] = None,
    alpha: Optional[torch.Tensor] = None,
    create_graph: bool = True,
    grad_scale: Optional[float] = None,
) -> torch.Tensor:
    r"""WGAN-GP gradient penalty on random interpolates of real and fake samples.

    .. math::

        \mathcal L_{gp} = \mathbb E_{\tilde x}\left[(\|\nabla_{\tilde x} D_I(\tilde x)\|_2 - 1)^2\right],
        \qquad \tilde x = \alpha x_{real} + (1 - \alpha) x_{fake},\ \alpha \sim U[0, 1]

    with one :math:`\alpha` per sample and the norm taken per sample over all
    of its elements. The result is unweighted: multiply by
    :math:`\lambda_{gp}` (10 in the paper) yourself.

    The critic may return patch scores of any shape (B, ...), summed per sample,
    or several heads (a mapping, a named tuple, an object with attributes or a
    tuple): the realness head is chosen by ``head`` as in :func:`select_head`,
    by default the ``realness`` key or attribute, else element 0. The critic
    must treat samples independently (no batch normalisation), otherwise the
    per-sample gradients are mixed.

    Under ``torch.autocast`` the critic runs in reduced precision while the
    interpolates, the gradient and its norm stay in float32.

    Parameters
    ----------
    critic : callable
        Maps (B, C, H, W) images to scores.
    real, fake : torch.Tensor
        Real and generated samples of the same shape (B, C, H, W); both are
        detached.
    head : None, str, int or callable, optional
        Which output of a multi-head critic holds the realness scores.
    generator : torch.Generator, optional
        Random generator for the interpolation weights.
    alpha : torch.Tensor, optional
        Explicit interpolation weights of shape (B,).
    create_graph : bool, optional
        Build the graph for double backward (default ``True``; set ``False``
        only to log the penalty).
    grad_scale : float, optional
        See :func:`gradient_norm_penalty`.

    Returns
    -------
    torch.Tensor
        Scalar penalty.

    Examples
    --------
    A linear critic :math:`f(x) = \langle w, x\rangle` has gradient ``w``
    everywhere, so the penalty is :math:`(\|w\| - 1)^2`:

    >>> w = torch.full((1, 1, 2, 2), 1.0)   # ||w|| = 2
    >>> critic = lambda x: (x * w).flatten(1).sum(1)
    >>> gradient_penalty(critic, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2))
    tensor(1.)
    """
    mixed = random_interpolates(real, fake, generator=generator, alpha=alpha)
    scores = select_head(critic(mixed), head)
    return gradient_norm_penalty(scores, mixed, create_graph=create_graph, grad_scale=grad_scale)
