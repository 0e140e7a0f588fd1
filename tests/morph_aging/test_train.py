"""End-to-end tests of train.py: outputs, resume exactness, determinism, DDP,
signals, non-finite steps and bad flags."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attngan
import checkpoints
import config
import models
import pictures
import train
import training
from step import AcGANStep

EXAMPLE = os.path.dirname(os.path.abspath(train.__file__))
TINY = ["--image-size", "64", "--batch-size", "4", "--num-subjects", "10", "--g-channels", "8",
        "--g-res-blocks", "1", "--d-channels", "8", "--precision", "fp32", "--no-progress",
        "--log-every", "1", "--device", "cpu", "--critic-warmup", "0"]


def run_main(out, *extra):
    return train.main(["--out", str(out), *TINY, *extra])


def weights(out):
    state = checkpoints.load_checkpoint(os.path.join(out, "checkpoints", "last.pt"))
    return state


def assert_same_weights(a, b, *, atol=0.0):
    for net in ("generator", "critic"):
        for name, tensor in a[net].items():
            other = b[net][name]
            if atol == 0.0:
                assert torch.equal(tensor, other), f"{net}.{name} differs"
            else:
                assert torch.allclose(tensor, other, atol=atol, rtol=0), f"{net}.{name} differs"


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def test_outputs_of_a_short_run(tmp_path):
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "3") == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["lambda_cls"] == 100.0 and cfg["resolved"]["total_steps"] == 3
    # on a CPU the cpu-demo preset: the paper's recipe (RMS attention norm, absolute penalty weight)
    assert cfg["preset"] == "cpu-demo" and cfg["attention_form"] == "paper" and cfg["lambda_tv"] == 5e-5
    assert cfg["gp_weighting"] == "absolute" and cfg["critic_warmup"] == 0 and cfg["g_attention_bias"] == 0.0
    assert cfg["g_ema"] == 0.999 and checkpoints.AVERAGE_PART in weights(out)  # cpu-demo's one addition beyond nearest
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("d_loss", "d_adv", "d_cls", "gp", "g_loss", "g_adv", "g_cls", "g_att", "attention_mean",
                "attention_near_zero", "attention_near_one", "attention_spread", "images_per_second", "epoch"):
        assert key in rows[-1], key
    assert all(0.0 <= r["attention_mean"] <= 1.0 for r in rows)
    state = weights(out)
    assert state["step"] == 3
    from PIL import Image

    grid = Image.open(out / "samples" / "latest.png")
    # 4 faces x 3 labelled rows (output, attention, colour) of 64 px faces drawn at 128 px, 6 labelled
    # columns (input + 5 ages)
    layout = pictures.aging_figure_layout(64)
    assert layout.tile == (128, 128) and layout.top > 2 and layout.left > 2  # room for the labels
    assert grid.size == layout.size(12, 6)
    assert (out / "samples" / "step_000003.png").exists()


def test_startup_summary_says_what_will_run(tmp_path, capsys):
    assert run_main(tmp_path / "run", "--max-steps", "2", "--max-minutes", "5") == 0
    err = capsys.readouterr().err
    summary = err[err.index("train.py: preset"):]
    for text in ("preset cpu-demo", "device cpu", "precision fp32", "64x64 images, batch 4", "iterations:  2",
                 "time budget: 5 min for this run of train.py", f"output:      {tmp_path / 'run'}",
                 "from scratch"):
        assert text in summary, text
    assert run_main(tmp_path / "run", "--max-steps", "3", "--resume") == 0
    err = capsys.readouterr().err
    assert __import__("re").search(r"resuming at iteration 2 of 3 \(trained \d+\.\d min so far\)", err), err
    assert "time budget: none" in err and "TIME BUDGET" not in err


def test_a_run_cut_short_by_the_budget_says_so_and_how_to_continue(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    argv = ["--out", str(out), *TINY, "--max-steps", "4", "--max-minutes", "0.000001"]
    assert train.main(argv) == 0  # stops after its first iteration, with exit status 0 ...
    err = capsys.readouterr().err
    assert "time budget reached at step 1/4" in err
    # ... and a notice that cannot be missed, with the exact command to continue
    notice = err[err.index("=" * 72):]
    assert "TIME BUDGET REACHED: --max-minutes 1e-06 stopped training at iteration 1 of 4 (25%)" in notice
    assert "under-trained" in notice
    command = next(line.strip() for line in notice.splitlines() if line.strip().startswith("python "))
    words = __import__("shlex").split(command)
    assert words[1].endswith("train.py") and words[2:] == argv[:] + ["--resume"]
    first = read_metrics(out)[-1]
    assert weights(out)["extra"]["total_elapsed_s"] >= first["elapsed_s"] > 0
    # the command continues the run; the budget is per run of train.py, the total time accumulates
    assert train.main(words[2:-1] + ["--max-minutes", "10", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "finished at step 4/4" in err and "TIME BUDGET" not in err
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["elapsed_s"] < rows[1]["total_elapsed_s"]  # elapsed_s: this run; total: every run
    assert all(b["total_elapsed_s"] > a["total_elapsed_s"] for a, b in zip(rows, rows[1:]))
    assert weights(out)["extra"]["total_elapsed_s"] >= rows[-1]["total_elapsed_s"]


def test_continue_command_drops_overwrite_and_adds_resume():
    command = training.continue_command(["--out", "runs/x y", "--overwrite", "--max-minutes", "3"])
    assert command.startswith("python ") and command.endswith("--out 'runs/x y' --max-minutes 3 --resume")
    assert training.continue_command(["--resume"], world=4).startswith("torchrun --nproc_per_node=4 ")


def test_progress_bar_keeps_its_bar_at_80_columns():
    from tqdm import tqdm

    worst = {"d_loss": -1234.5678, "g_loss": -0.000123456, "attention_mean": 0.123456}
    postfix = training.progress_postfix(worst)
    assert len(postfix) <= training.POSTFIX_CHARS and postfix.startswith("d=-1.23e+03")
    line = tqdm.format_meter(n=1371, total=3000, elapsed=754.0, ncols=80, prefix="AcGAN", unit="it",
                             postfix=postfix, rate=0.55)
    assert len(line) <= 80
    bar = line.split("|")[1]
    assert len(bar) >= 5, line


def test_progress_bar_gives_no_estimate_during_the_critic_warmup(tmp_path, capsys):
    flags = [a for a in TINY if a != "--no-progress"]
    assert flags[-2:] == ["--critic-warmup", "0"]
    code = train.main(["--out", str(tmp_path / "run"), *flags[:-2], "--critic-warmup", "2", "--max-steps", "3",
                       "--progress"])
    assert code == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    during, after = err.split("critic warm-up done at iteration 2")
    bars = [line for line in during.splitlines() if line.startswith("AcGAN")]
    assert bars and all("no estimate yet" in line and "<" not in line for line in bars)
    assert any("100%" in line and "3/3" in line for line in after.splitlines())


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_get_the_mode_of_new_files(tmp_path, umask, mode):
    """Checkpoints and pictures are meant for sharing: 0o666 less the umask, as any new file (not mkstemp's 0600)."""
    out = tmp_path / "run"
    previous = os.umask(umask)
    try:
        assert run_main(out, "--max-steps", "1") == 0
    finally:
        os.umask(previous)
    for name in ("checkpoints/last.pt", "config.json", "samples/latest.png"):
        assert (out / name).stat().st_mode & 0o777 == mode, name


def test_same_seed_same_trajectory_and_resume_is_exact(tmp_path):
    straight, first = tmp_path / "straight", tmp_path / "resumed"
    assert run_main(straight, "--max-steps", "5") == 0
    assert run_main(first, "--max-steps", "2") == 0
    assert run_main(first, "--max-steps", "5", "--resume") == 0
    assert_same_weights(weights(straight), weights(first))
    # the metrics of the resumed part continue the same trajectory
    a, b = read_metrics(straight), read_metrics(first)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5]
    for ra, rb in zip(a, b):
        assert ra["d_loss"] == rb["d_loss"] and ra["g_loss"] == rb["g_loss"]


