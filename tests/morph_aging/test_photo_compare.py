"""photo_compare.py: several recipes' evaluations on photographs side by side, a table and a picture."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import photo_compare as pc
from ages import NUM_GROUPS
from extras import importable, photo_result as result
from photo_summary import ResultsError

GT = (0.05, 0.16, 15.0, 20.4)


@pytest.mark.parametrize("text, label, evals", [
    ("base=a/eval", "base", ["a/eval"]),
    ("judge 30 = s0/eval, s1/eval", "judge 30", ["s0/eval", "s1/eval"]),
    ("x=f.json#runs.seed0.eval", "x", ["f.json#runs.seed0.eval"]),
])
def test_a_recipe_is_a_label_and_its_seeds(text, label, evals):
    assert pc.parse_recipe(text) == (label, evals)


@pytest.mark.parametrize("text, words", [("a/eval", "LABEL=EVAL"), ("=a/eval", "LABEL=EVAL"),
                                         ("x=a,,b", "an empty evaluation"), ("x=", "an empty evaluation")])
def test_a_malformed_recipe_is_refused(text, words):
    with pytest.raises(ResultsError, match=words):
        pc.parse_recipe(text)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=NUM_GROUPS, max_size=NUM_GROUPS), min_size=1, max_size=4),
       st.lists(st.floats(0, 1), min_size=NUM_GROUPS, max_size=NUM_GROUPS))
def test_the_worst_group_is_taken_after_the_mean_over_seeds(rates, real):
    runs = [result(i, ver=v, acc=v, real=real) for i, v in enumerate(rates)]
    (row,) = pc.compare([("r", runs)])["rows"]
    means = [sum(v[t] for v in rates) / len(rates) for t in range(NUM_GROUPS)]
    assert row["worst_verification"] == pytest.approx(min(means))
    assert row["worst_age_margin"] == pytest.approx(min(m - r for m, r in zip(means, real)))
    assert [s["worst_verification"] for s in row["per_seed"]] == [min(v) for v in rates]
    assert row["worst_verification"] >= min(s["worst_verification"] for s in row["per_seed"]) - 1e-12


def test_targets_met_count_only_targets_every_seed_meets():
    good = result(0, ver=(0.95,) * 5, acc=(0.5,) * 5, real=(0.4,) * 5, psnr=(27.0,) * 5, gt=(0.2, 0.16, 15.0, 20.4))
    bad_psnr = result(1, psnr=(24.0,) + (27.0,) * 4, gt=(0.2, 0.16, 15.0, 20.4))
    rows = pc.compare([("one", [good]), ("two", [copy.deepcopy(good), bad_psnr])])["rows"]
    # the targets: verification, age, rising, background, FG-NET age gap, FG-NET verification at two thresholds
    assert (rows[0]["targets_met"], rows[0]["targets"]) == (7, 7)
    assert rows[1]["targets_met"] == 6 and rows[1]["worst_psnr"] == pytest.approx(25.5)


@pytest.mark.parametrize("recipes, words", [
    (lambda: [], "no recipes"),
    (lambda: [("a", [result(0)]), ("a", [result(1)])], "label\\(s\\) 'a' given more than once"),
    (lambda: [("a", [result(0), result(1, lambda_att=4.0)])], "not a seed of"),
    (lambda: [("a", [result(0)]), ("b", [dict(result(1), with_young=True)])], "measured unlike .* with_young"),
    (lambda: [("a", [result(0, gt=GT)]), ("b", [result(1)])], "measured unlike .* ground truth"),
])
def test_recipes_that_cannot_be_compared_are_refused(recipes, words):
    with pytest.raises(ResultsError, match=words):
        pc.compare(recipes())


def test_different_recipes_measured_alike_are_compared():
    rows = pc.compare([("no judge", [result(0)]), ("judge", [result(0, lambda_judge=30.0)])])["rows"]
    assert [r["label"] for r in rows] == ["no judge", "judge"]


def test_markdown_and_rst_hold_the_same_cells():
    table = pc.compare([("base", [result(0, ver=(0.9, 0.8, 1.0, 1.0, 1.0), gt=GT)]),
                        ("seeds", [result(0, gt=GT), result(1, rising=(True, False) + (True,) * 3, gt=GT)])])
    md, rst = pc.render_markdown(table), pc.render_rst(table)
    assert "| base | 1 (0) | 80 | +10 | 50 / 50 / 50 / 50 / 50 | 5 of 5 | 27.0 | 5.0 / 16.0 | 15.0 / 20.4 |" in md
    assert "| seeds | 2 (0, 1) | 95 |" in md and "| 4.5 of 5 |" in md
    assert rst.startswith(".. list-table::\n   :header-rows: 1\n") and "   * - seeds\n     - 2 (0, 1)\n" in rst
    assert md.count("| base |") == 1 and "(base's photos): 40 / 40 / 40 / 40 / 40%" in md


def _write(tmp_path, name, r):
    r = copy.deepcopy(r)
    r.pop("path")
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(r))
    return str(folder)


def test_cli_writes_every_output(tmp_path, capsys):
    a = _write(tmp_path, "a", result(0, gt=GT))
    s0, s1 = _write(tmp_path, "s0", result(0, gt=GT)), _write(tmp_path, "s1", result(1, gt=GT))
    md, rst, js = tmp_path / "t.md", tmp_path / "t.rst", tmp_path / "t.json"
    assert pc.main([f"a={a}", f"b={s0},{s1}", "--out", str(md), "--rst", str(rst), "--json", str(js)]) == 0
    assert capsys.readouterr().out == md.read_text()
    assert "list-table" in rst.read_text()
    assert [r["seeds"] for r in json.loads(js.read_text())["rows"]] == [[0], [0, 1]]


@pytest.mark.parametrize("args, words", [(["nolabel"], "LABEL=EVAL"), (["a=missing"], "no such file")])
def test_cli_errors_are_one_line(tmp_path, capsys, args, words):
    assert pc.main([a.replace("missing", str(tmp_path / "missing")) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("photo_compare.py: error: ") and words in err and err.count("\n") == 1


@pytest.mark.skipif(not importable("matplotlib"), reason="the plots extra (matplotlib) is not installed")
def test_the_tradeoff_picture_is_a_png(tmp_path):
    from PIL import Image

    table = pc.compare([("a", [result(0, gt=GT)]), ("b", [result(0, ver=(0.5,) * 5, gt=GT), result(1, gt=GT)])])
    path = tmp_path / "tradeoff.png"
    pc.plot_tradeoff(table, str(path))
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 300  # two panels side by side


def test_without_matplotlib_the_picture_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ResultsError, match=r"--plot needs matplotlib: pip install -e \"\.\[plots\]\""):
        pc.plot_tradeoff(pc.compare([("a", [result(0)])]), "unused.png")


def test_the_overview_in_the_docs_is_what_the_recorded_runs_give(monkeypatch, tmp_path):
    """docs/results.rst includes photo_recipes.inc, written by photo_compare.py from the recorded runs' JSONs;
    regenerated here, so that the overview cannot drift from the records."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    out = tmp_path / "photo_recipes.inc"
    assert pc.main(["@docs/_static/results/photo_recipes.args", "--rst", str(out)]) == 0
    assert out.read_text() == (root / "docs/_static/results/photo_recipes.inc").read_text()
