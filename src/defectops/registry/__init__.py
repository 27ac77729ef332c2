"""Experiment tracking, the model registry with an audited alias history, and the promotion gate.

- :mod:`defectops.registry.tracking`: where MLflow lives (embedded SQLite in the workspace by default, or any
  ``MLFLOW_TRACKING_URI``) and how a training run is logged.
- :mod:`defectops.registry.register`: the one path that logs and registers a trained model
  (:func:`register_trained_model`).
- :mod:`defectops.registry.registry`: register versions, move the ``challenger``/``champion`` aliases with an
  audit record for every move, load a model by alias, promote and roll back.
- :mod:`defectops.registry.gate`: the promotion gate (absolute floor for a first model; challenger vs champion
  on the same window afterwards) and its logged, replayable decision.
- :mod:`defectops.registry.audit`: the one append-only audit store (alias moves and heal cycle records).

MLflow and scikit-learn are heavy and the CLI must stay fast for ``--help``: the submodules import them
inside the functions that need them, so importing this package is cheap.
"""

from defectops.registry.audit import AuditEvent, AuditLog, HealRecord, HealStep, utc_iso
from defectops.registry.gate import GateCriteria, GateDecision, paired_bootstrap_auc_difference, replay_gate
from defectops.registry.register import Registration, register_trained_model
from defectops.registry.registry import (
    CHALLENGER,
    CHAMPION,
    LoadedModel,
    ModelRegistry,
    ModelVersionInfo,
    RegisteredModelInfo,
    champion_stack,
)
from defectops.registry.tracking import (
    TrackingConfig,
    TrainingRun,
    activate,
    ensure_experiment,
    log_training_run,
    mlflow_errors,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AuditEvent",
    "AuditLog",
    "GateCriteria",
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
    "ensure_experiment",
    "log_training_run",
    "mlflow_errors",
    "paired_bootstrap_auc_difference",
    "register_trained_model",
    "replay_gate",
    "utc_iso",
]
