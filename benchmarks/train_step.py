"""Throughput, FLOPs and utilisation of one full AcGAN training iteration.

One iteration is what ``train.py`` runs per batch: a critic update with the
WGAN gradient penalty (Eq. 2, double backward), then a generator update
(Eq. 5), through ``step.AcGANStep``. Inputs are random images in [-1, 1]
and random age groups made before timing: no data loading is timed.

Cases (``--compare`` / ``--variants``) are sets of *features*, each one
optimisation applied to the plain form:

=================  ========================================================
plain              fp32, eager, contiguous tensors, Adam with
                   ``foreach=False``, the penalty as its own backward and
                   optimiser step (``gp_mode="separate"``, released code),
                   real+fake and interpolates in two critic calls, and the
                   generator forward recomputed for the generator step
channels_last      networks and batch in channels_last memory format
bf16 / fp16        autocast to that dtype (``lowp``: what --precision gives)
fused_adam         ``torch.optim.Adam(fused=True)``
joint_gp           the penalty inside the critic loss (one backward, paper)
fused_critic       real, fake and interpolates in one critic forward (the
                   penalty's double backward then runs over all three:
                   slower, not part of ``optimised``)
reuse_fake         one generator forward serves both updates
compile            ``torch.compile`` of the generator
lazy_gp            the lazy penalty: every ``--lazy-gp-every`` K-th
                   iteration, weight x K (not the paper's algorithm; not
                   part of ``optimised``); time K iterations per repeat
                   (``--iters-per-repeat K``)
optimised          all but fused_critic and lazy_gp (compile only with
                   --compile, low precision only when --precision is not
                   fp32)
=================  ========================================================

One more case, ``authors-loop`` (``authors`` is accepted as an alias), is
not a feature set: a stand-in for the training loop of the authors' released
code (github.com/JensonZhu14/AcGAN, ``models/AcGANs.py``, ``train``), written
here with the structure of that loop, not the released code itself. It runs
this project's networks: fp32, contiguous, ``torch.optim.Adam`` defaults, the
generator's forward kept with its graph for the critic step, ``D(real)`` and
``D(fake.detach())`` as two critic calls and a critic step, then the penalty
with its own critic call, backward and step, then the generator's forward
again for its step; every loss read back to the host (``.item()``, as its
loss logging does). Because it shares this project's faster networks it runs
faster than the released code does (docs/benchmarks.rst gives both). With it
in the list, ``speedup_vs_authors_loop_paired`` is added to each result.

Without ``--compare`` / ``--variants`` one case is timed: the form
``train.py`` trains with (joint penalty, reused fake, fused Adam) with the
precision, memory format and compilation of the flags.

Prints JSON on stdout (schema in benchmarks/README.md; also to
``--json-out``) and a short table of the cases' rates and speed-ups on
stderr. Examples::

    python benchmarks/train_step.py --preset paper --batch-size 64 --device cuda
    python benchmarks/train_step.py --preset cpu-demo --compare --repeats 7
    python benchmarks/train_step.py --variants ablation --image-size 64 --batch-size 8
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  # first: it puts the example's folder on sys.path
import models  # noqa: E402
from ages import NUM_GROUPS  # noqa: E402
from step import AcGANStep, StepOptions, step_randomness  # noqa: E402

FEATURES = ("channels_last", "bf16", "fp16", "fused_adam", "joint_gp", "fused_critic", "reuse_fake", "compile",
            "lazy_gp")
#: features that ``optimised`` leaves out: slower (fused_critic) or another algorithm (lazy_gp)
NOT_OPTIMISED = ("fused_critic", "lazy_gp")
ABLATION = ("plain", "channels_last", "lowp", "fused_adam", "joint_gp", "reuse_fake", "optimised")
#: the stand-in for the released training loop, and the names it is also accepted by
AUTHORS = "authors-loop"
AUTHORS_ALIASES = ("authors",)


def ablation_list(lowp: Optional[str]) -> List[str]:
    return common.ablation_cases(ABLATION, lowp)


def describe(features: Sequence[str], gp_every: int = 1) -> Dict[str, Any]:
    """The settings a feature set stands for."""
    f = set(features)
    lowp = "bf16" if "bf16" in f else "fp16" if "fp16" in f else None
    return {
        "precision": lowp or "fp32",
        "channels_last": "channels_last" in f,
        "fused_adam": "fused_adam" in f,
        "gp_mode": "joint" if "joint_gp" in f else "separate",
        "fused_critic": "fused_critic" in f,
        "reuse_fake": "reuse_fake" in f,
        "compile": "compile" in f,
        "gp_every": gp_every if "lazy_gp" in f else 1,
    }


AUTHORS_SETTINGS = {"precision": "fp32", "channels_last": False, "fused_adam": False, "gp_mode": "separate",
                    "fused_critic": False, "reuse_fake": False, "compile": False, "gp_every": 1,
                    "released_loop_stand_in": True}


class AuthorsLoopStep:
    """One iteration of the stand-in for the authors' released training loop:
    that loop's structure on the given networks (see the module docstring), not
    the released code. The losses and weights are those of Eq. (5) with the
    released code's separate penalty step."""

    def __init__(self, cfg, g: torch.nn.Module, d: torch.nn.Module) -> None:
        import attngan

        self.attngan, self.cfg, self.g, self.d = attngan, cfg, g, d
        kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.opt_g, self.opt_d = torch.optim.Adam(g.parameters(), **kw), torch.optim.Adam(d.parameters(), **kw)
        self.attention_loss = attngan.AttentionRegularizer(lambda_tv=cfg.lambda_tv, form=cfg.attention_form)

    def __call__(self, real: torch.Tensor, labels: torch.Tensor, step: int) -> Dict[str, float]:
        A, cfg = self.attngan, self.cfg
        offsets, alpha = step_randomness(cfg.seed, step, 0, real.shape[0], real.device)
        source, target = A.one_hot(labels, NUM_GROUPS), A.one_hot((labels + offsets) % 5, 5)
        gp_weight = cfg.lambda_gp * (cfg.lambda_adv if cfg.gp_weighting == "nested" else 1.0)
        fake = self.g(real, target).image  # forward_D: the generator's graph is built, not used
        out_real, out_fake = self.d(real), self.d(fake.detach())
        d_adv = A.wgan_critic_loss(out_real.realness, out_fake.realness)
        d_cls = A.classification_loss(out_real.logits, source)
        losses = {"d_adv": d_adv.item(), "d_cls": d_cls.item()}
        self.opt_d.zero_grad()
        (cfg.lambda_adv * d_adv + cfg.lambda_cls * d_cls).backward()
        self.opt_d.step()
        gp = A.gradient_penalty(self.d, real, fake.detach(), alpha=alpha)
        losses["gp"] = gp.item()
        self.opt_d.zero_grad()
        (gp_weight * gp).backward()
        self.opt_d.step()
        gen = self.g(real, target)  # forward_G: the generator again
        scored = self.d(gen.image)
        g_adv = A.wgan_generator_loss(scored.realness)
        g_cls = A.classification_loss(scored.logits, target)
        g_att = self.attention_loss(gen.attention)
        losses.update(g_adv=g_adv.item(), g_cls=g_cls.item(), g_att=g_att.item())
        self.opt_g.zero_grad()
        (cfg.lambda_adv * g_adv + cfg.lambda_att * g_att + cfg.lambda_cls * g_cls).backward()
        self.opt_g.step()
        return losses


