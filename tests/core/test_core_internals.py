"""What the library's CPU kernels take from PyTorch beyond its documented API.

Two faster forms compute what a plain module would:

* the critic's ``_PatchConv2d`` computes a convolution as image patches times
  weights (``Tensor.unfold``, ``F.linear``), reading ``nn.Conv2d``'s
  geometry attributes;
* the generator's fused heads run its two 7x7 heads as one convolution; they
  pad with ``nn.Conv2d``'s private ``_reversed_padding_repeated_twice`` and
  see whether a head carries hooks by reading ``nn.Module``'s private hook
  dictionaries.

Each test below fails with a message naming what a PyTorch release changed
and which kernel relies on it, so that an upgrade breaks here, loudly, and
not as a silently different training run (see "CPU kernels and the PyTorch
internals they rely on" in the API reference).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attngan import AttentionGenerator
from attngan.critic import _PatchConv2d
from attngan.generator import _plain_conv

MODULE = nn.modules.module


def _changed(what: str, who: str) -> str:
    return f"PyTorch {torch.__version__} changed {what}; {who} relies on it"


# ----------------------------------------------------------------------------- the patch convolution


@pytest.mark.parametrize("channels_last", [False, True])
def test_unfolded_windows_are_ordered_as_the_convolution_weights(channels_last):
    """``x.unfold(2, kh, sh).unfold(3, kw, sw)`` gives (B, C, h, w, kh, kw) windows in the
    order of ``F.unfold``'s columns, which is the order of a weight (O, C, kh, kw); a
    channels_last weight is (O, kh, kw, C) in memory."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 8, generator=gen, dtype=torch.float64)
    windows = F.pad(x, (1, 1, 1, 1)).unfold(2, 4, 2).unfold(3, 4, 2)
    assert windows.shape == (2, 3, 4, 4, 4, 4), _changed(
        f"the shape of Tensor.unfold's windows (got {tuple(windows.shape)}, expected (B, C, h, w, kh, kw))",
        "attngan.critic._PatchConv2d")
    patches = windows.permute(0, 2, 3, 1, 4, 5).reshape(2 * 4 * 4, 3 * 4 * 4)
    columns = F.unfold(x, 4, padding=1, stride=2).transpose(1, 2).reshape(2 * 4 * 4, 3 * 4 * 4)
    assert torch.equal(patches, columns), _changed(
        "the order of Tensor.unfold's windows against F.unfold's (C, kh, kw) columns", "attngan.critic._PatchConv2d")
    weight = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    if channels_last:
        weight = weight.contiguous(memory_format=torch.channels_last)
        assert not weight.is_contiguous() and weight.permute(0, 2, 3, 1).is_contiguous(), _changed(
            "the strides of a channels_last weight (expected (O, kh, kw, C) in memory)",
            "attngan.critic._PatchConv2d's channels_last branch")


def test_conv2d_keeps_its_geometry_as_tuples():
    """``_PatchConv2d`` unpacks ``padding`` and ``stride`` as pairs and compares ``dilation`` with ``(1, 1)``."""
    conv = nn.Conv2d(3, 4, 4, stride=2, padding=1)
    for name, value in (("padding", (1, 1)), ("stride", (2, 2)), ("dilation", (1, 1)), ("kernel_size", (4, 4))):
        assert getattr(conv, name) == value and isinstance(getattr(conv, name), tuple), _changed(
            f"how nn.Conv2d stores {name} (got {getattr(conv, name)!r}, expected the tuple {value!r})",
            "attngan.critic._PatchConv2d")
    assert conv.groups == 1 and conv.padding_mode == "zeros", _changed(
        "nn.Conv2d's groups / padding_mode defaults", "attngan.critic._PatchConv2d")


