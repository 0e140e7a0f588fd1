"""Shared helpers of the benchmarks: timing, FLOP counting, peak throughput,
metadata, memory and JSON output; plus the command-line pieces that the
AcGAN benchmarks (``train_step.py``, ``inference.py``) have in common.

Method (see ``benchmarks/README.md``):

* every case is warmed up (``--warmup`` untimed calls: allocator, oneDNN /
  cuDNN algorithm choice, ``torch.compile``) before it is timed;
* ``--repeats`` timed repeats of ``--iters-per-repeat`` calls each; cases
  compared in one run are *interleaved* (repeat r of every case, in an order
  rotated by r) so that drift of the machine's speed hits them alike;
* the statistic is the median over repeats, with the quartiles and the
  min / max as its spread;
* on CUDA a repeat is timed with ``torch.cuda.Event`` pairs around the calls
  and ``Event.synchronize``; the host clock is reported beside it, never
  instead of it. On CPU the host clock (``time.perf_counter``) is the time;
* FLOPs are counted once per case structure with
  ``torch.utils.flop_counter.FlopCounterMode`` over one un-timed call; it
  counts matrix products and convolutions (forward, backward and the double
  backward of the gradient penalty), not element-wise work.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EXAMPLE = os.path.join(REPO, "examples", "morph_aging")
if EXAMPLE not in sys.path:  # the example's modules, imported by their bare names
    sys.path.insert(0, EXAMPLE)

import cli  # noqa: E402
import config  # noqa: E402
import files  # noqa: E402

# --------------------------------------------------------------------------- #
# Peak throughput
# --------------------------------------------------------------------------- #

#: Dense (no structured sparsity) peak TFLOP/s from the vendors' datasheets,
#: by device family and compute type. ``tf32`` is what fp32 convolutions and
#: matrix products run at when TF32 is allowed (cuDNN allows it by default).
PEAK_TFLOPS: Dict[str, Dict[str, float]] = {
    "H100 SXM": {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0},
    "H100 NVL": {"bf16": 835.0, "fp16": 835.0, "tf32": 418.0, "fp32": 60.0},
    "H200": {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "H200 NVL": {"bf16": 835.0, "fp16": 835.0, "tf32": 418.0, "fp32": 60.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
}

COMPUTE_TYPES = ("bf16", "fp16", "tf32", "fp32")


def device_family(name: str) -> Optional[str]:
    """The :data:`PEAK_TFLOPS` key of a CUDA device name, or None if unknown.

    >>> device_family("NVIDIA H100 80GB HBM3"), device_family("NVIDIA H100 PCIe")
    ('H100 SXM', 'H100 PCIe')
    >>> device_family("NVIDIA H200"), device_family("NVIDIA A100-SXM4-80GB"), device_family("Tesla T4")
    ('H200', 'A100', None)
    """
    n = name.upper()
    if "H200" in n:
        return "H200 NVL" if "NVL" in n else "H200"
    if "H100" in n:
        if "PCIE" in n:
            return "H100 PCIe"
        if "NVL" in n:
            return "H100 NVL"
        return "H100 SXM"  # "H100 80GB HBM3", "H100 SXM5 ..."
    if "A100" in n:
        return "A100"
    return None


def compute_type(precision: str, device: torch.device) -> str:
    """What the bulk of the FLOPs run as: bf16, fp16, tf32 or fp32.

    ``precision`` is the autocast dtype name (``"bf16"``, ``"fp16"``) or
    ``"fp32"``; fp32 on CUDA counts as tf32 when cuDNN may use TF32 (the
    networks are convolutions).
    """
    if precision in ("bf16", "fp16"):
        return precision
    if device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "fp32"


#: The convolution :func:`measured_peak_tflops` times: 3x3, 256 -> 256 channels
#: on a 32x32 map, batch 8, channels-last (the shape of the paper generator's
#: residual blocks at 128x128).
REFERENCE_CONV = dict(batch=8, channels=256, size=32, kernel=3)
_MEASURED: Dict[Tuple[str, str], float] = {}


def measured_peak_tflops(device: torch.device, ctype: str, repeats: int = 7) -> float:
    """TFLOP/s of one large convolution (:data:`REFERENCE_CONV`) in ``ctype``, measured here and now.

    A roofline for CPUs, which have no datasheet figure: the rate the
    dominant layer shape of the networks reaches on this machine with the
    current thread count (forward only, median of ``repeats`` after two
    warm-up calls; cached per device and compute type). Iterations cannot
    run faster than their FLOPs at this rate unless the FLOPs shrink.
    """
    key = (str(device), ctype)
    if key not in _MEASURED:
        c = REFERENCE_CONV
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(ctype, torch.float32)
        x = torch.randn(c["batch"], c["channels"], c["size"], c["size"], device=device, dtype=dtype)
        w = torch.randn(c["channels"], c["channels"], c["kernel"], c["kernel"], device=device, dtype=dtype)
        x, w = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
        pad = c["kernel"] // 2
        with torch.no_grad():
            times = [time_calls(lambda: torch.nn.functional.conv2d(x, w, padding=pad), device)["seconds"]
                     for _ in range(repeats + 2)][2:]
        flops = 2 * c["batch"] * c["channels"] ** 2 * c["kernel"] ** 2 * c["size"] ** 2
        _MEASURED[key] = flops / sorted(times)[len(times) // 2] / 1e12
    return _MEASURED[key]


def peak_tflops(device: torch.device, ctype: str, override: Any = None) -> Tuple[Optional[float], Optional[str]]:
    """(peak TFLOP/s, where the figure came from) for a device and compute type.

    ``override`` (``--peak-tflops``) wins: a number, or ``"measure"`` for
    :func:`measured_peak_tflops`. On a CPU there is no other default: the
    peak depends on the model, the cores granted and the clock, so the
    utilisation is left out unless a figure is given or measured.
    """
    if override == "measure":
        c = REFERENCE_CONV
        return measured_peak_tflops(device, ctype), (
            f"measured: {c['kernel']}x{c['kernel']} convolution, {c['channels']} channels, {c['size']}x{c['size']}, "
            f"batch {c['batch']}, channels-last, {ctype}, forward")
    if override is not None:
        return float(override), "--peak-tflops"
    if device.type != "cuda":
        return None, None
    family = device_family(torch.cuda.get_device_name(device))
    if family is None:
        return None, None
    return PEAK_TFLOPS[family][ctype], f"{family} {ctype} dense (datasheet)"


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, iters: int = 1) -> Dict[str, float]:
    """Run ``fn`` ``iters`` times and time it.

    Returns ``{"seconds": ..., "host_seconds": ...}``: on CUDA ``seconds`` is
    measured with CUDA events recorded around the calls (after a
    synchronisation, so no earlier work is counted) and ``host_seconds`` by
    the host clock up to the end event's completion; on CPU both are the host
    clock.
    """
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        host = time.perf_counter() - t0
        return {"seconds": start.elapsed_time(end) / 1e3, "host_seconds": host}
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    host = time.perf_counter() - t0
    return {"seconds": host, "host_seconds": host}


def summarize(values: Sequence[float]) -> Dict[str, float]:
    """Median with quartiles (inclusive method), min, max and count.

    >>> s = summarize([3.0, 1.0, 2.0, 10.0])
    >>> s["median"], s["min"], s["max"], s["n"]
    (2.5, 1.0, 10.0, 4)
    """
    vals = sorted(float(v) for v in values)
    if not vals:
        raise ValueError("summarize() needs at least one value")
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {"median": statistics.median(vals), "q1": q1, "q3": q3, "min": vals[0], "max": vals[-1], "n": len(vals)}


def run_interleaved(cases: Mapping[str, Callable[[], Any]], device: torch.device, *, warmup: int, repeats: int,
                    iters: int = 1) -> Dict[str, Dict[str, Any]]:
    """Warm up and time several cases alternately.

    Warm-up: ``warmup`` rounds, each calling every case once. Timing:
    ``repeats`` rounds; round ``r`` times ``iters`` calls of every case, in
    the case order rotated by ``r`` (so no case always runs first or after
    the same neighbour). On CUDA the peak allocated memory is reset before
    each timed repeat and its maximum over the case's repeats kept.

    Returns, per case: ``seconds`` (per repeat, ``iters`` calls each),
    ``host_seconds`` and ``peak_memory_bytes`` (CUDA only, else None).
    """
    if repeats < 1 or warmup < 0 or iters < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, iters >= 1; got {repeats}, {warmup}, {iters}")
    names = list(cases)
    out: Dict[str, Dict[str, Any]] = {n: {"seconds": [], "host_seconds": [], "peak_memory_bytes": None} for n in names}
    for _ in range(warmup):
        for name in names:
            cases[name]()
    synchronize(device)
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t = time_calls(cases[name], device, iters)
            out[name]["seconds"].append(t["seconds"])
            out[name]["host_seconds"].append(t["host_seconds"])
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device)
                prev = out[name]["peak_memory_bytes"]
                out[name]["peak_memory_bytes"] = peak if prev is None else max(prev, peak)
    return out


# --------------------------------------------------------------------------- #
# FLOPs and memory
# --------------------------------------------------------------------------- #


class _GlobalOnly:
    """Stand-in for FlopCounterMode's module tracker: everything counts as
    "Global". The tracker's backward hooks break ``torch.autograd.grad``
    with respect to a leaf that is a module input, which the gradient
    penalty does (pytorch/pytorch#131753)."""

    parents = {"Global"}

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def count_flops(fn: Callable[[], Any]) -> Dict[str, Any]:
    """FLOPs of one call of ``fn`` with ``FlopCounterMode(display=False)``.

    Returns ``{"total": int, "by_op": {op name: int}}``.

    >>> lin = torch.nn.Linear(4, 3, bias=False)
    >>> count_flops(lambda: lin(torch.ones(2, 4)))["total"]  # 2 * B * in * out
    48
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": int(counter.get_total_flops()), "by_op": dict(sorted(by_op.items()))}


def max_rss_bytes() -> Optional[int]:
    """The process's peak resident set size so far (never decreases)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def memory_kind(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated over the timed repeats of this case"
    return "process peak RSS so far (resource.getrusage; includes earlier cases and the Python runtime)"


# --------------------------------------------------------------------------- #
# Metadata and output
# --------------------------------------------------------------------------- #


def _git(*args: str) -> Optional[str]:
    try:
        res = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def metadata(device: torch.device) -> Dict[str, Any]:
    """Where and when a measurement was taken."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    meta: Dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    gpu_memory_bytes=int(props.total_memory), gpu_multiprocessors=props.multi_processor_count,
                    cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                    matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    else:
        meta["cpu_fast_bf16"] = config.cpu_has_fast_bf16()
    return meta


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command that reproduces a run, relative to the repository root."""
    import shlex

    return shlex.join(["python", os.path.relpath(os.path.abspath(script), REPO), *argv])


def emit(result: Mapping[str, Any], json_out: Optional[str]) -> None:
    """Print ``result`` as JSON to stdout and, if asked, write it to a file."""
    text = json.dumps(result, indent=2, sort_keys=False)
    print(text, flush=True)
    if json_out:
        files.write_text(json_out, text + "\n")


# --------------------------------------------------------------------------- #
# AcGAN benchmark command lines
# --------------------------------------------------------------------------- #


#: The :class:`config.TrainConfig` fields the benchmarks take as flags: the
#: networks' shape and how they run.
CONFIG_FLAGS = config.MODEL_FIELDS + ("preset", "device", "precision", "channels_last", "compile", "batch_size", "seed")


def add_common_args(parser: argparse.ArgumentParser, *, batch_help: str) -> None:
    """Flags shared by train_step.py and inference.py: the config's (:data:`CONFIG_FLAGS`,
    declared by ``config.TrainConfig``) and the timing method's."""
    config.add_config_arguments(parser, CONFIG_FLAGS, help={"batch_size": batch_help})
    p = parser
    p.add_argument("--warmup", type=cli.int_at_least(0), default=3,
                   help="untimed rounds before timing (each case once per round)")
    p.add_argument("--repeats", type=cli.positive_int, default=5, help="timed repeats per case (median reported)")
    p.add_argument("--iters-per-repeat", type=cli.positive_int, default=1, help="calls per timed repeat")
    p.add_argument("--peak-tflops", type=_peak_arg, default=None, metavar="TFLOPS|measure",
                   help="peak TFLOP/s for the utilisation (default: datasheet figure of known GPUs; none on CPU); "
                        "'measure' times one large convolution in each case's compute type here (a roofline for "
                        "CPUs)")
    cli.add_bool_flag(p, "--tf32", default=True,
                      help="allow TF32 for fp32 convolutions and matmuls on CUDA (as train.py does)")
    p.add_argument("--threads", type=cli.positive_int, default=None,
                   help="torch.set_num_threads (default: torch's choice)")
    cli.add_bool_flag(p, "--compare", default=False,
                      help="time the plain and the optimised form alternately in this process; a table of their "
                           "rates and the speed-up goes to stderr, the JSON to stdout (and --json-out)")
    p.add_argument("--variants", default=None,
                   help="comma-separated cases, each 'plain', 'optimised' or features joined by '+'; "
                        "'ablation' for plain, each optimisation alone, and all of them")
    p.add_argument("--json-out", default=None, help="also write the JSON to this file")


def _peak_arg(text: str) -> Any:
    if text == "measure":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'measure', got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'measure', got {text!r}")
    return value


def check_common_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.compare and args.variants:
        parser.error("--compare and --variants are exclusive (--compare is --variants plain,optimised)")


def build_config(parser: argparse.ArgumentParser, args: argparse.Namespace, **overrides: Any) -> "config.TrainConfig":
    """The validated config of the flags (random inputs: no data; full iterations, no critic warm-up)."""
    return config.config_from_args(parser, args, data="random-tensors", progress=False, critic_warmup=0, **overrides)


def setup_runtime(args: argparse.Namespace, device: torch.device) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
        torch.backends.cudnn.allow_tf32 = bool(args.tf32)


def low_precision(precision: str, device: torch.device) -> Optional[str]:
    """The autocast dtype name that ``--precision`` resolves to, None for fp32."""
    resolved = config.resolve_precision(precision, device)
    return None if resolved == "fp32" else resolved


def ablation_cases(ablation: Sequence[str], lowp: Optional[str]) -> List[str]:
    """The ``ablation`` cases, without ``lowp`` when the precision is fp32."""
    return [v for v in ablation if v != "lowp" or lowp is not None]


def resolve_variants(parser: argparse.ArgumentParser, args: argparse.Namespace, cfg: Any, device: torch.device,
                     features: Sequence[str], ablation: Sequence[str],
                     always: Sequence[str] = ()) -> Tuple[Optional[str], Dict[str, List[str]]]:
    """``(low precision, variants)`` of the flags; a bad combination exits through ``parser.error``.

    With ``--compare`` / ``--variants`` the named cases (:func:`parse_variants`);
    otherwise one case ``run``: the ``always`` features plus what the flags
    ask for (channels_last, the low precision, compile).
    """
    try:
        lowp = low_precision(args.precision, device)
        if args.compare or args.variants:
            spec = "plain,optimised" if args.compare else args.variants
            variants = parse_variants(spec, features, lowp, args.compile, ablation_cases(ablation, lowp))
        else:
            feats = list(always) + (["channels_last"] if cfg.channels_last else []) + ([lowp] if lowp else [])
            feats += ["compile"] if args.compile else []
            variants = {"run": sorted(feats, key=list(features).index)}
        if any("fp16" in f for f in variants.values()) and device.type != "cuda":
            raise ValueError("fp16 autocast needs a GPU; on CPU use bf16 or fp32")
    except ValueError as exc:
        parser.error(str(exc))
    return lowp, variants


def parse_variants(spec: str, features: Sequence[str], lowp: Optional[str], compile_: bool,
                   ablation: Sequence[str]) -> Dict[str, List[str]]:
    """Variant names -> sorted feature lists.

    ``plain`` has no feature; ``optimised`` (or ``all``) has every feature,
    with ``compile`` only when ``--compile`` was given and the low precision
    only when ``--precision`` is not fp32; otherwise a name is features
    joined by ``+`` (a leading ``+`` is allowed). ``lowp`` stands for the
    low precision that ``--precision`` resolves to. ``ablation`` expands to
    the given list.
    """
    names: List[str] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        names.extend(ablation if part == "ablation" else [part])
    out: Dict[str, List[str]] = {}
    for name in names:
        key = name.lstrip("+")
        if key == "plain":
            feats: List[str] = []
        elif key in ("optimised", "optimized", "all"):
            feats = [f for f in features if f not in ("bf16", "fp16", "compile")]
            if lowp is not None:
                feats.append(lowp)
            if compile_:
                feats.append("compile")
        else:
            feats = []
            for f in key.split("+"):
                f = f.strip()
                if f == "lowp":
                    if lowp is None:
                        raise ValueError(f"variant {name!r}: 'lowp' needs --precision other than fp32")
                    f = lowp
                if f not in features:
                    raise ValueError(f"variant {name!r}: unknown feature {f!r}; known: plain, optimised, lowp, "
                                     + ", ".join(features))
                feats.append(f)
            if "bf16" in feats and "fp16" in feats:
                raise ValueError(f"variant {name!r}: bf16 and fp16 exclude each other")
        out[key] = sorted(set(feats), key=list(features).index)
    if not out:
        raise ValueError(f"no variant in {spec!r}")
    return out


def rate_summary(seconds: Sequence[float], items_per_repeat: int) -> Dict[str, float]:
    """Items per second from per-repeat times: median, and the rates at the
    quartile and extreme times (the spread)."""
    s = summarize(seconds)
    return {"median": items_per_repeat / s["median"], "q1": items_per_repeat / s["q3"],
            "q3": items_per_repeat / s["q1"], "min": items_per_repeat / s["max"], "max": items_per_repeat / s["min"]}


def paired_speedups(timings: Mapping[str, Mapping[str, Any]], baseline: str) -> Dict[str, Dict[str, float]]:
    """Per timed round, baseline time / case time; their median, min and max.

    Rounds are interleaved, so each ratio compares runs a few seconds apart:
    robust against slow drift of the machine's speed.
    """
    base = timings[baseline]["seconds"]
    out = {}
    for name, t in timings.items():
        if name == baseline:
            continue
        ratios = [b / c for b, c in zip(base, t["seconds"])]
        s = summarize(ratios)
        out[name] = {"median": s["median"], "min": s["min"], "max": s["max"]}
    return out


def timing_fields(timing: Mapping[str, Any], device: torch.device, rss: Optional[int], *, items_per_repeat: int,
                  iters: int, item: str, call: str) -> Dict[str, Any]:
    """A case's rates, times per call and peak memory from its :func:`run_interleaved` timing.

    ``item`` names what is counted (``"images"``: ``images_per_second``),
    ``call`` one call (``"iteration"``: ``seconds_per_iteration``); ``rss``
    is the process's peak RSS, reported as the memory on a CPU.
    """
    rate = rate_summary(timing["seconds"], items_per_repeat)
    return {
        f"{item}_per_second": rate["median"],
        f"{item}_per_second_spread": rate,
        f"seconds_per_{call}": summarize([x / iters for x in timing["seconds"]]),
        f"host_seconds_per_{call}": summarize([x / iters for x in timing["host_seconds"]]),
        "peak_memory_bytes": timing["peak_memory_bytes"] if device.type == "cuda" else rss,
        "peak_memory_kind": memory_kind(device),
    }


def utilisation_fields(flops_per_item: float, model_flops_per_item: float, items_per_second: float,
                       device: torch.device, ctype: str, override: Any) -> Dict[str, Any]:
    peak, source = peak_tflops(device, ctype, override)
    achieved = flops_per_item * items_per_second / 1e12
    model = model_flops_per_item * items_per_second / 1e12
    return {
        "achieved_tflops": achieved,
        "model_tflops": model,
        "compute_type": ctype,
        "peak_tflops": peak,
        "peak_source": source,
        "utilisation": achieved / peak if peak else None,
        "model_utilisation": model / peak if peak else None,
    }


def report(script: str, argv: Sequence[str], args: argparse.Namespace, device: torch.device, *,
           config: Dict[str, Any], method: Dict[str, Any], results: Dict[str, Any], timings: Any,
           rate_key: str) -> int:
    """Assemble a benchmark's JSON (schema in benchmarks/README.md), add the
    speed-ups against the ``plain`` case (when there is one), emit it, return 0.

    ``config`` and ``method`` are the benchmark's own entries; the seed, TF32
    setting, timing protocol and metadata are added here.
    """
    out: Dict[str, Any] = {
        "benchmark": os.path.splitext(os.path.basename(script))[0],
        "command": command_line(script, argv),
        "config": {**config, "seed": args.seed, "tf32": bool(args.tf32) if device.type == "cuda" else None},
        "method": {**base_method(args, device, len(results)), **method},
        "metadata": metadata(device),
        "results": results,
    }
    if "plain" in results and len(results) > 1:
        base = results["plain"][rate_key]
        out["speedup_vs_plain"] = {n: r[rate_key] / base for n, r in results.items() if n != "plain"}
        out["speedup_vs_plain_paired"] = paired_speedups(timings, "plain")
    print(summary_table(out, rate_key), file=sys.stderr, flush=True)
    emit(out, args.json_out)
    return 0


def _rate(value: float) -> str:
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def summary_table(out: Mapping[str, Any], rate_key: str) -> str:
    """A short table of a report for people (the JSON is for programs): per case its median rate with
    the quartiles, and the paired speed-up over ``plain`` where there is one.

    >>> out = {"results": {"plain": {"images_per_second": 10.0,
    ...                              "images_per_second_spread": {"q1": 9.5, "q3": 10.4}},
    ...                    "optimised": {"images_per_second": 25.0,
    ...                                  "images_per_second_spread": {"q1": 24.0, "q3": 26.0}}},
    ...        "speedup_vs_plain_paired": {"optimised": {"median": 2.51, "min": 2.4, "max": 2.6}}}
    >>> print(summary_table(out, "images_per_second"))
    case       images/s  (quartiles)  vs plain
    plain          10.0  (9.5-10.4)          -
    optimised      25.0  (24.0-26.0)     2.51x
    """
    unit = rate_key.replace("_per_second", "/s")
    paired = out.get("speedup_vs_plain_paired", {})
    rows = [("case", unit, "(quartiles)", "vs plain")]
    for name, result in out["results"].items():
        spread = result.get(f"{rate_key}_spread", {})
        quartiles = f"({_rate(spread['q1'])}-{_rate(spread['q3'])})" if "q1" in spread else ""
        speedup = f"{paired[name]['median']:.2f}x" if name in paired else "-"
        rows.append((name, _rate(result[rate_key]), quartiles, speedup))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}".rstrip()
                     for r in rows)


def base_method(args: argparse.Namespace, device: torch.device, num_cases: int) -> Dict[str, Any]:
    """The ``method`` entries every benchmark shares (timing protocol and clock)."""
    return {
        "warmup_rounds": args.warmup, "repeats": args.repeats, "iters_per_repeat": args.iters_per_repeat,
        "statistic": "median over repeats; spread as quartiles and min/max",
        "interleaved": num_cases > 1,
        "timer": "torch.cuda.Event pairs + synchronize" if device.type == "cuda" else "time.perf_counter",
    }