class TrainCase:
    """One case: its own copies of the networks and optimisers, a fixed batch,
    and an ``AcGANStep`` called with increasing step indices."""

    def __init__(self, cfg, features: Sequence[str], g0: torch.nn.Module, d0: torch.nn.Module,
                 real: torch.Tensor, labels: torch.Tensor, gp_every: int = 1) -> None:
        self.real, self.labels = real, labels
        self.k = 0
        if list(features) == [AUTHORS]:
            self.settings = dict(AUTHORS_SETTINGS)
            self.cfg = cfg
            self.g, self.d = copy.deepcopy(g0), copy.deepcopy(d0)
            self.step = AuthorsLoopStep(cfg, self.g, self.d)
            return
        s = describe(features, gp_every)
        self.settings = s
        self.cfg = dataclasses.replace(cfg, gp_mode=s["gp_mode"], channels_last=s["channels_last"],
                                       gp_every=s["gp_every"])
        g, d = copy.deepcopy(g0), copy.deepcopy(d0)
        if s["channels_last"]:
            g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        self.g, self.d = g, d
        opt_g, opt_d = models.build_optimizers(self.cfg, g, d, fused=s["fused_adam"])
        g_run = torch.compile(g) if s["compile"] else g
        autocast = common.config.autocast_dtype(s["precision"])
        scaler = torch.amp.GradScaler(real.device.type) if s["precision"] == "fp16" else None
        options = StepOptions(fused_critic=s["fused_critic"], reuse_fake=s["reuse_fake"],
                              autocast=autocast, channels_last=s["channels_last"])
        self.step = AcGANStep(self.cfg, g_run, d, opt_g, opt_d, options, scaler=scaler)

    def __call__(self) -> Dict[str, Any]:
        metrics = self.step(self.real, self.labels, self.k)
        self.k += 1
        return metrics


