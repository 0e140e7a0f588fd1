"""Age photos to every age group with a trained AcGANs generator.

::

    python examples/morph_aging/age.py --checkpoint runs/acgan/checkpoints/last.pt \\
        photo.jpg more_photos/ --out aged/ [--masks] [--align [--crop CROP]] [--no-animation] \\
        [--source-age YEARS] [--device auto|cpu|cuda]

For each photo ``NAME.ext`` it writes ``OUT/NAME_aged.png``, a strip of the
input and its five ages (10-20, 21-30, 31-40, 41-50, 51+) labelled above
each tile -- with ``--masks`` two more rows: the attention masks (white = the
input pixel is kept) and the colour masks, as in the paper's Fig. 2 -- each
aged face on its own as ``OUT/NAME_<group>.png``, and (unless
``--no-animation``) ``OUT/NAME_aging.gif``: the face aging smoothly from
10-20 to 51+, the condition moving between neighbouring groups in
:data:`STEPS_BETWEEN` steps (soft codes), the age it stands for written
above. Faces smaller than 128 pixels are drawn enlarged in the strip and the
animation.

What the demo model (synthetic faces) can and cannot do, and aging photos: docs/acgan_guide.rst.

Photos of any size and mode (RGB, grey, alpha, palette, 16-bit) are read,
turned upright by their EXIF orientation, and the centred square is resized
to the model's resolution. With ``--align`` the face is instead detected and
cropped as the model's training faces were (needs the ``face`` extra:
``pip install -e ".[face]"`` in the checkout): with the crop its checkpoint
records, that of the folder ``prepare.py`` aligned (``--crop`` chooses
another, e.g. ``tight`` or ``head,margin=0.1``). A model trained on photos
not aligned by ``prepare.py`` records no crop; its photos get the default,
the head crop (the whole head with hair and beard, from dlib's 68
landmarks; see ``face_align.py``). ``age.py`` says which crop it uses.

``--checkpoint`` takes a training checkpoint (``.pt``) or a generator
exported by ``export.py`` (``.safetensors``). A folder argument ages every
image file in it (.jpg, .jpeg, .png, .bmp, .webp; not recursive).

A photo's files are written together or not at all: an error or Ctrl-C
while one is aged leaves none of its files, and the photos aged before it
complete. Ctrl-C ends the run with one line saying how many photos were
aged and from which one on they were not.

Exit status: 0 when every photo was aged, 1 when some could not be (each is
reported on stderr, the others are still written), 2 for a usage error or an
unusable checkpoint, 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import checkpoints
import cli
import config
import face_align
import face_datasets
import files
import models
import pictures
from ages import GROUP_CENTRES, GROUP_NAMES, NUM_GROUPS, age_to_group
from cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from data import photo_crop
from face_datasets import DatasetError

#: Pixels of white between tiles and around the strip.
PAD = 2
COLUMN_LABELS = pictures.AGING_COLUMNS
#: Frames of the animation between two neighbouring age groups.
STEPS_BETWEEN = 8
#: Milliseconds each frame of the animation shows: between groups, at a group, at the youngest and oldest.
FRAME_MS, GROUP_MS, END_MS = 60, 500, 1200
#: The warning for a model trained on the synthetic faces (age.py prints it once, whatever the inputs).
SYNTHETIC_MODEL_WARNING = (
    "warning: this model was trained on the built-in synthetic faces (data 'synthetic'): it ages those "
    "drawings, not photographs. On a real photo expect dark or white bars across the eyes and colour patches "
    "on the face and clothes. Aging real photos needs a model trained on your own dataset of aligned face "
    "photos (Morph, CACD, UTKFace, ...), in practice on a GPU: see the guide, 'Aging real photos' "
    "(docs/acgan_guide.rst).")
#: More photos than this show a progress bar.
PROGRESS_ABOVE = 3


# --------------------------------------------------------------------------- #
# The picture
# --------------------------------------------------------------------------- #


def strip_layout(tile: int, masks: bool = False) -> pictures.GridLayout:
    """Where the tiles of a strip of ``tile``-pixel faces land (row 0: input and
    ages; with ``masks`` 1: attention masks, 2: colour masks; column 0 is the input)."""
    return pictures.aging_figure_layout(tile, masks=masks, pad=PAD)


def tile_box(row: int, col: int, tile: int, masks: bool = False) -> Tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of tile (row, col) in a strip."""
    return strip_layout(tile, masks).box(row, col)


def strip_size(tile: int, rows: int) -> Tuple[int, int]:
    """``(width, height)`` of a strip with ``rows`` rows (1, or 3 with the masks) of ``tile``-pixel faces."""
    return strip_layout(tile, rows > 1).size(rows, len(COLUMN_LABELS))


