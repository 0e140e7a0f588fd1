"""Ablation of the attention mechanism: variants x seeds, equal budgets, mean and spread.

::

    python examples/morph_aging/ablation.py --out runs/ablation --max-steps 1500 \\
        [--variants attention,no-attention,no-attention-l1] [--l1 100,1000] \\
        [--seeds 0,1,2] [--retrain] [-- TRAIN.PY FLAGS]

Variants (each trained as ``train.py`` trains, into ``OUT/<variant>/seed<k>``):

* ``attention`` -- AcGANs as configured (the defaults);
* ``no-attention`` -- ``--generator-mode no-attention``: the same networks,
  the output is the colour head alone (no attention composition);
* ``no-attention-l1`` -- ``--generator-mode no-attention --lambda-l1 W``:
  the usual fix for a generator without attention, an L1 pixel loss to the
  input, for every weight ``W`` of the sweep ``--l1`` (default 100 and
  1000). The loss is a per-pixel mean (about 0.1-0.3 at the start), so
  StarGAN's weight 10 is tiny next to ``lambda_adv = 10`` and
  ``lambda_cls = 100``; 100 and 1000 are where it binds. Each weight is its
  own variant, ``no-attention-l1-<W>``.

Equal starts: for one seed every variant builds the same networks from the
same initial weights (the no-attention generator wraps the attention
generator; only its output differs), draws the same batches and the same
per-iteration randomness. Every variant gets the same budget: ``--max-steps
N`` iterations or ``--max-minutes M`` of wall time each (with neither,
train.py's preset decides). Flags after ``--`` go to every train.py run (e.g.
``-- --image-size 64 --num-subjects 200``); the flags the ablation sets
itself (``--out``, ``--generator-mode``, ``--lambda-l1``, ``--seed``,
``--max-steps``, ``--max-minutes``, ``--resume``, ``--overwrite``) are refused
there, abbreviated or not. Every run's train.py flags are checked before the
first run starts.

The runs are trained one after the other in this process
(:func:`training.run`, what ``train.py`` runs), each from the process-wide
state a fresh process would give it (:func:`fresh_process_state`). A run
whose checkpoint says it finished (or reached its time budget) is not
trained again unless ``--retrain``; one that was interrupted is resumed
(``--resume``), so a killed ablation continues where it stopped.
Then every run is evaluated in this process as ``evaluate.py`` evaluates
(:func:`paper_protocol.evaluate`, its outputs in ``RUN/eval``), sharing one
cached age classifier, ``OUT/age_classifier.pt``; an evaluation newer than
its checkpoint is reused. The results are collected in

* ``OUT/ablation.md`` and ``OUT/ablation.json`` -- a side-by-side table of
  mean and standard deviation over the seeds: age-group accuracy, mean
  absolute estimated-age difference, face L1 to the ground truth,
  identification rate, verification confidence, background MAE and PSNR,
  sharpness ratio; with a "copy input" row, the do-nothing baseline (the
  input itself scored against the ground truth). The JSON records the
  command, the git commit and every run's full resolved configuration;
* ``OUT/ablation.png`` -- a figure like the paper's Fig. 3: for a few
  inputs of the 10-20 group (first seed), one row per variant with the faces generated
  at 21-30, 31-40, 41-50 and 51+, and (synthetic data) the ground truth row.

Exit status: 0 every variant trained and evaluated; 1 some failed (the others
are still reported); 2 usage error; 130 interrupted (Ctrl-C: the run in
training saves a checkpoint and the ablation stops; the same command
continues it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import shlex
import shutil
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

import checkpoints
import cli
import config
import evaluate_report
import files
import metrics
import paper_protocol
import pictures
import run_folder
import training
from ages import GROUP_NAMES
from cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from paper_protocol import EvalConfig

PROG = "ablation.py"

DEFAULT_L1 = (100.0, 1000.0)
DEFAULT_SEEDS = (0, 1, 2)
VARIANTS = ("attention", "no-attention", "no-attention-l1")
#: Flags the ablation sets itself; refused after ``--``.
RESERVED = ("--out", "--generator-mode", "--lambda-l1", "--seed", "--max-steps", "--max-minutes", "--resume",
            "--overwrite")
#: Checkpoint reasons of a run that needs no more training.
DONE_REASONS = (checkpoints.FINISHED, checkpoints.TIME_BUDGET)
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


def expand_variants(names: Sequence[str], l1_weights: Sequence[float]) -> List[Tuple[str, List[str]]]:
    """(run name, train.py flags) of every variant; ``no-attention-l1`` once per L1 weight.

    >>> [name for name, _ in expand_variants(["attention", "no-attention-l1"], [100.0, 1000.0])]
    ['attention', 'no-attention-l1-100', 'no-attention-l1-1000']
    """
    out: List[Tuple[str, List[str]]] = []
    for name in names:
        if name == "attention":
            out.append((name, []))
        elif name == "no-attention":
            out.append((name, ["--generator-mode", "no-attention"]))
        elif name == "no-attention-l1":
            out += [(f"{name}-{w:g}", ["--generator-mode", "no-attention", "--lambda-l1", repr(float(w))])
                    for w in l1_weights]
        else:
            raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    return out


def parse_list(text: str, kind: Callable[[str], Any], flag: str) -> List[Any]:
    """Comma-separated values, each converted by ``kind``; an argparse error names ``flag``."""
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{flag} needs at least one value")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{flag} lists a value twice: {text!r}")
    return values


def _l1_weights(text: str) -> List[float]:
    weights = parse_list(text, float, "--l1")
    bad = [w for w in weights if not (math.isfinite(w) and w > 0)]
    if bad:
        raise argparse.ArgumentTypeError(f"weights must be finite numbers > 0, got {bad[0]}")
    return weights


def _seeds(text: str) -> List[int]:
    seeds = parse_list(text, int, "--seeds")
    if any(k < 0 for k in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {text!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        usage="%(prog)s --out DIR [--max-minutes M | --max-steps N] [options] [-- TRAIN.PY FLAGS]",
        epilog="Exit status: 0 all variants done, 1 some failed (reported), 2 usage error.",
        allow_abbrev=False,
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder; variant runs go in DIR/<variant>")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=cli.positive_int, default=None, metavar="N",
                        help="training iterations per variant")
    budget.add_argument("--max-minutes", type=cli.finite_float(0.0, low_open=True), default=None, metavar="M",
                        help="training minutes per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--l1", type=_l1_weights, default=list(DEFAULT_L1), metavar="W[,W...]",
                        help="--lambda-l1 weights of the no-attention-l1 variants (default: 100,1000)")
    parser.add_argument("--seeds", type=_seeds, default=list(DEFAULT_SEEDS), metavar="K[,K...]",
                        help="train.py --seed of the runs of every variant (default: 0,1,2)")
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


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


def _train_parser(*, unset: bool = True) -> argparse.ArgumentParser:
    """train.py's flags as train.py parses them (no abbreviations), every default unset unless not
    ``unset``; a problem raises ValueError instead of exiting."""
    parser = argparse.ArgumentParser(prog=f"{PROG}: train.py flags after '--'", allow_abbrev=False)
    config.add_config_arguments(parser)
    if unset:
        parser.set_defaults(**{f.name: _UNSET for f in dataclasses.fields(config.TrainConfig)})

    def error(message: str) -> None:
        raise ValueError(message)

    parser.error = error  # type: ignore[method-assign]
    return parser


def train_config(train_argv: Sequence[str]) -> config.TrainConfig:
    """The configuration train.py makes of a command line (ValueError: an unknown flag or a bad value)."""
    parser = _train_parser(unset=False)
    return config.config_from_args(parser, parser.parse_args(list(train_argv)))


def reserved_flags(passthrough: Sequence[str]) -> List[str]:
    """The flags after ``--`` that set what the ablation sets itself (:data:`RESERVED`, and the
    ``--no-`` forms); an abbreviation is no way around it: train.py refuses abbreviations, and so
    does this check (an unknown flag is left for :func:`check_train_flags` to report).

    >>> reserved_flags(["--image-size", "64", "--generator-mode=no-attention", "--no-resume"])
    ['--generator-mode=no-attention', '--no-resume']
    """
    reserved = {name for flag in RESERVED for name in (flag, "--no-" + flag[2:])}
    return [f for f in passthrough if f.startswith("--") and f.split("=", 1)[0] in reserved]


def check_train_flags(train_argv: Sequence[str]) -> Optional[str]:
    """The problem with a train.py command line (unknown or abbreviated flag, bad value), or None."""
    parser = _train_parser()
    try:
        ns = parser.parse_args(list(train_argv))
        values = {k: v for k, v in vars(ns).items() if v is not _UNSET}
        config.validate_config(config.TrainConfig(**values))
    except ValueError as exc:
        return str(exc)
    return None


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
        state = checkpoints.load_checkpoint(path)
    except checkpoints.CheckpointError:  # an unreadable checkpoint is trained again
        return None
    return str(state["extra"].get("reason"))


@contextlib.contextmanager
def fresh_process_state() -> Iterator[None]:
    """Give back, after a run, the process-wide settings a run changes, as a run in a process of its
    own would: the number of threads, the random state, the CUDA backends' flags (TF32, cuDNN
    benchmark); compiled graphs and cached GPU memory are dropped. (A run seeds torch itself.)"""
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    backends = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
                torch.backends.cudnn.allow_tf32)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.random.set_rng_state(rng)
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = backends
        if "torch._dynamo" in sys.modules:
            torch._dynamo.reset()
        gc.collect()
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()


def run_training(train_argv: List[str]) -> int:
    """Train one run in this process as ``train.py`` would with these flags (:func:`training.run`,
    in :func:`fresh_process_state`); returns train.py's exit status."""
    _say("$ python examples/morph_aging/train.py " + " ".join(shlex.quote(a) for a in train_argv))
    try:
        cfg = train_config(train_argv)
    except ValueError as exc:  # checked before the first run; a config that changed since is reported here
        return cli.fail("train.py", exc)
    with fresh_process_state():
        return training.run(cfg, argv=train_argv)


