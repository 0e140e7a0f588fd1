"""Several recipes on photographs side by side: where each lands against the targets, in a table and a picture.

::

    python examples/morph_aging/photo_compare.py "baseline=RUN_A/eval" "judge 30=RUN_B/eval" \\
        "three seeds=S0/eval,S1/eval,S2/eval" [--out table.md] [--rst table.rst] [--json table.json] \\
        [--plot tradeoff.png] [--min-verification 0.9] [--min-psnr 25]

Each argument is ``LABEL=EVAL[,EVAL...]`` (or ``@FILE``, a file of such
arguments, one per line): a recipe's name and its
``evaluate_photos.py`` evaluations, one per training seed, each an output
folder, its ``results.json`` or ``FILE.json#key.key`` (one held inside a larger
JSON file, as ``docs/_static/results/`` holds them). The evaluations of one
recipe must be seeds of it (:func:`photo_summary.check_comparable`); all of them
must have measured alike (the same photos per group, ``--with-young``,
false-accept rate, weights, data and ground-truth folders), so that the rows
differ only in what was trained.

One row per recipe, the mean over its seeds: the worst target group's
verification rate, the worst group's age accuracy minus the estimator's own on
real photos, the age accuracy of every group, the source groups whose
estimated age rises with the target, the worst group's background PSNR, the
FG-NET ground truth (the aged photo verified against the same person's real
older photo, and its estimated-age gap to it, each beside copy-the-input), and
how many of the issue's targets every seed meets.

``--plot`` draws the trade-off (needs the ``plots`` extra): per recipe, the
worst group's verification against the worst group's age margin on the
held-out photos, and FG-NET's verification against the age gap with
copy-the-input as a point of its own; each seed is a small dot and the
recipe's mean a labelled marker, the targets are shaded.

Exit status: 0 compared, 2 usage error, unreadable or incomparable results.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cli
import files
import photo_summary
from ages import GROUP_NAMES, NUM_GROUPS
from cli import EXIT_OK
from photo_summary import ResultsError

__all__ = ["compare", "parse_recipe", "plot_tradeoff", "render_markdown", "render_rst"]


def parse_recipe(text: str) -> Tuple[str, List[str]]:
    """``LABEL=EVAL[,EVAL...]`` as ``(label, [eval, ...])``.

    Raises :class:`photo_summary.ResultsError` (one line) for a missing ``=``, an
    empty label or an empty evaluation.
    """
    label, sep, rest = text.partition("=")
    label = label.strip()
    if not sep or not label:
        raise ResultsError(f"{text!r}: give a recipe as LABEL=EVAL[,EVAL...] (e.g. 'baseline=runs/a/eval')")
    evals = [e.strip() for e in rest.split(",")]
    if not all(evals):
        raise ResultsError(f"{text!r}: an empty evaluation in {label!r} (separate a recipe's seeds by single commas)")
    return label, evals


def _mean(stat: Optional[Dict[str, Any]]) -> Optional[float]:
    return None if stat is None else stat["mean"]


def _worst(values: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _recipe_row(label: str, results: Sequence[Dict[str, Any]], summary: Dict[str, Any]) -> Dict[str, Any]:
    """One recipe's row: means over its seeds, per seed where a picture shows the spread."""
    per = summary["per_target"]
    ver = [_mean(p["verification_rate"]) for p in per]
    acc = [_mean(p["age_accuracy"]) for p in per]
    real = [_mean(p["real_accuracy"]) for p in per]
    per_seed = []
    for r in results:
        v = [t.get("verification_rate") for t in r["identity"]["per_target"]]
        gt = r.get("ground_truth") or {}
        per_seed.append({"seed": r["config"].get("seed"), "worst_verification": _worst(v),
                         "worst_age_margin": photo_summary.min_margin(r["age"]["accuracy"],
                                                                      r["age"]["real_accuracy"]),
                         "gt_verification": (gt.get("aged") or {}).get("verification_rate"),
                         "gt_age_gap": (gt.get("aged") or {}).get("age_gap")})
    gt = summary["ground_truth"]
    return {
        "label": label, "paths": summary["paths"], "seeds": summary["seeds"], "steps": summary["steps"],
        "worst_verification": _worst(ver), "verification": ver,
        "worst_age_margin": photo_summary.min_margin(acc, real), "age_accuracy": acc, "real_accuracy": real,
        "rising": sum(summary["rising"]) / len(summary["rising"]), "sources": max(summary["sources"]),
        "worst_psnr": _worst([_mean(p["psnr"]) for p in per]),
        "gt": None if gt is None else {row: {k: _mean(gt[row][k]) for k in ("verification_rate", "age_gap")}
                                       for row in ("aged", "copy")},
        "targets_met": sum(t["met"] == t["seeds"] > 0 for t in summary["targets"]),
        "targets": len(summary["targets"]), "per_seed": per_seed,
    }