def compose_strip(image: torch.Tensor, aged, masks: bool = False):
    """The labelled strip of one photo as an (H, W, 3) uint8 array (:func:`pictures.aging_figure`).

    ``image``: the model input (3, S, S) in [-1, 1]; ``aged``: the generator
    output for it at every group, tensors (1, 5, C, S, S) (as
    ``models.age_all_groups`` gives them).
    """
    return pictures.aging_figure(image[None], aged, masks=masks, pad=PAD)


def age_label(position: float) -> str:
    """The label of an animation frame at ``position`` (group units, 0 = 10-20): the age it stands
    for, between the groups' centres, and the nearest group.

    >>> age_label(0.0), age_label(2.25), age_label(2.5), age_label(4.0)
    ('~15 (10-20)', '~38 (31-40)', '~40 (31-40)', '~56 (51+)')
    """
    age = round(float(np.interp(position, np.arange(NUM_GROUPS), GROUP_CENTRES)))
    return f"~{age} ({GROUP_NAMES[int(age_to_group(age))]})"


def animation_frames(image: torch.Tensor, positions: torch.Tensor, faces: torch.Tensor) -> List[np.ndarray]:
    """The frames of the aging animation: the input beside the face at each position, labelled.

    ``image``: the input (3, S, S); ``positions``: (T,) in group units;
    ``faces``: (T, 3, S, S), all in [-1, 1]. Each frame is drawn by
    :func:`pictures.render_grid`, enlarged like the strip.
    """
    scale = pictures.readable_scale(image.shape[-1])
    first = pictures.to_uint8(image)
    return [pictures.render_grid([("", [first, pictures.to_uint8(face)])], ["input", age_label(float(p))],
                                 pad=PAD, scale=scale)
            for p, face in zip(positions.tolist(), faces)]


def aging_animation(g: torch.nn.Module, image: torch.Tensor, device: torch.device,
                    source: Optional[int] = None) -> bytes:
    """The GIF file of the aging animation of one input (3, S, S): youngest to oldest, a pause at
    each group and a longer one at both ends, then again from the start. ``source``: the input's
    group, for a generator trained with ``--g-source`` (None: not told)."""
    positions, out = models.age_gradually(g, image.to(device), steps_between=STEPS_BETWEEN, source=source)
    frames = animation_frames(image, positions.cpu(), out.image.cpu())
    whole = [float(p).is_integer() for p in positions.tolist()]
    durations = [END_MS if i in (0, len(frames) - 1) else GROUP_MS if w else FRAME_MS for i, w in enumerate(whole)]
    return pictures.gif_bytes(frames, durations_ms=durations)


def animation_filename(stem: str) -> str:
    """``<stem>_aging.gif``."""
    return f"{stem}_aging.gif"


def group_filename(stem: str, group: int) -> str:
    """``<stem>_<group name>.png``, e.g. ``photo_51+.png``."""
    return f"{stem}_{GROUP_NAMES[group]}.png"


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #


def collect_inputs(args: Sequence[str]) -> Tuple[List[Path], List[str]]:
    """Expand folder arguments into their image files; returns (paths, problems)."""
    paths: List[Path] = []
    problems: List[str] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.is_file() and not q.name.startswith(".")
                           and q.suffix.lower() in face_datasets.IMAGE_EXTENSIONS)
            if not found:
                problems.append(f"no images ({', '.join(face_datasets.IMAGE_EXTENSIONS)}) in folder {arg}")
            paths.extend(found)
        else:
            paths.append(p)  # a missing or unreadable file is reported when it is read
    return paths, problems


def output_names(stem: str) -> List[str]:
    """The files one photo's results go to: ``<stem>_aged.png``, ``<stem>_<group>.png`` per group
    and the animation ``<stem>_aging.gif``."""
    return [f"{stem}_aged.png"] + [group_filename(stem, k) for k in range(NUM_GROUPS)] + [animation_filename(stem)]


