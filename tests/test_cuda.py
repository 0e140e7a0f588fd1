"""Checks that need a CUDA GPU: mixed precision, channels_last and the
library's pieces under CUDA autocast, and a host-synchronisation-free
training iteration.

Every test is marked ``cuda`` and skips, saying why, where CUDA is not
available; ``benchmarks/gpu_check.sh`` runs them on a GPU machine
(``pytest -m cuda tests/test_cuda.py``). The helpers take the device as an
argument, so their logic can also be exercised on a CPU by hand.

Tolerances, against an fp32 reference computed on the same GPU with TF32
off (so that it is true fp32):

* bf16 autocast (8-bit mantissa): first-iteration losses within 5e-2
  relative plus 1e-3 absolute, as ``tests/morph_aging/test_step_equivalence``
  allows on the CPU; generator images within 0.05 absolute (in [-1, 1]);
* fp16 autocast (11-bit mantissa): the same bounds;
* channels_last in fp32: outputs within 1e-4 absolute, losses within 1e-4
  relative (only the order of the sums changes);
* CPU fp32 versus CUDA fp32: first-iteration losses within 1e-3 relative.

Small networks (generator width 16, 2 residual blocks, critic width 16),
64x64 images, batch 8: a few seconds on any GPU.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Dict, List, Optional, Tuple

import pytest
import torch

EXAMPLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "examples", "morph_aging"))
if EXAMPLE not in sys.path:
    sys.path.insert(0, EXAMPLE)

import attngan  # noqa: E402

import models  # noqa: E402
from ages import NUM_GROUPS  # noqa: E402
from config import TrainConfig, validate_config  # noqa: E402
from step import AcGANStep, StepOptions  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available on this machine: these tests need a GPU "
                                            "(run benchmarks/gpu_check.sh on one)"),
]

LOSSES = ("d_adv", "d_cls", "gp", "g_adv", "g_cls", "g_att")
SIZE, BATCH = 64, 8
LOWP_RTOL, LOWP_ATOL = 5e-2, 1e-3


@pytest.fixture(autouse=True)
def true_fp32():
    """fp32 references without TF32 (its 10-bit mantissa would blur the comparison)."""
    if not HAS_CUDA:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# --------------------------------------------------------------------------- #
# Helpers (device as an argument)
# --------------------------------------------------------------------------- #


def make_setup(device: torch.device, seed: int = 0):
    """Config, initial networks (on ``device``), a batch and its labels."""
    cfg = validate_config(TrainConfig(
        data="random-tensors", image_size=SIZE, batch_size=BATCH, g_channels=16, g_res_blocks=2, d_channels=16,
        device="cpu", precision="fp32", seed=seed, critic_warmup=0,
    ))
    torch.manual_seed(seed)
    g0, d0 = models.build_generator(cfg), models.build_critic(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    real = torch.rand(BATCH, 3, SIZE, SIZE, generator=gen) * 2 - 1
    labels = torch.randint(0, NUM_GROUPS, (BATCH,), generator=gen)
    return cfg, g0.to(device), d0.to(device), real.to(device), labels.to(device)


def run_steps(setup, *, steps: int, autocast: Optional[torch.dtype] = None, channels_last: bool = False,
              scaler: bool = False, init_scale: float = 2.0**16,
              ) -> Tuple[List[Dict[str, float]], torch.nn.Module, torch.nn.Module]:
    """``steps`` iterations of the form ``train.py`` trains with, from copies of the initial networks.

    ``scaler`` adds a ``GradScaler`` starting at ``init_scale`` (torch's and
    ``train.py``'s default: 2**16)."""
    cfg, g0, d0, real, labels = setup
    g, d = copy.deepcopy(g0), copy.deepcopy(d0)
    if channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=True)
    grad_scaler = torch.amp.GradScaler(real.device.type, init_scale=init_scale) if scaler else None
    step = AcGANStep(cfg, g, d, opt_g, opt_d,
                     StepOptions(autocast=autocast, channels_last=channels_last), scaler=grad_scaler)
    history = []
    for k in range(steps):
        metrics = step(real, labels, k)
        history.append({key: float(v) for key, v in metrics.items()})
    return history, g, d


def assert_losses_close(got: Dict[str, float], ref: Dict[str, float], rtol: float, atol: float, what: str) -> None:
    for key in LOSSES:
        a, b = got[key], ref[key]
        assert abs(a - b) <= atol + rtol * abs(b), f"{what}: {key} = {a:.6g}, fp32 reference {b:.6g}"


def assert_finite(module: torch.nn.Module, what: str) -> None:
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
    assert not bad, f"{what}: non-finite parameters {bad[:5]}"


def check_lowp_step_matches_fp32(device: torch.device, dtype: torch.dtype) -> None:
    """First-iteration losses in low precision against fp32. fp16 runs with a
    GradScaler started at 2**8: at the default 2**16 the scaled scores
    overflow fp16 in the penalty's double backward and the first iterations
    are skipped (see :func:`check_fp16_scaler_steps`)."""
    setup = make_setup(device)
    ref, _, _ = run_steps(setup, steps=1)
    low, g, d = run_steps(setup, steps=1, autocast=dtype, channels_last=True, scaler=dtype == torch.float16,
                          init_scale=2.0**8)
    assert_losses_close(low[0], ref[0], LOWP_RTOL, LOWP_ATOL, f"{dtype} on {device}")
    assert low[0]["d_skipped"] == 0 and low[0]["g_skipped"] == 0
    assert_finite(g, "generator")
    assert_finite(d, "critic")


