"""The frozen age judge (``train.py --lambda-judge``): the classifier held fixed, its term in the generator's
loss, its place in the checkpoint and on resume, and the resizing helpers it rests on."""

from __future__ import annotations

import json
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import attngan
import checkpoints
import config
import estimators
import train
import training
from extras import TINY_CONFIG, step_before_and_after, tiny_step
from step import judge_views

TINY = TINY_CONFIG
TRAIN = ["--image-size", "64", "--batch-size", "4", "--num-subjects", "10", "--g-channels", "8", "--g-res-blocks", "1",
         "--d-channels", "8", "--precision", "fp32", "--no-progress", "--log-every", "1", "--device", "cpu",
         "--critic-warmup", "0"]


def _judge(size=16, seed=0):
    torch.manual_seed(seed)
    return estimators.FrozenClassifier(estimators.AgeGroupNet(width=4), size)


def test_a_frozen_classifier_takes_no_gradient_stays_in_eval_mode_and_passes_gradients_to_its_input():
    judge = _judge()
    assert not any(p.requires_grad for p in judge.parameters())
    judge.train()
    assert not judge.training and not judge.net.training  # batch norm keeps its running statistics
    x = (torch.rand(2, 3, 24, 24) * 2 - 1).requires_grad_()
    judge(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in judge.parameters())


@settings(max_examples=15, deadline=None)
@given(side=st.integers(16, 48), batch=st.integers(1, 3))
def test_a_frozen_classifier_judges_any_size_as_its_net_judges_the_resized_image(side, batch):
    judge = _judge(size=16)
    x = torch.rand(batch, 3, side, side) * 2 - 1
    with torch.no_grad():
        out = judge(x)
        assert out.shape == (batch, 5)
        torch.testing.assert_close(out, judge.net(estimators.resized(x, 16)))


def test_the_frozen_classifier_is_differentiable_in_float64():
    judge = _judge(size=16).double()
    x = (torch.rand(1, 3, 20, 20, dtype=torch.float64) * 2 - 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: judge(t), (x,), eps=1e-6, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(level=st.integers(0, 255), side=st.integers(4, 40), size=st.integers(4, 40), n=st.integers(0, 5))
def test_shrinking_keeps_a_constant_image_constant_and_gives_the_size(level, side, size, n):
    images = torch.full((n, 3, side, side), level, dtype=torch.uint8)
    out = estimators.shrink_levels(images, size, chunk=2)
    assert out.shape == (n, 3, size, size) and out.dtype == torch.uint8
    assert bool((out == level).all())


def test_shrinking_to_the_same_size_returns_the_images_and_resizing_a_float_image_likewise():
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    assert estimators.shrink_levels(images, 8) is images
    x = torch.rand(2, 3, 8, 8)
    assert estimators.resized(x, 8) is x


def test_the_group_judge_has_the_fitted_classifiers_shape():
    judge = estimators.group_judge(128)
    assert judge.size == estimators.GROUP_CLASSIFIER_SIZE == 64
    assert estimators.group_judge(32).size == 32
    photos = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    net = estimators.fit_group_classifier(photos, torch.arange(8) % 5, steps=1, batch_size=4)
    judge.net.load_state_dict(net.state_dict())  # the checkpoint's judge fits what fit_group_classifier makes


def _step(judge=None, **kw):
    cfg, g, _, step = tiny_step(judge=judge, **kw)
    return cfg, g, step


def test_the_judge_term_is_the_cross_entropy_of_the_judge_on_the_aged_face_and_enters_the_loss():
    judge = _judge()
    judge_before = {k: v.clone() for k, v in judge.state_dict().items()}
    cfg, g, step = _step(judge, lambda_judge=7.0)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    m, probe, target = step_before_and_after(cfg, g, step, real, labels)
    with torch.no_grad():
        expected = attngan.classification_loss(judge(probe(real, target).image), target)
    torch.testing.assert_close(m["g_judge"], expected, rtol=1e-4, atol=1e-5)
    plain = 10 * m["g_adv"] + 2 * m["g_att"] + 100 * m["g_cls"]
    torch.testing.assert_close(m["g_loss"], plain + 7 * m["g_judge"])
    assert all(torch.equal(v, judge.state_dict()[k]) for k, v in judge_before.items())  # never trained


def test_with_judge_views_the_judge_scores_the_drawn_view_of_the_aged_face():
    torch.manual_seed(1)  # a judge that reads every pixel where it is, so that a view changes its verdict
    judge = estimators.FrozenClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 5)), 32)
    cfg, g, step = _step(judge, lambda_judge=3.0, judge_views=0.2)
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    m, probe, target = step_before_and_after(cfg, g, step, real, labels)
    views = judge_views(cfg.seed, 0, 0, 4, 0.2)
    with torch.no_grad():
        aged = probe(real, target).image
        expected = attngan.classification_loss(judge(attngan.apply_affine(aged, views)), target)
        plain = attngan.classification_loss(judge(aged), target)
    torch.testing.assert_close(m["g_judge"], expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(expected, plain, rtol=1e-3, atol=1e-4)  # the view is not the face as it is


def test_judge_views_are_drawn_per_step_for_the_global_batch_and_sliced_per_process():
    whole = judge_views(3, 7, 0, 6, 0.1, world=1)
    torch.testing.assert_close(torch.cat([judge_views(3, 7, r, 2, 0.1, world=3) for r in range(3)]), whole)
    assert torch.equal(whole, judge_views(3, 7, 0, 6, 0.1))  # a resumed run draws the same views
    assert not torch.equal(whole, judge_views(3, 8, 0, 6, 0.1))  # a new view every step
    assert (whole[:, 0, 0] < 0).any() and (whole[:, 0, 0] > 0).any()  # mirrored and not


@pytest.mark.parametrize("value", [-0.1, 0.6, float("nan")])
def test_judge_views_out_of_range_are_refused_naming_the_flag(value):
    with pytest.raises(ValueError, match="--judge-views"):
        config.validate_config(config.TrainConfig(**TINY, judge_views=value))
    assert config.TrainConfig().judge_views == 0.0


def test_judge_views_without_a_judge_are_refused_naming_both_flags():
    with pytest.raises(ValueError, match="--judge-views.*--lambda-judge"):
        config.validate_config(config.TrainConfig(**TINY, judge_views=0.1))
    config.validate_config(config.TrainConfig(**TINY, judge_views=0.1, lambda_judge=1.0))


def test_a_judge_fitted_on_views_differs_and_is_deterministic():
    photos = (torch.rand(16, 3, 16, 16) * 255).to(torch.uint8)
    labels = torch.arange(16) % 5

    def fit(views):
        return estimators.fit_group_classifier(photos, labels, steps=3, batch_size=4, width=4, views=views)

    plain, viewed, again = fit(0.0), fit(0.2), fit(0.2)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in viewed.state_dict().items())
    assert any(not torch.equal(v, plain.state_dict()[k]) for k, v in viewed.state_dict().items()
               if v.is_floating_point())


