"""Validation beyond one number (issue #20): bootstrap intervals and error analysis by group.

A held-out ROC-AUC of 0.74 on 600 commits says little on its own: with 60 defect-inducing commits its
95% interval is easily ±0.06, and a model can be good on average and poor for the changes of new
contributors. This module answers both, on the time-ordered held-out window (the latest commits, scored by a
model trained only on labels known before them):

* :func:`bootstrap_metrics`: a percentile interval for every metric the project reports, resampling the
  *test rows* with replacement (the model is not refitted: the interval is the uncertainty of the window,
  not of training). Resample ``b`` uses row ``b`` of ``numpy.random.default_rng(seed).integers(0, n,
  size=(resamples, n))``; resamples where a metric is undefined (one class only) are skipped for it.
* :func:`group_errors`: recall and false-positive rate per group (author experience, top-level directory,
  change size) against the rest of the window, with a bootstrap interval of the difference; a warning when
  that interval excludes 0 and the difference is at least 0.05. With several groups some warnings are
  expected by chance (about 1 in 20 at 95%): the warning is a reason to look, not a verdict.

Everything is pure: arrays in, frozen records out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from defectops.errors import InputError
from defectops.training.metrics import METRIC_KEYS, evaluate_predictions

FloatArray = npt.NDArray[np.float64]
#: Resamples, confidence and seed of every interval unless the caller says otherwise.
RESAMPLES: Final = 1000
CONFIDENCE: Final = 0.95
SEED: Final = 0
#: An author with fewer prior changes than this (Kamei's ``exp``, known at the commit's time) is "new".
NEW_AUTHOR_BELOW: Final = 10
#: The metrics given an interval: the project's held-out metrics plus precision and recall at the threshold.
VALIDATED_METRICS: Final[tuple[str, ...]] = (*METRIC_KEYS, "precision", "recall")
#: The smallest absolute difference in recall or false-positive rate worth a warning.
MIN_EFFECT: Final = 0.05
ROOT_GROUP: Final = "(root)"
OTHER_GROUP: Final = "(other)"


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate and its percentile bootstrap interval (None when fewer than half the resamples
    defined the statistic); ``valid`` counts the resamples that did."""

    value: float
    lower: float | None
    upper: float | None
    valid: int

    def excludes_zero(self) -> bool:
        return self.lower is not None and self.upper is not None and (self.lower > 0 or self.upper < 0)

    def as_dict(self) -> dict[str, Any]:
        return {"value": _finite(self.value), "lower": self.lower, "upper": self.upper, "valid": self.valid}


@dataclass(frozen=True, slots=True)
class MetricIntervals:
    """Every validated metric of one window with its interval, and how the intervals were made."""

    intervals: dict[str, Interval]
    n: int
    defective: int
    resamples: int
    confidence: float
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "metrics": {name: i.as_dict() for name, i in self.intervals.items()},
            "n": self.n,
            "defective": self.defective,
            "resamples": self.resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "resampling": "test rows with replacement; the model is not refitted",
        }


@dataclass(frozen=True, slots=True)
class GroupError:
    """One group of one dimension against the rest of the window: recall and false-positive rate at the
    model's threshold, and the bootstrap intervals of (group - rest); ``warning`` says which differ."""

    dimension: str
    group: str
    n: int
    defective: int
    recall: float
    fpr: float
    recall_rest: float
    fpr_rest: float
    recall_diff: Interval
    fpr_diff: Interval
    warning: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "group": self.group,
            "n": self.n,
            "defective": self.defective,
            "recall": _finite(self.recall),
            "fpr": _finite(self.fpr),
            "recall_rest": _finite(self.recall_rest),
            "fpr_rest": _finite(self.fpr_rest),
            "recall_diff": self.recall_diff.as_dict(),
            "fpr_diff": self.fpr_diff.as_dict(),
            "warning": self.warning,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def resample_rows(n: int, resamples: int, seed: int) -> npt.NDArray[np.int64]:
    """The bootstrap draws: row ``b`` holds the ``n`` row positions of resample ``b``."""
    if n <= 0:
        raise InputError("no rows to resample")
    if resamples <= 0:
        raise InputError(f"resamples must be positive, got {resamples}")
    draws: npt.NDArray[np.int64] = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    return draws


