"""Property tests of the WGAN and classification losses."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import classification_loss, one_hot, per_sample_scores, wgan_critic_loss, wgan_generator_loss

FAST = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)
TIGHT = dict(rtol=1e-10, atol=1e-12)
score_shapes = st.sampled_from([(), (1,), (1, 1, 1), (1, 3, 3), (2, 2, 5)])


def _randn(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _per_sample_sum(scores):
    return [sum(s.flatten().tolist()) for s in scores]


@FAST
@given(b_real=st.integers(1, 5), b_fake=st.integers(1, 5), tail=score_shapes, seed=seeds)
def test_wgan_losses_on_patch_scores_are_per_sample_sums(b_real, b_fake, tail, seed):
    real = _randn((b_real, *tail), seed)
    fake = _randn((b_fake, *tail), seed + 1)
    real_sums, fake_sums = _per_sample_sum(real), _per_sample_sum(fake)
    expected_critic = sum(fake_sums) / b_fake - sum(real_sums) / b_real
    torch.testing.assert_close(
        wgan_critic_loss(real, fake), torch.tensor(expected_critic, dtype=torch.float64), **TIGHT
    )
    torch.testing.assert_close(
        wgan_generator_loss(fake), torch.tensor(-sum(fake_sums) / b_fake, dtype=torch.float64), **TIGHT
    )
    torch.testing.assert_close(per_sample_scores(fake), torch.tensor(fake_sums, dtype=torch.float64), **TIGHT)


def test_wgan_losses_known_values_and_gradients():
    real = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 4.0]]]], requires_grad=True)  # sums 3, 7
    fake = torch.tensor([[[[0.5, 0.5]]], [[[1.0, 0.0]]]], requires_grad=True)  # sums 1, 1
    loss = wgan_critic_loss(real, fake)
    assert loss.item() == pytest.approx(1.0 - 5.0)
    loss.backward()
    torch.testing.assert_close(real.grad, torch.full_like(real, -0.5))
    torch.testing.assert_close(fake.grad, torch.full_like(fake, 0.5))
    assert wgan_generator_loss(fake.detach()).item() == pytest.approx(-1.0)


@st.composite
def logits_and_labels(draw):
    b = draw(st.integers(1, 6))
    k = draw(st.integers(2, 7))
    labels = torch.tensor(draw(st.lists(st.integers(0, k - 1), min_size=b, max_size=b)))
    seed = draw(seeds)
    scale = draw(st.floats(0.01, 50.0))
    return _randn((b, k), seed) * scale, labels


@FAST
@given(data=logits_and_labels(), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_integer_targets_equal_one_hot_targets(data, reduction):
    logits, labels = data
    k = logits.shape[1]
    by_label = classification_loss(logits, labels, reduction=reduction)
    by_code = classification_loss(logits, one_hot(labels, k, dtype=logits.dtype), reduction=reduction)
    torch.testing.assert_close(by_label, by_code, **TIGHT)
    # float32 one-hot codes give the same loss too
    torch.testing.assert_close(
        classification_loss(logits.float(), one_hot(labels, k), reduction=reduction),
        by_label.float(),
        rtol=1e-5,
        atol=1e-5,
    )


@FAST
@given(data=logits_and_labels())
def test_loss_equals_negative_log_softmax_picked_manually(data):
    logits, labels = data
    per_sample = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        top = max(row)
        log_z = top + torch.tensor([v - top for v in row], dtype=torch.float64).exp().sum().log().item()
        per_sample.append(log_z - row[label])
    expected = torch.tensor(per_sample, dtype=torch.float64)
    none = classification_loss(logits, labels, reduction="none")
    assert none.shape == labels.shape
    assert none.dtype == torch.float64
    torch.testing.assert_close(none, expected, **TIGHT)
    torch.testing.assert_close(classification_loss(logits, labels), expected.mean(), **TIGHT)
    torch.testing.assert_close(classification_loss(logits, labels, reduction="sum"), expected.sum(), **TIGHT)
    # and the same through log_softmax
    picked = -torch.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]
    torch.testing.assert_close(none, picked, **TIGHT)


def test_soft_targets_are_a_mixture_of_hard_ones():
    logits = _randn((3, 4), 0)
    soft = torch.tensor([[0.25, 0.75, 0.0, 0.0]] * 3, dtype=torch.float64)
    expected = 0.25 * classification_loss(logits, torch.zeros(3, dtype=torch.long), reduction="none") + 0.75 * (
        classification_loss(logits, torch.ones(3, dtype=torch.long), reduction="none")
    )
    torch.testing.assert_close(classification_loss(logits, soft, reduction="none"), expected, **TIGHT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("magnitude", [1e4, -1e4, 3e38])
def test_extreme_logits_give_finite_loss_and_gradient(dtype, magnitude):
    if dtype == torch.bfloat16 and abs(magnitude) > 1e38:
        magnitude = 1e38
    logits = torch.zeros(3, 4, dtype=dtype)
    logits[0, 1] = magnitude  # confidently right
    logits[1, 2] = magnitude  # confidently wrong
    logits[2, 0] = -magnitude
    logits.requires_grad_()
    labels = torch.tensor([1, 0, 3])
    for target in (labels, one_hot(labels, 4, dtype=dtype)):
        loss = classification_loss(logits, target)
        assert torch.isfinite(loss), (target, loss)
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all()
        assert grad.dtype == dtype
    # softmax-then-log, the pattern we avoid, would give inf here
    if dtype == torch.float32 and magnitude == 1e4:
        naive = -torch.log(torch.softmax(logits.detach(), dim=1)[1, 0])
        assert not torch.isfinite(naive)
        assert classification_loss(logits.detach()[1:2], torch.tensor([0])).item() == pytest.approx(1e4)


def test_bf16_logits_are_computed_in_float32():
    logits = _randn((4, 5), 3, dtype=torch.bfloat16)
    labels = torch.tensor([0, 1, 2, 4])
    assert classification_loss(logits, labels).dtype == torch.float32
    torch.testing.assert_close(classification_loss(logits, labels), classification_loss(logits.float(), labels))
