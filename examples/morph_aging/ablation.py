"""Ablation of the attention mechanism: train and evaluate variants with an equal budget.

::

    python examples/morph_aging/ablation.py --out runs/ablation --max-minutes 12 \\
        [--variants attention,no-attention,no-attention-l1] [--l1 10] [--retrain] \\
        [-- TRAIN.PY FLAGS]

Variants (each trained by ``train.py`` into ``OUT/<variant>``):

* ``attention`` -- AcGANs as configured (the defaults);
* ``no-attention`` -- ``--generator-mode no-attention``: the same networks,
  the output is the colour head alone (no attention composition);
* ``no-attention-l1`` -- ``--generator-mode no-attention --lambda-l1 W``:
  the usual fix for a generator without attention, an L1 pixel loss to the
  input. ``W`` (``--l1``) defaults to 10, the weight StarGAN gives its
  pixel (reconstruction) loss; against this example's generator weights
  (lambda_adv 10, lambda_cls 100) it keeps the output close to the input
  without dominating the age classification term.

Every variant gets the same budget: ``--max-steps N`` iterations or
``--max-minutes M`` of wall time each (with neither, train.py's preset
decides, equally for all; note that with ``--max-minutes`` the preset's
step cap still applies, e.g. 3000 iterations for cpu-demo). Flags after ``--`` go to every train.py run
(e.g. ``-- --image-size 64 --num-subjects 200``); the flags the ablation
sets itself (``--out``, ``--generator-mode``, ``--lambda-l1``,
``--max-steps``, ``--max-minutes``, ``--resume``) are refused there.

The runs are sequential subprocesses whose progress streams to this
terminal. A variant whose checkpoint says it finished (or reached its time
budget) is not trained again unless ``--retrain``; one that was interrupted
is resumed (``--resume``), so a killed ablation continues where it stopped.
Then ``evaluate.py`` runs on every variant (sharing one cached age
classifier, ``OUT/age_classifier.pt``), and the results are collected in

* ``OUT/ablation.md`` and ``OUT/ablation.json`` -- a side-by-side table:
  age-group accuracy, mean absolute estimated-age difference, face L1 to the
  ground truth, identification rate, verification confidence, background
  MAE and PSNR, sharpness ratio;
* ``OUT/ablation.png`` -- a figure like the paper's Fig. 3: for a few
  inputs of the 10-20 group, one row per variant with the faces generated
  at 21-30, 31-40, 41-50 and 51+, and (synthetic data) the ground truth row.

Exit status: 0 every variant trained and evaluated; 1 some failed (the others
are still reported); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import acgan
import cli
import config
import files
import pictures
from ages import GROUP_NAMES
from cli import EXIT_FAILED, EXIT_OK

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "train.py")
EVALUATE = os.path.join(HERE, "evaluate.py")
PROG = "ablation.py"

DEFAULT_L1 = 10.0
VARIANTS = ("attention", "no-attention", "no-attention-l1")
#: Flags the ablation sets itself; refused after ``--``.
RESERVED = ("--out", "--generator-mode", "--lambda-l1", "--max-steps", "--max-minutes", "--resume")
#: Checkpoint reasons of a run that needs no more training.
DONE_REASONS = (acgan.FINISHED, acgan.TIME_BUDGET)
#: Columns of the side-by-side table: (summary key, header, format).
COLUMNS = (
    ("age_accuracy", "Age accuracy", "pct"),
    ("mean_abs_age_difference", "Mean abs. age diff. (years)", "{:.2f}"),
    ("face_l1", "Face L1 to truth (levels)", "{:.2f}"),
    ("identification_rate", "Identification rate", "pct"),
    ("verification_confidence", "Verification confidence", "{:.2f}"),
    ("background_mae", "Background MAE (levels)", "{:.2f}"),
    ("background_psnr", "Background PSNR (dB)", "{:.2f}"),
    ("sharpness_ratio", "Sharpness ratio", "{:.3f}"),
)


def variant_flags(name: str, l1: float) -> List[str]:
    if name == "attention":
        return []
    if name == "no-attention":
        return ["--generator-mode", "no-attention"]
    if name == "no-attention-l1":
        return ["--generator-mode", "no-attention", "--lambda-l1", repr(float(l1))]
    raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        usage="%(prog)s --out DIR [--max-minutes M | --max-steps N] [options] [-- TRAIN.PY FLAGS]",
        epilog="Exit status: 0 all variants done, 1 some failed (reported), 2 usage error.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder; variant runs go in DIR/<variant>")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int, default=None, metavar="N", help="training iterations per variant")
    budget.add_argument("--max-minutes", type=float, default=None, metavar="M", help="training minutes per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--l1", type=float, default=DEFAULT_L1, metavar="WEIGHT",
                        help="--lambda-l1 of the no-attention-l1 variant")
    cli.add_bool_flag(parser, "--retrain", default=False, help="train variants again even when finished")
    parser.add_argument("--num-faces", type=cli.positive_int, default=200, metavar="N", help="evaluate.py --num-faces")
    parser.add_argument("--num-examples", type=cli.int_at_least(0), default=4, metavar="K",
                        help="inputs shown in ablation.png")
    parser.add_argument("--classifier-steps", type=cli.positive_int, default=None, metavar="N",
                        help="evaluate.py --classifier-steps")
    parser.add_argument("--classifier-subjects", type=cli.positive_int, default=None, metavar="N",
                        help="evaluate.py --classifier-subjects")
    parser.add_argument("--estimator", default="auto", choices=("auto", "synthetic", "dlib"),
                        help="evaluate.py --estimator")
    parser.add_argument("--device", default="auto", choices=config.DEVICES, help="for evaluate.py")
    cli.add_bool_flag(parser, "--progress", default=True, help="progress bars in train.py and evaluate.py")
    return parser


def split_argv(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    argv = list(argv)
    if "--" in argv:
        k = argv.index("--")
        return argv[:k], argv[k + 1:]
    return argv, []


def _say(msg: str) -> None:
    print(f"[ablation] {msg}", file=sys.stderr, flush=True)


def checkpoint_reason(path: str) -> Optional[str]:
    """The reason recorded in a checkpoint ("finished", "interrupted", ...), or None if unreadable."""
    try:
        state = acgan.load_checkpoint(path)
    except acgan.CheckpointError:  # an unreadable checkpoint is trained again
        return None
    return str(state["extra"].get("reason"))


def run(cmd: List[str]) -> int:
    _say("$ " + " ".join(shlex.quote(c) for c in cmd))
    try:
        return subprocess.run(cmd, check=False).returncode
    except KeyboardInterrupt:
        raise
    except OSError as exc:
        _say(f"cannot run {cmd[0]}: {exc}")
        return 127


def train_variant(name: str, out: str, budget: List[str], passthrough: List[str], args) -> Tuple[bool, str]:
    run_dir = os.path.join(out, name)
    ckpt = os.path.join(run_dir, "checkpoints", "last.pt")
    resume: List[str] = []
    if os.path.isfile(ckpt) and not args.retrain:
        reason = checkpoint_reason(ckpt)
        if reason in DONE_REASONS:
            _say(f"{name}: checkpoint {ckpt} exists ({reason}); not training again (--retrain to do so)")
            return True, "skipped"
        if reason is not None:
            _say(f"{name}: checkpoint {ckpt} is from an unfinished run ({reason}); resuming")
            resume = ["--resume"]
    elif os.path.isdir(run_dir) and args.retrain:
        _say(f"{name}: --retrain: removing {run_dir}")
        shutil.rmtree(run_dir)
    cmd = [sys.executable, TRAIN, "--out", run_dir, *budget, *variant_flags(name, args.l1), *resume,
           "--progress" if args.progress else "--no-progress", *passthrough]
    code = run(cmd)
    if code != 0:
        return False, f"train.py exited with status {code}"
    return True, "resumed" if resume else "trained"


def evaluate_variant(name: str, out: str, args) -> Tuple[bool, str]:
    run_dir = os.path.join(out, name)
    cmd = [sys.executable, EVALUATE, "--checkpoint", os.path.join(run_dir, "checkpoints", "last.pt"),
           "--out", os.path.join(run_dir, "eval"), "--num-faces", str(args.num_faces),
           "--num-examples", str(args.num_examples), "--estimator", args.estimator, "--device", args.device,
           "--estimator-cache", os.path.join(out, "age_classifier.pt"), "--progress" if args.progress else "--no-progress"]
    if args.classifier_steps is not None:
        cmd += ["--classifier-steps", str(args.classifier_steps)]
    if args.classifier_subjects is not None:
        cmd += ["--classifier-subjects", str(args.classifier_subjects)]
    code = run(cmd)
    if code not in (0, 1):
        return False, f"evaluate.py exited with status {code}"
    return True, "evaluated" + (" (some faces unreadable)" if code == 1 else "")


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "pct":
        return f"{100 * value:.1f}%"
    return fmt.format(value)


def render_markdown(summary: Dict[str, Any]) -> str:
    lines = ["# Attention ablation", "", "```", summary["command"], "```", "",
             f"Budget per variant: {summary['budget']}. Flags to every train.py run: "
             f"`{' '.join(summary['train_flags']) or '(none)'}`. Evaluation: evaluate.py on the 10-20 test faces "
             f"(see each variant's `eval/report.md` for the full tables).", ""]
    header = ["Variant", "Steps"] + [h for _, h, _ in COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for v in summary["variants"]:
        s = v.get("summary") or {}
        cells = [f"{v['name']}", str(v.get("step") if v.get("step") is not None else "-")]
        cells += [_fmt(s.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += ["Age accuracy: fraction of generated faces whose estimated group is the target; age difference: "
              "|mean estimated age of generated faces - mean of real faces of the group|, averaged over the four "
              "targets; face L1, identification and confidence: against the synthetic ground truth (the same "
              "subject rendered at the target age) inside the face region; background: outside it; sharpness: "
              "Laplacian variance of generated over real faces.", ""]
    failed = [v for v in summary["variants"] if not v["ok"]]
    if failed:
        lines += ["## Failures", ""] + [f"* {v['name']}: {v['status']}" for v in failed] + [""]
    if summary.get("figure"):
        lines += [f"![ablation]({summary['figure']})", ""]
    return "\n".join(lines)


def ablation_figure(out: str, names: Sequence[str], k: int) -> Optional[np.ndarray]:
    """Fig. 3-like grid from the variants' ``eval/examples.npz``."""
    loaded = {}
    for name in names:
        path = os.path.join(out, name, "eval", "examples.npz")
        if os.path.isfile(path):
            with np.load(path) as z:
                loaded[name] = {key: z[key] for key in z.files}
    if not loaded:
        return None
    first = next(iter(loaded.values()))
    for name, ex in loaded.items():
        if not np.array_equal(ex["indices"], first["indices"]):
            _say(f"warning: {name} was evaluated on other inputs than {next(iter(loaded))}; the figure mixes them")
    rows: List[Tuple[str, List[Optional[np.ndarray]]]] = []
    n = min(k, min(ex["inputs"].shape[0] for ex in loaded.values()))
    for i in range(n):
        for j, (name, ex) in enumerate(loaded.items()):
            rows.append((name, [first["inputs"][i] if j == 0 else None] + list(ex["generated"][i])))
        if "truth" in first:
            rows.append(("truth", [None] + list(first["truth"][i])))
    if not rows:
        return None
    return pictures.render_grid(rows, ["input"] + list(GROUP_NAMES[1:]))


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = split_argv(argv)
    parser = build_parser()
    args = parser.parse_args(own)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if not names or bad:
        return cli.fail(PROG, f"--variants: unknown {', '.join(bad) or '(empty list)'}; "
                              f"choose from {', '.join(VARIANTS)}")
    if len(set(names)) != len(names):
        return cli.fail(PROG, "--variants: a variant is listed twice")
    clash = [f for f in passthrough if f.split("=", 1)[0] in RESERVED]
    if clash:
        return cli.fail(PROG, f"{', '.join(clash)} after '--': the ablation sets these itself (use its own --out, "
                              "--max-steps, --max-minutes, --l1)")
    if args.max_steps is not None and args.max_steps < 1:
        return cli.fail(PROG, f"--max-steps must be >= 1, got {args.max_steps}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        return cli.fail(PROG, f"--max-minutes must be > 0, got {args.max_minutes}")
    if not (math.isfinite(args.l1) and args.l1 >= 0):
        return cli.fail(PROG, f"--l1 must be a finite number >= 0, got {args.l1}")
    budget: List[str] = []
    budget_text = "train.py's preset (equal for all variants)"
    if args.max_steps is not None:
        budget, budget_text = ["--max-steps", str(args.max_steps)], f"{args.max_steps} iteration(s)"
    elif args.max_minutes is not None:
        budget, budget_text = ["--max-minutes", repr(args.max_minutes)], f"{args.max_minutes:g} minutes"
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        return cli.fail(PROG, f"cannot create {args.out}: {exc}")

    command = "python examples/morph_aging/ablation.py " + " ".join(shlex.quote(a) for a in argv)
    records: List[Dict[str, Any]] = []
    t0 = time.perf_counter()
    for name in names:
        _say(f"=== {name}: training ({budget_text}) ===")
        ok, status = train_variant(name, args.out, budget, passthrough, args)
        records.append({"name": name, "ok": ok, "status": status, "flags": variant_flags(name, args.l1),
                        "run_dir": os.path.join(args.out, name)})
    for rec in records:
        if not rec["ok"]:
            continue
        _say(f"=== {rec['name']}: evaluating ===")
        ok, status = evaluate_variant(rec["name"], args.out, args)
        rec["ok"], rec["status"] = ok, f"{rec['status']}, {status}"
        results_path = os.path.join(rec["run_dir"], "eval", "results.json")
        if ok and os.path.isfile(results_path):
            with open(results_path) as fh:
                res = json.load(fh)
            rec.update(step=res.get("step"), summary=res.get("summary"), results=results_path,
                       report=os.path.join(rec["run_dir"], "eval", "report.md"))
    figure = ablation_figure(args.out, [r["name"] for r in records if r["ok"]], args.num_examples)
    summary = {"format": "attngan-acgan-ablation/1", "command": command, "budget": budget_text,
               "train_flags": passthrough, "l1": args.l1, "variants": records,
               "figure": "ablation.png" if figure is not None else None,
               "seconds": round(time.perf_counter() - t0, 1)}
    if figure is not None:
        pictures.save_png(figure, os.path.join(args.out, "ablation.png"))
    files.write_text(os.path.join(args.out, "ablation.json"), json.dumps(summary, indent=2))
    files.write_text(os.path.join(args.out, "ablation.md"), render_markdown(summary))
    failed = [r["name"] for r in records if not r["ok"]]
    _say(f"done in {summary['seconds']:.0f} s: {os.path.join(args.out, 'ablation.md')}"
         + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
