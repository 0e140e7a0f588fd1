"""Real face-aging datasets: file-name parsers, age groups, splits, loading.

The AcGAN example trains on the public face-aging datasets as they are
distributed, reading age (and identity where known) from each dataset's own
file-naming convention:

============  ==============================================  ===========
kind          file name                                       subject
============  ==============================================  ===========
``morph``     ``{subject}_{n}{M|F}{age}.JPG``                 ``subject``
              e.g. ``001234_1M46.JPG`` (MORPH album 2)
``cacd``      ``{age}_{First_Last}_{nnnn}.jpg``               the name
              e.g. ``53_Robert_Downey_Jr_0002.jpg``
``utkface``   ``{age}_{gender}_{race}_{datetime}.jpg``        unknown
              (optionally ``.jpg.chip.jpg``)
``fgnet``     ``{subject:03d}A{age:02d}[a|b].JPG``            ``subject``
              e.g. ``002A16.JPG``, ``078a11b.jpg``
``csv``       a CSV with header ``path,age[,subject]``,       column
              paths relative to the CSV's folder
============  ==============================================  ===========

Every parser also accepts the other image extensions (jpg, jpeg, png, bmp,
webp, any case) and returns a :class:`FaceRecord`; a name that does not
follow the convention raises :class:`DatasetError` naming the path.

:func:`scan_dataset` walks a folder (or reads a CSV), :func:`subject_split`
makes the paper's 90/10 split with no subject on both sides, and
:class:`FaceImageDataset` loads images into the same item layout as
:class:`synthetic_faces.SyntheticFaces`.

Age groups (:mod:`ages`) follow the paper: 10-20, 21-30, 31-40,
41-50, 51+. Ages below 10 are outside the paper's groups and raise
:class:`ValueError` unless ``clip_young=True`` maps them to group 0 (UTKFace
and FG-NET contain children).
"""

from __future__ import annotations

import csv
import math
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ages import MIN_AGE, age_to_group
from indexing import check_index
from pictures import dequantize, from_uint8, to_rgb

__all__ = [
    "DATASET_KINDS",
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "DatasetWarning",
    "FaceImageDataset",
    "FaceRecord",
    "SkippedFilesWarning",
    "age_groups",
    "load_image",
    "parse_cacd",
    "parse_csv",
    "parse_fgnet",
    "parse_morph",
    "parse_utkface",
    "scan_dataset",
    "subject_split",
]

_MAX_PLAUSIBLE_AGE = 130

#: Image file extensions :func:`scan_dataset` picks up (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Values of ``kind`` accepted by :func:`scan_dataset`.
DATASET_KINDS = ("auto", "morph", "cacd", "utkface", "fgnet", "csv")

_MAX_LISTED = 10

# Decoders tried on a file whatever its extension (a ".jpg" that is really a
# PNG loads); other formats PIL knows (TGA, PCX, ...) are refused so that
# stray non-image bytes are never decoded as an image.
Image.init()
_PIL_FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "BMP", "WEBP", "GIF", "TIFF") if f in Image.OPEN)


class DatasetError(ValueError):
    """A face dataset file or folder that cannot be used; the message names it."""


class DatasetWarning(UserWarning):
    """Something in a dataset was skipped or is weaker than it looks."""


class SkippedFilesWarning(DatasetWarning):
    """Files (or CSV rows) of a dataset skipped as unusable: ``summary`` says how many and where,
    ``skipped`` lists every one (``str()`` names the first few)."""

    def __init__(self, summary: str, skipped: Sequence[str]) -> None:
        self.summary, self.skipped = summary, list(skipped)
        super().__init__(f"{summary}: {_listing(self.skipped, ', ')}")


@dataclass(frozen=True)
class FaceRecord:
    """One face image with its age and, when known, its subject.

    Attributes
    ----------
    path : pathlib.Path
        The image file.
    age : int or float
        Age in years (an int for every file-name convention; CSV ages may be
        fractional).
    subject : str or None
        Identity key, ``None`` when the dataset does not record identities
        (UTKFace, CSV without a ``subject`` column).
    """

    path: Path
    age: Union[int, float]
    subject: Optional[str]


# --------------------------------------------------------------------------
# file-name parsers
# --------------------------------------------------------------------------

