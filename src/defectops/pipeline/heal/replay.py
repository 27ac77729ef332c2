"""Recompute a stored decision from its evidence alone (``replay``).

A record's evidence is a stored JSON document; each replayable step reads it back as a typed model (pydantic:
stored JSON is an I/O boundary) and the path is chosen by the record's step and those typed fields:

- ``decide``: the rules on the stored inputs and settings (:func:`~defectops.pipeline.heal.decide.decide`);
- ``gate`` (promoted/archived) and ``train`` gated offline: :func:`defectops.registry.replay_gate` on the gate
  run's stored window;
- ``watch``: the rollback rule on the watched window stored with the cycle's MLflow run.

Other steps hold no decision to recompute (monitoring is replayed with :meth:`PredictionLog.window` ``as_of``
and ``monitor_window``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.config import HealSettings
from defectops.errors import InputError
from defectops.pipeline.heal.decide import DecideInputs, Decision, decide
from defectops.pipeline.heal.watch import RollbackCheck, rollback_check
from defectops.registry import GateDecision, HealRecord

if TYPE_CHECKING:
    from defectops.registry import TrackingConfig


class ReplayOutcome(BaseModel):
    """A stored decision recomputed from its evidence: ``matches`` when the verdict is the same."""

    model_config = ConfigDict(frozen=True)

    record_id: int | None
    step: str
    matches: bool
    original: str
    replayed: str
    detail: dict[str, Any]


class _Evidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class DecideEvidence(_Evidence):
    """What a ``decide`` record stores to be replayed."""

    inputs: DecideInputs
    decision: Decision
    settings: HealSettings


class GateEvidence(_Evidence):
    """What a gated ``gate`` or ``train`` record stores (no gate run: the record was not gated)."""

    gate_run_id: str | None = None
    decision: GateDecision | None = None


class WatchEvidence(_Evidence):
    """What a ``watch`` record stores (no check: nothing was compared)."""

    check: RollbackCheck | None = None
    settings: HealSettings | None = None


def replay(record: HealRecord, *, config: TrackingConfig) -> ReplayOutcome:
    """Recompute a stored decision from its evidence alone (module docstring)."""
    if record.step == "decide":
        return _replay_decide(record, DecideEvidence.model_validate(record.evidence))
    if record.step in ("gate", "train"):
        gated = GateEvidence.model_validate(record.evidence)
        if gated.gate_run_id is not None and gated.decision is not None:
            return _replay_gate(record, gated.gate_run_id, gated.decision, config)
    if record.step == "watch" and record.mlflow_run_id:
        watched = WatchEvidence.model_validate(record.evidence)
        if watched.check is not None and watched.settings is not None:
            return _replay_watch(record, record.mlflow_run_id, watched.check, watched.settings, config)
    raise InputError(f"a {record.step}/{record.outcome} record holds no decision that can be replayed")


def _replay_decide(record: HealRecord, evidence: DecideEvidence) -> ReplayOutcome:
    again = decide(evidence.inputs, evidence.settings)
    return ReplayOutcome(
        record_id=record.id,
        step=record.step,
        matches=again == evidence.decision,
        original=evidence.decision.reason,
        replayed=again.reason,
        detail={"retrain": again.retrain, "fired": again.fired},
    )


def _replay_gate(
    record: HealRecord, gate_run_id: str, original: GateDecision, config: TrackingConfig
) -> ReplayOutcome:
    from defectops.registry import replay_gate

    again = replay_gate(gate_run_id, config=config)
    return ReplayOutcome(
        record_id=record.id,
        step=record.step,
        matches=again.passed == original.passed and again.reason == original.reason,
        original=original.reason,
        replayed=again.reason,
        detail={"passed": again.passed},
    )


def _replay_watch(
    record: HealRecord, run_id: str, original: RollbackCheck, settings: HealSettings, config: TrackingConfig
) -> ReplayOutcome:
    import mlflow

    from defectops.registry import activate, mlflow_errors

    activate(config)
    with mlflow_errors(f"heal run {run_id} has no stored watch window"):
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path="heal/watch_window.parquet",
            tracking_uri=config.tracking_uri,
        )
    window = pd.read_parquet(path)
    current, previous = original.current, original.previous
    if current is None or previous is None:
        raise InputError("this watch record judged nothing yet (too few labels): nothing to replay")
    again = rollback_check(
        window["y_true"].to_numpy(),
        window["current_score"].to_numpy(),
        window["previous_score"].to_numpy(),
        current_version=current.version,
        previous_version=previous.version,
        current_threshold=current.threshold,
        previous_threshold=previous.threshold,
        settings=settings,
    )
    return ReplayOutcome(
        record_id=record.id,
        step=record.step,
        matches=again == original,
        original=original.reason,
        replayed=again.reason,
        detail={"rollback": again.rollback},
    )
