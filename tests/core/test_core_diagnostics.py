"""Property tests of the mask statistics."""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from attngan import MaskStatistics, mask_statistics

FAST = settings(max_examples=25, deadline=None, database=None)
shapes = st.tuples(st.integers(1, 4), st.just(1), st.integers(1, 8), st.integers(1, 8))
seeds = st.integers(0, 2**31 - 1)


def _rand(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@FAST
@given(shape=shapes, value=st.floats(0, 1))
def test_constant_mask(shape, value):
    s = mask_statistics(torch.full(shape, value, dtype=torch.float64))
    assert isinstance(s, MaskStatistics)
    torch.testing.assert_close(s.mean, torch.tensor(value, dtype=torch.float64))
    assert s.spread.item() == pytest.approx(0.0, abs=1e-12)
    assert s.near_zero.item() == float(value < 0.05)
    assert s.near_one.item() == float(value > 0.95)


@FAST
@given(shape=shapes, seed=seeds)
@example(shape=(1, 1, 1, 3), seed=402105)  # 2/3 + 1/3 once summed to 1 + 3e-8: the fractions were float32
def test_statistics_equal_their_definitions(shape, seed):
    a = _rand(shape, seed)
    s = mask_statistics(a, low=0.1, high=0.8)
    torch.testing.assert_close(s.mean, a.mean())
    torch.testing.assert_close(s.near_zero, (a < 0.1).double().mean(), rtol=0, atol=1e-15)
    torch.testing.assert_close(s.near_one, (a > 0.8).double().mean(), rtol=0, atol=1e-15)
    per_sample_std = torch.stack([x.flatten().std(unbiased=False) for x in a])
    torch.testing.assert_close(s.spread, per_sample_std.mean())
    assert 0 <= s.near_zero + s.near_one <= 1 + 1e-12  # two fractions of one count, rounded separately


@FAST
@given(shape=shapes, seed=seeds)
def test_flipping_the_mask_swaps_the_saturated_fractions(shape, seed):
    a = _rand(shape, seed)
    s, f = mask_statistics(a), mask_statistics(1 - a)
    torch.testing.assert_close(f.near_zero, s.near_one)
    torch.testing.assert_close(f.near_one, s.near_zero)
    torch.testing.assert_close(f.mean, 1 - s.mean)
    torch.testing.assert_close(f.spread, s.spread)


def test_half_and_half_mask_has_the_largest_spread():
    a = torch.zeros(2, 1, 6, 6)
    a[..., :3] = 1
    s = mask_statistics(a)
    assert s.spread.item() == pytest.approx(0.5)
    assert s.near_zero.item() == pytest.approx(0.5) and s.near_one.item() == pytest.approx(0.5)


def test_no_gradient_and_device_kept():
    a = torch.rand(2, 1, 4, 4, requires_grad=True)
    s = mask_statistics(a)
    assert not any(t.requires_grad for t in s)
    assert all(t.shape == () and t.device == a.device for t in s)


def test_bfloat16_masks_are_measured_in_float32():
    a = torch.rand(2, 1, 4, 4).bfloat16()
    assert mask_statistics(a).mean.dtype == torch.float32


@pytest.mark.parametrize("bad, match", [
    (torch.rand(1, 4, 4), r"attention must have shape \(B, 1, H, W\)"),
    (torch.rand(0, 1, 4, 4), r"at least one mask"),
    (torch.zeros(2, 1, 4, 4, dtype=torch.long), r"floating-point"),
])
def test_bad_masks(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        mask_statistics(bad)


@pytest.mark.parametrize("low, high", [(0.5, 0.5), (0.9, 0.1), (-0.1, 0.5), (0.1, 1.5), (float("nan"), 0.9)])
def test_bad_thresholds(low, high):
    with pytest.raises(ValueError, match=r"low|high"):
        mask_statistics(torch.rand(1, 1, 2, 2), low=low, high=high)
