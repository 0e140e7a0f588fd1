"""Tests of the real-dataset loaders (examples/morph_aging/face_datasets.py)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ages import age_to_group
from face_datasets import (
    DatasetError,
    DatasetWarning,
    FaceImageDataset,
    FaceRecord,
    load_image,
    parse_cacd,
    parse_csv,
    parse_fgnet,
    parse_morph,
    parse_utkface,
    scan_dataset,
    subject_split,
)

PARSERS = [parse_morph, parse_cacd, parse_utkface, parse_fgnet]


def _save(path: Path, size=(8, 8), colour=(120, 60, 30), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt or "JPEG")
    return path


def _jpeg_bytes(size=(16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


# -- parsers --------------------------------------------------------------------


def test_parse_morph() -> None:
    r = parse_morph("/data/Album2/001234_1M46.JPG")
    assert r == FaceRecord(Path("/data/Album2/001234_1M46.JPG"), 46, "001234")
    assert parse_morph("7_12f18.jpg").age == 18
    for bad in ("001234_1X46.JPG", "001234-1M46.JPG", "001234_1M46.txt", "abc_1M46.JPG", "001234_1M.JPG"):
        with pytest.raises(DatasetError, match="MORPH"):
            parse_morph(bad)


def test_parse_cacd() -> None:
    r = parse_cacd("14_Aaron_Johnson_0001.jpg")
    assert (r.age, r.subject) == (14, "Aaron_Johnson")
    assert parse_cacd("53_Robert_Downey_Jr_0002.jpg").subject == "Robert_Downey_Jr"
    for bad in ("Aaron_Johnson_0001.jpg", "14_Aaron_Johnson.jpg", "14__0001.jpg", "14_1_0_0001.jpg"):
        with pytest.raises(DatasetError, match="CACD"):
            parse_cacd(bad)


def test_parse_utkface() -> None:
    r = parse_utkface("sub/26_0_1_20170116171048641.jpg.chip.jpg")
    assert (r.age, r.subject) == (26, None)
    assert parse_utkface("1_1_4_20161221193016140.jpg").age == 1
    for bad in ("39_1_20170116174525125.jpg.chip.jpg", "26_2_1_2017.jpg", "26_0_9_2017.jpg", "x_0_1_1.jpg"):
        with pytest.raises(DatasetError, match="UTKFace"):
            parse_utkface(bad)


def test_parse_fgnet() -> None:
    assert parse_fgnet("002A16.JPG") == FaceRecord(Path("002A16.JPG"), 16, "002")
    r = parse_fgnet("078a11b.jpg")
    assert (r.age, r.subject) == (11, "078")
    assert parse_fgnet("010A07a.JPG").age == 7
    for bad in ("02A16.JPG", "002B16.JPG", "002A1.JPG", "002A16c.JPG", "002A16.gif"):
        with pytest.raises(DatasetError, match="FG-NET"):
            parse_fgnet(bad)


def test_implausible_age_rejected() -> None:
    with pytest.raises(DatasetError, match="plausible"):
        parse_cacd("999_Some_One_0001.jpg")


def test_parser_bad_type() -> None:
    with pytest.raises(TypeError, match="path"):
        parse_morph(12)


@settings(max_examples=30, deadline=None)
@given(name=st.text(max_size=60))
def test_parsers_only_raise_dataset_error(name: str) -> None:
    for parser in PARSERS:
        try:
            rec = parser(name)
        except DatasetError:
            continue
        assert isinstance(rec, FaceRecord) and isinstance(rec.age, int) and 0 <= rec.age <= 130


@settings(max_examples=30, deadline=None)
@given(
    age=st.integers(0, 99),
    subject=st.integers(0, 99999),
    n=st.integers(0, 9),
    sex=st.sampled_from("MFmf"),
    ext=st.sampled_from([".JPG", ".jpg", ".png", ".Jpeg"]),
)
def test_morph_round_trip(age, subject, n, sex, ext) -> None:
    r = parse_morph(f"{subject:06d}_{n}{sex}{age}{ext}")
    assert (r.age, r.subject) == (age, f"{subject:06d}")


# -- scanning --------------------------------------------------------------------


def _morph_tree(root: Path) -> None:
    _save(root / "001234_0M20.JPG")
    _save(root / "001234_1M25.JPG")
    _save(root / "sub" / "004321_0F40.jpg")
    _save(root / "sub" / "deeper" / "004321_1F52.JPEG")
    _save(root / "000777_0M33.png", fmt="PNG")


def test_scan_morph_auto_and_recursive(tmp_path: Path) -> None:
    _morph_tree(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.jpg").write_bytes(b"junk")
    recs = scan_dataset(tmp_path)
    assert len(recs) == 5
    assert recs == sorted(recs, key=lambda r: str(r.path))
    assert {r.subject for r in recs} == {"001234", "004321", "000777"}
    assert scan_dataset(tmp_path, kind="morph") == recs


@pytest.mark.parametrize(
    "kind, names",
    [
        ("cacd", ["14_Aaron_Johnson_0001.jpg", "15_Aaron_Johnson_0002.jpg", "60_Jane_Doe_0001.jpg"]),
        ("utkface", ["26_0_1_20170116171048641.jpg.chip.jpg", "70_1_0_20170110.jpg", "9_0_2_2017.jpg"]),
        ("fgnet", ["001A02.JPG", "001a10b.jpg", "002A16.JPG"]),
    ],
)
def test_scan_auto_detects_convention(tmp_path: Path, kind: str, names) -> None:
    for n in names:
        _save(tmp_path / n)
    recs = scan_dataset(tmp_path)
    assert sorted(r.path.name for r in recs) == sorted(names)
    assert recs == scan_dataset(tmp_path, kind=kind)


def test_scan_strict_and_non_strict(tmp_path: Path) -> None:
    _morph_tree(tmp_path)
    _save(tmp_path / "holiday.jpg")
    _save(tmp_path / "IMG_0001.JPG")
    with pytest.raises(DatasetError, match="2 images") as info:
        scan_dataset(tmp_path)
    assert "holiday.jpg" in str(info.value) and "strict=False" in str(info.value)
    with pytest.warns(DatasetWarning, match="skipped 2"):
        recs = scan_dataset(tmp_path, strict=False)
    assert len(recs) == 5


def test_scan_lists_at_most_ten_bad_files(tmp_path: Path) -> None:
    _save(tmp_path / "001234_0M20.JPG")
    _save(tmp_path / "001234_1M21.JPG")
    for k in range(14):
        _save(tmp_path / f"junk{k:02d}.jpg")
    _save(tmp_path / "001234_2M22.JPG")
    with pytest.raises(DatasetError) as info:
        scan_dataset(tmp_path, kind="morph")
    msg = str(info.value)
    assert "14 images" in msg and "and 4 more" in msg
    assert sum(f"junk{k:02d}.jpg" in msg for k in range(14)) == 10


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'auto', 'morph', 'cacd', 'utkface', 'fgnet', 'csv'"):
        scan_dataset(tmp_path, kind="imdb")
    with pytest.raises(DatasetError, match=str(tmp_path)):
        scan_dataset(tmp_path)  # empty folder
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        scan_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(tmp_path / "missing")
    _save(tmp_path / "holiday.jpg")
    with pytest.raises(DatasetError, match="known file-name convention"):
        scan_dataset(tmp_path)
    with pytest.raises(DatasetError, match="morph"):
        scan_dataset(tmp_path, kind="morph")


# -- CSV --------------------------------------------------------------------------


def test_csv_relative_paths_subjects_and_auto(tmp_path: Path) -> None:
    _save(tmp_path / "imgs" / "a.jpg")
    _save(tmp_path / "imgs" / "b.png", fmt="PNG")
    _save(tmp_path / "c.jpg")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("Path,Age,Subject,extra\nimgs/a.jpg,23,alice,x\nimgs/b.png,45.5,,y\nc.jpg,61,bob,z\n")
    recs = parse_csv(csv_path)
    assert [(r.path, r.age, r.subject) for r in recs] == [
        (tmp_path / "imgs" / "a.jpg", 23, "alice"),
        (tmp_path / "imgs" / "b.png", 45.5, None),
        (tmp_path / "c.jpg", 61, "bob"),
    ]
    assert sorted(scan_dataset(csv_path), key=lambda r: r.age) == sorted(recs, key=lambda r: r.age)
    # a folder with one path/age CSV is read through it, whatever the image names
    assert len(scan_dataset(tmp_path)) == 3
    assert len(scan_dataset(tmp_path, kind="csv")) == 3


def test_csv_without_subject_and_bad_rows(tmp_path: Path) -> None:
    _save(tmp_path / "a.jpg")
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("path,age\na.jpg,30\nmissing.jpg,40\na.jpg,old\na.jpg,nan\n")
    with pytest.raises(DatasetError, match="3 rows") as info:
        parse_csv(csv_path)
    msg = str(info.value)
    assert "missing.jpg" in msg and "'old'" in msg and "x.csv:5" in msg
    with pytest.warns(DatasetWarning, match="skipped 3"):
        recs = scan_dataset(csv_path, strict=False)
    assert [(r.age, r.subject) for r in recs] == [(30, None)]


def test_csv_bad_header(tmp_path: Path) -> None:
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("file,years\na.jpg,30\n")
    with pytest.raises(DatasetError, match="missing path, age"):
        parse_csv(csv_path)
    csv_path.write_text("")
    with pytest.raises(DatasetError, match="empty"):
        parse_csv(csv_path)


# -- split ---------------------------------------------------------------------------


def _records(n_subjects: int, per: int, unknown: bool = False):
    return [
        FaceRecord(Path(f"/d/{s:04d}_{k}M{20 + k}.JPG"), 20 + k, None if unknown else f"{s:04d}")
        for s in range(n_subjects)
        for k in range(per)
    ]


def test_subject_split_disjoint_and_deterministic() -> None:
    recs = _records(50, 4)
    train, test = subject_split(recs, test_fraction=0.1, seed=3)
    assert len(train) + len(test) == len(recs)
    assert not {r.subject for r in train} & {r.subject for r in test}
    assert len({r.subject for r in test}) == 5
    again = subject_split(recs, test_fraction=0.1, seed=3)
    assert again == (train, test)
    # independent of the input order
    shuffled = list(reversed(recs))
    tr2, te2 = subject_split(shuffled, test_fraction=0.1, seed=3)
    assert set(te2) == set(test)
    other = subject_split(recs, test_fraction=0.1, seed=4)
    assert set(other[1]) != set(test)


def test_subject_split_unknown_subjects_warns() -> None:
    recs = _records(10, 3, unknown=True)
    with pytest.warns(DatasetWarning, match="identity may appear in both"):
        train, test = subject_split(recs, test_fraction=0.2, seed=0)
    assert len(test) == 6 and len(train) == 24 and not set(train) & set(test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert subject_split(recs, test_fraction=0.2, seed=0) == (train, test)


def test_subject_split_errors() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        subject_split(_records(5, 2), test_fraction=0.0)
    with pytest.raises(ValueError, match="2 subjects"):
        subject_split(_records(1, 5))
    with pytest.raises(TypeError, match="records"):
        subject_split(["a.jpg", "b.jpg"])


# -- image loading ---------------------------------------------------------------------


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    """One file per tricky mode, named by the MORPH convention."""
    # 16-bit greyscale PNG: a left-to-right ramp of the full 16-bit range
    ramp = np.tile(np.linspace(0, 65535, 32).round().astype(np.uint16), (32, 1))
    Image.fromarray(ramp).save(tmp_path / "000001_0M20.png")
    # palette PNG with a transparent index
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    pal.save(tmp_path / "000002_0M30.png", transparency=0)
    opaque = Image.new("P", (16, 16), 1)
    opaque.putpalette([0, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    opaque.save(tmp_path / "000002_1M31.png")
    # RGBA: fully transparent -> white
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(tmp_path / "000003_0M40.png")
    # grey, grey+alpha, CMYK
    Image.new("L", (16, 16), 128).save(tmp_path / "000004_0M50.png")
    Image.new("LA", (16, 16), (0, 255)).save(tmp_path / "000004_1M51.png")
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "000005_0F60.jpg")
    # EXIF orientation 6 (rotate 90 degrees clockwise to display): stored
    # 32 wide x 16 high, left half red, right half blue
    rot = Image.new("RGB", (32, 16), (255, 0, 0))
    rot.paste((0, 0, 255), (16, 0, 32, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    rot.save(tmp_path / "000006_0F22.jpg", exif=exif, quality=95)
    # broken files
    (tmp_path / "000007_0F23.jpg").write_bytes(_jpeg_bytes((64, 64))[:200])
    (tmp_path / "000008_0F24.jpg").write_bytes(b"this is not an image at all" * 5)
    return tmp_path


def _load(folder: Path, name: str, size: int = 16) -> torch.Tensor:
    img = load_image(folder / name, size)
    assert img.shape == (3, size, size) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    return img


def test_sixteen_bit_png_scaled(image_folder: Path) -> None:
    img = _load(image_folder, "000001_0M20.png", 32)
    assert torch.allclose(img[0, :, 0], torch.tensor(-1.0), atol=0.02)  # 0 -> black
    assert torch.allclose(img[0, :, -1], torch.tensor(1.0), atol=0.02)  # 65535 -> white
    assert abs(img[0, 0, 15:17].mean().item()) < 0.06  # the middle is mid-grey
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])


def test_palette_alpha_grey_cmyk(image_folder: Path) -> None:
    red = _load(image_folder, "000002_0M30.png")
    assert torch.allclose(red[:, 8, 8], torch.tensor([1.0, -1.0, -1.0]), atol=0.02)
    blue = _load(image_folder, "000002_1M31.png")
    assert torch.allclose(blue[:, 8, 8], torch.tensor([-1.0, -1.0, 1.0]), atol=0.02)
    white = _load(image_folder, "000003_0M40.png")
    assert torch.allclose(white, torch.ones(3, 16, 16), atol=0.01)
    grey = _load(image_folder, "000004_0M50.png")
    assert torch.allclose(grey, torch.full((3, 16, 16), 128 / 127.5 - 1), atol=0.01)
    black = _load(image_folder, "000004_1M51.png")
    assert torch.allclose(black, -torch.ones(3, 16, 16), atol=0.01)
    cmyk = _load(image_folder, "000005_0F60.jpg")
    r, g, b = cmyk[:, 8, 8].tolist()
    assert r > 0.5 and g < -0.5 and b < -0.5  # (0, 255, 255, 0) CMYK is red


def test_exif_rotation_applied(image_folder: Path) -> None:
    img = _load(image_folder, "000006_0F22.jpg", 16)
    # displayed image is 16 wide x 32 high with red on top, blue below; the
    # centre crop keeps the middle 16 rows: top half red, bottom half blue
    top, bottom = img[:, 3, 8], img[:, 12, 8]
    assert top[0] > 0.6 and top[2] < -0.6, top
    assert bottom[2] > 0.6 and bottom[0] < -0.6, bottom


def test_corrupt_files_raise_dataset_error_naming_path(image_folder: Path) -> None:
    for name in ("000007_0F23.jpg", "000008_0F24.jpg"):
        with pytest.raises(DatasetError, match=name):
            load_image(image_folder / name, 16)
    with pytest.raises(DatasetError, match="missing"):
        load_image(image_folder / "missing.jpg", 16)


def test_center_crop_and_upsample(tmp_path: Path) -> None:
    wide = Image.new("RGB", (30, 10), (255, 0, 0))
    wide.paste((0, 255, 0), (10, 0, 20, 10))
    wide.save(tmp_path / "wide.png")
    img = load_image(tmp_path / "wide.png", 20)  # upsampled 10 -> 20 as well
    inner = img[:, :, 2:-2]
    assert torch.allclose(inner, torch.tensor([-1.0, 1.0, -1.0])[:, None, None].expand_as(inner), atol=0.05)
    big = load_image(_save(tmp_path / "big.jpg", size=(300, 200)), 64)
    assert big.shape == (3, 64, 64)


def _photo(path: Path, size=(512, 384)) -> Path:
    """A JPEG with detail at every scale (smooth gradients, edges, noise)."""
    w, h = size
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    rgb = np.stack([255 * x, 255 * y, 127 + 100 * np.sin(40 * x * y)], axis=-1)
    rgb[h // 3: h // 2, w // 4: w // 2] = (250, 20, 20)
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=92)
    return path


def test_resize_matches_pil_bicubic(tmp_path: Path) -> None:
    """torch's 8-bit antialiased bicubic resize against PIL's on the same crop."""
    import face_datasets

    path = _photo(tmp_path / "p.jpg", (301, 250))  # odd excess width: crop at x = 25
    for size in (64, 224, 400):  # shrink and enlarge
        ours = load_image(path, size, draft=False)
        assert ours.is_contiguous() and ours.shape == (3, size, size)
        with Image.open(path) as im:
            ref = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, box=(25, 0, 275, 250))
        ref = torch.from_numpy(np.asarray(ref, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        diff = (ours - ref).abs() * 127.5
        assert diff.max() <= 3.01 and diff.mean() < 0.05, (size, diff.max(), diff.mean())
    # the PIL fallback gives the same pixels as that reference
    face_datasets._TORCH_RESIZE = False
    try:
        fallback = load_image(path, 224, draft=False)
    finally:
        face_datasets._TORCH_RESIZE = True
    with Image.open(path) as im:
        ref = im.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC, box=(25, 0, 275, 250))
    assert torch.equal(fallback, torch.from_numpy(np.asarray(ref, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1))


def test_same_size_crop_is_exact(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (20, 32, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    img = load_image(tmp_path / "x.png", 20)
    assert torch.equal(img, torch.from_numpy(rgb[:, 6:26].astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1))


def test_draft_decodes_large_jpegs_smaller(tmp_path: Path) -> None:
    from face_datasets import open_rgb

    path = _photo(tmp_path / "big.jpg", (512, 384))
    assert open_rgb(path).size == (512, 384)
    # the largest of 1/8, 1/4, 1/2 that keeps both sides >= draft
    assert open_rgb(path, draft=96).size == (128, 96)
    assert open_rgb(path, draft=100).size == (256, 192)
    assert open_rgb(path, draft=200).size == (512, 384)  # 1/2 would leave 192 < 200
    png = tmp_path / "big.png"
    Image.open(path).save(png)
    assert open_rgb(png, draft=100).size == (512, 384)  # only JPEGs are drafted
    fast, full = load_image(path, 64), load_image(path, 64, draft=False)
    diff = (fast - full).abs() * 127.5
    assert diff.mean() < 2.0 and diff.max() < 40, (diff.mean(), diff.max())
    assert torch.equal(load_image(path, 300), load_image(path, 300, draft=False))
    ds = FaceImageDataset([FaceRecord(path, 30, "a")], 64, draft=False)
    assert torch.equal(ds[0]["image"], full)
    with pytest.raises(TypeError, match="draft"):
        load_image(path, 64, draft=1)
    with pytest.raises(TypeError, match="draft"):
        FaceImageDataset([FaceRecord(path, 30, "a")], 64, draft="yes")


def test_face_image_dataset_items(image_folder: Path) -> None:
    recs = [r for r in scan_dataset(image_folder) if r.path.name not in ("000007_0F23.jpg", "000008_0F24.jpg")]
    ds = FaceImageDataset(recs, 24)
    assert len(ds) == 8
    item = ds[0]
    assert set(item) == {"image", "label", "subject", "index"}
    assert item["image"].shape == (3, 24, 24) and item["image"].dtype == torch.float32
    for key in ("label", "subject", "index"):
        assert item[key].dtype == torch.int64 and item[key].ndim == 0
    assert ds.labels().tolist() == [age_to_group(r.age) for r in recs]
    assert ds.subject_ids().tolist() == [0, 1, 1, 2, 3, 3, 4, 5]
    with pytest.raises(IndexError):
        ds[-1]
    with pytest.raises(IndexError):
        ds[8]
    broken = FaceImageDataset([r for r in scan_dataset(image_folder) if r.path.name == "000008_0F24.jpg"], 24)
    with pytest.raises(DatasetError, match="000008_0F24.jpg"):
        broken[0]


def test_face_image_dataset_unknown_subjects_and_young(tmp_path: Path) -> None:
    a = _save(tmp_path / "5_0_0_2017.jpg")
    b = _save(tmp_path / "30_1_0_2017.jpg")
    recs = scan_dataset(tmp_path)
    with pytest.raises(DatasetError, match="5_0_0_2017.jpg"):
        FaceImageDataset(recs, 16)
    ds = FaceImageDataset(recs, 16, clip_young=True)
    assert ds.subject_ids().tolist() == [-1, -1]
    assert sorted(ds.labels().tolist()) == [0, 1]
    assert {r.path for r in recs} == {a, b}
    with pytest.raises(ValueError, match="records"):
        FaceImageDataset([], 16)
    with pytest.raises(ValueError, match="image_size"):
        FaceImageDataset(recs, 0, clip_young=True)


# -- fuzz ------------------------------------------------------------------------------

_MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"II*\x00"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_give_dataset_error(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "000001_0M20.jpg"
    p.write_bytes(data)
    with pytest.raises(DatasetError, match="000001_0M20.jpg"):
        load_image(p, 16)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.tuples(st.sampled_from(_MAGIC), st.binary(max_size=256)).map(lambda t: t[0] + t[1]),
        st.tuples(st.integers(0, 2000), st.integers(0, 255), st.integers(0, 2000)).map(
            lambda t: _corrupt(t[0], t[1], t[2])
        ),
    )
)
def test_damaged_images_never_crash(tmp_path: Path, data: bytes) -> None:
    """Headers followed by junk, truncated or bit-flipped JPEGs: a tensor or DatasetError."""
    p = tmp_path / "000001_0M20.jpg"
    p.write_bytes(data)
    try:
        img = load_image(p, 16)
    except DatasetError:
        return
    assert img.shape == (3, 16, 16) and torch.isfinite(img).all()


_VALID = _jpeg_bytes((32, 32))


def _corrupt(cut: int, value: int, pos: int) -> bytes:
    data = bytearray(_VALID[: max(cut, 1)] if cut < len(_VALID) else _VALID)
    data[pos % len(data)] = value
    return bytes(data)
