"""One AcGANs training iteration: :class:`AcGANStep`, a critic step and a generator step.

Also the iteration's randomness (:func:`step_randomness`, :func:`flip_mask`),
drawn from the seed and the step index alone, and :class:`StepOptions`, the
equivalent ways of computing an iteration. The networks come from
:mod:`models`; ``train.py`` drives the iteration.

Examples
--------
>>> import torch
>>> import models
>>> from config import TrainConfig, validate_config
>>> cfg = validate_config(TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8, device="cpu"))
>>> g, d = models.build_generator(cfg), models.build_critic(cfg)
>>> opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
>>> step = AcGANStep(cfg, g, d, opt_g, opt_d)
>>> metrics = step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.tensor([0, 3]), 0)
>>> sorted(k for k in metrics if k.startswith("d_"))
['d_adv', 'd_cls', 'd_loss', 'd_skipped']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

import attngan
from ages import NUM_GROUPS
from config import TrainConfig
from models import unwrap

__all__ = ["AcGANStep", "StepOptions", "flip_mask", "grey_mask", "source_told_mask", "step_randomness"]


@dataclass
class StepOptions:
    """How an iteration is computed; every combination computes the same losses.

    Attributes
    ----------
    fused_critic : bool, default False
        Real, fake and interpolates in one critic forward. Off by default:
        the penalty's gradient and its double backward then run through all
        3B samples of that forward (2B of them with zero gradient), about 8%
        more FLOPs per iteration at 128 px and 1.11x slower on the CPU than a
        critic call on real+fake and one on the interpolates.
    reuse_fake : bool, default True
        One generator forward serves the critic and generator steps.
    autocast : torch.dtype, optional
        None, torch.bfloat16 or torch.float16.
    channels_last : bool, default False
        Make the real images channels-last (the networks are converted by the caller).
    """

    fused_critic: bool = False
    reuse_fake: bool = True
    autocast: Optional[torch.dtype] = None
    channels_last: bool = False


def _iteration_stream(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for one iteration's draws, from (seed, step) alone; each ``salt`` is a stream of its own."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) ^ salt)


def step_randomness(seed: int, step: int, rank: int, batch: int, device: torch.device,
                    world: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Target-group offsets and penalty weights of one iteration.

    Drawn for the whole global batch from (seed, step) alone and sliced for
    this process, so that a resumed run draws exactly what an uninterrupted
    one would (no generator state to save), and ``N`` processes draw what
    one process with the same global batch would.

    Parameters
    ----------
    seed, step : int
        The run's seed and the iteration's index.
    rank, batch : int
        This process's rank and its batch size.
    device : torch.device
        Where the results go.
    world : int, default 1
        The number of processes.

    Returns
    -------
    offsets : torch.Tensor
        (B,) integers in ``[1, NUM_GROUPS)``: target group = (source + offset) mod ``NUM_GROUPS``.
    alpha : torch.Tensor
        (B,) interpolation weights in [0, 1) of the gradient penalty.
    """
    g = _iteration_stream(seed, step)
    offsets = torch.randint(1, NUM_GROUPS, (batch * world,), generator=g)[rank * batch:(rank + 1) * batch]
    alpha = torch.rand(batch * world, generator=g)[rank * batch:(rank + 1) * batch]
    return offsets.to(device, non_blocking=True), alpha.to(device, non_blocking=True)


def flip_mask(seed: int, step: int, rank: int, batch: int, device: torch.device, world: int = 1) -> torch.Tensor:
    """Which images of one iteration ``--hflip`` mirrors: (B,) booleans, each true with probability 1/2.

    Drawn from (seed, step) like :func:`step_randomness` (so resumed and
    multi-process runs draw alike), from a stream of its own, so turning the
    flips on leaves the targets and penalty weights of every iteration as
    they were. The parameters are those of :func:`step_randomness`.

    Returns
    -------
    torch.Tensor
        (B,) booleans on ``device``.
    """
    return _coins(seed, step, rank, batch, 0.5, device, world, 0x5EED_F11B)


def grey_mask(seed: int, step: int, rank: int, batch: int, rate: float, device: torch.device,
              world: int = 1) -> torch.Tensor:
    """Which images of one iteration ``--grey-inputs`` turns grey: (B,) booleans, each true with probability ``rate``.

    Drawn like :func:`flip_mask`, from a stream of its own; the other
    parameters are those of :func:`step_randomness`.

    Returns
    -------
    torch.Tensor
        (B,) booleans on ``device``.
    """
    return _coins(seed, step, rank, batch, rate, device, world, 0x6E4E_79A1)


