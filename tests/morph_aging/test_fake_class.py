"""``train.py --d-fake-class``: the critic's age classifier with one class more, for generated faces."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

import attngan
import checkpoints
import train
from ages import NUM_GROUPS
from extras import TINY_CONFIG, tiny_step
from step import StepOptions

TINY = TINY_CONFIG
TRAIN = ["--image-size", "64", "--batch-size", "4", "--num-subjects", "10", "--g-channels", "8", "--g-res-blocks", "1",
         "--d-channels", "8", "--precision", "fp32", "--no-progress", "--device", "cpu", "--critic-warmup", "0"]


def _step(options=None, **kw):
    return tiny_step(options=options, **kw)


def _batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1
    fake = torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1
    return real, fake, torch.tensor([0, 1, 2, 4]), torch.tensor([3, 0, 4, 1])


@pytest.mark.parametrize("fake_class", [False, True])
def test_the_critic_has_one_logit_more_with_the_fake_class(fake_class):
    _, _, d, _ = _step(d_fake_class=fake_class)
    assert d(torch.zeros(2, 3, 32, 32)).logits.shape == (2, NUM_GROUPS + int(fake_class))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("with_gp", [False, True])
@pytest.mark.parametrize("fake_class", [False, True])
def test_the_critic_learns_real_faces_by_group_and_generated_ones_as_the_extra_class(fake_class, with_gp, fused):
    cfg, _, d, step = _step(StepOptions(fused_critic=fused), d_fake_class=fake_class)
    real, fake, source, _ = _batch()
    with torch.no_grad():
        expected = attngan.classification_loss(d(real).logits, source)
        if fake_class:  # every generated face is of class K (the last)
            expected = expected + attngan.classification_loss(d(fake).logits, torch.full((4,), NUM_GROUPS))
    m = step.critic_step(real, fake, F.one_hot(source, NUM_GROUPS).float(), torch.full((4,), 0.5), with_gp=with_gp)
    torch.testing.assert_close(m["d_cls"], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m["d_loss"], cfg.lambda_adv * m["d_adv"] + cfg.lambda_cls * m["d_cls"]
                               + (cfg.lambda_gp * m["gp"] if with_gp else 0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fake_class", [False, True])
def test_the_generator_is_scored_on_every_class_so_it_must_leave_the_fake_one(fake_class):
    cfg, g, d, step = _step(d_fake_class=fake_class)
    real, _, source, target = _batch(1)
    with torch.no_grad():
        logits = d(g(real, F.one_hot(target, NUM_GROUPS).float()).image).logits
        expected = attngan.classification_loss(logits, target)  # over K+1 classes with the fake class
    m = step.generator_step(real, F.one_hot(source, NUM_GROUPS).float(), F.one_hot(target, NUM_GROUPS).float())
    torch.testing.assert_close(m["g_cls"], expected, rtol=1e-4, atol=1e-5)
    if fake_class:  # the fake class's probability is part of the loss: without it the loss is smaller
        assert float(attngan.classification_loss(logits[:, :NUM_GROUPS], target)) < float(expected)


def test_a_fake_class_run_records_it_and_a_resume_without_the_flag_is_a_one_line_error(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert train.main(["--out", out, *TRAIN, "--max-steps", "1", "--d-fake-class"]) == 0
    path = os.path.join(out, "checkpoints", "last.pt")
    state = checkpoints.load_checkpoint(path)
    assert state["config"]["d_fake_class"] is True
    critic = checkpoints.critic_of(state, path)  # what evaluate_photos.py reads the groups' logits from
    assert critic(torch.zeros(1, 3, 64, 64)).logits.shape == (1, NUM_GROUPS + 1)
    assert train.main(["--out", out, *TRAIN, "--max-steps", "2", "--resume"]) != 0
    assert "d_fake_class: checkpoint True vs requested False" in capsys.readouterr().err