def test_generator_average_is_saved_used_and_resumed_exactly(tmp_path):
    plain, straight, resumed = tmp_path / "plain", tmp_path / "straight", tmp_path / "resumed"
    assert run_main(plain, "--max-steps", "4", "--g-ema", "0") == 0
    assert run_main(straight, "--max-steps", "4", "--g-ema", "0.5") == 0
    a, b = weights(plain), weights(straight)
    assert checkpoints.AVERAGE_PART not in a
    assert_same_weights(a, b)  # the average does not feed back into training
    avg = b[checkpoints.AVERAGE_PART]
    assert avg.keys() == b["generator"].keys()
    assert any(not torch.equal(avg[k], b["generator"][k]) for k in avg)
    # resuming continues the average: the same weights as one straight run
    assert run_main(resumed, "--max-steps", "2", "--g-ema", "0.5") == 0
    assert run_main(resumed, "--max-steps", "4", "--g-ema", "0.5", "--resume") == 0
    c = weights(resumed)
    assert all(torch.equal(avg[k], c[checkpoints.AVERAGE_PART][k]) for k in avg)
    # the users of a checkpoint take the average; the trained weights stay reachable
    path = str(straight / "checkpoints" / "last.pt")
    g_avg, cfg = checkpoints.generator_from_checkpoint(path)
    g_trained, _ = checkpoints.generator_from_checkpoint(path, weights="trained")
    assert cfg.g_ema == 0.5
    assert all(torch.equal(v, avg[k]) for k, v in g_avg.state_dict().items())
    assert all(torch.equal(v, b["generator"][k]) for k, v in g_trained.state_dict().items())


