"""Several ``evaluate_photos.py`` evaluations of one recipe (one per training seed): mean, spread, targets.

::

    python examples/morph_aging/photo_seeds.py RUN_S0/eval RUN_S1/eval RUN_S2/eval \\
        [--out seeds.md] [--json seeds.json] [--min-verification 0.9] [--min-psnr 25]

Each argument is an evaluation folder written by ``evaluate_photos.py`` (or
its ``results.json``). The runs must be seeds of one recipe: their training
configurations may differ only in the seed and in how the run was kept
(output folder, time budget, logging), and the evaluations must measure
alike (data, photos per group, ``--with-young``, false-accept rate, weights,
ground-truth folder). Each seed holds out its own test subjects, so the
spread covers both the training and the held-out sample.

Per target group: the verification rate (mean, sample standard deviation,
min and max over the seeds) beside copy-the-input, the aged faces' age-group
accuracy beside the estimator's own accuracy on real photos and the critic's
own classifier's accuracy on the aged faces, background PSNR and the masks'
mean; the FG-NET ground-truth rows when every evaluation has
them. Then every target and in how many seeds it is met, with the worst
margin (negative: missed by that much):

* verification at least ``--min-verification`` for every target group;
* age-group accuracy at least the estimator's on real photos of every group;
* the mean estimated age rising with the target group for every source group;
* background PSNR at least ``--min-psnr`` dB for every target group;
* ground truth: the aged photo nearer in estimated age to the real older
  photo than the input is, and verified against it at least as often as the
  input (at the held-out threshold, and at the folder's own threshold).

Writes the Markdown to stdout (and ``--out``), the numbers to ``--json``.
Exit status: 0 summarised, 2 usage error, unreadable or incomparable results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import cli
import files
from ages import GROUP_NAMES, NUM_GROUPS
from cli import EXIT_OK
from config import TrainConfig
from metrics import mean_and_spread

__all__ = ["SeedsError", "check_comparable", "load_results", "render_markdown", "summarize"]

#: Training-config fields that say how a run was kept, not what it learnt: they may differ between seeds.
RUN_KEEPING = frozenset({"seed", "out", "max_minutes", "resume", "overwrite", "progress", "report_to", "workers",
                         "device", "log_every", "sample_every", "checkpoint_every", "num_samples", "data"})
#: Every training-config field's default, for results written before the field existed.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
#: Evaluation fields that must agree for the seeds' figures to be comparable.
SAME_MEASURE = ("split", "with_young", "photos_per_source", "far", "weights")


class SeedsError(Exception):
    """Unreadable or incomparable results: one line, exit status 2."""


def load_results(paths: Sequence[str]) -> List[Dict[str, Any]]:
    """The ``results.json`` of each evaluation folder (or file) in ``paths``, in order.

    Raises :class:`SeedsError` for a missing or unreadable file and for a JSON
    object that is not an ``evaluate_photos.py`` result.
    """
    out = []
    for path in paths:
        file = os.path.join(path, "results.json") if os.path.isdir(path) else path
        try:
            with open(file, encoding="utf-8") as fh:
                r = json.load(fh)
        except FileNotFoundError:
            raise SeedsError(f"{file}: no such file (give evaluate_photos.py's --out folder or its results.json)"
                             ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SeedsError(f"{file}: cannot read it as JSON: {cli.one_line(exc, 200)}") from None
        missing = [k for k in ("config", "identity", "age", "background") if not isinstance(r, dict) or k not in r]
        if missing:
            raise SeedsError(f"{file}: not an evaluate_photos.py result (no {', '.join(missing)})")
        r.setdefault("path", file)
        out.append(r)
    return out


def _setting(cfg: Dict[str, Any]) -> Callable[[str], Any]:
    """A result's training setting by name; a field its config lacks (the option came later) is that field's
    default, which is how every run trained before the option existed."""
    return lambda name: cfg[name] if name in cfg else _DEFAULTS.get(name)


def check_comparable(results: Sequence[Dict[str, Any]]) -> None:
    """Raise :class:`SeedsError` unless ``results`` are seeds of one recipe, measured alike.

    The training configurations may differ only in :data:`RUN_KEEPING`; the
    evaluations must agree on :data:`SAME_MEASURE`, on the evaluated data's
    folder name and on the ground-truth folder (or all lack one). Two
    results of one seed are refused too.
    """
    if len(results) < 1:
        raise SeedsError("no results given")
    first = results[0]
    for r in results[1:]:
        keys = sorted((set(first["config"]) | set(r["config"])) - RUN_KEEPING)
        was, now = _setting(first["config"]), _setting(r["config"])
        differ = [k for k in keys if was(k) != now(k)]
        if differ:
            shown = ", ".join(f"{k} ({was(k)!r} vs {now(k)!r})" for k in differ[:4])
            more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
            raise SeedsError(f"{r['path']} is not a seed of {first['path']}'s recipe: {shown}{more} differ")
        measure = [k for k in SAME_MEASURE if first.get(k) != r.get(k)]
        if _folder(first.get("data")) != _folder(r.get("data")):
            measure.append("data")
        if _folder(_gt(first).get("data")) != _folder(_gt(r).get("data")):
            measure.append("ground truth")
        if measure:
            raise SeedsError(f"{r['path']} is measured unlike {first['path']}: {', '.join(measure)} differ")
    seeds = [r["config"].get("seed") for r in results]
    twice = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
    if twice:
        raise SeedsError(f"seed(s) {', '.join(map(str, twice))} given more than once")


def _folder(path: Optional[str]) -> Optional[str]:
    return None if path is None else os.path.basename(os.path.normpath(path))


def _gt(r: Dict[str, Any]) -> Dict[str, Any]:
    return r.get("ground_truth") or {}


#: Margins this close to 0 count as 0: the results store rates as float32 (144 / 160 reads 0.8999999761...).
TOLERANCE = 1e-6


def _target(name: str, margins: Sequence[Optional[float]], unit: str) -> Dict[str, Any]:
    """A target met in the seeds whose margin is >= 0; the worst margin over the seeds that have one."""
    margins = [None if m is None else 0.0 if abs(m) < TOLERANCE else float(m) for m in margins]
    known = [m for m in margins if m is not None]
    return {"target": name, "margins": list(margins), "met": sum(m >= 0 for m in known), "seeds": len(known),
            "worst": min(known) if known else None, "unit": unit}


def _min_margin(values: Sequence[Optional[float]], bars: Sequence[Optional[float]]) -> Optional[float]:
    pairs = [(v, b) for v, b in zip(values, bars) if v is not None and b is not None]
    return min(v - b for v, b in pairs) if pairs else None


def summarize(results: Sequence[Dict[str, Any]], *, min_verification: float = 0.9,
              min_psnr: float = 25.0) -> Dict[str, Any]:
    """Mean and spread over the seeds per target group, the ground-truth rows, and the targets.

    Parameters
    ----------
    results : sequence of dict
        ``evaluate_photos.py`` results, one per seed (:func:`check_comparable` them first).
    min_verification : float, default 0.9
        The verification rate every target group should reach.
    min_psnr : float, default 25.0
        The background PSNR (dB) every target group should reach.

    Returns
    -------
    dict
        ``seeds``, ``steps``, ``thresholds``, ``per_target`` (one dict of
        :func:`metrics.mean_and_spread` values per group), ``rising`` (sources
        rising per seed), ``ground_truth`` (or None) and ``targets`` (name,
        per-seed margins, seeds met, worst margin, unit).
    """
    ver = [[t.get("verification_rate") for t in r["identity"]["per_target"]] for r in results]
    acc = [r["age"]["accuracy"] for r in results]
    real = [r["age"]["real_accuracy"] for r in results]
    psnr = [[b.get("psnr") for b in r["background"]] for r in results]
    per_target = []
    for t in range(NUM_GROUPS):
        per_target.append({
            "target": t,
            "verification_rate": mean_and_spread([v[t] for v in ver]),
            "copy_rate": mean_and_spread([r["identity"]["per_target"][t].get("copy_rate") for r in results]),
            "age_accuracy": mean_and_spread([a[t] for a in acc]),
            "real_accuracy": mean_and_spread([a[t] for a in real]),
            "critic_accuracy": mean_and_spread([(r["age"].get("critic") or {}).get("accuracy", [None] * NUM_GROUPS)[t]
                                                for r in results]),
            "psnr": mean_and_spread([p[t] for p in psnr]),
            "mask_mean": mean_and_spread([r["background"][t].get("mask_mean") for r in results]),
        })
    rising = [sum(bool(x) for x in r["age"]["rising"]) for r in results]
    sources = [sum(x is not None for x in r["age"]["rising"]) for r in results]
    targets = [
        _target(f"verification >= {min_verification:.0%} in every target group",
                [_min_margin(v, [min_verification] * len(v)) for v in ver], "points"),
        _target("age accuracy >= the estimator's on real photos, every group",
                [_min_margin(a, b) for a, b in zip(acc, real)], "points"),
        _target("mean estimated age rising for every source group",
                [float(n - s) for n, s in zip(rising, sources)], "sources"),
        _target(f"background PSNR >= {min_psnr:g} dB in every target group",
                [_min_margin(p, [min_psnr] * len(p)) for p in psnr], "dB"),
    ]
    gt = None
    if all("aged" in _gt(r) for r in results):
        gt = {"pairs": [_gt(r)["pairs"] for r in results]}
        for row in ("aged", "copy"):
            gt[row] = {k: mean_and_spread([_gt(r)[row].get(k) for r in results])
                       for k in ("verification_rate", "verification_rate_own", "age_gap", "confidence")}
        targets.append(_target("ground truth: aged photo nearer in age to the real older photo than the input",
                               [_gt(r)["copy"]["age_gap"] - _gt(r)["aged"]["age_gap"] for r in results], "years"))
        for key, where in (("verification_rate", "held-out threshold"), ("verification_rate_own", "its own threshold")):
            margins = [None if _gt(r)["aged"].get(key) is None else _gt(r)["aged"][key] - _gt(r)["copy"][key]
                       for r in results]
            if any(m is not None for m in margins):
                targets.append(_target(f"ground truth: aged verified as often as the input ({where})", margins,
                                       "points"))
    return {"paths": [r["path"] for r in results], "seeds": [r["config"].get("seed") for r in results],
            "steps": [r.get("step") for r in results],
            "thresholds": [r["identity"]["threshold"].get("threshold") for r in results],
            "per_target": per_target, "rising": rising, "sources": sources, "ground_truth": gt, "targets": targets}


def _stat(s: Optional[Dict[str, Any]], scale: float = 100.0, spec: str = "{:.1f}") -> str:
    """``mean ± std [min-max]``; the spread is left out for one seed."""
    if s is None:
        return "-"
    f = lambda x: spec.format(scale * x)  # noqa: E731
    return f(s["mean"]) if s["n"] == 1 else f"{f(s['mean'])} ± {f(s['std'])} [{f(s['min'])}-{f(s['max'])}]"


def _margin(target: Dict[str, Any]) -> str:
    w = target["worst"]
    if w is None:
        return "-"
    scale, spec = {"points": (100.0, "{:+.1f}"), "sources": (1.0, "{:+.0f}")}.get(target["unit"], (1.0, "{:+.1f}"))
    return f"{spec.format(scale * w)} {target['unit']}"


def render_markdown(summary: Dict[str, Any]) -> str:
    """The Markdown of :func:`summarize`'s result: per-group table, ground truth, targets."""
    n = len(summary["seeds"])
    lines = ["# AcGANs on photographs over seeds", "",
             f"{n} evaluation(s): seeds {', '.join(map(str, summary['seeds']))} at step(s) "
             f"{', '.join(map(str, summary['steps']))}; thresholds (confidence, per seed's held-out sample) "
             + ", ".join("-" if t is None else f"{t:.1f}" for t in summary["thresholds"]) + ".", "",
             ("Mean ± sample standard deviation [min-max] over the seeds" if n > 1 else
              "One seed, so no spread") + "; rates in %.", "",
             "| target | verified | copy-the-input | age accuracy | estimator on real | critic's classifier on "
             "the aged faces | background PSNR (dB) | mask mean |", "|---|---|---|---|---|---|---|---|"]
    for row in summary["per_target"]:
        lines.append(f"| {GROUP_NAMES[row['target']]} | {_stat(row['verification_rate'])} | "
                     f"{_stat(row['copy_rate'])} | {_stat(row['age_accuracy'])} | {_stat(row['real_accuracy'])} | "
                     f"{_stat(row['critic_accuracy'])} | "
                     f"{_stat(row['psnr'], 1.0)} | {_stat(row['mask_mean'], 1.0, '{:.2f}')} |")
    lines += ["", "Source groups whose mean estimated age rises with the target group, per seed: "
              + ", ".join(f"{a} of {b}" for a, b in zip(summary["rising"], summary["sources"])) + ".", ""]
    gt = summary["ground_truth"]
    if gt:
        lines += ["## Ground truth of aging", "", f"Pairs per seed: {', '.join(map(str, gt['pairs']))}.", "",
                  "| | verified (held-out threshold) | verified (its own threshold) | estimated-age gap (years) |",
                  "|---|---|---|---|"]
        for row, label in (("aged", "aged photo"), ("copy", "copy-the-input")):
            m = gt[row]
            lines.append(f"| {label} | {_stat(m['verification_rate'])} | {_stat(m['verification_rate_own'])} | "
                         f"{_stat(m['age_gap'], 1.0)} |")
        lines.append("")
    lines += ["## Targets", "", "| target | met in | worst margin |", "|---|---|---|"]
    for t in summary["targets"]:
        lines.append(f"| {t['target']} | {t['met']} of {t['seeds']} seeds | {_margin(t)} |")
    lines += ["", "A negative margin is the amount by which the worst seed misses the target.", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photo_seeds.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("evaluations", nargs="+", metavar="EVAL",
                        help="evaluate_photos.py output folders (or their results.json), one per seed")
    parser.add_argument("--out", default=None, metavar="FILE.md", help="also write the Markdown here")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the numbers here")
    parser.add_argument("--min-verification", type=cli.probability, default=0.9, metavar="RATE",
                        help="the verification rate every target group should reach")
    parser.add_argument("--min-psnr", type=cli.finite_float(), default=25.0, metavar="DB",
                        help="the background PSNR every target group should reach")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    cli.one_line_warnings()
    args = build_parser().parse_args(argv)
    try:
        results = load_results(args.evaluations)
        check_comparable(results)
    except SeedsError as exc:
        return cli.fail("photo_seeds.py", exc)
    summary = summarize(results, min_verification=args.min_verification, min_psnr=args.min_psnr)
    text = render_markdown(summary)
    try:
        if args.out:
            files.write_text(args.out, text)
        if args.json:
            files.write_text(args.json, json.dumps(summary, indent=1) + "\n")
    except files.WriteError as exc:
        return cli.fail("photo_seeds.py", exc)
    sys.stdout.write(text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
