"""Conditional normalisation: film, ConditionalNorm2d and the generator conditioned in its normalisation layers."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attngan import AttentionGenerator, ConditionalNorm2d, film, one_hot

seeds = st.integers(0, 2**31 - 1)


def _randomise_modulation(module, seed, std=0.5):
    """Give every conditional layer a non-zero modulation, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, ConditionalNorm2d):
                for p in (m.scale.weight, m.scale.bias, m.shift.weight, m.shift.bias):
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return module


# ----------------------------------------------------------------------------- film


@settings(max_examples=30, deadline=None, database=None)
@given(b=st.integers(0, 3), c=st.integers(1, 5), h=st.integers(1, 6), w=st.integers(1, 6), seed=seeds)
def test_film_scales_and_shifts_each_channel_of_each_sample(b, c, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    x, scale, shift = torch.randn(b, c, h, w, generator=gen), torch.randn(b, c, generator=gen), \
        torch.randn(b, c, generator=gen)
    out = film(x, scale, shift)
    assert out.shape == x.shape
    for i in range(b):
        for j in range(c):
            torch.testing.assert_close(out[i, j], x[i, j] * (1 + scale[i, j]) + shift[i, j])
    # zero modulation is the identity
    assert torch.equal(film(x, torch.zeros(b, c), torch.zeros(b, c)), x)


def test_film_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)
    args = [torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True)
            for s in ((2, 3, 4, 4), (2, 3), (2, 3))]
    assert torch.autograd.gradcheck(film, args)


@pytest.mark.parametrize("bad, name", [((2, 4), "scale"), ((3, 3), "scale")])
def test_film_names_the_mismatched_argument(bad, name):
    with pytest.raises(ValueError, match=rf"{name} must have shape \(B, C\) = \(2, 3\).*got \({bad[0]}, {bad[1]}\)"):
        film(torch.zeros(2, 3, 4, 4), torch.zeros(*bad), torch.zeros(2, 3))


# ----------------------------------------------------------------------------- ConditionalNorm2d


@settings(max_examples=30, deadline=None, database=None)
@given(b=st.integers(1, 3), c=st.sampled_from([1, 2, 6, 64]), k=st.integers(1, 6), h=st.integers(2, 6),
       w=st.integers(2, 6), norm=st.sampled_from(["instance", "group", "none"]), seed=seeds)
def test_a_fresh_layer_is_the_plain_normalisation_for_every_condition(b, c, k, h, w, norm, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=gen)
    layer = ConditionalNorm2d(c, k, norm=norm)
    plain = {"instance": lambda t: F.instance_norm(t, eps=1e-5),
             "group": lambda t: F.group_norm(t, layer.norm.num_groups, eps=1e-5),
             "none": lambda t: t}[norm](x)
    for labels in (torch.zeros(b, dtype=torch.long), torch.randint(0, k, (b,), generator=gen)):
        torch.testing.assert_close(layer(x, labels), plain, atol=1e-5, rtol=1e-5)


@settings(max_examples=30, deadline=None, database=None)
@given(b=st.integers(1, 3), c=st.integers(1, 8), k=st.integers(2, 6), seed=seeds,
       mix=st.floats(0, 1), norm=st.sampled_from(["instance", "group", "none"]))
def test_soft_codes_mix_the_classes_modulations(b, c, k, seed, mix, norm):
    """Scale and shift are affine in the code: a mixture of two codes gives the mixture of their outputs."""
    gen = torch.Generator().manual_seed(seed)
    layer = _randomise_modulation(ConditionalNorm2d(c, k, norm=norm).double(), seed)
    x = torch.randn(b, c, 4, 5, generator=gen, dtype=torch.float64)
    c1 = one_hot(torch.randint(0, k, (b,), generator=gen), k, dtype=torch.float64)
    c2 = one_hot(torch.randint(0, k, (b,), generator=gen), k, dtype=torch.float64)
    mixed = layer(x, mix * c1 + (1 - mix) * c2)
    torch.testing.assert_close(mixed, mix * layer(x, c1) + (1 - mix) * layer(x, c2))


def test_layer_equals_film_of_the_normalised_features():
    layer = _randomise_modulation(ConditionalNorm2d(6, 4), 1)
    x, labels = torch.randn(3, 6, 5, 5), torch.tensor([0, 3, 1])
    codes = one_hot(labels, 4)
    expected = film(F.instance_norm(x), layer.scale(codes), layer.shift(codes))
    torch.testing.assert_close(layer(x, labels), expected)
    torch.testing.assert_close(layer(x, codes), expected)
    assert "ConditionalNorm2d" in repr(layer) and "num_classes=4" in repr(layer)


def test_layer_gradcheck_float64():
    layer = _randomise_modulation(ConditionalNorm2d(3, 4).double(), 2)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    codes = torch.softmax(torch.randn(2, 4, dtype=torch.float64), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, c: layer(a, c), (x, codes))


