"""The pieces of the photo recipe: the condition in the normalisation layers, border padding, the cycle
reconstruction term, mirrored training images and the cpu-photo preset."""

from __future__ import annotations

import pytest
import torch

import attngan
import config
import train
from extras import TINY_CONFIG, step_before_and_after, tiny_step
from step import flip_mask, grey_mask

TINY = TINY_CONFIG

_step = tiny_step


def test_the_generator_follows_the_condition_and_padding_flags():
    _, g, _, _ = _step(g_condition="norm", g_padding="reflect")
    assert g.condition == "norm" and g.padding == "reflect"
    assert any(isinstance(m, attngan.ConditionalNorm2d) for m in g.modules())
    _, g, _, _ = _step(g_condition="input")
    assert g.condition == "input" and not any(isinstance(m, attngan.ConditionalNorm2d) for m in g.modules())
    assert g.color == "absolute"  # the paper's colour proposal unless asked
    _, g, _, _ = _step(g_color="residual")
    x = torch.rand(2, 3, 32, 32) * 1.8 - 0.9
    assert g.color == "residual" and torch.allclose(g(x, torch.tensor([0, 4])).image, x, atol=1e-5)


def test_border_padding_with_input_planes_is_refused_naming_both_flags():
    with pytest.raises(ValueError, match=r"--g-padding: reflect padding needs --g-condition norm"):
        config.validate_config(config.TrainConfig(**TINY, g_condition="input", g_padding="reflect"))
    with pytest.raises(ValueError, match="--lambda-rec"):
        config.validate_config(config.TrainConfig(**TINY, lambda_rec=-1.0))


def test_reconstruction_term_is_the_cycle_back_to_the_source_group():
    """g_loss gains lambda_rec * mean |G(G(x, y_t), y_s) - x|; g_rec is that mean, computed before the update."""
    cfg, g, d, step = _step(lambda_rec=10.0)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    m, probe, target = step_before_and_after(cfg, g, step, real, labels)
    with torch.no_grad():
        fake = probe(real, target).image
        expected = (probe(fake, labels).image - real).abs().mean()
    torch.testing.assert_close(m["g_rec"], expected, rtol=1e-4, atol=1e-5)
    assert "g_rec" not in _step()[3](real, labels, 0)  # off by default


def test_the_reconstruction_term_enters_the_generator_loss():
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    m = _step(lambda_rec=10.0)[3](real, labels, 0)
    plain = 10 * m["g_adv"] + 2 * m["g_att"] + 100 * m["g_cls"]
    torch.testing.assert_close(m["g_loss"], plain + 10 * m["g_rec"])


def test_flip_masks_are_reproducible_independent_and_split_across_processes():
    a = flip_mask(3, 7, 0, 64, torch.device("cpu"))
    assert a.dtype == torch.bool and torch.equal(a, flip_mask(3, 7, 0, 64, torch.device("cpu")))
    assert 10 < int(a.sum()) < 54  # about half
    assert not torch.equal(a, flip_mask(3, 8, 0, 64, torch.device("cpu")))
    whole = flip_mask(3, 7, 0, 8, torch.device("cpu"), world=2)
    halves = torch.cat([flip_mask(3, 7, r, 4, torch.device("cpu"), world=2) for r in range(2)])
    assert torch.equal(whole, halves)


def test_mirroring_feeds_the_critic_the_flipped_images(monkeypatch):
    """With --hflip the iteration sees each image mirrored where the flip mask says so, and the targets
    and penalty weights of the iteration are unchanged."""
    cfg, _, d, step = _step(hflip=True)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    seen = []
    original = d.forward
    monkeypatch.setattr(d, "forward", lambda x: (seen.append(x.detach().clone()), original(x))[1])
    step(real, labels, 5)
    flips = flip_mask(cfg.seed, 5, 0, 4, torch.device("cpu"))
    assert flips.any() and not flips.all()  # step 5 of seed 0 mirrors some images and keeps others
    expected = torch.where(flips.view(4, 1, 1, 1), real.flip(-1), real)
    torch.testing.assert_close(seen[0][:4], expected)


