"""AcGANs face aging assembled from the attngan pieces: the networks, the
training iteration and checkpoints.

``train.py`` drives these pieces; ``age.py``, ``evaluate.py``, ``export.py``,
``ablation.py`` and the benchmarks reuse them. Nothing here knows about the
data layout beyond batches of images (B, 3, H, W) in [-1, 1] with integer
age groups (B,); the settings come from :class:`config.TrainConfig`.

Examples
--------
>>> import torch
>>> import acgan
>>> from config import TrainConfig, validate_config
>>> cfg = validate_config(TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8, device="cpu"))
>>> g, d = acgan.build_generator(cfg), acgan.build_critic(cfg)
>>> opt_g, opt_d = acgan.build_optimizers(cfg, g, d, fused=False)
>>> step = acgan.AcGANStep(cfg, g, d, opt_g, opt_d)
>>> metrics = step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.tensor([0, 3]), 0)
>>> sorted(k for k in metrics if k.startswith("d_"))
['d_adv', 'd_cls', 'd_loss', 'd_skipped']
>>> acgan.age_all_groups(g.eval(), torch.zeros(1, 3, 64, 64)).image.shape   # (N, groups, C, H, W)
torch.Size([1, 5, 3, 64, 64])
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

import attngan
import cli
from ages import NUM_GROUPS
from config import MODEL_FIELDS, TrainConfig, config_from_dict
from files import atomic_file

#: Reasons a run ends with, recorded in the last checkpoint's ``extra["reason"]``.
FINISHED, TIME_BUDGET, INTERRUPTED, DIVERGED = "finished", "time budget reached", "interrupted", "diverged"


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #


class NoAttentionGenerator(nn.Module):
    """Ablation: the same network, but the output is the colour head alone.

    The attention head is still computed (so parameter counts match) but not
    used: ``image = color``.
    """

    def __init__(self, inner: attngan.AttentionGenerator) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> attngan.GeneratorOutput:
        out = self.inner(image, condition)
        return attngan.GeneratorOutput(out.color, torch.zeros_like(out.attention), out.color)


def init_weights(module: nn.Module, kind: str) -> nn.Module:
    """``kind="normal"``: every convolution weight drawn from N(0, 0.02) (the
    released code's initialisation), biases kept; ``"default"``: unchanged."""
    if kind == "normal":
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    m.weight.normal_(0.0, 0.02)
    return module


def build_generator(cfg: TrainConfig) -> nn.Module:
    g = attngan.AttentionGenerator(
        num_classes=NUM_GROUPS, base_channels=cfg.g_channels, num_downsamples=cfg.g_downsamples,
        num_residual_blocks=cfg.g_res_blocks, attention_bias=cfg.g_attention_bias, upsample=cfg.g_upsample,
        condition=cfg.g_condition, padding=cfg.g_padding,
    )
    init_weights(g, cfg.init or "default")
    return NoAttentionGenerator(g) if cfg.generator_mode == "no-attention" else g


def build_critic(cfg: TrainConfig) -> attngan.MultiHeadCritic:
    d = attngan.MultiHeadCritic(
        cfg.image_size, num_classes=NUM_GROUPS, base_channels=cfg.d_channels, max_channels=cfg.d_max_channels,
    )
    return init_weights(d, cfg.init or "default")


def build_optimizers(cfg: TrainConfig, g: nn.Module, d: nn.Module, fused: bool) -> Tuple[torch.optim.Adam, torch.optim.Adam]:
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
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


@torch.no_grad()
def age_all_groups(g: nn.Module, images: torch.Tensor) -> attngan.GeneratorOutput:
    """Age every image to every group in one batched call.

    Returns float32 tensors of shape (N, 5, C, H, W) (attention (N, 5, 1, H, W)).
    """
    n = images.shape[0]
    src = images.repeat_interleave(NUM_GROUPS, dim=0)
    groups = torch.arange(NUM_GROUPS, device=images.device).repeat(n)
    out = g(src, groups)
    return attngan.GeneratorOutput(*(t.float().reshape(n, NUM_GROUPS, *t.shape[1:]) for t in out))


def aging_codes(steps_between: int, *, device: Any = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Soft condition codes that move from the youngest group to the oldest.

    Between neighbouring groups ``k`` and ``k + 1`` the code goes from one's
    one-hot code to the other's in ``steps_between`` steps: at position
    ``p = k + t`` (``0 <= t <= 1``) it is ``(1 - t) e_k + t e_(k+1)``.
    Returns the positions (T,) in group units (0 = the youngest group) and
    the codes (T, K), ``T = (K - 1) * steps_between + 1``.

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
                  chunk: int = 16) -> Tuple[torch.Tensor, attngan.GeneratorOutput]:
    """One face (3, H, W) aged smoothly from the youngest group to the oldest.

    The generator is conditioned on :func:`aging_codes` (the library takes
    (B, K) codes as well as labels), ``chunk`` frames per call. Returns the
    positions (T,) in group units and the outputs, float32 tensors (T, C, H, W)
    on ``image``'s device; at whole positions they are the groups' outputs.
    """
    positions, codes = aging_codes(steps_between, device=image.device)
    parts = [g(image[None].expand(len(c), -1, -1, -1), c.to(image.dtype)) for c in codes.split(chunk)]
    return positions, attngan.GeneratorOutput(*(torch.cat([p[i] for p in parts]).float() for i in range(3)))


# --------------------------------------------------------------------------- #
# The training iteration
# --------------------------------------------------------------------------- #


@dataclass
class StepOptions:
    """How an iteration is computed; every combination computes the same losses.

    ``fused_critic``: real, fake and interpolates in one critic forward.
    Off by default: the penalty's gradient and its double backward then
    run through all 3B samples of that forward (2B of them with zero
    gradient), about 8% more FLOPs per iteration at 128 px and 1.11x slower
    on the CPU than a critic call on real+fake and one on the interpolates.
    ``reuse_fake``: one generator forward serves the critic and generator steps.
    ``autocast``: None, torch.bfloat16 or torch.float16.
    """

    fused_critic: bool = False
    reuse_fake: bool = True
    autocast: Optional[torch.dtype] = None
    channels_last: bool = False


def step_randomness(seed: int, step: int, rank: int, batch: int, device: torch.device,
                    world: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Target-group offsets and penalty weights of one iteration.

    Drawn for the whole global batch from (seed, step) alone and sliced for
    this process, so that a resumed run draws exactly what an uninterrupted
    one would (no generator state to save), and ``N`` processes draw what
    one process with the same global batch would.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    offsets = torch.randint(1, NUM_GROUPS, (batch * world,), generator=g)[rank * batch:(rank + 1) * batch]
    alpha = torch.rand(batch * world, generator=g)[rank * batch:(rank + 1) * batch]
    return offsets.to(device, non_blocking=True), alpha.to(device, non_blocking=True)


def flip_mask(seed: int, step: int, rank: int, batch: int, device: torch.device, world: int = 1) -> torch.Tensor:
    """Which images of one iteration ``--hflip`` mirrors: (B,) booleans, each true with probability 1/2.

    Drawn from (seed, step) like :func:`step_randomness` (so resumed and
    multi-process runs draw alike), from a stream of its own, so turning the
    flips on leaves the targets and penalty weights of every iteration as
    they were.
    """
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) ^ 0x5EED_F11B)
    flips = torch.rand(batch * world, generator=g)[rank * batch:(rank + 1) * batch] < 0.5
    return flips.to(device, non_blocking=True)


