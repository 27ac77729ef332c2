"""``defectops validate`` and the run report's validation section: one record of everything issue #20 asks.

:func:`validate_candidate` takes a trained :class:`~defectops.training.candidate.Candidate` (its held-out
window and the fold model's scores on it) and adds, on that window: bootstrap intervals of every metric,
recall and false-positive rate by author experience, top-level directory and change size with warnings, and
the stability of ROC-AUC and of the decision threshold over the latest settled quarters and over seeds
(:mod:`defectops.training.stability`). The protocol is written into the record, so a reader of the JSON
knows what was resampled and what was refitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from defectops.data import EFFORT, LABEL, PATHS, TIME
from defectops.training.candidate import Candidate
from defectops.training.stability import (
    SeedScore,
    Spread,
    WindowScore,
    known_before,
    seed_stability,
    window_stability,
)
from defectops.training.validation import (
    CONFIDENCE,
    NEW_AUTHOR_BELOW,
    RESAMPLES,
    SEED,
    GroupError,
    MetricIntervals,
    author_groups,
    bootstrap_metrics,
    component_groups,
    group_errors,
    size_groups,
)


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """How much validation to do; the defaults are the documented protocol (docs/validation.md)."""

    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE
    seed: int = SEED
    new_author_below: int = NEW_AUTHOR_BELOW
    min_group_rows: int = 20
    quarters: int = 6
    min_window_rows: int = 30
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    stability: bool = True


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Everything validation found on one held-out window (``as_dict`` is ``validate --json``)."""

    model: str
    window: tuple[str, str]
    threshold: float
    intervals: MetricIntervals
    groups: tuple[GroupError, ...]
    windows: tuple[WindowScore, ...] = ()
    skipped_windows: int = 0
    seeds: tuple[SeedScore, ...] = ()
    protocol: dict[str, Any] = field(default_factory=dict)
    #: Whether the quarters and seeds were refitted at all (``ValidationOptions.stability``); when not, the
    #: empty ``windows`` and ``seeds`` say nothing about the model's stability.
    stability_computed: bool = True

    @property
    def warnings(self) -> list[str]:
        return [g.warning for g in self.groups if g.warning]

    @property
    def window_auc(self) -> Spread | None:
        return Spread.of([w.roc_auc for w in self.windows])

    @property
    def window_threshold(self) -> Spread | None:
        return Spread.of([w.threshold for w in self.windows])

    @property
    def seed_auc(self) -> Spread | None:
        return Spread.of([s.roc_auc for s in self.seeds])

    @property
    def seed_threshold(self) -> Spread | None:
        return Spread.of([s.threshold for s in self.seeds])

    def as_dict(self) -> dict[str, Any]:
        def spread(value: Spread | None) -> dict[str, Any] | None:
            return None if value is None else value.as_dict()

        return {
            "model": self.model,
            "window": list(self.window),
            "threshold": self.threshold,
            "intervals": self.intervals.as_dict(),
            "groups": [g.as_dict() for g in self.groups],
            "warnings": self.warnings,
            "stability": {
                "computed": self.stability_computed,
                "quarters": [w.as_dict() for w in self.windows],
                "skipped_quarters": self.skipped_windows,
                "quarter_roc_auc": spread(self.window_auc),
                "quarter_threshold": spread(self.window_threshold),
                "seeds": [s.as_dict() for s in self.seeds],
                "seed_roc_auc": spread(self.seed_auc),
                "seed_threshold": spread(self.seed_threshold),
            },
            "protocol": self.protocol,
        }


def window_groups(window: pd.DataFrame, new_author_below: int = NEW_AUTHOR_BELOW) -> dict[str, list[str]]:
    """The three group dimensions of a held-out window's rows (author, component, size)."""
    groups = {"author": author_groups(window["exp"].to_numpy(), new_author_below)}
    if PATHS in window.columns:
        groups["component"] = component_groups(window[PATHS].astype(str).tolist())
    groups["size"] = size_groups(window[EFFORT].to_numpy())
    return groups


