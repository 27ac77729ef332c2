"""The overview document: what serves, the versions and their alias history, the last cycles, the traffic.

Built from the deployment this worker holds, the registry (versions, audit history), the heal audit store
(the last cycles), the prediction log (predictions per hour, an indexed count) and this worker's latency
histogram. Each part that cannot be read (e.g. a model not registered yet) is reported as an ``error`` of
that part rather than failing the page: an operator opens the overview precisely when something is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from defectops.errors import DefectOpsError
from defectops.registry import AuditEvent, AuditLog, HealRecord
from defectops.training import cut_text

if TYPE_CHECKING:
    from defectops.serving.service import PredictionService

#: Hours of predictions per hour on the overview.
RATE_HOURS: Final = 24
#: Alias moves listed, newest first.
HISTORY_EVENTS: Final = 50
#: Heal records read to find the last cycles.
HEAL_RECORDS: Final = 80


def part(build: Callable[[], Any]) -> Any:
    """A part of a document, or ``{"error": reason}`` when it cannot be read now."""
    try:
        return build()
    except DefectOpsError as exc:
        return {"error": str(exc)}


def heal_audit(service: PredictionService) -> AuditLog:
    """The audit store the heal loop writes its cycle records to (as :class:`defectops.pipeline.Healer`)."""
    url = service.settings.heal.audit_db_url or service.manager.registry.config.audit_url
    return AuditLog(url)


def alias_event(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "alias": event.alias,
        "action": event.action,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "who": event.who,
        "why": event.why,
        "evidence": event.evidence,
    }


def heal_record(record: HealRecord, *, evidence: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": record.id,
        "cycle_id": record.cycle_id,
        "at": record.at.isoformat(),
        "step": record.step,
        "outcome": record.outcome,
        "reason": record.reason,
        "champion_version": record.champion_version,
        "challenger_version": record.challenger_version,
        "mlflow_run_id": record.mlflow_run_id,
    }
    if evidence:
        document["evidence"] = record.evidence
    return document


def cycles(records: list[HealRecord], count: int) -> list[dict[str, Any]]:
    """The newest ``count`` cycles, newest first, each with its steps in order."""
    grouped: dict[str, list[HealRecord]] = {}
    for record in records:
        grouped.setdefault(record.cycle_id, []).append(record)
    ordered = sorted(grouped.values(), key=lambda steps: steps[0].id or 0, reverse=True)[:count]
    return [
        {
            "cycle_id": steps[0].cycle_id,
            "at": steps[0].at.isoformat(),
            "steps": [heal_record(step, evidence=False) for step in steps],
        }
        for steps in ordered
    ]


def versions(service: PredictionService) -> list[dict[str, Any]]:
    manager = service.manager
    return [
        {
            "version": info.version,
            "aliases": info.aliases,
            "created_at": info.created_at.isoformat() if info.created_at else None,
            "status": info.status,
            "gate": info.gate,
            "dataset_fingerprint": info.dataset_fingerprint,
            "roc_auc": info.metrics.get("roc_auc"),
            "pr_auc": info.metrics.get("pr_auc"),
        }
        for info in manager.registry.list_versions(manager.model_name, with_metrics=True)
    ]


def alias_history(service: PredictionService) -> list[dict[str, Any]]:
    registry = service.manager.registry
    events = registry.audit.latest(
        AuditEvent, service.manager.model_name, HISTORY_EVENTS, registry=registry.registry_key
    )
    return [alias_event(event) for event in reversed(events)]


def last_cycles(service: PredictionService) -> dict[str, Any]:
    audit = heal_audit(service)
    name = service.manager.model_name
    records = audit.latest(HealRecord, name, HEAL_RECORDS)
    monitor = audit.latest(HealRecord, name, 1, step="monitor")
    return {
        "cycles": cycles(records, 3),
        "last_monitor": heal_record(monitor[0]) if monitor else None,
    }


def traffic(service: PredictionService, now: datetime) -> dict[str, Any]:
    """Predictions per hour of the last day (from the log) and request latency (this worker, since start)."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    edges = [end - timedelta(hours=RATE_HOURS - i) for i in range(RATE_HOURS + 1)]
    served = service.log.count_between(edges, served=True)
    shadow = service.log.count_between(edges, served=False)
    return {
        "hours": [edge.isoformat() for edge in edges[:-1]],
        "served_per_hour": served,
        "shadow_per_hour": shadow,
        "latency": latency(service),
    }


def latency(service: PredictionService) -> list[dict[str, Any]]:
    """Per route: requests, mean and the 50th/95th percentiles interpolated in the histogram's buckets."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    sums: dict[tuple[str, str], float] = {}
    for metric in service.metrics.latency.collect():
        for sample in metric.samples:
            key = (sample.labels.get("method", ""), sample.labels.get("route", ""))
            if sample.name.endswith("_bucket"):
                buckets.setdefault(key, []).append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name.endswith("_sum"):
                sums[key] = float(sample.value)
    rows = []
    for (method, route), cumulative in buckets.items():
        cumulative.sort()
        count = cumulative[-1][1] if cumulative else 0.0
        if not count:
            continue
        rows.append(
            {
                "method": method,
                "route": route,
                "requests": int(count),
                "mean_ms": 1000.0 * sums.get((method, route), 0.0) / count,
                "p50_ms": _quantile(cumulative, count, 0.5),
                "p95_ms": _quantile(cumulative, count, 0.95),
            }
        )
    return sorted(rows, key=lambda row: -int(row["requests"]))


def _quantile(cumulative: list[tuple[float, float]], count: float, q: float) -> float | None:
    """Prometheus' ``histogram_quantile``: linear within the bucket the rank falls in (ms)."""
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, seen in cumulative:
        if seen >= rank:
            if math.isinf(bound):
                return 1000.0 * lower_bound
            share = (rank - lower_count) / (seen - lower_count) if seen > lower_count else 1.0
            return 1000.0 * (lower_bound + (bound - lower_bound) * share)
        lower_bound, lower_count = bound, seen
    return None


def overview(service: PredictionService, now: datetime) -> dict[str, Any]:
    """The overview page's document."""
    from defectops.serving.routers.models import describe

    serving = describe(service).model_dump(mode="json")
    for role in ("champion", "challenger"):
        model = serving.get(role)
        if isinstance(model, dict):  # the cuts as every surface shows them (defectops.training.cut_text)
            bands = model["risk_bands"]
            bands["shown"] = {band: cut_text(bands[band]) for band in ("low", "medium", "high")}
    return {
        "generated_at": now.isoformat(),
        "model_name": service.manager.model_name,
        "serving": serving,
        "versions": part(lambda: versions(service)),
        "alias_history": part(lambda: alias_history(service)),
        "heal": part(lambda: last_cycles(service)),
        "traffic": traffic(service, now),
    }
