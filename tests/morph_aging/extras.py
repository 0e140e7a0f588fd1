"""What several of the example's test files share: skip marks for the optional extras, a face photo dlib finds,
one training iteration with the generator as it was before it, a minimal evaluate_photos.py result."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from PIL import Image

import face_align
import models
import pictures
from ages import NUM_GROUPS
from step import step_randomness


def has_face_extra() -> bool:
    """Whether dlib and its landmark models (the ``face`` extra) load."""
    try:
        face_align.load_models()
    except face_align.FaceExtraMissing:
        return False
    return True


def importable(name: str) -> bool:
    """Whether the module ``name`` (e.g. ``skimage.data``) imports."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


needs_face = pytest.mark.skipif(not has_face_extra(), reason="needs the face extra")
needs_photo = pytest.mark.skipif(not (has_face_extra() and importable("skimage.data")),
                                 reason="needs the face extra and scikit-image (its astronaut photograph)")
needs_export = pytest.mark.skipif(not importable("safetensors.torch"), reason="needs the export extra (safetensors)")


def write_synthetic_face(folder: Path) -> Path:
    """Write ``folder/face.png``, a 224-px synthetic face that dlib's HOG detector finds (see test_face_align)."""
    from synthetic_faces import SyntheticFaces

    ds = SyntheticFaces(num_subjects=4, images_per_subject=5, image_size=224)
    path = Path(folder) / "face.png"
    Image.fromarray(pictures.to_uint8(ds[0]["image"])).save(path)
    return path


#: A config small enough for one training iteration in a test: random tensors, 32 px, narrow networks.
TINY_CONFIG = dict(data="random-tensors", image_size=32, batch_size=4, g_channels=8, g_res_blocks=1, d_channels=8,
                   device="cpu", precision="fp32", critic_warmup=0)


def tiny_step(*, options=None, judge=None, **overrides):
    """The validated :data:`TINY_CONFIG` with ``overrides``, its seeded networks and their training iteration
    (with ``options`` and ``judge`` as :class:`step.AcGANStep` takes them): ``(cfg, generator, critic, step)``."""
    import config
    from step import AcGANStep

    cfg = config.validate_config(config.TrainConfig(**{**TINY_CONFIG, **overrides}))
    torch.manual_seed(0)
    g, d = models.build_generator(cfg), models.build_critic(cfg)
    opt_g, opt_d = models.build_optimizers(cfg, g, d, fused=False)
    return cfg, g, d, AcGANStep(cfg, g, d, opt_g, opt_d, options=options, judge=judge)


def step_before_and_after(cfg, g, step, real, labels):
    """Run iteration 0 of ``step``; returns its metrics, a copy of the generator ``g`` as it was before
    the iteration (same config), and the target groups the iteration drew."""
    before = {k: v.clone() for k, v in g.state_dict().items()}
    offsets, _ = step_randomness(cfg.seed, 0, 0, real.shape[0], torch.device("cpu"))
    metrics = step(real, labels, 0)
    probe = models.build_generator(cfg)
    probe.load_state_dict(before)
    return metrics, probe, (labels + offsets) % 5


PHOTO_CONFIG = {"data": "/data/UTK", "data_kind": "utkface", "drop_young": True, "image_size": 64, "lambda_att": 2.0,
          "seed": 0, "out": "runs/s0", "max_minutes": 30.0}


def photo_result(seed=0, ver=(0.95,) * 5, acc=(0.5,) * 5, real=(0.4,) * 5, rising=(True,) * 5, psnr=(27.0,) * 5,
           gt=None, **config):
    """A minimal evaluate_photos.py result (for photo_seeds.py and photo_compare.py)."""
    cfg = {**PHOTO_CONFIG, "seed": seed, "out": f"runs/s{seed}", **config}
    r = {"path": f"runs/s{seed}/eval/results.json", "config": cfg, "step": 3000, "weights": "average",
         "data": "/data/UTK", "split": "test", "with_young": False, "photos_per_source": [40] * 5, "far": 0.01,
         "identity": {"threshold": {"threshold": 55.0 + seed},
                      "per_target": [{"target": t, "verification_rate": ver[t], "copy_rate": 1.0}
                                     for t in range(NUM_GROUPS)]},
         "age": {"accuracy": list(acc), "real_accuracy": list(real), "rising": list(rising)},
         "background": [{"target": t, "psnr": psnr[t], "mask_mean": 0.8} for t in range(NUM_GROUPS)]}
    if gt is not None:
        aged, copy_, gap_aged, gap_copy = gt
        r["ground_truth"] = {"data": "/data/FGNET", "pairs": 114,
                             "aged": {"verification_rate": aged, "verification_rate_own": aged / 2,
                                      "age_gap": gap_aged, "confidence": 40.0},
                             "copy": {"verification_rate": copy_, "verification_rate_own": copy_ / 2,
                                      "age_gap": gap_copy, "confidence": 44.0}}
    return r
