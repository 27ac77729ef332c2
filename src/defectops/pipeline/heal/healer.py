"""The heal cycle's orchestration: one cycle per model at a time, its steps in order, its MLflow run.

A cycle is pure orchestration of the other stages' public APIs, with ``now`` passed in (the scheduler, the
command and the tests are the only places that read a clock). Each step is a function of the
:class:`~defectops.pipeline.heal.context.HealContext` (which :class:`Healer` is) and returns a typed result
that the next steps read; each records its decision as it happens (see the package docstring).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from defectops.config import HealSettings
from defectops.errors import DefectOpsError, HealBusyError, InputError, ModelError
from defectops.pipeline.heal.blocks import blocks_step
from defectops.pipeline.heal.context import HealContext
from defectops.pipeline.heal.cycle import Cycle, HealReport
from defectops.pipeline.heal.decide import decide_step
from defectops.pipeline.heal.gate import gate_step
from defectops.pipeline.heal.monitor import monitor_step
from defectops.pipeline.heal.refresh import refresh_step
from defectops.pipeline.heal.sources import HistorySource, RepositorySource, StoreSource, repository_labels
from defectops.pipeline.heal.train import train_step
from defectops.pipeline.heal.watch import watch_step
from defectops.registry import CHALLENGER, CHAMPION, AuditLog, ModelRegistry
from defectops.serving import ControlFile

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from defectops.config import MonitoringSettings, Settings


class Healer(HealContext):
    """The self-healing loop of one registered model: a :class:`HealContext` (its dependencies and caches;
    see there for the parameters) that runs :meth:`cycle`.

    Long-lived (the scheduler keeps one across cycles), so loaded models and reference snapshots are cached
    by version.
    """

    _experiment_id: str | None = None  # the MLflow experiment, looked up once per healer

    @property
    def lock_path(self) -> Path:
        """The file whose ``flock`` keeps cycles of this model one at a time (beside the control file)."""
        path = self.control.path
        return path.with_name(path.name.removesuffix(".control.json") + ".heal.lock")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        model_name: str,
        repo: Path | None,
        heal: HealSettings | None = None,
        monitoring: MonitoringSettings | None = None,
        online: bool = False,
        feedback_repo: str | None = None,
        log_url: str | None = None,
        workers: int | None = None,
        store: str | None = None,
    ) -> Healer:
        """Everything from the settings tree: registry, prediction log, control file, audit store.

        The prediction log is the service's (``DEFECTOPS_SERVE_LOG_URL``, else the workspace's); ``heal`` and
        ``monitoring`` default to the tree's ``DEFECTOPS_HEAL_*`` and ``DEFECTOPS_MONITOR_*`` subtrees. With
        ``store`` (an artifact store URL) challengers learn from the commits CI scored into it, labelled from
        ``repo``'s history (:class:`StoreSource`) instead of from the whole mined repository.
        """
        from defectops.config import Workspace
        from defectops.predlog import PredictionLog, default_url

        workspace = Workspace.from_settings(settings).ensure()
        registry = ModelRegistry.from_settings(settings)
        heal = heal if heal is not None else settings.heal
        url = log_url or settings.serve.log_url or default_url(workspace.root)
        source: HistorySource | None = None
        if store is not None:
            from defectops.errors import InputError
            from defectops.storage import ArtifactStore

            if repo is None:
                raise InputError(
                    "--store needs --repo: the labels of the stored commits come from its history"
                )
            labels = repository_labels(repo, workspace.root, settings.label_waiting_days)
            artifacts = ArtifactStore.from_url(store, endpoint_url=settings.storage.endpoint_url)
            source = StoreSource(artifacts, labels)
        elif repo is not None:
            source = RepositorySource(repo, workspace.root, settings.label_waiting_days, workers)
        return cls(
            model_name=model_name,
            registry=registry,
            log=PredictionLog.from_url(url),
            control=ControlFile.for_model(workspace.root, model_name),
            audit=AuditLog(heal.audit_db_url or registry.config.audit_url),
            settings=heal,
            monitoring=monitoring if monitoring is not None else settings.monitor,
            source=source,
            online=online,
            feedback_repo=feedback_repo,
            waiting_days=settings.label_waiting_days,
            repo=repo,
            workspace_root=workspace.root,
        )

    def close(self) -> None:
        self.log.close()

    # -- the cycle ---------------------------------------------------------------------------------------

    def cycle(self, now: datetime) -> HealReport:
        """Run one cycle at ``now`` (timezone-aware); see the package docstring for the steps.

        Raises HealBusyError when another cycle of the same model holds the workspace lock (an overrunning
        cron job); any other failure is recorded as an ``error`` record, then raised.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise InputError("now must be timezone-aware")
        cycle = Cycle(self.model_name, self.audit, now)
        with self._exclusive():
            try:
                with self._mlflow_run(cycle) as finish:
                    try:
                        self._steps(cycle)
                    except Exception as exc:
                        cycle.add("error", "failed", f"{type(exc).__name__}: {exc}")
                        try:
                            finish("FAILED")
                        except DefectOpsError as unlogged:  # the cycle's own error is the one to report
                            logger.warning("%s", unlogged)
                        raise
                    finish("FINISHED")
            except Exception as exc:
                if not cycle.records or cycle.records[-1].step != "error":  # MLflow itself failed
                    cycle.add("error", "failed", f"{type(exc).__name__}: {exc}")
                raise
        aliases = self.aliases()
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

    def _steps(self, cycle: Cycle) -> None:
        aliases = self.aliases()
        champion = aliases.get(CHAMPION)
        if champion is None:
            cycle.add(
                "start",
                "no_champion",
                f"model {self.model_name!r} has no champion yet; train one first (defectops run)",
            )
            return
        refreshed = refresh_step(self, cycle, champion)
        if watch_step(self, cycle, champion).rolled_back:
            return
        gated = gate_step(self, cycle, champion, aliases.get(CHALLENGER))
        monitored = monitor_step(self, cycle, gated.champion)
        decided = decide_step(
            self, cycle, gated.champion, gated.pending, monitored.monitoring, refreshed.history
        )
        if decided.decision.retrain:
            train_step(self, cycle, gated.champion, refreshed.history, decided.decision)
        blocks_step(self, cycle, refreshed.history)

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

    @contextmanager
    def _mlflow_run(self, cycle: Cycle) -> Iterator[Callable[[str], None]]:
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
        run_id = str(run.info.run_id)
        cycle.run_id = run_id
        done = False

        def finish(status: str) -> None:
            nonlocal done
            if done:
                return
            done = True
            try:
                with mlflow_errors("cannot log the heal cycle to its MLflow run"):
                    _log_cycle(client, run_id, cycle, millis)
            except (DefectOpsError, OSError) as exc:
                # The artifact store is down (or the local one full): the run must still end, FAILED, or it
                # shows as running forever; the cycle's records are in the audit table either way.
                with contextlib.suppress(Exception):
                    client.set_terminated(run_id, "FAILED", end_time=millis)
                if isinstance(exc, DefectOpsError):
                    raise
                raise ModelError(f"cannot log the heal cycle to its MLflow run {run_id}: {exc}") from exc
            with mlflow_errors("cannot finish the heal cycle's MLflow run"):
                client.set_terminated(run_id, status, end_time=millis)

        try:
            yield finish
        finally:
            if not done:
                finish("KILLED")


def _log_cycle(client: Any, run_id: str, cycle: Cycle, millis: int) -> None:
    """The cycle's outcomes (tags), metrics, records and the artifacts and tables its steps kept."""
    outcomes = {r.step: r.outcome for r in cycle.records}
    for step, outcome in outcomes.items():
        client.set_tag(run_id, f"defectops.heal.{step}", outcome[:250])
    for key, value in cycle.metrics.items():
        client.log_metric(run_id, key, value, timestamp=millis)
    records = [json.loads(r.model_dump_json()) for r in cycle.records]
    client.log_dict(run_id, {"records": records}, "heal/records.json")
    for path, document in cycle.artifacts.items():
        client.log_dict(run_id, document, path)
    for name, table in cycle.tables.items():
        with tempfile.TemporaryDirectory(prefix="defectops-heal-") as tmp:
            target = Path(tmp) / f"{name}.parquet"
            table.to_parquet(target, index=False)
            client.log_artifact(run_id, str(target), artifact_path="heal")