_EXT = r"\.(?:jpe?g|png|bmp|webp)"
_MORPH_RE = re.compile(r"([0-9]+)_([0-9]+)([MF])([0-9]{1,3})" + _EXT, re.IGNORECASE | re.ASCII)
_CACD_RE = re.compile(r"([0-9]{1,3})_([A-Za-z][^/\\]*?)_([0-9]+)" + _EXT, re.IGNORECASE | re.ASCII)
_UTK_RE = re.compile(r"([0-9]{1,3})_([01])_([0-4])_([0-9]+)" + _EXT + r"(?:\.chip\.jpe?g)?", re.IGNORECASE | re.ASCII)
_FGNET_RE = re.compile(r"([0-9]{3})A([0-9]{2})([ab])?" + _EXT, re.IGNORECASE | re.ASCII)


def _as_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    try:
        return Path(path)
    except (TypeError, ValueError) as exc:  # e.g. a PathLike returning bytes
        raise DatasetError(f"{name} {path!r} is not a usable path: {exc}") from exc


def _match(regex: re.Pattern, path: Any, convention: str) -> Tuple[Path, "re.Match[str]"]:
    p = _as_path(path)
    m = regex.fullmatch(p.name)
    if m is None:
        raise DatasetError(f"{str(p)!r} does not follow the {convention} file-name convention")
    return p, m


def _age_field(text: str, p: Path) -> int:
    age = int(text)
    if age > _MAX_PLAUSIBLE_AGE:
        raise DatasetError(f"{str(p)!r}: age {age} in the file name is not plausible (> {_MAX_PLAUSIBLE_AGE})")
    return age


def parse_morph(path: Union[str, os.PathLike]) -> FaceRecord:
    """Parse a MORPH album 2 name ``{subject}_{n}{M|F}{age}.JPG``.

    >>> r = parse_morph("Album2/001234_1M46.JPG")
    >>> r.age, r.subject
    (46, '001234')
    """
    p, m = _match(_MORPH_RE, path, "MORPH ({subject}_{n}{M|F}{age}.JPG)")
    return FaceRecord(p, _age_field(m.group(4), p), m.group(1))


def parse_cacd(path: Union[str, os.PathLike]) -> FaceRecord:
    """Parse a CACD2000 name ``{age}_{First_Last}_{nnnn}.jpg``; subject = name.

    >>> r = parse_cacd("53_Robert_Downey_Jr_0002.jpg")
    >>> r.age, r.subject
    (53, 'Robert_Downey_Jr')
    """
    p, m = _match(_CACD_RE, path, "CACD2000 ({age}_{First_Last}_{nnnn}.jpg)")
    return FaceRecord(p, _age_field(m.group(1), p), m.group(2))


def parse_utkface(path: Union[str, os.PathLike]) -> FaceRecord:
    """Parse a UTKFace name ``{age}_{gender}_{race}_{datetime}.jpg[.chip.jpg]``.

    UTKFace records no identity, so ``subject`` is ``None``.

    >>> parse_utkface("26_0_1_20170116171048641.jpg.chip.jpg").age
    26
    """
    p, m = _match(_UTK_RE, path, "UTKFace ({age}_{gender}_{race}_{datetime}.jpg)")
    return FaceRecord(p, _age_field(m.group(1), p), None)


def parse_fgnet(path: Union[str, os.PathLike]) -> FaceRecord:
    """Parse an FG-NET name ``{subject:03d}A{age:02d}[a|b].JPG`` (any case).

    >>> r = parse_fgnet("078a11b.jpg")
    >>> r.age, r.subject
    (11, '078')
    """
    p, m = _match(_FGNET_RE, path, "FG-NET ({subject:03d}A{age:02d}[a|b].JPG)")
    return FaceRecord(p, _age_field(m.group(2), p), m.group(1))


_PARSERS: Dict[str, Callable[[Any], FaceRecord]] = {
    "morph": parse_morph,
    "cacd": parse_cacd,
    "utkface": parse_utkface,
    "fgnet": parse_fgnet,
}


