"""Property tests of one-hot codes, condition maps and target-label sampling."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attngan import broadcast_condition, concat_condition, one_hot, sample_target_labels

FAST = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)


@st.composite
def labelled(draw, min_classes=1):
    k = draw(st.integers(min_classes, 8))
    labels = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=12))
    return torch.tensor(labels), k


@FAST
@given(data=labelled(), dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]))
def test_one_hot_round_trips_through_argmax(data, dtype):
    labels, k = data
    codes = one_hot(labels, k, dtype=dtype)
    assert codes.shape == (labels.shape[0], k) and codes.dtype == dtype
    assert torch.equal(codes.argmax(dim=1), labels)
    assert torch.equal(codes.sum(dim=1), torch.ones(labels.shape[0], dtype=dtype))
    assert set(codes.unique().tolist()) <= {0.0, 1.0}


def test_one_hot_default_dtype_and_int32_labels():
    codes = one_hot(torch.tensor([2, 0], dtype=torch.int32), 3)
    assert codes.dtype == torch.float32
    assert torch.equal(codes, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))


@FAST
@given(data=labelled(), h=st.integers(1, 6), w=st.integers(1, 6))
def test_broadcast_then_spatial_mean_gives_codes(data, h, w):
    labels, k = data
    codes = one_hot(labels, k)
    maps = broadcast_condition(codes, h, w)
    assert maps.shape == (labels.shape[0], k, h, w)
    assert torch.equal(maps.mean(dim=(2, 3)), codes)
    # every map is constant
    assert torch.equal(maps.amax(dim=(2, 3)), maps.amin(dim=(2, 3)))


@FAST
@given(b=st.integers(1, 5), k=st.integers(1, 6), h=st.integers(1, 5), w=st.integers(1, 5), seed=seeds)
def test_broadcast_of_soft_codes_gives_codes(b, k, h, w, seed):
    codes = torch.rand(b, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    maps = broadcast_condition(codes, h, w)
    assert maps.dtype == torch.float64
    torch.testing.assert_close(maps.mean(dim=(2, 3)), codes)


@FAST
@given(data=labelled(), h=st.integers(1, 6), w=st.integers(1, 6))
def test_broadcast_of_labels_equals_broadcast_of_one_hot(data, h, w):
    labels, k = data
    assert torch.equal(broadcast_condition(labels, h, w, num_classes=k), broadcast_condition(one_hot(labels, k), h, w))
    assert torch.equal(
        broadcast_condition(one_hot(labels, k), h, w, num_classes=k), broadcast_condition(one_hot(labels, k), h, w)
    )


@FAST
@given(data=labelled(), c=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6), seed=seeds,
       channels_last=st.booleans(), as_labels=st.booleans())
def test_concat_condition_shape_and_image_first(data, c, h, w, seed, channels_last, as_labels):
    labels, k = data
    b = labels.shape[0]
    image = torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    if as_labels:
        out = concat_condition(image, labels, num_classes=k)
    else:
        out = concat_condition(image, one_hot(labels, k))
    assert out.shape == (b, c + k, h, w)
    assert out.dtype == image.dtype
    assert torch.equal(out[:, :c], image)
    assert torch.equal(out[:, c:], broadcast_condition(labels, h, w, num_classes=k))
    contiguous = concat_condition(image.contiguous(), labels, num_classes=k)
    assert torch.equal(out, contiguous)


def test_concat_condition_follows_image_dtype():
    image = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    assert concat_condition(image, torch.tensor([0, 1]), num_classes=2).dtype == torch.float64
    assert concat_condition(image.to(torch.bfloat16), one_hot(torch.tensor([0, 1]), 2)).dtype == torch.bfloat16


@FAST
@given(data=labelled(min_classes=2), seed=seeds, dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8]))
def test_sampled_target_never_equals_source(data, seed, dtype):
    labels, k = data
    labels = labels.to(dtype)
    target = sample_target_labels(labels, k, generator=torch.Generator().manual_seed(seed))
    assert target.dtype == torch.int64
    assert target.shape == labels.shape
    assert ((target >= 0) & (target < k)).all()
    assert (target != labels.long()).all()


@settings(max_examples=10, deadline=None, database=None)
@given(k=st.integers(2, 7), seed=seeds)
def test_sampled_targets_reach_every_other_class(k, seed):
    draws = 300  # P(some class missed) <= k * (k - 2) * (1 - 1/(k-1)) ** draws, below 1e-18
    labels = torch.arange(k).repeat(draws)
    target = sample_target_labels(labels, k, generator=torch.Generator().manual_seed(seed))
    for source in range(k):
        reached = set(target[labels == source].tolist())
        assert reached == set(range(k)) - {source}


@FAST
@given(data=labelled(min_classes=2), seed=seeds)
def test_sampling_is_reproducible_with_a_seeded_generator(data, seed):
    labels, k = data
    a = sample_target_labels(labels, k, generator=torch.Generator().manual_seed(seed))
    b = sample_target_labels(labels, k, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(a, b)


def test_sampling_depends_on_the_seed_and_is_roughly_uniform():
    labels = torch.zeros(6000, dtype=torch.long)
    a = sample_target_labels(labels, 4, generator=torch.Generator().manual_seed(0))
    b = sample_target_labels(labels, 4, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)
    counts = torch.bincount(a, minlength=4)
    assert counts[0] == 0
    assert (counts[1:] - 2000).abs().max() < 200  # about 4.5 standard deviations


def test_sampling_uses_the_global_generator_by_default():
    labels = torch.arange(5).repeat(20)
    torch.manual_seed(123)
    a = sample_target_labels(labels, 5)
    torch.manual_seed(123)
    b = sample_target_labels(labels, 5)
    assert torch.equal(a, b)