def test_every_modulation_parameter_gets_a_gradient_at_initialisation():
    """The maps start at zero, yet they learn: the gradient of a zero weight is not zero."""
    layer = ConditionalNorm2d(4, 3)
    layer(torch.randn(2, 4, 5, 5), torch.tensor([0, 2])).pow(2).mul(torch.randn(2, 4, 5, 5)).sum().backward()
    for p in layer.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("call, match", [
    (lambda m: m(torch.zeros(2, 5, 4, 4), torch.tensor([0, 1])),
     r"features must have 4 channels, got shape \(2, 5, 4, 4\)"),
    (lambda m: m(torch.zeros(2, 4, 4, 4), torch.tensor([0, 1, 2])), r"condition must have one row per sample \(2\)"),
    (lambda m: m(torch.zeros(2, 4, 4, 4), torch.zeros(2, 5)), r"num_classes=3 columns, got shape \(2, 5\)"),
    (lambda m: m(torch.zeros(2, 4, 4), torch.tensor([0, 1])), r"features"),
])
def test_layer_errors_name_the_argument_and_the_shapes(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(ConditionalNorm2d(4, 3))


def test_layer_rejects_bad_settings():
    with pytest.raises(ValueError, match="norm"):
        ConditionalNorm2d(4, 3, norm="batch")
    with pytest.raises(ValueError, match="num_classes"):
        ConditionalNorm2d(4, 0)


# ----------------------------------------------------------------------------- the generator


@settings(max_examples=15, deadline=None, database=None)
@given(seed=seeds, size=st.sampled_from([8, 12, 16]), padding=st.sampled_from(["zeros", "reflect", "replicate"]))
def test_norm_conditioning_reaches_interior_pixels_with_any_padding(seed, size, padding):
    """With the condition in the normalisation layers, pixels far from the border depend on it
    (once the modulation is non-zero, as after training), whatever the padding; with input
    planes and mirrored padding they could not (the constructor refuses that combination)."""
    torch.manual_seed(seed)
    g = _randomise_modulation(AttentionGenerator(base_channels=8, num_residual_blocks=1, condition="norm",
                                                 padding=padding).double(), seed)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
    a, b = g(x, torch.tensor([0])).image, g(x, torch.tensor([4])).image
    inner = slice(size // 4, size - size // 4)
    assert (a - b)[..., inner, inner].abs().max() > 1e-6
    if padding != "zeros":
        with pytest.raises(ValueError, match="would not depend on the condition"):
            AttentionGenerator(base_channels=8, condition="input", padding=padding)


@settings(max_examples=10, deadline=None, database=None)
@given(seed=seeds, padding=st.sampled_from(["zeros", "reflect"]), norm=st.sampled_from(["instance", "group", "none"]))
def test_a_fresh_norm_conditioned_generator_ignores_the_condition(seed, padding, norm):
    """Identity modulation at initialisation: every condition gives the same output until training."""
    torch.manual_seed(seed)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1, condition="norm", padding=padding, norm=norm)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    outs = [g(x, torch.tensor([k, k])) for k in range(5)]
    for out in outs[1:]:
        for got, ref in zip(out, outs[0]):
            torch.testing.assert_close(got, ref)


def test_norm_conditioned_generator_takes_the_image_alone_and_soft_codes():
    g = _randomise_modulation(AttentionGenerator(base_channels=8, num_residual_blocks=1, condition="norm"), 3)
    assert g.encoder[0].in_channels == 3
    assert AttentionGenerator(base_channels=8, num_residual_blocks=1).encoder[0].in_channels == 3 + 5
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    soft = torch.tensor([[0.5, 0.5, 0, 0, 0], [0, 0, 0, 0.25, 0.75]])
    out = g(x, soft)
    assert out.image.shape == (2, 3, 16, 16) and torch.isfinite(out.image).all()
    assert not torch.allclose(out.image, g(x, torch.tensor([0, 3])).image)
    assert sum(isinstance(m, ConditionalNorm2d) for m in g.modules()) == 3 + 2 * 1 + 2
    assert not any(isinstance(m, nn.InstanceNorm2d) and m.affine for m in g.modules())


def test_norm_conditioned_generator_gradcheck_float64():
    g = _randomise_modulation(AttentionGenerator(base_channels=2, num_residual_blocks=1, num_downsamples=1,
                                                 condition="norm", padding="reflect").double(), 4)
    x = (torch.rand(1, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_()
    codes = torch.softmax(torch.randn(1, 5, dtype=torch.float64), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, c: g(a, c).image, (x, codes), atol=1e-5)


def test_norm_conditioned_generator_every_parameter_gets_a_gradient():
    g = _randomise_modulation(AttentionGenerator(base_channels=8, num_residual_blocks=1, condition="norm"), 5)
    out = g(torch.rand(2, 3, 16, 16) * 2 - 1, torch.tensor([1, 4]))
    (out.image.square().sum() + out.attention.sum()).backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_a_residual_block_with_conditional_norms_needs_the_condition():
    from attngan import ResidualBlock

    block = ResidualBlock(4, num_classes=3)
    with pytest.raises(ValueError, match="pass condition"):
        block(torch.zeros(1, 4, 4, 4))
    assert block(torch.zeros(1, 4, 4, 4), torch.tensor([2])).shape == (1, 4, 4, 4)


def test_an_image_of_another_dtype_than_the_weights_is_refused_naming_both():
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    with pytest.raises(TypeError, match=r"image has dtype torch.float64 but the generator's weights are torch.float32"):
        g(torch.zeros(1, 3, 16, 16, dtype=torch.float64), torch.tensor([0]))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast converts, as it should
        assert g(torch.zeros(1, 3, 16, 16, dtype=torch.float64).float(), torch.tensor([0])).image.shape[0] == 1


def test_generator_rejects_an_unknown_condition_mode():
    with pytest.raises(ValueError, match="condition"):
        AttentionGenerator(condition="planes")
