"""One cycle's records: each step's decision is a :class:`~defectops.registry.HealRecord`, appended to the
audit store as it happens (so a crash keeps what was decided before it) and kept for the cycle's MLflow run
and its :class:`HealReport`."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.registry import AuditLog, HealRecord, HealStep, utc_iso


class HealReport(BaseModel):
    """What one cycle did, and the deployment it left behind (``heal --json`` prints :meth:`as_dict`)."""

    model_config = ConfigDict(frozen=True)

    cycle_id: str
    model_name: str
    at: datetime
    mlflow_run_id: str | None
    records: list[HealRecord]
    champion_version: int | None
    challenger_version: int | None
    traffic: dict[str, Any]

    def outcome(self, step: HealStep) -> str | None:
        """The outcome of ``step`` in this cycle (None when the step did not run)."""
        return next((r.outcome for r in self.records if r.step == step), None)

    def record(self, step: HealStep) -> HealRecord | None:
        return next((r for r in self.records if r.step == step), None)

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.model_dump_json())
        return document


def json_safe(value: Any) -> Any:
    """Evidence as strict JSON: NaN and infinities become null, numpy scalars plain numbers, pydantic models
    their JSON documents, datetimes ISO-8601 UTC."""
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, BaseModel):
        return json_safe(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return utc_iso(value)
    return value


class Cycle:
    """The records of one cycle at ``now``, and what its MLflow run will hold besides them (artifacts,
    tables and metrics the steps add)."""

    def __init__(self, model_name: str, audit: AuditLog, now: datetime) -> None:
        self.model_name = model_name
        self.audit = audit
        self.now = now
        self.cycle_id = str(uuid.uuid4())
        self.records: list[HealRecord] = []
        self.artifacts: dict[str, Any] = {}
        self.tables: dict[str, pd.DataFrame] = {}
        self.metrics: dict[str, float] = {}
        self.run_id: str | None = None

    def add(
        self,
        step: HealStep,
        outcome: str,
        reason: str,
        *,
        champion: int | None = None,
        challenger: int | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> HealRecord:
        """Append one decision to the audit store now; returns it as stored."""
        record = HealRecord(
            cycle_id=self.cycle_id,
            model_name=self.model_name,
            at=self.now,
            step=step,
            outcome=outcome,
            reason=reason,
            champion_version=champion,
            challenger_version=challenger,
            evidence=json_safe(dict(evidence or {})),
            mlflow_run_id=self.run_id,
        )
        stored = self.audit.append(record)
        self.records.append(stored)
        return stored
