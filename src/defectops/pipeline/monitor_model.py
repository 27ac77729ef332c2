"""Monitoring a registered model from the workspace alone: what ``defectops monitor`` does without files.

After ``defectops run`` and ``defectops serve`` everything monitoring needs is in the workspace: the
prediction log (what the service answered), the registry (the model's threshold, its held-out ROC-AUC and
its training reference snapshot). This module puts them together the way the heal loop's monitor step does,
so a user monitors without exporting anything: the served predictions of one version since a time, compared
with the recent part of that version's training snapshot (:func:`defectops.monitoring.recent_reference`),
the age-growing features detrended on the whole snapshot. As heal's monitor step: realized performance on
the labels that arrived since then (:func:`defectops.pipeline.heal.monitor.arrivals`), and drift of the score
or of many features is an alarm only when the period of the same length before ``since`` (the previous
check) shows it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from defectops.config import HealSettings
from defectops.data import EFFORT, LABEL, TIME
from defectops.errors import InputError, NotFoundError
from defectops.pipeline.heal.context import became_champion, scored_reference
from defectops.pipeline.heal.monitor import arrivals, served_period
from defectops.registry import CHAMPION, ModelRegistry
from defectops.training import risk_bands_of

if TYPE_CHECKING:
    import pandas as pd

    from defectops.config import MonitoringSettings
    from defectops.monitoring import MonitoringResult, ReferenceSpan
    from defectops.predlog import PredictionLog


@dataclass(frozen=True, slots=True)
class ModelMonitoring:
    """One monitoring run of a registered model version over its logged predictions."""

    model_name: str
    version: int
    since: datetime
    until: datetime
    reference: ReferenceSpan
    result: MonitoringResult
    #: When the version last became the champion (None: never, by the audit trail).
    champion_from: datetime | None = None
    #: Labels that arrived in the period but were known when the version was trained: not counted.
    known_when_trained: int = 0
    #: Served predictions logged in the period (the result's window counts each change once).
    logged: int | None = None

    def period(self, bound: str) -> str:
        """The period covered, in the words heal's monitor step uses (:func:`served_period`); ``bound`` says
        what chose its start (e.g. ``--since 7d``)."""
        return served_period(
            self.logged if self.logged is not None else self.result.n_window,
            self.version,
            self.since,
            self.until,
            bound=bound,
            champion_from=self.champion_from,
            changes=self.result.n_window,
        )

    def learnt_note(self) -> str | None:
        """What realized performance left out (:func:`defectops.predlog.unlearnt`); None when nothing was."""
        n = self.known_when_trained
        if n == 0:
            return None
        label, were = ("label", "was") if n == 1 else ("labels", "were")
        return (
            f"realized performance leaves out {n} {label} that arrived in the period but {were} known when "
            f"v{self.version} was trained: its training rows (requests for older commits)"
        )

    def traffic_note(self, minimum: int) -> str | None:
        """How long a window must be to hold ``minimum`` predictions, at the rate the version served in the
        period (None: the window holds them).

        The rate is taken over the part of the period in which the version was champion, as heal's monitor
        step takes it: a champion promoted 6 minutes before read "10 predictions in 7 days ... about 70 days"
        here while heal said "about 1 hour" of the same predictions, and the advice to widen ``--since``
        could add none of its predictions.
        """
        from defectops.monitoring import traffic_hint

        served_from = self.since
        if self.champion_from is not None and self.champion_from > self.since:
            served_from = self.champion_from
        hint = traffic_hint(self.result.n_window, self.until - served_from, minimum)
        if hint is None:
            return None
        if served_from > self.since:
            return (
                f"{hint}; v{self.version} is champion only since {served_from:%Y-%m-%d %H:%M} UTC, so a "
                "longer --since adds none of its predictions"
            )
        return f"{hint}: monitor a longer window with --since"


def monitored_version(registry: ModelRegistry, model_name: str, version: int | None) -> int:
    """``version``, else the model's champion (NotFoundError naming what is missing)."""
    if version is not None:
        registry.get_version(model_name, version)  # NotFoundError when it does not exist
        return version
    champion = registry.alias_version(model_name, CHAMPION)
    if champion is None:
        raise NotFoundError(f"{model_name!r} has no champion; name a version with --model-version")
    return champion


def monitor_model(
    *,
    registry: ModelRegistry,
    log: PredictionLog,
    model_name: str,
    version: int,
    since: datetime,
    now: datetime,
    settings: MonitoringSettings,
    heal: HealSettings | None = None,
    waiting_days: float,
) -> ModelMonitoring:
    """Monitor the served predictions of ``model_name`` v``version`` created in ``[since, now)``."""
    from defectops.monitoring import monitor_window, recent_reference

    cfg = heal or HealSettings()
    info = registry.get_version(model_name, version)
    window = log.window(since, now, model_name=model_name, model_version=str(version), served=True)
    if len(window) == 0:
        raise InputError(
            f"no served predictions of {model_name} v{version} since {since:%Y-%m-%d %H:%M} UTC in "
            f"{log.url}: nothing to monitor (score commits with defectops serve first, or widen --since)"
        )
    snapshot = registry.load_reference(model_name, version=version)
    span = recent_reference(
        snapshot,
        trained_at=registry.trained_at(model_name, version),
        waiting_days=waiting_days,
        span_days=cfg.reference_days,
        min_rows=cfg.min_reference_rows,
    )
    features = [
        str(c) for c in snapshot.columns if str(c) not in {EFFORT, LABEL, TIME} and str(c) in window.columns
    ]
    baseline = info.metrics.get("roc_auc")
    loaded = registry.load(model_name, version=version)
    bands = risk_bands_of(loaded.estimator, threshold=info.threshold)
    reference = scored_reference(span.frame, loaded)

    def check(
        frame: pd.DataFrame,
        at: datetime,
        labelled: pd.DataFrame | None,
        history: list[bool],
        newcomer_history: list[bool],
    ) -> MonitoringResult:
        return monitor_window(
            reference,
            frame,
            now=at,
            settings=settings,
            features=features,
            decision_threshold=info.threshold,
            high_risk_threshold=bands.high if bands is not None else None,
            history=snapshot,
            baseline_roc_auc=baseline if baseline is not None and math.isfinite(baseline) else None,
            labelled=labelled,
            drift_history=history,
            newcomer_history=newcomer_history,
            rescore=loaded.score if "score" in reference.columns else None,
        )

    history: list[bool] = []
    newcomer_history: list[bool] = []
    before = since - (now - since)  # the previous check: the period of the same length before the window
    previous = log.window(before, since, model_name=model_name, model_version=str(version), served=True)
    if len(previous):
        earlier = check(previous, since, None, [], [])
        history = [bool(earlier.drift_signal)]
        newcomer_history = [bool(earlier.newcomers and earlier.newcomers.signal)]
    learnt = registry.labels_learnt_at(model_name, version)
    arrived = arrivals(
        log, model_name=model_name, version=version, since=since, now=now, settings=settings, learnt_at=learnt
    )
    result = check(window, now, arrived.rows, history, newcomer_history)
    became = became_champion(registry, model_name, version)
    return ModelMonitoring(
        model_name,
        version,
        since,
        now,
        span,
        result,
        champion_from=became,
        known_when_trained=arrived.known_when_trained,
        logged=len(window),
    )
