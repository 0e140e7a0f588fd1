"""Pictures: the [-1, 1] <-> 8-bit conversion, the labelled grid and the PNG writer.

* :func:`quantize` / :func:`dequantize` convert image tensors between
  [-1, 1] floats and 8-bit levels (``round((x + 1) * 127.5)``), keeping the
  layout; :func:`to_uint8` / :func:`from_uint8` convert one image between a
  (C, H, W) tensor and an (H, W, 3) array as image libraries hold it;
  :func:`to_rgb` converts a PIL image of any mode (16-bit, float,
  transparent) to 8-bit RGB.
* :func:`render_grid` draws every figure of the example: the training
  samples, ``age.py``'s strips and animation frames, ``evaluate.py``'s and
  ``ablation.py``'s examples. Rows of equally sized tiles, optionally
  enlarged (nearest neighbour, :func:`readable_scale`), column labels above,
  row labels in a left margin, and text tiles (a ``str`` in place of a
  picture). :func:`grid_layout` says where each tile lands.
* :func:`aging_rows` lays out faces aged to every group (the paper's
  Fig. 2): per face the input and its five ages, optionally with the
  attention masks (white = input kept) and the colour masks below, the rows
  labelled; :func:`aging_figure` draws them under the age-group columns
  (:data:`AGING_COLUMNS`) at a readable size.
* :func:`save_png` writes a picture atomically; :func:`png_bytes` and
  :func:`gif_bytes` (an animation) give a file's content, for files written
  together (:func:`files.write_together`).

Examples
--------
>>> import numpy as np, torch
>>> from pictures import dequantize, quantize, render_grid, to_uint8
>>> x = torch.tensor([-1.0, 0.0, 1.0])
>>> quantize(x).tolist(), [round(v, 4) for v in dequantize(quantize(x)).tolist()]
([0, 128, 255], [-1.0, 0.0039, 1.0])
>>> tile = to_uint8(torch.zeros(3, 16, 16))           # (H, W, 3) uint8, mid grey
>>> render_grid([("", [tile, None, tile])]).shape     # 2 px padding around the tiles
(20, 56, 3)
>>> render_grid([("a", [tile]), ("b", [tile])], ["x"]).shape[0] > 2 * 16
True
>>> render_grid([("", [tile])], scale=readable_scale(16)).shape   # 16 px tiles drawn at 128 px
(132, 132, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple, Union

import numpy as np
import torch

from ages import GROUP_NAMES
from files import write_bytes

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["AGING_COLUMNS", "GridLayout", "READABLE_TILE", "aging_figure", "aging_figure_layout", "aging_rows",
           "dequantize", "from_uint8", "gif_bytes", "grid_layout", "png_bytes", "quantize", "readable_scale",
           "render_grid", "save_png", "to_rgb", "to_uint8"]

#: Column labels of the aging figures: the input, then the five age groups.
AGING_COLUMNS: Tuple[str, ...] = ("input",) + GROUP_NAMES
#: Tiles smaller than this many pixels are enlarged (by a whole factor) in the figures.
READABLE_TILE = 128

#: A grid tile: an (H, W, 3) uint8 picture, a text drawn centred in the tile's place, or None (white).
Tile = Union[np.ndarray, str, None]
#: A grid row: its label (``""`` for none) and its tiles.
Row = Tuple[str, Sequence[Tile]]


# --------------------------------------------------------------------------- #
# [-1, 1] <-> 8 bits
# --------------------------------------------------------------------------- #


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (any layout, values clamped) -> uint8 levels ``round((x + 1) * 127.5)``, same device."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def dequantize(images: torch.Tensor) -> torch.Tensor:
    """uint8 levels (any layout and strides) -> contiguous float32 in [-1, 1], ``level / 127.5 - 1``, same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 levels, got dtype {images.dtype}")
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    out.copy_(images)
    return out.div_(127.5).sub_(1.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """One image (C, H, W) in [-1, 1] -> an (H, W, 3) uint8 array; one-channel images become grey."""
    x = quantize(image).cpu()
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x.permute(1, 2, 0).contiguous().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) uint8 array -> a (3, H, W) float32 tensor in [-1, 1]."""
    return dequantize(torch.from_numpy(np.array(array, dtype=np.uint8)).permute(2, 0, 1))


# --------------------------------------------------------------------------- #
# PIL images
# --------------------------------------------------------------------------- #


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to 8-bit RGB.

    Parameters
    ----------
    im : PIL.Image.Image
        An image in any mode: 16-bit (``I;16*``, and ``I`` holding 16-bit
        data) is scaled from 0..65535 to 0..255, ``F`` from [0, 1] or
        0..255 (NaN to 0), a transparent image is composited on white.

    Returns
    -------
    PIL.Image.Image
        An ``RGB`` image: ``im`` itself when it already is one.

    Examples
    --------
    >>> from PIL import Image
    >>> to_rgb(Image.new("LA", (1, 1), (0, 0))).getpixel((0, 0))   # fully transparent black
    (255, 255, 255)
    >>> to_rgb(Image.new("I;16", (1, 1), 65535)).getpixel((0, 0))
    (255, 255, 255)
    """
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        # 16-bit images (and 32-bit "I" images holding 16-bit data) are
        # scaled from 0..65535; an "I" image whose values fit in 0..255 is
        # taken as 8-bit data.
        scale = 257.0 if (mode != "I" or arr.max(initial=0) > 255) else 1.0
        arr8 = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if mode == "F":
        arr = np.asarray(im).astype(np.float64)
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        if arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8)).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "1":
        im = im.convert("L")
    return im.convert("RGB")


