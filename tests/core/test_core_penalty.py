"""Property tests of the WGAN-GP gradient penalty (Eq. 2)."""

from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import (
    CriticOutput,
    MultiHeadCritic,
    gradient_norm_penalty,
    gradient_penalty,
    random_interpolates,
    select_head,
)

FAST = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)
shapes = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5))
TIGHT = dict(rtol=1e-10, atol=1e-12)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(shape, seed, scale=1.0):
    return torch.randn(shape, generator=_gen(seed), dtype=torch.float64) * scale


def _linear(w, b=0.0):
    """f(x) = <w, x> + b per sample, scores of shape (B,)."""
    return lambda x: (x * w).flatten(1).sum(1) + b


class Heads(NamedTuple):
    realness: torch.Tensor
    logits: torch.Tensor


@FAST
@given(shape=shapes, seed=seeds, scale=st.floats(0.01, 10.0), bias=st.floats(-5, 5))
def test_linear_critic_penalty_is_norm_of_w_minus_one_squared(shape, seed, scale, bias):
    w = _randn(shape[1:], seed, scale)
    real, fake = _randn(shape, seed + 1, 3.0), _randn(shape, seed + 2)
    gp = gradient_penalty(_linear(w, bias), real, fake, generator=_gen(seed + 3))
    assert gp.dtype == torch.float64 and gp.ndim == 0
    expected = (torch.linalg.vector_norm(w) - 1) ** 2
    torch.testing.assert_close(gp, expected, **TIGHT)


@FAST
@given(shape=shapes, seed=seeds, scale=st.floats(0.05, 5.0))
def test_patch_scores_of_a_linear_map_are_summed_per_sample(shape, seed, scale):
    b, c, h, w = shape
    real, fake = _randn(shape, seed), _randn(shape, seed + 1)
    # elementwise patch scores (B, C, H, W): the per-sample sum is <W, x>
    weight = _randn((1, c, h, w), seed + 2, scale)
    gp = gradient_penalty(lambda x: x * weight + 1.0, real, fake, generator=_gen(seed))
    torch.testing.assert_close(gp, (torch.linalg.vector_norm(weight) - 1) ** 2, **TIGHT)
    # convolutional patch scores (B, 1, h', w'): gradient of the summed map is a constant w_eff
    kh, kw = min(h, 2), min(w, 2)
    kernel = _randn((1, c, kh, kw), seed + 3, scale)

    def conv_critic(x):
        return F.conv2d(x, kernel, bias=torch.tensor([0.5], dtype=torch.float64))

    probe = torch.zeros(1, c, h, w, dtype=torch.float64, requires_grad=True)
    (w_eff,) = torch.autograd.grad(conv_critic(probe).sum(), probe)
    gp = gradient_penalty(conv_critic, real, fake, generator=_gen(seed))
    torch.testing.assert_close(gp, (torch.linalg.vector_norm(w_eff) - 1) ** 2, **TIGHT)


def _two_linear_heads(shape, seed):
    w1 = _randn(shape[1:], seed, 0.3)
    w2 = _randn(shape[1:], seed + 1, 2.0)
    f1, f2 = _linear(w1), _linear(w2)
    p1 = (torch.linalg.vector_norm(w1) - 1) ** 2
    p2 = (torch.linalg.vector_norm(w2) - 1) ** 2
    return f1, f2, p1, p2


@FAST
@given(shape=shapes, seed=seeds)
def test_multi_head_critic_outputs_pick_the_realness_head(shape, seed):
    f1, f2, p1, p2 = _two_linear_heads(shape, seed)
    real, fake = _randn(shape, seed + 2), _randn(shape, seed + 3)

    def gp(critic, **kw):
        return gradient_penalty(critic, real, fake, generator=_gen(seed), **kw)

    as_dict = lambda x: {"logits": f2(x)[:, None], "realness": f1(x)}  # noqa: E731
    as_named = lambda x: Heads(f1(x), f2(x)[:, None])  # noqa: E731
    as_critic_output = lambda x: CriticOutput(f1(x), f2(x)[:, None])  # noqa: E731
    as_tuple = lambda x: (f1(x), f2(x)[:, None])  # noqa: E731
    as_list = lambda x: [f1(x), f2(x)[:, None]]  # noqa: E731
    for critic in (as_dict, as_named, as_critic_output, as_tuple, as_list):
        torch.testing.assert_close(gp(critic), p1, **TIGHT)
    # other heads on request
    torch.testing.assert_close(gp(as_dict, head="logits"), p2, **TIGHT)
    torch.testing.assert_close(gp(as_named, head="logits"), p2, **TIGHT)
    torch.testing.assert_close(gp(as_tuple, head=1), p2, **TIGHT)
    torch.testing.assert_close(gp(as_named, head=1), p2, **TIGHT)
    torch.testing.assert_close(gp(as_list, head=lambda out: out[1]), p2, **TIGHT)
    torch.testing.assert_close(gp(as_dict, head=lambda out: out["logits"]), p2, **TIGHT)


