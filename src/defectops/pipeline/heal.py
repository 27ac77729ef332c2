"""One cycle of the self-healing loop (``defectops heal``): watch, gate, monitor, decide, train, shadow.

A cycle is pure orchestration of the other stages' public APIs, with ``now`` passed in (the scheduler, the
command and the tests are the only places that read a clock). In order:

1. **refresh**: mine new commits and update the labels, both incrementally (:class:`RepositorySource`), and,
   when the service scores commits of this repository, write the labels that became known into the
   prediction log as feedback (``feedback_repo``). This comes first, not after the decision as in the
   issue's sketch, because every later step needs the newest labels: the gate and the rollback watch judge
   on matured labels of logged requests, and the ``new_labels`` rule counts them.
2. **watch**: a champion promoted less than ``watch_days`` ago is compared with the previous champion on the
   matured requests it served (its logged scores; the previous champion rescored on the logged inputs) and
   rolled back (registry rollback + control file) when it is worse
   (:func:`defectops.pipeline.decide.rollback_check`). A rollback ends the cycle.
3. **gate**: a challenger in shadow is gated once at least ``gate.min_labels`` of its shadow predictions
   have matured labels, on exactly those requests (both models' logged scores), then promoted or archived;
   after ``max_shadow_days`` without enough labels it is archived.
4. **monitor**: the champion's served predictions of the last ``window_days`` against its training
   reference (:func:`defectops.monitoring.monitor.monitor_window`).
5. **decide**: :func:`defectops.pipeline.decide.decide` on drift, realized performance and new labels.
6. **train**: a challenger trained as the main job trains (:func:`defectops.pipeline.run.train_candidate`:
   evaluated on commits the champion never saw, with the labels known when they began; refitted on every
   label known now) or, with ``online``, the champion's online model updated by ``partial_fit`` on a copy
   with the labels that became known since it was trained. It is registered as challenger and put in shadow
   through the serving control file, so the running service scores every request with it too.

Every step returns a typed :class:`HealRecord` that is appended, with its evidence, to the ``heal_events``
table (SQL; by default the registry's audit database in the workspace) and to one MLflow run per cycle;
:func:`replay` recomputes a stored decision from its evidence.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from defectops.data import EFFORT, LABEL, TIME
from defectops.errors import (
    ConfigError,
    DefectOpsError,
    HealBusyError,
    InputError,
    InsufficientDataError,
    ModelError,
    NotFoundError,
)
from defectops.pipeline.decide import (
    DecideInputs,
    Decision,
    HealSettings,
    Realized,
    RollbackCheck,
    decide,
    rollback_check,
)
from defectops.registry import (
    CHALLENGER,
    CHAMPION,
    LoadedModel,
    ModelRegistry,
    audit_engine,
    evidence_json,
    register_trained_model,
    utc_iso,
)
from defectops.serving import ControlFile, Traffic
from defectops.training import Candidate, CandidateOptions, online_candidate, train_candidate

if TYPE_CHECKING:
    from defectops.config import Settings
    from defectops.monitoring import MonitoringResult, MonitoringSettings
    from defectops.predlog import PredictionLog
    from defectops.registry import TrackingConfig

WHO = "defectops heal"


Step = Literal["start", "refresh", "watch", "gate", "monitor", "decide", "train", "error"]

# ----------------------------------------------------------------------------------------------------------
# Records and their table


class HealRecord(BaseModel):
    """One decision of one cycle, with the evidence it rests on."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    cycle_id: str
    model_name: str
    at: datetime
    step: Step
    outcome: str
    reason: str
    champion_version: int | None = None
    challenger_version: int | None = None
    evidence: dict[str, Any] = {}
    mlflow_run_id: str | None = None


class HealReport(BaseModel):
    """What one cycle did, and the deployment it left behind."""

    model_config = ConfigDict(frozen=True)

    cycle_id: str
    model_name: str
    at: datetime
    mlflow_run_id: str | None
    records: list[HealRecord]
    champion_version: int | None
    challenger_version: int | None
    traffic: dict[str, Any]

    def outcome(self, step: Step) -> str | None:
        """The outcome of ``step`` in this cycle (None when the step did not run)."""
        return next((r.outcome for r in self.records if r.step == step), None)

    def record(self, step: Step) -> HealRecord | None:
        return next((r for r in self.records if r.step == step), None)

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.model_dump_json())
        return document


_metadata = MetaData()