# --------------------------------------------------------------------------- #
# The grid
# --------------------------------------------------------------------------- #


@lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap font size
        return ImageFont.load_default()


def _font_for(tile: Tuple[int, int]):
    return _font(max(10, min(tile) // 10))


def readable_scale(size: int) -> int:
    """The whole factor that enlarges ``size``-pixel tiles to at least :data:`READABLE_TILE` pixels.

    >>> readable_scale(64), readable_scale(100), readable_scale(224)
    (2, 2, 1)
    """
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return max(1, -(-READABLE_TILE // size))


def _text_box(text: str, font) -> Tuple[int, int, int, int]:
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text or " ", font=font)


@dataclass(frozen=True)
class GridLayout:
    """Where the tiles of a grid land: ``top`` / ``left`` pixels of labels
    (or padding) before the first tile, tiles of ``tile = (H, W)`` pixels
    ``pad`` pixels apart."""

    tile: Tuple[int, int]
    top: int
    left: int
    pad: int

    def box(self, row: int, col: int) -> Tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of tile ``(row, col)``."""
        h, w = self.tile
        x, y = self.left + col * (w + self.pad), self.top + row * (h + self.pad)
        return x, y, x + w, y + h

    def size(self, rows: int, cols: int) -> Tuple[int, int]:
        """``(width, height)`` of a grid of ``rows`` x ``cols`` tiles."""
        h, w = self.tile
        return self.left + cols * (w + self.pad), self.top + rows * (h + self.pad)


def grid_layout(tile: Tuple[int, int], *, columns: Sequence[str] = (), row_labels: Sequence[str] = (),
                title: str = "", pad: int = 2) -> GridLayout:
    """The layout of :func:`render_grid` for tiles of ``tile = (H, W)`` pixels.

    Without labels the tiles are ``pad`` pixels from the edges and from each
    other. Column labels (and a title) add a band above, row labels a margin
    on the left, sized by their text at the font of the tile size.
    """
    font = _font_for(tile)
    top = left = pad
    if title:
        top += _text_box(title, font)[3] + pad
    if any(columns):  # as high as the font's tallest letters, whatever the labels say
        top += max(_text_box(c, font)[3] for c in [*columns, "Ag|(y"]) + pad
    if any(row_labels):
        left = max(_text_box(t, font)[2] for t in row_labels) + 2 * pad
    return GridLayout(tuple(tile), top, left, pad)


def render_grid(rows: Sequence[Row], columns: Sequence[str] = (), *, title: str = "", pad: int = 2,
                scale: int = 1) -> np.ndarray:
    """A grid of equally sized tiles as an (H, W, 3) uint8 array.

    Parameters
    ----------
    rows : sequence of (label, tiles)
        Each tile an (H, W, 3) uint8 array, a ``str`` (drawn centred in the
        tile's place) or None (left white). Non-empty row labels go in a left
        margin.
    columns : sequence of str
        Labels centred above the columns (none: no label band).
    title : str
        A line of text above the column labels.
    pad : int
        Pixels of white between tiles and around the grid.
    scale : int
        Whole factor by which picture tiles are enlarged, each pixel a
        ``scale`` x ``scale`` block (nearest neighbour: no new colours, no
        blur); labels are sized for the enlarged tiles.
    """
    from PIL import Image, ImageDraw

    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive whole number, got {scale!r}")
    pictures = [t for _, tiles in rows for t in tiles if isinstance(t, np.ndarray)]
    if not pictures:
        raise ValueError("render_grid needs at least one picture tile")
    h, w = pictures[0].shape[:2]
    bad = [t.shape for t in pictures if t.shape[:2] != (h, w)]
    if bad:
        raise ValueError(f"render_grid needs tiles of one size, got {(h, w)} and {bad[0][:2]}")
    h, w = h * scale, w * scale
    labels = [label for label, _ in rows]
    layout = grid_layout((h, w), columns=columns, row_labels=labels, title=title, pad=pad)
    cols = max(len(columns), max(len(tiles) for _, tiles in rows))
    canvas = Image.new("RGB", layout.size(len(rows), cols), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font_for((h, w))

    def text(s: str, x: float, y: float, centred: Tuple[bool, bool]) -> None:
        x0, y0, x1, y1 = draw.textbbox((0, 0), s, font=font)
        x = x - (x1 - x0) / 2 if centred[0] else x
        y = y - (y1 - y0) / 2 if centred[1] else y
        draw.text((x - x0, y - y0), s, fill=(0, 0, 0), font=font)

    y = pad
    if title:
        text(title, pad, y, (False, False))
        y += _text_box(title, font)[3] + pad
    for c, label in enumerate(columns):
        left, _, right, _ = layout.box(0, c)
        text(label, (left + right) / 2, y, (True, False))
    for r, (label, tiles) in enumerate(rows):
        top = layout.box(r, 0)[1]
        if label:
            text(label, pad, top + h / 2, (False, True))
        for c, tile in enumerate(tiles):
            left, top, right, bottom = layout.box(r, c)
            if isinstance(tile, str):
                text(tile, (left + right) / 2, (top + bottom) / 2, (True, True))
            elif tile is not None:
                if scale > 1:
                    tile = tile.repeat(scale, axis=0).repeat(scale, axis=1)
                canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (left, top))
    return np.asarray(canvas)


def aging_rows(images: torch.Tensor, out: Any, *, masks: bool = True) -> List[Row]:
    """The rows of faces aged to every group, for :func:`render_grid` under :data:`AGING_COLUMNS`.

    ``images``: the inputs (N, 3, H, W) in [-1, 1]; ``out``: an
    ``attngan.GeneratorOutput`` with tensors (N, K, C, H, W), each face at
    each of the K groups (as ``models.age_all_groups`` returns it). Per face a
    row with the input and its K ages; with ``masks`` it is labelled
    "output" and followed by a row of attention masks (white = input pixel
    kept) and a row of colour masks, labelled "attention" and "colour", with
    nothing in the input's column.
    """
    rows: List[Row] = []
    for i in range(images.shape[0]):
        groups = range(out.image.shape[1])
        faces = [to_uint8(images[i])] + [to_uint8(out.image[i, k]) for k in groups]
        if not masks:
            rows.append(("", faces))
            continue
        rows.append(("output", faces))
        rows.append(("attention", [None] + [to_uint8(out.attention[i, k] * 2 - 1) for k in groups]))
        rows.append(("colour", [None] + [to_uint8(out.color[i, k]) for k in groups]))
    return rows


def aging_figure(images: torch.Tensor, out: Any, *, masks: bool = True, pad: int = 2) -> np.ndarray:
    """Faces aged to every group (:func:`aging_rows`) under the labels :data:`AGING_COLUMNS`,
    tiles enlarged to a readable size (:func:`readable_scale`); an (H, W, 3) uint8 array.

    The figure of the training samples and of ``age.py``'s strips.
    """
    return render_grid(aging_rows(images, out, masks=masks), AGING_COLUMNS, pad=pad,
                       scale=readable_scale(images.shape[-1]))


def aging_figure_layout(size: int, *, masks: bool = True, pad: int = 2) -> GridLayout:
    """Where the tiles of :func:`aging_figure` land for ``size``-pixel faces (row 0: the input
    and its ages; with ``masks`` 1: attention, 2: colour, then the next face)."""
    scaled = size * readable_scale(size)
    return grid_layout((scaled, scaled), columns=AGING_COLUMNS,
                       row_labels=("output", "attention", "colour") if masks else (), pad=pad)


def gif_bytes(frames: Sequence[np.ndarray], *, durations_ms: Union[int, Sequence[int]] = 80,
              loop: bool = True) -> bytes:
    """The animated GIF file of (H, W, 3) uint8 frames of one size.

    All frames share one 256-colour palette made from all of them, without
    dithering, so that what does not change between frames does not
    flicker. ``durations_ms``: one duration for every frame or one per frame;
    ``loop``: play forever (else once).

    >>> from io import BytesIO
    >>> from PIL import Image
    >>> frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
    >>> gif = gif_bytes(frames, durations_ms=[500, 80, 500])
    >>> with Image.open(BytesIO(gif)) as im:
    ...     im.n_frames, im.info["loop"], np.asarray(im.convert("RGB"))[0, 0].tolist()
    (3, 0, [0, 0, 0])
    """
    from PIL import Image

    if not frames:
        raise ValueError("an animation needs at least one frame")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames) or len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) arrays of one size, got {sorted({f.shape for f in frames})}")
    durations = [durations_ms] * len(frames) if isinstance(durations_ms, int) else list(durations_ms)
    if len(durations) != len(frames):
        raise ValueError(f"durations_ms needs one value per frame ({len(frames)}), got {len(durations)}")
    # the palette of all frames side by side: colours that appear in any frame get an entry
    sheet = Image.fromarray(np.ascontiguousarray(np.concatenate(list(frames), axis=0)))
    palette = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(np.ascontiguousarray(f)).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in frames]
    out = BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=durations,
                   optimize=True, disposal=1, **({"loop": 0} if loop else {}))
    return out.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    """The PNG file of an (H, W, 3) uint8 array."""
    from PIL import Image

    out = BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def save_png(array: np.ndarray, path: str) -> None:
    """Write an (H, W, 3) uint8 array as a PNG file, atomically."""
    write_bytes(path, png_bytes(array))
