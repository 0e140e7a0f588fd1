"""Draw the method figure of the documentation.

Without arguments, writes ``docs/_static/method_illustration.png``: for a few
young faces of the built-in synthetic dataset, the four quantities of the
attention composition (Eq. 1), built from the dataset's ground truth rather
than from a trained model:

* input ``x_s``: the face at its own (youngest) age group;
* attention ``A = 1 - face_mask``: 1 (white) on the background, which is kept,
  0 (black) on the face and hair, which are replaced;
* colour ``C``: the same face rendered at the oldest group, 51+;
* output ``x_t = compose(A, C, x_s) = (1 - A) * C + A * x_s``.

With ``--checkpoint CKPT`` (a ``train.py`` checkpoint or an exported
``.safetensors`` generator) it writes ``docs/_static/method_trained.png``
instead, with the attention and colour masks and the output of the trained
generator for the same faces and target group.

Run from the repository root::

    python docs/make_figures.py                       # the illustration
    python docs/make_figures.py --checkpoint runs/acgan/checkpoints/last.pt

Needs the ``example`` extra (pillow). The two file names differ on purpose:
the pages say which of the two pictures they show.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    import PIL.Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "morph_aging"))
sys.path.insert(0, ROOT)

import attngan  # noqa: E402
from ages import GROUP_NAMES, NUM_GROUPS  # noqa: E402
from pictures import render_grid, to_uint8  # noqa: E402
from synthetic_faces import SyntheticFaces  # noqa: E402

#: Size limit of the pictures committed to docs/_static (kilobytes).
MAX_KB = 300
HEADERS = (
    "input x_s",
    "attention A (white = keep)",
    "colour C",
    "output (1 - A) C + A x_s",
)


def young_faces(ds: SyntheticFaces, n: int) -> List[int]:
    """Indices of the first ``n`` youngest-group images, one per subject."""
    labels = ds.labels().numpy()
    subjects = ds.subject_ids().numpy()
    chosen: List[int] = []
    seen = set()
    for i in np.flatnonzero(labels == 0):
        if int(subjects[i]) not in seen:
            chosen.append(int(i))
            seen.add(int(subjects[i]))
        if len(chosen) == n:
            break
    return chosen


def ground_truth_panels(ds: SyntheticFaces, indices: Sequence[int], group: int):
    """(x_s, A, C, x_t) from the synthetic ground truth, batched."""
    x = torch.stack([ds.render(i) for i in indices])
    attention = 1.0 - torch.stack([ds.face_mask(i) for i in indices])
    color = torch.stack([ds.render(i, group) for i in indices])
    return x, attention, color, attngan.compose(attention, color, x)


@torch.no_grad()
def trained_panels(g: torch.nn.Module, ds: SyntheticFaces, indices: Sequence[int], group: int):
    """(x_s, A, C, x_t) from a trained generator ``g`` for faces of ``ds``."""
    x = torch.stack([ds.render(i) for i in indices])
    out = g(x, torch.full((len(indices),), group, dtype=torch.long))
    return x, out.attention.float(), out.color.float(), out.image.float()


def draw_figure(panels, title: str, tile: int, pad: int = 6) -> "PIL.Image.Image":
    """Grid with one row per face and one column per quantity, with headers and a title."""
    from PIL import Image

    def pixels(t: torch.Tensor) -> np.ndarray:
        img = Image.fromarray(to_uint8(t))
        return np.asarray(img if img.size == (tile, tile) else img.resize((tile, tile), Image.LANCZOS))

    x, attention, color, output = panels
    rows = [("", [pixels(x[r]), pixels(attention[r] * 2 - 1), pixels(color[r]), pixels(output[r])])
            for r in range(x.shape[0])]
    return Image.fromarray(render_grid(rows, HEADERS, title=title, pad=pad))


def save_small(image: "PIL.Image.Image", path: str, max_kb: int) -> None:
    """Save as PNG; if larger than ``max_kb``, again with an adaptive 256-colour palette.

    The documentation keeps every committed picture under 300 KB.
    """
    from PIL import Image

    image.save(path, optimize=True)
    if os.path.getsize(path) > max_kb * 1024:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint",
                        help="trained generator (.pt or .safetensors); default: ground-truth illustration")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "_static"), help="output folder")
    parser.add_argument("--faces", type=int, default=3, help="number of faces (rows)")
    parser.add_argument("--group", type=int, default=NUM_GROUPS - 1, help="target age group 0..4 (default 4: 51+)")
    parser.add_argument("--size", type=int, default=128, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="synthetic dataset seed")
    parser.add_argument("--max-kb", type=int, default=MAX_KB,
                        help="re-save with a 256-colour palette when the PNG is larger than this")
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    if args.checkpoint:
        import checkpoints

        g, cfg = checkpoints.generator_from_checkpoint(args.checkpoint)
        ds = SyntheticFaces(num_subjects=40, image_size=cfg.image_size, seed=args.seed)
        indices = young_faces(ds, args.faces)
        panels = trained_panels(g, ds, indices, args.group)
        title = f"trained generator ({os.path.basename(args.checkpoint)}), target age {GROUP_NAMES[args.group]}"
        path = os.path.join(args.out, "method_trained.png")
    else:
        ds = SyntheticFaces(num_subjects=40, image_size=max(64, min(args.size, 224)), seed=args.seed)
        indices = young_faces(ds, args.faces)
        panels = ground_truth_panels(ds, indices, args.group)
        title = f"synthetic ground truth, not a trained model; target age {GROUP_NAMES[args.group]}"
        path = os.path.join(args.out, "method_illustration.png")
    save_small(draw_figure(panels, title, args.size), path, args.max_kb)
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
