"""A version's model card: what it learnt from, how it did held out and since it serves, why it was let in.

- **Training data**: the window of commit times and the label counts of its training reference snapshot
  (the rows it was fitted on, logged with the run), and the dataset fingerprint.
- **Held-out metrics**: the metrics logged with the training run (one time-aware held-out fold), with the
  95% bootstrap interval logged beside each (versions trained before intervals were logged show none).
- **Served performance with confidence intervals**: the version's served predictions whose labels have
  matured (by the monitoring window's precedence: own id, shadowed prediction, commit) and are dated after the
  version learnt its labels: a request for an older commit carries a label the version may have trained on,
  which is no evidence of how it does live (:func:`defectops.predlog.unlearnt`; how many were left out is
  said). 95% percentile bootstrap intervals (seeded, so the page is reproducible). Reviewer answers are not
  labels and are not used.
- **Calibration and effort-aware curves** on those same predictions.
- **Feature importance**: mean absolute contribution (TreeSHAP for tree models) over reference rows.
- **Gate evidence**: the audit events of its registration and promotion, and its gate tag.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from defectops.data import CHURN, LABEL, TIME
from defectops.predlog import unlearnt
from defectops.registry import AuditEvent
from defectops.serving.ui.models import Explainers, input_matrix, text_inputs
from defectops.serving.ui.overview import alias_event, part
from defectops.training import METRIC_KEYS, bound_names, effort_aware_score, evaluate_predictions

if TYPE_CHECKING:
    from defectops.serving.service import PredictionService

#: Reference rows the feature importance is averaged over.
IMPORTANCE_ROWS: Final = 500
#: Bootstrap resamples of the served metrics' intervals.
BOOTSTRAP: Final = 200
#: Served predictions read for a card (the newest; a window further back reads no faster).
SERVED_DAYS: Final = 365
CI_METRICS: Final = ("roc_auc", "pr_auc", "f1", "brier", "recall_at_20_effort")


def model_card(
    service: PredictionService, explainers: Explainers, version: int, now: datetime
) -> dict[str, Any]:
    manager = service.manager
    info = manager.registry.get_version(manager.model_name, version)  # NotFoundError: 404
    reference = explainers.reference(version)
    document: dict[str, Any] = {
        "generated_at": now.isoformat(),
        "model_name": manager.model_name,
        "version": version,
        "aliases": info.aliases,
        "created_at": info.created_at.isoformat() if info.created_at else None,
        "status": info.status,
        "gate": info.gate,
        "threshold": info.threshold,
        "run_id": info.run_id,
        "dataset_fingerprint": info.dataset_fingerprint,
        "registry": _registry_links(service, version, info.run_id),
        "held_out": {key: info.metrics.get(key) for key in METRIC_KEYS if key in info.metrics},
        "held_out_intervals": {
            key: [info.metrics[name] for name in bound_names(key)]
            for key in METRIC_KEYS
            if all(name in info.metrics for name in bound_names(key))
        },
        "training_data": _training_data(reference),
        "importance": part(lambda: _importance(explainers, version, reference)),
        "served": part(lambda: _served(service, version, now)),
        "gate_evidence": part(lambda: _gate_events(service, version)),
    }
    return document


def _registry_links(service: PredictionService, version: int, run_id: str | None) -> dict[str, Any]:
    config = service.manager.registry.config
    name = service.manager.model_name
    web = config.tracking_uri.rstrip("/") if config.tracking_uri.startswith(("http://", "https://")) else None
    return {
        "model_uri": f"models:/{name}/{version}",
        "tracking_uri": config.tracking_uri if web else "embedded (the workspace's MLflow database)",
        "version_url": f"{web}/#/models/{name}/versions/{version}" if web else None,
        "run_url": f"{web}/#/runs/{run_id}" if web and run_id else None,
        "browse": None if web else "defectops ui (MLflow's web UI over the workspace registry)",
    }


def _training_data(reference: pd.DataFrame | None) -> dict[str, Any] | None:
    if reference is None:
        return None
    document: dict[str, Any] = {"rows": len(reference)}
    if TIME in reference.columns:
        times = pd.to_datetime(reference[TIME], utc=True, errors="coerce").dropna()
        if len(times):
            document["since"] = times.min().isoformat()
            document["until"] = times.max().isoformat()
    if LABEL in reference.columns:
        labels = reference[LABEL].dropna()
        document["defect_inducing"] = int((labels == 1).sum())
        document["clean"] = int((labels == 0).sum())
        document["base_rate"] = float((labels == 1).mean()) if len(labels) else None
    return document


def _importance(explainers: Explainers, version: int, reference: pd.DataFrame | None) -> list[dict[str, Any]]:
    if reference is None:
        return []
    model = explainers.model(version)
    rows: list[dict[str, object]] = [
        {str(key): value for key, value in row.items()}
        for row in reference.head(IMPORTANCE_ROWS).to_dict("records")
    ]
    matrix = input_matrix(model, rows)
    complete = ~np.isnan(matrix).any(axis=1)
    if not complete.any():
        return []
    kept = [row for row, ok in zip(rows, complete, strict=True) if ok]
    scores = model.score(matrix[complete], text_inputs(model, kept), len(model.features))
    totals: dict[str, float] = {}
    for reasons in scores.reasons:
        for reason in reasons:
            totals[str(reason["feature"])] = totals.get(str(reason["feature"]), 0.0) + abs(
                float(reason["contribution"])
            )
    n = int(complete.sum())
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [{"feature": feature, "mean_abs_contribution": total / n} for feature, total in ranked]


def _served(service: PredictionService, version: int, now: datetime) -> dict[str, Any]:
    name = service.manager.model_name
    since, until = now - timedelta(days=SERVED_DAYS), now + timedelta(seconds=1)
    labelled = service.log.joined(since, until, model_name=name, model_version=str(version), served=True)
    learnt = service.manager.registry.labels_learnt_at(name, version)
    frame = unlearnt(labelled, learnt)
    document: dict[str, Any] = {
        "n_matured": len(frame),
        # Labels of requests for older commits that the version had trained on (module docstring).
        "known_when_trained": len(labelled) - len(frame),
        "labels_learnt_at": learnt.isoformat() if learnt is not None else None,
    }
    if len(frame):
        document["label_sources"] = {str(k): int(v) for k, v in frame["label_source"].value_counts().items()}
    labels = frame[LABEL].astype("float64").to_numpy() if len(frame) else np.array([])
    if len(frame) < 10 or labels.min(initial=1.0) == labels.max(initial=0.0):
        document["note"] = "fewer than 10 matured labels, or only one class: no metrics yet"
        return document
    scores = frame["score"].to_numpy(dtype=np.float64)
    effort = _effort(frame)
    threshold = float(frame["threshold"].iloc[-1])
    point = evaluate_predictions(labels, scores, effort, threshold=threshold).metrics()
    rng = np.random.default_rng(0)
    draws: dict[str, list[float]] = {key: [] for key in CI_METRICS}
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(labels), len(labels))
        if labels[pick].min() == labels[pick].max():
            continue
        sample = evaluate_predictions(labels[pick], scores[pick], effort[pick], threshold=threshold).metrics()
        for key in CI_METRICS:
            if np.isfinite(sample[key]):
                draws[key].append(sample[key])
    document["metrics"] = [
        {
            "metric": key,
            "value": point[key] if np.isfinite(point[key]) else None,
            "low": float(np.quantile(draws[key], 0.025)) if len(draws[key]) >= 20 else None,
            "high": float(np.quantile(draws[key], 0.975)) if len(draws[key]) >= 20 else None,
        }
        for key in CI_METRICS
    ]
    document["calibration"] = _calibration(labels, scores)
    document["effort_curve"] = _effort_curve(labels, scores, effort)
    return document


def _effort(frame: pd.DataFrame) -> np.ndarray:
    """Churn (lines added and deleted) as logged; ``la + ld`` where churn was not sent."""
    if CHURN in frame.columns and frame[CHURN].notna().all():
        return frame[CHURN].to_numpy(dtype=np.float64)
    la = frame["la"] if "la" in frame.columns else pd.Series(0.0, index=frame.index)
    ld = frame["ld"] if "ld" in frame.columns else pd.Series(0.0, index=frame.index)
    return (la.fillna(0.0) + ld.fillna(0.0)).to_numpy(dtype=np.float64)


def _calibration(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    index = np.minimum((scores * bins).astype(int), bins - 1)
    points = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            points.append(
                {
                    "bin": b,
                    "predicted": float(scores[mask].mean()),
                    "observed": float(labels[mask].mean()),
                    "n": int(mask.sum()),
                }
            )
    return points


def _effort_curve(
    labels: np.ndarray, scores: np.ndarray, effort: np.ndarray, points: int = 50
) -> dict[str, Any]:
    """Share of defect-inducing commits found against share of churn inspected, in the order the model
    ranks (risk per line), with the optimal order beside it."""

    def curve(order: np.ndarray) -> list[list[float]]:
        cost = np.cumsum(np.maximum(effort[order], 0.0))
        found = np.cumsum(labels[order])
        cost_share = cost / cost[-1] if cost[-1] > 0 else np.linspace(0, 1, len(order))
        found_share = found / found[-1] if found[-1] > 0 else found
        keep = np.unique(np.linspace(0, len(order) - 1, min(points, len(order))).astype(int))
        return [[0.0, 0.0], *[[float(cost_share[i]), float(found_share[i])] for i in keep]]

    ranked = np.argsort(-effort_aware_score(scores, effort), kind="stable")
    optimal = np.lexsort((np.maximum(effort, 1.0), -labels))
    return {"model": curve(ranked), "optimal": curve(optimal)}


def _gate_events(service: PredictionService, version: int) -> list[dict[str, Any]]:
    registry = service.manager.registry
    events = registry.audit.events(AuditEvent, service.manager.model_name, registry=registry.registry_key)
    return [
        alias_event(event) for event in events if event.to_version == version or event.from_version == version
    ]


__all__ = ["model_card"]