class AcGANStep:
    """One AcGANs training iteration: a critic update, then (every
    ``n_critic``-th iteration) a generator update.

    Losses follow Eq. (5): the critic minimises
    ``lambda_adv * (D(fake) - D(real)) + lambda_gp * GP + lambda_cls * CE(D_y(real), y_s)``
    (``lambda_adv * lambda_gp * GP`` with ``gp_weighting="nested"``);
    the generator minimises
    ``-lambda_adv * D(fake) + lambda_att * L_att(A) + lambda_cls * CE(D_y(fake), y_t)``
    (+ ``lambda_l1 * |fake - input|`` for the pixel-loss ablation, + ``lambda_rec * |G(fake, y_s) - input|``,
    the cycle reconstruction of GANimation and StarGAN, where ``--lambda-rec`` is set).
    With ``hflip`` each real image is mirrored left-right with probability 1/2 first (:func:`flip_mask`).
    With ``gp_every=K`` (lazy penalty) the penalty term is computed only
    on iterations whose ``step % K == 0``, with its weight multiplied by K;
    ``gp`` is then in the metrics of those iterations only.

    The returned metrics are detached tensors on the device, ``d_skipped``
    and ``g_skipped`` included (1.0 where a non-finite loss or gradient
    skipped the update). With fused optimisers (as ``train.py`` builds them)
    the iteration never synchronises with the host.
    """

    def __init__(self, cfg: TrainConfig, generator: nn.Module, critic: nn.Module,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 options: Optional[StepOptions] = None, *, rank: int = 0, world: int = 1,
                 scaler: Optional[Any] = None) -> None:
        self.cfg = cfg
        self.g, self.d = generator, critic
        self.opt_g, self.opt_d = opt_g, opt_d
        self.options = options or StepOptions()
        self.rank, self.world = rank, world
        self.scaler = scaler
        self.attention_loss = attngan.AttentionRegularizer(lambda_tv=cfg.lambda_tv, form=cfg.attention_form)
        self.d_plain = unwrap(critic)

    def _autocast(self, device: torch.device):
        dtype = self.options.autocast
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def _critic_scores(self, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor, with_gp: bool = True):
        b = real.shape[0]
        if not with_gp:  # a lazy-penalty step: no interpolates
            out = self.d(torch.cat([real, fake]))
            return out.realness[:b], out.realness[b:], None, out.logits[:b], None
        mixed = attngan.random_interpolates(real, fake, alpha=alpha)
        if self.options.fused_critic:
            out = self.d(torch.cat([real, fake, mixed]))
            realness, logits = out.realness, out.logits
            return realness[:b], realness[b:2 * b], realness[2 * b:], logits[:b], mixed
        out_rf = self.d(torch.cat([real, fake]))
        out_m = self.d(mixed)
        return out_rf.realness[:b], out_rf.realness[b:], out_m.realness, out_rf.logits[:b], mixed

    def _apply(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params: List[torch.Tensor]) -> torch.Tensor:
        """Backward and step unless the loss or a gradient is non-finite.

        Returns a 0-d device tensor, 1.0 where the update was skipped and 0.0
        where it was applied. With a fused optimiser the check is handed to
        the optimiser as its ``found_inf`` (as ``GradScaler`` does): it skips
        the update, its step count and moments included, on the device,
        without a host synchronisation. Other optimisers read the flag back.
        """
        opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)
        else:
            loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else loss.new_zeros(())
        skipped = (~(torch.isfinite(loss.detach()) & torch.isfinite(norm))).float()
        if self.scaler is not None:
            self.scaler.step(opt)  # skips by itself on inf gradients
            self.scaler.update()  # per update: the separate penalty steps the critic twice
        elif opt.defaults.get("fused"):
            opt.found_inf, opt.grad_scale = skipped, None
            try:
                opt.step()
            finally:
                del opt.found_inf, opt.grad_scale
        elif not bool(skipped):
            opt.step()
        return skipped

    def __call__(self, real: torch.Tensor, labels: torch.Tensor, step: int) -> Dict[str, Any]:
        cfg, opt = self.cfg, self.options
        device = real.device
        if opt.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        b = real.shape[0]
        offsets, alpha = step_randomness(cfg.seed, step, self.rank, b, device, self.world)
        if cfg.hflip:
            flips = flip_mask(cfg.seed, step, self.rank, b, device, self.world)
            real = torch.where(flips.view(b, 1, 1, 1), real.flip(-1), real)
        target = (labels + offsets) % NUM_GROUPS
        # the library checks label values only where that is free (eager, CPU): no sync on a GPU
        source_codes = attngan.one_hot(labels, NUM_GROUPS)
        target_codes = attngan.one_hot(target, NUM_GROUPS)
        update_g = step >= cfg.critic_warmup and step % cfg.n_critic == cfg.n_critic - 1
        # lazy penalty (--gp-every K): only every K-th critic step, weighted by K
        with_gp = step % cfg.gp_every == 0
        metrics: Dict[str, Any] = {}

        # ---- critic ---------------------------------------------------- #
        with self._autocast(device):
            if update_g and opt.reuse_fake:
                gen = self.g(real, target_codes)
                fake = gen.image.detach()
            else:
                with torch.no_grad():
                    fake = self.g(real, target_codes).image
            fake = fake.float()
            real_s, fake_s, mixed_s, real_logits, mixed = self._critic_scores(real, fake, alpha, with_gp)
            d_adv = attngan.wgan_critic_loss(real_s.float(), fake_s.float())
            d_cls = attngan.classification_loss(real_logits, source_codes)
        gp_scale = self.scaler.get_scale() if self.scaler is not None else None
        d_params = list(self.d.parameters())
        gp_weight = cfg.lambda_gp * (cfg.lambda_adv if cfg.gp_weighting == "nested" else 1.0) * cfg.gp_every
        d_loss = cfg.lambda_adv * d_adv + cfg.lambda_cls * d_cls
        if with_gp:
            gp = attngan.gradient_norm_penalty(mixed_s.float(), mixed, grad_scale=gp_scale,
                                               create_graph=cfg.gp_mode == "joint", retain_graph=True)
            metrics["gp"] = gp.detach()  # logged on penalty steps only
        if with_gp and cfg.gp_mode == "joint":
            d_loss = d_loss + gp_weight * gp
            d_skipped = self._apply(d_loss, self.opt_d, d_params)
        else:  # released code: adversarial+classification step, then a penalty step
            d_skipped = self._apply(d_loss, self.opt_d, d_params)
            if with_gp:
                with self._autocast(device):
                    mixed2 = attngan.random_interpolates(real, fake, alpha=alpha)
                    scores2 = self.d(mixed2).realness
                gp2 = attngan.gradient_norm_penalty(scores2.float(), mixed2, grad_scale=gp_scale)
                d_skipped = torch.maximum(d_skipped, self._apply(gp_weight * gp2, self.opt_d, d_params))
        metrics.update(d_loss=d_loss.detach(), d_adv=d_adv.detach(), d_cls=d_cls.detach(), d_skipped=d_skipped)

        # ---- generator ------------------------------------------------- #
        if update_g:
            for p in d_params:
                p.requires_grad_(False)
            try:
                with self._autocast(device):
                    if not opt.reuse_fake:
                        gen = self.g(real, target_codes)
                    scored = self.d_plain(gen.image)
                    g_adv = attngan.wgan_generator_loss(scored.realness.float())
                    g_cls = attngan.classification_loss(scored.logits, target_codes)
                    g_att = self.attention_loss(gen.attention.float())
                    g_loss = cfg.lambda_adv * g_adv + cfg.lambda_att * g_att + cfg.lambda_cls * g_cls
                    if cfg.lambda_l1 > 0:
                        g_l1 = (gen.image.float() - real).abs().mean()
                        g_loss = g_loss + cfg.lambda_l1 * g_l1
                        metrics["g_l1"] = g_l1.detach()
                    if cfg.lambda_rec > 0:  # cycle: back to the source group must give the input
                        back = self.g(gen.image, source_codes).image
                        g_rec = (back.float() - real).abs().mean()
                        g_loss = g_loss + cfg.lambda_rec * g_rec
                        metrics["g_rec"] = g_rec.detach()
                g_skipped = self._apply(g_loss, self.opt_g, list(self.g.parameters()))
            finally:
                for p in d_params:
                    p.requires_grad_(True)
            stats = attngan.mask_statistics(gen.attention)
            metrics.update(g_loss=g_loss.detach(), g_adv=g_adv.detach(), g_cls=g_cls.detach(),
                           g_att=g_att.detach(), attention_mean=stats.mean, attention_near_zero=stats.near_zero,
                           attention_near_one=stats.near_one, attention_spread=stats.spread,
                           g_skipped=g_skipped)
        return metrics


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #


