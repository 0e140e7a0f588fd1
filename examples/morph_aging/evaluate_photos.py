"""Evaluate a trained AcGANs generator on photographs: is the aged face still the person?

::

    python examples/morph_aging/evaluate_photos.py --checkpoint runs/photo/checkpoints/last.pt \\
        --out runs/photo/eval-photos [--data FOLDER] [--num-faces 40] [--far 0.01] \\
        [--ground-truth FGNET_FOLDER] [--weights average|trained] [--separate-classifier STEPS] \\
        [--judge-of CHECKPOINT] [--grey]

Held-out photos of every source group (the checkpoint's test split of
``--data``, by default its training data; ``--num-faces`` per group, drawn
at random with a fixed seed, their real ages reported) are aged to every
other group and measured as ``photo_protocol.py`` describes: verification against the input
at a threshold calibrated to accept at most ``--far`` of the impostor pairs
of the inputs (with the copy-the-input rate and the impostor rate beside it),
estimated ages per (source, target) with the estimator's own accuracy on real
photos beside the aged faces' accuracy (and the critic's own age classifier
on both, the one the generator was trained to satisfy; the frozen age judge
of a ``train.py --lambda-judge`` run likewise, or with ``--judge-of`` that of
another run, on a model not trained against it, and the judge again on
random shifted, zoomed and mirrored views of the same images; with
``--separate-classifier STEPS`` also a small classifier trained apart from
the GAN on its training photos), background PSNR outside the central
ellipse and the masks' mean.

``--grey``: the held-out photos are also turned grey, aged and verified
against their grey inputs (a threshold of their own), with the colour the
model adds to them.

``--ground-truth FOLDER``: a dataset with subjects and ages (FG-NET) whose
people the model never saw (every image is used): each person's younger
photo is aged to the group of their older photo and compared with the real
older photo, the younger photo itself beside it (copy-the-input), at the
held-out photos' threshold and at one calibrated on the folder's own
impostor pairs (which does not move with the held-out sample).

The photos must be cropped as the model's training photos were: the
checkpoint records the crop of a folder made by ``prepare.py``; point
``--data`` and ``--ground-truth`` at folders prepared with the same crop.

Outputs in ``--out``: ``results.json``, ``report.md``, ``examples.png``
(inputs at every age with attention and colour masks, the paper's Fig. 2)
and, with ``--ground-truth``, ``ground_truth.png`` (input, aged, real older
photo). Needs the ``face`` extra (dlib). Exit status: 0 evaluated, 2 usage,
checkpoint or data error, or a missing extra.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

import attngan
import checkpoints
import cli
import config
import estimators
import files
import models
import pictures
import photo_protocol as pp
from ages import GROUP_NAMES, NUM_GROUPS
from cli import EXIT_OK
from data import build_datasets, group_sample


#: The largest side the separate age classifier (``--separate-classifier``) sees; larger photos are reduced to it.
SEPARATE_SIZE = estimators.GROUP_CLASSIFIER_SIZE
#: The random views (largest shift and zoom) on which the judge's verdicts are also counted, where its run
#: trained without ``--judge-views``; a run trained with them is counted at its own amount.
JUDGE_EVAL_VIEWS = 0.1
#: The seed of those views: the same views for every checkpoint evaluated on the same photos.
JUDGE_VIEWS_SEED = 2024
#: The ground truth's pairs are also reported split at this real age of the younger photo (years): FG-NET's
#: childhood photos below it, the teenage and adult ones at or above it.
GT_SPLIT_AGE = 10


class PhotoEvalError(Exception):
    """A usage, checkpoint, data or extra problem: one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate_photos.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="training checkpoint (.pt) or exported generator (.safetensors)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--data", default=None, metavar="FOLDER",
                        help="photos to age (default: the checkpoint's training data); its test split is used")
    parser.add_argument("--split", default="test", choices=("test", "all"),
                        help="test: the held-out split of the checkpoint's run; all: every photo of --data")
    parser.add_argument("--num-faces", type=cli.positive_int, default=40, metavar="N",
                        help="at most N photos per source group, drawn at random with a fixed seed (the same "
                             "photos for every model evaluated on the same split)")
    parser.add_argument("--with-young", action="store_true",
                        help="for a model trained with --drop-young: age the held-out photos below 10 too, in the "
                             "10-20 group, so that the photos are those of a --clip-young run of the same seed")
    parser.add_argument("--far", type=cli.probability, default=0.01, metavar="RATE",
                        help="the verification threshold accepts at most this fraction of impostor pairs")
    parser.add_argument("--ground-truth", default=None, metavar="FOLDER",
                        help="a dataset with subjects and ages (FG-NET): age each person's younger photo to the "
                             "group of their older photo and compare with it")
    parser.add_argument("--max-pairs", type=cli.positive_int, default=200, metavar="P",
                        help="at most P ground-truth pairs")
    parser.add_argument("--weights", default="average", choices=("average", "trained"),
                        help="the averaged generator of a --g-ema run, or its trained weights")
    parser.add_argument("--num-examples", type=cli.int_at_least(0), default=6, metavar="K",
                        help="photos shown in examples.png and ground_truth.png")
    parser.add_argument("--separate-classifier", type=cli.int_at_least(0), default=0, metavar="STEPS",
                        help="also train an age-group classifier apart from the GAN on its training photos "
                             f"(at most {SEPARATE_SIZE} px, STEPS Adam steps of 64) and report how often it puts "
                             "the aged faces and the real photos in their group; 0: no")
    parser.add_argument("--judge-of", default=None, metavar="CHECKPOINT",
                        help="the frozen age judge of another run (train.py --lambda-judge) classifies the aged "
                             "faces and the real photos: what that judge says of a model not trained against it "
                             "(default: the checkpoint's own judge, where it has one)")
    parser.add_argument("--grey", action="store_true",
                        help="also age the held-out photos turned grey (attngan.grayscale) and verify each against "
                             "its grey input, at a threshold calibrated on the grey photos' impostor pairs, with the "
                             "colour the model adds to them: does the model keep the person on greyscale photos "
                             "(most of FG-NET's younger photos are greyscale scans)?")
    parser.add_argument("--source", default="told", choices=("told", "unknown"),
                        help="for a generator trained with --g-source: tell it each photo's own age group, from the "
                             "age in its file name (told), or not (unknown, as for a photo of unknown age); other "
                             "generators are not told either way")
    parser.add_argument("--batch-size", type=cli.positive_int, default=32, metavar="B", help="generator batch size")
    parser.add_argument("--device", default="auto", choices=config.DEVICES, help="where the generator runs")
    return parser


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _dataset(cfg: config.TrainConfig, data: str, split: str) -> Any:
    try:
        (ds,) = build_datasets(cfg, data=data, splits=(split,))
    except (TypeError, ValueError) as exc:
        raise PhotoEvalError(f"cannot use {data}: {cli.one_line(exc, 300)}") from None
    return ds


