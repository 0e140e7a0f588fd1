"""Throughput of the input pipeline alone: images per second, total and per worker.

A GPU training at the paper's size needs its batches on time: an H100 at
the design's goal (40% of the dense bf16 peak, about 300 GFLOP per image at
224 px) consumes about 1,300 images per second. This script measures how
fast the example's data sources deliver batches, with no network involved:

``synthetic``
    the built-in procedural faces (``synthetic_faces.SyntheticFaces``),
    rendered on demand;
``jpeg<S>``
    a folder of JPEG files of side ``S`` (``--jpeg-sizes``), read the way
    ``train.py`` reads a real dataset: ``face_datasets.scan_dataset``, then
    ``face_datasets.FaceImageDataset`` (decode, EXIF, RGB, centre square,
    resize to ``--image-size``, float32 in [-1, 1]). The files are synthetic
    faces enlarged to ``S`` with mild sensor-like noise and saved at
    ``--jpeg-quality`` in a temporary folder (or ``--jpeg-dir``), named by the
    MORPH convention.

Two measurements per source:

* **one core**: the per-image work in this process with one torch thread
  (what one DataLoader worker does), interleaved repeats over the same
  images, median. For JPEG files the stages are separated and alternatives
  compared: full decode and DCT-domain draft decode (PIL), PIL's bicubic
  resize against ``load_image`` (torch's 8-bit resize), and ``simplejpeg``
  when it is installed;
* **DataLoader**: ``torch.utils.data.DataLoader`` with ``--workers`` worker
  processes (0 = in the main process), random batches of ``--batch-size``
  as ``train.py`` draws them, ``prefetch_factor=4`` and pinned memory when
  CUDA is available (as ``train.py``). After the first ``--warmup-batches``
  (worker start-up is reported separately as ``first_batch_seconds``),
  ``--repeats`` timed runs of ``--batches`` batches each; the median run gives
  images per second, divided by the number of workers (1 for 0 workers)
  for the rate per worker.

Prints JSON like the other benchmarks (``--json-out`` also writes it) and a
short table on standard error. Examples::

    python benchmarks/loader.py --workers 0,1,2
    python benchmarks/loader.py --workers 8,16 --jpeg-sizes 250 512 --json-out results/loader_h100.json
    python benchmarks/loader.py --sources jpeg --jpeg-dir /data/morph_jpegs --workers 4
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

# the example's modules first: benchmarks/synthetic_faces.py would shadow its namesake
if sys.path[0] != common.EXAMPLE:
    sys.path.insert(0, common.EXAMPLE)

import face_datasets  # noqa: E402
import synthetic_faces  # noqa: E402
from pictures import dequantize, to_uint8  # noqa: E402
from PIL import Image  # noqa: E402

#: Images per second an H100 consumes at the design's goal (224 px, 40% of the
#: dense bf16 peak of 989 TFLOP/s, about 300 GFLOP per training image).
GPU_TARGET_IMAGES_PER_SECOND = 1300
#: Ages written into the generated file names, one per age group.
_GROUP_AGES = (16, 25, 35, 45, 60)


# --------------------------------------------------------------------------- #
# The JPEG folder
# --------------------------------------------------------------------------- #


def make_jpeg_folder(folder: str, count: int, side: int, *, quality: int = 90, seed: int = 0) -> List[str]:
    """Write ``count`` face photos of ``side`` x ``side`` pixels as JPEG files.

    Synthetic faces (224 px) enlarged with PIL's bicubic filter, plus
    Gaussian noise of 3 grey levels so that the files have the entropy of a
    camera photo rather than of a flat drawing, saved at ``quality``. Names
    follow the MORPH convention (``{subject}_{n}M{age}.JPG``), so
    :func:`face_datasets.scan_dataset` reads them. Existing files are kept.

    Returns
    -------
    list of str
        The paths, in order.
    """
    os.makedirs(folder, exist_ok=True)
    ds = synthetic_faces.SyntheticFaces(num_subjects=(count + 4) // 5, image_size=224, seed=seed)
    rng = np.random.default_rng(seed)
    labels = ds.labels().tolist()
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{i // 5:06d}_{i % 5}M{_GROUP_AGES[labels[i]]}.JPG")
        paths.append(path)
        if os.path.exists(path):
            continue
        arr = to_uint8(ds.render(i))
        im = Image.fromarray(arr).resize((side, side), Image.Resampling.BICUBIC)
        noisy = np.asarray(im, dtype=np.float32) + rng.normal(0.0, 3.0, (side, side, 3))
        Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)).save(path, quality=quality)
    return paths


# --------------------------------------------------------------------------- #
# One core: the per-image stages
# --------------------------------------------------------------------------- #


def _crop_box(w: int, h: int):
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return left, top, left + side, top + side


def _pil_full(path: str, size: int) -> torch.Tensor:
    """The reference path: full decode, PIL bicubic resize, numpy float conversion."""
    im = face_datasets.open_rgb(path)
    im = im.resize((size, size), Image.Resampling.BICUBIC, box=_crop_box(*im.size))
    arr = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def _pil_draft(path: str, size: int) -> torch.Tensor:
    """DCT-domain draft decode, then PIL's bicubic resize."""
    im = face_datasets.open_rgb(path, draft=size)
    im = im.resize((size, size), Image.Resampling.BICUBIC, box=_crop_box(*im.size))
    arr = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def _simplejpeg_loader(simplejpeg) -> Callable[[str, int], torch.Tensor]:
    """simplejpeg decode (with its DCT scaling), then the same resize as load_image."""

    def load(path: str, size: int) -> torch.Tensor:
        with open(path, "rb") as fh:
            data = fh.read()
        arr = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=size, min_width=size)
        x = face_datasets._square_resize(Image.fromarray(arr), size)
        return dequantize(x)

    return load