def test_a_balanced_judge_sees_every_group_alike(monkeypatch):
    """``balanced=True`` (``--balance-groups``): the judge's batches draw a group of 10 photos as often as one
    of 90; without it, a tenth of the time. The plain draw is the one the judges of earlier runs were fitted on."""
    photos = (torch.rand(100, 3, 16, 16) * 255).to(torch.uint8)
    labels = (torch.arange(100) >= 90).long()
    seen = []
    cross_entropy = estimators.F.cross_entropy
    monkeypatch.setattr(estimators.F, "cross_entropy", lambda logits, y: seen.append(y) or cross_entropy(logits, y))

    def share_of_the_small_group(balanced):
        seen.clear()
        estimators.fit_group_classifier(photos, labels, steps=40, batch_size=32, width=4, balanced=balanced)
        return float(torch.cat(seen).double().mean())

    assert abs(share_of_the_small_group(True) - 0.5) < 0.06 and abs(share_of_the_small_group(False) - 0.1) < 0.04


def test_without_a_weight_or_a_judge_there_is_no_judge_term():
    real, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    assert "g_judge" not in _step(_judge())[2](real, labels, 0)  # lambda_judge 0 (the default)
    assert "g_judge" not in _step(None, lambda_judge=5.0)[2](real, labels, 0)


def test_a_negative_judge_weight_is_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--lambda-judge"):
        config.validate_config(config.TrainConfig(**TINY, lambda_judge=-1.0))
    assert config.TrainConfig().lambda_judge == 0.0  # off unless asked: not the paper's


def _judge_weights(path):
    state = checkpoints.load_checkpoint(path)
    return state, checkpoints.judge_of(state, path)


def test_a_run_with_a_judge_keeps_it_in_its_checkpoints_and_resumes_against_it(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert train.main(["--out", str(out), *TRAIN, "--max-steps", "2", "--lambda-judge", "3", "--judge-steps", "2"]) == 0
    assert "fitting the frozen age judge (--lambda-judge 3): 45 training images at 64 px, 2 steps" in \
        capsys.readouterr().err
    ckpt = os.path.join(out, "checkpoints", "last.pt")
    state, judge = _judge_weights(ckpt)
    assert checkpoints.JUDGE_PART in state["digest"]["covers"] and judge.size == 64
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("g_judge" in r for r in lines)

    def refit(*a, **k):
        raise AssertionError("a resumed run must keep its judge, not fit another")

    monkeypatch.setattr(training, "fit_judge", refit)
    assert train.main(["--out", str(out), *TRAIN, "--max-steps", "3", "--lambda-judge", "3", "--judge-steps", "2",
                       "--resume"]) == 0
    _, again = _judge_weights(ckpt)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in judge.state_dict().items())


def test_a_run_without_a_judge_has_none_and_a_misfit_judge_is_a_one_line_error(tmp_path):
    out = tmp_path / "run"
    assert train.main(["--out", str(out), *TRAIN, "--max-steps", "1"]) == 0
    ckpt = os.path.join(out, "checkpoints", "last.pt")
    state, judge = _judge_weights(ckpt)
    assert judge is None and checkpoints.JUDGE_PART not in state
    state[checkpoints.JUDGE_PART] = estimators.AgeGroupNet(width=4).state_dict()  # not the judge's width
    with pytest.raises(checkpoints.CheckpointError, match="weights do not fit the frozen age judge"):
        checkpoints.judge_of(state, ckpt)
