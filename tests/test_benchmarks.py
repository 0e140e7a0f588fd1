"""The benchmarks run and report what they promise.

No timing assertions: the scripts run at tiny sizes as subprocesses and the
tests check that the JSON has its fields, positive numbers and FLOP counts
that scale with the image area; the helpers of ``benchmarks/common.py`` are
checked in-process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "benchmarks")
TINY = ["--batch-size", "2", "--g-channels", "8", "--g-res-blocks", "1", "--d-channels", "8",
        "--device", "cpu", "--threads", "1", "--warmup", "1", "--repeats", "1"]


def load(name):
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench(script, *args, tmp_path=None):
    cmd = [sys.executable, os.path.join(BENCH, script), *TINY, *args]
    json_out = None
    if tmp_path is not None:
        json_out = str(tmp_path / f"{script}.json")
        cmd += ["--json-out", json_out]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    if json_out is not None:
        with open(json_out) as fh:
            assert json.load(fh) == out
    return out


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    return {32: bench("train_step.py", "--image-size", "32", "--compare", tmp_path=tmp),
            64: bench("train_step.py", "--image-size", "64", "--variants", "ablation", "--warmup", "0")}


@pytest.fixture(scope="module")
def inference_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inference")
    return {32: bench("inference.py", "--image-size", "32", "--compare", tmp_path=tmp),
            64: bench("inference.py", "--image-size", "64", "--warmup", "0", "--peak-tflops", "2.5")}


META = ("date", "git_commit", "torch", "device", "device_name", "cpu_count", "torch_threads")


def check_common(out, kind, rate_key):
    for key in ("benchmark", "config", "method", "metadata", "results"):
        assert key in out, key
    assert out["benchmark"] == kind
    for key in META:
        assert key in out["metadata"], key
    assert out["metadata"]["torch"] == torch.__version__
    assert out["metadata"]["torch_threads"] == 1
    assert out["method"]["repeats"] >= 1 and "median" in out["method"]["statistic"]
    for name, r in out["results"].items():
        assert r[rate_key] > 0, name
        assert r["seconds_per_iteration" if kind == "train_step" else "seconds_per_call"]["median"] > 0
        assert r["achieved_tflops"] > 0 and r["model_tflops"] > 0
        assert r["peak_memory_bytes"] > 0
        if "--peak-tflops" in out["command"]:
            assert r["peak_tflops"] == 2.5 and r["peak_source"] == "--peak-tflops"
            assert r["utilisation"] == pytest.approx(r["achieved_tflops"] / 2.5)
        else:  # a CPU has no default peak: utilisation only with --peak-tflops
            assert r["peak_tflops"] is None and r["utilisation"] is None
        assert sum(r["flops_by_op"].values()) == r["flops_per_iteration" if kind == "train_step" else "flops_per_call"]


def test_train_step_compare(train_runs):
    out = train_runs[32]
    check_common(out, "train_step", "images_per_second")
    assert set(out["results"]) == {"plain", "optimised"}
    plain, fast = out["results"]["plain"], out["results"]["optimised"]
    assert plain["settings"] == {"precision": "fp32", "channels_last": False, "fused_adam": False,
                                 "gp_mode": "separate", "fused_critic": False, "reuse_fake": False, "compile": False}
    assert fast["settings"]["gp_mode"] == "joint" and fast["settings"]["fused_critic"] and fast["settings"]["reuse_fake"]
    assert fast["settings"]["channels_last"] and fast["settings"]["fused_adam"] and not fast["settings"]["compile"]
    assert out["speedup_vs_plain"]["optimised"] > 0 and out["speedup_vs_plain_paired"]["optimised"]["median"] > 0
    for r in (plain, fast):
        assert r["flops_per_image"] > 0 and r["flops_per_iteration"] == r["flops_per_image"] * 2
    # the plain form does more work: a second generator forward and a second critic pass for the penalty
    assert plain["flops_per_image"] > fast["flops_per_image"] == fast["model_flops_per_image"]
    assert plain["model_flops_per_image"] == fast["model_flops_per_image"]
    assert out["config"]["image_size"] == 32 and out["config"]["batch_size"] == 2
    assert out["method"]["interleaved"] is True


def test_train_step_ablation_and_flop_scaling(train_runs):
    out = train_runs[64]
    check_common(out, "train_step", "images_per_second")
    names = list(out["results"])
    assert names[0] == "plain" and names[-1] == "optimised"
    assert {"channels_last", "fused_adam", "joint_gp", "fused_critic+reuse_fake"} <= set(names)
    assert set(out["speedup_vs_plain"]) == set(names) - {"plain"}
    for name in names:
        assert out["results"][name]["iterations_run"] == 1
    # ~4x the pixels, ~4x the FLOPs; not exactly: the critic gains a layer at 64 px (4.28x and 4.36x here)
    small, large = train_runs[32]["results"], out["results"]
    for name in ("plain", "optimised"):
        ratio = large[name]["flops_per_image"] / small[name]["flops_per_image"]
        assert 0.9 * 4 <= ratio <= 1.1 * 4, (name, ratio)


def test_inference(inference_runs):
    out = inference_runs[32]
    check_common(out, "inference", "faces_per_second")
    assert set(out["results"]) == {"plain", "optimised"}
    for r in out["results"].values():
        assert r["images_per_second"] == pytest.approx(5 * r["faces_per_second"])
        assert r["flops_per_face"] == pytest.approx(5 * r["flops_per_image"])
        assert r["flops_per_call"] == r["flops_per_face"] * 2
    assert out["config"]["faces_per_call"] == 2 and out["config"]["images_per_call"] == 10
    single = inference_runs[64]
    assert list(single["results"]) == ["run"] and "speedup_vs_plain" not in single
    check_common(single, "inference", "faces_per_second")
    # the generator is convolutional: its FLOPs scale exactly with the image area
    ratio = single["results"]["run"]["flops_per_face"] / out["results"]["plain"]["flops_per_face"]
    assert ratio == pytest.approx(4.0, rel=1e-9), ratio


@pytest.mark.parametrize("script", ["train_step", "inference"])
@pytest.mark.parametrize("flags, message", [
    (["--repeats", "0"], "--repeats"),
    (["--warmup", "-1"], "--warmup"),
    (["--peak-tflops", "0"], "--peak-tflops"),
    (["--image-size", "30"], "--image-size"),
    (["--precision", "fp16", "--device", "cpu"], "fp16"),
    (["--compare", "--variants", "plain"], "exclusive"),
    (["--variants", "plain,warp_drive"], "warp_drive"),
    (["--preset", "huge"], "--preset"),
])
def test_bad_flags_exit_with_a_message(script, flags, message, capsys):
    module = load(script)
    with pytest.raises(SystemExit) as exc:
        module.main(["--device", "cpu", *flags])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# common.py helpers
# --------------------------------------------------------------------------- #


def test_common_doctests():
    import doctest

    assert doctest.testmod(load("common")).failed == 0


def test_summarize_and_rates():
    common = load("common")
    s = common.summarize([4.0, 1.0, 2.0, 3.0, 100.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 100.0 and s["n"] == 5
    assert s["q1"] == 2.0 and s["q3"] == 4.0
    assert common.summarize([2.0]) == {"median": 2.0, "q1": 2.0, "q3": 2.0, "min": 2.0, "max": 2.0, "n": 1}
    rate = common.rate_summary([1.0, 2.0, 4.0], 8)
    assert rate["median"] == 4.0 and rate["max"] == 8.0 and rate["min"] == 2.0
    with pytest.raises(ValueError):
        common.summarize([])


def test_peak_table():
    common = load("common")
    cases = {"NVIDIA H100 80GB HBM3": "H100 SXM", "NVIDIA H100 PCIe": "H100 PCIe", "NVIDIA H100 NVL": "H100 NVL",
             "NVIDIA H200": "H200", "NVIDIA A100-SXM4-80GB": "A100", "NVIDIA GeForce RTX 4090": None}
    for name, family in cases.items():
        assert common.device_family(name) == family, name
    assert common.PEAK_TFLOPS["H100 SXM"]["bf16"] == 989 and common.PEAK_TFLOPS["H100 PCIe"]["bf16"] == 756
    assert common.PEAK_TFLOPS["H200"]["bf16"] == 989 and common.PEAK_TFLOPS["A100"]["bf16"] == 312
    assert common.PEAK_TFLOPS["H100 SXM"]["tf32"] == 494 and common.PEAK_TFLOPS["H100 SXM"]["fp32"] == 67
    cpu = torch.device("cpu")
    assert common.peak_tflops(cpu, "fp32") == (None, None)
    assert common.peak_tflops(cpu, "bf16", 3.0) == (3.0, "--peak-tflops")
    assert common.compute_type("fp32", cpu) == "fp32" and common.compute_type("bf16", cpu) == "bf16"


def test_count_flops_through_a_gradient_penalty():
    """FlopCounterMode's module tracker breaks autograd.grad with respect to a
    leaf module input (pytorch#131753); count_flops must not."""
    common = load("common")
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)

    def penalty():
        (grad,) = torch.autograd.grad(conv(x).sum(), x, create_graph=True)
        grad.square().sum().backward()

    forward = 2 * 2 * 4 * 3 * 9 * 64  # 2 * B * C_out * C_in * k * k * H * W
    assert common.count_flops(lambda: conv(x))["total"] == forward
    flops = common.count_flops(penalty)
    assert flops["total"] > 2 * forward and set(flops["by_op"]) >= {"aten.convolution", "aten.convolution_backward"}