def _load(ds: Any, indices: Sequence[int]) -> torch.Tensor:
    try:
        return torch.stack([ds[i]["image"] for i in indices])
    except ValueError as exc:
        raise PhotoEvalError(cli.one_line(exc, 300)) from None


def select_inputs(labels: torch.Tensor, per_group: int) -> List[int]:
    """``per_group`` indices of each group drawn at random (:func:`data.group_sample`), group by group.

    >>> select_inputs(torch.tensor([0, 1, 0, 0, 4]), 3)
    [0, 2, 3, 1, 4]
    """
    return [i for k in range(NUM_GROUPS) for i in group_sample(labels, k, per_group)]


def evaluate_photos(args: argparse.Namespace, command: str) -> Dict[str, Any]:
    """Run the protocol; the results as a JSON-ready dict (pictures under ``"pictures"``)."""
    t0 = time.perf_counter()
    try:
        device = config.resolve_device(args.device)
        state = checkpoints.load_checkpoint(args.checkpoint)
        g, cfg = checkpoints.generator_of(state, args.checkpoint, weights=args.weights)
        critic = checkpoints.critic_of(state, args.checkpoint)
        judge_from = args.judge_of or args.checkpoint
        judge_state = state if args.judge_of is None else checkpoints.load_checkpoint(judge_from)
        judge = checkpoints.judge_of(judge_state, judge_from)
        judge_views = checkpoints.config_of(judge_state, judge_from).judge_views  # of the judge's own run
        del judge_state
        if judge is None and args.judge_of is not None:
            raise checkpoints.CheckpointError(f"--judge-of: {args.judge_of} holds no frozen age judge (its run was "
                                              "not trained with --lambda-judge)")
    except ValueError as exc:  # CheckpointError included
        raise PhotoEvalError(cli.one_line(exc, 400)) from None
    if cfg.data == "synthetic" and args.data is None:
        raise PhotoEvalError(f"{args.checkpoint} was trained on the synthetic faces: pass --data, a folder of photos")
    try:
        verifier, estimator = estimators.DlibVerifier(), estimators.DlibAgeEstimator()
    except estimators.EstimatorUnavailable as exc:
        raise PhotoEvalError(str(exc)) from None
    g = g.to(device).eval()
    data = args.data or cfg.data
    ds = _dataset(_with_young(cfg) if args.with_young else cfg, data, args.split)
    records = getattr(ds, "records", None)
    if records is None:
        raise PhotoEvalError(f"{data} is not a folder or CSV of photos")
    indices = select_inputs(ds.labels(), args.num_faces)
    _log(f"evaluate_photos.py: {len(indices)} photos of {data} ({args.split} split), aged to every group")
    images = _load(ds, indices)
    sources = ds.labels()[indices]
    subjects = [records[i].subject for i in indices]
    told = sources if args.source == "told" else None  # used by a --g-source generator only
    aged, mask_means = pp.age_every_group(g, images, device=device, batch_size=args.batch_size, sources=told)
    _log("  identity (dlib face recognition) ...")
    identity = pp.identity_table(verifier, images, aged, sources, subjects, far=args.far)
    grey = _grey_table(args, g, verifier, images, sources, subjects, device, told) if args.grey else None
    _log("  age (dlib age estimator) ...")
    age = pp.age_table(estimator, images, aged, sources)
    if critic is not None:
        critic = critic.to(device)
        age["critic"] = pp.classifier_table(lambda x: critic(x.to(device)).logits, images, aged, sources,
                                            batch_size=args.batch_size)
    else:
        age["critic"] = None
    if judge is not None:  # --lambda-judge: the frozen classifier the generator was also trained to satisfy
        judge = judge.to(device)
        age["judge"] = {**pp.classifier_table(lambda x: judge(x.to(device)), images, aged, sources,
                                              batch_size=args.batch_size),
                        "checkpoint": os.path.abspath(judge_from), "own": args.judge_of is None,
                        "views": _judge_on_views(judge, judge_views, images, aged, sources, device, args.batch_size)}
    if args.separate_classifier:
        age["separate"] = _separate_classifier(args.separate_classifier, cfg, data, images, aged, sources, device)
    background = pp.background_table(images, aged, mask_means, sources)
    effect = None
    if models.told_source(g):  # --g-source: how much the told group changes the aged faces
        _log("  the source group's effect (--g-source) ...")
        effect = pp.source_effect(g, images, sources, device=device, batch_size=args.batch_size,
                                  told=aged if told is not None else None)  # the told faces are aged already
    result: Dict[str, Any] = {
        "command": command, "checkpoint": os.path.abspath(args.checkpoint), "step": state.get("step"),
        "weights": args.weights, "with_young": args.with_young, "config": dataclasses.asdict(cfg), "data": data,
        "split": args.split,
        "photos": len(indices), "photos_per_source": [int((sources == k).sum()) for k in range(NUM_GROUPS)],
        "source_ages": _source_ages([records[i].age for i in indices], sources),
        "source_told": models.told_source(g) and args.source == "told",  # --g-source generators only
        "source_effect": effect,
        "far": args.far, "identity": identity, "identity_grey": grey, "age": age, "background": background,
        "crop": cfg.crop,  # the crop the model learned (train.py records it in the config)
    }
    k = min(args.num_examples, len(indices))
    picks = _spread(sources, k)
    out = _aging_output(g, images[picks], device, None if told is None else told[picks])
    pics = {"examples": pictures.aging_figure(images[picks], out)} if k else {}
    if args.ground_truth:
        result["ground_truth"], gt_picture = _ground_truth(args, cfg, g, device, verifier, estimator,
                                                           identity["threshold"]["threshold"])
        if gt_picture is not None:
            pics["ground_truth"] = gt_picture
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["pictures"] = pics
    return result


