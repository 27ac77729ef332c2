"""The cross-project starter: its per-repository transformations (hand-worked values), the shipped model, and
that the build script reproduces the shipped files (bit for bit on one machine)."""

from __future__ import annotations

import gzip
import json
import math
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.data import file_sha256
from defectops.data.schemas import EFFORT, FEATURES, LABEL, TIME
from defectops.errors import DataError, InputError, ModelError
from defectops.training import describe_starter, load_starter, starter_card
from defectops.training.models import RepoTransform, StarterJIT, load_model, make_model
from defectops.training.starter import build

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "jit"
#: The datasets kept in the repository (gzip copies of published files, data/jit/PROVENANCE.md).
VENDORED = Path(__file__).resolve().parents[2] / "data" / "jit"
SHIPPED = Path(build.__file__).parent / "v3"


def test_rank_transform_is_the_mid_rank_percentile_of_the_history() -> None:
    fitted = RepoTransform.fit("rank", np.array([[1.0], [2.0], [2.0], [3.0]]), ["la"])
    # p(v) = (#{r < v} + #{r <= v}) / (2n): p(2) = (1 + 3) / 8; p(2.5) = (3 + 3) / 8; below all 0, above all 1
    out = fitted.apply(np.array([[2.0], [2.5], [0.0], [9.0], [1.0], [3.0]]))
    assert out[:, 0].tolist() == [0.5, 0.75, 0.0, 1.0, 0.125, 0.875]


def test_log_z_transform_standardises_log1p_with_the_history() -> None:
    e1 = math.e - 1.0
    fitted = RepoTransform.fit("log-z", np.array([[0.0, 5.0], [e1, 5.0]]), ["la", "fix"])
    # logs 0 and 1: mean 0.5, population std 0.5; a constant column gets std 1 (so values are centred only)
    out = fitted.apply(np.array([[e1, 5.0], [0.0, 6.0], [-3.0, 5.0]]))
    assert out[0].tolist() == pytest.approx([1.0, 0.0])
    assert out[1].tolist() == pytest.approx([-1.0, math.log(7.0) - math.log(6.0)])
    assert out[2, 0] == pytest.approx(-1.0)  # negative values count as 0 (log1p(max(v, 0)))


def test_transform_state_round_trips_and_bad_histories_are_refused() -> None:
    history = np.array([[1.0, 0.0], [4.0, 1.0], [4.0, 1.0]])
    for kind in ("rank", "log-z"):
        fitted = RepoTransform.fit(kind, history, ["la", "fix"])
        again = RepoTransform.from_state(fitted.state())
        probe = np.array([[3.0, 1.0], [10.0, 0.0]])
        assert np.array_equal(again.apply(probe), fitted.apply(probe))
    with pytest.raises(InputError, match="unknown transformation"):
        RepoTransform.fit("quantile", history, ["la", "fix"])
    with pytest.raises(InputError, match="empty"):
        RepoTransform.fit("rank", np.empty((0, 2)), ["la", "fix"])
    with pytest.raises(InputError, match="missing or infinite"):
        RepoTransform.fit("rank", np.array([[np.nan, 1.0]]), ["la", "fix"])


def test_project_weights_give_every_project_and_class_the_same_mass() -> None:
    a = np.array([1, 0, 0, 0])
    b = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    w = build.project_weights([a, b])
    assert w.mean() == pytest.approx(1.0)
    # each (project, class) cell holds a quarter of the total weight
    cells = [w[:4][a == 1].sum(), w[:4][a == 0].sum(), w[4:][b == 1].sum(), w[4:][b == 0].sum()]
    assert cells == pytest.approx([len(w) / 4] * 4)
    with pytest.raises(InputError, match="defect-inducing and clean"):
        build.project_weights([np.array([0, 0])])


def test_as_of_training_rows_meet_only_the_history_before_them() -> None:
    """20 changes whose every metric is the change's index, in 10 parts of 2. By hand, ``log-z``: rows 0–1
    are fitted on themselves (logs 0 and ln 2: mean = std = ln2/2), so z(0) = -1 and z(1) = 1; rows 2–3 on
    rows 0–1: z(2) = (ln 3 - ln2/2) / (ln2/2) = 2 log2(3) - 1 = 2.16993, z(3) = (2 ln2 - ln2/2) / (ln2/2) = 3.
    ``whole`` fits all 20 rows, the future included."""
    table = pd.DataFrame({name: np.arange(20, dtype=float) for name in FEATURES})
    project = build.Project("p", table)
    rows = build.training_rows(build.Recipe("log-z", "as-of"), project)
    assert rows[:4, 0] == pytest.approx([-1.0, 1.0, 2 * math.log2(3) - 1, 3.0])
    assert (rows == rows[:, :1]).all()  # every feature the same
    values = table.to_numpy()
    last = RepoTransform.fit("log-z", values[:18], FEATURES).apply(values[18:])
    assert rows[18:] == pytest.approx(last)
    whole = build.training_rows(build.Recipe("log-z", "whole"), project)
    assert whole == pytest.approx(RepoTransform.fit("log-z", values, FEATURES).apply(values))
    assert build.Recipe("rank", "as-of", 400).label == "rank as-of 400"


