"""Throughput, FLOPs and utilisation of aging faces to all five age groups.

One call is ``models.age_all_groups(generator, faces)``: every face of the
batch (``--batch-size`` faces, default 1) is aged to each of the 5 groups in
one batched generator call (5 generator images per face), under
``torch.no_grad`` and the case's autocast. The generator is the preset's
(random weights: the cost does not depend on them) or the one of a trained
``--checkpoint``. Faces are random images made before timing.

Cases (``--compare`` / ``--variants``) are feature sets applied to the plain
form (fp32, eager, contiguous): ``channels_last``, ``bf16`` / ``fp16``
(``lowp``: what --precision gives), ``compile``; ``optimised`` is all of
them (compile only with --compile). Without ``--compare`` / ``--variants``
one case is timed, set by --precision, --channels-last and --compile.

Prints JSON on stdout (schema in benchmarks/README.md; also to
``--json-out``) and a short table of the cases' rates and speed-ups on
stderr. Examples::

    python benchmarks/inference.py --preset paper --device cuda --batch-size 1
    python benchmarks/inference.py --checkpoint runs/acgan/checkpoints/last.pt --compare
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
import checkpoints  # noqa: E402
import models  # noqa: E402
from ages import NUM_GROUPS  # noqa: E402

FEATURES = ("channels_last", "bf16", "fp16", "compile")
ABLATION = ("plain", "channels_last", "lowp", "optimised")


def describe(features: Sequence[str]) -> Dict[str, Any]:
    f = set(features)
    lowp = "bf16" if "bf16" in f else "fp16" if "fp16" in f else None
    return {"precision": lowp or "fp32", "channels_last": "channels_last" in f, "compile": "compile" in f}


class AgeCase:
    """One case: its own copy of the generator and a fixed batch of faces."""

    def __init__(self, features: Sequence[str], g0: torch.nn.Module, faces: torch.Tensor) -> None:
        s = describe(features)
        self.settings = s
        g = copy.deepcopy(g0).eval()
        if s["channels_last"]:
            g = g.to(memory_format=torch.channels_last)
            faces = faces.contiguous(memory_format=torch.channels_last)
        self.g = torch.compile(g) if s["compile"] else g
        self.faces = faces
        self.dtype = common.config.autocast_dtype(s["precision"])
        self.age_all_groups = models.age_all_groups
        self.calls = 0

    def __call__(self):
        with torch.autocast(self.faces.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            out = self.age_all_groups(self.g, self.faces)
        self.calls += 1
        return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="inference.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=common.cli.HelpFormatter)
    common.add_common_args(parser, batch_help="faces per call (each aged to the 5 groups)")
    parser.add_argument("--checkpoint", default=None,
                        help="a train.py checkpoint (.pt) or exported .safetensors; sets the generator and, unless "
                             "--image-size is given, the image size")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    common.check_common_args(parser, args)
    config = common.config
    faces_per_call = args.batch_size if args.batch_size is not None else 1
    cfg = common.build_config(parser, args, batch_size=faces_per_call)
    device = config.resolve_device(cfg.device)
    common.setup_runtime(args, device)
    lowp, variants = common.resolve_variants(parser, args, cfg, device, FEATURES, ABLATION)

    torch.manual_seed(cfg.seed)
    source = "random weights of the preset"
    if args.checkpoint:
        try:
            g0, ckpt_cfg = checkpoints.generator_from_checkpoint(args.checkpoint, map_location="cpu")
        except checkpoints.CheckpointError as exc:
            parser.error(f"--checkpoint: {exc}")
        # the checkpoint's networks; the generator is convolutional, so --image-size may differ from training
        cfg = dataclasses.replace(cfg, **{k: getattr(ckpt_cfg, k) for k in config.MODEL_FIELDS
                                          if k != "image_size" or args.image_size is None})
        source = args.checkpoint
    else:
        g0 = models.build_generator(cfg)
    g0 = g0.to(device).eval()
    gen = torch.Generator().manual_seed(cfg.seed)
    faces = (torch.rand(faces_per_call, 3, cfg.image_size, cfg.image_size, generator=gen) * 2 - 1).to(device)

    plain = AgeCase([], g0, faces)
    flops = common.count_flops(plain)
    cases = {name: AgeCase(feats, g0, faces) for name, feats in variants.items()}
    timings = common.run_interleaved(cases, device, warmup=args.warmup, repeats=args.repeats,
                                     iters=args.iters_per_repeat)
    rss = common.max_rss_bytes()

    groups = NUM_GROUPS
    flops_per_face = flops["total"] / faces_per_call
    results: Dict[str, Any] = {}
    for name, case in cases.items():
        s = case.settings
        timing = common.timing_fields(timings[name], device, rss, iters=args.iters_per_repeat, item="faces",
                                      call="call", items_per_repeat=faces_per_call * args.iters_per_repeat)
        results[name] = {
            "features": variants[name],
            "settings": s,
            **timing,
            "images_per_second": timing["faces_per_second"] * groups,
            "flops_per_call": flops["total"],
            "flops_per_face": flops_per_face,
            "flops_per_image": flops_per_face / groups,
            **common.utilisation_fields(flops_per_face, flops_per_face, timing["faces_per_second"], device,
                                        common.compute_type(s["precision"], device), args.peak_tflops),
            "flops_by_op": flops["by_op"],
            "calls_run": case.calls,
        }

    return common.report(__file__, argv, args, device, results=results, timings=timings, rate_key="faces_per_second",
                         config={
        "preset": cfg.preset, "image_size": cfg.image_size, "faces_per_call": faces_per_call,
        "images_per_call": faces_per_call * groups, "device": str(device), "precision_flag": args.precision,
        "low_precision": lowp, "compile": args.compile, "g_channels": cfg.g_channels,
        "g_res_blocks": cfg.g_res_blocks, "g_downsamples": cfg.g_downsamples,
        "generator_mode": cfg.generator_mode, "generator": source,
        "generator_parameters": sum(p.numel() for p in g0.parameters()),
    }, method={
        "flops": "torch.utils.flop_counter.FlopCounterMode over one eager fp32 call of age_all_groups",
        "inputs": "random faces in [-1, 1], made before timing; outputs converted to float32 (part of the call)",
    })


if __name__ == "__main__":
    sys.exit(main())