def _grey_table(args: argparse.Namespace, g: torch.nn.Module, verifier: Any, images: torch.Tensor,
                sources: torch.Tensor, subjects: Sequence[Any], device: torch.device,
                told: Optional[torch.Tensor] = None) -> Dict[str, Any]:
    """``--grey``: :func:`photo_protocol.identity_table` on the photos turned grey, and per target group the
    colour the model adds to them (mean over pixels of the largest minus the smallest channel, 0-255 levels).
    ``told``: the sources told to a ``--g-source`` generator (None: not told)."""
    _log("  identity on the photos turned grey (--grey) ...")
    grey = attngan.grayscale(images)
    aged, _ = pp.age_every_group(g, grey, device=device, batch_size=args.batch_size, sources=told)
    table = pp.identity_table(verifier, grey, aged, sources, subjects, far=args.far)
    for row in table["per_target"]:
        out = aged[sources != row["target"], row["target"]]
        spread = out.amax(dim=1) - out.amin(dim=1)  # 0 on a grey image
        row["colour_added"] = float(spread.mean()) * 127.5 if out.shape[0] else None
    return table


def _judge_on_views(judge: torch.nn.Module, trained_views: float, images: torch.Tensor, aged: torch.Tensor,
                    sources: torch.Tensor, device: torch.device, batch_size: int) -> Dict[str, Any]:
    """The judge's :func:`photo_protocol.classifier_table` on random views (``attngan.apply_affine``) of the
    aged faces and the real photos, drawn from :data:`JUDGE_VIEWS_SEED` in call order: at the amount of the
    judge's run's ``--judge-views`` (``trained_views``), or :data:`JUDGE_EVAL_VIEWS` where that was 0."""
    amount = trained_views if trained_views > 0 else JUDGE_EVAL_VIEWS
    draw = torch.Generator().manual_seed(JUDGE_VIEWS_SEED)

    def on_views(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        theta = attngan.random_affine_params(x.shape[0], max_shift=amount, max_zoom=amount, flip=True,
                                             generator=draw)
        return judge(attngan.apply_affine(x, theta))

    return {**pp.classifier_table(on_views, images, aged, sources, batch_size=batch_size), "amount": amount}


def _separate_classifier(steps: int, cfg: config.TrainConfig, data: str, images: torch.Tensor, aged: torch.Tensor,
                         sources: torch.Tensor, device: torch.device) -> Dict[str, Any]:
    """:func:`estimators.fit_group_classifier` on the model's training photos, then its
    :func:`photo_protocol.classifier_table` on the aged faces and the real photos."""
    ds = _dataset(cfg, data, "train")
    size = min(cfg.image_size, SEPARATE_SIZE)
    _log(f"  a separate age classifier: {len(ds)} training photos at {size} px, {steps} steps ...")
    photos = torch.empty(len(ds), 3, size, size, dtype=torch.uint8)
    for i in range(len(ds)):
        photos[i] = pictures.quantize(estimators.resized(_load(ds, [i]), size))[0]
    net = estimators.FrozenClassifier(estimators.fit_group_classifier(photos, ds.labels(), steps=steps, device=device),
                                      size)
    table = pp.classifier_table(lambda x: net(x.to(device)), images, aged, sources)
    return {**table, "steps": steps, "photos": len(ds), "size": size}


def _source_ages(ages: Sequence[Any], sources: torch.Tensor) -> List[Optional[List[float]]]:
    """Per source group, the youngest, mean and oldest real age of its photos (None: no ages or no photo)."""
    out: List[Optional[List[float]]] = []
    for k in range(NUM_GROUPS):
        known = [float(a) for a, s in zip(ages, sources.tolist()) if s == k and a is not None and a == a]
        out.append([min(known), round(sum(known) / len(known), 1), max(known)] if known else None)
    return out


def _ages_line(ages: Optional[Sequence[Any]]) -> List[str]:
    if not ages or not any(ages):
        return []
    cells = [f"{GROUP_NAMES[k]}: {a[0]:g}-{a[2]:g} (mean {a[1]:g})" for k, a in enumerate(ages) if a]
    return ["Real ages of the photos per source group: " + "; ".join(cells) + ".", ""]


def _with_young(cfg: config.TrainConfig) -> config.TrainConfig:
    """``cfg`` reading ages below 10 into the 10-20 group instead of refusing or leaving them out."""
    return dataclasses.replace(cfg, clip_young=True, drop_young=False)


def _spread(sources: torch.Tensor, k: int) -> List[int]:
    """``k`` input positions taken round-robin over the source groups (a varied picture)."""
    by_group = [torch.nonzero(sources == s).flatten().tolist() for s in range(NUM_GROUPS)]
    picks: List[int] = []
    while len(picks) < k and any(by_group):
        for members in by_group:
            if members and len(picks) < k:
                picks.append(members.pop(0))
    return picks


def example_pairs(young_ages: Sequence[float], subjects: Sequence[Any], k: int) -> List[int]:
    """The ``k`` ground-truth pairs shown: alternately one whose younger photo is below :data:`GT_SPLIT_AGE` and
    one at or above it (FG-NET's first pairs are all children), each person's first pair before anyone's second.

    >>> example_pairs([3, 3, 15, 15, 4, 30], ["a", "a", "b", "b", "c", "d"], 4)
    [0, 2, 4, 5]
    """
    seen: Dict[Any, int] = {}
    rank = []
    for s in subjects:
        rank.append(seen.get(s, 0))
        seen[s] = rank[-1] + 1
    order = sorted(range(len(subjects)), key=lambda j: rank[j])  # stable: dataset order within a rank
    older = torch.tensor([int(young_ages[j] >= GT_SPLIT_AGE) for j in order], dtype=torch.long)
    return [order[i] for i in _spread(older, k)]


@torch.no_grad()
def _aging_output(g: torch.nn.Module, images: torch.Tensor, device: torch.device,
                  sources: Optional[torch.Tensor]) -> Any:
    if not images.shape[0]:
        return None
    out = models.age_all_groups(g, images.to(device), sources)
    return type(out)(*(t.cpu() for t in out))


def _ground_truth(args: argparse.Namespace, cfg: config.TrainConfig, g: torch.nn.Module, device: torch.device,
                  verifier: Any, estimator: Any, threshold: Optional[float]) -> Tuple[Dict[str, Any], Any]:
    gt_cfg = dataclasses.replace(_with_young(cfg), skip_bad_files=True)
    ds = _dataset(gt_cfg, args.ground_truth, "all")
    subjects = [r.subject for r in ds.records]
    if all(s is None for s in subjects):
        raise PhotoEvalError(f"--ground-truth {args.ground_truth}: its file names record no subjects; it needs a "
                             "dataset with several photos per person (FG-NET, Morph, CACD)")
    pairs = pp.aging_pairs(subjects, ds.labels().tolist())[: args.max_pairs]
    _log(f"  ground truth: {len(pairs)} (younger, older) pairs of {args.ground_truth}")
    if not pairs or threshold is None:
        return {"pairs": len(pairs), "data": args.ground_truth}, None
    young = _load(ds, [a for a, _ in pairs])
    old = _load(ds, [b for _, b in pairs])
    targets = ds.labels()[[b for _, b in pairs]]
    told = ds.labels()[[a for a, _ in pairs]] if args.source == "told" else None
    with torch.no_grad():
        aged = []
        for i in range(0, len(pairs), args.batch_size):
            part = slice(i, i + args.batch_size)
            codes = models.generator_codes(g, targets[part], None if told is None else told[part]).to(device)
            aged.append(pictures.dequantize(pictures.quantize(g(young[part].to(device), codes).image)).cpu())
        aged = torch.cat(aged)
    loaded = {a: young[j] for j, (a, _) in enumerate(pairs)} | {b: old[j] for j, (_, b) in enumerate(pairs)}
    own = pp.ground_truth_threshold(verifier, torch.stack(list(loaded.values())), [subjects[i] for i in loaded],
                                    far=args.far)
    young_ages = [ds.records[a].age for a, _ in pairs]
    table = pp.ground_truth_table(verifier, estimator, young, aged, old, threshold, own_threshold=own["threshold"],
                                  young_ages=young_ages, split_age=GT_SPLIT_AGE)
    table.update(data=args.ground_truth, own_threshold=own, source_groups=ds.labels()[[a for a, _ in pairs]].tolist(),
                 target_groups=targets.tolist())
    picks = example_pairs(young_ages, [subjects[a] for a, _ in pairs], args.num_examples)
    rows = [(f"age {young_ages[j]:g} -> {ds.records[pairs[j][1]].age:g} ({GROUP_NAMES[int(targets[j])]})",
             [pictures.to_uint8(young[j]), pictures.to_uint8(aged[j]), pictures.to_uint8(old[j])])
            for j in picks]
    picture = pictures.render_grid(rows, ("input", "aged", "real older photo"),
                                   scale=pictures.readable_scale(young.shape[-1])) if rows else None
    return table, picture


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _source_line(r: Dict[str, Any]) -> List[str]:
    """For a generator trained with --g-source: whether it was told each photo's own age group."""
    if not (r.get("config") or {}).get("g_source"):
        return []
    if r.get("source_told"):
        line = ("The generator (trained with --g-source) was told each photo's own age group, from the age in its "
                "file name; FG-NET's younger photos' groups likewise.")
    else:
        line = "The generator (trained with --g-source) was not told the photos' own age groups (--source unknown)."
    e = r.get("source_effect")
    if e:
        line += (f" The told group's effect, in mean absolute 0-255 levels: told against not told "
                 f"{e['told_vs_unknown']:.1f}, against told a group two away {e['told_vs_wrong']:.1f}; between "
                 f"target groups {e['between_targets']:.1f}, from the input {e['from_input']:.1f}.")
    return [line, ""]


def render_report(r: Dict[str, Any]) -> str:
    """The Markdown report of :func:`evaluate_photos`'s results."""
    ident, age, cal = r["identity"], r["age"], r["identity"]["threshold"]
    subjects = ("subjects known" if cal.get("subjects_known") else
                "subjects unknown: each photo taken as a person of its own")
    lines = [
        "# AcGANs on photographs", "",
        f"`{r['command']}`", "",
        f"Checkpoint `{r['checkpoint']}` (step {r['step']}, {r['weights']} weights), data `{r['data']}` "
        f"({r['split']} split{', with the photos below 10 in 10-20' if r.get('with_young') else ''}), "
        f"{r['photos']} photos ({' / '.join(map(str, r['photos_per_source']))} per source "
        f"group, drawn at random with a fixed seed), crop {r.get('crop') or 'not recorded'}.", "",
        *_source_line(r),
        *_ages_line(r.get("source_ages")),
        "## Identity", "",
        f"Threshold: confidence {_f(cal['threshold'], '{:.2f}')}, calibrated on {cal['pairs']} impostor pairs of "
        f"the inputs ({subjects}) to accept at most {r['far']:g}; it accepts {_pct(ident['impostor_rate'])} of them.",
        "", "| target | pairs | verified | copy-the-input | mean confidence |", "|---|---|---|---|---|",
    ]
    for row in ident["per_target"]:
        lines.append(f"| {GROUP_NAMES[row['target']]} | {row['pairs']} | {_pct(row.get('verification_rate'))} | "
                     f"{_pct(row.get('copy_rate'))} | {_f(row.get('confidence'))} |")
    lines += ["", "## Age", "", "Mean estimated age of the aged faces (rows: source group; the source's own "
              "column is its real photos):", "",
              "| source | " + " | ".join(GROUP_NAMES) + " | rising |", "|---" * (NUM_GROUPS + 2) + "|"]
    for s, means in enumerate(age["mean_age"]):
        lines.append(f"| {GROUP_NAMES[s]} | " + " | ".join(_f(m) for m in means)
                     + f" | {'-' if age['rising'][s] is None else 'yes' if age['rising'][s] else 'no'} |")
    critic = age.get("critic") or {}
    critic_aged, critic_real = (critic.get(k) or [None] * NUM_GROUPS for k in ("accuracy", "real_accuracy"))
    lines += ["", "| target | aged faces in the target group | estimator on real photos of it | critic's classifier: "
              "aged faces | critic's classifier: real photos |", "|---|---|---|---|---|"]
    for t in range(NUM_GROUPS):
        lines.append(f"| {GROUP_NAMES[t]} | {_pct(age['accuracy'][t])} | {_pct(age['real_accuracy'][t])} | "
                     f"{_pct(critic_aged[t])} | {_pct(critic_real[t])} |")
    sep = age.get("separate")
    if sep:
        lines += ["", f"A separate age classifier, trained apart from the GAN on its {sep['photos']} training photos "
                  f"at {sep['size']} px ({sep['steps']} steps), puts the aged faces in their target group in "
                  + " / ".join(_pct(a) for a in sep["accuracy"]) + " of cases and real photos of each group in "
                  + " / ".join(_pct(a) for a in sep["real_accuracy"]) + " (10-20 / 21-30 / 31-40 / 41-50 / 51+)."]
    judge = age.get("judge")
    if judge:
        whose = ("The frozen age judge the generator was also trained to satisfy (--lambda-judge)"
                 if judge.get("own", True) else
                 f"The frozen age judge of `{judge['checkpoint']}`, which this generator was not trained against,")
        lines += ["", whose + " puts the aged faces in their target group in "
                  + " / ".join(_pct(a) for a in judge["accuracy"])
                  + " of cases and real photos of each group in " + " / ".join(_pct(a) for a in judge["real_accuracy"])
                  + " (10-20 / 21-30 / 31-40 / 41-50 / 51+)" + ("; like the critic's, its verdict on the aged faces "
                  "is no independent measure of age." if judge.get("own", True) else ".")]
        views = judge.get("views")
        if views:
            lines += ["", f"On random views of the same images (shifted and zoomed by up to {views['amount']:g}, "
                      "mirrored half the time) it puts the aged faces in their target group in "
                      + " / ".join(_pct(a) for a in views["accuracy"]) + " of cases and real photos in "
                      + " / ".join(_pct(a) for a in views["real_accuracy"]) + ": where the aged faces lose far "
                      "more than the real photos do, the generator meets the judge with a pattern tied to where "
                      "it sits, not with age."]
    if critic.get("generated"):
        lines += ["", "The critic's class for generated faces (--d-fake-class) takes "
                  + " / ".join(_pct(a) for a in critic["generated"]) + " of the aged faces and "
                  + " / ".join(_pct(a) for a in critic["real_generated"]) + " of the real photos "
                  "(10-20 / 21-30 / 31-40 / 41-50 / 51+); the table above counts its verdict among the groups."]
    lines += ["", "The critic's classifier is the age classifier the generator was trained to satisfy"
              + (" (the checkpoint holds no critic: an export)." if not critic else
                 ": where it puts far more aged faces in their target group than real photos of that group, "
                 "the generator satisfies its critic beyond what the faces' ages justify.")]
    lines += ["", "## Background and masks", "", "| target | background PSNR (dB) | background MAE | mask mean |",
              "|---|---|---|---|"]
    for row in r["background"]:
        lines.append(f"| {GROUP_NAMES[row['target']]} | {_f(row.get('psnr'))} | {_f(row.get('mae'))} | "
                     f"{_f(row.get('mask_mean'), '{:.2f}')} |")
    grey = r.get("identity_grey")
    if grey:
        lines += ["", "## Greyscale inputs", "", "The same photos turned grey (--grey), aged and verified against "
                  f"their grey input; threshold {_f(grey['threshold']['threshold'], '{:.2f}')}, calibrated on "
                  f"{grey['threshold']['pairs']} impostor pairs of the grey photos (it accepts "
                  f"{_pct(grey['impostor_rate'])}). Colour added: mean largest minus smallest channel of the aged "
                  "faces, in 0-255 levels (0: still grey).", "",
                  "| target | verified, grey inputs | verified, colour inputs (above) | colour added |",
                  "|---|---|---|---|"]
        for row, colour in zip(grey["per_target"], ident["per_target"]):
            lines.append(f"| {GROUP_NAMES[row['target']]} | {_pct(row.get('verification_rate'))} | "
                         f"{_pct(colour.get('verification_rate'))} | {_f(row.get('colour_added'))} |")
    gt = r.get("ground_truth")
    if gt:
        lines += ["", "## Ground truth of aging", "", f"`{gt['data']}`: {gt['pairs']} pairs (younger photo aged to "
                  "the older photo's group, against the real older photo).", ""]
        if "aged" in gt:
            own = gt.get("own_threshold") or {}
            lines += ["| | verified against the older photo | verified, its own threshold | mean confidence | "
                      "estimated-age gap (years) |", "|---|---|---|---|---|"]
            for name in ("aged", "copy"):
                m = gt[name]
                label = "aged photo" if name == "aged" else "copy-the-input"
                lines.append(f"| {label} | {_pct(m['verification_rate'])} | {_pct(m.get('verification_rate_own'))} | "
                             f"{_f(m['confidence'])} | {_f(m['age_gap'])} |")
            if own.get("threshold") is not None:
                lines += ["", f"\"Verified\": at the held-out photos' threshold above. \"Its own threshold\": "
                          f"{_f(own['threshold'], '{:.2f}')}, calibrated on {own['pairs']} impostor pairs of "
                          f"{gt['data']}'s own photos (different people, any ages) to accept at most {r['far']:g}; "
                          "it does not move with the held-out sample."]
            if gt.get("kept_input") is not None:
                lines += ["", f"The aged photo verifies against its own input (the model kept the person it was "
                          f"given) in {_pct(gt['kept_input'])} of the pairs."]
            split = [row for row in gt.get("by_source_age", []) if row["pairs"]]
            if split:
                lines += ["", "By the real age of the younger photo:", "",
                          "| younger photo | pairs | aged: verified | copy: verified | aged: age gap | copy: age gap "
                          "| aged: kept its input |", "|---|---|---|---|---|---|---|"]
                lines += [f"| {row['ages']} | {row['pairs']} | {_pct(row['aged']['verification_rate'])} | "
                          f"{_pct(row['copy']['verification_rate'])} | {_f(row['aged']['age_gap'])} | "
                          f"{_f(row['copy']['age_gap'])} | {_pct(row['kept_input'])} |" for row in split]
    lines += ["", f"{r['seconds']} s.", ""]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = "python examples/morph_aging/evaluate_photos.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    created = not os.path.lexists(args.out)
    try:
        files.check_writable_folder(args.out)
        result = evaluate_photos(args, command)
    except (PhotoEvalError, files.WriteError) as exc:
        if created and os.path.isdir(args.out) and not os.listdir(args.out):
            os.rmdir(args.out)  # no empty folder left behind
        print(f"evaluate_photos.py: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    pics = result.pop("pictures")
    files.write_text(os.path.join(args.out, "results.json"), json.dumps(result, indent=1, default=str) + "\n")
    files.write_text(os.path.join(args.out, "report.md"), render_report(result))
    for name, array in pics.items():
        pictures.save_png(array, os.path.join(args.out, f"{name}.png"))
    print(render_report(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