def test_generator_average_is_covered_by_the_digest(tmp_path):
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "1", "--g-ema", "0.9") == 0
    path = out / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    assert checkpoints.AVERAGE_PART in state["digest"]["covers"]
    name = next(iter(state[checkpoints.AVERAGE_PART]))
    state[checkpoints.AVERAGE_PART][name] = state[checkpoints.AVERAGE_PART][name] + 1.0
    torch.save(state, path)
    with pytest.raises(checkpoints.CheckpointError, match="damaged"):
        checkpoints.load_checkpoint(str(path))


def test_other_seed_other_trajectory(tmp_path):
    assert run_main(tmp_path / "a", "--max-steps", "1") == 0
    assert run_main(tmp_path / "b", "--max-steps", "1", "--seed", "1") == 0
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert not torch.equal(a["generator"]["color_head.weight"], b["generator"]["color_head.weight"])


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "1") == 0
    code = train.main(["--out", str(out), *TINY, "--max-steps", "2", "--resume", "--g-channels", "16"])
    err = capsys.readouterr().err
    assert code == 2
    assert "does not fit" in err and "g_channels: checkpoint 8 vs requested 16" in err


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert run_main(tmp_path / "none", "--max-steps", "1", "--resume") == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "-3"], "--batch-size: must be a positive integer"),
    (["--precision", "fp8"], "--precision: must be one of"),
    (["--image-size", "30"], "--image-size: must be >= 16 and a multiple of 4"),
    (["--image-size", "300"], "synthetic faces render at 64 to 224"),
    (["--lr", "nan"], "--lr: must be a finite number"),
    (["--generator-mode", "magic"], "--generator-mode: must be one of"),
    (["--g-ema", "1"], "--g-ema: must lie in [0, 1)"),
    (["--batch-size", "abc"], "invalid int value"),
])
def test_invalid_flags_exit_2_with_a_message(flags, message, capsys):
    with pytest.raises(SystemExit) as exc:
        train.parse_config(TINY + flags)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