def test_select_head_on_an_object_with_attributes():
    class Out:
        def __init__(self):
            self.realness = torch.ones(2, 1)
            self.logits = torch.zeros(2, 3)

    out = Out()
    assert select_head(out) is out.realness
    assert select_head(out, "logits") is out.logits
    t = torch.ones(3)
    assert select_head(t) is t


@FAST
@given(b=st.integers(2, 5), c=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4), seed=seeds)
def test_norm_is_taken_per_sample(b, c, h, w, seed):
    # f(x) = 0.5 * ||x||^2 per sample has gradient x: the samples' norms differ
    scales = torch.linspace(0.1, 4.0, b, dtype=torch.float64).reshape(b, 1, 1, 1)
    real = _randn((b, c, h, w), seed) * scales
    fake = _randn((b, c, h, w), seed + 1) * scales
    alpha = torch.rand(b, generator=_gen(seed + 2), dtype=torch.float64)

    def critic(x):
        return 0.5 * x.pow(2).flatten(1).sum(1)

    gp = gradient_penalty(critic, real, fake, alpha=alpha)
    manual = 0.0
    for i in range(b):
        mixed = alpha[i] * real[i] + (1 - alpha[i]) * fake[i]
        manual += (mixed.flatten().norm() - 1) ** 2
    manual = manual / b
    torch.testing.assert_close(gp, manual, **TIGHT)
    # differs from one norm over the whole batch (the anti-pattern)
    mixed = alpha.reshape(b, 1, 1, 1) * real + (1 - alpha.reshape(b, 1, 1, 1)) * fake
    whole_batch = (mixed.flatten().norm() - 1) ** 2
    assert not torch.allclose(gp, whole_batch)


@FAST
@given(shape=shapes, seed=seeds)
def test_one_alpha_per_sample(shape, seed):
    b = shape[0]
    real, fake = _randn(shape, seed), _randn(shape, seed + 1) + 5.0  # real != fake everywhere
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    alpha = torch.rand(b, generator=_gen(seed + 2), dtype=torch.float64)
    gradient_penalty(critic, real, fake, alpha=alpha)
    a = alpha.reshape(b, 1, 1, 1)
    torch.testing.assert_close(seen[-1], a * real + (1 - a) * fake, **TIGHT)
    # random alphas: every sample lies on its own real-fake segment with one weight
    gradient_penalty(critic, real, fake, generator=_gen(seed + 3))
    ratio = (seen[-1] - fake) / (real - fake)
    per_sample = ratio.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample), rtol=1e-8, atol=1e-8)
    assert ((per_sample >= -1e-8) & (per_sample <= 1 + 1e-8)).all()
    if b >= 3:  # independent draws: not all equal
        assert per_sample[:, 0].unique().numel() > 1


def test_random_interpolates_detaches_and_requires_grad():
    real = torch.randn(3, 2, 4, 4, requires_grad=True)
    fake = (torch.randn(3, 2, 4, 4) * 2).requires_grad_()
    mixed = random_interpolates(real, fake, generator=_gen(0))
    assert mixed.requires_grad and mixed.is_leaf
    assert mixed.shape == real.shape and mixed.dtype == real.dtype
    mixed.sum().backward()
    assert real.grad is None and fake.grad is None


def _tiny_conv_critic(x, w1, w2):
    return F.conv2d(torch.tanh(F.conv2d(x, w1, padding=1)), w2)


