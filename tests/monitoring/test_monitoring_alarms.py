"""Alarms that mean something: feature drift is diagnosis; an alarm needs performance, the score, or many
features, on a window large enough to judge. And features that grow with project age do not fire on their
normal growth (docs/monitoring.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from defectops.config import MonitoringSettings
from defectops.data import FEATURES
from defectops.monitoring.alarms import feature_groups
from defectops.monitoring.monitor import monitor_window
from defectops.monitoring.trend import BINS, MIN_BIN_ROWS, MIN_TREND_ROWS, advance, detrend, fit_slope

NOW = datetime(2026, 12, 3, tzinfo=UTC)
DAY = pd.Timedelta(days=1)


def _changes(rng: np.random.Generator, rows: int, start: pd.Timestamp, span_days: float) -> pd.DataFrame:
    """Seeded change metrics with times; ``exp`` grows with time: log1p(exp) ~ N(2 + 0.8 * years, 1)."""
    offsets = np.sort(rng.uniform(0, span_days, rows))
    times = start + pd.to_timedelta(offsets, unit="D")
    years = (times - pd.Timestamp("2020-01-01", tz="UTC")).days.to_numpy() / 365.25
    frame = pd.DataFrame({name: rng.gamma(2.0, 10.0, rows).round(0) for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, rows).astype(float)
    frame["exp"] = np.round(np.expm1(rng.normal(2 + 0.8 * years, 1.0)))
    frame["time"] = times
    frame["score"] = rng.beta(2, 8, rows)
    return frame


def _window(frame: pd.DataFrame) -> pd.DataFrame:
    window = frame.drop(columns=["time"]).copy()
    window["created_at"] = frame["time"].to_numpy()
    return window


def test_fit_slope_recovers_a_hand_made_growth() -> None:
    # 12 bins of MIN_BIN_ROWS rows, 30 days apart, log1p(x) = 1 + 0.01 * day -> slope 0.01 per day
    days = np.repeat(np.arange(BINS) * 30.0, MIN_BIN_ROWS)
    times = pd.Timestamp("2024-01-15", tz="UTC") + pd.to_timedelta(days, unit="D")
    history = pd.DataFrame({"exp": np.expm1(1 + 0.01 * days), "time": times})
    slope, commits = fit_slope(history, "exp", months=24)
    assert commits == BINS * MIN_BIN_ROWS
    assert slope == pytest.approx(0.01, rel=1e-9)
    assert fit_slope(history.iloc[:-1], "exp", months=24) == (0.0, 0)  # 239 < 12 * 20 commits: no fit
    # a slow project: the last 24 months hold few commits, so the last MIN_TREND_ROWS are used, however old
    slow = pd.DataFrame(
        {
            "exp": np.expm1(np.linspace(0.0, 2.0, 700)),
            "time": pd.Timestamp("2016-01-01", tz="UTC")
            + pd.to_timedelta(np.linspace(0, 3650, 700), unit="D"),
        }
    )
    slope, commits = fit_slope(slow, "exp", months=24)
    assert commits == MIN_TREND_ROWS
    assert slope == pytest.approx(2.0 / 3650, rel=1e-6)  # a straight line: every bin's median is on it


def _growing_history() -> pd.DataFrame:
    """12 monthly bins of MIN_BIN_ROWS commits from 2024-01-01 whose log1p(exp) grows 0.5 per year from 1."""
    return pd.DataFrame(
        {
            "exp": np.expm1(np.repeat(1 + 0.5 * np.arange(12) / 12, MIN_BIN_ROWS)),
            "time": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.repeat(np.arange(12) * 365.25 / 12, MIN_BIN_ROWS), unit="D"),
        }
    )


def test_detrend_removes_the_growth_the_history_shows() -> None:
    # reference at day 0 with exp = e^1 - 1, window 365 days later with exp = e^1.5 - 1, history growing
    # 0.5 per year in log1p: both become 1.0 after adjusting to the reference's median time
    history = _growing_history()
    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    reference = pd.DataFrame({"exp": [np.expm1(1.0)] * 3, "time": [t0] * 3})
    window = pd.DataFrame({"exp": [np.expm1(1.5)] * 3, "created_at": [t0 + 365.25 * DAY] * 3})
    out = detrend(reference, window, ["exp", "la"], history=history, window_time="created_at", months=24)
    [adjustment] = out.adjustments  # la does not grow with age: untouched
    assert adjustment.slope_per_year == pytest.approx(0.5)  # 0.5/12 per 365.25/12 days
    assert adjustment.shift == pytest.approx(0.5)  # one year after the reference's median time
    assert out.reference["exp"].tolist() == pytest.approx([1.0] * 3)
    assert out.window["exp"].tolist() == pytest.approx([1.0] * 3)  # 1.5 - 0.5: the growth is removed


def test_advance_moves_each_reference_row_along_the_growth_to_the_window_time() -> None:
    # history growing 0.5 per year in log1p (as above); reference rows at t0 - half a year and t0 (median
    # t0 - a quarter), window a year after t0: the rows are moved by 0.5 * 1.5 = 0.75 and 0.5 * 1 = 0.5
    history = _growing_history()
    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    reference = pd.DataFrame(
        {"exp": [np.expm1(1.0), np.expm1(2.0)], "la": [3.0, 4.0], "time": [t0 - 182.625 * DAY, t0]}
    )
    window = pd.DataFrame({"exp": [5.0], "la": [1.0], "created_at": [t0 + 365.25 * DAY]})
    trended = detrend(reference, window, ["exp", "la"], history=history, window_time="created_at", months=24)
    advanced = advance(reference, trended)
    assert advanced is not None
    assert np.log1p(advanced["exp"]).tolist() == pytest.approx([1.75, 2.5])
    assert advanced["la"].tolist() == [3.0, 4.0]  # not age-growing: as mined
    assert reference["exp"].tolist() == pytest.approx([np.expm1(1.0), np.expm1(2.0)])  # a copy
    flat = history.assign(exp=5.0)  # no growth: nothing to advance
    assert (
        advance(
            reference, detrend(reference, window, ["exp"], history=flat, window_time="created_at", months=24)
        )
        is None
    )


def _experience_model(frame: pd.DataFrame) -> np.ndarray:
    """A model that learnt "experienced authors break less, big changes more": its score falls with exp."""
    logit = 1.0 - 0.9 * np.log1p(frame["exp"].to_numpy(float)) + 0.03 * frame["la"].to_numpy(float)
    return np.asarray(1 / (1 + np.exp(-logit)), dtype=np.float64)


def test_the_score_is_judged_at_the_window_time_so_ageing_alone_is_no_score_drift() -> None:
    rng = np.random.default_rng(21)
    history = _changes(rng, 6000, pd.Timestamp("2022-01-01", tz="UTC"), 3 * 365)
    reference = history[history["time"] >= history["time"].max() - 90 * DAY].reset_index(drop=True)
    reference["score"] = _experience_model(reference)
    later = _changes(rng, 400, history["time"].max() + 365 * DAY, 30)  # a year later, the same process
    later["score"] = _experience_model(later)
    window = _window(later)
    as_trained = monitor_window(
        reference,
        window,
        now=NOW,
        history=history,
        drift_history=[True],
        rescore=_experience_model,
        settings=MonitoringSettings(score_at_window_time=False),
    )
    assert as_trained.prediction is not None
    assert as_trained.prediction.drift_detected
    assert as_trained.alarm
    aged = monitor_window(
        reference, window, now=NOW, history=history, drift_history=[True], rescore=_experience_model
    )
    assert aged.prediction is not None
    assert not aged.prediction.drift_detected
    assert not aged.alarm
    assert any(
        n.startswith("score compared with the model's scores on the reference advanced") for n in aged.notes
    )
    # a jump in change size still moves the score against the advanced reference
    bigger = _window(
        later.assign(la=later["la"] * 3, score=_experience_model(later.assign(la=later["la"] * 3)))
    )
    jumped = monitor_window(
        reference, bigger, now=NOW, history=history, drift_history=[True], rescore=_experience_model
    )
    assert jumped.prediction is not None
    assert jumped.prediction.drift_detected
    assert any("score distribution drifted" in reason for reason in jumped.alarm_reasons)


def test_age_growth_alone_raises_no_drift_and_a_new_team_still_does() -> None:
    rng = np.random.default_rng(12)
    history = _changes(rng, 6000, pd.Timestamp("2022-01-01", tz="UTC"), 3 * 365)
    reference = history[history["time"] >= history["time"].max() - 90 * DAY].reset_index(drop=True)
    later = _changes(rng, 600, history["time"].max() + 180 * DAY, 30)  # half a year later, same process
    window = _window(later)
    plain = monitor_window(reference.drop(columns=["time"]), window, now=NOW)
    assert "exp" in plain.drifted_features  # without the trend exp "drifts" from growth alone
    fair = monitor_window(reference, window, now=NOW, history=history)
    assert fair.drifted_features == []
    assert fair.state == "ok"
    assert not fair.alarm
    assert [t.feature for t in fair.trends] == ["lt", "ndev", "age", "nuc", "exp", "rexp", "sexp"]
    # a new team of authors with no experience: 40% of the window has exp 0
    team = window.copy()
    team.loc[: int(0.4 * len(team)), "exp"] = 0.0
    assert "exp" in monitor_window(reference, team, now=NOW, history=history).drifted_features


def test_a_window_from_the_reference_distribution_raises_no_alarm_even_with_old_bool_flags() -> None:
    rng = np.random.default_rng(3)
    reference = _changes(rng, 3000, pd.Timestamp("2026-01-01", tz="UTC"), 90).drop(columns=["time"])
    window = reference.sample(500, random_state=1).reset_index(drop=True)
    # as logged before the feature contract: /v1/commits/score wrote true/false, /v1/predict 0.0/1.0
    window["fix"] = [bool(v) if i % 2 else float(v) for i, v in enumerate(window["fix"])]
    result = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.8)
    fix = next(f for f in result.features if f.feature == "fix")
    assert not fix.drift_detected
    assert not result.alarm
    assert result.alarm_reasons == []


def test_few_drifting_features_are_diagnosis_many_are_an_alarm_small_windows_never_alarm() -> None:
    rng = np.random.default_rng(5)
    reference = _changes(rng, 3000, pd.Timestamp("2026-01-01", tz="UTC"), 90).drop(columns=["time"])
    window = reference.sample(400, random_state=2).reset_index(drop=True)
    window[["la", "ld"]] = window[["la", "ld"]] * 5  # 2 of the 14 features
    two = monitor_window(reference, window, now=NOW)
    assert set(two.drifted_features) == {"la", "ld"}
    assert two.state == "drift"
    assert not two.alarm
    assert any(
        "2 of 14 features drift with PSI >= 0.25 (la, ld): diagnosis, not an alarm (< 50%" in note
        for note in two.notes
    )
    # 5 of 14 (36%): "many" is at least half of the features (groups): diagnosis even when sustained;
    # under the share of 30% used before 2026-12-05 it was a drift signal
    some = window.copy()
    some[["ns", "nd", "nf"]] = some[["ns", "nd", "nf"]] * 5
    five = monitor_window(reference, some, now=NOW, drift_history=[True])
    assert len(five.drifted_features) == 5
    assert not five.alarm
    assert five.drift_signal == []
    earlier = MonitoringSettings(alarm_feature_share=0.3)
    assert monitor_window(reference, some, now=NOW, drift_history=[True], settings=earlier).alarm
    many = window.copy()
    moved = ["ns", "nd", "nf", "entropy", "lt", "ndev", "age", "nuc"]  # with la, ld: 10 of 14 >= 50%
    many[moved] = many[moved] * 5
    first = monitor_window(reference, many, now=NOW)  # a drift signal, not yet sustained
    assert not first.alarm
    assert first.drift_checks == 1
    assert first.drift_signal[0].startswith("10 of 14 features drift with PSI >= 0.25 (>= 50%)")
    assert any(note.startswith("drift in 1 check(s) in a row, 2 needed for an alarm") for note in first.notes)
    alarmed = monitor_window(reference, many, now=NOW, drift_history=[bool(first.drift_signal)])
    assert alarmed.alarm
    assert alarmed.drift_checks == 2
    assert alarmed.alarm_reasons[0].startswith("10 of 14 features drift with PSI >= 0.25 (>= 50%)")
    assert alarmed.alarm_reasons[0].endswith("(drift in 2 consecutive checks)")
    small = monitor_window(reference, many.head(60), now=NOW, drift_history=[True])  # 60 < 100
    assert small.state == "drift"
    assert not small.alarm
    assert any(
        note.startswith("drift and estimated performance not judged on 60 predictions (< 100)")
        for note in small.notes
    )
    tiny = monitor_window(reference, many.head(3), now=NOW)
    skipped = [note for note in tiny.notes if "skipped" in note and "fewer than 30 values" in note]
    # every feature skipped for the same reason: one note naming them, not one line per feature
    assert len(skipped) == 1
    assert skipped[0].startswith("14 features (ns, nd, nf, entropy, la, ld, lt, fix, ndev, age, nuc, exp, ")
    assert skipped[0].endswith("tests skipped, fewer than 30 values (reference 3000, window 3)")


def test_performance_below_the_baseline_is_an_alarm_realized_first_then_estimated() -> None:
    rng = np.random.default_rng(9)
    reference = _changes(rng, 2000, pd.Timestamp("2026-01-01", tz="UTC"), 90).drop(columns=["time"])
    window = reference.sample(300, random_state=3).reset_index(drop=True)
    # labels unrelated to the score: realized ROC-AUC near 0.5 on 300 matured labels
    window["label"] = pd.array(rng.integers(0, 2, 300), dtype="Int64")
    window["label_time"] = pd.Timestamp("2026-06-01", tz="UTC")
    result = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.8)
    assert result.realized.roc_auc is not None
    drop = 0.8 - result.realized.roc_auc
    assert result.alarm
    assert result.alarm_reasons == [
        f"realized ROC-AUC {result.realized.roc_auc:.3f} on 300 matured labels ({result.realized.n_positive} "
        f"defective) is {drop:.3f} below the "
        "held-out 0.800 (> 0.05)"
    ]
    # no labels: the CBPE estimate is judged against the estimate on the reference's own scores. Scores
    # squeezed towards their mean rank the same way but are less confident: a lower expected ROC-AUC.
    unlabelled = window.drop(columns=["label", "label_time"])
    assert not monitor_window(reference, unlabelled, now=NOW, baseline_roc_auc=0.8).alarm
    unlabelled["score"] = 0.15 + 0.1 * (unlabelled["score"] - 0.15)
    squeezed = monitor_window(reference, unlabelled, now=NOW, baseline_roc_auc=0.8)
    assert squeezed.estimated.roc_auc is not None
    assert squeezed.alarm_reasons[0].startswith(f"estimated (CBPE) ROC-AUC {squeezed.estimated.roc_auc:.3f}")
    assert len(squeezed.alarm_reasons) == 1  # the score's drift is a signal, not sustained yet
    assert squeezed.drift_signal[0].startswith("the score distribution drifted (ks, p = ")


def test_feature_groups_link_features_whose_ranks_move_together() -> None:
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # d's ranks differ from a's by 2, -1, -1, 2, -1, -1: Spearman 1 - 6 * 12 / (6 * 35) = 0.657 < 0.7
    frame = pd.DataFrame(
        {
            "a": a,
            "b": [v * v for v in a],  # same ranks: 1
            "c": [-v for v in a],  # reversed ranks: |-1|
            "d": [3.0, 1.0, 2.0, 6.0, 4.0, 5.0],
            "e": [7.0] * 6,  # constant: no correlation
            "f": list("xyzxyz"),  # text
        }
    )
    assert feature_groups(frame, ["d", "a", "e", "b", "f", "c"]) == [["d"], ["a", "b", "c"], ["e"], ["f"]]
    assert feature_groups(frame, ["a", "d"]) == [["a"], ["d"]]


def test_features_that_move_together_count_once_towards_the_alarm_share() -> None:
    rng = np.random.default_rng(5)
    reference = _changes(rng, 3000, pd.Timestamp("2026-01-01", tz="UTC"), 90).drop(columns=["time"])
    # three measures of one property (an author's experience): the same ranks, so one group; 12 groups
    reference["rexp"] = reference["exp"] * 2
    reference["sexp"] = reference["exp"] + 1
    window = reference.sample(400, random_state=2).reset_index(drop=True)
    moved = ["exp", "rexp", "sexp", "la", "ld"]  # 5 of 14 features (36%), but 3 of 12 groups (25%)
    window[moved] = window[moved] * 5
    result = monitor_window(reference, window, now=NOW, drift_history=[True])
    assert set(result.drifted_features) == set(moved)
    assert not result.alarm
    assert any(
        note.startswith(
            "3 of 12 groups of features drift (la, ld, exp+rexp+sexp; 5 of 14 features, those that move "
            "together counted once) with PSI >= 0.25: diagnosis, not an alarm (< 50%"
        )
        for note in result.notes
    )
    window[["ns", "nd", "nf"]] = window[["ns", "nd", "nf"]] * 5  # three more groups: 6 of 12 = 50%
    alarmed = monitor_window(reference, window, now=NOW, drift_history=[True])
    assert alarmed.alarm
    assert alarmed.alarm_reasons == [
        "6 of 12 groups of features drift (ns, nd, nf, la, ld, exp+rexp+sexp; 8 of 14 features, those that "
        "move together counted once) with PSI >= 0.25 (>= 50%) (drift in 2 consecutive checks)"
    ]


def test_the_estimate_is_judged_from_the_held_out_value_when_the_reference_estimate_is_higher() -> None:
    # reference scores computed by the model on its own training rows are in-sample and over-confident:
    # their CBPE estimate is above the held-out ROC-AUC, and an honest window would read as a drop
    rng = np.random.default_rng(9)
    reference = _changes(rng, 2000, pd.Timestamp("2026-01-01", tz="UTC"), 90).drop(columns=["time"])
    window = reference.sample(300, random_state=3).reset_index(drop=True)
    window["score"] = 0.15 + 0.5 * (window["score"] - 0.15)  # less confident, same ranking
    plain = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.99)  # held-out above: not capped
    estimate = plain.estimated.roc_auc
    assert estimate is not None
    assert plain.alarm_reasons[0].startswith(f"estimated (CBPE) ROC-AUC {estimate:.3f}")
    assert "below the reference's" in plain.alarm_reasons[0]
    reference_estimate = float(plain.alarm_reasons[0].split("below the reference's ")[1][:5])
    assert reference_estimate - estimate > 0.05
    # held-out 0.04 above the window's estimate, below the reference's: a drop of 0.04 <= 0.05, no alarm
    within = monitor_window(reference, window, now=NOW, baseline_roc_auc=round(estimate + 0.04, 3))
    assert not any(r.startswith("estimated (CBPE)") for r in within.alarm_reasons)
    beyond = monitor_window(reference, window, now=NOW, baseline_roc_auc=round(estimate + 0.06, 3))
    assert beyond.alarm_reasons[0].endswith(
        f"below the held-out {estimate + 0.06:.3f} (the reference's own estimate is {reference_estimate:.3f}) "
        "(> 0.05; realized not judged: no matured labels in the window)"
    )


def test_age_growing_features_compared_the_same_way_share_one_note_naming_them() -> None:
    from defectops.monitoring.monitor import _trend_notes
    from defectops.monitoring.trend import TrendAdjustment

    def flat(feature: str, commits: int = 600) -> TrendAdjustment:
        note = f"{feature}: no significant growth in the last {commits} training commits: as is"
        return TrendAdjustment(feature=feature, slope_per_year=0.0, commits=commits, shift=0.0, note=note)

    grown = TrendAdjustment(
        feature="exp", slope_per_year=0.4, commits=600, shift=0.1, note="exp: compared on log1p (...)"
    )
    notes = _trend_notes([flat("lt"), grown, flat("age"), flat("nuc"), flat("sexp", 300)])
    assert notes == [
        "3 features (lt, age, nuc): no significant growth in the last 600 training commits: as is",
        "exp: compared on log1p (...)",
        "sexp: no significant growth in the last 300 training commits: as is",
    ]
    # in a monitoring run: no age-growing feature grows in this history, so one note names all seven
    rng = np.random.default_rng(12)
    history = _changes(rng, 6000, pd.Timestamp("2022-01-01", tz="UTC"), 3 * 365)
    history["exp"] = rng.gamma(2.0, 10.0, len(history)).round(0)  # no growth with age
    reference = history[history["time"] >= history["time"].max() - 90 * DAY].reset_index(drop=True)
    window = _window(history.tail(400).reset_index(drop=True))
    result = monitor_window(reference, window, now=NOW, history=history)
    growth = [note for note in result.notes if "no significant growth" in note]
    assert growth == [
        "7 features (lt, ndev, age, nuc, exp, rexp, sexp): no significant growth in the last "
        f"{result.trends[0].commits} training commits: as is"
    ]
