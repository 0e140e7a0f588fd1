"""torch.compile of a small generator agrees with eager mode.

Measured on the 2-core CPU machine (inductor cache cold, one-hot conditions,
fullgraph=True): about 15 s on a quiet machine, 24-29 s while other test and
training processes kept the load average near 9, about 8 s with a warm
inductor cache. Under 20 s when the machine is not shared, so not marked slow.

The conditioning functions and the losses take integer labels inside a
``fullgraph=True`` graph too: their label range check reads values,
so it is skipped while compiling, and out-of-range labels fail in the compiled
kernel's bounds checks instead. That test compiles a few element-wise ops
only (a few seconds).
"""

import pytest
import torch

from attngan import (
    AttentionGenerator,
    broadcast_condition,
    classification_loss,
    compose,
    concat_condition,
    one_hot,
    wgan_critic_loss,
)
from attngan._validation import set_value_checks


def test_compiled_generator_equals_eager():
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    codes = one_hot(torch.tensor([0, 4]), 5)
    eager = g(x, codes)
    compiled = torch.compile(g, fullgraph=True)
    out = compiled(x, codes)
    assert type(out).__name__ == "GeneratorOutput"
    for got, ref in zip(out, eager):
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    # a second call with new values reuses the graph and still agrees
    x2 = x.flip(-1)
    for got, ref in zip(compiled(x2, codes), g(x2, codes)):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def _conditioned_losses(image, logits, labels, real_scores, fake_scores):
    codes = one_hot(labels, 5)
    maps = broadcast_condition(labels, 4, 4, num_classes=5)
    joined = concat_condition(image, labels, num_classes=5)
    mixed = compose(maps[:, :1], image, image.flip(0))
    loss = classification_loss(logits, labels) + wgan_critic_loss(real_scores, fake_scores)
    return codes, maps, joined, mixed, loss


def test_integer_labels_compile_without_graph_breaks_and_equal_eager():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(3, 2, 4, 4, generator=g)
    logits = torch.randn(3, 5, generator=g)
    real_scores, fake_scores = torch.randn(3, 1, 2, 2, generator=g), torch.randn(3, 1, 2, 2, generator=g)
    labels = torch.tensor([0, 4, 2])
    compiled = torch.compile(_conditioned_losses, fullgraph=True)  # raises on any graph break
    for got, ref in zip(compiled(image, logits, labels, real_scores, fake_scores),
                        _conditioned_losses(image, logits, labels, real_scores, fake_scores)):
        torch.testing.assert_close(got, ref)
    # new label values reuse the graph (no value was read while tracing) and still agree
    labels2 = torch.tensor([3, 3, 1])
    with set_value_checks(False):
        got = compiled(image, logits, labels2, real_scores, fake_scores)
    for a, b in zip(got, _conditioned_losses(image, logits, labels2, real_scores, fake_scores)):
        torch.testing.assert_close(a, b)
    # an out-of-range label is not encoded silently: the compiled bounds checks fail
    for bad in ([0, 5, 1], [0, -1, 1]):
        with pytest.raises(RuntimeError, match=r"out of bounds|Class values must be"):
            compiled(image, logits, torch.tensor(bad), real_scores, fake_scores)


def test_toggling_value_checks_does_not_recompile():
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    compiled = torch.compile(_conditioned_losses, backend=counter, fullgraph=True)
    args = (torch.zeros(2, 2, 4, 4), torch.zeros(2, 5), torch.tensor([1, 2]), torch.zeros(2), torch.zeros(2))
    compiled(*args)
    with set_value_checks(False):
        compiled(*args)
    compiled(*args)
    assert counter.frame_count == 1


def test_compiled_norm_conditioned_generator_equals_eager():
    """The condition in every normalisation layer (with the residual colour proposal) compiles into one graph
    and agrees with eager mode."""
    from attngan import ConditionalNorm2d

    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1, condition="norm", padding="reflect",
                           color="residual")
    with torch.no_grad():
        g.color_head.weight.normal_(0, 0.05)
        for m in g.modules():
            if isinstance(m, ConditionalNorm2d):
                m.scale.weight.normal_(0, 0.5)
                m.shift.weight.normal_(0, 0.5)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    soft = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    eager = g(x, soft)
    compiled = torch.compile(g, fullgraph=True)
    for got, ref in zip(compiled(x, soft), eager):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
