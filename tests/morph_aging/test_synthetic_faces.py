"""Tests of the built-in synthetic face dataset (examples/morph_aging)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic_faces import NUM_GROUPS, SyntheticFaces, train_test_split

EXAMPLE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "morph_aging"))


@pytest.fixture(scope="module")
def ds() -> SyntheticFaces:
    return SyntheticFaces(num_subjects=40, images_per_subject=5, image_size=64, seed=3)


# -- layout -------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 97, 128, 224])
def test_item_layout_shapes_and_range(size: int) -> None:
    d = SyntheticFaces(num_subjects=3, images_per_subject=2, image_size=size, seed=1)
    assert len(d) == 6
    for i in (0, 5):
        item = d[i]
        assert set(item) == {"image", "label", "subject", "index"}
        img = item["image"]
        assert img.shape == (3, size, size) and img.dtype == torch.float32
        assert img.min() >= -1.0 and img.max() <= 1.0
        assert torch.isfinite(img).all()
        for key in ("label", "subject", "index"):
            assert item[key].dtype == torch.int64 and item[key].ndim == 0
        assert item["index"].item() == i
        assert item["subject"].item() == i // 2
        assert 0 <= item["label"].item() < NUM_GROUPS
        mask = d.face_mask(i)
        assert mask.shape == (1, size, size) and mask.dtype == torch.float32
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert 0.1 < mask.mean().item() < 0.7


@pytest.mark.parametrize("size", [63, 225, 0, -64])
def test_invalid_image_size_raises(size: int) -> None:
    with pytest.raises(ValueError, match="image_size"):
        SyntheticFaces(num_subjects=2, image_size=size)


@pytest.mark.parametrize("size", [64.0, "64", True])
def test_non_int_image_size_raises(size) -> None:
    with pytest.raises(TypeError, match="image_size"):
        SyntheticFaces(num_subjects=2, image_size=size)


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"num_subjects": 0}, ValueError),
        ({"images_per_subject": 0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"subjects": []}, ValueError),
        ({"subjects": [1, 1]}, ValueError),
        ({"subjects": [-3]}, ValueError),
        ({"subjects": "abc"}, TypeError),
    ],
)
def test_invalid_arguments_raise(kwargs, err) -> None:
    name = next(iter(kwargs))
    with pytest.raises(err, match=name):
        SyntheticFaces(**kwargs)


def test_index_errors(ds: SyntheticFaces) -> None:
    for bad in (-1, len(ds), len(ds) + 7):
        with pytest.raises(IndexError):
            ds[bad]
    with pytest.raises(IndexError):
        ds.render(-1)
    with pytest.raises(TypeError):
        ds[1.5]
    assert torch.equal(ds[np.int64(3)]["image"], ds[torch.tensor(3)]["image"])


def test_invalid_group_raises(ds: SyntheticFaces) -> None:
    for g in (-1, NUM_GROUPS):
        with pytest.raises(ValueError, match="group"):
            ds.render(0, g)
    with pytest.raises(TypeError, match="group"):
        ds.render(0, 1.0)


# -- determinism --------------------------------------------------------------


def test_same_seed_identical_different_seed_differs() -> None:
    a = SyntheticFaces(num_subjects=5, seed=7)
    b = SyntheticFaces(num_subjects=5, seed=7)
    c = SyntheticFaces(num_subjects=5, seed=8)
    for i in (0, 6, 24):
        assert torch.equal(a[i]["image"], b[i]["image"])
        assert torch.equal(a.face_mask(i), b.face_mask(i))
        assert not torch.equal(a[i]["image"], c[i]["image"])
    assert torch.equal(a.labels(), b.labels())


def test_render_does_not_touch_global_rng() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    expect_t, expect_n = torch.rand(3), np.random.rand(3)
    torch.manual_seed(0)
    np.random.seed(0)
    SyntheticFaces(num_subjects=2, seed=11)[1]
    assert torch.equal(torch.rand(3), expect_t)
    assert np.array_equal(np.random.rand(3), expect_n)


def _digest(d: SyntheticFaces, indices) -> str:
    h = hashlib.sha256()
    for i in indices:
        h.update(d.render(i).numpy().tobytes())
    return h.hexdigest()


def test_bit_identical_across_processes() -> None:
    code = (
        "import sys, hashlib; sys.path.insert(0, sys.argv[1]);"
        "from synthetic_faces import SyntheticFaces;"
        "d = SyntheticFaces(num_subjects=4, image_size=80, seed=5); h = hashlib.sha256()\n"
        "for i in (0, 7, 19): h.update(d.render(i).numpy().tobytes())\n"
        "print(h.hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code, EXAMPLE_DIR], capture_output=True, text=True, check=True)
    here = _digest(SyntheticFaces(num_subjects=4, image_size=80, seed=5), (0, 7, 19))
    assert out.stdout.strip() == here


def test_render_equals_getitem(ds: SyntheticFaces) -> None:
    for i in (0, 13, 199):
        assert torch.equal(ds.render(i), ds[i]["image"])
        own = int(ds.labels()[i])
        assert torch.equal(ds.render(i, own), ds[i]["image"])


def test_render_batch(ds: SyntheticFaces) -> None:
    batch = ds.render_batch([2, 9], 4)
    assert batch.shape == (2, 3, 64, 64)
    assert torch.equal(batch[0], ds.render(2, 4)) and torch.equal(batch[1], ds.render(9, 4))
    per = ds.render_batch(torch.tensor([2, 9]), [0, 3])
    assert torch.equal(per[1], ds.render(9, 3))
    own = ds.render_batch([2, 9])
    assert torch.equal(own[0], ds[2]["image"])
    with pytest.raises(ValueError, match="groups"):
        ds.render_batch([1, 2], [0])


# -- ground truth of aging ------------------------------------------------------


def test_aging_only_changes_face_and_hair(ds: SyntheticFaces) -> None:
    for i in (0, 1, 57, 123, 199):
        outside = ds.face_mask(i)[0] == 0
        imgs = ds.render_batch([i] * NUM_GROUPS, list(range(NUM_GROUPS)))
        for g in range(1, NUM_GROUPS):
            assert torch.equal(imgs[g][:, outside], imgs[0][:, outside])
            # and aging does change the face
            assert (imgs[g] - imgs[0]).abs()[:, ~outside].mean() > 0.01


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    subject=st.integers(0, 10**6),
    size=st.integers(64, 224),
    groups=st.tuples(st.integers(0, 4), st.integers(0, 4)),
)
def test_background_invariance_property(seed: int, subject: int, size: int, groups) -> None:
    d = SyntheticFaces(subjects=[subject], images_per_subject=2, image_size=size, seed=seed)
    outside = d.face_mask(1)[0] == 0
    a, b = d.render(1, groups[0]), d.render(1, groups[1])
    assert torch.equal(a[:, outside], b[:, outside])
    assert a.min() >= -1 and a.max() <= 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), subject=st.integers(0, 10**6), size=st.integers(64, 224))
def test_head_window_holds_every_age(seed: int, subject: int, size: int) -> None:
    """Drawing age-dependent parts in the head window only changes no pixel:
    the face and hair silhouettes computed on the whole canvas, at ages
    beyond both ends of the range, stay inside it."""
    import synthetic_faces as sf

    idn = sf._identity(seed, subject)
    cv = sf._canvas(size)
    ys, xs = sf._head_window(idn, cv)
    whole = sf._region(idn, [-1.0, 0.0, 1.3, 2.5, 3.7, 5.0], size, window=False)
    inside = np.zeros_like(whole)
    inside[ys, xs] = True
    assert not (whole & ~inside).any()
    assert np.array_equal(sf._region(idn, [0.2, 4.1], size), sf._region(idn, [0.2, 4.1], size, window=False))


def test_render_at_several_ages_keeps_the_background(ds: SyntheticFaces) -> None:
    """The cached age-independent part is copied, never drawn over."""
    first = ds.render(5, 0).clone()
    for g in range(NUM_GROUPS):
        ds.render(5, g)
    assert torch.equal(ds.render(5, 0), first)
    fresh = SyntheticFaces(num_subjects=40, images_per_subject=5, image_size=64, seed=3)
    assert torch.equal(fresh.render(5, 0), first)


def test_age_cues_are_monotone(ds: SyntheticFaces) -> None:
    """Distance from the youngest face and brightness of the hair grow with age."""
    n = 20
    dist = torch.zeros(NUM_GROUPS)
    top_lum = torch.zeros(NUM_GROUPS)
    for s in range(n):
        i = s * 5
        m = ds.face_mask(i)[0].bool()
        rows = m.any(1).nonzero()[:, 0]
        cut = int(rows.min() + 0.3 * (rows.max() - rows.min()))
        upper = m.clone()
        upper[cut:] = False  # hair and upper forehead
        x = (ds.render_batch([i] * NUM_GROUPS, list(range(NUM_GROUPS))) + 1) / 2
        d = torch.stack([(x[g] - x[0]).abs().mean(0)[m].mean() for g in range(NUM_GROUPS)])
        assert (d[1:] > d[:-1]).all(), f"subject {s}: distance from youngest not increasing: {d}"
        dist += d
        top_lum += torch.stack([x[g].mean(0)[upper].mean() for g in range(NUM_GROUPS)])
    top_lum /= n
    assert (top_lum[1:] > top_lum[:-1] + 0.02).all(), top_lum  # greying hair


def test_youngest_and_oldest_clearly_apart(ds: SyntheticFaces) -> None:
    """Mean face change from group 0 to 4 is large: a visible signal at 64x64."""
    i = 10
    m = ds.face_mask(i)[0].bool()
    young, old = ds.render(i, 0), ds.render(i, 4)
    assert (old - young).abs().mean(0)[m].mean() > 0.15


# -- labels and splits -----------------------------------------------------------


def test_labels_balanced_and_consistent(ds: SyntheticFaces) -> None:
    labels = ds.labels()
    assert labels.shape == (len(ds),) and labels.dtype == torch.int64
    assert torch.equal(torch.bincount(labels, minlength=NUM_GROUPS), torch.full((NUM_GROUPS,), len(ds) // 5))
    for i in (0, 7, 150):
        assert ds[i]["label"] == labels[i]
        assert ds[i]["subject"] == ds.subject_ids()[i]
    assert torch.equal(ds.subject_ids(), torch.arange(40).repeat_interleave(5))


@pytest.mark.parametrize("ips", [1, 3, 7])
def test_labels_near_balanced_for_any_images_per_subject(ips: int) -> None:
    d = SyntheticFaces(num_subjects=400, images_per_subject=ips, seed=2)
    frac = torch.bincount(d.labels(), minlength=NUM_GROUPS).double() / len(d)
    assert ((frac - 0.2).abs() < 0.03).all(), frac


def test_train_test_split() -> None:
    train, test = train_test_split(num_subjects=30, images_per_subject=5, image_size=64, seed=4)
    tr_s, te_s = set(train.subject_ids().tolist()), set(test.subject_ids().tolist())
    assert not tr_s & te_s and tr_s | te_s == set(range(30))
    assert len(te_s) == 3
    train2, test2 = train_test_split(num_subjects=30, images_per_subject=5, image_size=64, seed=4)
    assert torch.equal(test.subject_ids(), test2.subject_ids())
    assert torch.equal(test[4]["image"], test2[4]["image"])
    # a subject looks the same as in the unsplit dataset
    full = SyntheticFaces(num_subjects=30, images_per_subject=5, image_size=64, seed=4)
    s = int(test.subjects[0])
    assert torch.equal(test.render(2, 3), full.render(s * 5 + 2, 3))
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(num_subjects=10, test_fraction=1.0)
    with pytest.raises(ValueError, match="num_subjects"):
        train_test_split(num_subjects=1)


def test_works_with_dataloader(ds: SyntheticFaces) -> None:
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 64, 64)
    assert torch.equal(batch["label"], ds.labels()[:4])
