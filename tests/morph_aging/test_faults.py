"""Faults: nothing lost, nothing hangs, nothing half-said.

Run folders (refusal, --overwrite, the lock), faults mid-run (unreadable
images on both data paths, unexpected errors), output-side errors (a file or
folder in the way, a full disk), weights verified at load (NaN, flipped
bytes, old checkpoints), boundary validation (flags, checkpoint configs,
ablation.py), datasets (FIFOs, empty age groups, command-line hints), logs
(strict JSON, resume truncation, divergence), age.py's output names, Ctrl-C
(what was finished is said, nothing is left half-written), folders that
hold another program's files, and messages that name the real cause.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import ablation
import age
import checkpoints
import config
import evaluate
import export
import face_datasets
import files
import models
import paper_protocol
import run_folder
import train
import training
from step import AcGANStep

EXAMPLE = os.path.dirname(os.path.abspath(train.__file__))
TINY = ["--image-size", "64", "--batch-size", "4", "--num-subjects", "10", "--g-channels", "8",
        "--g-res-blocks", "1", "--d-channels", "8", "--precision", "fp32", "--no-progress",
        "--log-every", "1", "--device", "cpu", "--critic-warmup", "0"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run_main(out, *extra):
    return train.main(["--out", str(out), *TINY, *extra])


def last(out):
    return checkpoints.load_checkpoint(os.path.join(out, "checkpoints", "last.pt"))


def metrics_steps(out):
    with open(os.path.join(out, "metrics.jsonl")) as fh:
        return [json.loads(line)["step"] for line in fh]


def one_error_line(err: str) -> str:
    """The stderr of a failed script: exactly one ``error`` line, no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-step run (its checkpoint is copied, never changed)."""
    out = tmp_path_factory.mktemp("faults") / "run"
    assert run_main(out, "--max-steps", "2") == 0
    return out


@pytest.fixture
def ckpt(trained, tmp_path):
    path = tmp_path / "last.pt"
    shutil.copy(trained / "checkpoints" / "last.pt", path)
    return path


# --------------------------------------------------------------------------- #
# 1. Run folders
# --------------------------------------------------------------------------- #


def test_a_folder_that_holds_a_run_is_refused_and_left_alone(trained, capsys):
    before = (trained / "checkpoints" / "last.pt").read_bytes(), (trained / "metrics.jsonl").read_text()
    assert run_main(trained, "--max-steps", "1") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds a run" in line and "--resume" in line and "--overwrite" in line
    after = (trained / "checkpoints" / "last.pt").read_bytes(), (trained / "metrics.jsonl").read_text()
    assert before == after


def test_overwrite_starts_a_clean_folder_and_keeps_other_files(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / "notes.txt").write_text("mine")
    (out / "samples" / "favourite.png").write_bytes(b"mine too")
    (out / "checkpoints" / ".tmp-dead.pt").write_bytes(b"left by a kill")
    assert run_main(out, "--max-steps", "1", "--overwrite") == 0
    assert metrics_steps(out) == [1] and last(out)["step"] == 1
    assert sorted(os.listdir(out / "samples")) == ["favourite.png", "latest.png", "step_000001.png"]
    assert (out / "notes.txt").read_text() == "mine" and os.listdir(out / "checkpoints") == ["last.pt"]


def test_resume_and_overwrite_together_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        train.parse_config(TINY + ["--resume", "--overwrite"])
    assert exc.value.code == 2 and "--overwrite: cannot be combined with --resume" in capsys.readouterr().err


def test_a_second_run_is_locked_out_while_the_first_holds_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    with run_folder.RunLock(str(_mkdir(out))):
        assert run_main(out, "--max-steps", "1") == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"another run (pid {os.getpid()}) is writing into {out}" in line
    assert not (out / "metrics.jsonl").exists()
    assert run_main(out, "--max-steps", "1") == 0  # released: the folder is free again


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_lock_of_a_killed_run_does_not_block(tmp_path):
    out = _mkdir(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); import run_folder; "
         "run_folder.RunLock(sys.argv[2]).acquire(); print('locked', flush=True); time.sleep(600)", EXAMPLE, str(out)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(run_folder.RunFolderError, match="another run"):
        run_folder.RunLock(str(out)).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (out / ".lock").exists()  # the stale lock file is still there ...
    run_folder.RunLock(str(out)).acquire().release()  # ... and blocks nothing


def test_no_temporary_file_survives_a_run(trained):
    leftovers = [os.path.join(d, f) for d, _, fs in os.walk(trained) for f in fs if f.startswith(files.TEMP_PREFIX)]
    assert leftovers == []


# --------------------------------------------------------------------------- #
# 3. Output-side errors, found before work is spent
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("layout, message", [
    ("out-is-a-file", "is a file, not a folder"),
    ("last-pt-is-a-folder", "is a folder or another non-file"),
    ("unwritable", "not writable (permission denied)"),
])
def test_unusable_output_is_refused_before_any_step(layout, message, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    if layout == "out-is-a-file":
        out.write_text("x")
    elif layout == "last-pt-is-a-folder":
        (out / "checkpoints" / "last.pt").mkdir(parents=True)
    else:  # the tests run as root, which ignores permissions: refuse the probe as a read-only folder would
        def refuse(*a, **k):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    monkeypatch.setattr(AcGANStep, "__call__", lambda *a, **k: pytest.fail("a step ran"))
    assert run_main(out, "--max-steps", "1") == 2
    assert message in one_error_line(capsys.readouterr().err)


def _enospc():
    return OSError(errno.ENOSPC, "No space left on device")


def _torch_wrapped_enospc():
    exc = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    exc.__context__ = RuntimeError("basic_ios::clear: iostream error")
    exc.__context__.__context__ = _enospc()
    return exc


@pytest.mark.parametrize("failure", [_enospc, _torch_wrapped_enospc])
def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_previous_one(failure, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_save = torch.save
    calls = []

    def save(obj, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as fh:
                fh.write(b"half a checkpoint")
            raise failure()
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(checkpoints.torch, "save", save)
    assert run_main(out, "--max-steps", "4", "--checkpoint-every", "2", "--sample-every", "1000") == training.EXIT_ERROR
    line = one_error_line(capsys.readouterr().err)
    ckpt = out / "checkpoints" / "last.pt"
    assert f"cannot write {ckpt}: no space left on device" in line
    assert "the last checkpoint, step 2, is intact" in line
    monkeypatch.undo()
    assert last(out)["step"] == 2
    assert os.listdir(out / "checkpoints") == ["last.pt"]  # the torn temporary is gone


def test_write_failure_reads_torch_failures_without_an_errno(tmp_path, monkeypatch):
    bare = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    assert files.write_failure(bare, str(tmp_path)).startswith("the writer failed")
    full = os.statvfs_result((4096, 4096, 100, 0, 0, 100, 0, 0, 0, 255))
    monkeypatch.setattr(files.os, "statvfs", lambda p: full)
    assert files.write_failure(bare, str(tmp_path)) == "no space left on device"
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(files.WriteError, match=f"cannot write {target}: no space left on device"):
        with files.atomic_file(target):
            raise bare
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_metrics_on_a_full_disk():
    log = run_folder.MetricsLog("/dev/full")
    with pytest.raises(files.WriteError, match="cannot write /dev/full: no space left on device"):
        log.write({"step": 1})
    log.close()


# --------------------------------------------------------------------------- #
# 2. Faults mid-run
# --------------------------------------------------------------------------- #


def _fgnet(folder, subjects=6, truncate_age=None):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for s in range(1, subjects + 1):
        for age_ in (12, 25, 33, 47, 60):
            path = folder / f"{s:03d}A{age_:02d}.JPG"
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path, quality=90)
            if age_ == truncate_age:
                path.write_bytes(path.read_bytes()[:200])  # a truncated JPEG
    return folder


@pytest.mark.parametrize("workers", ["2", "0"], ids=["streaming", "cached"])
def test_truncated_jpegs_are_skipped_reported_and_resume_passes_them(workers, tmp_path, capfd):
    data = _fgnet(tmp_path / "fgnet", truncate_age=33)
    out = tmp_path / "run"
    flags = ["--data", str(data), "--test-fraction", "0.2", "--workers", workers, "--checkpoint-every", "3"]
    # 25 training images in batches of 4: 6 steps see every image
    assert run_main(out, *flags, "--max-steps", "6") == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err
    reported = [line for line in err.splitlines() if "unreadable training image" in line]
    # the cached path decodes all 25 images first; 6 streamed batches visit 24 of them
    assert len(reported) == len(set(reported)) >= (5 if workers == "0" else 4)
    assert all("A33.JPG" in line and "truncated" in line for line in reported)
    assert f"{len(reported)} unreadable image(s) skipped" in err
    assert run_main(out, *flags, "--max-steps", "8", "--resume") == 0
    assert last(out)["step"] == 8


def test_an_unexpected_error_saves_a_checkpoint_and_ends_in_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = AcGANStep.__call__

    def step(self, images, labels, at):
        if at == 2:
            raise RuntimeError("boom\nsecond line")
        return real(self, images, labels, at)

    monkeypatch.setattr(AcGANStep, "__call__", step)
    assert run_main(out, "--max-steps", "5") == training.EXIT_ERROR
    line = one_error_line(capsys.readouterr().err)
    assert "error at step 2: RuntimeError: boom;" in line and "saved a checkpoint of step 2" in line
    assert f"traceback in {out / 'train.log'}" in line
    assert "Traceback" in (out / "train.log").read_text()
    assert last(out)["step"] == 2 and last(out)["extra"]["reason"] == checkpoints.FAILED
    monkeypatch.undo()
    assert run_main(out, "--max-steps", "3", "--resume") == 0 and metrics_steps(out) == [1, 2, 3]


def test_an_error_with_nonfinite_weights_saves_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def step(self, images, labels, at):
        with torch.no_grad():
            next(self.g.parameters()).fill_(float("nan"))
        raise ValueError("weights went bad")

    monkeypatch.setattr(AcGANStep, "__call__", step)
    assert run_main(out, "--max-steps", "3") == training.EXIT_ERROR
    line = one_error_line(capsys.readouterr().err)
    assert "ValueError: weights went bad" in line and "no checkpoint saved (the weights are not finite)" in line
    assert not (out / "checkpoints" / "last.pt").exists()


def test_a_second_interrupt_aborts_in_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = AcGANStep.__call__

    def step(self, images, labels, at):
        if at == 2:
            raise KeyboardInterrupt  # what Interrupt raises on the second SIGINT
        return real(self, images, labels, at)

    monkeypatch.setattr(AcGANStep, "__call__", step)
    assert run_main(out, "--max-steps", "5", "--checkpoint-every", "1") == training.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "Traceback" not in err and "train.py: aborted; the last checkpoint, step 2, is intact" in err


def test_other_scripts_refuse_an_unusable_output_before_the_work(trained, tmp_path, capsys):
    ckpt = trained / "checkpoints" / "last.pt"
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, err = _run_script(age.main, [_photo(tmp_path), "--checkpoint", ckpt, "--out", a_file], capsys)
    assert code == 2 and "is a file, not a folder" in one_error_line(err)
    code, err = _run_script(evaluate.main, ["--checkpoint", ckpt, "--out", a_file, "--no-progress"], capsys)
    assert code == 2 and "is a file, not a folder" in one_error_line(err)
    (tmp_path / "g.safetensors").mkdir()
    code, err = _run_script(export.main, ["--checkpoint", ckpt, "--out", tmp_path / "g.safetensors"], capsys)
    assert code == 2 and "g.safetensors: is a directory" in one_error_line(err)


# --------------------------------------------------------------------------- #
# 4. Weights verified before use
# --------------------------------------------------------------------------- #


def _with_nan(src, dst):
    state = torch.load(src, map_location="cpu", weights_only=True)
    state["generator"]["color_head.weight"][0, 0, 0, 0] = float("inf")
    # an honest file
    state["digest"]["sha256"] = checkpoints.tensor_digest({k: state[k] for k in state["digest"]["covers"]})
    torch.save(state, dst)
    return dst


def _flip_tensor_byte(path):
    """Flip one byte in the middle of the largest tensor's data inside the .pt zip archive."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
        at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0x10]))