class CheckpointError(ValueError):
    """A checkpoint is unreadable, damaged, holds non-finite weights, or does not fit the model."""


class CheckpointWarning(UserWarning):
    """A checkpoint is used, but something about it could not be verified."""


#: ``format`` of a training checkpoint (``.pt``) and of an exported generator (``.safetensors``).
CHECKPOINT_FORMAT, EXPORT_FORMAT = "attngan-acgan/1", "attngan-acgan-generator/1"
#: The parts of a training checkpoint that hold tensors; the digest covers them all.
TENSOR_PARTS = ("generator", "critic", "opt_g", "opt_d")
#: The averaged generator (``--g-ema``): a tensor part of the checkpoints of runs that keep one.
AVERAGE_PART = "generator_ema"
#: Reason recorded in the checkpoint an unexpected error made train.py write.
FAILED = "stopped by an error"


def all_finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _tensors(tree: Any, path: str = "") -> Any:
    """``(path, tensor)`` of every tensor in nested dicts / lists, in a fixed order (dict keys sorted as text)."""
    if isinstance(tree, torch.Tensor):
        yield path, tree
    elif isinstance(tree, dict):
        for key in sorted(tree, key=str):
            yield from _tensors(tree[key], f"{path}/{key}")
    elif isinstance(tree, (list, tuple)):
        for i, item in enumerate(tree):
            yield from _tensors(item, f"{path}/{i}")


