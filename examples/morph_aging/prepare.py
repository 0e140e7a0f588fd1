"""Align a face dataset once: every photo cropped as the model should learn it.

::

    python examples/morph_aging/prepare.py DATASET --out FOLDER [--crop head|tight] [--margin M] \\
        [--size 224] [--workers N] [--jpeg-quality 95] [--limit N] [--no-progress]

Every image under ``DATASET`` (searched recursively, hidden files skipped,
as the loaders search) is aligned with ``face_align.align_face`` and written
to ``FOLDER`` under the same relative path and file name, so that the
loaders of ``face_datasets.py`` read ages and subjects from the names as
before (``001A02.JPG``, ``26_0_1_20170116171048641.jpg.chip.jpg``). Each
file is written in the format its name says: JPEG (the datasets' own
format) at quality 95 without chroma subsampling (4:4:4), PNG, BMP or
lossless WebP. A dataset described by a CSV (``path,age[,subject]``) keeps
working: the folder's top-level CSV files are copied beside the images.

Crops (``--crop``; see ``face_align.py``): ``head`` (the default) is the
whole head with hair and beard, the paper's "10% more area, thus not only
hair but also beard are all covered" and the crop that shows greying hair;
``tight`` is dlib's inner-face chip. ``--margin`` adds a border (default:
the crop's own, 0 for head, 0.1 for tight). Where the crop leaves the
photo (UTKFace's 200-pixel chips are cut close to the face: their head crop
is about 310 pixels), the photo is extended by its blurred mirror faded into
its median colour.

``--size`` (default 224) is the side of the written faces: the largest
training size (the paper's 224), so one prepared folder serves every
preset without enlarging a face, the smaller sizes (64, 96, 128) being
reduced as they are read (JPEG files twice as large as needed are decoded
at half size, which keeps reading cheap). The head squares of the sources
hold more pixels than that (UTKFace chips about 310, FG-NET photos about
490), so nothing the paper's size could show is lost.

Work is spread over ``--workers`` processes (default: every core), with a
progress bar. The preparation can be stopped and started again: files
already in ``FOLDER`` are kept and skipped (each is written whole, through
a temporary file renamed into place, so a stopped run never leaves a torn
image), and a folder prepared with other settings is refused.

``FOLDER`` also receives:

* ``prepared.json``: the crop (name, margin, size), the source folder, the
  counts, the image format and the versions of the tools; ``train.py``
  reads the crop from it into the run's config (``crop``), so that every
  checkpoint records the crop it learned and ``age.py --align`` and
  ``evaluate.py`` crop photos the same way;
* ``prepare_report.json``: per file, what was not plain: no face found,
  unreadable, several faces (the largest is taken; every box is listed,
  the one taken first), greyscale photos; it is rewritten every few
  seconds while the preparation runs.

A summary is printed at the end. Needs the ``face`` extra
(``pip install -e ".[face]"`` in the checkout).

Exit status: 0 a face was written for every image; 1 some images had no
face or could not be read (each in the report); 2 usage error, an unusable
dataset or output folder, or a missing extra; 130 interrupted (run it again
to continue).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

import cli
import face_align
import face_datasets
import files
import run_folder
from cli import EXIT_FAILED, EXIT_OK
from data import PREPARED
from face_align import Crop

PROG = "prepare.py"
#: The per-file report written beside ``prepared.json``.
REPORT = "prepare_report.json"
#: ``prepared.json``'s layout version.
FORMAT = 1
EXIT_INTERRUPTED = 130
#: Seconds between rewrites of the report while the preparation runs.
REPORT_EVERY_S = 5.0
#: The default side of the written faces (see the module's docstring).
DEFAULT_SIZE = 224
#: Statuses of a file in the report. ``aligned``: written (recorded only when
#: the photo was greyscale); ``several_faces``: written from the largest face.
WRITTEN = ("aligned", "several_faces")
PROBLEMS = ("no_face", "unreadable", "failed")
#: Pillow's writer and options for each extension the loaders read.
SAVE_AS = {".jpg": ("JPEG", {"quality": 95, "subsampling": 0}), ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
           ".png": ("PNG", {}), ".bmp": ("BMP", {}), ".webp": ("WEBP", {"lossless": True})}


class PrepareError(Exception):
    """A usage, dataset or output-folder problem: reported in one line, exit status 2."""


# --------------------------------------------------------------------------- #
# One image
# --------------------------------------------------------------------------- #


def save_face(face: Image.Image, path: str, jpeg_quality: int = 95) -> None:
    """Write ``face`` to ``path`` atomically, in the format ``path``'s extension names (see :data:`SAVE_AS`)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in SAVE_AS:
        raise ValueError(f"path must end in one of {', '.join(SAVE_AS)}, got {path!r}")
    fmt, options = SAVE_AS[ext]
    if fmt == "JPEG":
        options = {**options, "quality": jpeg_quality}
    with files.atomic_file(path) as tmp:
        face.save(tmp, format=fmt, **options)


