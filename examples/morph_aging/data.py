"""Training and evaluation data: datasets built from the config, and batches.

* :func:`build_datasets` is the one place a config turns into datasets (the
  built-in synthetic faces or a real dataset folder / CSV, split by subject
  as the paper does); ``train.py`` and ``evaluate.py`` both use it, so the
  evaluation rebuilds exactly the training run's held-out split.
* :class:`BatchSource` feeds the training loop deterministic, resumable
  batches. Its images are 8-bit, whichever way they are loaded
  (:class:`EightBit`): a small dataset is decoded once into memory, a large
  one streams through a DataLoader, and both give the same tensors.
* :func:`fixed_sample_inputs` picks the faces of the training sample grids.

Examples
--------
>>> from config import TrainConfig, validate_config
>>> from data import build_datasets, fixed_sample_inputs
>>> cfg = validate_config(TrainConfig(num_subjects=10, image_size=64, device="cpu"))
>>> train, test = build_datasets(cfg)
>>> len(train), len(test)                      # 9 and 1 subjects, 5 images each
(45, 5)
>>> fixed_sample_inputs(test, 2).shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import DataLoader, Dataset

from ages import GROUP_NAMES, MIN_AGE, NUM_GROUPS
from config import TrainConfig
from pictures import dequantize, quantize

__all__ = ["PREPARED", "SPLITS", "UNREADABLE", "BatchSource", "EightBit", "balanced_order", "build_datasets",
           "check_groups", "evaluation_crop", "fixed_sample_inputs", "group_counts", "group_sample", "photo_crop",
           "prepared_crop", "read_prepared", "with_data_crop"]

#: Dataset splits :func:`build_datasets` makes: the training subjects, the
#: held-out subjects, and every image.
SPLITS = ("train", "test", "all")


def build_datasets(cfg: TrainConfig, *, data: Optional[str] = None,
                   splits: Sequence[str] = ("train", "test"), crop: Optional[Any] = None) -> Tuple[Dataset, ...]:
    """The datasets of ``splits`` for a config; their items are dicts with
    ``"image"`` (3, S, S) float in [-1, 1], ``"label"``, ``"subject"`` and ``"index"``.

    ``data`` replaces ``cfg.data`` (``"synthetic"`` or a folder / CSV; a real
    dataset other than the config's is read with ``kind="auto"``). The
    train / test split is the paper's, by subject, from ``cfg.test_fraction``
    and ``cfg.seed``; synthetic faces are drawn from ``cfg.num_subjects``,
    ``cfg.images_per_subject``, ``cfg.image_size`` and ``cfg.seed``.
    ``crop`` (a :class:`face_align.Crop`, photos only) aligns each photo with
    it as it is read (:func:`evaluation_crop` says when). ``cfg.drop_young``
    leaves the ages below 10 out of every split after splitting, so the
    splits are those of ``cfg.clip_young`` less the children.

    Raises ValueError (``face_datasets.DatasetError`` for unusable files) or
    TypeError for data that cannot be used.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"splits must be among {', '.join(SPLITS)}, got {unknown}")
    data = cfg.data if data is None else data
    split = any(s in ("train", "test") for s in splits)
    parts: Dict[str, Any] = {}
    if data == "synthetic":
        import synthetic_faces

        kw = dict(images_per_subject=cfg.images_per_subject, image_size=cfg.image_size, seed=cfg.seed)
        if split:
            parts["train"], parts["test"] = synthetic_faces.train_test_split(
                num_subjects=cfg.num_subjects, test_fraction=cfg.test_fraction, **kw)
        if "all" in splits:
            parts["all"] = synthetic_faces.SyntheticFaces(num_subjects=cfg.num_subjects, **kw)
        return tuple(parts[s] for s in splits)
    import face_datasets

    kind = cfg.data_kind if os.path.abspath(data) == os.path.abspath(cfg.data) else "auto"
    parts["all"] = face_datasets.scan_dataset(data, kind=kind, strict=not cfg.skip_bad_files)
    kept = [r for r in parts["all"] if not _dropped(cfg, r)]
    face_datasets.age_groups(kept, clip_young=cfg.clip_young)  # unusable ages counted over every image
    if split:
        if len(parts["all"]) < 2:
            raise face_datasets.DatasetError(
                f"{data} holds {len(parts['all'])} image(s): too few to split into train and test subjects")
        parts["train"], parts["test"] = face_datasets.subject_split(parts["all"], test_fraction=cfg.test_fraction,
                                                                    seed=cfg.seed)
    if cfg.drop_young:  # after the split, so that the split is the one of the same data with --clip-young
        parts = {name: [r for r in records if not _dropped(cfg, r)] for name, records in parts.items()}
        empty = [name for name in splits if not parts[name]]
        if empty:
            raise face_datasets.DatasetError(f"{data}: no image of age {MIN_AGE} or above in the {' and '.join(empty)} "
                                             "split (--drop-young leaves out the younger ones)")
    return tuple(face_datasets.FaceImageDataset(parts[s], cfg.image_size, clip_young=cfg.clip_young, crop=crop)
                 for s in splits)