def _unique_stems(paths: Sequence[Path], avoid: Sequence[str] = ()) -> List[str]:
    """Output stems, one per photo, that never share a file (deterministic, in input order).

    A photo's stem is its name without the extension; photos whose stems
    coincide but whose names differ keep their extension (``a.png`` and
    ``a.jpg`` give ``a.png`` and ``a.jpg``); a stem still taken -- by an
    earlier photo (the same name in another folder), or by another photo's
    natural stem -- gets ``-2``, ``-3``, ... Names are compared
    case-insensitively (``A.png`` and ``a.png`` are one file on some
    systems), and no output may take a name in ``avoid`` (the input photos
    inside the output folder, which must never be overwritten). Since the
    group names hold no ``_``, distinct stems never share an output file.

    >>> _unique_stems([Path("a.png"), Path("a.jpg"), Path("a-2.png"), Path("x/a-2.png")])
    ['a.png', 'a.jpg', 'a-2', 'a-2-2']
    """
    natural = [p.stem or "image" for p in paths]
    names: Dict[str, set] = {}
    for p, s in zip(paths, natural):
        names.setdefault(s.casefold(), set()).add(p.name.casefold())
    wanted = [p.name if len(names[s.casefold()]) > 1 else s for p, s in zip(paths, natural)]
    reserved = {w.casefold() for w in wanted}
    blocked = {a.casefold() for a in avoid}
    used: set = set()

    def free(stem: str) -> bool:
        return stem.casefold() not in used and not any(n.casefold() in blocked for n in output_names(stem))

    stems = []
    for w in wanted:
        stem, n = w, 1
        while not free(stem) or (n > 1 and stem.casefold() in reserved):
            n += 1
            stem = f"{w}-{n}"
        used.add(stem.casefold())
        stems.append(stem)
    return stems


