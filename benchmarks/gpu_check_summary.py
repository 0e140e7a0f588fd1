"""Read what ``benchmarks/gpu_check.sh`` wrote and check it.

Writes ``summary.md`` (for people) and ``summary.json`` (for scripts) into
the check's folder and exits non-zero when a check fails:

* every part ran to completion (exit status 0, no timeout);
* the CUDA tests passed and, on a GPU, did not all skip;
* the 2-minute training run logged iterations past ``--attention-after``
  (100) whose mean attention (``attention_mean``) stayed within
  ``[--attention-low, --attention-high]`` ([0.05, 0.98]), and skipped no
  step (``skipped_steps`` is 0 in its last record).

Throughput and utilisation are reported against the design's targets (40% of
the dense bf16 peak of 989 TFLOP/s; the loader at 1,300 images per second)
but do not fail the check: they are goals, not correctness.

Usage::

    python benchmarks/gpu_check_summary.py OUT_DIR [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

#: Dense bf16 peak of an H100 SXM (TFLOP/s), the design's reference.
H100_BF16_PEAK_TFLOPS = 989.0
#: Fraction of that peak the design asks for.
UTILISATION_GOAL = 0.40
#: Images per second the loader must deliver to keep such a GPU fed.
LOADER_GOAL = 1300
#: Morph: about 55,000 images; the paper trains on a 90% split for 100 epochs.
MORPH_IMAGES, TRAIN_FRACTION, EPOCHS = 55_000, 0.9, 100


def read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def read_parts(folder: str) -> List[Dict[str, Any]]:
    """The parts' records from ``parts.tsv``: name, exit status, seconds, status."""
    parts = []
    try:
        with open(os.path.join(folder, "parts.tsv")) as fh:
            for line in fh:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 4 and fields[0] != "part":
                    parts.append({"part": fields[0], "rc": int(fields[1]), "seconds": float(fields[2]),
                                  "status": fields[3], "command": fields[4] if len(fields) > 4 else ""})
    except OSError:
        pass
    return parts


def read_junit(path: str) -> Optional[Dict[str, int]]:
    """Counts of a pytest ``--junitxml`` report: passed, failed, errors, skipped."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    n = {k: sum(int(su.get(k, 0)) for su in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"], "failed": n["failures"],
            "errors": n["errors"], "skipped": n["skipped"]}


def morph_epoch_hours(images_per_second: float, batch_size: int = 64) -> float:
    """Wall time (hours) of the paper's schedule: 100 epochs over the 90% train split of Morph."""
    per_epoch = int(MORPH_IMAGES * TRAIN_FRACTION) // batch_size * batch_size
    return EPOCHS * per_epoch / images_per_second / 3600.0