def tensor_digest(tree: Any) -> str:
    """SHA-256 over every tensor of ``tree`` (nested dicts and lists): its path, dtype, shape and bytes.

    The integrity digest stored in checkpoints and exported generators: it
    does not depend on the device or the memory layout, only on the values,
    so a flipped byte anywhere in tensor data changes it.

    >>> a = {"w": torch.ones(2, 2), "b": [torch.zeros(3)]}
    >>> tensor_digest(a) == tensor_digest({"b": [torch.zeros(3)], "w": torch.ones(2, 2)})
    True
    >>> b = {"w": torch.ones(2, 2), "b": [torch.zeros(3)]}
    >>> b["w"][0, 1] = 1.0000001
    >>> tensor_digest(a) == tensor_digest(b)
    False
    """
    h = hashlib.sha256()
    for path, t in _tensors(tree):
        h.update(f"{path}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _nonfinite(tree: Any) -> List[str]:
    """Paths of the floating-point tensors of ``tree`` that hold NaN or infinity."""
    return [path for path, t in _tensors(tree)
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())]


def _refuse_nonfinite(state: Dict[str, Any], parts: Any, what: str) -> None:
    for part in parts:
        bad = _nonfinite(state.get(part))
        if bad:
            more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
            raise CheckpointError(f"{what}: the {_PART_NAMES.get(part, part)} has non-finite values (NaN or "
                                  f"infinity) in {bad[0].lstrip('/')}{more}; these weights cannot be used")


