"""--g-source: the generator is told the input's age group after the target's (zeros where it is unknown), in
training, in the inference helpers, in evaluate_photos.py's aging and in age.py --source-age."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import attngan
import config
import models
import photo_protocol as pp
from ages import NUM_GROUPS
from extras import TINY_CONFIG, step_before_and_after, tiny_step
from step import flip_mask, source_told_mask

TINY = TINY_CONFIG
CPU = torch.device("cpu")

_step = tiny_step


def _generator(g_source: float):
    return models.build_generator(config.validate_config(config.TrainConfig(**TINY, g_source=g_source))).eval()


groups = st.lists(st.integers(0, NUM_GROUPS - 1), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, NUM_GROUPS - 1), st.integers(0, NUM_GROUPS - 1)), min_size=1,
                      max_size=8))
def test_codes_are_the_target_then_the_source_or_zeros(pairs):
    told_g, plain_g = _generator(0.75), _generator(0.0)
    target = torch.tensor([t for t, _ in pairs])
    source = torch.tensor([s for _, s in pairs])
    codes = models.generator_codes(told_g, target, source)
    assert codes.shape == (len(pairs), 2 * NUM_GROUPS) and codes.dtype == torch.float32
    assert torch.equal(codes[:, :NUM_GROUPS], attngan.one_hot(target, NUM_GROUPS))
    assert torch.equal(codes[:, NUM_GROUPS:], attngan.one_hot(source, NUM_GROUPS))
    unknown = models.generator_codes(told_g, target)
    assert torch.equal(unknown[:, :NUM_GROUPS], codes[:, :NUM_GROUPS]) and not unknown[:, NUM_GROUPS:].any()
    # soft target codes (the aging animation) pass through; a plain generator gets the target as it came
    soft = torch.rand(len(pairs), NUM_GROUPS)
    assert torch.equal(models.generator_codes(told_g, soft, source)[:, :NUM_GROUPS], soft)
    assert models.generator_codes(plain_g, target, source) is target


def test_the_generator_takes_twice_the_codes_only_when_told_the_source():
    assert _generator(0.5).num_classes == 2 * NUM_GROUPS and models.told_source(_generator(1.0))
    assert _generator(0.0).num_classes == NUM_GROUPS and not models.told_source(_generator(0.0))
    assert models.told_source(models.build_generator(config.validate_config(
        config.TrainConfig(**TINY, g_source=0.5, generator_mode="no-attention"))))
    assert config.TrainConfig().g_source == 0.0  # the paper's generator unless asked


def test_a_mismatched_source_is_refused():
    with pytest.raises(ValueError, match="one group per target"):
        models.generator_codes(_generator(1.0), torch.tensor([1, 2]), torch.tensor([0]))


def test_told_masks_follow_their_rate_and_stream():
    assert not source_told_mask(3, 7, 0, 64, 0.0, CPU).any() and source_told_mask(3, 7, 0, 64, 1.0, CPU).all()
    a = source_told_mask(3, 7, 0, 400, 0.75, CPU)
    assert torch.equal(a, source_told_mask(3, 7, 0, 400, 0.75, CPU)) and 260 < int(a.sum()) < 340
    assert not torch.equal(a, flip_mask(3, 7, 0, 400, CPU) | a)  # a stream of its own, not the flips'
    halves = torch.cat([source_told_mask(3, 7, r, 200, 0.75, CPU, world=2) for r in range(2)])
    assert torch.equal(a, halves)


def test_training_tells_the_source_forward_and_the_target_back(monkeypatch):
    """The generator's first call ages to the target told the source (or zeros where the mask withholds it);
    the cycle's call ages back told the target, withheld alike."""
    cfg, g, _, step = _step(g_source=0.5, lambda_rec=10.0)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    seen = []
    forward = g.forward
    monkeypatch.setattr(g, "forward", lambda x, c: (seen.append(c.detach().clone()), forward(x, c))[1])
    m, _, target = step_before_and_after(cfg, g, step, real, labels)
    told = source_told_mask(cfg.seed, 0, 0, 4, 0.5, CPU)
    assert told.any() and not told.all()  # step 0 of seed 0 tells some sources and withholds others
    keep = told.float().unsqueeze(1)
    src, tgt = attngan.one_hot(labels, NUM_GROUPS), attngan.one_hot(target, NUM_GROUPS)
    torch.testing.assert_close(seen[0], torch.cat([tgt, src * keep], 1))
    torch.testing.assert_close(seen[-1], torch.cat([src, tgt * keep], 1))
    assert len(seen) == 2 and "g_rec" in m


def test_the_cycle_term_uses_the_told_codes():
    cfg, g, _, step = _step(g_source=1.0, lambda_rec=10.0)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    m, probe, target = step_before_and_after(cfg, g, step, real, labels)
    with torch.no_grad():
        fake = probe(real, models.generator_codes(probe, target, labels)).image
        back = probe(fake, models.generator_codes(probe, labels, target)).image
    torch.testing.assert_close(m["g_rec"], (back - real).abs().mean(), rtol=1e-4, atol=1e-5)


def test_inference_helpers_pass_the_sources_on():
    g = _generator(1.0)
    images, sources = torch.rand(3, 3, 32, 32) * 2 - 1, torch.tensor([4, 0, 2])
    out = models.age_all_groups(g, images, sources)
    with torch.no_grad():
        for k in range(NUM_GROUPS):
            direct = g(images, models.generator_codes(g, torch.full((3,), k), sources)).image
            torch.testing.assert_close(out.image[:, k], direct)
    unknown = models.age_all_groups(g, images)
    assert not torch.allclose(unknown.image, out.image)  # the source code reaches the output
    aged, _ = pp.age_every_group(g, images, sources=sources)
    assert aged.shape == out.image.shape
    torch.testing.assert_close(aged, out.image, atol=1 / 127.5, rtol=0)  # up to 8-bit quantisation
    _, frames = models.age_gradually(g, images[0], steps_between=2, source=4)
    torch.testing.assert_close(frames.image[::2], out.image[0], atol=1e-5, rtol=0)  # whole positions are groups


def test_the_paper_protocol_tells_the_source_group():
    """evaluate.py's faces of source group s are aged told s (a --g-source generator), or told nothing."""
    import paper_protocol
    from pictures import quantize

    class Bar:
        def update(self, n):
            pass

    g, images = _generator(1.0), torch.rand(3, 3, 32, 32) * 2 - 1
    told = paper_protocol.generate(g, images, 3, CPU, 2, Bar(), source=1)
    with torch.no_grad():
        direct = quantize(g(images, models.generator_codes(g, torch.full((3,), 3), torch.full((3,), 1))).image)
        unknown = quantize(g(images, models.generator_codes(g, torch.full((3,), 3))).image)
    assert torch.equal(told, direct) and torch.equal(paper_protocol.generate(g, images, 3, CPU, 2, Bar()), unknown)
