"""The evaluation protocol on photographs: does the aged face keep the person?

``evaluate_photos.py`` runs it; the functions here take tensors and the two
estimator interfaces of ``estimators.py`` (an age estimator and a face
verifier), so they are tested with small stand-ins.

Held-out photos (any source group) are aged to every other group and
measured against three references:

* **Identity.** The verification threshold is calibrated on impostor pairs
  of the input photos to accept at most a fraction ``far`` of them
  (:func:`metrics.calibrate_threshold`). Where the dataset records no
  subjects (UTKFace), each photo is taken as a person of its own for the
  impostor pairs; two photos of one person then count as impostors, which
  makes the threshold stricter, not looser. Beside each target group's
  verification rate (input against aged face): the copy-the-input rate (the
  8-bit copy of the input against the input, what a generator that changes
  nothing reaches) and the impostor acceptance rate at that threshold.
* **Age.** The estimator's mean age of the aged faces for every (source,
  target) pair of groups, whether it rises with the target for every source
  group, and the aged faces' group accuracy next to the estimator's own
  accuracy on real photos of the same group (a generated face cannot be
  judged more accurately than the judge reads real ones).
* **Background.** PSNR and mean absolute error outside the central ellipse
  (:func:`metrics.central_ellipse_mask`), and the attention masks' mean.

**Ground truth of aging** (:func:`aging_pairs`, :func:`ground_truth_table`):
in a dataset with subjects and ages across groups (FG-NET), each person's
younger photo is aged to the group of their older photo and compared with
that real older photo: verification against it and the gap in estimated age
to it, with the input itself (copy-the-input) beside both.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ages import NUM_GROUPS, age_to_group
from metrics import background_errors, calibrate_threshold, central_ellipse_mask
from models import generator_codes
from pictures import dequantize, quantize

__all__ = ["aging_pairs", "age_every_group", "age_table", "background_table", "classifier_table",
           "ground_truth_table", "ground_truth_threshold", "identity_table", "source_effect"]


@torch.no_grad()
def age_every_group(g: torch.nn.Module, images: torch.Tensor, *, device: Any = "cpu",
                    batch_size: int = 32, sources: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Age every image to every group.

    Parameters
    ----------
    g : torch.nn.Module
        Generator ``g(images, codes)`` returning ``.image`` and ``.attention``.
    images : torch.Tensor
        (N, 3, H, W) in [-1, 1].
    sources : torch.Tensor, optional
        (N,) the images' own groups, told to a generator trained with
        ``--g-source`` (:func:`models.generator_codes`); None: unknown.

    Returns
    -------
    aged : torch.Tensor
        (N, K, 3, H, W) in [-1, 1], quantised to 8 bits as if saved as PNG.
    mask_means : torch.Tensor
        (N, K) mean attention of each aged face (1 keeps the input).
    """
    aged, masks = [], []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        told = None if sources is None else sources[i:i + batch_size]
        per_group, per_mask = [], []
        for k in range(NUM_GROUPS):
            out = g(x, generator_codes(g, torch.full((x.shape[0],), k, dtype=torch.long), told).to(device))
            per_group.append(dequantize(quantize(out.image)).cpu())
            per_mask.append(out.attention.float().mean(dim=(1, 2, 3)).cpu())
        aged.append(torch.stack(per_group, 1))
        masks.append(torch.stack(per_mask, 1))
    if not aged:
        h, w = images.shape[-2:]
        return images.new_zeros(0, NUM_GROUPS, 3, h, w), images.new_zeros(0, NUM_GROUPS)
    return torch.cat(aged), torch.cat(masks)


def _rate(flags: torch.Tensor) -> Any:
    return float(flags.float().mean()) if flags.numel() else None