def test_interleaving_rotates_the_order():
    common = load("common")
    calls = []
    cases = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    out = common.run_interleaved(cases, torch.device("cpu"), warmup=1, repeats=3, iters=2)
    assert calls[:3] == ["a", "b", "c"]  # warm-up round
    timed = calls[3:]
    assert timed == ["a", "a", "b", "b", "c", "c", "b", "b", "c", "c", "a", "a", "c", "c", "a", "a", "b", "b"]
    assert all(len(v["seconds"]) == 3 and v["peak_memory_bytes"] is None for v in out.values())
    speedups = common.paired_speedups({"a": {"seconds": [2.0, 4.0]}, "b": {"seconds": [1.0, 1.0]}}, "a")
    assert speedups == {"b": {"median": 3.0, "min": 2.0, "max": 4.0}}


def test_parse_variants():
    common = load("common")
    train = load("train_step")
    parse = common.parse_variants
    v = parse("plain,optimised", train.FEATURES, "bf16", False, train.ablation_list("bf16"))
    assert v == {"plain": [], "optimised": ["channels_last", "bf16", "fused_adam", "joint_gp", "fused_critic",
                                            "reuse_fake"]}
    v = parse("optimised", train.FEATURES, None, True, [])
    assert "compile" in v["optimised"] and "bf16" not in v["optimised"]
    v = parse("ablation", train.FEATURES, "bf16", False, train.ablation_list("bf16"))
    assert list(v) == ["plain", "channels_last", "lowp", "fused_adam", "joint_gp", "fused_critic+reuse_fake",
                       "optimised"]
    assert v["lowp"] == ["bf16"] and v["fused_critic+reuse_fake"] == ["fused_critic", "reuse_fake"]
    assert "lowp" not in parse("ablation", train.FEATURES, None, False, train.ablation_list(None))
    assert parse("+reuse_fake+channels_last", train.FEATURES, None, False, []) == {
        "reuse_fake+channels_last": ["channels_last", "reuse_fake"]}
    for bad in ("nope", "bf16+fp16", "lowp", ""):
        with pytest.raises(ValueError):
            parse(bad, train.FEATURES, None, False, [])
