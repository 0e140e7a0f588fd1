"""The photo protocol and evaluate_photos.py, with stand-in estimators (no dlib needed)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import estimators
import evaluate_photos
import photo_protocol as pp
import train
from ages import NUM_GROUPS, age_to_group

pytestmark = pytest.mark.usefixtures("one_thread")


class PixelVerifier:
    """Embeds an image as its 4x4 average-pooled pixels; confidence falls with their distance."""

    threshold = 50.0

    def embed(self, images):
        return F.adaptive_avg_pool2d(images.float(), 4).flatten(1)

    def confidence(self, a, b):
        return (100 * (1 - torch.linalg.vector_norm(a - b, dim=-1) / 2)).clamp(0, 100)


class BrightnessAge:
    """Age = 10 + 60 * mean brightness in [0, 1]."""

    def estimate(self, images):
        return 10 + 60 * ((images.float().mean(dim=(1, 2, 3)) + 1) / 2)


class Keep(torch.nn.Module):
    """A generator that keeps the input (mask 1)."""

    def forward(self, x, y):
        from attngan import GeneratorOutput
        return GeneratorOutput(x, torch.ones_like(x[:, :1]), torch.zeros_like(x))


class Paint(torch.nn.Module):
    """A generator that paints one grey face per target group (mask 0), brighter for older groups."""

    def forward(self, x, y):
        from attngan import GeneratorOutput
        level = (y.float() / (NUM_GROUPS - 1) * 1.6 - 0.8).view(-1, 1, 1, 1)
        color = level.expand_as(x).contiguous()
        return GeneratorOutput(color, torch.zeros_like(x[:, :1]), color)


def _photos(n=15, seed=0):
    """Photos with coarse structure (4x4 blocks), so that different photos are far apart."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    return F.interpolate(coarse, scale_factor=4, mode="nearest"), torch.arange(n) % NUM_GROUPS


def test_a_generator_that_keeps_the_input_verifies_like_the_copy():
    images, sources = _photos()
    aged, masks = pp.age_every_group(Keep(), images)
    assert aged.shape == (15, NUM_GROUPS, 3, 16, 16) and torch.equal(masks, torch.ones(15, NUM_GROUPS))
    table = pp.identity_table(PixelVerifier(), images, aged, sources, [None] * 15, far=0.01)
    assert table["threshold"]["pairs"] == 15 * 14 // 2 and table["threshold"]["subjects_known"] is False
    for row in table["per_target"]:
        assert row["pairs"] == 12  # inputs of the other four groups
        assert row["verification_rate"] == 1.0 and row["copy_rate"] == 1.0
    assert table["impostor_rate"] <= 0.01
    back = pp.background_table(images, aged, masks, sources)
    assert all(r["psnr"] > 40 and r["mask_mean"] == 1.0 for r in back)  # 8-bit rounding only


def test_a_generator_that_paints_prototypes_loses_the_person_but_ages():
    images, sources = _photos()
    aged, masks = pp.age_every_group(Paint(), images)
    table = pp.identity_table(PixelVerifier(), images, aged, sources, [None] * 15, far=0.01)
    assert all(row["verification_rate"] < 0.5 for row in table["per_target"])
    ages = pp.age_table(BrightnessAge(), images, aged, sources)
    # the painted faces grow brighter, hence older, with the target group
    for s in range(NUM_GROUPS):
        means = [m for t, m in enumerate(ages["mean_age"][s]) if t != s]
        assert means == sorted(means)
    assert len(ages["accuracy"]) == NUM_GROUPS and len(ages["real_accuracy"]) == NUM_GROUPS


class Tint(torch.nn.Module):
    """A generator that keeps the input and adds a red-blue tint."""

    def forward(self, x, y):
        from attngan import GeneratorOutput
        image = (x + torch.tensor([0.2, 0.0, -0.2]).view(1, 3, 1, 1)).clamp(-1, 1)
        return GeneratorOutput(image, torch.ones_like(x[:, :1]), image)