def test_grey_masks_follow_their_rate_and_stream():
    cpu = torch.device("cpu")
    assert not grey_mask(3, 7, 0, 64, 0.0, cpu).any() and grey_mask(3, 7, 0, 64, 1.0, cpu).all()
    a = grey_mask(3, 7, 0, 400, 0.2, cpu)
    assert torch.equal(a, grey_mask(3, 7, 0, 400, 0.2, cpu)) and 40 < int(a.sum()) < 120  # about a fifth
    assert not torch.equal(a, flip_mask(3, 7, 0, 400, cpu))  # a stream of its own
    halves = torch.cat([grey_mask(3, 7, r, 200, 0.2, cpu, world=2) for r in range(2)])
    assert torch.equal(a, halves)


def test_grey_inputs_feed_critic_and_generator_the_greyed_images(monkeypatch):
    """With --grey-inputs the critic's real images and the generator's inputs are grey where the mask says, and
    the iteration's targets are those of a run without it."""
    cfg, g, d, step = _step(grey_inputs=0.5)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    seen_d, seen_g = [], []
    forward_d, forward_g = d.forward, g.forward
    monkeypatch.setattr(d, "forward", lambda x: (seen_d.append(x.detach().clone()), forward_d(x))[1])
    monkeypatch.setattr(g, "forward", lambda x, c: (seen_g.append(x.detach().clone()), forward_g(x, c))[1])
    step(real, labels, 2)
    greys = grey_mask(cfg.seed, 2, 0, 4, 0.5, torch.device("cpu"))
    assert greys.any() and not greys.all()  # step 2 of seed 0 greys some images and keeps others
    expected = torch.where(greys.view(4, 1, 1, 1), attngan.grayscale(real), real)
    torch.testing.assert_close(seen_d[0][:4], expected)
    torch.testing.assert_close(seen_g[0], expected)


@pytest.mark.parametrize("field", ["grey_inputs", "g_source"])
@pytest.mark.parametrize("rate, words", [(-0.1, r"must lie in \[0, 1\]"), (1.5, r"must lie in \[0, 1\]"),
                                         (float("nan"), "must be a finite number")])
def test_a_share_outside_zero_to_one_is_refused(field, rate, words):
    """--grey-inputs and --g-source are probabilities."""
    with pytest.raises(ValueError, match=f"--{field.replace('_', '-')}: " + words):
        config.validate_config(config.TrainConfig(**TINY, **{field: rate}))


def test_cpu_photo_preset_resolves_and_the_paper_keeps_its_recipe():
    cfg = train.parse_config(["--preset", "cpu-photo"])
    assert cfg.image_size == 64 and cfg.g_condition == "norm" and cfg.max_minutes <= 30
    assert cfg.lambda_rec == 10.0 and cfg.g_attention_bias == 2.0 and cfg.g_color == "residual" and cfg.lr == 2e-4
    assert train.parse_config(["--preset", "cpu-photo", "--lr", "1e-4"]).lr == 1e-4
    assert train.parse_config(["--preset", "cpu-photo", "--g-color", "absolute"]).g_color == "absolute"
    assert train.parse_config(["--preset", "cpu-photo", "--g-attention-bias", "0"]).g_attention_bias == 0.0
    paper = train.parse_config(["--preset", "paper"])
    assert (paper.g_condition, paper.g_padding, paper.lambda_rec, paper.hflip) == ("input", "zeros", 0.0, False)
    demo = train.parse_config(["--preset", "cpu-demo"])
    assert demo.lambda_rec == 0.0 and demo.hflip is False
    assert paper.g_color == demo.g_color == "absolute" and paper.lr == demo.lr == 1e-4


def test_a_saved_config_without_the_colour_field_keeps_the_paper_colour_proposal():
    """Checkpoints written before --g-color existed were trained with the paper's proposal, cpu-photo's too."""
    saved = train.parse_config(["--preset", "cpu-photo", "--device", "cpu"]).to_dict()
    del saved["g_color"]
    assert config.config_from_dict(saved).g_color == "absolute"
    assert config.config_from_dict({**saved, "g_color": "residual"}).g_color == "residual"