def _parse_csv(csv_path: Path) -> Tuple[List[FaceRecord], List[str]]:
    """Records of a CSV and the descriptions of its bad rows."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read CSV {str(csv_path)!r}: {exc}") from exc
    if not rows:
        raise DatasetError(f"CSV {str(csv_path)!r} is empty; expected a header 'path,age[,subject]'")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("path", "age") if c not in header]
    if missing:
        raise DatasetError(
            f"CSV {str(csv_path)!r} must have a header with columns path,age[,subject], "
            f"got {rows[0]!r} (missing {', '.join(missing)})"
        )
    ip, ia = header.index("path"), header.index("age")
    isub = header.index("subject") if "subject" in header else None
    folder = csv_path.parent
    records: List[FaceRecord] = []
    bad: List[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{csv_path}:{line}"
        if len(row) <= max(ip, ia, isub if isub is not None else 0):
            bad.append(f"{where}: expected {len(header)} columns, got {len(row)}")
            continue
        rel = row[ip].strip()
        if not rel:
            bad.append(f"{where}: empty path")
            continue
        try:
            age_f = float(row[ia])
        except ValueError:
            bad.append(f"{where}: age {row[ia]!r} is not a number")
            continue
        if not math.isfinite(age_f) or age_f < 0 or age_f > _MAX_PLAUSIBLE_AGE:
            bad.append(f"{where}: age {row[ia]!r} is not in [0, {_MAX_PLAUSIBLE_AGE}]")
            continue
        age: Union[int, float] = int(age_f) if age_f.is_integer() else age_f
        subject = row[isub].strip() if isub is not None else ""
        path = Path(rel)
        if not path.is_absolute():
            path = folder / path
        if not path.is_file():
            bad.append(f"{where}: image {str(path)!r} does not exist")
            continue
        records.append(FaceRecord(path, age, subject or None))
    return records, bad


def parse_csv(csv_path: Union[str, os.PathLike], *, strict: bool = True) -> List[FaceRecord]:
    """Read a generic CSV with header ``path,age[,subject]``.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file (UTF-8, an optional BOM). Column names are
        case-insensitive; extra columns are ignored. Relative image paths are
        relative to the CSV's folder. An empty ``subject`` cell means unknown.
    strict : bool, default True
        Rows with a bad age or a missing image raise :class:`DatasetError`
        (listing up to 10 of them and the count); with ``strict=False`` they
        are skipped with a :class:`DatasetWarning`.
    """
    p = _as_path(csv_path, "csv_path")
    records, bad = _parse_csv(p)
    _handle_bad(bad, strict, f"CSV {str(p)!r}", "rows")
    if not records:
        raise DatasetError(f"CSV {str(p)!r} lists no usable images")
    return records


# --------------------------------------------------------------------------
# scanning a folder
# --------------------------------------------------------------------------


def _listing(items: Sequence[str], sep: str) -> str:
    """The first :data:`_MAX_LISTED` of ``items`` joined by ``sep``, then how many more there are."""
    more = f"{sep}... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return sep.join(items[:_MAX_LISTED]) + more


def _handle_bad(bad: Sequence[str], strict: bool, where: str, what: str) -> None:
    if not bad:
        return
    if strict:
        sep = "\n  "
        raise DatasetError(
            f"{len(bad)} {what} in {where} could not be used (pass strict=False, on the command line "
            f"--skip-bad-files, to skip them):{sep}{_listing(bad, sep)}"
        )
    warnings.warn(SkippedFilesWarning(f"skipped {len(bad)} {what} in {where} that could not be used", bad),
                  stacklevel=3)


def _list_images(root: Path) -> List[Path]:
    """Image files under ``root``, recursively, sorted; hidden entries skipped.

    Regular files only (or links to them): a FIFO, socket or device named
    like an image is passed over, never opened (opening a FIFO blocks).
    Linked folders are not followed (as :func:`os.walk`).
    """
    found: List[Path] = []
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue  # an unreadable subfolder holds nothing usable
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif (os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
                      and entry.is_file(follow_symlinks=True)):  # S_ISREG of the file or its link's target
                    found.append(Path(entry.path))
            except OSError:
                continue
    return sorted(found)


def _is_regular_file(path: Any) -> bool:
    """Whether ``path`` is a regular file (or a link to one), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _folder_csvs(root: Path) -> Tuple[List[Path], List[Path]]:
    """The top-level CSVs of ``root``: those with ``path`` and ``age`` columns (one of them is the
    dataset's list), and the others."""
    hits, others = [], []
    for f in sorted(root.iterdir()):
        if f.is_file() and f.suffix.lower() == ".csv" and not f.name.startswith("."):
            try:
                with open(f, newline="", encoding="utf-8-sig") as fh:
                    header = [h.strip().lower() for h in next(csv.reader(fh), [])]
            except (OSError, UnicodeDecodeError, csv.Error):
                header = []
            (hits if "path" in header and "age" in header else others).append(f)
    return hits, others


