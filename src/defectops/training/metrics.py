"""Metrics of just-in-time defect prediction: classification quality and effort-aware metrics of the field.

Effort is the churn of a change (``la + ld``): reviewing a change costs time in proportion to the lines it
touches, so a model that finds defects in small changes saves more than one that flags huge ones.

Definitions (documented with worked examples in ``docs/evaluation.md``):

* ``roc_auc``: area under the ROC curve (ties count one half).
* ``pr_auc``: average precision, ``sum_k (R_k - R_{k-1}) * P_k`` over score thresholds (no interpolation).
* ``f1``, ``mcc``, ``g_mean = sqrt(recall * specificity)``: at the model's decision threshold
  (``score >= threshold`` is predicted defect-inducing).
* ``brier``: mean of ``(p - y)^2`` over calibrated probabilities.
* Effort-aware metrics inspect changes in the order of an *effort-aware ranking score* (by default the
  predicted risk density ``p / max(churn, 1)``, as EALR of Kamei et al. 2013 ranks by predicted defect
  density; ``ranking="risk"`` ranks by ``p`` alone). Ties: smaller effort first, then input order.

  - ``recall_at_20_effort`` (ACC in Yang et al. FSE'16): share of defect-inducing changes among the changes
    inspected while the cumulative effort stays within 20% of the total effort (a change that would cross
    the budget is not inspected).
  - ``effort_at_20_recall``: share of the total effort spent when 20% of the defect-inducing changes are
    found (smallest prefix reaching ``ceil``-free ``found >= 0.2 * total``). Lower is better.
  - ``popt`` (Kamei et al. 2013 after Mende & Koschke 2010): with the curve ``x`` = cumulative share of
    effort, ``y`` = cumulative share of defect-inducing changes (trapezoids from (0, 0)),
    ``popt = 1 - (area(optimal) - area(model)) / (area(optimal) - area(worst))``; the optimal curve ranks
    by actual density ``label / churn`` descending, the worst ascending.
  - ``ifa``: number of clean changes inspected before the first defect-inducing one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from defectops.errors import InputError

FloatArray = npt.NDArray[np.float64]
Ranking = Literal["density", "risk"]

#: The metric keys of ``--json`` output, in order.
METRIC_KEYS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "f1",
    "mcc",
    "g_mean",
    "brier",
    "recall_at_20_effort",
    "effort_at_20_recall",
    "popt",
    "ifa",
)
#: Keys whose larger value is better (brier, effort_at_20_recall and ifa are better when smaller).
HIGHER_IS_BETTER: frozenset[str] = frozenset(
    {"roc_auc", "pr_auc", "f1", "mcc", "g_mean", "recall_at_20_effort", "popt"}
)
_NAN = float("nan")


def _arrays(
    y: object, score: object, effort: object | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    labels = np.asarray(y, dtype=np.float64).ravel()
    scores = np.asarray(score, dtype=np.float64).ravel()
    efforts = np.zeros_like(scores) if effort is None else np.asarray(effort, dtype=np.float64).ravel()
    if not (len(labels) == len(scores) == len(efforts)):
        raise InputError(
            f"lengths differ: {len(labels)} labels, {len(scores)} scores, {len(efforts)} efforts"
        )
    if len(labels) and not np.isin(labels, (0.0, 1.0)).all():
        raise InputError("labels must be 0 or 1")
    if not np.isfinite(scores).all():
        raise InputError("scores must be finite")
    if (efforts < 0).any() or not np.isfinite(efforts).all():
        raise InputError("effort must be finite and non-negative")
    return labels, scores, efforts


def roc_auc(y: object, score: object) -> float:
    """Probability that a random defect-inducing change scores above a random clean one (ties: one half);
    NaN when one class is absent. Computed from mid-ranks (Mann-Whitney U)."""
    labels, scores, _ = _arrays(y, score)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return _NAN
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    u = float(ranks[labels == 1].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def pr_auc(y: object, score: object) -> float:
    """Average precision: sum over distinct thresholds of (recall gain) x precision; NaN without positives."""
    labels, scores, _ = _arrays(y, score)
    n_pos = labels.sum()
    if n_pos == 0:
        return _NAN
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    tp = np.cumsum(sorted_labels)
    seen = np.arange(1, len(labels) + 1)
    # only the last position of each block of tied scores is a threshold
    last = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp, seen = tp[last], seen[last]
    precision = tp / seen
    recall = tp / n_pos
    gains = np.diff(np.r_[0.0, recall])
    return float(np.sum(gains * precision))


@dataclass(frozen=True)
class Confusion:
    """Counts at one decision threshold."""

    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def at(cls, y: object, score: object, threshold: float) -> Confusion:
        labels, scores, _ = _arrays(y, score)
        predicted = scores >= threshold
        positive = labels == 1
        return cls(
            tp=int(np.sum(predicted & positive)),
            fp=int(np.sum(predicted & ~positive)),
            tn=int(np.sum(~predicted & ~positive)),
            fn=int(np.sum(~predicted & positive)),
        )

    def f1(self) -> float:
        """2TP / (2TP + FP + FN); NaN when there is neither a positive nor a predicted positive."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else _NAN

    def mcc(self) -> float:
        """Matthews correlation; 0 when a row or column of the confusion matrix is empty (as scikit-learn)."""
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        denominator = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return (tp * tn - fp * fn) / denominator if denominator else 0.0

    def g_mean(self) -> float:
        """sqrt(recall x specificity); NaN when a class is absent."""
        if self.tp + self.fn == 0 or self.tn + self.fp == 0:
            return _NAN
        return math.sqrt(self.tp / (self.tp + self.fn) * self.tn / (self.tn + self.fp))


