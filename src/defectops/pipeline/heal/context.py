"""What every step of a heal cycle works with: the loop's dependencies and lookups of registered versions.

:class:`HealContext` holds the registry, the prediction log, the serving control file, the audit store and
the settings; the step modules (refresh, watch, gate, monitor, decide, train) are functions of a context, a
:class:`~defectops.pipeline.heal.cycle.Cycle` and what the previous steps returned. Loaded models and
reference snapshots are cached by version: the scheduler keeps one healer (a context) across cycles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from defectops.config import HealSettings
from defectops.errors import NotFoundError
from defectops.registry import (
    CHALLENGER,
    CHAMPION,
    AuditEvent,
    AuditLog,
    HealRecord,
    LoadedModel,
    ModelRegistry,
)
from defectops.serving import ControlFile, Traffic

if TYPE_CHECKING:
    from defectops.config import MonitoringSettings
    from defectops.pipeline.heal.sources import HistorySource
    from defectops.predlog import PredictionLog

WHO = "defectops heal"


def days(delta: timedelta) -> float:
    return delta / timedelta(days=1)


def became_champion(registry: ModelRegistry, model_name: str, version: int) -> datetime | None:
    """When ``version`` last became the champion (promoted, or rolled back to) by the audit trail; None when
    it never did (a challenger, or a champion set before auditing)."""
    for event in reversed(registry.history(model_name, alias=CHAMPION)):
        if event.to_version == version and event.action in ("promote", "rollback"):
            return event.at
    return None


def scored_reference(frame: pd.DataFrame, model: LoadedModel) -> pd.DataFrame:
    """The monitoring reference with the model's scores on its rows (``score``), unless it has them.

    The registry's snapshot holds the training rows' features, effort, label and time but no score; without
    one the prediction drift test, the streaming detectors and the CBPE comparison never run, and only
    feature drift and matured labels can raise an alarm (a jump in change size moved the score of numpy's
    champion at once but fewer than 30% of its feature groups). The scores are in-sample: the champion was
    refitted on these rows, so they are somewhat more confident than on new commits (docs/monitoring.md).
    """
    if "score" in frame.columns or len(frame) == 0:
        return frame
    if any(c not in frame.columns for c in model.text_columns()):
        # A hybrid model reads each commit's changed lines, which the snapshot does not keep (they are code):
        # its reference stays unscored rather than scored on empty text (docs/monitoring.md).
        return frame
    out = frame.copy()
    out["score"] = model.score(frame)
    return out


def learnt_note(left_out: int) -> str:
    """What :func:`defectops.predlog.unlearnt` left out, for a step's line: empty when nothing was."""
    if left_out == 0:
        return ""
    were = "was" if left_out == 1 else "were"
    return f" (not counted: {left_out} more {were} already known when the models compared were trained)"