def _run_script(main, argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("damage, message", [(_with_nan, "non-finite values"), (None, "is damaged")],
                         ids=["nan", "flipped-byte"])
def test_bad_weights_are_refused_by_every_script(damage, message, ckpt, tmp_path, capsys):
    if damage is None:
        _flip_tensor_byte(ckpt)
    else:
        damage(ckpt, ckpt)
    photo = _photo(tmp_path)
    for main, argv in [
        (age.main, [photo, "--checkpoint", ckpt, "--out", tmp_path / "aged"]),
        (export.main, ["--checkpoint", ckpt, "--out", tmp_path / "g.safetensors"]),
        (evaluate.main, ["--checkpoint", ckpt, "--out", tmp_path / "eval", "--no-progress"]),
    ]:
        code, err = _run_script(main, argv, capsys)
        assert code == 2 and message in one_error_line(err) and str(ckpt) in err, (main, err)
    assert not (tmp_path / "g.safetensors").exists() and not (tmp_path / "eval" / "results.json").exists()
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt, out / "checkpoints" / "last.pt")
    assert run_main(out, "--max-steps", "3", "--resume") == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_exported_weights_carry_a_digest_that_catches_flipped_bytes(ckpt, tmp_path, capsys):
    pytest.importorskip("safetensors")
    out = tmp_path / "g.safetensors"
    assert export.main(["--checkpoint", str(ckpt), "--out", str(out)]) == 0
    checkpoints.generator_from_checkpoint(str(out))  # verifies
    raw = bytearray(out.read_bytes())
    header = struct.unpack("<Q", raw[:8])[0]
    raw[8 + header + (len(raw) - 8 - header) // 2] ^= 0x01
    out.write_bytes(bytes(raw))
    with pytest.raises(checkpoints.CheckpointError, match="is damaged"):
        checkpoints.load_checkpoint(str(out))


def test_a_checkpoint_without_a_digest_loads_with_a_warning(ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["digest"]
    torch.save(state, ckpt)
    with pytest.warns(checkpoints.CheckpointWarning, match="no integrity digest"):
        checkpoints.generator_from_checkpoint(str(ckpt))
    code = subprocess.run([sys.executable, os.path.join(EXAMPLE, "export.py"), "--checkpoint", str(ckpt), "--out",
                           str(ckpt.parent / "g.safetensors")], capture_output=True, text=True)
    if code.returncode == 0:  # with the export extra: the warning is one line of the script's stderr
        assert code.stderr.strip() == (f"warning: {ckpt} carries no integrity digest (written by an older version): "
                                       "its weights are checked for NaN and infinity only")


# --------------------------------------------------------------------------- #
# 5. Boundary validation
# --------------------------------------------------------------------------- #

_FLOATS = [f.name for f in __import__("dataclasses").fields(config.TrainConfig) if "float" in str(f.type)]
_INTS = [f.name for f in __import__("dataclasses").fields(config.TrainConfig) if "int" in str(f.type)]


@pytest.mark.parametrize("name", _FLOATS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_float_flags_refuse_nan_and_infinity_naming_the_flag(name, value, capsys):
    flag = "--" + name.replace("_", "-")
    with pytest.raises(SystemExit) as exc:
        train.parse_config(TINY + [f"{flag}={value}"])  # "=": argparse takes "-inf" for an option otherwise
    assert exc.value.code == 2
    assert f"{flag}: must be" in capsys.readouterr().err


@pytest.mark.parametrize("name", _INTS)
def test_integer_flags_refuse_huge_values_naming_the_flag(name, capsys):
    flag = "--" + name.replace("_", "-")
    with pytest.raises(SystemExit) as exc:
        train.parse_config(TINY + [flag, str(10**30)])
    assert exc.value.code == 2
    assert f"{flag}: must be at most" in capsys.readouterr().err


@pytest.mark.parametrize("key, value, message", [
    ("seed", "abc", "--seed: must be an integer, got str 'abc'"),
    ("image_size", 1e30, "--image-size: must be an integer"),
    ("lr", float("nan"), "--lr: must be a finite number"),
    ("g_channels", 10**12, "--g-channels: must be at most 4096"),
    ("generator_mode", ["attention"], "--generator-mode: must be a string"),
    ("channels_last", "yes", "--channels-last: must be true or false"),
])
def test_crafted_checkpoint_configs_are_one_line_errors(key, value, message, ckpt, tmp_path, capsys):
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["config"][key] = value
    torch.save(state, ckpt)
    for main, argv in [
        (age.main, [_photo(tmp_path), "--checkpoint", ckpt, "--out", tmp_path / "aged"]),
        (evaluate.main, ["--checkpoint", ckpt, "--out", tmp_path / "eval", "--no-progress"]),
    ]:
        code, err = _run_script(main, argv, capsys)
        assert code == 2, err
        line = one_error_line(err)
        assert "unusable config" in line and message in line, line


@pytest.mark.parametrize("key, value, message", [
    ("config", ["not", "a", "dict"], "its 'config' is list"),
    ("step", "3", "its 'step' is '3'"),
    ("step", -1, "its 'step' is -1"),
    ("extra", [], "its 'extra' is list"),
    ("digest", {"sha256": 5}, "not a sha256 hex string"),
])
def test_malformed_checkpoint_layouts_are_checkpoint_errors(key, value, message, ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state[key] = value
    torch.save(state, ckpt)
    with pytest.raises(checkpoints.CheckpointError, match=message.replace("'", ".")):
        checkpoints.load_checkpoint(str(ckpt))


@pytest.mark.parametrize("argv, message", [
    (["--", "--generator-m", "no-attention"], "--generator-m"),  # an abbreviation is no way around the guard
    (["--", "--lambda-l", "5"], "--lambda-l"),
    (["--", "--no-resume"], "--no-resume after '--'"),
    (["--", "--overwrite"], "--overwrite after '--'"),
    (["--", "--lr", "nan"], "--lr: must be a finite number"),
    (["--", "--image-size", "30"], "--image-size: must be >= 16"),
    (["--max-minutes", "inf"], "--max-minutes: must be a finite number > 0"),
    (["--max-steps", str(10**30)], "--max-steps: must be at most"),
    (["--seeds", str(10**30)], "--seed: must be at most"),
])
def test_ablation_validates_everything_before_training(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ablation, "run_training", lambda argv: pytest.fail(f"trained {argv}"))
    try:
        code = ablation.main(["--out", str(tmp_path / "a"), "--variants", "attention"] + argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_ablation_passes_its_own_flags_unabbreviated():
    with pytest.raises(SystemExit):
        ablation.build_parser().parse_args(["--out", "x", "--max-s", "3"])


# --------------------------------------------------------------------------- #
# 6. Datasets
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_an_image_neither_hangs_nor_counts(trained, tmp_path, capsys):
    data = _fgnet(tmp_path / "fgnet", subjects=2)
    os.mkfifo(data / "001A99.JPG")
    signal.signal(signal.SIGALRM, lambda *a: pytest.fail("hung on a FIFO"))
    signal.alarm(60)
    try:
        records = face_datasets.scan_dataset(data)
        assert len(records) == 10 and all(r.path.name != "001A99.JPG" for r in records)
        with pytest.raises(face_datasets.DatasetError, match="not a regular file"):
            face_datasets.load_image(data / "001A99.JPG", 64)
        code = age.main([str(data / "001A99.JPG"), "--checkpoint", str(trained / "checkpoints" / "last.pt"),
                         "--out", str(tmp_path / "aged")])
        assert code == 1 and "it is not a regular file" in capsys.readouterr().err
        fifo_root = tmp_path / "list.csv"
        os.mkfifo(fifo_root)
        with pytest.raises(face_datasets.DatasetError, match="neither a folder nor a regular file"):
            face_datasets.scan_dataset(fifo_root)
    finally:
        signal.alarm(0)


def test_per_group_counts_are_printed_and_an_empty_group_is_refused(tmp_path, capsys):
    data = tmp_path / "young"
    data.mkdir()
    rng = np.random.default_rng(1)
    for s in range(1, 7):
        for a in (12, 14, 16, 18, 19):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(data / f"{s:03d}A{a:02d}.JPG")
    out = tmp_path / "run"
    assert run_main(out, "--data", str(data), "--max-steps", "1", "--test-fraction", "0.2") == 2
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert "no images of age group(s) 21-30, 31-40, 41-50, 51+" in line and "--allow-empty-groups" in line
    assert "training images per age group: 10-20 25, 21-30 0" in err
    assert run_main(out, "--data", str(data), "--max-steps", "1", "--test-fraction", "0.2", "--allow-empty-groups",
                    "--overwrite") == 0
    err = capsys.readouterr().err
    assert "warning: the training set has no images of age group(s) 21-30" in err
    assert json.loads((out / "config.json").read_text())["resolved"]["train_images_per_group"]["10-20"] == 25


def test_python_only_advice_names_the_command_line_flag(tmp_path, capsys):
    data = _fgnet(tmp_path / "fgnet")
    (data / "holiday.jpg").write_bytes((data / "001A12.JPG").read_bytes())  # a name no convention parses
    out = tmp_path / "run"
    assert run_main(out, "--data", str(data), "--max-steps", "1", "--test-fraction", "0.2") == 2
    assert "--skip-bad-files" in one_error_line(capsys.readouterr().err)
    assert run_main(out, "--data", str(data), "--max-steps", "1", "--test-fraction", "0.2", "--skip-bad-files") == 0
    capsys.readouterr()
    young = _fgnet(tmp_path / "kids")
    (young / "001A12.JPG").rename(young / "001A05.JPG")
    out = tmp_path / "run2"
    assert run_main(out, "--data", str(young), "--max-steps", "1", "--test-fraction", "0.2") == 2
    assert "--clip-young" in one_error_line(capsys.readouterr().err)
    assert run_main(out, "--data", str(young), "--max-steps", "1", "--test-fraction", "0.2", "--clip-young") == 0


# --------------------------------------------------------------------------- #
# 7. Logs
# --------------------------------------------------------------------------- #


def _strict(line):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(line, parse_constant=refuse)


def test_metrics_are_strict_json_even_with_nan_losses(tmp_path, nan_critic):
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "2", "--max-nonfinite", "50") == 0
    rows = [_strict(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["d_adv"] is None and rows[0]["d_skipped"] == 1.0


def test_resume_drops_the_lines_logged_after_its_checkpoint(trained, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    with open(out / "metrics.jsonl", "a") as fh:  # logged by a run killed before its next checkpoint
        fh.write(json.dumps({"step": 3, "d_loss": 1.0}) + "\n" + '{"step": 4, "d_lo')
    assert run_main(out, "--max-steps", "4", "--resume") == 0
    assert "dropped 2 line(s) of metrics.jsonl" in capsys.readouterr().err
    assert metrics_steps(out) == [1, 2, 3, 4]
    for line in (out / "metrics.jsonl").read_text().splitlines():
        _strict(line)


def _diverged_at_once(out, capsys) -> str:
    """The closing line of a run whose critic gives NaN from the start (use with ``nan_critic``)."""
    assert run_main(out, "--max-steps", "20", "--max-nonfinite", "2") == training.EXIT_DIVERGED
    final = [line for line in capsys.readouterr().err.splitlines() if line.startswith("diverged at step")]
    assert len(final) == 1
    return final[0]


def test_divergence_names_no_checkpoint_that_was_never_written(tmp_path, capsys, nan_critic):
    final = _diverged_at_once(tmp_path / "run", capsys)
    assert "no checkpoint was written" in final and "last.pt" not in final


# --------------------------------------------------------------------------- #
# 8. age.py outputs never collide
# --------------------------------------------------------------------------- #


def test_photos_whose_names_collide_get_distinct_outputs(trained, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, level in (("a.png", 10), ("a.jpg", 90), ("a-2.png", 170), ("A.PNG", 250)):
        Image.fromarray(np.full((64, 64, 3), level, np.uint8)).save(photos / name,
                                                                   format="JPEG" if name.endswith("jpg") else "PNG")
    out = tmp_path / "aged"
    code = age.main([str(photos), "--checkpoint", str(trained / "checkpoints" / "last.pt"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = sorted(os.listdir(out))
    per_photo = len(age.output_names("x"))  # the strip, one face per group (and an animation)
    assert len(written) == len({n.casefold() for n in written}) == 4 * per_photo
    assert "aged 4 of 4 photo(s)" in captured.out and f"({4 * per_photo} files)" in captured.out
    strips = [np.asarray(Image.open(out / n))[40, 5] for n in written if n.endswith("_aged.png")]
    assert len({tuple(s) for s in strips}) == 4  # four different inputs, four different strips


def test_outputs_never_overwrite_a_photo_in_the_output_folder(trained, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "a_aged.png", "a_51+.png"):
        Image.fromarray(np.full((64, 64, 3), 80, np.uint8)).save(folder / name)
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    code = age.main([str(folder), "--checkpoint", str(trained / "checkpoints" / "last.pt"), "--out", str(folder)])
    assert code == 0, capsys.readouterr().err
    assert all((folder / n).read_bytes() == data for n, data in before.items())
    assert len(os.listdir(folder)) == 3 + 3 * len(age.output_names("x"))


# --------------------------------------------------------------------------- #
# 9. Ctrl-C: what was finished is said, nothing is left half-written
# --------------------------------------------------------------------------- #


def _interruptible(main, argv):
    """Run a script's main(); a KeyboardInterrupt escaping it (a traceback for the user) fails the test
    instead of stopping pytest."""
    try:
        return main([str(a) for a in argv])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")


def _photos(folder, n):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_ctrl_c_while_aging_keeps_whole_photos_and_says_how_far(trained, tmp_path, capsys, monkeypatch):
    photos, out = _photos(tmp_path / "photos", 5), tmp_path / "aged"
    real, calls = models.age_gradually, []

    def animate(*a, **k):  # the animation, a photo's last file, of the third photo
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(models, "age_gradually", animate)
    code = _interruptible(age.main, [photos, "--checkpoint", trained / "checkpoints" / "last.pt", "--out", out])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    per_photo = len(age.output_names("x"))
    written = sorted(os.listdir(out))
    assert len(written) == 2 * per_photo and {n.split("_")[0] for n in written} == {"p0", "p1"}  # p2: nothing
    line = [line for line in err.splitlines() if "interrupted" in line]
    assert len(line) == 1 and f"aged 2 of 5 photo(s) into {out} ({2 * per_photo} files)" in line[0]
    assert f"the other 3, from {photos / 'p2.png'} on, were not aged" in line[0]


def test_ctrl_c_before_any_photo_is_aged_leaves_no_folder(trained, tmp_path, capsys, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "age_all_groups", interrupt)
    out = tmp_path / "aged"
    code = _interruptible(age.main, [_photo(tmp_path), "--checkpoint", trained / "checkpoints" / "last.pt",
                                     "--out", out])
    assert code == 130 and not out.exists()
    assert "age.py: interrupted before any photo was aged; nothing written" in capsys.readouterr().err


def test_ctrl_c_during_an_evaluation_leaves_no_empty_folder(trained, tmp_path, capsys, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(paper_protocol, "load_data", interrupt)
    out = tmp_path / "eval"
    code = _interruptible(evaluate.main, ["--checkpoint", trained / "checkpoints" / "last.pt", "--out", out,
                                          "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and not out.exists() and "Traceback" not in err
    assert "evaluate.py: interrupted before the evaluation finished; no results written" in err


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt during the test, also where the suite runs with SIGINT ignored (a
    background job started by a non-interactive shell)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_files_are_renamed_into_place_waits_for_the_last(tmp_path, monkeypatch, sigint_raises):
    targets = {tmp_path / f"{name}.png": name.encode() for name in ("strip", "young", "old")}
    renames, real = [], os.replace

    def replace(src, dst):
        renames.append(dst)
        if len(renames) == 1:  # Ctrl-C as the first file is renamed
            signal.raise_signal(signal.SIGINT)
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        files.write_together(targets)
    assert len(renames) == 3 and sorted(os.listdir(tmp_path)) == ["old.png", "strip.png", "young.png"]
    monkeypatch.undo()

    syncs, real_fsync = [], os.fsync

    def fsync(fd):
        syncs.append(fd)
        if len(syncs) == 2:  # Ctrl-C while the second file is written: none of them changes
            signal.raise_signal(signal.SIGINT)
        return real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        files.write_together({path: b"new" for path in targets})
    assert {path.read_bytes() for path in targets} == {b"strip", b"young", b"old"}
    assert sorted(os.listdir(tmp_path)) == ["old.png", "strip.png", "young.png"]  # no temporary left


# --------------------------------------------------------------------------- #
# 10. A folder that holds something else is never taken for a run
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("flag", [[], ["--overwrite"], ["--resume"]], ids=["no-flag", "overwrite", "resume"])
def test_a_folder_of_another_programs_files_is_refused_whatever_the_flag(flag, tmp_path, capsys):
    out = _mkdir(tmp_path / "bert")
    (out / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (out / "pytorch_model.bin").write_bytes(b"weights")
    assert run_main(out, "--max-steps", "1", *flag) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "config.json (not a train.py config: its keys are model_type)" in line and "pytorch_model.bin" in line
    assert "whatever the flags" in line and "choose another --out" in line
    assert json.loads((out / "config.json").read_text()) == {"model_type": "bert"}
    assert sorted(os.listdir(out)) == ["config.json", "pytorch_model.bin"]  # nothing of ours left there


def test_a_checkpoint_of_another_program_is_not_taken_for_a_run(tmp_path, capsys):
    out = _mkdir(tmp_path / "other")
    _mkdir(out / "checkpoints")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, out / "checkpoints" / "last.pt")
    assert run_main(out, "--max-steps", "1", "--overwrite") == 2
    assert "checkpoints/last.pt (not a checkpoint of train.py)" in one_error_line(capsys.readouterr().err)
    assert torch.load(out / "checkpoints" / "last.pt")["epoch"] == 3


# --------------------------------------------------------------------------- #
# 11. Settings that quietly do something else, and messages naming the cause
# --------------------------------------------------------------------------- #


def test_a_lazy_penalty_spanning_the_whole_run_is_warned_about(tmp_path, capsys):
    assert run_main(tmp_path / "run", "--max-steps", "2", "--gp-every", "2147483647") == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "--gp-every" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: --gp-every 2147483647 spans the whole run (2 ")
    assert "iteration 1 only, with 2147483647 times its weight" in warning[0]


def test_an_out_that_links_to_nothing_is_named_as_such(trained, tmp_path, capsys):
    out = tmp_path / "link"
    out.symlink_to(tmp_path / "gone")
    assert run_main(out, "--max-steps", "1") == 2
    assert f"is a link to {tmp_path / 'gone'}, which does not exist" in one_error_line(capsys.readouterr().err)
    code, err = _run_script(age.main, [_photo(tmp_path), "--checkpoint", trained / "checkpoints" / "last.pt",
                                       "--out", out], capsys)
    assert code == 2 and f"is a link to {tmp_path / 'gone'}, which does not exist" in one_error_line(err)
    assert not (tmp_path / "gone").exists()


def test_a_run_that_wrote_no_sample_does_not_point_at_the_samples(tmp_path, capsys, nan_critic):
    final = _diverged_at_once(tmp_path / "run", capsys)
    assert "no samples written" in final and "samples in" not in final


def test_a_full_disk_at_the_sample_picture_says_the_checkpoint_was_saved(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = training.pictures.save_png

    def save_png(array, path):
        if path.endswith("step_000002.png"):
            raise files.WriteError(path, "no space left on device", errno.ENOSPC)
        return real(array, path)

    monkeypatch.setattr(training.pictures, "save_png", save_png)
    assert run_main(out, "--max-steps", "4", "--checkpoint-every", "2", "--sample-every", "2") == training.EXIT_ERROR
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot write {out / 'samples' / 'step_000002.png'}: no space left on device" in line
    assert "the checkpoint of step 2 was saved before it" in line and "no checkpoint saved" not in line
    assert last(out)["step"] == 2


def test_a_folder_of_several_csv_lists_names_them(tmp_path, capsys):
    data = _fgnet(tmp_path / "fgnet", subjects=2)
    for k in range(24):
        (data / f"list{k:02d}.csv").write_text("path,age\n001A12.JPG,12\n")
    assert run_main(tmp_path / "run", "--data", str(data), "--data-kind", "csv", "--max-steps", "1") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "found 24 in" in line and "list00.csv" in line and "found none" not in line


def _utkface(folder, ages):
    rng = np.random.default_rng(2)
    folder.mkdir()
    for i, a in enumerate(ages):
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(folder / f"{a}_0_1_2017{i:05d}.jpg")
    return folder


def test_children_are_counted_over_the_whole_dataset_without_internal_positions(tmp_path, capsys):
    ages = [4, 15, 25, 35, 45, 60] * 10
    data = _utkface(tmp_path / "utk", ages)
    assert run_main(tmp_path / "run", "--data", str(data), "--max-steps", "1", "--test-fraction", "0.5") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "10 of 60 images have unusable ages" in line and "--clip-young" in line and "--drop-young" in line
    assert "at position" not in line and "ages in all" not in line  # no index into one split's records


def test_skip_bad_files_lists_the_files_it_skipped_beside_the_run(tmp_path, capsys):
    data = _fgnet(tmp_path / "fgnet")
    for name in ("holiday.jpg", "scan.png"):
        (data / name).write_bytes((data / "001A12.JPG").read_bytes())  # names no convention parses
    out = tmp_path / "run"
    flags = ["--data", str(data), "--max-steps", "1", "--test-fraction", "0.2"]
    assert run_main(out, *flags, "--skip-bad-files") == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "skipped 2 images" in line]
    assert len(warning) == 1 and f"listed in {out / 'skipped_files.txt'}" in warning[0]
    assert "holiday.jpg" in warning[0] and "scan.png" in warning[0]
    assert (out / "skipped_files.txt").read_text().splitlines() == [str(data / "holiday.jpg"), str(data / "scan.png")]
    for name in ("holiday.jpg", "scan.png"):
        (data / name).unlink()
    assert run_main(out, *flags, "--overwrite") == 0
    assert not (out / "skipped_files.txt").exists()


def test_export_refuses_to_replace_a_read_only_file(ckpt, tmp_path, capsys):
    pytest.importorskip("safetensors")
    out = tmp_path / "g.safetensors"
    out.write_bytes(b"somebody's generator")
    out.chmod(0o444)
    code, err = _run_script(export.main, ["--checkpoint", ckpt, "--out", out], capsys)
    assert code == 2 and f"cannot write {out}: the file is read-only (mode 0444)" in one_error_line(err)
    assert out.read_bytes() == b"somebody's generator" and (out.stat().st_mode & 0o777) == 0o444
    assert sorted(os.listdir(tmp_path)) == ["g.safetensors", "last.pt"]  # no temporary left
