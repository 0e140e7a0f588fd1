"""Evaluations of ``evaluate_photos.py`` read back, checked for comparability and summarised over seeds.

What ``photo_seeds.py`` (one recipe over seeds) and ``photo_compare.py``
(several recipes side by side) share: reading results from evaluation folders
or from the JSON files the project records its runs in, the checks that the
results are seeds of one recipe and were measured alike, and the per-group
mean, spread and targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import cli
from ages import NUM_GROUPS
from config import TrainConfig
from metrics import mean_and_spread

__all__ = ["RUN_KEEPING", "SAME_MEASURE", "TOLERANCE", "ResultsError", "add_target_flags", "check_comparable",
           "check_measured_alike", "load_results", "min_margin", "summarize"]

#: Training-config fields that say how a run was kept, not what it learnt: they may differ between seeds.
RUN_KEEPING = frozenset({"seed", "out", "max_minutes", "resume", "overwrite", "progress", "report_to", "workers",
                         "device", "log_every", "sample_every", "checkpoint_every", "num_samples", "data"})
#: Every training-config field's default, for results written before the field existed.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
#: Evaluation fields that must agree for the seeds' figures to be comparable.
SAME_MEASURE = ("split", "with_young", "photos_per_source", "far", "weights")


class ResultsError(Exception):
    """Unreadable or incomparable results: one line, exit status 2."""


def load_results(paths: Sequence[str]) -> List[Dict[str, Any]]:
    """The ``results.json`` of each evaluation folder (or file) in ``paths``, in order.

    A path may also name an evaluation held inside a larger JSON file, as the
    project's recorded runs hold them: ``FILE.json#key.key`` is the object at
    that dotted key path.

    Raises :class:`ResultsError` for a missing or unreadable file, a key path
    the file lacks and a JSON object that is not an ``evaluate_photos.py``
    result.
    """
    out = []
    for path in paths:
        where, _, keys = path.partition("#")
        file = os.path.join(where, "results.json") if os.path.isdir(where) else where
        try:
            with open(file, encoding="utf-8") as fh:
                r = json.load(fh)
        except FileNotFoundError:
            raise ResultsError(f"{file}: no such file (give evaluate_photos.py's --out folder or its results.json)"
                             ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{file}: cannot read it as JSON: {cli.one_line(exc, 200)}") from None
        for i, key in enumerate(keys.split(".") if keys else []):
            if not isinstance(r, dict) or key not in r:
                raise ResultsError(f"{path}: {file} has no key {'.'.join(keys.split('.')[:i + 1])!r}")
            r = r[key]
        missing = [k for k in ("config", "identity", "age", "background") if not isinstance(r, dict) or k not in r]
        if missing:
            raise ResultsError(f"{path}: not an evaluate_photos.py result (no {', '.join(missing)})")
        r = dict(r, path=path) if keys else dict(r, path=r.get("path", file))
        out.append(r)
    return out


def _setting(cfg: Dict[str, Any]) -> Callable[[str], Any]:
    """A result's training setting by name; a field its config lacks (the option came later) is that field's
    default, which is how every run trained before the option existed."""
    return lambda name: cfg[name] if name in cfg else _DEFAULTS.get(name)


def check_comparable(results: Sequence[Dict[str, Any]]) -> None:
    """Raise :class:`ResultsError` unless ``results`` are seeds of one recipe, measured alike.

    The training configurations may differ only in :data:`RUN_KEEPING`; the
    evaluations must agree on :data:`SAME_MEASURE`, on the evaluated data's
    folder name and on the ground-truth folder (or all lack one). Two
    results of one seed are refused too.
    """
    if len(results) < 1:
        raise ResultsError("no results given")
    first = results[0]
    for r in results[1:]:
        keys = sorted((set(first["config"]) | set(r["config"])) - RUN_KEEPING)
        was, now = _setting(first["config"]), _setting(r["config"])
        differ = [k for k in keys if was(k) != now(k)]
        if differ:
            shown = ", ".join(f"{k} ({was(k)!r} vs {now(k)!r})" for k in differ[:4])
            more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
            raise ResultsError(f"{r['path']} is not a seed of {first['path']}'s recipe: {shown}{more} differ")
        check_measured_alike(first, r)
    seeds = [r["config"].get("seed") for r in results]
    twice = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
    if twice:
        raise ResultsError(f"seed(s) {', '.join(map(str, twice))} given more than once")


def check_measured_alike(first: Dict[str, Any], r: Dict[str, Any]) -> None:
    """Raise :class:`ResultsError` unless the evaluations ``first`` and ``r`` measured alike: the same
    :data:`SAME_MEASURE` settings, the same evaluated data's folder name and the same ground-truth folder
    (or both without one). What was trained may differ."""
    measure = [k for k in SAME_MEASURE if first.get(k) != r.get(k)]
    if _folder(first.get("data")) != _folder(r.get("data")):
        measure.append("data")
    if _folder(_gt(first).get("data")) != _folder(_gt(r).get("data")):
        measure.append("ground truth")
    if measure:
        raise ResultsError(f"{r['path']} is measured unlike {first['path']}: {', '.join(measure)} differ")


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


def min_margin(values: Sequence[Optional[float]], bars: Sequence[Optional[float]]) -> Optional[float]:
    """The smallest ``value - bar`` over the pairs where both are known (None where none is)."""
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
                [min_margin(v, [min_verification] * len(v)) for v in ver], "points"),
        _target("age accuracy >= the estimator's on real photos, every group",
                [min_margin(a, b) for a, b in zip(acc, real)], "points"),
        _target("mean estimated age rising for every source group",
                [float(n - s) for n, s in zip(rising, sources)], "sources"),
        _target(f"background PSNR >= {min_psnr:g} dB in every target group",
                [min_margin(p, [min_psnr] * len(p)) for p in psnr], "dB"),
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


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """The targets' bars as flags, ``--min-verification`` and ``--min-psnr`` (the keywords of :func:`summarize`)."""
    parser.add_argument("--min-verification", type=cli.probability, default=0.9, metavar="RATE",
                        help="the verification rate every target group should reach")
    parser.add_argument("--min-psnr", type=cli.finite_float(), default=25.0, metavar="DB",
                        help="the background PSNR every target group should reach")