def test_grey_inputs_are_verified_against_their_grey_selves_with_the_colour_added():
    images, sources = _photos()
    args = argparse.Namespace(batch_size=4, far=0.01)
    kept = evaluate_photos._grey_table(args, Keep(), PixelVerifier(), images, sources, [None] * 15, "cpu")
    assert kept["threshold"]["pairs"] == 15 * 14 // 2
    assert all(r["verification_rate"] == 1.0 and r["colour_added"] == 0.0 for r in kept["per_target"])
    tinted = evaluate_photos._grey_table(args, Tint(), PixelVerifier(), images, sources, [None] * 15, "cpu")
    # a grey pixel gains red - blue = 0.4 (51 levels) where the clamp leaves it room, less at the extremes
    assert all(30 < r["colour_added"] <= 51.5 for r in tinted["per_target"])


def _brightness_groups(x):
    """One-hot scores of the group BrightnessAge's age falls in: a classifier that reads the painted faces' ages."""
    groups = torch.as_tensor(age_to_group(BrightnessAge().estimate(x).numpy(), clip_young=True))
    return F.one_hot(groups, NUM_GROUPS).float()


def test_classifier_table_counts_as_the_age_table_does():
    images, sources = _photos()
    painted, _ = pp.age_every_group(Paint(), images)
    table = pp.classifier_table(_brightness_groups, images, painted, sources, batch_size=4)
    ages = pp.age_table(BrightnessAge(), images, painted, sources)
    assert table["accuracy"] == ages["accuracy"] and table["real_accuracy"] == ages["real_accuracy"]
    kept, _ = pp.age_every_group(Keep(), images)
    constant = pp.classifier_table(lambda x: torch.eye(NUM_GROUPS)[[2] * x.shape[0]], images, kept, sources)
    # a classifier that always says 31-40: right for the real 31-40 photos and for every face aged to 31-40
    assert constant["real_accuracy"] == [0.0, 0.0, 1.0, 0.0, 0.0] and constant["accuracy"] == [0.0, 0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("extra", [0.0, 2.0])
def test_classifier_table_counts_a_class_for_generated_faces_apart_from_the_groups(extra):
    images, sources = _photos()
    painted, _ = pp.age_every_group(Paint(), images)
    plain = pp.classifier_table(_brightness_groups, images, painted, sources, batch_size=4)
    assert "generated" not in plain

    def with_extra(x):  # the groups' one-hot scores and a last column that wins (2) or never does (0)
        return torch.cat([_brightness_groups(x), torch.full((x.shape[0], 1), extra)], dim=1)

    table = pp.classifier_table(with_extra, images, painted, sources, batch_size=3)
    assert table["accuracy"] == plain["accuracy"] and table["real_accuracy"] == plain["real_accuracy"]
    share = 1.0 if extra else 0.0
    assert table["generated"] == [share] * NUM_GROUPS
    assert table["real_generated"] == [share if (sources == t).any() else None for t in range(NUM_GROUPS)]
    with pytest.raises(ValueError, match=r"classify must return \(B, 5\) or \(B, 6\) scores, got \(15, 7\)"):
        pp.classifier_table(lambda x: torch.zeros(x.shape[0], 7), images, painted, sources, batch_size=3)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 7), batch=st.integers(1, 5))
def test_classifier_table_rates_are_fractions_or_none_for_empty_groups(n, batch):
    images, sources = _photos(n) if n else (torch.zeros(0, 3, 16, 16), torch.zeros(0, dtype=torch.long))
    aged, _ = pp.age_every_group(Paint(), images)
    table = pp.classifier_table(_brightness_groups, images, aged, sources, batch_size=batch)
    for t in range(NUM_GROUPS):
        present, others = int((sources == t).sum()), int((sources != t).sum())
        assert (table["real_accuracy"][t] is None) == (present == 0)
        assert (table["accuracy"][t] is None) == (others == 0)
        assert all(0 <= r <= 1 for r in (table["real_accuracy"][t], table["accuracy"][t]) if r is not None)


def _bright_photos(n, seed):
    """uint8 photos whose brightness is their group (with noise), and the groups."""
    g = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, NUM_GROUPS, (n,), generator=g)
    level = 30 + 45 * groups.float().view(-1, 1, 1, 1) + 10 * torch.rand(n, 3, 16, 16, generator=g)
    return level.round().clamp(0, 255).to(torch.uint8), groups


