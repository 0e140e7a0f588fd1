"""train.py --report-to tensorboard: the scalars and sample grids in the event files match metrics.jsonl and
samples/, a resumed run repeats no step, and a missing package is said at start in one line."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import config
import tensorboard_log
import train
import training
from step import AcGANStep

TINY = ["--image-size", "64", "--batch-size", "4", "--num-subjects", "10", "--g-channels", "8",
        "--g-res-blocks", "1", "--d-channels", "8", "--precision", "fp32", "--no-progress",
        "--log-every", "1", "--device", "cpu", "--critic-warmup", "0"]

needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="needs the tensorboard extra")


def run_main(out, *extra):
    return train.main(["--out", str(out), *TINY, "--report-to", "tensorboard", *extra])


def read_metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def read_events(out):
    """The event files of ``OUT/tensorboard`` as TensorBoard reads them (purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(out, tensorboard_log.FOLDER), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def scalars_by_step(events, tag):
    return {e.step: e.value for e in events.Scalars(tag)}


def assert_events_match_metrics(events, rows):
    numeric = {key for row in rows for key, value in row.items()
               if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}
    assert set(events.Tags()["scalars"]) == {tensorboard_log.tag_of(key) for key in numeric}
    for key in numeric:
        logged = {row["step"]: row[key] for row in rows if key in row}
        written = [e.step for e in events.Scalars(tensorboard_log.tag_of(key))]
        assert written == sorted(logged), f"{key}: steps {written}, metrics.jsonl has {sorted(logged)}"
        got = scalars_by_step(events, tensorboard_log.tag_of(key))
        for step, value in logged.items():
            assert got[step] == pytest.approx(value, rel=1e-6, abs=1e-30), (key, step)  # stored as float32


def image_of(events, step):
    (event,) = [e for e in events.Images(tensorboard_log.IMAGE_TAG) if e.step == step]
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


@needs_tensorboard
def test_every_logged_number_and_sample_grid_is_in_tensorboard(tmp_path):
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "3", "--sample-every", "2") == 0
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    events = read_events(out)
    assert_events_match_metrics(events, rows)
    tags = set(events.Tags()["scalars"])
    for tag in ("loss/d_loss", "loss/d_adv", "loss/d_cls", "loss/gp", "loss/g_loss", "loss/g_adv", "loss/g_cls",
                "loss/g_att", "mask/mean", "mask/near_zero", "mask/near_one", "mask/spread", "skipped/critic",
                "skipped/generator", "skipped/steps", "optim/lr", "perf/images_per_s", "perf/elapsed_s",
                "perf/total_elapsed_s", "progress/epoch"):
        assert tag in tags, tag
    assert not [t for t in tags if t.startswith("misc/")], tags  # every logged key has a named place
    assert events.Tags()["images"] == [tensorboard_log.IMAGE_TAG]
    assert [e.step for e in events.Images(tensorboard_log.IMAGE_TAG)] == [2, 3]
    for step in (2, 3):  # the very pictures of samples/
        png = np.asarray(Image.open(out / "samples" / f"step_{step:06d}.png").convert("RGB"))
        assert np.array_equal(image_of(events, step), png)


@needs_tensorboard
def test_a_resumed_run_repeats_no_step(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real = AcGANStep.__call__

    def step(self, images, labels, at):
        if at == 5:  # after step 5 was logged, past the checkpoint of step 4
            raise KeyboardInterrupt  # what a second SIGINT raises: no checkpoint is saved
        return real(self, images, labels, at)

    monkeypatch.setattr(AcGANStep, "__call__", step)
    assert run_main(out, "--max-steps", "8", "--checkpoint-every", "2") == training.EXIT_INTERRUPTED
    assert "the last checkpoint, step 4, is intact" in capsys.readouterr().err
    assert sorted(scalars_by_step(read_events(out), "loss/d_loss")) == [1, 2, 3, 4, 5]  # flushed on the abort
    monkeypatch.undo()
    assert run_main(out, "--max-steps", "7", "--checkpoint-every", "2", "--resume") == 0
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]  # step 5 of the first run dropped, logged again
    events = read_events(out)
    assert_events_match_metrics(events, rows)  # one value per step, the resumed run's for steps 5 to 7
    assert [e.step for e in events.Images(tensorboard_log.IMAGE_TAG)] == [2, 4, 6, 7]
    assert len(os.listdir(out / tensorboard_log.FOLDER)) == 2  # one event file per run of train.py
    # resuming the finished run draws the samples of step 7 again: not twice in TensorBoard
    assert run_main(out, "--max-steps", "7", "--resume") == 0
    events = read_events(out)
    assert_events_match_metrics(events, read_metrics(out))
    assert [e.step for e in events.Images(tensorboard_log.IMAGE_TAG)] == [2, 4, 6, 7]


@needs_tensorboard
def test_a_fresh_run_removes_the_events_of_the_run_it_replaces(tmp_path):
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "3") == 0
    assert run_main(out, "--max-steps", "2", "--overwrite") == 0
    events = read_events(out)
    assert sorted(scalars_by_step(events, "loss/g_loss")) == [1, 2]
    assert_events_match_metrics(events, read_metrics(out))
    assert [e.step for e in events.Images(tensorboard_log.IMAGE_TAG)] == [2]
    assert len(os.listdir(out / tensorboard_log.FOLDER)) == 1  # the replaced run's event file is removed


def test_without_the_package_the_flag_fails_at_start_in_one_line(tmp_path, capsys, monkeypatch):
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    out = tmp_path / "run"
    assert run_main(out, "--max-steps", "1") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("train.py: error: --report-to tensorboard needs the tensorboard package")
    assert 'pip install "attngan[tensorboard]"' in lines[0]
    assert not out.exists()  # refused before the run folder, the data or the networks
    # the default needs nothing
    assert train.main(["--out", str(out), *TINY, "--max-steps", "1"]) == 0
    assert not (out / tensorboard_log.FOLDER).exists()


def test_only_the_main_process_writes(tmp_path):
    cfg = config.validate_config(config.TrainConfig(out=str(tmp_path / "run"), device="cpu", report_to="tensorboard"))
    log = training.TrainLog(cfg, torch.device("cpu"), 2, is_main=False, start_step=0, prior_s=0.0, bar=None)
    assert log.metrics_file is None and log.tensorboard is None
    log.image(np.zeros((8, 8, 3), np.uint8), 1)
    log.close()
    assert not (tmp_path / "run").exists()


def test_report_to_takes_none_or_tensorboard(capsys):
    assert train.parse_config([]).report_to == "none"
    with pytest.raises(SystemExit) as exit_info:
        train.parse_config(["--report-to", "wandb"])
    assert exit_info.value.code == 2
    assert "--report-to: must be one of none, tensorboard, got 'wandb'" in capsys.readouterr().err


def test_tags():
    assert tensorboard_log.tag_of("g_rec") == "loss/g_rec" and tensorboard_log.tag_of("gp") == "loss/gp"
    assert tensorboard_log.tag_of("skipped_steps") == "skipped/steps"
    assert tensorboard_log.tag_of("something_new") == "misc/something_new"
    record = {"step": 4, "epoch": 0, "d_loss": 1.0, "flag": True, "name": "x", "lr": 2e-4}
    assert tensorboard_log.scalars_of(record) == {"progress/epoch": 0.0, "loss/d_loss": 1.0, "optim/lr": 2e-4}