def f1(y: object, score: object, threshold: float = 0.5) -> float:
    return Confusion.at(y, score, threshold).f1()


def mcc(y: object, score: object, threshold: float = 0.5) -> float:
    return Confusion.at(y, score, threshold).mcc()


def g_mean(y: object, score: object, threshold: float = 0.5) -> float:
    return Confusion.at(y, score, threshold).g_mean()


def brier(y: object, probability: object) -> float:
    """Mean squared difference between probability and label (lower is better); NaN when empty."""
    labels, probs, _ = _arrays(y, probability)
    if len(labels) == 0:
        return _NAN
    if ((probs < 0) | (probs > 1)).any():
        raise InputError("the Brier score needs probabilities in [0, 1]")
    return float(np.mean((probs - labels) ** 2))


def inspection_order(score: object, effort: object) -> npt.NDArray[np.intp]:
    """The order in which changes are inspected: score descending, then effort ascending, then input order."""
    scores = np.asarray(score, dtype=np.float64).ravel()
    efforts = np.asarray(effort, dtype=np.float64).ravel()
    order: npt.NDArray[np.intp] = np.lexsort((np.arange(len(scores)), efforts, -scores))
    return order


def effort_aware_score(probability: object, effort: object, ranking: Ranking = "density") -> FloatArray:
    """The score that orders inspection: predicted risk per line (``p / max(churn, 1)``) or risk alone."""
    probs = np.asarray(probability, dtype=np.float64).ravel()
    if ranking == "risk":
        return probs
    if ranking == "density":
        result: FloatArray = probs / np.maximum(np.asarray(effort, dtype=np.float64).ravel(), 1.0)
        return result
    raise InputError(f"unknown ranking {ranking!r}: use 'density' or 'risk'")


def recall_at_effort(y: object, score: object, effort: object, share: float = 0.2) -> float:
    """Share of defect-inducing changes found within ``share`` of the total effort, inspecting by ``score``
    (see :func:`inspection_order`); a change that would cross the budget is not inspected. NaN without
    positives."""
    labels, scores, efforts = _arrays(y, score, effort)
    positives = labels.sum()
    if positives == 0:
        return _NAN
    order = inspection_order(scores, efforts)
    budget = share * efforts.sum()
    inspected = np.cumsum(efforts[order]) <= budget * (1 + 1e-12)
    return float(labels[order][inspected].sum() / positives)


def effort_at_recall(y: object, score: object, effort: object, share: float = 0.2) -> float:
    """Share of the total effort spent, inspecting by ``score``, until ``share`` of the defect-inducing
    changes are found. NaN without positives or without effort."""
    labels, scores, efforts = _arrays(y, score, effort)
    positives = labels.sum()
    total = efforts.sum()
    if positives == 0 or total == 0:
        return _NAN
    order = inspection_order(scores, efforts)
    found = np.cumsum(labels[order])
    k = int(np.argmax(found >= share * positives * (1 - 1e-12)))
    return float(np.cumsum(efforts[order])[k] / total)


def _area(labels: FloatArray, efforts: FloatArray, order: npt.NDArray[np.intp]) -> float:
    """Area under the effort (x) / found-defects (y) curve of ``order``, trapezoids from (0, 0)."""
    x = np.r_[0.0, np.cumsum(efforts[order])] / efforts.sum()
    y = np.r_[0.0, np.cumsum(labels[order])] / labels.sum()
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def popt(y: object, score: object, effort: object) -> float:
    """Normalised Popt: ``1 - (opt - model) / (opt - worst)`` with areas of :func:`_area`.

    The optimal model inspects by actual defect density (``label / effort`` descending; a defect with zero
    effort first), the worst by density ascending. NaN without positives, without effort, or when optimal and
    worst coincide.
    """
    labels, scores, efforts = _arrays(y, score, effort)
    if labels.sum() == 0 or efforts.sum() == 0:
        return _NAN
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(
            efforts > 0, labels / np.where(efforts > 0, efforts, 1.0), np.where(labels > 0, np.inf, 0.0)
        )
    n = np.arange(len(labels))
    optimal = np.lexsort((n, efforts, -density))
    worst = np.lexsort((n, -efforts, density))
    best_area = _area(labels, efforts, optimal)
    worst_area = _area(labels, efforts, worst)
    if best_area - worst_area <= 0:
        return _NAN
    model_area = _area(labels, efforts, inspection_order(scores, efforts))
    return 1.0 - (best_area - model_area) / (best_area - worst_area)


