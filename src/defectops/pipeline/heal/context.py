"""What every step of a heal cycle works with: the loop's dependencies and lookups of registered versions.

:class:`HealContext` holds the registry, the prediction log, the serving control file, the audit store and
the settings; the step modules (refresh, watch, gate, monitor, decide, train) are functions of a context, a
:class:`~defectops.pipeline.heal.cycle.Cycle` and what the previous steps returned. Loaded models and
reference snapshots are cached by version: the scheduler keeps one healer (a context) across cycles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from defectops.config import HealSettings
from defectops.data import TIME
from defectops.errors import ModelError, NotFoundError
from defectops.registry import CHALLENGER, CHAMPION, AuditLog, HealRecord, LoadedModel, ModelRegistry
from defectops.serving import ControlFile, Traffic

if TYPE_CHECKING:
    from defectops.config import MonitoringSettings
    from defectops.pipeline.heal.sources import HistorySource
    from defectops.predlog import PredictionLog

WHO = "defectops heal"


def days(delta: timedelta) -> float:
    return delta / timedelta(days=1)


def matured(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Rows of a prediction-log window whose label is known and dated at or before ``now``."""
    if len(frame) == 0:
        return frame
    known = frame["label"].notna()
    if "label_time" in frame.columns:
        times = pd.to_datetime(frame["label_time"], utc=True)
        known &= (times <= pd.Timestamp(now)).fillna(False)
    return frame.loc[known.to_numpy(dtype=bool)].reset_index(drop=True)


class HealContext:
    """The self-healing loop of one registered model: its dependencies, and cached lookups.

    ``source`` is where challengers learn from (None: the loop watches, gates and monitors but cannot
    train). ``feedback_repo`` is the repository id under which the service logs predictions of this
    repository's commits; the labels of the history are written there as feedback every cycle.
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
        """The part of a version's training snapshot the live window is compared with.

        The commits of the last ``reference_days`` before the final waiting period: every commit of that span
        is in the snapshot with a matured label, whereas from the last waiting period only the defects
        already fixed are (a biased sample). At least ``min_reference_rows`` of the eligible rows.
        """
        snapshot = self.reference(version)
        span_days = self.settings.reference_days
        if span_days is None or TIME not in snapshot.columns:
            return snapshot, {"rows": len(snapshot), "span": "whole snapshot"}
        times = pd.to_datetime(snapshot[TIME], utc=True)
        end = pd.Timestamp(self.trained_at(version)) - pd.Timedelta(days=self.waiting_days)
        eligible = snapshot.loc[(times <= end).to_numpy()]
        eligible_times = times.loc[eligible.index]
        start = end - pd.Timedelta(days=span_days)
        chosen = eligible.loc[(eligible_times > start).to_numpy()]
        if len(chosen) < self.settings.min_reference_rows:
            chosen = eligible.tail(self.settings.min_reference_rows)
        if len(chosen) < self.settings.min_reference_rows:  # a young model: the whole snapshot
            return snapshot, {"rows": len(snapshot), "span": "whole snapshot (too few rows before the wait)"}
        chosen_times = times.loc[chosen.index]
        return chosen.reset_index(drop=True), {
            "rows": len(chosen),
            "from": chosen_times.min().isoformat(),
            "to": chosen_times.max().isoformat(),
        }

    def trained_at(self, version: int) -> datetime:
        """When a version learned its labels: ``labels_as_of`` recorded at registration, else the time of
        its audited registration, else MLflow's creation time."""
        for event in reversed(self.registry.history(self.model_name, alias=CHALLENGER)):
            if event.action == "register" and event.to_version == version:
                stamp = event.evidence.get("labels_as_of")
                return datetime.fromisoformat(stamp) if isinstance(stamp, str) else event.at
        created = self.registry.get_version(self.model_name, version).created_at
        if created is None:
            raise ModelError(f"{self.model_name} v{version} has no known training time")
        return created

    def champion_since(self, version: int) -> datetime:
        """When ``version`` last became the champion (its training time if that was never audited)."""
        for event in reversed(self.registry.history(self.model_name, alias=CHAMPION)):
            if event.to_version == version and event.action in ("promote", "rollback"):
                return event.at
        return self.trained_at(version)

    def last_registration(self) -> datetime | None:
        events = [
            e for e in self.registry.history(self.model_name, alias=CHALLENGER) if e.action == "register"
        ]
        return events[-1].at if events else None

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
