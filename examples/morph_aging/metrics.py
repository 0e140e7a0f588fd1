"""Image metrics of the evaluation, as pure functions of tensors.

Background preservation (MAE and PSNR outside a face region), colour casts
(BT.601 chroma error), sharpness (variance of the Laplacian) and the
calibration of a verification threshold on impostor pairs. ``evaluate.py``
(the paper's protocol) and ``evaluate_photos.py`` (the protocol on
photographs) report them.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["CHROMA", "ELLIPSE_AXES", "LUMA", "PSNR_CAP", "background_errors", "frame_error_share",
           "calibrate_threshold", "central_ellipse_mask", "chroma_errors", "laplacian_variance", "mean_and_spread",
           "to_levels"]

#: Semi-axes (fractions of width and height) of the central ellipse taken as
#: the face region of real photos; the background is outside it.
ELLIPSE_AXES = (0.40, 0.50)
#: PSNR of identical images (dB).
PSNR_CAP = 100.0
LUMA = (0.299, 0.587, 0.114)
#: BT.601 full-range chroma (Cb, Cr) rows of the RGB -> YCbCr matrix: the
#: colour of a pixel without its brightness.
CHROMA = ((-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))



def to_levels(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> 8-bit levels [0, 255] as float64."""
    return (images.detach().double().cpu() + 1.0) * 127.5


def central_ellipse_mask(height: int, width: int, axes: Tuple[float, float] = ELLIPSE_AXES) -> torch.Tensor:
    """(1, H, W) float: 1 inside the centred ellipse with semi-axes
    ``axes[0] * W`` (horizontal) and ``axes[1] * H`` (vertical), else 0."""
    y = (torch.arange(height, dtype=torch.float64) + 0.5 - height / 2) / (axes[1] * height)
    x = (torch.arange(width, dtype=torch.float64) + 0.5 - width / 2) / (axes[0] * width)
    return ((x[None, :] ** 2 + y[:, None] ** 2) <= 1.0).float()[None]


def background_errors(a: torch.Tensor, b: torch.Tensor, background: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-image (MAE in 8-bit levels, PSNR in dB) over background pixels.

    ``a``, ``b``: (B, 3, H, W) in [-1, 1]; ``background``: (B or 1, 1, H, W)
    in {0, 1}, 1 = background. PSNR = ``10 log10(255^2 / MSE)``, capped at
    :data:`PSNR_CAP`; images without background pixels give NaN.
    """
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    m = (background.detach().double().cpu() > 0.5).double().expand(a.shape[0], 1, *a.shape[2:])
    diff = to_levels(a) - to_levels(b)
    n = m.sum(dim=(1, 2, 3)) * a.shape[1]
    mae = (m * diff.abs()).sum(dim=(1, 2, 3)) / n
    mse = (m * diff * diff).sum(dim=(1, 2, 3)) / n
    psnr = (10 * torch.log10(255.0**2 / mse.clamp_min(255.0**2 * 10 ** (-PSNR_CAP / 10)))).clamp(max=PSNR_CAP)
    nan = torch.full_like(mae, math.nan)
    return torch.where(n > 0, mae, nan), torch.where(n > 0, psnr, nan)


def frame_error_share(a: torch.Tensor, b: torch.Tensor, background: torch.Tensor, width: int = 4
                      ) -> Tuple[float, float]:
    """How much of the background's squared error lies in a frame along the image edges.

    ``a``, ``b``: (B, 3, H, W) in [-1, 1]; ``background``: (B or 1, 1, H, W)
    in {0, 1}, 1 = background. The frame is the band of ``width`` pixels
    along the four edges. Returns ``(error share, pixel share)``, pooled over
    the batch: the frame's part of the background's summed squared error (in
    8-bit levels) and its part of the background's pixels. A generator that
    errs evenly over the background has error share near pixel share; one
    that draws a frame has error share well above it. NaN where the
    background has no pixels or no error.
    """
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    h, w = a.shape[-2:]
    m = (background.detach().double().cpu() > 0.5).double().expand(a.shape[0], 1, h, w)
    frame = torch.ones(h, w, dtype=torch.float64)
    frame[width:h - width, width:w - width] = 0.0
    se = ((to_levels(a) - to_levels(b)) ** 2).sum(dim=1, keepdim=True) * m
    total, pixels = float(se.sum()), float(m.sum())
    err = float((se * frame).sum()) / total if total > 0 else math.nan
    pix = float((m * frame).sum()) / pixels if pixels > 0 else math.nan
    return err, pix


def chroma_errors(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per-image colour difference of ``a`` against ``b`` inside ``region``.

    Colour is the BT.601 chroma plane (Cb, Cr) in 8-bit levels (:data:`CHROMA`):
    brightness differences do not count, a tint does.

    Parameters
    ----------
    a, b : torch.Tensor
        (B, 3, H, W) in [-1, 1].
    region : torch.Tensor
        (B or 1, 1, H, W) in {0, 1}, 1 = compared pixel.

    Returns
    -------
    dict of torch.Tensor
        Each (B,), float64, NaN for an image without region pixels:
        ``"chroma_error"``, the mean over the region of the per-pixel chroma
        distance ``|(dCb, dCr)|`` (local casts: a green patch counts wherever
        it is); ``"chroma_p95"``, its 95th percentile over the region (how
        strong the worst 5 % of the region is); ``"colour_shift"``, the
        distance between the two images' mean chroma over the region (a tint
        of the whole region).

    Examples
    --------
    >>> grey = torch.zeros(1, 3, 8, 8)
    >>> tinted = grey.clone(); tinted[:, 1] += 0.2       # more green
    >>> e = chroma_errors(tinted, grey, torch.ones(1, 1, 8, 8))
    >>> round(float(e["chroma_error"]), 2) == round(float(e["colour_shift"]), 2) > 0
    True
    >>> float(chroma_errors(grey + 0.3, grey, torch.ones(1, 1, 8, 8))["chroma_error"])  # brighter, same colour
    0.0
    """
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    matrix = torch.tensor(CHROMA, dtype=torch.float64)
    ca = torch.einsum("kc,bchw->bkhw", matrix, to_levels(a))
    cb = torch.einsum("kc,bchw->bkhw", matrix, to_levels(b))
    inside = (region.detach().cpu() > 0.5).expand(a.shape[0], 1, *a.shape[2:])[:, 0]
    rows: Dict[str, List[float]] = {"chroma_error": [], "chroma_p95": [], "colour_shift": []}
    for i in range(a.shape[0]):
        pa, pb = ca[i][:, inside[i]], cb[i][:, inside[i]]  # (2, N)
        if pa.shape[1] == 0:
            for values in rows.values():
                values.append(math.nan)
            continue
        dist = (pa - pb).norm(dim=0)
        rows["chroma_error"].append(float(dist.mean()))
        rows["chroma_p95"].append(float(torch.quantile(dist, 0.95)))
        rows["colour_shift"].append(float((pa.mean(1) - pb.mean(1)).norm()))
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in rows.items()}


