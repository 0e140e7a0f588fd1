"""The age groups: names, bounds, centres and the age -> group rule (ages.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ages import AGE_THRESHOLDS, GROUP_BOUNDS, GROUP_CENTRES, GROUP_NAMES, NUM_GROUPS, age_to_group


def test_the_papers_groups() -> None:
    assert GROUP_NAMES == ("10-20", "21-30", "31-40", "41-50", "51+")
    assert AGE_THRESHOLDS == (21.0, 31.0, 41.0, 51.0)
    assert GROUP_CENTRES == (15.0, 25.5, 35.5, 45.5, 55.5)
    assert age_to_group(np.array(GROUP_CENTRES)).tolist() == list(range(NUM_GROUPS))


@pytest.mark.parametrize(
    "age, group",
    [(10, 0), (20, 0), (20.5, 0), (21, 1), (30, 1), (31, 2), (40, 2), (41, 3), (50, 3), (51, 4), (77, 4), (120, 4)],
)
def test_age_group_edges(age, group) -> None:
    assert age_to_group(age) == group
    # arrays in, arrays out: a scalar gives a 0-d int64 array (no dispatch on the input type)
    assert age_to_group(age).shape == () and age_to_group(age).dtype == np.int64


def test_age_to_group_arrays() -> None:
    ages = [10, 20, 21, 30, 31, 40, 41, 50, 51, 77]
    expect = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    out = age_to_group(np.array(ages).reshape(2, 5))
    assert out.dtype == np.int64 and out.shape == (2, 5) and out.ravel().tolist() == expect
    # a CPU tensor is array-like: numpy reads it (the result is an array, not a tensor)
    t = age_to_group(torch.tensor(ages, dtype=torch.float32))
    assert t.dtype == np.int64 and t.tolist() == expect
    assert age_to_group(ages).tolist() == expect
    assert len(GROUP_BOUNDS) == NUM_GROUPS == 5 and GROUP_BOUNDS[0] == (10, 20)


@pytest.mark.parametrize("age", [9, 0, 9.99, np.array([30, 5]), torch.tensor([3.0])])
def test_young_ages_raise_unless_clipped(age) -> None:
    with pytest.raises(ValueError, match="clip_young"):
        age_to_group(age)
    out = age_to_group(age, clip_young=True)
    assert (np.asarray(out) >= 0).all()


def test_young_age_named_in_message() -> None:
    with pytest.raises(ValueError, match="got 7"):
        age_to_group(np.array([30, 7, 8]))
    assert age_to_group(3, clip_young=True) == 0


@pytest.mark.parametrize("age", [float("nan"), float("inf"), -float("inf"), np.array([20.0, np.nan])])
def test_non_finite_ages_raise(age) -> None:
    with pytest.raises(ValueError, match="finite"):
        age_to_group(age, clip_young=True)


def test_negative_and_bad_types() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        age_to_group(-1, clip_young=True)
    with pytest.raises(TypeError):
        age_to_group(True)
    with pytest.raises(TypeError):
        age_to_group(["a"])
