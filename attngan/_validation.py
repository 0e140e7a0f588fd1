"""Input checks shared by the public functions (private module).

Every public function validates its inputs at the boundary with these helpers,
so that a bad call fails with a :class:`TypeError` or :class:`ValueError` whose
message names the argument, what was expected and what was given.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import torch

__all__: list = []


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


def check_labels(labels: Any, name: str, num_classes: int) -> torch.Tensor:
    """Check integer class labels of shape (B,) in ``[0, num_classes)``."""
    check_tensor(labels, name, ndim=1, layout="(B,)", floating=False)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {labels.dtype}")
    if labels.numel() > 0:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"{name} must lie in [0, {num_classes - 1}] for num_classes={num_classes}, "
                f"got values in [{low}, {high}]"
            )
    return labels


def format_shapes(items: Iterable[torch.Tensor]) -> str:
    return ", ".join(str(tuple(t.shape)) for t in items)
