"""The configuration of a training run, declared once.

:class:`TrainConfig` is the single declaration of every setting: its type,
default, help text, its *group* and, where it has them, its allowed values
or its minimum, all in the dataclass field and its metadata. Everything else
is derived from it:

* the command line of ``train.py`` (one flag per field, its type from the
  annotation) and the shared flags of the benchmarks
  (:func:`add_config_arguments`, :func:`config_from_args`);
* the field groups (:func:`fields_in`): ``"model"`` fields define the
  networks, so a checkpoint only fits a model with equal values
  (:data:`MODEL_FIELDS`); ``"run"`` fields say where and for how long a run
  goes and may change when it is resumed (:data:`RUN_FIELDS`); ``"data"`` and
  ``"training"`` fields are the rest of the recipe;
* the presets and validation (:func:`validate_config`), and the resolution
  of ``auto`` device, precision and preset, in this module only.

Examples
--------
>>> from config import MODEL_FIELDS, TrainConfig, validate_config
>>> cfg = validate_config(TrainConfig(preset="cpu-demo", device="cpu"))
>>> cfg.image_size, cfg.g_channels, cfg.batch_size
(64, 32, 16)
>>> "g_channels" in MODEL_FIELDS and "lr" not in MODEL_FIELDS
True
>>> validate_config(TrainConfig(batch_size=0, device="cpu"))
Traceback (most recent call last):
...
ValueError: --batch-size: must be a positive integer, got 0
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

import cli

__all__ = ["DEVICES", "FIELD_GROUPS", "MODEL_FIELDS", "PRECISIONS", "PRESETS", "PRESET_VALUES", "RUN_FIELDS",
           "TrainConfig", "add_config_arguments", "autocast_dtype", "config_from_args", "config_from_dict",
           "cpu_has_fast_bf16", "fields_in", "preset_defaults", "resolve_device", "resolve_precision",
           "validate_config"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
PRESETS = ("auto", "paper", "cpu-demo", "cpu-photo")
#: Field groups: the data, the networks' shape, the rest of the recipe, and
#: where / how long a run goes (free to change when resuming).
FIELD_GROUPS = ("data", "model", "training", "run")


def _opt(default: Any, group: str, help: str, **checks: Any) -> Any:
    """A field with its group and help; ``checks``: ``choices=`` (strings), ``minimum=`` and ``maximum=``
    (ints; without a maximum an int field takes at most :data:`cli.INT_LIMIT`)."""
    return field(default=default, metadata={"group": group, "help": help, **checks})


@dataclass
class TrainConfig:
    """Every setting of a training run; each field is a ``train.py`` flag.

    ``None`` means "taken from the preset" (see :data:`PRESET_VALUES`).
    """

    # data
    data: str = _opt("synthetic", "data", "'synthetic' (built-in faces) or a dataset folder / CSV")
    data_kind: str = _opt("auto", "data", "naming convention of --data: auto, morph, cacd, utkface, fgnet, csv",
                          choices=("auto", "morph", "cacd", "utkface", "fgnet", "csv"))
    num_subjects: Optional[int] = _opt(None, "data", "synthetic faces: number of subjects", minimum=1,
                                       maximum=1_000_000)
    images_per_subject: int = _opt(5, "data", "synthetic faces: images per subject", minimum=1,
                                     maximum=1000)
    test_fraction: float = _opt(0.1, "data", "held-out fraction (split by subject when subjects are known)")
    skip_bad_files: bool = _opt(False, "data", "skip dataset files whose names do not parse and CSV rows that "
                                "cannot be used (reported) instead of refusing the dataset")
    clip_young: bool = _opt(False, "data", "put ages below 10 into the 10-20 group (UTKFace and FG-NET hold "
                            "children) instead of refusing them")
    drop_young: bool = _opt(False, "data", "leave out the photos of people below 10 (UTKFace: 3,061 of its 23,707, "
                            "more than half of what --clip-young puts into 10-20; the paper's MORPH holds none). They "
                            "are left out after the train/test split, so the held-out photos are those of a "
                            "--clip-young run of the same seed, less the children")
    balance_groups: bool = _opt(False, "data", "draw the training images evenly over the age groups: each epoch "
                                "draws as many images as the set holds, every group equally likely, with "
                                "replacement, instead of each image once; the frozen judge of --lambda-judge is "
                                "fitted on every group alike too. UTKFace holds 4x more photos of 21-30 than of "
                                "41-50, and a critic trained on them names the large groups (beyond the paper)")
    allow_empty_groups: bool = _opt(False, "data", "train even when an age group has no training images")
    crop: Optional[str] = _opt(None, "data", "face crop of the photos of --data, CROP[,margin=M][,size=S] with CROP "
                               "head or tight (face_align.py), or unknown; recorded in the checkpoint, so that age.py "
                               "--align and evaluate.py crop photos as the model learned (default: read from "
                               "DATA/prepared.json, written by prepare.py; unknown without one)")
    workers: Optional[int] = _opt(None, "run", "DataLoader worker processes (default: 0 for cached data, "
                                  "else 4 per GPU)", minimum=0, maximum=256)
    # run
    out: str = _opt("runs/acgan", "run", "output folder")
    preset: str = _opt("auto", "training", "paper (224 px, full networks), cpu-demo (64 px, narrow, a "
                       "12-minute budget), cpu-photo (cpu-demo for photographs: condition in the normalisation "
                       "layers, cycle term, masks starting near the input, a colour proposal that edits the "
                       "input, learning rate 2e-4, 30-minute budget); auto picks paper or cpu-demo by device",
                       choices=PRESETS)
    image_size: Optional[int] = _opt(None, "model", "training resolution (multiple of 4)", maximum=4096)
    batch_size: Optional[int] = _opt(None, "training", "global batch size (split across processes)", minimum=1,
                                        maximum=65536)
    epochs: Optional[int] = _opt(None, "run", "number of epochs", minimum=1)
    max_steps: Optional[int] = _opt(None, "run", "stop after this many iterations (overrides --epochs)", minimum=0)
    max_minutes: Optional[float] = _opt(None, "run", "stop (with checkpoint and samples) after this many minutes; "
                                        "the budget of each run of train.py, so --resume starts a fresh one")
    seed: int = _opt(0, "training", "seed of data, split, initialisation and training randomness", minimum=0,
                     maximum=2**32 - 1)
    device: str = _opt("auto", "run", "auto, cpu or cuda", choices=DEVICES)
    precision: str = _opt("auto", "training", "auto (bf16 where supported), fp32, bf16 or fp16", choices=PRECISIONS)
    channels_last: Optional[bool] = _opt(None, "training", "channels_last memory format")
    compile: bool = _opt(False, "run", "torch.compile the generator")
    resume: bool = _opt(False, "run", "continue from OUT/checkpoints/last.pt")
    overwrite: bool = _opt(False, "run", "start afresh in an --out that holds a run: its files (config, metrics, "
                           "checkpoint, samples, log) are removed first; other files stay")
    # networks
    g_channels: Optional[int] = _opt(None, "model", "generator base width (paper: 64)", minimum=1,
                                       maximum=4096)
    g_res_blocks: Optional[int] = _opt(None, "model", "generator residual blocks (paper: 6)", minimum=0,
                                         maximum=64)
    g_downsamples: int = _opt(2, "model", "generator down-samplings (paper: 2)", minimum=0,
                            maximum=8)
    g_upsample: Optional[str] = _opt(None, "model", "generator up-sampling: transpose (4x4 transposed convs, paper "
                                     "lineage) or nearest (+3x3 conv)", choices=("transpose", "nearest"))
    g_condition: Optional[str] = _opt(None, "model", "how the target age enters the generator: input (constant "
                                      "planes beside the image, the paper; they reach the network only through zero "
                                      "padding's border) or norm (every normalisation layer scaled and shifted by "
                                      "the age code: reaches every pixel; beyond the paper)",
                                      choices=("input", "norm"))
    g_color: Optional[str] = _opt(None, "model", "what the generator's colour head proposes: absolute (a picture "
                                  "painted from the features, the paper) or residual (an edit of the input: "
                                  "tanh(head + atanh(x)), starting as the input itself; beyond the paper; cpu-photo)",
                                  choices=("absolute", "residual"))
    g_source: float = _opt(0.0, "model", "tell the generator the input's age group as well as the target's: K more "
                           "code entries after the target's, the source group's one-hot code for this share of the "
                           "training images and zeros for the rest, as a photo of unknown age gets at run time "
                           "(beyond the paper; 0: the target alone, as in the paper)")
    g_padding: str = _opt("zeros", "model", "generator convolutions' padding: zeros (paper lineage), reflect or "
                          "replicate (border padding needs --g-condition norm)",
                          choices=("zeros", "reflect", "replicate"))
    g_attention_bias: Optional[float] = _opt(None, "training", "initial bias of the attention head (>0 starts near "
                                             "copying the input)")
    g_ema: Optional[float] = _opt(None, "training", "decay of an exponential moving average of the generator's "
                                  "weights, updated after every iteration (0: off, the paper; e.g. 0.999). Samples, "
                                  "evaluate.py, age.py and export.py use the average; beyond the paper")
    d_channels: Optional[int] = _opt(None, "model", "critic base width (paper: 64)", minimum=1,
                                       maximum=4096)
    d_max_channels: int = _opt(1024, "model", "critic width cap (released code: 4096 at 224 px)", minimum=1,
                          maximum=65536)
    d_fake_class: bool = _opt(False, "model", "give the critic's age classifier one class more, for generated "
                              "faces: the critic learns to put aged faces there and the generator to leave it for "
                              "its target group, so that a pattern that no real face of the group shows does not "
                              "satisfy the classifier (the K+1 classes of the semi-supervised GAN, Salimans et al. "
                              "2016; beyond the paper)")
    init: Optional[str] = _opt(None, "training", "weight initialisation: default (PyTorch's) or normal (conv weights "
                               "N(0, 0.02), released code)", choices=("default", "normal"))
    generator_mode: str = _opt("attention", "model", "attention (AcGANs) or no-attention (output = colour head; "
                               "ablation)", choices=("attention", "no-attention"))
    # losses (paper section 3.1)
    lambda_adv: float = _opt(10.0, "training", "lambda_adv, adversarial weight")
    lambda_att: float = _opt(2.0, "training", "lambda_att, attention-loss weight")
    lambda_cls: float = _opt(100.0, "training", "lambda_cls, age-classification weight")
    lambda_gp: float = _opt(10.0, "training", "lambda_gp, gradient-penalty weight")
    lambda_tv: float = _opt(5e-5, "training", "lambda_TV (paper: 5e-5; times lambda_att = 2 it is the released code's "
                            "1e-4)")
    lambda_l1: float = _opt(0.0, "training", "weight of an L1 pixel loss to the input (ablation baseline; paper: 0)")
    lambda_rec: Optional[float] = _opt(None, "training", "weight of a reconstruction (cycle) loss: the aged face "
                                       "aged back to the source group must give the input, mean |G(G(x, y_t), y_s) "
                                       "- x| (GANimation, StarGAN; paper: 0)")
    lambda_judge: float = _opt(0.0, "training", "weight of a frozen age judge's term: an age-group classifier "
                               "trained on the training photos before the GAN (--judge-steps; every group drawn "
                               "alike with --balance-groups, else every photo) and held fixed; the generator also "
                               "minimises its cross-entropy to the target group (beyond the paper; 0: off)")
    judge_steps: int = _opt(1500, "training", "Adam steps that train the frozen age judge of --lambda-judge "
                            "(batches of 64, at most 64 px)", minimum=1, maximum=1_000_000)
    judge_views: float = _opt(0.0, "training", "the judge of --lambda-judge scores a random view of each aged "
                              "face, new every step: shifted by up to this fraction of the side, zoomed by up to "
                              "this relative amount and mirrored half the time, and it is fitted on such views "
                              "too, so that a pixel pattern cannot satisfy it (beyond the paper; 0: the face as "
                              "it is)")
    hflip: Optional[bool] = _opt(None, "training", "mirror each training image left-right with probability 1/2 "
                                 "(paper: off)")
    grey_inputs: float = _opt(0.0, "training", "turn each training image grey (its luma in every channel) with "
                              "this probability, for the critic and the generator alike, so that greyscale "
                              "photos (FG-NET's childhood scans) are not foreign to the generator (beyond the "
                              "paper; 0: off)")
    attention_form: Optional[str] = _opt(None, "training", "paper (squared TV + RMS of A, resolution independent), "
                                         "euclidean (squared TV + ||A||_2 over all pixels, grows with image size) or "
                                         "released (absolute TV + mean A)", choices=("paper", "euclidean", "released"))
    gp_mode: str = _opt("joint", "training", "joint (penalty in the critic loss, paper) or separate (own "
                        "backward+step, released code)", choices=("joint", "separate"))
    gp_weighting: str = _opt("absolute", "training", "absolute (lambda_gp * GP, as WGAN-GP and the released code) "
                             "or nested (lambda_adv * lambda_gp * GP, Eq. 5 read literally)",
                             choices=("absolute", "nested"))
    gp_every: int = _opt(1, "training", "lazy penalty: compute the gradient penalty on every K-th critic step only, "
                         "weighted by K (as StyleGAN2 does for R1); 1 = every step (paper)", minimum=1)
    n_critic: int = _opt(1, "training", "critic iterations per generator update (paper: 1; released code: 2)",
                         minimum=1)
    critic_warmup: Optional[int] = _opt(None, "training", "first iterations that train only the critic (paper: 0)",
                                        minimum=0)
    # optimiser
    lr: Optional[float] = _opt(None, "training", "Adam learning rate (both networks; paper: 1e-4)")
    beta1: float = _opt(0.5, "training", "Adam beta1")
    beta2: float = _opt(0.999, "training", "Adam beta2")
    lr_decay: float = _opt(1.0, "training", "multiply the lr by this every --lr-decay-every epochs (released: 0.9 "
                           "every 10)")
    lr_decay_every: int = _opt(10, "training", "epochs between lr decays", minimum=1)
    # logging and safety
    log_every: int = _opt(10, "run", "iterations between metric lines", minimum=1)
    sample_every: Optional[int] = _opt(None, "run", "iterations between sample grids", minimum=1)
    checkpoint_every: Optional[int] = _opt(None, "run", "iterations between checkpoints", minimum=1)
    num_samples: int = _opt(4, "training", "faces in the sample grids", minimum=1, maximum=256)
    max_nonfinite: int = _opt(20, "training", "stop after this many consecutive skipped (non-finite) steps", minimum=1)
    progress: bool = _opt(True, "run", "show a progress bar")
    report_to: str = _opt("none", "run", "where metrics and samples go besides metrics.jsonl and samples/: none, or "
                          "tensorboard (OUT/tensorboard; needs the tensorboard extra)",
                          choices=("none", "tensorboard"))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def fields_in(group: str) -> Tuple[str, ...]:
    """Names of the :class:`TrainConfig` fields of one group (see :data:`FIELD_GROUPS`), in declaration order."""
    if group not in FIELD_GROUPS:
        raise ValueError(f"group must be one of {', '.join(FIELD_GROUPS)}, got {group!r}")
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["group"] == group)


#: Fields that define the networks: a checkpoint only fits a model with equal values.
MODEL_FIELDS = fields_in("model")
#: Where and how long a run goes: may differ from the checkpoint's when resuming, without a warning.
RUN_FIELDS = fields_in("run")

#: Values a preset gives to the fields left at ``None``.
PRESET_VALUES: Dict[str, Dict[str, Any]] = {
    "paper": dict(
        image_size=224, batch_size=64, epochs=100, g_channels=64, g_res_blocks=6, d_channels=64,
        num_subjects=2000, sample_every=1000, checkpoint_every=1000, channels_last=True,
        attention_form="paper", critic_warmup=0, g_attention_bias=0.0, g_upsample="transpose", init="default",
        g_ema=0.0, g_condition="input", g_color="absolute", lambda_rec=0.0, hflip=False, lr=1e-4,
    ),
    "cpu-demo": dict(
        image_size=64, batch_size=16, epochs=1000, max_steps=3000, max_minutes=12.0,
        g_channels=32, g_res_blocks=3, d_channels=32, num_subjects=500,
        sample_every=250, checkpoint_every=250, channels_last=True,
        # The paper's recipe at a smaller size, width and budget, with two
        # additions, each measured over 3 seeds (the guide): nearest-neighbour
        # up-sampling, which removed the transposed convolutions' checkerboard
        # from the masks ("Attention collapse"), and the average of the
        # generator's weights, which samples and evaluation use ("Beyond the
        # paper").
        attention_form="paper", critic_warmup=0, g_attention_bias=0.0, g_upsample="nearest", init="default",
        g_ema=0.999, g_condition="input", g_color="absolute", lambda_rec=0.0, hflip=False, lr=1e-4,
    ),
}
# cpu-demo plus five changes beyond the paper (docs/results.rst, "On
# photographs"): the condition in every normalisation layer and the cycle
# reconstruction term, chosen from 1,500-iteration screens on UTKFace (they
# raised verification from 0-24%, one seed, to 41-67% per target group, mean
# of 3 seeds), and masks that start near keeping the input (attention bias 2),
# which at this full budget raised verification from 52-69% to 67-89% and the
# background by about 2 dB for 1-10 points of age accuracy (3 seeds each), and
# the colour proposal as an edit of the input (at 3,000 iterations, 3 seeds:
# verification 79-98% per target against 67-89% for the bias alone at ~5,700; age accuracy
# 2-15 points lower; at equal iterations, seed 0, the same age accuracy), and
# twice the paper's learning rate (2e-4 for both networks; at 3,000 iterations,
# 3 seeds: background 26.6-27.9 dB against 22.5-25.5, verification up to 6
# points higher, the same age accuracy, the FG-NET age gap 1.5 years wider).
PRESET_VALUES["cpu-photo"] = {**PRESET_VALUES["cpu-demo"], "max_steps": 6000, "max_minutes": 30.0,
                              "g_condition": "norm", "lambda_rec": 10.0, "g_attention_bias": 2.0,
                              "g_color": "residual", "lr": 2e-4}

#: What a field that a saved config lacks meant when that config was written: fields added
#: after checkpoints existed, whose preset value has since changed (cpu-photo's colour proposal
#: was the paper's before ``g_color`` existed).
VALUES_BEFORE_THE_FIELD: Dict[str, Any] = {"g_color": "absolute"}


# --------------------------------------------------------------------------- #
# Device, precision and preset
# --------------------------------------------------------------------------- #


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without CUDA is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but CUDA is not available on this machine")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 where the device runs it fast, else fp16 on a GPU and fp32 on a CPU."""
    if name != "auto":
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("--precision bf16 is not supported by this GPU; use fp16 or fp32")
        if name == "fp16" and device.type == "cpu":
            raise ValueError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a resolved precision (None for fp32).

    >>> autocast_dtype("bf16"), autocast_dtype("fp32")
    (torch.bfloat16, None)
    """
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - depends on the build
        return False


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


def _bad(name: str, msg: str) -> None:
    raise ValueError(f"--{name.replace('_', '-')}: {msg}")


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@functools.lru_cache(maxsize=1)
def _hints() -> Dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _check_type(name: str, value: Any) -> None:
    """The field's annotated type (None where the annotation is Optional); floats finite."""
    annotation = _hints()[name]
    if value is None:
        if type(None) not in typing.get_args(annotation):
            _bad(name, f"must be {_KIND_NAMES[_flag_type(annotation)]}, got None")
        return
    kind = _flag_type(annotation)
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
          isinstance(value, kind) and not isinstance(value, bool))
    if not ok:
        _bad(name, f"must be {_KIND_NAMES[kind]}, got {type(value).__name__} {cli.one_line(repr(value), 60)}")
    if kind is float and not math.isfinite(value):
        _bad(name, f"must be a finite number, got {value}")
    if kind is str and not value:
        _bad(name, "must not be empty")


