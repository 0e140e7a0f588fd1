"""What the example's training step takes from PyTorch beyond its documented API.

* The step skips an update whose loss or gradients are not finite without
  reading the decision back to the host: it hands it to fused Adam as the
  optimiser's ``found_inf`` attribute (with ``grad_scale`` None), the
  attributes ``torch.amp.GradScaler`` sets, and fused Adam then leaves the
  parameters, its moments and its step count as they were.
* The gradient norm behind that decision is ``torch._foreach_norm``, one
  kernel for all gradients.
* A compiled module is unwrapped through ``_orig_mod`` to save its weights.

Each test fails with a message naming what a PyTorch release changed, so an
upgrade breaks here and not as a training run that silently applies (or
skips) the wrong updates.
"""

from __future__ import annotations

import torch
from torch import nn


def _changed(what: str, who: str) -> str:
    return f"PyTorch {torch.__version__} changed {what}; {who} relies on it"


def _model_and_adam(fused: bool):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.999), **({"fused": True} if fused else {}))
    return model, opt


def _backward_and_step(model, opt, found_inf=None):
    """As the training step: gradients, then ``found_inf`` / ``grad_scale`` set for one ``step()``."""
    opt.zero_grad(set_to_none=True)
    model(torch.ones(2, 3, 6, 6)).square().sum().backward()
    if found_inf is None:
        opt.step()
        return
    opt.found_inf, opt.grad_scale = torch.tensor(found_inf), None
    try:
        opt.step()
    finally:
        del opt.found_inf, opt.grad_scale


def _snapshot(model, opt):
    params = [p.detach().clone() for p in model.parameters()]
    state = [{k: v.clone() for k, v in opt.state[p].items()} for p in model.parameters()]
    return params, state


def test_fused_adam_skips_its_update_when_found_inf_is_one():
    model, opt = _model_and_adam(fused=True)
    _backward_and_step(model, opt, found_inf=0.0)  # a first update: moments and steps exist
    params, state = _snapshot(model, opt)
    _backward_and_step(model, opt, found_inf=1.0)
    for p, before in zip(model.parameters(), params):
        assert torch.equal(p, before), _changed(
            "fused Adam's handling of the optimiser's found_inf attribute (found_inf=1 changed the parameters)",
            "the training step's skip of non-finite updates (AcGANStep._apply)")
    for p, before in zip(model.parameters(), state):
        for key, value in before.items():
            assert torch.equal(opt.state[p][key], value), _changed(
                f"fused Adam's handling of found_inf (found_inf=1 changed the state {key!r})",
                "the training step's skip of non-finite updates (AcGANStep._apply)")


def test_fused_adam_updates_as_adam_when_found_inf_is_zero():
    fused, opt_fused = _model_and_adam(fused=True)
    plain, opt_plain = _model_and_adam(fused=False)
    for _ in range(2):
        _backward_and_step(fused, opt_fused, found_inf=0.0)
        _backward_and_step(plain, opt_plain)
    for p, q in zip(fused.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=lambda m: _changed(
            "fused Adam's update when found_inf=0 (it no longer equals Adam's)",
            "the training step (AcGANStep._apply)") + "\n" + m)
        assert float(opt_fused.state[p]["step"]) == 2, _changed(
            "fused Adam's step count when found_inf=0", "the training step (AcGANStep._apply)")


def test_foreach_norm_gives_each_tensors_norm_and_keeps_nonfinite_values():
    assert hasattr(torch, "_foreach_norm"), _changed(
        "torch: the private function torch._foreach_norm is gone", "the training step's gradient check")
    grads = [torch.tensor([3.0, 4.0]), torch.ones(2, 3, 2), torch.tensor([1.0, float("inf")]),
             torch.tensor([[float("nan")]])]
    norms = torch._foreach_norm(grads)
    assert len(norms) == len(grads) and all(n.ndim == 0 for n in norms), _changed(
        "what torch._foreach_norm returns (expected one 0-d tensor per tensor)", "the training step's gradient check")
    assert norms[0] == 5 and torch.isclose(norms[1], torch.tensor(12.0).sqrt()), _changed(
        "torch._foreach_norm's default (expected the 2-norm)", "the training step's gradient check")
    assert norms[2] == float("inf") and norms[3].isnan(), _changed(
        "how torch._foreach_norm treats infinity and NaN (expected them kept)",
        "the training step's skip of non-finite updates")


def test_a_compiled_module_keeps_the_original_as_orig_mod():
    """``torch.compile`` wraps lazily (nothing compiles here); the example saves the wrapped module."""
    model = nn.Linear(2, 2)
    compiled = torch.compile(model)
    assert getattr(compiled, "_orig_mod", None) is model, _changed(
        "torch.compile's wrapper: it no longer keeps the module as _orig_mod",
        "the example's unwrapping of compiled networks (their checkpoints' state-dict keys)")