_PART_NAMES = {"generator": "generator", AVERAGE_PART: "averaged generator", "critic": "critic",
               "opt_g": "generator's optimiser state", "opt_d": "critic's optimiser state"}


def _tensor_parts(state: Dict[str, Any]) -> Tuple[str, ...]:
    return TENSOR_PARTS + ((AVERAGE_PART,) if AVERAGE_PART in state else ())


def save_checkpoint(path: str, cfg: TrainConfig, g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer,
                    opt_d: torch.optim.Optimizer, step: int, extra: Optional[Dict[str, Any]] = None,
                    average: Optional[nn.Module] = None) -> None:
    """Save a training checkpoint atomically, with the integrity digest of its tensors
    (``state["digest"]``); refuse to save non-finite weights (FloatingPointError).

    ``average``: the averaged generator (:func:`build_average`), saved as the
    generator ``state[AVERAGE_PART]`` beside the trained one.

    A failed write raises :class:`files.WriteError` and leaves the previous file at ``path`` as it was.
    """
    g, d = unwrap(g), unwrap(d)
    average = average.module if isinstance(average, torch.optim.swa_utils.AveragedModel) else average
    for name, net in (("generator", g), ("critic", d), ("averaged generator", average)):
        if net is not None and not all_finite(net):
            raise FloatingPointError(f"refusing to write {path}: the {name} has non-finite weights")
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.to_dict(),
        "step": step,
        "generator": g.state_dict(),
        "critic": d.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "extra": extra or {},
    }
    if average is not None:
        state[AVERAGE_PART] = average.state_dict()
    parts = _tensor_parts(state)
    state["digest"] = {"sha256": tensor_digest({k: state[k] for k in parts}), "covers": list(parts)}
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read and verify a training checkpoint (``.pt``) or an exported generator (``.safetensors``).

    The one reader of both formats, with clear errors (:class:`CheckpointError`).
    Either gives a dict with ``"format"``, ``"config"`` (the training
    config as a dict; :func:`config_of` checks it), ``"step"`` (None for an
    export), ``"extra"`` (with the ``"reason"`` the run ended for; empty for
    an export) and ``"generator"`` (its state dict); a training checkpoint
    also holds ``"critic"``, ``"opt_g"`` and ``"opt_d"``. ``.pt`` files are
    loaded with ``weights_only=True``.

    Verified before anything uses them: the layout of the file; the
    integrity digest of its tensors (a file damaged after it was written is
    refused; a file from before digests were stored is read with a
    :class:`CheckpointWarning`); and the finiteness of every tensor (NaN or
    infinite weights are refused).
    """
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} is not a regular file")
    if path.endswith(".safetensors"):
        return _load_export(path, map_location)
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; say so before the unpickler does
        raise CheckpointError(
            f"cannot read checkpoint {path}: neither a training checkpoint (.pt, written by train.py) "
            "nor an exported .safetensors generator")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an attngan AcGAN checkpoint")
    for key, kind in (("config", dict), ("extra", dict), *((part, dict) for part in _tensor_parts(state))):
        if not isinstance(state.get(key), kind):
            raise CheckpointError(f"checkpoint {path} is malformed: its {key!r} is "
                                  f"{type(state.get(key)).__name__}, not a {kind.__name__}")
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {path} is malformed: its 'step' is {cli.one_line(repr(step), 60)}, "
                              "not an integer >= 0")
    _verify_digest(state.get("digest"), {k: state[k] for k in _tensor_parts(state)}, path)
    _refuse_nonfinite(state, _tensor_parts(state), f"checkpoint {path}")
    return state


def _verify_digest(recorded: Any, tensors: Any, path: str) -> None:
    if recorded is None:
        warnings.warn(f"{path} carries no integrity digest (written by an older version): its weights are checked "
                      "for NaN and infinity only", CheckpointWarning, stacklevel=3)
        return
    value = recorded.get("sha256") if isinstance(recorded, dict) else recorded
    if not isinstance(value, str):
        raise CheckpointError(f"checkpoint {path} is malformed: its integrity digest is not a sha256 hex string")
    if tensor_digest(tensors) != value:
        raise CheckpointError(f"checkpoint {path} is damaged: its tensors do not match the integrity digest written "
                              "with them (the file changed after it was saved: a disk or copy error?); use another "
                              "checkpoint")


def _load_export(path: str, map_location: Any) -> Dict[str, Any]:
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError("reading .safetensors needs the 'export' extra: "
                              + cli.install_hint("export")) from None
    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
        state_dict = load_file(path, device=str(map_location))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read {path}: {cli.one_line(exc, 300)}") from None
    if "config" not in meta:
        raise CheckpointError(f"{path} carries no attngan config metadata")
    if meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not an attngan exported generator (format {meta.get('format')!r})")
    try:
        config = json.loads(meta["config"])
    except Exception as exc:  # noqa: BLE001 - ValueError, or RecursionError for absurd nesting
        raise CheckpointError(f"cannot use checkpoint {path}: malformed config ({cli.one_line(exc, 200)})") from None
    _verify_digest(meta.get("digest"), state_dict, path)
    state = {"format": meta.get("format"), "config": config, "step": None, "extra": {}, "generator": state_dict}
    _refuse_nonfinite(state, ("generator",), f"checkpoint {path}")
    return state


def config_of(state: Dict[str, Any], path: str) -> TrainConfig:
    """The checked training config of a checkpoint read by :func:`load_checkpoint`.

    Every value is checked for its field's type and range
    (:func:`config.config_from_dict`); a bad one is a :class:`CheckpointError`
    naming the file and the field.
    """
    try:
        return config_from_dict(state.get("config"))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} has an unusable config: {exc}") from None


def check_compatible(saved: Dict[str, Any], cfg: TrainConfig, path: str) -> None:
    """Refuse a checkpoint config (a dict) whose networks differ from the configured ones."""
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs requested {getattr(cfg, k)!r}"
             for k in MODEL_FIELDS if saved.get(k) != getattr(cfg, k)]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not fit this model:\n  " + "\n  ".join(diffs))


def generator_of(state: Dict[str, Any], path: str, *, weights: str = "average") -> Tuple[nn.Module, TrainConfig]:
    """The generator (in eval mode) and config of a checkpoint read by :func:`load_checkpoint`.

    ``weights``: ``"average"`` takes the averaged generator of a run trained
    with ``--g-ema`` and the trained weights otherwise; ``"trained"`` always
    takes the trained weights (an error for an export, which holds one
    generator: the average where there was one).

    Any failure (malformed config, weights that do not fit) is raised as
    :class:`CheckpointError` with a one-line message naming ``path``.
    """
    cfg = config_of(state, path)
    try:
        g = build_generator(cfg)
    except Exception as exc:  # noqa: BLE001 - a config can fail to build in many ways
        raise CheckpointError(f"cannot use checkpoint {path}: its config builds no generator "
                              f"({type(exc).__name__}: {cli.one_line(exc, 200)})") from None
    if weights not in ("average", "trained"):
        raise ValueError(f"weights must be 'average' or 'trained', got {weights!r}")
    part = AVERAGE_PART if weights == "average" and AVERAGE_PART in state else "generator"
    if weights == "trained" and state.get("format") == EXPORT_FORMAT and cfg.g_ema:
        raise CheckpointError(f"{path} is an export of the averaged generator: its trained weights are in the "
                              "training checkpoint")
    try:
        g.load_state_dict(state.get(part))
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not fit the generator of its config: {first}") from None
    return g.eval(), cfg


def generator_from_checkpoint(path: str, map_location: Any = "cpu", *,
                              weights: str = "average") -> Tuple[nn.Module, TrainConfig]:
    """The generator and config of a ``.pt`` checkpoint or an exported ``.safetensors`` file
    (``weights``: see :func:`generator_of`)."""
    return generator_of(load_checkpoint(path, map_location), path, weights=weights)


def export_safetensors(checkpoint: str, out: str) -> None:
    """Write the generator of a checkpoint, with its config and the integrity digest of its
    tensors, as safetensors to ``out``."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise CheckpointError("exporting needs the 'export' extra: " + cli.install_hint("export")) from None
    g, cfg = generator_from_checkpoint(checkpoint)
    tensors = {k: v.contiguous() for k, v in g.state_dict().items()}
    save_file(tensors, out, metadata={"config": json.dumps(cfg.to_dict()), "format": EXPORT_FORMAT,
                                      "digest": tensor_digest(tensors)})
