"""Dataset indices: the one index check of the example's datasets.

The built-in faces (:class:`synthetic_faces.SyntheticFaces`) and the real
ones (:class:`face_datasets.FaceImageDataset`) take the same indices: a
Python int, a NumPy integer or a one-element integer tensor in
``[0, len)``. :func:`check_index` turns one into a Python int or raises the
error a sequence raises: :class:`TypeError` for what is not an integer
(bools and floating-point tensors included), :class:`IndexError` for an
integer out of range (negative ones included: a dataset is not indexed from
its end).

The module imports no other module of the example, so either dataset can
use it without importing the other or the code that builds them
(:mod:`data`).

Examples
--------
>>> import numpy as np, torch
>>> from indexing import check_index
>>> check_index(3, 5), check_index(np.int64(3), 5), check_index(torch.tensor([3]), 5)
(3, 3, 3)
>>> check_index(5, 5)
Traceback (most recent call last):
...
IndexError: index must be in [0, 4], got 5
>>> check_index(torch.tensor(1.0), 5)
Traceback (most recent call last):
...
TypeError: index must be an int, got tensor of shape () and dtype torch.float32
"""

from __future__ import annotations

import operator
from typing import Any

import torch

__all__ = ["check_index"]


def check_index(index: Any, length: int) -> int:
    """An index into a dataset of ``length`` items, as a Python int.

    Parameters
    ----------
    index : int, numpy integer or torch.Tensor
        The index; a tensor must hold one integer (any shape with one
        element).
    length : int
        The dataset's length.

    Returns
    -------
    int
        ``index`` in ``[0, length)``.

    Raises
    ------
    TypeError
        ``index`` is not an integer: a bool, a float, a tensor with a
        floating-point dtype or with other than one element, ...
    IndexError
        ``index`` is outside ``[0, length)``.
    """
    if isinstance(index, torch.Tensor):
        if index.numel() != 1 or index.is_floating_point():
            raise TypeError(f"index must be an int, got tensor of shape {tuple(index.shape)} and dtype {index.dtype}")
        index = int(index.item())
    if isinstance(index, bool):
        raise TypeError("index must be an int, got bool")
    try:
        i = operator.index(index)
    except TypeError:
        raise TypeError(f"index must be an int, got {type(index).__name__}") from None
    if not 0 <= i < length:
        raise IndexError(f"index must be in [0, {length - 1}], got {i}")
    return i