def _dropped(cfg: TrainConfig, record: Any) -> bool:
    """Whether ``--drop-young`` leaves ``record`` out: an age below 10 (NaN is kept, to be refused)."""
    return cfg.drop_young and float(record.age) < MIN_AGE


# --------------------------------------------------------------------------- #
# The crop of the photos
# --------------------------------------------------------------------------- #

#: The record ``prepare.py`` writes into a prepared dataset folder: the crop
#: (its name, margin and the images' size), the source, the counts and the
#: tools' versions.
PREPARED = "prepared.json"


def _prepared_path(data: str) -> str:
    folder = data if os.path.isdir(data) else os.path.dirname(os.path.abspath(data))  # a CSV: its folder
    return os.path.join(folder, PREPARED)


def read_prepared(data: str) -> Optional[Dict[str, Any]]:
    """The :data:`PREPARED` record of a dataset (a folder, or the folder of a CSV), None where there is none.

    Raises ``face_datasets.DatasetError`` (a ValueError) naming the file
    when the record cannot be read or names no usable crop.
    """
    from face_align import Crop
    from face_datasets import DatasetError

    path = _prepared_path(data)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        crop = record["crop"]
        Crop(crop["name"], crop["margin"], crop["size"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"cannot read {path} (the record prepare.py writes): {type(exc).__name__}: {exc}") from None
    return record


def prepared_crop(data: str) -> Optional[Any]:
    """The :class:`face_align.Crop` (with its size) of a folder prepared by ``prepare.py``, None for other data.

    A record of a preparation that did not finish warns
    (``face_datasets.DatasetWarning``).
    """
    from face_align import Crop
    from face_datasets import DatasetWarning

    if data == "synthetic":
        return None
    record = read_prepared(data)
    if record is None:
        return None
    if not record.get("complete", False):
        warnings.warn(f"{_prepared_path(data)}: the preparation of {record.get('source', 'this folder')} did not "
                      "finish; run prepare.py again to complete it", DatasetWarning, stacklevel=2)
    c = record["crop"]
    return Crop(c["name"], c["margin"], c["size"])


def with_data_crop(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its ``crop`` filled in from its data, so that checkpoints record what the model learned.

    The crop of a folder prepared by ``prepare.py`` (its :data:`PREPARED`
    record, resolution included); :data:`face_align.UNKNOWN_CROP` for other
    photos unless ``cfg.crop`` says how they were aligned; None (no crop)
    for the synthetic faces. A ``cfg.crop`` that contradicts the folder's
    record is a ValueError naming both.
    """
    if cfg.data == "synthetic":
        return cfg
    from face_align import UNKNOWN_CROP, Crop

    prepared = prepared_crop(cfg.data)
    if prepared is None:
        return cfg if cfg.crop is not None else dataclasses.replace(cfg, crop=UNKNOWN_CROP)
    if cfg.crop is not None:
        given = None if cfg.crop == UNKNOWN_CROP else Crop.parse(cfg.crop, what="--crop")
        if given is None or not given.same_crop(prepared) or given.size not in (None, prepared.size):
            raise ValueError(f"--crop {cfg.crop}: {_prepared_path(cfg.data)} records {prepared} "
                             f"({prepared.describe()}, written by prepare.py); leave --crop out to take it")
    if prepared.size < cfg.image_size:
        from face_datasets import DatasetWarning

        warnings.warn(f"{cfg.data} holds {prepared.size}-px faces, enlarged to --image-size {cfg.image_size}: "
                      f"prepare.py --size {cfg.image_size} keeps their detail", DatasetWarning, stacklevel=2)
    return dataclasses.replace(cfg, crop=str(prepared))


def photo_crop(recorded: Optional[str], override: Optional[Any] = None) -> Tuple[Optional[Any], str]:
    """The crop to align photos with for a model, and a sentence saying which and why.

    Parameters
    ----------
    recorded : str or None
        The model's ``TrainConfig.crop`` (from its checkpoint): a crop spec,
        :data:`face_align.UNKNOWN_CROP`, or None (a model of the synthetic
        faces, or from before crops were recorded).
    override : face_align.Crop, optional
        A crop chosen on the command line (``--crop``), taken instead.

    Returns
    -------
    (face_align.Crop or None, str)
        None where the model's crop is not known.

    >>> crop, why = photo_crop("head,margin=0,size=224")
    >>> str(crop), why
    ('head,margin=0,size=224', "the head crop (margin 0, 224 px), the model's (recorded in its checkpoint)")
    >>> photo_crop("unknown")[0] is None
    True
    """
    from face_align import UNKNOWN_CROP, Crop

    if override is not None:
        return override, f"{override.describe()} (--crop)"
    if recorded is None:
        return None, ("the checkpoint records no crop (a model of the synthetic faces, or one trained before crops "
                      "were recorded)")
    if recorded == UNKNOWN_CROP:
        return None, ("the checkpoint records no crop: the model was trained on photos not prepared by prepare.py, "
                      "whose crop is unknown")
    crop = Crop.parse(recorded, what="the checkpoint's crop")
    return crop, f"{crop.describe()}, the model's (recorded in its checkpoint)"


def evaluation_crop(cfg: TrainConfig, override: Union[None, str, Any], data: str) -> Tuple[Optional[Any], str]:
    """How ``evaluate.py`` crops the photos of ``data`` for a model of config ``cfg``.

    The crop is ``override`` (``--crop``: a :class:`face_align.Crop`, or
    ``"none"``: read the photos as they are) or else the model's
    (:func:`photo_crop`). A folder prepared with that crop is read as it is;
    other photos are aligned with it as they are read (the crop returned,
    for :func:`build_datasets`). Without a known crop the photos are read as
    they are (the centre square), as before crops were recorded.

    Returns
    -------
    (face_align.Crop or None, str)
        The crop to align each photo with (None: read as they are), and a
        sentence saying what is done and why ("" for the synthetic faces).

    Raises
    ------
    ValueError
        For ``override`` on the synthetic faces, or a folder prepared with
        another crop than the chosen one (naming both).
    """
    if data == "synthetic":
        if override is not None:
            raise ValueError("--crop: the synthetic faces are drawn, not cropped from photos")
        return None, ""
    prepared = prepared_crop(data)
    as_prepared = f"{data} is read as prepared ({prepared.describe()})" if prepared is not None else ""
    if override == "none":
        return None, "--crop none: " + (as_prepared or f"the photos of {data} are read as they are (centre square)")
    crop, why = photo_crop(cfg.crop, override)
    if crop is None:
        return None, f"{why}: " + (as_prepared or f"the photos of {data} are read as they are (centre square)")
    if prepared is None:
        return crop, f"{why}: each photo of {data} is aligned with it as it is read (faces not found are reported)"
    if not crop.same_crop(prepared):
        raise ValueError(f"--crop: the model is evaluated with {why}, but {data} was prepared with "
                         f"{prepared.describe()}: evaluate on photos prepared with the model's crop, on the raw photos "
                         "(aligned as they are read), or pass --crop none to read them as they are")
    return None, f"{why}: {as_prepared}"


def group_counts(dataset: Dataset) -> List[int]:
    """Images per age group (10-20, ..., 51+) of a dataset, from its labels (no image is loaded)."""
    return torch.bincount(dataset.labels(), minlength=NUM_GROUPS).tolist()


def check_groups(counts: Sequence[int], allow_empty: bool) -> Optional[str]:
    """The problem with a training set's per-group counts: a ValueError when a group is
    empty, unless ``allow_empty`` (then the returned warning says which)."""
    empty = [GROUP_NAMES[k] for k, n in enumerate(counts) if n == 0]
    if not empty:
        return None
    text = (f"the training set has no images of age group(s) {', '.join(empty)}: the generator cannot learn to "
            f"age faces to {'it' if len(empty) == 1 else 'them'}")
    if not allow_empty:
        raise ValueError(text + " (--allow-empty-groups trains anyway)")
    return "warning: " + text


#: Errors of an item that cannot be read (``face_datasets.DatasetError`` is a ValueError).
UNREADABLE = (ValueError, OSError)


class EightBit(Dataset):
    """A face dataset whose images are 8-bit levels: ``item["image"]`` is
    uint8 (3, S, S), :func:`pictures.quantize` of the dataset's image.

    Real photos are 8-bit already (the round trip changes nothing); the
    synthetic faces are drawn in float and become what they would be saved
    as PNG. Training reads every image through this view, so the cached and
    the streaming paths of :class:`BatchSource` see the same data.

    An item that cannot be read (a truncated or corrupt file) does not stop
    training: the next readable item (index + 1, + 2, ...) stands in for
    it, and ``item["problem"]`` says what went wrong (``""`` for a good
    item), for the loop to report. The stand-in depends on the index only, so
    a resumed run sees the same batches. Only when :data:`MAX_STAND_INS`
    items in a row are unreadable is a :class:`ValueError` raised.
    """

    MAX_STAND_INS = 64

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        problem = ""
        try:
            item = dict(self.dataset[index])
        except UNREADABLE as exc:
            problem = " ".join(str(exc).split()) or type(exc).__name__
            item = self._stand_in(index, problem)
        item["image"] = quantize(item["image"])
        item["problem"] = problem
        return item

    def _stand_in(self, index: int, problem: str) -> Dict[str, Any]:
        n = len(self.dataset)
        for k in range(1, min(self.MAX_STAND_INS, n)):
            try:
                return dict(self.dataset[(index + k) % n])
            except UNREADABLE:
                continue
        raise ValueError(f"{min(self.MAX_STAND_INS, n)} images in a row from index {index} are unreadable, the "
                         f"first: {problem}")


def balanced_order(labels: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """As many indices as ``labels`` holds, drawn with replacement so that every group present is equally likely.

    The order of an epoch of ``train.py --balance-groups``: an image of a group
    of ``n_k`` images is drawn with probability ``1 / (K * n_k)``, ``K`` the
    number of groups present, so a small group's images repeat within an epoch
    and a large group's are partly left out. Deterministic for a generator's
    state.

    Parameters
    ----------
    labels : torch.Tensor
        ``(N,)`` integer group of each image, N >= 1, values >= 0.
    generator : torch.Generator, optional
        The source of the draw.

    Returns
    -------
    torch.Tensor
        ``(N,)`` int64 indices into ``labels``.
    """
    if labels.dim() != 1 or labels.numel() < 1 or labels.dtype.is_floating_point or int(labels.min()) < 0:
        raise ValueError(f"need (N,) non-negative integer groups, N >= 1, got {labels.dtype} {tuple(labels.shape)}")
    counts = torch.bincount(labels.long())
    weights = 1.0 / counts[labels.long()].double()
    return torch.multinomial(weights, labels.numel(), replacement=True, generator=generator)


class BatchSource:
    """Deterministic batches: epoch ``e`` visits a permutation seeded by
    ``(seed, e)`` (with ``cfg.balance_groups``, a :func:`balanced_order` so
    seeded); each process takes its slice of every global batch.

    Small datasets are rendered / decoded once into a uint8 tensor in memory;
    larger ones stream through a DataLoader with workers and pinned memory.
    Either way the images are 8-bit (:class:`EightBit`), turned into floats
    in [-1, 1] on the device, and ``epoch(e, start=k)`` yields exactly the
    batches an uninterrupted run would from its k-th batch on.

    Unreadable images are replaced by readable ones (see :class:`EightBit`)
    and collected in :attr:`unreadable` (dataset index -> what went wrong):
    on the cached path all of them by :meth:`prepare`, before training; on
    the streaming path as their batches arrive.
    """

    CACHE_LIMIT_BYTES = 2 * 1024**3

    def __init__(self, dataset: Dataset, cfg: TrainConfig, device: torch.device, rank: int, world: int) -> None:
        self.dataset, self.cfg, self.device = EightBit(dataset), cfg, device
        self.rank, self.world = rank, world
        if cfg.batch_size % world:
            raise ValueError(f"--batch-size {cfg.batch_size} must be divisible by the number of processes {world}")
        self.local_batch = cfg.batch_size // world
        self.steps_per_epoch = len(dataset) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"the training set has {len(dataset)} images, fewer than one batch of {cfg.batch_size}")
        size = len(dataset) * 3 * cfg.image_size**2
        self.cached = cfg.workers in (None, 0) and size <= self.CACHE_LIMIT_BYTES
        self.images: Optional[torch.Tensor] = None
        self.labels: Optional[torch.Tensor] = None
        self.unreadable: Dict[int, str] = {}
        self._loader: Optional[DataLoader] = None
        self._loader_batches = _Batches()

    def prepare(self, progress: bool) -> None:
        """Fill the in-memory cache (cached path only; once)."""
        if not self.cached or self.images is not None:
            return
        n = len(self.dataset)
        images = torch.empty(n, 3, self.cfg.image_size, self.cfg.image_size, dtype=torch.uint8)
        labels = torch.empty(n, dtype=torch.long)
        it: Any = range(n)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="preparing images", unit="img", leave=False, dynamic_ncols=True)
        for i in it:
            item = self.dataset[i]
            images[i] = item["image"]
            labels[i] = item["label"]
            if item["problem"]:
                self.unreadable[i] = item["problem"]
        self.images, self.labels = images, labels

    def _order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.cfg.seed * 7919 + epoch)
        if self.cfg.balance_groups:
            return balanced_order(self.dataset.dataset.labels(), generator=g)
        return torch.randperm(len(self.dataset), generator=g)

    def _indices(self, order: torch.Tensor, k: int) -> torch.Tensor:
        start = k * self.cfg.batch_size + self.rank * self.local_batch
        return order[start:start + self.local_batch]

    def _batches(self, epoch: int, start: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """uint8 images and labels of this process's batches, on the CPU."""
        order = self._order(epoch)
        if self.cached:
            self.prepare(progress=False)
            for k in range(start, self.steps_per_epoch):
                idx = self._indices(order, k)
                yield self.images[idx], self.labels[idx]
            return
        batches = [self._indices(order, k).tolist() for k in range(start, self.steps_per_epoch)]
        if self._loader is None:
            # one loader for the whole run: its workers live across epochs instead of starting at each
            workers = self.cfg.workers if self.cfg.workers is not None else (4 if self.device.type == "cuda" else 2)
            self._loader = DataLoader(self.dataset, batch_sampler=self._loader_batches, num_workers=workers,
                                      pin_memory=self.device.type == "cuda", prefetch_factor=4 if workers else None,
                                      persistent_workers=workers > 0)
        self._loader_batches.batches = batches  # read when the loader's next iteration starts
        for indices, item in zip(batches, self._loader):
            for i, problem in zip(indices, item["problem"]):
                if problem:
                    self.unreadable.setdefault(i, problem)
            yield item["image"], item["label"]

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``(images (B, 3, S, S) float in [-1, 1], labels (B,))`` on the device, from batch ``start`` on."""
        for images, labels in self._batches(epoch, start):
            yield (dequantize(images.to(self.device, non_blocking=True)),
                   labels.to(self.device, non_blocking=True))


class _Batches:
    """The batch sampler of :class:`BatchSource`'s one DataLoader: the index lists of the current epoch."""

    def __init__(self) -> None:
        self.batches: List[List[int]] = []

    def __iter__(self) -> Iterator[List[int]]:
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


EVAL_SAMPLE_SEED = 0
"""The seed of :func:`group_sample`'s draw: every evaluation of a split measures the same photos."""


def group_sample(labels: torch.Tensor, group: int, limit: int, *, seed: int = EVAL_SAMPLE_SEED) -> List[int]:
    """At most ``limit`` indices of the images of ``group``, drawn at random, in dataset order.

    Evaluations measure a sample of each age group; the first images in the
    dataset's order would not be one where files are named by age (UTKFace's
    ``AGE_GENDER_RACE_DATE``, sorted, puts each group's youngest ages first:
    10-14 for 10-20, 31 for 31-40). The draw depends only on ``seed``,
    ``group`` and the group's size, so it is the same for every model
    evaluated on the same split; a group of at most ``limit`` images is
    taken whole.

    Parameters
    ----------
    labels : torch.Tensor
        ``(N,)`` integer age group of each image.
    group : int
        The group to sample.
    limit : int
        The largest sample (at least 0).
    seed : int, default EVAL_SAMPLE_SEED
        Seed of the draw.

    Returns
    -------
    list of int
        Ascending indices into ``labels`` whose label is ``group``.

    >>> group_sample(torch.tensor([0, 1, 0, 0, 4]), 0, 5)
    [0, 2, 3]
    """
    if limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    members = torch.nonzero(labels == group).flatten()
    if members.numel() <= limit:
        return members.tolist()
    draw = torch.Generator().manual_seed(seed * NUM_GROUPS + group)
    picked = torch.randperm(members.numel(), generator=draw)[:limit]
    return members[picked.sort().values].tolist()


def fixed_sample_inputs(test_set: Dataset, n: int, *, with_groups: bool = False) -> Any:
    """``n`` test images spread over the age groups: the first image of each
    group (the youngest first), then the following images in order.
    Unreadable images are passed over (a ValueError when none can be read).
    Returns the images (N, 3, H, W), and with ``with_groups`` also their
    groups (N,) (what a ``--g-source`` generator is told)."""
    labels = test_set.labels().tolist()
    firsts: Dict[int, int] = {}
    for i, label in enumerate(labels):
        firsts.setdefault(label, i)
    order: List[int] = [firsts[g] for g in sorted(firsts)]
    taken = set(order)
    order += [i for i in range(len(labels)) if i not in taken]
    images: List[torch.Tensor] = []
    groups: List[int] = []
    first_problem = ""
    for i in order:
        if len(images) >= n:
            break
        try:
            images.append(test_set[i]["image"])
            groups.append(labels[i])
        except UNREADABLE as exc:
            first_problem = first_problem or str(exc)
    if not images:
        raise ValueError(f"none of the {len(labels)} test images can be read, e.g. {first_problem}")
    return (torch.stack(images), torch.tensor(groups, dtype=torch.long)) if with_groups else torch.stack(images)
