"""The one path from a trained model to the registry: log its training run, register it as challenger.

``defectops train --register``, the main job (``defectops run``) and the heal loop all register through
:func:`register_trained_model`, so a model is logged the same way (reference snapshot, parameters, metrics,
threshold, tags) whoever trained it, and every registration is audited with its metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from defectops.registry.registry import ModelRegistry, ModelVersionInfo
from defectops.registry.tracking import TrainingRun, log_training_run

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Registration:
    """A trained model logged (``run``) and registered as the new challenger (``version``)."""

    run: TrainingRun
    version: ModelVersionInfo


def register_trained_model(
    registry: ModelRegistry,
    name: str,
    model: Any,
    *,
    features: Sequence[str],
    table: pd.DataFrame,
    metrics: Mapping[str, float],
    dataset_fingerprint: str | Mapping[str, Any],
    now: datetime,
    who: str,
    why: str,
    job: str,
    run_name: str | None = None,
    plots: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> Registration:
    """Log a trained model's run and register it as ``challenger``: the one path from a trained model to the
    registry (``defectops train --register``, the main job ``defectops run`` and the heal loop).

    The run logs the model (with its own ``threshold_`` and parameters), ``metrics``, the dataset
    fingerprint, ``plots``, and as reference snapshot the rows of ``table`` it learnt from (its features,
    effort, label and time). The registration is audited (``register``) with the finite ``metrics`` and
    ``evidence``; promotion stays a separate, gated step. ``run_name`` defaults to ``"<job> <now>"``.
    """
    from defectops.data import EFFORT, LABEL, TIME

    feature_list = list(features)
    run = log_training_run(
        model,
        features=feature_list,
        reference=table[[*feature_list, EFFORT, LABEL, TIME]],
        params={k: v for k, v in model.get_params(deep=False).items() if k != "features"},
        metrics=metrics,
        dataset_fingerprint=dataset_fingerprint,
        config=registry.config,
        threshold=float(model.threshold_),
        plots=dict(plots or {}),
        tags={"defectops.kind": str(model.kind), "defectops.job": job},
        run_name=run_name or f"{job} {now:%Y-%m-%d %H:%M}",
    )
    version = registry.register(
        name,
        run.model_uri,
        who=who,
        why=why,
        now=now,
        # NaN (e.g. ROC-AUC of a one-class window) is not JSON: the audit record leaves such metrics out
        evidence={
            "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
            **dict(evidence or {}),
        },
    )
    return Registration(run=run, version=version)
