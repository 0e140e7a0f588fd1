"""Throughput, FLOPs and utilisation of one full AcGAN training iteration.

One iteration is what ``train.py`` runs per batch: a critic update with the
WGAN gradient penalty (Eq. 2, double backward), then a generator update
(Eq. 5), through ``acgan.AcGANStep``. Inputs are random images in [-1, 1]
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
fused_critic       real, fake and interpolates in one critic forward
reuse_fake         one generator forward serves both updates
compile            ``torch.compile`` of the generator
optimised          all of them (compile only with --compile, low precision
                   only when --precision is not fp32)
=================  ========================================================

Without ``--compare`` / ``--variants`` one case is timed: the form
``train.py`` trains with (joint penalty, fused critic, reused fake, fused
Adam) with the precision, memory format and compilation of the flags.

Prints JSON (schema in benchmarks/README.md). Examples::

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

import common  # noqa: E402

FEATURES = ("channels_last", "bf16", "fp16", "fused_adam", "joint_gp", "fused_critic", "reuse_fake", "compile")
ABLATION = ("plain", "channels_last", "lowp", "fused_adam", "joint_gp", "fused_critic+reuse_fake", "optimised")


def ablation_list(lowp: Optional[str]) -> List[str]:
    return common.ablation_cases(ABLATION, lowp)


def describe(features: Sequence[str]) -> Dict[str, Any]:
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
    }


class TrainCase:
    """One case: its own copies of the networks and optimisers, a fixed batch,
    and an ``AcGANStep`` called with increasing step indices."""

    def __init__(self, acgan, cfg, features: Sequence[str], g0: torch.nn.Module, d0: torch.nn.Module,
                 real: torch.Tensor, labels: torch.Tensor) -> None:
        s = describe(features)
        self.settings = s
        self.cfg = dataclasses.replace(cfg, gp_mode=s["gp_mode"], channels_last=s["channels_last"])
        g, d = copy.deepcopy(g0), copy.deepcopy(d0)
        if s["channels_last"]:
            g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
        self.g, self.d = g, d
        opt_g, opt_d = acgan.build_optimizers(self.cfg, g, d, fused=s["fused_adam"])
        g_run = torch.compile(g) if s["compile"] else g
        autocast = common.config.autocast_dtype(s["precision"])
        scaler = torch.amp.GradScaler(real.device.type) if s["precision"] == "fp16" else None
        options = acgan.StepOptions(fused_critic=s["fused_critic"], reuse_fake=s["reuse_fake"],
                                    autocast=autocast, channels_last=s["channels_last"])
        self.step = acgan.AcGANStep(self.cfg, g_run, d, opt_g, opt_d, options, scaler=scaler)
        self.real, self.labels = real, labels
        self.k = 0

    def __call__(self) -> Dict[str, Any]:
        metrics = self.step(self.real, self.labels, self.k)
        self.k += 1
        return metrics


def count_iteration_flops(acgan, cfg, g0, d0, real, labels, *, reuse_fake: bool, gp_mode: str) -> Dict[str, Any]:
    """FLOPs of one iteration, counted eagerly in fp32 on copies of the networks.

    Memory format, precision, compilation, fused Adam and fusing the critic
    calls do not change the count; reusing the fake and the penalty mode do.
    """
    c = dataclasses.replace(cfg, gp_mode=gp_mode)
    g, d = copy.deepcopy(g0), copy.deepcopy(d0)
    opt_g, opt_d = acgan.build_optimizers(c, g, d, fused=False)
    step = acgan.AcGANStep(c, g, d, opt_g, opt_d, acgan.StepOptions(fused_critic=True, reuse_fake=reuse_fake))
    return common.count_flops(lambda: step(real, labels, 0))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="train_step.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=common.cli.HelpFormatter)
    common.add_common_args(parser, batch_help="images per iteration (default: the preset's)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    common.check_common_args(parser, args)
    acgan, config = common.import_acgan(), common.config
    cfg = common.build_config(parser, args)
    device = config.resolve_device(cfg.device)
    common.setup_runtime(args, device)
    # the one case without --compare / --variants: the form train.py trains with
    lowp, variants = common.resolve_variants(parser, args, cfg, device, FEATURES, ABLATION,
                                             always=("fused_adam", "joint_gp", "fused_critic", "reuse_fake"))

    b = cfg.batch_size
    torch.manual_seed(cfg.seed)
    g0, d0 = acgan.build_generator(cfg).to(device), acgan.build_critic(cfg).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    real = (torch.rand(b, 3, cfg.image_size, cfg.image_size, generator=gen) * 2 - 1).to(device)
    labels = torch.randint(0, acgan.NUM_GROUPS, (b,), generator=gen).to(device)

    flops_cache: Dict[Any, Dict[str, Any]] = {}

    def flops_of(reuse_fake: bool, gp_mode: str) -> Dict[str, Any]:
        key = (reuse_fake, gp_mode)
        if key not in flops_cache:
            flops_cache[key] = count_iteration_flops(acgan, cfg, g0, d0, real, labels,
                                                     reuse_fake=reuse_fake, gp_mode=gp_mode)
        return flops_cache[key]

    model_flops = flops_of(True, "joint")
    cases = {name: TrainCase(acgan, cfg, feats, g0, d0, real, labels) for name, feats in variants.items()}
    timings = common.run_interleaved(cases, device, warmup=args.warmup, repeats=args.repeats,
                                     iters=args.iters_per_repeat)
    rss = common.max_rss_bytes()

    results: Dict[str, Any] = {}
    for name, case in cases.items():
        s = case.settings
        fl = flops_of(s["reuse_fake"], s["gp_mode"])
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

    return common.report(__file__, argv, args, device, results=results, timings=timings, rate_key="images_per_second",
                         config={
        "preset": cfg.preset, "image_size": cfg.image_size, "batch_size": b, "device": str(device),
        "precision_flag": args.precision, "low_precision": lowp, "compile": args.compile,
        "g_channels": cfg.g_channels, "g_res_blocks": cfg.g_res_blocks, "g_downsamples": cfg.g_downsamples,
        "d_channels": cfg.d_channels, "d_max_channels": cfg.d_max_channels, "n_critic": cfg.n_critic,
        "generator_parameters": sum(p.numel() for p in g0.parameters()),
        "critic_parameters": sum(p.numel() for p in d0.parameters()),
    }, method={
        "flops": "torch.utils.flop_counter.FlopCounterMode over one eager fp32 iteration "
                 "(matmuls and convolutions incl. backward and double backward)",
        "model_flops": "FLOPs of the minimal iteration (one generator forward, penalty in the critic loss); "
                       "model_utilisation uses it for every case",
        "inputs": "random images in [-1, 1] and random age groups, made before timing",
    })


if __name__ == "__main__":
    sys.exit(main())
