"""data.py: datasets built from the config, and batches that do not depend on how they are loaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import face_datasets
from config import TrainConfig, validate_config
from data import SPLITS, BatchSource, EightBit, balanced_order, build_datasets, fixed_sample_inputs, group_sample
from face_datasets import DatasetError, FaceRecord
from pictures import dequantize, quantize

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cfg():
    return validate_config(TrainConfig(num_subjects=6, image_size=64, batch_size=4, device="cpu", seed=2))


def test_cached_and_streaming_batches_are_the_same(cfg, monkeypatch):
    """The in-memory path (small data) and the DataLoader path (large data or --workers) give equal tensors,
    8-bit images both (the synthetic faces are drawn in float)."""
    train, _ = build_datasets(cfg)
    cached = BatchSource(train, cfg, CPU, 0, 1)
    monkeypatch.setattr(BatchSource, "CACHE_LIMIT_BYTES", 0)  # as for a dataset too large to cache
    streaming = BatchSource(train, cfg, CPU, 0, 1)
    assert cached.cached and not streaming.cached
    for epoch, start in ((0, 0), (1, 2)):
        a, b = list(cached.epoch(epoch, start)), list(streaming.epoch(epoch, start))
        assert len(a) == len(b) == cached.steps_per_epoch - start
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            assert xa.dtype == torch.float32 and torch.equal(dequantize(quantize(xa)), xa)
    # one loader serves every epoch (its workers persist), also after an epoch left part-way (a time budget)
    loader = streaming._loader
    next(iter(streaming.epoch(2)))
    for (xa, ya), (xb, yb) in zip(cached.epoch(3), streaming.epoch(3)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert streaming._loader is loader
    raw = train[0]["image"]
    assert not torch.equal(dequantize(quantize(raw)), raw)  # the quantisation is not a no-op on this data


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=5), seed=st.integers(0, 2**31 - 1))
def test_balanced_order_draws_every_group_alike(sizes, seed):
    """N indices into the labels, the same for the same seed, and every group drawn about equally often."""
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    order = balanced_order(labels, generator=torch.Generator().manual_seed(seed))
    assert order.shape == labels.shape and order.dtype == torch.int64
    assert int(order.min()) >= 0 and int(order.max()) < len(labels)
    assert torch.equal(order, balanced_order(labels, generator=torch.Generator().manual_seed(seed)))
    draw = torch.Generator().manual_seed(seed)
    many = torch.cat([balanced_order(labels, generator=draw) for _ in range(4000 // len(labels) + 1)])
    share = torch.bincount(labels[many], minlength=len(sizes)).double() / many.numel()  # >= 4000 draws: sd < 0.008
    assert torch.allclose(share, torch.full_like(share, 1 / len(sizes)), atol=0.04)


def test_balanced_order_of_one_group_is_uniform_and_bad_labels_are_refused():
    labels = torch.zeros(1000, dtype=torch.long)
    counts = torch.bincount(balanced_order(labels, generator=torch.Generator().manual_seed(0)), minlength=1000)
    assert counts.max() <= 8 and (counts > 0).sum() > 550  # a draw with replacement: about 1 - 1/e of them seen
    for bad in (torch.zeros(0, dtype=torch.long), torch.tensor([0.0, 1.0]), torch.tensor([-1, 0]),
                torch.zeros(2, 2, dtype=torch.long)):
        with pytest.raises(ValueError, match="non-negative integer groups"):
            balanced_order(bad)


class _Part(torch.utils.data.Dataset):
    """Some images of a dataset, with its ``labels()`` as the training sets have."""

    def __init__(self, base, keep):
        self.base, self.keep = base, keep

    def __len__(self):
        return len(self.keep)

    def __getitem__(self, i):
        return self.base[self.keep[i]]

    def labels(self):
        return self.base.labels()[self.keep]


def test_balance_groups_evens_the_batches_and_resumes_alike():
    """--balance-groups: a training set with one group 6x the others gives batches with every group about
    equally often, and a resumed epoch gives the same batches as the uninterrupted one."""
    cfg = validate_config(TrainConfig(num_subjects=30, image_size=64, batch_size=8, device="cpu", seed=3,
                                      balance_groups=True))
    train, _ = build_datasets(cfg)
    skewed = _Part(train, [i for i, y in enumerate(train.labels().tolist()) if y == 1 or i % 6 == 0])
    source = BatchSource(skewed, cfg, CPU, 0, 1)
    plain = BatchSource(skewed, dataclasses.replace(cfg, balance_groups=False), CPU, 0, 1)
    drawn = torch.cat([y for e in range(6) for _, y in source.epoch(e)])
    uniform = torch.cat([y for e in range(6) for _, y in plain.epoch(e)])
    share, plain_share = (torch.bincount(y, minlength=5).double() / y.numel() for y in (drawn, uniform))
    assert plain_share[1] > 0.5 and float((share - 0.2).abs().max()) < 0.08
    whole = list(source.epoch(1))
    for (xa, ya), (xb, yb) in zip(whole[2:], source.epoch(1, start=2)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_eight_bit_view(cfg):
    train, _ = build_datasets(cfg)
    item = EightBit(train)[3]
    assert item["image"].dtype == torch.uint8 and torch.equal(item["image"], quantize(train[3]["image"]))
    assert int(item["label"]) == int(train[3]["label"]) and len(EightBit(train)) == len(train)


def test_splits_of_a_config(cfg):
    train, test, everything = build_datasets(cfg, splits=("train", "test", "all"))
    assert len(train) + len(test) == len(everything) == 30
    assert not set(train.subject_ids().tolist()) & set(test.subject_ids().tolist())
    with pytest.raises(ValueError, match="splits"):
        build_datasets(cfg, splits=("validation",))


def test_fixed_sample_inputs_reads_labels_not_images(cfg, monkeypatch):
    _, test = build_datasets(cfg)
    rendered = []
    original = type(test).__getitem__
    monkeypatch.setattr(type(test), "__getitem__", lambda self, i: rendered.append(int(i)) or original(self, i))
    faces = fixed_sample_inputs(test, 3)
    assert faces.shape == (3, 3, 64, 64) and len(rendered) == 3
    labels = test.labels()
    assert [int(labels[i]) for i in rendered] == sorted(set(labels.tolist()))[:3]  # one per group, youngest first
    again, groups = fixed_sample_inputs(test, 3, with_groups=True)
    assert torch.equal(again, faces) and groups.tolist() == [int(labels[i]) for i in rendered[:3]]


@pytest.mark.filterwarnings("ignore:some records have no subject")
@settings(max_examples=40, deadline=None)
@given(ages=st.lists(st.integers(0, 90), min_size=2, max_size=30), seed=st.integers(0, 2**16))
def test_drop_young_is_the_clip_young_split_less_the_children(ages, seed):
    """--drop-young leaves the ages below 10 out after the split: each of its splits is --clip-young's of the same
    seed less the children, or a DatasetError naming the flag when a split would be empty."""
    records = [FaceRecord(Path(f"{a}_0_0_2017{i:05d}.jpg"), a, None) for i, a in enumerate(ages)]
    base = dict(data="photos", data_kind="utkface", image_size=16, device="cpu", seed=seed, test_fraction=0.3)
    with mock.patch.object(face_datasets, "scan_dataset", lambda *a, **k: list(records)):
        clip = build_datasets(TrainConfig(clip_young=True, **base), splits=SPLITS)
        try:
            drop = build_datasets(TrainConfig(drop_young=True, **base), splits=SPLITS)
        except DatasetError as exc:
            assert "--drop-young" in str(exc)
            assert any(all(r.age < 10 for r in part.records) for part in clip)
            return
    for c, d in zip(clip, drop):
        assert d.records == [r for r in c.records if r.age >= 10]
        assert d.labels().tolist() == [lab for r, lab in zip(c.records, c.labels().tolist()) if r.age >= 10]


def test_drop_young_and_clip_young_exclude_each_other():
    with pytest.raises(ValueError, match="--drop-young: cannot be combined with --clip-young"):
        validate_config(TrainConfig(clip_young=True, drop_young=True, device="cpu"))


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.integers(0, 4), max_size=80), limit=st.integers(0, 30), seed=st.integers(0, 1000))
def test_group_sample_is_a_seeded_subset_of_the_group(labels, limit, seed):
    t = torch.tensor(labels, dtype=torch.long)
    for group in range(5):
        members = [i for i, g in enumerate(labels) if g == group]
        picked = group_sample(t, group, limit, seed=seed)
        assert picked == sorted(set(picked)) and set(picked) <= set(members)
        assert len(picked) == min(limit, len(members))
        assert picked == group_sample(t, group, limit, seed=seed)  # the same photos every time
        # the draw depends on the group's own members only: other groups' images do not move it
        others = torch.where(t == group, t, torch.full_like(t, (group + 1) % 5))
        assert group_sample(others, group, limit, seed=seed) == picked


def test_group_sample_does_not_take_a_sorted_folder_s_first_files():
    # files named by age and sorted: each group's youngest come first (UTKFace's 10-20 would be 10-14)
    ages = torch.arange(10, 21).repeat_interleave(20)  # 220 photos aged 10..20, in age order
    labels = torch.zeros_like(ages)
    picked = group_sample(labels, 0, 40)
    assert picked != list(range(40))
    assert ages[picked].float().mean() > 13  # the first 40 average 10.5
    assert ages[picked].max() >= 18
    with pytest.raises(ValueError, match="limit"):
        group_sample(labels, 0, -1)
