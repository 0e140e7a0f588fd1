"""AcGANs face aging assembled from the attngan pieces: configuration, models,
the training step, checkpoints and sample grids.

``train.py`` drives these pieces; ``age.py``, ``evaluate.py`` and the
benchmarks reuse them. Nothing here knows about the data layout beyond
batches of images (B, 3, H, W) in [-1, 1] with integer age groups (B,).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

import attngan

NUM_GROUPS = 5
GROUP_NAMES = ("10-20", "21-30", "31-40", "41-50", "51+")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
PRESETS = ("auto", "paper", "cpu-demo")


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #


def _opt(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Every setting of a training run; each field is a ``train.py`` flag.

    ``None`` means "taken from the preset" (see :data:`PRESET_VALUES`).
    """

    # data
    data: str = _opt("synthetic", "'synthetic' (built-in faces) or a dataset folder / CSV")
    data_kind: str = _opt("auto", "naming convention of --data: auto, morph, cacd, utkface, fgnet, csv")
    num_subjects: Optional[int] = _opt(None, "synthetic faces: number of subjects")
    images_per_subject: int = _opt(5, "synthetic faces: images per subject")
    test_fraction: float = _opt(0.1, "held-out fraction (split by subject when subjects are known)")
    workers: Optional[int] = _opt(None, "DataLoader worker processes (default: 0 for cached data, else 4 per GPU)")
    # run
    out: str = _opt("runs/acgan", "output folder")
    preset: str = _opt("auto", "paper (224 px, full networks), cpu-demo (64 px, narrow, ~12 min on 2 cores); auto picks by device")
    image_size: Optional[int] = _opt(None, "training resolution (multiple of 4)")
    batch_size: Optional[int] = _opt(None, "global batch size (split across processes)")
    epochs: Optional[int] = _opt(None, "number of epochs")
    max_steps: Optional[int] = _opt(None, "stop after this many iterations (overrides --epochs)")
    max_minutes: Optional[float] = _opt(None, "stop (with checkpoint and samples) after this many minutes")
    seed: int = _opt(0, "seed of data, split, initialisation and training randomness")
    device: str = _opt("auto", "auto, cpu or cuda")
    precision: str = _opt("auto", "auto (bf16 where supported), fp32, bf16 or fp16")
    channels_last: Optional[bool] = _opt(None, "channels_last memory format (default: on)")
    compile: bool = _opt(False, "torch.compile the generator")
    resume: bool = _opt(False, "continue from OUT/checkpoints/last.pt")
    # networks
    g_channels: Optional[int] = _opt(None, "generator base width (paper: 64)")
    g_res_blocks: Optional[int] = _opt(None, "generator residual blocks (paper: 6)")
    g_downsamples: int = _opt(2, "generator down-samplings (paper: 2)")
    g_upsample: Optional[str] = _opt(None, "generator up-sampling: transpose (4x4 transposed convs, paper lineage) or nearest (+3x3 conv)")
    g_attention_bias: Optional[float] = _opt(None, "initial bias of the attention head (>0 starts near copying the input)")
    d_channels: Optional[int] = _opt(None, "critic base width (paper: 64)")
    d_max_channels: int = _opt(1024, "critic width cap (released code: 4096 at 224 px)")
    init: Optional[str] = _opt(None, "weight initialisation: default (PyTorch's) or normal (conv weights N(0, 0.02), released code)")
    generator_mode: str = _opt("attention", "attention (AcGANs) or no-attention (output = colour head; ablation)")
    # losses (paper section 3.1)
    lambda_adv: float = _opt(10.0, "lambda_adv, adversarial weight")
    lambda_att: float = _opt(2.0, "lambda_att, attention-loss weight")
    lambda_cls: float = _opt(100.0, "lambda_cls, age-classification weight")
    lambda_gp: float = _opt(10.0, "lambda_gp, gradient-penalty weight")
    lambda_tv: float = _opt(5e-5, "lambda_TV (paper: 5e-5; times lambda_att = 2 it is the released code's 1e-4)")
    lambda_l1: float = _opt(0.0, "weight of an L1 pixel loss to the input (ablation baseline; paper: 0)")
    attention_form: Optional[str] = _opt(None, "paper (squared TV + RMS of A, resolution independent), euclidean (squared TV + ||A||_2 over all pixels, grows with image size) or released (absolute TV + mean A)")
    gp_mode: str = _opt("joint", "joint (penalty in the critic loss, paper) or separate (own backward+step, released code)")
    gp_weighting: str = _opt("absolute", "absolute (lambda_gp * GP, as WGAN-GP and the released code) or nested (lambda_adv * lambda_gp * GP, Eq. 5 read literally)")
    n_critic: int = _opt(1, "critic iterations per generator update (paper: 1; released code: 2)")
    critic_warmup: Optional[int] = _opt(None, "first iterations that train only the critic (paper: 0)")
    # optimiser
    lr: float = _opt(1e-4, "Adam learning rate (both networks)")
    beta1: float = _opt(0.5, "Adam beta1")
    beta2: float = _opt(0.999, "Adam beta2")
    lr_decay: float = _opt(1.0, "multiply the lr by this every --lr-decay-every epochs (released: 0.9 every 10)")
    lr_decay_every: int = _opt(10, "epochs between lr decays")
    # logging and safety
    log_every: int = _opt(10, "iterations between metric lines")
    sample_every: Optional[int] = _opt(None, "iterations between sample grids")
    checkpoint_every: Optional[int] = _opt(None, "iterations between checkpoints")
    num_samples: int = _opt(4, "faces in the sample grids")
    max_nonfinite: int = _opt(20, "stop after this many consecutive skipped (non-finite) steps")
    progress: bool = _opt(True, "show a progress bar")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


