"""A training run of AcGANs, start to end, importable: what ``train.py`` runs.

``train.py`` parses the command line into a :class:`config.TrainConfig`
and calls :func:`run`; ``ablation.py`` calls it for every run of an
ablation, in its own process. :func:`run` reports every error in one line
and returns the exit status; :func:`train` is the run itself (the parts
below: networks, resume, data, the step, logging, outputs, stopping).
See ``train.py`` for what a run writes and its exit statuses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import shlex
import signal
import sys
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

import checkpoints
import cli
import config
import estimators
import files
import models
import pictures
import run_folder
import tensorboard_log
from ages import GROUP_NAMES
from checkpoints import DIVERGED, FINISHED, INTERRUPTED, TIME_BUDGET
from config import TrainConfig
from data import BatchSource, build_datasets, check_groups, fixed_sample_inputs, group_counts, with_data_crop
from step import AcGANStep, StepOptions

__all__ = ["EXIT_DIVERGED", "EXIT_ERROR", "EXIT_INTERRUPTED", "SCRIPT", "RunGuard", "TrainLog", "Training",
           "continue_command", "run", "train"]

EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 3, 130
#: The script that runs this module (the commands a run prints name it).
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py")


# --------------------------------------------------------------------------- #
# Distributed helpers
# --------------------------------------------------------------------------- #


def setup_distributed(cfg: TrainConfig) -> Tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = config.resolve_device(cfg.device)
    if world <= 1:
        return 0, 1, device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


# Why the teardown is ordered as it is. A gloo worker thread lets go of a
# finished collective (and of the tensors in it) only after the caller's
# wait() has returned, and a C++ reference to a tensor that has a Python
# object keeps that object alive: dropping it takes the GIL. A thread that
# asks for the GIL while the interpreter is finalising is ended from inside a
# noexcept destructor, and C++ aborts ("terminate called without an active
# exception"). So the group's worker threads must be joined -- the group
# destroyed, which happens only once nothing references it -- before main()
# returns; a barrier only narrows the window.


def init_process_group(backend: str) -> None:
    # torch.distributed.nn.functional binds ``group.WORLD`` into default
    # arguments when first imported, and DDP's constructor imports it (through
    # torch._dynamo). Imported after the group exists, those defaults keep it
    # alive past destroy_process_group, with its worker threads running into
    # interpreter shutdown; imported first, they bind None.
    import torch.distributed.nn.functional  # noqa: F401

    dist.init_process_group(backend)


def teardown_distributed() -> None:
    """Destroy the process group so that its worker threads are joined now.

    Called by main() after train() has returned or raised, so the DDP
    wrappers (whose reducers hold the group) are unreachable; an exception in
    flight still holds train()'s frame through its traceback, so those frames
    are cleared first. Blocks until the group's queued collectives finish.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    exc, seen = sys.exc_info()[1], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)  # keeps file and line numbers, drops the locals
        exc = exc.__cause__ or exc.__context__
    gc.collect()  # DDP wrappers in reference cycles
    dist.destroy_process_group()
    gc.collect()


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    if world <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)  # synchronous: waits for the result
    return bool(t.item() > 0)


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