def run_dir_of(out: str, name: str, seed: int) -> str:
    return os.path.join(out, name, f"seed{seed}")


def train_variant(name: str, flags: List[str], seed: int, out: str, budget: List[str], passthrough: List[str],
                  args: argparse.Namespace) -> Tuple[bool, str]:
    """Train the run of variant ``name`` (train.py ``flags``) and ``seed`` (:func:`run_training`), unless
    its checkpoint says it is done; resume it if it was cut short. Returns (ok, status); an interrupted
    run (Ctrl-C, SIGTERM) raises KeyboardInterrupt once it has saved its checkpoint."""
    run_dir = run_dir_of(out, name, seed)
    ckpt = os.path.join(run_dir, "checkpoints", "last.pt")
    resume: List[str] = []
    if os.path.isfile(ckpt) and not args.retrain:
        reason = checkpoint_reason(ckpt)
        if reason in DONE_REASONS:
            _say(f"{name} seed {seed}: checkpoint {ckpt} exists ({reason}); not training again (--retrain to do so)")
            return True, "skipped"
        if reason is not None:
            _say(f"{name} seed {seed}: checkpoint {ckpt} is from an unfinished run ({reason}); resuming")
            resume = ["--resume"]
    elif os.path.isdir(run_dir) and args.retrain:
        _say(f"{name}: --retrain: removing {run_dir}")
        shutil.rmtree(run_dir)
    if not resume and os.path.isdir(run_dir) and run_folder.holds_run(run_dir):
        _say(f"{name} seed {seed}: {run_dir} holds a run without a usable checkpoint; starting it afresh")
        resume = ["--overwrite"]
    code = run_training(["--out", run_dir, *budget, *flags, "--seed", str(seed), *resume,
                         "--progress" if args.progress else "--no-progress", *passthrough])
    if code == training.EXIT_INTERRUPTED:  # Ctrl-C or SIGTERM: the run saved a checkpoint; the ablation stops
        raise KeyboardInterrupt
    if code != 0:
        return False, f"training ended with exit status {code}"
    return True, "resumed" if resume == ["--resume"] else "trained"