def percentile_interval(values: FloatArray, resamples: int, confidence: float) -> tuple[float | None, ...]:
    """(lower, upper) percentiles of the finite ``values`` (linear interpolation, numpy's default); both
    None when fewer than half of the ``resamples`` gave a finite value."""
    finite = values[np.isfinite(values)]
    if len(finite) * 2 < resamples:
        return None, None
    alpha = 1.0 - confidence
    lower, upper = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lower), float(upper)


def metric_values(
    y: FloatArray, probability: FloatArray, effort: FloatArray, threshold: float
) -> dict[str, float]:
    """Every validated metric of one set of predictions (precision and recall at ``threshold``; NaN when
    undefined)."""
    report = evaluate_predictions(y, probability, effort, threshold=threshold)
    values = report.metrics()
    flagged, positives = report.tp + report.fp, report.tp + report.fn
    values["precision"] = report.tp / flagged if flagged else math.nan
    values["recall"] = report.tp / positives if positives else math.nan
    return values


def bootstrap_metrics(
    y: object,
    probability: object,
    effort: object,
    *,
    threshold: float,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> MetricIntervals:
    """Percentile bootstrap intervals of every metric in :data:`VALIDATED_METRICS` (module docstring)."""
    labels, probs, efforts = _arrays(y, probability, effort)
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}")
    point = metric_values(labels, probs, efforts, threshold)
    draws = resample_rows(len(labels), resamples, seed)
    samples = np.full((resamples, len(VALIDATED_METRICS)), np.nan)
    for b, rows in enumerate(draws):
        values = metric_values(labels[rows], probs[rows], efforts[rows], threshold)
        samples[b] = [values[name] for name in VALIDATED_METRICS]
    intervals: dict[str, Interval] = {}
    for column, name in enumerate(VALIDATED_METRICS):
        lower, upper = percentile_interval(samples[:, column], resamples, confidence)
        valid = int(np.isfinite(samples[:, column]).sum())
        intervals[name] = Interval(point[name], lower, upper, valid)
    return MetricIntervals(intervals, len(labels), int(labels.sum()), resamples, confidence, seed)


def _arrays(y: object, probability: object, effort: object) -> tuple[FloatArray, FloatArray, FloatArray]:
    labels = np.asarray(y, dtype=np.float64).ravel()
    probs = np.asarray(probability, dtype=np.float64).ravel()
    efforts = np.asarray(effort, dtype=np.float64).ravel()
    if not len(labels) == len(probs) == len(efforts):
        raise InputError(f"lengths differ: {len(labels)} labels, {len(probs)} scores, {len(efforts)} efforts")
    if len(labels) == 0:
        raise InputError("no rows to validate")
    return labels, probs, efforts


# -- the group rules ---------------------------------------------------------------------------------------


def author_groups(exp: object, below: int = NEW_AUTHOR_BELOW) -> list[str]:
    """``new`` when the author had made fewer than ``below`` changes before this one (``exp`` is known at
    the commit's time, so no later activity leaks in), else ``experienced``."""
    values = np.asarray(exp, dtype=np.float64).ravel()
    return [f"new (exp<{below})" if v < below else f"experienced (exp>={below})" for v in values]


def top_level_directory(paths: str) -> str:
    """The top-level directory a change touches most (newline-separated paths; ties: alphabetical first).

    A file at the repository root counts as :data:`ROOT_GROUP`; a change with no path as well.
    """
    tops = [p.split("/", 1)[0] if "/" in p else ROOT_GROUP for p in paths.splitlines() if p.strip()]
    if not tops:
        return ROOT_GROUP
    counts = Counter(tops)
    most = max(counts.values())
    return min(name for name, count in counts.items() if count == most)


