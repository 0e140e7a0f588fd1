"""Property tests of total variation and the attention regulariser (Eq. 3)."""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import AttentionRegularizer, TotalVariation, attention_regularizer, total_variation

FAST = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)
shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))
TIGHT = dict(rtol=1e-10, atol=1e-12)


def _randn(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _rand(shape, seed, dtype=torch.float64):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def naive_tv(x, *, squared=True, normalize=False):
    """Per-sample TV with Python loops over plain floats."""
    data = x.tolist()
    out = []
    for sample in data:
        total, pairs = 0.0, 0
        for channel in sample:
            h, w = len(channel), len(channel[0])
            for i in range(h):
                for j in range(w):
                    for di, dj in ((1, 0), (0, 1)):
                        if i + di < h and j + dj < w:
                            d = channel[i + di][j + dj] - channel[i][j]
                            total += d * d if squared else abs(d)
                            pairs += 1
        if normalize:
            total /= max(pairs, 1)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


# ----------------------------------------------------------------------------- total variation


@FAST
@given(shape=shapes, value=st.floats(-10, 10), squared=st.booleans(), normalize=st.booleans())
def test_tv_is_zero_on_constant_images(shape, value, squared, normalize):
    x = torch.full(shape, value, dtype=torch.float64)
    tv = total_variation(x, squared=squared, normalize=normalize, reduction="none")
    assert tv.shape == (shape[0],)
    assert torch.equal(tv, torch.zeros(shape[0], dtype=torch.float64))


@FAST
@given(shape=shapes, seed=seeds, shift=st.floats(-100, 100), squared=st.booleans(), normalize=st.booleans())
def test_tv_is_unchanged_by_adding_a_constant(shape, seed, shift, squared, normalize):
    x = _randn(shape, seed)
    kw = dict(squared=squared, normalize=normalize, reduction="none")
    torch.testing.assert_close(total_variation(x + shift, **kw), total_variation(x, **kw), rtol=1e-8, atol=1e-8)


@FAST
@given(shape=shapes, seed=seeds, squared=st.booleans(), normalize=st.booleans())
def test_tv_equals_naive_loop(shape, seed, squared, normalize):
    x = _randn(shape, seed)
    got = total_variation(x, squared=squared, normalize=normalize, reduction="none")
    torch.testing.assert_close(got, naive_tv(x, squared=squared, normalize=normalize), **TIGHT)


@FAST
@given(shape=shapes, seed=seeds, squared=st.booleans(), normalize=st.booleans())
def test_tv_per_sample_equals_stacked_slices(shape, seed, squared, normalize):
    x = _randn(shape, seed)
    kw = dict(squared=squared, normalize=normalize)
    batched = total_variation(x, reduction="none", **kw)
    stacked = torch.stack([total_variation(x[i : i + 1], reduction="none", **kw)[0] for i in range(shape[0])])
    torch.testing.assert_close(batched, stacked, **TIGHT)


@FAST
@given(shape=shapes, seed=seeds, squared=st.booleans(), normalize=st.booleans())
def test_tv_reductions_are_consistent_and_non_negative(shape, seed, squared, normalize):
    x = _randn(shape, seed)
    kw = dict(squared=squared, normalize=normalize)
    none = total_variation(x, reduction="none", **kw)
    mean = total_variation(x, reduction="mean", **kw)
    total = total_variation(x, reduction="sum", **kw)
    assert mean.ndim == 0 and total.ndim == 0
    assert (none >= 0).all()
    torch.testing.assert_close(mean, none.mean(), **TIGHT)
    torch.testing.assert_close(total, none.sum(), **TIGHT)
    torch.testing.assert_close(total, mean * shape[0], **TIGHT)
    torch.testing.assert_close(total_variation(x, **kw), mean, **TIGHT)  # default reduction is mean


def test_tv_known_values():
    x = torch.tensor([[[[0.0, 1.0], [0.0, 3.0]]]])
    # vertical: 0, 2; horizontal: 1, 3
    assert total_variation(x).item() == pytest.approx(0 + 4 + 1 + 9)
    assert total_variation(x, squared=False).item() == pytest.approx(0 + 2 + 1 + 3)
    assert total_variation(x, squared=False, normalize=True).item() == pytest.approx(6 / 4)


def test_tv_normalized_is_resolution_independent_for_a_ramp():
    # a horizontal ramp with unit steps: each horizontal pair differs by 1, vertical by 0
    small = torch.arange(4.0).repeat(1, 1, 4, 1)
    large = torch.arange(16.0).repeat(1, 1, 16, 1)
    s = total_variation(small, squared=False, normalize=True)
    big = total_variation(large, squared=False, normalize=True)
    assert s.item() == pytest.approx(12 / 24)
    assert big.item() == pytest.approx(240 / 480)


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_tv_gradcheck_float64(squared, normalize, reduction):
    x = _randn((2, 2, 3, 4), 0).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: total_variation(t, squared=squared, normalize=normalize, reduction=reduction), (x,)
    )


