"""Rendering throughput of the built-in synthetic face dataset.

Method: one process, ``torch.set_num_threads(1)`` (what one DataLoader worker
gets), a fixed seed; for each image size, a warm-up pass over 20 images, then
``--repeats`` timed passes over ``--images`` consecutive items
(``dataset[i]``, i.e. rendering plus the dict); the median pass gives
images per second. Identity parameters are cached per subject, so the timed
passes use fresh image indices each time to measure uncached backgrounds.

Prints JSON: ``{"images_per_second": {"64": ..., "128": ..., "224": ...}, ...}``.

Usage::

    python benchmarks/synthetic_faces.py [--sizes 64 128 224] [--images 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "morph_aging"))

from synthetic_faces import SyntheticFaces  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--images", type=int, default=200, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per size (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    results = {}
    for size in args.sizes:
        n_total = 20 + args.images * args.repeats
        ds = SyntheticFaces(num_subjects=(n_total + 4) // 5, images_per_subject=5, image_size=size, seed=args.seed)
        for i in range(20):
            ds[i]
        rates = []
        for r in range(args.repeats):
            start = 20 + r * args.images
            t0 = time.perf_counter()
            for i in range(start, start + args.images):
                ds[i]
            rates.append(args.images / (time.perf_counter() - t0))
        results[str(size)] = round(statistics.median(rates), 1)

    print(
        json.dumps(
            {
                "images_per_second": results,
                "method": f"median of {args.repeats} passes of {args.images} images, 1 thread, after 20 warm-up images",
                "torch": torch.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "processor": platform.processor() or None,
                "seed": args.seed,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
