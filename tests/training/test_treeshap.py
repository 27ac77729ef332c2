"""TreeSHAP tables: LightGBM's ``pred_contrib`` by table look-up, on trained, hand-written and awkward models."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from defectops.serving.scorers import BoosterScorer
from defectops.training.models import LightGBMJIT, load_model
from defectops.training.treeshap import ZERO_THRESHOLD, TreeShapTables

#: Largest difference accepted from LightGBM (the differences seen are ~1e-15: summation order only).
EXACT = 1e-9


def _data(rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight features: counts with many zeros, a 0/1 flag, a signed normal, a uniform and small integers."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.lognormal(1.0, 1.0, rows).round(),
            rng.poisson(0.7, rows).astype(float),
            rng.integers(0, 2, rows).astype(float),
            rng.normal(0.0, 1.0, rows),
            rng.uniform(0.0, 3.0, rows),
            rng.integers(0, 6, rows).astype(float),
            rng.lognormal(0.0, 2.0, rows),
            rng.normal(0.0, 1.0, rows),
        ]
    )
    logit = np.log1p(x[:, 0]) - x[:, 1] + x[:, 2] + x[:, 3] - 0.5 * x[:, 4] + 0.2 * x[:, 5] - 1.0
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return x, y


def _train(x: np.ndarray, y: np.ndarray, rounds: int = 40, **params: Any) -> lgb.Booster:
    base = {"objective": "binary", "num_leaves": 8, "verbosity": -1, "num_threads": 1, "seed": 0}
    return lgb.train(base | params, lgb.Dataset(x, label=y), num_boost_round=rounds)


def _nodes(booster: lgb.Booster) -> list[dict[str, Any]]:
    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        if "split_index" not in node:
            return []
        return [node, *walk(node["left_child"]), *walk(node["right_child"])]

    return [n for tree in booster.dump_model()["tree_info"] for n in walk(tree["tree_structure"])]


def _edge_rows(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` with one feature moved exactly onto a threshold of the model, or one ulp either side,
    plus rows of zeros, of values LightGBM reads as zero, NaN and infinities."""
    rng = np.random.default_rng(1)
    rows = []
    for node in _nodes(booster)[:300]:
        t = float(node["threshold"])
        for value in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)):
            row = x[rng.integers(len(x))].copy()
            row[node["split_feature"]] = value
            rows.append(row)
    special = [0.0, -0.0, 1e-36, -1e-36, ZERO_THRESHOLD, -ZERO_THRESHOLD, np.nan, np.inf, -np.inf]
    for value in special:
        rows.append(np.full(x.shape[1], value))
        for j in range(x.shape[1]):
            row = x[rng.integers(len(x))].copy()
            row[j] = value
            rows.append(row)
    return np.array(rows)


def _assert_like_lightgbm(booster: lgb.Booster, x: np.ndarray) -> TreeShapTables:
    tables = TreeShapTables.from_booster(booster, x.shape[1])
    assert tables is not None
    want = booster.predict(x, pred_contrib=True, num_threads=1)
    got = tables.contributions(x)
    assert got.shape == want.shape == (len(x), x.shape[1] + 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=EXACT)
    # the expected value is summed in LightGBM's order: equal to the last bit
    assert got[:, -1].tolist() == want[:, -1].tolist()
    return tables


# ---------------------------------------------------------------------------------------------- exactness


def test_default_model_equals_pred_contrib(table: pd.DataFrame) -> None:
    # The service's default model (200 trees of 8 leaves); cv_folds only changes the calibration, not trees.
    model = LightGBMJIT(cv_folds=0).fit(table, table["label"])
    x = table[model.features_].to_numpy(dtype=np.float64)
    tables = _assert_like_lightgbm(model.booster_, np.vstack([x, _edge_rows(model.booster_, x)]))
    assert tables.n_trees == 200
    # every batch size takes the same answer (the small ones are summed without the sparse product)
    for n in (1, 2, 5, 6, 17):
        np.testing.assert_allclose(
            tables.contributions(x[:n]), model.booster_.predict(x[:n], pred_contrib=True), rtol=0, atol=EXACT
        )


