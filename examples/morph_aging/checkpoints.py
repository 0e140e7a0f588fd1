"""Checkpoints of the AcGAN example: writing, the one reader, digests and export.

A training checkpoint (``.pt``, :func:`save_checkpoint`) holds the config,
the step, both networks, both optimisers' states, the averaged generator of
a run that keeps one, the ``extra`` record (with the ``reason`` the run
ended for: :data:`FINISHED`, :data:`TIME_BUDGET`, :data:`INTERRUPTED`,
:data:`DIVERGED` or :data:`FAILED`) and the integrity digest of its tensors
(:func:`tensor_digest`). An exported generator (``.safetensors``,
:func:`export_safetensors`) holds the generator, the config and the digest.
:func:`load_checkpoint` reads and verifies both; :func:`generator_of` builds
the generator they hold (:mod:`models`).

Examples
--------
>>> import os, tempfile
>>> import models
>>> from config import TrainConfig, validate_config
>>> cfg = validate_config(TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8, device="cpu"))
>>> g, d = models.build_generator(cfg), models.build_critic(cfg)
>>> opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
>>> path = os.path.join(tempfile.mkdtemp(), "last.pt")
>>> save_checkpoint(path, cfg, g, d, opt_g, opt_d, 7, extra={"reason": FINISHED})
>>> state = load_checkpoint(path)
>>> state["step"], state["extra"]["reason"], config_of(state, path) == cfg
(7, 'finished', True)
>>> generator_of(state, path)[0].training
False
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

import cli
import estimators
import models
from config import MODEL_FIELDS, VALUES_BEFORE_THE_FIELD, TrainConfig, config_from_dict
from files import atomic_file

__all__ = [
    "AVERAGE_PART",
    "CHECKPOINT_FORMAT",
    "DIVERGED",
    "EXPORT_FORMAT",
    "FAILED",
    "FINISHED",
    "INTERRUPTED",
    "JUDGE_PART",
    "TENSOR_PARTS",
    "TIME_BUDGET",
    "CheckpointError",
    "CheckpointWarning",
    "all_finite",
    "check_compatible",
    "config_of",
    "critic_of",
    "export_safetensors",
    "generator_from_checkpoint",
    "judge_of",
    "generator_of",
    "load_checkpoint",
    "save_checkpoint",
    "tensor_digest",
]

#: Reasons a run ends with, recorded in the last checkpoint's ``extra["reason"]``.
FINISHED, TIME_BUDGET, INTERRUPTED, DIVERGED = "finished", "time budget reached", "interrupted", "diverged"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, damaged, holds non-finite weights, or does not fit the model."""


class CheckpointWarning(UserWarning):
    """A checkpoint is used, but something about it could not be verified."""


#: ``format`` of a training checkpoint (``.pt``) and of an exported generator (``.safetensors``).
CHECKPOINT_FORMAT, EXPORT_FORMAT = "attngan-acgan/1", "attngan-acgan-generator/1"
#: The parts of a training checkpoint that hold tensors; the digest covers them all.
TENSOR_PARTS = ("generator", "critic", "opt_g", "opt_d")
#: The averaged generator (``--g-ema``): a tensor part of the checkpoints of runs that keep one.
AVERAGE_PART = "generator_ema"
#: The frozen age judge (``--lambda-judge``): a tensor part of the checkpoints of runs that train with one.
JUDGE_PART = "judge"
#: Reason recorded in the checkpoint an unexpected error made train.py write.
FAILED = "stopped by an error"


def all_finite(module: nn.Module) -> bool:
    """Whether every parameter of ``module`` is finite (no NaN, no infinity)."""
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _tensors(tree: Any, path: str = "") -> Any:
    """``(path, tensor)`` of every tensor in nested dicts / lists, in a fixed order (dict keys sorted as text)."""
    if isinstance(tree, torch.Tensor):
        yield path, tree
    elif isinstance(tree, dict):
        for key in sorted(tree, key=str):
            yield from _tensors(tree[key], f"{path}/{key}")
    elif isinstance(tree, (list, tuple)):
        for i, item in enumerate(tree):
            yield from _tensors(item, f"{path}/{i}")


