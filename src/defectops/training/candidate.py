"""One candidate model, trained and evaluated the honest way: the training step of ``run`` and of ``heal``.

Time is honest throughout: the held-out window is the latest commits (after a gap equal to the label waiting
period), or every commit made since the champion was trained; the model evaluated on it was trained only on
labels known when that window began; the model that is registered is then refitted, with the same
hyperparameters, on every label known now. An online model can instead be updated with ``partial_fit`` on the
labels that became known since it was trained (:func:`online_candidate`).

Logging and registering a candidate is the registry's job (:func:`defectops.registry.register_trained_model`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.data import (
    COMMIT,
    EFFORT,
    FEATURES,
    LABEL,
    TIME,
    VERDICT,
    Split,
    feature_columns,
    labels_as_of,
    time_split,
    training_table,
)
from defectops.errors import DataError, DefectOpsError, InsufficientDataError
from defectops.training.choice import CHOOSING_KINDS, ModelChoice, choose_model
from defectops.training.evaluate import fit_model, run_fold
from defectops.training.metrics import METRIC_KEYS, evaluate_predictions
from defectops.training.models import DEFAULT_MODEL, OnlineJIT
from defectops.training.selection import FeatureChoice, choose_features, scorable_sets, with_features
from defectops.training.validation import bootstrap_metrics


@dataclass(frozen=True, slots=True)
class CandidateOptions:
    """How a candidate is trained and evaluated; every field has a default fit for a first run."""

    kind: str = DEFAULT_MODEL
    budget_seconds: float = 60.0
    waiting_days: int = 90
    test_fraction: float = 0.2
    seed: int = 0
    min_labelled: int = 100
    min_new_labelled: int = 50
    #: The model inputs (columns of the commit dataset): the Kamei metrics, or a larger feature set.
    features: tuple[str, ...] = FEATURES
    #: Choose, on a validation window inside the training part, whether the mined richer features (#20)
    #: join the Kamei metrics (:mod:`defectops.training.selection`); False keeps the Kamei metrics.
    select_features: bool = True
    #: For the default model: choose the blend of LightGBM and the logistic regression and the recency
    #: half-life on validation folds inside the training part (:func:`.choice.choose_model`).
    select_model: bool = True


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A trained candidate's held-out evaluation (``evaluate`` of ``defectops run --json``)."""

    metrics: dict[str, float]
    train_rows: int
    test_rows: int
    test_window: tuple[str, str]
    model: str
    tuning_trials: int | None
    #: Which feature set the model learns from and why (None: chosen by no selection).
    feature_set: FeatureChoice | None = None
    #: Which model family and recency the default chose and why (None: chosen by no selection).
    model_choice: ModelChoice | None = None
    #: Defect-inducing commits among the ``test_rows`` (a ROC-AUC of 1.000 on one of them says little).
    test_defective: int | None = None

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            **self.metrics,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "test_defective": self.test_defective,
            "test_window": list(self.test_window),
            "model": self.model,
            "tuning_trials": self.tuning_trials,
        }
        if self.feature_set is not None:
            document["feature_set"] = self.feature_set.as_dict()
        if self.model_choice is not None:
            document["model_choice"] = self.model_choice.as_dict()
        return document


