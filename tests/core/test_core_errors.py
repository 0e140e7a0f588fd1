"""Bad input fails with a ValueError / TypeError naming the argument, the expectation and what was given."""

import pytest
import torch

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
)

x4 = torch.zeros(2, 3, 4, 4)
mask = torch.zeros(2, 1, 4, 4)
_GEN = {}


def _generator(**kw):
    key = tuple(sorted(kw.items()))
    if key not in _GEN:
        _GEN[key] = AttentionGenerator(base_channels=4, num_residual_blocks=0, **kw)
    return _GEN[key]


CASES = [
    # ---- wrong rank
    ("compose rank", lambda: compose(torch.zeros(2, 4, 4), x4, x4), ValueError,
     r"attention must have shape \(B, 1, H, W\) or \(B, C, H, W\) \(4 dimensions\), got shape \(2, 4, 4\) \(3 dimensions\)"),
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
     r"alpha must have shape \(B,\) \(1 dimensions\), got shape \(2, 1\)"),
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
    ("generator size 3 downsamples", lambda: _generator(num_downsamples=3)(torch.zeros(1, 3, 16, 20), torch.tensor([0])),
     ValueError, r"image height and width must be divisible by 8 \(2 \*\* num_downsamples\), got 16x20"),
    ("generator 1x1 bottleneck", lambda: _generator()(torch.zeros(1, 3, 4, 4), torch.tensor([0])), ValueError,
     r"image must be larger than 4x4 \(2 \*\* num_downsamples\).*got 4x4"),
    # ---- critic image size
    ("critic size", lambda: MultiHeadCritic(32, base_channels=2)(torch.zeros(1, 3, 16, 16)), ValueError,
     r"image must have shape \(B, 3, 32, 32\), got \(1, 3, 16, 16\)"),
    ("critic non-square size", lambda: MultiHeadCritic((32, 48), base_channels=2)(torch.zeros(1, 3, 48, 32)), ValueError,
     r"image must have shape \(B, 3, 32, 48\), got \(1, 3, 48, 32\)"),
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
     r"form must be one of 'paper', 'released', got 'ganimation'"),
    ("regularizer module form", lambda: AttentionRegularizer(form="code"), ValueError,
     r"form must be one of 'paper', 'released', got 'code'"),
    ("generator norm", lambda: AttentionGenerator(norm="batch"), ValueError,
     r"norm must be one of 'instance', 'group', 'none', got 'batch'"),
    ("generator upsample", lambda: AttentionGenerator(upsample="bilinear"), ValueError,
     r"upsample must be one of 'transpose', 'nearest', got 'bilinear'"),
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
     r"condition and image must have the same batch size B, got condition shape \(3, 2\) and image shape \(2, 3, 4, 4\)"),
    ("generator condition batch", lambda: _generator()(torch.zeros(2, 3, 16, 16), torch.tensor([0, 1, 2])), ValueError,
     r"condition must have shape \(2, 5\) or \(2,\), got \(3,\)"),
    ("generator codes batch", lambda: _generator()(torch.zeros(2, 3, 16, 16), torch.zeros(1, 5)), ValueError,
     r"condition must have shape \(2, 5\) or \(2,\), got \(1, 5\)"),
    ("generator codes width", lambda: _generator()(torch.zeros(2, 3, 16, 16), torch.zeros(2, 4)), ValueError,
     r"condition must have num_classes=5 columns, got shape \(2, 4\)"),
    ("labels without num_classes", lambda: broadcast_condition(torch.tensor([0, 1]), 2, 2), ValueError,
     r"condition of shape \(B,\) holds integer labels: pass num_classes .*got condition shape \(2,\)"),
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
