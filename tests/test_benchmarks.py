"""The benchmarks run and report what they promise.

No timing assertions: the scripts run at tiny sizes as subprocesses and the
tests check that the JSON has its fields, positive numbers and FLOP counts
that scale with the image area; the helpers of ``benchmarks/common.py`` are
checked in-process.
"""

from __future__ import annotations

import importlib.util
import json
import math
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


#: What each benchmark run printed on stderr, by (script, args): the table for people.
STDERR = {}


def bench(script, *args, tmp_path=None):
    cmd = [sys.executable, os.path.join(BENCH, script), *TINY, *args]
    json_out = None
    if tmp_path is not None:
        json_out = str(tmp_path / f"{script}.json")
        cmd += ["--json-out", json_out]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # stdout is the JSON alone
    STDERR[(script, args)] = res.stderr
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
                                 "gp_mode": "separate", "fused_critic": False, "reuse_fake": False, "compile": False,
                                 "gp_every": 1}
    assert fast["settings"]["gp_mode"] == "joint" and fast["settings"]["reuse_fake"]
    assert not fast["settings"]["fused_critic"] and fast["settings"]["gp_every"] == 1  # slower / another algorithm
    assert fast["settings"]["channels_last"] and fast["settings"]["fused_adam"] and not fast["settings"]["compile"]
    assert out["speedup_vs_plain"]["optimised"] > 0 and out["speedup_vs_plain_paired"]["optimised"]["median"] > 0
    for r in (plain, fast):
        assert r["flops_per_image"] > 0 and r["flops_per_iteration"] == r["flops_per_image"] * 2
    # the plain form does more work: a second generator forward and a second critic pass for the penalty
    assert plain["flops_per_image"] > fast["flops_per_image"] == fast["model_flops_per_image"]
    assert plain["model_flops_per_image"] == fast["model_flops_per_image"]
    assert out["config"]["image_size"] == 32 and out["config"]["batch_size"] == 2
    assert out["method"]["interleaved"] is True
    # and a table for people on stderr: a header, one line per case, the paired speed-up
    lines = STDERR[("train_step.py", ("--image-size", "32", "--compare"))].splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("case "))
    assert "images/s" in lines[header] and "vs plain" in lines[header]
    assert lines[header + 1].split()[0] == "plain" and lines[header + 1].rstrip().endswith("-")
    assert lines[header + 2].split()[0] == "optimised"
    assert lines[header + 2].rstrip().endswith(f"{out['speedup_vs_plain_paired']['optimised']['median']:.2f}x")


def test_train_step_ablation_and_flop_scaling(train_runs):
    out = train_runs[64]
    check_common(out, "train_step", "images_per_second")
    names = list(out["results"])
    assert names[0] == "plain" and names[-1] == "optimised"
    assert {"channels_last", "fused_adam", "joint_gp", "reuse_fake"} <= set(names)
    assert set(out["speedup_vs_plain"]) == set(names) - {"plain"}
    for name in names:
        assert out["results"][name]["iterations_run"] == 1
    # ~4x the pixels, ~4x the FLOPs; not exactly: the critic gains a layer at 64 px (4.28x and 4.36x here)
    small, large = train_runs[32]["results"], out["results"]
    for name in ("plain", "optimised"):
        ratio = large[name]["flops_per_image"] / small[name]["flops_per_image"]
        assert 0.9 * 4 <= ratio <= 1.1 * 4, (name, ratio)


def test_train_step_authors_loop_and_lazy_penalty(tmp_path):
    """``authors-loop`` (the stand-in for the released loop; ``authors`` is its
    alias) is timed first and every other case gets its paired speed-up
    against it; ``optimised+lazy_gp`` adds the lazy penalty (every 2nd
    iteration here), whose FLOPs are the mean over 2 iterations."""
    out = bench("train_step.py", "--image-size", "32", "--variants", "plain,optimised+lazy_gp,authors",
                "--lazy-gp-every", "2", "--iters-per-repeat", "2", "--warmup", "0", "--repeats", "1")
    res = out["results"]
    assert list(res) == ["authors-loop", "plain", "optimised+lazy_gp"]
    loop = res["authors-loop"]
    assert loop["features"] == ["authors-loop"] and loop["settings"]["released_loop_stand_in"]
    assert res["optimised+lazy_gp"]["settings"]["gp_every"] == 2 and out["config"]["lazy_gp_every"] == 2
    assert set(out["speedup_vs_plain_paired"]) == {"authors-loop", "optimised+lazy_gp"}
    assert "speedup_vs_authors_loop_paired" not in loop
    for name in ("plain", "optimised+lazy_gp"):
        assert res[name]["speedup_vs_authors_loop_paired"]["median"] > 0
    # the stand-in loop: no recomputed-penalty logging pass, but the generator forward twice
    model = res["plain"]["model_flops_per_image"]
    assert res["plain"]["flops_per_image"] > loop["flops_per_image"] > model
    assert res["optimised+lazy_gp"]["flops_per_image"] < model


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
    (["--peak-tflops", "fast"], "'measure'"),
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