def _check_declared(cfg: TrainConfig, names: Sequence[str]) -> None:
    """Each field's type, and the checks declared in its metadata: allowed strings, integer bounds."""
    for f in dataclasses.fields(TrainConfig):
        if f.name not in names:
            continue
        value = getattr(cfg, f.name)
        _check_type(f.name, value)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            _bad(f.name, f"must be one of {', '.join(choices)}, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = f.metadata.get("minimum"), f.metadata.get("maximum", cli.INT_LIMIT)
            if low is not None and value < low:
                _bad(f.name, f"must be a positive integer, got {value}" if low == 1
                     else f"must be >= {low}, got {value}")
            if value > high:
                _bad(f.name, f"must be at most {high}, got {value}")


def validate_config(cfg: TrainConfig) -> TrainConfig:
    """Resolve the preset, fill its values and check every field; raise ValueError naming the flag."""
    _check_declared(cfg, ("preset", "device", "precision"))
    preset = cfg.preset
    if preset == "auto":
        preset = "paper" if resolve_device(cfg.device).type == "cuda" else "cpu-demo"
    cfg = dataclasses.replace(cfg, preset=preset)
    explicit_stop = cfg.max_steps is not None or cfg.epochs is not None
    for key, value in PRESET_VALUES[preset].items():
        if key in ("max_steps", "max_minutes") and explicit_stop:
            continue  # the user chose the length of the run
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    _check_declared(cfg, [f.name for f in dataclasses.fields(TrainConfig)])
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        _bad("max_minutes", f"must be a finite number > 0, got {cfg.max_minutes}")
    multiple = 2 ** cfg.g_downsamples
    if cfg.image_size < 16 or cfg.image_size % multiple:
        _bad("image_size", f"must be >= 16 and a multiple of {multiple} (2 ** --g-downsamples), got {cfg.image_size}")
    if cfg.data == "synthetic":
        from synthetic_faces import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

        if not MIN_IMAGE_SIZE <= cfg.image_size <= MAX_IMAGE_SIZE:
            _bad("image_size", f"synthetic faces render at {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, "
                               f"got {cfg.image_size}")
    if cfg.crop is not None:
        from face_align import UNKNOWN_CROP, Crop

        if cfg.data == "synthetic":
            _bad("crop", "the synthetic faces are drawn, not cropped from photos: --crop describes a dataset of photos")
        if cfg.crop != UNKNOWN_CROP:
            cfg.crop = str(Crop.parse(cfg.crop, what="--crop"))  # the spec in full: the margin stated
    for name in ("lambda_adv", "lambda_att", "lambda_cls", "lambda_gp", "lambda_tv", "lambda_l1", "lambda_judge", "lr"):
        value = getattr(cfg, name)
        if not math.isfinite(value) or value < 0:
            _bad(name, f"must be a finite number >= 0, got {value}")
    if not (math.isfinite(cfg.judge_views) and 0 <= cfg.judge_views <= 0.5):
        _bad("judge_views", f"must lie in [0, 0.5] (a fraction of the side), got {cfg.judge_views}")
    if cfg.judge_views > 0 and not cfg.lambda_judge > 0:
        _bad("judge_views", "shows views to the frozen age judge of --lambda-judge, which is off: set --lambda-judge "
                            "W > 0 too")
    if not (math.isfinite(cfg.g_source) and 0 <= cfg.g_source <= 1):
        _bad("g_source", f"must lie in [0, 1] (the share of training images whose age group the generator is told), "
                         f"got {cfg.g_source}")
    if not (math.isfinite(cfg.grey_inputs) and 0 <= cfg.grey_inputs <= 1):
        _bad("grey_inputs", f"must lie in [0, 1] (a probability), got {cfg.grey_inputs}")
    if not cfg.lr > 0:
        _bad("lr", f"must be > 0, got {cfg.lr}")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, name) < 1:
            _bad(name, f"must lie in [0, 1), got {getattr(cfg, name)}")
    if not (math.isfinite(cfg.g_ema) and 0 <= cfg.g_ema < 1):
        _bad("g_ema", f"must lie in [0, 1), got {cfg.g_ema}")
    if not 0 < cfg.lr_decay <= 1:
        _bad("lr_decay", f"must lie in (0, 1], got {cfg.lr_decay}")
    if not 0 < cfg.test_fraction < 1:
        _bad("test_fraction", f"must lie in (0, 1), got {cfg.test_fraction}")
    if cfg.g_padding != "zeros" and cfg.g_condition == "input":
        _bad("g_padding", f"{cfg.g_padding} padding needs --g-condition norm: with the condition as input planes "
                          f"the generator's instance normalisation removes it everywhere but at zero padding's border")
    if not (math.isfinite(cfg.lambda_rec) and cfg.lambda_rec >= 0):
        _bad("lambda_rec", f"must be a finite number >= 0, got {cfg.lambda_rec}")
    if cfg.clip_young and cfg.drop_young:
        _bad("drop_young", "cannot be combined with --clip-young (ages below 10 go into 10-20, or are left out)")
    if cfg.resume and cfg.overwrite:
        _bad("overwrite", "cannot be combined with --resume (continue the run, or start it afresh)")
    return cfg


