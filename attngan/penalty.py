"""WGAN-GP gradient penalty (Gulrajani et al., 2017), Eq. (2) of AcGANs."""

from __future__ import annotations

import numbers
from typing import Any, Callable, Optional, Union

import torch

from ._validation import (
    check_generator,
    check_nonempty_batch,
    check_real,
    check_same_device,
    check_same_dtype,
    check_same_shape,
    check_tensor,
    value_checks_apply,
)

__all__ = ["gradient_norm_penalty", "gradient_penalty", "random_interpolates", "select_head"]

Head = Union[None, str, int, Callable[[Any], torch.Tensor]]
Alpha = Union[None, float, torch.Tensor]
Scale = Union[None, float, torch.Tensor]


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


def _check_alpha(alpha: Any, real: torch.Tensor) -> Union[float, torch.Tensor]:
    """Validate ``alpha``; return a float or a tensor broadcastable against ``real``."""
    b = real.shape[0]
    if isinstance(alpha, torch.Tensor):
        check_tensor(alpha, "alpha")
        if alpha.ndim > 1:
            raise ValueError(
                f"alpha must have shape (B,) or () (1 or 0 dimensions), "
                f"got shape {tuple(alpha.shape)} ({alpha.ndim} dimensions)"
            )
        if alpha.ndim == 1 and alpha.shape[0] != b:
            raise ValueError(f"alpha must have shape ({b},), got {tuple(alpha.shape)}")
        check_same_device(real, "real", alpha, "alpha")
        if value_checks_apply(alpha):
            low, high = float(alpha.min()), float(alpha.max())
            if not (0.0 <= low and high <= 1.0):  # also false for NaN
                raise ValueError(f"alpha must lie in [0, 1], got values in [{low:g}, {high:g}]")
        alpha = alpha.to(real.dtype)
        return alpha.reshape(b, *([1] * (real.ndim - 1))) if alpha.ndim == 1 else alpha
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a float or a tensor of shape (B,) or (), got {type(alpha).__name__}")
    if not 0.0 <= alpha <= 1.0:  # also false for NaN
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    return float(alpha)


def random_interpolates(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: Optional[torch.Generator] = None,
    alpha: Alpha = None,
) -> torch.Tensor:
    r"""Random points on the segments between real and fake samples.

    :math:`\tilde x = \alpha x_{real} + (1 - \alpha) x_{fake}` with one
    :math:`\alpha \sim U[0, 1]` per sample. Both inputs are detached, and the
    result requires grad, ready for :func:`gradient_norm_penalty`.

    Parameters
    ----------
    real, fake : torch.Tensor
        Samples of shape (B, ...), e.g. images (B, C, H, W), B >= 1, of the
        same shape, dtype and device.
    generator : torch.Generator, optional
        Random generator on the inputs' device.
    alpha : float or torch.Tensor, optional
        Explicit weights in [0, 1] instead of random ones: shape (B,), one per
        sample, or a scalar (a float or a 0-dim tensor) shared by the batch,
        e.g. 0.5 for the midpoints. A float is always range-checked; a tensor
        only on the CPU in eager mode with value checks on
        (:class:`attngan.set_value_checks`), elsewhere weights outside [0, 1]
        extrapolate beyond the segment.

    Returns
    -------
    torch.Tensor
        Interpolates of the shape of ``real``, requiring grad.

    Raises
    ------
    TypeError
        For non-floating inputs, or ``real`` and ``fake`` of two dtypes.
    ValueError
        For mismatched shapes or devices, an empty batch, or ``alpha`` of the
        wrong shape or outside [0, 1].

    Examples
    --------
    >>> real, fake = torch.ones(2, 3), torch.zeros(2, 3)
    >>> random_interpolates(real, fake, alpha=torch.tensor([0.25, 1.0])).detach()
    tensor([[0.2500, 0.2500, 0.2500],
            [1.0000, 1.0000, 1.0000]])
    """
    check_tensor(real, "real")
    check_tensor(fake, "fake")
    check_same_shape(real, "real", fake, "fake")
    check_same_device(real, "real", fake, "fake")
    check_same_dtype(real, "real", fake, "fake")
    if real.ndim < 1 or real.shape[0] == 0:
        raise ValueError(f"real must have a non-empty batch dimension, got shape {tuple(real.shape)}")
    check_generator(generator, "generator", real, "real")
    if alpha is None:
        weight: Union[float, torch.Tensor] = torch.rand(
            real.shape[0], generator=generator, device=real.device, dtype=real.dtype
        ).reshape(real.shape[0], *([1] * (real.ndim - 1)))
    else:
        weight = _check_alpha(alpha, real)
    mixed = torch.lerp(fake.detach(), real.detach(), weight)
    return mixed.requires_grad_(True)


def _check_grad_scale(grad_scale: Any) -> None:
    if grad_scale is None:
        return
    if isinstance(grad_scale, torch.Tensor):
        check_tensor(grad_scale, "grad_scale", ndim=0, layout="()")
        if value_checks_apply(grad_scale):
            value = float(grad_scale)
            if not (value > 0.0 and value < float("inf")):  # also false for NaN
                raise ValueError(f"grad_scale must be a finite number > 0, got {value:g}")
        return
    check_real(grad_scale, "grad_scale", positive=True)


