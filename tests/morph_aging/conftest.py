"""Make the AcGAN example's modules importable in its tests."""

import os
import sys

import pytest
import torch

_EXAMPLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "morph_aging"))
if _EXAMPLE not in sys.path:
    sys.path.insert(0, _EXAMPLE)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one thread (its training and evaluation subprocesses are small)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def nan_critic(monkeypatch):
    """Make ``models.build_critic`` return critics whose realness scores are always NaN."""
    import models

    real_build = models.build_critic

    def build(cfg):
        d = real_build(cfg)
        original = d.forward

        def forward(x):
            out = original(x)
            return type(out)(out.realness * float("nan"), out.logits)

        d.forward = forward
        return d

    monkeypatch.setattr(models, "build_critic", build)
