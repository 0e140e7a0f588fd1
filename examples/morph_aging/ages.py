"""The paper's five age groups: names, bounds, centres and the age -> group rule.

The one definition of the groups that the rest of the example uses (the
models' number of classes, the synthetic faces, the real datasets' labels,
the estimators and the evaluation tables).

Examples
--------
>>> import numpy as np
>>> from ages import GROUP_NAMES, age_to_group
>>> GROUP_NAMES
('10-20', '21-30', '31-40', '41-50', '51+')
>>> age_to_group(np.array([10, 20, 20.5, 21, 51, 77])).tolist()
[0, 0, 0, 1, 4, 4]
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["AGE_THRESHOLDS", "GROUP_BOUNDS", "GROUP_CENTRES", "GROUP_NAMES", "MIN_AGE", "NUM_GROUPS",
           "age_to_group"]

#: Age groups of the paper as inclusive ``(low, high)`` bounds in years, ``None`` = open.
GROUP_BOUNDS: Tuple[Tuple[int, Optional[int]], ...] = ((10, 20), (21, 30), (31, 40), (41, 50), (51, None))
#: Number of age groups (the models' classes).
NUM_GROUPS = len(GROUP_BOUNDS)
#: ``"10-20"``, ``"21-30"``, ``"31-40"``, ``"41-50"``, ``"51+"``.
GROUP_NAMES: Tuple[str, ...] = tuple(f"{lo}-{hi}" if hi is not None else f"{lo}+" for lo, hi in GROUP_BOUNDS)
#: Youngest age of the first group.
MIN_AGE = GROUP_BOUNDS[0][0]
#: Lower bounds of groups 1..4: an age ``a`` is in group ``#{b in AGE_THRESHOLDS : a >= b}``,
#: so 20.5 is 10-20 and 21 is 21-30.
AGE_THRESHOLDS: Tuple[float, ...] = tuple(float(lo) for lo, _ in GROUP_BOUNDS[1:])
#: Age (years) standing for each group: its midpoint, the open group 51+ taken as 51-60.
GROUP_CENTRES: Tuple[float, ...] = tuple((lo + (hi if hi is not None else lo + 9)) / 2 for lo, hi in GROUP_BOUNDS)


def age_to_group(ages: ArrayLike, *, clip_young: bool = False) -> np.ndarray:
    """Map ages in years to the paper's five age groups.

    Parameters
    ----------
    ages : array_like
        Ages in years, any shape (a numpy array, or anything
        :func:`numpy.asarray` turns into real numbers).
    clip_young : bool, default False
        The paper's groups start at 10; by default an age below 10 raises
        :class:`ValueError`. With ``clip_young=True`` ages in ``[0, 10)`` go
        to group 0 (for UTKFace and FG-NET, which contain children, and for
        age estimates).

    Returns
    -------
    numpy.ndarray
        int64 groups 0..4 (10-20, 21-30, 31-40, 41-50, 51+) with the input's shape.

    Raises
    ------
    TypeError
        For ages that are not real numbers (strings, booleans).
    ValueError
        For a non-finite or negative age, or an age below 10 without
        ``clip_young``; the message names the offending age.

    Examples
    --------
    >>> age_to_group([10, 30, 31, 77]).tolist()
    [0, 1, 2, 4]
    >>> age_to_group([5.0, 21.0], clip_young=True).tolist()
    [0, 1]
    """
    values = np.asarray(ages)
    if values.dtype.kind not in "iuf":
        raise TypeError(f"ages must be real numbers, got {type(ages).__name__} of dtype {values.dtype}")
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        where = tuple(int(k) for k in np.argwhere(bad)[0])
        pos = f" at position {where}" if where else ""
        raise ValueError(f"ages must be finite, got {values[bad].flat[0]!r}{pos}")
    low = MIN_AGE if not clip_young else 0
    bad = values < low
    if bad.any():
        where = tuple(int(k) for k in np.argwhere(bad)[0])
        pos = f" at position {where}" if where else ""
        count = int(bad.sum())
        more = f" ({count} ages in all)" if count > 1 else ""
        first = _fmt_age(values[bad].flat[0])
        if clip_young:
            raise ValueError(f"ages must be >= 0, got {first}{pos}{more}")
        raise ValueError(
            f"ages must be >= {MIN_AGE} (the paper's first group is 10-20), got {first}{pos}{more}; "
            "pass clip_young=True (on the command line --clip-young) to put ages below 10 into group 0 (e.g. "
            "for UTKFace or FG-NET), or leave them out (train.py --drop-young)"
        )
    return np.searchsorted(np.asarray(AGE_THRESHOLDS), values, side="right").astype(np.int64)


def _fmt_age(a: float) -> str:
    return str(int(a)) if float(a).is_integer() else repr(float(a))