def component_groups(paths: Sequence[str], keep: int = 6) -> list[str]:
    """Each change's :func:`top_level_directory`; all but the ``keep`` most common become ``(other)``."""
    tops = [top_level_directory(p) for p in paths]
    kept = {name for name, _ in sorted(Counter(tops).items(), key=lambda kv: (-kv[1], kv[0]))[:keep]}
    return [t if t in kept else OTHER_GROUP for t in tops]


def size_edges(churn: object) -> tuple[float, float]:
    """The tercile edges of ``churn`` (``la + ld``): numpy's linear quantiles at 1/3 and 2/3."""
    values = np.asarray(churn, dtype=np.float64).ravel()
    if len(values) == 0:
        raise InputError("no changes to bin by size")
    low, high = np.quantile(values, [1.0 / 3.0, 2.0 / 3.0])
    return float(low), float(high)


def size_labels(values: FloatArray, low: float, high: float) -> tuple[str, str, str]:
    """The three size groups' names with their unit and range: ``small (0–4 changed lines)``, ``medium (5–7
    changed lines)``, ``large (8+ changed lines)``.

    Why the unit and both ends: ``medium (<=22)`` read as lines or files, and as everything up to 22 rather
    than the middle third. Changed lines are ``la + ld``; when they are whole numbers (mined churn) the ranges
    are whole numbers too, else (an external effort column) the edges are given as they are.
    """
    unit = "changed lines"
    if np.all(values == np.round(values)):
        top_small, top_medium = math.floor(low), math.floor(high)

        def span(first: int, last: int) -> str:
            if first >= last:
                return f"{first} changed line" if first == 1 else f"{first} {unit}"
            return f"{first}–{last} {unit}"

        return (
            f"small ({span(0, top_small)})",
            f"medium ({span(top_small + 1, top_medium)})",
            f"large ({top_medium + 1}+ {unit})",
        )
    return (
        f"small (up to {low:g} {unit})",
        f"medium (over {low:g}, up to {high:g} {unit})",
        f"large (over {high:g} {unit})",
    )


def size_groups(churn: object) -> list[str]:
    """``small`` (churn <= lower tercile edge), ``medium`` (<= upper edge) or ``large``, ranges named
    (:func:`size_labels`)."""
    values = np.asarray(churn, dtype=np.float64).ravel()
    low, high = size_edges(values)
    small, medium, large = size_labels(values, low, high)
    return [small if v <= low else medium if v <= high else large for v in values]


# -- error analysis ----------------------------------------------------------------------------------------