def test_measured_peak_is_a_positive_rate_cached_per_compute_type(monkeypatch):
    common = load("common")
    monkeypatch.setattr(common, "REFERENCE_CONV", dict(batch=1, channels=8, size=8, kernel=3))
    monkeypatch.setattr(common, "_MEASURED", {})
    cpu = torch.device("cpu")
    value, source = common.peak_tflops(cpu, "fp32", "measure")
    assert value > 0 and source.startswith("measured: 3x3 convolution, 8 channels") and "fp32" in source
    assert common.peak_tflops(cpu, "fp32", "measure")[0] == value  # measured once
    assert set(common._MEASURED) == {("cpu", "fp32")}
    fields = common.utilisation_fields(2e12, 1e12, 1.0, cpu, "fp32", "measure")
    assert fields["utilisation"] == pytest.approx(2 / value) and fields["model_utilisation"] == pytest.approx(1 / value)


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
    # every feature; train_step.py's resolve_cases then leaves out NOT_OPTIMISED (fused_critic, lazy_gp)
    assert v == {"plain": [], "optimised": ["channels_last", "bf16", "fused_adam", "joint_gp", "fused_critic",
                                            "reuse_fake", "lazy_gp"]}
    assert train.NOT_OPTIMISED == ("fused_critic", "lazy_gp")
    v = parse("optimised", train.FEATURES, None, True, [])
    assert "compile" in v["optimised"] and "bf16" not in v["optimised"]
    v = parse("ablation", train.FEATURES, "bf16", False, train.ablation_list("bf16"))
    assert list(v) == ["plain", "channels_last", "lowp", "fused_adam", "joint_gp", "reuse_fake", "optimised"]
    assert v["lowp"] == ["bf16"] and v["reuse_fake"] == ["reuse_fake"]
    assert "lowp" not in parse("ablation", train.FEATURES, None, False, train.ablation_list(None))
    assert parse("+reuse_fake+channels_last", train.FEATURES, None, False, []) == {
        "reuse_fake+channels_last": ["channels_last", "reuse_fake"]}
    for bad in ("nope", "bf16+fp16", "lowp", ""):
        with pytest.raises(ValueError):
            parse(bad, train.FEATURES, None, False, [])


# --------------------------------------------------------------------------- #
# loader.py
# --------------------------------------------------------------------------- #

LOADER_TINY = ["--workers", "0,1", "--image-size", "64", "--batch-size", "4", "--batches", "2", "--repeats", "2",
               "--warmup-batches", "1", "--jpeg-count", "10", "--jpeg-sizes", "160", "--single-core-images", "2"]


@pytest.fixture(scope="module")
def loader_run(tmp_path_factory):
    json_out = str(tmp_path_factory.mktemp("loader") / "loader.json")
    cmd = [sys.executable, os.path.join(BENCH, "loader.py"), *LOADER_TINY, "--json-out", json_out]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    with open(json_out) as fh:
        assert json.load(fh) == out
    return out, res.stderr