@dataclass(frozen=True, slots=True)
class OnlineEvaluation:
    """An online update's evaluation: a copy updated with the first ``update_rows`` new labels, scored on
    the ``test_rows`` later ones; the candidate itself learnt all ``partial_fit_rows`` of them."""

    metrics: dict[str, float]
    update_rows: int
    test_rows: int
    partial_fit_rows: int
    model: str = "online"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.metrics,
            "update_rows": self.update_rows,
            "test_rows": self.test_rows,
            "model": self.model,
            "partial_fit_rows": self.partial_fit_rows,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model trained the honest way (module docstring), ready to be logged and registered.

    ``model`` is refitted on every label known at ``now`` with the hyperparameters chosen on the fold;
    ``window`` is the held-out window (labels known now) and ``window_probability`` the scores on it of the
    fold model, which was trained only on labels known when the window began. ``comparable`` is True when the
    window is exactly the commits made since ``unseen_since`` (so a champion trained then never saw them).
    """

    model: Any
    features: list[str]
    table_now: pd.DataFrame
    window: pd.DataFrame
    window_probability: npt.NDArray[np.float64]
    comparable: bool
    evaluation: Evaluation | OnlineEvaluation
    #: The fold model's decision threshold, at which the held-out F1, precision and recall were measured.
    window_threshold: float = 0.5

    @property
    def metrics(self) -> dict[str, float]:
        """The held-out metrics (what the gate and the report compare)."""
        return self.evaluation.metrics

    def logged_metrics(self) -> dict[str, float]:
        """The held-out metrics and their 95% bootstrap bounds, as logged with the training run.

        Why the bounds: a held-out window of a few hundred commits with a few dozen defect-inducing ones
        moves ROC-AUC by several hundredths between resamples, and the model card shows that uncertainty
        beside each figure (``<metric>_ci95_low`` / ``<metric>_ci95_high``)."""
        bounds = held_out_bounds(self.window, self.window_probability, self.window_threshold)
        return {**self.metrics, **bounds}


#: Bootstrap resamples of the held-out bounds logged with a training run (about 0.15 s for 800 rows).
HELD_OUT_RESAMPLES = 200


def bound_names(metric: str) -> tuple[str, str]:
    """The run-metric names of ``metric``'s held-out 95% bounds (the one place the naming lives)."""
    return f"{metric}_ci95_low", f"{metric}_ci95_high"


def held_out_bounds(window: pd.DataFrame, probability: npt.ArrayLike, threshold: float) -> dict[str, float]:
    """``<metric>_ci95_low`` and ``_high`` of every held-out metric whose interval is defined (seeded
    percentile bootstrap over the window's rows); empty when the window has no labels or no effort."""
    if not len(window) or LABEL not in window.columns or EFFORT not in window.columns:
        return {}
    intervals = bootstrap_metrics(
        window[LABEL].to_numpy(dtype=np.float64),
        probability,
        window[EFFORT].to_numpy(dtype=np.float64),
        threshold=threshold,
        resamples=HELD_OUT_RESAMPLES,
    )
    bounds: dict[str, float] = {}
    for name in METRIC_KEYS:
        interval = intervals.intervals[name]
        if interval.lower is not None and interval.upper is not None:
            low, high = bound_names(name)
            bounds[low], bounds[high] = float(interval.lower), float(interval.upper)
    return bounds


def _both_classes(labels: pd.Series) -> bool:
    return labels.nunique() == 2