def align_one(task: Tuple[str, str, str, Crop, int]) -> Dict[str, Any]:
    """Align one image and write it; returns its record ``{"file": REL, "status": ...}``.

    ``task``: (source path, output path, relative name, crop with its size,
    JPEG quality). The status is one of :data:`WRITTEN` or
    :data:`PROBLEMS`; ``several_faces`` records ``faces`` (the count) and
    ``boxes`` (``[left, top, right, bottom]`` in the photo's pixels, largest
    first: the first is the face taken); a written greyscale photo has
    ``"greyscale": true``; a problem has its ``reason``. A failed write
    (:class:`files.WriteError`) is raised: the disk, not the photo, is at fault.
    """
    src, dst, rel, crop, quality = task
    record: Dict[str, Any] = {"file": rel, "status": "aligned"}
    try:
        photo = face_datasets.open_rgb(Path(src))
    except face_datasets.DatasetError as exc:
        return {**record, "status": "unreadable", "reason": cli.one_line(exc, 300)}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", face_align.FaceAlignWarning)
            face = crop.align(photo, crop.size)
    except face_align.NoFaceError as exc:
        return {**record, "status": "no_face", "reason": cli.one_line(exc, 300)}
    except Exception as exc:  # noqa: BLE001 - dlib and PIL fail in many ways; one photo must not stop the rest
        return {**record, "status": "failed", "reason": f"{type(exc).__name__}: {cli.one_line(exc, 300)}"}
    boxes = [w.message.boxes for w in caught if isinstance(w.message, face_align.FaceAlignWarning) and w.message.boxes]
    if boxes:
        record.update(status="several_faces", faces=len(boxes[0]), boxes=[list(b) for b in boxes[0]])
    arr = np.asarray(face)
    if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
        record["greyscale"] = True
    save_face(face, dst, quality)
    return record


def _init_worker(crop_name: str) -> None:
    """Load dlib's models once per worker; Ctrl-C is the main process's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _load_models(crop_name)


def _load_models(crop_name: str) -> None:
    face_align.load_models()
    if crop_name == "head":
        face_align._sixty_eight_point_predictor()


def _pool_context() -> Any:
    """fork where there is one (workers start at once, sharing the loaded modules), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_tasks(tasks: Sequence[Tuple[str, str, str, Crop, int]], workers: int,
              crop_name: str) -> Iterator[Dict[str, Any]]:
    """The records of ``tasks`` as they finish, aligned on ``workers`` processes (in this one for 1)."""
    if workers == 1 or len(tasks) <= 1:
        _load_models(crop_name)
        for task in tasks:
            yield align_one(task)
        return
    pool = _pool_context().Pool(workers, initializer=_init_worker, initargs=(crop_name,))
    try:
        yield from pool.imap_unordered(align_one, tasks, chunksize=4)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


# --------------------------------------------------------------------------- #
# The report and the record
# --------------------------------------------------------------------------- #


def count(records: Dict[str, Dict[str, Any]], images: int, skipped: int) -> Dict[str, int]:
    """The counts of a preparation from its noteworthy ``records`` (file -> record), ``images`` found and
    ``skipped`` (already in the folder)."""
    statuses = [r["status"] for r in records.values()]
    problems = {s: statuses.count(s) for s in PROBLEMS}
    return {"images": images, "faces_written": images - sum(problems.values()), "already_there": skipped,
            **problems, "several_faces": statuses.count("several_faces"),
            "greyscale": sum(1 for r in records.values() if r.get("greyscale"))}