def check_fp16_scaler_steps(device: torch.device, steps: int = 20, settle: int = 5) -> List[bool]:
    """fp16 autocast with a GradScaler as ``train.py`` builds it (starting at
    2**16): which iterations skipped an update.

    The scaler halves its scale after each overflow, so the first iterations
    may be skipped (two on the CPU here: the scaled penalty overflows fp16);
    from iteration ``settle`` on none may be."""
    history, g, d = run_steps(make_setup(device), steps=steps, autocast=torch.float16, channels_last=True,
                              scaler=True)
    skipped = [bool(h["d_skipped"] or h["g_skipped"]) for h in history]
    assert not any(skipped[settle:]), f"skipped per iteration: {skipped}"
    for h, skip in zip(history, skipped):
        if not skip:
            assert all(torch.isfinite(torch.tensor(h[k])) for k in LOSSES), h
    assert_finite(g, "generator")
    assert_finite(d, "critic")
    return skipped


def check_library_under_autocast(device: torch.device, dtype: torch.dtype) -> None:
    """Generator, critic and gradient penalty of the library under autocast."""
    torch.manual_seed(0)
    g = attngan.AttentionGenerator(base_channels=16, num_residual_blocks=2).to(device)
    d = attngan.MultiHeadCritic(SIZE, base_channels=16).to(device)
    x = (torch.rand(BATCH, 3, SIZE, SIZE, device=device) * 2 - 1)
    labels = torch.arange(BATCH, device=device) % 5
    with torch.no_grad():
        ref = g(x, labels)
        ref_d = d(x)
    with torch.autocast(device.type, dtype=dtype):
        out = g(x, labels)
        scored = d(out.image)
        penalty = attngan.gradient_penalty(d, x, out.image.detach().float(), head="realness")
    for name, t in (("image", out.image), ("attention", out.attention), ("color", out.color)):
        assert torch.isfinite(t).all(), name
    assert out.image.shape == x.shape and out.attention.shape == (BATCH, 1, SIZE, SIZE)
    assert (out.attention >= 0).all() and (out.attention <= 1).all()
    assert (out.image.float() - ref.image).abs().max() < 0.05
    assert (out.attention.float() - ref.attention).abs().max() < 0.05
    assert scored.realness.shape == ref_d.realness.shape and scored.logits.shape == (BATCH, 5)
    assert torch.isfinite(scored.realness).all() and torch.isfinite(scored.logits).all()
    assert penalty.ndim == 0 and penalty.dtype == torch.float32 and torch.isfinite(penalty)
    # gradients reach every parameter of both networks, finite
    loss = scored.realness.float().mean() + scored.logits.float().square().mean() + penalty
    loss.backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def check_channels_last(device: torch.device) -> None:
    setup = make_setup(device)
    _, g0, d0, real, labels = setup
    g_cl = copy.deepcopy(g0).to(memory_format=torch.channels_last)
    d_cl = copy.deepcopy(d0).to(memory_format=torch.channels_last)
    x_cl = real.contiguous(memory_format=torch.channels_last)
    codes = attngan.one_hot(labels, NUM_GROUPS)
    with torch.no_grad():
        a, b = g0(real, codes), g_cl(x_cl, codes)
        assert (a.image - b.image).abs().max() < 1e-4
        assert (d0(real).realness - d_cl(x_cl).realness).abs().max() < 1e-4
        assert b.image.is_contiguous(memory_format=torch.channels_last) or b.image.is_contiguous()
    ref, _, _ = run_steps(setup, steps=1)
    cl, _, _ = run_steps(setup, steps=1, channels_last=True)
    assert_losses_close(cl[0], ref[0], 1e-4, 1e-6, "channels_last")


def check_cpu_matches_cuda(device: torch.device) -> None:
    cpu, _, _ = run_steps(make_setup(torch.device("cpu")), steps=1)
    gpu, _, _ = run_steps(make_setup(device), steps=1)
    assert_losses_close(gpu[0], cpu[0], 1e-3, 1e-5, "CUDA fp32 against CPU fp32")


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #

CUDA = torch.device("cuda")


def test_cuda_fp32_matches_cpu() -> None:
    check_cpu_matches_cuda(CUDA)


def test_bf16_step_matches_fp32() -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    check_lowp_step_matches_fp32(CUDA, torch.bfloat16)


def test_fp16_step_matches_fp32() -> None:
    check_lowp_step_matches_fp32(CUDA, torch.float16)


def test_fp16_grad_scaler_skips_no_step() -> None:
    check_fp16_scaler_steps(CUDA)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_library_under_cuda_autocast(dtype: torch.dtype) -> None:
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    check_library_under_autocast(CUDA, dtype)


def test_channels_last_matches_contiguous() -> None:
    check_channels_last(CUDA)


def test_training_iteration_never_synchronises() -> None:
    """With fused Adam the iteration runs without a host synchronisation
    (AcGANStep's promise): checked with ``torch.cuda.set_sync_debug_mode``."""
    setup = make_setup(CUDA)
    cfg, g0, d0, real, labels = setup
    g, d = copy.deepcopy(g0).to(memory_format=torch.channels_last), copy.deepcopy(d0).to(
        memory_format=torch.channels_last)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=True)
    step = AcGANStep(cfg, g, d, opt_g, opt_d, StepOptions(autocast=torch.bfloat16, channels_last=True))
    step(real, labels, 0)  # first call: lazy initialisation, cuDNN algorithm choice
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for k in (1, 2):
            step(real, labels, k)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