@pytest.mark.parametrize("leaves", [2, 4, 11])
def test_other_tree_sizes_equal_pred_contrib(leaves: int) -> None:
    x, y = _data()
    booster = _train(x, y, num_leaves=leaves, min_data_in_leaf=5)
    assert {tree["num_leaves"] for tree in booster.dump_model()["tree_info"]} >= {leaves}
    _assert_like_lightgbm(booster, np.vstack([x[:500], _edge_rows(booster, x)]))


def test_repeated_features_on_a_path_and_deep_chains() -> None:
    # Two informative features only: paths split on the same feature again and again.
    x, y = _data(seed=2)
    booster = _train(x[:, [3, 4]], y, num_leaves=11, min_data_in_leaf=3, rounds=20)

    def longest(node: dict[str, Any], depth: int = 0) -> int:
        if "split_index" not in node:
            return depth
        return max(longest(node["left_child"], depth + 1), longest(node["right_child"], depth + 1))

    # paths of 4+ splits over 2 features: some feature is split on again along the way
    assert max(longest(tree["tree_structure"]) for tree in booster.dump_model()["tree_info"]) >= 4
    _assert_like_lightgbm(booster, np.vstack([x[:300, [3, 4]], _edge_rows(booster, x[:, [3, 4]])]))


def test_missing_value_handling_zero_and_nan() -> None:
    x, y = _data(seed=3)
    # zero_as_missing: nodes of missing type Zero, where 0 (and |x| <= 1e-35) goes the default way
    zero = _train(x, y, zero_as_missing=True)
    assert {n["missing_type"] for n in _nodes(zero)} >= {"Zero"}
    _assert_like_lightgbm(zero, np.vstack([x[:300], _edge_rows(zero, x)]))
    # NaN in training: nodes of missing type NaN, where NaN goes the default way
    holes = x.copy()
    holes[np.random.default_rng(4).random(x.shape) < 0.2] = np.nan
    nan = _train(holes, y)
    assert {n["missing_type"] for n in _nodes(nan)} >= {"NaN"}
    assert {n["default_left"] for n in _nodes(nan) if n["missing_type"] == "NaN"} == {True, False}
    _assert_like_lightgbm(nan, np.vstack([holes[:300], _edge_rows(nan, x)]))


def test_single_leaf_trees() -> None:
    x, y = _data(seed=5)
    # No split is allowed: the model is the single leaf holding the average (LightGBM stops at the first
    # tree that cannot split, so single leaves come first); contributions are 0.
    stump = _train(x, y, min_data_in_leaf=10**6, rounds=5)
    assert {tree["num_leaves"] for tree in stump.dump_model()["tree_info"]} == {1}
    tables = _assert_like_lightgbm(stump, x[:50])
    assert not tables.contributions(x[:50])[:, :-1].any()
    # A single leaf followed by ordinary trees: training continued from the stump.
    mixed = lgb.train(
        {"objective": "binary", "num_leaves": 8, "verbosity": -1, "num_threads": 1},
        lgb.Dataset(x, label=y),
        num_boost_round=10,
        init_model=stump,
    )
    assert {tree["num_leaves"] for tree in mixed.dump_model()["tree_info"]} == {1, 8}
    _assert_like_lightgbm(mixed, np.vstack([x[:100], _edge_rows(mixed, x)]))


def test_best_iteration_is_respected() -> None:
    x, y = _data(seed=6)
    booster = _train(x, y, rounds=30)
    booster.best_iteration = 12  # Booster.predict then uses the first 12 trees only
    tables = _assert_like_lightgbm(booster, x[:200])
    assert tables.n_trees == 12