def test_a_separate_classifier_learns_groups_that_are_easy_to_tell_apart():
    photos, groups = _bright_photos(200, 0)
    net = estimators.fit_group_classifier(photos, groups, steps=150, width=8, batch_size=32, lr=3e-3)
    test, truth = _bright_photos(100, 1)
    with torch.no_grad():
        accuracy = float((net(test.float() / 127.5 - 1).argmax(1) == truth).float().mean())
    assert accuracy > 0.8 and not net.training
    again = estimators.fit_group_classifier(photos, groups, steps=150, width=8, batch_size=32, lr=3e-3)
    x = test[:4].float() / 127.5 - 1
    with torch.no_grad():
        assert torch.equal(net(x), again(x))  # one seed, one classifier


def test_a_seeded_age_net_leaves_the_global_random_state_alone():
    before = torch.random.get_rng_state()
    a, b = estimators.seeded_age_net(3, width=4), estimators.seeded_age_net(3, width=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    c = estimators.seeded_age_net(4, width=4)
    assert not torch.equal(a.head.weight, c.head.weight)


@pytest.mark.parametrize("images, labels", [
    (torch.zeros(4, 3, 16, 16), torch.zeros(4, dtype=torch.long)),  # not uint8
    (torch.zeros(0, 3, 16, 16, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)),  # no photo
    (torch.zeros(4, 3, 16, 16, dtype=torch.uint8), torch.zeros(3, dtype=torch.long)),  # counts differ
])
def test_a_separate_classifier_refuses_unusable_photos(images, labels):
    with pytest.raises(ValueError, match="uint8 photos"):
        estimators.fit_group_classifier(images, labels, steps=1)


def test_known_subjects_are_not_impostors_of_themselves():
    images, sources = _photos(6)
    aged, _ = pp.age_every_group(Keep(), images)
    table = pp.identity_table(PixelVerifier(), images, aged, sources, ["a", "a", "b", "b", "c", "c"], far=0.5)
    assert table["threshold"]["pairs"] == 15 - 3 and table["threshold"]["subjects_known"] is True


def test_ground_truth_table_puts_copy_the_input_beside_the_aged_photo():
    young, _ = _photos(4)
    old = young.flip(-1)
    out = pp.ground_truth_table(PixelVerifier(), BrightnessAge(), young, old.clone(), old, threshold=50.0)
    assert out["pairs"] == 4
    assert out["aged"]["verification_rate"] == 1.0 and out["aged"]["age_gap"] == 0.0
    assert out["copy"]["age_gap"] >= 0.0 and 0.0 <= out["copy"]["verification_rate"] <= 1.0


@settings(max_examples=25, deadline=None)
@given(ages=st.lists(st.integers(0, 30), min_size=1, max_size=8), split=st.sampled_from([5.0, 10.0, 20.0]))
def test_ground_truth_split_by_source_age_partitions_the_pairs(ages, split):
    young, _ = _photos(len(ages))
    old, _ = _photos(len(ages), seed=1)
    aged = torch.where(torch.arange(len(ages)).view(-1, 1, 1, 1) % 2 == 0, old, young)  # half become the older photo
    out = pp.ground_truth_table(PixelVerifier(), BrightnessAge(), young, aged, old, threshold=50.0,
                                young_ages=ages, split_age=split)
    below, above = out["by_source_age"]
    assert (below["ages"], above["ages"]) == (f"under {split:g}", f"{split:g} and over")
    assert below["pairs"] == sum(a < split for a in ages) and below["pairs"] + above["pairs"] == len(ages)
    for name in ("aged", "copy"):  # the whole table's rates are the pair-weighted mean of the two parts
        parts = [(row["pairs"], row[name]["verification_rate"]) for row in (below, above) if row["pairs"]]
        assert sum(n * r for n, r in parts) / len(ages) == pytest.approx(out[name]["verification_rate"])
    for row in (below, above):
        assert (row["kept_input"] is None) == (row["pairs"] == 0)


def test_ground_truth_kept_input_tells_keeping_the_person_from_becoming_the_older_photo():
    young, _ = _photos(4)
    old, _ = _photos(4, seed=1)
    keep = pp.ground_truth_table(PixelVerifier(), BrightnessAge(), young, young.clone(), old, threshold=90.0)
    become = pp.ground_truth_table(PixelVerifier(), BrightnessAge(), young, old.clone(), old, threshold=90.0)
    assert keep["kept_input"] == 1.0 and keep["aged"]["verification_rate"] == keep["copy"]["verification_rate"]
    assert become["kept_input"] == become["copy"]["verification_rate"] and become["aged"]["verification_rate"] == 1.0
    assert "by_source_age" not in keep  # no ages given
    with pytest.raises(ValueError, match="3 ages for 4 pairs"):
        pp.ground_truth_table(PixelVerifier(), BrightnessAge(), young, young, old, threshold=90.0, young_ages=[1, 2, 3])


@settings(max_examples=20, deadline=None)
@given(people=st.lists(st.sampled_from("abc"), min_size=2, max_size=6), far=st.sampled_from([0.1, 0.5, 1.0]))
def test_ground_truth_threshold_counts_only_other_people_and_accepts_at_most_far(people, far):
    photos, _ = _photos(len(people))
    cal = pp.ground_truth_threshold(PixelVerifier(), photos, people, far=far)
    impostors = sum(people[i] != people[j] for i in range(len(people)) for j in range(i + 1, len(people)))
    assert cal["pairs"] == impostors
    if impostors:
        assert cal["accepted"] <= far * impostors + 1e-9
        young, _ = _photos(2)
        out = pp.ground_truth_table(PixelVerifier(), BrightnessAge(), young, young.clone(), young, threshold=1e9,
                                    own_threshold=cal["threshold"])
        # the aged photo equal to the older photo: refused at an unreachable threshold, accepted at its own
        assert out["aged"]["verification_rate"] == 0.0
        assert out["aged"]["verification_rate_own"] == (1.0 if cal["threshold"] <= out["aged"]["confidence"] else 0.0)
    else:
        assert cal["threshold"] is None


def _write_photos(folder, names, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name in names:
        Image.fromarray(rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8)).save(folder / name, quality=90)


def _tiny_photo_run(tmp_path, monkeypatch, ages, *flags):
    """A 2-iteration run on UTKFace-named random photos of ``ages`` (8 each), an FG-NET-named folder of 3 people
    at 8, 30 and 55, and the stand-in estimators in place of dlib's; the run's folder."""
    _write_photos(tmp_path / "utk", [f"{a}_0_0_2017{i:04d}{k}.jpg.chip.jpg" for i in range(8)
                                     for k, a in enumerate(ages)])
    _write_photos(tmp_path / "fgnet", [f"{s:03d}A{a:02d}.JPG" for s in range(1, 4) for a in (8, 30, 55)], seed=1)
    run = _train_on_photos(tmp_path, "run", *flags)
    monkeypatch.setattr(estimators, "DlibVerifier", PixelVerifier)
    monkeypatch.setattr(estimators, "DlibAgeEstimator", BrightnessAge)
    return run


def _train_on_photos(tmp_path, name, *flags):
    """2 iterations on ``tmp_path / "utk"`` (written by :func:`_tiny_photo_run`) into ``tmp_path / name``."""
    run = tmp_path / name
    assert train.main(["--out", str(run), "--data", str(tmp_path / "utk"), "--data-kind", "utkface", "--max-steps",
                       "2", "--image-size", "32", "--batch-size", "4", "--g-channels", "8", "--g-res-blocks", "1",
                       "--d-channels", "8", "--precision", "fp32", "--no-progress", "--g-condition", "norm",
                       "--lambda-rec", "10", "--test-fraction", "0.5", *flags]) == 0
    return run


def test_evaluate_photos_end_to_end_with_stand_in_estimators(tmp_path, monkeypatch, capsys):
    run = _tiny_photo_run(tmp_path, monkeypatch, [12, 25, 35, 45, 60], "--lambda-judge", "1", "--judge-steps", "2",
                          "--judge-views", "0.2", "--d-fake-class", "--crop", "head,margin=0.1,size=96")
    out = tmp_path / "eval"
    rc = evaluate_photos.main(["--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(out),
                               "--num-faces", "3", "--ground-truth", str(tmp_path / "fgnet"), "--num-examples", "2",
                               "--separate-classifier", "3", "--grey"])
    assert rc == 0
    r = json.loads((out / "results.json").read_text())
    assert r["photos"] == sum(r["photos_per_source"]) and r["config"]["g_condition"] == "norm"
    assert len(r["identity"]["per_target"]) == NUM_GROUPS and r["ground_truth"]["pairs"] == 6
    assert {"aged", "copy"} <= set(r["ground_truth"])
    own = r["ground_truth"]["own_threshold"]  # 3 people x 3 photos: 27 impostor pairs among the 9 photos
    assert own["pairs"] == 27 and own["threshold"] is not None
    assert 0 <= r["ground_truth"]["copy"]["verification_rate_own"] <= 1
    # FG-NET's younger photos are all 8 here: every pair below the split at 10, none above; the report says so
    assert [row["pairs"] for row in r["ground_truth"]["by_source_age"]] == [6, 0]
    assert 0 <= r["ground_truth"]["kept_input"] <= 1
    # every source group's photos are one age here (12, 25, 35, 45, 60): youngest = mean = oldest, reported
    assert [a[1] for a in r["source_ages"]] == [12, 25, 35, 45, 60]
    report = (out / "report.md").read_text()
    assert "Real ages of the photos per source group: 10-20: 12-12 (mean 12)" in report
    assert "copy-the-input" in report and "each photo taken as a person of its own" in report
    assert "| under 10 | 6 |" in report and "| 10 and over |" not in report and "kept the person it was" in report
    assert r["crop"] == "head,margin=0.1,size=96" and "crop head,margin=0.1,size=96." in report  # the model's crop
    assert (out / "examples.png").exists() and (out / "ground_truth.png").exists()
    critic = r["age"]["critic"]  # the run's own critic classifies the aged faces and the real photos
    assert len(critic["accuracy"]) == len(critic["real_accuracy"]) == NUM_GROUPS
    assert all(0 <= a <= 1 for a in critic["accuracy"] + critic["real_accuracy"])
    assert "critic's classifier: aged faces" in report and "beyond what the faces' ages justify" in report
    # its class for generated faces (--d-fake-class) is counted apart from the groups
    assert len(critic["generated"]) == len(critic["real_generated"]) == NUM_GROUPS
    assert all(0 <= a <= 1 for a in critic["generated"] + critic["real_generated"])
    assert "The critic's class for generated faces (--d-fake-class) takes" in report
    sep = r["age"]["separate"]  # trained on the run's 20 training photos (test fraction 0.5), at the run's 32 px
    assert (sep["steps"], sep["photos"], sep["size"]) == (3, 20, 32)
    assert all(0 <= a <= 1 for a in sep["accuracy"] + sep["real_accuracy"])
    assert "A separate age classifier, trained apart from the GAN on its 20 training photos at 32 px" in report
    judge = r["age"]["judge"]  # the run's frozen age judge (--lambda-judge), read from its checkpoint
    assert all(0 <= x <= 1 for x in judge["accuracy"] + judge["real_accuracy"])
    assert "The frozen age judge the generator was also trained to satisfy" in report
    views = judge["views"]  # also on random views, at the amount the judge was trained and applied with
    assert views["amount"] == 0.2 and all(0 <= x <= 1 for x in views["accuracy"] + views["real_accuracy"])
    assert "On random views of the same images (shifted and zoomed by up to 0.2" in report
    grey = r["identity_grey"]  # --grey: the same photos turned grey, verified against their grey selves
    assert len(grey["per_target"]) == NUM_GROUPS and all(x["colour_added"] >= 0 for x in grey["per_target"])
    assert "## Greyscale inputs" in report and "verified, grey inputs" in report


def test_another_runs_judge_classifies_the_aged_faces_and_a_run_without_one_is_refused(tmp_path, monkeypatch,
                                                                                        capsys):
    judged = _tiny_photo_run(tmp_path, monkeypatch, [12, 25, 35, 45, 60], "--lambda-judge", "1", "--judge-steps", "2")
    plain = _train_on_photos(tmp_path, "plain")
    out = tmp_path / "eval"
    assert evaluate_photos.main(["--checkpoint", str(plain / "checkpoints" / "last.pt"), "--out", str(out),
                                 "--num-faces", "2", "--num-examples", "0", "--judge-of",
                                 str(judged / "checkpoints" / "last.pt")]) == 0
    r = json.loads((out / "results.json").read_text())
    judge = r["age"]["judge"]
    assert "generated" not in r["age"]["critic"]  # a plain critic has no class for generated faces
    assert judge["own"] is False and judge["checkpoint"] == str(judged / "checkpoints" / "last.pt")
    assert len(judge["accuracy"]) == NUM_GROUPS
    assert judge["views"]["amount"] == evaluate_photos.JUDGE_EVAL_VIEWS  # its run trained without views
    assert "which this generator was not trained against" in (out / "report.md").read_text()
    refused = tmp_path / "refused"
    assert evaluate_photos.main(["--checkpoint", str(judged / "checkpoints" / "last.pt"), "--out", str(refused),
                                 "--judge-of", str(plain / "checkpoints" / "last.pt")]) == 2
    assert "holds no frozen age judge (its run was not trained with --lambda-judge)" in capsys.readouterr().err
    assert not refused.exists()


def test_evaluate_photos_refuses_a_synthetic_run_without_photos_and_leaves_no_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--out", str(run), "--max-steps", "1", "--image-size", "64", "--batch-size", "4",
                       "--num-subjects", "10", "--g-channels", "8", "--g-res-blocks", "1", "--d-channels", "8",
                       "--precision", "fp32", "--no-progress"]) == 0
    out = tmp_path / "eval"
    assert evaluate_photos.main(["--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(out)]) == 2
    assert "synthetic faces: pass --data" in capsys.readouterr().err
    assert not out.exists()


def test_a_drop_young_run_is_evaluated_on_the_children_only_when_asked(tmp_path, monkeypatch):
    """--drop-young leaves the children out of the held-out photos; --with-young puts them back (the photos of a
    --clip-young run of the same seed); the FG-NET pairs, whose younger photos are children, stay in both."""
    run = _tiny_photo_run(tmp_path, monkeypatch, [5, 15, 25, 35, 45, 60], "--drop-young")
    counts = {}
    for flags in ((), ("--with-young",)):
        out = tmp_path / f"eval{len(flags)}"
        assert evaluate_photos.main(["--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(out),
                                     "--num-faces", "20", "--ground-truth", str(tmp_path / "fgnet"),
                                     "--num-examples", "0", *flags]) == 0
        r = json.loads((out / "results.json").read_text())
        assert r["config"]["drop_young"] and r["with_young"] == bool(flags) and r["ground_truth"]["pairs"] == 6
        counts[bool(flags)] = r["photos_per_source"]
        assert r["source_ages"][0][0] == (5 if flags else 15)  # the children are the 10-20 group's youngest
    assert counts[True][1:] == counts[False][1:] and counts[True][0] > counts[False][0] > 0


@settings(max_examples=50, deadline=None)
@given(people=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 4)), max_size=6), k=st.integers(0, 14))
def test_example_pairs_alternate_child_and_older_photos_and_spread_over_people(people, k):
    # as aging_pairs makes them: each person's pairs are consecutive and share the younger photo (and its age)
    subjects = [p for p, (_, n) in enumerate(people) for _ in range(n)]
    ages = [people[p][0] for p in subjects]
    picks = evaluate_photos.example_pairs(ages, subjects, k)
    assert len(picks) == min(k, len(ages)) and len(set(picks)) == len(picks)
    older = [ages[j] >= evaluate_photos.GT_SPLIT_AGE for j in picks]
    both = min(sum(a >= 10 for a, _ in people), sum(a < 10 for a, _ in people))  # people, one first pair each
    assert all(older[i] != older[i + 1] for i in range(min(len(picks), 2 * both) - 1))
    for cls in (False, True):  # within a class, every person's first pair before anyone's second
        shown = [subjects[j] for j, o in zip(picks, older) if o == cls]
        n = sum((a >= 10) == cls for a, _ in people)
        assert len(set(shown[:n])) == min(len(shown), n)