heal_events = Table(
    "heal_events",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cycle_id", String(64), nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("at", String(40), nullable=False),  # ISO-8601 UTC, sorts as text
    Column("step", String(32), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("champion_version", Integer, nullable=True),
    Column("challenger_version", Integer, nullable=True),
    Column("evidence", Text, nullable=False),  # JSON document
    Column("mlflow_run_id", String(64), nullable=True),
    Index("ix_heal_events_lookup", "model_name", "step", "id"),
)


def _clean(value: Any) -> Any:
    """Evidence as strict JSON: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, BaseModel):
        return _clean(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, datetime):
        return utc_iso(value)
    return value


class HealAudit:
    """The append-only ``heal_events`` table (any SQLAlchemy URL; created on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def engine(self) -> Engine:
        return audit_engine(self.url, _metadata)

    def append(self, record: HealRecord) -> HealRecord:
        """Store one record; returns it with its id."""
        row = {
            "cycle_id": record.cycle_id,
            "model_name": record.model_name,
            "at": utc_iso(record.at),
            "step": record.step,
            "outcome": record.outcome,
            "reason": record.reason,
            "champion_version": record.champion_version,
            "challenger_version": record.challenger_version,
            "evidence": evidence_json(_clean(record.evidence)),
            "mlflow_run_id": record.mlflow_run_id,
        }
        try:
            with self.engine.begin() as conn:
                key = conn.execute(heal_events.insert().values(**row)).inserted_primary_key
        except SQLAlchemyError as exc:
            raise ConfigError(f"the heal audit record could not be written: {exc}") from exc
        stored_id = int(key[0]) if key and key[0] is not None else None
        return record.model_copy(update={"id": stored_id, "evidence": json.loads(str(row["evidence"]))})

    def records(
        self,
        model_name: str,
        *,
        step: str | None = None,
        cycle_id: str | None = None,
        outcome: str | None = None,
    ) -> list[HealRecord]:
        """Records of one model, oldest first (optionally one step, cycle or outcome)."""
        query = select(heal_events).where(heal_events.c.model_name == model_name)
        if step is not None:
            query = query.where(heal_events.c.step == step)
        if cycle_id is not None:
            query = query.where(heal_events.c.cycle_id == cycle_id)
        if outcome is not None:
            query = query.where(heal_events.c.outcome == outcome)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(heal_events.c.id)).mappings().all()
        return [
            HealRecord(
                id=row["id"],
                cycle_id=row["cycle_id"],
                model_name=row["model_name"],
                at=datetime.fromisoformat(row["at"]),
                step=row["step"],
                outcome=row["outcome"],
                reason=row["reason"],
                champion_version=row["champion_version"],
                challenger_version=row["challenger_version"],
                evidence=json.loads(row["evidence"]),
                mlflow_run_id=row["mlflow_run_id"],
            )
            for row in rows
        ]


# ----------------------------------------------------------------------------------------------------------
# Where the history to train on comes from


@dataclass(frozen=True)
class History:
    """Mined commits and their labels as known now, in the layouts ``training_table`` reads."""

    commits: pd.DataFrame
    labels: pd.DataFrame
    files: pd.DataFrame | None
    fingerprint: str | Mapping[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


class HistorySource(Protocol):
    """Brings the history up to ``now`` (e.g. mines and labels new commits)."""

    def refresh(self, now: datetime) -> History: ...


@dataclass
class RepositorySource:
    """A git repository, mined and labelled incrementally into the workspace."""

    repo: Path
    workspace_root: Path
    waiting_days: int = 90
    workers: int | None = None

    def refresh(self, now: datetime) -> History:
        from defectops.config import Workspace
        from defectops.data import read_fingerprint, read_table
        from defectops.git import GitRepo
        from defectops.labeling import LabelOptions, label_repository
        from defectops.mining import MineOptions, Miner

        workspace = Workspace(self.workspace_root).ensure()
        repo = GitRepo.open(self.repo)
        options = MineOptions(workers=self.workers) if self.workers else MineOptions()
        mined = Miner(repo, workspace, options, now=lambda: now).mine()
        labelled = label_repository(
            repo, workspace, now=now, options=LabelOptions(waiting_days=self.waiting_days)
        )
        fingerprint = read_fingerprint(mined.dataset)
        return History(
            commits=read_table(mined.dataset),
            labels=labelled.labels,
            files=read_table(mined.files_dataset),
            fingerprint=fingerprint.as_dict() if fingerprint else str(mined.dataset),
            summary={
                "new_commits": mined.new_commits,
                "commits": mined.commits,
                "head": mined.head,
                "labels": labelled.summary.labels,
            },
        )


@dataclass
class FrameSource:
    """A history held in memory (a replayed or published dataset): ``commits`` as mined, ``labels`` with
    ``label_known_at`` (see defectops.data.labels). ``training_table(as_of=now)`` sees only what was
    known at ``now``, so a complete history can be replayed cycle by cycle."""

    commits: pd.DataFrame
    labels: pd.DataFrame
    files: pd.DataFrame | None = None
    name: str = "frames"

    def refresh(self, now: datetime) -> History:
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(self.commits[["sha"]], index=False).to_numpy().tobytes())
        digest.update(
            pd.util.hash_pandas_object(self.labels[["sha", "label"]], index=False).to_numpy().tobytes()
        )
        visible = pd.to_datetime(self.commits["author_time"], utc=True) <= pd.Timestamp(now)
        return History(
            commits=self.commits,
            labels=self.labels,
            files=self.files,
            fingerprint={
                "source": self.name,
                "rows": len(self.commits),
                "content_sha256": digest.hexdigest(),
            },
            summary={"commits": int(visible.sum())},
        )


def _known_labels(labels: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Labels known at ``now`` of non-merge commits (sha, label, label_known_at)."""
    from defectops.data import labels_as_of

    known = labels_as_of(labels, now)
    keep = (known["label"] != "unknown") & ~known["is_merge"].astype(bool)
    return known.loc[keep, ["sha", "label", "label_known_at"]].reset_index(drop=True)


def sync_feedback(
    log: PredictionLog,
    labels: pd.DataFrame,
    *,
    repo: str,
    now: datetime,
    since: datetime | None,
    batch_size: int = 1000,
) -> dict[str, int]:
    """Write the labels that became known in ``(since, now]`` into the prediction log as feedback for
    ``(repo, sha)``, dated when they became known, so predictions the service made for those commits get
    their ground truth. Idempotent (the log ignores a label it already has)."""
    from defectops.predlog import FeedbackRecord

    known = _known_labels(labels, now)
    when = pd.to_datetime(known["label_known_at"], utc=True)
    if since is not None:
        known = known.loc[when > pd.Timestamp(since)]
        when = when.loc[known.index]
    records = [
        FeedbackRecord(
            label=1 if label == "defect" else 0,
            repo=repo,
            commit_sha=str(sha),
            label_time=stamp.to_pydatetime(),
            source="szz",
        )
        for sha, label, stamp in zip(known["sha"], known["label"], when, strict=True)
    ]
    counts = {"recorded": 0, "duplicate": 0, "replaced": 0, "matched_predictions": 0}
    for start in range(0, len(records), batch_size):
        for outcome in log.add_feedback_batch(records[start : start + batch_size], now=now):
            counts[outcome.status] += 1
            counts["matched_predictions"] += outcome.matched_predictions
    return counts


# ----------------------------------------------------------------------------------------------------------
# The cycle


def _days(delta: timedelta) -> float:
    return delta / timedelta(days=1)


class _Cycle:
    """Records of one cycle: each is appended to the audit table as it happens and to the MLflow run."""

    def __init__(self, healer: Healer, now: datetime) -> None:
        self.healer = healer
        self.now = now
        self.cycle_id = str(uuid.uuid4())
        self.records: list[HealRecord] = []
        self.artifacts: dict[str, Any] = {}
        self.tables: dict[str, pd.DataFrame] = {}
        self.metrics: dict[str, float] = {}
        self.run_id: str | None = None

    def add(
        self,
        step: Step,
        outcome: str,
        reason: str,
        *,
        champion: int | None = None,
        challenger: int | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> HealRecord:
        record = HealRecord(
            cycle_id=self.cycle_id,
            model_name=self.healer.model_name,
            at=self.now,
            step=step,
            outcome=outcome,
            reason=reason,
            champion_version=champion,
            challenger_version=challenger,
            evidence=dict(evidence or {}),
            mlflow_run_id=self.run_id,
        )
        stored = self.healer.audit.append(record)
        self.records.append(stored)
        return stored


class Healer:
    """The self-healing loop of one registered model: its dependencies, caches, and :meth:`cycle`.

    Long-lived (the scheduler keeps one across cycles), so loaded models and reference snapshots are cached
    by version. ``source`` is where challengers learn from (None: the loop watches, gates and monitors but
    cannot train). ``feedback_repo`` is the repository id under which the service logs predictions of this
    repository's commits; the labels of the history are written there as feedback every cycle.
    """

    def __init__(
        self,
        *,
        model_name: str,
        registry: ModelRegistry,
        log: PredictionLog,
        control: ControlFile,
        audit: HealAudit,
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
        self._experiment_id: str | None = None
        self.lock_path = control.path.with_name(
            control.path.name.removesuffix(".control.json") + ".heal.lock"
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        model_name: str,
        repo: Path | None,
        environ: Mapping[str, str],
        heal: HealSettings | None = None,
        monitoring: MonitoringSettings | None = None,
        online: bool = False,
        feedback_repo: str | None = None,
        log_url: str | None = None,
        workers: int | None = None,
    ) -> Healer:
        """Everything from the workspace defaults: registry, prediction log, control file, audit table."""
        from defectops.config import Workspace
        from defectops.predlog import PredictionLog, default_url

        workspace = Workspace.from_settings(settings).ensure()
        registry = ModelRegistry.from_settings(settings, environ=environ)
        url = log_url or environ.get("DEFECTOPS_SERVE_LOG_URL") or default_url(workspace.root)
        source = (
            RepositorySource(repo, workspace.root, settings.label_waiting_days, workers)
            if repo is not None
            else None
        )
        return cls(
            model_name=model_name,
            registry=registry,
            log=PredictionLog.from_url(url),
            control=ControlFile.for_model(workspace.root, model_name),
            audit=HealAudit(environ.get("DEFECTOPS_HEAL_AUDIT_DB_URL") or registry.config.audit_url),
            settings=heal,
            monitoring=monitoring,
            source=source,
            online=online,
            feedback_repo=feedback_repo,
            waiting_days=settings.label_waiting_days,
        )

    def close(self) -> None:
        self.log.close()

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
        days = self.settings.reference_days
        if days is None or TIME not in snapshot.columns:
            return snapshot, {"rows": len(snapshot), "span": "whole snapshot"}
        times = pd.to_datetime(snapshot[TIME], utc=True)
        end = pd.Timestamp(self.trained_at(version)) - pd.Timedelta(days=self.waiting_days)
        eligible = snapshot.loc[(times <= end).to_numpy()]
        eligible_times = times.loc[eligible.index]
        start = end - pd.Timedelta(days=days)
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

    def shadow_started(self, version: int) -> datetime | None:
        records = [
            r
            for r in self.audit.records(self.model_name, outcome="shadow")
            if r.challenger_version == version and r.step in ("train", "gate")
        ]
        return records[-1].at if records else None

    def _set_control(
        self, champion: int | None, challenger: int | None, traffic: Traffic, reason: str, now: datetime
    ) -> dict[str, Any]:
        state = self.control.update(lambda _current: (champion, challenger, traffic, reason), now=now)
        return state.to_document()

    # -- the cycle ---------------------------------------------------------------------------------------

    def cycle(self, now: datetime) -> HealReport:
        """Run one cycle at ``now`` (timezone-aware); see the module docstring for the steps.

        Raises HealBusyError when another cycle of the same model holds the workspace lock (an overrunning
        cron job); any other failure is recorded as an ``error`` record, then raised.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise InputError("now must be timezone-aware")
        cycle = _Cycle(self, now)
        with self._exclusive():
            try:
                with self._mlflow_run(cycle) as finish:
                    try:
                        self._steps(cycle)
                    except Exception as exc:
                        cycle.add("error", "failed", f"{type(exc).__name__}: {exc}")
                        finish("FAILED")
                        raise
                    finish("FINISHED")
            except Exception as exc:
                if not cycle.records or cycle.records[-1].step != "error":  # MLflow itself failed
                    cycle.add("error", "failed", f"{type(exc).__name__}: {exc}")
                raise
        aliases = self._aliases()
        state = self.control.read()
        return HealReport(
            cycle_id=cycle.cycle_id,
            model_name=self.model_name,
            at=now,
            mlflow_run_id=cycle.run_id,
            records=cycle.records,
            champion_version=aliases.get(CHAMPION),
            challenger_version=aliases.get(CHALLENGER),
            traffic=(
                {"mode": state.traffic.mode, "share": state.traffic.share}
                if state is not None
                else {"mode": "off", "share": 0.0}
            ),
        )

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One cycle per model at a time, across processes (``flock`` on a file beside the control file)."""
        import fcntl

        path = self.lock_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HealBusyError(
                    f"another heal cycle of {self.model_name!r} is running (lock {path}); try again later"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _aliases(self) -> dict[str, int]:
        try:
            return self.registry.aliases(self.model_name)
        except NotFoundError:
            return {}

    def _steps(self, cycle: _Cycle) -> None:
        aliases = self._aliases()
        champion = aliases.get(CHAMPION)
        if champion is None:
            cycle.add(
                "start",
                "no_champion",
                f"model {self.model_name!r} has no champion yet; train one first (defectops run)",
            )
            return
        history = self._refresh(cycle, champion)
        if self._watch(cycle, champion):
            return
        pending = self._gate(cycle, champion, aliases.get(CHALLENGER))
        if pending is None:  # the gate may have promoted or archived: read the aliases again
            champion = self._aliases().get(CHAMPION, champion)
        result = self._monitor(cycle, champion)
        decision = self._decide(cycle, champion, pending, result, history)
        if decision.retrain:
            self._train(cycle, champion, history, decision)

    # -- 1. refresh ---------------------------------------------------------------------------------------

    def _refresh(self, cycle: _Cycle, champion: int) -> History | None:
        if self.source is None:
            return None
        history = self.source.refresh(cycle.now)
        evidence: dict[str, Any] = dict(history.summary)
        if self.feedback_repo is not None:
            previous = self.audit.records(self.model_name, step="refresh")
            lookback = timedelta(days=self.settings.feedback_lookback_days)
            since = previous[-1].at - lookback if previous else None
            evidence["feedback"] = sync_feedback(
                self.log, history.labels, repo=self.feedback_repo, now=cycle.now, since=since
            )
            evidence["feedback_since"] = since
        cycle.add("refresh", "ok", "history brought up to now", champion=champion, evidence=evidence)
        return history

    # -- 2. watch -----------------------------------------------------------------------------------------

    def _watch(self, cycle: _Cycle, champion: int) -> bool:
        """Roll a recently promoted champion back when it does worse than the one it replaced."""
        events = self.registry.history(self.model_name, alias=CHAMPION)
        last = events[-1] if events else None
        if (
            last is None
            or last.action != "promote"
            or last.to_version != champion
            or last.from_version is None
        ):
            return False
        now = cycle.now
        if now - last.at > timedelta(days=self.settings.watch_days):
            return False
        previous = last.from_version
        window = self.log.window(
            last.at,
            now,
            model_name=self.model_name,
            model_version=str(champion),
            served=True,
            as_of=now,
        )
        matured = _matured(window, now)
        base = {"promoted_at": last.at, "previous_version": previous, "served": len(window)}
        try:
            current_model, previous_model = self.model(champion), self.model(previous)
        except DefectOpsError as exc:  # e.g. the previous version was deleted: nothing to compare with
            cycle.add("watch", "cannot_compare", str(exc), champion=champion, evidence=base)
            return False
        missing = [f for f in previous_model.meta.features if f not in matured.columns]
        if missing and len(matured):
            cycle.add(
                "watch",
                "cannot_compare",
                f"the logged requests lack inputs v{previous} needs ({', '.join(missing)})",
                champion=champion,
                evidence=base,
            )
            return False
        y = matured["label"].to_numpy(dtype=np.float64)
        current_scores = matured["score"].to_numpy(dtype=np.float64)
        previous_scores = (
            previous_model.score(matured.astype(dict.fromkeys(previous_model.meta.features, "float64")))
            if len(matured)
            else np.empty(0)
        )
        check = rollback_check(
            y,
            current_scores,
            previous_scores,
            current_version=champion,
            previous_version=previous,
            current_threshold=current_model.meta.threshold,
            previous_threshold=previous_model.meta.threshold,
            settings=self.settings,
        )
        evidence = {**base, "check": check, "settings": self.settings}
        cycle.tables["watch_window"] = pd.DataFrame(
            {"y_true": y, "current_score": current_scores, "previous_score": previous_scores}
        )
        if not check.rollback:
            cycle.add(
                "watch",
                "watching" if not check.ready else "kept",
                check.reason,
                champion=champion,
                evidence=evidence,
            )
            return False
        event = self.registry.rollback(
            self.model_name, self.who, check.reason, {"heal_cycle": cycle.cycle_id}, now=now
        )
        restored = event.to_version
        archived = None
        challenger = self._aliases().get(CHALLENGER)
        if challenger is not None and challenger != restored:
            self.registry.archive(
                self.model_name,
                challenger,
                self.who,
                f"champion v{champion} was rolled back to v{restored}; "
                f"the challenger was compared with v{champion}",
                now=now,
            )
            archived = challenger
        control = self._set_control(restored, None, Traffic(), f"rollback v{champion} -> v{restored}", now)
        cycle.add(
            "watch",
            "rolled_back",
            f"rolled back v{champion} to v{restored}: {check.reason}",
            champion=restored,
            evidence={
                **evidence,
                "audit_event_id": event.id,
                "archived_challenger": archived,
                "control": control,
            },
        )
        return True

    # -- 3. gate ------------------------------------------------------------------------------------------

    def _gate(self, cycle: _Cycle, champion: int, challenger: int | None) -> int | None:
        """Gate the challenger in shadow when enough of its requests have matured labels; returns the
        challenger still waiting in shadow (None when there is none)."""
        if self.settings.gate_on != "shadow":
            return None
        now = cycle.now
        if challenger is None or challenger == champion:
            return None
        started = self.shadow_started(challenger)
        if started is None:  # registered by someone else: adopt it into the shadow
            control = self._set_control(
                champion, challenger, Traffic("shadow", self.settings.shadow_share), "heal: shadow", now
            )
            cycle.add(
                "gate",
                "shadow",
                f"challenger v{challenger} (registered outside the loop) put in shadow",
                champion=champion,
                challenger=challenger,
                evidence={"control": control},
            )
            return challenger
        pairs = self.shadow_pairs(champion, challenger, since=started, now=now)
        matured = _matured(pairs, now)
        base = {
            "shadow_since": started,
            "shadow_predictions": len(pairs),
            "matured": len(matured),
            "matured_defective": int(matured["label"].sum()) if len(matured) else 0,
        }
        needed = self.settings.gate.min_labels
        if len(matured) < needed:
            if now - started > timedelta(days=self.settings.max_shadow_days):
                days = _days(now - started)
                why = (
                    f"only {len(matured)} of the needed {needed} shadow predictions have matured labels "
                    f"after {days:.0f} days (max_shadow_days {self.settings.max_shadow_days:g})"
                )
                self.registry.archive(self.model_name, challenger, self.who, why, base, now=now)
                control = self._set_control(champion, None, Traffic(), f"archive v{challenger}", now)
                cycle.add(
                    "gate", "expired", why, champion=champion, challenger=challenger,
                    evidence={**base, "control": control},
                )  # fmt: skip
                return None
            cycle.add(
                "gate",
                "waiting",
                f"{len(matured)} of {needed} shadow predictions of v{challenger} have matured labels",
                champion=champion,
                challenger=challenger,
                evidence=base,
            )
            return challenger
        effort = _effort(matured)
        outcome = self.registry.apply_gate(
            self.model_name,
            challenger,
            y_true=matured["label"].to_numpy(dtype=np.int64),
            effort=effort,
            challenger_scores=matured["score"].to_numpy(dtype=np.float64),
            champion_scores=matured["champion_score"].to_numpy(dtype=np.float64),
            champion_version=champion,
            who=self.who,
            now=now,
            criteria=self.settings.gate,
        )
        decision = outcome.decision
        if outcome.promoted:
            control = self._set_control(challenger, None, Traffic(), f"promote v{challenger}", now)
            result, new_champion = "promoted", challenger
        else:
            control = self._set_control(champion, None, Traffic(), f"archive v{challenger}", now)
            result, new_champion = "archived", champion
        cycle.add(
            "gate",
            result,
            f"v{challenger} vs v{champion} on {decision.n_labels} shadow requests: {decision.reason}",
            champion=new_champion,
            challenger=challenger,
            evidence={
                **base,
                "gate_run_id": outcome.gate_run_id,
                "decision": decision.to_document(),
                "audit_event_ids": [e.id for e in outcome.events],
                "control": control,
            },
        )
        return None

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

    # -- 4. monitor ---------------------------------------------------------------------------------------

    def _monitor(self, cycle: _Cycle, champion: int) -> MonitoringResult | None:
        from defectops.monitoring import MonitoringSettings, exposition, monitor_window
        from defectops.serving import publish_gauges, published_gauges_path

        now = cycle.now
        since = max(now - timedelta(days=self.settings.window_days), self.champion_since(champion))
        window = self.log.window(
            since, now, model_name=self.model_name, model_version=str(champion), served=True, as_of=now
        )
        base = {"since": since, "until": now, "as_of": now, "n_window": len(window)}
        if len(window) < self.settings.min_window_predictions:
            cycle.add(
                "monitor",
                "skipped",
                f"{len(window)} served predictions of v{champion} since {since:%Y-%m-%d} "
                f"(< {self.settings.min_window_predictions})",
                champion=champion,
                evidence=base,
            )
            return None
        model = self.model(champion)
        reference, reference_span = self.monitoring_reference(champion)
        base["reference"] = reference_span
        features = [f for f in model.meta.features if f in window.columns and f in reference.columns]
        result = monitor_window(
            reference,
            window,
            now=now,
            settings=self.monitoring or MonitoringSettings(),
            features=features,
            decision_threshold=model.meta.threshold,
        )
        cycle.artifacts["heal/monitoring.json"] = json.loads(result.model_dump_json())
        publish_gauges(
            exposition(result), published_gauges_path(self.control.path)
        )  # the service exposes its gauges on /metrics
        realized = result.realized
        for key, value in (
            ("monitor.drift", 1.0 if result.state == "drift" else 0.0),
            ("monitor.n_window", float(result.n_window)),
            ("monitor.n_matured", float(realized.n_matured)),
            ("monitor.realized_roc_auc", realized.roc_auc),
            ("monitor.realized_f1", realized.f1),
        ):
            if value is not None and math.isfinite(value):
                cycle.metrics[key] = float(value)
        cycle.add(
            "monitor",
            result.state,
            "; ".join(result.reasons[:10]) if result.reasons else "no drift",
            champion=champion,
            evidence={
                **base,
                "features": features,
                "reasons": result.reasons,
                "drifted_features": result.drifted_features,
                "realized": realized.model_dump(mode="json"),
                "estimated": {"roc_auc": result.estimated.roc_auc, "f1": result.estimated.f1},
                "monitoring_settings": result.settings,
            },
        )
        return result

    # -- 5. decide ----------------------------------------------------------------------------------------

    def _decide(
        self,
        cycle: _Cycle,
        champion: int,
        pending: int | None,
        result: MonitoringResult | None,
        history: History | None,
    ) -> Decision:
        now = cycle.now
        trained = self.trained_at(champion)
        metrics = self.registry.get_version(self.model_name, champion).metrics
        if history is not None:
            known = _known_labels(history.labels, now)
            new_labels = int(
                (pd.to_datetime(known["label_known_at"], utc=True) > pd.Timestamp(trained)).sum()
            )
            counted_in = "history"
        else:
            served = self.log.window(trained, now, model_name=self.model_name, served=True, as_of=now)
            new_labels = len(_matured(served, now))
            counted_in = "prediction log"
        last = self.last_registration()
        earlier = [
            r.outcome == "drift"
            for r in self.audit.records(self.model_name, step="monitor")
            if r.champion_version == champion
            and r.outcome in ("ok", "drift")
            and r.cycle_id != cycle.cycle_id
        ]
        realized = None
        if result is not None:
            r = result.realized
            realized = Realized(
                n_matured=r.n_matured, n_positive=r.n_positive, roc_auc=r.roc_auc, f1=r.f1, brier=r.brier
            )
        inputs = DecideInputs(
            champion_version=champion,
            pending_challenger=pending,
            monitored=result is not None,
            drift=result is not None and result.state == "drift",
            drift_reasons=list(result.reasons) if result is not None else [],
            previous_drift=earlier,
            realized=realized,
            baseline_roc_auc=_finite_or_none(metrics.get("roc_auc")),
            baseline_f1=_finite_or_none(metrics.get("f1")),
            new_labels=new_labels,
            days_since_last_challenger=None if last is None else _days(now - last),
        )
        decision = decide(inputs, self.settings)
        cycle.add(
            "decide",
            "retrain" if decision.retrain else ("blocked" if decision.blocked_by else "no_action"),
            decision.reason,
            champion=champion,
            challenger=pending,
            evidence={
                "inputs": inputs,
                "decision": decision,
                "settings": self.settings,
                "champion_trained_at": trained,
                "new_labels_counted_in": counted_in,
            },
        )
        return decision

    # -- 6. train -----------------------------------------------------------------------------------------

    def _train(self, cycle: _Cycle, champion: int, history: History | None, decision: Decision) -> None:
        now = cycle.now
        if history is None:
            cycle.add("train", "skipped", "no history source to train on (give --repo)", champion=champion)
            return
        loaded = self.model(champion)
        estimator = loaded.estimator
        trained = self.trained_at(champion)
        kind = self.settings.model_kind or str(getattr(estimator, "kind", "") or "lightgbm")
        options = CandidateOptions(
            kind="online" if self.online else kind,
            budget_seconds=self.settings.budget_seconds,
            waiting_days=self.waiting_days,
            seed=self.settings.seed,
            min_labelled=self.settings.min_labelled,
            min_new_labelled=self.settings.min_new_labelled,
        )
        try:
            if self.online:
                candidate = online_candidate(
                    estimator,
                    history.commits,
                    history.labels,
                    history.files,
                    now=now,
                    since=trained,
                    options=options,
                )
            else:
                candidate = train_candidate(
                    history.commits,
                    history.labels,
                    history.files,
                    now=now,
                    options=options,
                    unseen_since=trained,
                )
        except InsufficientDataError as exc:
            cycle.add("train", "skipped", str(exc), champion=champion)
            return
        screen = self._screen(candidate, loaded)
        registered = register_trained_model(
            self.registry,
            self.model_name,
            candidate.model,
            features=candidate.features,
            table=candidate.table_now,
            metrics=candidate.metrics,
            dataset_fingerprint=history.fingerprint,
            now=now,
            who=self.who,
            why=f"heal: {decision.reason}",
            job="heal",
            evidence={
                "labels_as_of": now.isoformat(),
                "triggers": decision.fired,
                "heal_cycle": cycle.cycle_id,
            },
        )
        challenger = registered.version.version
        base = {
            "training_run_id": registered.run.run_id,
            "model_kind": options.kind,
            "online": self.online,
            "evaluation": candidate.evaluation.as_dict(),
            "screen": screen,
            "triggers": decision.fired,
        }
        if screen is not None and not screen["passed"]:
            why = screen["reason"]
            self.registry.archive(self.model_name, challenger, self.who, why, {"screen": screen}, now=now)
            cycle.add("train", "archived", why, champion=champion, challenger=challenger, evidence=base)
            return
        if self.settings.gate_on == "offline":
            self._offline_gate(cycle, champion, challenger, candidate, loaded, base)
            return
        control = self._set_control(
            champion,
            challenger,
            Traffic("shadow", self.settings.shadow_share),
            f"heal: shadow v{challenger}",
            now,
        )
        cycle.add(
            "train",
            "shadow",
            f"challenger v{challenger} trained ({', '.join(decision.fired)}) and put in shadow "
            f"(share {self.settings.shadow_share:g})",
            champion=champion,
            challenger=challenger,
            evidence={**base, "control": control},
        )

    def _screen(self, candidate: Candidate, champion: LoadedModel) -> dict[str, Any] | None:
        """Champion and challenger recipe on the held-out commits made since the champion was trained."""
        margin = self.settings.screen_max_roc_auc_drop
        if margin is None or not candidate.comparable:
            return None
        from sklearn.metrics import roc_auc_score

        y = candidate.window[LABEL].to_numpy()
        champion_auc = float(roc_auc_score(y, champion.score(candidate.window)))
        challenger_auc = float(roc_auc_score(y, candidate.window_probability))
        passed = challenger_auc - champion_auc >= -margin
        return {
            "rows": len(y),
            "champion_roc_auc": champion_auc,
            "challenger_roc_auc": challenger_auc,
            "max_drop": margin,
            "passed": passed,
            "reason": (
                f"held-out ROC-AUC {challenger_auc:.4f} vs champion {champion_auc:.4f} on {len(y)} commits "
                f"made since it was trained ({'within' if passed else 'more than'} {margin:g} below)"
            ),
        }

    def _offline_gate(
        self,
        cycle: _Cycle,
        champion: int,
        challenger: int,
        candidate: Candidate,
        loaded: LoadedModel,
        base: dict[str, Any],
    ) -> None:
        now = cycle.now
        if not candidate.comparable:
            why = (
                "an online update learns labels of commits the champion may have seen: only the shadow gate "
                "can compare the two"
                if self.online
                else f"too few commits labelled since v{champion} was trained for a comparison on commits "
                "neither model saw"
            )
            self.registry.archive(self.model_name, challenger, self.who, why, now=now)
            cycle.add("train", "archived", why, champion=champion, challenger=challenger, evidence=base)
            return
        window = candidate.window
        outcome = self.registry.apply_gate(
            self.model_name,
            challenger,
            y_true=window[LABEL].to_numpy(),
            effort=window[EFFORT].to_numpy(),
            challenger_scores=candidate.window_probability,
            champion_scores=loaded.score(window),
            champion_version=champion,
            who=self.who,
            now=now,
            criteria=self.settings.gate,
        )
        if outcome.promoted:
            control = self._set_control(challenger, None, Traffic(), f"promote v{challenger}", now)
        else:
            control = self._set_control(champion, None, Traffic(), f"archive v{challenger}", now)
        cycle.add(
            "train",
            "promoted" if outcome.promoted else "archived",
            f"offline gate of v{challenger} vs v{champion}: {outcome.decision.reason}",
            champion=challenger if outcome.promoted else champion,
            challenger=challenger,
            evidence={
                **base,
                "gate_run_id": outcome.gate_run_id,
                "decision": outcome.decision.to_document(),
                "control": control,
            },
        )

    # -- MLflow --------------------------------------------------------------------------------------------

    @contextmanager
    def _mlflow_run(self, cycle: _Cycle) -> Iterator[Callable[[str], None]]:
        """One MLflow run per cycle (client API: no process-wide active run to leak between cycles)."""
        from defectops.registry import activate, ensure_experiment, mlflow_errors

        config = self.registry.config
        millis = int(cycle.now.timestamp() * 1000)
        tags = {
            "mlflow.runName": f"heal {self.model_name} {cycle.now:%Y-%m-%d %H:%M}",
            "defectops.kind": "heal",
            "defectops.model_name": self.model_name,
            "defectops.heal.cycle_id": cycle.cycle_id,
        }
        with mlflow_errors("cannot start the heal cycle's MLflow run"):
            client = activate(config)
            if self._experiment_id is None:
                self._experiment_id = ensure_experiment(config, client)
            try:
                run = client.create_run(self._experiment_id, start_time=millis, tags=tags)
            except Exception:  # e.g. the experiment was deleted meanwhile: look it up again next time
                self._experiment_id = None
                raise
        cycle.run_id = str(run.info.run_id)
        done = False

        def finish(status: str) -> None:
            nonlocal done
            if done:
                return
            done = True
            with mlflow_errors("cannot finish the heal cycle's MLflow run"):
                outcomes = {r.step: r.outcome for r in cycle.records}
                for step, outcome in outcomes.items():
                    client.set_tag(cycle.run_id, f"defectops.heal.{step}", outcome[:250])
                for key, value in cycle.metrics.items():
                    client.log_metric(cycle.run_id, key, value, timestamp=millis)
                records = [json.loads(r.model_dump_json()) for r in cycle.records]
                client.log_dict(cycle.run_id, {"records": records}, "heal/records.json")
                for path, document in cycle.artifacts.items():
                    client.log_dict(cycle.run_id, document, path)
                for name, table in cycle.tables.items():
                    with tempfile.TemporaryDirectory(prefix="defectops-heal-") as tmp:
                        target = Path(tmp) / f"{name}.parquet"
                        table.to_parquet(target, index=False)
                        client.log_artifact(cycle.run_id, str(target), artifact_path="heal")
                client.set_terminated(cycle.run_id, status, end_time=millis)

        try:
            yield finish
        finally:
            if not done:
                finish("KILLED")


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _matured(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Rows of a prediction-log window whose label is known and dated at or before ``now``."""
    if len(frame) == 0:
        return frame
    known = frame["label"].notna()
    if "label_time" in frame.columns:
        times = pd.to_datetime(frame["label_time"], utc=True)
        known &= (times <= pd.Timestamp(now)).fillna(False)
    return frame.loc[known.to_numpy(dtype=bool)].reset_index(drop=True)


def _effort(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """Review effort per logged request: ``churn``, else ``la + ld``; None when some row has neither."""
    if EFFORT in frame.columns:
        effort = frame[EFFORT].to_numpy(dtype=np.float64, na_value=np.nan)
    elif "la" in frame.columns and "ld" in frame.columns:
        effort = frame["la"].to_numpy(dtype=np.float64, na_value=np.nan) + frame["ld"].to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    else:
        return None
    return effort if bool(np.isfinite(effort).all()) else None


# ----------------------------------------------------------------------------------------------------------
# Replay


class ReplayOutcome(BaseModel):
    """A stored decision recomputed from its evidence: ``matches`` when the verdict is the same."""

    model_config = ConfigDict(frozen=True)

    record_id: int | None
    step: str
    matches: bool
    original: str
    replayed: str
    detail: dict[str, Any]


def replay(record: HealRecord, *, config: TrackingConfig) -> ReplayOutcome:
    """Recompute a stored decision from its evidence alone.

    ``decide``: the rules on the stored inputs and settings; ``gate`` (promoted/archived) and an offline
    gate: :func:`defectops.registry.gate.replay_gate` on the gate run's stored window; ``watch``: the
    rollback rule on the watched window stored with the cycle's MLflow run. Other steps hold no decision to
    recompute (monitoring is replayed with :meth:`PredictionLog.window` ``as_of`` and ``monitor_window``).
    """
    evidence = record.evidence
    if record.step == "decide":
        settings = HealSettings.model_validate(evidence["settings"])
        inputs = DecideInputs.model_validate(evidence["inputs"])
        again = decide(inputs, settings)
        original = Decision.model_validate(evidence["decision"])
        return ReplayOutcome(
            record_id=record.id,
            step=record.step,
            matches=again == original,
            original=original.reason,
            replayed=again.reason,
            detail={"retrain": again.retrain, "fired": again.fired},
        )
    if "gate_run_id" in evidence:
        from defectops.registry import GateDecision, replay_gate

        original_gate = GateDecision.model_validate(evidence["decision"])
        again_gate = replay_gate(str(evidence["gate_run_id"]), config=config)
        return ReplayOutcome(
            record_id=record.id,
            step=record.step,
            matches=again_gate.passed == original_gate.passed and again_gate.reason == original_gate.reason,
            original=original_gate.reason,
            replayed=again_gate.reason,
            detail={"passed": again_gate.passed},
        )
    if record.step == "watch" and "check" in evidence and record.mlflow_run_id:
        import mlflow

        from defectops.registry import activate, mlflow_errors

        activate(config)
        with mlflow_errors(f"heal run {record.mlflow_run_id} has no stored watch window"):
            path = mlflow.artifacts.download_artifacts(
                run_id=record.mlflow_run_id,
                artifact_path="heal/watch_window.parquet",
                tracking_uri=config.tracking_uri,
            )
        window = pd.read_parquet(path)
        original_check = RollbackCheck.model_validate(evidence["check"])
        current = original_check.current
        previous = original_check.previous
        if current is None or previous is None:
            raise InputError("this watch record judged nothing yet (too few labels): nothing to replay")
        again_check = rollback_check(
            window["y_true"].to_numpy(),
            window["current_score"].to_numpy(),
            window["previous_score"].to_numpy(),
            current_version=current.version,
            previous_version=previous.version,
            current_threshold=current.threshold,
            previous_threshold=previous.threshold,
            settings=HealSettings.model_validate(evidence["settings"]),
        )
        return ReplayOutcome(
            record_id=record.id,
            step=record.step,
            matches=again_check == original_check,
            original=original_check.reason,
            replayed=again_check.reason,
            detail={"rollback": again_check.rollback},
        )
    raise InputError(f"a {record.step}/{record.outcome} record holds no decision that can be replayed")


__all__: Sequence[str] = (
    "FrameSource",
    "HealAudit",
    "HealRecord",
    "HealReport",
    "Healer",
    "History",
    "HistorySource",
    "ReplayOutcome",
    "RepositorySource",
    "replay",
    "sync_feedback",
)