def scan_dataset(
    root: Union[str, os.PathLike], kind: str = "auto", *, strict: bool = True
) -> List[FaceRecord]:
    """List the face images of a dataset with their ages and subjects.

    Parameters
    ----------
    root : str or os.PathLike
        A folder of images (searched recursively; hidden files and folders
        skipped) or a CSV file.
    kind : {"auto", "morph", "cacd", "utkface", "fgnet", "csv"}
        File-name convention. ``"auto"``: a CSV file is read as CSV; a folder
        holding exactly one top-level CSV with ``path`` and ``age`` columns
        is read through that CSV; otherwise the convention that parses the
        most file names wins (ties in the order morph, cacd, utkface, fgnet).
    strict : bool, default True
        Image files that do not parse (or CSV rows that cannot be used)
        raise :class:`DatasetError` listing up to 10 of them and the count;
        with ``strict=False`` they are skipped with a :class:`DatasetWarning`
        naming the count.

    Returns
    -------
    list of FaceRecord
        Sorted by path.

    Raises
    ------
    DatasetError
        Missing root, a folder without images, no convention that parses any
        file, or bad files with ``strict=True``.
    """
    if not isinstance(kind, str) or kind not in DATASET_KINDS:
        raise ValueError(f"kind must be one of {', '.join(repr(k) for k in DATASET_KINDS)}, got {kind!r}")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
    root_p = _as_path(root, "root")
    if not root_p.exists():
        raise DatasetError(f"dataset root {str(root_p)!r} does not exist")
    if not root_p.is_dir() and not _is_regular_file(root_p):
        raise DatasetError(f"dataset root {str(root_p)!r} is neither a folder nor a regular file")

    if root_p.is_file():
        if kind not in ("auto", "csv") or root_p.suffix.lower() != ".csv":
            raise DatasetError(
                f"dataset root {str(root_p)!r} is a file; only a CSV file (kind 'csv' or 'auto') can be a root, "
                f"got kind {kind!r}"
            )
        return sorted(parse_csv(root_p, strict=strict), key=lambda r: str(r.path))

    if kind in ("auto", "csv"):
        csv_files, others = _folder_csvs(root_p)
        if len(csv_files) == 1:
            return sorted(parse_csv(csv_files[0], strict=strict), key=lambda r: str(r.path))
        if kind == "csv":
            if csv_files:
                found = (f"found {len(csv_files)} in {str(root_p)!r} ({_listing([f.name for f in csv_files], ', ')}): "
                         "name the one to read as the root (on the command line --data FOLDER/NAME.csv)")
            elif others:
                found = (f"found none in {str(root_p)!r}: its {len(others)} CSV file(s) "
                         f"({_listing([f.name for f in others], ', ')}) lack a path or an age column")
            else:
                found = f"found none in {str(root_p)!r}"
            raise DatasetError(
                f"kind 'csv' needs a CSV file or a folder with exactly one top-level CSV "
                f"having path and age columns; {found}"
            )

    files = _list_images(root_p)
    if not files:
        raise DatasetError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {str(root_p)!r} or its subfolders"
        )

    if kind == "auto":
        counts = {}
        for name, parser in _PARSERS.items():
            n = 0
            for f in files:
                try:
                    parser(f)
                    n += 1
                except DatasetError:
                    pass
            counts[name] = n
        kind = max(_PARSERS, key=lambda k: counts[k])  # first of the best on ties
        if counts[kind] == 0:
            examples = ", ".join(repr(f.name) for f in files[:3])
            raise DatasetError(
                f"none of the {len(files)} images in {str(root_p)!r} follows a known file-name convention "
                f"(tried {', '.join(_PARSERS)}; e.g. {examples}); use kind='csv' (on the command line "
                f"--data-kind csv) with a path,age[,subject] CSV"
            )

    parser = _PARSERS[kind]
    records: List[FaceRecord] = []
    bad: List[str] = []
    for f in files:
        try:
            records.append(parser(f))
        except DatasetError:
            bad.append(str(f))
    _handle_bad(bad, strict, f"{str(root_p)!r} ({kind} convention)", "images")
    if not records:
        raise DatasetError(f"no image in {str(root_p)!r} follows the {kind} file-name convention")
    return records


