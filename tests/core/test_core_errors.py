"""Bad input fails with a ValueError / TypeError naming the argument, the expectation and what was given."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import (
    AttentionGenerator,
    AttentionRegularizer,
    MultiHeadCritic,
    TotalVariation,
    attention_regularizer,
    broadcast_condition,
    classification_loss,
    compose,
    concat_condition,
    gradient_norm_penalty,
    gradient_penalty,
    one_hot,
    per_sample_scores,
    random_interpolates,
    sample_target_labels,
    select_head,
    total_variation,
    wgan_critic_loss,
    wgan_generator_loss,
)
from attngan._validation import set_value_checks, value_checks_apply, value_checks_enabled

FAST = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)

x4 = torch.zeros(2, 3, 4, 4)
mask = torch.zeros(2, 1, 4, 4)
# "meta" tensors stand for a second device on a CPU-only machine: only their metadata exists
meta4 = torch.zeros(2, 3, 4, 4, device="meta")
_GEN = {}


def _generator(**kw):
    key = tuple(sorted(kw.items()))
    if key not in _GEN:
        _GEN[key] = AttentionGenerator(base_channels=4, num_residual_blocks=0, **kw)
    return _GEN[key]


_WEIGHT = torch.ones(2, requires_grad=True)


def _ignores_input(x):
    """A critic whose scores come from a parameter only, not from x."""
    return _WEIGHT * 1.0


def _detaches_input(x):
    return x.detach().flatten(1).sum(1)


def _two_heads(x):
    return {"realness": x.flatten(1).sum(1), "bias": _WEIGHT * 1.0}


def _norm_penalty_of_sum(**kw):
    x = x4.clone().requires_grad_()
    return gradient_norm_penalty(x.flatten(1).sum(1), x, **kw)


def _penalty_without_grad():
    with torch.no_grad():
        return gradient_penalty(lambda t: t.flatten(1).sum(1), x4, x4)


CASES = [
    # ---- wrong rank
    ("compose rank", lambda: compose(torch.zeros(2, 4, 4), x4, x4), ValueError,
     r"attention must have shape \(B, 1, H, W\) or \(B, C, H, W\) \(4 dimensions\), "
     r"got shape \(2, 4, 4\) \(3 dimensions\)"),
    ("compose source rank", lambda: compose(mask, torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)), ValueError,
     r"color must have shape \(B, C, H, W\) .*got shape \(2, 3, 4\)"),
    ("tv rank", lambda: total_variation(torch.zeros(3, 4, 4)), ValueError,
     r"x must have shape \(B, C, H, W\) \(4 dimensions\), got shape \(3, 4, 4\) \(3 dimensions\)"),
    ("regularizer rank", lambda: attention_regularizer(torch.zeros(4, 4)), ValueError,
     r"attention must have shape \(B, 1, H, W\) .*got shape \(4, 4\)"),
    ("concat rank", lambda: concat_condition(torch.zeros(3, 4, 4), torch.tensor([0]), num_classes=2), ValueError,
     r"image must have shape \(B, C, H, W\) .*got shape \(3, 4, 4\)"),
    ("labels rank", lambda: one_hot(torch.zeros(2, 2, dtype=torch.long), 3), ValueError,
     r"labels must have shape \(B,\) \(1 dimensions\), got shape \(2, 2\)"),
    ("logits rank", lambda: classification_loss(torch.zeros(4), torch.tensor([0])), ValueError,
     r"logits must have shape \(B, K\) \(2 dimensions\), got shape \(4,\)"),
    ("condition rank", lambda: broadcast_condition(torch.zeros(2, 3, 1), 4, 4), ValueError,
     r"condition must have shape \(B, K\) or labels \(B,\) .*got shape \(2, 3, 1\)"),
    ("generator rank", lambda: _generator()(torch.zeros(3, 16, 16), torch.tensor([0])), ValueError,
     r"image must have shape \(B, C, H, W\) .*got shape \(3, 16, 16\)"),
    ("critic rank", lambda: MultiHeadCritic(16, base_channels=2)(torch.zeros(3, 16, 16)), ValueError,
     r"image must have shape \(B, C, H, W\) .*got shape \(3, 16, 16\)"),
    ("scalar scores", lambda: per_sample_scores(torch.tensor(1.0)), ValueError,
     r"scores must have a batch dimension"),
    ("scalar fake scores", lambda: wgan_critic_loss(torch.ones(2), torch.tensor(1.0)), ValueError,
     r"fake_scores must have a batch dimension"),
    ("alpha rank", lambda: random_interpolates(x4, x4, alpha=torch.ones(2, 1)), ValueError,
     r"alpha must have shape \(B,\) or \(\) \(1 or 0 dimensions\), got shape \(2, 1\) \(2 dimensions\)"),
    # ---- mismatched shapes
    ("compose color/source", lambda: compose(mask, torch.zeros(2, 3, 4, 4), torch.zeros(2, 2, 4, 4)), ValueError,
     r"color and source must have the same shape \(B, C, H, W\), got \(2, 3, 4, 4\) and \(2, 2, 4, 4\)"),
    ("compose attention channels", lambda: compose(torch.zeros(2, 2, 4, 4), x4, x4), ValueError,
     r"attention must have shape \(2, 1, 4, 4\) or \(2, 3, 4, 4\) to match source, got \(2, 2, 4, 4\)"),
    ("compose attention size", lambda: compose(torch.zeros(2, 1, 4, 5), x4, x4), ValueError,
     r"attention must have shape \(2, 1, 4, 4\) or \(2, 3, 4, 4\) to match source, got \(2, 1, 4, 5\)"),
    ("compose attention batch", lambda: compose(torch.zeros(1, 1, 4, 4), x4, x4), ValueError,
     r"attention must have shape \(2, 1, 4, 4\).*got \(1, 1, 4, 4\)"),
    ("interpolates real/fake", lambda: random_interpolates(x4, torch.zeros(2, 3, 4, 5)), ValueError,
     r"real and fake must have the same shape, got \(2, 3, 4, 4\) and \(2, 3, 4, 5\)"),
    ("penalty real/fake", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, torch.zeros(3, 3, 4, 4)), ValueError,
     r"real and fake must have the same shape, got \(2, 3, 4, 4\) and \(3, 3, 4, 4\)"),
    ("alpha batch", lambda: random_interpolates(x4, x4, alpha=torch.ones(3)), ValueError,
     r"alpha must have shape \(2,\), got \(3,\)"),
    ("norm penalty batch", lambda: gradient_norm_penalty(torch.ones(3), x4.clone().requires_grad_()), ValueError,
     r"scores and inputs must share the batch size, got \(3,\) and \(2, 3, 4, 4\)"),
    ("one-hot target shape", lambda: classification_loss(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
     r"one-hot target must have the shape of logits \(2, 3\), got \(2, 4\)"),
    ("label target batch", lambda: classification_loss(torch.zeros(2, 3), torch.tensor([0, 1, 2])), ValueError,
     r"target must have shape \(2,\) to match logits \(2, 3\), got \(3,\)"),
    ("condition columns", lambda: broadcast_condition(torch.zeros(2, 3), 4, 4, num_classes=5), ValueError,
     r"condition must have num_classes=5 columns, got shape \(2, 3\)"),
    ("generator channels", lambda: _generator()(torch.zeros(1, 1, 16, 16), torch.tensor([0])), ValueError,
     r"image must have 3 channels, got shape \(1, 1, 16, 16\)"),
    ("critic channels", lambda: MultiHeadCritic(16, base_channels=2)(torch.zeros(1, 1, 16, 16)), ValueError,
     r"image must have shape \(B, 3, 16, 16\), got \(1, 1, 16, 16\)"),
    # ---- labels out of range
    ("one_hot label too large", lambda: one_hot(torch.tensor([0, 5]), 5), ValueError,
     r"labels must lie in \[0, 4\] for num_classes=5, got values in \[0, 5\]"),
    ("one_hot negative label", lambda: one_hot(torch.tensor([-1, 2]), 3), ValueError,
     r"labels must lie in \[0, 2\] for num_classes=3, got values in \[-1, 2\]"),
    ("sample label out of range", lambda: sample_target_labels(torch.tensor([0, 3]), 3), ValueError,
     r"labels must lie in \[0, 2\] for num_classes=3, got values in \[0, 3\]"),
    ("loss target out of range", lambda: classification_loss(torch.zeros(2, 3), torch.tensor([0, 7])), ValueError,
     r"target must lie in \[0, 2\] for num_classes=3, got values in \[0, 7\]"),
    ("generator label out of range", lambda: _generator()(torch.zeros(1, 3, 16, 16), torch.tensor([5])), ValueError,
     r"condition must lie in \[0, 4\] for num_classes=5, got values in \[5, 5\]"),
    ("broadcast labels out of range", lambda: broadcast_condition(torch.tensor([2]), 2, 2, num_classes=2), ValueError,
     r"condition must lie in \[0, 1\] for num_classes=2, got values in \[2, 2\]"),
    # ---- integer images / labels of the wrong kind
    ("compose integer source", lambda: compose(mask, x4, torch.zeros(2, 3, 4, 4, dtype=torch.uint8)), TypeError,
     r"source must be a floating-point tensor .*got dtype torch.uint8"),
    ("tv integer image", lambda: total_variation(torch.zeros(1, 3, 4, 4, dtype=torch.int64)), TypeError,
     r"x must be a floating-point tensor .*got dtype torch.int64"),
    ("generator integer image", lambda: _generator()(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.tensor([0])),
     TypeError, r"image must be a floating-point tensor .*got dtype torch.uint8"),
    ("critic integer image", lambda: MultiHeadCritic(16, base_channels=2)(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)),
     TypeError, r"image must be a floating-point tensor .*got dtype torch.uint8"),
    ("interpolates integer", lambda: random_interpolates(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)),
     TypeError, r"real must be a floating-point tensor .*got dtype torch.int64"),
    ("float labels", lambda: one_hot(torch.tensor([0.0, 1.0]), 2), TypeError,
     r"labels must be an integer tensor, got dtype torch.float32"),
    ("float label condition", lambda: concat_condition(x4, torch.tensor([0.0, 1.0]), num_classes=2), TypeError,
     r"condition must be an integer tensor, got dtype torch.float32"),
    ("not a tensor", lambda: compose([[0.0]], x4, x4), TypeError, r"attention must be a torch.Tensor, got list"),
    ("condition not a tensor", lambda: concat_condition(x4, [0, 1]), TypeError,
     r"condition must be a torch.Tensor, got list"),
    ("bad head type", lambda: select_head((torch.ones(1),), head=1.5), TypeError,
     r"head must be None, a str, an int or a callable, got float"),
    ("unusable critic output", lambda: select_head({"logits": torch.ones(1)}), TypeError,
     r"critic output must be a tensor, have a 'realness' key or attribute, or be a non-empty tuple; got dict"),
    # ---- generator size not divisible by 2 ** num_downsamples
    ("generator size", lambda: _generator()(torch.zeros(1, 3, 18, 16), torch.tensor([0])), ValueError,
     r"image height and width must be divisible by 4 \(2 \*\* num_downsamples\), got 18x16"),
    ("generator size 3 downsamples",
     lambda: _generator(num_downsamples=3)(torch.zeros(1, 3, 16, 20), torch.tensor([0])),
     ValueError, r"image height and width must be divisible by 8 \(2 \*\* num_downsamples\), got 16x20"),
    ("generator 1x1 bottleneck", lambda: _generator()(torch.zeros(1, 3, 4, 4), torch.tensor([0])), ValueError,
     r"image must be larger than 4x4 \(2 \*\* num_downsamples\).*got 4x4"),
    # ---- critic image size
    ("critic size", lambda: MultiHeadCritic(32, base_channels=2)(torch.zeros(1, 3, 16, 16)), ValueError,
     r"image must have shape \(B, 3, 32, 32\), got \(1, 3, 16, 16\)"),
    ("critic non-square size", lambda: MultiHeadCritic((32, 48), base_channels=2)(torch.zeros(1, 3, 48, 32)),
     ValueError, r"image must have shape \(B, 3, 32, 48\), got \(1, 3, 48, 32\)"),
    ("critic too many layers", lambda: MultiHeadCritic(16, num_layers=5), ValueError,
     r"num_layers=5 halves image_size=\(16, 16\) below one pixel; use at most 4 layers"),
    ("critic bad size type", lambda: MultiHeadCritic("64"), TypeError,
     r"image_size must be an int or a pair of ints, got '64'"),
    ("critic zero size", lambda: MultiHeadCritic((0, 16)), ValueError, r"image_size must be >= 1, got 0"),
    # ---- unknown reduction / form / option
    ("tv reduction", lambda: total_variation(x4, reduction="avg"), ValueError,
     r"reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    ("tv module reduction", lambda: TotalVariation(reduction="elementwise"), ValueError,
     r"reduction must be one of 'mean', 'sum', 'none', got 'elementwise'"),
    ("regularizer reduction", lambda: attention_regularizer(mask, reduction="max"), ValueError,
     r"reduction must be one of 'mean', 'sum', 'none', got 'max'"),
    ("loss reduction", lambda: classification_loss(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="batchmean"),
     ValueError, r"reduction must be one of 'mean', 'sum', 'none', got 'batchmean'"),
    ("regularizer form", lambda: attention_regularizer(mask, form="ganimation"), ValueError,
     r"form must be one of 'paper', .*'released', got 'ganimation'"),
    ("regularizer module form", lambda: AttentionRegularizer(form="code"), ValueError,
     r"form must be one of 'paper', .*'released', got 'code'"),
    ("generator norm", lambda: AttentionGenerator(norm="batch"), ValueError,
     r"norm must be one of 'instance', 'group', 'none', got 'batch'"),
    ("generator upsample", lambda: AttentionGenerator(upsample="bilinear"), ValueError,
     r"upsample must be one of 'transpose', 'nearest', got 'bilinear'"),
    ("generator color", lambda: AttentionGenerator(color="relative"), ValueError,
     r"color must be one of 'absolute', 'residual', got 'relative'"),
    # ---- integer hyper-parameters
    ("sample num_classes 1", lambda: sample_target_labels(torch.tensor([0, 0]), 1), ValueError,
     r"num_classes must be >= 2, got 1"),
    ("sample num_classes 0", lambda: sample_target_labels(torch.tensor([0]), 0), ValueError,
     r"num_classes must be >= 2, got 0"),
    ("sample num_classes float", lambda: sample_target_labels(torch.tensor([0]), 2.0), TypeError,
     r"num_classes must be an int, got float"),
    ("one_hot num_classes 0", lambda: one_hot(torch.tensor([0]), 0), ValueError, r"num_classes must be >= 1, got 0"),
    ("height 0", lambda: broadcast_condition(torch.zeros(1, 2), 0, 3), ValueError, r"height must be >= 1, got 0"),
    ("generator num_downsamples", lambda: AttentionGenerator(num_downsamples=-1), ValueError,
     r"num_downsamples must be >= 0, got -1"),
    ("generator bool channels", lambda: AttentionGenerator(image_channels=True), TypeError,
     r"image_channels must be an int, got bool"),
    # ---- condition batch mismatch / missing num_classes
    ("concat batch", lambda: concat_condition(x4, torch.tensor([0, 1, 1]), num_classes=2), ValueError,
     r"condition and image must have the same batch size B, "
     r"got condition shape \(3, 2\) and image shape \(2, 3, 4, 4\)"),
    ("generator condition batch", lambda: _generator()(torch.zeros(2, 3, 16, 16), torch.tensor([0, 1, 2])), ValueError,
     r"condition must have shape \(2, 5\) or \(2,\), got \(3,\)"),
    ("generator codes batch", lambda: _generator()(torch.zeros(2, 3, 16, 16), torch.zeros(1, 5)), ValueError,
     r"condition must have shape \(2, 5\) or \(2,\), got \(1, 5\)"),
    ("generator codes width", lambda: _generator()(torch.zeros(2, 3, 16, 16), torch.zeros(2, 4)), ValueError,
     r"condition must have num_classes=5 columns, got shape \(2, 4\)"),
    ("labels without num_classes", lambda: broadcast_condition(torch.tensor([0, 1]), 2, 2), ValueError,
     r"condition of shape \(B,\) holds integer labels: pass num_classes .*got condition shape \(2,\)"),
    # ---- inputs on two devices
    ("compose color device", lambda: compose(mask, meta4, x4), ValueError,
     r"color must be on the device of source \(cpu\), got color on meta"),
    ("compose attention device", lambda: compose(mask.to("meta"), x4, x4), ValueError,
     r"attention must be on the device of source \(cpu\), got attention on meta"),
    ("interpolates device", lambda: random_interpolates(x4, meta4), ValueError,
     r"fake must be on the device of real \(cpu\), got fake on meta"),
    ("penalty device", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), meta4, x4), ValueError,
     r"fake must be on the device of real \(meta\), got fake on cpu"),
    ("alpha device", lambda: random_interpolates(x4, x4, alpha=torch.ones(2, device="meta")), ValueError,
     r"alpha must be on the device of real \(cpu\), got alpha on meta"),
    ("critic loss device", lambda: wgan_critic_loss(torch.ones(2), torch.ones(2, device="meta")), ValueError,
     r"fake_scores must be on the device of real_scores \(cpu\), got fake_scores on meta"),
    ("loss label device", lambda: classification_loss(torch.zeros(2, 3), torch.tensor([0, 1], device="meta")),
     ValueError, r"target must be on the device of logits \(cpu\), got target on meta"),
    ("loss soft target device", lambda: classification_loss(torch.zeros(2, 3), torch.zeros(2, 3, device="meta")),
     ValueError, r"target must be on the device of logits \(cpu\), got target on meta"),
    ("concat condition device", lambda: concat_condition(x4, torch.tensor([0, 1], device="meta"), num_classes=2),
     ValueError, r"condition must be on the device of image \(cpu\), got condition on meta"),
    ("generator condition device",
     lambda: _generator()(torch.zeros(1, 3, 16, 16), torch.tensor([0], device="meta")), ValueError,
     r"condition must be on the device of image \(cpu\), got condition on meta"),
    ("sample generator device",
     lambda: sample_target_labels(torch.tensor([0], device="meta"), 2, generator=torch.Generator()), ValueError,
     r"generator must be a generator on the device of labels \(meta\), got a generator on cpu"),
    ("interpolates generator device", lambda: random_interpolates(meta4, meta4, generator=torch.Generator()),
     ValueError, r"generator must be a generator on the device of real \(meta\), got a generator on cpu"),
    ("interpolates generator type", lambda: random_interpolates(x4, x4, generator=0), TypeError,
     r"generator must be a torch.Generator or None, got int"),
    # ---- inputs of two dtypes
    ("interpolates dtype", lambda: random_interpolates(x4, x4.double()), TypeError,
     r"fake must have the dtype of real \(torch.float32\), got fake of dtype torch.float64"),
    ("penalty dtype", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4.half(), x4), TypeError,
     r"fake must have the dtype of real \(torch.float16\), got fake of dtype torch.float32"),
    ("critic loss dtype", lambda: wgan_critic_loss(torch.ones(2), torch.ones(2, dtype=torch.bfloat16)), TypeError,
     r"fake_scores must have the dtype of real_scores \(torch.float32\), got fake_scores of dtype torch.bfloat16"),
    # ---- a critic (or head) whose scores do not depend on its input
    ("penalty critic ignores input", lambda: gradient_penalty(_ignores_input, x4, x4), ValueError,
     r"the scores of critic _ignores_input \(head=None\) must depend on the critic's input, "
     r"but its gradient .* is undefined"),
    ("penalty critic detaches input", lambda: gradient_penalty(_detaches_input, x4, x4), ValueError,
     r"the scores of critic _detaches_input \(head=None\) must depend on the critic's input, "
     r"but it does not require grad: nothing connects it"),
    ("penalty head ignores input", lambda: gradient_penalty(_two_heads, x4, x4, head="bias"), ValueError,
     r"the scores of critic _two_heads \(head='bias'\) must depend on the critic's input"),
    ("penalty under no_grad", _penalty_without_grad, ValueError,
     r"the scores of critic .*<lambda> \(head=None\) must depend on the critic's input, .*"
     r"computed with gradients disabled"),
    ("penalty integer scores", lambda: gradient_penalty(lambda t: t.flatten(1).sum(1).long(), x4, x4), TypeError,
     r"the scores of critic .*<lambda> \(head=None\) must be a floating-point tensor"),
    ("penalty scores batch", lambda: gradient_penalty(lambda t: t.sum(), x4, x4), ValueError,
     r"the scores of critic .*<lambda> \(head=None\) must have shape \(2, \.\.\.\), one row per sample, got \(\)"),
    ("norm penalty unused inputs", lambda: gradient_norm_penalty(_WEIGHT * 1.0, x4.clone().requires_grad_()),
     ValueError, r"scores must depend on inputs, but its gradient with respect to inputs is undefined"),
    ("norm penalty detached scores",
     lambda: gradient_norm_penalty(torch.ones(2), x4.clone().requires_grad_()), ValueError,
     r"scores must depend on inputs, but it does not require grad"),
    ("penalty critic not callable", lambda: gradient_penalty("critic", x4, x4), TypeError,
     r"critic must be callable \(a module or a function\), got str"),
    # ---- interpolation weights outside [0, 1]
    ("alpha float above 1", lambda: random_interpolates(x4, x4, alpha=1.5), ValueError,
     r"alpha must lie in \[0, 1\], got 1.5"),
    ("alpha float nan", lambda: random_interpolates(x4, x4, alpha=float("nan")), ValueError,
     r"alpha must lie in \[0, 1\], got nan"),
    ("alpha tensor negative", lambda: random_interpolates(x4, x4, alpha=torch.tensor([-0.5, 0.5])), ValueError,
     r"alpha must lie in \[0, 1\], got values in \[-0.5, 0.5\]"),
    ("alpha tensor nan", lambda: random_interpolates(x4, x4, alpha=torch.tensor([0.5, float("nan")])), ValueError,
     r"alpha must lie in \[0, 1\], got values in \[nan, nan\]"),
    ("alpha scalar tensor", lambda: random_interpolates(x4, x4, alpha=torch.tensor(2.0)), ValueError,
     r"alpha must lie in \[0, 1\], got values in \[2, 2\]"),
    ("penalty alpha", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, alpha=torch.tensor([0.5, 1.01])),
     ValueError, r"alpha must lie in \[0, 1\], got values in \[0.5, 1.01\]"),
    ("alpha integer", lambda: random_interpolates(x4, x4, alpha=torch.tensor([0, 1])), TypeError,
     r"alpha must be a floating-point tensor .*got dtype torch.int64"),
    ("alpha string", lambda: random_interpolates(x4, x4, alpha="half"), TypeError,
     r"alpha must be a float or a tensor of shape \(B,\) or \(\), got str"),
    ("alpha bool", lambda: random_interpolates(x4, x4, alpha=True), TypeError,
     r"alpha must be a float or a tensor of shape \(B,\) or \(\), got bool"),
    # ---- grad_scale zero, negative or not finite
    ("grad_scale zero", lambda: _norm_penalty_of_sum(grad_scale=0.0), ValueError,
     r"grad_scale must be > 0, got 0.0"),
    ("grad_scale negative", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, grad_scale=-2), ValueError,
     r"grad_scale must be > 0, got -2.0"),
    ("grad_scale inf", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, grad_scale=float("inf")),
     ValueError, r"grad_scale must be finite, got inf"),
    ("grad_scale nan", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, grad_scale=float("nan")),
     ValueError, r"grad_scale must be finite, got nan"),
    ("grad_scale tensor zero",
     lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, grad_scale=torch.tensor(0.0)),
     ValueError, r"grad_scale must be a finite number > 0, got 0"),
    ("grad_scale tensor shape", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, grad_scale=torch.ones(1)),
     ValueError, r"grad_scale must have shape \(\) \(0 dimensions\), got shape \(1,\)"),
    ("grad_scale string", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4, x4, grad_scale="1"), TypeError,
     r"grad_scale must be a real number \(int or float\), got str"),
    # ---- other scalar hyper-parameters
    ("generator attention_bias inf", lambda: AttentionGenerator(attention_bias=float("inf")), ValueError,
     r"attention_bias must be finite, got inf"),
    ("generator attention_bias nan", lambda: AttentionGenerator(attention_bias=float("nan")), ValueError,
     r"attention_bias must be finite, got nan"),
    ("generator attention_bias type", lambda: AttentionGenerator(attention_bias="2"), TypeError,
     r"attention_bias must be a real number \(int or float\), got str"),
    ("critic negative_slope nan", lambda: MultiHeadCritic(16, negative_slope=float("nan")), ValueError,
     r"negative_slope must be finite, got nan"),
    ("one_hot dtype", lambda: one_hot(torch.tensor([0]), 2, dtype="float32"), TypeError,
     r"dtype must be a torch.dtype, got str"),
    ("logits without classes", lambda: classification_loss(torch.zeros(2, 0), torch.tensor([0, 0])), ValueError,
     r"logits must have at least one class \(K >= 1\), got shape \(2, 0\)"),
    # ---- empty batches where a mean would be NaN
    ("critic loss empty real", lambda: wgan_critic_loss(torch.ones(0), torch.ones(2)), ValueError,
     r"real_scores must have a non-empty batch \(B >= 1\), got shape \(0,\)"),
    ("critic loss empty fake", lambda: wgan_critic_loss(torch.ones(2), torch.ones(0, 1, 3, 3)), ValueError,
     r"fake_scores must have a non-empty batch \(B >= 1\), got shape \(0, 1, 3, 3\)"),
    ("generator loss empty", lambda: wgan_generator_loss(torch.ones(0, 1)), ValueError,
     r"fake_scores must have a non-empty batch \(B >= 1\), got shape \(0, 1\)"),
    ("classification mean empty", lambda: classification_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)),
     ValueError, r"logits must have a non-empty batch \(B >= 1\), got shape \(0, 3\).*reduction=\"sum\""),
    ("classification mean empty soft", lambda: classification_loss(torch.zeros(0, 3), torch.zeros(0, 3)),
     ValueError, r"logits must have a non-empty batch \(B >= 1\), got shape \(0, 3\)"),
    ("norm penalty empty",
     lambda: gradient_norm_penalty(torch.zeros(0), torch.zeros(0, 3, requires_grad=True)), ValueError,
     r"inputs must have a non-empty batch \(B >= 1\), got shape \(0, 3\)"),
    ("penalty empty", lambda: gradient_penalty(lambda t: t.sum((1, 2, 3)), x4[:0], x4[:0]), ValueError,
     r"real must have a non-empty batch dimension, got shape \(0, 3, 4, 4\)"),
]


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_helpful_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_errors_are_not_assertions():
    # validation must survive python -O: no AssertionError anywhere in the table above
    for name, call, _, _ in CASES:
        try:
            call()
        except AssertionError as exc:  # pragma: no cover - would be a bug
            pytest.fail(f"{name}: AssertionError {exc}")
        except (ValueError, TypeError):
            pass


def test_gradient_norm_penalty_rejects_inputs_without_grad():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"inputs must require grad"):
        gradient_norm_penalty(x.flatten(1).sum(1), x)


# --------------------------------------------------------------------------- #
# Value checks: where they run, the switch, and what happens where
# they are skipped
# --------------------------------------------------------------------------- #


def test_value_check_switch_is_a_function_and_a_context_manager():
    assert value_checks_enabled()
    with set_value_checks(False) as switch:
        assert not value_checks_enabled()
        assert repr(switch) == "set_value_checks(False)"
        with set_value_checks(True):
            assert value_checks_enabled()
        assert not value_checks_enabled()
    assert value_checks_enabled()
    try:
        set_value_checks(False)  # a plain call takes effect at once
        assert not value_checks_enabled()
        one_hot(torch.tensor([0, 1]), 2)  # in-range labels still work
    finally:
        set_value_checks(True)
    assert value_checks_enabled()
    with pytest.raises(TypeError, match=r"enabled must be a bool, got int"):
        set_value_checks(0)


def test_value_checks_apply_only_to_cpu_tensors_with_the_switch_on():
    cpu = torch.zeros(2)
    assert value_checks_apply(cpu)
    assert not value_checks_apply(cpu, torch.zeros(2, device="meta"))
    with set_value_checks(False):
        assert not value_checks_apply(cpu)


def test_label_range_is_not_read_from_non_cpu_tensors():
    # on another device (meta has no values at all) the range check is skipped
    # rather than synchronising; the shape and dtype checks still run
    labels = torch.tensor([0, 7], device="meta")
    assert classification_loss(torch.zeros(2, 3, device="meta"), labels, reduction="none").shape == (2,)
    with pytest.raises(TypeError, match=r"labels must be an integer tensor"):
        one_hot(torch.zeros(2, device="meta"), 3)


def test_alpha_range_is_not_read_from_non_cpu_tensors():
    out = random_interpolates(meta4, meta4, alpha=torch.full((2,), 3.0, device="meta"))
    assert out.shape == meta4.shape and out.device.type == "meta"


@pytest.mark.parametrize(
    "call",
    [
        lambda labels: one_hot(labels, 5),
        lambda labels: broadcast_condition(labels, 2, 2, num_classes=5),
        lambda labels: concat_condition(torch.zeros(labels.shape[0], 3, 2, 2), labels, num_classes=5),
        lambda labels: classification_loss(torch.zeros(labels.shape[0], 5), labels),
        lambda labels: _generator()(torch.zeros(labels.shape[0], 3, 16, 16), labels),
    ],
    ids=["one_hot", "broadcast_condition", "concat_condition", "classification_loss", "generator"],
)
@pytest.mark.parametrize("bad", [[0, 5], [-1, 2], [-100, 1]])
def test_out_of_range_labels_fail_even_with_value_checks_off(call, bad):
    labels = torch.tensor(bad)
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\] for num_classes=5"):
        call(labels)
    # without the up-front check the bounds-checked indexing (F.one_hot, gather)
    # still refuses the label: no all-zero code, no silently ignored sample
    with set_value_checks(False), pytest.raises(RuntimeError, match=r"out of bounds|Class values must be"):
        call(labels)


@FAST
@given(k=st.integers(2, 6), labels=st.lists(st.integers(-8, 12), min_size=1, max_size=10), seed=seeds)
def test_sampled_targets_pass_out_of_range_labels_through(k, labels, seed):
    labels = torch.tensor(labels)
    valid = (labels >= 0) & (labels < k)
    if not valid.all():
        with pytest.raises(ValueError, match=rf"labels must lie in \[0, {k - 1}\]"):
            sample_target_labels(labels, k)
    with set_value_checks(False):
        target = sample_target_labels(labels, k, generator=torch.Generator().manual_seed(seed))
    # a bad label stays bad (so one_hot / classification_loss fail on it) ...
    assert torch.equal(target[~valid], labels[~valid])
    # ... and a good one gets a different valid class, as with the checks on
    assert ((target[valid] >= 0) & (target[valid] < k) & (target[valid] != labels[valid])).all()


@FAST
@given(k=st.integers(1, 6), n=st.integers(0, 8), seed=seeds,
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_value_checks_never_change_a_result(k, n, seed, reduction):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64)
    alpha = torch.rand(max(n, 1), generator=g)
    real, fake = torch.randn(max(n, 1), 3, generator=g), torch.randn(max(n, 1), 3, generator=g)

    def run():
        out = [one_hot(labels, k), broadcast_condition(labels, 2, 3, num_classes=k),
               random_interpolates(real, fake, alpha=alpha).detach()]
        if n > 0 or reduction != "mean":
            out.append(classification_loss(logits, labels, reduction=reduction))
        if k >= 2:
            out.append(sample_target_labels(labels, k, generator=torch.Generator().manual_seed(seed)))
        return out

    checked = run()
    with set_value_checks(False):
        unchecked = run()
    for a, b in zip(checked, unchecked):
        assert torch.equal(a, b)


@FAST
@given(a=st.floats(allow_nan=True, allow_infinity=True), b=st.integers(1, 4))
def test_float_alpha_is_accepted_exactly_in_the_unit_interval(a, b):
    real, fake = torch.ones(b, 2), torch.zeros(b, 2)
    if not 0.0 <= a <= 1.0:
        with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\], got "):
            random_interpolates(real, fake, alpha=a)
        return
    out = random_interpolates(real, fake, alpha=a)
    assert out.requires_grad
    # a scalar weight equals the same weight given per sample
    torch.testing.assert_close(out, random_interpolates(real, fake, alpha=torch.full((b,), a)))
    torch.testing.assert_close(out, random_interpolates(real, fake, alpha=torch.tensor(a)))
    torch.testing.assert_close(out.detach(), torch.full((b, 2), a))


@FAST
@given(low=st.floats(-2.0, 2.0), high=st.floats(-2.0, 2.0))
def test_tensor_alpha_outside_the_unit_interval_raises_only_where_checked(low, high):
    alpha = torch.tensor([low, high])
    inside = 0.0 <= alpha.min().item() and alpha.max().item() <= 1.0  # float32 values
    if inside:
        random_interpolates(x4, x4, alpha=alpha)
    else:
        with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
            random_interpolates(x4, x4, alpha=alpha)
    with set_value_checks(False):  # skipped: extrapolation, as torch.lerp computes it
        out = random_interpolates(torch.ones(2, 1), torch.zeros(2, 1), alpha=alpha)
    torch.testing.assert_close(out.detach()[:, 0], alpha)


@FAST
@given(scale=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)), seed=seeds)
def test_grad_scale_is_accepted_exactly_when_positive_and_finite(scale, seed):
    real = torch.randn(3, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)  # ||w|| = 5: penalty 16

    def critic(x):
        return x @ w

    if not (math.isfinite(scale) and scale > 0):
        with pytest.raises(ValueError, match=r"grad_scale must be (> 0|finite), got"):
            gradient_penalty(critic, real, real.flip(0), grad_scale=scale)
        return
    if 1e-300 < scale < 1e300:  # the scaled scores stay finite
        gp = gradient_penalty(critic, real, real.flip(0), grad_scale=scale)
        torch.testing.assert_close(gp, torch.tensor(16.0, dtype=torch.float64))


@settings(max_examples=10, deadline=None, database=None)
@given(bias=st.floats(allow_nan=True, allow_infinity=True, width=32))
def test_attention_bias_is_accepted_exactly_when_finite(bias):
    if not math.isfinite(bias):
        with pytest.raises(ValueError, match=r"attention_bias must be finite"):
            AttentionGenerator(base_channels=1, num_residual_blocks=0, num_downsamples=0, attention_bias=bias)
        return
    g = AttentionGenerator(base_channels=1, num_residual_blocks=0, num_downsamples=0, attention_bias=bias)
    if bias != 0:  # 0 keeps PyTorch's default initialisation
        assert torch.equal(g.attention_head.bias, torch.tensor([bias]))


# --------------------------------------------------------------------------- #
# Empty batches (B = 0) that have a well-defined result
# --------------------------------------------------------------------------- #


@FAST
@given(k=st.integers(1, 6))
def test_empty_batches_give_empty_or_zero_results(k):
    labels = torch.zeros(0, dtype=torch.long)
    assert one_hot(labels, k).shape == (0, k)
    assert broadcast_condition(labels, 2, 3, num_classes=k).shape == (0, k, 2, 3)
    assert concat_condition(torch.zeros(0, 3, 2, 3), labels, num_classes=k).shape == (0, 3 + k, 2, 3)
    if k >= 2:
        assert sample_target_labels(labels, k).shape == (0,)
    logits = torch.zeros(0, k)
    for target in (labels, torch.zeros(0, k)):
        assert classification_loss(logits, target, reduction="none").shape == (0,)
        assert classification_loss(logits, target, reduction="sum").item() == 0.0
    assert per_sample_scores(torch.zeros(0, 1, 3, 3)).shape == (0,)
    assert compose(torch.zeros(0, 1, 2, 2), torch.zeros(0, 3, 2, 2), torch.zeros(0, 3, 2, 2)).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("norm", ["instance", "group", "none"])
def test_generator_and_critic_accept_an_empty_batch(norm):
    g = AttentionGenerator(base_channels=4, num_residual_blocks=1, norm=norm)
    out = g(torch.zeros(0, 3, 16, 16), torch.zeros(0, dtype=torch.long))
    assert [tuple(t.shape) for t in out] == [(0, 3, 16, 16), (0, 1, 16, 16), (0, 3, 16, 16)]
    assert g.forward_features(torch.zeros(0, 3, 16, 16), torch.zeros(0, 5)).shape == (0, 4, 16, 16)
    d = MultiHeadCritic(16, base_channels=2)
    scores = d(out.image)
    assert scores.realness.shape == (0, 1, 4, 4) and scores.logits.shape == (0, 5)


def test_feature_channels_match_the_features():
    g = AttentionGenerator(base_channels=4, num_residual_blocks=0)
    assert g.forward_features(torch.zeros(1, 3, 16, 16), torch.tensor([0])).shape[1] == g.feature_channels
