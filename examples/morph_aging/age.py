"""Age photos to every age group with a trained AcGANs generator.

::

    python examples/morph_aging/age.py --checkpoint runs/acgan/checkpoints/last.pt \\
        photo.jpg more_photos/ --out aged/ [--masks] [--align] [--device auto|cpu|cuda]

For each photo ``NAME.ext`` it writes ``OUT/NAME_aged.png``, a strip of the
input and its five ages (10-20, 21-30, 31-40, 41-50, 51+) labelled above
each tile -- with ``--masks`` two more rows: the attention masks (white = the
input pixel is kept) and the colour masks, as in the paper's Fig. 2 -- and
each aged face on its own as ``OUT/NAME_<group>.png``.

Photos of any size and mode (RGB, grey, alpha, palette, 16-bit) are read,
turned upright by their EXIF orientation, and the centred square is resized
to the model's resolution. With ``--align`` the face is instead detected and
aligned on 5 landmarks with a 10% margin, as the paper prepares its data
(needs the ``face`` extra: ``pip install 'attngan[face]'``).

``--checkpoint`` takes a training checkpoint (``.pt``) or a generator
exported by ``export.py`` (``.safetensors``). A folder argument ages every
image file in it (.jpg, .jpeg, .png, .bmp, .webp; not recursive).

Exit status: 0 when every photo was aged, 1 when some could not be (each is
reported on stderr, the others are still written), 2 for a usage error or an
unusable checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import acgan
import attngan
import face_datasets
from face_datasets import DatasetError

#: Pixels of white between tiles and around the strip.
PAD = 2
COLUMN_LABELS = ("input",) + tuple(acgan.GROUP_NAMES)
ROW_LABELS = ("", "attention", "colour")
#: More photos than this show a progress bar.
PROGRESS_ABOVE = 3

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --------------------------------------------------------------------------- #
# The picture
# --------------------------------------------------------------------------- #


@lru_cache(maxsize=8)
def _font(tile: int):
    from PIL import ImageFont

    size = max(10, tile // 12)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap font size
        return ImageFont.load_default()


@lru_cache(maxsize=8)
def label_height(tile: int) -> int:
    """Height of the label band above the tiles of a strip with ``tile``-pixel tiles."""
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), "0123456789+-input", font=_font(tile))
    return box[3] + 2 * PAD


def tile_box(row: int, col: int, tile: int) -> Tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of tile (row, col) in a strip (row 0: input and ages;
    1: attention masks; 2: colour masks; column 0 is the input)."""
    left = PAD + col * (tile + PAD)
    top = label_height(tile) + row * (tile + PAD)
    return left, top, left + tile, top + tile


def strip_size(tile: int, rows: int) -> Tuple[int, int]:
    """``(width, height)`` of a strip with ``rows`` rows of ``tile``-pixel tiles."""
    cols = len(COLUMN_LABELS)
    return cols * (tile + PAD) + PAD, label_height(tile) + rows * (tile + PAD)


def _draw_centred(draw, text: str, centre_x: float, top: float, font) -> None:
    x0, y0, x1, _ = draw.textbbox((0, 0), text, font=font)
    draw.text((centre_x - (x1 - x0) / 2 - x0, top - y0), text, fill=(0, 0, 0), font=font)