_FLAGS = [f"--{f.name.replace('_', '-')}" for f in __import__("dataclasses").fields(config.TrainConfig)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.one_of(st.sampled_from(_FLAGS), st.text(max_size=6),
                          st.integers(-5, 300).map(str), st.sampled_from(["nan", "inf", "-1e9", "0", "true"])),
                max_size=6))
def test_fuzzed_command_lines_never_crash(argv, capsys):
    """Any argv either parses to a valid config or exits 2 with a usage error."""
    try:
        cfg = train.parse_config(argv)
    except SystemExit as exc:
        assert exc.code in (0, 2)
        return
    assert cfg.batch_size >= 1 and cfg.image_size % 4 == 0 and cfg.lr > 0


def test_nonfinite_steps_are_skipped_and_counted(tmp_path, monkeypatch):
    """A critic that returns NaN on some steps: the updates are skipped, counted, weights stay finite."""
    real_build = models.build_critic
    calls = {"n": 0}

    def build(cfg):
        d = real_build(cfg)
        original = d.forward

        def forward(x):
            calls["n"] += 1
            out = original(x)
            if calls["n"] in (1, 2):  # the critic step of the first iteration and its generator step
                return type(out)(out.realness * float("nan"), out.logits)
            return out
        d.forward = forward
        return d

    monkeypatch.setattr(models, "build_critic", build)
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "3") == 0
    rows = read_metrics(out)
    assert rows[0]["d_skipped"] == 1.0 and rows[-1]["skipped_steps"] == 1
    assert rows[-1]["d_skipped"] == 0.0
    state = weights(out)
    assert all(torch.isfinite(t).all() for t in state["generator"].values())


def test_training_stops_on_persistent_nonfinite_losses(tmp_path, capsys, nan_critic):
    out = tmp_path / "run"
    code = run_main(out, "--max-steps", "50", "--max-nonfinite", "3")
    err = capsys.readouterr().err
    assert code == 3
    assert "non-finite" in err and "d_adv" in err
    assert not (out / "checkpoints" / "last.pt").exists()  # nothing NaN was written


def test_save_checkpoint_refuses_nan_weights(tmp_path):
    cfg = config.validate_config(config.TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8))
    g, d = models.build_generator(cfg), models.build_critic(cfg)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
    with torch.no_grad():
        g.color_head.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite"):
        checkpoints.save_checkpoint(str(tmp_path / "x.pt"), cfg, g, d, opt_g, opt_d, 1)
    assert not (tmp_path / "x.pt").exists()


def test_critic_of_a_checkpoint_loads_its_critic_and_none_for_an_export(tmp_path):
    cfg = config.validate_config(config.TrainConfig(image_size=64, g_channels=8, g_res_blocks=1, d_channels=8))
    g, d = models.build_generator(cfg), models.build_critic(cfg)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
    path = str(tmp_path / "x.pt")
    checkpoints.save_checkpoint(path, cfg, g, d, opt_g, opt_d, 1)
    state = checkpoints.load_checkpoint(path)
    critic = checkpoints.critic_of(state, path)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(critic(x).logits, d.eval()(x).logits) and not critic.training
    assert checkpoints.critic_of({k: v for k, v in state.items() if k != "critic"}, path) is None
    state["config"] = {**state["config"], "d_channels": 16}
    with pytest.raises(checkpoints.CheckpointError, match="weights do not fit the critic of its config"):
        checkpoints.critic_of(state, path)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(checkpoints.CheckpointError, match="cannot read checkpoint"):
        checkpoints.load_checkpoint(str(bad))


