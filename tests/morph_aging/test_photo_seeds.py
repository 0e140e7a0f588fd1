"""photo_summary.py and photo_seeds.py: evaluate_photos.py results of several seeds, read back, checked, their
mean, spread and targets."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import photo_seeds as ps
import photo_summary as summ
from ages import NUM_GROUPS
from extras import photo_result as result
from metrics import mean_and_spread

def _target(summary, start):
    return next(t for t in summary["targets"] if t["target"].startswith(start))


def test_mean_and_spread_over_seeds_per_target_group():
    runs = [result(0, ver=(0.8, 0.9, 1.0, 0.9, 0.9)), result(1, ver=(0.9, 0.9, 1.0, 0.9, 0.9)),
            result(2, ver=(1.0, 0.9, 1.0, 0.9, 0.9))]
    s = summ.summarize(runs)
    v = s["per_target"][0]["verification_rate"]
    assert v["mean"] == pytest.approx(0.9) and v["std"] == pytest.approx(0.1)
    assert (v["min"], v["max"], v["n"]) == (0.8, 1.0, 3)
    assert s["seeds"] == [0, 1, 2] and s["thresholds"] == [55.0, 56.0, 57.0]
    t = _target(s, "verification")
    assert (t["met"], t["seeds"]) == (2, 3) and t["worst"] == pytest.approx(-0.1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=NUM_GROUPS, max_size=NUM_GROUPS), min_size=1, max_size=5),
       st.floats(0.05, 1))
def test_a_target_is_met_in_the_seeds_whose_worst_group_reaches_it(rates, bar):
    s = summ.summarize([result(i, ver=r) for i, r in enumerate(rates)], min_verification=bar)
    t = _target(s, "verification")
    worst = [min(r) - bar for r in rates]
    assert t["met"] == sum(w >= -summ.TOLERANCE for w in worst)
    assert t["worst"] == pytest.approx(min(worst), abs=summ.TOLERANCE)
    stat = s["per_target"][0]["verification_rate"]
    assert stat["min"] - 1e-12 <= stat["mean"] <= stat["max"] + 1e-12


def test_float32_rates_at_the_bar_meet_it():
    s = summ.summarize([result(0, ver=(0.8999999761581421,) * 5)])
    assert _target(s, "verification")["met"] == 1


def test_age_rising_and_background_targets():
    runs = [result(0, acc=(0.5, 0.3, 0.5, 0.5, 0.5), rising=(True, False, True, None, True),
                   psnr=(24.0,) + (30.0,) * 4), result(1)]
    s = summ.summarize(runs)
    age, rise, bg = (_target(s, k) for k in ("age accuracy", "mean estimated age", "background"))
    assert (age["met"], age["worst"]) == (1, pytest.approx(-0.1))
    assert s["rising"] == [3, 5] and s["sources"] == [4, 5]
    assert (rise["met"], rise["worst"]) == (1, -1.0)
    assert (bg["met"], bg["worst"]) == (1, pytest.approx(-1.0))


def test_ground_truth_targets_only_when_every_seed_has_them():
    assert summ.summarize([result(0, gt=(0.1, 0.2, 15.0, 20.0)), result(1)])["ground_truth"] is None
    s = summ.summarize([result(0, gt=(0.1, 0.2, 15.0, 20.0)), result(1, gt=(0.25, 0.2, 21.0, 20.0))])
    assert s["ground_truth"]["aged"]["age_gap"]["mean"] == pytest.approx(18.0)
    nearer = _target(s, "ground truth: aged photo nearer")
    assert (nearer["met"], nearer["worst"]) == (1, pytest.approx(-1.0))
    held, own = (_target(s, f"ground truth: aged verified as often as the input ({w}") for w in ("held", "its own"))
    assert (held["met"], held["worst"]) == (1, pytest.approx(-0.1))
    assert (own["met"], own["worst"]) == (1, pytest.approx(-0.05))


def test_seeds_of_one_recipe_may_differ_in_how_they_were_kept():
    summ.check_comparable([result(0), result(1, max_minutes=90.0, out="elsewhere", data="/mnt/UTK")])


def test_a_setting_an_older_result_lacks_counts_as_its_default():
    older = result(1)  # trained before the options existed: its config has no such fields
    summ.check_comparable([result(0, lambda_judge=0.0, judge_views=0.0, judge_steps=1500), older])
    with pytest.raises(summ.ResultsError, match=r"lambda_judge \(100.0 vs 0.0\)"):
        summ.check_comparable([result(0, lambda_judge=100.0), older])


@pytest.mark.parametrize("change, words", [
    (lambda r: r["config"].update(lambda_att=4.0), "not a seed of .* lambda_att \\(2.0 vs 4.0\\)"),
    (lambda r: r.update(with_young=True), "measured unlike .* with_young"),
    (lambda r: r.update(photos_per_source=[20] * 5), "photos_per_source"),
    (lambda r: r.update(data="/data/FGNET"), "measured unlike .* data"),
    (lambda r: r["config"].update(seed=0), "seed\\(s\\) 0 given more than once"),
])
def test_incomparable_results_are_refused(change, words):
    other = result(1)
    change(other)
    with pytest.raises(summ.ResultsError, match=words):
        summ.check_comparable([result(0), other])


def test_ground_truth_on_different_folders_is_refused():
    with pytest.raises(summ.ResultsError, match="ground truth"):
        summ.check_comparable([result(0, gt=(0.1, 0.2, 15.0, 20.0)), result(1)])


def test_markdown_shows_spread_only_over_several_seeds():
    one = ps.render_markdown(summ.summarize([result(0)]))
    three = ps.render_markdown(summ.summarize([result(0), result(1, ver=(0.85,) * 5), result(2)]))
    assert "±" not in one.split("## Targets")[0]
    assert "| 10-20 | 91.7 ± 5.8 [85.0-95.0] |" in three
    assert "| 50.0 ± 0.0 [50.0-50.0] | 40.0 ± 0.0 [40.0-40.0] | - |" in three  # no critic figures: older results
    assert "| verification >= 90% in every target group | 2 of 3 seeds | -5.0 points |" in three


def _write(tmp_path, runs):
    paths = []
    for r in runs:
        folder = tmp_path / f"s{r['config']['seed']}"
        folder.mkdir()
        r = copy.deepcopy(r)
        r.pop("path")
        (folder / "results.json").write_text(json.dumps(r))
        paths.append(str(folder))
    return paths


def test_cli_writes_markdown_and_json(tmp_path, capsys):
    paths = _write(tmp_path, [result(0, gt=(0.1, 0.2, 15.0, 20.0)), result(1, gt=(0.1, 0.2, 15.0, 20.0))])
    md, js = tmp_path / "seeds.md", tmp_path / "seeds.json"
    assert ps.main([*paths, "--out", str(md), "--json", str(js), "--min-psnr", "28"]) == 0
    out = capsys.readouterr().out
    assert out == md.read_text() and "## Ground truth of aging" in out
    data = json.loads(js.read_text())
    assert data["paths"] == [f"{p}/results.json" for p in paths]
    assert _target(data, "background PSNR >= 28 dB")["met"] == 0


@pytest.mark.parametrize("make, words", [
    (lambda d: None, "no such file"),
    (lambda d: (d / "results.json").write_text("{not json"), "cannot read it as JSON"),
    (lambda d: (d / "results.json").write_text('{"config": {}}'), "not an evaluate_photos.py result"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, make, words):
    folder = tmp_path / "eval"
    folder.mkdir()
    make(folder)
    assert ps.main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("photo_seeds.py: error: ") and words in err and err.count("\n") == 1


def test_mean_and_spread_matches_the_sample_formula():
    s = mean_and_spread([2.0, None, 4.0, 6.0])
    assert (s["mean"], s["std"], s["n"]) == (4.0, 2.0, 3)


def test_the_critics_accuracy_on_the_aged_faces_is_summarised_where_recorded():
    runs = [result(0), result(1)]
    runs[0]["age"]["critic"] = {"accuracy": [0.9] * NUM_GROUPS, "real_accuracy": [0.3] * NUM_GROUPS}
    runs[1]["age"]["critic"] = {"accuracy": [0.7] * NUM_GROUPS, "real_accuracy": [0.3] * NUM_GROUPS}
    stat = summ.summarize(runs)["per_target"][4]["critic_accuracy"]
    assert stat["mean"] == pytest.approx(0.8) and stat["n"] == 2
    runs[1]["age"]["critic"] = None  # an export: no critic
    assert summ.summarize(runs)["per_target"][4]["critic_accuracy"]["n"] == 1


def test_an_evaluation_held_inside_a_larger_json_is_read_by_its_key_path(tmp_path):
    held = copy.deepcopy(result(3))
    held.pop("path")
    file = tmp_path / "record.json"
    file.write_text(json.dumps({"about": "runs", "runs": {"seed3": {"eval": held, "train_seconds": 1}}}))
    (r,) = summ.load_results([f"{file}#runs.seed3.eval"])
    assert r["path"] == f"{file}#runs.seed3.eval" and r["config"]["seed"] == 3
    with pytest.raises(summ.ResultsError, match="has no key 'runs.seed4'"):
        summ.load_results([f"{file}#runs.seed4.eval"])
    with pytest.raises(summ.ResultsError, match="not an evaluate_photos.py result"):
        summ.load_results([f"{file}#runs.seed3"])