def known_labels(labels: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Labels known at ``now`` of non-merge commits (``sha``, ``verdict``, ``label_known_at``): the rows of
    the labels table whose verdict is ``defect`` or ``clean`` at ``now``."""
    known = labels_as_of(labels, now)
    keep = (known[VERDICT] != "unknown") & ~known["is_merge"].astype(bool)
    return known.loc[keep, ["sha", VERDICT, "label_known_at"]].reset_index(drop=True)


def train_candidate(
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame | None,
    *,
    now: datetime,
    options: CandidateOptions,
    unseen_since: datetime | None = None,
    champion_saw_no_labels: bool = False,
) -> Candidate:
    """Train one candidate on the labels known at ``now`` (the training step of ``run`` and of ``heal``).

    The held-out window is every commit made since ``unseen_since`` when there are at least
    ``options.min_new_labelled`` labelled ones, else the latest ``options.test_fraction``. With
    ``champion_saw_no_labels`` (the champion is the cross-project starter, which never learnt a label of this
    repository) the latest ``test_fraction`` is held out and counts as ``comparable``: the champion saw none
    of its labels. Raises InsufficientDataError (with the reason) when there is too little to train or
    evaluate on.
    """
    gap = timedelta(days=options.waiting_days)
    try:
        table_now = training_table(commits, labels, as_of=now, files=files, features=options.features)
    except DataError as exc:
        raise InsufficientDataError(str(exc)) from exc
    if len(table_now) < options.min_labelled or not _both_classes(table_now[LABEL]):
        raise InsufficientDataError(
            f"only {len(table_now)} commits have a known label "
            f"({int(table_now[LABEL].sum())} defect-inducing); training needs at least "
            f"{options.min_labelled} with both classes. Labels mature "
            f"{options.waiting_days} days after a commit (--waiting-days)"
        )
    files_frame = files if files is not None else pd.DataFrame({"sha": [], "path": []})
    fold = (
        _held_out_fold(commits, labels, files_frame, table_now, options, gap, start=unseen_since)
        if unseen_since is not None
        else None
    )
    comparable = fold is not None or (champion_saw_no_labels and unseen_since is None)
    if fold is None:
        fold = _held_out_fold(commits, labels, files_frame, table_now, options, gap)
    if fold is None:
        raise InsufficientDataError(
            "the held-out window or the training part before it lacks defect-inducing or clean commits"
        )
    fold_table, split, test = fold
    choice: FeatureChoice | None = None
    if options.select_features:
        # Chosen on the fold's training part only (never the held-out window), then used for the fold model
        # and the refitted model alike.
        train_part = fold_table.iloc[split.train].reset_index(drop=True)
        choice = choose_features(
            train_part,
            kind=options.kind,
            gap=gap,
            seed=options.seed,
            candidates=scorable_sets(options.features),
        )
        for frame in (fold_table, test, table_now):
            with_features(frame, choice.features)
    kind: str = options.kind
    params: dict[str, Any] | None = None
    model_choice: ModelChoice | None = None
    if options.select_model and options.kind in CHOOSING_KINDS:
        # Also chosen on the fold's training part only; the chosen parameters stay fixed while tuning.
        model_choice = choose_model(
            fold_table.iloc[split.train].reset_index(drop=True),
            features=feature_columns(fold_table),
            gap=gap,
            seed=options.seed,
        )
        kind, params = model_choice.kind, model_choice.params
    fold_result, fitted = run_fold(
        fold_table,
        split,
        kind=kind,
        budget_seconds=options.budget_seconds,
        gap=gap,
        seed=options.seed,
        params=params,
    )
    probability = np.asarray(fitted.model.predict_proba(test)[:, 1], dtype=np.float64)
    chosen = {k: v for k, v in fitted.model.get_params(deep=False).items() if k not in ("features",)}
    final = fit_model(table_now, kind=kind, budget_seconds=0.0, gap=gap, seed=options.seed, params=chosen)
    evaluation = Evaluation(
        metrics=fold_result.report.metrics(),
        train_rows=len(split.train),
        test_rows=len(split.test),
        test_window=(str(test[TIME].min()), str(test[TIME].max())),
        model=kind,
        # TuningResult.as_dict() has no "trials" key, so this has always been None (kept so that
        # `run --json` stays the same; the count is fitted.tuning.n_trials).
        tuning_trials=None if fitted.tuning is None else fitted.tuning.as_dict().get("trials"),
        feature_set=choice,
        model_choice=model_choice,
        test_defective=int(fold_result.report.n_defective),
    )
    return Candidate(
        model=final.model,
        features=list(final.features),
        table_now=table_now,
        window=test,
        window_probability=probability,
        comparable=comparable,
        evaluation=evaluation,
        window_threshold=float(fitted.model.threshold_),
    )


def online_candidate(
    champion: Any,
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame | None,
    *,
    now: datetime,
    since: datetime,
    options: CandidateOptions,
) -> Candidate:
    """The champion's online model updated with the labels that became known in ``(since, now]``.

    The update is ``partial_fit`` on a copy (the champion itself never changes). Honest evaluation as in
    :func:`train_candidate`: a copy updated with the earlier ``1 - test_fraction`` of the new labels (in the
    order they became known) is scored on the later ones; the candidate is a copy updated with all of them.
    When enough of the new labels belong to commits made after ``since`` (CI-scored commits, e.g. from the
    artifact store), the held-out part is instead the latest of those (by commit time) and the fold copy
    learns only the labels known when they began: the champion never saw them, so the candidate is
    ``comparable`` and the offline gate can judge it like any other challenger.
    A champion that is not an online model gets a fully trained online candidate instead.
    """
    if not isinstance(champion, OnlineJIT):
        return train_candidate(
            commits,
            labels,
            files,
            now=now,
            options=dataclasses.replace(options, kind="online"),
            unseen_since=since,
        )
    try:
        table_now = training_table(commits, labels, as_of=now, files=files, features=list(champion.features_))
    except DefectOpsError as exc:
        raise InsufficientDataError(str(exc)) from exc
    known_at = known_labels(labels, now).set_index("sha")["label_known_at"]
    stamps = pd.to_datetime(table_now[COMMIT].map(known_at), utc=True)
    new_rows = stamps > pd.Timestamp(since)
    new = table_now.loc[new_rows].assign(_known_at=stamps[new_rows])
    new = new.sort_values(["_known_at", TIME], kind="stable").reset_index(drop=True)
    unseen = _unseen_window(new, since, options.test_fraction)
    new = new.drop(columns="_known_at")
    if len(new) < options.min_new_labelled or new[LABEL].nunique() < 2:
        raise InsufficientDataError(
            f"{len(new)} labels became known since the champion was trained "
            f"({int(new[LABEL].sum()) if len(new) else 0} defect-inducing); an online update needs at least "
            f"{options.min_new_labelled} with both classes"
        )
    features = list(champion.features_)
    if unseen is not None:
        first, last = unseen
    else:
        cut = max(1, round(len(new) * (1.0 - options.test_fraction)))
        first, last = new.iloc[:cut], new.iloc[cut:]
    if len(last) == 0 or last[LABEL].nunique() < 2:
        raise InsufficientDataError("the latest new labels are all of one class: no honest evaluation")
    fold_model = copy.deepcopy(champion)
    fold_model.partial_fit(first.loc[:, features], first[LABEL].to_numpy())
    probability = np.asarray(fold_model.predict_proba(last)[:, 1], dtype=np.float64)
    report = evaluate_predictions(
        last[LABEL].to_numpy(), probability, last[EFFORT].to_numpy(), threshold=fold_model.threshold_
    )
    final = copy.deepcopy(champion)
    final.partial_fit(new.loc[:, features], new[LABEL].to_numpy())
    return Candidate(
        model=final,
        features=features,
        table_now=table_now,
        window=last.reset_index(drop=True),
        window_probability=probability,
        # Comparable only on a window of commits made after the champion was trained (it never saw them),
        # the fold model updated with the labels known when that window began.
        comparable=unseen is not None,
        evaluation=OnlineEvaluation(
            metrics=report.metrics(), update_rows=len(first), test_rows=len(last), partial_fit_rows=len(new)
        ),
        window_threshold=float(fold_model.threshold_),
    )


def _unseen_window(
    new: pd.DataFrame, since: datetime, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The gate's protocol for an online update, when it can hold: the latest ``fraction`` (by commit time)
    of the newly labelled commits made after ``since`` (the champion never saw them), and the new labels
    that were known when the first of them was made (what an update at that moment could have learnt).
    None when there is no such window with both classes and something to learn before it (e.g. every new
    label belongs to a commit older than the champion)."""
    after = new.loc[new[TIME] > pd.Timestamp(since)].sort_values([TIME, COMMIT], kind="stable")
    size = round(len(after) * fraction)
    if size < 2:
        return None
    last = after.iloc[-size:]
    start = last[TIME].min()
    first = new.loc[(new["_known_at"] <= start) & ~new[COMMIT].isin(last[COMMIT])]
    if last[LABEL].nunique() < 2 or first.empty:
        return None
    drop = ["_known_at"]
    return first.drop(columns=drop).reset_index(drop=True), last.drop(columns=drop).reset_index(drop=True)


def _held_out_fold(
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame,
    table_now: pd.DataFrame,
    options: CandidateOptions,
    gap: timedelta,
    start: datetime | None = None,
) -> tuple[pd.DataFrame, Split, pd.DataFrame] | None:
    """The test window (labels known now): the latest ``test_fraction`` of commits, or every commit made
    after ``start``; and a training part made of the commits before it, with the labels known when the
    window began (never later ones)."""
    if start is None:
        split = time_split(table_now[TIME], test_fraction=options.test_fraction, gap=gap)
        test = table_now.iloc[split.test].reset_index(drop=True)
        start = test[TIME].min().to_pydatetime()
    else:
        test = table_now.loc[table_now[TIME] >= pd.Timestamp(start)].reset_index(drop=True)
        if len(test) < options.min_new_labelled:
            return None
    try:
        then = training_table(commits, labels, as_of=start, files=files, features=options.features)
    except DataError:
        return None
    train = then.loc[then[TIME] + gap <= start].reset_index(drop=True)
    if len(train) < 20 or not _both_classes(train[LABEL]) or not _both_classes(test[LABEL]):
        return None
    fold_table = pd.concat([train, test], ignore_index=True)
    fold_split = Split(
        np.arange(len(train)),
        np.arange(len(train), len(fold_table)),
        "time",
        {"train_labels_as_of": start.isoformat(), "gap_days": str(gap.days)},
    )
    return fold_table, fold_split, test