def test_a_source_told_run_is_evaluated_told_the_photos_groups_or_not(tmp_path, monkeypatch, capsys):
    """A --g-source run: evaluate_photos.py tells it each photo's group from the file name by default, and
    --source unknown withholds it; the two differ, and results.json says which it was. A plain run is never told."""
    run = _tiny_photo_run(tmp_path, monkeypatch, [12, 25, 35, 45, 60], "--g-source", "0.75", "--max-steps", "4")
    results = {}
    for source in ("told", "unknown"):
        out = tmp_path / f"eval_{source}"
        assert evaluate_photos.main(["--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(out),
                                     "--num-faces", "3", "--ground-truth", str(tmp_path / "fgnet"),
                                     "--num-examples", "2", "--source", source]) == 0
        results[source] = json.loads((out / "results.json").read_text())
    assert results["told"]["source_told"] is True and results["unknown"]["source_told"] is False
    assert results["told"]["config"]["g_source"] == 0.75
    assert "was told each photo's own age group" in (tmp_path / "eval_told" / "report.md").read_text()
    effect = results["told"]["source_effect"]
    assert effect == results["unknown"]["source_effect"]  # measured alike whichever way the faces are reported
    assert effect["told_vs_unknown"] > 0 and effect["from_input"] > 0
    assert "told against not told" in (tmp_path / "eval_told" / "report.md").read_text()
    assert "was not told the photos' own age groups" in (tmp_path / "eval_unknown" / "report.md").read_text()
    rates = [[row["mask_mean"] for row in results[s]["background"]] for s in ("told", "unknown")]
    assert rates[0] != rates[1]  # the source code reaches the aged faces
    plain = _train_on_photos(tmp_path, "plain")
    out = tmp_path / "eval_plain"
    assert evaluate_photos.main(["--checkpoint", str(plain / "checkpoints" / "last.pt"), "--out", str(out),
                                 "--num-faces", "2", "--num-examples", "0"]) == 0
    assert json.loads((out / "results.json").read_text())["source_told"] is False
    assert json.loads((out / "results.json").read_text())["source_effect"] is None
    assert "--g-source" not in (out / "report.md").read_text()


