"""When a monitored window raises an alarm, as opposed to merely showing drift.

Why the distinction: feature drift is diagnosis. On real repositories some feature nearly always differs
from any reference (a release brings larger changes, a sprint of fixes raises ``fix``), and a monitor that is
red every cycle is ignored — or, wired to retraining, trains challengers for nothing. An alarm is what may act
(retrain, notify), and rests on what matters, in this order:

1. **realized performance** where labels have matured: ROC-AUC on at least ``min_realized_labels`` matured
   labels (and ``min_realized_per_class`` of each class) more than ``max_performance_drop`` below the model's
   held-out ROC-AUC at training;
2. **estimated performance** (CBPE) where they have not: the window's estimated ROC-AUC more than
   ``max_performance_drop`` below the estimate on the reference's scores. Estimate against estimate, never
   against the held-out value: CBPE of a slightly over- or underconfident model is off by a constant that
   would otherwise read as a drop on every window. Not judged without reference scores, or when the
   reference shows the scores are not calibrated;
3. **the score**: its distribution (the prediction drift test) or its stream (Page-Hinkley, ADWIN) moved;
4. **many features at once**: at least ``alarm_feature_share`` of the monitored features drift.

No alarm is raised on a window of fewer than ``min_alarm_predictions`` predictions; its drift is still
reported. Every reason names the figures it rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from defectops.config import MonitoringSettings
from defectops.monitoring.drift_records import FeatureDrift, StreamDrift
from defectops.monitoring.performance import EstimatedPerformance, RealizedPerformance


@dataclass(frozen=True, slots=True)
class AlarmInputs:
    """What the alarm rules read from one monitoring run."""

    n_window: int
    features: Sequence[FeatureDrift]
    prediction: FeatureDrift | None
    streams: Sequence[StreamDrift]
    realized: RealizedPerformance
    estimated: EstimatedPerformance
    baseline_roc_auc: float | None
    reference_estimated_roc_auc: float | None


def alarm_reasons(inputs: AlarmInputs, settings: MonitoringSettings, notes: list[str]) -> list[str]:
    """One line per alarm rule that fired (empty: no alarm); why a rule was not judged goes to ``notes``."""
    if inputs.n_window < settings.min_alarm_predictions:
        notes.append(
            f"no alarm on {inputs.n_window} predictions (< {settings.min_alarm_predictions}): drift is "
            "reported as diagnosis only"
        )
        return []
    reasons: list[str] = []
    reasons.extend(_performance(inputs, settings, notes))
    if inputs.prediction is not None and inputs.prediction.drift_detected:
        p = inputs.prediction
        reasons.append(f"the score distribution drifted ({p.test}, drift score {p.drift_score:.2f})")
    for stream in inputs.streams:
        if stream.drift_detected:
            reasons.append(
                f"{stream.detector} saw the {stream.target.replace('_', ' ')} change "
                f"(first at window row {stream.first_detection})"
            )
    tested = [f for f in inputs.features if f.test is not None]
    drifted = [f.feature for f in tested if f.drift_detected]
    if tested and len(drifted) / len(tested) >= settings.alarm_feature_share:
        reasons.append(
            f"{len(drifted)} of {len(tested)} features drift (>= {settings.alarm_feature_share:.0%}): "
            + ", ".join(drifted)
        )
    elif drifted:
        notes.append(
            f"{len(drifted)} of {len(tested)} features drift ({', '.join(drifted)}): diagnosis, not an alarm "
            f"(< {settings.alarm_feature_share:.0%} of the features)"
        )
    return reasons


def _performance(inputs: AlarmInputs, settings: MonitoringSettings, notes: list[str]) -> list[str]:
    margin = settings.max_performance_drop
    realized, estimated = inputs.realized, inputs.estimated
    baseline = inputs.baseline_roc_auc
    if realized.roc_auc is not None:
        if baseline is None:
            notes.append("no held-out ROC-AUC of the model given: realized performance is not judged")
            return []
        drop = baseline - realized.roc_auc
        if drop > margin:
            return [
                f"realized ROC-AUC {realized.roc_auc:.3f} on {realized.n_matured} matured labels is "
                f"{drop:.3f} below the held-out {baseline:.3f} (> {margin:g})"
            ]
        return []
    expected = inputs.reference_estimated_roc_auc
    if expected is None or estimated.roc_auc is None:
        notes.append("estimated performance not judged: no model scores on the reference to compare with")
        return []
    if estimated.reliable is False:
        notes.append("estimated performance not judged: the reference shows the scores are not calibrated")
        return []
    drop = expected - estimated.roc_auc
    if drop > margin:
        return [
            f"estimated (CBPE) ROC-AUC {estimated.roc_auc:.3f} on {estimated.n} predictions is {drop:.3f} "
            f"below the reference's {expected:.3f} (> {margin:g}; {realized.n_matured} matured labels, too "
            "few to judge)"
        ]
    return []
