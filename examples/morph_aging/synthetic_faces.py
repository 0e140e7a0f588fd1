"""Built-in synthetic face dataset with known age, identity and face region.

The AcGAN example trains on this dataset by default, and the evaluation uses
it as ground truth when no real face data is available. Every image is a
procedurally drawn portrait:

* **identity** (fixed per subject, drawn from ``(seed, subject)``): face shape
  (ellipse axes, chin, jaw), skin tone, eye / eyebrow / nose / mouth geometry,
  iris colour, ears, hair colour, hair style (short, long, bob, curly) and
  fringe, and where age spots will appear;
* **background** (drawn per image from ``(seed, subject, image)``): a smooth
  four-colour gradient with stripes and soft blobs, plus a shirt colour. It is
  drawn independently of the age group, so it carries no age information;
* **age** (monotone over the five groups, confined to the face and hair):
  greying hair (salt-and-pepper, then white), thinning hair and a receding,
  M-shaped hairline, forehead wrinkle lines whose number and contrast grow,
  crow's feet, under-eye bags, nasolabial folds, marionette lines, age spots,
  a sagging, wider lower face, drooping mouth corners and thinner lips, duller
  skin; the youngest group has rosy cheeks.

Each image has a continuous age ``t = group + jitter`` with ``|jitter| < 0.35``
so groups overlap in no statistic and stay separable.

:meth:`SyntheticFaces.render` draws image ``i``'s subject on image ``i``'s
background at any age group: the ground truth of aging. Pixels outside
:meth:`SyntheticFaces.face_mask` are bit-identical across age groups.

Rendering is vectorised numpy (float32) on 1-D coordinate vectors broadcast to
the image grid. Every shape is drawn in a window that holds all of its
non-zero coverage (the face and hair in a head box, each feature in its own
box), so drawing in windows gives the same pixels as drawing on the whole
canvas at about half the cost; the age-independent part of an image
(background, neck, shirt) is kept for the next render of the same image at
another age.
Edges are anti-aliased analytically (coverage from a signed distance), so no
supersampling is needed. All randomness comes from
:class:`numpy.random.Generator` instances seeded by
:class:`numpy.random.SeedSequence` from integer tuples, so images are
bit-identical across calls and processes and no global RNG state is touched.

Examples
--------
>>> from synthetic_faces import SyntheticFaces
>>> ds = SyntheticFaces(num_subjects=4, images_per_subject=5, image_size=64)
>>> item = ds[0]
>>> item["image"].shape, item["label"].dtype
(torch.Size([3, 64, 64]), torch.int64)
>>> old = ds.render(0, group=4)  # the same person, background and pose at 51+
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ages import NUM_GROUPS  # 0..4 = 10-20, 21-30, 31-40, 41-50, 51+
from indexing import check_index

__all__ = ["NUM_GROUPS", "SyntheticFaces", "train_test_split"]

MIN_IMAGE_SIZE = 64
MAX_IMAGE_SIZE = 224

# Stream tags mixed into the seed sequences so that the random streams of the
# identity, the group assignment, the per-image parameters and the split are
# independent of each other.
_TAG_IDENTITY = 1
_TAG_GROUPS = 2
_TAG_IMAGE = 3
_TAG_SPLIT = 4

#: Largest absolute within-group age jitter.
_JITTER = 0.3

_F = np.float32


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------


def _check_int(value: Any, name: str, *, low: Optional[int] = None, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    value = int(value)
    if low is not None and value < low:
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    if high is not None and value > high:
        bound = f"in [{low}, {high}]" if low is not None else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------

_HAIR_COLOURS = np.array(
    [
        [0.07, 0.06, 0.06],  # black
        [0.22, 0.13, 0.07],  # dark brown
        [0.42, 0.27, 0.13],  # brown
        [0.55, 0.23, 0.09],  # auburn
        [0.80, 0.63, 0.33],  # blonde
    ],
    dtype=_F,
)
_HAIR_PROBS = np.array([0.32, 0.28, 0.2, 0.08, 0.12])
_IRIS_COLOURS = np.array(
    [[0.30, 0.18, 0.08], [0.15, 0.10, 0.06], [0.25, 0.45, 0.65], [0.30, 0.45, 0.25]], dtype=_F
)
_SKIN_LIGHT = np.array([0.97, 0.82, 0.71], dtype=_F)
_SKIN_DARK = np.array([0.42, 0.28, 0.19], dtype=_F)
_GREY = np.array([0.70, 0.70, 0.72], dtype=_F)
_WHITE = np.array([0.95, 0.95, 0.96], dtype=_F)
_LIP = np.array([0.78, 0.36, 0.38], dtype=_F)
_SPOT = np.array([0.55, 0.40, 0.28], dtype=_F)
_NUM_SPOTS = 12

_STYLE_SHORT, _STYLE_LONG, _STYLE_BOB, _STYLE_CURLY = 0, 1, 2, 3


@dataclass(frozen=True)
class _Identity:
    """Everything about a subject that does not change with age."""

    cx: float
    cy: float
    a: float  # face half-width
    b: float  # face half-height (upper half)
    chin: float  # lower half-height multiplier
    skin: np.ndarray
    hair: np.ndarray
    style: int
    hair_vol: float
    hair_len: float
    fringe: float
    strand_freq: float
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_h: float
    iris: np.ndarray
    gaze: float
    brow_gap: float
    brow_w: float
    brow_thick: float
    brow_arch: float
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_h: float
    smile: float
    ear_h: float
    neck_w: float
    wr_curv: float
    wr_phase: float
    spots: np.ndarray  # (_NUM_SPOTS, 3): x, y, radius


@lru_cache(maxsize=2048)
def _identity(seed: int, subject: int) -> _Identity:
    r = _rng(seed, _TAG_IDENTITY, subject)
    u = r.random
    a = 0.36 + 0.08 * u()
    b = 0.49 + 0.07 * u()
    cx = 0.04 * (u() - 0.5)
    cy = 0.02 + 0.06 * (u() - 0.5)
    tone = u() ** 1.3
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
    skin = np.clip(skin * (1 + 0.06 * (r.random(3) - 0.5)), 0, 1).astype(_F)
    hair = _HAIR_COLOURS[r.choice(len(_HAIR_COLOURS), p=_HAIR_PROBS)]
    hair = np.clip(hair * (1 + 0.25 * (r.random(3) - 0.5)), 0, 1).astype(_F)
    style = int(r.integers(0, 4))
    eye_y = cy - (0.12 + 0.06 * u()) * b
    spots_u = r.uniform(-0.75, 0.75, _NUM_SPOTS)
    spots_v = r.uniform(-0.55, 0.55, _NUM_SPOTS)
    spots = np.stack(
        [cx + spots_u * a, cy + spots_v * b, r.uniform(0.010, 0.018, _NUM_SPOTS)], axis=1
    ).astype(_F)
    return _Identity(
        cx=cx,
        cy=cy,
        a=a,
        b=b,
        chin=0.95 + 0.12 * u(),
        skin=skin,
        hair=hair,
        style=style,
        hair_vol=0.05 + 0.06 * u(),
        hair_len=0.35 + 0.45 * u(),
        fringe=0.15 * u() if style != _STYLE_CURLY else 0.0,
        strand_freq=70.0 + 40.0 * u(),
        eye_dx=a * (0.40 + 0.08 * u()),
        eye_y=eye_y,
        eye_w=0.060 + 0.014 * u(),
        eye_h=0.030 + 0.008 * u(),
        iris=_IRIS_COLOURS[r.integers(0, len(_IRIS_COLOURS))],
        gaze=0.012 * (u() - 0.5),
        brow_gap=0.065 + 0.02 * u(),
        brow_w=0.065 + 0.02 * u(),
        brow_thick=0.011 + 0.006 * u(),
        brow_arch=0.01 + 0.015 * u(),
        nose_y=cy + (0.26 + 0.08 * u()) * b,
        nose_w=0.028 + 0.012 * u(),
        mouth_y=cy + (0.55 + 0.08 * u()) * b,
        mouth_w=0.10 + 0.04 * u(),
        lip_h=0.018 + 0.008 * u(),
        smile=0.012 * u(),
        ear_h=0.08 + 0.03 * u(),
        neck_w=a * (0.48 + 0.12 * u()),
        wr_curv=0.15 + 0.2 * u(),
        wr_phase=2 * math.pi * u(),
        spots=spots,
    )


@dataclass(frozen=True)
class _ImageParams:
    """Per-image randomness: age jitter, background and clothes."""

    jitter: float
    corners: np.ndarray  # (4, 3)
    stripe_col: np.ndarray
    stripe_amp: float
    stripe_freq: float
    stripe_angle: float
    stripe_phase: float
    blobs: np.ndarray  # (n, 7): x, y, sigma, strength, r, g, b
    shirt: np.ndarray


@lru_cache(maxsize=1024)
def _image_params(seed: int, subject: int, j: int) -> _ImageParams:
    r = _rng(seed, _TAG_IMAGE, subject, j)
    n_blobs = int(r.integers(2, 6))
    blobs = np.concatenate(
        [
            r.uniform(-1, 1, (n_blobs, 2)),
            r.uniform(0.08, 0.35, (n_blobs, 1)),
            r.uniform(0.2, 0.6, (n_blobs, 1)),
            r.random((n_blobs, 3)),
        ],
        axis=1,
    ).astype(_F)
    return _ImageParams(
        jitter=float(r.uniform(-_JITTER, _JITTER)),
        corners=r.uniform(0.1, 0.92, (4, 3)).astype(_F),
        stripe_col=r.random(3).astype(_F),
        stripe_amp=float(r.uniform(0.05, 0.3)),
        stripe_freq=float(r.uniform(6, 30)),
        stripe_angle=float(r.uniform(0, math.pi)),
        stripe_phase=float(r.uniform(0, 2 * math.pi)),
        blobs=blobs,
        shirt=r.uniform(0.05, 0.9, 3).astype(_F),
    )


def _subject_groups(seed: int, subject: int, n: int) -> np.ndarray:
    """Age groups of a subject's ``n`` images.

    Full blocks of five images get a seeded permutation of ``0..4``; the last
    ``r = n % 5`` images get the groups ``(subject * r + k) % 5``, k < r, in a
    seeded order, so that any five consecutive subject ids together cover every
    group equally often.
    """
    r = _rng(seed, _TAG_GROUPS, subject)
    full, rest = divmod(n, NUM_GROUPS)
    parts = [r.permutation(NUM_GROUPS) for _ in range(full)]
    if rest:
        parts.append(r.permutation((subject * rest + np.arange(rest)) % NUM_GROUPS))
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


# --------------------------------------------------------------------------
# drawing primitives
# --------------------------------------------------------------------------


class _Canvas:
    """Coordinates of an ``size x size`` image in [-1, 1] (y grows downwards)."""

    def __init__(self, size: int) -> None:
        self.size = size
        c = ((np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1).astype(_F)
        self.x = c[None, :]  # (1, W)
        self.y = c[:, None]  # (H, 1)
        self.px = _F(2.0 / size)  # pixel size in normalised units

    def window(self, x0: float, x1: float, y0: float, y1: float) -> Tuple[slice, slice]:
        """Row and column slices covering the box [x0, x1] x [y0, y1]."""
        s = self.size

        def idx(lo: float, hi: float) -> slice:
            i0 = int(math.floor((lo + 1) / 2 * s - 0.5))
            i1 = int(math.ceil((hi + 1) / 2 * s - 0.5)) + 1
            return slice(min(max(i0, 0), s), min(max(i1, 0), s))

        return idx(y0, y1), idx(x0, x1)

    def coords(self, win: Tuple[slice, slice]) -> Tuple[np.ndarray, np.ndarray]:
        ys, xs = win
        return self.x[:, xs], self.y[ys, :]

    @property
    def full(self) -> Tuple[slice, slice]:
        return slice(0, self.size), slice(0, self.size)


@lru_cache(maxsize=16)
def _canvas(size: int) -> _Canvas:
    return _Canvas(size)


def _coverage(d: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased coverage of the region ``d <= 0`` (``d`` a signed distance)."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _ellipse_sd(x, y, cx, cy, ax, ay):
    """Approximate signed distance to an axis-aligned ellipse."""
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return (r - 1.0) * min(ax, ay)


def _blend(img: np.ndarray, win, alpha: np.ndarray, colour) -> None:
    """In-place ``img = img * (1 - alpha) + colour * alpha`` on a window.

    ``colour`` is (3,) or (3, h, w).
    """
    ys, xs = win
    view = img[:, ys, xs]
    colour = np.asarray(colour, dtype=_F)
    if colour.ndim == 1:
        colour = colour[:, None, None]
    # the same arithmetic as ``view += alpha * (colour - view)``, without temporaries
    tmp = np.subtract(colour, view, dtype=_F)
    tmp *= alpha[None]
    view += tmp


def _darken(img: np.ndarray, win, amount: np.ndarray, tint=None) -> None:
    """In-place multiplicative darkening ``img *= 1 - amount * tint``."""
    ys, xs = win
    if tint is None:
        img[:, ys, xs] *= (1.0 - amount)[None]
    else:
        img[:, ys, xs] *= 1.0 - amount[None] * np.asarray(tint, _F)[:, None, None]


def _line(d: np.ndarray, width: float) -> np.ndarray:
    """Soft line profile of half-width ``width`` for a distance ``d``."""
    return np.exp(-((d / width) ** 2))


def _segments_distance(x, y, seg: np.ndarray):
    """Distances to segments ``seg`` (n, 4) = x0, y0, x1, y1 -> (n, h, w), t."""
    x0, y0, x1, y1 = (seg[:, k, None, None] for k in range(4))
    dx, dy = x1 - x0, y1 - y0
    L2 = dx * dx + dy * dy
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / L2, 0.0, 1.0)
    ex = x - x0 - t * dx
    ey = y - y0 - t * dy
    return np.sqrt(ex * ex + ey * ey), t


# --------------------------------------------------------------------------
# age schedule
# --------------------------------------------------------------------------


def _ramp(t: float, t0: float, t1: float) -> float:
    return float(min(max((t - t0) / (t1 - t0), 0.0), 1.0))


@dataclass(frozen=True)
class _Age:
    grey: float
    recede: float
    thin: float
    sag: float
    forehead: Tuple[float, ...]
    crows: float
    bags: float
    fold: float
    marionette: float
    spots: Tuple[float, ...]
    droop: float
    lips: float
    dull: float
    blush: float
    eye_close: float


def _age(t: float) -> _Age:
    """Strength of each age cue at continuous age ``t`` (group + jitter)."""
    return _Age(
        grey=_ramp(t, 0.4, 4.0),
        recede=_ramp(t, 0.8, 4.0),
        thin=_ramp(t, 1.6, 4.2),
        sag=_ramp(t, 1.2, 4.2),
        forehead=tuple(_ramp(t, 0.45 + 0.75 * k, 1.45 + 0.75 * k) for k in range(4)),
        crows=_ramp(t, 1.3, 3.6),
        bags=_ramp(t, 1.4, 4.0),
        fold=_ramp(t, 0.5, 3.5),
        marionette=_ramp(t, 2.4, 4.2),
        spots=tuple(_ramp(t, 2.3 + 0.13 * k, 2.8 + 0.13 * k) for k in range(_NUM_SPOTS)),
        droop=_ramp(t, 1.0, 4.2),
        lips=_ramp(t, 0.8, 4.2),
        dull=_ramp(t, 0.5, 4.2),
        blush=1.0 - _ramp(t, -0.3, 1.3),
        eye_close=_ramp(t, 1.5, 4.2),
    )


# --------------------------------------------------------------------------
# geometry shared by rendering and the face mask
# --------------------------------------------------------------------------


def _face_sd(idn: _Identity, x, y, sag: float):
    """Signed distance to the face outline (lower face widens with ``sag``)."""
    v = (y - idn.cy) / idn.b
    lower = v > 0
    ay = np.where(lower, idn.b * (idn.chin + 0.05 * sag), idn.b).astype(_F)
    # jowls: widen the lower half around the jaw line
    widen = 1.0 + (0.05 + 0.13 * sag) * np.exp(-(((v - 0.55) / 0.35) ** 2)) * lower
    ax = (idn.a * widen).astype(_F)
    r = np.sqrt(((x - idn.cx) / ax) ** 2 + ((y - idn.cy) / ay) ** 2)
    return (r - 1.0) * idn.a, r


def _hairline(idn: _Identity, x, recede: float):
    """y of the hairline on the face as a function of x (M-shaped recession)."""
    u = (x - idn.cx) / idn.a
    base = 0.50 - idn.fringe + 0.10 * u * u
    return idn.cy - idn.b * (base + recede * (0.22 + 0.55 * u * u))


def _hair_outer_sd(idn: _Identity, x, y, thin: float):
    """Signed distance to the hair silhouette (behind and around the face)."""
    vol = idn.hair_vol * (1.0 - 0.45 * thin)
    ax = idn.a + vol + 0.01
    ay = idn.b + vol + 0.03
    hcy = idn.cy - 0.02
    if idn.style == _STYLE_CURLY:
        theta = np.arctan2(y - hcy, x - idn.cx)
        r = np.sqrt(((x - idn.cx) / (ax + 0.04)) ** 2 + ((y - hcy) / (ay + 0.04)) ** 2)
        r = r * (1.0 + 0.045 * np.sin(14 * theta))
        d = (r - 1.0) * ax
        cut = idn.cy + 0.2 * idn.b  # curls reach down to the ears
    else:
        d = _ellipse_sd(x, y, idn.cx, hcy, ax, ay)
        cut = idn.cy - 0.15 * idn.b
    d = np.maximum(d, y - cut)  # hair above the cut line only
    if idn.style in (_STYLE_LONG, _STYLE_BOB):
        length = idn.cy + (idn.hair_len + 0.5 if idn.style == _STYLE_LONG else 0.75) * idn.b
        half_w = ax + (0.02 if idn.style == _STYLE_LONG else 0.0)
        box = np.maximum(np.abs(x - idn.cx) - half_w, np.maximum(cut - 0.03 - y, y - length))
        d = np.minimum(d, box)
    return d


def _region_alphas(idn: _Identity, cv: _Canvas, t: float, win: Tuple[slice, slice]):
    """Coverage of the face and of the hair silhouette at age t, on a window."""
    ag = _age(t)
    px = cv.px
    x, y = cv.coords(win)
    face_d, face_r = _face_sd(idn, x, y, ag.sag)
    face = _coverage(face_d, px)
    hair = _coverage(_hair_outer_sd(idn, x, y, ag.thin), px)
    return face, face_r, hair, ag


def _ears_window(idn: _Identity, cv: _Canvas) -> Tuple[slice, slice]:
    """The rows of both ears, from the left ear to the right one: coverage is
    zero outside (the ears' signed distance scales with 1 / 0.045)."""
    ear_y = idn.eye_y + 0.05
    m = 2.0 * float(cv.px)
    dy = idn.ear_h * (1.0 + 0.5 * float(cv.px) / 0.045) + m
    dx = idn.a + 0.045 + 0.5 * float(cv.px) + m
    return cv.window(idn.cx - dx, idn.cx + dx, ear_y - dy, ear_y + dy)


def _ears_alpha(idn: _Identity, cv: _Canvas, win: Tuple[slice, slice]):
    ear_y = idn.eye_y + 0.05
    x, y = cv.coords(win)
    left = _coverage(_ellipse_sd(x, y, idn.cx - idn.a, ear_y, 0.045, idn.ear_h), cv.px)
    right = _coverage(_ellipse_sd(x, y, idn.cx + idn.a, ear_y, 0.045, idn.ear_h), cv.px)
    return np.maximum(left, right)


def _head_window(idn: _Identity, cv: _Canvas) -> Tuple[slice, slice]:
    """A box holding the face, ears and hair at every age, with a 2-pixel margin.

    Every age-dependent drawing (face, ears, features, hair) has zero
    coverage outside it, so drawing only inside it changes no pixel; its
    bounds follow from the signed distances of :func:`_face_sd`,
    :func:`_hair_outer_sd` and the ears at their widest (most sag, no
    thinning). ``tests/morph_aging/test_synthetic_faces.py`` checks that the
    face mask computed on the whole canvas stays inside.
    """
    px = float(cv.px)
    m = 2.0 * px
    a, b = idn.a, idn.b
    grow = 1.0 + 0.5 * px / a  # coverage > 0 up to r < grow for face and hair
    # face: half-width up to a * 1.18 (jowls at full sag), chin at b * (chin + 0.05)
    x0, x1 = idn.cx - 1.18 * a * grow, idn.cx + 1.18 * a * grow
    y0, y1 = idn.cy - b * grow, idn.cy + b * (idn.chin + 0.05) * grow
    # ears
    ears_y, ears_x = _ears_window(idn, cv)
    ear_y = idn.eye_y + 0.05
    ear_dy = idn.ear_h * (1.0 + 0.5 * px / 0.045)
    x0, x1 = min(x0, idn.cx - a - 0.045 - 0.5 * px), max(x1, idn.cx + a + 0.045 + 0.5 * px)
    y0, y1 = min(y0, ear_y - ear_dy), max(y1, ear_y + ear_dy)
    # hair silhouette at full volume (no thinning)
    ax, ay, hcy = a + idn.hair_vol + 0.01, b + idn.hair_vol + 0.03, idn.cy - 0.02
    if idn.style == _STYLE_CURLY:
        k = (1.0 + 0.5 * px / ax) / (1.0 - 0.045)
        hx, hy = (ax + 0.04) * k, (ay + 0.04) * k
    else:
        k = 1.0 + 0.5 * px / min(ax, ay)
        hx, hy = ax * k, ay * k
    x0, x1 = min(x0, idn.cx - hx), max(x1, idn.cx + hx)
    y0, y1 = min(y0, hcy - hy), max(y1, hcy + hy)
    if idn.style in (_STYLE_LONG, _STYLE_BOB):
        length = idn.cy + (idn.hair_len + 0.5 if idn.style == _STYLE_LONG else 0.75) * b
        half_w = ax + (0.02 if idn.style == _STYLE_LONG else 0.0) + 0.5 * px
        x0, x1 = min(x0, idn.cx - half_w), max(x1, idn.cx + half_w)
        y1 = max(y1, length + 0.5 * px)
    return cv.window(x0 - m, x1 + m, y0 - m, y1 + m)


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------


def _background(img: np.ndarray, p: _ImageParams, cv: _Canvas) -> None:
    u = (cv.x + 1) * 0.5  # (1, W)
    v = (cv.y + 1) * 0.5  # (H, 1)
    c = p.corners[:, :, None, None]
    top = c[0] + (c[1] - c[0]) * u
    bottom = c[2] + (c[3] - c[2]) * u
    # img = top + (bottom - top) * v, written into img without temporaries
    np.multiply(bottom - top, v, out=img)
    img += top
    proj = cv.x * _F(math.cos(p.stripe_angle)) + cv.y * _F(math.sin(p.stripe_angle))
    stripes = np.multiply(proj, _F(p.stripe_freq))
    stripes += _F(p.stripe_phase)
    np.sin(stripes, out=stripes)
    stripes *= 0.5
    stripes += 0.5
    stripes *= _F(p.stripe_amp)
    _blend(img, cv.full, stripes, p.stripe_col)
    for bx, by, sig, strength, r, g, b in p.blobs:
        win = cv.window(bx - 2.5 * sig, bx + 2.5 * sig, by - 2.5 * sig, by + 2.5 * sig)
        xw, yw = cv.coords(win)
        alpha = strength * np.exp(-((xw - bx) ** 2 + (yw - by) ** 2) / (2 * sig * sig))
        _blend(img, win, alpha.astype(_F), (r, g, b))


def _body(img: np.ndarray, idn: _Identity, p: _ImageParams, cv: _Canvas) -> None:
    """Neck and shirt: identity and per-image only, no age."""
    px = cv.px
    m = 2.0 * float(px)
    # coverage is zero outside these windows: the neck's distance is a box's,
    # the shirt's ellipse (centre y 1.42, semi-axis 0.6) starts at y = 0.82
    neck_top = idn.cy + 0.3 * idn.b
    half = idn.neck_w + 0.5 * float(px) + m
    win = cv.window(idn.cx - half, idn.cx + half, neck_top - 0.5 * float(px) - m, 1.0)
    x, y = cv.coords(win)
    neck_d = np.maximum(np.abs(x - idn.cx) - idn.neck_w, neck_top - y)
    neck = _coverage(neck_d, px)
    shade = (1.0 - 0.25 * np.exp(-(((y - idn.cy - idn.b * idn.chin) / 0.08) ** 2))).astype(_F)
    _blend(img, win, neck, idn.skin[:, None, None] * 0.9 * shade[None])
    win = cv.window(-1.0, 1.0, 1.42 - 0.6 - 0.5 * float(px) - m, 1.0)
    x, y = cv.coords(win)
    shirt = _coverage(_ellipse_sd(x, y, idn.cx, 1.42, 0.98, 0.6), px)
    _blend(img, win, shirt, p.shirt)


def _base(idn: _Identity, p: _ImageParams, size: int) -> np.ndarray:
    """Background, neck and shirt: everything that does not depend on age."""
    cv = _canvas(size)
    img = np.empty((3, size, size), dtype=_F)
    _background(img, p, cv)
    _body(img, idn, p, cv)
    return img


@lru_cache(maxsize=2)
def _base_image(seed: int, subject: int, j: int, size: int) -> np.ndarray:
    """:func:`_base` of a subject's image ``j``, read-only: rendering one image
    at several ages draws its background once."""
    img = _base(_identity(seed, subject), _image_params(seed, subject, j), size)
    img.setflags(write=False)
    return img


@dataclass(frozen=True)
class _Scene:
    """What every feature of one render draws with.

    Attributes
    ----------
    img : numpy.ndarray
        The image being drawn, (3, H, W) float32, changed in place.
    idn : _Identity
        The subject.
    cv : _Canvas
        The image's coordinates.
    ag : _Age
        The strength of each age cue.
    vis : numpy.ndarray
        Visible skin, (H, W) float32: the face's coverage below the
        hairline, zero outside :func:`_head_window`. Features are drawn
        through it, so hair and background never take them.
    skin : numpy.ndarray
        The skin colour at this age, (3,) float32.
    lw : float
        Half-width of the wrinkle lines (at least half a pixel).
    """

    img: np.ndarray
    idn: _Identity
    cv: _Canvas
    ag: _Age
    vis: np.ndarray
    skin: np.ndarray
    lw: float


def _aged_skin(idn: _Identity, ag: _Age) -> np.ndarray:
    """The skin colour at an age: duller (towards its own grey) and slightly darker."""
    skin = idn.skin
    skin = skin + (skin.mean() - skin) * _F(0.35 * ag.dull)
    return (skin * (1 - 0.08 * ag.dull)).astype(_F)


def _visible_skin(idn: _Identity, cv: _Canvas, hw: Tuple[slice, slice], face_h: np.ndarray,
                  recede: float) -> Tuple[np.ndarray, np.ndarray]:
    """Face below the hairline.

    Parameters
    ----------
    idn : _Identity
        The subject.
    cv : _Canvas
        The image's coordinates.
    hw : (slice, slice)
        The head window (:func:`_head_window`).
    face_h : numpy.ndarray
        The face's coverage on the head window.
    recede : float
        How far the hairline has receded (:attr:`_Age.recede`).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The visible skin on the whole canvas (zero outside the head window,
        so that every feature can read its own window of it) and the
        coverage below the hairline on the head window.
    """
    xh, yh = cv.coords(hw)
    hl = _hairline(idn, xh, recede)  # (1, w)
    below_h = _coverage(hl - yh, cv.px)
    vis = np.zeros((cv.size, cv.size), _F)
    vis[hw] = face_h * below_h
    return vis, below_h


def _draw_face(s: _Scene, hw: Tuple[slice, slice], face_h: np.ndarray, face_r: np.ndarray) -> None:
    """Ears (behind the face), then the face, darker towards its edge."""
    img, idn, cv, skin = s.img, s.idn, s.cv, s.skin
    ew = _ears_window(idn, cv)
    _blend(img, ew, _ears_alpha(idn, cv, ew), skin * 0.85)
    shade = 1.0 - 0.22 * np.clip((face_r - 0.62) / 0.38, 0.0, 1.0) ** 2
    _blend(img, hw, face_h, skin[:, None, None] * shade[None].astype(_F))


def _draw_cheeks(s: _Scene) -> None:
    """Youth: rosy cheeks, fading over the first two groups."""
    img, idn, cv, ag, vis = s.img, s.idn, s.cv, s.ag, s.vis
    if ag.blush > 0:
        for sx in (-1, 1):
            ccx, ccy, sigma = idn.cx + sx * idn.a * 0.55, idn.cy + 0.2 * idn.b, 0.07
            win = cv.window(ccx - 3 * sigma, ccx + 3 * sigma, ccy - 3 * sigma, ccy + 3 * sigma)
            xw, yw = cv.coords(win)
            g = np.exp(-((xw - ccx) ** 2 + (yw - ccy) ** 2) / (2 * sigma * sigma)).astype(_F)
            _blend(img, win, 0.35 * ag.blush * g * vis[win], (0.92, 0.45, 0.45))


def _draw_forehead_wrinkles(s: _Scene) -> None:
    """Up to four lines above the brows; their number and contrast grow with age."""
    img, idn, cv, ag, vis, lw = s.img, s.idn, s.cv, s.ag, s.vis, s.lw
    brow_y = idn.eye_y - idn.brow_gap
    if any(ag.forehead):
        y_top = brow_y - 0.06 - 0.052 * 3 - 0.05
        win = cv.window(idn.cx - idn.a, idn.cx + idn.a, y_top, brow_y)
        xw, yw = cv.coords(win)
        u = (xw - idn.cx) / idn.a
        taper = np.exp(-((u / 0.62) ** 4))
        dark = np.zeros((yw.shape[0], xw.shape[1]), _F)
        for k, strength in enumerate(ag.forehead):
            if strength <= 0:
                continue
            yk = (
                brow_y
                - 0.06
                - 0.052 * k
                - idn.wr_curv * 0.25 * u * u * idn.a
                + 0.006 * np.sin(7 * u + idn.wr_phase + k)
            )
            dark += (0.55 * strength) * _line(yw - yk, lw) * taper
        _darken(img, win, np.minimum(dark, 0.7) * vis[win], (0.85, 1.0, 1.05))


def _draw_eye(s: _Scene, sx: int) -> None:
    """One eye (``sx`` -1 left, +1 right): its under-eye bag and crow's feet, then
    the sclera, iris, pupil and lid line; the eye narrows with age."""
    img, idn, cv, ag, vis, lw = s.img, s.idn, s.cv, s.ag, s.vis, s.lw
    px = cv.px
    eye_h = idn.eye_h * (1.0 - 0.25 * ag.eye_close)
    ex = idn.cx + sx * idn.eye_dx
    ey = idn.eye_y
    ew = idn.eye_w
    win = cv.window(ex - ew - 0.13, ex + ew + 0.13, ey - 0.1, ey + 0.1)
    xw, yw = cv.coords(win)
    vw = vis[win]
    # under-eye bags: a dark crescent below the eye
    if ag.bags > 0:
        bag_y = ey + eye_h + 0.018 + 0.014 * ag.bags - 0.012 * ((xw - ex) / ew) ** 2
        bag = _line(yw - bag_y, lw * 1.1) * np.exp(-(((xw - ex) / (ew * 0.9)) ** 4))
        _darken(img, win, (0.45 * ag.bags * bag * vw).astype(_F), (0.8, 1.0, 1.1))
    # crow's feet: rays from the outer corner
    if ag.crows > 0:
        ox = ex + sx * (ew + 0.012)
        angles = np.array([-0.5, -0.05, 0.4, 0.8])
        n_rays = 2 + int(round(2 * ag.crows))
        angles = angles[:n_rays]
        length = 0.04 + 0.045 * ag.crows
        seg = np.stack(
            [
                np.full_like(angles, ox),
                np.full_like(angles, ey),
                ox + sx * length * np.cos(angles),
                ey + length * np.sin(angles),
            ],
            axis=1,
        ).astype(_F)
        d, tt = _segments_distance(xw, yw, seg)
        rays = (_line(d, lw) * (1.0 - 0.6 * tt)).max(axis=0)
        _darken(img, win, (0.6 * ag.crows * rays * vw).astype(_F), (0.85, 1.0, 1.05))
    # sclera, iris, pupil, lid line
    sclera = _coverage(_ellipse_sd(xw, yw, ex, ey, ew, eye_h), px)
    _blend(img, win, sclera * vw, (0.96, 0.95, 0.93))
    ix = ex + idn.gaze
    iris = _coverage(_ellipse_sd(xw, yw, ix, ey, 0.026, 0.026), px) * sclera
    _blend(img, win, iris * vw, idn.iris)
    pupil = _coverage(_ellipse_sd(xw, yw, ix, ey, 0.011, 0.011), px) * sclera
    _blend(img, win, pupil * vw, (0.02, 0.02, 0.02))
    lid = _coverage(_ellipse_sd(xw, yw, ex, ey, ew + 0.008, eye_h + 0.010), px) - sclera
    lid = lid * (yw < ey + 0.3 * eye_h)
    _blend(img, win, (0.85 * lid * vw).astype(_F), (0.1, 0.07, 0.06))


def _draw_brows(s: _Scene) -> None:
    """Both eyebrows, greying with the hair, a little later."""
    img, idn, cv, ag, vis = s.img, s.idn, s.cv, s.ag, s.vis
    px = cv.px
    brow_y = idn.eye_y - idn.brow_gap
    brow_col = idn.hair * 0.8 + (_WHITE * 0.85 - idn.hair * 0.8) * _F(0.8 * ag.grey**1.3)
    for sx in (-1, 1):
        bx = idn.cx + sx * (idn.eye_dx + 0.005)
        win = cv.window(bx - idn.brow_w - 0.03, bx + idn.brow_w + 0.03, brow_y - 0.06, brow_y + 0.04)
        xw, yw = cv.coords(win)
        uu = (xw - bx) / idn.brow_w
        arch = brow_y - idn.brow_arch * (1 - uu * uu) + 0.01 * sx * uu
        thick = idn.brow_thick * (1.0 - 0.3 * np.clip(sx * uu, 0, 1))
        alpha = _coverage(np.maximum(np.abs(yw - arch) - thick, (np.abs(uu) - 1) * idn.brow_w), px)
        _blend(img, win, (0.9 * alpha * vis[win]).astype(_F), brow_col)


def _draw_nose(s: _Scene) -> None:
    """The nose: shading along one side of the ridge, the tip and the nostrils."""
    img, idn, cv, vis = s.img, s.idn, s.cv, s.vis
    px = cv.px
    win = cv.window(idn.cx - 0.08, idn.cx + 0.08, idn.eye_y, idn.nose_y + 0.04)
    xw, yw = cv.coords(win)
    vw = vis[win]
    ridge = _line(xw - (idn.cx + 0.55 * idn.nose_w), 0.012) * (yw > idn.eye_y + 0.04) * (yw < idn.nose_y)
    _darken(img, win, (0.12 * ridge * vw).astype(_F))
    tip = _coverage(_ellipse_sd(xw, yw, idn.cx, idn.nose_y - 0.008, idn.nose_w, 0.022), px)
    _darken(img, win, (0.06 * tip * vw).astype(_F))
    for sx in (-1, 1):
        nos = _coverage(_ellipse_sd(xw, yw, idn.cx + sx * 0.5 * idn.nose_w, idn.nose_y + 0.008, 0.011, 0.006), px)
        _darken(img, win, (0.55 * nos * vw).astype(_F))


def _draw_nasolabial_folds(s: _Scene) -> None:
    """The folds from the nose wings to past the mouth corners, deeper and longer with age."""
    img, idn, cv, ag, vis, lw = s.img, s.idn, s.cv, s.ag, s.vis, s.lw
    mw = idn.mouth_w
    if ag.fold > 0:
        win = cv.window(idn.cx - mw - 0.1, idn.cx + mw + 0.1, idn.nose_y - 0.03, idn.mouth_y + 0.1)
        xw, yw = cv.coords(win)
        dark = np.zeros((yw.shape[0], xw.shape[1]), _F)
        y0, y1 = idn.nose_y - 0.005, idn.mouth_y + 0.04 + 0.04 * ag.fold
        along = np.clip((yw - y0) / (y1 - y0), 0.0, 1.0)
        inside = (yw > y0) * (yw < y1)
        for sx in (-1, 1):
            x0 = idn.cx + sx * (idn.nose_w + 0.03)
            xc = x0 + sx * (mw - idn.nose_w + 0.005) * np.sin(along * 1.7)
            dark = np.maximum(dark, _line(xw - xc, lw * 1.1) * inside * (1.0 - 0.5 * along))
        _darken(img, win, (0.6 * ag.fold * dark * vis[win]).astype(_F), (0.8, 1.0, 1.1))


def _mouth_window(s: _Scene) -> Tuple[Tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray]:
    """The window of the mouth and the lines below it: the window, its x and y, and the visible skin in it."""
    idn, cv = s.idn, s.cv
    mw = idn.mouth_w
    win = cv.window(idn.cx - mw - 0.05, idn.cx + mw + 0.05, idn.mouth_y - 0.05, idn.mouth_y + 0.2)
    xw, yw = cv.coords(win)
    return win, xw, yw, s.vis[win]


def _draw_mouth(s: _Scene) -> None:
    """The lips and the line between them: lips thin and corners droop with age."""
    img, idn, cv, ag, skin = s.img, s.idn, s.cv, s.ag, s.skin
    px = cv.px
    mw = idn.mouth_w
    win, xw, yw, vw = _mouth_window(s)
    uu = (xw - idn.cx) / mw
    inside = np.clip(1.0 - uu * uu, 0.0, None)
    curve = idn.mouth_y + (0.03 * ag.droop - idn.smile) * uu * uu
    lip_h = idn.lip_h * (1.0 - 0.5 * ag.lips)
    prof = np.sqrt(inside)
    upper = _coverage(np.maximum(curve - yw - lip_h * 0.8 * prof, yw - curve), px) * (inside > 0)
    lower = _coverage(np.maximum(yw - curve - lip_h * 1.1 * prof, curve - yw), px) * (inside > 0)
    lip_col = skin + (_LIP - skin) * _F(0.55 - 0.2 * ag.lips)
    _blend(img, win, ((upper + lower) * vw).astype(_F), lip_col)
    mline = _line(yw - curve, max(0.006, 0.45 * float(px))) * (np.abs(uu) < 1.05)
    _darken(img, win, (0.7 * mline * vw).astype(_F))


def _draw_marionette_lines(s: _Scene) -> None:
    """Lines from the mouth corners down, in the oldest groups."""
    img, idn, ag, lw = s.img, s.idn, s.ag, s.lw
    mw = idn.mouth_w
    if ag.marionette > 0:
        win, xw, yw, vw = _mouth_window(s)
        seg = np.array(
            [
                [idn.cx + sx * (mw + 0.008), curve_c, idn.cx + sx * (mw + 0.022), curve_c + 0.09]
                for sx in (-1, 1)
                for curve_c in (idn.mouth_y + 0.03 * ag.droop - idn.smile,)
            ],
            dtype=_F,
        )
        d, tt = _segments_distance(xw, yw, seg)
        lines = (_line(d, lw) * (1.0 - 0.5 * tt)).max(axis=0)
        _darken(img, win, (0.5 * ag.marionette * lines * vw).astype(_F), (0.8, 1.0, 1.1))


def _draw_age_spots(s: _Scene) -> None:
    """Age spots, each appearing at its own age, all drawn at once in the face's bounding box."""
    img, idn, cv, ag, vis, skin = s.img, s.idn, s.cv, s.ag, s.vis, s.skin
    strength = np.asarray(ag.spots, dtype=_F)
    on = strength > 0
    if on.any():
        sp = idn.spots[on]
        sx_, sy_, sr = sp[:, 0, None, None], sp[:, 1, None, None], sp[:, 2, None, None]
        win = cv.window(idn.cx - idn.a, idn.cx + idn.a, idn.cy - idn.b, idn.cy + idn.b)
        xw, yw = cv.coords(win)
        g = np.exp(-((xw - sx_) ** 2 + (yw - sy_) ** 2) / (2 * sr * sr)) * strength[on, None, None]
        g = np.minimum(g.sum(axis=0), 1.0).astype(_F)
        _blend(img, win, 0.75 * g * vis[win], skin * _SPOT / _SPOT.max())


def _hair_strands(idn: _Identity, cv: _Canvas, xw: np.ndarray, yw: np.ndarray) -> np.ndarray:
    """The hair's texture in [-1, 1] on a window: curls, or strands fanning out from above the head."""
    if idn.style == _STYLE_CURLY:
        # three plane waves 60 degrees apart: a blobby, curly texture
        f = min(idn.strand_freq * 0.5, 0.3 * cv.size)
        strands = (
            np.sin(f * xw)
            + np.sin(f * (0.5 * xw + 0.866 * yw) + 1.0)
            + np.sin(f * (-0.5 * xw + 0.866 * yw) + 2.0)
        ) * (1.0 / 1.5)
        strands = np.clip(strands, -1.0, 1.0)
    else:
        # angular frequency capped so strands stay above ~3 pixels per period
        freq = min(idn.strand_freq, 0.4 * cv.size)
        ang = np.arctan2(xw - idn.cx, yw - (idn.cy - idn.b - 0.35))
        strands = np.sin(freq * ang + 9.0 * yw)
    return strands.astype(_F)


def _draw_hair(s: _Scene, hw: Tuple[slice, slice], face_h: np.ndarray, hair_h: np.ndarray,
               below_h: np.ndarray) -> None:
    """Hair over everything outside the visible face: strands, greying, thinning.

    ``face_h`` and ``hair_h`` are the face's and the hair silhouette's
    coverage on the head window ``hw``, ``below_h`` the coverage below the
    hairline there (:func:`_visible_skin`).
    """
    img, idn, cv, ag, vis = s.img, s.idn, s.cv, s.ag, s.vis
    size = cv.size
    hair_alpha = np.zeros((size, size), _F)
    hair_alpha[hw] = np.maximum(hair_h * (1.0 - vis[hw]), face_h * (1.0 - below_h))  # scalp above the hairline
    hy0 = idn.cy - idn.b - idn.hair_vol - 0.1
    ys, _ = cv.window(0, 0, hy0, 1.0)
    win = (slice(max(ys.start, hw[0].start), max(min(ys.stop, hw[0].stop), max(ys.start, hw[0].start))), hw[1])
    xw, yw = cv.coords(win)
    ha = hair_alpha[win]
    strands = _hair_strands(idn, cv, xw, yw)
    # greying: a blend towards grey, then white, with some streakiness
    g = ag.grey
    grey_mix = np.clip(g * (1.0 + 0.35 * (1.0 - g) * strands), 0.0, 1.0)
    target = _GREY + (_WHITE - _GREY) * _F(g)
    base = idn.hair[:, None, None] * (1.0 + 0.12 * strands)[None]
    col = base + (target[:, None, None] - base) * grey_mix[None].astype(_F)
    # thinning: lower coverage between strands so the scalp shows
    ha = ha * (1.0 - 0.45 * ag.thin * (0.5 + 0.5 * strands))
    _blend(img, win, ha.astype(_F), col)


def _render(idn: _Identity, p: _ImageParams, t: float, size: int, base: Optional[np.ndarray] = None) -> np.ndarray:
    """Image at continuous age ``t``: (3, H, W) float32 in [0, 1].

    ``base`` is :func:`_base` of the same identity and image (copied, not
    changed); drawn here when not given. Everything age-dependent is drawn
    in :func:`_head_window` only, one feature after the other: ears and
    face, cheeks, forehead wrinkles, eyes, brows, nose, nasolabial folds,
    mouth, marionette lines, age spots, and the hair over them.
    """
    cv = _canvas(size)
    img = _base(idn, p, size) if base is None else base.copy()
    hw = _head_window(idn, cv)
    face_h, face_r, hair_h, ag = _region_alphas(idn, cv, t, hw)
    vis, below_h = _visible_skin(idn, cv, hw, face_h, ag.recede)
    lw = max(0.011, 0.55 * float(cv.px))  # wrinkle half-width (>= half a pixel)
    s = _Scene(img=img, idn=idn, cv=cv, ag=ag, vis=vis, skin=_aged_skin(idn, ag), lw=lw)
    _draw_face(s, hw, face_h, face_r)
    _draw_cheeks(s)
    _draw_forehead_wrinkles(s)
    for sx in (-1, 1):
        _draw_eye(s, sx)
    _draw_brows(s)
    _draw_nose(s)
    _draw_nasolabial_folds(s)
    _draw_mouth(s)
    _draw_marionette_lines(s)
    _draw_age_spots(s)
    _draw_hair(s, hw, face_h, hair_h, below_h)
    # only darkening and hair strands can leave [0, 1], and only in the head
    # window; everything else is a convex blend of colours in [0, 1]
    view = img[:, hw[0], hw[1]]
    np.clip(view, 0.0, 1.0, out=view)
    return img


def _region(idn: _Identity, group_ts: Sequence[float], size: int, window: bool = True) -> np.ndarray:
    """Union over ages of the face, ears and hair silhouettes (H, W) bool.

    ``window=False`` evaluates the silhouettes on the whole canvas (slower;
    the tests compare it with the windowed default)."""
    cv = _canvas(size)
    mask = np.zeros((size, size), bool)
    ew = _ears_window(idn, cv)
    mask[ew] = _ears_alpha(idn, cv, ew) > 0
    hw = _head_window(idn, cv) if window else cv.full
    for t in group_ts:
        face, _, hair, _ = _region_alphas(idn, cv, t, hw)
        mask[hw] |= (face > 0) | (hair > 0)
    return mask


# --------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------


class SyntheticFaces(Dataset):
    """Procedural faces with known age group, identity and face region.

    Parameters
    ----------
    num_subjects : int, default 400
        Number of subjects (identities), ids ``0 .. num_subjects - 1``.
        Ignored when ``subjects`` is given.
    images_per_subject : int, default 5
        Images per subject, each with its own background and age group.
    image_size : int, default 64
        Side of the square images, any int in [64, 224].
    seed : int, default 0
        Non-negative seed of every random choice (identities, groups,
        backgrounds). Same seed, same images, in any process.
    subjects : sequence of int, optional
        Explicit, distinct, non-negative subject ids (e.g. one side of
        :func:`train_test_split`). Subject ``s`` looks the same in every
        dataset with the same ``seed``.

    Notes
    -----
    Image ``i`` shows subject ``subjects[i // images_per_subject]``; it is that
    subject's image ``j = i % images_per_subject``. Its age group comes from a
    seeded permutation of ``0..4`` per block of five images of the subject,
    so the groups are exactly balanced when ``images_per_subject`` is a
    multiple of 5 (and within a few percent otherwise). Its background and
    within-group age jitter come from ``(seed, subject, j)``.

    Items are dicts: ``"image"`` float32 (3, H, W) in [-1, 1], ``"label"``
    int64 age group, ``"subject"`` int64 subject id, ``"index"`` int64.
    """

    def __init__(
        self,
        num_subjects: int = 400,
        images_per_subject: int = 5,
        image_size: int = 64,
        seed: int = 0,
        subjects: Optional[Sequence[int]] = None,
    ) -> None:
        self.images_per_subject = _check_int(images_per_subject, "images_per_subject", low=1)
        self.image_size = _check_int(image_size, "image_size", low=MIN_IMAGE_SIZE, high=MAX_IMAGE_SIZE)
        self.seed = _check_int(seed, "seed", low=0)
        if subjects is None:
            n = _check_int(num_subjects, "num_subjects", low=1)
            subj = np.arange(n, dtype=np.int64)
        else:
            if isinstance(subjects, (str, bytes)) or not hasattr(subjects, "__len__"):
                raise TypeError(f"subjects must be a sequence of ints, got {type(subjects).__name__}")
            ids = [_check_int(s, f"subjects[{k}]", low=0) for k, s in enumerate(subjects)]
            if not ids:
                raise ValueError("subjects must hold at least one subject id, got an empty sequence")
            if len(set(ids)) != len(ids):
                raise ValueError(f"subjects must be distinct, got {len(ids) - len(set(ids))} duplicate id(s)")
            subj = np.asarray(ids, dtype=np.int64)
        self.subjects = subj
        self.num_subjects = len(subj)
        ips = self.images_per_subject
        self._labels = np.concatenate([_subject_groups(self.seed, int(s), ips) for s in subj])
        self._subject_of = np.repeat(subj, ips)

    # -- sizes and cheap metadata ---------------------------------------

    def __len__(self) -> int:
        return self.num_subjects * self.images_per_subject

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_subjects={self.num_subjects}, "
            f"images_per_subject={self.images_per_subject}, image_size={self.image_size}, "
            f"seed={self.seed})"
        )

    def labels(self) -> torch.Tensor:
        """Age groups of all images, (N,) int64, without rendering."""
        return torch.from_numpy(self._labels.copy())

    def subject_ids(self) -> torch.Tensor:
        """Subject ids of all images, (N,) int64, without rendering."""
        return torch.from_numpy(self._subject_of.copy())

    # -- rendering -------------------------------------------------------

    def _check_index(self, index: Any) -> int:
        return check_index(index, len(self))

    def _check_group(self, group: Any) -> int:
        return _check_int(group, "group", low=0, high=NUM_GROUPS - 1)

    def _parts(self, i: int) -> Tuple[_Identity, _ImageParams]:
        subject = int(self._subject_of[i])
        j = i % self.images_per_subject
        return _identity(self.seed, subject), _image_params(self.seed, subject, j)

    def _base(self, i: int) -> np.ndarray:
        subject = int(self._subject_of[i])
        return _base_image(self.seed, subject, i % self.images_per_subject, self.image_size)

    def render(self, index: int, group: Optional[int] = None) -> torch.Tensor:
        """Draw image ``index``'s subject and background at an age group.

        Parameters
        ----------
        index : int
            Image index in ``[0, len(self))``.
        group : int, optional
            Age group 0..4; default the image's own group.

        Returns
        -------
        torch.Tensor
            (3, H, W) float32 in [-1, 1]. ``render(i)`` equals
            ``self[i]["image"]``; pixels outside ``face_mask(i)`` are the
            same for every group.
        """
        i = self._check_index(index)
        g = int(self._labels[i]) if group is None else self._check_group(group)
        idn, p = self._parts(i)
        img = _render(idn, p, g + p.jitter, self.image_size, self._base(i))
        img *= 2.0
        img -= 1.0
        return torch.from_numpy(img)

    def render_batch(self, indices: Sequence[int], groups: Union[int, Sequence[int], None] = None) -> torch.Tensor:
        """Draw several images, (B, 3, H, W) float32 in [-1, 1].

        Parameters
        ----------
        indices : sequence of int or 1-D tensor
            Image indices (B of them).
        groups : int, sequence of int, 1-D tensor or None
            One group for all images, one per image, or None for each
            image's own group.
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.reshape(-1).tolist()
        indices = list(indices)
        if not indices:
            raise ValueError("indices must hold at least one index, got an empty sequence")
        if groups is None or isinstance(groups, (int, np.integer)) and not isinstance(groups, bool):
            groups_list = [groups] * len(indices)
        else:
            if isinstance(groups, torch.Tensor):
                groups = groups.reshape(-1).tolist()
            groups_list = list(groups)
            if len(groups_list) != len(indices):
                raise ValueError(
                    f"groups must be an int or hold one group per index ({len(indices)}), got {len(groups_list)}"
                )
        return torch.stack([self.render(i, g) for i, g in zip(indices, groups_list)])

    def face_mask(self, index: int) -> torch.Tensor:
        """Face, ears and hair region of image ``index`` over all age groups.

        Returns
        -------
        torch.Tensor
            (1, H, W) float32 in {0, 1}: 1 where any age group draws face or
            hair. Everything outside is background, neck and shirt, which
            aging never changes.
        """
        i = self._check_index(index)
        idn, p = self._parts(i)
        ts = [g + p.jitter for g in range(NUM_GROUPS)]
        mask = _region(idn, ts, self.image_size)
        return torch.from_numpy(mask.astype(np.float32))[None]

    def __getitem__(self, index: Any) -> Dict[str, torch.Tensor]:
        i = self._check_index(index)
        return {
            "image": self.render(i),
            "label": torch.tensor(int(self._labels[i]), dtype=torch.int64),
            "subject": torch.tensor(int(self._subject_of[i]), dtype=torch.int64),
            "index": torch.tensor(i, dtype=torch.int64),
        }


def train_test_split(
    num_subjects: int = 400,
    images_per_subject: int = 5,
    image_size: int = 64,
    seed: int = 0,
    test_fraction: float = 0.1,
) -> Tuple[SyntheticFaces, SyntheticFaces]:
    """Split subjects ``0 .. num_subjects - 1`` into train and test datasets.

    Parameters
    ----------
    num_subjects, images_per_subject, image_size, seed
        As for :class:`SyntheticFaces`; ``num_subjects >= 2``.
    test_fraction : float, default 0.1
        Fraction of subjects in the test set, in (0, 1); at least one subject
        goes to each side. The paper uses 90/10 with no subject on both sides.

    Returns
    -------
    (SyntheticFaces, SyntheticFaces)
        Train and test datasets with disjoint subject sets, the same seed (a
        subject looks the same as in the unsplit dataset), deterministic.
    """
    n = _check_int(num_subjects, "num_subjects", low=2)
    seed = _check_int(seed, "seed", low=0)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)):
        raise TypeError(f"test_fraction must be a float, got {type(test_fraction).__name__}")
    if not (0.0 < float(test_fraction) < 1.0):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = min(max(int(round(n * float(test_fraction))), 1), n - 1)
    perm = _rng(seed, _TAG_SPLIT, n).permutation(n)
    test = np.sort(perm[:n_test])
    train = np.sort(perm[n_test:])
    kw = dict(images_per_subject=images_per_subject, image_size=image_size, seed=seed)
    return (
        SyntheticFaces(subjects=train.tolist(), **kw),
        SyntheticFaces(subjects=test.tolist(), **kw),
    )