def _decode_only(path: str, draft: Optional[int]) -> None:
    with Image.open(path) as im:
        if draft is not None:
            im.draft(None, (draft, draft))
        im.load()


def jpeg_stages(size: int) -> Dict[str, Callable[[str], Any]]:
    """The per-image JPEG variants compared on one core, by name."""
    stages: Dict[str, Callable[[str], Any]] = {
        "decode_full": lambda p: _decode_only(p, None),
        "decode_draft": lambda p: _decode_only(p, size),
        "pil_full_decode_pil_resize": lambda p: _pil_full(p, size),
        "pil_draft_decode_pil_resize": lambda p: _pil_draft(p, size),
        "load_image_no_draft": lambda p: face_datasets.load_image(p, size, draft=False),
        "load_image": lambda p: face_datasets.load_image(p, size),
    }
    try:
        import simplejpeg
    except ImportError:
        return stages
    load = _simplejpeg_loader(simplejpeg)

    def decode(p: str) -> None:
        with open(p, "rb") as fh:
            simplejpeg.decode_jpeg(fh.read(), colorspace="RGB")

    stages["decode_simplejpeg"] = decode
    stages["simplejpeg_torch_resize"] = lambda p: load(p, size)
    return stages


def time_stages(stages: Dict[str, Callable[[Any], Any]], items_of: Callable[[int], Sequence[Any]], *,
                warmup: int, repeats: int) -> Dict[str, Dict[str, Any]]:
    """Images per second of each stage: interleaved repeats, each over ``items_of(r)``."""
    counter = {name: 0 for name in stages}
    n_items = len(items_of(0))

    def case(name: str) -> Callable[[], None]:
        def run() -> None:
            fn = stages[name]
            for item in items_of(counter[name]):
                fn(item)
            counter[name] += 1
        return run

    timings = common.run_interleaved({n: case(n) for n in stages}, torch.device("cpu"), warmup=warmup,
                                     repeats=repeats)
    out = {}
    for name, t in timings.items():
        rate = common.rate_summary(t["seconds"], n_items)
        out[name] = {"images_per_second": rate["median"], "images_per_second_spread": rate,
                     "ms_per_image": 1e3 / rate["median"], "images_per_repeat": n_items}
    return out


# --------------------------------------------------------------------------- #
# DataLoader
# --------------------------------------------------------------------------- #

#: glibc's ``mallopt`` parameters and the values :func:`retain_freed_memory` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
RETAIN_MMAP_THRESHOLD = 256 * 1024**2
RETAIN_TRIM_THRESHOLD = 1024**3


def retain_freed_memory() -> bool:
    """Keep freed memory in the heap of this process (and of workers forked later).

    glibc serves a block above its mmap threshold (128 KiB to 32 MiB,
    adapted at run time) with a fresh ``mmap`` and gives it back on
    ``free``, so every new image or batch tensor of a DataLoader touches
    fresh pages: one page fault per 4 KiB, about half of the cost of a
    224-pixel JPEG item on the development machine. Raising the mmap
    threshold to 256 MiB and the trim threshold to 1 GiB makes freed blocks
    reusable. The same as starting Python with
    ``MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824``.

    Returns
    -------
    bool
        True when both settings were accepted (glibc), False elsewhere.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, RETAIN_MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, RETAIN_TRIM_THRESHOLD))



def random_batches(n: int, batch_size: int, count: int, seed: int) -> List[List[int]]:
    """``count`` batches of random indices, epoch after epoch (as ``train.py``'s BatchSource)."""
    g = torch.Generator().manual_seed(seed)
    batches: List[List[int]] = []
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"the dataset has {n} images, fewer than one batch of {batch_size}")
    while len(batches) < count:
        order = torch.randperm(n, generator=g)
        batches += [order[k * batch_size:(k + 1) * batch_size].tolist() for k in range(per_epoch)]
    return batches[:count]


