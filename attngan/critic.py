"""Multi-head critic: a shared trunk with a realness head and a classifier head.

``D_I`` (WGAN realness, no sigmoid) and ``D_y`` (class logits) share the
trunk's parameters ``W_D`` (paper Fig. 1). The trunk has no normalisation
layers: batch statistics would couple the samples and break the per-sample
gradient penalty.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_positive_int, check_real, check_tensor

__all__ = ["CriticOutput", "MultiHeadCritic"]


class CriticOutput(NamedTuple):
    """What :class:`MultiHeadCritic` returns.

    Attributes
    ----------
    realness : torch.Tensor
        Patch realness scores of shape (B, 1, h, w) (higher is more real).
    logits : torch.Tensor
        Class logits of shape (B, K).
    """

    realness: torch.Tensor
    logits: torch.Tensor


def _pair(size: Union[int, Tuple[int, int]], name: str) -> Tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not (isinstance(size, tuple) and len(size) == 2 and all(isinstance(s, int) for s in size)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {size!r}")
    for s in size:
        check_positive_int(s, name)
    return size


#: Stride-2 layers with at most this many output pixels compute their
#: convolution on the CPU as patches times weights (see :class:`_PatchConv2d`).
_PATCH_CONV_MAX_PIXELS = 16


class _PatchConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that, on the CPU, multiplies image patches by its weights.

    The critic's deepest layers have many channels and a tiny output map
    (512 to 1024 channels, 4x4 outputs at 128 px): oneDNN's direct
    convolution runs them several times below the speed of its other
    layers, while one matrix product of the (B*h*w, C*k*k) patches with the
    (O, C*k*k) weights runs near the CPU's peak. Measured in bf16 on one
    core, forward and backward: 96 -> 43 ms at batch 8, 152 -> 64 ms at
    batch 16; the penalty's double backward gains alike. Same parameters,
    state-dict keys and results (up to float rounding) as ``nn.Conv2d``;
    other devices use the convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.groups != 1 or self.padding_mode != "zeros" or self.dilation != (1, 1):
            return super().forward(x)
        o, c, kh, kw = self.weight.shape
        (ph, pw), (sh, sw) = self.padding, self.stride
        # patches (B, h, w, C, kh, kw): one copy of the input's windows
        windows = F.pad(x, (pw, pw, ph, ph)).unfold(2, kh, sh).unfold(3, kw, sw).permute(0, 2, 3, 1, 4, 5)
        b, oh, ow = windows.shape[:3]
        if self.weight.is_contiguous():  # weight (O, C, kh, kw)
            patches, weight = windows.reshape(b * oh * ow, c * kh * kw), self.weight.reshape(o, c * kh * kw)
        else:  # a channels_last weight is (O, kh, kw, C) in memory: order the patches alike
            patches = windows.permute(0, 1, 2, 4, 5, 3).reshape(b * oh * ow, kh * kw * c)
            weight = self.weight.permute(0, 2, 3, 1).reshape(o, kh * kw * c)
        out = F.linear(patches, weight, self.bias).view(b, oh, ow, o).permute(0, 3, 1, 2)  # channels_last
        return out if x.is_contiguous(memory_format=torch.channels_last) else out.contiguous()


class MultiHeadCritic(nn.Module):
    """Convolutional critic with a realness head and a classifier head.

    The trunk is a stack of 4x4 stride-2 convolutions with leaky ReLUs; the
    width starts at ``base_channels``, doubles per layer and is capped at
    ``max_channels``. The realness head is a 3x3 convolution giving patch
    scores; the classifier head is a convolution covering the whole final
    feature map, giving (B, K) logits.

    On the CPU, trunk layers with at most 16 output pixels (the last one at
    64, 128 and 224 px) compute their convolution as one matrix product of
    image patches and weights, about twice as fast there as oneDNN's
    convolution; the parameters and results are those of ``nn.Conv2d``.

    By default the number of layers is derived from ``image_size``: layers are
    added while the feature map is larger than 4 pixels on its shorter side
    (64 -> 4 layers, 128 -> 5, 224 -> 6 with a 3x3 map).

    Parameters
    ----------
    image_size : int or (int, int)
        Input height and width the critic is built for.
    image_channels : int, optional
        Input channels. Default 3.
    num_classes : int, optional
        Number of classes K of the classifier head. Default 5.
    base_channels : int, optional
        Width of the first layer. Default 64.
    max_channels : int, optional
        Width cap. Default 1024 (the released code reaches 4096 at 224x224).
    num_layers : int, optional
        Number of stride-2 layers; derived from ``image_size`` when omitted.
    negative_slope : float, optional
        Leaky ReLU slope, a finite number. Default 0.01.

    Shape
    -----
    - input: (B, C, H, W) with (H, W) equal to ``image_size``
    - output: :class:`CriticOutput` with realness (B, 1, h, w) and logits (B, K)
    - B may be 0: the outputs are then empty

    Examples
    --------
    >>> d = MultiHeadCritic(image_size=32, base_channels=8)
    >>> out = d(torch.randn(2, 3, 32, 32))
    >>> out.realness.shape, out.logits.shape
    (torch.Size([2, 1, 4, 4]), torch.Size([2, 5]))
    """

    def __init__(
        self,
        image_size: Union[int, Tuple[int, int]],
        *,
        image_channels: int = 3,
        num_classes: int = 5,
        base_channels: int = 64,
        max_channels: int = 1024,
        num_layers: Optional[int] = None,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        self.image_size = _pair(image_size, "image_size")
        check_positive_int(image_channels, "image_channels")
        check_positive_int(num_classes, "num_classes")
        check_positive_int(base_channels, "base_channels")
        check_positive_int(max_channels, "max_channels")
        negative_slope = check_real(negative_slope, "negative_slope")
        h, w = self.image_size
        if num_layers is None:
            num_layers = 1
            while min(h, w) // 2**num_layers > 4:
                num_layers += 1
        check_positive_int(num_layers, "num_layers")
        if min(h, w) // 2**num_layers < 1:
            raise ValueError(
                f"num_layers={num_layers} halves image_size={self.image_size} below one pixel; "
                f"use at most {max(min(h, w).bit_length() - 1, 1)} layers"
            )
        self.image_channels = image_channels
        self.num_classes = num_classes
        layers: list = []
        in_ch, width = image_channels, min(base_channels, max_channels)
        for i in range(num_layers):
            out_pixels = (h // 2 ** (i + 1)) * (w // 2 ** (i + 1))
            conv = _PatchConv2d if out_pixels <= _PATCH_CONV_MAX_PIXELS else nn.Conv2d
            layers += [conv(in_ch, width, 4, stride=2, padding=1), nn.LeakyReLU(negative_slope, inplace=True)]
            in_ch, width = width, min(width * 2, max_channels)
        self.trunk = nn.Sequential(*layers)
        self.feature_channels = in_ch
        self.feature_size = (h // 2**num_layers, w // 2**num_layers)
        self.realness_head = nn.Conv2d(in_ch, 1, 3, padding=1, bias=False)
        self.classifier_head = nn.Conv2d(in_ch, num_classes, self.feature_size, bias=False)

    @classmethod
    def released_acgan(cls, image_size: int = 224, *, num_classes: int = 5) -> "MultiHeadCritic":
        """The critic of the authors' released code: 7 layers, 64 to 4096 channels.

        At 224x224 its final map is 1x1. For comparisons only: it has about
        6.4 times the parameters of the default critic at that size (179 M against 28 M).

        Parameters
        ----------
        image_size : int, optional
            Input size. Default 224.
        num_classes : int, optional
            Number of classes. Default 5.

        Returns
        -------
        MultiHeadCritic
        """
        return cls(image_size, num_classes=num_classes, base_channels=64, max_channels=4096, num_layers=7)

    def forward_features(self, image: torch.Tensor) -> torch.Tensor:
        """Run the shared trunk.

        Parameters
        ----------
        image : torch.Tensor
            Shape (B, C, H, W) with (H, W) equal to ``image_size``.

        Returns
        -------
        torch.Tensor
            Features of shape (B, feature_channels, h, w).
        """
        check_tensor(image, "image", ndim=4, layout="(B, C, H, W)")
        if image.shape[1] != self.image_channels or tuple(image.shape[2:]) != self.image_size:
            raise ValueError(
                f"image must have shape (B, {self.image_channels}, {self.image_size[0]}, {self.image_size[1]}), "
                f"got {tuple(image.shape)}"
            )
        return self.trunk(image)

    def forward(self, image: torch.Tensor) -> CriticOutput:
        """Score realness and classify.

        Parameters
        ----------
        image : torch.Tensor
            Shape (B, C, H, W).

        Returns
        -------
        CriticOutput
            ``realness`` (B, 1, h, w) and ``logits`` (B, K).
        """
        features = self.forward_features(image)
        return CriticOutput(self.realness_head(features), self.classifier_head(features).flatten(1))