def count_iteration_flops(cfg, g0, d0, real, labels, *, reuse_fake: bool, gp_mode: str,
                          fused_critic: bool, gp_every: int = 1, authors_loop: bool = False) -> Dict[str, Any]:
    """FLOPs of one iteration, counted eagerly in fp32 on copies of the networks.

    Memory format, precision, compilation and fused Adam do not change the
    count; reusing the fake, the penalty mode, fusing the critic calls (the
    penalty's backward over 3B samples) and the lazy penalty do. With
    ``gp_every=K`` the count is the mean over K iterations.
    """
    g, d = copy.deepcopy(g0), copy.deepcopy(d0)
    if authors_loop:
        step = AuthorsLoopStep(cfg, g, d)
    else:
        c = dataclasses.replace(cfg, gp_mode=gp_mode, gp_every=gp_every)
        opt_g, opt_d = models.build_optimizers(c, g, d, fused=False)
        step = AcGANStep(c, g, d, opt_g, opt_d, StepOptions(fused_critic=fused_critic, reuse_fake=reuse_fake))
    counts = [common.count_flops(lambda k=k: step(real, labels, k)) for k in range(gp_every)]
    by_op: Dict[str, float] = {}
    for c_ in counts:
        for op, n in c_["by_op"].items():
            by_op[op] = by_op.get(op, 0) + n / gp_every
    return {"total": sum(c_["total"] for c_ in counts) / gp_every, "by_op": by_op}