def config_from_dict(values: Any) -> TrainConfig:
    """The validated config of a dict as :meth:`TrainConfig.to_dict` wrote it (a checkpoint's).

    Keys that are not fields are ignored (a newer version's), missing fields
    take their defaults (an older version's); every value is checked for its
    field's type and range. Raises ValueError naming the field.

    >>> config_from_dict({"preset": "cpu-demo", "device": "cpu", "seed": "1"})
    Traceback (most recent call last):
    ...
    ValueError: --seed: must be an integer, got str '1'
    """
    if not isinstance(values, dict):
        raise ValueError(f"the config must be a dict of settings, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    known = {k: v for k, v in values.items() if k in names}
    known = {**VALUES_BEFORE_THE_FIELD, **known}
    cfg = TrainConfig(**known)
    _check_declared(cfg, [f.name for f in dataclasses.fields(TrainConfig) if f.name in known])
    return validate_config(cfg)


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def _flag_type(annotation: Any) -> type:
    """``int`` of ``Optional[int]``, ``bool`` of ``bool``, ...: the one non-None type of a field."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    kind = args[0] if typing.get_origin(annotation) is typing.Union and len(args) == 1 else annotation
    if kind not in (bool, int, float, str):
        raise TypeError(f"no command-line type for a field annotated {annotation!r}")
    return kind


def add_config_arguments(parser: argparse.ArgumentParser, names: Optional[Sequence[str]] = None, *,
                         help: Optional[Dict[str, str]] = None) -> None:
    """One flag (``--image-size`` for ``image_size``) per :class:`TrainConfig` field, or per field in ``names``.

    The flag's type comes from the field's annotation, its default and help
    from the field (``help`` may reword a field's help for another program);
    boolean flags take the example's one style (:func:`cli.add_bool_flag`).
    Values are checked by :func:`validate_config`, not by argparse, so that a
    config built in Python is checked alike.
    """
    hints = typing.get_type_hints(TrainConfig)
    unknown = set(names or ()) - set(hints)
    if unknown:
        raise ValueError(f"not TrainConfig fields: {sorted(unknown)}")
    for f in dataclasses.fields(TrainConfig):
        if names is not None and f.name not in names:
            continue
        flag, kind = "--" + f.name.replace("_", "-"), _flag_type(hints[f.name])
        text = (help or {}).get(f.name, f.metadata["help"])
        if f.default is None and "(default" not in text and any(f.name in v for v in PRESET_VALUES.values()):
            text += f" (default: {preset_defaults(f.name)})"
        if kind is bool:
            cli.add_bool_flag(parser, flag, default=f.default, help=text)
        else:
            parser.add_argument(flag, type=kind, default=f.default, help=text)


def preset_defaults(name: str) -> str:
    """What each preset gives a field, for ``--help``: ``"paper 224, cpu-demo 64, cpu-photo 64"``.

    >>> preset_defaults("image_size"), preset_defaults("max_minutes"), preset_defaults("channels_last")
    ('paper 224, cpu-demo 64, cpu-photo 64', 'paper none, cpu-demo 12, cpu-photo 30', 'on in every preset')
    """
    def shown(value: Any) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    values = {preset: shown(PRESET_VALUES[preset].get(name)) for preset in PRESET_VALUES}
    if len(set(values.values())) == 1:
        return f"{next(iter(values.values()))} in every preset"
    return ", ".join(f"{preset} {value}" for preset, value in values.items())


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, **overrides: Any) -> TrainConfig:
    """The validated config of parsed flags (fields without a flag keep their defaults);
    an invalid value exits through ``parser.error`` (status 2) naming the flag."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    try:
        return validate_config(TrainConfig(**{**values, **overrides}))
    except ValueError as exc:
        parser.error(str(exc))
