"""The attention generator of AcGANs (Fig. 1), after StarGAN / GANimation.

A shared encoder, a residual bottleneck and a decoder produce features from
the image concatenated with its condition maps; two last layers turn them into
a colour proposal ``C = tanh(.)`` and an attention mask ``A = sigmoid(.)``,
composed as ``x_t = (1 - A) * C + A * x_s`` (Eq. 1).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_choice, check_positive_int, check_real, check_same_device, check_tensor
from .composition import compose
from .conditioning import _as_codes, concat_condition
from .modulation import ConditionalNorm2d

__all__ = ["AttentionGenerator", "GeneratorOutput"]


#: A residual colour proposal adds the head to atanh of the input clipped to this bound (atanh(1) is infinite).
_RESIDUAL_EDGE = 1.0 - 1e-3


class GeneratorOutput(NamedTuple):
    """What :class:`AttentionGenerator` returns.

    Attributes
    ----------
    image : torch.Tensor
        The composed output ``x_t`` of shape (B, C, H, W).
    attention : torch.Tensor
        The attention mask ``A`` of shape (B, 1, H, W) in [0, 1]; 1 keeps the input.
    color : torch.Tensor
        The colour proposal ``C`` of shape (B, C, H, W) in [-1, 1].
    """

    image: torch.Tensor
    attention: torch.Tensor
    color: torch.Tensor


def _norm(kind: str, channels: int, num_classes: Optional[int] = None) -> nn.Module:
    """The normalisation layer of ``kind``; conditional (:class:`ConditionalNorm2d`) when ``num_classes`` is given."""
    if num_classes is not None:
        return ConditionalNorm2d(channels, num_classes, norm=kind)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)  # at most 32 groups that divide channels
    return nn.Identity()


def _run(layers: nn.Sequential, x: torch.Tensor, codes: Optional[torch.Tensor]) -> torch.Tensor:
    """Apply ``layers`` in order, handing the condition codes to the layers that take them."""
    for layer in layers:
        x = layer(x, codes) if isinstance(layer, (ConditionalNorm2d, ResidualBlock)) else layer(x)
    return x


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with normalisation and an identity shortcut.

    ``padding`` is the convolutions' ``padding_mode`` (``"zeros"``,
    ``"reflect"`` or ``"replicate"``). With ``num_classes`` the two
    normalisations are conditional (:class:`ConditionalNorm2d`) and
    :meth:`forward` needs the condition. Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, norm: str = "instance", padding: str = "zeros",
                 num_classes: Optional[int] = None) -> None:
        super().__init__()
        self.conditional = num_classes is not None
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False, padding_mode=padding),
            _norm(norm, channels, num_classes),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False, padding_mode=padding),
            _norm(norm, channels, num_classes),
        )

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return ``x + body(x)``; ``condition`` (B, K) or (B,) is required by a conditional block."""
        if self.conditional and condition is None:
            raise ValueError("this ResidualBlock has conditional normalisation: pass condition, (B, K) or (B,)")
        return x + _run(self.body, x, condition)