def tensor_digest(tree: Any) -> str:
    """SHA-256 over every tensor of ``tree`` (nested dicts and lists): its path, dtype, shape and bytes.

    The integrity digest stored in checkpoints and exported generators: it
    does not depend on the device or the memory layout, only on the values,
    so a flipped byte anywhere in tensor data changes it.

    Parameters
    ----------
    tree : tensor, dict or list
        Nested dicts (keys ordered as text) and lists of tensors; other leaves are ignored.

    Returns
    -------
    str
        The hex digest.

    Examples
    --------
    >>> a = {"w": torch.ones(2, 2), "b": [torch.zeros(3)]}
    >>> tensor_digest(a) == tensor_digest({"b": [torch.zeros(3)], "w": torch.ones(2, 2)})
    True
    >>> b = {"w": torch.ones(2, 2), "b": [torch.zeros(3)]}
    >>> b["w"][0, 1] = 1.0000001
    >>> tensor_digest(a) == tensor_digest(b)
    False
    """
    h = hashlib.sha256()
    for path, t in _tensors(tree):
        h.update(f"{path}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _nonfinite(tree: Any) -> List[str]:
    """Paths of the floating-point tensors of ``tree`` that hold NaN or infinity."""
    return [path for path, t in _tensors(tree)
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())]


def _refuse_nonfinite(state: Dict[str, Any], parts: Any, what: str) -> None:
    for part in parts:
        bad = _nonfinite(state.get(part))
        if bad:
            more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
            raise CheckpointError(f"{what}: the {_PART_NAMES.get(part, part)} has non-finite values (NaN or "
                                  f"infinity) in {bad[0].lstrip('/')}{more}; these weights cannot be used")


_PART_NAMES = {"generator": "generator", AVERAGE_PART: "averaged generator", "critic": "critic",
               "opt_g": "generator's optimiser state", "opt_d": "critic's optimiser state",
               JUDGE_PART: "frozen age judge"}


def _tensor_parts(state: Dict[str, Any]) -> Tuple[str, ...]:
    return TENSOR_PARTS + tuple(part for part in (AVERAGE_PART, JUDGE_PART) if part in state)


