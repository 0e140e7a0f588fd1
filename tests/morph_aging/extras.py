"""What several of the example's test files share: skip marks for the optional extras, a face photo dlib finds,
one training iteration with the generator as it was before it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from PIL import Image

import face_align
import models
import pictures
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


def step_before_and_after(cfg, g, step, real, labels):
    """Run iteration 0 of ``step``; returns its metrics, a copy of the generator ``g`` as it was before
    the iteration (same config), and the target groups the iteration drew."""
    before = {k: v.clone() for k, v in g.state_dict().items()}
    offsets, _ = step_randomness(cfg.seed, 0, 0, real.shape[0], torch.device("cpu"))
    metrics = step(real, labels, 0)
    probe = models.build_generator(cfg)
    probe.load_state_dict(before)
    return metrics, probe, (labels + offsets) % 5