class AttentionGenerator(nn.Module):
    """Conditional generator with colour and attention heads (AcGANs Fig. 1).

    The defaults reproduce the paper's generator: a 7x7 convolution with
    ``base_channels=64``, two stride-2 down-samplings (4x4 kernels), six
    residual blocks, two up-samplings back to full resolution, and 7x7 heads;
    instance normalisation throughout.

    Parameters
    ----------
    image_channels : int, optional
        Channels C of input and output images. Default 3.
    num_classes : int, optional
        Number of condition classes K. Default 5 (the paper's age groups).
    base_channels : int, optional
        Width of the first layer; doubled at each down-sampling. Default 64.
    num_downsamples : int, optional
        Stride-2 stages; input H and W must be divisible by
        ``2 ** num_downsamples``. Default 2.
    num_residual_blocks : int, optional
        Residual blocks in the bottleneck. Default 6.
    max_channels : int, optional
        Cap on the width of any layer. Default 1024.
    norm : {"instance", "group", "none"}, optional
        Normalisation layer. Default ``"instance"``.
    upsample : {"transpose", "nearest"}, optional
        Transposed 4x4 convolutions (default, as the paper's lineage) or
        nearest-neighbour up-sampling followed by a 3x3 convolution (fewer
        checkerboard artefacts).
    attention_bias : float, optional
        Initial bias of the attention head, a finite number. The initial
        masks average about ``sigmoid(attention_bias)``: 0 (default) starts
        at 0.5, a positive value starts training near the identity map (the
        input is kept).
    padding : {"zeros", "reflect", "replicate"}, optional
        How the convolutions pad their input (``nn.Conv2d``'s
        ``padding_mode``): ``"zeros"`` (default, the paper's lineage) or
        mirrored / repeated border pixels, which instance normalisation
        (and group normalisation with one channel per group) does not
        allow: the condition enters as constant input planes, which the
        first convolution turns into a constant per channel everywhere
        except where zero padding cuts its window at the border, and
        normalising each channel subtracts that constant. With zero padding
        the condition reaches the network through the border alone; with
        mirrored padding it would not reach it at all (a ValueError says
        so). Transposed convolutions crop rather than pad and are the same
        in every mode. Every mode is allowed with ``condition="norm"``.
    condition : {"input", "norm"}, optional
        How the condition enters. ``"input"`` (default, the paper's): as K
        constant planes concatenated with the image, which reach the
        network only through zero padding's border (see ``padding``).
        ``"norm"``: every normalisation layer becomes a
        :class:`ConditionalNorm2d` whose per-channel scale and shift are
        linear in the condition code, so the condition acts on every pixel
        whatever the padding; the image enters alone. It starts as the
        unconditioned network (zero modulation) and takes soft codes.
        With ``norm="none"`` the layers modulate without normalising (FiLM).
    color : {"absolute", "residual"}, optional
        What the colour head proposes. ``"absolute"`` (default, the
        paper's): ``C = tanh(h)``, a picture painted from the features
        alone. ``"residual"``: ``C = tanh(h + atanh(x'))``, an edit of the
        input, where ``x'`` is the input clipped to
        ``[-(1 - 1e-3), 1 - 1e-3]`` so that its inverse tanh stays finite;
        the head starts at zero, so the first proposal is the input itself
        and the output equals the input whatever the masks. Where a mask
        opens, the painted pixels are then a change of the person's own
        colours rather than a picture of the target class. Beyond the paper.

    Shape
    -----
    - image: (B, C, H, W) in [-1, 1]
    - condition: (B, K) codes or (B,) integer labels
    - output: :class:`GeneratorOutput` with image (B, C, H, W), attention
      (B, 1, H, W) and color (B, C, H, W)
    - B may be 0: the outputs are then empty (with every normalisation)

    Examples
    --------
    >>> g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    >>> out = g(torch.rand(2, 3, 16, 16) * 2 - 1, torch.tensor([0, 4]))
    >>> out.image.shape, out.attention.shape
    (torch.Size([2, 3, 16, 16]), torch.Size([2, 1, 16, 16]))
    """

    def __init__(
        self,
        *,
        image_channels: int = 3,
        num_classes: int = 5,
        base_channels: int = 64,
        num_downsamples: int = 2,
        num_residual_blocks: int = 6,
        max_channels: int = 1024,
        norm: str = "instance",
        upsample: str = "transpose",
        attention_bias: float = 0.0,
        padding: str = "zeros",
        condition: str = "input",
        color: str = "absolute",
    ) -> None:
        super().__init__()
        check_positive_int(image_channels, "image_channels")
        check_positive_int(num_classes, "num_classes")
        check_positive_int(base_channels, "base_channels")
        check_positive_int(num_downsamples, "num_downsamples", minimum=0)
        check_positive_int(num_residual_blocks, "num_residual_blocks", minimum=0)
        check_positive_int(max_channels, "max_channels")
        check_choice(norm, "norm", ("instance", "group", "none"))
        check_choice(upsample, "upsample", ("transpose", "nearest"))
        check_choice(padding, "padding", ("zeros", "reflect", "replicate"))
        check_choice(condition, "condition", ("input", "norm"))
        check_choice(color, "color", ("absolute", "residual"))
        width = min(base_channels, max_channels)
        per_channel = norm == "instance" or (norm == "group" and math.gcd(32, width) == width)
        if padding != "zeros" and per_channel and condition == "input":
            raise ValueError(
                f"padding={padding!r} with {norm} normalisation of {width} channels: the condition enters as "
                f"constant input planes, the first convolution makes them a constant per channel away from zero "
                f"padding's border, and normalising each channel subtracts it, so the output would not depend "
                f"on the condition; use padding='zeros', condition='norm' (the condition in every "
                f"normalisation layer) or norm='none'"
            )
        attention_bias = check_real(attention_bias, "attention_bias")
        self.image_channels = image_channels
        self.num_classes = num_classes
        self.num_downsamples = num_downsamples
        self.padding = padding
        self.condition = condition
        self.color = color
        use_bias = norm == "none"
        modulated = num_classes if condition == "norm" else None  # the norm layers' condition length
        in_channels = image_channels + (num_classes if condition == "input" else 0)

        layers: list = [
            nn.Conv2d(in_channels, width, 7, padding=3, bias=use_bias, padding_mode=padding),
            _norm(norm, width, modulated),
            nn.ReLU(inplace=True),
        ]
        for _ in range(num_downsamples):
            nxt = min(width * 2, max_channels)
            layers += [nn.Conv2d(width, nxt, 4, stride=2, padding=1, bias=use_bias, padding_mode=padding),
                       _norm(norm, nxt, modulated), nn.ReLU(inplace=True)]
            width = nxt
        self.encoder = nn.Sequential(*layers)
        # instance norm, and group norm with one channel per group, cannot normalise a single pixel
        self._min_bottleneck_pixels = 2 if norm == "instance" or (norm == "group" and 32 % width == 0) else 1
        self.bottleneck = nn.Sequential(
            *[ResidualBlock(width, norm, padding, modulated) for _ in range(num_residual_blocks)]
        )
        layers = []
        for i in range(num_downsamples):
            nxt = min(base_channels * 2 ** (num_downsamples - i - 1), max_channels)
            if upsample == "transpose":
                layers.append(nn.ConvTranspose2d(width, nxt, 4, stride=2, padding=1, bias=use_bias))
            else:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                           nn.Conv2d(width, nxt, 3, padding=1, bias=use_bias, padding_mode=padding)]
            layers += [_norm(norm, nxt, modulated), nn.ReLU(inplace=True)]
            width = nxt
        self.decoder = nn.Sequential(*layers)
        self.feature_channels = width
        self.color_head = nn.Conv2d(width, image_channels, 7, padding=3, padding_mode=padding)
        self.attention_head = nn.Conv2d(width, 1, 7, padding=3, padding_mode=padding)
        if attention_bias:
            nn.init.constant_(self.attention_head.bias, attention_bias)
        if color == "residual":  # the first proposal is the input itself
            nn.init.zeros_(self.color_head.weight)
            nn.init.zeros_(self.color_head.bias)

    @property
    def size_multiple(self) -> int:
        """H and W of inputs must be multiples of this number."""
        return 2**self.num_downsamples

    def _check_inputs(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        check_tensor(image, "image", ndim=4, layout="(B, C, H, W)")
        b, c, h, w = image.shape
        if c != self.image_channels:
            raise ValueError(f"image must have {self.image_channels} channels, got shape {tuple(image.shape)}")
        weight = self.color_head.weight
        if image.dtype != weight.dtype and not _autocast_enabled(image.device.type):
            raise TypeError(
                f"image has dtype {image.dtype} but the generator's weights are {weight.dtype}: convert one to "
                f"the other (image.to({weight.dtype}) or generator.to({image.dtype})), or run under torch.autocast"
            )
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"image height and width must be divisible by {m} (2 ** num_downsamples), "
                f"got {h}x{w}"
            )
        if (h // m) * (w // m) < self._min_bottleneck_pixels:
            raise ValueError(
                f"image must be larger than {m}x{m} (2 ** num_downsamples): the normalisation layers "
                f"need more than one pixel at the bottleneck, got {h}x{w}"
            )
        if self.padding == "reflect" and (min(h, w) < 4 or min(h, w) // m < 2):
            raise ValueError(
                f"reflect padding mirrors up to 3 pixels, and 1 at the bottleneck: the image must be at least "
                f"{max(4, 2 * m)} pixels high and wide with num_downsamples={self.num_downsamples}, got {h}x{w}"
            )
        if isinstance(condition, torch.Tensor):
            check_same_device(image, "image", condition, "condition")
        codes = _as_codes(condition, self.num_classes)
        if codes.shape != (b, self.num_classes):
            raise ValueError(
                f"condition must have shape ({b}, {self.num_classes}) or ({b},), got {tuple(condition.shape)}"
            )
        return codes

    def forward_features(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Shared features before the two heads.

        Parameters
        ----------
        image : torch.Tensor
            Shape (B, C, H, W).
        condition : torch.Tensor
            Shape (B, K) or integer labels (B,).

        Returns
        -------
        torch.Tensor
            Decoder features of shape (B, feature_channels, H, W)
            (``feature_channels`` is ``min(base_channels, max_channels)``).
        """
        codes = self._check_inputs(image, condition)
        if image.shape[0] == 0:
            # instance norm cannot normalise an empty batch; the features of no sample are empty
            return image.new_zeros(0, self.feature_channels, image.shape[2], image.shape[3])
        if self.condition == "input":
            x = concat_condition(image, codes)
            return self.decoder(self.bottleneck(self.encoder(x)))
        x = _run(self.encoder, image, codes)
        return _run(self.decoder, _run(self.bottleneck, x, codes), codes)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> GeneratorOutput:
        """Generate the conditioned image, its attention and colour masks.

        Parameters
        ----------
        image : torch.Tensor
            Source images ``x_s`` of shape (B, C, H, W) in [-1, 1].
        condition : torch.Tensor
            Target codes ``y_t`` of shape (B, K), or integer labels (B,).

        Returns
        -------
        GeneratorOutput
            ``image`` (B, C, H, W), ``attention`` (B, 1, H, W) in [0, 1],
            ``color`` (B, C, H, W) in [-1, 1] (with ``color="residual"`` an
            edit of ``image``).
        """
        features = self.forward_features(image, condition)
        color_logits, attention_logits = self._heads(features)
        if self.color == "residual":
            color_logits = color_logits + torch.atanh(image.clamp(-_RESIDUAL_EDGE, _RESIDUAL_EDGE))
        color = torch.tanh(color_logits)
        attention = torch.sigmoid(attention_logits)
        return GeneratorOutput(compose(attention, color, image), attention, color)

    def _heads(self, features: torch.Tensor):
        """Both heads' pre-activations, as one convolution with their stacked weights.

        One 7x7 convolution with C + 1 output channels reads the features
        once and keeps the kernel's output-channel vector fuller than two
        convolutions with C and 1 (about 1.8x faster for the pair, forward
        and backward, in bf16 on a CPU). The result equals the two separate
        convolutions up to float rounding. Heads that are not plain
        ``nn.Conv2d`` of equal geometry, or that carry hooks, are called
        one by one.
        """
        c, a = self.color_head, self.attention_head
        if not (_plain_conv(c) and _plain_conv(a) and _same_geometry(c, a)):
            return c(features), a(features)
        weight = torch.cat([c.weight, a.weight])
        bias = torch.cat([c.bias, a.bias])
        padding = c.padding
        if c.padding_mode != "zeros":  # pad once for both heads, as nn.Conv2d pads for one
            features = F.pad(features, c._reversed_padding_repeated_twice, mode=c.padding_mode)
            padding = 0
        out = F.conv2d(features, weight, bias, c.stride, padding, c.dilation, c.groups)
        return out[:, : c.out_channels], out[:, c.out_channels :]


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has one flag per device family
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _plain_conv(m: nn.Module) -> bool:
    """An ``nn.Conv2d`` itself (not a subclass), with a bias, numeric padding and no hooks.

    "No hooks" reads the dictionaries ``nn.Module.__call__`` reads before it
    skips the hooks (private to PyTorch: ``tests/core/test_core_internals.py``
    checks that every public way of registering a hook still fills one of them).
    """
    module = nn.modules.module
    return (
        type(m) is nn.Conv2d
        and m.bias is not None
        and isinstance(m.padding, tuple)
        and not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
        and not (module._global_forward_hooks or module._global_forward_pre_hooks
                 or module._global_backward_hooks or module._global_backward_pre_hooks)
    )


def _same_geometry(a: nn.Conv2d, b: nn.Conv2d) -> bool:
    return (a.in_channels, a.kernel_size, a.stride, a.padding, a.dilation, a.groups, a.padding_mode) == (
        b.in_channels, b.kernel_size, b.stride, b.padding, b.dilation, b.groups, b.padding_mode
    )