def evaluation_config(run_dir: str, out: str, args: argparse.Namespace) -> EvalConfig:
    """The evaluation of one run: its last checkpoint into ``RUN/eval``, with the ablation's settings and
    its one cached age classifier (``OUT/age_classifier.pt``)."""
    classifier = {k: getattr(args, k) for k in ("classifier_steps", "classifier_subjects")
                  if getattr(args, k) is not None}
    return EvalConfig(checkpoint=os.path.join(run_dir, "checkpoints", "last.pt"), out=os.path.join(run_dir, "eval"),
                      num_faces=args.num_faces, num_examples=args.num_examples, estimator=args.estimator,
                      device=args.device, estimator_cache=os.path.join(out, "age_classifier.pt"),
                      progress=args.progress, **classifier)


def run_evaluation(cfg: EvalConfig) -> Tuple[bool, str]:
    """Evaluate in this process and write the outputs as ``evaluate.py`` does.

    Returns
    -------
    ok : bool
        Whether the results were written.
    status : str
        What happened, for the table's failures.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C, once a ``cfg.out`` folder this call created and left empty
        is removed.
    """
    command = "python examples/morph_aging/evaluate.py " + " ".join(shlex.quote(a) for a in cfg.to_argv())
    _say("$ " + command)
    created = not os.path.lexists(cfg.out)
    try:
        bundle, code = paper_protocol.evaluate(cfg, command)
        with files.interrupts_held():  # Ctrl-C while the outputs are written comes after them
            results = evaluate_report.write_outputs(cfg.out, bundle)
    except KeyboardInterrupt:
        if created:
            files.remove_if_empty(cfg.out)
        raise
    except (paper_protocol.EvalError, OSError) as exc:
        _say(f"evaluation failed: {cli.one_line(exc)}")
        return False, f"evaluation failed: {cli.one_line(exc, 200)}"
    except Exception as exc:  # noqa: BLE001 - a bug in one run's evaluation: reported, the others go on
        traceback.print_exc()
        return False, f"evaluation failed: {type(exc).__name__}: {cli.one_line(exc, 200)}"
    for msg in results["failures"]:
        _say(msg)
    return True, "evaluated" + (" (some faces unreadable)" if code == EXIT_FAILED else "")