#: Values a preset gives to the fields left at ``None``.
PRESET_VALUES: Dict[str, Dict[str, Any]] = {
    "paper": dict(
        image_size=224, batch_size=64, epochs=100, g_channels=64, g_res_blocks=6, d_channels=64,
        num_subjects=2000, sample_every=1000, checkpoint_every=1000, channels_last=True,
        attention_form="paper", critic_warmup=0, g_attention_bias=0.0, g_upsample="transpose", init="default",
    ),
    "cpu-demo": dict(
        image_size=64, batch_size=16, epochs=1000, max_steps=3000, max_minutes=12.0,
        g_channels=32, g_res_blocks=3, d_channels=32, num_subjects=500,
        sample_every=250, checkpoint_every=250, channels_last=True,
        # The paper's recipe at a smaller size, width and budget (see the guide
        # for the measured comparison of the stabilisers, none of which is on).
        attention_form="paper", critic_warmup=0, g_attention_bias=0.0, g_upsample="transpose", init="default",
    ),
}

#: Fields that define the networks: a checkpoint only fits a model with equal values.
MODEL_FIELDS = ("image_size", "g_channels", "g_res_blocks", "g_downsamples", "g_upsample", "d_channels",
                "d_max_channels", "generator_mode")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but CUDA is not available on this machine")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    if name != "auto":
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("--precision bf16 is not supported by this GPU; use fp16 or fp32")
        if name == "fp16" and device.type == "cpu":
            raise ValueError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - depends on the build
        return False


