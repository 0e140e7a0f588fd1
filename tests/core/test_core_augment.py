"""Property tests of the differentiable random views (attngan.augment)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import apply_affine, grayscale, random_affine_params
from attngan.augment import LUMA_WEIGHTS

FAST = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)
sides = st.integers(2, 9)
TIGHT = dict(rtol=1e-10, atol=1e-10)


def _randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _views(n, seed, **kw):
    return random_affine_params(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64, **kw)


@FAST
@given(b=st.integers(1, 3), c=st.integers(1, 3), h=sides, w=sides, seed=seeds)
def test_zero_ranges_give_the_identity_view(b, c, h, w, seed):
    theta = _views(b, seed)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=torch.float64).expand(b, 2, 3))
    x = _randn((b, c, h, w), seed)
    torch.testing.assert_close(apply_affine(x, theta), x, **TIGHT)


@FAST
@given(b=st.integers(1, 4), h=sides, w=sides, seed=seeds)
def test_flip_only_mirrors_or_keeps_each_image(b, h, w, seed):
    theta = _views(b, seed, flip=True)
    out = apply_affine(x := _randn((b, 2, h, w), seed), theta)
    for i in range(b):
        expect = x[i].flip(-1) if theta[i, 0, 0] < 0 else x[i]
        torch.testing.assert_close(out[i], expect, **TIGHT)
    # a mirror undoes itself
    torch.testing.assert_close(apply_affine(out, theta), x, **TIGHT)


@FAST
@given(h=sides, w=st.integers(3, 9), seed=seeds, k=st.integers(1, 2))
def test_a_whole_pixel_shift_moves_columns(h, w, seed, k):
    # shifting the sampling grid by k pixels to the right reads column j + k into column j
    x = _randn((1, 1, h, w), seed)
    theta = torch.tensor([[[1.0, 0, 2 * k / w], [0, 1, 0]]], dtype=torch.float64)
    torch.testing.assert_close(apply_affine(x, theta)[..., : w - k], x[..., k:], **TIGHT)


@FAST
@given(b=st.integers(1, 3), h=sides, w=sides, value=st.floats(-1, 1), seed=seeds,
       shift=st.floats(0, 0.5), zoom=st.floats(0, 1))
def test_a_constant_image_stays_constant(b, h, w, value, seed, shift, zoom):
    x = torch.full((b, 3, h, w), value, dtype=torch.float64)
    out = apply_affine(x, _views(b, seed, max_shift=shift, max_zoom=zoom, flip=True))
    torch.testing.assert_close(out, x, **TIGHT)


@FAST
@given(b=st.integers(1, 3), h=sides, w=sides, seed=seeds, a=st.floats(-2, 2), c=st.floats(-2, 2))
def test_a_view_is_linear_in_the_image(b, h, w, seed, a, c):
    theta = _views(b, seed, max_shift=0.2, max_zoom=0.3, flip=True)
    x, y = _randn((b, 2, h, w), seed), _randn((b, 2, h, w), seed + 1)
    torch.testing.assert_close(apply_affine(a * x + c * y, theta),
                               a * apply_affine(x, theta) + c * apply_affine(y, theta), rtol=1e-9, atol=1e-9)


@FAST
@given(n=st.integers(1, 64), seed=seeds, shift=st.floats(0, 1), zoom=st.floats(0, 3))
def test_drawn_views_stay_within_their_ranges(n, seed, shift, zoom):
    theta = _views(n, seed, max_shift=shift, max_zoom=zoom)
    scale = 1 / theta[:, 1, 1]
    assert bool((scale <= 1 + zoom + 1e-12).all()) and bool((scale >= 1 / (1 + zoom) - 1e-12).all())
    torch.testing.assert_close(theta[:, 0, 0], theta[:, 1, 1])  # no mirror without flip
    assert bool((theta[:, :, 2].abs() <= 2 * shift + 1e-12).all())
    assert torch.equal(theta[:, 0, 1], torch.zeros(n, dtype=torch.float64))
    assert torch.equal(theta, _views(n, seed, max_shift=shift, max_zoom=zoom))  # same seed, same views


def test_views_vary_and_mirror_about_half_the_time():
    theta = _views(4000, 0, max_shift=0.1, max_zoom=0.2, flip=True)
    mirrored = (theta[:, 0, 0] < 0).double().mean().item()
    assert abs(mirrored - 0.5) < 0.05
    assert theta[:, 1, 1].std() > 0.01 and theta[:, 0, 2].std() > 0.01
    assert math.isclose(theta[:, 0, 2].abs().max().item(), 0.2, rel_tol=0.01)


def test_gradcheck_in_the_image():
    x = _randn((2, 2, 5, 6), 3).requires_grad_(True)
    theta = _views(2, 4, max_shift=0.15, max_zoom=0.25, flip=True)
    for mode in ("reflection", "border", "zeros"):
        assert torch.autograd.gradcheck(lambda t: apply_affine(t, theta, padding_mode=mode), (x,))


def test_views_follow_the_image_dtype_and_device():
    x = torch.rand(2, 3, 8, 8)
    out = apply_affine(x, random_affine_params(2, max_shift=0.1, dtype=torch.float64))
    assert out.dtype == torch.float32 and out.shape == x.shape


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(n=0), ValueError, "n must be >= 1"),
    (dict(n=2, max_shift=-0.1), ValueError, "max_shift must lie in [0, 1]"),
    (dict(n=2, max_shift=1.5), ValueError, "max_shift must lie in [0, 1]"),
    (dict(n=2, max_zoom=-1.0), ValueError, "max_zoom must be >= 0"),
    (dict(n=2, max_zoom=float("nan")), ValueError, "max_zoom must be finite"),
    (dict(n=2, flip=1), TypeError, "flip must be a bool"),
    (dict(n=2, dtype=torch.int64), TypeError, "dtype must be a floating dtype"),
    (dict(n=2, generator=3), TypeError, "generator must be a torch.Generator"),
])
def test_bad_view_ranges_are_refused(kwargs, error, words):
    with pytest.raises(error) as info:
        random_affine_params(**kwargs)
    assert words in str(info.value)


def test_bad_inputs_to_apply_are_refused():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"theta must have shape \(B, 2, 3\) = \(2, 2, 3\)"):
        apply_affine(x, torch.zeros(3, 2, 3))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        apply_affine(x.to(torch.uint8), torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        apply_affine(x, torch.zeros(2, 2, 3), padding_mode="wrap")
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\)"):
        apply_affine(x[0], torch.zeros(2, 2, 3))


# --------------------------------------------------------------------------- grayscale


@FAST
@given(b=st.integers(1, 3), h=sides, w=sides, seed=seeds)
def test_grayscale_puts_the_luma_in_every_channel_and_is_idempotent(b, h, w, seed):
    x = _randn((b, 3, h, w), seed)
    out = grayscale(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    luma = sum(wk * x[:, k] for k, wk in enumerate(LUMA_WEIGHTS))
    for c in range(3):
        torch.testing.assert_close(out[:, c], luma, **TIGHT)
    torch.testing.assert_close(grayscale(out), out, **TIGHT)  # a grey image is a fixed point


@FAST
@given(b=st.integers(1, 3), c=st.integers(1, 4), h=sides, w=sides, seed=seeds,
       a=st.floats(-3, 3), k=st.floats(-3, 3))
def test_grayscale_is_linear_for_any_weights(b, c, h, w, seed, a, k):
    weights = torch.rand(c, generator=torch.Generator().manual_seed(seed)).tolist()
    x, y = _randn((b, c, h, w), seed), _randn((b, c, h, w), seed + 1)
    torch.testing.assert_close(grayscale(a * x + k * y, weights), a * grayscale(x, weights) + k * grayscale(y, weights),
                               rtol=1e-9, atol=1e-9)


@FAST
@given(c=st.integers(1, 4), value=st.floats(-1, 1), seed=seeds)
def test_a_constant_grey_image_stays_itself_under_weights_summing_to_one(c, value, seed):
    raw = torch.rand(c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.1
    x = torch.full((2, c, 5, 4), value, dtype=torch.float64)
    torch.testing.assert_close(grayscale(x, (raw / raw.sum()).tolist()), x, **TIGHT)


def test_grayscale_gradcheck():
    x = _randn((2, 3, 4, 5), 0).requires_grad_()
    assert torch.autograd.gradcheck(grayscale, (x,))


def test_bad_inputs_to_grayscale_are_refused():
    with pytest.raises(ValueError, match="default luma weights need 3 channels, x has 1"):
        grayscale(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="2 weights need 2 channels, x has 3"):
        grayscale(torch.rand(2, 3, 4, 4), (0.5, 0.5))
    with pytest.raises(ValueError, match="weights must be finite"):
        grayscale(torch.rand(2, 3, 4, 4), (0.5, float("nan"), 0.5))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        grayscale(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\)"):
        grayscale(torch.rand(3, 4, 4))
