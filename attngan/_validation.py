"""Input checks shared by the public functions.

Every public function validates its inputs at the boundary with these helpers,
so that a bad call fails with a :class:`TypeError` or :class:`ValueError` whose
message names the argument, what was expected and what was given.

Two kinds of checks
-------------------
*Metadata checks* (type, rank, shape, dtype, device, Python hyper-parameters)
read no tensor values: they cost nothing on any device and under
``torch.compile`` they are resolved while tracing. They always run.

*Value checks* (labels in ``[0, K)``, interpolation weights in ``[0, 1]``, a
tensor ``grad_scale`` > 0) must read tensor values. On an accelerator that is
a host synchronisation, and inside ``torch.compile`` a graph break, so they
run only where they are free (see :func:`value_checks_apply`):

* the switch :func:`set_value_checks` is on (the default), and
* the code is not being compiled or traced (``torch.compile``,
  ``torch.export``, ``torch.jit.trace``), and
* every tensor checked lives on the CPU.

Where a value check is skipped the functions still never turn a bad value
into a plausible result silently; each documents what happens instead (an
out-of-range label, for instance, fails in the bounds-checked indexing of
``F.one_hot`` / ``gather``: an error on the CPU, a device-side assertion on
CUDA, an assertion in the compiled kernel).

This module is private; :func:`set_value_checks` and
:func:`value_checks_enabled` are meant to be re-exported by :mod:`attngan`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

import torch

__all__ = ["set_value_checks", "value_checks_enabled"]

_VALUE_CHECKS = True


class set_value_checks:
    """Turn the library's value checks on or off, globally or in a ``with`` block.

    Value checks read tensor values (labels in ``[0, K)``, interpolation
    weights ``alpha`` in ``[0, 1]``). They only ever run on CPU tensors in
    eager mode, never on accelerators or inside ``torch.compile``, because
    there they would cost a host synchronisation or a graph break. Use this
    switch to skip them on the CPU too, e.g. to time a CPU training step.
    Checks of types, shapes, dtypes and devices are never switched off.

    Like :class:`torch.set_grad_enabled`, calling it takes effect at once, and
    used as a context manager it restores the previous setting on exit.

    Parameters
    ----------
    enabled : bool
        ``True`` (the default state) runs value checks where they are free;
        ``False`` skips them everywhere.

    Examples
    --------
    >>> with set_value_checks(False):
    ...     value_checks_enabled()
    False
    >>> value_checks_enabled()
    True
    """

    def __init__(self, enabled: bool) -> None:
        global _VALUE_CHECKS
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        self.previous = _VALUE_CHECKS
        self.enabled = enabled
        _VALUE_CHECKS = enabled

    def __enter__(self) -> "set_value_checks":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        global _VALUE_CHECKS
        _VALUE_CHECKS = self.previous

    def __repr__(self) -> str:
        return f"set_value_checks({self.enabled})"


def value_checks_enabled() -> bool:
    """Whether value checks are switched on (see :class:`set_value_checks`).

    Returns
    -------
    bool
        The switch; value checks still run only on CPU tensors in eager mode.

    Examples
    --------
    >>> value_checks_enabled()
    True
    """
    return _VALUE_CHECKS


def value_checks_apply(*tensors: torch.Tensor) -> bool:
    """Whether value checks of ``tensors`` run now: switched on, eager, all on the CPU."""
    # is_compiling first: under torch.compile the global is then never read,
    # so toggling the switch does not invalidate compiled graphs
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    if not _VALUE_CHECKS:
        return False
    return all(t.device.type == "cpu" for t in tensors)


def check_tensor(
    x: Any,
    name: str,
    *,
    ndim: Optional[int] = None,
    layout: Optional[str] = None,
    floating: bool = True,
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given rank and kind.

    ``layout`` is a human-readable shape such as ``"(B, C, H, W)"`` used in the
    message only.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        shape = layout or f"{ndim}-D"
        raise ValueError(
            f"{name} must have shape {shape} ({ndim} dimensions), "
            f"got shape {tuple(x.shape)} ({x.ndim} dimensions)"
        )
    if floating and not (x.is_floating_point()):
        raise TypeError(
            f"{name} must be a floating-point tensor (e.g. float32 images in [-1, 1]), "
            f"got dtype {x.dtype}; convert with x.float() / 127.5 - 1 for uint8 images"
        )
    return x


def check_same_shape(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    """Check that two tensors have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_same_device(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    """Check that ``b`` is on the device of ``a`` (metadata only)."""
    if a.device != b.device:
        raise ValueError(
            f"{b_name} must be on the device of {a_name} ({a.device}), got {b_name} on {b.device}; "
            f"move it with .to({a_name}.device)"
        )


def check_same_dtype(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    """Check that ``b`` has the dtype of ``a`` (metadata only)."""
    if a.dtype != b.dtype:
        raise TypeError(
            f"{b_name} must have the dtype of {a_name} ({a.dtype}), got {b_name} of dtype {b.dtype}; "
            "cast both to one dtype, e.g. with .float()"
        )


def check_generator(generator: Any, name: str, like: torch.Tensor, like_name: str) -> None:
    """Check an optional ``torch.Generator`` against the device of ``like``."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != like.device.type:
        raise ValueError(
            f"{name} must be a generator on the device of {like_name} ({like.device.type}), "
            f"got a generator on {generator.device}"
        )


def check_nonempty_batch(x: torch.Tensor, name: str, why: str) -> None:
    """Check that ``x`` has at least one sample (B >= 1); ``why`` ends the message."""
    if x.shape[0] == 0:
        raise ValueError(f"{name} must have a non-empty batch (B >= 1), got shape {tuple(x.shape)}: {why}")


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> None:
    """Check that an enumerated option is one of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Check that ``value`` is an integer no smaller than ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_real(value: Any, name: str, *, positive: bool = False) -> float:
    """Check that a Python scalar hyper-parameter is a finite real number (always runs)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (int or float), got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_labels(labels: Any, name: str, num_classes: int) -> torch.Tensor:
    """Check integer class labels of shape (B,) in ``[0, num_classes)``.

    Type, rank and dtype are always checked; the range only where value checks
    apply (:func:`value_checks_apply`), since it reads the labels.
    """
    check_tensor(labels, name, ndim=1, layout="(B,)", floating=False)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {labels.dtype}")
    if labels.numel() > 0 and value_checks_apply(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"{name} must lie in [0, {num_classes - 1}] for num_classes={num_classes}, "
                f"got values in [{low}, {high}]"
            )
    return labels