class Interrupt:
    """Turns the first SIGINT / SIGTERM into a flag; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> "Interrupt":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name} received: finishing this step, saving a checkpoint, then exiting "
              "(send it again to abort at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


#: A mask has saturated when its mean or the fraction of its pixels near one
#: end passes these bounds (logged as attention_mean / _near_zero / _near_one).
SATURATION_MEAN = (0.05, 0.95)
SATURATION_FRACTION = 0.9
#: Iterations the masks must stay saturated (every logged window on the same
#: side) before ``train.py`` warns: early in a run they can pass the bounds
#: and come back (cpu-photo on photographs: mean 0.95 near iteration 230, back
#: to 0.77 by 1,000).
SATURATION_PATIENCE = 100


def mask_saturation(record: Dict[str, Any]) -> Optional[str]:
    """``"zero"`` or ``"one"`` when the logged mask statistics have saturated, else None."""
    if "attention_mean" not in record:
        return None
    if record["attention_mean"] < SATURATION_MEAN[0] or record.get("attention_near_zero", 0.0) > SATURATION_FRACTION:
        return "zero"
    if record["attention_mean"] > SATURATION_MEAN[1] or record.get("attention_near_one", 0.0) > SATURATION_FRACTION:
        return "one"
    return None


def saturation_warning(side: str, record: Dict[str, Any], step: int, cfg: TrainConfig,
                       since: Optional[int] = None) -> str:
    """One warning that names what the saturated masks mean, the likely cause and the flags to change
    (``since``: the first logged step of the saturation)."""
    span = f" (since step {since})" if since is not None and since < step else ""
    head = (f"warning: attention masks saturated at {0 if side == 'zero' else 1} at step {step}{span} "
            f"(mean {record['attention_mean']:.3f}, {record.get('attention_near_zero', 0):.0%} of pixels < 0.05, "
            f"{record.get('attention_near_one', 0):.0%} > 0.95): ")
    if side == "zero":
        cause = ("the generator repaints whole images and keeps neither background nor identity. Likely cause: "
                 "the attention norm term outweighs the adversarial and age terms")
        if cfg.attention_form == "euclidean":
            cause += (" (--attention-form euclidean grows with the image size; --attention-form paper does not)")
        fix = f"lower --lambda-att (now {cfg.lambda_att:g})"
    else:
        cause = ("the generator copies its input and does not age it. Likely cause: the attention term is too weak "
                 "against the age-classification term, or the masks started near 1")
        fix = f"raise --lambda-att (now {cfg.lambda_att:g})"
        if cfg.g_attention_bias:
            fix += f" or lower --g-attention-bias (now {cfg.g_attention_bias:g})"
    return head + cause + "; " + fix + " (see the guide, 'Attention collapse')."


def nonfinite_terms(metrics: Dict[str, Any]) -> List[str]:
    return [k for k, v in metrics.items() if isinstance(v, torch.Tensor) and not bool(torch.isfinite(v).all())]


class RunGuard:
    """What :func:`main` needs when :func:`train` fails: the run folder it holds (released when
    ``stack`` closes), where to log, and how to save a last checkpoint (set once training started)."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.out: Optional[str] = None
        self.ckpt_path: Optional[str] = None
        self.saved_step: Optional[int] = None  # the step of the checkpoint on disk, if any
        self.save: Optional[Any] = None  # save(reason) -> step, once the loop runs (main process only)
        self.step: Any = None  # () -> the current step

    def log_traceback(self, exc: BaseException) -> Optional[str]:
        """Append ``exc``'s traceback to ``OUT/train.log``; returns the log's path (None if not written)."""
        if self.out is None:
            return None
        path = os.path.join(self.out, run_folder.LOG)
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} step {self.step() if self.step else '?'}\n")
                fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        except OSError:
            return None
        return path

    def crashed(self, exc: BaseException) -> int:
        """Report an unexpected error in one line, after saving a last checkpoint when the weights allow."""
        log = self.log_traceback(exc)
        step = self.step() if self.step else None
        where = f" at step {step}" if step is not None else ""
        reason = files.write_failure(exc, self.out)
        if isinstance(exc, files.WriteError):
            what = str(exc)
        elif reason is not None:
            what = f"a write failed: {reason}"
        else:
            what = f"{type(exc).__name__}: {_essence(exc)}"
        if self.save is not None and reason is None:
            try:
                self.saved_step = self.save(checkpoints.FAILED)
                ckpt = f"saved a checkpoint of step {self.saved_step} ({self.ckpt_path}); --resume continues from it"
            except FloatingPointError:
                ckpt = "no checkpoint saved (the weights are not finite)" + self.previous_checkpoint()
            except Exception as again:  # noqa: BLE001 - the report must still come out
                ckpt = f"no checkpoint saved ({cli.one_line(again, 200)})" + self.previous_checkpoint()
        elif step is not None and step == self.saved_step and self.previous_checkpoint():
            # the write that failed came after this step's checkpoint (a sample picture)
            ckpt = f"the checkpoint of step {step} was saved before it ({self.ckpt_path}); --resume continues from it"
        else:
            ckpt = "no checkpoint saved" + self.previous_checkpoint()
        details = f"; traceback in {log}" if log else ""
        print(f"train.py: error{where}: {what}; {ckpt}{details}", file=sys.stderr)
        return EXIT_ERROR

    def previous_checkpoint(self) -> str:
        """``"; the last checkpoint, step N, is intact: PATH"`` when one is on disk, else ``""``."""
        if self.saved_step is not None and self.ckpt_path and os.path.isfile(self.ckpt_path):
            return f"; the last checkpoint, step {self.saved_step}, is intact: {self.ckpt_path}"
        return ""


