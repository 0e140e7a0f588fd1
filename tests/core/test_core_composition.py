"""Property tests of the attention composition, Eq. (1): x_t = (1 - A) C + A x_s."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import AttentionComposition, compose

FAST = settings(max_examples=25, deadline=None, database=None)

shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6))
seeds = st.integers(0, 2**31 - 1)


def _randn(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _rand(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)


@FAST
@given(shape=shapes, seed=seeds, one_channel=st.booleans())
def test_attention_one_keeps_source_and_zero_takes_color(shape, seed, one_channel):
    b, c, h, w = shape
    source, color = _randn(shape, seed), _randn(shape, seed + 1)
    mask_shape = (b, 1 if one_channel else c, h, w)
    assert torch.equal(compose(torch.ones(mask_shape), color, source), source)
    assert torch.equal(compose(torch.zeros(mask_shape), color, source), color)


@FAST
@given(shape=shapes, seed=seeds, dtype=st.sampled_from([torch.float32, torch.float64]))
def test_output_lies_between_color_and_source(shape, seed, dtype):
    source, color = _randn(shape, seed, dtype), _randn(shape, seed + 1, dtype)
    attention = _rand((shape[0], 1, *shape[2:]), seed + 2, dtype)
    out = compose(attention, color, source)
    assert out.shape == source.shape and out.dtype == dtype
    tol = 1e-6
    assert (out >= torch.minimum(color, source) - tol).all()
    assert (out <= torch.maximum(color, source) + tol).all()
    # and it is the convex combination of Eq. (1)
    torch.testing.assert_close(out, (1 - attention) * color + attention * source)


@FAST
@given(shape=shapes, seed=seeds)
def test_single_channel_mask_equals_repeated_mask(shape, seed):
    b, c, h, w = shape
    source, color = _randn(shape, seed), _randn(shape, seed + 1)
    attention = _rand((b, 1, h, w), seed + 2)
    repeated = attention.repeat(1, c, 1, 1)
    torch.testing.assert_close(compose(attention, color, source), compose(repeated, color, source), rtol=0, atol=0)


@FAST
@given(shape=shapes, seed=seeds)
def test_mixed_dtypes_promote(shape, seed):
    b, c, h, w = shape
    source, color = _randn(shape, seed), _randn(shape, seed + 1)
    attention = _rand((b, 1, h, w), seed + 2).to(torch.bfloat16)
    out = compose(attention, color, source)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, compose(attention.float(), color, source))
    # bf16 colour with fp64 source promotes to fp64
    out64 = compose(attention, color.to(torch.bfloat16), source.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64, compose(attention.double(), color.to(torch.bfloat16).double(), source.double()))


@FAST
@given(shape=shapes, seed=seeds, one_channel=st.booleans())
def test_module_equals_function(shape, seed, one_channel):
    b, c, h, w = shape
    source, color = _randn(shape, seed), _randn(shape, seed + 1)
    attention = _rand((b, 1 if one_channel else c, h, w), seed + 2)
    module = AttentionComposition()
    assert list(module.parameters()) == []
    assert torch.equal(module(attention, color, source), compose(attention, color, source))


def test_gradients_flow_to_all_three_inputs():
    attention = torch.rand(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    color = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    source = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(compose, (attention, color, source))