class HealContext:
    """The self-healing loop of one registered model: its dependencies, and cached lookups.

    ``source`` is where challengers learn from (None: the loop watches, gates and monitors but cannot
    train). ``feedback_repo`` is the repository id under which the service logs predictions of this
    repository's commits; the labels of the history are written there as feedback every cycle.
    ``repo`` and ``workspace_root`` are where the block-level model (``<model_name>-blocks``) reads the
    repository's blocks and keeps its block table (None: that model is not healed).
    """

    def __init__(
        self,
        *,
        model_name: str,
        registry: ModelRegistry,
        log: PredictionLog,
        control: ControlFile,
        audit: AuditLog,
        settings: HealSettings | None = None,
        monitoring: MonitoringSettings | None = None,
        source: HistorySource | None = None,
        online: bool = False,
        feedback_repo: str | None = None,
        waiting_days: int = 90,
        who: str = WHO,
        repo: Path | None = None,
        workspace_root: Path | None = None,
    ) -> None:
        self.model_name = model_name
        self.registry = registry
        self.log = log
        self.control = control
        self.audit = audit
        self.settings = settings or HealSettings()
        self.monitoring = monitoring
        self.source = source
        self.online = online
        self.feedback_repo = feedback_repo
        self.waiting_days = waiting_days
        self.who = who
        self.repo = repo
        self.workspace_root = workspace_root
        self._models: dict[int, LoadedModel] = {}
        self._references: dict[int, pd.DataFrame] = {}

    # -- registry lookups ------------------------------------------------------------------------------

    def model(self, version: int) -> LoadedModel:
        """A registered version, loaded once per healer."""
        if version not in self._models:
            self._models[version] = self.registry.load(self.model_name, version=version)
        return self._models[version]

    def reference(self, version: int) -> pd.DataFrame:
        if version not in self._references:
            self._references[version] = self.registry.load_reference(self.model_name, version=version)
        return self._references[version]

    def monitoring_reference(self, version: int) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The part of a version's training snapshot the live window is compared with
        (:func:`defectops.monitoring.recent_reference`: the ``reference_days`` before the final waiting
        period, at least ``min_reference_rows`` rows) with the version's scores on it
        (:func:`scored_reference`), and the span it covers."""
        from defectops.monitoring import recent_reference

        span = recent_reference(
            self.reference(version),
            trained_at=self.trained_at(version),
            waiting_days=self.waiting_days,
            span_days=self.settings.reference_days,
            min_rows=self.settings.min_reference_rows,
        )
        return scored_reference(span.frame, self.model(version)), span.as_dict()

    def trained_at(self, version: int) -> datetime:
        """When a version learned its labels (:meth:`ModelRegistry.trained_at`)."""
        return self.registry.trained_at(self.model_name, version)

    def learnt_by(self, *versions: int) -> datetime | None:
        """When the last trained of ``versions`` learned the repository's labels: a label dated up to then may
        be a training row of one of them, so comparing them on it is not fair
        (:func:`defectops.predlog.unlearnt`). None when none of them learnt any (cross-project starters)."""
        times = [self.registry.labels_learnt_at(self.model_name, version) for version in versions]
        return max((t for t in times if t is not None), default=None)

    def champion_since(self, version: int) -> datetime:
        """When ``version`` last became the champion (its training time if that was never audited)."""
        became = became_champion(self.registry, self.model_name, version)
        return self.trained_at(version) if became is None else became

    def _registrations(self) -> list[AuditEvent]:
        return [e for e in self.registry.history(self.model_name, alias=CHALLENGER) if e.action == "register"]

    def last_registration(self) -> datetime | None:
        """When the last version was registered (``defectops run`` registers the first champion this way)."""
        events = self._registrations()
        return events[-1].at if events else None

    def last_registered_version(self) -> int | None:
        events = self._registrations()
        return events[-1].to_version if events else None

    def aliases(self) -> dict[str, int]:
        """The model's aliases now (none when the model is not registered yet)."""
        try:
            return self.registry.aliases(self.model_name)
        except NotFoundError:
            return {}

    # -- the loop's own history ------------------------------------------------------------------------

    def records(self, **where: str | None) -> list[HealRecord]:
        """This model's heal records, oldest first (``step``, ``cycle_id``, ``outcome`` filter)."""
        return self.audit.events(HealRecord, self.model_name, **where)

    def shadow_started(self, version: int) -> datetime | None:
        records = [
            r
            for r in self.records(outcome="shadow")
            if r.challenger_version == version and r.step in ("train", "gate")
        ]
        return records[-1].at if records else None

    # -- serving -----------------------------------------------------------------------------------------

    def set_control(
        self, champion: int | None, challenger: int | None, traffic: Traffic, reason: str, now: datetime
    ) -> dict[str, Any]:
        """Tell the service what to serve (it follows the control file); returns the state written."""
        state = self.control.update(lambda _current: (champion, challenger, traffic, reason), now=now)
        return state.to_document()

    def shadow_pairs(self, champion: int, challenger: int, *, since: datetime, now: datetime) -> pd.DataFrame:
        """Shadow predictions of ``challenger`` with the score the serving ``champion`` gave the same request
        (``champion_score``); requests the champion did not answer (e.g. before a rollback) are left out."""
        shadow = self.log.window(
            since, now, model_name=self.model_name, model_version=str(challenger), served=False, as_of=now
        )
        served = self.log.window(
            since, now, model_name=self.model_name, model_version=str(champion), served=True, as_of=now
        )
        partner = pd.DataFrame(
            {"shadow_of": served["prediction_id"], "champion_score": served["score"].astype("float64")}
        )
        pairs = shadow.merge(partner, on="shadow_of", how="inner", validate="many_to_one")
        return pairs.sort_values(["created_at", "prediction_id"], kind="stable").reset_index(drop=True)