def identity_table(verifier: Any, images: torch.Tensor, aged: torch.Tensor, sources: torch.Tensor,
                   subjects: Sequence[Any], *, far: float) -> Dict[str, Any]:
    """Verification of each input against its aged faces, at an impostor-calibrated threshold.

    Parameters
    ----------
    verifier : VerificationModel
        ``embed(images) -> (N, D)``, ``confidence(a, b) -> (N,)``.
    images : torch.Tensor
        Inputs (N, 3, H, W) in [-1, 1].
    aged : torch.Tensor
        (N, K, 3, H, W): the inputs aged to every group.
    sources : torch.Tensor
        (N,) source groups; an input is not scored at its own group.
    subjects : sequence
        (N,) subject keys, ``None`` where unknown (each such photo is a
        person of its own for the impostor pairs).
    far : float
        Fraction of impostor pairs the threshold may accept.

    Returns
    -------
    dict
        ``threshold`` (the calibration's record, ``subjects_known`` among
        it), and per target group ``verification_rate``, ``confidence``
        (mean), ``copy_rate`` and ``pairs``; ``impostor_rate`` overall.
    """
    n = images.shape[0]
    keys = [f"photo-{i}" if s is None else f"subject-{s}" for i, s in enumerate(subjects)]
    codes = {k: j for j, k in enumerate(dict.fromkeys(keys))}
    subject_ids = torch.tensor([codes[k] for k in keys], dtype=torch.long)
    emb_in = verifier.embed(images)
    emb_copy = verifier.embed(dequantize(quantize(images)))
    cal = calibrate_threshold(verifier, emb_in, subject_ids, far)
    cal["subjects_known"] = all(s is not None for s in subjects)
    threshold = cal["threshold"]
    out: Dict[str, Any] = {"threshold": cal, "impostor_rate": cal["achieved_far"], "per_target": []}
    copy_ok = verifier.confidence(emb_in, emb_copy) >= threshold if threshold is not None else None
    for t in range(NUM_GROUPS):
        keep = sources != t
        row: Dict[str, Any] = {"target": t, "pairs": int(keep.sum())}
        if n and int(keep.sum()):
            emb_out = verifier.embed(aged[keep, t])
            conf = verifier.confidence(emb_in[keep], emb_out)
            row["confidence"] = float(conf.mean())
            if threshold is not None:
                row["verification_rate"] = _rate(conf >= threshold)
                row["copy_rate"] = _rate(copy_ok[keep])
        out["per_target"].append(row)
    return out


def age_table(estimator: Any, images: torch.Tensor, aged: torch.Tensor, sources: torch.Tensor) -> Dict[str, Any]:
    """Estimated ages of the aged faces per (source, target), and the estimator's own accuracy.

    Returns
    -------
    dict
        ``mean_age[s][t]`` (None where no input of source ``s``; the source's
        own column is the real photos' mean estimate), ``rising[s]`` (the
        means increase with the target group), ``accuracy[t]`` (fraction of
        aged faces of target ``t`` whose estimated group is ``t``, inputs of
        other groups only) and ``real_accuracy[t]`` (the estimator on the
        real inputs of group ``t``).
    """
    n = images.shape[0]
    real_age = estimator.estimate(images) if n else torch.zeros(0)
    real_group = torch.as_tensor(age_to_group(real_age.numpy(), clip_young=True)) if n else torch.zeros(0)
    ages = torch.zeros(n, NUM_GROUPS)
    for t in range(NUM_GROUPS):
        if n:
            ages[:, t] = estimator.estimate(aged[:, t])
    ages[torch.arange(n), sources] = real_age  # the source's own column: the real photo
    groups = torch.as_tensor(age_to_group(ages.flatten().numpy(), clip_young=True)).view(n, NUM_GROUPS)
    mean_age: List[List[Any]] = []
    rising: List[Any] = []
    for s in range(NUM_GROUPS):
        rows = sources == s
        if not int(rows.sum()):
            mean_age.append([None] * NUM_GROUPS)
            rising.append(None)
            continue
        means = ages[rows].mean(0)
        mean_age.append([float(m) for m in means])
        rising.append(bool((means[1:] > means[:-1]).all()))
    accuracy = [_rate(groups[sources != t, t] == t) for t in range(NUM_GROUPS)]
    real_accuracy = [_rate(real_group[sources == t] == t) for t in range(NUM_GROUPS)]
    return {"mean_age": mean_age, "rising": rising, "accuracy": accuracy, "real_accuracy": real_accuracy}


