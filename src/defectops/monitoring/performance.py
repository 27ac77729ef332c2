"""Model performance in a monitoring window: label-free proxies, realized metrics, and CBPE estimates.

Why three views: defect labels mature weeks or months after a prediction (a fix has to land first), so most
of a recent window has no label. The proxies (positive rate, score distribution, high-risk share) move at
once; realized metrics are exact but only cover the matured part; confidence-based performance estimation
(CBPE, the idea behind NannyML) fills the gap for a calibrated model by turning each score into an expected
confusion matrix.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.config import MonitoringSettings
from defectops.errors import InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Ranking = Literal["density", "risk"]
#: What realized metrics rest on: the window's own matured labels, or the labels that arrived during it.
Basis = Literal["window", "arrived"]

#: Fixed score histogram bins for reports: 20 equal-width bins on [0, 1].
HISTOGRAM_BINS = 20


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoreSummary(_Record):
    """Distribution of scores: moments, quantiles, and a fixed-bin histogram (counts only, no rows)."""

    n: int
    mean: float
    std: float
    min: float
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    max: float
    histogram_edges: list[float]
    histogram_counts: list[int]


class LabelFreeProxies(_Record):
    """What can be watched without labels."""

    n: int
    decision_threshold: float
    positive_rate: float
    high_risk_threshold: float
    high_risk_share: float
    score: ScoreSummary


class RealizedPerformance(_Record):
    """Metrics on the matured part of the window, with the counts they rest on."""

    n_window: int
    n_matured: int
    n_positive: int
    n_negative: int
    decision_threshold: float
    roc_auc: float | None
    f1: float | None
    precision: float | None
    recall: float | None
    brier: float | None
    effort_share: float
    recall_at_effort: float | None
    n_with_effort: int
    skipped_reason: str | None = None
    #: "arrived": the labels that arrived during the monitored period (:mod:`defectops.monitoring.arrivals`),
    #: for commits served up to the label horizon before; "window": the window's own matured rows.
    basis: Basis = "window"

    @property
    def described(self) -> str:
        """What the labels are, for messages ("104 labels that arrived in the window (31 defective)")."""
        if self.basis == "arrived":
            return f"{self.n_matured} labels that arrived in the window ({self.n_positive} defective)"
        return f"{self.n_matured} matured labels ({self.n_positive} defective)"


class EstimatedPerformance(_Record):
    """CBPE: expected confusion matrix and metrics from the scores alone.

    Valid only when scores are calibrated; ``reference_calibration_error`` (expected calibration error on the
    labelled reference) and ``reliable`` say whether that holds.
    """

    method: Literal["cbpe"] = "cbpe"
    n: int
    decision_threshold: float
    expected_tp: float
    expected_fp: float
    expected_fn: float
    expected_tn: float
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    brier: float
    accuracy: float
    reference_calibration_error: float | None
    reliable: bool | None


# ---------------------------------------------------------------------------------------------------------
# label-free


def score_summary(scores: FloatArray) -> ScoreSummary:
    """Moments, quantiles and a 20-bin histogram on [0, 1] of a score sample."""
    if len(scores) == 0:
        raise InputError("no scores to summarise")
    q10, q25, q50, q75, q90 = np.quantile(scores, [0.1, 0.25, 0.5, 0.75, 0.9])
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=edges)
    return ScoreSummary(
        n=len(scores),
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        min=float(np.min(scores)),
        p10=float(q10),
        p25=float(q25),
        p50=float(q50),
        p75=float(q75),
        p90=float(q90),
        max=float(np.max(scores)),
        histogram_edges=[round(float(e), 6) for e in edges],
        histogram_counts=[int(c) for c in counts],
    )


def label_free_proxies(
    scores: FloatArray,
    *,
    settings: MonitoringSettings,
    decision_threshold: float | None = None,
    high_risk_threshold: float | None = None,
) -> LabelFreeProxies:
    """Positive rate at the decision threshold, high-risk share and the score distribution.

    ``high_risk_threshold`` is the model's own ``high`` band cut when it has one (twice its base rate), so
    that the share matches what the service and CI call high; the settings' value otherwise.
    """
    threshold = settings.decision_threshold if decision_threshold is None else decision_threshold
    high = settings.high_risk_threshold if high_risk_threshold is None else high_risk_threshold
    return LabelFreeProxies(
        n=len(scores),
        decision_threshold=threshold,
        positive_rate=float(np.mean(scores >= threshold)) if len(scores) else 0.0,
        high_risk_threshold=high,
        high_risk_share=float(np.mean(scores >= high)) if len(scores) else 0.0,
        score=score_summary(scores),
    )


# ---------------------------------------------------------------------------------------------------------
# realized


def labels_array(series: pd.Series) -> FloatArray:
    """Labels as 0.0/1.0 with NaN for 'not yet known'; anything else is an input error."""
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError("column 'label' must hold 0/1 (or true/false) and missing values") from None
    known = values[~np.isnan(values)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise InputError("column 'label' must hold only 0, 1 or missing values")
    return values


def matured_mask(window: pd.DataFrame, *, now: datetime) -> BoolArray:
    """Rows whose label is known and not dated after ``now`` (``label_time`` optional)."""
    if "label" not in window.columns:
        return np.zeros(len(window), dtype=bool)
    mask: BoolArray = ~np.isnan(labels_array(window["label"]))
    if "label_time" in window.columns:
        try:
            times = pd.to_datetime(window["label_time"], utc=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"column 'label_time' is not a timestamp: {exc}") from None
        stamp = pd.Timestamp(now)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        future = (times > stamp).fillna(False).to_numpy(dtype=bool)
        mask &= ~future
    return mask


def _recall_at_effort(
    labels: FloatArray, scores: FloatArray, effort: FloatArray, share: float, ranking: Ranking
) -> float | None:
    """Recall@effort exactly as training reports it (defectops.training.metrics), None without defects."""
    from defectops.training import effort_aware_score, recall_at_effort

    value = recall_at_effort(labels, effort_aware_score(scores, effort, ranking), effort, share)
    return None if math.isnan(value) else value


def realized_performance(
    window: pd.DataFrame,
    *,
    now: datetime,
    settings: MonitoringSettings,
    decision_threshold: float | None = None,
    effort: FloatArray | None = None,
    basis: Basis = "window",
) -> RealizedPerformance:
    """ROC-AUC, F1, precision, recall, Brier and Recall@effort on the matured rows, with counts.

    ROC-AUC needs both classes and is None otherwise; Recall@effort needs the review effort of each row
    (``effort``, else the window's ``churn`` column: lines added + deleted) and a defective change. It is the
    training module's metric (defectops.training.metrics.recall_at_effort), inspecting changes by
    ``effort_ranking`` ('density' = score / max(churn, 1), as training reports it, or 'risk' = score), so
    monitored and training-time values are comparable. ``basis`` says what ``window`` is (the window's
    rows, or the labels that arrived during it); the minimum sample rule is the same for both.
    """
    from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

    threshold = settings.decision_threshold if decision_threshold is None else decision_threshold
    mask = matured_mask(window, now=now)
    n_matured = int(mask.sum())
    common = {
        "n_window": len(window),
        "n_matured": n_matured,
        "decision_threshold": threshold,
        "effort_share": settings.effort_share,
        "basis": basis,
    }
    if n_matured == 0:
        return RealizedPerformance(
            **common,
            n_positive=0,
            n_negative=0,
            roc_auc=None,
            f1=None,
            precision=None,
            recall=None,
            brier=None,
            recall_at_effort=None,
            n_with_effort=0,
            skipped_reason=(
                "no labels arrived in the window" if basis == "arrived" else "no matured labels in the window"
            ),
        )
    labels = labels_array(window["label"])[mask]
    scores = window["score"].to_numpy(dtype=np.float64)[mask]
    predicted = (scores >= threshold).astype(np.int64)
    truth = labels.astype(np.int64)
    n_positive = int(truth.sum())
    n_negative = n_matured - n_positive
    if n_matured < settings.min_realized_labels:
        # A metric on a handful of labels is noise (ROC-AUC on 3 labels is 0, 0.5 or 1): say so instead.
        return RealizedPerformance(
            **common,
            n_positive=n_positive,
            n_negative=n_negative,
            roc_auc=None,
            f1=None,
            precision=None,
            recall=None,
            brier=None,
            recall_at_effort=None,
            n_with_effort=0,
            skipped_reason=f"not enough labels (n={n_matured}, {settings.min_realized_labels} needed)",
        )
    per_class = settings.min_realized_per_class
    both = min(n_positive, n_negative) >= per_class
    enough_defective = n_positive >= per_class
    skipped: str | None = None
    if not both:
        skipped = (
            f"ROC-AUC needs {per_class} labels of each class (defective {n_positive}, clean {n_negative})"
        )
    recall_effort: float | None = None
    n_effort = 0
    if effort is None and "churn" in window.columns:
        effort = window["churn"].to_numpy(dtype=np.float64, na_value=np.nan)
    if effort is not None and enough_defective:
        if len(effort) != len(window):
            raise InputError(f"effort has {len(effort)} values for {len(window)} window rows")
        matured_effort = effort[mask]
        usable = np.isfinite(matured_effort) & (matured_effort >= 0)
        n_effort = int(usable.sum())
        if n_effort:
            recall_effort = _recall_at_effort(
                labels[usable],
                scores[usable],
                matured_effort[usable],
                settings.effort_share,
                settings.effort_ranking,
            )
    return RealizedPerformance(
        **common,
        n_positive=n_positive,
        n_negative=n_negative,
        roc_auc=float(roc_auc_score(truth, scores)) if both else None,
        f1=float(f1_score(truth, predicted, zero_division=0.0)),
        precision=float(precision_score(truth, predicted, zero_division=0.0)),
        recall=float(recall_score(truth, predicted, zero_division=0.0)) if enough_defective else None,
        brier=float(brier_score_loss(truth, scores)),
        recall_at_effort=recall_effort,
        n_with_effort=n_effort,
        skipped_reason=skipped,
    )


# ---------------------------------------------------------------------------------------------------------
# estimated (CBPE)


def expected_calibration_error(labels: FloatArray, scores: FloatArray, bins: int = 10) -> float:
    """ECE: sum over equal-width score bins of (bin share) * |observed rate - mean score|."""
    if len(scores) == 0:
        raise InputError("no labelled scores for the calibration error")
    index = np.minimum((np.clip(scores, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = index == b
        count = int(in_bin.sum())
        if count:
            total += count / len(scores) * abs(float(labels[in_bin].mean()) - float(scores[in_bin].mean()))
    return total


def estimated_roc_auc(scores: FloatArray) -> float | None:
    """Expected ROC-AUC if every score were the true probability of its change being defective.

    Ratio of expectations over distinct pairs: sum over i != j of p_i (1 - p_j) [s_i > s_j] (ties count half),
    divided by the expected number of (defective, clean) pairs, sum p * sum (1 - p) - sum p (1 - p).
    """
    p = np.sort(scores)
    _, start = np.unique(p, return_index=True)
    pos_groups = np.add.reduceat(p, start)
    neg_groups = np.add.reduceat(1.0 - p, start)
    self_pairs_groups = np.add.reduceat(p * (1.0 - p), start)
    neg_below = np.concatenate(([0.0], np.cumsum(neg_groups)[:-1]))
    concordant = float(
        np.sum(pos_groups * neg_below) + 0.5 * np.sum(pos_groups * neg_groups - self_pairs_groups)
    )
    pairs = float(np.sum(p) * np.sum(1.0 - p) - np.sum(p * (1.0 - p)))
    if pairs <= 0:
        return None
    return concordant / pairs


def estimate_performance(
    scores: FloatArray,
    *,
    decision_threshold: float,
    reference_labels: FloatArray | None = None,
    reference_scores: FloatArray | None = None,
    settings: MonitoringSettings | None = None,
) -> EstimatedPerformance:
    """CBPE: expected TP/FP/FN/TN from calibrated scores, and the metrics they imply.

    A change predicted defective (score >= threshold) is a true positive with probability p and a false
    positive with 1 - p; a change predicted clean is a false negative with p and a true negative with 1 - p.
    Precision, recall and F1 are ratios of the expected counts; Brier is mean p (1 - p); accuracy is
    (TP + TN) / n. Given labelled reference scores, the reference ECE tells whether the premise holds.
    """
    cfg = settings or MonitoringSettings()
    if len(scores) == 0:
        raise InputError("no scores to estimate performance from")
    predicted = scores >= decision_threshold
    tp = float(np.sum(scores[predicted]))
    fp = float(np.sum(1.0 - scores[predicted]))
    fn = float(np.sum(scores[~predicted]))
    tn = float(np.sum(1.0 - scores[~predicted]))
    ece: float | None = None
    reliable: bool | None = None
    if reference_labels is not None and reference_scores is not None and len(reference_labels):
        ece = expected_calibration_error(reference_labels, reference_scores, cfg.calibration_bins)
        reliable = ece <= cfg.max_calibration_error
    return EstimatedPerformance(
        n=len(scores),
        decision_threshold=decision_threshold,
        expected_tp=tp,
        expected_fp=fp,
        expected_fn=fn,
        expected_tn=tn,
        precision=tp / (tp + fp) if tp + fp > 0 else None,
        recall=tp / (tp + fn) if tp + fn > 0 else None,
        f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else None,
        roc_auc=estimated_roc_auc(scores),
        brier=float(np.mean(scores * (1.0 - scores))),
        accuracy=(tp + tn) / len(scores),
        reference_calibration_error=ece,
        reliable=reliable,
    )
