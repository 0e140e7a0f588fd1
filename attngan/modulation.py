"""Conditional normalisation: a condition that reaches every pixel.

The paper's generator takes its condition as constant input planes. The
first convolution turns them into a constant per channel (except where zero
padding cuts the window at the border) and instance normalisation subtracts
that constant, so the condition reaches the network through the image border
alone. Conditional normalisation (conditional instance normalisation,
Dumoulin et al. 2017; FiLM, Perez et al. 2018) instead scales and shifts
every channel after normalising it, by amounts computed from the condition
code, so the condition acts on every pixel whatever the padding.

* :func:`film`: feature-wise linear modulation ``x * (1 + scale) + shift``
  with per-sample, per-channel ``scale`` and ``shift``.
* :class:`ConditionalNorm2d`: instance (or group, or no) normalisation
  without its own affine parameters, followed by :func:`film` with
  ``scale`` and ``shift`` linear in the condition code. It starts as the
  identity modulation (scale 0, shift 0: the plain normalisation), takes
  one-hot, soft or integer-label conditions, and has no host
  synchronisation, so it compiles with ``fullgraph=True``.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ._validation import check_choice, check_positive_int, check_real, check_same_device, check_tensor
from .conditioning import _as_codes

__all__ = ["ConditionalNorm2d", "film"]


def film(features: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Feature-wise linear modulation, ``features * (1 + scale) + shift``.

    ``scale`` is an offset from 1, so zeros for both leave the features
    unchanged (the identity a conditional layer should start from).

    Parameters
    ----------
    features : torch.Tensor
        Feature maps of shape (B, C, H, W).
    scale : torch.Tensor
        Per-sample, per-channel scale offsets of shape (B, C).
    shift : torch.Tensor
        Per-sample, per-channel shifts of shape (B, C).

    Returns
    -------
    torch.Tensor
        Modulated features of shape (B, C, H, W).

    Examples
    --------
    >>> x = torch.ones(2, 3, 4, 4)
    >>> out = film(x, torch.zeros(2, 3), torch.tensor([[0., 1., 2.], [3., 4., 5.]]))
    >>> out[1, :, 0, 0]
    tensor([4., 5., 6.])
    """
    check_tensor(features, "features", ndim=4, layout="(B, C, H, W)")
    check_tensor(scale, "scale", ndim=2, layout="(B, C)")
    check_tensor(shift, "shift", ndim=2, layout="(B, C)")
    check_same_device(features, "features", scale, "scale")
    check_same_device(features, "features", shift, "shift")
    expected = tuple(features.shape[:2])
    for name, t in (("scale", scale), ("shift", shift)):
        if tuple(t.shape) != expected:
            raise ValueError(
                f"{name} must have shape (B, C) = {expected} to match features of shape "
                f"{tuple(features.shape)}, got {tuple(t.shape)}"
            )
    scale = rearrange(scale, "b c -> b c 1 1")
    shift = rearrange(shift, "b c -> b c 1 1")
    return torch.addcmul(shift, features, scale + 1)


class ConditionalNorm2d(nn.Module):
    """Normalisation whose per-channel scale and shift are computed from a condition.

    ``y = norm(x) * (1 + W_s c + b_s) + (W_h c + b_h)``, where ``norm`` has
    no affine parameters of its own and ``c`` is the condition code. The
    linear maps start at zero, so a fresh layer is the plain normalisation
    (with a unit scale and zero shift), and a soft code (a mixture of
    classes) gives the same mixture of the classes' scales and shifts.

    Parameters
    ----------
    num_features : int
        Channels C of the features.
    num_classes : int
        Length K of the condition codes.
    norm : {"instance", "group", "none"}, optional
        The normalisation before the modulation: per-sample, per-channel
        instance normalisation (default; conditional instance normalisation),
        group normalisation with at most 32 groups that divide C, or none
        (plain FiLM of the features).
    eps : float, optional
        Added to the variance in the normalisation. Default 1e-5.

    Shape
    -----
    - features: (B, C, H, W)
    - condition: (B, K) codes (one-hot or soft) or (B,) integer labels
    - output: (B, C, H, W)

    Examples
    --------
    >>> layer = ConditionalNorm2d(8, 5)
    >>> x = torch.randn(2, 8, 6, 6)
    >>> layer(x, torch.tensor([0, 3])).shape
    torch.Size([2, 8, 6, 6])
    >>> plain = torch.nn.functional.instance_norm(x)
    >>> bool(torch.allclose(layer(x, torch.tensor([0, 3])), plain, atol=1e-6))  # identity modulation at start
    True
    """

    def __init__(self, num_features: int, num_classes: int, *, norm: str = "instance", eps: float = 1e-5) -> None:
        super().__init__()
        check_positive_int(num_features, "num_features")
        check_positive_int(num_classes, "num_classes")
        check_choice(norm, "norm", ("instance", "group", "none"))
        eps = check_real(eps, "eps", positive=True)
        self.num_features, self.num_classes, self.kind, self.eps = num_features, num_classes, norm, eps
        if norm == "instance":
            self.norm: nn.Module = nn.InstanceNorm2d(num_features, eps=eps, affine=False, track_running_stats=False)
        elif norm == "group":
            self.norm = nn.GroupNorm(math.gcd(32, num_features), num_features, eps=eps, affine=False)
        else:
            self.norm = nn.Identity()
        self.scale = nn.Linear(num_classes, num_features)
        self.shift = nn.Linear(num_classes, num_features)
        self.reset_modulation()

    def reset_modulation(self) -> None:
        """Zero both linear maps: the layer becomes the plain normalisation."""
        for linear in (self.scale, self.shift):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Normalise ``features`` (B, C, H, W) and modulate them by ``condition`` (B, K) or (B,)."""
        check_tensor(features, "features", ndim=4, layout="(B, C, H, W)")
        if features.shape[1] != self.num_features:
            raise ValueError(
                f"features must have {self.num_features} channels, got shape {tuple(features.shape)}"
            )
        if isinstance(condition, torch.Tensor):
            check_same_device(features, "features", condition, "condition")
        codes = _as_codes(condition, self.num_classes)
        if codes.shape[0] != features.shape[0]:
            raise ValueError(
                f"condition must have one row per sample ({features.shape[0]}), got shape {tuple(condition.shape)}"
            )
        codes = codes.to(self.scale.weight.dtype)
        return film(self.norm(features), self.scale(codes), self.shift(codes))

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_classes={self.num_classes}, norm={self.kind!r}, eps={self.eps:g}"