@torch.no_grad()
def classifier_table(classify: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, aged: torch.Tensor,
                     sources: torch.Tensor, *, batch_size: int = 64) -> Dict[str, Any]:
    """An age-group classifier's accuracy on the aged faces and on the real photos, as :func:`age_table` counts it.

    Used with the critic's own age classifier, the one the generator is
    trained to satisfy, and with :func:`estimators.fit_group_classifier`'s: beside the
    estimator they tell how far the critic's verdicts on the aged faces
    exceed what another model of the same photos reads as age.

    Parameters
    ----------
    classify : callable
        ``classify(x)`` of (B, 3, H, W) images in [-1, 1] returns (B, K) logits
        (or any scores whose arg-max is the group), or (B, K + 1) where the
        last column is a class for generated faces (``train.py --d-fake-class``).
    images : torch.Tensor
        (N, 3, H, W) real photos in [-1, 1].
    aged : torch.Tensor
        (N, K, 3, H, W) from :func:`age_every_group`.
    sources : torch.Tensor
        (N,) the photos' groups.
    batch_size : int, default 64
        Images per call of ``classify``.

    Returns
    -------
    dict
        ``accuracy[t]`` (aged faces of target ``t`` from inputs of other
        groups classified as ``t``, the arg-max over the K groups) and
        ``real_accuracy[t]`` (real photos of group ``t`` classified as ``t``);
        None where there are none. With K + 1 columns also ``generated[t]``
        and ``real_generated[t]``: the shares of the same aged faces and real
        photos whose arg-max over all K + 1 is the generated class.
    """
    def verdicts(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        scores = (torch.cat([classify(x[i:i + batch_size]).detach().cpu() for i in range(0, x.shape[0], batch_size)])
                  if x.shape[0] else torch.zeros(0, NUM_GROUPS))
        if scores.shape[1] not in (NUM_GROUPS, NUM_GROUPS + 1):
            raise ValueError(f"classify must return (B, {NUM_GROUPS}) or (B, {NUM_GROUPS + 1}) scores, "
                             f"got {tuple(scores.shape)}")
        generated = scores.argmax(dim=1) == NUM_GROUPS if scores.shape[1] > NUM_GROUPS else None
        return scores[:, :NUM_GROUPS].argmax(dim=1), generated

    real, real_gen = verdicts(images)
    table: Dict[str, Any] = {"accuracy": [],
                             "real_accuracy": [_rate(real[sources == t] == t) for t in range(NUM_GROUPS)]}
    aged_gen: List[Optional[float]] = []
    for t in range(NUM_GROUPS):
        groups, gen = verdicts(aged[sources != t, t])
        table["accuracy"].append(_rate(groups == t))
        aged_gen.append(None if gen is None else _rate(gen))
    if real_gen is not None:  # aged faces exist only where real photos do, so the photos tell the width
        table["generated"] = aged_gen
        table["real_generated"] = [_rate(real_gen[sources == t]) for t in range(NUM_GROUPS)]
    return table


def source_effect(g: torch.nn.Module, images: torch.Tensor, sources: torch.Tensor, *, device: Any = "cpu",
                  batch_size: int = 32, told: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """How much a ``--g-source`` generator's aged faces depend on the source group it is told.

    Every image is aged to every group told its own group, told nothing
    (zeros), and told a wrong group (two groups away, modulo K); the mean
    absolute differences, in 0-255 levels, are set beside the differences
    between target groups and from the input: a told source that changes the
    faces far less than the target does is one the generator barely uses.

    Parameters
    ----------
    g : torch.nn.Module
        A generator trained with ``--g-source`` (``models.told_source(g)``).
    images : torch.Tensor
        (N, 3, H, W) in [-1, 1], N >= 1.
    sources : torch.Tensor
        (N,) the images' groups.
    told : torch.Tensor, optional
        (N, K, 3, H, W) the images already aged told ``sources``
        (:func:`age_every_group`), so they are not aged again.

    Returns
    -------
    dict
        ``told_vs_unknown``, ``told_vs_wrong``, ``between_targets`` (mean over
        pairs of target groups) and ``from_input``, in levels.
    """
    kwargs = dict(device=device, batch_size=batch_size)
    if told is None:
        told, _ = age_every_group(g, images, sources=sources, **kwargs)
    unknown, _ = age_every_group(g, images, **kwargs)
    wrong, _ = age_every_group(g, images, sources=(sources + 2) % NUM_GROUPS, **kwargs)
    levels = 127.5
    pairs = [(a, b) for a in range(NUM_GROUPS) for b in range(a + 1, NUM_GROUPS)]
    between = sum(float((told[:, a] - told[:, b]).abs().mean()) for a, b in pairs) / len(pairs)
    return {"told_vs_unknown": float((told - unknown).abs().mean()) * levels,
            "told_vs_wrong": float((told - wrong).abs().mean()) * levels,
            "between_targets": between * levels,
            "from_input": float((told - images.unsqueeze(1)).abs().mean()) * levels}


def background_table(images: torch.Tensor, aged: torch.Tensor, mask_means: torch.Tensor,
                     sources: torch.Tensor) -> List[Dict[str, Any]]:
    """Per target group: background PSNR and MAE outside the central ellipse, and the mean attention."""
    h, w = images.shape[-2:]
    background = 1.0 - central_ellipse_mask(h, w)[None]
    rows = []
    for t in range(NUM_GROUPS):
        keep = sources != t
        row: Dict[str, Any] = {"target": t}
        if int(keep.sum()):
            mae, psnr = background_errors(aged[keep, t], images[keep], background)
            row.update(psnr=float(psnr.mean()), mae=float(mae.mean()), mask_mean=float(mask_means[keep, t].mean()))
        rows.append(row)
    return rows


def aging_pairs(subjects: Sequence[Any], groups: Sequence[int]) -> List[Tuple[int, int]]:
    """(younger, older) index pairs: for every subject, its first photo of its youngest group paired with
    its first photo of each older group it has.

    >>> aging_pairs(["a", "a", "b", "a", "b"], [0, 2, 1, 2, 1])
    [(0, 1)]
    >>> aging_pairs(["a", "a", "a"], [1, 0, 3])
    [(1, 0), (1, 2)]
    """
    first: Dict[Any, Dict[int, int]] = {}
    for i, (s, g) in enumerate(zip(subjects, groups)):
        if s is None:
            continue
        first.setdefault(s, {}).setdefault(int(g), i)
    pairs = []
    for by_group in first.values():
        young = min(by_group)
        pairs += [(by_group[young], by_group[g]) for g in sorted(by_group) if g > young]
    return pairs


def ground_truth_table(verifier: Any, estimator: Any, young: torch.Tensor, aged: torch.Tensor,
                       old: torch.Tensor, threshold: float, *, own_threshold: Optional[float] = None,
                       young_ages: Optional[Sequence[float]] = None, split_age: float = 10.0) -> Dict[str, Any]:
    """The aged photo against the same person's real older photo, with copy-the-input beside it.

    Parameters
    ----------
    young, aged, old : torch.Tensor
        (P, 3, H, W) in [-1, 1]: each pair's younger photo, that photo aged to
        the older photo's group, and the real older photo.
    threshold : float
        Verification threshold (a confidence).
    own_threshold : float, optional
        A second threshold, calibrated on the ground-truth dataset's own
        impostor pairs (:func:`ground_truth_threshold`); its rates are
        ``verification_rate_own``.
    young_ages : sequence of float, optional
        The real age of each younger photo (P values). With them the table
        also splits the pairs at ``split_age``: ``by_source_age`` holds the
        same figures for the younger photos below it and for those at or
        above it.
    split_age : float
        Where ``by_source_age`` splits (years).

    Returns
    -------
    dict
        ``pairs``; for ``aged`` and ``copy`` (the younger photo itself):
        ``verification_rate`` and ``confidence`` against the older photo,
        ``age_gap`` (mean absolute difference of estimated ages to it);
        ``kept_input``: the rate at which the aged photo verifies against its
        own input (does the model keep the person it was given, whatever the
        older photo looks like?).
    """
    p = young.shape[0]
    out: Dict[str, Any] = {"pairs": p}
    if not p:
        return out
    if young_ages is not None and len(young_ages) != p:
        raise ValueError(f"young_ages holds {len(young_ages)} ages for {p} pairs")
    emb_old, old_age = verifier.embed(old), estimator.estimate(old)
    emb_young, emb_aged = verifier.embed(young), verifier.embed(aged)
    conf = {"aged": verifier.confidence(emb_aged, emb_old), "copy": verifier.confidence(emb_young, emb_old)}
    gap = {"aged": (estimator.estimate(aged) - old_age).abs(), "copy": (estimator.estimate(young) - old_age).abs()}
    kept = verifier.confidence(emb_aged, emb_young) >= threshold

    def summary(rows: torch.Tensor) -> Dict[str, Any]:
        table: Dict[str, Any] = {"pairs": int(rows.sum())}
        for name in ("aged", "copy"):
            c = conf[name][rows]
            table[name] = {"verification_rate": _rate(c >= threshold),
                           "confidence": float(c.mean()) if c.numel() else None,
                           "age_gap": float(gap[name][rows].mean()) if c.numel() else None}
            if own_threshold is not None:
                table[name]["verification_rate_own"] = _rate(c >= own_threshold)
        table["kept_input"] = _rate(kept[rows])
        return table

    out.update(summary(torch.ones(p, dtype=torch.bool)))
    if young_ages is not None:
        ages = torch.as_tensor([float(a) for a in young_ages])
        out["by_source_age"] = [dict(summary(ages < split_age), ages=f"under {split_age:g}"),
                                dict(summary(ages >= split_age), ages=f"{split_age:g} and over")]
    return out


def ground_truth_threshold(verifier: Any, photos: torch.Tensor, subjects: Sequence[Any], *,
                           far: float) -> Dict[str, Any]:
    """The threshold that accepts at most ``far`` of the impostor pairs among a ground-truth dataset's photos.

    Unlike the held-out photos' threshold, it does not depend on which photos
    of another dataset were sampled, and its impostor pairs span ages as the
    ground-truth pairs do (a child against another person's adult photo).

    Parameters
    ----------
    photos : torch.Tensor
        (N, 3, H, W) in [-1, 1], each photo once.
    subjects : sequence
        (N,) the person of each photo (all known).
    far : float
        Largest fraction of impostor pairs accepted.

    Returns
    -------
    dict
        :func:`metrics.calibrate_threshold`'s fields.
    """
    ids = {s: k for k, s in enumerate(dict.fromkeys(subjects))}
    return calibrate_threshold(verifier, verifier.embed(photos), torch.tensor([ids[s] for s in subjects]), far)