def source_told_mask(seed: int, step: int, rank: int, batch: int, rate: float, device: torch.device,
                     world: int = 1) -> torch.Tensor:
    """As :func:`grey_mask`, from a stream of its own, for ``--g-source``: which images' age groups the generator
    is told, each with probability ``rate`` (the others get the zero code of an unknown source)."""
    return _coins(seed, step, rank, batch, rate, device, world, 0x50C0_DE5A)


def _coins(seed: int, step: int, rank: int, batch: int, rate: float, device: torch.device, world: int,
           salt: int) -> torch.Tensor:
    """(B,) booleans, each true with probability ``rate``, drawn for the global batch from (seed, step, salt)."""
    g = _iteration_stream(seed, step, salt)
    coins = torch.rand(batch * world, generator=g)[rank * batch:(rank + 1) * batch] < rate
    return coins.to(device, non_blocking=True)


def judge_views(seed: int, step: int, rank: int, batch: int, amount: float, world: int = 1) -> torch.Tensor:
    """The random views of one iteration's aged faces that ``--judge-views`` shows the frozen age judge.

    Drawn from (seed, step) like :func:`step_randomness`, from a stream of
    its own (so turning them on leaves every other draw as it was), for the
    whole global batch and sliced for this process.

    Parameters
    ----------
    seed, step, rank, batch, world : int
        As in :func:`step_randomness`.
    amount : float
        The largest shift (fraction of the side) and relative zoom; views are mirrored half the time.

    Returns
    -------
    torch.Tensor
        (B, 2, 3) affine views for :func:`attngan.apply_affine`, on the CPU.
    """
    g = _iteration_stream(seed, step, 0x7A6E_D6E5)
    theta = attngan.random_affine_params(batch * world, max_shift=amount, max_zoom=amount, flip=True, generator=g)
    return theta[rank * batch:(rank + 1) * batch]