def ifa(y: object, score: object, effort: object | None = None) -> float:
    """Initial false alarms: clean changes inspected (by ``score``; ties smaller effort first) before the
    first defect-inducing one. NaN without positives."""
    labels, scores, efforts = _arrays(y, score, effort)
    if labels.sum() == 0:
        return _NAN
    order = inspection_order(scores, efforts)
    return float(np.argmax(labels[order] == 1))


@dataclass(frozen=True)
class Report:
    """All metrics of one evaluation, plus the counts they rest on."""

    roc_auc: float
    pr_auc: float
    f1: float
    mcc: float
    g_mean: float
    brier: float
    recall_at_20_effort: float
    effort_at_20_recall: float
    popt: float
    ifa: float
    n: int
    n_defective: int
    n_clean: int
    tp: int
    fp: int
    tn: int
    fn: int
    threshold: float
    total_effort: float
    ranking: str

    def metrics(self) -> dict[str, float]:
        """Just the metric keys of :data:`METRIC_KEYS`."""
        values = asdict(self)
        return {key: float(values[key]) for key in METRIC_KEYS}

    def as_dict(self) -> dict[str, float | int | str]:
        result: dict[str, float | int | str] = asdict(self)
        return result


def evaluate_predictions(
    y: object,
    probability: object,
    effort: object,
    *,
    threshold: float = 0.5,
    ranking: Ranking = "density",
    effort_score: object | None = None,
) -> Report:
    """Every metric for one set of predictions.

    ``probability`` are the model's (calibrated) probabilities; threshold metrics use ``threshold``. The
    effort-aware metrics rank by :func:`effort_aware_score` of the probabilities, or by ``effort_score``
    when given (e.g. an unsupervised ranking such as ``-lt``, or EALR's predicted density), in which case
    ``ranking`` is reported as ``"custom"``.
    """
    labels, probs, efforts = _arrays(y, probability, effort)
    confusion = Confusion.at(labels, probs, threshold)
    if effort_score is None:
        ranked = effort_aware_score(probs, efforts, ranking)
        ranking_name: str = ranking
    else:
        ranked = np.asarray(effort_score, dtype=np.float64).ravel()
        ranking_name = "custom"
    in_unit = bool(((probs >= 0) & (probs <= 1)).all())
    n_pos = int(labels.sum())
    return Report(
        roc_auc=roc_auc(labels, probs),
        pr_auc=pr_auc(labels, probs),
        f1=confusion.f1(),
        mcc=confusion.mcc(),
        g_mean=confusion.g_mean(),
        brier=brier(labels, probs) if in_unit else _NAN,
        recall_at_20_effort=recall_at_effort(labels, ranked, efforts, 0.2),
        effort_at_20_recall=effort_at_recall(labels, ranked, efforts, 0.2),
        popt=popt(labels, ranked, efforts),
        ifa=ifa(labels, ranked, efforts),
        n=len(labels),
        n_defective=n_pos,
        n_clean=len(labels) - n_pos,
        tp=confusion.tp,
        fp=confusion.fp,
        tn=confusion.tn,
        fn=confusion.fn,
        threshold=float(threshold),
        total_effort=float(efforts.sum()),
        ranking=ranking_name,
    )


def mean_reports(reports: list[Report]) -> dict[str, float]:
    """Mean of every metric over folds (NaN folds ignored) and summed counts; keys as in ``Report``."""
    if not reports:
        raise InputError("no folds to average")
    out: dict[str, float] = {}
    for key in METRIC_KEYS:
        values = np.array([getattr(r, key) for r in reports], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if len(finite) else _NAN
    for key in ("n", "n_defective", "n_clean", "tp", "fp", "tn", "fn"):
        out[key] = float(sum(getattr(r, key) for r in reports))
    out["folds"] = float(len(reports))
    return out


def summarise(values: Mapping[str, float]) -> str:
    """One short line for logs: the headline metrics."""
    keys = ("roc_auc", "pr_auc", "f1", "popt", "recall_at_20_effort")
    return ", ".join(f"{k}={values[k]:.3f}" for k in keys if k in values)