def compose_strip(image: torch.Tensor, out: attngan.GeneratorOutput, masks: bool = False) -> np.ndarray:
    """The labelled strip of one photo as an (H, W, 3) uint8 array.

    ``image``: the model input (3, S, S) in [-1, 1]; ``out``: the generator
    output for it at every group, tensors (5, C, S, S).
    """
    from PIL import Image, ImageDraw

    tile = image.shape[-1]
    rows = 3 if masks else 1
    canvas = Image.new("RGB", strip_size(tile, rows), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(tile)
    for col, text in enumerate(COLUMN_LABELS):
        left = tile_box(0, col, tile)[0]
        _draw_centred(draw, text, left + tile / 2, PAD, font)

    def put(row: int, col: int, pic: np.ndarray) -> None:
        canvas.paste(Image.fromarray(pic), tile_box(row, col, tile)[:2])

    put(0, 0, acgan.to_uint8(image))
    for k in range(acgan.NUM_GROUPS):
        put(0, k + 1, acgan.to_uint8(out.image[k]))
        if masks:
            put(1, k + 1, acgan.to_uint8(out.attention[k] * 2 - 1))
            put(2, k + 1, acgan.to_uint8(out.color[k]))
    if masks:
        for row in (1, 2):
            left, top, _, _ = tile_box(row, 0, tile)
            text_h = label_height(tile) - 2 * PAD
            _draw_centred(draw, ROW_LABELS[row], left + tile / 2, top + (tile - text_h) / 2, font)
    return np.asarray(canvas)


def group_filename(stem: str, group: int) -> str:
    """``<stem>_<group name>.png``, e.g. ``photo_51+.png``."""
    return f"{stem}_{acgan.GROUP_NAMES[group]}.png"


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


def _unique_stems(paths: Sequence[Path]) -> List[str]:
    """Output stems; photos that share a name get ``-2``, ``-3``, ... appended."""
    seen: Dict[str, int] = {}
    stems = []
    for p in paths:
        stem = p.stem or "image"
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        stems.append(stem if n == 1 else f"{stem}-{n}")
    return stems


def _pil_to_tensor(im) -> torch.Tensor:
    arr = np.asarray(im.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def load_input(path: Path, size: int, align: bool, notes: List[str]) -> torch.Tensor:
    """The model input (3, size, size) for one photo.

    Raises DatasetError for an unreadable photo and face_align.NoFaceError
    when ``align`` finds no face; warnings (several faces) go to ``notes``.
    """
    if not align:
        return face_datasets.load_image(path, size)
    import face_align

    photo = face_datasets.open_rgb(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", face_align.FaceAlignWarning)
        face = face_align.align_face(photo, size)
    notes.extend(str(w.message) for w in caught)
    return _pil_to_tensor(face)


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="age.py", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 all photos aged, 1 some failed (reported), 2 usage or checkpoint error.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photos, or folders of photos")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="training checkpoint (.pt) or exported generator (.safetensors)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--masks", action="store_true", help="add rows with the attention and colour masks")
    parser.add_argument("--align", action="store_true",
                        help="detect and align the face on 5 landmarks first (needs: pip install 'attngan[face]')")
    parser.add_argument("--device", default="auto", choices=acgan.DEVICES, help="where the generator runs")
    return parser


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(exc: Exception, path: Path) -> str:
    """The reason of a DatasetError, without its own "cannot read image 'PATH': " prefix."""
    text = _one_line(exc)
    for prefix in (f"cannot read image {str(path)!r}: ", f"image {str(path)!r} "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _error(msg: str) -> None:
    print(f"age.py: error: {_one_line(msg)}", file=sys.stderr)


def load_generator(path: str, device: torch.device) -> Tuple[torch.nn.Module, acgan.TrainConfig]:
    """The generator of ``path`` on ``device``; any failure becomes a CheckpointError."""
    g, cfg = acgan.generator_from_checkpoint(path, map_location="cpu")
    if not isinstance(cfg.image_size, int) or cfg.image_size < 8:
        raise acgan.CheckpointError(f"checkpoint {path} has no usable image_size ({cfg.image_size!r})")
    return g.to(device).eval(), cfg


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = acgan.resolve_device(args.device)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    no_face: tuple = ()
    if args.align:
        import face_align

        try:
            face_align.load_models()
        except face_align.FaceExtraMissing as exc:
            _error(f"--align: {exc}")
            return EXIT_USAGE
        no_face = (face_align.NoFaceError,)
    try:
        g, cfg = load_generator(args.checkpoint, device)
    except acgan.CheckpointError as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        _error(f"cannot create output folder {args.out}: {exc.strerror or exc}")
        return EXIT_USAGE

    from tqdm import tqdm

    paths, problems = collect_inputs(args.images)
    for msg in problems:
        print(msg, file=sys.stderr)
    failed = len(problems)
    written = 0
    bar = tqdm(list(zip(paths, _unique_stems(paths))), desc="aging", unit="photo", file=sys.stderr,
               disable=len(paths) <= PROGRESS_ABOVE, dynamic_ncols=True)
    for path, stem in bar:
        notes: List[str] = []
        try:
            x = load_input(path, cfg.image_size, args.align, notes)
        except DatasetError as exc:
            tqdm.write(f"cannot read {path}: {_reason(exc, path)}", file=sys.stderr)
            failed += 1
            continue
        except no_face:
            tqdm.write(f"no face found in {path}", file=sys.stderr)
            failed += 1
            continue
        for note in notes:
            tqdm.write(f"{path}: {note}", file=sys.stderr)
        out = acgan.age_all_groups(g, x.unsqueeze(0).to(device))
        out = type(out)(*(t[0].cpu() for t in out))
        try:
            acgan.save_png(compose_strip(x, out, masks=args.masks), os.path.join(args.out, f"{stem}_aged.png"))
            for k in range(acgan.NUM_GROUPS):
                acgan.save_png(acgan.to_uint8(out.image[k]), os.path.join(args.out, group_filename(stem, k)))
        except OSError as exc:
            tqdm.write(f"cannot write the results of {path} to {args.out}: {exc}", file=sys.stderr)
            failed += 1
            continue
        written += 1
    bar.close()
    total = len(paths) + len(problems)
    print(f"aged {written} of {total} photo(s) into {args.out}" + (f"; {failed} failed" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