def save_checkpoint(path: str, cfg: TrainConfig, g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer,
                    opt_d: torch.optim.Optimizer, step: int, extra: Optional[Dict[str, Any]] = None,
                    average: Optional[nn.Module] = None, judge: Optional[nn.Module] = None) -> None:
    """Save a training checkpoint atomically, with the integrity digest of its tensors
    (``state["digest"]``).

    Parameters
    ----------
    path : str
        The file to write.
    cfg : TrainConfig
        The run's config.
    g, d : nn.Module
        The generator and the critic, possibly wrapped (:func:`models.unwrap`).
    opt_g, opt_d : torch.optim.Optimizer
        Their optimisers.
    step : int
        The number of iterations done.
    extra : dict, optional
        Recorded as ``state["extra"]`` (the ``"reason"`` the run stopped for, ...).
    average : nn.Module, optional
        The averaged generator (:func:`models.build_average`), saved as the
        generator ``state[AVERAGE_PART]`` beside the trained one.
    judge : nn.Module, optional
        The frozen age judge (``--lambda-judge``), saved as ``state[JUDGE_PART]``.

    Raises
    ------
    FloatingPointError
        A network has non-finite weights; nothing is written.
    files.WriteError
        The write failed; the previous file at ``path`` is left as it was.
    """
    g, d = models.unwrap(g), models.unwrap(d)
    average = average.module if isinstance(average, torch.optim.swa_utils.AveragedModel) else average
    for name, net in (("generator", g), ("critic", d), ("averaged generator", average)):
        if net is not None and not all_finite(net):
            raise FloatingPointError(f"refusing to write {path}: the {name} has non-finite weights")
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.to_dict(),
        "step": step,
        "generator": g.state_dict(),
        "critic": d.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "extra": extra or {},
    }
    if average is not None:
        state[AVERAGE_PART] = average.state_dict()
    if judge is not None:
        state[JUDGE_PART] = judge.state_dict()
    parts = _tensor_parts(state)
    state["digest"] = {"sha256": tensor_digest({k: state[k] for k in parts}), "covers": list(parts)}
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read and verify a training checkpoint (``.pt``) or an exported generator (``.safetensors``).

    The one reader of both formats, with clear errors (:class:`CheckpointError`).
    Either gives a dict with ``"format"``, ``"config"`` (the training
    config as a dict; :func:`config_of` checks it), ``"step"`` (None for an
    export), ``"extra"`` (with the ``"reason"`` the run ended for; empty for
    an export) and ``"generator"`` (its state dict); a training checkpoint
    also holds ``"critic"``, ``"opt_g"`` and ``"opt_d"``. ``.pt`` files are
    loaded with ``weights_only=True``.

    Verified before anything uses them: the layout of the file; the
    integrity digest of its tensors (a file damaged after it was written is
    refused; a file from before digests were stored is read with a
    :class:`CheckpointWarning`); and the finiteness of every tensor (NaN or
    infinite weights are refused).

    Parameters
    ----------
    path : str
        A ``.pt`` or ``.safetensors`` file.
    map_location : str or torch.device, default "cpu"
        Where the tensors are loaded.

    Returns
    -------
    dict
        The checkpoint's state.

    Raises
    ------
    CheckpointError
        The file is missing, unreadable, damaged, malformed or holds non-finite values.
    """
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} is not a regular file")
    if path.endswith(".safetensors"):
        return _load_export(path, map_location)
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; say so before the unpickler does
        raise CheckpointError(
            f"cannot read checkpoint {path}: neither a training checkpoint (.pt, written by train.py) "
            "nor an exported .safetensors generator")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an attngan AcGAN checkpoint")
    for key, kind in (("config", dict), ("extra", dict), *((part, dict) for part in _tensor_parts(state))):
        if not isinstance(state.get(key), kind):
            raise CheckpointError(f"checkpoint {path} is malformed: its {key!r} is "
                                  f"{type(state.get(key)).__name__}, not a {kind.__name__}")
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {path} is malformed: its 'step' is {cli.one_line(repr(step), 60)}, "
                              "not an integer >= 0")
    _verify_digest(state.get("digest"), {k: state[k] for k in _tensor_parts(state)}, path)
    _refuse_nonfinite(state, _tensor_parts(state), f"checkpoint {path}")
    return state


def _verify_digest(recorded: Any, tensors: Any, path: str) -> None:
    if recorded is None:
        warnings.warn(f"{path} carries no integrity digest (written by an older version): its weights are checked "
                      "for NaN and infinity only", CheckpointWarning, stacklevel=3)
        return
    value = recorded.get("sha256") if isinstance(recorded, dict) else recorded
    if not isinstance(value, str):
        raise CheckpointError(f"checkpoint {path} is malformed: its integrity digest is not a sha256 hex string")
    if tensor_digest(tensors) != value:
        raise CheckpointError(f"checkpoint {path} is damaged: its tensors do not match the integrity digest written "
                              "with them (the file changed after it was saved: a disk or copy error?); use another "
                              "checkpoint")


def _load_export(path: str, map_location: Any) -> Dict[str, Any]:
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError("reading .safetensors needs the 'export' extra: "
                              + cli.install_hint("export")) from None
    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
        state_dict = load_file(path, device=str(map_location))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read {path}: {cli.one_line(exc, 300)}") from None
    if "config" not in meta:
        raise CheckpointError(f"{path} carries no attngan config metadata")
    if meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not an attngan exported generator (format {meta.get('format')!r})")
    try:
        config = json.loads(meta["config"])
    except Exception as exc:  # noqa: BLE001 - ValueError, or RecursionError for absurd nesting
        raise CheckpointError(f"cannot use checkpoint {path}: malformed config ({cli.one_line(exc, 200)})") from None
    _verify_digest(meta.get("digest"), state_dict, path)
    state = {"format": meta.get("format"), "config": config, "step": None, "extra": {}, "generator": state_dict}
    _refuse_nonfinite(state, ("generator",), f"checkpoint {path}")
    return state


def config_of(state: Dict[str, Any], path: str) -> TrainConfig:
    """The checked training config of a checkpoint read by :func:`load_checkpoint`.

    Every value is checked for its field's type and range
    (:func:`config.config_from_dict`); a bad one is a :class:`CheckpointError`
    naming the file and the field.

    Parameters
    ----------
    state : dict
        What :func:`load_checkpoint` returned.
    path : str
        The file it came from, for the messages.

    Returns
    -------
    TrainConfig
    """
    try:
        return config_from_dict(state.get("config"))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} has an unusable config: {exc}") from None


def check_compatible(saved: Dict[str, Any], cfg: TrainConfig, path: str) -> None:
    """Refuse a checkpoint config whose networks differ from the configured ones.

    Parameters
    ----------
    saved : dict
        The checkpoint's config as a dict.
    cfg : TrainConfig
        The requested config; its ``MODEL_FIELDS`` are compared.
    path : str
        The checkpoint, for the message.

    Raises
    ------
    CheckpointError
        Listing every differing field.
    """
    saved = {**VALUES_BEFORE_THE_FIELD, **saved}
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs requested {getattr(cfg, k)!r}"
             for k in MODEL_FIELDS if saved.get(k) != getattr(cfg, k)]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not fit this model:\n  " + "\n  ".join(diffs))


def generator_of(state: Dict[str, Any], path: str, *, weights: str = "average") -> Tuple[nn.Module, TrainConfig]:
    """The generator (in eval mode) and config of a checkpoint read by :func:`load_checkpoint`.

    ``weights``: ``"average"`` takes the averaged generator of a run trained
    with ``--g-ema`` and the trained weights otherwise; ``"trained"`` always
    takes the trained weights (an error for an export, which holds one
    generator: the average where there was one).

    Any failure (malformed config, weights that do not fit) is raised as
    :class:`CheckpointError` with a one-line message naming ``path``.

    Parameters
    ----------
    state : dict
        What :func:`load_checkpoint` returned.
    path : str
        The file it came from, for the messages.
    weights : {"average", "trained"}, default "average"

    Returns
    -------
    generator : nn.Module
        In eval mode (:func:`models.build_generator`).
    cfg : TrainConfig
    """
    cfg = config_of(state, path)
    try:
        g = models.build_generator(cfg)
    except Exception as exc:  # noqa: BLE001 - a config can fail to build in many ways
        raise CheckpointError(f"cannot use checkpoint {path}: its config builds no generator "
                              f"({type(exc).__name__}: {cli.one_line(exc, 200)})") from None
    if weights not in ("average", "trained"):
        raise ValueError(f"weights must be 'average' or 'trained', got {weights!r}")
    part = AVERAGE_PART if weights == "average" and AVERAGE_PART in state else "generator"
    if weights == "trained" and state.get("format") == EXPORT_FORMAT and cfg.g_ema:
        raise CheckpointError(f"{path} is an export of the averaged generator: its trained weights are in the "
                              "training checkpoint")
    _load_weights(g, state.get(part), path, "generator")
    return g.eval(), cfg


def _load_weights(net: nn.Module, weights: Any, path: str, what: str) -> None:
    try:
        net.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not fit the {what} of its config: {first}") from None


def critic_of(state: Dict[str, Any], path: str) -> Optional[nn.Module]:
    """The critic (in eval mode) of a training checkpoint read by :func:`load_checkpoint`; None for an export.

    Raises :class:`CheckpointError` (one line naming ``path``) when its
    weights do not fit the critic of its config.
    """
    if state.get("critic") is None:
        return None
    d = models.build_critic(config_of(state, path))
    _load_weights(d, state["critic"], path, "critic")
    return d.eval()


def judge_of(state: Dict[str, Any], path: str) -> Optional[nn.Module]:
    """The frozen age judge (``--lambda-judge``) of a checkpoint read by :func:`load_checkpoint`, or None
    where it holds none (runs without one, exports).

    Raises :class:`CheckpointError` (one line naming ``path``) when the weights
    do not fit :func:`estimators.group_judge` of its config's image size.
    """
    if state.get(JUDGE_PART) is None:
        return None
    judge = estimators.group_judge(config_of(state, path).image_size)
    _load_weights(judge, state[JUDGE_PART], path, "frozen age judge")
    return judge


def generator_from_checkpoint(path: str, map_location: Any = "cpu", *,
                              weights: str = "average") -> Tuple[nn.Module, TrainConfig]:
    """The generator and config of a ``.pt`` checkpoint or an exported ``.safetensors`` file.

    :func:`load_checkpoint` then :func:`generator_of` (see them for the
    parameters and errors).
    """
    return generator_of(load_checkpoint(path, map_location), path, weights=weights)


def export_safetensors(checkpoint: str, out: str) -> None:
    """Write the generator of a checkpoint, with its config and the integrity digest of its
    tensors, as safetensors to ``out``.

    Parameters
    ----------
    checkpoint : str
        A file :func:`load_checkpoint` reads (its averaged generator is
        exported where it holds one).
    out : str
        The ``.safetensors`` file to write.
    """
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise CheckpointError("exporting needs the 'export' extra: " + cli.install_hint("export")) from None
    g, cfg = generator_from_checkpoint(checkpoint)
    tensors = {k: v.contiguous() for k, v in g.state_dict().items()}
    save_file(tensors, out, metadata={"config": json.dumps(cfg.to_dict()), "format": EXPORT_FORMAT,
                                      "digest": tensor_digest(tensors)})