class AcGANStep:
    """One AcGANs training iteration: a critic update (:meth:`critic_step`),
    then (every ``n_critic``-th iteration) a generator update (:meth:`generator_step`).

    Losses follow Eq. (5): the critic minimises
    ``lambda_adv * (D(fake) - D(real)) + lambda_gp * GP + lambda_cls * CE(D_y(real), y_s)``
    (``lambda_adv * lambda_gp * GP`` with ``gp_weighting="nested"``);
    the generator minimises
    ``-lambda_adv * D(fake) + lambda_att * L_att(A) + lambda_cls * CE(D_y(fake), y_t)``
    (+ ``lambda_l1 * |fake - input|`` for the pixel-loss ablation, + ``lambda_rec * |G(fake, y_s) - input|``,
    the cycle reconstruction of GANimation and StarGAN, where ``--lambda-rec`` is set,
    + ``lambda_judge * CE(J(fake), y_t)`` with a frozen age judge ``J`` where ``judge`` is given, scored
    on random views of ``fake`` with ``--judge-views``).
    With ``hflip`` each real image is mirrored left-right with probability 1/2 first (:func:`flip_mask`), and
    with ``grey_inputs = p`` turned grey (:func:`attngan.grayscale`) with probability ``p`` (:func:`grey_mask`),
    for the critic and the generator alike. With ``g_source = p`` the generator's code also carries the
    source group's (:func:`source_told_mask`: told with probability ``p``, zeros otherwise).
    With ``gp_every=K`` (lazy penalty) the penalty term is computed only
    on iterations whose ``step % K == 0``, with its weight multiplied by K;
    ``gp`` is then in the metrics of those iterations only.

    The returned metrics are detached tensors on the device, ``d_skipped``
    and ``g_skipped`` included (1.0 where a non-finite loss or gradient
    skipped the update). With fused optimisers (as ``train.py`` builds them)
    the iteration never synchronises with the host.

    Parameters
    ----------
    cfg : TrainConfig
        The losses' weights and the schedule (``n_critic``, ``critic_warmup``,
        ``gp_every``, ``gp_mode``, ``hflip``, ``seed``).
    generator, critic : nn.Module
        The networks, possibly wrapped (DistributedDataParallel, torch.compile).
    opt_g, opt_d : torch.optim.Optimizer
        Their optimisers (:func:`models.build_optimizers`).
    options : StepOptions, optional
        How the iteration is computed; ``StepOptions()`` by default.
    rank, world : int
        This process's rank and the number of processes.
    scaler : torch.amp.GradScaler, optional
        Loss scaling for float16.
    judge : nn.Module, optional
        A frozen age-group classifier (:class:`estimators.FrozenClassifier`) whose
        cross-entropy to the target group the generator also minimises, weighted by
        ``cfg.lambda_judge``; its weights are never updated.
    """

    def __init__(self, cfg: TrainConfig, generator: nn.Module, critic: nn.Module,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 options: Optional[StepOptions] = None, *, rank: int = 0, world: int = 1,
                 scaler: Optional[Any] = None, judge: Optional[nn.Module] = None) -> None:
        self.cfg = cfg
        self.g, self.d = generator, critic
        self.opt_g, self.opt_d = opt_g, opt_d
        self.options = options or StepOptions()
        self.rank, self.world = rank, world
        self.scaler = scaler
        self.judge = judge
        self.attention_loss = attngan.AttentionRegularizer(lambda_tv=cfg.lambda_tv, form=cfg.attention_form)
        self.d_plain = unwrap(critic)

    def _autocast(self, device: torch.device):
        dtype = self.options.autocast
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def _critic_scores(self, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor, with_gp: bool = True):
        b = real.shape[0]
        if not with_gp:  # a lazy-penalty step: no interpolates
            out = self.d(torch.cat([real, fake]))
            return out.realness[:b], out.realness[b:], None, out.logits[:b], out.logits[b:], None
        mixed = attngan.random_interpolates(real, fake, alpha=alpha)
        if self.options.fused_critic:
            out = self.d(torch.cat([real, fake, mixed]))
            realness, logits = out.realness, out.logits
            return realness[:b], realness[b:2 * b], realness[2 * b:], logits[:b], logits[b:2 * b], mixed
        out_rf = self.d(torch.cat([real, fake]))
        out_m = self.d(mixed)
        return out_rf.realness[:b], out_rf.realness[b:], out_m.realness, out_rf.logits[:b], out_rf.logits[b:], mixed

    def _codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K) group codes as the critic's classifier reads them: with a zero column for the
        generated-face class of ``--d-fake-class``."""
        return torch.nn.functional.pad(codes, (0, 1)) if self.cfg.d_fake_class else codes

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
        """Run iteration ``step``: :meth:`critic_step`, then :meth:`generator_step` where it is due.

        Parameters
        ----------
        real : torch.Tensor
            (B, 3, H, W) in [-1, 1].
        labels : torch.Tensor
            (B,) the age groups of ``real``.
        step : int
            The iteration's index; it fixes the iteration's randomness
            (:func:`step_randomness`, :func:`flip_mask`) and which updates run.

        Returns
        -------
        dict
            The metrics of both steps, detached 0-d tensors on the device.
        """
        cfg, opt = self.cfg, self.options
        device = real.device
        if opt.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        b = real.shape[0]
        offsets, alpha = step_randomness(cfg.seed, step, self.rank, b, device, self.world)
        if cfg.hflip:
            flips = flip_mask(cfg.seed, step, self.rank, b, device, self.world)
            real = torch.where(flips.view(b, 1, 1, 1), real.flip(-1), real)
        if cfg.grey_inputs > 0:
            greys = grey_mask(cfg.seed, step, self.rank, b, cfg.grey_inputs, device, self.world)
            real = torch.where(greys.view(b, 1, 1, 1), attngan.grayscale(real), real)
        target = (labels + offsets) % NUM_GROUPS
        # the library checks label values only where that is free (eager, CPU): no sync on a GPU
        source_codes = attngan.one_hot(labels, NUM_GROUPS)
        target_codes = attngan.one_hot(target, NUM_GROUPS)
        g_codes = (target_codes, source_codes)  # the generator's condition, forward and back (the cycle)
        if cfg.g_source > 0:  # told the source group (zeros: unknown) after the target's
            told = source_told_mask(cfg.seed, step, self.rank, b, cfg.g_source, device, self.world)
            told = told.unsqueeze(1).to(source_codes.dtype)
            g_codes = (torch.cat([target_codes, source_codes * told], 1),
                       torch.cat([source_codes, target_codes * told], 1))
        update_g = step >= cfg.critic_warmup and step % cfg.n_critic == cfg.n_critic - 1
        gen = None  # the generator's output with its graph, where the generator step reuses it
        with self._autocast(device):
            if update_g and opt.reuse_fake:
                gen = self.g(real, g_codes[0])
                fake = gen.image.detach()
            else:
                with torch.no_grad():
                    fake = self.g(real, g_codes[0]).image
        # lazy penalty (--gp-every K): only every K-th critic step, weighted by K
        metrics = self.critic_step(real, fake.float(), source_codes, alpha, with_gp=step % cfg.gp_every == 0)
        if update_g:
            views = None
            if self.judge is not None and cfg.lambda_judge > 0 and cfg.judge_views > 0:
                views = judge_views(cfg.seed, step, self.rank, b, cfg.judge_views, self.world)
            metrics.update(self.generator_step(real, source_codes, target_codes, gen, views=views, g_codes=g_codes))
        return metrics

    def critic_step(self, real: torch.Tensor, fake: torch.Tensor, source_codes: torch.Tensor,
                    alpha: torch.Tensor, *, with_gp: bool = True) -> Dict[str, Any]:
        """Update the critic on real and generated images.

        Parameters
        ----------
        real, fake : torch.Tensor
            (B, 3, H, W): the (mirrored) inputs and the generator's images of
            them, without the generator's graph.
        source_codes : torch.Tensor
            (B, K) one-hot codes of the real images' groups (the classifier's targets).
        alpha : torch.Tensor
            (B,) the interpolation weights of the gradient penalty.
        with_gp : bool, default True
            Compute the penalty term (False on the skipped iterations of a lazy penalty).

        Returns
        -------
        dict
            ``gp`` (with the penalty only), ``d_loss``, ``d_adv``, ``d_cls`` and
            ``d_skipped``, detached 0-d tensors.
        """
        cfg = self.cfg
        device = real.device
        metrics: Dict[str, Any] = {}
        with self._autocast(device):
            real_s, fake_s, mixed_s, real_logits, fake_logits, mixed = self._critic_scores(real, fake, alpha,
                                                                                            with_gp)
            d_adv = attngan.wgan_critic_loss(real_s.float(), fake_s.float())
            d_cls = attngan.classification_loss(real_logits, self._codes(source_codes))
            if cfg.d_fake_class:  # generated faces belong to the extra class
                fake_class = torch.full(fake_logits.shape[:1], fake_logits.shape[1] - 1, device=device)
                d_cls = d_cls + attngan.classification_loss(fake_logits, fake_class)
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
        return metrics

    def generator_step(self, real: torch.Tensor, source_codes: torch.Tensor, target_codes: torch.Tensor,
                       gen: Optional[attngan.GeneratorOutput] = None,
                       views: Optional[torch.Tensor] = None,
                       g_codes: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Dict[str, Any]:
        """Update the generator against the critic, whose weights it leaves untouched.

        Parameters
        ----------
        real : torch.Tensor
            (B, 3, H, W) the (mirrored) inputs.
        source_codes, target_codes : torch.Tensor
            (B, K) one-hot codes of the inputs' groups and of the groups to age them to.
        gen : attngan.GeneratorOutput, optional
            The generator's output for ``(real, target_codes)`` with its graph
            (:attr:`StepOptions.reuse_fake`); computed here when None.
        views : torch.Tensor, optional
            (B, 2, 3) random views (:func:`judge_views`) through which the
            frozen age judge sees the aged faces; None: it sees them as they are.
        g_codes : tuple of torch.Tensor, optional
            The generator's condition codes for aging ``real`` and for aging
            the result back (the cycle term); None: ``(target_codes,
            source_codes)``. With ``--g-source`` they carry the source's code
            after the target's, (B, 2K).

        Returns
        -------
        dict
            ``g_l1``, ``g_rec`` and ``g_judge`` (where their weights are set), ``g_loss``,
            ``g_adv``, ``g_cls``, ``g_att``, the attention statistics and
            ``g_skipped``, detached 0-d tensors.
        """
        cfg = self.cfg
        metrics: Dict[str, Any] = {}
        forward_codes, back_codes = g_codes if g_codes is not None else (target_codes, source_codes)
        d_params = list(self.d.parameters())
        for p in d_params:
            p.requires_grad_(False)
        try:
            with self._autocast(real.device):
                if gen is None:
                    gen = self.g(real, forward_codes)
                scored = self.d_plain(gen.image)
                g_adv = attngan.wgan_generator_loss(scored.realness.float())
                g_cls = attngan.classification_loss(scored.logits, self._codes(target_codes))
                g_att = self.attention_loss(gen.attention.float())
                g_loss = cfg.lambda_adv * g_adv + cfg.lambda_att * g_att + cfg.lambda_cls * g_cls
                if cfg.lambda_l1 > 0:
                    g_l1 = (gen.image.float() - real).abs().mean()
                    g_loss = g_loss + cfg.lambda_l1 * g_l1
                    metrics["g_l1"] = g_l1.detach()
                if cfg.lambda_rec > 0:  # cycle: back to the source group must give the input
                    back = self.g(gen.image, back_codes).image
                    g_rec = (back.float() - real).abs().mean()
                    g_loss = g_loss + cfg.lambda_rec * g_rec
                    metrics["g_rec"] = g_rec.detach()
                if self.judge is not None and cfg.lambda_judge > 0:  # a frozen judge of age, beside the critic's
                    seen = gen.image.float()
                    if views is not None:
                        seen = attngan.apply_affine(seen, views)
                    g_judge = attngan.classification_loss(self.judge(seen), target_codes)
                    g_loss = g_loss + cfg.lambda_judge * g_judge
                    metrics["g_judge"] = g_judge.detach()
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
