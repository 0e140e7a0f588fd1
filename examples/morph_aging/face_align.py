"""Face detection, landmark alignment and crops for ``prepare.py``, ``age.py --align`` and ``evaluate.py``.

The paper's preprocessing: faces aligned on landmarks and "cropped to 224x224
pixels of 10% more area, thus not only hair but also beard are all covered".
A tight crop around the inner face cannot show greying hair, so the default
crop covers the whole head.

Needs the optional ``face`` extra (``pip install -e ".[face]"`` in the checkout): dlib's
HOG frontal-face detector (built into dlib) and its 5- and 68-point landmark
models, which ship inside the ``face_recognition_models`` package. All run
offline; nothing is downloaded.

Crops
-----
``crop="head"`` (the default)
    The FFHQ crop (the alignment of the FFHQ face dataset, Karras et al.,
    "A Style-Based Generator Architecture for Generative Adversarial
    Networks", 2019), computed from dlib's 68 landmarks. With ``e_l`` and
    ``e_r`` the eye centres (each the mean of the six landmarks around an
    eye, left and right in the picture), ``m`` the mouth centre (the mean of
    the two mouth corners), all in pixels with y pointing down, and
    ``rot90(u) = (-u_y, u_x)``::

        eye_avg      = (e_l + e_r) / 2
        eye_to_eye   = e_r - e_l
        eye_to_mouth = m - eye_avg
        x  = eye_to_eye - rot90(eye_to_mouth)
        x  = x / |x| * max(2.0 * |eye_to_eye|, 1.8 * |eye_to_mouth|)
        y  = rot90(x)
        c  = eye_avg + 0.1 * eye_to_mouth
        quad = (c - x - y, c - x + y, c + x + y, c + x - y)

    ``quad`` is a square of side ``2 |x|`` centred on ``c`` (its corners
    top-left, bottom-left, bottom-right, top-right), turned so that its
    horizontal follows the eye line and the perpendicular to the eye-mouth
    line together (their sum): the face is upright. It is warped onto the
    ``size`` x ``size`` output. Since ``2 |x|`` is at least four eye
    distances, the eyes are at most a quarter of the crop's width apart
    (centred on 37.5% and 62.5% of the width), at about 47-48% of its height,
    the mouth at about 70%: the upper part holds the forehead and the hair,
    the lower part the chin, the beard and the neck (see :func:`head_quad`).
    Where the square leaves the photo, the photo is extended by mirroring its
    edge, blurred and faded into the photo's median colour the farther it
    lies from the photo, so the crop is always full-size, without black
    corners or a sharp mirror image of the face.
``crop="tight"``
    dlib's face chip (``dlib.get_face_chip``) from the 5 landmarks: the inner
    face from the eyebrows to the chin, the eyes at about a quarter of the
    height and 45% of the width apart. Forehead and hair are cut off. The crop of earlier versions.

``margin`` adds a border on each side, as a fraction of the crop's side
without it, for both crops (dlib's ``padding``): the cropped square is
``1 + 2 * margin`` times as wide. Its default is 0 for ``"head"`` (the FFHQ
square already includes hair and beard: the paper's "more area") and 0.1
for ``"tight"`` (the paper's 10%, as before).

Faces are found by dlib's HOG detector (photos larger than 1024 pixels are
searched on a reduced copy, smaller than 640 on an enlarged one). HOG often
misses a face that fills the photo, as in UTKFace's chips; a photo in which
no face is found is searched again inside a border of its repeated edge
pixels (:data:`DETECT_BORDER`), and its landmarks are found there too.

Examples
--------
>>> from PIL import Image
>>> import face_align
>>> head = face_align.align_face(Image.open("photo.jpg"), size=224)  # doctest: +SKIP
>>> inner = face_align.align_face(Image.open("photo.jpg"), 224, crop="tight")  # doctest: +SKIP

The crop's square, from eye and mouth centres (no dlib needed):

>>> face_align.head_quad((80, 100), (120, 100), (100, 140)).tolist()
[[20.0, 24.0], [20.0, 184.0], [180.0, 184.0], [180.0, 24.0]]
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

import cli

__all__ = ["CROPS", "Crop", "FaceAlignWarning", "FaceExtraMissing", "INSTALL_HINT", "NoFaceError", "UNKNOWN_CROP",
           "align_face",
           "detect_faces", "head_quad", "load_models"]

INSTALL_HINT = cli.install_hint("face")

#: File name of dlib's 5-point landmark model inside ``face_recognition_models``.
FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"
#: File name of dlib's 68-point landmark model (eyes and mouth for the head crop).
SIXTY_EIGHT_POINT_MODEL = "shape_predictor_68_face_landmarks.dat"

#: The crops :func:`align_face` makes (see the module's docstring).
CROPS = ("head", "tight")
#: ``margin``'s default for each crop.
DEFAULT_MARGIN = {"head": 0.0, "tight": 0.1}

#: Photos are searched for faces at most this large (longer side, pixels);
#: bigger ones are searched on a downscaled copy (landmarks and the crop still
#: use the full-resolution photo).
DETECT_MAX_SIDE = 1024
#: Below this size (longer side) the photo is upsampled once for detection so
#: that faces down to ~40 px are found (HOG's window is 80 px).
DETECT_UPSAMPLE_BELOW = 640
#: A photo in which no face is found is searched again inside a border of
#: this fraction of its longer side (its edge pixels repeated): HOG misses
#: faces that fill the photo. Measured on 400 UTKFace chips (200 px, cut
#: close to the face): 17 faces missed without the border, 2 with it.
DETECT_BORDER = 0.25


class FaceExtraMissing(ImportError):
    """dlib or its landmark model (the ``face`` extra) is not installed."""


class NoFaceError(ValueError):
    """No face was found in the photo."""


class FaceAlignWarning(UserWarning):
    """Something worth knowing about an alignment, e.g. several faces found.

    ``boxes``: the face boxes ``(left, top, right, bottom)`` found, largest
    (the one aligned) first; empty when the warning is about something else.
    """

    def __init__(self, message: str, boxes: Sequence[Tuple[int, int, int, int]] = ()) -> None:
        super().__init__(message)
        self.boxes = [tuple(int(v) for v in box) for box in boxes]


def face_model_file(name: str) -> str:
    """Path of one of the model files shipped in ``face_recognition_models``.

    Found without importing the package: its ``__init__`` imports
    pkg_resources, which setuptools >= 81 no longer ships. Raises
    :class:`FaceExtraMissing` naming the extra to install.
    """
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    if not roots:
        raise FaceExtraMissing(
            f"this needs the 'face' extra (the face_recognition_models package is missing): {INSTALL_HINT}")
    for root in roots:
        path = os.path.join(root, "models", name)
        if os.path.isfile(path):
            return path
    raise FaceExtraMissing(
        f"this needs the 'face' extra ({name} is missing from face_recognition_models in {roots[0]}): {INSTALL_HINT}")


def _five_point_model_path() -> str:
    return face_model_file(FIVE_POINT_MODEL)


@lru_cache(maxsize=1)
def load_models() -> Tuple[Any, Any]:
    """dlib's (face detector, 5-point shape predictor), loaded once.

    Raises
    ------
    FaceExtraMissing
        When dlib or the landmark model is not installed, with the command
        that installs them.
    """
    try:
        import dlib
    except ImportError:
        raise FaceExtraMissing(f"face alignment needs the 'face' extra (dlib is missing): {INSTALL_HINT}") from None
    path = _five_point_model_path()
    try:
        predictor = dlib.shape_predictor(path)
    except RuntimeError as exc:
        raise FaceExtraMissing(f"cannot load dlib's 5-point model {path}: {exc}; "
                               f"reinstall with {INSTALL_HINT}") from None
    return dlib.get_frontal_face_detector(), predictor


@lru_cache(maxsize=1)
def _sixty_eight_point_predictor() -> Any:
    """dlib's 68-point shape predictor, loaded once (about 0.5 s, 100 MB)."""
    import dlib

    path = face_model_file(SIXTY_EIGHT_POINT_MODEL)
    try:
        return dlib.shape_predictor(path)
    except RuntimeError as exc:
        raise FaceExtraMissing(
            f"cannot load dlib's 68-point model {path}: {exc}; reinstall with {INSTALL_HINT}") from None


