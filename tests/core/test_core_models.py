"""AttentionGenerator and MultiHeadCritic: shapes, ranges, layouts, precision and gradients."""

import math

import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from torch import nn

from attngan import (
    AttentionGenerator,
    CriticOutput,
    GeneratorOutput,
    MultiHeadCritic,
    ResidualBlock,
    attention_regularizer,
    classification_loss,
    compose,
    gradient_penalty,
    one_hot,
    sample_target_labels,
    wgan_critic_loss,
    wgan_generator_loss,
)

seeds = st.integers(0, 2**31 - 1)
NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def _images(b, c, h, w, seed):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _trunk_convs(critic):
    return [m for m in critic.trunk if isinstance(m, nn.Conv2d)]


# ----------------------------------------------------------------------------- generator


@st.composite
def generator_cases(draw):
    num_downsamples = draw(st.integers(0, 3))
    m = 2**num_downsamples
    sizes = [s for s in range(4, 33) if s % m == 0]
    h, w = draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes))
    norm = draw(st.sampled_from(["instance", "group", "none"]))
    if norm != "none":
        # a 1x1 bottleneck cannot be instance-normalised, nor group-normalised with one channel
        # per group: such sizes are rejected (see test_generator_rejects_a_one_pixel_bottleneck)
        assume((h // m) * (w // m) >= 2)
    condition = draw(st.sampled_from(["input", "norm"]))
    config = dict(
        condition=condition,
        color=draw(st.sampled_from(["absolute", "residual"])),
        image_channels=draw(st.integers(1, 4)),
        num_classes=draw(st.integers(2, 6)),
        base_channels=draw(st.sampled_from([2, 4, 6, 8])),  # 6 -> 48 channels: groups must divide
        num_downsamples=num_downsamples,
        num_residual_blocks=draw(st.integers(0, 2)),
        max_channels=draw(st.sampled_from([4, 16, 48, 1024])),
        norm=norm,
        upsample=draw(st.sampled_from(["transpose", "nearest"])),
        padding=(draw(st.sampled_from(["zeros", "reflect", "replicate"]))
                 if norm != "instance" or condition == "norm" else "zeros"),
    )
    width = min(config["base_channels"], config["max_channels"])
    if condition == "input" and norm == "group" and math.gcd(32, width) == width:
        # one channel per group: border padding refused with input planes
        config["padding"] = "zeros"
    if config["padding"] == "reflect":  # mirrors up to 3 pixels at full size and 1 at the bottleneck
        assume(min(h, w) >= 4 and min(h, w) // m >= 2)
    return config, draw(st.integers(1, 2)), h, w, draw(seeds)


def _cfg(**kw):
    base = dict(image_channels=3, num_classes=5, base_channels=4, num_downsamples=2, num_residual_blocks=1,
                max_channels=1024, norm="instance", upsample="transpose")
    return {**base, **kw}


@settings(max_examples=25, deadline=None, database=None)
@example(case=(_cfg(base_channels=6, num_downsamples=3, norm="group", upsample="nearest"), 2, 8, 24, 0))
@example(case=(_cfg(image_channels=1, num_classes=2), 1, 4, 8, 1))  # 1x2 bottleneck
@example(case=(_cfg(num_downsamples=0, num_residual_blocks=0, image_channels=4, num_classes=6), 2, 5, 7, 2))
@given(case=generator_cases())
def test_generator_outputs_for_any_valid_configuration(case):
    config, b, h, w, seed = case
    torch.manual_seed(seed)
    g = AttentionGenerator(**config)
    c, k = config["image_channels"], config["num_classes"]
    x = _images(b, c, h, w, seed)
    labels = torch.randint(0, k, (b,), generator=torch.Generator().manual_seed(seed))
    out = g(x, labels)
    assert isinstance(out, GeneratorOutput) and isinstance(out, tuple)
    assert out._fields == ("image", "attention", "color")
    assert out[0] is out.image and out[1] is out.attention and out[2] is out.color
    assert out.image.shape == (b, c, h, w)
    assert out.attention.shape == (b, 1, h, w)
    assert out.color.shape == (b, c, h, w)
    assert out.attention.min() >= 0 and out.attention.max() <= 1
    assert out.color.min() >= -1 and out.color.max() <= 1
    assert torch.isfinite(out.image).all()
    assert torch.equal(out.image, compose(out.attention, out.color, x))
    # labels and their one-hot codes condition identically
    by_codes = g(x, one_hot(labels, k))
    for a, b_ in zip(out, by_codes):
        assert torch.equal(a, b_)
    features = g.forward_features(x, labels)
    assert features.shape == (b, min(config["base_channels"], config["max_channels"]), h, w)
    assert g.size_multiple == 2 ** config["num_downsamples"]


@pytest.mark.parametrize(
    "config, size, ok",
    [
        (dict(norm="instance"), (4, 4), False),
        (dict(norm="instance"), (4, 8), True),
        (dict(norm="instance", num_downsamples=0), (1, 1), False),
        (dict(norm="group"), (4, 4), False),  # bottleneck width 16: one channel per group
        (dict(norm="group", base_channels=16), (4, 4), True),  # width 64: two channels per group
        (dict(norm="group", base_channels=6), (4, 4), True),  # width 24: 8 groups of 3
        (dict(norm="none"), (4, 4), True),
    ],
)
def test_generator_rejects_a_one_pixel_bottleneck_only_when_it_cannot_normalise_it(config, size, ok):
    config = {"base_channels": 4, "num_residual_blocks": 1, **config}
    g = AttentionGenerator(**config)
    x = torch.zeros(2, 3, *size)
    if ok:
        out = g(x, torch.tensor([0, 1]))
        assert out.image.shape == x.shape and torch.isfinite(out.image).all()
    else:
        with pytest.raises(ValueError, match=r"image must be larger than \d+x\d+ \(2 \*\* num_downsamples\)"):
            g(x, torch.tensor([0, 1]))


def test_group_norm_groups_divide_any_width():
    g = AttentionGenerator(base_channels=6, num_downsamples=3, num_residual_blocks=1, norm="group")
    groups = {m.num_channels: m.num_groups for m in g.modules() if isinstance(m, nn.GroupNorm)}
    assert groups == {6: 2, 12: 4, 24: 8, 48: 16}
    assert all(c % n == 0 for c, n in groups.items())


def test_generator_condition_changes_the_output():
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    x = _images(2, 3, 16, 16, 0)
    a = g(x, torch.tensor([0, 0])).image
    b = g(x, torch.tensor([3, 3])).image
    assert not torch.allclose(a, b)


@settings(max_examples=15, deadline=None, database=None)
@given(seed=seeds, size=st.sampled_from([8, 12, 16, 24]), condition=st.sampled_from(["input", "norm"]),
       bias=st.floats(-3, 3))
def test_residual_colour_starts_as_the_input_whatever_the_masks(seed, size, condition, bias):
    """A fresh residual colour head proposes the input itself, so the output is the input for any mask."""
    torch.manual_seed(seed)
    g = AttentionGenerator(base_channels=4, num_residual_blocks=1, condition=condition, color="residual",
                           attention_bias=bias)
    x = _images(2, 3, size, size, seed)
    x[0, 0, 0, 0], x[1, 2, -1, -1] = 1.0, -1.0  # the ends of the range, whose atanh is infinite
    out = g(x, torch.tensor([0, 4]))
    torch.testing.assert_close(out.color, x, rtol=0, atol=2e-3)  # the ends come back as +-(1 - 1e-3)
    torch.testing.assert_close(out.image, x, rtol=0, atol=2e-3)
    inner = (x.abs() < 0.99)
    torch.testing.assert_close(out.image[inner], x[inner], rtol=1e-5, atol=1e-5)
    assert 0 < out.attention.min() and out.attention.max() < 1


def test_residual_colour_is_the_head_added_to_the_inputs_inverse_tanh():
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=4, num_residual_blocks=1, color="residual")
    with torch.no_grad():
        g.color_head.weight.normal_(0, 0.1)
        g.color_head.bias.normal_(0, 0.1)
    x, labels = _images(2, 3, 16, 16, 1), torch.tensor([1, 3])
    head = g.color_head(g.forward_features(x, labels))
    out = g(x, labels)
    torch.testing.assert_close(out.color, torch.tanh(head + torch.atanh(x.clamp(-0.999, 0.999))))
    assert (out.color - x).abs().max() > 0.05  # the head edits the proposal
    # the absolute proposal of the same head ignores the input's colours
    plain = AttentionGenerator(base_channels=4, num_residual_blocks=1)
    plain.load_state_dict(g.state_dict())
    torch.testing.assert_close(plain(x, labels).color, torch.tanh(head))


def test_residual_colour_generator_gradcheck_float64():
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=2, num_residual_blocks=1, num_downsamples=1, condition="norm",
                           color="residual").double()
    with torch.no_grad():
        g.color_head.weight.normal_(0, 0.1)
    x = (torch.rand(1, 3, 8, 8, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    codes = torch.softmax(torch.randn(1, 5, dtype=torch.float64), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, c: g(a, c).image, (x, codes), atol=1e-5)


def test_generator_samples_are_independent():
    # instance norm is per sample: a sample's output does not depend on the rest of the batch
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    x = _images(3, 3, 16, 16, 1)
    labels = torch.tensor([0, 2, 4])
    full = g(x, labels).image
    single = g(x[1:2], labels[1:2]).image
    torch.testing.assert_close(full[1:2], single, rtol=1e-5, atol=1e-5)


def test_generator_default_is_the_paper_architecture():
    g = AttentionGenerator()
    assert isinstance(g.encoder[0], nn.Conv2d) and g.encoder[0].kernel_size == (7, 7)
    assert g.encoder[0].in_channels == 3 + 5 and g.encoder[0].out_channels == 64
    blocks = [m for m in g.bottleneck if isinstance(m, ResidualBlock)]
    assert len(blocks) == 6 and blocks[0].body[0].in_channels == 256
    assert any(isinstance(m, nn.InstanceNorm2d) for m in g.modules())
    assert g.color_head.kernel_size == (7, 7) and g.attention_head.out_channels == 1
    assert g.size_multiple == 4


# ----------------------------------------------------------------------------- critic


@settings(max_examples=20, deadline=None, database=None)
@example(h=17, w=33, square=False, image_channels=3, num_classes=5, base_channels=2, max_channels=1024, seed=0)
@example(h=96, w=95, square=False, image_channels=1, num_classes=2, base_channels=4, max_channels=8, seed=1)
@example(h=80, w=80, square=True, image_channels=4, num_classes=6, base_channels=1, max_channels=2, seed=2)
@given(
    h=st.integers(16, 96),
    w=st.integers(16, 96),
    square=st.booleans(),
    image_channels=st.integers(1, 4),
    num_classes=st.integers(2, 6),
    base_channels=st.sampled_from([1, 2, 4]),
    max_channels=st.sampled_from([2, 4, 8, 1024]),
    seed=seeds,
)
def test_critic_shapes_for_any_size(h, w, square, image_channels, num_classes, base_channels, max_channels, seed):
    if square:
        w = h
    size = h if square else (h, w)
    d = MultiHeadCritic(
        size, image_channels=image_channels, num_classes=num_classes, base_channels=base_channels,
        max_channels=max_channels,
    )
    convs = _trunk_convs(d)
    n = len(convs)
    short = min(h, w)
    # layers are added until the feature map is at most 4 pixels on its shorter side
    assert short // 2**n <= 4 < short // 2 ** (n - 1)
    assert d.feature_size == (h // 2**n, w // 2**n)
    for i, conv in enumerate(convs):
        assert conv.out_channels == min(base_channels * 2**i, max_channels) <= max_channels
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2)
    assert d.feature_channels == convs[-1].out_channels
    assert not any(isinstance(m, NORM_TYPES) for m in d.modules())
    out = d(_images(2, image_channels, h, w, seed))
    assert isinstance(out, CriticOutput) and out._fields == ("realness", "logits")
    assert out.realness.shape == (2, 1, *d.feature_size)
    assert out.logits.shape == (2, num_classes)
    assert d.forward_features(_images(1, image_channels, h, w, seed)).shape == (1, d.feature_channels, *d.feature_size)


@pytest.mark.parametrize("size, layers, feature", [(16, 2, 4), (32, 3, 4), (64, 4, 4), (128, 5, 4), (224, 6, 3)])
def test_critic_derived_number_of_layers(size, layers, feature):
    d = MultiHeadCritic(size, base_channels=1, max_channels=4)
    assert len(_trunk_convs(d)) == layers
    assert d.feature_size == (feature, feature)
    out = d(torch.randn(1, 3, size, size))
    assert out.realness.shape == (1, 1, feature, feature)
    assert out.logits.shape == (1, 5)


def test_critic_default_widths_are_capped():
    with torch.device("meta"):
        d = MultiHeadCritic(224)
        capped = MultiHeadCritic(224, max_channels=256)
    assert [c.out_channels for c in _trunk_convs(d)] == [64, 128, 256, 512, 1024, 1024]
    assert [c.out_channels for c in _trunk_convs(capped)] == [64, 128, 256, 256, 256, 256]


def test_released_acgan_critic():
    with torch.device("meta"):  # 179M parameters: check the structure without allocating them
        d = MultiHeadCritic.released_acgan()
        out = d(torch.empty(1, 3, 224, 224))
    convs = _trunk_convs(d)
    widths = [64, 128, 256, 512, 1024, 2048, 4096]
    assert len(convs) == 7
    assert [c.out_channels for c in convs] == widths
    assert d.feature_size == (1, 1)
    assert not any(isinstance(m, NORM_TYPES) for m in d.modules())
    expected = 0
    for cin, cout in zip([3] + widths[:-1], widths):
        expected += cin * cout * 16 + cout  # 4x4 convolutions with bias
    expected += 4096 * 9  # 3x3 realness head, no bias
    expected += 4096 * 5  # 1x1 classifier head, no bias
    assert sum(p.numel() for p in d.parameters()) == expected
    assert out.realness.shape == (1, 1, 1, 1) and out.logits.shape == (1, 5)
    with torch.device("meta"):
        small = MultiHeadCritic.released_acgan(128, num_classes=3)
    assert small.feature_size == (1, 1) and small.classifier_head.out_channels == 3


def test_critic_samples_are_independent():
    torch.manual_seed(0)
    d = MultiHeadCritic(32, base_channels=4)
    x = _images(3, 3, 32, 32, 2)
    full = d(x)
    single = d(x[2:3])
    torch.testing.assert_close(full.realness[2:3], single.realness, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(full.logits[2:3], single.logits, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- layouts and precision


def _small_pair(seed=0):
    torch.manual_seed(seed)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    d = MultiHeadCritic(32, base_channels=8)
    return g, d


def test_channels_last_equals_contiguous():
    g, d = _small_pair()
    x = _images(2, 3, 32, 32, 3)
    labels = torch.tensor([1, 4])
    xcl = x.contiguous(memory_format=torch.channels_last)
    ref_g, ref_d = g(x, labels), d(x)
    for model_layout in (False, True):
        if model_layout:
            g = g.to(memory_format=torch.channels_last)
            d = d.to(memory_format=torch.channels_last)
        for got, ref in zip(g(xcl, labels), ref_g):
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
        for got, ref in zip(d(xcl), ref_d):
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_forward_is_finite_and_close():
    g, d = _small_pair()
    x = _images(2, 3, 32, 32, 4)
    labels = torch.tensor([0, 3])
    ref_g, ref_d = g(x, labels), d(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low_g, low_d = g(x, labels), d(x)
    assert low_g.image.dtype == torch.float32  # composition promotes to the input's dtype
    for got, ref in zip(low_g, ref_g):
        assert got.shape == ref.shape and torch.isfinite(got).all()
        torch.testing.assert_close(got.float(), ref, rtol=0.05, atol=0.05)
    assert low_g.attention.min() >= 0 and low_g.attention.max() <= 1
    for got, ref in zip(low_d, ref_d):
        assert got.shape == ref.shape and torch.isfinite(got).all()
        assert (got.float() - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3


# ----------------------------------------------------------------------------- one training step


def _assert_all_grads_finite(module, what):
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f"{what} parameters without gradient: {missing}"
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"{what} parameters with non-finite gradient: {bad}"
    assert any(p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize(
    "norm, upsample", [("instance", "transpose"), ("group", "nearest"), ("none", "transpose")]
)
def test_every_parameter_gets_a_finite_gradient_in_a_training_step(norm, upsample):
    torch.manual_seed(0)
    k = 4
    g = AttentionGenerator(num_classes=k, base_channels=8, num_residual_blocks=1, norm=norm, upsample=upsample)
    d = MultiHeadCritic(16, num_classes=k, base_channels=8)
    x = _images(3, 3, 16, 16, 5)
    source = torch.tensor([0, 1, 3])
    target = sample_target_labels(source, k, generator=torch.Generator().manual_seed(0))

    # critic step
    fake = g(x, target).image.detach()
    real_out, fake_out = d(x), d(fake)
    loss_d = (
        wgan_critic_loss(real_out.realness, fake_out.realness)
        + 10 * gradient_penalty(d, x, fake, generator=torch.Generator().manual_seed(1))
        + classification_loss(real_out.logits, source)
    )
    loss_d.backward()
    assert torch.isfinite(loss_d)
    _assert_all_grads_finite(d, "critic")
    assert all(p.grad is None for p in g.parameters())  # fakes were detached

    # generator step
    d.zero_grad(set_to_none=True)
    out = g(x, target)
    scores = d(out.image)
    loss_g = (
        wgan_generator_loss(scores.realness)
        + attention_regularizer(out.attention)
        + classification_loss(scores.logits, target)
    )
    loss_g.backward()
    assert torch.isfinite(loss_g)
    _assert_all_grads_finite(g, "generator")


# ----------------------------------------------------------------------------- faster forms, same results


def test_generator_heads_in_one_convolution_equal_the_two_heads():
    """The forward runs both heads as one convolution; it equals calling each head."""
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1).double()
    x, labels = _images(2, 3, 16, 16, 7).double(), torch.tensor([2, 0])
    out = g(x, labels)
    features = g.forward_features(x, labels)
    color, attention = torch.tanh(g.color_head(features)), torch.sigmoid(g.attention_head(features))
    torch.testing.assert_close(out.color, color, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.attention, attention, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.image, compose(attention, color, x), rtol=1e-12, atol=1e-12)
    # gradients reach both heads' weights and biases through the joint convolution
    out.image.sum().backward()
    for head in (g.color_head, g.attention_head):
        assert head.weight.grad is not None and head.bias.grad is not None
        assert head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
def test_generator_heads_in_one_convolution_with_border_padding(padding):
    """Mirrored or repeated padding, applied once for both heads, equals each head padding its own input."""
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1, padding=padding, norm="none").double()
    x, labels = _images(2, 3, 16, 16, 7).double(), torch.tensor([2, 0])
    out = g(x, labels)
    features = g.forward_features(x, labels)
    torch.testing.assert_close(out.color, torch.tanh(g.color_head(features)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.attention, torch.sigmoid(g.attention_head(features)), rtol=1e-12, atol=1e-12)
    convs = [m for m in g.modules() if type(m) is torch.nn.Conv2d]
    assert convs and all(m.padding_mode == padding for m in convs)
    # the condition matters without normalisation
    assert not torch.allclose(g(x, torch.tensor([4, 4])).image, g(x, torch.tensor([0, 0])).image)


@settings(max_examples=20, deadline=None, database=None)
@given(seed=seeds, size=st.integers(8, 24), mode=st.sampled_from(["reflect", "replicate"]),
       norm=st.sampled_from(["instance", "group"]))
def test_normalisation_erases_a_constant_condition_unless_zero_padding_cuts_it(seed, size, mode, norm):
    """Why the generator refuses border padding with per-channel normalisation: the first layer,
    conditioned by constant planes, gives the same normalised features for every condition, except
    through zero padding's border."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, size, size, generator=gen, dtype=torch.float64) * 2 - 1
    planes = [torch.zeros(2, 5, size, size, dtype=torch.float64) for _ in range(2)]
    planes[0][:, 1], planes[1][:, 4] = 1.0, 1.0  # two different one-hot conditions
    for padding_mode, erased in ((mode, True), ("zeros", False)):
        conv = torch.nn.Conv2d(8, 8, 7, padding=3, padding_mode=padding_mode).double()
        normalise = (torch.nn.InstanceNorm2d(8, affine=True) if norm == "instance"
                     else torch.nn.GroupNorm(8, 8)).double()  # one channel per group
        a, b = (normalise(conv(torch.cat([x, p], 1))) for p in planes)
        assert torch.allclose(a, b, atol=1e-9) == erased
    with pytest.raises(ValueError, match="would not depend on the condition"):
        AttentionGenerator(padding=mode, norm=norm, base_channels=8)
    # groups of several channels keep the differences between the channels' constants
    g = AttentionGenerator(padding=mode, norm="group", base_channels=64, num_residual_blocks=0)
    x32 = x[:1, :, :8, :8].float()
    assert not torch.allclose(g(x32, torch.tensor([1])).image, g(x32, torch.tensor([4])).image)


def test_generator_heads_with_hooks_are_called_one_by_one():
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    x, labels = _images(2, 3, 16, 16, 7), torch.tensor([2, 0])
    ref = g(x, labels)
    seen = []
    handle = g.attention_head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        out = g(x, labels)
    finally:
        handle.remove()
    assert seen == [torch.Size([2, 1, 16, 16])]
    for got, want in zip(out, ref):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size, stride, padding", [(8, 2, 1), (7, 2, 1), (4, 1, 1), (5, 2, 0)])
def test_patch_convolution_equals_conv2d(channels_last, size, stride, padding):
    """The critic's deep layers multiply patches by weights on the CPU: values,
    gradients and second derivatives (the penalty's double backward) of
    ``nn.Conv2d``, in either memory format, for an empty batch too."""
    from attngan.critic import _PatchConv2d

    torch.manual_seed(0)
    conv = _PatchConv2d(6, 5, 4 if stride == 2 else 3, stride=stride, padding=padding).double()
    x = torch.randn(3, 6, size, size, dtype=torch.float64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = conv.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt).requires_grad_(True)
    ref = nn.Conv2d.forward(conv, x)
    out = conv(x)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(conv, (x,))
    assert torch.autograd.gradgradcheck(conv, (x,))
    (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    (gx_ref,) = torch.autograd.grad(ref.square().sum(), x, create_graph=True)
    torch.testing.assert_close(gx, gx_ref)
    gw = torch.autograd.grad(gx.square().sum(), conv.weight)[0]
    gw_ref = torch.autograd.grad(gx_ref.square().sum(), conv.weight)[0]
    torch.testing.assert_close(gw, gw_ref)
    assert conv(x[:0]).shape == (0, *ref.shape[1:])


@pytest.mark.parametrize(
    "size, patch_layers", [(32, [2]), (64, [3]), (128, [4]), (224, [5]), (96, [4]), ((8, 64), [])]
)
def test_critic_uses_patch_convolutions_only_for_tiny_output_maps(size, patch_layers):
    """Layers with at most 16 output pixels (4x4 at 64 and 128 px, 3x3 at 224)."""
    from attngan.critic import _PatchConv2d

    torch.manual_seed(0)
    d = MultiHeadCritic(size, base_channels=4, max_channels=16)
    convs = _trunk_convs(d)
    assert [i for i, m in enumerate(convs) if isinstance(m, _PatchConv2d)] == patch_layers
    x = _images(2, 3, *d.image_size, 0)
    out = d(x)
    # the same critic with ordinary convolutions
    for m in convs:
        m.__class__ = nn.Conv2d
    ref = d(x)
    torch.testing.assert_close(out.realness, ref.realness, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-5, atol=1e-6)
