"""The model zoo: the estimator contract, calibration, exact explanations, persistence, online learning."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from defectops.errors import InputError, ModelError
from defectops.training.metrics import roc_auc
from defectops.training.models import (
    MODEL_CLASSES,
    JITModel,
    LightGBMJIT,
    OnlineJIT,
    balanced_weights,
    load_model,
    make_model,
    platt_scaling,
    recency_weights,
)
from defectops.training.models.calibration import best_f1_threshold

#: Every kind that learns from the metrics table alone (the hybrid model also reads each commit's changed lines:
#: tests/training/test_hybrid.py and tests/ci/test_ci_predict_hybrid.py).
KINDS = [kind for kind in MODEL_CLASSES if kind != "hybrid"]

FAST = {
    "lightgbm": {"n_estimators": 60},
    "logreg": {},
    "rf": {"n_estimators": 40},
    "online": {},
    "text": {},
    "blend": {"n_estimators": 60},
}


def fitted(kind: str, table: pd.DataFrame) -> JITModel:
    train = table.iloc[:450]
    return make_model(kind, **FAST[kind]).fit(train, train["label"])


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_learns_and_predicts_probabilities(kind: str, table: pd.DataFrame) -> None:
    model = fitted(kind, table)
    test = table.iloc[450:]
    proba = model.predict_proba(test)
    assert proba.shape == (150, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    # the synthetic signal is strong: every model must rank the later changes well above chance
    assert roc_auc(test["label"], proba[:, 1]) > 0.7
    assert 0 < model.threshold_ < 1
    assert set(np.unique(model.predict(test))) <= {0, 1}
    assert list(model.classes_) == [0, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_explanations_add_up_exactly_to_the_calibrated_log_odds(kind: str, table: pd.DataFrame) -> None:
    model = fitted(kind, table)
    rows = table.iloc[450:455]
    p = model.predict_proba(rows)[:, 1]
    for i, (explanation, prob) in enumerate(zip(model.explain(rows, top_k=10_000), p, strict=True)):
        total = explanation.base + sum(c.contribution for c in explanation.contributions) + explanation.rest
        assert total == pytest.approx(float(model.decision_function(rows.iloc[[i]])[0]), abs=1e-6)
        assert explanation.probability == pytest.approx(prob, abs=1e-9)
    top = model.explain(rows.iloc[:1], top_k=3)[0]
    assert len(top.contributions) == 3
    magnitudes = [abs(c.contribution) for c in top.contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    full = model.explain(rows.iloc[:1], top_k=10_000)[0]
    # what is not listed is summed in `rest`
    assert top.rest == pytest.approx(sum(c.contribution for c in full.contributions[3:]), abs=1e-9)
    assert top.contributions[0].feature in {*model.features_, *(c.feature for c in full.contributions)}


def test_linear_explanation_is_coefficient_times_standardised_value(table: pd.DataFrame) -> None:
    model = make_model("logreg").fit(table.iloc[:450], table["label"].iloc[:450])
    row = table.iloc[[500]]
    la = next(c for c in model.explain(row, top_k=100)[0].contributions if c.feature == "la")
    j = model.features_.index("la")
    z = (np.log1p(row["la"].iloc[0]) - model.scaler_.mean[j]) / model.scaler_.scale[j]
    a = model.calibration_[0]
    assert la.value == row["la"].iloc[0]
    assert la.contribution == pytest.approx(a * model.coef_[j] * z)


def test_lightgbm_explanation_is_treeshap(table: pd.DataFrame) -> None:
    model = fitted("lightgbm", table)
    assert isinstance(model, LightGBMJIT)
    row = table.iloc[[460]]
    contrib = model.booster_.predict(row[model.features_].to_numpy(), pred_contrib=True)[0]
    a, b, _ = model.calibration_
    explanation = model.explain(row, top_k=100)[0]
    by_name = {c.feature: c.contribution for c in explanation.contributions}
    for j, name in enumerate(model.features_):
        assert by_name[name] == pytest.approx(a * contrib[j])
    assert explanation.base == pytest.approx(a * contrib[-1] + b)
    # the fast one-row path gives the same probability
    assert model.predict_one(row[model.features_].to_numpy()[0]) == pytest.approx(
        model.predict_proba(row)[0, 1]
    )


def test_text_model_learns_words_and_paths(table: pd.DataFrame) -> None:
    model = fitted("text", table)
    explanation = model.explain(table.iloc[[470]], top_k=100)[0]
    names = {c.feature for c in explanation.contributions}
    assert any(n.startswith("msg:") for n in names)
    assert any(n.startswith("path:") for n in names)
    coef = dict(zip(model.text_names_, model.coef_[len(model.features_) :], strict=True))
    assert coef["msg:hack"] > 0 > coef["msg:typo"]
    assert coef["path:core/"] > 0 > coef["path:docs/"]
    with pytest.raises(InputError, match="text columns"):
        model.predict_proba(table.drop(columns=["message"]).iloc[:3])


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_and_pickle_round_trips(kind: str, table: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / kind
    model = fitted(kind, table)
    rows = table.iloc[450:480]
    expected = model.predict_proba(rows)
    model.save(folder)
    loaded = load_model(folder)
    assert type(loaded) is type(model)
    assert loaded.features_ == model.features_
    assert loaded.threshold_ == model.threshold_
    assert np.allclose(loaded.predict_proba(rows), expected)
    original = [c.contribution for e in model.explain(rows, 3) for c in e.contributions]
    restored = [c.contribution for e in loaded.explain(rows, 3) for c in e.contributions]
    assert restored == pytest.approx(original)
    again = pickle.loads(pickle.dumps(model))
    assert np.allclose(again.predict_proba(rows), expected)


def test_skops_dump_of_the_whole_lightgbm_model(table: pd.DataFrame, tmp_path: Path) -> None:
    import skops.io as sio

    model = fitted("lightgbm", table)
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == ["defectops.training.models.LightGBMJIT"]
    loaded = sio.load(path, trusted=untrusted)
    assert np.allclose(loaded.predict_proba(table.iloc[:20]), model.predict_proba(table.iloc[:20]))


#: The types each model's skops file names: those of the single module ``models.py`` before the zoo became a
#: package. MLflow records them as the model's ``skops_trusted_types``, so they must never change.
PERSISTED_TYPES = {
    "lightgbm": ["defectops.training.models.LightGBMJIT"],
    "logreg": ["defectops.training.models.LogisticJIT", "defectops.training.models._Standardiser"],
    "rf": ["defectops.training.models.ForestJIT", "sklearn.tree._tree.Tree"],
    "online": ["defectops.training.models.OnlineJIT", "defectops.training.models._Standardiser"],
    "text": [
        "defectops.training.models.TextJIT",
        "defectops.training.models._Standardiser",
        "defectops.training.models._path_tokens",
    ],
    "blend": [
        "defectops.training.models.BlendJIT",
        "defectops.training.models.LightGBMJIT",
        "defectops.training.models.LogisticJIT",
        "defectops.training.models._Standardiser",
    ],
}


@pytest.mark.parametrize("kind", KINDS)
def test_saved_models_name_their_types_as_before_the_split(kind: str, table: pd.DataFrame) -> None:
    import importlib
    import pickletools

    import skops.io as sio

    model = fitted(kind, table)
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted == PERSISTED_TYPES[kind]
    # a file written before the split names exactly these, so it loads trusting what MLflow recorded
    loaded = sio.loads(data, trusted=PERSISTED_TYPES[kind])
    rows = table.iloc[450:470]
    assert np.array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    # pickles (and cloudpickle) refer to the same module, and every name resolves there
    pickled = pickle.dumps(model)
    modules = {arg for _, arg, _ in pickletools.genops(pickled) if str(arg).startswith("defectops")}
    assert modules == {"defectops.training.models"}
    package = importlib.import_module("defectops.training.models")
    for name in untrusted:
        module, _, attr = name.rpartition(".")
        if module == "defectops.training.models":
            assert getattr(package, attr).__module__ == module


def test_load_refuses_foreign_files(tmp_path: Path) -> None:
    folder = tmp_path
    with pytest.raises(ModelError, match=r"model\.json"):
        load_model(folder)
    (folder / "model.json").write_text('{"format": 1, "kind": "pickle"}')
    with pytest.raises(ModelError, match="unknown model kind"):
        load_model(folder)


def test_estimator_contract(table: pd.DataFrame) -> None:
    model = make_model("lightgbm", n_estimators=30, num_leaves=4)
    params = model.get_params()
    assert params["n_estimators"] == 30
    copy = clone(model)
    assert copy.get_params() == params
    copy.set_params(num_leaves=6)
    assert copy.num_leaves == 6
    with pytest.raises(InputError, match="unknown model"):
        make_model("xgboost")
    with pytest.raises(InputError, match="both"):
        make_model("logreg").fit(table.iloc[:10], np.zeros(10))
    with pytest.raises(ModelError, match="not fitted"):
        make_model("logreg").predict_proba(table.iloc[:3])


def test_online_model_learns_new_labels_without_a_full_retrain(table: pd.DataFrame) -> None:
    model = OnlineJIT()
    model.fit(table.iloc[:300], table["label"].iloc[:300])
    before = model.predict_proba(table.iloc[500:])[:, 1]
    counts = model.class_counts_.copy()
    batch = table.iloc[300:320]
    model.partial_fit(batch, batch["label"])
    after = model.predict_proba(table.iloc[500:])[:, 1]
    assert not np.allclose(before, after)
    # running counts grew by the batch's classes
    assert (model.class_counts_ - counts).tolist() == [
        float((batch["label"] == 0).sum()),
        float(batch["label"].sum()),
    ]

    # prior shift: b moves by logit(share now) - logit(share at fit); the slope a stays
    def log_odds(counts: np.ndarray) -> float:
        return math.log(counts[1] / counts[0])

    a, b, _ = model.fit_calibration_
    assert model.calibration_[0] == a
    assert model.calibration_[1] == pytest.approx(b + log_odds(model.class_counts_) - log_odds(counts))
    # starting from nothing works too: slope 1, offset = logit(positive share) (prior correction)
    first = table.iloc[:50]
    fresh = OnlineJIT().partial_fit(first, first["label"])
    assert fresh.predict_proba(table.iloc[:5]).shape == (5, 2)
    share = first["label"].mean()
    assert fresh.calibration_[:2] == pytest.approx((1.0, math.log(share / (1 - share))))


def test_recency_and_class_weights() -> None:
    times = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-21"], utc=True))
    # ages 20, 10, 0 days with half-life 10: 0.5^2, 0.5^1, 0.5^0
    assert recency_weights(times, 10.0).tolist() == pytest.approx([0.25, 0.5, 1.0])  # type: ignore[union-attr]
    assert recency_weights(times, None) is None
    # 1 positive, 3 negatives, total weight 4: positive 4 / (2*1) = 2, negatives 4 / (2*3) = 2/3 each
    assert balanced_weights(np.array([1, 0, 0, 0])).tolist() == pytest.approx([2.0, 2 / 3, 2 / 3, 2 / 3])


def test_half_life_reaches_the_model(table: pd.DataFrame) -> None:
    plain = make_model("logreg", cv_folds=0).fit(table, table["label"])
    recent = make_model("logreg", cv_folds=0, half_life_days=5.0).fit(table, table["label"])
    assert not np.allclose(plain.coef_, recent.coef_)


def test_platt_scaling_and_threshold() -> None:
    # scores that separate the classes perfectly still give a finite, positive slope
    a, b = platt_scaling(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1]))
    assert 0 < a < 50
    assert abs(b) < 1e-6  # symmetric data: no offset
    # F1 by threshold on p = .9 (1), .7 (0), .6 (1), .1 (0):
    #   t=.9: 2*1/(1+2)=.667; t=.7: 2*1/(2+2)=.5; t=.6: 2*2/(3+2)=.8; t=.1: 2*2/(4+2)=.667 -> .6
    assert best_f1_threshold(np.array([1, 0, 1, 0]), np.array([0.9, 0.7, 0.6, 0.1])) == pytest.approx(0.6)


def test_calibrated_probabilities_track_the_base_rate(table: pd.DataFrame) -> None:
    # keep every clean change and one defect-inducing change in five: a rare positive class
    positives = table.index[table["label"] == 1]
    rare = table.drop(index=positives[positives % 5 != 0])
    rate = float(rare["label"].mean())
    assert rate < 0.25
    calibrated = make_model("logreg").fit(rare, rare["label"])
    balanced_only = make_model("logreg", cv_folds=0).fit(rare, rare["label"])
    # without folds the fallback is prior correction, which also lands near the rate
    assert abs(float(calibrated.predict_proba(rare)[:, 1].mean()) - rate) < 0.05
    assert abs(float(balanced_only.predict_proba(rare)[:, 1].mean()) - rate) < 0.1
    # balanced class weights without any correction would overstate the risk by far
    raw = 1 / (1 + np.exp(-balanced_only._raw(balanced_only._inputs(rare))))
    assert float(raw.mean()) > rate + 0.1


def test_path_tokens() -> None:
    from defectops.training.models import _path_tokens

    # one path per line: directories keep a trailing slash, the file name splits into stem and extension
    assert _path_tokens("nova/api/v2.py\nREADME.md\n\n") == ["nova/", "api/", "v2", ".py", "readme", ".md"]