def compare(recipes: Sequence[Tuple[str, Sequence[Dict[str, Any]]]], *, min_verification: float = 0.9,
            min_psnr: float = 25.0) -> Dict[str, Any]:
    """Rows of several recipes measured alike.

    Parameters
    ----------
    recipes : sequence of (str, sequence of dict)
        Each recipe's label and its ``evaluate_photos.py`` results, one per seed.
    min_verification, min_psnr : float
        The targets' bars, as in :func:`photo_summary.summarize`.

    Returns
    -------
    dict
        ``rows`` (one per recipe, in order) and the bars.

    Raises
    ------
    photo_summary.ResultsError
        No recipe, a label given twice, a recipe whose results are not seeds of
        one recipe, or results measured unlike the first recipe's.
    """
    if not recipes:
        raise ResultsError("no recipes given")
    labels = [label for label, _ in recipes]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ResultsError(f"recipe label(s) {', '.join(map(repr, twice))} given more than once")
    for _, results in recipes:
        photo_summary.check_comparable(results)
    first = recipes[0][1][0]
    rows = []
    for label, results in recipes:
        for r in results:
            photo_summary.check_measured_alike(first, r)
        summary = photo_summary.summarize(results, min_verification=min_verification, min_psnr=min_psnr)
        rows.append(_recipe_row(label, results, summary))
    return {"rows": rows, "min_verification": min_verification, "min_psnr": min_psnr}


def _pct(x: Optional[float], spec: str = "{:.0f}") -> str:
    return "-" if x is None else spec.format(100 * x)


def _cells(row: Dict[str, Any]) -> List[str]:
    gt = row["gt"]
    fg = "-" if gt is None else (f"{_pct(gt['aged']['verification_rate'], '{:.1f}')} / "
                                 f"{_pct(gt['copy']['verification_rate'], '{:.1f}')}")
    gap = "-" if gt is None else f"{gt['aged']['age_gap']:.1f} / {gt['copy']['age_gap']:.1f}"
    n = len(row["seeds"])
    return [row["label"], f"{n} ({', '.join(map(str, row['seeds']))})", _pct(row["worst_verification"]),
            "-" if row["worst_age_margin"] is None else f"{100 * row['worst_age_margin']:+.0f}",
            " / ".join(_pct(a) for a in row["age_accuracy"]), f"{row['rising']:.3g} of {row['sources']}",
            "-" if row["worst_psnr"] is None else f"{row['worst_psnr']:.1f}", fg, gap,
            f"{row['targets_met']} of {row['targets']}"]


def _header(table: Dict[str, Any]) -> List[str]:
    return ["recipe", "seeds", f"verified, worst group (%; target {_pct(table['min_verification'])})",
            "age accuracy minus the estimator's, worst group (points; target >= 0)",
            "age accuracy per target group " + " / ".join(GROUP_NAMES[:NUM_GROUPS]) + " (%)",
            "rising (source groups)", f"background PSNR, worst group (dB; target {table['min_psnr']:g})",
            "FG-NET verified: aged / copy (%)", "FG-NET age gap: aged / copy (years)", "targets met in every seed"]


