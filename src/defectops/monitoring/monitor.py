"""One monitoring run: a reference snapshot and a window of logged predictions in, a MonitoringResult out.

Why a single entry point: the CLI, the service and the self-healing loop must all judge a window the same
way. The window is a DataFrame with the model's input features, ``score`` and, where known, ``label``,
``label_time`` and ``churn`` (lines added + deleted, the review effort); rows are in prediction order, which
the streaming detectors rely on. The reference is the champion's training snapshot with the same feature
columns and, ideally, ``score`` (the champion's scores on it) and ``label``: without a score the prediction
drift and the streaming checks are skipped, without labels the CBPE calibration check is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from defectops.config import MonitoringSettings
from defectops.data import CHURN, COMMIT_TIME, PREDICTION_COLUMNS, normalise_frame
from defectops.errors import InputError
from defectops.monitoring.alarms import AlarmInputs, alarm_reasons, feature_groups
from defectops.monitoring.drift import classify_feature, feature_drift, prediction_drift
from defectops.monitoring.drift_pca import PCAReconstructionDrift
from defectops.monitoring.drift_records import FeatureDrift, MultivariateDrift, StreamDrift
from defectops.monitoring.drift_streams import stream_drift
from defectops.monitoring.newcomers import newcomer_shift
from defectops.monitoring.once import latest_per_change
from defectops.monitoring.performance import (
    FloatArray,
    estimate_performance,
    estimated_roc_auc,
    label_free_proxies,
    labels_array,
    realized_performance,
)
from defectops.monitoring.report import MonitoringResult, State
from defectops.monitoring.trend import Detrended, TrendAdjustment, advance, detrend

#: Columns with a fixed meaning; never treated as model features unless listed explicitly: the prediction
#: log's fixed columns (from defectops.data.columns, so that monitoring does not import the SQL layer) plus
#: ``churn``, the review effort (la + ld).
RESERVED_COLUMNS: frozenset[str] = frozenset({*PREDICTION_COLUMNS, CHURN, COMMIT_TIME})

#: When each window row was predicted (the prediction log's column): the time age-growing features are
#: detrended to when the row carries no commit time.
WINDOW_TIME = "created_at"
#: The column :func:`_window_times` adds: the commit time where logged, else the prediction time.
_TREND_TIME = "__trend_time__"


def _window_times(window: pd.DataFrame) -> pd.DataFrame:
    """The window with the time each row's age-growing features are compared at: the commit's time where it
    was logged (a backfill scores old commits today), else when it was predicted (live, the same)."""
    if WINDOW_TIME not in window.columns and COMMIT_TIME not in window.columns:
        return window
    times = pd.Series(pd.NaT, index=window.index, dtype="datetime64[ns, UTC]")
    if COMMIT_TIME in window.columns:
        times = pd.to_datetime(window[COMMIT_TIME], utc=True, errors="coerce", format="ISO8601")
    if WINDOW_TIME in window.columns:
        times = times.fillna(pd.to_datetime(window[WINDOW_TIME], utc=True))
    out = window.copy()
    out[_TREND_TIME] = times
    return _with_attrs(out, window)


#: A text column with more distinct values than this share of its rows is an identifier, not a feature.
IDENTIFIER_UNIQUE_SHARE = 0.5


def load_frame(path: Path, what: str) -> pd.DataFrame:
    """Read a Parquet file, turning every failure into a one-line InputError."""
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for one cause: not a readable Parquet file
        raise InputError(f"{what} file {path} is not readable Parquet: {type(exc).__name__}: {exc}") from None


def _scores(frame: pd.DataFrame, what: str) -> FloatArray:
    if "score" not in frame.columns:
        raise InputError(f"the {what} has no 'score' column")
    try:
        scores = frame["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"the {what}'s 'score' column is not numeric") from None
    if np.isnan(scores).any():
        raise InputError(f"the {what}'s 'score' column has missing values")
    if len(scores) and (scores.min() < 0 or scores.max() > 1):
        raise InputError(f"the {what}'s 'score' column must lie in [0, 1]")
    return scores


def select_features(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """The feature columns to monitor, and the columns left out with the reason.

    Explicit ``features`` (or, failing that, the window's ``attrs["feature_columns"]``, which
    PredictionLog.window sets) must exist in both frames. Otherwise every reference column is a feature
    except the reserved ones, ``exclude``, timestamps, columns the window lacks, and identifier-like text
    columns.
    """
    if features is None and window.attrs.get("feature_columns"):
        features = [str(name) for name in window.attrs["feature_columns"] if str(name) not in set(exclude)]
    if features is not None:
        missing = [name for name in features if name not in reference.columns or name not in window.columns]
        if missing:
            names = ", ".join(missing)
            raise InputError(f"feature columns missing from the reference or the window: {names}")
        return list(features), {}
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    excluded = set(exclude)
    for name in reference.columns:
        column = str(name)
        if column in RESERVED_COLUMNS:
            continue
        if column in excluded:
            skipped[column] = "excluded"
        elif column not in window.columns:
            skipped[column] = "not in the window"
        elif pd.api.types.is_datetime64_any_dtype(reference[column]):
            skipped[column] = "timestamp"
        elif (
            not pd.api.types.is_numeric_dtype(reference[column])
            and not pd.api.types.is_bool_dtype(reference[column])
            and len(reference) >= 50
            and reference[column].nunique() > IDENTIFIER_UNIQUE_SHARE * len(reference)
        ):
            skipped[column] = "identifier-like (mostly unique values)"
        else:
            chosen.append(column)
    return chosen, skipped


def _with_attrs(frame: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    frame.attrs = dict(source.attrs)
    return frame


def _effort(window: pd.DataFrame) -> FloatArray | None:
    """Review effort per row: ``churn``, else ``la + ld``, else unknown."""
    columns = (["churn"], ["la", "ld"])
    for names in columns:
        if all(name in window.columns for name in names):
            try:
                parts = [window[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in names]
            except (TypeError, ValueError):
                raise InputError(f"effort column(s) {' + '.join(names)} must be numeric") from None
            total: FloatArray = np.sum(parts, axis=0)
            return total
    return None


def _threshold(window: pd.DataFrame, given: float | None, settings: MonitoringSettings) -> float:
    """The decision threshold: as given, else the log's single ``threshold`` value, else the settings'."""
    if given is not None:
        threshold = given
    elif "threshold" in window.columns and window["threshold"].nunique(dropna=True) == 1:
        threshold = float(window["threshold"].dropna().iloc[0])
    else:
        threshold = settings.decision_threshold
    if not 0 < threshold < 1:
        raise InputError(f"the decision threshold must lie strictly between 0 and 1, got {threshold}")
    return threshold


def _reasons(
    features: Sequence[FeatureDrift],
    prediction: FeatureDrift | None,
    multivariate: MultivariateDrift | None,
    streams: Sequence[StreamDrift],
    settings: MonitoringSettings,
) -> list[str]:
    reasons: list[str] = []
    for f in [*features, *([prediction] if prediction else [])]:
        if not f.drift_detected or f.statistic is None:
            continue
        primary = f.p_value < f.threshold if f.p_value is not None else f.statistic > f.threshold
        if primary and f.p_value is not None:
            reasons.append(
                f"{f.feature}: {f.test} statistic {f.statistic:.4g}, p = {f.p_value:.3g} < {f.threshold:.3g}"
            )
        elif primary:
            reasons.append(f"{f.feature}: {f.test} distance {f.statistic:.4g} > {f.threshold:.3g}")
        if f.psi is not None and f.psi_counts and f.psi_level == "significant":
            reasons.append(f"{f.feature}: PSI {f.psi:.3f} >= {settings.psi_significant}")
    if multivariate is not None and multivariate.drift_detected:
        reasons.append(
            f"multivariate: PCA reconstruction error {multivariate.window_error:.4g} outside the reference "
            f"band [{multivariate.band_lower:.4g}, {multivariate.band_upper:.4g}]"
        )
    for stream in streams:
        if stream.drift_detected:
            reasons.append(
                f"{stream.detector} on the {stream.target.replace('_', ' ')}: {stream.detections} change(s), "
                f"first at window row {stream.first_detection}"
            )
    return reasons


def monitor_window(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    now: datetime,
    settings: MonitoringSettings | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    decision_threshold: float | None = None,
    history: pd.DataFrame | None = None,
    baseline_roc_auc: float | None = None,
    high_risk_threshold: float | None = None,
    labelled: pd.DataFrame | None = None,
    drift_history: Sequence[bool] = (),
    newcomer_history: Sequence[bool] = (),
    rescore: Callable[[pd.DataFrame], FloatArray] | None = None,
) -> MonitoringResult:
    """Run every check on ``window`` against ``reference`` and return the result.

    ``now`` decides which labels have matured (``label_time`` after it does not count) and stamps the result.
    ``decision_threshold`` is the champion's threshold (default: the window's ``threshold`` column when it
    holds one value, else the settings' one). ``history`` is the whole training snapshot the growth of the
    age-growing features is fitted on (default: the reference; see :mod:`defectops.monitoring.trend`).
    ``baseline_roc_auc`` is the model's held-out ROC-AUC at training: realized or estimated performance this
    far below it (``max_performance_drop``) is an alarm. ``high_risk_threshold`` is the champion's ``high``
    band cut (default: the settings' ``high_risk_threshold``). ``labelled`` is the labels that arrived
    during the window (:func:`defectops.monitoring.arrivals.arrived_labels`: ``score``, ``label``,
    ``label_time``): realized performance is judged on them instead of the window's own matured rows.
    ``drift_history`` is whether the model's earlier checks (oldest first) had a drift signal
    (:attr:`MonitoringResult.drift_signal`): drift alarms only when sustained. ``newcomer_history`` is the
    same for the newcomer check (:mod:`defectops.monitoring.newcomers`, ``newcomers.signal``).
    ``rescore`` is the model's scoring function: with it, the score's drift is judged against the model's
    scores on the reference advanced to the window's time (:func:`defectops.monitoring.trend.advance`), so
    that the growth the age-growing features share with the project does not read as score drift.
    """
    cfg = settings or MonitoringSettings()
    # One type per metric (the feature contract): a window logged before it may hold fix as true/false.
    reference, window = normalise_frame(reference), _with_attrs(normalise_frame(window), window)
    threshold = _threshold(window, decision_threshold, cfg)
    if len(window) == 0:
        raise InputError("the window is empty: nothing to monitor")
    notes: list[str] = []
    window, repeats = latest_per_change(window)
    if repeats:
        notes.append(_repeat_note(repeats, len(window), "window"))
    if len(reference) == 0:
        raise InputError("the reference is empty")
    window_scores = _scores(window, "window")
    reference_scores = _scores(reference, "reference") if "score" in reference.columns else None
    chosen, skipped = select_features(reference, window, features=features, exclude=exclude)
    # The newcomer share reads exp as mined (at the change's time), before the age trend is removed.
    newcomers = newcomer_shift(reference, window, settings=cfg, history=tuple(newcomer_history))
    trended = detrend(
        reference,
        _window_times(window),
        chosen,
        history=normalise_frame(history) if history is not None else reference,
        window_time=_TREND_TIME,
        months=cfg.trend_months,
    )
    drift_scores = _advanced_scores(reference, trended, rescore, reference_scores, cfg, notes)
    reference, window = trended.reference, _with_attrs(trended.window, window)
    notes.extend([*trended.notes, *_trend_notes(trended.adjustments)])
    n_tests = len(chosen) + (1 if reference_scores is not None else 0)
    kinds = {name: classify_feature(reference[name], cfg) for name in chosen}
    feature_results = [
        feature_drift(name, reference[name], window[name], settings=cfg, n_tests=n_tests, kind=kinds[name])
        for name in chosen
    ]
    prediction: FeatureDrift | None = None
    streams: list[StreamDrift] = []
    if drift_scores is not None:
        prediction = prediction_drift(
            pd.Series(drift_scores, name="score"), window["score"], settings=cfg, n_tests=n_tests
        )
        streams = stream_drift(drift_scores, window_scores, settings=cfg, decision_threshold=threshold)
    else:
        notes.append("the reference has no 'score' column: prediction drift and streaming checks skipped")
    numeric = [name for name in chosen if kinds[name] == "numeric"]
    multivariate: MultivariateDrift | None = None
    try:
        multivariate = PCAReconstructionDrift(cfg).fit(reference, numeric).check(window)
    except InputError as exc:
        notes.append(f"multivariate check skipped: {exc}")
    notes.extend(_skipped_notes(feature_results))
    calibration_labels: FloatArray | None = None
    calibration_scores: FloatArray | None = None
    if reference_scores is not None and "label" in reference.columns:
        labels = labels_array(reference["label"])
        known = ~np.isnan(labels)
        if known.any():
            calibration_labels, calibration_scores = labels[known], reference_scores[known]
    estimated = estimate_performance(
        window_scores,
        decision_threshold=threshold,
        reference_labels=calibration_labels,
        reference_scores=calibration_scores,
        settings=cfg,
    )
    if estimated.reliable is False:
        notes.append("the reference is not well calibrated: CBPE estimates are unreliable")
    reasons = _reasons(feature_results, prediction, multivariate, streams, cfg)
    if newcomers is not None and newcomers.signal:
        reasons.append(f"newcomers: {newcomers.describe()}")
    state: State = "drift" if reasons else "ok"
    if labelled is None:
        realized = realized_performance(
            window, now=now, settings=cfg, decision_threshold=threshold, effort=_effort(window)
        )
    else:
        arrived, repeats = latest_per_change(normalise_frame(labelled) if len(labelled) else labelled)
        if repeats:
            notes.append(_repeat_note(repeats, len(arrived), "labels that arrived"))
        if len(arrived):
            _scores(arrived, "labelled frame")
        realized = realized_performance(
            arrived,
            now=now,
            settings=cfg,
            decision_threshold=threshold,
            effort=_effort(arrived),
            basis="arrived",
        )
    verdict = alarm_reasons(
        AlarmInputs(
            n_window=len(window),
            features=feature_results,
            prediction=prediction,
            streams=streams,
            realized=realized,
            estimated=estimated,
            baseline_roc_auc=baseline_roc_auc,
            reference_estimated_roc_auc=(
                estimated_roc_auc(reference_scores) if reference_scores is not None else None
            ),
            groups=feature_groups(reference, [f.feature for f in feature_results if f.test is not None]),
            drift_history=tuple(drift_history),
            newcomers=newcomers,
        ),
        cfg,
        notes,
    )
    return MonitoringResult(
        generated_at=now,
        state=state,
        reasons=reasons,
        n_reference=len(reference),
        n_window=len(window),
        features=feature_results,
        skipped_columns=skipped,
        prediction=prediction,
        multivariate=multivariate,
        streams=streams,
        proxies_reference=(
            label_free_proxies(
                reference_scores,
                settings=cfg,
                decision_threshold=threshold,
                high_risk_threshold=high_risk_threshold,
            )
            if reference_scores is not None
            else None
        ),
        proxies_window=label_free_proxies(
            window_scores, settings=cfg, decision_threshold=threshold, high_risk_threshold=high_risk_threshold
        ),
        realized=realized,
        estimated=estimated,
        notes=notes,
        settings=cfg.model_dump(mode="json"),
        alarm=bool(verdict.reasons),
        alarm_reasons=verdict.reasons,
        trends=trended.adjustments,
        drift_signal=verdict.drift_signal,
        drift_checks=verdict.drift_checks,
        newcomers=newcomers,
    )


def _repeat_note(repeats: int, kept: int, what: str) -> str:
    """Why the monitored rows are fewer than the logged ones (:mod:`defectops.monitoring.once`)."""
    rows = "1 row" if repeats == 1 else f"{repeats} rows"
    return (
        f"{rows} of the {what} scored a change that was scored again later: each change counts once, by "
        f"its latest prediction ({kept} kept)"
    )


def _advanced_scores(
    reference: pd.DataFrame,
    trended: Detrended,
    rescore: Callable[[pd.DataFrame], FloatArray] | None,
    scores: FloatArray | None,
    settings: MonitoringSettings,
    notes: list[str],
) -> FloatArray | None:
    """The reference scores the window's score is compared with: the model's scores on the reference advanced
    to the window's time when the model is given and a feature grows, else the reference's own scores."""
    if scores is None or rescore is None or not settings.score_at_window_time:
        return scores
    advanced = advance(reference, trended)
    if advanced is None:
        return scores
    moved = np.clip(np.asarray(rescore(advanced), dtype=np.float64).reshape(-1), 0.0, 1.0)
    if len(moved) != len(scores) or np.isnan(moved).any():
        raise InputError(f"the model gave {len(moved)} scores for {len(scores)} reference rows")
    names = ", ".join(a.feature for a in trended.adjustments if a.slope_per_year != 0.0)
    notes.append(
        f"score compared with the model's scores on the reference advanced to the window's time along the "
        f"growth of {names} (median {np.median(scores):.3f} as trained, {np.median(moved):.3f} advanced)"
    )
    return moved


def _trend_notes(adjustments: Sequence[TrendAdjustment]) -> list[str]:
    """One note per way the age-growing features were compared, naming its features: on requests 8
    features had "no significant growth in the last 600 training commits", one thing to say, not 8 lines."""
    said: dict[str, list[TrendAdjustment]] = {}
    for a in adjustments:
        said.setdefault(a.note.removeprefix(f"{a.feature}: "), []).append(a)
    return [
        same[0].note
        if len(same) == 1
        else f"{len(same)} features ({', '.join(a.feature for a in same)}): {what}"
        for what, same in said.items()
    ]


def _skipped_notes(feature_results: Sequence[FeatureDrift]) -> list[str]:
    """One note per reason a feature test was skipped, naming its features: a small window skips every
    feature for the same reason, which is one thing to say, not one line per feature."""
    skipped: dict[str, list[str]] = {}
    for f in feature_results:
        if f.skipped_reason:
            skipped.setdefault(f.skipped_reason, []).append(f.feature)
    return [
        f"{names[0]}: test skipped, {reason}"
        if len(names) == 1
        else f"{len(names)} features ({', '.join(names)}): tests skipped, {reason}"
        for reason, names in skipped.items()
    ]