def validate_candidate(
    candidate: Candidate,
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame | None,
    *,
    now: datetime,
    gap: timedelta,
    kind: str,
    options: ValidationOptions | None = None,
) -> ValidationReport:
    """Validate ``candidate`` on its held-out window (module docstring)."""
    opts = options or ValidationOptions()
    window = candidate.window
    y = window[LABEL].to_numpy(dtype=np.float64)
    probability = np.asarray(candidate.window_probability, dtype=np.float64)
    threshold = candidate.window_threshold
    intervals = bootstrap_metrics(
        y,
        probability,
        window[EFFORT].to_numpy(dtype=np.float64),
        threshold=threshold,
        resamples=opts.resamples,
        confidence=opts.confidence,
        seed=opts.seed,
    )
    groups = group_errors(
        y,
        probability,
        threshold,
        window_groups(window, opts.new_author_below),
        resamples=opts.resamples,
        confidence=opts.confidence,
        seed=opts.seed,
        min_rows=opts.min_group_rows,
    )
    params = {k: v for k, v in candidate.model.get_params(deep=False).items() if k != "features"}
    # The refits are of the model the candidate is: the default may have chosen the blend or the log-linear
    # model inside the training part, whose parameters a LightGBM refit would not take.
    kind = str(getattr(candidate.model, "kind", kind))
    # ... and of its inputs: the feature set the candidate chose, not the default Kamei metrics.
    features = list(candidate.features)
    windows: list[WindowScore] = []
    skipped = 0
    seeds: list[SeedScore] = []
    if opts.stability:
        windows, skipped = window_stability(
            commits,
            labels,
            files,
            candidate.table_now,
            now=now,
            gap=gap,
            kind=kind,
            seed=opts.seed,
            quarters=opts.quarters,
            min_rows=opts.min_window_rows,
            features=features,
        )
        start = pd.Timestamp(window[TIME].min()).to_pydatetime()
        train = known_before(commits, labels, files, start, gap, features)
        seeds = seed_stability(train, window, kind=kind, gap=gap, seeds=opts.seeds, params=params)
    return ValidationReport(
        model=kind,
        window=(str(window[TIME].min()), str(window[TIME].max())),
        threshold=threshold,
        intervals=intervals,
        groups=tuple(groups),
        windows=tuple(windows),
        skipped_windows=skipped,
        seeds=tuple(seeds),
        stability_computed=opts.stability,
        protocol=_protocol(opts, gap),
    )


def _protocol(opts: ValidationOptions, gap: timedelta) -> dict[str, str]:
    """What was resampled and refitted; the quarters and seeds only when they were refitted."""
    protocol = {
        "intervals": (
            f"percentile bootstrap, {opts.resamples} resamples of the held-out window's rows (with "
            f"replacement, model not refitted), {opts.confidence:.0%}, seed {opts.seed}"
        ),
        "groups": (
            f"author new when exp < {opts.new_author_below} prior changes; component = the top-level "
            "directory the change touches most (6 largest kept); size = terciles of the changed lines "
            f"(la + ld) in the window; warning when the {opts.confidence:.0%} bootstrap interval of "
            "(group - rest) recall or false-positive rate excludes 0, the difference is >= 0.05, the group "
            f"has >= {opts.min_group_rows} rows and group and rest >= 5 of the class the rate is about; "
            "in a two-group dimension only the smaller group is warned about"
        ),
    }
    if not opts.stability:
        return protocol
    return {
        **protocol,
        "quarters": (
            f"latest {opts.quarters} calendar quarters with >= {opts.min_window_rows} commits and >= 3 "
            f"defect-inducing that ended >= {gap.days} days (the gap) before now; each trained on labels "
            "known at its start, commits >= the gap older, the candidate's features, model defaults "
            "(no tuning), evaluated on the quarter's commits"
        ),
        "seeds": (
            f"the held-out fold refitted with seeds {list(opts.seeds)}, the candidate's hyperparameters "
            "and features"
        ),
    }