def validate_config(cfg: TrainConfig) -> TrainConfig:
    """Fill preset values and check every field; raise ValueError naming the flag."""
    def bad(flag: str, msg: str) -> None:
        raise ValueError(f"--{flag.replace('_', '-')}: {msg}")

    if cfg.preset not in PRESETS:
        bad("preset", f"must be one of {', '.join(PRESETS)}, got {cfg.preset!r}")
    if cfg.device not in DEVICES:
        bad("device", f"must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if cfg.precision not in PRECISIONS:
        bad("precision", f"must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    preset = cfg.preset
    if preset == "auto":
        preset = "paper" if resolve_device(cfg.device).type == "cuda" else "cpu-demo"
    cfg = dataclasses.replace(cfg, preset=preset)
    explicit_stop = cfg.max_steps is not None or cfg.epochs is not None
    for key, value in PRESET_VALUES[preset].items():
        if key in ("max_steps", "max_minutes") and explicit_stop:
            continue  # the user chose the length of the run
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    for name in ("batch_size", "epochs", "images_per_subject", "num_subjects", "g_channels", "d_channels",
                 "d_max_channels", "log_every", "sample_every", "checkpoint_every", "num_samples",
                 "n_critic", "lr_decay_every", "max_nonfinite"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            bad(name, f"must be a positive integer, got {value}")
    for name in ("g_res_blocks", "g_downsamples"):
        if getattr(cfg, name) < 0:
            bad(name, f"must be >= 0, got {getattr(cfg, name)}")
    if cfg.critic_warmup < 0:
        bad("critic_warmup", f"must be >= 0, got {cfg.critic_warmup}")
    if cfg.max_steps is not None and cfg.max_steps < 0:
        bad("max_steps", f"must be >= 0, got {cfg.max_steps}")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        bad("max_minutes", f"must be > 0, got {cfg.max_minutes}")
    multiple = 2 ** cfg.g_downsamples
    if cfg.image_size < 16 or cfg.image_size % multiple:
        bad("image_size", f"must be >= 16 and a multiple of {multiple} (2 ** --g-downsamples), got {cfg.image_size}")
    if cfg.data == "synthetic" and not 64 <= cfg.image_size <= 224:
        bad("image_size", f"synthetic faces render at 64 to 224 pixels, got {cfg.image_size}")
    for name in ("lambda_adv", "lambda_att", "lambda_cls", "lambda_gp", "lambda_tv", "lambda_l1", "lr"):
        value = getattr(cfg, name)
        if not math.isfinite(value) or value < 0:
            bad(name, f"must be a finite number >= 0, got {value}")
    if not cfg.lr > 0:
        bad("lr", f"must be > 0, got {cfg.lr}")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, name) < 1:
            bad(name, f"must lie in [0, 1), got {getattr(cfg, name)}")
    if not 0 < cfg.lr_decay <= 1:
        bad("lr_decay", f"must lie in (0, 1], got {cfg.lr_decay}")
    if not 0 < cfg.test_fraction < 1:
        bad("test_fraction", f"must lie in (0, 1), got {cfg.test_fraction}")
    if cfg.workers is not None and cfg.workers < 0:
        bad("workers", f"must be >= 0, got {cfg.workers}")
    for name, choices in (("generator_mode", ("attention", "no-attention")),
                          ("attention_form", ("paper", "euclidean", "released")), ("gp_mode", ("joint", "separate")),
                          ("gp_weighting", ("absolute", "nested")), ("init", ("default", "normal")), ("g_upsample", ("transpose", "nearest")),
                          ("data_kind", ("auto", "morph", "cacd", "utkface", "fgnet", "csv"))):
        if getattr(cfg, name) not in choices:
            bad(name, f"must be one of {', '.join(choices)}, got {getattr(cfg, name)!r}")
    return cfg


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


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


# --------------------------------------------------------------------------- #
# The training iteration
# --------------------------------------------------------------------------- #


@dataclass
class StepOptions:
    """How an iteration is computed; every combination computes the same losses.

    ``fused_critic``: real, fake and interpolates in one critic forward.
    ``reuse_fake``: one generator forward serves the critic and generator steps.
    ``autocast``: None, torch.bfloat16 or torch.float16.
    """

    fused_critic: bool = True
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


def codes_of(labels: torch.Tensor) -> torch.Tensor:
    """One-hot (B, 5) float codes of integer groups (B,), without a host sync."""
    return torch.zeros(labels.shape[0], NUM_GROUPS, device=labels.device).scatter_(1, labels.long().unsqueeze(1), 1.0)


class AcGANStep:
    """One AcGANs training iteration: a critic update, then (every
    ``n_critic``-th iteration) a generator update.

    Losses follow Eq. (5): the critic minimises
    ``lambda_adv * (D(fake) - D(real)) + lambda_gp * GP + lambda_cls * CE(D_y(real), y_s)``
    (``lambda_adv * lambda_gp * GP`` with ``gp_weighting="nested"``);
    the generator minimises
    ``-lambda_adv * D(fake) + lambda_att * L_att(A) + lambda_cls * CE(D_y(fake), y_t)``
    (+ ``lambda_l1 * |fake - input|`` for the pixel-loss ablation).

    The returned metrics are detached tensors on the device: the iteration
    never synchronises with the host except to reject a non-finite update.
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

    def _critic_scores(self, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor):
        mixed = attngan.random_interpolates(real, fake, alpha=alpha)
        b = real.shape[0]
        if self.options.fused_critic:
            out = self.d(torch.cat([real, fake, mixed]))
            realness, logits = out.realness, out.logits
            return realness[:b], realness[b:2 * b], realness[2 * b:], logits[:b], mixed
        out_rf = self.d(torch.cat([real, fake]))
        out_m = self.d(mixed)
        return out_rf.realness[:b], out_rf.realness[b:], out_m.realness, out_rf.logits[:b], mixed

    def _apply(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params: List[torch.Tensor]) -> bool:
        """Backward and step unless the loss or a gradient is non-finite.

        Returns whether the update was applied (the one host synchronisation
        of an update).
        """
        opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)
        else:
            loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else loss.new_zeros(())
        ok = bool(torch.isfinite(loss.detach()) & torch.isfinite(norm))
        if self.scaler is not None:
            self.scaler.step(opt)  # skips by itself on inf gradients
            self.scaler.update()  # per update: the separate penalty steps the critic twice
        elif ok:
            opt.step()
        return ok

    def __call__(self, real: torch.Tensor, labels: torch.Tensor, step: int) -> Dict[str, Any]:
        cfg, opt = self.cfg, self.options
        device = real.device
        if opt.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        b = real.shape[0]
        offsets, alpha = step_randomness(cfg.seed, step, self.rank, b, device, self.world)
        target = (labels + offsets) % NUM_GROUPS
        # One-hot codes built with scatter: integer labels would be range-checked
        # on the host by the library's validation (a device synchronisation).
        source_codes = codes_of(labels)
        target_codes = codes_of(target)
        update_g = step >= cfg.critic_warmup and step % cfg.n_critic == cfg.n_critic - 1
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
            real_s, fake_s, mixed_s, real_logits, mixed = self._critic_scores(real, fake, alpha)
            d_adv = attngan.wgan_critic_loss(real_s.float(), fake_s.float())
            d_cls = attngan.classification_loss(real_logits, source_codes)
        gp_scale = self.scaler.get_scale() if self.scaler is not None else None
        gp = attngan.gradient_norm_penalty(mixed_s.float(), mixed, grad_scale=gp_scale,
                                           create_graph=cfg.gp_mode == "joint", retain_graph=True)
        d_params = list(self.d.parameters())
        gp_weight = cfg.lambda_gp * (cfg.lambda_adv if cfg.gp_weighting == "nested" else 1.0)
        if cfg.gp_mode == "joint":
            d_loss = cfg.lambda_adv * d_adv + gp_weight * gp + cfg.lambda_cls * d_cls
            d_ok = self._apply(d_loss, self.opt_d, d_params)
        else:  # released code: adversarial+classification step, then a penalty step
            d_loss = cfg.lambda_adv * d_adv + cfg.lambda_cls * d_cls
            d_ok = self._apply(d_loss, self.opt_d, d_params)
            with self._autocast(device):
                mixed2 = attngan.random_interpolates(real, fake, alpha=alpha)
                scores2 = self.d(mixed2).realness
            gp2 = attngan.gradient_norm_penalty(scores2.float(), mixed2, grad_scale=gp_scale)
            d_ok = d_ok and self._apply(gp_weight * gp2, self.opt_d, d_params)
        metrics.update(d_loss=d_loss.detach(), d_adv=d_adv.detach(), d_cls=d_cls.detach(), gp=gp.detach(),
                       d_skipped=float(not d_ok))

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
                g_ok = self._apply(g_loss, self.opt_g, list(self.g.parameters()))
            finally:
                for p in d_params:
                    p.requires_grad_(True)
            stats = attngan.mask_statistics(gen.attention)
            metrics.update(g_loss=g_loss.detach(), g_adv=g_adv.detach(), g_cls=g_cls.detach(),
                           g_att=g_att.detach(), attention_mean=stats.mean, attention_near_zero=stats.near_zero,
                           attention_near_one=stats.near_one, attention_spread=stats.spread,
                           g_skipped=float(not g_ok))
        return metrics


# --------------------------------------------------------------------------- #
# Checkpoints
# --------------------------------------------------------------------------- #


class CheckpointError(ValueError):
    """A checkpoint is unreadable or does not fit the model."""


def atomic_torch_save(obj: Any, path: str) -> None:
    """Write ``obj`` to a temporary file in the same folder, fsync, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def all_finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def save_checkpoint(path: str, cfg: TrainConfig, g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer,
                    opt_d: torch.optim.Optimizer, step: int, extra: Optional[Dict[str, Any]] = None) -> None:
    """Save a training checkpoint atomically; refuse to save non-finite weights."""
    g, d = unwrap(g), unwrap(d)
    for name, net in (("generator", g), ("critic", d)):
        if not all_finite(net):
            raise FloatingPointError(f"refusing to write {path}: the {name} has non-finite weights")
    state = {
        "format": "attngan-acgan/1",
        "config": cfg.to_dict(),
        "step": step,
        "generator": g.state_dict(),
        "critic": d.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "extra": extra or {},
    }
    atomic_torch_save(state, path)


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Load a checkpoint as data (``weights_only=True``), with clear errors."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; say so before the unpickler does
        raise CheckpointError(
            f"cannot read checkpoint {path}: neither a training checkpoint (.pt, written by train.py) "
            "nor an exported .safetensors generator")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != "attngan-acgan/1":
        raise CheckpointError(f"{path} is not an attngan AcGAN checkpoint")
    return state


def check_compatible(saved: Dict[str, Any], cfg: TrainConfig, path: str) -> None:
    """Refuse a checkpoint whose networks differ from the configured ones."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    defaults["g_upsample"] = "transpose"  # checkpoints from before the option existed
    diffs = [f"{k}: checkpoint {saved.get(k, defaults[k])!r} vs requested {getattr(cfg, k)!r}"
             for k in MODEL_FIELDS if saved.get(k, defaults[k]) != getattr(cfg, k)]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not fit this model:\n  " + "\n  ".join(diffs))


def config_from_checkpoint(state: Dict[str, Any]) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in state["config"].items() if k in known})


def generator_from_checkpoint(path: str, map_location: Any = "cpu") -> Tuple[nn.Module, TrainConfig]:
    """Build the generator of a ``.pt`` checkpoint or an exported ``.safetensors`` file.

    Any failure (missing or foreign file, malformed config, weights that do
    not fit) is raised as :class:`CheckpointError` with a one-line message.
    """
    if path.endswith(".safetensors"):
        try:
            from safetensors import safe_open
            from safetensors.torch import load_file
        except ImportError:
            raise CheckpointError("reading .safetensors needs the 'export' extra: pip install 'attngan[export]'") from None
        try:
            with safe_open(path, framework="pt") as fh:
                meta = fh.metadata() or {}
            state_dict = load_file(path, device=str(map_location))
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        if "config" not in meta:
            raise CheckpointError(f"{path} carries no attngan config metadata")
        saved = json.loads(meta["config"])
    else:
        state = load_checkpoint(path, map_location)
        saved, state_dict = state.get("config"), state.get("generator")
    try:
        cfg = config_from_checkpoint({"config": saved})
        g = build_generator(cfg)
    except Exception as exc:  # noqa: BLE001 - a malformed config can fail in many ways
        raise CheckpointError(f"cannot use checkpoint {path}: malformed config ({type(exc).__name__}: {exc})") from None
    try:
        g.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not fit the generator of its config: {first}") from None
    return g.eval(), cfg


def export_safetensors(checkpoint: str, out: str) -> None:
    """Write the generator of a checkpoint, with its config, as safetensors."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise CheckpointError("exporting needs the 'export' extra: pip install 'attngan[export]'") from None
    g, cfg = generator_from_checkpoint(checkpoint)
    tensors = {k: v.contiguous() for k, v in g.state_dict().items()}
    save_file(tensors, out, metadata={"config": json.dumps(cfg.to_dict()), "format": "attngan-acgan-generator/1"})


# --------------------------------------------------------------------------- #
# Pictures
# --------------------------------------------------------------------------- #


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W, 3) uint8; one-channel inputs become grey."""
    x = x.detach().float().cpu()
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def age_all_groups(g: nn.Module, images: torch.Tensor) -> attngan.GeneratorOutput:
    """Age every image to every group in one batched call.

    Returns tensors of shape (N, 5, C, H, W) (attention (N, 5, 1, H, W)).
    """
    n = images.shape[0]
    src = images.repeat_interleave(NUM_GROUPS, dim=0)
    groups = torch.arange(NUM_GROUPS, device=images.device).repeat(n)
    out = g(src, groups)
    return attngan.GeneratorOutput(*(t.float().reshape(n, NUM_GROUPS, *t.shape[1:]) for t in out))


def sample_grid(g: nn.Module, images: torch.Tensor, *, show_masks: bool = True, pad: int = 2) -> np.ndarray:
    """A picture like the paper's Fig. 2 as an (H, W, 3) uint8 array.

    For each input: a row with the input and its 5 age groups; with
    ``show_masks`` a row of attention masks (white = input kept) and a row of
    colour masks below it.
    """
    out = age_all_groups(g, images)
    n, _, _, h, w = out.image.shape
    rows_per = 3 if show_masks else 1
    cols = NUM_GROUPS + 1
    canvas = np.full((n * rows_per * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)

    def put(r: int, c: int, pic: np.ndarray) -> None:
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y:y + h, x:x + w] = pic

    for i in range(n):
        r0 = i * rows_per
        put(r0, 0, to_uint8(images[i]))
        for k in range(NUM_GROUPS):
            put(r0, k + 1, to_uint8(out.image[i, k]))
            if show_masks:
                put(r0 + 1, k + 1, to_uint8(out.attention[i, k] * 2 - 1))
                put(r0 + 2, k + 1, to_uint8(out.color[i, k]))
    return canvas


def save_png(array: np.ndarray, path: str) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)