def test_any_input_layout() -> None:
    x, y = _data(seed=7)
    booster = _train(x, y, rounds=10)
    tables = TreeShapTables.from_booster(booster, x.shape[1])
    assert tables is not None
    want = booster.predict(x[:64], pred_contrib=True)
    np.testing.assert_allclose(tables.contributions(np.asfortranarray(x[:64])), want, rtol=0, atol=EXACT)
    wide = np.hstack([x[:64], x[:64]])[:, : x.shape[1]]  # a non-contiguous column slice
    np.testing.assert_allclose(tables.contributions(wide), want, rtol=0, atol=EXACT)
    assert tables.contributions(x[:0]).shape == (0, x.shape[1] + 1)
    with pytest.raises(ValueError, match="matrix"):
        tables.contributions(x[:3, :5])


# ---------------------------------------------------------------------------------------------- by hand

# One tree over features a, b, c (c unused), with data counts as cover:
#
#   node 0: a <= 5 ?  -- 10 rows --+-- yes: leaf 0, value -1, 4 rows
#                                  +-- no:  node 1: b <= 2 ?  -- 6 rows --+-- yes: leaf 1, value 2, 3 rows
#                                                                         +-- no:  leaf 2, value 4, 3 rows
_HAND_TREE = """tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=2
objective=binary sigmoid:1
feature_names=a b c
feature_infos=[0:10] [0:10] [0:10]

Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=1 1
threshold=5 2
decision_type=2 2
left_child=-1 -2
right_child=1 -3
leaf_value=-1 2 4
leaf_weight=4 3 3
leaf_count=4 3 3
internal_value=0 0
internal_weight=10 6
internal_count=10 6
is_linear=0
shrinkage=1


end of trees
"""