def _rates(counts: FloatArray, flagged: FloatArray, positive: FloatArray, member: FloatArray) -> FloatArray:
    """Recall and FPR of the rows in ``member`` for each row of draw ``counts`` (k x n): shape (k, 2)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = counts @ (positive * member)
        neg = counts @ ((1 - positive) * member)
        recall = (counts @ (flagged * positive * member)) / pos
        fpr = (counts @ (flagged * (1 - positive) * member)) / neg
    return np.stack([np.where(pos > 0, recall, np.nan), np.where(neg > 0, fpr, np.nan)], axis=1)


def group_errors(
    y: object,
    probability: object,
    threshold: float,
    groups: Mapping[str, Sequence[str]],
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
    min_rows: int = 20,
    min_class: int = 5,
    min_effect: float = MIN_EFFECT,
) -> list[GroupError]:
    """Recall and false-positive rate per group of each dimension in ``groups`` (one name per row), with
    the bootstrap interval of (group - rest) from the same resamples of the window's rows.

    ``warning`` is set when the interval of the recall or FPR difference excludes 0 and the group has at
    least ``min_rows`` rows; a recall difference needs at least ``min_class`` defect-inducing rows in the
    group and in the rest, an FPR difference as many clean ones (with one defect in a group its recall is 0
    or 1 in every resample, and the percentile interval looks certain when it is not). In a dimension of two
    groups the two warnings would mirror each other: only the smaller group is warned about. A difference
    smaller than ``min_effect`` (absolute) is never warned about: a group with no false positive at all
    among many clean changes, against a rest at 1%, has an interval that excludes 0 without mattering.
    """
    labels = np.asarray(y, dtype=np.float64).ravel()
    probs = np.asarray(probability, dtype=np.float64).ravel()
    if len(labels) != len(probs) or len(labels) == 0:
        raise InputError("group analysis needs as many scores as labels, and at least one row")
    flagged = (probs >= threshold).astype(np.float64)
    draws = resample_rows(len(labels), resamples, seed)
    offsets = (np.arange(resamples, dtype=np.int64) * len(labels))[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * len(labels))
    counts_matrix = counts.reshape(resamples, len(labels)).astype(np.float64)
    ones = np.ones((1, len(labels)))
    results: list[GroupError] = []
    for dimension, names in groups.items():
        if len(names) != len(labels):
            raise InputError(f"{dimension}: {len(names)} group names for {len(labels)} rows")
        array = np.asarray(names, dtype=object)
        sizes = Counter(names)
        larger = max(sizes, key=lambda g: (sizes[g], g)) if len(sizes) == 2 else None
        for group in sorted(sizes):
            member = (array == group).astype(np.float64)
            rest = 1.0 - member
            if rest.sum() == 0:
                continue  # one group only: nothing to compare with
            point_in, point_out = (
                _rates(ones, flagged, labels, member)[0],
                _rates(ones, flagged, labels, rest)[0],
            )
            diff = _rates(counts_matrix, flagged, labels, member) - _rates(
                counts_matrix, flagged, labels, rest
            )
            intervals = []
            for column in (0, 1):
                lower, upper = percentile_interval(diff[:, column], resamples, confidence)
                value = float(point_in[column] - point_out[column])
                intervals.append(Interval(value, lower, upper, int(np.isfinite(diff[:, column]).sum())))
            recall_diff, fpr_diff = intervals
            n = int(member.sum())
            results.append(
                GroupError(
                    dimension=dimension,
                    group=group,
                    n=n,
                    defective=int((member * labels).sum()),
                    recall=float(point_in[0]),
                    fpr=float(point_in[1]),
                    recall_rest=float(point_out[0]),
                    fpr_rest=float(point_out[1]),
                    recall_diff=recall_diff,
                    fpr_diff=fpr_diff,
                    warning=None
                    if group == larger
                    else _warning(
                        f"{dimension} {group}",
                        n >= min_rows,
                        _enough(labels, member, min_class, 1.0),
                        _enough(labels, member, min_class, 0.0),
                        recall_diff,
                        fpr_diff,
                        confidence,
                        min_effect,
                    ),
                )
            )
    return results


def _enough(labels: FloatArray, member: FloatArray, least: int, value: float) -> bool:
    """Whether both the group and the rest hold at least ``least`` rows labelled ``value``."""
    of_class = labels == value
    return bool((of_class & (member == 1)).sum() >= least and (of_class & (member == 0)).sum() >= least)


def _warning(
    name: str,
    big_enough: bool,
    recall_ok: bool,
    fpr_ok: bool,
    recall: Interval,
    fpr: Interval,
    confidence: float,
    min_effect: float,
) -> str | None:
    if not big_enough:
        return None
    parts = []
    for what, interval, ok in (("recall", recall, recall_ok), ("false-positive rate", fpr, fpr_ok)):
        if ok and interval.excludes_zero() and abs(interval.value) >= min_effect:
            side = "higher" if interval.value > 0 else "lower"
            parts.append(
                f"{what} {side} than the rest by {abs(interval.value):.2f} "
                f"({confidence:.0%} interval {interval.lower:+.2f}..{interval.upper:+.2f})"
            )
    return f"{name}: " + "; ".join(parts) if parts else None