def resolve_cases(parser: argparse.ArgumentParser, args: argparse.Namespace, cfg: Any,
                  device: torch.device) -> Dict[str, List[str]]:
    """Case name -> features, as :func:`common.resolve_variants` with three changes:
    ``optimised`` leaves out :data:`NOT_OPTIMISED`, ``optimised+f`` adds features
    to it (the case is named by its features), and ``authors-loop`` (the
    stand-in for the released loop, features ``["authors-loop"]``, first in
    the case order; alias ``authors``) may be named among the variants."""
    names = [n.strip() for n in (args.variants or "").split(",") if n.strip()]
    names = [AUTHORS if n in AUTHORS_ALIASES else n for n in names]
    try:
        lowp = common.low_precision(args.precision, device)
    except ValueError as exc:
        parser.error(str(exc))
    optimised = [f for f in common.parse_variants("optimised", FEATURES, lowp, args.compile, ())["optimised"]
                 if f not in NOT_OPTIMISED]
    # "optimised+lazy_gp": the optimised form with more features
    alias = {"+".join(optimised + n.split("+")[1:]): n for n in names
             if n.split("+")[0] in ("optimised", "optimized") and "+" in n}
    rest = [next((k for k, v in alias.items() if v == n), n) for n in names if n != AUTHORS]
    if args.variants is not None and not rest:  # the stand-in for the released loop alone
        return {AUTHORS: [AUTHORS]}
    sub = argparse.Namespace(**{**vars(args), "variants": ",".join(rest) if args.variants is not None else None})
    # the one case without --compare / --variants: the form train.py trains with
    _, variants = common.resolve_variants(parser, sub, cfg, device, FEATURES, ABLATION,
                                          always=("fused_adam", "joint_gp", "reuse_fake"))
    for name, feats in variants.items():
        if name.lstrip("+") in ("optimised", "optimized", "all"):
            variants[name] = [f for f in feats if f not in NOT_OPTIMISED]
    variants = {alias.get(name, name): feats for name, feats in variants.items()}
    return {AUTHORS: [AUTHORS], **variants} if AUTHORS in names else variants


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="train_step.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=common.cli.HelpFormatter)
    common.add_common_args(parser, batch_help="images per iteration (default: the preset's)")
    parser.add_argument("--lazy-gp-every", type=common.cli.positive_int, default=4,
                        help="K of the lazy_gp feature: the penalty every K-th iteration, weight x K")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    common.check_common_args(parser, args)
    config = common.config
    cfg = common.build_config(parser, args)
    device = config.resolve_device(cfg.device)
    common.setup_runtime(args, device)
    variants = resolve_cases(parser, args, cfg, device)
    lowp = common.low_precision(args.precision, device)

    b = cfg.batch_size
    torch.manual_seed(cfg.seed)
    g0, d0 = models.build_generator(cfg).to(device), models.build_critic(cfg).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    real = (torch.rand(b, 3, cfg.image_size, cfg.image_size, generator=gen) * 2 - 1).to(device)
    labels = torch.randint(0, NUM_GROUPS, (b,), generator=gen).to(device)

    flops_cache: Dict[Any, Dict[str, Any]] = {}

    def flops_of(s: Dict[str, Any]) -> Dict[str, Any]:
        key = (s["reuse_fake"], s["gp_mode"], s["fused_critic"], s["gp_every"],
               s.get("released_loop_stand_in", False))
        if key not in flops_cache:
            flops_cache[key] = count_iteration_flops(cfg, g0, d0, real, labels, reuse_fake=key[0],
                                                     gp_mode=key[1], fused_critic=key[2], gp_every=key[3],
                                                     authors_loop=key[4])
        return flops_cache[key]

    model_flops = flops_of(describe(["joint_gp", "reuse_fake"]))
    cases = {name: TrainCase(cfg, feats, g0, d0, real, labels, gp_every=args.lazy_gp_every)
             for name, feats in variants.items()}
    timings = common.run_interleaved(cases, device, warmup=args.warmup, repeats=args.repeats,
                                     iters=args.iters_per_repeat)
    rss = common.max_rss_bytes()
    vs_authors = common.paired_speedups(timings, AUTHORS) if AUTHORS in cases and len(cases) > 1 else {}

    results: Dict[str, Any] = {}
    for name, case in cases.items():
        s = case.settings
        fl = flops_of(s)
        timing = common.timing_fields(timings[name], device, rss, items_per_repeat=b * args.iters_per_repeat,
                                      iters=args.iters_per_repeat, item="images", call="iteration")
        results[name] = {
            "features": variants[name],
            "settings": s,
            **timing,
            "flops_per_iteration": fl["total"],
            "flops_per_image": fl["total"] / b,
            "model_flops_per_image": model_flops["total"] / b,
            **common.utilisation_fields(fl["total"] / b, model_flops["total"] / b, timing["images_per_second"],
                                        device, common.compute_type(s["precision"], device), args.peak_tflops),
            "flops_by_op": fl["by_op"],
            "iterations_run": case.k,
        }
        if name in vs_authors:
            results[name]["speedup_vs_authors_loop_paired"] = vs_authors[name]

    return common.report(__file__, argv, args, device, results=results, timings=timings, rate_key="images_per_second",
                         config={
        "preset": cfg.preset, "image_size": cfg.image_size, "batch_size": b, "device": str(device),
        "precision_flag": args.precision, "low_precision": lowp, "compile": args.compile,
        "g_channels": cfg.g_channels, "g_res_blocks": cfg.g_res_blocks, "g_downsamples": cfg.g_downsamples,
        "d_channels": cfg.d_channels, "d_max_channels": cfg.d_max_channels, "n_critic": cfg.n_critic,
        "lazy_gp_every": args.lazy_gp_every,
        "generator_parameters": sum(p.numel() for p in g0.parameters()),
        "critic_parameters": sum(p.numel() for p in d0.parameters()),
    }, method={
        "flops": "torch.utils.flop_counter.FlopCounterMode over one eager fp32 iteration "
                 "(matmuls and convolutions incl. backward and double backward)",
        "model_flops": "FLOPs of the minimal iteration (one generator forward, penalty in the critic loss "
                       "on its own critic call); model_utilisation uses it for every case",
        "inputs": "random images in [-1, 1] and random age groups, made before timing",
    })


if __name__ == "__main__":
    sys.exit(main())
