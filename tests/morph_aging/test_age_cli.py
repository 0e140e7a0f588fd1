"""age.py and export.py: inputs of every kind, the pictures written, errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import age
import checkpoints
import export
import face_align
import face_datasets
import models
import pictures
from ages import NUM_GROUPS
from extras import importable, needs_export, needs_face, write_synthetic_face

TILE = 64  # the test checkpoint's image size
EXAMPLE = Path(age.__file__).resolve().parent


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> str:
    """A tiny trained checkpoint (2 steps, 64 px, narrow networks)."""
    import train

    out = tmp_path_factory.mktemp("agecli-train")
    code = train.main(["--out", str(out), "--max-steps", "2", "--image-size", str(TILE), "--batch-size", "4",
                       "--num-subjects", "10", "--g-channels", "8", "--g-res-blocks", "1", "--d-channels", "8",
                       "--precision", "fp32", "--no-progress", "--device", "cpu"])
    assert code == 0
    path = out / "checkpoints" / "last.pt"
    assert path.is_file()
    return str(path)


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour picture with some texture, (h, w, 3) float in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x + 4 * y)], -1)
    return np.clip(img + 0.05 * rng.standard_normal((h, w, 3)), 0, 1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict:
    """One photo of every kind age.py must accept, by name."""
    folder = tmp_path_factory.mktemp("agecli-photos")
    pics = {}

    def save(name: str, im: Image.Image) -> None:
        im.save(folder / name)
        pics[Path(name).stem] = folder / name

    rgb = Image.fromarray((_pattern(120, 90, 0) * 255).astype(np.uint8))
    save("rgb.png", rgb)
    save("grey.png", rgb.convert("L"))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.linspace(0, 255, 120 * 90).reshape(120, 90).astype(np.uint8)))
    save("rgba.png", rgba)
    save("palette.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=32))
    deep = Image.fromarray((_pattern(100, 100, 1)[..., 0] * 65535).astype(np.uint16))
    assert deep.mode.startswith("I;16")
    save("deep16.png", deep)
    save("tiny.png", Image.fromarray((_pattern(7, 10, 2) * 255).astype(np.uint8)))
    save("large.jpg", Image.fromarray((_pattern(700, 1300, 3) * 255).astype(np.uint8)))
    return pics


def run(main, argv, capsys):
    """Run a CLI ``main`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def read(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB"
        return np.asarray(im)


def crop(strip: np.ndarray, row: int, col: int, masks: bool = False) -> np.ndarray:
    left, top, right, bottom = age.tile_box(row, col, TILE, masks)
    return strip[top:bottom, left:right]


#: The strips draw the 64 px faces enlarged to 128 px, each pixel a 2 x 2 block.
SCALE = pictures.readable_scale(TILE)


def enlarged(face: np.ndarray) -> np.ndarray:
    return face.repeat(SCALE, axis=0).repeat(SCALE, axis=1)


def assert_one_line_error(err: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error" in lines[0]


# --------------------------------------------------------------------------- #
# Pictures
# --------------------------------------------------------------------------- #


def test_every_kind_of_photo_is_aged(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, *photos.values(), "--out", out], capsys)
    assert code == 0, err
    assert f"aged {len(photos)} of {len(photos)}" in stdout
    for stem, path in photos.items():
        strip = read(out / f"{stem}_aged.png")
        assert strip.shape[1::-1] == age.strip_size(TILE, 1)
        w, h = age.strip_size(TILE, 1)
        assert SCALE == 2 and w == 6 * SCALE * TILE + 7 * age.PAD and h > SCALE * TILE
        # the input tile is the photo as the model saw it, enlarged
        expected = pictures.to_uint8(face_datasets.load_image(path, TILE))
        np.testing.assert_array_equal(crop(strip, 0, 0), enlarged(expected))
        # the label band above the tiles carries text
        assert (strip[: age.tile_box(0, 0, TILE)[1] - 1] < 128).any()
        faces = []
        for k in range(NUM_GROUPS):
            face = read(out / age.group_filename(stem, k))
            assert face.shape == (TILE, TILE, 3)
            np.testing.assert_array_equal(crop(strip, 0, k + 1), enlarged(face))
            faces.append(face)
        # every group gives a different picture
        assert len({f.tobytes() for f in faces}) == NUM_GROUPS, stem
    assert set(os.listdir(out)) == {f"{s}_aged.png" for s in photos} | {f"{s}_aging.gif" for s in photos} | {
        age.group_filename(s, k) for s in photos for k in range(NUM_GROUPS)}
    assert f"({len(photos) * (NUM_GROUPS + 2)} files)" in stdout


def test_masks_add_two_rows(checkpoint, photos, tmp_path, capsys):
    plain, masked = tmp_path / "plain", tmp_path / "masked"
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], "--out", plain], capsys)
    assert code == 0, err
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], "--out", masked, "--masks"], capsys)
    assert code == 0, err
    one, three = read(plain / "rgb_aged.png"), read(masked / "rgb_aged.png")
    assert three.shape[1::-1] == age.strip_size(TILE, 3)
    assert three.shape[0] - one.shape[0] == 2 * (SCALE * TILE + age.PAD)
    # the rows are labelled (output, attention, colour) in a margin on the left
    margin = age.tile_box(0, 0, TILE, masks=True)[0]
    assert three.shape[1] == one.shape[1] + margin - age.PAD and (three[:, : margin - 1] < 128).any()
    for k in range(NUM_GROUPS + 1):
        np.testing.assert_array_equal(crop(three, 0, k, masks=True), crop(one, 0, k))
    assert (crop(three, 1, 0, masks=True) == 255).all()  # nothing under the input
    g, _ = checkpoints.generator_from_checkpoint(checkpoint)
    x = face_datasets.load_image(photos["rgb"], TILE)
    ref = models.age_all_groups(g, x[None])
    for k in range(NUM_GROUPS):
        attention = crop(three, 1, k + 1, masks=True)
        assert (attention[..., 0] == attention[..., 1]).all() and (attention[..., 1] == attention[..., 2]).all()
        np.testing.assert_array_equal(attention, enlarged(pictures.to_uint8(ref.attention[0, k] * 2 - 1)))
        np.testing.assert_array_equal(crop(three, 2, k + 1, masks=True), enlarged(pictures.to_uint8(ref.color[0, k])))


def test_a_bare_masks_flag_does_not_swallow_the_photo(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(age.main, ["--checkpoint", checkpoint, "--out", out, "--masks", photos["rgb"]], capsys)
    assert code == 0, err
    assert read(out / "rgb_aged.png").shape[1::-1] == age.strip_size(TILE, 3)


def test_the_animation_ages_smoothly_from_the_youngest_to_the_oldest(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], "--out", out], capsys)
    assert code == 0, err
    g, _ = checkpoints.generator_from_checkpoint(checkpoint)
    x = face_datasets.load_image(photos["rgb"], TILE)
    positions, frames = models.age_gradually(g, x, steps_between=age.STEPS_BETWEEN)
    steps = (NUM_GROUPS - 1) * age.STEPS_BETWEEN + 1
    assert positions.tolist() == [k / age.STEPS_BETWEEN for k in range(steps)]
    # at whole positions the frames are the groups' own outputs (one-hot codes)
    ref = models.age_all_groups(g, x[None])
    torch.testing.assert_close(frames.image[:: age.STEPS_BETWEEN], ref.image[0], atol=1e-5, rtol=0)
    # in between, the faces move step by step: each frame is closer to its neighbours than the ends are
    step_change = (frames.image[1:] - frames.image[:-1]).abs().mean(dim=(1, 2, 3))
    assert step_change.max() < (frames.image[-1] - frames.image[0]).abs().mean()
    with Image.open(out / "rgb_aging.gif") as gif:
        assert gif.n_frames == steps and gif.info["loop"] == 0
        durations, pictures_ = [], []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            pictures_.append(np.asarray(gif.convert("RGB")))
    assert durations[0] == durations[-1] == age.END_MS and durations[age.STEPS_BETWEEN] == age.GROUP_MS
    assert durations[1] == age.FRAME_MS
    # each frame: the input and the face, enlarged, under their labels (GIF colours: one 256-colour palette)
    expected = age.animation_frames(x, positions, frames.image)
    assert all(p.shape == expected[0].shape for p in pictures_)
    assert pictures_[0].shape[:2] == (expected[0].shape[0], 2 * SCALE * TILE + 3 * age.PAD)
    for got, want in zip(pictures_, expected):
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 8
    assert age.age_label(float(positions[-1])) == "~56 (51+)"


def test_no_animation(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], "--out", out, "--no-animation"],
                            capsys)
    assert code == 0, err
    assert not (out / "rgb_aging.gif").exists() and (out / "rgb_aged.png").is_file()
    assert f"({NUM_GROUPS + 1} files)" in stdout


def test_a_model_of_the_synthetic_faces_says_what_it_cannot_do(checkpoint, photos, tmp_path, capsys):
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], photos["grey"], "--out",
                                  tmp_path / "out"], capsys)
    assert code == 0, err
    warnings_ = [line for line in err.splitlines() if "trained on the built-in synthetic faces" in line]
    assert len(warnings_) == 1  # once, however many photos
    assert warnings_[0].startswith("warning:")
    for text in ("not photographs", "bars across the eyes", "your own dataset", "aligned", "GPU", "guide"):
        assert text in warnings_[0], text
    # a model of a real dataset is not warned about
    state = torch.load(checkpoint, weights_only=True)
    state["config"]["data"] = "/data/morph-aligned"
    real = tmp_path / "real.pt"
    torch.save(state, real)
    code, _, err = run(age.main, ["--checkpoint", real, photos["rgb"], "--out", tmp_path / "out2"], capsys)
    assert code == 0, err
    assert "synthetic" not in err


def test_no_empty_output_folder_when_every_photo_fails(checkpoint, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a picture")
    out = tmp_path / "new" / "out"
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, corrupt, tmp_path / "missing.png", "--out", out],
                            capsys)
    assert code == 1
    assert "cannot read" in err and "nothing written" in stdout
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    code, _, _ = run(age.main, ["--checkpoint", checkpoint, corrupt, "--out", existing], capsys)
    assert code == 1 and existing.is_dir()  # a folder that was there before stays


def test_folder_argument_ages_every_image_in_it(checkpoint, photos, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for stem in ("rgb", "grey"):
        (folder / photos[stem].name).write_bytes(photos[stem].read_bytes())
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".hidden.png").write_bytes(b"junk")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, folder, "--out", out], capsys)
    assert code == 0, err
    assert sorted(p for p in os.listdir(out) if p.endswith("_aged.png")) == ["grey_aged.png", "rgb_aged.png"]
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, folder, empty, "--out", out], capsys)
    assert code == 1
    assert "no images" in err and str(empty) in err


def test_same_names_do_not_overwrite(checkpoint, photos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "rgb.png").write_bytes(photos["grey"].read_bytes())
    out = tmp_path / "out"
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], other / "rgb.png", "--out", out], capsys)
    assert code == 0, err
    assert (out / "rgb_aged.png").is_file() and (out / "rgb-2_aged.png").is_file()
    assert not np.array_equal(read(out / "rgb_aged.png"), read(out / "rgb-2_aged.png"))


def test_unreadable_photo_is_reported_and_the_others_written(checkpoint, photos, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(photos["rgb"].read_bytes()[:100])  # truncated
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, corrupt, photos["rgb"], missing,
                                       photos["grey"], "--out", out], capsys)
    assert code == 1
    assert f"cannot read {corrupt}:" in err
    assert f"cannot read {missing}:" in err
    assert "Traceback" not in err
    assert "2 failed" in stdout
    assert (out / "rgb_aged.png").is_file() and (out / "grey_aged.png").is_file()
    assert not (out / "corrupt_aged.png").exists() and not (out / "missing_aged.png").exists()


# --------------------------------------------------------------------------- #
# Checkpoints and usage errors
# --------------------------------------------------------------------------- #


def _bad_checkpoints(tmp_path: Path, checkpoint: str) -> dict:
    png = tmp_path / "photo.pt"
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    mismatched = tmp_path / "mismatched.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["config"]["g_channels"] = 16  # the weights are for 8
    torch.save(state, mismatched)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(64))
    return {"missing": tmp_path / "nope.pt", "not-a-checkpoint": png, "foreign": other,
            "mismatched": mismatched, "folder": tmp_path, "garbage-safetensors": garbage}


@pytest.mark.parametrize("kind", ["missing", "not-a-checkpoint", "foreign", "mismatched", "folder",
                                  "garbage-safetensors"])
def test_bad_checkpoint_exits_2_with_one_line(kind, checkpoint, photos, tmp_path, capsys):
    if kind == "garbage-safetensors" and not importable("safetensors.torch"):
        pytest.skip("needs the export extra (safetensors)")
    bad = _bad_checkpoints(tmp_path, checkpoint)[kind]
    out = tmp_path / "out"
    code, _, err = run(age.main, ["--checkpoint", bad, photos["rgb"], "--out", out], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert str(bad) in err
    assert not out.exists() or not os.listdir(out)


def test_bad_checkpoint_as_a_real_process(tmp_path, photos):
    """The script itself: exit status 2, one line on stderr, no traceback."""
    bad = tmp_path / "photo.pt"
    bad.write_bytes(photos["rgb"].read_bytes())
    proc = subprocess.run([sys.executable, str(EXAMPLE / "age.py"), "--checkpoint", str(bad), str(photos["rgb"]),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr)
    assert str(bad) in proc.stderr


@pytest.mark.parametrize("argv", [
    [],  # nothing at all
    ["--out", "x"],  # no checkpoint, no images
    ["--checkpoint", "c.pt", "--out", "x"],  # no images
    ["--checkpoint", "c.pt", "a.png"],  # no --out
    ["--checkpoint", "c.pt", "a.png", "--out", "x", "--device", "tpu"],
    ["--checkpoint", "c.pt", "a.png", "--out", "x", "--source-age", "-3"],  # a negative age
])
def test_usage_errors_exit_2(argv, capsys):
    code, _, err = run(age.main, argv, capsys)
    assert code == 2
    assert "usage:" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_cuda_exits_2(checkpoint, photos, tmp_path, capsys):
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], "--out", tmp_path, "--device", "cuda"],
                       capsys)
    assert code == 2
    assert_one_line_error(err)
    assert "CUDA" in err


# --------------------------------------------------------------------------- #
# Export
# --------------------------------------------------------------------------- #


@needs_export
def test_exported_generator_ages_to_the_same_pixels(checkpoint, photos, tmp_path, capsys):
    exported = tmp_path / "gen" / "generator.safetensors"
    code, stdout, err = run(export.main, ["--checkpoint", checkpoint, "--out", exported], capsys)
    assert code == 0, err
    assert exported.is_file() and str(exported) in stdout
    assert exported.stat().st_size < Path(checkpoint).stat().st_size  # no critic, no optimiser state
    assert [p.name for p in exported.parent.iterdir()] == ["generator.safetensors"]  # no temporary left
    images = [photos["rgb"], photos["deep16"]]
    for ckpt, out in ((checkpoint, tmp_path / "pt"), (exported, tmp_path / "st")):
        code, _, err = run(age.main, ["--checkpoint", ckpt, *images, "--out", out, "--masks"], capsys)
        assert code == 0, err
    names = sorted(os.listdir(tmp_path / "pt"))
    assert names == sorted(os.listdir(tmp_path / "st")) and len(names) == 2 * (NUM_GROUPS + 2)
    for name in names:
        if name.endswith(".gif"):  # the animations: the same frames give the same file
            assert (tmp_path / "pt" / name).read_bytes() == (tmp_path / "st" / name).read_bytes(), name
            continue
        np.testing.assert_array_equal(read(tmp_path / "pt" / name), read(tmp_path / "st" / name), err_msg=name)


@needs_export
def test_export_default_name(checkpoint, tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(Path(checkpoint).read_bytes())
    previous = os.umask(0o022)
    try:
        code, _, err = run(export.main, ["--checkpoint", ckpt], capsys)
    finally:
        os.umask(previous)
    assert code == 0, err
    assert (tmp_path / "run.safetensors").is_file()
    assert (tmp_path / "run.safetensors").stat().st_mode & 0o777 == 0o644  # for sharing, as any new file


@needs_export
def test_export_bad_checkpoint_exits_2(checkpoint, tmp_path, capsys):
    code, _, err = run(export.main, ["--checkpoint", tmp_path / "nope.pt", "--out", tmp_path / "g.safetensors"],
                       capsys)
    assert code == 2 and "not found" in err
    assert_one_line_error(err)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk" * 10)
    code, _, err = run(export.main, ["--checkpoint", junk, "--out", tmp_path / "g.safetensors"], capsys)
    assert code == 2 and str(junk) in err
    assert_one_line_error(err)
    assert not (tmp_path / "g.safetensors").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_export_usage_errors_and_missing_extra(checkpoint, tmp_path, capsys, monkeypatch):
    code, _, err = run(export.main, ["--checkpoint", checkpoint, "--out", tmp_path / "g.pt"], capsys)
    assert code == 2 and ".safetensors" in err
    assert_one_line_error(err)
    code, _, err = run(export.main, ["--checkpoint", tmp_path / "g.safetensors"], capsys)
    assert code == 2 and "already" in err
    assert_one_line_error(err)
    code, _, err = run(export.main, [], capsys)
    assert code == 2 and "usage:" in err
    # without the extra (simulated, so this runs where safetensors is installed too)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    code, _, err = run(export.main, ["--checkpoint", checkpoint, "--out", tmp_path / "g.safetensors"], capsys)
    assert code == 2
    assert_one_line_error(err)
    assert 'pip install -e ".[export]"' in err
    assert not (tmp_path / "g.safetensors").exists()


# --------------------------------------------------------------------------- #
# --align
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("missing", ["dlib", "face_recognition_models"])
def test_align_without_the_face_extra_exits_2(missing, checkpoint, photos, tmp_path, capsys, monkeypatch):
    """Runs everywhere: the missing package is simulated."""
    monkeypatch.setitem(sys.modules, missing, None)
    face_align.load_models.cache_clear()
    try:
        code, _, err = run(age.main, ["--checkpoint", checkpoint, photos["rgb"], "--out", tmp_path / "out",
                                      "--align"], capsys)
    finally:
        face_align.load_models.cache_clear()
    assert code == 2
    assert_one_line_error(err)
    assert "--align" in err and "'face' extra" in err and 'pip install -e ".[face]"' in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def synthetic_face_photo(tmp_path_factory) -> Path:
    return write_synthetic_face(tmp_path_factory.mktemp("agecli-face"))


@needs_face
def test_align_ages_found_faces_and_reports_the_others(checkpoint, synthetic_face_photo, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(age.main, ["--checkpoint", checkpoint, synthetic_face_photo, photos["rgb"],
                                       "--out", out, "--align", "--masks"], capsys)
    assert code == 1
    assert f"no face found in {photos['rgb']}" in err
    assert "Traceback" not in err
    assert read(out / "face_aged.png").shape[1::-1] == age.strip_size(TILE, 3)
    assert not (out / "rgb_aged.png").exists()
    # the input tile is the aligned face: not the plain centre crop
    with Image.open(synthetic_face_photo) as im:
        aligned = np.asarray(face_align.align_face(im, TILE))
    np.testing.assert_array_equal(crop(read(out / "face_aged.png"), 0, 0, masks=True), enlarged(aligned))
    plain = pictures.to_uint8(face_datasets.load_image(synthetic_face_photo, TILE))
    assert not np.array_equal(aligned, plain)


def test_source_age_is_told_to_a_source_told_model_and_noted_as_unused_otherwise(checkpoint, photos, tmp_path,
                                                                                 capsys):
    import train

    told = tmp_path / "told"
    assert train.main(["--out", str(told), "--max-steps", "3", "--image-size", str(TILE), "--batch-size", "4",
                       "--num-subjects", "10", "--g-channels", "8", "--g-res-blocks", "1", "--d-channels", "8",
                       "--precision", "fp32", "--no-progress", "--device", "cpu", "--g-source", "1",
                       "--g-condition", "norm"]) == 0
    capsys.readouterr()
    photo = photos["rgb"]
    faces = {}
    for name, extra in (("unknown", []), ("age8", ["--source-age", "8"]), ("age60", ["--source-age", "60"])):
        out = tmp_path / name
        code, _, err = run(age.main, ["--checkpoint", str(told / "checkpoints" / "last.pt"), photo, "--out", out,
                                      "--no-animation", *extra], capsys)
        assert code == 0 and "not used" not in err, err
        faces[name] = read(out / f"{Path(photo).stem}_aged.png")
    assert not np.array_equal(faces["age8"], faces["age60"])  # the told age reaches the aged faces
    assert not np.array_equal(faces["unknown"], faces["age60"])
    code, _, err = run(age.main, ["--checkpoint", checkpoint, photo, "--out", tmp_path / "plain", "--no-animation",
                                  "--source-age", "30"], capsys)
    assert code == 0 and "--source-age: this model was not trained with --g-source" in err