def tool_versions() -> Dict[str, Optional[str]]:
    """Versions of what made the faces: Python, dlib, its landmark models' package, Pillow, numpy, this checkout."""
    def version(dist: str) -> Optional[str]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    try:
        import dlib

        dlib_version: Optional[str] = dlib.__version__
    except ImportError:
        dlib_version = None
    return {"python": platform.python_version(), "dlib": dlib_version,
            "face_recognition_models": version("face_recognition_models"), "pillow": version("pillow"),
            "numpy": version("numpy"), "attngan_commit": cli.git_commit()}


def crop_record(crop: Crop) -> Dict[str, Any]:
    """``prepared.json``'s ``crop``: name, margin and size, with the spec ``train.py --crop`` takes."""
    return {"name": crop.name, "margin": crop.margin, "size": crop.size, "spec": str(crop),
            "description": crop.describe()}


def write_json(path: str, value: Any) -> None:
    files.write_text(path, json.dumps(value, indent=2) + "\n")


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            value = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PrepareError(f"cannot read {path}: {exc}") from None
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------- #
# The folders
# --------------------------------------------------------------------------- #


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_folders(dataset: str, out: str) -> None:
    """Refuse a dataset that is not a folder and an ``--out`` that overlaps it (before any work)."""
    if not os.path.isdir(dataset):
        what = "does not exist" if not os.path.exists(dataset) else "is not a folder"
        raise PrepareError(f"DATASET {dataset} {what}: give the folder of the photos (for a CSV dataset, the "
                           "folder that holds the CSV and its images)")
    if _inside(out, dataset) or _inside(dataset, out):
        raise PrepareError(f"--out {out} and DATASET {dataset} overlap: write the prepared faces outside the "
                           "dataset's folder")


def check_earlier(out: str, source: str, crop: Crop, jpeg_quality: int) -> Optional[Dict[str, Any]]:
    """The ``prepared.json`` of an earlier preparation into ``out`` (None for a new folder).

    Refuses a folder prepared from another source, with another crop or
    JPEG quality, and a folder that holds files but was not written by
    prepare.py (its files would be taken for prepared faces).
    """
    record = _read_json(os.path.join(out, PREPARED))
    if record is None:
        held = [n for n in os.listdir(out) if n not in (run_folder.LOCK,) and not n.startswith(files.TEMP_PREFIX)] \
            if os.path.isdir(out) else []
        if held:
            raise PrepareError(f"--out {out} holds files "
                               f"({', '.join(sorted(held)[:3])}{', ...' if len(held) > 3 else ''})"
                               f" but no {PREPARED}: choose a new or empty folder")
        return None
    earlier = record.get("crop") or {}
    quality = (record.get("image_format") or {}).get("jpeg_quality")
    if record.get("source") != source or (earlier.get("name"), earlier.get("margin"), earlier.get("size")) != (
            crop.name, crop.margin, crop.size) or quality != jpeg_quality:
        raise PrepareError(f"--out {out} holds faces prepared from {record.get('source')} with "
                           f"{earlier.get('description', earlier)} at JPEG quality {quality}; this run asks for "
                           f"{source} with {crop.describe()} at JPEG quality {jpeg_quality}: choose another --out "
                           "(or remove that folder to start afresh)")
    return record


def remove_temporaries(out: str) -> int:
    """Remove the temporary files a stopped preparation left anywhere in ``out``; returns their count."""
    return sum(files.remove_stale_temporaries(folder) for folder, _, _ in os.walk(out))


def copy_csv_lists(dataset: str, out: str) -> List[str]:
    """Copy the top-level CSV files of ``dataset`` (``path,age[,subject]`` lists) into ``out``; their names."""
    copied = []
    for name in sorted(os.listdir(dataset)):
        src = os.path.join(dataset, name)
        if name.lower().endswith(".csv") and not name.startswith(".") and os.path.isfile(src):
            with files.atomic_file(os.path.join(out, name)) as tmp:
                shutil.copyfile(src, tmp)
            copied.append(name)
    return copied