def _essence(exc: BaseException) -> str:
    """One line of an exception's message; for an error re-raised from a DataLoader worker, the
    original error's line rather than "Caught ... in DataLoader worker process 0"."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in str(exc):
        return cli.one_line(lines[-1], 300)
    return cli.one_line(lines[0] if lines else type(exc).__name__, 300)


def _report_unreadable(source: BatchSource, reported: int, bar: Any) -> int:
    """Print the unreadable images found since the last call; returns how many are reported now."""
    for index, problem in list(source.unreadable.items())[reported:]:
        text = f"warning: skipped an unreadable training image (a readable one stands in for it): {problem}"
        if bar is not None:
            bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)
    return len(source.unreadable)


def build_training_sets(cfg: TrainConfig, out: str, is_main: bool) -> Tuple[Any, Any]:
    """The training and test sets of ``cfg`` (:func:`data.build_datasets`).

    The dataset files that ``--skip-bad-files`` passes over are listed,
    every one, in ``OUT/skipped_files.txt`` (:data:`run_folder.SKIPPED`),
    which the warning names; a list left by an earlier run of the folder
    that skipped nothing is removed.
    """
    if cfg.data == "synthetic":
        return build_datasets(cfg)
    from face_datasets import SkippedFilesWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedFilesWarning)
        sets = build_datasets(cfg)
    path = os.path.join(out, run_folder.SKIPPED)
    skipped = [w.message for w in caught if isinstance(w.message, SkippedFilesWarning)]
    for w in caught:
        if not isinstance(w.message, SkippedFilesWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)  # as they were
    if is_main and skipped:
        files.write_text(path, "".join(f"{name}\n" for w in skipped for name in w.skipped))
        for w in skipped:
            print(cli.one_line(f"warning: {w.summary}, listed in {path}: {', '.join(w.skipped)}"), file=sys.stderr)
    elif is_main and os.path.isfile(path):
        os.unlink(path)
    return sets


def lazy_penalty_warning(gp_every: int, total_steps: int) -> Optional[str]:
    """The warning for a ``--gp-every`` that spans the whole run, None for one that does not.

    The lazy penalty is computed at the iterations whose index is a multiple
    of ``gp_every``, with ``gp_every`` times its weight; when no multiple
    but 0 falls in the run, only its first iteration is penalised.

    >>> lazy_penalty_warning(4, 12) is None
    True
    >>> print(lazy_penalty_warning(2147483647, 12))
    warning: --gp-every 2147483647 spans the whole run (12 iterations): the gradient penalty is computed at
    iteration 1 only, with 2147483647 times its weight, and never again; a --gp-every well below 12 spreads it over
    the run (1, the paper's, computes it at every iteration)
    """
    if gp_every == 1 or gp_every < total_steps:
        return None
    return (f"warning: --gp-every {gp_every} spans the whole run ({total_steps} iterations): the gradient penalty is "
            f"computed at iteration 1 only, with {gp_every} times its weight, and never again; a --gp-every well "
            f"below {total_steps} spreads it over the run (1, the paper's, computes it at every iteration)")


# --------------------------------------------------------------------------- #
# What a run says: the summary at the start, the progress bar, the budget notice
# --------------------------------------------------------------------------- #


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def continue_command(argv: Sequence[str], world: int = 1) -> str:
    """The command that continues a run: the same flags with ``--resume`` (and without ``--overwrite``)."""
    script = os.path.relpath(SCRIPT)
    if script.startswith(".." + os.sep + ".."):
        script = SCRIPT
    flags = [a for a in argv if a not in ("--resume", "--no-resume", "--overwrite", "--no-overwrite")]
    launcher = ["python"] if world <= 1 else ["torchrun", f"--nproc_per_node={world}"]
    return shlex.join(launcher + [script, *flags, "--resume"])


def startup_summary(cfg: TrainConfig, *, device: torch.device, precision: str, world: int, start_step: int,
                    total_steps: int, steps_per_epoch: int, total_elapsed_s: float) -> str:
    """The lines ``train.py`` prints before training: what will run, for how long, and where it goes."""
    stop = (f"--max-steps {cfg.max_steps}" if cfg.max_steps is not None and cfg.max_steps <= total_steps
            else f"{cfg.epochs} epochs")
    budget = (f"{cfg.max_minutes:g} min for this run of train.py (--max-minutes; a resumed run gets a fresh "
              "budget)" if cfg.max_minutes is not None else "none (no --max-minutes)")
    processes = f" x {world} processes" if world > 1 else ""
    lines = [
        f"train.py: preset {cfg.preset}, data {cfg.data}" + (f" (crop {cfg.crop})" if cfg.crop else "")
        + f", device {device}{processes}, precision {precision}",
        f"  model:       {cfg.image_size}x{cfg.image_size} images, batch {cfg.batch_size}, generator width "
        f"{cfg.g_channels} with {cfg.g_res_blocks} residual blocks, critic width {cfg.d_channels}",
        f"  iterations:  {total_steps} ({stop}; {steps_per_epoch} per epoch)"
        + (f", critic warm-up for the first {cfg.critic_warmup}" if cfg.critic_warmup else ""),
        f"  time budget: {budget}",
        f"  output:      {cfg.out} (samples/latest.png, metrics.jsonl, checkpoints/last.pt)",
        "  start:       " + (f"resuming at iteration {start_step} of {total_steps} (trained "
                             f"{_minutes(total_elapsed_s)} so far)" if cfg.resume else "from scratch"),
    ]
    return "\n".join(lines)


def budget_notice(step: int, total_steps: int, cfg: TrainConfig, command: str) -> str:
    """The notice when ``--max-minutes`` stopped a run before its last iteration: how far it got, and
    the command that continues it."""
    rule = "=" * 72
    return "\n".join([
        rule,
        f"TIME BUDGET REACHED: --max-minutes {cfg.max_minutes:g} stopped training at iteration {step} of "
        f"{total_steps} ({step / max(total_steps, 1):.0%}).",
        "The model is under-trained: its samples and checkpoint are those of an unfinished run.",
        "To continue from the checkpoint (each run of train.py gets a fresh budget):",
        "",
        f"    {command}",
        "",
        "Add --max-minutes M for a longer budget per run.",
        rule,
    ])


#: Longest postfix on the progress bar: at 80 columns the bar itself keeps room.
POSTFIX_CHARS = 24


def progress_postfix(record: Dict[str, Any]) -> str:
    """The few numbers the progress bar shows, at most :data:`POSTFIX_CHARS` characters: critic and
    generator loss, mean attention (the full record is in metrics.jsonl)."""
    parts = [f"{label}={record[key]:.3g}" for label, key in (("d", "d_loss"), ("g", "g_loss")) if key in record]
    if "attention_mean" in record:
        parts.append(f"A={record['attention_mean']:.2f}")
    text = ""
    for part in parts:  # whole numbers or none
        if len(text) + len(part) + bool(text) > POSTFIX_CHARS:
            break
        text += (" " if text else "") + part
    return text


#: The bar during the critic warm-up: no time estimate, since warm-up iterations skip the generator.
WARMUP_BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} [{elapsed}, critic warm-up, no estimate yet{postfix}]"


# --------------------------------------------------------------------------- #
# The parts of a run: networks, resume, data, step, logging, outputs, stopping
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class Networks:
    """What a checkpoint holds: the generator, the critic, their optimisers, the average of the
    generator's weights (None without ``--g-ema``) and the frozen age judge (None without
    ``--lambda-judge``; :func:`fit_judge`)."""

    g: torch.nn.Module
    d: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    average: Optional[Any]
    judge: Optional[torch.nn.Module] = None


def build_networks(cfg: TrainConfig, device: torch.device) -> Networks:
    """The networks of ``cfg``, initialised from ``cfg.seed``, on ``device``, with their optimisers."""
    torch.manual_seed(cfg.seed)
    g, d = models.build_generator(cfg).to(device), models.build_critic(cfg).to(device)
    if cfg.channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=True)
    return Networks(g, d, opt_g, opt_d, models.build_average(cfg, g))


def resume_from_checkpoint(cfg: TrainConfig, nets: Networks, ckpt_path: str, device: torch.device, *,
                           is_main: bool, guard: RunGuard) -> Tuple[int, float]:
    """Load ``--resume``'s checkpoint into ``nets``.

    Settings that differ from the checkpoint's (beyond :data:`config.RUN_FIELDS`)
    are warned about, and the main process drops the lines of
    ``metrics.jsonl`` logged after the checkpoint.

    Returns
    -------
    tuple of (int, float)
        The checkpoint's step (also ``guard.saved_step``) and the training
        time, in seconds, of the earlier runs of this ``--out``.
    """
    out = cfg.out
    if not os.path.isfile(ckpt_path):
        held = run_folder.holds_run(out)
        raise checkpoints.CheckpointError(f"--resume: no checkpoint at {ckpt_path}" + (
            " (the folder holds a run that never wrote one: --overwrite starts it afresh)" if held else ""))
    state = checkpoints.load_checkpoint(ckpt_path, map_location=device)
    saved = checkpoints.config_of(state, ckpt_path).to_dict()
    checkpoints.check_compatible(saved, cfg, ckpt_path)
    changed = [k for k in saved if k not in config.RUN_FIELDS and saved[k] != getattr(cfg, k, None)]
    if changed and is_main:
        print(f"warning: resuming with settings that differ from the checkpoint's: {', '.join(changed)}",
              file=sys.stderr)
    nets.g.load_state_dict(state["generator"])
    nets.d.load_state_dict(state["critic"])
    if nets.average is not None and checkpoints.AVERAGE_PART in state:
        nets.average.module.load_state_dict(state[checkpoints.AVERAGE_PART])
        nets.average.n_averaged.fill_(1)  # continue the average rather than restart it from g
    nets.opt_g.load_state_dict(state["opt_g"])
    nets.opt_d.load_state_dict(state["opt_d"])
    if cfg.lambda_judge > 0:  # the judge the run trained against, not a new one (None: fitted afresh)
        judge = checkpoints.judge_of(state, ckpt_path)
        nets.judge = judge.to(device) if judge is not None else None
    start_step = guard.saved_step = int(state["step"])
    prior_s = float((state.get("extra") or {}).get("total_elapsed_s") or 0.0)
    del state
    if is_main:
        dropped = run_folder.truncate_metrics(os.path.join(out, run_folder.METRICS), start_step)
        if dropped:
            print(f"resuming at step {start_step}: dropped {dropped} line(s) of metrics.jsonl logged after "
                  "that checkpoint", file=sys.stderr)
    return start_step, prior_s


def prepare_data(cfg: TrainConfig, device: torch.device, rank: int, world: int, *,
                 is_main: bool) -> Tuple[BatchSource, Tuple[torch.Tensor, torch.Tensor], Dict[str, Any]]:
    """The batches of this process, the fixed faces of the sample grids with their groups, and what
    ``config.json`` records of the data (images per set and group, iterations per epoch and in all); reports the
    group sizes."""
    train_set, test_set = build_training_sets(cfg, cfg.out, is_main)
    group_sizes = group_counts(train_set)
    if is_main:
        print("training images per age group: " + ", ".join(f"{name} {n}" for name, n in zip(GROUP_NAMES, group_sizes))
              + (" (drawn evenly over the groups: --balance-groups)" if cfg.balance_groups else ""), file=sys.stderr)
    groups_warning = check_groups(group_sizes, cfg.allow_empty_groups)  # raises for an empty group
    if is_main and groups_warning:
        print(groups_warning, file=sys.stderr)
    source = BatchSource(train_set, cfg, device, rank, world)
    total_steps = cfg.epochs * source.steps_per_epoch  # a validated config always has epochs
    if cfg.max_steps is not None:
        total_steps = min(cfg.max_steps, total_steps)
    images, groups = fixed_sample_inputs(test_set, cfg.num_samples, with_groups=True)
    sample_inputs = (images.to(device), groups.to(device))
    resolved = {"train_images": len(train_set), "test_images": len(test_set),
                "train_images_per_group": dict(zip(GROUP_NAMES, group_sizes)),
                "steps_per_epoch": source.steps_per_epoch, "total_steps": total_steps}
    return source, sample_inputs, resolved


#: Added to the run's seed for the frozen age judge's initialisation and batches, so that
#: ``evaluate_photos.py --separate-classifier`` (seed 0) never trains the same network.
JUDGE_SEED_OFFSET = 1000


def fit_judge(cfg: TrainConfig, source: BatchSource, device: torch.device, *, is_main: bool) -> torch.nn.Module:
    """The frozen age judge of ``--lambda-judge``: :func:`estimators.fit_group_classifier` on the training
    images (reduced to at most :data:`estimators.GROUP_CLASSIFIER_SIZE` pixels) for ``cfg.judge_steps``
    steps, seeded by ``cfg.seed + JUDGE_SEED_OFFSET``, on random views where ``cfg.judge_views > 0``, every
    group equally often where ``cfg.balance_groups``, held fixed (:class:`estimators.FrozenClassifier`).

    Every process fits the same judge from the same images and seed (on a GPU
    up to its kernels' nondeterminism); the checkpoint keeps it, so that
    ``--resume`` continues against the same judge.
    """
    judge = estimators.group_judge(cfg.image_size)
    if source.cached:
        source.prepare(progress=is_main and cfg.progress)
        photos, labels = estimators.shrink_levels(source.images, judge.size), source.labels
    else:  # one image at a time: only the reduced copies are held
        n = len(source.dataset)
        photos = torch.empty(n, 3, judge.size, judge.size, dtype=torch.uint8)
        labels = torch.empty(n, dtype=torch.long)
        for i in range(n):
            item = source.dataset[i]
            photos[i] = estimators.shrink_levels(item["image"][None], judge.size)[0]
            labels[i] = item["label"]
    if is_main:
        views = f", random views up to {cfg.judge_views:g} (--judge-views)" if cfg.judge_views > 0 else ""
        alike = ", every group drawn alike (--balance-groups)" if cfg.balance_groups else ""
        print(f"fitting the frozen age judge (--lambda-judge {cfg.lambda_judge:g}): {photos.shape[0]} training "
              f"images at {judge.size} px, {cfg.judge_steps} steps{views}{alike} ...", file=sys.stderr, flush=True)
    net = estimators.fit_group_classifier(photos, labels, steps=cfg.judge_steps, seed=cfg.seed + JUDGE_SEED_OFFSET,
                                          width=estimators.GROUP_CLASSIFIER_WIDTH, views=cfg.judge_views,
                                          balanced=cfg.balance_groups, device=device)
    judge.net.load_state_dict(net.state_dict())
    return judge.to(device)


def announce_run(cfg: TrainConfig, resolved: Dict[str, Any], *, device: torch.device, start_step: int,
                 prior_s: float) -> None:
    """Main process: write ``config.json`` (the config, and ``resolved``: what ``auto`` and the data
    became) and print the start-up summary and the lazy-penalty warning."""
    os.makedirs(os.path.join(cfg.out, "samples"), exist_ok=True)
    files.write_text(os.path.join(cfg.out, "config.json"), json.dumps({**cfg.to_dict(), "resolved": resolved},
                                                                      indent=2))
    print(startup_summary(cfg, device=device, precision=resolved["precision"], world=resolved["world_size"],
                          start_step=start_step, total_steps=resolved["total_steps"],
                          steps_per_epoch=resolved["steps_per_epoch"], total_elapsed_s=prior_s),
          file=sys.stderr, flush=True)
    gp_warning = lazy_penalty_warning(cfg.gp_every, resolved["total_steps"])
    if gp_warning:
        print(gp_warning, file=sys.stderr)


def build_stepper(cfg: TrainConfig, nets: Networks, precision: str, device: torch.device, rank: int,
                  world: int) -> AcGANStep:
    """The training step of ``nets``: wrapped in DDP for several processes, the generator compiled with
    ``--compile``, with a gradient scaler for fp16 and the frozen age judge where there is one."""
    g_train, d_train = nets.g, nets.d
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        g_train, d_train = DDP(nets.g, device_ids=ids), DDP(nets.d, device_ids=ids)
    if cfg.compile:
        g_train = torch.compile(g_train)
    autocast = config.autocast_dtype(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    return AcGANStep(cfg, g_train, d_train, nets.opt_g, nets.opt_d,
                     StepOptions(autocast=autocast, channels_last=bool(cfg.channels_last)),
                     rank=rank, world=world, scaler=scaler, judge=nets.judge)


def progress_bar(cfg: TrainConfig, start_step: int, total_steps: int) -> Any:
    """The tqdm bar of the main process; without an estimate while the critic warms up."""
    from tqdm import tqdm

    warming = start_step < cfg.critic_warmup
    return tqdm(total=total_steps, initial=start_step, unit="it", dynamic_ncols=True, desc="AcGAN",
                bar_format=WARMUP_BAR_FORMAT if warming else None)


def advance_bar(bar: Any, step: int, cfg: TrainConfig) -> None:
    """One iteration on the bar; the warm-up's format is dropped once the generator trains."""
    if bar.bar_format == WARMUP_BAR_FORMAT and step >= cfg.critic_warmup:
        bar.bar_format = None
        bar.write(f"critic warm-up done at iteration {step}: the generator trains from now on", file=sys.stderr)
    bar.update(1)


class TrainLog:
    """The metrics of a run, averaged over the iterations between logging steps.

    Each logged record goes to ``metrics.jsonl`` and, with ``--report-to
    tensorboard``, to TensorBoard (:mod:`tensorboard_log`), both written by
    the main process only; it also sets the progress bar's postfix and raises
    the mask-saturation warning once per side. The skip counters stay on the
    device and are read at logging steps only.

    Parameters
    ----------
    cfg : TrainConfig
        The run's config (``out``, ``report_to``, ``resume``, ...).
    device : torch.device
        Where the step's metrics live.
    world : int
        Number of processes (images per second count all of them).
    is_main : bool
        Whether this process writes.
    start_step : int
        The step training starts from.
    prior_s : float
        Training time of the earlier runs of this ``--out``, in seconds.
    bar : tqdm or None
        The progress bar, whose postfix shows a few numbers.
    """

    def __init__(self, cfg: TrainConfig, device: torch.device, world: int, *, is_main: bool, start_step: int,
                 prior_s: float, bar: Any) -> None:
        self.cfg, self.device, self.world, self.is_main, self.bar = cfg, device, world, is_main, bar
        self.prior_s = prior_s
        self.metrics_file = run_folder.MetricsLog(os.path.join(cfg.out, run_folder.METRICS)) if is_main else None
        self.tensorboard = (tensorboard_log.open_log(cfg.report_to, cfg.out, start_step=start_step, resume=cfg.resume)
                            if is_main else None)
        self.sums: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}
        self.skipped_total = self.consecutive_skipped = torch.zeros((), device=device)
        self.warned_saturation: set = set()
        self.saturated: Optional[Tuple[str, int]] = None  # (side, first logged step) of the saturation now going on
        self.images_since_log = 0
        self.t_start = self.t_log = time.perf_counter()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(out={self.cfg.out!r}, report_to={self.cfg.report_to!r}, main={self.is_main})"

    def total_elapsed(self) -> float:
        """Seconds of training of this --out over every run (``elapsed_s``: of this run only)."""
        return self.prior_s + time.perf_counter() - self.t_start

    def count(self, metrics: Dict[str, Any], images: int) -> None:
        """After each iteration: the images it trained on (this process's), and whether it was skipped."""
        self.images_since_log += images * self.world
        skipped = torch.clamp(metrics["d_skipped"] + metrics.get("g_skipped", 0.0), max=1.0)
        self.skipped_total = self.skipped_total + skipped
        self.consecutive_skipped = (self.consecutive_skipped + 1) * skipped

    def add(self, metrics: Dict[str, Any]) -> None:
        """Add an iteration's metrics to the sums of this logging window."""
        for k, v in metrics.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1

    def write(self, step: int, epoch: int, lr: float) -> Dict[str, Any]:
        """Log the window's means at ``step`` and start a new window; returns the record."""
        now = time.perf_counter()
        keys = sorted(self.sums)
        values = torch.stack([torch.as_tensor(self.sums[k], dtype=torch.float32, device=self.device).float()
                              / self.counts[k] for k in keys]).tolist()
        record = {"step": step, "epoch": epoch, **dict(zip(keys, values)),
                  "images_per_second": self.images_since_log / max(now - self.t_log, 1e-9),
                  "lr": lr, "skipped_steps": int(self.skipped_total), "elapsed_s": now - self.t_start,
                  "total_elapsed_s": self.prior_s + now - self.t_start}
        if self.metrics_file is not None:
            self.metrics_file.write(record)
        if self.tensorboard is not None:
            self.tensorboard.scalars(record)
        cfg = self.cfg
        if self.is_main and cfg.generator_mode == "attention" and step >= cfg.critic_warmup + 100:
            self._watch_saturation(record, step)
        if self.bar is not None:
            self.bar.set_postfix_str(progress_postfix(record), refresh=False)
        self.sums, self.counts, self.images_since_log, self.t_log = {}, {}, 0, now
        return record

    def _watch_saturation(self, record: Dict[str, Any], step: int) -> None:
        """Warn once per side when the masks have stayed saturated for :data:`SATURATION_PATIENCE` iterations."""
        side = mask_saturation(record)
        if side is None or self.saturated is None or self.saturated[0] != side:
            self.saturated = None if side is None else (side, step)
        if side is None or side in self.warned_saturation:
            return
        since = self.saturated[1]
        if step - since >= SATURATION_PATIENCE:
            self.warned_saturation.add(side)
            print("\n" + saturation_warning(side, record, step, self.cfg, since), file=sys.stderr)

    def image(self, grid: Any, step: int) -> None:
        """A sample grid, for TensorBoard (with ``--report-to tensorboard``); its events are flushed."""
        if self.tensorboard is not None:
            self.tensorboard.image(grid, step)
            self.tensorboard.flush()

    def close(self) -> None:
        """Close metrics.jsonl and the event file (closing twice is harmless)."""
        if self.metrics_file is not None:
            self.metrics_file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def diverged(log: TrainLog, metrics: Dict[str, Any], cfg: TrainConfig) -> bool:
    """At a logging step: whether the last ``--max-nonfinite`` iterations were all skipped (then says so)."""
    if int(log.consecutive_skipped) < cfg.max_nonfinite:
        return False
    bad = nonfinite_terms(metrics) or ["a gradient"]
    print(f"error: {int(log.consecutive_skipped)} consecutive steps had non-finite values "
          f"({', '.join(bad)}); stopping. Try a lower --lr or --precision fp32.", file=sys.stderr)
    return True