def train_step_row(name: str, data: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if not data or not data.get("results"):
        return None
    r = next(iter(data["results"].values()))
    ips = r["images_per_second"]
    batch = data["config"]["batch_size"]
    return {
        "case": name, "device_name": data["metadata"].get("device_name"),
        "image_size": data["config"]["image_size"], "batch_size": batch,
        "images_per_second": ips,
        "gflop_per_image": r["flops_per_image"] / 1e9,
        "achieved_tflops": r["achieved_tflops"],
        "utilisation_of_989": r["achieved_tflops"] / H100_BF16_PEAK_TFLOPS,
        "utilisation_own_peak": r.get("utilisation"), "peak_source": r.get("peak_source"),
        "peak_memory_gib": (r["peak_memory_bytes"] or 0) / 1024**3,
        "morph_100_epochs_hours": morph_epoch_hours(ips, batch),
    }


def check_metrics(path: str, *, after: int, low: float, high: float) -> Tuple[bool, str, Dict[str, Any]]:
    """(passed, message, figures) for a training run's ``metrics.jsonl``."""
    try:
        with open(path) as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        return False, f"cannot read {path}: {exc}", {}
    if not records:
        return False, f"{path} holds no record", {}
    late = [r for r in records if r.get("step", 0) > after and "attention_mean" in r]
    last = records[-1]
    figures: Dict[str, Any] = {
        "records": len(records), "last_step": last.get("step"), "skipped_steps": last.get("skipped_steps"),
        "images_per_second_last": last.get("images_per_second"),
    }
    problems = []
    if not late:
        problems.append(f"no record with attention_mean after iteration {after} (last step {last.get('step')})")
    else:
        att = [float(r["attention_mean"]) for r in late]
        figures.update(attention_min=min(att), attention_max=max(att), attention_last=att[-1])
        bad = [(r["step"], float(r["attention_mean"])) for r in late if not low <= float(r["attention_mean"]) <= high]
        if bad:
            problems.append(f"attention_mean left [{low}, {high}] after iteration {after}: "
                            + ", ".join(f"step {s}: {a:.3f}" for s, a in bad[:5]))
    if last.get("skipped_steps") != 0:
        problems.append(f"skipped_steps = {last.get('skipped_steps')} (expected 0)")
    nonfinite = [r.get("step") for r in records
                 if any(isinstance(v, float) and not math.isfinite(v) for v in r.values())]
    if nonfinite:
        problems.append(f"non-finite metrics at steps {nonfinite[:5]}")
    return not problems, "; ".join(problems) or "ok", figures


def fmt(x: Any, spec: str = ".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def build(folder: str, smoke: bool, after: int, low: float, high: float) -> Tuple[Dict[str, Any], str]:
    checks: List[Dict[str, Any]] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"check": name, "passed": bool(passed), "detail": detail})

    parts = read_parts(folder)
    for p in parts:
        ok = p["status"] in ("ok", "skipped-in-smoke")
        check(f"part {p['part']} completed", ok, f"{p['status']} (exit {p['rc']}, {p['seconds']:.0f} s)")
    if not parts:
        check("parts ran", False, "parts.tsv is missing or empty")

    tests = read_junit(os.path.join(folder, "cuda_tests.xml"))
    if tests is None:
        check("CUDA tests", False, "no readable cuda_tests.xml")
    else:
        ran_ok = tests.get("failed", 0) == 0 and tests.get("errors", 0) == 0
        if not smoke and tests.get("passed", 0) == 0:
            ran_ok = False
        check("CUDA tests", ran_ok, f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, "
                                    f"{tests.get('errors', 0)} errors, {tests.get('skipped', 0)} skipped")

    steps = []
    for file in ("train_step_bf16.json", "train_step_bf16_compile.json"):
        data = read_json(os.path.join(folder, file))
        compiled = bool(data and data.get("config", {}).get("compile"))
        row = train_step_row(f"{data['config'].get('low_precision') or 'fp32'}"
                             f"{' + torch.compile' if compiled else ' eager'}"
                             if data and data.get("config") else file, data)
        if row is not None:
            steps.append(row)
    inference = read_json(os.path.join(folder, "inference.json"))
    loader = read_json(os.path.join(folder, "loader.json"))

    metrics_path = os.path.join(folder, "run", "metrics.jsonl")
    passed, detail, run_figures = check_metrics(metrics_path, after=after, low=low, high=high)
    check(f"training run: attention_mean in [{low}, {high}] after iteration {after}, no skipped step", passed, detail)

    ok = all(c["passed"] for c in checks)
    summary = {"passed": ok, "smoke": smoke, "checks": checks, "parts": parts, "train_step": steps,
               "training_run": run_figures}

    lines = [f"# GPU check: {'PASSED' if ok else 'FAILED'}" + (" (CPU smoke run: tiny sizes, no figure is a GPU figure)"
                                                            if smoke else ""), ""]
    device = steps[0]["device_name"] if steps else (inference or {}).get("metadata", {}).get("device_name")
    lines += [f"Device: {device or 'unknown'}; folder `{folder}`.", "", "## Checks", "",
              "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {c['check']} | {'pass' if c['passed'] else 'FAIL'} | {c['detail']} |" for c in checks]

    lines += ["", "## Training iteration (paper networks)", ""]
    if steps:
        lines += ["| case | size, batch | images/s | GFLOP/image | TFLOP/s | of 989 TFLOP/s | own peak (source) "
                  "| peak memory GiB | 100 Morph epochs |", "|---|---|---|---|---|---|---|---|---|"]
        for s in steps:
            own = (f"{s['utilisation_own_peak']:.1%} ({s['peak_source']})" if s["utilisation_own_peak"] is not None
                   else "n/a")
            lines.append(f"| {s['case']} | {s['image_size']}, {s['batch_size']} | {s['images_per_second']:.1f} "
                         f"| {s['gflop_per_image']:.1f} | {s['achieved_tflops']:.1f} | {s['utilisation_of_989']:.1%} "
                         f"| {own} | {s['peak_memory_gib']:.1f} | {s['morph_100_epochs_hours']:.2f} h |")
        best = max(steps, key=lambda s: s["images_per_second"])
        met = best["utilisation_of_989"] >= UTILISATION_GOAL
        lines += ["", f"Goal: {UTILISATION_GOAL:.0%} of 989 TFLOP/s: {'met' if met else 'not met'} "
                      f"(best {best['utilisation_of_989']:.1%}, {best['case']}). 100 epochs of Morph = "
                      f"{EPOCHS} x {int(MORPH_IMAGES * TRAIN_FRACTION)} training images "
                      f"(90% of ~{MORPH_IMAGES:,}); a goal, not a check."]
    else:
        lines.append("No result.")

    lines += ["", "## Inference (5 ages per face)", ""]
    if inference and inference.get("results"):
        lines += ["| case | faces/s | s per face |", "|---|---|---|"]
        for name, r in inference["results"].items():
            lines.append(f"| {name} | {r['faces_per_second']:.2f} | {1 / r['faces_per_second']:.4f} |")
    else:
        lines.append("No result.")

    lines += ["", "## Input pipeline", ""]
    if loader and loader.get("results"):
        lines += ["| source | workers | malloc | images/s | per worker |", "|---|---|---|---|---|"]
        best_rate = {}
        for source, r in loader["results"].items():
            for malloc, runs in r.get("dataloader", {}).items():
                for w, s in runs.items():
                    lines.append(f"| {source} | {w} | {malloc} | {s['images_per_second']:.0f} "
                                 f"| {s['images_per_second_per_worker']:.0f} |")
                    best_rate[source] = max(best_rate.get(source, 0.0), s["images_per_second"])
        lines += ["", "Goal: " + ", ".join(f"{k} {'meets' if v >= LOADER_GOAL else 'misses'} {LOADER_GOAL} img/s "
                                           f"(best {v:.0f})" for k, v in best_rate.items()) + "; a goal, not a check."]
    else:
        lines.append("No result.")

    lines += ["", "## Training run", ""]
    if run_figures:
        lines.append(", ".join(f"{k} {fmt(v, '.3f') if isinstance(v, float) else v}" for k, v in run_figures.items()))
    else:
        lines.append("No metrics.")
    lines += ["", "## Parts", "", "| part | status | seconds | command |", "|---|---|---|---|"]
    lines += [f"| {p['part']} | {p['status']} | {p['seconds']:.0f} | `{p['command']}` |" for p in parts]
    return summary, "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_check_summary.py", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="the folder gpu_check.sh wrote")
    p.add_argument("--smoke", action="store_true", help="a CPU smoke run: skipped CUDA tests are fine")
    p.add_argument("--attention-after", type=int, default=100, help="iterations before the attention check")
    p.add_argument("--attention-low", type=float, default=0.05)
    p.add_argument("--attention-high", type=float, default=0.98)
    args = p.parse_args(argv)
    summary, text = build(args.folder, args.smoke, args.attention_after, args.attention_low, args.attention_high)
    with open(os.path.join(args.folder, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    with open(os.path.join(args.folder, "summary.md"), "w") as fh:
        fh.write(text)
    print(text)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