def test_a_tree_worked_by_hand() -> None:
    # Expected value: 0.4 * -1 + 0.3 * 2 + 0.3 * 4 = 1.4.
    # Row (a=7, b=1): leaf 1 (f = 2). With v(S) the mean over the leaves reachable when only S is known:
    #   v({}) = 1.4, v({a}) = (2 + 4) / 2 = 3, v({b}) = 0.4 * -1 + 0.6 * 2 = 0.8, v({a, b}) = 2;
    #   phi_a = ((3 - 1.4) + (2 - 0.8)) / 2 = 1.4, phi_b = ((0.8 - 1.4) + (2 - 3)) / 2 = -0.8.
    # Row (a=5, b=9): a is exactly at the threshold, so it goes left (<=): leaf 0 (f = -1).
    #   v({a}) = -1, v({b}) = 0.4 * -1 + 0.6 * 4 = 2, v({a, b}) = -1;
    #   phi_a = ((-1 - 1.4) + (-1 - 2)) / 2 = -2.7, phi_b = ((2 - 1.4) + (-1 - -1)) / 2 = 0.3.
    # c is never split on: 0. Each row's terms add up to its score: 1.4 + 1.4 - 0.8 = 2, 1.4 - 2.7 + 0.3 = -1.
    booster = lgb.Booster(model_str=_HAND_TREE)
    rows = np.array([[7.0, 1.0, 3.0], [5.0, 9.0, 0.0]])
    tables = TreeShapTables.from_booster(booster, 3)
    assert tables is not None
    expected = [[1.4, -0.8, 0.0, 1.4], [-2.7, 0.3, 0.0, 1.4]]
    np.testing.assert_allclose(tables.contributions(rows), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(booster.predict(rows, pred_contrib=True), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tables.contributions(rows).sum(axis=1), [2.0, -1.0], rtol=0, atol=1e-12)


# Thresholds a trained model rarely has: 0 and -kZeroThreshold (where reading |x| <= 1e-35 as 0 matters),
# and every missing type with both default directions. decision_type: 2 = default left, 4 = missing Zero,
# 8 = missing NaN.
_AWKWARD_TREES = """tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=3
objective=binary sigmoid:1
feature_names=a b c d
feature_infos=none none none none

Tree=0
num_leaves=4
num_cat=0
split_feature=0 1 2
split_gain=1 1 1
threshold=0 -1.0000000180025095e-35 3
decision_type=0 0 6
left_child=1 -1 -3
right_child=2 -2 -4
leaf_value=-1 2 4 0.5
leaf_weight=1 1 1 1
leaf_count=30 10 25 35
internal_value=0 0 0
internal_weight=1 1 1
internal_count=100 40 60
is_linear=0
shrinkage=1

Tree=1
num_leaves=4
num_cat=0
split_feature=3 0 1
split_gain=1 1 1
threshold=1 1.0000000180025095e-35 -2
decision_type=8 10 4
left_child=-1 -2 -3
right_child=1 2 -4
leaf_value=0.25 -0.75 1.5 -2
leaf_weight=1 1 1 1
leaf_count=20 30 15 35
internal_value=0 0 0
internal_weight=1 1 1
internal_count=100 80 50
is_linear=0
shrinkage=1


end of trees
"""


def test_zero_snapping_and_every_missing_type_exactly() -> None:
    booster = lgb.Booster(model_str=_AWKWARD_TREES)
    types = {(n["missing_type"], n["default_left"]) for n in _nodes(booster)}
    assert types == {("None", False), ("Zero", True), ("NaN", False), ("NaN", True), ("Zero", False)}
    tiny = ZERO_THRESHOLD
    values = [
        *(np.nan, -np.inf, np.inf, -3.0, -2.0, 1.0, 3.0, np.nextafter(3.0, np.inf)),
        *(0.0, -0.0, 1e-36, -1e-36, tiny, -tiny, np.nextafter(tiny, 1.0), np.nextafter(-tiny, -1.0)),
    ]
    grid = np.array(list(itertools.product(values, repeat=4)))  # 65,536 rows: every combination
    _assert_like_lightgbm(booster, grid)


# ---------------------------------------------------------------------------------------------- refusals


def test_what_cannot_be_tabulated_is_refused() -> None:
    x, y = _data(seed=8)
    big = _train(x, y, num_leaves=16, min_data_in_leaf=5, rounds=5)
    assert TreeShapTables.from_booster(big, x.shape[1]) is None  # 15 nodes > 10
    assert TreeShapTables.from_booster(big, x.shape[1], max_nodes=15) is not None
    small = _train(x, y, rounds=5)
    assert TreeShapTables.from_booster(small, x.shape[1], max_bytes=1000) is None
    assert TreeShapTables.from_booster(small, x.shape[1] + 1) is None  # not the booster's width
    assert TreeShapTables.from_booster(object(), x.shape[1]) is None
    classes = (x[:, 4] * 2).astype(int) % 3
    multiclass = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbosity": -1, "num_threads": 1},
        lgb.Dataset(x, label=classes),
        3,
    )
    assert TreeShapTables.from_booster(multiclass, x.shape[1]) is None
    codes = x.copy()
    codes[:, 5] = np.random.default_rng(9).integers(0, 40, len(x))
    y_codes = (codes[:, 5] % 3 == 0).astype(int)
    categorical = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_per_group": 5, "cat_smooth": 1},
        lgb.Dataset(codes, label=y_codes, categorical_feature=[5]),
        5,
    )
    assert {n["decision_type"] for n in _nodes(categorical)} >= {"=="}
    assert TreeShapTables.from_booster(categorical, x.shape[1]) is None


# ---------------------------------------------------------------------------------------------- callers


def _model(table: pd.DataFrame, **params: Any) -> LightGBMJIT:
    return LightGBMJIT(n_estimators=60, cv_folds=0, **params).fit(table, table["label"])