def laplacian_variance(images: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian of the 8-bit luma, (B, 3, H, W) in [-1, 1] -> (B,)."""
    luma = torch.tensordot(to_levels(images), torch.tensor(LUMA, dtype=torch.float64), dims=([1], [0]))[:, None]
    kernel = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64)[None, None]
    lap = F.conv2d(luma, kernel)
    return lap.flatten(1).var(dim=1, unbiased=False)


def calibrate_threshold(verifier: Any, embeddings: torch.Tensor, subjects: torch.Tensor, far: float,
                        chunk: int = 512) -> Dict[str, Any]:
    """The confidence threshold that accepts at most a fraction ``far`` of impostor pairs.

    Impostor pairs are all pairs of ``embeddings`` (N, D) whose ``subjects``
    (N,) differ (the paper calibrates at a false-accept rate of 1e-5). With
    fewer than ``1 / far`` pairs the rate cannot be resolved: the threshold is
    then just above the highest impostor confidence (no impostor accepted)
    and ``achieved_far`` says 0 of ``pairs``.

    >>> class Dot:
    ...     def confidence(self, a, b): return (a * b).sum(1)
    >>> emb = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    >>> out = calibrate_threshold(Dot(), emb, torch.tensor([0, 1, 2, 2]), far=0.2)
    >>> out["pairs"], out["threshold"], out["accepted"]    # impostor products 2, 3, 4, 6, 8 (3-4 is genuine)
    (5, 8.0, 1)
    """
    n = embeddings.shape[0]
    scores = []
    for i0 in range(0, n, chunk):
        i = torch.arange(i0, min(i0 + chunk, n))
        for j0 in range(i0, n, chunk):
            j = torch.arange(j0, min(j0 + chunk, n))
            ii, jj = torch.meshgrid(i, j, indexing="ij")
            keep = (ii < jj) & (subjects[ii] != subjects[jj])
            a, b = ii[keep], jj[keep]
            if a.numel():
                scores.append(verifier.confidence(embeddings[a], embeddings[b]).float().cpu())
    if not scores:
        return {"far_target": far, "pairs": 0, "threshold": None, "accepted": 0, "achieved_far": None}
    s = torch.cat(scores).sort(descending=True).values
    allowed = int(math.floor(far * s.numel()))
    up = torch.tensor(float("inf"))
    threshold = s[allowed - 1] if allowed else torch.nextafter(s[0], up)
    if int((s >= threshold).sum()) > allowed:  # ties at the threshold: accept fewer, never more
        threshold = torch.nextafter(threshold, up)
    threshold = float(threshold)
    accepted = int((s >= threshold).sum())
    return {"far_target": far, "pairs": int(s.numel()), "threshold": threshold, "accepted": accepted,
            "achieved_far": accepted / s.numel()}


def mean_and_spread(values: Sequence[Optional[float]]) -> Optional[Dict[str, Any]]:
    """Mean, sample standard deviation (0 for one value), min, max and count of the non-missing values.

    >>> mean_and_spread([1.0, 2.0, 3.0])
    {'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    >>> mean_and_spread([None]) is None
    True
    """
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(xs), "max": max(xs), "n": len(xs)}
