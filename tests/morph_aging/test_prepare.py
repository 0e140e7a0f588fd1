"""prepare.py and the crop's way from a prepared folder into checkpoints, age.py --align and evaluate.py.

The photographs are scikit-image's astronaut (a NASA portrait that ships
offline) saved under FG-NET and UTKFace names, beside a picture without a
face and a file that is no image. Tests that align skip without the
``face`` extra (and scikit-image); the crop's plumbing is checked on a
folder of random pictures given a ``prepared.json``, with tiny training runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import age
import checkpoints
import config
import data
import face_align
import face_datasets
import files
import pictures
import prepare
import train
from extras import importable, needs_face, needs_photo, write_synthetic_face
from face_align import Crop


SIZE = 64
#: The astronaut's face, cut so close that it fills the picture (as UTKFace's chips do): dlib finds it only
#: inside a border (face_align.DETECT_BORDER).
CLOSE_CUT = (slice(95, 175), slice(185, 265))


def run(argv, capsys):
    """prepare.main in-process: (exit code, stdout, stderr)."""
    try:
        code = prepare.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture
def fgnet(tmp_path, astronaut) -> Path:
    """FG-NET names: the astronaut (two faces: hers and one dlib sees on her suit), her face alone, in grey,
    as PNG and in a subfolder; a gradient without a face; a file that is no image."""
    root = tmp_path / "fgnet"
    (root / "more").mkdir(parents=True)
    photo = Image.fromarray(astronaut)
    alone = Image.fromarray(astronaut[0:260, 100:360])
    photo.save(root / "001A25.JPG", quality=95)
    alone.save(root / "001A31.JPG", quality=95)
    alone.convert("L").save(root / "002A12.JPG", quality=95)
    alone.save(root / "002A45.png")
    alone.save(root / "more" / "003A60.JPG", quality=95)
    ramp = np.linspace(0, 255, 160)[None, :, None] * np.ones((120, 1, 3))
    Image.fromarray(ramp.astype(np.uint8)).save(root / "004A15.JPG", quality=95)
    (root / "005A20.JPG").write_bytes(b"not a picture")
    return root


FACES = ["001A25.JPG", "001A31.JPG", "002A12.JPG", "002A45.png", os.path.join("more", "003A60.JPG")]


@needs_photo
def test_prepares_every_photo_under_its_own_name_and_reports_the_others(fgnet, tmp_path, capsys):
    out = tmp_path / "prepared"
    code, stdout, err = run([fgnet, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"], capsys)
    assert code == 1, err  # some images had no face
    assert "Traceback" not in err
    for rel in FACES:
        with Image.open(out / rel) as im:
            assert im.size == (SIZE, SIZE) and im.mode == "RGB"
            assert im.format == ("PNG" if rel.endswith(".png") else "JPEG")
    assert not (out / "004A15.JPG").exists() and not (out / "005A20.JPG").exists()
    # the loaders read ages and subjects from the names as before
    before = {(os.path.relpath(r.path, fgnet), r.age, r.subject)
              for r in face_datasets.scan_dataset(fgnet, "fgnet")}
    after = {(os.path.relpath(r.path, out), r.age, r.subject) for r in face_datasets.scan_dataset(out, "fgnet")}
    assert after == {row for row in before if row[0] in FACES}

    report = json.loads((out / prepare.REPORT).read_text())
    notes = report["files"]
    assert notes["004A15.JPG"]["status"] == "no_face" and "no face found" in notes["004A15.JPG"]["reason"]
    assert notes["005A20.JPG"]["status"] == "unreadable" and "005A20.JPG" in notes["005A20.JPG"]["reason"]
    several = notes["001A25.JPG"]
    assert several["status"] == "several_faces" and several["faces"] == len(several["boxes"]) >= 2
    areas = [(right - left) * (bottom - top) for left, top, right, bottom in several["boxes"]]
    assert areas == sorted(areas, reverse=True)
    left, top, right, bottom = several["boxes"][0]  # the face taken: hers (eyes near (203, 102), (247, 104))
    assert left < 203 < 247 < right and top < 102 < bottom
    assert notes["002A12.JPG"] == {"status": "aligned", "greyscale": True}
    assert "001A31.JPG" not in notes  # plain: one face, in colour
    counts = {"images": 7, "faces_written": 5, "already_there": 0, "no_face": 1, "unreadable": 1, "failed": 0,
              "several_faces": 1, "greyscale": 1}
    assert report["counts"] == counts and report["complete"] is True

    record = json.loads((out / data.PREPARED).read_text())
    assert record["crop"] == {"name": "head", "margin": 0.0, "size": SIZE, "spec": f"head,margin=0,size={SIZE}",
                              "description": f"the head crop (margin 0, {SIZE} px)"}
    assert record["source"] == str(fgnet) and record["complete"] is True and record["counts"] == counts
    assert record["tools"]["dlib"] and record["tools"]["pillow"] and record["unread_names"]["count"] == 0
    assert len(record["runs"]) == 1 and record["runs"][0]["attempted"] == 7
    assert data.prepared_crop(str(out)) == Crop("head", 0.0, SIZE)
    for text in ("7 images", "faces written:  5", "no face found:  1", "unreadable:     1", "several faces:  1",
                 "greyscale:      1", "images/s"):
        assert text in stdout, text


@needs_photo
def test_the_aligned_face_is_face_aligns(fgnet, tmp_path, capsys, astronaut):
    out = tmp_path / "prepared"
    run([fgnet, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress", "--crop", "tight",
         "--jpeg-quality", 100], capsys)
    expected = np.asarray(face_align.align_face(Image.fromarray(astronaut[0:260, 100:360]), SIZE, crop="tight"))
    with Image.open(out / "002A45.png") as im:  # lossless: the very pixels
        np.testing.assert_array_equal(np.asarray(im), expected)
    source = face_datasets.open_rgb(fgnet / "001A31.JPG")  # the same photo, as its JPEG file holds it
    expected = np.asarray(face_align.align_face(source, SIZE, crop="tight")).astype(int)
    with Image.open(out / "001A31.JPG") as im:  # quality 100, no chroma subsampling: within a level or two
        assert np.abs(np.asarray(im).astype(int) - expected).mean() < 2
    assert json.loads((out / data.PREPARED).read_text())["crop"]["spec"] == f"tight,margin=0.1,size={SIZE}"


@needs_photo
def test_a_second_run_skips_what_is_written_and_keeps_the_report(fgnet, tmp_path, capsys):
    out = tmp_path / "prepared"
    argv = [fgnet, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"]
    run(argv, capsys)
    marker = np.full((SIZE, SIZE, 3), 7, np.uint8)
    Image.fromarray(marker).save(out / "001A31.JPG", quality=100)  # stands for a face written earlier
    (out / "002A45.png").unlink()  # not written yet
    (out / "more" / ".tmp-left-by-a-killed-run.JPG").write_bytes(b"torn")
    code, stdout, _ = run(argv, capsys)
    assert code == 1
    with Image.open(out / "001A31.JPG") as im:
        assert np.abs(np.asarray(im).astype(int) - 7).max() <= 2  # skipped: not written again
    assert (out / "002A45.png").is_file()
    assert not (out / "more" / ".tmp-left-by-a-killed-run.JPG").exists()
    report = json.loads((out / prepare.REPORT).read_text())
    assert report["counts"]["already_there"] == 4 and report["counts"]["faces_written"] == 5
    assert report["files"]["001A25.JPG"]["status"] == "several_faces"  # known from the earlier run's report
    assert report["files"]["001A25.JPG"]["earlier_run"] is True
    record = json.loads((out / data.PREPARED).read_text())
    assert [r["attempted"] for r in record["runs"]] == [7, 3]  # the second tried the missing file and the two failures
    assert "(1 now, 4 already there)" in stdout


@needs_photo
def test_a_limited_trial_is_completed_by_the_full_run(fgnet, tmp_path, capsys):
    out = tmp_path / "prepared"
    code, stdout, _ = run([fgnet, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress", "--limit", 2],
                          capsys)
    assert code == 0 and "not finished" in stdout
    assert json.loads((out / data.PREPARED).read_text())["complete"] is False
    with pytest.warns(face_datasets.DatasetWarning, match="did not finish"):
        data.prepared_crop(str(out))
    run([fgnet, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"], capsys)
    record = json.loads((out / data.PREPARED).read_text())
    assert record["complete"] is True and record["counts"]["already_there"] == 2


@needs_photo
@pytest.mark.parametrize("stop", [KeyboardInterrupt, "full disk"])
def test_a_stopped_run_reports_what_it_did_and_the_next_completes(stop, fgnet, tmp_path, capsys, monkeypatch):
    def first_then_stop(tasks, workers, crop_name):
        yield prepare.align_one(tasks[0])
        if stop is KeyboardInterrupt:
            raise KeyboardInterrupt
        raise files.WriteError(tasks[1][1], "no space left on device")

    out = tmp_path / "prepared"
    argv = [fgnet, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"]
    with monkeypatch.context() as patch:
        patch.setattr(prepare, "run_tasks", first_then_stop)
        code, stdout, err = run(argv, capsys)
    assert code == (prepare.EXIT_INTERRUPTED if stop is KeyboardInterrupt else 1)
    assert ("interrupted after 1 image(s)" if stop is KeyboardInterrupt else "no space left on device") in err
    assert "not finished" in stdout and "(1 now, 0 already there)" in stdout
    written = [p for p in out.rglob("*") if p.suffix in (".JPG", ".png")]
    assert [p.name for p in written] == ["001A25.JPG"]
    for name in (prepare.REPORT, data.PREPARED):
        assert json.loads((out / name).read_text())["complete"] is False
    code, stdout, _ = run(argv, capsys)
    assert code == 1 and "(4 now, 1 already there)" in stdout
    assert json.loads((out / data.PREPARED).read_text())["complete"] is True


@needs_photo
def test_two_workers_write_what_one_writes(fgnet, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    run([fgnet, "--out", one, "--size", SIZE, "--workers", 1, "--no-progress"], capsys)
    code, stdout, _ = run([fgnet, "--out", two, "--size", SIZE, "--workers", 2, "--no-progress"], capsys)
    assert code == 1 and "on 2 worker(s)" in stdout
    for rel in FACES:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    strip = lambda path: {k: v for k, v in json.loads(path.read_text()).items() if k != "complete"}  # noqa: E731
    assert strip(one / prepare.REPORT) == strip(two / prepare.REPORT)


@needs_photo
def test_a_utkface_chip_that_the_face_fills_goes_through(tmp_path, capsys, astronaut):
    root = tmp_path / "utk"
    root.mkdir()
    chip = np.asarray(Image.fromarray(astronaut[CLOSE_CUT]).resize((200, 200), Image.Resampling.BICUBIC))
    detector, _ = face_align.load_models()
    assert not face_align._detect(detector, np.ascontiguousarray(chip))  # found only inside a border
    name = "31_1_0_20170109150557335.jpg.chip.jpg"
    Image.fromarray(chip).save(root / name, quality=95)
    out = tmp_path / "prepared"
    code, stdout, err = run([root, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"], capsys)
    assert code == 0, stdout + err
    (record,) = face_datasets.scan_dataset(out, "utkface")
    assert record.path.name == name and record.age == 31
    with Image.open(out / name) as im:
        face = np.asarray(im).astype(float)
    assert im.size == (SIZE, SIZE) and face.std() > 10
    # the head crop is wider than the chip: its edges are the chip's extension, its centre the face
    assert (np.abs(face[:4] - face[:4].mean((0, 1))).mean()
            < np.abs(face[24:40, 24:40] - face[24:40, 24:40].mean((0, 1))).mean())


@needs_face
@pytest.mark.parametrize("case", ["other size", "other crop", "foreign folder", "inside", "missing", "a file"])
def test_unusable_folders_and_changed_settings_are_refused(case, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (40, 40), (120, 90, 60)).save(src / "001A20.JPG")
    out = tmp_path / "out"
    run([src, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"], capsys)
    argv = [src, "--out", out, "--size", SIZE, "--workers", 1, "--no-progress"]
    expected = "prepared from"
    if case == "other size":
        argv[4] = 32
    elif case == "other crop":
        argv += ["--crop", "tight"]
    elif case == "foreign folder":
        other = tmp_path / "holiday"
        other.mkdir()
        (other / "photo.jpg").write_bytes(b"x")
        argv[2], expected = other, "no prepared.json"
    elif case == "inside":
        argv[2], expected = src / "aligned", "overlap"
    elif case == "missing":
        argv[0], expected = tmp_path / "nowhere", "does not exist"
    else:
        argv[0], expected = src / "001A20.JPG", "is not a folder"
    code, _, err = run(argv, capsys)
    assert code == 2 and expected in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


def test_usage_errors_exit_2(tmp_path, capsys):
    for argv in ([tmp_path], [tmp_path, "--out", tmp_path / "o", "--crop", "loose"],
                 [tmp_path, "--out", tmp_path / "o", "--margin", "-1"],
                 [tmp_path, "--out", tmp_path / "o", "--size", "0"],
                 [tmp_path, "--out", tmp_path / "o", "--workers", "0"]):
        code, _, err = run(argv, capsys)
        assert code == 2 and "error" in err


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken(self, fp, format=None, **params):
        with open(fp, "wb") as fh:
            fh.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(files.WriteError, match="no space left"):
        prepare.save_face(Image.new("RGB", (8, 8)), str(tmp_path / "001A20.JPG"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, fmt", [("a.jpg", "JPEG"), ("a.JPEG", "JPEG"), ("a.jpg.chip.jpg", "JPEG"),
                                       ("a.png", "PNG"), ("a.bmp", "BMP"), ("a.webp", "WEBP")])
def test_each_file_is_written_in_the_format_its_name_says(name, fmt, tmp_path):
    face = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    prepare.save_face(face, str(tmp_path / name))
    with Image.open(tmp_path / name) as im:
        assert im.format == fmt and im.size == (16, 16)
        if fmt != "JPEG":
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(face))


# --------------------------------------------------------------------------- #
# Crop specs
# --------------------------------------------------------------------------- #


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(face_align.CROPS), margin=st.none() | st.floats(0, 3, allow_nan=False),
       size=st.none() | st.integers(1, 4096))
def test_a_crop_spec_reads_back_as_the_same_crop(name, margin, size):
    crop = Crop(name, margin, size)
    assert Crop.parse(str(crop)) == crop
    assert crop.margin == (face_align.DEFAULT_MARGIN[name] if margin is None else margin)
    assert crop.same_crop(Crop(name, crop.margin)) and not crop.same_crop(Crop(name, crop.margin + 0.5))


@pytest.mark.parametrize("text", ["", "loose", "head,", "head,margin", "head,margin=-0.1", "head,margin=inf",
                                  "head,size=0", "head,size=1.5", "head,zoom=2", "head,margin=0,margin=1"])
def test_bad_crop_specs_name_the_flag(text):
    with pytest.raises(ValueError, match=r"^--crop: expected CROP\[,margin=M\]\[,size=S\]"):
        Crop.parse(text, what="--crop")


def test_the_config_states_the_crop_in_full_and_refuses_bad_ones():
    cfg = config.validate_config(config.TrainConfig(data="/data/faces", crop="tight", device="cpu"))
    assert cfg.crop == "tight,margin=0.1"
    cfg = config.validate_config(config.TrainConfig(data="/data/faces", crop="unknown", device="cpu"))
    assert cfg.crop == "unknown"
    with pytest.raises(ValueError, match="^--crop: expected"):
        config.validate_config(config.TrainConfig(data="/data/faces", crop="wide", device="cpu"))
    with pytest.raises(ValueError, match="^--crop: the synthetic faces are drawn"):
        config.validate_config(config.TrainConfig(crop="head", device="cpu"))
    assert config.validate_config(config.TrainConfig(device="cpu")).crop is None


# --------------------------------------------------------------------------- #
# The crop's way into the checkpoint, age.py and evaluate.py
# --------------------------------------------------------------------------- #

TINY = ["--image-size", str(SIZE), "--batch-size", "4", "--g-channels", "8", "--g-res-blocks", "1", "--d-channels",
        "8", "--precision", "fp32", "--no-progress", "--device", "cpu", "--test-fraction", "0.2", "--max-steps", "2"]
#: The crop of the tiny prepared folder: not the default, so that taking it is seen.
PREPARED_CROP = Crop("tight", 0.2, SIZE)


def write_folder(folder: Path, crop=None) -> Path:
    """Six FG-NET subjects at five ages (random 64-px pictures); with ``crop`` a prepare.py record as well."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for s in range(1, 7):
        for a in (12, 25, 33, 47, 60):
            Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(folder / f"{s:03d}A{a:02d}.JPG")
    if crop is not None:
        prepare.write_json(str(folder / data.PREPARED), {"format": prepare.FORMAT, "source": "/somewhere",
                                                         "crop": prepare.crop_record(crop), "complete": True})
    return folder


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory, one_thread) -> Path:
    """A 2-step run on a prepared folder (crop PREPARED_CROP): its folder."""
    root = tmp_path_factory.mktemp("prepared-run")
    out = root / "run"
    assert train.main(["--out", str(out), "--data", str(write_folder(root / "faces", PREPARED_CROP)), *TINY]) == 0
    return out