def unread_names(out: str) -> List[str]:
    """The prepared files whose names the loaders do not read (``face_datasets.scan_dataset``, ``kind="auto"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", face_datasets.DatasetWarning)
        try:
            read = {os.path.abspath(r.path) for r in face_datasets.scan_dataset(out, strict=False)}
        except face_datasets.DatasetError:
            read = set()
    return [os.path.relpath(p, out) for p in face_datasets._list_images(Path(out)) if os.path.abspath(p) not in read]


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter,
        epilog="Exit status: 0 every image aligned, 1 some had no face or were unreadable (in the report), 2 usage, "
               "dataset or folder error, 130 interrupted (run it again to continue).")
    parser.add_argument("dataset", metavar="DATASET", help="folder of face photos (searched recursively)")
    parser.add_argument("--out", required=True, metavar="FOLDER",
                        help="output folder: the aligned faces under their own names, prepared.json, "
                             f"{REPORT}")
    parser.add_argument("--crop", default="head", choices=face_align.CROPS,
                        help="head: the whole head with hair and beard (the paper's crop); tight: the inner face")
    parser.add_argument("--margin", type=cli.finite_float(0.0), default=None, metavar="M",
                        help="border on each side as a fraction of the crop (default: 0 for head, 0.1 for tight)")
    parser.add_argument("--size", type=cli.int_at_least(8, 4096), default=DEFAULT_SIZE, metavar="PX",
                        help="side of the written faces in pixels: the largest size to train at")
    parser.add_argument("--workers", type=cli.positive_int, default=None, metavar="N",
                        help="processes that align in parallel (default: one per core)")
    parser.add_argument("--jpeg-quality", type=cli.int_at_least(1, 100), default=95, metavar="Q",
                        help="quality of the JPEG files (4:4:4, no chroma subsampling)")
    parser.add_argument("--limit", type=cli.positive_int, default=None, metavar="N",
                        help="align only the first N images (in sorted order): a trial of the rate; the same "
                             "--out completes later")
    cli.add_bool_flag(parser, "--progress", default=True, help="show a progress bar")
    return parser


def summary(counts: Dict[str, int], *, source: str, out: str, crop: Crop, wall_s: float, attempted: int,
            workers: int, unread: Sequence[str], complete: bool) -> str:
    """The lines printed at the end: what was found, what was not, and how fast."""
    rate = attempted / wall_s if wall_s > 0 else float("nan")
    lines = [
        f"{PROG}: {counts['images']} images in {source} -> {out}, {crop.describe()}"
        + ("" if complete else " (not finished: run it again to continue)"),
        f"  faces written:  {counts['faces_written']} ({counts['faces_written'] - counts['already_there']} now, "
        f"{counts['already_there']} already there)",
        f"  no face found:  {counts['no_face']}",
        f"  unreadable:     {counts['unreadable']}" + (f", failed: {counts['failed']}" if counts["failed"] else ""),
        f"  several faces:  {counts['several_faces']} (the largest taken)",
        f"  greyscale:      {counts['greyscale']}",
        "  names:          kept; " + (f"{len(unread)} the loaders cannot read (train.py --skip-bad-files skips "
                                        f"them), e.g. {unread[0]}" if unread else "the loaders read every one"),
        f"  time:           {wall_s:.1f} s for {attempted} image(s) on {workers} worker(s): "
        f"{rate:.1f} images/s",
        f"  details:        {os.path.join(out, REPORT)}, {os.path.join(out, PREPARED)}",
    ]
    return "\n".join(lines)


def prepare(args: argparse.Namespace) -> int:
    """Run the preparation of parsed flags; raises :class:`PrepareError` for usage and folder problems."""
    started = time.perf_counter()
    try:
        crop = Crop(args.crop, args.margin, args.size)
    except ValueError as exc:
        raise PrepareError(str(exc)) from None
    source, out = os.path.abspath(args.dataset), args.out
    workers = args.workers or os.cpu_count() or 1
    check_folders(source, out)
    try:
        _load_models(crop.name)  # a missing extra is found before any work
    except face_align.FaceExtraMissing as exc:
        raise PrepareError(str(exc)) from None
    try:
        files.check_writable_folder(out)
    except OSError as exc:
        raise PrepareError(str(exc)) from None
    with run_folder.RunLock(out):
        earlier = check_earlier(out, source, crop, args.jpeg_quality)
        remove_temporaries(out)
        images = face_datasets._list_images(Path(source))
        if not images:
            raise PrepareError(f"no images ({', '.join(face_datasets.IMAGE_EXTENSIONS)}) in {source}")
        limited = args.limit is not None and args.limit < len(images)
        images = images[:args.limit] if limited else images
        rels = [os.path.relpath(p, source) for p in images]
        done = {rel for rel in rels if os.path.isfile(os.path.join(out, rel))}
        old_report = _read_json(os.path.join(out, REPORT)) or {}
        records = {rel: r for rel, r in (old_report.get("files") or {}).items()
                   if rel in done and isinstance(r, dict) and r.get("status") in WRITTEN}
        for r in records.values():
            r["earlier_run"] = True
        record = {
            "format": FORMAT, "tool": f"examples/morph_aging/{PROG}", "source": source, "crop": crop_record(crop),
            "image_format": {"jpeg_quality": args.jpeg_quality, "jpeg_chroma_subsampling": "4:4:4",
                             "png_bmp": "lossless", "webp": "lossless",
                             "names": "each file keeps its name and subfolder and is written in the format its "
                                      "extension names"},
            "complete": False, "report": REPORT, "runs": list((earlier or {}).get("runs") or []),
            "tools": tool_versions(),
        }
        run = {"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "workers": workers,
               "limit": args.limit}
        record["runs"].append(run)
        write_json(os.path.join(out, PREPARED), record)  # first: the folder is known as this preparation's
        csvs = copy_csv_lists(source, out)
        tasks = [(str(p), os.path.join(out, rel), rel, crop, args.jpeg_quality)
                 for p, rel in zip(images, rels) if rel not in done]

        def flush(complete: bool) -> Dict[str, int]:
            counts = count(records, len(images), len(done))
            counts["faces_written"] -= len(images) - len(done) - attempted  # not yet tried: not written either
            write_json(os.path.join(out, REPORT), {
                "source": source, "crop": crop_record(crop), "complete": complete, "counts": counts,
                "statuses": {"several_faces": "written from the largest face; boxes [left, top, right, bottom] in "
                                              "the photo's pixels, the one taken first",
                             "aligned": "written (listed here only when greyscale)",
                             "no_face": "no face found: not written", "unreadable": "not written",
                             "failed": "not written", "earlier_run": "written by an earlier run"},
                "files": dict(sorted(records.items()))})
            return counts

        from tqdm import tqdm

        attempted, problems, interrupted, last_flush = 0, 0, False, time.perf_counter()
        bar = tqdm(total=len(tasks), desc="aligning", unit="img", dynamic_ncols=True, file=sys.stderr,
                   disable=not args.progress or not tasks)
        failed_write: Optional[BaseException] = None
        try:
            for result in run_tasks(tasks, workers, crop.name):
                attempted += 1
                rel = result.pop("file")
                if result["status"] != "aligned" or result.get("greyscale"):
                    records[rel] = result
                if result["status"] in PROBLEMS:
                    problems += 1
                    bar.set_postfix_str(f"{problems} without a face", refresh=False)
                bar.update(1)
                if time.perf_counter() - last_flush > REPORT_EVERY_S:
                    flush(False)
                    last_flush = time.perf_counter()
        except KeyboardInterrupt:
            interrupted = True
        except files.WriteError as exc:
            failed_write = exc
        finally:
            bar.close()
        complete = not (interrupted or failed_write or limited)
        counts = flush(complete)
        unread = unread_names(out)
        wall_s = time.perf_counter() - started
        run.update(wall_s=round(wall_s, 1), attempted=attempted, interrupted=interrupted)
        record.update(complete=complete, counts=counts, csv_lists=csvs,
                      unread_names={"count": len(unread), "files": unread[:100]})
        write_json(os.path.join(out, PREPARED), record)
    print(summary(counts, source=source, out=out, crop=crop, wall_s=wall_s, attempted=attempted,
                  workers=workers, unread=unread, complete=complete))
    if failed_write is not None:
        print(f"{PROG}: error: {cli.one_line(failed_write)}; run it again once there is room", file=sys.stderr)
        return EXIT_FAILED
    if interrupted:
        print(f"{PROG}: interrupted after {attempted} image(s): run the same command again to continue",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(counts[s] for s in PROBLEMS) else EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cli.one_line_warnings()
    try:
        return prepare(args)
    except (PrepareError, run_folder.RunFolderError, files.WriteError) as exc:
        return cli.fail(PROG, exc)
    except KeyboardInterrupt:  # before the work, or a second Ctrl-C while the report is written
        print(f"{PROG}: interrupted: run the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