def test_loader_reports_rates(loader_run):
    out, table = loader_run
    assert out["benchmark"] == "loader" and "loader.py" in out["command"]
    for key in META:
        assert key in out["metadata"], key
    assert out["method"]["repeats"] == 2 and "median" in out["method"]["statistic"]
    assert set(out["results"]) == {"synthetic", "jpeg160"}
    one = out["results"]["jpeg160"]["one_core"]
    assert {"decode_full", "decode_draft", "pil_full_decode_pil_resize", "load_image",
            "load_image_no_draft"} <= set(one)
    assert out["results"]["synthetic"]["one_core"]["render"]["images_per_second"] > 0
    assert out["results"]["jpeg160"]["files"] == {"count": 10, "side": 160, "first_file_size": [160, 160],
                                                   "quality": 90, "mean_bytes": pytest.approx(
                                                       out["results"]["jpeg160"]["files"]["mean_bytes"])}
    for name, r in out["results"].items():
        assert set(r["dataloader"]) == {"default", "retain"}
        for runs in r["dataloader"].values():
            assert set(runs) == {"0", "1"}
            for w, s in runs.items():
                assert s["images_per_second"] > 0 and s["batch_shape"] == [4, 3, 64, 64]
                assert s["batch_dtype"] == "float32" and s["first_batch_seconds"] > 0
                assert s["images_per_second_per_worker"] == pytest.approx(s["images_per_second"] / max(int(w), 1))
                assert s["seconds_per_batch"]["n"] == 2
        sm = r["summary"]
        assert sm["extrapolated_images_per_second_16_cores"] == pytest.approx(15 * sm["images_per_second_per_core"])
        assert sm["workers_for_gpu_target"] == math.ceil(1300 / sm["images_per_second_per_core"])
        assert "not measured" in sm["extrapolation"]
    assert "16 cores (extrapolation)" in table and "DataLoader, 1 workers, malloc retain" in table


@pytest.mark.parametrize("flags, message", [
    (["--workers", "one"], "--workers"),
    (["--malloc", "retain,default"], "--malloc"),
    (["--malloc", "jemalloc"], "--malloc"),
    (["--image-size", "300"], "--image-size"),
    (["--repeats", "0"], "--repeats"),
    (["--sources", "video"], "--sources"),
])
def test_loader_bad_flags_exit_with_a_message(flags, message, capsys):
    with pytest.raises(SystemExit) as exc:
        load("loader").main(flags)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_loader_jpeg_folder_reads_like_training(tmp_path):
    loader = load("loader")
    import face_datasets
    from PIL import Image

    paths = loader.make_jpeg_folder(str(tmp_path), 7, 100, quality=80, seed=3)
    assert len(paths) == 7 and all(p.endswith(".JPG") for p in paths)
    with Image.open(paths[0]) as im:
        assert im.format == "JPEG" and im.size == (100, 100)
    records = face_datasets.scan_dataset(str(tmp_path))  # the MORPH convention, found by "auto"
    assert len(records) == 7 and len({r.subject for r in records}) == 2
    ds = face_datasets.FaceImageDataset(records, 64)
    assert ds[0]["image"].shape == (3, 64, 64)
    before = [os.path.getmtime(p) for p in paths]
    assert loader.make_jpeg_folder(str(tmp_path), 7, 100, seed=3) == paths  # existing files are kept
    assert [os.path.getmtime(p) for p in paths] == before


def test_loader_random_batches_cover_each_epoch():
    loader = load("loader")
    batches = loader.random_batches(10, 3, 7, seed=1)
    assert len(batches) == 7 and all(len(b) == 3 for b in batches)
    first_epoch = [i for b in batches[:3] for i in b]
    assert len(set(first_epoch)) == 9  # 3 full batches per epoch, no repeat within an epoch
    assert batches == loader.random_batches(10, 3, 7, seed=1)
    with pytest.raises(ValueError, match="fewer than one batch"):
        loader.random_batches(2, 3, 1, seed=0)


def test_retain_freed_memory_in_a_fresh_process():
    code = f"import sys; sys.path.insert(0, {BENCH!r}); import loader; print(loader.retain_freed_memory())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ("True" if sys.platform.startswith("linux") else res.stdout.strip())


# --------------------------------------------------------------------------- #
# gpu_check.sh and its summary
# --------------------------------------------------------------------------- #

GPU_CHECK = os.path.join(BENCH, "gpu_check.sh")