@FAST
@given(shape=shapes, seed=seeds, squared=st.booleans(), normalize=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_tv_module_equals_function(shape, seed, squared, normalize, reduction):
    x = _randn(shape, seed)
    module = TotalVariation(squared=squared, normalize=normalize, reduction=reduction)
    assert torch.equal(module(x), total_variation(x, squared=squared, normalize=normalize, reduction=reduction))
    assert repr(module) == f"TotalVariation(squared={squared}, normalize={normalize}, reduction={reduction!r})"


@pytest.mark.parametrize("bad", ["avg", "MEAN", None, "batchmean"])
def test_tv_unknown_reduction_raises(bad):
    x = torch.rand(1, 1, 2, 2)
    with pytest.raises(ValueError,
                       match=r"reduction must be one of 'mean', 'sum', 'none', got " + re.escape(repr(bad))):
        total_variation(x, reduction=bad)
    with pytest.raises(ValueError, match="reduction"):
        TotalVariation(reduction=bad)


# ----------------------------------------------------------------------------- attention regulariser


masks = st.tuples(st.integers(1, 4), st.just(1), st.integers(1, 6), st.integers(1, 6))


@FAST
@given(shape=masks, seed=seeds, lambda_tv=st.floats(0.0, 10.0))
def test_paper_form_is_tv_squared_plus_root_mean_square(shape, seed, lambda_tv):
    a = _rand(shape, seed)
    got = attention_regularizer(a, lambda_tv=lambda_tv, form="paper")
    per_sample = lambda_tv * naive_tv(a, squared=True) + a.flatten(1).pow(2).mean(dim=1).sqrt()
    torch.testing.assert_close(got, per_sample.mean(), **TIGHT)
    torch.testing.assert_close(
        attention_regularizer(a, lambda_tv=lambda_tv, form="paper", reduction="none"), per_sample, **TIGHT
    )
    torch.testing.assert_close(
        attention_regularizer(a, lambda_tv=lambda_tv, form="paper", reduction="sum"), per_sample.sum(), **TIGHT
    )


@FAST
@given(shape=masks, seed=seeds, lambda_tv=st.floats(0.0, 10.0))
def test_euclidean_form_is_tv_squared_plus_per_sample_l2(shape, seed, lambda_tv):
    a = _rand(shape, seed)
    got = attention_regularizer(a, lambda_tv=lambda_tv, form="euclidean", reduction="none")
    per_sample = lambda_tv * naive_tv(a, squared=True) + a.flatten(1).norm(dim=1)
    torch.testing.assert_close(got, per_sample, **TIGHT)


@FAST
@given(value=st.floats(0.0, 1.0), form=st.sampled_from(["paper", "released"]))
def test_constant_mask_gives_the_same_value_at_every_resolution(value, form):
    values = [attention_regularizer(torch.full((2, 1, s, s), value, dtype=torch.float64), form=form)
              for s in (64, 128, 224)]
    for v in values[1:]:
        torch.testing.assert_close(v, values[0], **TIGHT)
    torch.testing.assert_close(values[0], torch.tensor(value, dtype=torch.float64), **TIGHT)


@pytest.mark.parametrize("size", [64, 128, 224])
def test_euclidean_form_grows_with_the_square_root_of_the_pixel_count(size):
    half = torch.full((1, 1, size, size), 0.5, dtype=torch.float64)
    ratio = attention_regularizer(half, form="euclidean") / attention_regularizer(half, form="paper")
    assert ratio.item() == pytest.approx(size)  # sqrt(H * W) for a square one-channel mask


@FAST
@given(shape=masks, seed=seeds)
def test_paper_form_equals_released_norm_on_binary_masks(shape, seed):
    a = (_rand(shape, seed) > 0.5).double()
    paper = attention_regularizer(a, lambda_tv=0.0, form="paper", reduction="none")
    released = attention_regularizer(a, lambda_tv=0.0, form="released", reduction="none")
    torch.testing.assert_close(paper, released.sqrt(), **TIGHT)  # sqrt(mean(A^2)) = sqrt(mean(A)) for A in {0, 1}


@FAST
@given(shape=masks, seed=seeds, lambda_tv=st.floats(0.0, 10.0))
def test_released_form_is_tv_abs_plus_mean(shape, seed, lambda_tv):
    a = _rand(shape, seed)
    got = attention_regularizer(a, lambda_tv=lambda_tv, form="released")
    per_sample = lambda_tv * naive_tv(a, squared=False) + a.flatten(1).mean(dim=1)
    torch.testing.assert_close(got, per_sample.mean(), **TIGHT)
    torch.testing.assert_close(
        attention_regularizer(a, lambda_tv=lambda_tv, form="released", reduction="none"), per_sample, **TIGHT
    )


@FAST
@given(shape=masks, seed=seeds)
def test_default_lambda_tv_per_form(shape, seed):
    a = _rand(shape, seed) * 1000  # large TV so that the lambda_tv term is visible
    paper = attention_regularizer(a)
    torch.testing.assert_close(paper, attention_regularizer(a, lambda_tv=5e-5, form="paper"), **TIGHT)
    released = attention_regularizer(a, form="released")
    # 5e-5 for every form: times the trainer's lambda_att = 2 it is the released code's 1e-4
    torch.testing.assert_close(released, attention_regularizer(a, lambda_tv=5e-5, form="released"), **TIGHT)
    if shape[2] * shape[3] > 1:
        assert not torch.allclose(paper, attention_regularizer(a, lambda_tv=1e-4, form="paper"), rtol=1e-12, atol=0)
        assert not torch.allclose(released, attention_regularizer(a, lambda_tv=1e-4, form="released"),
                                  rtol=1e-12, atol=0)
    assert AttentionRegularizer().lambda_tv == 5e-5
    assert AttentionRegularizer(form="released").lambda_tv == 5e-5
    assert AttentionRegularizer(lambda_tv=2, form="released").lambda_tv == 2.0


def test_regularizer_known_value_pulls_away_from_one():
    ones = torch.ones(2, 1, 3, 4)
    assert attention_regularizer(ones).item() == pytest.approx(1.0)
    assert attention_regularizer(ones, form="euclidean").item() == pytest.approx(12**0.5)
    assert attention_regularizer(ones, form="released").item() == pytest.approx(1.0)
    # the norm term decreases as the mask moves away from 1
    assert attention_regularizer(ones * 0.5) < attention_regularizer(ones)


@pytest.mark.parametrize("form", ["paper", "euclidean", "released"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_regularizer_gradcheck_float64(form, reduction):
    a = (_rand((2, 1, 3, 4), 1) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: attention_regularizer(t, lambda_tv=0.3, form=form, reduction=reduction), (a,)
    )


@FAST
@given(shape=masks, seed=seeds, form=st.sampled_from(["paper", "euclidean", "released"]),
       reduction=st.sampled_from(["mean", "sum", "none"]), lambda_tv=st.none() | st.floats(0, 1))
def test_regularizer_module_equals_function(shape, seed, form, reduction, lambda_tv):
    a = _rand(shape, seed)
    module = AttentionRegularizer(lambda_tv=lambda_tv, form=form, reduction=reduction)
    expected = attention_regularizer(a, lambda_tv=lambda_tv, form=form, reduction=reduction)
    assert torch.equal(module(a), expected)
    assert f"form={form!r}" in repr(module) and f"reduction={reduction!r}" in repr(module)


@FAST
@given(b=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6), seed=seeds,
       form=st.sampled_from(["paper", "released"]))
def test_regularizer_on_non_contiguous_input(b, h, w, seed, form):
    base = _rand((b, 1, w, h), seed)
    view = base.transpose(2, 3)  # (B, 1, H, W), not contiguous when H, W > 1
    assert view.shape == (b, 1, h, w)
    expected = attention_regularizer(view.contiguous(), form=form, reduction="none")
    torch.testing.assert_close(attention_regularizer(view, form=form, reduction="none"), expected, **TIGHT)
    torch.testing.assert_close(
        total_variation(view, reduction="none"), total_variation(view.contiguous(), reduction="none"), **TIGHT
    )


@pytest.mark.parametrize("bad", ["Paper", "stargan", ""])
def test_regularizer_unknown_form_raises(bad):
    with pytest.raises(ValueError,
                       match=r"form must be one of 'paper', 'euclidean', 'released', got " + re.escape(repr(bad))):
        attention_regularizer(torch.rand(1, 1, 2, 2), form=bad)
    with pytest.raises(ValueError, match="form must be one of"):
        AttentionRegularizer(form=bad)


def test_regularizer_unknown_reduction_raises():
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'avg'"):
        attention_regularizer(torch.rand(1, 1, 2, 2), reduction="avg")
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'avg'"):
        AttentionRegularizer(reduction="avg")


@pytest.mark.parametrize("bad", [-1e-5, float("nan"), float("inf")])
def test_regularizer_rejects_bad_lambda_tv(bad):
    with pytest.raises(ValueError, match=r"lambda_tv must be a finite number >= 0, got"):
        attention_regularizer(torch.rand(1, 1, 2, 2), lambda_tv=bad)
    with pytest.raises(ValueError, match=r"lambda_tv must be a finite number >= 0, got"):
        AttentionRegularizer(lambda_tv=bad)
    with pytest.raises(TypeError, match=r"lambda_tv must be a float, got str"):
        attention_regularizer(torch.rand(1, 1, 2, 2), lambda_tv="1e-4")


@pytest.mark.parametrize("fn", [total_variation, attention_regularizer])
def test_empty_batch(fn):
    empty = torch.rand(0, 1, 4, 4)
    assert fn(empty, reduction="sum").item() == 0.0
    assert fn(empty, reduction="none").shape == (0,)
    with pytest.raises(ValueError, match="empty batch"):
        fn(empty)