def time_dataloader(dataset, workers: int, *, batch_size: int, batches: int, warmup_batches: int, repeats: int,
                    pin_memory: bool, seed: int) -> Dict[str, Any]:
    """Images per second of a DataLoader over ``dataset`` with ``workers`` processes."""
    total = warmup_batches + repeats * batches
    sampler = random_batches(len(dataset), batch_size, total, seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
    )
    seconds: List[float] = []
    t0 = time.perf_counter()
    it = iter(loader)
    first = None
    for _ in range(warmup_batches):
        item = next(it)
        if first is None:
            first = time.perf_counter() - t0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(batches):
            item = next(it)
        seconds.append(time.perf_counter() - t)
    shape = list(item["image"].shape)
    del it, loader
    per_repeat = batches * batch_size
    rate = common.rate_summary(seconds, per_repeat)
    return {
        "workers": workers,
        "images_per_second": rate["median"],
        "images_per_second_per_worker": rate["median"] / max(workers, 1),
        "images_per_second_spread": rate,
        "seconds_per_batch": common.summarize([s / batches for s in seconds]),
        "first_batch_seconds": first,
        "batch_shape": shape,
        "batch_dtype": str(item["image"].dtype).replace("torch.", ""),
        "pinned": bool(item["image"].is_pinned()) if pin_memory else False,
    }


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def _int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loader.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sources", default="synthetic,jpeg", help="comma-separated: synthetic, jpeg")
    p.add_argument("--workers", type=_int_list, default=[0, 1, 2], help="DataLoader worker counts, e.g. 0,1,2 or 8,16")
    p.add_argument("--image-size", type=int, default=224, help="side of the images the loader delivers")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--batches", type=int, default=8, help="batches per timed DataLoader run")
    p.add_argument("--warmup-batches", type=int, default=2, help="untimed batches after the workers start")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    p.add_argument("--single-core-images", type=int, default=64,
                   help="images per repeat of the one-core stage timings (0: skip them)")
    p.add_argument("--jpeg-sizes", type=int, nargs="+", default=[250, 512],
                   help="sides of the generated JPEG files (250: a CACD-like crop; 512: a larger photo)")
    p.add_argument("--jpeg-count", type=int, default=256, help="JPEG files per size (read again and again)")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality of the generated files")
    p.add_argument("--jpeg-dir", default=None,
                   help="read this folder of face images instead (any naming that scan_dataset reads); "
                        "--jpeg-sizes is then ignored")
    p.add_argument("--num-subjects", type=int, default=None,
                   help="synthetic subjects (default: enough that no image is rendered twice)")
    p.add_argument("--pin-memory", action=argparse.BooleanOptionalAction, default=None,
                   help="pin batches (default: when CUDA is available, as train.py)")
    p.add_argument("--malloc", default="default,retain",
                   help="allocator settings to time the DataLoader with, in order: default (glibc's), retain "
                        "(freed memory kept for reuse: retain_freed_memory)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (workers always use 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the faces, the files and the batch order")
    p.add_argument("--json-out", default=None, help="also write the JSON to this file")
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> List[str]:
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    bad = [s for s in sources if s not in ("synthetic", "jpeg")]
    if bad or not sources:
        parser.error(f"--sources: expected synthetic and/or jpeg, got {args.sources!r}")
    for name in ("batch_size", "batches", "repeats", "jpeg_count", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}")
    for name in ("warmup_batches", "single_core_images"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')}: must be >= 0, got {getattr(args, name)}")
    if args.warmup_batches < 1 and any(w > 0 for w in args.workers):
        parser.error("--warmup-batches: give at least 1 with worker processes (their start-up is not timed)")
    args.malloc = [m.strip() for m in args.malloc.split(",") if m.strip()]
    if (not args.malloc or any(m not in ("default", "retain") for m in args.malloc)
            or len(set(args.malloc)) < len(args.malloc)):
        parser.error(f"--malloc: expected default and/or retain, got {','.join(args.malloc)!r}")
    if args.malloc == ["retain", "default"]:
        parser.error("--malloc: give default before retain (glibc's settings cannot be put back)")
    if ("synthetic" in sources
            and not synthetic_faces.MIN_IMAGE_SIZE <= args.image_size <= synthetic_faces.MAX_IMAGE_SIZE):
        parser.error(f"--image-size: synthetic faces render at {synthetic_faces.MIN_IMAGE_SIZE} to "
                     f"{synthetic_faces.MAX_IMAGE_SIZE} pixels, got {args.image_size}")
    if not 8 <= args.image_size <= 4096:
        parser.error(f"--image-size: must be in [8, 4096], got {args.image_size}")
    if not 1 <= args.jpeg_quality <= 100:
        parser.error(f"--jpeg-quality: must be in [1, 100], got {args.jpeg_quality}")
    if any(s < 8 for s in args.jpeg_sizes):
        parser.error(f"--jpeg-sizes: must be >= 8, got {args.jpeg_sizes}")
    return sources


def _synthetic_source(args: argparse.Namespace) -> Tuple[Any, Dict[str, Any]]:
    needed = (args.warmup_batches + args.repeats * args.batches) * args.batch_size
    n_subjects = args.num_subjects or (needed + 4) // 5
    ds = synthetic_faces.SyntheticFaces(num_subjects=n_subjects, image_size=args.image_size, seed=args.seed)
    out: Dict[str, Any] = {"dataset": repr(ds), "images": len(ds)}
    if args.single_core_images:
        n, warm = args.single_core_images, 1
        # every repeat renders images it has not rendered before (nothing cached)
        single = synthetic_faces.SyntheticFaces(num_subjects=(n * (warm + args.repeats) + 4) // 5,
                                                image_size=args.image_size, seed=args.seed + 1)
        out["one_core"] = time_stages({"render": single.__getitem__},
                                      lambda r: range(r * n, (r + 1) * n), warmup=warm, repeats=args.repeats)
    return ds, out


def _jpeg_source(args: argparse.Namespace, folder: str, side: Optional[int]) -> Tuple[Any, Dict[str, Any]]:
    if side is not None:
        make_jpeg_folder(folder, args.jpeg_count, side, quality=args.jpeg_quality, seed=args.seed)
    records = face_datasets.scan_dataset(folder, kind="auto", strict=False)
    ds = face_datasets.FaceImageDataset(records, args.image_size, clip_young=True)
    paths = [str(r.path) for r in records]
    sizes = [os.path.getsize(p) for p in paths]
    with Image.open(paths[0]) as im:
        first_size = list(im.size)
    out: Dict[str, Any] = {
        "dataset": repr(ds), "images": len(ds), "folder": folder if side is None else "(temporary)",
        "files": {"count": len(paths), "side": side, "first_file_size": first_size,
                  "quality": args.jpeg_quality if side is not None else None,
                  "mean_bytes": float(np.mean(sizes))},
    }
    if args.single_core_images:
        n = min(args.single_core_images, len(paths))
        out["one_core"] = time_stages(jpeg_stages(args.image_size), lambda r: paths[:n], warmup=1,
                                      repeats=args.repeats)
    return ds, out


def _time_loaders(ds, args: argparse.Namespace) -> Dict[str, Any]:
    out = {}
    for w in args.workers:
        out[str(w)] = time_dataloader(
            ds, w, batch_size=min(args.batch_size, len(ds)), batches=args.batches,
            warmup_batches=args.warmup_batches, repeats=args.repeats, pin_memory=args.pin_memory, seed=args.seed)
    return out


def summary(result: Dict[str, Any], cores: int = 16) -> Dict[str, Any]:
    """Per-core rate, the extrapolation to ``cores`` cores and the workers the GPU target needs.

    The per-core rate is the DataLoader's with one worker (the best kept
    allocator setting measured), else the one-core stage rate.
    """
    candidates = [(r["1"]["images_per_second"], f"DataLoader with 1 worker, malloc {m}")
                  for m, r in result.get("dataloader", {}).items() if "1" in r]
    if candidates:
        per_core, basis = max(candidates)
    elif "one_core" in result:
        stage = "render" if "render" in result["one_core"] else "load_image"
        per_core, basis = result["one_core"][stage]["images_per_second"], f"one core, {stage}"
    else:
        runs = [r for rr in result.get("dataloader", {}).values() for r in rr.values()]
        per_core, basis = max(r["images_per_second_per_worker"] for r in runs), "best rate per worker"
    workers = max(cores - 1, 1)
    return {
        "images_per_second_per_core": per_core,
        "per_core_basis": basis,
        f"extrapolated_images_per_second_{cores}_cores": per_core * workers,
        "extrapolation": f"{workers} workers x the per-core rate (one core left to the training process); "
                         "assumes linear scaling, not measured here",
        "gpu_target_images_per_second": GPU_TARGET_IMAGES_PER_SECOND,
        "workers_for_gpu_target": math.ceil(GPU_TARGET_IMAGES_PER_SECOND / per_core) if per_core > 0 else None,
    }


def table(results: Dict[str, Any]) -> str:
    """A short human-readable table of the results."""
    lines = [f"{'source':<10} {'what':<40} {'img/s':>8} {'img/s/worker':>13} {'1st batch s':>12}"]
    for name, r in results.items():
        for stage, s in r.get("one_core", {}).items():
            lines.append(f"{name:<10} {'1 core: ' + stage:<40} {s['images_per_second']:>8.0f}")
        for malloc, runs in r.get("dataloader", {}).items():
            for w, s in runs.items():
                first = s["first_batch_seconds"]
                what = f"DataLoader, {w} workers, malloc {malloc}"
                lines.append(f"{name:<10} {what:<40} {s['images_per_second']:>8.0f} "
                             f"{s['images_per_second_per_worker']:>13.0f} "
                             f"{first if first is not None else float('nan'):>12.2f}")
        sm = r.get("summary")
        if sm:
            key = next(k for k in sm if k.startswith("extrapolated_"))
            lines.append(f"{name:<10} {'16 cores (extrapolation)':<40} {sm[key]:>8.0f}   "
                         f"workers for {sm['gpu_target_images_per_second']} img/s: {sm['workers_for_gpu_target']}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    sources = check_args(parser, args)
    if args.pin_memory is None:
        args.pin_memory = torch.cuda.is_available()
    torch.set_num_threads(args.threads)

    results: Dict[str, Any] = {}
    retained = None
    with tempfile.TemporaryDirectory(prefix="loader_bench_") as tmp:
        datasets = {}
        for source in sources:
            if source == "synthetic":
                datasets["synthetic"], results["synthetic"] = _synthetic_source(args)
            elif args.jpeg_dir is not None:
                datasets["jpeg"], results["jpeg"] = _jpeg_source(args, args.jpeg_dir, None)
            else:
                for side in args.jpeg_sizes:
                    name = f"jpeg{side}"
                    datasets[name], results[name] = _jpeg_source(args, os.path.join(tmp, str(side)), side)
        # glibc's settings cannot be put back: every source runs with the default first
        for malloc in args.malloc:
            if malloc == "retain":
                retained = retain_freed_memory()
                if not retained:
                    print("warning: mallopt is not available (not glibc): --malloc retain measures the default",
                          file=sys.stderr)
            for name, ds in datasets.items():
                results[name].setdefault("dataloader", {})[malloc] = _time_loaders(ds, args)
    for r in results.values():
        r["summary"] = summary(r)

    out: Dict[str, Any] = {
        "benchmark": "loader",
        "command": common.command_line(__file__, argv),
        "config": {
            "sources": list(results), "workers": args.workers, "image_size": args.image_size,
            "batch_size": args.batch_size, "pin_memory": args.pin_memory, "prefetch_factor": 4,
            "jpeg_sizes": None if args.jpeg_dir else args.jpeg_sizes, "jpeg_count": args.jpeg_count,
            "jpeg_quality": args.jpeg_quality, "seed": args.seed,
            "load_image_resize": "torch uint8 antialiased bicubic" if face_datasets._TORCH_RESIZE else "PIL bicubic",
        },
        "method": {
            "warmup_batches": args.warmup_batches, "batches_per_repeat": args.batches, "repeats": args.repeats,
            "statistic": "median over repeats; spread as quartiles and min/max",
            "timer": "time.perf_counter around next(iterator) of the DataLoader",
            "one_core": f"{args.single_core_images} images per repeat in this process, {args.threads} torch "
                        "thread(s), 1 warm-up round, stages interleaved",
            "batches": "random permutations of the dataset, epoch after epoch, as train.py's BatchSource",
            "per_worker": "images_per_second / workers (0 workers: the main process, counted as 1)",
            "malloc": "default: glibc's dynamic mmap threshold; retain: mmap threshold 256 MiB and trim threshold "
                      "1 GiB (mallopt) in this process before the workers fork",
            "malloc_retain_applied": retained,
        },
        "metadata": common.metadata(torch.device("cpu")),
        "results": results,
    }
    print(table(results), file=sys.stderr, flush=True)
    common.emit(out, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
