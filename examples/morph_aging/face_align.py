"""Face detection and 5-point alignment for ``age.py --align`` (the paper's
preprocessing: faces aligned on 5 landmarks, cropped with a 10% margin).

Needs the optional ``face`` extra (``pip install 'attngan[face]'``): dlib's
HOG frontal-face detector (built into dlib) and its 5-point landmark model,
which ships inside the ``face_recognition_models`` package. Both run offline;
nothing is downloaded.

Examples
--------
>>> from PIL import Image
>>> import face_align
>>> face = face_align.align_face(Image.open("photo.jpg"), size=224)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from functools import lru_cache
from typing import Any, List, Tuple

import numpy as np
from PIL import Image

__all__ = ["FaceExtraMissing", "FaceAlignWarning", "NoFaceError", "align_face", "detect_faces", "load_models",
           "INSTALL_HINT"]

INSTALL_HINT = "pip install 'attngan[face]'"

#: File name of dlib's 5-point landmark model inside ``face_recognition_models``.
FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"

#: Photos are searched for faces at most this large (longer side, pixels);
#: bigger ones are searched on a downscaled copy (landmarks and the crop still
#: use the full-resolution photo).
DETECT_MAX_SIDE = 1024
#: Below this size (longer side) the photo is upsampled once for detection so
#: that faces down to ~40 px are found (HOG's window is 80 px).
DETECT_UPSAMPLE_BELOW = 640


class FaceExtraMissing(ImportError):
    """dlib or its landmark model (the ``face`` extra) is not installed."""


class NoFaceError(ValueError):
    """No face was found in the photo."""


class FaceAlignWarning(UserWarning):
    """Something worth knowing about an alignment, e.g. several faces found."""


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
        raise FaceExtraMissing(f"cannot load dlib's 5-point model {path}: {exc}; reinstall with {INSTALL_HINT}") from None
    return dlib.get_frontal_face_detector(), predictor


def _rgb_array(image: Image.Image) -> np.ndarray:
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise ValueError(f"image is empty ({image.width}x{image.height})")
    if image.mode != "RGB":
        try:  # the example's converter handles 16-bit, alpha and float modes properly
            from face_datasets import to_rgb
        except ImportError:  # pragma: no cover - face_datasets sits next to this file
            image = image.convert("RGB")
        else:
            image = to_rgb(image)
    # dlib needs a C-contiguous (H, W, 3) uint8 array
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def detect_faces(image: Image.Image) -> List[Tuple[int, int, int, int]]:
    """Face boxes ``(left, top, right, bottom)`` in ``image``'s pixels, largest first."""
    detector, _ = load_models()
    return [box for box, _ in _detect(detector, _rgb_array(image))]


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


def align_face(image: Image.Image, size: int, margin: float = 0.1) -> Image.Image:
    """Detect the face in ``image``, align it on 5 landmarks and crop it.

    Parameters
    ----------
    image : PIL.Image.Image
        A photo in any mode (converted to RGB).
    size : int
        Side of the returned square crop, in pixels.
    margin : float
        Extra border around the face, as a fraction of the face size (the
        paper: 10%). Passed to ``dlib.get_face_chip`` as ``padding``.

    Returns
    -------
    PIL.Image.Image
        An RGB ``size`` x ``size`` image: the face rotated so the eyes are
        level, scaled and centred the same way for every photo.

    Raises
    ------
    NoFaceError
        When no face is found.
    FaceExtraMissing
        When the ``face`` extra is not installed.

    Warns
    -----
    FaceAlignWarning
        When several faces are found; the largest is used.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    detector, predictor = load_models()
    import dlib

    arr = _rgb_array(image)
    faces = _detect(detector, arr)
    if not faces:
        raise NoFaceError(f"no face found in the {arr.shape[1]}x{arr.shape[0]} image")
    if len(faces) > 1:
        warnings.warn(f"found {len(faces)} faces; using the largest", FaceAlignWarning, stacklevel=2)
    shape = predictor(arr, faces[0][1])
    chip = dlib.get_face_chip(arr, shape, size=int(size), padding=float(margin))
    return Image.fromarray(np.ascontiguousarray(chip, dtype=np.uint8))
