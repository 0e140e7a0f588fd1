"""data.py: datasets built from the config, and batches that do not depend on how they are loaded."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import face_datasets
from config import TrainConfig, validate_config
from data import SPLITS, BatchSource, EightBit, build_datasets, fixed_sample_inputs, group_sample
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