def stop_requested(interrupt: Interrupt, log: TrainLog, cfg: TrainConfig, step: int, world: int,
                   device: torch.device) -> Optional[str]:
    """``INTERRUPTED`` after a signal, ``TIME_BUDGET`` past ``--max-minutes``, else None.

    Several processes agree on stopping at logging steps only (one
    all-reduce), so that they stop at the same iteration.
    """
    over_time = cfg.max_minutes is not None and time.perf_counter() - log.t_start > cfg.max_minutes * 60
    check_stop = world == 1 or step % cfg.log_every == 0
    if check_stop and any_rank(interrupt.requested or over_time, world, device):
        return INTERRUPTED if interrupt.requested else TIME_BUDGET
    return None


class Training:
    """The loop of one run of ``train.py`` from ``start_step``: iterations, logging, checkpoints and samples.

    Sets ``guard.step`` and, in the main process, ``guard.save``, so that
    :func:`main` can save a last checkpoint when an error stops the loop.

    Parameters
    ----------
    cfg : TrainConfig
        The run's config.
    nets : Networks
        The networks, optimisers and average being trained.
    stepper : AcGANStep
        One training iteration.
    source : BatchSource
        The batches of this process.
    sample_inputs : tuple of torch.Tensor
        The fixed faces of the sample grids, ``(N, 3, H, W)``, and their age
        groups ``(N,)`` (told to a ``--g-source`` generator).
    total_steps, start_step : int
        The run's last iteration and the one it starts from.
    log : TrainLog
        Where the metrics go.
    guard : RunGuard
        What :func:`main` needs when the loop fails.
    """

    def __init__(self, cfg: TrainConfig, nets: Networks, stepper: AcGANStep, source: BatchSource, *,
                 sample_inputs: Tuple[torch.Tensor, torch.Tensor], total_steps: int, start_step: int, log: TrainLog,
                 guard: RunGuard, device: torch.device, world: int, is_main: bool, autocast: Optional[torch.dtype],
                 bar: Any) -> None:
        self.cfg, self.nets, self.stepper, self.source, self.log, self.guard = cfg, nets, stepper, source, log, guard
        (self.sample_inputs, self.sample_groups), self.total_steps, self.step = sample_inputs, total_steps, start_step
        self.device, self.world, self.is_main, self.autocast, self.bar = device, world, is_main, autocast, bar
        self.ckpt_path = os.path.join(cfg.out, "checkpoints", "last.pt")
        guard.step = lambda: self.step
        if is_main:
            guard.save = self.save_checkpoint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(out={self.cfg.out!r}, step={self.step}, total_steps={self.total_steps})"

    def save_checkpoint(self, reason: str) -> int:
        """Save the checkpoint of the current step (``reason`` in its extra); returns the step."""
        nets = self.nets
        checkpoints.save_checkpoint(self.ckpt_path, self.cfg, nets.g, nets.d, nets.opt_g, nets.opt_d, self.step,
                                    average=nets.average, judge=nets.judge,
                                    extra={"reason": reason, "total_elapsed_s": self.log.total_elapsed()})
        return self.step

    def write_outputs(self, reason: str) -> None:
        """Main process: the checkpoint and the sample grid of the current step (and its TensorBoard image)."""
        if not self.is_main:
            return
        step = self.guard.saved_step = self.save_checkpoint(reason)
        g, average = self.nets.g, self.nets.average
        shown = g if average is None else average.module  # the samples show what age.py will use
        shown.eval()
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            aged = models.age_all_groups(shown, self.sample_inputs, self.sample_groups)
        g.train()
        grid = pictures.aging_figure(self.sample_inputs, aged)
        out = self.cfg.out
        pictures.save_png(grid, os.path.join(out, "samples", f"step_{step:06d}.png"))
        pictures.save_png(grid, os.path.join(out, "samples", "latest.png"))
        self.log.image(grid, step)

    def run(self, unreadable_reported: int = 0) -> Tuple[str, int]:
        """Train until the last iteration, a signal, the time budget or divergence; returns the status
        (:data:`checkpoints.FINISHED`, ...) and the exit code. ``unreadable_reported``: how many of the
        source's unreadable images were reported already."""
        cfg, source, log, nets, total_steps = self.cfg, self.source, self.log, self.nets, self.total_steps
        status, exit_code = FINISHED, 0
        with Interrupt() as interrupt:
            while self.step < total_steps and status == FINISHED:
                epoch, first = divmod(self.step, source.steps_per_epoch)
                lr = cfg.lr * cfg.lr_decay ** (epoch // cfg.lr_decay_every)
                for opt in (nets.opt_g, nets.opt_d):
                    for group in opt.param_groups:
                        group["lr"] = lr
                for images, labels in source.epoch(epoch, first):
                    if len(source.unreadable) > unreadable_reported:
                        unreadable_reported = _report_unreadable(source, unreadable_reported, self.bar)
                    metrics = self.stepper(images, labels, self.step)
                    if nets.average is not None:
                        nets.average.update_parameters(nets.g)  # on the device, no synchronisation
                    self.step += 1
                    step = self.step
                    log.count(metrics, images.shape[0])
                    logging_step = step % cfg.log_every == 0 or step == total_steps
                    if logging_step and diverged(log, metrics, cfg):
                        status, exit_code = DIVERGED, EXIT_DIVERGED
                        break
                    log.add(metrics)
                    if self.bar is not None:
                        advance_bar(self.bar, step, cfg)
                    if logging_step:
                        log.write(step, epoch, lr)
                    if step % cfg.checkpoint_every == 0 or step % cfg.sample_every == 0:
                        self.write_outputs("periodic")
                    stop = stop_requested(interrupt, log, cfg, step, self.world, self.device)
                    if stop is not None:
                        status, exit_code = stop, EXIT_INTERRUPTED if stop == INTERRUPTED else 0
                        break
                    if step >= total_steps:
                        break
            if status != DIVERGED:
                self.write_outputs(status)
        return status, exit_code


def final_report(status: str, step: int, total_steps: int, *, cfg: TrainConfig, guard: RunGuard,
                 source: BatchSource, argv: Optional[Sequence[str]], world: int) -> None:
    """The main process's last line: how the run ended, where its samples and checkpoint are; after a run
    the time budget stopped early, the notice with the command that continues it."""
    ckpt_path = os.path.join(cfg.out, "checkpoints", "last.pt")
    if guard.saved_step is None:
        where = "no checkpoint was written"
    elif guard.saved_step == step:
        where = f"checkpoint {ckpt_path}"
    else:  # diverged: the last checkpoint is an earlier one
        where = f"last checkpoint {ckpt_path} (step {guard.saved_step})"
    samples = os.path.join(cfg.out, run_folder.SAMPLES)
    shown = f"samples in {samples}" if os.path.isfile(os.path.join(samples, "latest.png")) else "no samples written"
    print(f"{status} at step {step}/{total_steps}: {shown}, {where}"
          + (f"; {len(source.unreadable)} unreadable image(s) skipped (listed above)" if source.unreadable else ""),
          file=sys.stderr)
    if status == TIME_BUDGET and step < total_steps:
        command = continue_command(sys.argv[1:] if argv is None else argv, world)
        print("\n" + budget_notice(step, total_steps, cfg, command), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# A run, start to end
# --------------------------------------------------------------------------- #


def train(cfg: TrainConfig, guard: Optional[RunGuard] = None, *, argv: Optional[Sequence[str]] = None) -> int:
    """Train the AcGAN of ``cfg``; returns the exit status (0 finished or out of time, 3 diverged,
    130 interrupted). Errors propagate to :func:`main`, which reports them with ``guard``'s help."""
    guard = guard if guard is not None else RunGuard()
    cfg = with_data_crop(cfg)  # the crop of the photos (prepare.py's record), kept in every checkpoint
    rank, world, device = setup_distributed(cfg)
    is_main = rank == 0
    precision = config.resolve_precision(cfg.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = cfg.out
    ckpt_path = os.path.join(out, "checkpoints", "last.pt")
    if is_main:  # the folder is checked and locked before any work is spent
        guard.stack.enter_context(run_folder.open_run(out, resume=cfg.resume, overwrite=cfg.overwrite))
        guard.out, guard.ckpt_path = out, ckpt_path

    nets = build_networks(cfg, device)
    start_step, prior_s = 0, 0.0  # prior_s: training time of the earlier runs of this --out
    if cfg.resume:
        start_step, prior_s = resume_from_checkpoint(cfg, nets, ckpt_path, device, is_main=is_main, guard=guard)
    source, sample_inputs, data_facts = prepare_data(cfg, device, rank, world, is_main=is_main)
    total_steps = data_facts["total_steps"]
    if is_main:
        resolved = {"device": str(device), "precision": precision, "world_size": world, **data_facts}
        announce_run(cfg, resolved, device=device, start_step=start_step, prior_s=prior_s)
    if cfg.lambda_judge > 0 and nets.judge is None:
        nets.judge = fit_judge(cfg, source, device, is_main=is_main)
    stepper = build_stepper(cfg, nets, precision, device, rank, world)

    source.prepare(progress=is_main and cfg.progress)
    unreadable_reported = _report_unreadable(source, 0, None)  # the cached path knows them all now
    bar = progress_bar(cfg, start_step, total_steps) if is_main and cfg.progress else None
    log = TrainLog(cfg, device, world, is_main=is_main, start_step=start_step, prior_s=prior_s, bar=bar)
    guard.stack.callback(log.close)  # an error or a second Ctrl-C still flushes the logs
    loop = Training(cfg, nets, stepper, source, sample_inputs=sample_inputs, total_steps=total_steps,
                    start_step=start_step, log=log, guard=guard, device=device, world=world, is_main=is_main,
                    autocast=config.autocast_dtype(precision), bar=bar)
    status, exit_code = loop.run(unreadable_reported)
    if bar is not None:
        bar.close()
    log.close()
    if is_main:
        final_report(status, loop.step, total_steps, cfg=cfg, guard=guard, source=source, argv=argv, world=world)
    if world > 1:
        # Every rank has run its last collective; the ranks leave together.
        # main() destroys the process group (teardown_distributed).
        dist.barrier()
    return exit_code


def run(cfg: TrainConfig, *, argv: Optional[Sequence[str]] = None) -> int:
    """Train as ``train.py`` does, every error reported in one line.

    Parameters
    ----------
    cfg : TrainConfig
        The run.
    argv : sequence of str, optional
        The ``train.py`` flags of the run, for the command that continues it
        after its time budget; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 finished or out of time, :data:`EXIT_ERROR` stopped by an error
        (checkpoint saved where possible), :data:`cli.EXIT_USAGE` an unusable
        configuration, folder, checkpoint or dataset, :data:`EXIT_DIVERGED`,
        :data:`EXIT_INTERRUPTED` (SIGINT / SIGTERM, or a second one: aborted).
    """
    if cfg.report_to == "tensorboard":
        try:  # before any work: a missing package is said at start, in one line
            tensorboard_log.require()
        except tensorboard_log.TensorBoardMissing as exc:
            return cli.fail("train.py", exc)
    guard = RunGuard()
    try:
        with guard.stack:  # holds the run folder's lock until train() is done
            return train(cfg, guard, argv=sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:  # a second SIGINT: abort at once
        print(f"train.py: aborted{guard.previous_checkpoint()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error ends in one line
        if guard.save is not None:  # training had started
            return guard.crashed(exc)
        if isinstance(exc, (checkpoints.CheckpointError, ValueError, OSError)):  # usage, data, folder, checkpoint
            return cli.fail("train.py", exc)
        log = guard.log_traceback(exc)
        print(f"train.py: error: {type(exc).__name__}: {_essence(exc)}" + (f" (traceback in {log})" if log else ""),
              file=sys.stderr)
        return EXIT_ERROR
    finally:
        teardown_distributed()