def test_the_prepared_crop_reaches_config_and_checkpoint(prepared_run, tmp_path, capsys):
    spec = str(PREPARED_CROP)
    assert json.loads((prepared_run / "config.json").read_text())["crop"] == spec
    state = checkpoints.load_checkpoint(str(prepared_run / "checkpoints" / "last.pt"))
    assert checkpoints.config_of(state, "ckpt").crop == spec
    if not importable("safetensors.torch"):
        return
    export = str(tmp_path / "g.safetensors")  # the export keeps the config, crop included
    checkpoints.export_safetensors(str(prepared_run / "checkpoints" / "last.pt"), export)
    assert checkpoints.generator_from_checkpoint(export)[1].crop == spec


def test_unprepared_photos_record_an_unknown_crop_and_a_contradicting_flag_is_refused(tmp_path, capsys, one_thread):
    raw = write_folder(tmp_path / "raw")
    assert train.main(["--out", str(tmp_path / "run"), "--data", str(raw), *TINY]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["crop"] == face_align.UNKNOWN_CROP
    assert "(crop unknown)" in capsys.readouterr().err
    folder = write_folder(tmp_path / "prepared", PREPARED_CROP)
    code = train.main(["--out", str(tmp_path / "run2"), "--data", str(folder), "--crop", "head", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "--crop head,margin=0" in err and f"records {PREPARED_CROP}" in err
    cfg = config.validate_config(config.TrainConfig(data=str(folder), crop="tight,margin=0.2", device="cpu",
                                                    image_size=SIZE))
    assert data.with_data_crop(cfg).crop == str(PREPARED_CROP)  # the same crop, stated in full
    with pytest.warns(face_datasets.DatasetWarning, match="enlarged to --image-size 128"):
        data.with_data_crop(dataclasses.replace(cfg, image_size=128))


def test_resuming_a_prepared_run_keeps_its_crop_without_a_warning(prepared_run, tmp_path, capsys, one_thread):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(prepared_run, out)
    faces = json.loads((out / "config.json").read_text())["data"]
    assert train.main(["--out", str(out), "--data", faces, *TINY[:-1], "3", "--resume"]) == 0
    assert "differ from the checkpoint's" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def face_photo(tmp_path_factory) -> Path:
    return write_synthetic_face(tmp_path_factory.mktemp("prepare-face"))


def input_tile(strip_png: Path) -> np.ndarray:
    with Image.open(strip_png) as im:
        strip = np.asarray(im.convert("RGB"))
    left, top, right, bottom = age.tile_box(0, 0, SIZE)
    scale = pictures.readable_scale(SIZE)
    return strip[top:bottom:scale, left:right:scale]


def with_crop(checkpoint: Path, crop, folder: Path) -> Path:
    """A copy of ``checkpoint`` whose config records ``crop``."""
    state = torch.load(checkpoint, weights_only=True)
    state["config"]["crop"] = crop
    path = folder / "edited.pt"
    torch.save(state, path)
    return path


@needs_face
def test_age_align_crops_as_the_model_learned(prepared_run, face_photo, tmp_path, capsys):
    ckpt = prepared_run / "checkpoints" / "last.pt"
    assert age.main([str(face_photo), "--checkpoint", str(ckpt), "--out", str(tmp_path / "a"), "--align",
                     "--no-animation"]) == 0
    err = capsys.readouterr().err
    assert f"--align: {PREPARED_CROP.describe()}, the model's" in err
    with Image.open(face_photo) as im:
        expected = np.asarray(face_align.align_face(im, SIZE, 0.2, crop="tight"))
        default = np.asarray(face_align.align_face(im, SIZE))
    np.testing.assert_array_equal(input_tile(tmp_path / "a" / "face_aged.png"), expected)
    assert not np.array_equal(expected, default)
    # --crop overrides; a checkpoint without a known crop gets the default head crop, and says so
    assert age.main([str(face_photo), "--checkpoint", str(ckpt), "--out", str(tmp_path / "b"), "--align",
                     "--crop", "head", "--no-animation"]) == 0
    assert "the head crop (margin 0) (--crop)" in capsys.readouterr().err
    np.testing.assert_array_equal(input_tile(tmp_path / "b" / "face_aged.png"), default)
    for recorded, why in ((face_align.UNKNOWN_CROP, "not prepared by prepare.py"), (None, "records no crop")):
        edited = with_crop(ckpt, recorded, tmp_path)
        assert age.main([str(face_photo), "--checkpoint", str(edited), "--out", str(tmp_path / "c"), "--align",
                         "--no-animation"]) == 0
        err = capsys.readouterr().err
        assert why in err and "aligning with the head crop (margin 0), face_align's default" in err
        np.testing.assert_array_equal(input_tile(tmp_path / "c" / "face_aged.png"), default)


def test_age_crop_needs_align(prepared_run, tmp_path, capsys):
    code = age.main(["x.png", "--checkpoint", str(prepared_run / "checkpoints" / "last.pt"), "--out",
                     str(tmp_path / "a"), "--crop", "tight"])
    assert code == 2 and "--crop chooses the crop of --align" in capsys.readouterr().err


def test_evaluation_crop_reads_prepared_folders_and_aligns_raw_photos(tmp_path):
    cfg = config.validate_config(config.TrainConfig(data=str(tmp_path / "train"), crop=str(PREPARED_CROP),
                                                    device="cpu"))
    same = write_folder(tmp_path / "same", Crop("tight", 0.2, 128))
    other = write_folder(tmp_path / "other", Crop("head"))
    raw = write_folder(tmp_path / "raw")
    crop, note = data.evaluation_crop(cfg, None, str(same))
    assert crop is None and "the model's" in note and "is read as prepared" in note
    with pytest.raises(ValueError, match="prepared with the head crop"):
        data.evaluation_crop(cfg, None, str(other))
    crop, note = data.evaluation_crop(cfg, None, str(raw))
    assert crop == PREPARED_CROP and "aligned with it as it is read" in note
    assert data.evaluation_crop(cfg, Crop("head"), str(other))[0] is None  # --crop head: the folder's own
    crop, note = data.evaluation_crop(cfg, "none", str(other))
    assert crop is None and note.startswith("--crop none")
    unknown = dataclasses.replace(cfg, crop=face_align.UNKNOWN_CROP)
    crop, note = data.evaluation_crop(unknown, None, str(raw))
    assert crop is None and "read as they are" in note
    assert data.evaluation_crop(cfg, None, "synthetic") == (None, "")
    with pytest.raises(ValueError, match="synthetic"):
        data.evaluation_crop(cfg, Crop("head"), "synthetic")


@needs_face
def test_a_dataset_aligned_as_it_is_read(face_photo, tmp_path):
    record = face_datasets.FaceRecord(face_photo, 30, None)
    ds = face_datasets.FaceImageDataset([record], SIZE, crop=PREPARED_CROP)
    with Image.open(face_photo) as im:
        expected = np.asarray(PREPARED_CROP.align(im, SIZE))
    np.testing.assert_array_equal(pictures.to_uint8(ds[0]["image"]), expected)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (100, 100), (128, 128, 128)).save(blank)
    with pytest.raises(face_align.NoFaceError, match="blank.png"):
        face_datasets.FaceImageDataset([face_datasets.FaceRecord(blank, 30, None)], SIZE, crop=PREPARED_CROP)[0]
    with pytest.raises(TypeError, match="crop must be a face_align.Crop"):
        face_datasets.FaceImageDataset([record], SIZE, crop="head")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        face_datasets.FaceImageDataset([record], SIZE)[0]  # no crop: the centre square, as before