def test_model_explanations_use_the_tables_and_keep_them_out_of_pickles(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    model = _model(table)
    rows = table.iloc[:40].copy()
    rows.loc[rows.index[0], "la"] = np.nan  # explain() reads NaN; the tables read it as LightGBM does
    numeric = rows[model.features_].to_numpy(dtype=np.float64, na_value=np.nan)
    want = model.booster_.predict(numeric, pred_contrib=True)
    terms = model._terms(model._inputs(rows))
    tables = model._shap_tables()
    assert tables is not None
    assert model._shap_tables() is tables  # built once
    got = np.array([[t for _, _, t in row_terms] + [bias] for bias, row_terms in terms])
    np.testing.assert_allclose(got, want, rtol=0, atol=EXACT)
    # Never serialised: pickles, skops files and saved folders carry the booster only; rebuilt on use.
    assert "_treeshap" not in model.__getstate__()
    again = pickle.loads(pickle.dumps(model))
    assert "_treeshap" not in again.__dict__
    assert again._shap_tables() is not None
    import skops.io as sio

    sio.dump(model, tmp_path / "m.skops")
    assert sio.get_untrusted_types(file=tmp_path / "m.skops") == ["defectops.training.models.LightGBMJIT"]
    loaded = load_model(model.save(tmp_path / "saved"))
    assert "_treeshap" not in loaded.__dict__
    for mine, theirs in zip(loaded.explain(rows, 5), model.explain(rows, 5), strict=True):
        assert [c.feature for c in mine.contributions] == [c.feature for c in theirs.contributions]
        assert mine.probability == pytest.approx(theirs.probability, abs=1e-12)
    # A refit brings a new booster, and new tables.
    model.fit(table.iloc[:400], table["label"].iloc[:400])
    assert model._shap_tables() is not tables


def _same_scores(a: Any, b: Any) -> None:
    assert a.probabilities.tolist() == pytest.approx(b.probabilities.tolist(), rel=0, abs=1e-12)
    assert [[r["feature"] for r in reasons] for reasons in a.reasons] == [
        [r["feature"] for r in reasons] for reasons in b.reasons
    ]
    for mine, theirs in zip(a.reasons, b.reasons, strict=True):
        assert mine == [r | {"contribution": pytest.approx(r["contribution"], abs=1e-12)} for r in theirs]


def test_serving_scorer_answers_the_same_with_and_without_tables(table: pd.DataFrame) -> None:
    model = _model(table)
    values = table[model.features_].to_numpy(dtype=np.float64)[:300]
    fast = BoosterScorer(model)
    lightgbm = BoosterScorer(model)
    lightgbm.tables = None  # LightGBM's own pred_contrib, as for a model without tables
    assert fast.tables is not None
    for top_k in (1, 5, len(model.features_)):
        for n in (1, 3, 300):  # the Python sort of tiny batches and the NumPy sort of larger ones
            _same_scores(fast(values[:n], None, top_k), lightgbm(values[:n], None, top_k))
    # Without reasons the tables still give the raw score (sum of the terms): up to rounding LightGBM's own,
    # and exactly the probability the same scorer gives with reasons.
    assert fast(values, None, 0).probabilities.tolist() == pytest.approx(
        lightgbm(values, None, 0).probabilities.tolist(), abs=1e-12
    )
    assert fast(values, None, 0).probabilities.tolist() == fast(values, None, 5).probabilities.tolist()


def test_models_without_tables_get_lightgbm_answers(table: pd.DataFrame) -> None:
    model = _model(table, num_leaves=16, min_child_samples=3)  # trees of up to 15 nodes: no tables
    assert max(t["num_leaves"] for t in model.booster_.dump_model()["tree_info"]) > 11
    assert model._shap_tables() is None
    scorer = BoosterScorer(model)
    assert scorer.tables is None
    values = table[model.features_].to_numpy(dtype=np.float64)[:50]
    contrib = model.booster_.predict(values, pred_contrib=True)
    a, b, _ = model.calibration_
    logit = a * contrib.sum(axis=1) + b
    scores = scorer(values, None, 3)
    assert scores.probabilities.tolist() == pytest.approx((1 / (1 + np.exp(-logit))).tolist(), abs=1e-12)
    explained = model.explain(table.iloc[:5], top_k=100)
    for explanation, row in zip(explained, contrib[:5], strict=True):
        assert explanation.base == pytest.approx(a * row[-1] + b, abs=1e-12)
