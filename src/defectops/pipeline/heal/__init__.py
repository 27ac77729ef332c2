"""One cycle of the self-healing loop (``defectops heal``): watch, gate, monitor, decide, train, shadow.

A cycle (:meth:`Healer.cycle`) runs these steps in order, one module each, every step a function of the
loop's :class:`~defectops.pipeline.heal.context.HealContext` returning a typed result (a frozen dataclass)
that the later steps read:

1. **refresh** (:mod:`.refresh`): mine new commits and update the labels, both incrementally
   (:mod:`.sources`), and, when the service scores commits of this repository, write the labels that became
   known into the prediction log as feedback (:mod:`.feedback`, ``feedback_repo``).
2. **watch** (:mod:`.watch`): a champion promoted less than ``watch_days`` ago is compared with the previous
   champion on the matured requests it served (its logged scores; the previous champion rescored on the
   logged inputs) and rolled back (registry rollback + control file) when it is worse. A rollback ends the
   cycle.
3. **gate** (:mod:`.gate`): a challenger in shadow is gated once at least ``gate.min_labels`` of its shadow
   predictions have matured labels, on exactly those requests (both models' logged scores), then promoted or
   archived; after ``max_shadow_days`` without enough labels it is archived.
4. **monitor** (:mod:`.monitor`): the champion's served predictions of the last ``window_days`` against its
   training reference (:func:`defectops.monitoring.monitor_window`).
5. **decide** (:mod:`.decide`): the training rules on drift, realized performance and new labels.
6. **train** (:mod:`.train`): a challenger trained as the main job trains
   (:func:`defectops.training.train_candidate`: evaluated on commits the champion never saw, with the labels
   known when they began; refitted on every label known now) or, with ``online``, the champion's online
   model updated by ``partial_fit`` on a copy with the labels that became known since it was trained. It is
   registered as challenger (:func:`defectops.registry.register_trained_model`) and put in shadow through
   the serving control file, so the running service scores every request with it too.

Every step's decision is a :class:`~defectops.registry.HealRecord` appended, with its evidence, to the
registry's audit store (:class:`defectops.registry.AuditLog`; by default the audit database in the
workspace) as it happens (:mod:`.cycle`), and to one MLflow run per cycle; :func:`replay` (:mod:`.replay`)
recomputes a stored decision from its evidence. Thresholds: :class:`defectops.config.HealSettings`.
"""

from defectops.pipeline.heal.context import HealContext
from defectops.pipeline.heal.cycle import Cycle, HealReport
from defectops.pipeline.heal.decide import DecideInputs, DecideResult, Decision, Realized, Trigger, decide
from defectops.pipeline.heal.feedback import FeedbackCounts, sync_feedback
from defectops.pipeline.heal.gate import GateResult
from defectops.pipeline.heal.healer import Healer
from defectops.pipeline.heal.monitor import MonitorResult
from defectops.pipeline.heal.refresh import RefreshResult
from defectops.pipeline.heal.replay import ReplayOutcome, replay
from defectops.pipeline.heal.sources import (
    FrameSource,
    History,
    HistorySource,
    HistorySummary,
    RepositorySource,
    StoreSource,
    repository_labels,
)
from defectops.pipeline.heal.train import Screen, TrainResult
from defectops.pipeline.heal.watch import RollbackCheck, ScoresOf, WatchResult, rollback_check
from defectops.registry import HealRecord

__all__ = [
    "Cycle",
    "DecideInputs",
    "DecideResult",
    "Decision",
    "FeedbackCounts",
    "FrameSource",
    "GateResult",
    "HealContext",
    "HealRecord",
    "HealReport",
    "Healer",
    "History",
    "HistorySource",
    "HistorySummary",
    "MonitorResult",
    "Realized",
    "RefreshResult",
    "ReplayOutcome",
    "RepositorySource",
    "RollbackCheck",
    "ScoresOf",
    "Screen",
    "StoreSource",
    "TrainResult",
    "Trigger",
    "WatchResult",
    "decide",
    "replay",
    "repository_labels",
    "rollback_check",
    "sync_feedback",
]
