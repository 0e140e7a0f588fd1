"""Several ``evaluate_photos.py`` evaluations of one recipe (one per training seed): mean, spread, targets.

::

    python examples/morph_aging/photo_seeds.py RUN_S0/eval RUN_S1/eval RUN_S2/eval \\
        [--out seeds.md] [--json seeds.json] [--min-verification 0.9] [--min-psnr 25]

Each argument is an evaluation folder written by ``evaluate_photos.py`` (or
its ``results.json``, or ``FILE.json#key.key`` for one held inside a larger
JSON file, as ``docs/_static/results/`` holds them). The runs must be seeds
of one recipe: their training configurations may differ only in the seed
and in how the run was kept (output folder, time budget, logging), and the
evaluations must measure alike (data, photos per group, ``--with-young``, false-accept rate, weights,
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
import json
import sys
from typing import Any, Dict, List, Optional

import cli
import files
import photo_summary
from ages import GROUP_NAMES
from cli import EXIT_OK
from photo_summary import ResultsError, check_comparable, load_results, summarize

__all__ = ["render_markdown"]

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
                        help="evaluate_photos.py output folders (or their results.json, or FILE.json#key.key), "
                             "one per seed")
    parser.add_argument("--out", default=None, metavar="FILE.md", help="also write the Markdown here")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the numbers here")
    photo_summary.add_target_flags(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    cli.one_line_warnings()
    args = build_parser().parse_args(argv)
    try:
        results = load_results(args.evaluations)
        check_comparable(results)
    except ResultsError as exc:
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