def test_gpu_check_script_parses():
    res = subprocess.run(["bash", "-n", GPU_CHECK], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["bash", GPU_CHECK, "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "--dry-run" in res.stdout
    res = subprocess.run(["bash", GPU_CHECK, "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "unknown option" in res.stderr


def _check_folder(folder, *, attention, skipped=0, tests=(3, 0, 0), steps=300):
    """A folder as gpu_check.sh leaves it: parts, CUDA test report, metrics."""
    (folder / "run").mkdir(parents=True)
    (folder / "parts.tsv").write_text("part\trc\tseconds\tstatus\tcommand\ncuda_tests\t0\t12\tok\tpytest\n"
                                      "train_run\t0\t130\tok\ttrain.py\n")
    passed, failed, skip = tests
    (folder / "cuda_tests.xml").write_text(
        f'<testsuites><testsuite name="pytest" tests="{passed + failed + skip}" failures="{failed}" errors="0" '
        f'skipped="{skip}"></testsuite></testsuites>')
    with open(folder / "run" / "metrics.jsonl", "w") as fh:
        for step in range(10, steps + 1, 10):
            fh.write(json.dumps({"step": step, "attention_mean": attention(step), "skipped_steps": skipped,
                                 "images_per_second": 900.0, "d_loss": 1.0}) + "\n")
    return folder


@pytest.mark.parametrize("attention, skipped, tests, smoke, passed, detail", [
    (lambda s: 0.5, 0, (3, 0, 0), False, True, None),
    (lambda s: 0.01 if s < 100 else 0.4, 0, (3, 0, 0), False, True, None),  # before iteration 100: not checked
    (lambda s: 0.5 if s < 200 else 0.02, 0, (3, 0, 0), False, False, "attention_mean left"),
    (lambda s: 0.99, 0, (3, 0, 0), False, False, "step 110: 0.990"),
    (lambda s: 0.5, 2, (3, 0, 0), False, False, "skipped_steps = 2"),
    (lambda s: 0.5, 0, (2, 1, 0), False, False, "1 failed"),
    (lambda s: 0.5, 0, (0, 0, 8), False, False, "8 skipped"),  # on a GPU the CUDA tests must run
    (lambda s: 0.5, 0, (0, 0, 8), True, True, None),  # in the CPU smoke run they skip
])
def test_gpu_check_summary_checks(tmp_path, attention, skipped, tests, smoke, passed, detail):
    summary = load("gpu_check_summary")
    folder = _check_folder(tmp_path / "out", attention=attention, skipped=skipped, tests=tests)
    result, text = summary.build(str(folder), smoke, 100, 0.05, 0.98)
    assert result["passed"] is passed, result["checks"]
    assert ("PASSED" if passed else "FAILED") in text.splitlines()[0]
    if detail:
        assert detail in text
    args = [str(folder)] + (["--smoke"] if smoke else [])
    assert summary.main(args) == (0 if passed else 1)
    assert (folder / "summary.md").read_text() == text
    assert json.loads((folder / "summary.json").read_text())["passed"] is passed


def test_gpu_check_summary_figures(tmp_path):
    summary = load("gpu_check_summary")
    folder = _check_folder(tmp_path / "out", attention=lambda s: 0.5, steps=90)
    result, text = summary.build(str(folder), False, 100, 0.05, 0.98)
    assert not result["passed"] and "no record with attention_mean after iteration 100" in text
    # 100 epochs of 49,472 images (773 batches of 64) at 1,375 images/s: 1.0 hour
    assert summary.morph_epoch_hours(1374.2) == pytest.approx(1.0, rel=1e-3)
    row = summary.train_step_row("bf16", {
        "config": {"batch_size": 64, "image_size": 224}, "metadata": {"device_name": "NVIDIA H100 80GB HBM3"},
        "results": {"run": {"images_per_second": 1300.0, "flops_per_image": 3.0e11, "achieved_tflops": 390.0,
                            "utilisation": 390 / 989, "peak_source": "H100 SXM bf16 dense (datasheet)",
                            "peak_memory_bytes": 40 * 1024**3}}})
    assert row["utilisation_of_989"] == pytest.approx(390 / 989) and row["peak_memory_gib"] == 40.0
    assert row["morph_100_epochs_hours"] == pytest.approx(summary.morph_epoch_hours(1300.0))


@pytest.mark.slow
def test_gpu_check_cpu_smoke_run(tmp_path):
    """The whole script at tiny sizes on the CPU (about 20 s on an idle 2-core machine)."""
    out = tmp_path / "check"
    env = {**os.environ, "PYTHON": sys.executable, "CPU_SMOKE": "1"}
    res = subprocess.run(["bash", GPU_CHECK, str(out)], capture_output=True, text=True, timeout=600, cwd=REPO,
                         env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = (out / "summary.md").read_text()
    assert text.startswith("# GPU check: PASSED (CPU smoke run")
    for name in ("train_step_bf16.json", "train_step_bf16_compile.json", "inference.json", "loader.json",
                 "cuda_tests.xml", "env.txt", "run/metrics.jsonl"):
        assert (out / name).exists(), name
    parts = (out / "parts.tsv").read_text()
    for part in ("cuda_tests", "train_step", "inference", "loader", "train_run", "train_compile"):
        assert f"\n{part}\t0\t" in parts, parts