@pytest.mark.parametrize("channels_last", [False, True])
def test_patch_convolution_equals_conv2d_up_to_second_derivatives(channels_last):
    """Values, gradients and the double backward of the gradient penalty, at the critic's geometry."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = _PatchConv2d(4, 3, 4, stride=2, padding=1).double().to(memory_format=fmt)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_(True)
    out, ref = conv(x), nn.Conv2d.forward(conv, x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12, msg=lambda m: _changed(
        "a product of F.linear, Tensor.unfold or F.pad", "attngan.critic._PatchConv2d (it must equal nn.Conv2d)")
        + "\n" + m)
    (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    (gx_ref,) = torch.autograd.grad(ref.square().sum(), x, create_graph=True)
    torch.testing.assert_close(gx, gx_ref, msg=lambda m: _changed(
        "the backward of Tensor.unfold or F.linear", "attngan.critic._PatchConv2d") + "\n" + m)
    (gw,) = torch.autograd.grad(gx.square().sum(), conv.weight)
    (gw_ref,) = torch.autograd.grad(gx_ref.square().sum(), conv.weight)
    torch.testing.assert_close(gw, gw_ref, msg=lambda m: _changed(
        "the double backward of Tensor.unfold or F.linear",
        "attngan.critic._PatchConv2d (the gradient penalty differentiates its gradient)") + "\n" + m)
    assert torch.autograd.gradgradcheck(conv, (x,)), _changed(
        "second derivatives through Tensor.unfold", "attngan.critic._PatchConv2d")


# ----------------------------------------------------------------------------- the fused generator heads


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_pads_with_its_reversed_padding_repeated_twice(mode):
    """The fused heads pad once with ``_reversed_padding_repeated_twice`` and convolve unpadded,
    as ``nn.Conv2d`` does for a padding mode other than zeros."""
    conv = nn.Conv2d(2, 3, (7, 5), padding=(3, 2), padding_mode=mode).double()
    assert hasattr(conv, "_reversed_padding_repeated_twice"), _changed(
        "nn.Conv2d: it no longer has the private attribute _reversed_padding_repeated_twice",
        "attngan.generator.AttentionGenerator._heads")
    assert list(conv._reversed_padding_repeated_twice) == [2, 2, 3, 3], _changed(
        f"nn.Conv2d._reversed_padding_repeated_twice (got {conv._reversed_padding_repeated_twice!r} for "
        "padding (3, 2), expected F.pad's order (2, 2, 3, 3))", "attngan.generator.AttentionGenerator._heads")
    x = torch.randn(1, 2, 9, 8, dtype=torch.float64)
    padded = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
    torch.testing.assert_close(F.conv2d(padded, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups),
                               conv(x), rtol=1e-12, atol=1e-12, msg=lambda m: _changed(
                                   "how nn.Conv2d pads for a padding mode other than zeros",
                                   "attngan.generator.AttentionGenerator._heads") + "\n" + m)


#: The per-module and global hook dictionaries that ``Module.__call__`` reads
#: to decide whether to run hooks, as of PyTorch 2.1 to 2.13.
KNOWN_CALL_HOOKS = {"_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs",
                    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks",
                    "_is_full_backward_hook"}
KNOWN_GLOBAL_CALL_HOOKS = {"_global_forward_hooks", "_global_forward_hooks_always_called",
                           "_global_forward_hooks_with_kwargs", "_global_forward_pre_hooks", "_global_backward_hooks",
                           "_global_backward_pre_hooks", "_global_is_full_backward_hook"}


def test_no_new_kind_of_call_hook():
    """A new kind of forward or backward hook would be one the fused heads do not see."""
    conv = nn.Conv2d(1, 1, 1)
    per_module = {k for k in vars(conv) if "hook" in k and ("forward" in k or "backward" in k)}
    global_ = {k for k in vars(MODULE) if k.startswith("_global_") and ("forward" in k or "backward" in k)}
    assert per_module <= KNOWN_CALL_HOOKS and global_ <= KNOWN_GLOBAL_CALL_HOOKS, _changed(
        "the kinds of module hooks "
        f"(new: {sorted((per_module - KNOWN_CALL_HOOKS) | (global_ - KNOWN_GLOBAL_CALL_HOOKS))})",
        "attngan.generator._plain_conv, which must see every hook of a head to run it as a module")


def _module_hook(api):
    def register(conv):
        def hook(*args):
            return None
        return getattr(conv, api)(hook)
    return register


def _global_hook(api):
    def register(conv):
        return getattr(MODULE, api)(lambda *args: None)
    return register


HOOK_APIS = {
    "Module.register_forward_hook": _module_hook("register_forward_hook"),
    "Module.register_forward_pre_hook": _module_hook("register_forward_pre_hook"),
    "Module.register_full_backward_hook": _module_hook("register_full_backward_hook"),
    "Module.register_full_backward_pre_hook": _module_hook("register_full_backward_pre_hook"),
    "Module.register_backward_hook": _module_hook("register_backward_hook"),
    "register_module_forward_hook": _global_hook("register_module_forward_hook"),
    "register_module_forward_pre_hook": _global_hook("register_module_forward_pre_hook"),
    "register_module_full_backward_hook": _global_hook("register_module_full_backward_hook"),
    "register_module_full_backward_pre_hook": _global_hook("register_module_full_backward_pre_hook"),
    "register_module_backward_hook": _global_hook("register_module_backward_hook"),
}


@pytest.mark.parametrize("api", sorted(HOOK_APIS))
def test_every_hook_registration_is_seen_by_the_fused_heads(api):
    """A hook registered through any public function lands in a dictionary the fused heads read, and
    they then call the head as a module; removing it makes the head fusable again."""
    conv = nn.Conv2d(2, 3, 7, padding=3)
    assert _plain_conv(conv)
    full = MODULE._global_is_full_backward_hook  # set by a global backward hook, and kept after its removal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-full backward hooks are deprecated
        handle = HOOK_APIS[api](conv)
    try:
        assert not _plain_conv(conv), _changed(
            f"where {api} keeps its hooks (in none of the dictionaries the fused heads read)",
            "attngan.generator._plain_conv: the heads would run fused and skip the hook")
    finally:
        handle.remove()
        MODULE._global_is_full_backward_hook = full
    assert _plain_conv(conv), _changed(f"how a hook registered with {api} is removed", "attngan.generator._plain_conv")


@pytest.mark.parametrize("kind", ["forward", "full_backward"])
def test_a_head_with_a_hook_runs_it(kind):
    """The fall-back calls the head as a module, so its hook runs in the forward or the backward."""
    torch.manual_seed(0)
    g = AttentionGenerator(base_channels=8, num_residual_blocks=1, norm="none")
    calls = []
    handle = getattr(g.color_head, f"register_{kind}_hook")(lambda *args: calls.append(kind))
    try:
        g(torch.rand(1, 3, 16, 16) * 2 - 1, torch.tensor([3])).image.sum().backward()
    finally:
        handle.remove()
    assert calls == [kind], f"the generator's colour head ran its {kind} hook {len(calls)} times, expected once"
