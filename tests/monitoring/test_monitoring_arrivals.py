"""The alarm policy of issue 12: realized performance on the labels that arrived during the window, drift that
counts only with an effect size (PSI >= 0.25) and only when sustained (2 consecutive checks). Expected
values are worked by hand in the comments."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from defectops.config import MonitoringSettings
from defectops.monitoring import arrived_labels, monitor_window
from defectops.monitoring.alarms import AlarmInputs, alarm_reasons, material
from defectops.monitoring.drift_records import FeatureDrift
from defectops.monitoring.performance import estimate_performance, realized_performance

NOW = datetime(2026, 12, 3, tzinfo=UTC)
SINCE = datetime(2026, 11, 3, tzinfo=UTC)


def test_arrived_labels_are_those_that_arrived_in_the_window_for_commits_within_the_horizon() -> None:
    served = pd.DataFrame(
        {
            "commit_sha": list("abcdef"),
            "score": [0.9, 0.2, 0.7, 0.1, 0.5, 0.3],
            "label": pd.array([1, 0, 1, 0, None, 0], dtype="Int64"),
            "label_time": pd.to_datetime(
                ["2026-11-20", "2026-10-01", "2026-12-10", "2026-11-30", None, "2026-11-04"], utc=True
            ),
            "commit_time": [
                "2026-06-01T00:00:00Z",
                "2026-06-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2025-06-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
                None,
            ],
            "created_at": pd.to_datetime(["2026-06-02"] * 5 + ["2026-02-01"], utc=True),
        }
    )
    arrived = arrived_labels(served, since=SINCE, now=NOW, horizon_days=365)
    # a: arrived 11-20, commit 180 days old; b: arrived before the window; c: after now; d: commit 550 days
    # old (> 365); e: no label; f: arrived 11-04, no commit time, predicted 2026-02-01 (305 days): kept
    assert arrived["commit_sha"].tolist() == ["a", "f"]
    assert arrived_labels(served, since=SINCE, now=NOW, horizon_days=200)["commit_sha"].tolist() == ["a"]
    assert (
        len(arrived_labels(served.drop(columns=["label_time"]), since=SINCE, now=NOW, horizon_days=365)) == 0
    )
    assert len(arrived_labels(served, since=NOW, now=NOW, horizon_days=365)) == 0  # an empty period


def _arrivals(labels: list[int], scores: list[float]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "score": scores,
            "label": pd.array(labels, dtype="Int64"),
            "label_time": pd.Timestamp("2026-11-20", tz="UTC"),
            "commit_time": "2026-08-01T00:00:00Z",
            "la": [10.0] * n,
            "ld": [2.0] * n,
        }
    )


def _window(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"la": rng.gamma(2.0, 10.0, n).round(), "score": rng.beta(2, 8, n)})


def test_a_drop_in_label_quality_shows_in_the_labels_that_arrived_even_on_a_small_window() -> None:
    # 10 defective labels scored 0.55, 0.59, ..., 0.91 and 20 clean scored 0.05, 0.07, ..., 0.43: every
    # defective change above every clean one, ROC-AUC 1.0
    defective = [round(0.55 + 0.04 * i, 2) for i in range(10)]
    clean = [round(0.05 + 0.02 * i, 2) for i in range(20)]
    good = _arrivals([1] * 10 + [0] * 20, defective + clean)
    reference, window = _window(300), _window(20)  # 20 predictions: drift and CBPE are not judged
    fine = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.98, labelled=good)
    assert fine.realized.basis == "arrived"
    assert (fine.realized.n_matured, fine.realized.n_positive, fine.realized.roc_auc) == (30, 10, 1.0)
    assert not fine.alarm
    # the labelling gets worse: the two highest-scored defects come back labelled clean. 8 defective labels
    # above 20 of the 22 clean ones: 8 * 20 concordant pairs of 8 * 22, ROC-AUC 160 / 176 = 0.909
    flipped = good.copy()
    flipped.loc[[8, 9], "label"] = 0
    worse = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.98, labelled=flipped)
    assert worse.realized.roc_auc == pytest.approx(160 / 176)
    assert worse.alarm_reasons == [
        "realized ROC-AUC 0.909 on 30 labels that arrived in the window (8 defective) is 0.071 below the "
        "held-out 0.980 (> 0.05)"
    ]
    # three labels are no measure: "not enough labels (n=3)", never a number, and no alarm
    few = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.98, labelled=flipped.iloc[7:10])
    assert few.realized.roc_auc is None
    assert few.realized.skipped_reason == "not enough labels (n=3, 30 needed)"
    assert not few.alarm
    none = monitor_window(reference, window, now=NOW, baseline_roc_auc=0.98, labelled=flipped.iloc[0:0])
    assert none.realized.skipped_reason == "no labels arrived in the window"


def _drift(name: str, *, detected: bool, psi: float | None, p_value: float = 1e-6) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind="numeric",
        test="ks",
        statistic=0.3,
        p_value=p_value,
        threshold=0.05 / 15,
        drift_score=3.0,
        psi=psi,
        psi_level="significant" if psi is not None and psi >= 0.25 else "moderate",
        psi_noise_floor=0.3,
        psi_counts=False,
        n_reference=500,
        n_window=150,
        missing_share_reference=0.0,
        missing_share_window=0.0,
        new_category_share=None,
        drift_detected=detected,
    )


def test_drift_counts_towards_an_alarm_only_with_a_psi_of_at_least_0_25() -> None:
    settings = MonitoringSettings()
    assert material(_drift("la", detected=True, psi=0.25), settings)
    assert not material(_drift("la", detected=True, psi=0.249), settings)  # significant, but small
    assert not material(_drift("la", detected=False, psi=0.9), settings)  # PSI alone on a small window
    assert not material(_drift("la", detected=True, psi=None), settings)
    old = MonitoringSettings(alarm_drift_psi=0.0)  # the policy before: any significant test
    assert material(_drift("la", detected=True, psi=0.01), old)


def _inputs(score: FeatureDrift, history: tuple[bool, ...]) -> AlarmInputs:
    settings = MonitoringSettings()
    frame = pd.DataFrame({"score": [0.2], "label": pd.array([None], dtype="Int64")})
    return AlarmInputs(
        n_window=150,
        features=[],
        prediction=score,
        streams=[],
        realized=realized_performance(frame, now=NOW, settings=settings),
        estimated=estimate_performance(np.array([0.2, 0.6]), decision_threshold=0.5),
        baseline_roc_auc=None,
        reference_estimated_roc_auc=None,
        drift_history=history,
    )


def test_drift_of_the_score_alarms_only_in_consecutive_checks() -> None:
    settings = MonitoringSettings()
    score = _drift("score", detected=True, psi=0.41, p_value=2.5e-5)
    line = "the score distribution drifted (ks, p = 2.5e-05, PSI 0.410)"
    notes: list[str] = []
    first = alarm_reasons(_inputs(score, ()), settings, notes)
    assert (first.reasons, first.drift_signal, first.drift_checks) == ([], [line], 1)
    assert f"drift in 1 check(s) in a row, 2 needed for an alarm: {line}" in notes
    second = alarm_reasons(_inputs(score, (False, True)), settings, [])
    assert (second.reasons, second.drift_checks) == ([f"{line} (drift in 2 consecutive checks)"], 2)
    broken = alarm_reasons(_inputs(score, (True, False)), settings, [])  # the run was broken: starts again
    assert (broken.reasons, broken.drift_checks) == ([], 1)
    three = MonitoringSettings(alarm_drift_checks=3)
    assert alarm_reasons(_inputs(score, (True,)), three, []).reasons == []
    assert alarm_reasons(_inputs(score, (True, True)), three, []).drift_checks == 3
    once = MonitoringSettings(alarm_drift_checks=1)  # the policy before: one check
    assert alarm_reasons(_inputs(score, ()), once, []).reasons == [line]
    small = _drift("score", detected=True, psi=0.12, p_value=2.5e-5)  # significant, PSI below 0.25
    quiet: list[str] = []
    verdict = alarm_reasons(_inputs(small, (True,)), settings, quiet)
    assert (verdict.reasons, verdict.drift_signal) == ([], [])
    assert (
        "significant but below PSI 0.25, not counted towards an alarm: score (p = 2.5e-05, PSI 0.120)"
        in quiet
    )


def test_a_streaming_detector_alone_is_diagnosis_unless_configured() -> None:
    from defectops.monitoring.drift_records import StreamDrift

    quiet_score = _drift("score", detected=False, psi=0.02, p_value=0.4)
    stream = StreamDrift(
        detector="adwin",
        target="score",
        n_warmup=500,
        n_window=150,
        detections=1,
        first_detection=97,
        drift_detected=True,
    )
    inputs = dataclasses.replace(_inputs(quiet_score, (True,)), streams=[stream])
    notes: list[str] = []
    verdict = alarm_reasons(inputs, MonitoringSettings(), notes)
    assert (verdict.reasons, verdict.drift_signal) == ([], [])
    assert "adwin saw the score change: diagnosis (the streaming detectors have no effect size)" in notes
    on = alarm_reasons(inputs, MonitoringSettings(alarm_on_streams=True), [])
    assert on.reasons == [
        "adwin saw the score change (first at window row 97) (drift in 2 consecutive checks)"
    ]