def _spawn(out, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, os.path.join(EXAMPLE, "train.py"), "--out", str(out), *TINY, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _wait_for_step(out, step, proc, timeout=120.0):
    path = os.path.join(out, "metrics.jsonl")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return
        if os.path.exists(path):
            with open(path) as fh:
                rows = [json.loads(line) for line in fh if line.strip()]
            if rows and rows[-1]["step"] >= step:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no step {step} within {timeout}s")


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = _spawn(out, "--max-steps", "100000", "--checkpoint-every", "100000", "--sample-every", "100000")
    _wait_for_step(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == training.EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "interrupted at step" in err
    state = weights(out)
    assert state["step"] >= 2 and state["extra"]["reason"] == "interrupted"


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_completes(tmp_path):
    """Kill -9 training several times mid-run (also mid-checkpoint-write); every
    checkpoint stays readable and the resumed run finishes all steps."""
    out = tmp_path / "run"
    rng = random.Random(1234)
    total = 12
    for attempt in range(3):
        args = ["--max-steps", str(total), "--checkpoint-every", "1", "--sample-every", "1000"]
        if os.path.exists(out / "checkpoints" / "last.pt"):
            args.append("--resume")
        proc = _spawn(out, *args)
        _wait_for_step(out, 1 + attempt * 3, proc)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait()
        state = weights(out)  # never unreadable
        assert 1 <= state["step"] <= total
        leftovers = [f for f in os.listdir(out / "checkpoints") if f != "last.pt"]
        for name in leftovers:  # a torn temporary file may remain; it is never last.pt
            assert name.startswith(".tmp-")
    proc = _spawn(out, "--max-steps", str(total), "--resume")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert weights(out)["step"] == total


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    """torchrun with 2 CPU processes (gloo) trains the same model as one process
    with the same global batch: the critic to float precision, the generator up
    to Adam's amplification of round-off on near-zero gradients (a few lr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    port = str(29500 + os.getpid() % 1000)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           os.path.join(EXAMPLE, "train.py"), "--out", str(tmp_path / "ddp"), *TINY, "--max-steps", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    # No retry: the rare "terminate called without an active exception" was a
    # gloo worker thread outliving the interpreter (see teardown_distributed).
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_main(tmp_path / "single", "--max-steps", "2") == 0
    a, b = weights(tmp_path / "ddp"), weights(tmp_path / "single")
    cfg = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert cfg["resolved"]["world_size"] == 2
    for name, t in a["critic"].items():
        assert torch.allclose(t, b["critic"][name], atol=1e-5), name
    diffs = torch.cat([(t - b["generator"][n]).abs().flatten() for n, t in a["generator"].items()])
    assert diffs.max() <= 5 * 1e-4 and diffs.mean() < 1e-6


_TEARDOWN_SCRIPT = """
import os, sys
import torch
sys.path.insert(0, sys.argv[1])
import training

def threads():
    return len(os.listdir("/proc/self/task"))

torch.set_num_threads(1)
before = threads()
training.init_process_group("gloo")
ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
ddp(torch.randn(3, 4)).sum().backward()
assert training.any_rank(True, 2, torch.device("cpu"))  # world=2 forces the all-reduce
assert threads() > before
del ddp
training.teardown_distributed()
print("extra threads after teardown:", threads() - before)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_distributed_teardown_joins_the_gloo_threads(tmp_path):
    """After teardown_distributed no thread of the process group is left to run
    into interpreter shutdown (which aborted a rank with "terminate called
    without an active exception"), even though DDP imports modules that bind the
    default group into default arguments."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(29500 + (os.getpid() + 500) % 1000), "RANK": "0", "WORLD_SIZE": "1"}
    result = subprocess.run([sys.executable, "-c", _TEARDOWN_SCRIPT, EXAMPLE], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "extra threads after teardown: 0" in result.stdout, result.stdout

def _write_fgnet_folder(folder, n_subjects=6, rng_seed=0):
    """A tiny FG-NET-style dataset: {subject:03d}A{age:02d}.JPG with ages across the groups."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(rng_seed)
    folder.mkdir(parents=True)
    ages = [12, 25, 33, 47, 60]
    for s in range(1, n_subjects + 1):
        for age in ages:
            pixels = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{s:03d}A{age:02d}.JPG", quality=90)


def test_trains_on_a_real_dataset_folder(tmp_path):
    data = tmp_path / "fgnet"
    _write_fgnet_folder(data)
    out = tmp_path / "run"
    assert run_main(out, "--data", str(data), "--max-steps", "2", "--test-fraction", "0.2") == 0
    cfg = json.loads((out / "config.json").read_text())
    # 6 subjects x 5 images, split by subject: 5 subjects train, 1 test
    assert cfg["resolved"]["train_images"] == 25 and cfg["resolved"]["test_images"] == 5
    assert weights(out)["step"] == 2


def test_unusable_dataset_folder_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_main(tmp_path / "run", "--data", str(empty), "--max-steps", "1") == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(empty) in err and "Traceback" not in err


def test_paper_preset_is_the_papers_recipe():
    cfg = train.parse_config(["--preset", "paper"])
    assert (cfg.image_size, cfg.batch_size, cfg.epochs, cfg.g_channels, cfg.g_res_blocks) == (224, 64, 100, 64, 6)
    assert (cfg.lambda_adv, cfg.lambda_att, cfg.lambda_cls, cfg.lambda_gp, cfg.lambda_tv) == (10, 2, 100, 10, 5e-5)
    assert cfg.attention_form == "paper" and cfg.critic_warmup == 0 and cfg.g_attention_bias == 0.0
    assert cfg.lr == 1e-4 and cfg.n_critic == 1 and cfg.gp_mode == "joint" and cfg.g_upsample == "transpose"
    assert cfg.gp_weighting == "absolute" and cfg.init == "default" and cfg.g_ema == 0.0 and cfg.gp_every == 1


@pytest.mark.parametrize("gp_mode", ["joint", "separate"])
def test_step_with_a_grad_scaler(gp_mode):
    """The fp16 path's GradScaler bookkeeping (exercised here on CPU in fp32):
    both penalty modes run several iterations with finite losses."""
    cfg = config.validate_config(config.TrainConfig(
        data="random-tensors", image_size=32, batch_size=4, g_channels=8, g_res_blocks=1, d_channels=8,
        device="cpu", precision="fp32", critic_warmup=0, gp_mode=gp_mode))
    torch.manual_seed(0)
    g, d = models.build_generator(cfg), models.build_critic(cfg)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
    step = AcGANStep(cfg, g, d, opt_g, opt_d, scaler=torch.amp.GradScaler("cpu", init_scale=2.0**8))
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    for i in range(3):
        metrics = step(real, labels, i)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values())
        assert metrics["d_skipped"] == 0.0 and metrics["g_skipped"] == 0.0


@pytest.mark.parametrize("weighting, factor", [("absolute", 1.0), ("nested", 10.0)])
def test_penalty_weighting(weighting, factor):
    """absolute: d_loss = lambda_adv * d_adv + lambda_gp * gp + lambda_cls * d_cls;
    nested (Eq. 5 read literally): the penalty is multiplied by lambda_adv too."""
    cfg = config.validate_config(config.TrainConfig(
        data="random-tensors", image_size=32, batch_size=4, g_channels=8, g_res_blocks=1, d_channels=8,
        device="cpu", precision="fp32", gp_weighting=weighting))
    torch.manual_seed(0)
    g, d = models.build_generator(cfg), models.build_critic(cfg)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
    m = AcGANStep(cfg, g, d, opt_g, opt_d)(torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3]), 0)
    expected = 10 * m["d_adv"] + 10 * factor * m["gp"] + 100 * m["d_cls"]
    torch.testing.assert_close(m["d_loss"], expected)