def test_double_backward_matches_gradcheck_in_float64():
    g = _gen(0)
    real = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    alpha = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    w1 = (torch.randn(2, 1, 3, 3, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    w2 = (torch.randn(1, 2, 2, 2, generator=g, dtype=torch.float64) * 0.5).requires_grad_()

    def penalty(w1, w2):
        return gradient_penalty(lambda x: _tiny_conv_critic(x, w1, w2), real, fake, alpha=alpha)

    value = penalty(w1, w2)
    gw1, gw2 = torch.autograd.grad(value, (w1, w2))
    assert torch.isfinite(gw1).all() and torch.isfinite(gw2).all()
    assert gw1.abs().sum() > 0 and gw2.abs().sum() > 0
    assert torch.autograd.gradcheck(penalty, (w1, w2))


def test_penalty_without_create_graph_has_no_graph():
    w = torch.randn(1, 1, 2, 2, requires_grad=True)
    gp = gradient_penalty(lambda x: F.conv2d(x, w), torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3),
                          create_graph=False)
    assert not gp.requires_grad
    gp = gradient_penalty(lambda x: F.conv2d(x, w), torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3))
    assert gp.requires_grad


def test_double_backward_reaches_every_critic_parameter():
    torch.manual_seed(0)
    critic = MultiHeadCritic(16, base_channels=4, num_classes=3)
    gp = gradient_penalty(critic, torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16), generator=_gen(1))
    gp.backward()
    for name, p in critic.named_parameters():
        if name.startswith("classifier_head"):
            continue  # the penalty only sees the realness head
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_penalty_under_bf16_autocast_is_float32_and_close():
    torch.manual_seed(0)
    critic = MultiHeadCritic(16, base_channels=8, num_classes=3)
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    alpha = torch.rand(4, generator=_gen(0))
    reference = gradient_penalty(critic, real, fake, alpha=alpha)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gradient_penalty(critic, real, fake, alpha=alpha)
    assert low.dtype == torch.float32
    assert torch.isfinite(low)
    torch.testing.assert_close(low, reference, rtol=0.05, atol=0.01)
    low.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in critic.parameters())


def test_grad_scale_leaves_the_penalty_unchanged():
    w = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    real, fake = torch.randn(2, 2, 3, 4, 4, dtype=torch.float64).unbind(0)
    critic = _linear(w)
    base = gradient_penalty(critic, real, fake, generator=_gen(0))
    scaled = gradient_penalty(critic, real, fake, generator=_gen(0), grad_scale=1024.0)
    torch.testing.assert_close(scaled, base, **TIGHT)


@FAST
@given(shape=shapes, seed=seeds)
def test_generator_makes_draws_reproducible(shape, seed):
    real, fake = _randn(shape, seed), _randn(shape, seed + 1)

    def critic(x):
        return x.pow(3).flatten(1).sum(1)  # gradient depends on the point

    a = gradient_penalty(critic, real, fake, generator=_gen(seed))
    b = gradient_penalty(critic, real, fake, generator=_gen(seed))
    assert torch.equal(a, b)
    mixed_a = random_interpolates(real, fake, generator=_gen(seed))
    mixed_b = random_interpolates(real, fake, generator=_gen(seed))
    assert torch.equal(mixed_a, mixed_b)


def test_different_seeds_give_different_interpolates():
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    a = random_interpolates(real, fake, generator=_gen(0))
    b = random_interpolates(real, fake, generator=_gen(1))
    assert not torch.equal(a, b)


@FAST
@given(shape=shapes, seed=seeds)
def test_gradient_norm_penalty_equals_gradient_penalty(shape, seed):
    real, fake = _randn(shape, seed), _randn(shape, seed + 1)
    alpha = torch.rand(shape[0], generator=_gen(seed), dtype=torch.float64)

    def critic(x):
        return torch.sin(x).flatten(1).sum(1, keepdim=True)

    mixed = random_interpolates(real, fake, alpha=alpha)
    low = gradient_norm_penalty(critic(mixed), mixed)
    torch.testing.assert_close(low, gradient_penalty(critic, real, fake, alpha=alpha), **TIGHT)


def test_gradient_norm_penalty_raises_when_inputs_do_not_require_grad():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="inputs must require grad"):
        gradient_norm_penalty(x.sum(1), x)