def evaluate_variant(run_dir: str, out: str, args: argparse.Namespace) -> Tuple[bool, str]:
    """Evaluate one run (:func:`run_evaluation`), unless its evaluation is newer than its checkpoint
    (and no ``--retrain``)."""
    ckpt = os.path.join(run_dir, "checkpoints", "last.pt")
    results = os.path.join(run_dir, "eval", "results.json")
    if (not args.retrain and os.path.isfile(results) and os.path.isfile(ckpt)
            and os.path.getmtime(results) >= os.path.getmtime(ckpt)):
        return True, "evaluation reused"
    return run_evaluation(evaluation_config(run_dir, out, args))


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "pct":
        return f"{100 * value:.1f}%"
    return fmt.format(value)


#: The copy-input baseline's values of the table's columns, from evaluate.py's summaries.
COPY_INPUT = {"face_l1": "copy_input_face_l1", "identification_rate": "copy_input_identification_rate",
              "verification_confidence": "copy_input_confidence"}


def aggregate(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Per variant, mean and spread of every table column over its evaluated seeds, plus the copy-input row."""
    table: Dict[str, Dict[str, Any]] = {}
    for name in dict.fromkeys(r["name"] for r in runs):
        done = [r for r in runs if r["name"] == name and r.get("summary")]
        table[name] = {key: metrics.mean_and_spread([r["summary"].get(key) for r in done]) for key, _, _ in COLUMNS}
        table[name]["seeds"] = [r["seed"] for r in done]
    done = [r for r in runs if r.get("summary")]
    if done:
        row: Dict[str, Any] = {key: None for key, _, _ in COLUMNS}
        row.update({key: metrics.mean_and_spread([r["summary"].get(src) for r in done])
                    for key, src in COPY_INPUT.items()})
        row["background_mae"] = {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "n": len(done)}
        row["seeds"] = sorted({r["seed"] for r in done})
        table["copy input"] = row
    return table


def _fmt_stat(stat: Optional[Dict[str, Any]], fmt: str) -> str:
    if stat is None:
        return "-"
    if stat["n"] == 1:
        return _fmt(stat["mean"], fmt)
    return f"{_fmt(stat['mean'], fmt)} ± {_fmt(stat['std'], fmt)}"


def render_markdown(summary: Dict[str, Any]) -> str:
    lines = ["# Attention ablation", "", "```", summary["command"], "```", "",
             f"Git commit: `{summary.get('git_commit') or 'unknown'}`. Budget per run: {summary['budget']}. "
             f"Seeds: {', '.join(map(str, summary['seeds']))}. Flags to every train.py run: "
             f"`{' '.join(summary['train_flags']) or '(none)'}`. Evaluation: evaluate.py on the 10-20 test faces "
             f"(see each run's `eval/report.md` for the full tables). Cells: mean ± sample standard deviation "
             f"over the seeds.", ""]
    header = ["Variant", "Seeds"] + [h for _, h, _ in COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for name, row in summary["table"].items():
        cells = [name, str(len(row["seeds"]))] + [_fmt_stat(row.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += ["Copy input: the do-nothing baseline, the 10-20 input itself scored against the ground truth of "
              "each older target (background error 0 by definition; age accuracy not measured).", ""]
    lines += ["Age accuracy: fraction of generated faces whose estimated group is the target; age difference: "
              "|mean estimated age of generated faces - mean of real faces of the group|, averaged over the four "
              "targets; face L1, identification and confidence: against the synthetic ground truth (the same "
              "subject rendered at the target age) inside the face region; background: outside it; sharpness: "
              "Laplacian variance of generated over real faces.", ""]
    failed = [v for v in summary["runs"] if not v["ok"]]
    if failed:
        lines += ["## Failures", ""] + [f"* {v['name']} seed {v['seed']}: {v['status']}" for v in failed] + [""]
    if summary.get("figure"):
        lines += [f"![ablation]({summary['figure']})", ""]
    return "\n".join(lines)


def ablation_figure(run_dirs: Dict[str, str], k: int) -> Optional[np.ndarray]:
    """Fig. 3-like grid from the ``eval/examples.npz`` of one run per variant."""
    loaded = {}
    for name, run_dir in run_dirs.items():
        path = os.path.join(run_dir, "eval", "examples.npz")
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
    return pictures.render_grid(rows, ["input"] + list(GROUP_NAMES[1:]),
                                scale=pictures.readable_scale(first["inputs"].shape[1]))


def usage_problem(args: argparse.Namespace, names: List[str], passthrough: List[str]) -> Optional[str]:
    """What is wrong with the command line, found before any work (every run's train.py flags
    included), or None."""
    bad = [v for v in names if v not in VARIANTS]
    if not names or bad:
        return f"--variants: unknown {', '.join(bad) or '(empty list)'}; choose from {', '.join(VARIANTS)}"
    if len(set(names)) != len(names):
        return "--variants: a variant is listed twice"
    clash = reserved_flags(passthrough)
    if clash:
        return (f"{', '.join(clash)} after '--': the ablation sets these itself (use its own --out, "
                "--max-steps, --max-minutes, --l1, --seeds)")
    try:
        config.resolve_device(args.device)
    except ValueError as exc:
        return f"--device: {exc}"
    if args.max_steps is not None and args.max_steps < 1:
        return f"--max-steps must be >= 1, got {args.max_steps}"
    if args.max_minutes is not None and not (math.isfinite(args.max_minutes) and args.max_minutes > 0):
        return f"--max-minutes must be a finite number > 0, got {args.max_minutes}"
    budget, _ = budget_of(args)
    for seed in args.seeds:  # every run's train.py flags are checked before the first run starts
        for name, flags in expand_variants(names, args.l1):
            problem = check_train_flags(["--out", run_dir_of(args.out, name, seed), *budget, *flags,
                                         "--seed", str(seed), *passthrough])
            if problem:
                return f"train.py flags of {name} seed {seed}: {problem}"
    try:
        files.check_writable_folder(args.out)
    except OSError as exc:
        return str(exc)
    return None


def budget_of(args: argparse.Namespace) -> Tuple[List[str], str]:
    """The train.py flags of every run's budget, and the budget in words."""
    if args.max_steps is not None:
        return ["--max-steps", str(args.max_steps)], f"{args.max_steps} iteration(s)"
    if args.max_minutes is not None:
        return ["--max-minutes", repr(args.max_minutes)], f"{args.max_minutes:g} minutes"
    return [], "train.py's preset (equal for all runs)"


def evaluate_record(rec: Dict[str, Any], args: argparse.Namespace) -> None:
    """Evaluate the run of ``rec`` (trained) and add its status, summary and configuration to ``rec``."""
    _say(f"=== {rec['name']}, seed {rec['seed']}: evaluating ===")
    ok, status = evaluate_variant(rec["run_dir"], args.out, args)
    rec["ok"], rec["status"] = ok, f"{rec['status']}, {status}"
    results_path = os.path.join(rec["run_dir"], "eval", "results.json")
    if ok and os.path.isfile(results_path):
        with open(results_path) as fh:
            res = json.load(fh)
        rec.update(step=res.get("step"), summary=res.get("summary"), results=results_path,
                   report=os.path.join(rec["run_dir"], "eval", "report.md"))
    config_path = os.path.join(rec["run_dir"], "config.json")
    if os.path.isfile(config_path):
        with open(config_path) as fh:
            rec["config"] = json.load(fh)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ablation the command line ``argv`` describes (default ``sys.argv[1:]``); returns the
    exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = split_argv(argv)
    args = build_parser().parse_args(own)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    problem = usage_problem(args, names, passthrough)
    if problem:
        return cli.fail(PROG, problem)
    cli.one_line_warnings()
    budget, budget_text = budget_of(args)
    command = "python examples/morph_aging/ablation.py " + " ".join(shlex.quote(a) for a in argv)
    variants = expand_variants(names, args.l1)
    records: List[Dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for seed in args.seeds:
            for name, flags in variants:
                _say(f"=== {name}, seed {seed}: training ({budget_text}) ===")
                ok, status = train_variant(name, flags, seed, args.out, budget, passthrough, args)
                records.append({"name": name, "seed": seed, "ok": ok, "status": status, "flags": flags,
                                "run_dir": run_dir_of(args.out, name, seed)})
        for rec in records:
            if rec["ok"]:
                evaluate_record(rec, args)
    except KeyboardInterrupt:
        _say("interrupted: the runs so far are kept (an interrupted one with its checkpoint); the same command "
             "continues, training no finished run again")
        return EXIT_INTERRUPTED
    first_seed = {r["name"]: r["run_dir"] for r in reversed(records) if r["ok"]}
    figure = ablation_figure({name: first_seed[name] for name, _ in variants if name in first_seed},
                             args.num_examples)
    summary = {"format": "attngan-acgan-ablation/2", "command": command, "git_commit": cli.git_commit(),
               "budget": budget_text, "seeds": args.seeds, "l1": args.l1, "train_flags": passthrough,
               "table": aggregate(records), "runs": records,
               "figure": "ablation.png" if figure is not None else None,
               "seconds": round(time.perf_counter() - t0, 1)}
    if figure is not None:
        pictures.save_png(figure, os.path.join(args.out, "ablation.png"))
    files.write_text(os.path.join(args.out, "ablation.json"), json.dumps(summary, indent=2))
    files.write_text(os.path.join(args.out, "ablation.md"), render_markdown(summary))
    failed = [f"{r['name']} seed {r['seed']}" for r in records if not r["ok"]]
    _say(f"done in {summary['seconds']:.0f} s: {os.path.join(args.out, 'ablation.md')}"
         + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