def test_a_passing_saturation_does_not_warn(capsys):
    """Saturated windows interrupted before SATURATION_PATIENCE iterations stay silent; a saturation that lasts
    warns once, naming where it began."""
    log = training.TrainLog(config.validate_config(config.TrainConfig(preset="cpu-demo")), torch.device("cpu"), 1,
                            is_main=False, start_step=0, prior_s=0.0, bar=None)
    saturated, fine = {"attention_mean": 0.97}, {"attention_mean": 0.7}
    for step in range(100, 310, 10):  # saturated at 100-190 and from 210 on, not at 200
        log._watch_saturation(fine if step == 200 else saturated, step)
    assert training.SATURATION_PATIENCE == 100 and capsys.readouterr().err == ""
    for step in range(310, 500, 10):
        log._watch_saturation(saturated, step)
    err = capsys.readouterr().err
    assert err.count("saturated at 1") == 1 and "at step 310 (since step 210)" in err


def test_released_initialisation_draws_conv_weights_from_n0_002():
    cfg = config.validate_config(config.TrainConfig(preset="cpu-demo", init="normal"))
    torch.manual_seed(0)
    convs = [m.weight for m in models.build_critic(cfg).modules() if isinstance(m, torch.nn.Conv2d)]
    weights = torch.cat([w.flatten() for w in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002


@pytest.mark.parametrize("record, side", [
    ({"attention_mean": 0.5, "attention_near_zero": 0.1, "attention_near_one": 0.1}, None),
    ({"attention_mean": 0.03, "attention_near_zero": 0.5, "attention_near_one": 0.0}, "zero"),
    ({"attention_mean": 0.2, "attention_near_zero": 0.95, "attention_near_one": 0.0}, "zero"),
    ({"attention_mean": 0.97, "attention_near_zero": 0.0, "attention_near_one": 0.5}, "one"),
    ({"attention_mean": 0.8, "attention_near_zero": 0.0, "attention_near_one": 0.92}, "one"),
    ({"d_loss": 1.0}, None),
])
def test_mask_saturation_either_way(record, side):
    assert training.mask_saturation(record) == side
    if side is not None:
        cfg = config.validate_config(config.TrainConfig(preset="cpu-demo", attention_form="euclidean"))
        text = training.saturation_warning(side, {"attention_near_zero": 0.0, "attention_near_one": 0.0, **record},
                                           300, cfg)
        assert f"saturated at {0 if side == 'zero' else 1}" in text and "--lambda-att" in text
        if side == "zero":
            assert "--attention-form paper" in text


def test_a_saturating_run_warns_once(tmp_path, capsys):
    """Masks that start (and stay) near 0: one warning once they have stayed saturated for 100 iterations after
    the first 100, naming the flag."""
    out = tmp_path / "sat"
    assert run_main(out, "--max-steps", "230", "--log-every", "10", "--g-attention-bias", "-8") == 0
    err = capsys.readouterr().err
    assert err.count("attention masks saturated at 0 at step 200 (since step 100)") == 1
    assert "lower --lambda-att" in err
    rows = read_metrics(out)
    assert rows[-1]["attention_mean"] < 0.05


def test_fused_adam_skips_a_nonfinite_update_without_reading_the_flag(monkeypatch):
    """The skip decision is handed to fused Adam as found_inf: no host read, weights and moments untouched."""
    cfg = config.validate_config(config.TrainConfig(
        data="random-tensors", image_size=32, batch_size=4, g_channels=8, g_res_blocks=1, d_channels=8,
        device="cpu", precision="fp32"))
    torch.manual_seed(0)
    g, d = models.build_generator(cfg), models.build_critic(cfg)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=True)
    stepper = AcGANStep(cfg, g, d, opt_g, opt_d)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    real[0, 0, 0, 0] = float("nan")
    read_back = []
    for name, value in (("__bool__", True), ("__int__", 0), ("__float__", 0.0), ("item", 0)):
        monkeypatch.setattr(torch.Tensor, name, lambda t, _v=value, _n=name: read_back.append(_n) or _v, raising=False)
    # value checks off, as on a GPU (they run only on CPU tensors in eager mode)
    with attngan.set_value_checks(False):
        metrics = stepper(real, torch.tensor([0, 1, 2, 3]), 0)
    monkeypatch.undo()
    assert not read_back, f"the step read a tensor back to the host: {read_back}"
    assert float(metrics["d_skipped"]) == 1.0
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(float(s["step"]) == 0 for s in opt_d.state.values())
