"""Experiment tracking, the model registry with an audited alias history, and the promotion gate.

- :mod:`defectops.registry.tracking`: where MLflow lives (embedded SQLite in the workspace by default, or any
  ``MLFLOW_TRACKING_URI``), how a training run is logged, and the one path that logs and registers a trained
  model (:func:`register_trained_model`).
- :mod:`defectops.registry.registry`: register versions, move the ``challenger``/``champion`` aliases with an
  audit record for every move, load a model by alias, promote and roll back. Its read side (listing,
  history, loading) is in :mod:`defectops.registry.reading`, loading an artifact with its metadata in
  :mod:`defectops.registry.loading`, the listed records, alias names and tags in
  :mod:`defectops.registry.records`.
- :mod:`defectops.registry.gate`: the promotion gate (absolute floor for a first model; challenger vs champion
  on the same window afterwards) and its logged, replayable decision.
- :mod:`defectops.registry.audit`: the one append-only audit store (alias moves and heal cycle records).

MLflow and scikit-learn are heavy and the CLI must stay fast for ``--help``: the submodules import them
inside the functions that need them, so importing this package is cheap.
"""

from defectops.registry.audit import AuditEvent, AuditLog, HealRecord, HealStep, utc_iso
from defectops.registry.gate import GateDecision, paired_bootstrap_auc_difference, replay_gate
from defectops.registry.loading import LoadedModel
from defectops.registry.records import (
    CHALLENGER,
    CHAMPION,
    CROSS_PROJECT,
    TAG_ORIGIN,
    ModelVersionInfo,
    RegisteredModelInfo,
    choose_model_name,
)
from defectops.registry.registry import ModelRegistry, champion_stack
from defectops.registry.runs import Registration, TrainingRun, log_training_run, register_trained_model
from defectops.registry.tracking import TrackingConfig, activate, ensure_experiment, mlflow_errors

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "CROSS_PROJECT",
    "TAG_ORIGIN",
    "AuditEvent",
    "AuditLog",
    "GateDecision",
    "HealRecord",
    "HealStep",
    "LoadedModel",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegisteredModelInfo",
    "Registration",
    "TrackingConfig",
    "TrainingRun",
    "activate",
    "champion_stack",
    "choose_model_name",
    "ensure_experiment",
    "log_training_run",
    "mlflow_errors",
    "paired_bootstrap_auc_difference",
    "register_trained_model",
    "replay_gate",
    "utc_iso",
]