def _rgb_array(image: Image.Image) -> np.ndarray:
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise ValueError(f"image is empty ({image.width}x{image.height})")
    if image.mode != "RGB":
        try:  # the example's converter handles 16-bit, alpha and float modes properly
            from pictures import to_rgb
        except ImportError:  # pragma: no cover - pictures sits next to this file
            image = image.convert("RGB")
        else:
            image = to_rgb(image)
    # dlib needs a C-contiguous (H, W, 3) uint8 array
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def detect_faces(image: Image.Image) -> List[Tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` in ``image``'s pixels, largest first.

    A face that fills the photo may reach past its edges (see :data:`DETECT_BORDER`).
    """
    detector, _ = load_models()
    return [box for box, _ in _find_faces(detector, _rgb_array(image))[0]]


def _find_faces(detector: Any, arr: np.ndarray) -> Tuple[List[Tuple[Tuple[int, int, int, int], Any]], np.ndarray, int]:
    """The faces of ``arr``, searched again inside a border (:data:`DETECT_BORDER`) when none is found.

    Returns ``(faces, searched, pad)``: each face's box in ``arr``'s pixels
    (largest first) with its dlib rectangle in the pixels of ``searched``,
    the image the faces were found in (``arr``, or ``arr`` with a border of
    ``pad`` pixels on every side; ``pad`` is 0 without).
    """
    faces = _detect(detector, arr)
    if faces or DETECT_BORDER <= 0:
        return faces, arr, 0
    pad = max(1, round(DETECT_BORDER * max(arr.shape[:2])))
    searched = np.ascontiguousarray(np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    found = [(tuple(v - pad for v in box), rect) for box, rect in _detect(detector, searched)]
    return found, searched, pad


def _detect(detector: Any, arr: np.ndarray) -> List[Tuple[Tuple[int, int, int, int], Any]]:
    import dlib

    h, w = arr.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = arr
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.ascontiguousarray(np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR)))
    upsample = 1 if max(small.shape[:2]) < DETECT_UPSAMPLE_BELOW else 0
    found = []
    for r in detector(small, upsample):
        box = tuple(int(round(v / scale)) for v in (r.left(), r.top(), r.right(), r.bottom()))
        found.append((box, dlib.rectangle(*box)))
    found.sort(key=lambda item: (item[0][2] - item[0][0]) * (item[0][3] - item[0][1]), reverse=True)
    return found


def _point(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (2,) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a finite (x, y) point, got {value!r}")
    return arr


def _rot90(u: np.ndarray) -> np.ndarray:
    """``u`` turned by 90 degrees: (x, y) -> (-y, x) (clockwise on screen, y down)."""
    return np.array([-u[1], u[0]])


def head_quad(eye_left: Sequence[float], eye_right: Sequence[float], mouth: Sequence[float], *,
              margin: float = 0.0) -> np.ndarray:
    """The square of the head crop (FFHQ's), from the eye and mouth centres.

    Parameters
    ----------
    eye_left, eye_right : (x, y)
        Centres of the eyes, left and right in the picture, in pixels (y
        pointing down).
    mouth : (x, y)
        Centre of the mouth (the mean of its corners).
    margin : float
        Extra border on each side as a fraction of the square's side: the
        square grows ``1 + 2 * margin`` times about its centre. Default 0.

    Returns
    -------
    numpy.ndarray
        Shape ``(4, 2)``, float64: the corners (x, y) of the square, top-left,
        bottom-left, bottom-right, top-right as seen in the upright crop (the
        order of PIL's ``Image.Transform.QUAD``). See the module's docstring
        for the geometry.

    Raises
    ------
    ValueError
        For a point that is not a finite (x, y) pair, a negative or
        non-finite ``margin``, or eyes and mouth that coincide.

    Examples
    --------
    >>> q = head_quad((80, 100), (120, 100), (100, 140))
    >>> q.tolist()
    [[20.0, 24.0], [20.0, 184.0], [180.0, 184.0], [180.0, 24.0]]
    >>> float(np.linalg.norm(q[3] - q[0]))  # side: 4 eye distances
    160.0
    >>> head_quad((80, 100), (120, 100), (100, 140), margin=0.25)[0].tolist()
    [-20.0, -16.0]
    """
    left, right, mouth_c = _point(eye_left, "eye_left"), _point(eye_right, "eye_right"), _point(mouth, "mouth")
    _check_margin(margin)
    eye_avg = (left + right) / 2
    eye_to_eye = right - left
    eye_to_mouth = mouth_c - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth)
    norm = float(np.hypot(*x))
    half = max(2.0 * float(np.hypot(*eye_to_eye)), 1.8 * float(np.hypot(*eye_to_mouth)))
    if not (norm > 0 and half > 0 and math.isfinite(norm * half)):
        raise ValueError(f"eyes and mouth give no crop: eye_left={eye_left!r}, eye_right={eye_right!r}, "
                         f"mouth={mouth!r}")
    x = x / norm * half * (1.0 + 2.0 * float(margin))
    y = _rot90(x)
    c = eye_avg + 0.1 * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _check_margin(margin: Any) -> None:
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.integer, np.floating)) \
            or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")


#: Where the head crop's square leaves the photo, the photo is mirrored, and
#: the mirror is blurred (a Gaussian of standard deviation ``BORDER_BLUR``
#: times the square's side) from ``BORDER_BLUR_FROM`` times the side outside
#: the photo on, and fades into the photo's median colour, fully at
#: ``BORDER_FADE_AT`` times the side: mirrored eyes or mouths do not show.
BORDER_BLUR = 0.03
BORDER_BLUR_FROM = 0.05
BORDER_FADE_AT = 0.3


def _extend(arr: np.ndarray, pads: Tuple[int, int, int, int], side: float) -> np.ndarray:
    """``arr`` (H, W, 3) extended by ``pads`` (top, bottom, left, right) pixels (see ``BORDER_BLUR``)."""
    top, bottom, left, right = pads
    h, w = arr.shape[:2]
    padded = np.pad(arr, ((top, bottom), (left, right), (0, 0)), mode="symmetric")
    rows = np.arange(padded.shape[0], dtype=np.float64) - top
    cols = np.arange(padded.shape[1], dtype=np.float64) - left
    dy = np.maximum(np.maximum(-rows, rows - (h - 1)), 0.0)
    dx = np.maximum(np.maximum(-cols, cols - (w - 1)), 0.0)
    dist = np.hypot(dy[:, None], dx[None, :])[..., None]  # pixels outside the photo
    blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(max(BORDER_BLUR * side, 0.5))))
    blur = np.clip(dist / max(BORDER_BLUR_FROM * side, 1.0), 0.0, 1.0)
    fade = np.clip(dist / max(BORDER_FADE_AT * side, 1.0), 0.0, 1.0)
    out = padded * (1.0 - blur) + blurred * blur
    out = out * (1.0 - fade) + np.median(arr.reshape(-1, 3), axis=0) * fade
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _warp_quad(arr: np.ndarray, quad: np.ndarray, size: int) -> Image.Image:
    """The square ``quad`` (pixel-centre coordinates, PIL's QUAD order) of ``arr`` as a ``size``-px RGB image.

    Only the part of the photo under the square is processed. A square much
    larger than ``size`` is first box-reduced by an integer factor to 1-2x
    ``size``, warped at that resolution (bicubic) and resized with Lanczos,
    so that downscaling does not alias.
    """
    h, w = arr.shape[:2]
    quad = quad + 0.5  # pixel centres (dlib) -> PIL's continuous coordinates
    side = float(np.hypot(*(quad[3] - quad[0])))
    k = max(1, int(side // size))
    lo = np.floor(quad.min(0)) - 4 * k  # a few pixels more for the resampling kernel
    hi = np.ceil(quad.max(0)) + 4 * k
    x0, y0 = int(np.clip(lo[0], 0, w - 1)), int(np.clip(lo[1], 0, h - 1))
    x1, y1 = int(np.clip(hi[0], x0 + 1, w)), int(np.clip(hi[1], y0 + 1, h))
    region = arr[y0:y1, x0:x1]
    if k > 1:
        region = np.asarray(Image.fromarray(region).reduce(k))
    origin = np.array([x0, y0], dtype=np.float64)
    quad, lo, hi = (quad - origin) / k, (lo - origin) / k, (hi - origin) / k
    rh, rw = region.shape[:2]
    pads = (max(0, math.ceil(-lo[1])), max(0, math.ceil(hi[1] - rh)),
            max(0, math.ceil(-lo[0])), max(0, math.ceil(hi[0] - rw)))
    if any(pads):
        region = _extend(region, pads, side / k)
        quad = quad + np.array([pads[2], pads[0]], dtype=np.float64)
    n = max(size, int(round(side / k)))
    out = Image.fromarray(np.ascontiguousarray(region)).transform(
        (n, n), Image.Transform.QUAD, data=tuple(float(v) for v in quad.ravel()),
        resample=Image.Resampling.BICUBIC)
    if n != size:
        out = out.resize((size, size), Image.Resampling.LANCZOS)
    return out


def align_face(image: Image.Image, size: int, margin: Optional[float] = None, *, crop: str = "head") -> Image.Image:
    """Detect the face in ``image``, turn it upright and crop it.

    Parameters
    ----------
    image : PIL.Image.Image
        A photo in any mode (converted to RGB).
    size : int
        Side of the returned square crop, in pixels.
    margin : float, optional
        Extra border on each side, as a fraction of the crop's side without
        it (dlib's ``padding``): the cropped square is ``1 + 2 * margin``
        times as wide. Default: 0 for ``crop="head"`` (the FFHQ square already
        includes hair and beard), 0.1 for ``crop="tight"`` (the paper's 10%).
    crop : {"head", "tight"}
        ``"head"`` (default): the whole head with hair, beard and some neck,
        FFHQ's crop from the eye and mouth centres of dlib's 68 landmarks
        (eyes level, at about 47-48% of the height and a quarter of the width
        apart). ``"tight"``: dlib's face chip from the 5 landmarks, the inner
        face with eyes at about a quarter of the height, forehead and hair
        cut off. The geometry is in the module's docstring.

    Returns
    -------
    PIL.Image.Image
        An RGB ``size`` x ``size`` image: the face rotated so the eyes are
        level, scaled and placed the same way for every photo. Parts of the
        head crop outside the photo are a blurred mirror of its edge; parts
        of the tight crop are black, or the repeated edge pixels where the
        face was found only inside a border.

    Raises
    ------
    ValueError
        For a bad ``size``, ``margin`` or ``crop`` (the message names it).
    NoFaceError
        When no face is found.
    FaceExtraMissing
        When the ``face`` extra is not installed.

    Warns
    -----
    FaceAlignWarning
        When several faces are found; the largest is used (the warning's
        ``boxes`` lists them, largest first).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not isinstance(crop, str) or crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(map(repr, CROPS))}, got {crop!r}")
    if margin is None:
        margin = DEFAULT_MARGIN[crop]
    _check_margin(margin)
    detector, predictor = load_models()
    import dlib

    arr = _rgb_array(image)
    faces, searched, pad = _find_faces(detector, arr)
    if not faces:
        raise NoFaceError(f"no face found in the {arr.shape[1]}x{arr.shape[0]} image")
    if len(faces) > 1:
        warnings.warn(FaceAlignWarning(f"found {len(faces)} faces; using the largest",
                                       [box for box, _ in faces]), stacklevel=2)
    box = faces[0][1]  # landmarks are found where the face was: in the photo, or in it with its border
    if crop == "tight":
        chip = dlib.get_face_chip(searched, predictor(searched, box), size=int(size), padding=float(margin))
        return Image.fromarray(np.ascontiguousarray(chip, dtype=np.uint8))
    shape = _sixty_eight_point_predictor()(searched, box)
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) - pad
    # dlib's 68 points: 36-41 and 42-47 ring the eyes (left, right in the picture), 48 and 54 are the mouth corners
    quad = head_quad(pts[36:42].mean(0), pts[42:48].mean(0), (pts[48] + pts[54]) / 2, margin=float(margin))
    return _warp_quad(arr, quad, int(size))


#: What a training config records as its crop when its photos were not
#: aligned by ``prepare.py`` (so the crop they show is not known).
UNKNOWN_CROP = "unknown"


@dataclass(frozen=True)
class Crop:
    """A crop :func:`align_face` makes: its name, its margin and, for a prepared dataset, the side of its images.

    Parameters
    ----------
    name : {"head", "tight"}
        The crop (see the module's docstring).
    margin : float, optional
        Extra border on each side, as in :func:`align_face`; default the
        crop's own (:data:`DEFAULT_MARGIN`: 0 for ``"head"``, 0.1 for
        ``"tight"``).
    size : int, optional
        Side in pixels of a prepared dataset's images; None where no
        resolution is meant (aligning a photo for a model, which sets it).

    Notes
    -----
    ``str(crop)`` is its spec, ``CROP,margin=M[,size=S]``, which
    :meth:`parse` reads back. ``prepare.py`` records it in a prepared
    folder, the training config in every checkpoint (``crop``), so that
    ``age.py --align`` and ``evaluate.py`` crop photos as the model learned.

    Examples
    --------
    >>> Crop("head")
    Crop(name='head', margin=0.0, size=None)
    >>> str(Crop.parse("tight,size=128"))
    'tight,margin=0.1,size=128'
    >>> Crop.parse("head,margin=0.05,size=224").describe()
    'the head crop (margin 0.05, 224 px)'
    >>> Crop("head").same_crop(Crop.parse("head,margin=0,size=96"))
    True
    """

    name: str
    margin: Optional[float] = None
    size: Optional[int] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(map(repr, CROPS))}, got {self.name!r}")
        margin = DEFAULT_MARGIN[self.name] if self.margin is None else self.margin
        _check_margin(margin)
        object.__setattr__(self, "margin", float(margin))
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer))
                                      or self.size < 1):
            raise ValueError(f"size must be a positive int or None, got {self.size!r}")
        if self.size is not None:
            object.__setattr__(self, "size", int(self.size))

    @classmethod
    def parse(cls, text: str, *, what: str = "crop") -> "Crop":
        """The crop of a spec ``CROP[,margin=M][,size=S]``, e.g. ``"head"`` or ``"tight,margin=0.2"``.

        Raises ValueError starting with ``what`` (a flag's name) for a
        malformed spec, an unknown crop, a bad margin or size.
        """
        if not isinstance(text, str):
            raise ValueError(f"{what}: expected a crop spec CROP[,margin=M][,size=S], got {text!r}")
        name, *rest = [part.strip() for part in text.split(",")]
        values: dict = {}
        try:
            for part in rest:
                key, sep, value = part.partition("=")
                if not sep or key not in ("margin", "size") or key in values:
                    raise ValueError(f"{part!r} is not margin=M or size=S (each at most once)")
                values[key] = float(value) if key == "margin" else int(value)
            return cls(name, values.get("margin"), values.get("size"))
        except ValueError as exc:
            raise ValueError(f"{what}: expected CROP[,margin=M][,size=S] with CROP one of {', '.join(CROPS)}, "
                             f"got {text!r} ({exc})") from None

    def _margin_text(self) -> str:
        """The margin, short where that reads back exactly (``0``, ``0.05``)."""
        short = f"{self.margin:g}"
        return short if float(short) == self.margin else repr(self.margin)

    def __str__(self) -> str:
        return f"{self.name},margin={self._margin_text()}" + (f",size={self.size}" if self.size is not None else "")

    def describe(self) -> str:
        """In words: ``the head crop (margin 0, 224 px)``."""
        size = f", {self.size} px" if self.size is not None else ""
        return f"the {self.name} crop (margin {self._margin_text()}{size})"

    def same_crop(self, other: "Crop") -> bool:
        """Whether ``other`` crops the same square of a face (name and margin; the resolution aside)."""
        return (self.name, self.margin) == (other.name, other.margin)

    def align(self, image: Image.Image, size: int) -> Image.Image:
        """:func:`align_face` of ``image`` with this crop, ``size`` pixels a side."""
        return align_face(image, size, self.margin, crop=self.name)