def _notes(table: Dict[str, Any]) -> List[str]:
    lines = ["Each figure is the mean over the recipe's seeds; the worst group is taken after averaging."]
    first = table["rows"][0]
    if all(a is not None for a in first["real_accuracy"]):
        lines.append(f"The estimator on real photos of each group ({first['label']}'s photos"
                     + (", mean over its seeds" if len(first["seeds"]) > 1 else "") + "): "
                     + " / ".join(_pct(a) for a in first["real_accuracy"]) + "%.")
    return lines


def render_markdown(table: Dict[str, Any]) -> str:
    """The Markdown table of :func:`compare`'s result."""
    head = _header(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in table["rows"]]
    return "\n".join(lines + [""] + _notes(table)) + "\n"


def render_rst(table: Dict[str, Any]) -> str:
    """The same table as a reStructuredText list-table, for Sphinx to include."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [_header(table)] + [_cells(row) for row in table["rows"]]:
        lines.append("   * - " + cells[0])
        lines += [f"     - {c}" for c in cells[1:]]
    return "\n".join(lines + [""] + _notes(table)) + "\n"


#: Markers of the recipes, one per ten (matplotlib's tab10 has ten colours): every recipe is told apart.
RECIPE_MARKERS = ("o", "D", "^", "v", "P")


def recipe_style(i: int) -> Tuple[Tuple[float, ...], str]:
    """The colour and the marker of recipe ``i`` in the plot: tab10's colours, a new marker every ten recipes.

    >>> recipe_style(0)[1], recipe_style(10)[1], recipe_style(0)[0] == recipe_style(10)[0]
    ('o', 'D', True)
    """
    import matplotlib.pyplot as plt

    return plt.get_cmap("tab10")(i % 10), RECIPE_MARKERS[(i // 10) % len(RECIPE_MARKERS)]


def _shade_target(ax: Any, x: float, y: float, *, up: bool) -> None:
    """Dashed lines through ``(x, y)`` and the corner right of ``x`` and above (``up``) or below ``y``
    shaded, with the axes widened to show the corner."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    pad_x, pad_y = 0.05 * (max(x1, x) - min(x0, x) or 1.0), 0.05 * (max(y1, y) - min(y0, y) or 1.0)
    x0, x1 = min(x0, x - pad_x), max(x1, x + pad_x)
    y0, y1 = min(y0, y - pad_y), max(y1, y + pad_y)
    ax.axvline(x, color="0.5", lw=0.8, ls="--")
    ax.axhline(y, color="0.5", lw=0.8, ls="--")
    ax.fill_between([x, x1], y, y1 if up else y0, color="0.9", zorder=0)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def plot_tradeoff(table: Dict[str, Any], path: str) -> None:
    """Write the trade-off picture of :func:`compare`'s result to ``path`` (PNG; the ``plots`` extra).

    Raises :class:`photo_summary.ResultsError` without matplotlib, naming the extra.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ResultsError("--plot needs matplotlib: " + cli.install_hint("plots")) from None
    rows = table["rows"]
    with_gt = any(r["gt"] for r in rows)
    columns = 2 if with_gt else 1
    legend_lines = -(-(len(rows) + with_gt) // columns)  # one legend under the panels, never over a point
    legend_height, panel_height = 0.25 * legend_lines + 0.2, 5.2  # inches
    height = panel_height + legend_height
    fig, axes = plt.subplots(1, columns, figsize=(12 if with_gt else 6.5, height), squeeze=False)
    ax = axes[0][0]
    for i, row in enumerate(rows):
        c, marker = recipe_style(i)
        seeds = [(s["worst_verification"], s["worst_age_margin"]) for s in row["per_seed"]
                 if s["worst_verification"] is not None and s["worst_age_margin"] is not None]
        ax.scatter([100 * v for v, _ in seeds], [100 * m for _, m in seeds], s=14, color=c, marker=marker,
                   alpha=0.5)
        if row["worst_verification"] is not None and row["worst_age_margin"] is not None:
            ax.scatter([100 * row["worst_verification"]], [100 * row["worst_age_margin"]], s=70, color=c,
                       marker=marker, edgecolor="black", label=row["label"], zorder=3)
    ax.set_xlabel("verified as the same person, worst target group (%)")
    ax.set_ylabel("age accuracy minus the estimator's on real photos,\nworst target group (points)")
    ax.set_xlim(right=max(ax.get_xlim()[1], 101.0))
    _shade_target(ax, 100 * table["min_verification"], 0.0, up=True)
    ax.set_title("held-out photos (the targets: the shaded corner;\ncopy-the-input verifies 100%)", fontsize=9)
    if with_gt:
        ax = axes[0][1]
        copies = [(r["gt"]["copy"]["verification_rate"], r["gt"]["copy"]["age_gap"]) for r in rows if r["gt"]]
        cv, cg = (sum(x) / len(copies) for x in zip(*copies))
        ax.scatter([100 * cv], [cg], marker="s", s=70, color="white", edgecolor="black", label="copy-the-input",
                   zorder=3)
        for i, row in enumerate(rows):
            if not row["gt"]:
                continue
            c, marker = recipe_style(i)
            seeds = [(s["gt_verification"], s["gt_age_gap"]) for s in row["per_seed"]
                     if s["gt_verification"] is not None and s["gt_age_gap"] is not None]
            ax.scatter([100 * v for v, _ in seeds], [g for _, g in seeds], s=14, color=c, marker=marker, alpha=0.5)
            ax.scatter([100 * row["gt"]["aged"]["verification_rate"]], [row["gt"]["aged"]["age_gap"]], s=70,
                       color=c, marker=marker, edgecolor="black", label=row["label"], zorder=3)
        ax.set_xlabel("aged photo verified against the real older photo (%)")
        ax.set_ylabel("estimated-age gap to the real older photo (years)")
        _shade_target(ax, 100 * cv, cg, up=False)
        ax.set_title("FG-NET ground truth (the target: the shaded corner,\nverified as often as the input and "
                     "nearer in age)", fontsize=9)
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height / height, 1, 1))
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot write the picture: {cli.one_line(exc, 200)}") from None
    finally:
        plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photo_compare.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=cli.HelpFormatter, fromfile_prefix_chars="@")
    parser.add_argument("recipes", nargs="+", metavar="LABEL=EVAL[,EVAL...]",
                        help="a recipe's name and its evaluate_photos.py evaluations (folders, results.json or "
                             "FILE.json#key.key), one per seed; @FILE reads such arguments from FILE, one per line")
    parser.add_argument("--out", default=None, metavar="FILE.md", help="also write the Markdown table here")
    parser.add_argument("--rst", default=None, metavar="FILE.rst", help="write the table as a reStructuredText "
                                                                        "list-table here")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the rows here")
    parser.add_argument("--plot", default=None, metavar="FILE.png", help="draw the trade-off here (the plots extra)")
    photo_summary.add_target_flags(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    cli.one_line_warnings()
    args = build_parser().parse_args(argv)
    try:
        recipes = []
        for text in args.recipes:
            label, evals = parse_recipe(text)
            recipes.append((label, photo_summary.load_results(evals)))
        table = compare(recipes, min_verification=args.min_verification, min_psnr=args.min_psnr)
        text = render_markdown(table)
        if args.plot:
            plot_tradeoff(table, args.plot)
        for path, content in ((args.out, text), (args.rst, render_rst(table) if args.rst else None),
                              (args.json, json.dumps(table, indent=1) + "\n")):
            if path:
                files.write_text(path, content)
    except (ResultsError, files.WriteError) as exc:
        return cli.fail("photo_compare.py", exc)
    sys.stdout.write(text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