def test_the_candidates_are_both_transforms_as_of_at_three_booster_sizes() -> None:
    assert [r.label for r in build.RECIPES] == [
        f"{t} as-of {n}" for t in ("log-z", "rank") for n in (200, 400, 800)
    ]


def _toy_project(name: str, seed: int) -> build.Project:
    """A small project whose risk grows with ``la`` (so every booster has something to learn)."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({name: rng.integers(0, 50, 120).astype(float) for name in FEATURES})
    table[LABEL] = (table["la"] + rng.integers(0, 30, 120) > 45).astype("int64")
    table[EFFORT] = table["la"] + table["ld"]
    table[TIME] = pd.date_range("2020-01-01", periods=120, freq="D", tz="UTC")
    return build.Project(name, table)


def test_a_booster_cache_trains_each_training_set_once_with_the_recipes_rounds() -> None:
    projects = [_toy_project(n, i) for i, n in enumerate(("a", "b", "c"))]
    recipe = build.Recipe("rank", "as-of", 400)
    cache: build.BoosterCache = {}
    first = build.held_out(recipe, projects[:2], projects[2], cache=cache)
    assert list(cache) == [(recipe, ("a", "b"), 0)]
    assert cache[(recipe, ("a", "b"), 0)].booster_.num_trees() == 400
    again = build.held_out(recipe, projects[:2], projects[2], cache=cache)
    assert len(cache) == 1
    assert np.array_equal(first.raw, again.raw)
    uncached = build.held_out(recipe, projects[:2], projects[2])
    assert np.array_equal(first.raw, uncached.raw)


def test_a_gzip_copy_hashes_as_the_file_it_compresses(tmp_path: Path) -> None:
    copy = tmp_path / "x.csv.gz"
    copy.write_bytes(gzip.compress(b"abc", mtime=0))
    # SHA-256("abc"), FIPS 180-2 appendix B.1
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(copy, decompressed=True) == abc
    assert file_sha256(copy) != abc  # the compressed bytes themselves


def test_the_vendored_datasets_are_the_published_files_and_load_with_their_counts() -> None:
    provenance = (VENDORED / "PROVENANCE.md").read_text()
    assert "Copyright (c) 2021 Zhengran Zeng" in (VENDORED / "LICENSE-ISSTA21-JIT-DP").read_text()
    # rows and defect-inducing changes as counted in the published CSVs (PROVENANCE.md)
    counts = {"qt": (23912, 3582), "gerrit": (14927, 1781), "go": (19009, 8145), "platform": (11034, 4056)}
    projects = build.load_projects([VENDORED], list(counts))
    for project in projects:
        assert (len(project.table), int(project.table[LABEL].sum())) == counts[project.name]
        assert project.sha256 == build.DATASETS[f"{project.name}.csv"].sha256
        assert project.sha256 in provenance
        assert project.table[TIME].is_monotonic_increasing
    assert sorted(p.name for p in VENDORED.glob("*.gz")) == sorted(f"{n}.csv.gz" for n in counts)


def test_a_dataset_that_is_not_the_published_file_is_refused(tmp_path: Path) -> None:
    published = gzip.decompress((VENDORED / "platform.csv.gz").read_bytes())
    (tmp_path / "platform.csv.gz").write_bytes(
        gzip.compress(published.replace(b",1,1,", b",0,0,", 1), mtime=0)
    )
    with pytest.raises(DataError, match=r"is not the published platform\.csv"):
        build.load_projects([tmp_path], ["platform"])
    (tmp_path / "go.csv.gz").write_bytes(gzip.compress(published, mtime=0)[:-100])  # truncated
    with pytest.raises(DataError, match="cannot be read"):
        build.load_projects([tmp_path], ["go"])
    with pytest.raises(InputError, match=r"qt\.csv is in none of"):
        build.load_projects([tmp_path], ["qt"])
    assert build.main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) != 0


def _history(n: int = 300, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.lognormal(1.0, 1.0, n).round() for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, n).astype(float)
    frame["entropy"] = rng.uniform(0, 3, n)
    return frame


def test_the_shipped_starter_loads_and_needs_a_repository_history_to_score() -> None:
    starter = load_starter()
    assert isinstance(starter, StarterJIT)
    assert starter.cross_project
    assert starter.kind == "starter"
    assert not starter.adapted
    assert list(starter.features_) == list(FEATURES)
    card = starter_card()
    assert card["selection"]["chosen"] == f"{starter.transform} {card['training_history']} {card['trees']}"
    assert starter.transform == card["transform"]
    assert tuple(starter.training_data) == tuple(p["project"] for p in card["training_data"])
    assert starter.threshold_ == pytest.approx(card["threshold"])
    assert "cross-project starter v3" in describe_starter(starter)
    assert describe_starter(make_model("lightgbm")) == ""
    with pytest.raises(ModelError, match="not fitted to a repository"):
        starter.predict_proba(_history(5))
    # small enough to ship in the package: 800 trees of 8 leaves are ~0.8 MB of text, ~0.3 MB in the wheel's zip
    assert sum(f.stat().st_size for f in SHIPPED.iterdir()) < 1_000_000


def test_an_adapted_starter_scores_explains_exactly_and_round_trips(tmp_path: Path) -> None:
    history = _history()
    starter = load_starter().adapt(history)
    assert starter.adapted
    assert not load_starter().adapted  # adapting returns a copy
    rows = history.iloc[:20]
    proba = starter.predict_proba(rows)[:, 1]
    assert ((proba > 0) & (proba < 1)).all()
    for explanation, p, (_, row) in zip(starter.explain(rows, top_k=14), proba, rows.iterrows(), strict=True):
        assert explanation.probability == pytest.approx(p, abs=1e-12)
        logit = explanation.base + sum(c.contribution for c in explanation.contributions) + explanation.rest
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(p, abs=1e-12)
        for c in explanation.contributions:  # reasons show the repository's raw values, not z-scores
            assert c.value == row[c.feature]
    # a larger change than everything in the history is riskier than the smallest change, all else equal
    small = rows.iloc[[0]].copy()
    big = small.copy()
    for name in ("la", "ld", "nf", "ns", "nd", "lt"):
        small[name] = history[name].min()
        big[name] = history[name].max() * 10
    assert starter.predict_proba(big)[0, 1] > starter.predict_proba(small)[0, 1]
    saved = load_model(starter.save(tmp_path / "m"))
    assert isinstance(saved, StarterJIT)
    assert saved.adapted
    assert np.array_equal(saved.predict_proba(rows), starter.predict_proba(rows))
    assert np.array_equal(
        pickle.loads(pickle.dumps(starter)).predict_proba(rows), starter.predict_proba(rows)
    )
    with pytest.raises(ModelError, match="build_starter"):
        starter.fit(rows, np.zeros(len(rows)))
    with pytest.raises(InputError, match="unknown model"):
        make_model("starter")


def test_the_transformation_of_a_repository_changes_its_scores() -> None:
    history = _history()
    rows = history.iloc[:50]
    same = load_starter().adapt(history).predict_proba(rows)[:, 1]
    bigger = history.copy()
    bigger[["la", "ld", "lt"]] *= 20  # a project whose changes are all 20 times larger
    relative = load_starter().adapt(bigger).predict_proba(rows)[:, 1]
    assert not np.allclose(same, relative)  # the same change is smaller relative to that project


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="the public datasets are not beside the checkout")
def test_the_build_script_reproduces_the_shipped_model(tmp_path: Path) -> None:
    """Bit for bit on one machine (two builds); against the shipped files, the same choices and scores to
    within 0.002 ROC-AUC: numpy's SIMD ``log1p`` rounds differently on different CPUs (AVX2, AVX-512),
    which most likely moves a few histogram bin edges of the log-z candidates' features and so a few splits."""
    builds = [tmp_path / "a", tmp_path / "b"]
    arguments = [["--data", str(SHARED), "--data", str(VENDORED), "--out", str(out)] for out in builds]
    with ProcessPoolExecutor(max_workers=2) as pool:  # two single-threaded builds side by side
        assert list(pool.map(build.main, arguments)) == [0, 0]
    for name in ("model.json", "booster.txt", "card.json"):
        assert (builds[0] / name).read_bytes() == (builds[1] / name).read_bytes(), name
    rebuilt = json.loads((builds[0] / "card.json").read_text())
    shipped = json.loads((SHIPPED / "card.json").read_text())
    assert rebuilt["transform"] == shipped["transform"]
    assert rebuilt["training_history"] == shipped["training_history"]
    assert rebuilt["features"] == shipped["features"]
    assert rebuilt["training_data"] == shipped["training_data"]
    assert rebuilt["selection"]["chosen"] == shipped["selection"]["chosen"]
    for transform, per_project in shipped["selection"]["roc_auc"].items():
        for project, value in per_project.items():
            assert rebuilt["selection"]["roc_auc"][transform][project] == pytest.approx(value, abs=0.002)