def _penalty(
    scores: torch.Tensor,
    inputs: torch.Tensor,
    *,
    create_graph: bool,
    retain_graph: Optional[bool],
    grad_scale: Scale,
    what: str,
    inputs_name: str,
) -> torch.Tensor:
    """The penalty itself; ``what`` / ``inputs_name`` name the scores and inputs in errors."""
    if not scores.requires_grad:
        reason = (
            "it was computed with gradients disabled (inside torch.no_grad() or torch.inference_mode())"
            if not torch.is_grad_enabled()
            else f"nothing connects it to {inputs_name} (a .detach() or torch.no_grad() in the critic?)"
        )
        raise ValueError(f"{what} must depend on {inputs_name}, but it does not require grad: {reason}")
    total = scores.sum()
    if grad_scale is not None:
        total = total * grad_scale
    (grad,) = torch.autograd.grad(
        total, inputs, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    if grad is None:
        raise ValueError(
            f"{what} must depend on {inputs_name}, but its gradient with respect to {inputs_name} is "
            f"undefined: it was computed without using {inputs_name} (only from parameters or other tensors)"
        )
    acc = torch.float64 if grad.dtype == torch.float64 else torch.float32
    grad = grad.to(acc)
    if grad_scale is not None:
        grad = grad / grad_scale
    norms = torch.linalg.vector_norm(grad.flatten(1), ord=2, dim=1)
    return (norms - 1.0).pow(2).mean()


def gradient_norm_penalty(
    scores: torch.Tensor,
    inputs: torch.Tensor,
    *,
    create_graph: bool = True,
    retain_graph: Optional[bool] = None,
    grad_scale: Scale = None,
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
    grad_scale : float or torch.Tensor, optional
        Multiply the scores by this factor before differentiating and divide
        the gradient by it afterwards: protects fp16 gradients from underflow
        (pass the ``GradScaler``'s scale). The result is unchanged in exact
        arithmetic. A finite number > 0: a float is always checked, a 0-dim
        tensor only on the CPU in eager mode with value checks on
        (:class:`attngan.set_value_checks`).

    The scores may have another dtype than ``inputs`` (a critic run under
    autocast) and live on another device (a model-parallel critic).

    Returns
    -------
    torch.Tensor
        Scalar, the batch mean of the squared distance of per-sample gradient
        norms from 1, in float32 (or float64 for float64 inputs).

    Raises
    ------
    ValueError
        For an empty batch (B = 0, the mean would be NaN), mismatched batch
        sizes, ``inputs`` that do not require grad, ``scores`` that do not
        depend on ``inputs`` (where ``torch.autograd.grad`` would fail or
        return None), or a ``grad_scale`` that is zero, negative or not finite.

    Examples
    --------
    >>> x = torch.randn(4, 3, requires_grad=True)
    >>> gradient_norm_penalty((2 * x).sum(1), x)   # every gradient norm is 2 * sqrt(3)
    tensor(6.0718)
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
    check_nonempty_batch(inputs, "inputs", "the mean over an empty batch is undefined")
    if not inputs.requires_grad:
        raise ValueError("inputs must require grad (create them with random_interpolates)")
    _check_grad_scale(grad_scale)
    return _penalty(
        scores,
        inputs,
        create_graph=create_graph,
        retain_graph=retain_graph,
        grad_scale=grad_scale,
        what="scores",
        inputs_name="inputs",
    )


def gradient_penalty(
    critic: Callable[[torch.Tensor], Any],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    head: Head = None,
    generator: Optional[torch.Generator] = None,
    alpha: Alpha = None,
    create_graph: bool = True,
    grad_scale: Scale = None,
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
        Real and generated samples of the same shape (B, C, H, W), dtype and
        device, B >= 1; both are detached.
    head : None, str, int or callable, optional
        Which output of a multi-head critic holds the realness scores.
    generator : torch.Generator, optional
        Random generator for the interpolation weights.
    alpha : float or torch.Tensor, optional
        Explicit interpolation weights in [0, 1], of shape (B,) or a scalar;
        see :func:`random_interpolates`.
    create_graph : bool, optional
        Build the graph for double backward (default ``True``; set ``False``
        only to log the penalty).
    grad_scale : float or torch.Tensor, optional
        See :func:`gradient_norm_penalty`.

    Returns
    -------
    torch.Tensor
        Scalar penalty.

    Raises
    ------
    ValueError
        As :func:`random_interpolates` and :func:`gradient_norm_penalty`, and
        when the selected scores do not depend on the critic's input (a
        critic that detaches its input or ignores it, or a ``head`` that
        selects something else); the message names the critic and the head.
    TypeError
        For a ``critic`` that is not callable, and as
        :func:`random_interpolates`.

    Examples
    --------
    A linear critic :math:`f(x) = \langle w, x\rangle` has gradient ``w``
    everywhere, so the penalty is :math:`(\|w\| - 1)^2`:

    >>> w = torch.full((1, 1, 2, 2), 1.0)   # ||w|| = 2
    >>> critic = lambda x: (x * w).flatten(1).sum(1)
    >>> gradient_penalty(critic, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2))
    tensor(1.)
    """
    if not callable(critic):
        raise TypeError(f"critic must be callable (a module or a function), got {type(critic).__name__}")
    _check_grad_scale(grad_scale)
    mixed = random_interpolates(real, fake, generator=generator, alpha=alpha)
    scores = select_head(critic(mixed), head)
    what = f"the scores of critic {_name_of(critic)} (head={_name_of(head)})"
    check_tensor(scores, what)
    if scores.ndim == 0 or scores.shape[0] != mixed.shape[0]:
        raise ValueError(
            f"{what} must have shape ({mixed.shape[0]}, ...), one row per sample, got {tuple(scores.shape)}"
        )
    return _penalty(
        scores,
        mixed,
        create_graph=create_graph,
        retain_graph=None,
        grad_scale=grad_scale,
        what=what,
        inputs_name="the critic's input",
    )


def _name_of(obj: Any) -> str:
    """A short name of a critic or a head for error messages."""
    if obj is None or isinstance(obj, (str, int)):
        return repr(obj)
    return getattr(obj, "__qualname__", None) or type(obj).__name__