def test_source_effect_separates_a_generator_that_reads_the_source_from_one_that_ignores_it():
    """A stand-in that brightens by the told source group's index differs told/unknown/wrong by exactly that;
    one that reads the target alone shows no effect at all, while its targets still differ."""
    from attngan import GeneratorOutput

    class Reads(torch.nn.Module):
        num_classes = 2 * NUM_GROUPS

        def forward(self, x, codes):
            told = (codes[:, NUM_GROUPS:] * torch.arange(NUM_GROUPS)).sum(1) * 0.1
            target = (codes[:, :NUM_GROUPS] * torch.arange(NUM_GROUPS)).sum(1) * 0.05
            out = (x * 0.5 + (told + target).view(-1, 1, 1, 1)).clamp(-1, 1)
            return GeneratorOutput(out, torch.ones_like(x[:, :1]), out)

    class Ignores(Reads):
        def forward(self, x, codes):
            return super().forward(x, torch.cat([codes[:, :NUM_GROUPS], torch.zeros_like(codes[:, NUM_GROUPS:])], 1))

    images = torch.zeros(10, 3, 8, 8)
    sources = torch.arange(10) % NUM_GROUPS
    ignored = pp.source_effect(Ignores(), images, sources)
    assert ignored["told_vs_unknown"] == ignored["told_vs_wrong"] == 0 and ignored["between_targets"] > 0
    read = pp.source_effect(Reads(), images, sources)
    # told s: +0.1 s; unknown: 0; mean s over 0..4 = 2 -> 0.2 in [-1, 1] units = 25.5 levels (quantised to 8 bits)
    assert abs(read["told_vs_unknown"] - 25.5) < 1.0 and read["told_vs_wrong"] > 0