def load_input(path: Path, size: int, crop: Optional[face_align.Crop], notes: List[str]) -> torch.Tensor:
    """The model input (3, size, size) for one photo: its centre square, or its face aligned with ``crop``.

    Raises DatasetError for an unreadable photo and face_align.NoFaceError
    when the alignment finds no face; warnings (several faces) go to ``notes``.
    """
    if crop is None:
        return face_datasets.load_image(path, size)
    photo = face_datasets.open_rgb(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", face_align.FaceAlignWarning)
        face = crop.align(photo, size)
    notes.extend(str(w.message) for w in caught)
    return pictures.from_uint8(np.asarray(face.convert("RGB")))


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="age.py", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 all photos aged, 1 some failed (reported), 2 usage or checkpoint error, "
               "130 interrupted.",
        formatter_class=cli.HelpFormatter,
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photos, or folders of photos")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="training checkpoint (.pt) or exported generator (.safetensors)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    cli.add_bool_flag(parser, "--masks", default=False, help="add rows with the attention and colour masks")
    cli.add_bool_flag(parser, "--animation", default=True,
                      help="also write NAME_aging.gif, the face aging smoothly from 10-20 to 51+ (the condition "
                           f"interpolated between neighbouring groups, {STEPS_BETWEEN} steps each)")
    cli.add_bool_flag(parser, "--align", default=False,
                      help="detect the face and crop it as the model's training faces were, with the crop its "
                           "checkpoint records (the head crop where it records none; needs the face extra: "
                           + cli.install_hint("face") + ")")
    parser.add_argument("--crop", type=_crop_flag, default=None, metavar="CROP[,margin=M]",
                        help="with --align: crop with this instead of the model's crop: head (the whole head, hair "
                             "and beard) or tight (the inner face), e.g. head,margin=0.1 (see face_align.py)")
    parser.add_argument("--source-age", type=cli.int_at_least(0, 150), default=None, metavar="YEARS",
                        help="the photos' real age, told to a generator trained with --g-source (as its age group; "
                             "under 10 counts as 10-20); default: not told. Other generators ignore it, with a note")
    parser.add_argument("--device", default="auto", choices=config.DEVICES, help="where the generator runs")
    return parser


def _crop_flag(text: str) -> face_align.Crop:
    """argparse type of ``--crop``: a :class:`face_align.Crop` spec."""
    try:
        return face_align.Crop.parse(text, what="--crop")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--crop: ")) from None


def _reason(exc: Exception, path: Path) -> str:
    """The reason of a DatasetError, without its own "cannot read image 'PATH': " prefix."""
    text = cli.one_line(exc, 400)
    for prefix in (f"cannot read image {str(path)!r}: ", f"image {str(path)!r} "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


@dataclass
class Tally:
    """What a run has done so far, and the line it ends with, finished or interrupted.

    ``total`` counts the photos and the folder arguments without any (each
    of which has failed); ``current`` is the photo being aged, if any. A
    ``--out`` the run created (``created``) and wrote nothing into is
    removed when it ends.
    """

    out: str
    created: bool
    total: int = 0
    aged: int = 0
    failed: int = 0
    files: int = 0
    current: Optional[Path] = None

    def _failed(self) -> str:
        return f"; {self.failed} failed" if self.failed else ""

    def finished(self) -> str:
        """The closing line of a run that went through every photo."""
        if self.created and not self.aged:
            files.remove_if_empty(self.out)  # nothing to show: leave no empty folder behind
            return f"aged none of {self.total} photo(s); nothing written{self._failed()}"
        return f"aged {self.aged} of {self.total} photo(s) into {self.out} ({self.files} files){self._failed()}"

    def interrupted(self) -> str:
        """The one line of a run stopped by Ctrl-C."""
        if not self.aged:
            if self.created:
                files.remove_if_empty(self.out)
            return "age.py: interrupted before any photo was aged; nothing written"
        left = self.total - self.aged - self.failed
        where = f", from {self.current} on," if self.current is not None else ""
        return (f"age.py: interrupted: aged {self.aged} of {self.total} photo(s) into {self.out} ({self.files} files)"
                f"{self._failed()}; the other {left}{where} were not aged")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cli.one_line_warnings()
    tally = Tally(args.out, created=not os.path.lexists(args.out))
    try:
        return age_photos(args, tally)
    except KeyboardInterrupt:
        print(tally.interrupted(), file=sys.stderr)
        return EXIT_INTERRUPTED


def age_photos(args: argparse.Namespace, tally: Tally) -> int:
    """Age the photos of the command line ``args``, counting in ``tally``; returns the exit status."""
    try:
        device = config.resolve_device(args.device)
    except ValueError as exc:
        return cli.fail("age.py", exc)
    no_face: tuple = ()
    if args.crop is not None and not args.align:
        return cli.fail("age.py", "--crop chooses the crop of --align: add --align")
    if args.align:
        import face_align

        try:
            face_align.load_models()
        except face_align.FaceExtraMissing as exc:
            return cli.fail("age.py", f"--align: {exc}")
        no_face = (face_align.NoFaceError,)
    try:
        g, cfg = checkpoints.generator_from_checkpoint(args.checkpoint)
    except checkpoints.CheckpointError as exc:
        return cli.fail("age.py", exc)
    g = g.to(device)
    if cfg.data == "synthetic":
        print(cli.one_line(SYNTHETIC_MODEL_WARNING, 1000), file=sys.stderr)
    source = None if args.source_age is None else int(age_to_group(args.source_age, clip_young=True))
    if source is not None and not models.told_source(g):
        print("age.py: --source-age: this model was not trained with --g-source and is told the target age alone; "
              "the source age is not used", file=sys.stderr)
        source = None
    crop = None
    if args.align:
        crop, why = photo_crop(cfg.crop, args.crop)
        if crop is None:
            crop = face_align.Crop("head")
            why += f"; aligning with {crop.describe()}, face_align's default"
        print(f"age.py: --align: {why}", file=sys.stderr)
    try:
        files.check_writable_folder(args.out)
    except OSError as exc:
        return cli.fail("age.py", exc)

    from tqdm import tqdm

    paths, problems = collect_inputs(args.images)
    for msg in problems:
        print(msg, file=sys.stderr)
    tally.total, tally.failed = len(paths) + len(problems), len(problems)
    inputs_in_out = [p.name for p in paths if os.path.abspath(p.parent) == os.path.abspath(args.out)]
    bar = tqdm(list(zip(paths, _unique_stems(paths, inputs_in_out))), desc="aging", unit="photo", file=sys.stderr,
               disable=len(paths) <= PROGRESS_ABOVE, dynamic_ncols=True)
    try:
        for path, stem in bar:
            tally.current = path
            notes: List[str] = []
            try:
                x = load_input(path, cfg.image_size, crop, notes)
            except DatasetError as exc:
                tqdm.write(f"cannot read {path}: {_reason(exc, path)}", file=sys.stderr)
                tally.failed += 1
                continue
            except no_face:
                tqdm.write(f"no face found in {path}", file=sys.stderr)
                tally.failed += 1
                continue
            for note in notes:
                tqdm.write(f"{path}: {note}", file=sys.stderr)
            told = None if source is None else torch.tensor([source])
            aged = models.age_all_groups(g, x.unsqueeze(0).to(device), told)
            aged = type(aged)(*(t.cpu() for t in aged))
            results = {f"{stem}_aged.png": pictures.png_bytes(compose_strip(x, aged, masks=args.masks))}
            for k in range(NUM_GROUPS):
                results[group_filename(stem, k)] = pictures.png_bytes(pictures.to_uint8(aged.image[0, k]))
            if args.animation:
                results[animation_filename(stem)] = aging_animation(g, x, device, source)
            try:
                with files.interrupts_held():  # Ctrl-C waits until the files are in place and counted
                    files.write_together({os.path.join(args.out, name): data for name, data in results.items()})
                    tally.aged += 1
                    tally.files += len(results)
                    tally.current = None
            except OSError as exc:
                tqdm.write(f"cannot write the results of {path} to {args.out}: {exc}", file=sys.stderr)
                tally.failed += 1
    finally:
        bar.close()
    print(tally.finished())
    return EXIT_FAILED if tally.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
