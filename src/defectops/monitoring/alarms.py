"""When a monitored window raises an alarm, as opposed to merely showing drift.

Why the distinction: feature drift is diagnosis. On real repositories some feature nearly always differs
from any reference (a release brings larger changes, a sprint of fixes raises ``fix``), and a monitor that is
red every cycle is ignored — or, wired to retraining, trains challengers for nothing. An alarm is what may act
(retrain, notify), and rests on what matters, in this order:

1. **realized performance** where labels exist: ROC-AUC on the labels that *arrived* during the window (for
   commits served up to ``label_horizon_days`` before, :mod:`defectops.monitoring.arrivals`; the window's
   own matured labels when no arrivals are given), on at least ``min_realized_labels`` labels and
   ``min_realized_per_class`` of each class, more than ``max_performance_drop`` below the model's held-out
   ROC-AUC at training. Judged whenever that minimum is met, whatever the window's size: the minimum is
   the metric's own;
2. **estimated performance** (CBPE) where realized is not judged: the window's estimated ROC-AUC more than
   ``max_performance_drop`` below the estimate on the reference's scores. Estimate against estimate, never
   against the held-out value: CBPE of a slightly over- or underconfident model is off by a constant that
   would otherwise read as a drop on every window. The drop is measured from the lower of that estimate and
   the held-out ROC-AUC: reference scores computed by the model on its own training rows are in-sample and
   over-confident (flask: CBPE 0.940 on them, held-out ROC-AUC 0.890), and the window's honest estimate
   would read as a drop. Not judged without reference scores, or when the reference shows the scores are not
   calibrated;
3. **sustained, material drift of the score or of many features**: the score's distribution, or at least
   ``alarm_feature_share`` of the feature groups (:func:`feature_groups`), drift *materially* — the test is
   significant and the PSI is at least ``alarm_drift_psi`` (0.25, the conventional "significant shift") —
   in ``alarm_drift_checks`` consecutive checks of the model (this one included). A drift signal in one
   check is diagnosis. The streaming detectors' changes are diagnosis unless ``alarm_on_streams``.

Why effect size and persistence: on ~135 rows a p-value flags shifts too small to matter and a week's
commits can be unusual by chance; feature drift is diagnosis (issue 12), and what may act is performance
or a shift that is both large and lasting. Performance alarms need no confirmation.

Why features are grouped: the mined metrics are not independent. On numpy ``exp``, ``rexp``, ``sexp``,
``author_30d`` and ``author_90d`` all measure how active the author is (Spearman 0.7-0.95 on the reference):
one prolific author moved all five at once, so 5 of 23 features "drifted" in nearly every window and two
more unrelated ones made an alarm (27 alarms in 52 weekly windows with no performance drop, benchmarks
replay). One cause is one piece of evidence: features whose ranks correlate at ``|Spearman| >=``
:data:`GROUP_CORRELATION` on the reference (linked transitively) form a group, a group drifts when any
member does, and the share is drifting groups over groups. Independent features stay groups of one, so
nothing changes where the metrics do not move together.

CBPE and drift are not judged on a window of fewer than ``min_alarm_predictions`` predictions; its drift is
still reported. Every reason names the figures it rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from defectops.config import MonitoringSettings
from defectops.monitoring.drift_records import FeatureDrift, StreamDrift
from defectops.monitoring.newcomers import NewcomerShift, newcomer_verdict
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
    #: Features that move together (:func:`feature_groups`); a feature in none is a group of its own.
    groups: Sequence[Sequence[str]] = field(default_factory=tuple)
    #: Whether the model's earlier checks (oldest first) had a drift signal (:attr:`Alarms.drift_signal`).
    drift_history: Sequence[bool] = field(default_factory=tuple)
    #: The newcomer check (:mod:`defectops.monitoring.newcomers`), with its own run of consecutive signals.
    newcomers: NewcomerShift | None = None


@dataclass(frozen=True, slots=True)
class Alarms:
    """The verdict: the alarm reasons (empty: no alarm), this check's drift signal and its run length."""

    reasons: list[str]
    #: Material drift of the score or of many feature groups in this check (alarms once sustained).
    drift_signal: list[str]
    #: Consecutive checks with a drift signal, this one included (0 when it has none).
    drift_checks: int


#: Features whose ranks correlate at least this much on the reference count as one for the alarm share.
GROUP_CORRELATION = 0.7


def feature_groups(reference: pd.DataFrame, features: Sequence[str]) -> list[list[str]]:
    """``features`` in groups that move together: linked when ``|Spearman| >= GROUP_CORRELATION`` on the
    reference's non-missing pairs, transitively (connected components), in ``features`` order. Non-numeric
    and constant features are groups of one."""
    numeric = [
        name
        for name in features
        if pd.api.types.is_numeric_dtype(reference[name]) and reference[name].nunique(dropna=True) > 1
    ]
    parent = {name: name for name in features}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    if len(numeric) > 1:
        correlation = reference[numeric].astype("float64").corr(method="spearman").abs().to_numpy()
        for i, j in zip(*np.nonzero(np.triu(correlation >= GROUP_CORRELATION, k=1)), strict=True):
            parent[root(numeric[i])] = root(numeric[j])
    groups: dict[str, list[str]] = {}
    for name in features:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())


def material(f: FeatureDrift, settings: MonitoringSettings) -> bool:
    """Drift that counts towards an alarm: detected, and a PSI of at least ``alarm_drift_psi``."""
    if not f.drift_detected:
        return False
    return settings.alarm_drift_psi <= 0 or (f.psi is not None and f.psi >= settings.alarm_drift_psi)


