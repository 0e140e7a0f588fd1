"""The AcGAN example's networks, built from a config, and the generator's use.

Builders (:func:`build_generator`, :func:`build_critic`,
:func:`build_optimizers`, :func:`build_average`) turn the ``model`` and
optimisation fields of :class:`config.TrainConfig` into the attngan
networks; the inference helpers (:func:`age_all_groups`,
:func:`aging_codes`, :func:`age_gradually`) age faces with a generator.
The training iteration is in :mod:`step`, checkpoints in :mod:`checkpoints`.

Images are (B, 3, H, W) in [-1, 1]; age groups are integers in
``[0, NUM_GROUPS)`` (:mod:`ages`).

Examples
--------
>>> import torch
>>> from config import TrainConfig, validate_config
>>> cfg = validate_config(TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8, device="cpu"))
>>> g, d = build_generator(cfg), build_critic(cfg)
>>> d(torch.zeros(2, 3, 64, 64)).logits.shape          # (B, groups)
torch.Size([2, 5])
>>> age_all_groups(g.eval(), torch.zeros(1, 3, 64, 64)).image.shape   # (N, groups, C, H, W)
torch.Size([1, 5, 3, 64, 64])
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

import attngan
from ages import NUM_GROUPS
from config import TrainConfig

__all__ = [
    "NoAttentionGenerator",
    "age_all_groups",
    "age_gradually",
    "aging_codes",
    "build_average",
    "build_critic",
    "build_generator",
    "build_optimizers",
    "generator_codes",
    "init_weights",
    "told_source",
    "unwrap",
]


# --------------------------------------------------------------------------- #
# Networks
# --------------------------------------------------------------------------- #


class NoAttentionGenerator(nn.Module):
    """Ablation: the same network, but the output is the colour head alone.

    The attention head is still computed (so parameter counts match) but not
    used: ``image = color``.

    Parameters
    ----------
    inner : attngan.AttentionGenerator
        The wrapped generator.
    """

    def __init__(self, inner: attngan.AttentionGenerator) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> attngan.GeneratorOutput:
        out = self.inner(image, condition)
        return attngan.GeneratorOutput(out.color, torch.zeros_like(out.attention), out.color)


def init_weights(module: nn.Module, kind: str) -> nn.Module:
    """Initialise the convolution weights of ``module`` in place.

    Parameters
    ----------
    module : nn.Module
        The network.
    kind : str
        ``"normal"``: every convolution weight drawn from N(0, 0.02) (the
        released code's initialisation), biases kept; ``"default"``: unchanged.

    Returns
    -------
    nn.Module
        ``module`` itself.
    """
    if kind == "normal":
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    m.weight.normal_(0.0, 0.02)
    return module


def build_generator(cfg: TrainConfig) -> nn.Module:
    """The generator of a config: an :class:`attngan.AttentionGenerator`, or its
    :class:`NoAttentionGenerator` ablation where ``generator_mode="no-attention"``.

    Parameters
    ----------
    cfg : TrainConfig
        Its ``g_*``, ``init`` and ``generator_mode`` fields are read.

    Returns
    -------
    nn.Module
        Called as ``g(images, groups_or_codes)``, it returns an
        :class:`attngan.GeneratorOutput`. With ``g_source > 0`` its codes
        have ``2 * NUM_GROUPS`` entries, the target's then the source's
        (:func:`generator_codes`); integer groups then mean "source unknown".
    """
    g = attngan.AttentionGenerator(
        num_classes=NUM_GROUPS * (2 if cfg.g_source > 0 else 1), base_channels=cfg.g_channels,
        num_downsamples=cfg.g_downsamples,
        num_residual_blocks=cfg.g_res_blocks, attention_bias=cfg.g_attention_bias, upsample=cfg.g_upsample,
        condition=cfg.g_condition, padding=cfg.g_padding, color=cfg.g_color,
    )
    init_weights(g, cfg.init or "default")
    return NoAttentionGenerator(g) if cfg.generator_mode == "no-attention" else g


def build_critic(cfg: TrainConfig) -> attngan.MultiHeadCritic:
    """The critic of a config: realness and age-group heads on a shared trunk.

    Parameters
    ----------
    cfg : TrainConfig
        Its ``image_size``, ``d_*`` and ``init`` fields are read.

    Returns
    -------
    attngan.MultiHeadCritic
    """
    d = attngan.MultiHeadCritic(
        cfg.image_size, num_classes=NUM_GROUPS + int(cfg.d_fake_class), base_channels=cfg.d_channels,
        max_channels=cfg.d_max_channels,
    )
    return init_weights(d, cfg.init or "default")


def build_optimizers(cfg: TrainConfig, g: nn.Module, d: nn.Module,
                     fused: bool) -> Tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for the generator and for the critic, with the config's ``lr``, ``beta1`` and ``beta2``.

    Parameters
    ----------
    cfg : TrainConfig
    g, d : nn.Module
        The generator and the critic.
    fused : bool
        True: the fused implementation (one kernel, no host synchronisation
        in :class:`step.AcGANStep`); False: the per-parameter loop.

    Returns
    -------
    tuple of torch.optim.Adam
        ``(opt_g, opt_d)``.
    """
    kw: Dict[str, Any] = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if fused:
        kw["fused"] = True
    else:
        kw["foreach"] = False
    return torch.optim.Adam(g.parameters(), **kw), torch.optim.Adam(d.parameters(), **kw)


def build_average(cfg: TrainConfig, g: nn.Module) -> Optional[torch.optim.swa_utils.AveragedModel]:
    """The exponential moving average of the generator's weights (``--g-ema``), or None when it is off.

    A copy of ``g`` (after :func:`unwrap`) whose parameters and buffers follow
    ``avg <- decay * avg + (1 - decay) * g`` at each ``update_parameters(g)``
    (the first update copies ``g``); ``.module`` is the averaged generator.
    The average does not feed back into training: a run with and without it
    trains the same weights.

    Parameters
    ----------
    cfg : TrainConfig
        ``cfg.g_ema`` is the decay; 0 or None turns the average off.
    g : nn.Module
        The trained generator.

    Returns
    -------
    torch.optim.swa_utils.AveragedModel or None

    Examples
    --------
    >>> import torch
    >>> from config import TrainConfig, validate_config
    >>> cfg = validate_config(TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8, device="cpu",
    ...                                   g_ema=0.5))
    >>> g = build_generator(cfg)
    >>> avg = build_average(cfg, g)
    >>> avg.update_parameters(g)               # the first update copies
    >>> p = next(g.parameters()); q = next(avg.module.parameters())
    >>> with torch.no_grad(): _ = p.add_(2.0)
    >>> avg.update_parameters(g)               # halfway to the new weights
    >>> bool(torch.allclose(q, p - 1.0))
    True
    """
    if not cfg.g_ema:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    avg = AveragedModel(unwrap(g), multi_avg_fn=get_ema_multi_avg_fn(cfg.g_ema), use_buffers=True)
    avg.module.requires_grad_(False)
    # AveragedModel reads its update count as a Python bool at every update: on
    # the host that read costs nothing, on a GPU it would synchronise each step.
    avg.n_averaged = avg.n_averaged.cpu()
    return avg


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers.

    Parameters
    ----------
    module : nn.Module
        A network, wrapped any number of times.

    Returns
    -------
    nn.Module
        The innermost module (``module`` itself when it is not wrapped).
    """
    while True:
        if hasattr(module, "module") and isinstance(module.module, nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def told_source(g: nn.Module) -> bool:
    """Whether the generator ``g`` (possibly wrapped) takes the source group's code after the target's
    (a config's ``g_source > 0``)."""
    g = unwrap(g)
    g = getattr(g, "inner", g)  # NoAttentionGenerator
    return getattr(g, "num_classes", NUM_GROUPS) == 2 * NUM_GROUPS


def _as_group_codes(groups: torch.Tensor) -> torch.Tensor:
    """(B,) integer groups as one-hot codes; (B, K) codes as floats."""
    return attngan.one_hot(groups, NUM_GROUPS) if groups.ndim == 1 else groups.float()


def generator_codes(g: nn.Module, target: torch.Tensor, source: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The condition codes with which ``g`` ages faces of groups ``source`` to groups ``target``.

    A generator trained with ``--g-source`` takes ``2 * NUM_GROUPS`` code
    entries: the target's code, then the source group's, where zeros mean
    that the source is not known. Any other generator takes the target alone:
    ``target`` is returned as it is and ``source`` is ignored.

    Parameters
    ----------
    g : nn.Module
        The generator (possibly wrapped).
    target : torch.Tensor
        (B,) integer groups or (B, NUM_GROUPS) codes (soft codes allowed).
    source : torch.Tensor, optional
        (B,) integer groups or (B, NUM_GROUPS) codes of the inputs; None: unknown.

    Returns
    -------
    torch.Tensor
        (B, 2 * NUM_GROUPS) float codes on ``target``'s device, or ``target`` itself.

    Examples
    --------
    >>> from config import TrainConfig, validate_config
    >>> cfg = validate_config(TrainConfig(image_size=64, g_channels=4, g_res_blocks=0, d_channels=4, device="cpu",
    ...                                   g_source=0.75))
    >>> generator_codes(build_generator(cfg), torch.tensor([3]), torch.tensor([1])).tolist()
    [[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    >>> generator_codes(build_generator(cfg), torch.tensor([3])).tolist()
    [[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    if not told_source(g):
        return target
    codes = _as_group_codes(target)
    if source is None:
        return torch.cat([codes, torch.zeros_like(codes)], dim=1)
    told = _as_group_codes(source.to(codes.device))
    if told.shape != codes.shape:
        raise ValueError(f"source must give one group per target: target codes {tuple(codes.shape)}, source codes "
                         f"{tuple(told.shape)}")
    return torch.cat([codes, told.to(codes.dtype)], dim=1)


# --------------------------------------------------------------------------- #
# Aging faces with a generator
# --------------------------------------------------------------------------- #


@torch.no_grad()
def age_all_groups(g: nn.Module, images: torch.Tensor,
                   sources: Optional[torch.Tensor] = None) -> attngan.GeneratorOutput:
    """Age every image to every group in one batched call.

    Parameters
    ----------
    g : nn.Module
        A generator (in eval mode for inference).
    images : torch.Tensor
        (N, C, H, W) in [-1, 1].
    sources : torch.Tensor, optional
        (N,) the images' own groups, for a generator that is told them
        (:func:`generator_codes`); None: unknown.

    Returns
    -------
    attngan.GeneratorOutput
        float32 tensors of shape (N, 5, C, H, W) (attention (N, 5, 1, H, W)).
    """
    n = images.shape[0]
    src = images.repeat_interleave(NUM_GROUPS, dim=0)
    groups = torch.arange(NUM_GROUPS, device=images.device).repeat(n)
    told = None if sources is None else sources.to(images.device).repeat_interleave(NUM_GROUPS, dim=0)
    out = g(src, generator_codes(g, groups, told))
    return attngan.GeneratorOutput(*(t.float().reshape(n, NUM_GROUPS, *t.shape[1:]) for t in out))


def aging_codes(steps_between: int, *, device: Any = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Soft condition codes that move from the youngest group to the oldest.

    Between neighbouring groups ``k`` and ``k + 1`` the code goes from one's
    one-hot code to the other's in ``steps_between`` steps: at position
    ``p = k + t`` (``0 <= t <= 1``) it is ``(1 - t) e_k + t e_(k+1)``.

    Parameters
    ----------
    steps_between : int
        Steps from one group to the next, >= 1.
    device : torch.device or str, optional
        Where the tensors are made.

    Returns
    -------
    positions : torch.Tensor
        (T,) in group units (0 = the youngest group), ``T = (K - 1) * steps_between + 1``.
    codes : torch.Tensor
        (T, K).

    Examples
    --------
    >>> positions, codes = aging_codes(2)
    >>> positions.tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    >>> codes[1].tolist(), codes.sum(1).tolist() == [1.0] * 9
    ([0.5, 0.5, 0.0, 0.0, 0.0], True)
    """
    if isinstance(steps_between, bool) or not isinstance(steps_between, int) or steps_between < 1:
        raise ValueError(f"steps_between must be a positive integer, got {steps_between!r}")
    positions = torch.arange((NUM_GROUPS - 1) * steps_between + 1, device=device) / steps_between
    lower = positions.floor().long().clamp(max=NUM_GROUPS - 2)
    t = (positions - lower)[:, None]
    codes = (1 - t) * attngan.one_hot(lower, NUM_GROUPS) + t * attngan.one_hot(lower + 1, NUM_GROUPS)
    return positions, codes


@torch.no_grad()
def age_gradually(g: nn.Module, image: torch.Tensor, *, steps_between: int = 8,
                  chunk: int = 16, source: Optional[int] = None) -> Tuple[torch.Tensor, attngan.GeneratorOutput]:
    """One face aged smoothly from the youngest group to the oldest.

    The generator is conditioned on :func:`aging_codes` (the library takes
    (B, K) codes as well as labels), ``chunk`` frames per call.

    Parameters
    ----------
    g : nn.Module
        A generator.
    image : torch.Tensor
        (3, H, W) in [-1, 1].
    steps_between : int, default 8
        Frames from one group to the next.
    chunk : int, default 16
        Frames per generator call.
    source : int, optional
        The face's own group, for a generator that is told it
        (:func:`generator_codes`); None: unknown.

    Returns
    -------
    positions : torch.Tensor
        (T,) in group units.
    out : attngan.GeneratorOutput
        float32 tensors (T, C, H, W) on ``image``'s device; at whole
        positions they are the groups' outputs.
    """
    positions, codes = aging_codes(steps_between, device=image.device)
    told = None if source is None else torch.full((len(codes),), source, dtype=torch.long, device=image.device)
    codes = generator_codes(g, codes, told).to(image.dtype)
    parts = [g(image[None].expand(len(c), -1, -1, -1), c) for c in codes.split(chunk)]
    return positions, attngan.GeneratorOutput(*(torch.cat([p[i] for p in parts]).float() for i in range(3)))