# --------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------


def subject_split(
    records: Sequence[FaceRecord], test_fraction: float = 0.1, seed: int = 0
) -> Tuple[List[FaceRecord], List[FaceRecord]]:
    """Split records into train and test with no subject on both sides.

    Parameters
    ----------
    records : sequence of FaceRecord
        At least two records (two subjects when subjects are known).
    test_fraction : float, default 0.1
        Fraction of subjects (or of images, see below) in the test set, in
        (0, 1); at least one goes to each side. The paper uses 0.1.
    seed : int, default 0
        Seed of the shuffle; the split is deterministic and does not depend
        on the order of ``records``.

    Returns
    -------
    (list of FaceRecord, list of FaceRecord)
        Train and test records, each in the input order.

    Notes
    -----
    When any record's subject is ``None`` (UTKFace, CSV without subjects) the
    images are split at random instead and a :class:`DatasetWarning` says
    that identities may repeat across the split.
    """
    records = list(records)
    for k, r in enumerate(records):
        if not isinstance(r, FaceRecord):
            raise TypeError(f"records[{k}] must be a FaceRecord, got {type(r).__name__}")
    if len(records) < 2:
        raise ValueError(f"records must hold at least 2 records to split, got {len(records)}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)):
        raise TypeError(f"test_fraction must be a float, got {type(test_fraction).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 5]))

    def n_test(n: int) -> int:
        return min(max(int(round(n * float(test_fraction))), 1), n - 1)

    if any(r.subject is None for r in records):
        warnings.warn(
            "some records have no subject (e.g. UTKFace): splitting images at random, "
            "so the same identity may appear in both train and test",
            DatasetWarning,
            stacklevel=2,
        )
        order = sorted(range(len(records)), key=lambda k: (str(records[k].path), k))
        perm = rng.permutation(len(records))
        test_idx = {order[k] for k in perm[: n_test(len(records))]}
    else:
        subjects = sorted({r.subject for r in records})  # type: ignore[type-var]
        if len(subjects) < 2:
            raise ValueError(f"records must hold at least 2 subjects to split by subject, got {len(subjects)}")
        perm = rng.permutation(len(subjects))
        test_subjects = {subjects[k] for k in perm[: n_test(len(subjects))]}
        test_idx = {k for k, r in enumerate(records) if r.subject in test_subjects}
    train = [r for k, r in enumerate(records) if k not in test_idx]
    test = [r for k, r in enumerate(records) if k in test_idx]
    return train, test


# --------------------------------------------------------------------------
# image loading
# --------------------------------------------------------------------------


def open_rgb(path: Path, *, draft: Optional[int] = None) -> Image.Image:
    """Decode an image file to RGB, or raise DatasetError naming it.

    Parameters
    ----------
    path : pathlib.Path
        The image file.
    draft : int, optional
        Smallest side needed. A JPEG at least twice as large on both sides is
        then decoded at 1/2, 1/4 or 1/8 of its size in the DCT domain
        (``PIL.Image.Image.draft``), keeping both sides >= ``draft``: several
        times faster than decoding every pixel and then shrinking. Default:
        decode every pixel (other formats always are).
    """
    if not _is_regular_file(path):  # a FIFO would block the open, a folder fail obscurely
        what = "does not exist" if not os.path.lexists(path) else "is not a regular file"
        raise DatasetError(f"cannot read image {str(path)!r}: it {what}")
    try:
        with Image.open(path, formats=_PIL_FORMATS) as im:
            if draft is not None:
                im.draft(None, (draft, draft))
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = to_rgb(im)
            rgb.load()
    except DatasetError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt data
        raise DatasetError(f"cannot read image {str(path)!r}: {type(exc).__name__}: {exc}") from None
    if rgb.width < 1 or rgb.height < 1:
        raise DatasetError(f"image {str(path)!r} is empty ({rgb.width}x{rgb.height})")
    return rgb


def load_image(path: Union[str, os.PathLike], image_size: int, *, draft: bool = True) -> torch.Tensor:
    """Load a face image as a (3, H, W) float32 tensor in [-1, 1].

    The file is decoded, rotated by its EXIF orientation, converted to RGB
    from any mode (grey, palette, alpha composited on white, 16-bit scaled to
    8-bit, CMYK), and the centred square of side ``min(w, h)`` is resized to
    ``image_size`` (bicubic, antialiased, Keys a = -0.5 as in PIL) -- i.e. the
    shorter side is resized to ``image_size`` and the image centre-cropped.
    Images smaller than ``image_size`` are upsampled.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    image_size : int
        Side of the output, in [8, 4096].
    draft : bool, default True
        Let the JPEG decoder shrink a file at least twice ``image_size`` on
        both sides by 1/2, 1/4 or 1/8 in the DCT domain before the resize
        (see :func:`open_rgb`). False decodes every pixel.

    Returns
    -------
    torch.Tensor
        (3, image_size, image_size) float32 in [-1, 1], contiguous.

    Raises
    ------
    DatasetError
        For a missing, unreadable, truncated or corrupt file, naming the path.

    Notes
    -----
    The resize runs on the 8-bit pixels with
    :func:`torch.nn.functional.interpolate` (``antialias=True``), several
    times faster than PIL's and within 3 of 255 levels (0.005 on average) of
    ``PIL.Image.resize(..., BICUBIC)``; where torch lacks that kernel, PIL
    resizes. The crop starts at whole pixels, ``(w - side) // 2``.
    """
    p = _as_path(path)
    size = _check_size(image_size)
    if not isinstance(draft, bool):
        raise TypeError(f"draft must be a bool, got {type(draft).__name__}")
    im = open_rgb(p, draft=size if draft else None)
    try:
        pixels = _square_resize(im, size)
    except Exception as exc:
        raise DatasetError(f"cannot resize image {str(p)!r}: {type(exc).__name__}: {exc}") from None
    return dequantize(pixels)  # uint8 (3, S, S) of any strides -> contiguous float32


#: Whether :func:`_square_resize` uses torch's 8-bit antialiased bicubic
#: kernel; False (after a failure, or set by a test) resizes with PIL.
_TORCH_RESIZE = True


def _square_resize(im: Image.Image, size: int) -> torch.Tensor:
    """The centred square of an RGB image resized to ``size``: (3, size, size) uint8."""
    global _TORCH_RESIZE
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    if _TORCH_RESIZE:
        hwc = torch.from_numpy(np.array(im, dtype=np.uint8))  # (h, w, 3), a private copy
        x = hwc[top:top + side, left:left + side].permute(2, 0, 1)
        if side == size:
            return x
        try:
            return F.interpolate(x[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
        except (RuntimeError, NotImplementedError):  # pragma: no cover - a torch without the uint8 kernel
            _TORCH_RESIZE = False
    im = im.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    return torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)


def _check_size(image_size: Any) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise TypeError(f"image_size must be an int, got {type(image_size).__name__} ({image_size!r})")
    if not 8 <= int(image_size) <= 4096:
        raise ValueError(f"image_size must be in [8, 4096], got {image_size}")
    return int(image_size)


# --------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------


def age_groups(records: Sequence[FaceRecord], *, clip_young: bool = False) -> np.ndarray:
    """The age group of each record, int64 (:func:`ages.age_to_group`).

    Raises :class:`DatasetError` when some ages have no group (below 10
    without ``clip_young``), counting them among ``records`` and naming the
    first; checking a whole dataset before it is split counts them all.

    >>> records = [FaceRecord(Path(f"{a}_0_0_1.jpg"), a, None) for a in (4, 30, 7)]
    >>> age_groups(records, clip_young=True).tolist()
    [0, 1, 0]
    >>> age_groups(records)
    Traceback (most recent call last):
    ...
    face_datasets.DatasetError: 2 of 3 images have unusable ages, e.g. '4_0_0_1.jpg' with age 4: ages must be >= 10 ...
    """
    ages = np.array([float(r.age) for r in records], dtype=np.float64)
    try:
        return age_to_group(ages, clip_young=clip_young)
    except ValueError:
        low = 0 if clip_young else MIN_AGE
        bad = [r for r in records if not (math.isfinite(float(r.age)) and float(r.age) >= low)]
        first = bad[0] if bad else records[0]
        try:  # the reason for the first one alone, without its position among the records
            age_to_group(np.float64(first.age), clip_young=clip_young)
            reason = "no age group"
        except ValueError as exc:
            reason = str(exc)
        raise DatasetError(f"{len(bad)} of {len(records)} images have unusable ages, e.g. {str(first.path)!r} with "
                           f"age {first.age!r}: {reason}") from None


class FaceImageDataset(Dataset):
    """Face images with age groups, in the layout of ``SyntheticFaces``.

    Parameters
    ----------
    records : sequence of FaceRecord
        From :func:`scan_dataset` / :func:`subject_split`; at least one.
    image_size : int
        Side of the square output images (shorter side resized, then centre
        crop; smaller images are upsampled), in [8, 4096].
    clip_young : bool, default False
        Passed to :func:`ages.age_to_group`: ages below 10 raise
        :class:`DatasetError` (naming the first such file) unless True, which
        puts them in group 0.
    draft : bool, default True
        Passed to :func:`load_image`: large JPEGs are shrunk while decoding.
    crop : face_align.Crop, optional
        Align each photo with this crop (:meth:`face_align.Crop.align`,
        needs the ``face`` extra) instead of taking its centre square; a
        photo in which no face is found raises ``face_align.NoFaceError``
        (a ValueError) naming its path.

    Notes
    -----
    Items are dicts: ``"image"`` float32 (3, H, W) in [-1, 1], ``"label"``
    int64 age group, ``"subject"`` int64 (-1 when unknown), ``"index"``
    int64; subjects are numbered from 0 in the sorted order of their names.
    A file that cannot be decoded raises :class:`DatasetError` naming its path.
    """

    def __init__(
        self,
        records: Sequence[FaceRecord],
        image_size: int,
        *,
        clip_young: bool = False,
        draft: bool = True,
        crop: Optional[Any] = None,
    ) -> None:
        records = list(records)
        if not records:
            raise ValueError("records must hold at least one FaceRecord, got an empty sequence")
        for k, r in enumerate(records):
            if not isinstance(r, FaceRecord):
                raise TypeError(f"records[{k}] must be a FaceRecord, got {type(r).__name__}")
        self.records = records
        self.image_size = _check_size(image_size)
        if not isinstance(draft, bool):
            raise TypeError(f"draft must be a bool, got {type(draft).__name__}")
        self.draft = draft
        if crop is not None:
            from face_align import Crop

            if not isinstance(crop, Crop):
                raise TypeError(f"crop must be a face_align.Crop or None, got {type(crop).__name__}")
        self.crop = crop
        self._labels = age_groups(records, clip_young=clip_young)
        names = sorted({r.subject for r in records if r.subject is not None})
        index = {s: k for k, s in enumerate(names)}
        self._subjects = np.array([-1 if r.subject is None else index[r.subject] for r in records], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, image_size={self.image_size})"

    def labels(self) -> torch.Tensor:
        """Age groups of all images, (N,) int64, without loading images."""
        return torch.from_numpy(self._labels.copy())

    def subject_ids(self) -> torch.Tensor:
        """Subject ids of all images, (N,) int64 (-1 = unknown), without loading."""
        return torch.from_numpy(self._subjects.copy())

    def _check_index(self, index: Any) -> int:
        return check_index(index, len(self))

    def _image(self, path: Path) -> torch.Tensor:
        if self.crop is None:
            return load_image(path, self.image_size, draft=self.draft)
        import face_align

        try:
            face = self.crop.align(open_rgb(path), self.image_size)
        except face_align.NoFaceError as exc:
            raise face_align.NoFaceError(f"{str(path)!r}: {exc}") from None
        return from_uint8(np.asarray(face))

    def __getitem__(self, index: Any) -> Dict[str, torch.Tensor]:
        i = self._check_index(index)
        r = self.records[i]
        return {
            "image": self._image(r.path),
            "label": torch.tensor(int(self._labels[i]), dtype=torch.int64),
            "subject": torch.tensor(int(self._subjects[i]), dtype=torch.int64),
            "index": torch.tensor(i, dtype=torch.int64),
        }