def _size(f: FeatureDrift) -> str:
    test = f"p = {f.p_value:.3g}" if f.p_value is not None else f"{f.test} {f.statistic:.3g}"
    return f"{test}, PSI {f.psi:.3f}" if f.psi is not None else test


def alarm_reasons(inputs: AlarmInputs, settings: MonitoringSettings, notes: list[str]) -> Alarms:
    """The alarm rules (module docstring) on one check; why a rule was not judged goes to ``notes``."""
    reasons = _performance(inputs, settings, notes)
    newcomer_alarms, newcomer_notes = newcomer_verdict(inputs.newcomers, settings)
    reasons.extend(newcomer_alarms)
    notes.extend(newcomer_notes)
    if inputs.n_window < settings.min_alarm_predictions:
        notes.append(
            f"drift and estimated performance not judged on {inputs.n_window} predictions "
            f"(< {settings.min_alarm_predictions}): drift is reported as diagnosis only"
        )
        return Alarms(reasons, [], 0)
    signal = _drift_signal(inputs, settings, notes)
    if not signal:
        return Alarms(reasons, [], 0)
    checks = 1
    for earlier in reversed(inputs.drift_history):
        if not earlier:
            break
        checks += 1
    needed = settings.alarm_drift_checks
    if checks >= needed:
        suffix = f" (drift in {checks} consecutive checks)" if needed > 1 else ""
        reasons.extend(f"{line}{suffix}" for line in signal)
    else:
        notes.append(
            f"drift in {checks} check(s) in a row, {needed} needed for an alarm: " + "; ".join(signal)
        )
    return Alarms(reasons, signal, checks)


def _drift_signal(inputs: AlarmInputs, settings: MonitoringSettings, notes: list[str]) -> list[str]:
    signal: list[str] = []
    psi = settings.alarm_drift_psi
    small: list[str] = []
    p = inputs.prediction
    if p is not None and material(p, settings):
        signal.append(f"the score distribution drifted ({p.test}, {_size(p)})")
    elif p is not None and p.drift_detected:
        small.append(f"score ({_size(p)})")
    for stream in inputs.streams:
        if not stream.drift_detected:
            continue
        seen = f"{stream.detector} saw the {stream.target.replace('_', ' ')} change"
        if settings.alarm_on_streams:
            signal.append(f"{seen} (first at window row {stream.first_detection})")
        else:
            notes.append(f"{seen}: diagnosis (the streaming detectors have no effect size)")
    tested = [f for f in inputs.features if f.test is not None]
    drifted = [f.feature for f in tested if material(f, settings)]
    small.extend(
        f"{f.feature} ({_size(f)})" for f in tested if f.drift_detected and not material(f, settings)
    )
    if small:
        notes.append(f"significant but below PSI {psi:g}, not counted towards an alarm: " + ", ".join(small))
    grouped = {name: i for i, group in enumerate(inputs.groups) for name in group}
    groups: dict[object, list[str]] = {}
    for f in tested:
        groups.setdefault(grouped.get(f.feature, f.feature), []).append(f.feature)
    moved = [members for members in groups.values() if any(name in drifted for name in members)]
    share = len(moved) / len(groups) if groups else 0.0
    if len(groups) == len(tested):
        counted = f"{len(drifted)} of {len(tested)} features drift"
    else:
        shown = ", ".join("+".join(m for m in members if m in drifted) for members in moved)
        counted = (
            f"{len(moved)} of {len(groups)} groups of features drift ({shown}; {len(drifted)} of "
            f"{len(tested)} features, those that move together counted once)"
        )
    if psi > 0:
        counted += f" with PSI >= {psi:g}"
    if groups and share >= settings.alarm_feature_share:
        detail = ": " + ", ".join(drifted) if len(groups) == len(tested) else ""
        signal.append(f"{counted} (>= {settings.alarm_feature_share:.0%}){detail}")
    elif drifted:
        detail = f" ({', '.join(drifted)})" if len(groups) == len(tested) else ""
        notes.append(
            f"{counted}{detail}: diagnosis, not an alarm "
            f"(< {settings.alarm_feature_share:.0%} of the features)"
        )
    return signal


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
                f"realized ROC-AUC {realized.roc_auc:.3f} on {realized.described} is "
                f"{drop:.3f} below the held-out {baseline:.3f} (> {margin:g})"
            ]
        return []
    if inputs.n_window < settings.min_alarm_predictions:
        return []
    expected = inputs.reference_estimated_roc_auc
    if expected is None or estimated.roc_auc is None:
        notes.append("estimated performance not judged: no model scores on the reference to compare with")
        return []
    if estimated.reliable is False:
        notes.append("estimated performance not judged: the reference shows the scores are not calibrated")
        return []
    against = f"the reference's {expected:.3f}"
    if baseline is not None and baseline < expected:  # in-sample reference scores: judged from the lower
        against = f"the held-out {baseline:.3f} (the reference's own estimate is {expected:.3f})"
        expected = baseline
    drop = expected - estimated.roc_auc
    if drop > margin:
        return [
            f"estimated (CBPE) ROC-AUC {estimated.roc_auc:.3f} on {estimated.n} predictions is {drop:.3f} "
            f"below {against} (> {margin:g}; realized not judged: {realized.skipped_reason or 'no labels'})"
        ]
    return []
