"""Every threshold of the self-healing loop, in one settings model (environment ``DEFECTOPS_HEAL_*``; the
gate's criteria nested under ``DEFECTOPS_HEAL_GATE__*``).

A pydantic settings model (the loop's configuration is an I/O boundary); the rules that read it are in
:mod:`defectops.pipeline.heal.decide` (when to train a challenger) and :mod:`defectops.pipeline.heal.watch`
(when to roll a new champion back). Each stored decision keeps the settings it was made with, so it can be
replayed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GateSource = Literal["shadow", "offline"]


class GateCriteria(BaseModel):
    """Configurable promotion criteria; ``None`` switches a comparison criterion off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_model_min_roc_auc: float = Field(
        0.65, ge=0.0, le=1.0, description="First model: ROC-AUC floor on the time-ordered test window."
    )
    first_model_min_labels: int = Field(
        50, ge=1, description="First model: labelled rows the test window needs to judge anything."
    )
    min_labels: int = Field(200, ge=1, description="Challenger vs champion: matured labels in the window.")
    roc_auc_tolerance: float | None = Field(
        0.0, ge=0.0, description="Challenger ROC-AUC may be below the champion's by at most this."
    )
    f1_min_relative_gain: float | None = Field(
        0.02, ge=-1.0, description="(F1_challenger - F1_champion) / F1_champion must reach this."
    )
    brier_max_increase: float | None = Field(
        0.01, ge=0.0, description="Brier_challenger - Brier_champion may be at most this."
    )
    roc_auc_ci_margin: float | None = Field(
        0.0,
        ge=0.0,
        description="Lower end of the bootstrap interval of the ROC-AUC difference must be >= -margin.",
    )
    bootstrap_resamples: int = Field(1000, ge=100, le=100_000)
    bootstrap_confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = Field(0, ge=0, description="Seed of the bootstrap generator (decisions are reproducible).")


class HealSettings(BaseSettings):
    """Every threshold of the self-healing loop (environment prefix ``DEFECTOPS_HEAL_``)."""

    model_config = SettingsConfigDict(
        env_prefix="DEFECTOPS_HEAL_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    # --- the monitored window -----------------------------------------------------------------------------
    window_days: float = Field(
        30.0, gt=0, description="The monitored window: served predictions of the champion in the last N days."
    )
    min_window_predictions: int = Field(
        100, ge=1, description="Fewer served predictions in the window: monitoring is skipped (recorded)."
    )
    reference_days: float | None = Field(
        90.0,
        gt=0,
        description="The window is compared with the champion's training commits of this many days before "
        "its last waiting period (None: the whole snapshot). A model trained on years of history would "
        "otherwise be compared with all of them, and a recent window always differs from those: drift "
        "every cycle, even right after a retrain.",
    )
    min_reference_rows: int = Field(
        200, ge=2, description="The reference takes at least this many of the latest eligible rows."
    )

    # --- when to train a challenger -----------------------------------------------------------------------
    retrain_on_drift: bool = Field(True, description="A drifting window triggers a challenger.")
    drift_confirmations: int = Field(
        2,
        ge=1,
        description="Drift must be found in this many monitored windows of the champion in a row before it "
        "triggers: single windows raised false alarms in 5.2% of drift-free windows, two in a row in 0.8% "
        "(docs/self-healing.md), and a needless challenger occupies the shadow for weeks.",
    )
    min_matured_labels: int = Field(
        100, ge=1, description="Matured labels the window needs before realized performance is judged."
    )
    max_roc_auc_drop: float = Field(
        0.05, ge=0, description="Realized ROC-AUC this far below the training-time value triggers."
    )
    max_f1_relative_drop: float = Field(
        0.2, ge=0, description="Realized F1 this share below the training-time value triggers."
    )
    min_new_labels: int = Field(
        200, ge=1, description="Labels that became known since the champion was trained; this many triggers."
    )
    min_days_between_challengers: float = Field(
        7.0, ge=0, description="No new challenger within this many days of the previous one."
    )

    feedback_lookback_days: float = Field(
        30.0,
        ge=0,
        description="With --feedback-repo, labels dated up to this many days before the previous cycle are "
        "sent again (the log ignores duplicates): a label is dated by its fix commit, and a fix pushed late "
        "carries an older date than the cycle that first sees it.",
    )

    # --- training -----------------------------------------------------------------------------------------
    model_kind: str | None = Field(
        None, description="Model kind of challengers (default: the champion's own kind)."
    )
    budget_seconds: float = Field(60.0, ge=0, description="Hyperparameter search budget per challenger.")
    seed: int = Field(0, ge=0, description="Seed of training and of the bootstraps.")
    min_labelled: int = Field(100, ge=1, description="Labelled commits a challenger needs to be trained.")
    min_new_labelled: int = Field(
        50,
        ge=1,
        description="Labelled commits since the champion was trained for a held-out window both never saw.",
    )
    screen_max_roc_auc_drop: float | None = Field(
        0.05,
        ge=0,
        description="Offline screen: a challenger whose held-out ROC-AUC (commits since the champion was "
        "trained) is below the champion's on the same commits by more than this is archived at once, "
        "without a shadow run. None: no screen.",
    )

    # --- shadow and gate ----------------------------------------------------------------------------------
    gate_on: GateSource = Field(
        "shadow",
        description="'shadow': gate on live requests scored by both models (needs the service); 'offline': "
        "gate at once on the held-out commits since the champion was trained (no service needed).",
    )
    shadow_share: float = Field(
        1.0, gt=0, le=1, description="Share of requests the challenger scores in the shadow."
    )
    max_shadow_days: float = Field(
        90.0, gt=0, description="A challenger without enough matured shadow labels after this is archived."
    )
    gate: GateCriteria = Field(default_factory=GateCriteria, description="Promotion gate criteria.")

    # --- watching a new champion --------------------------------------------------------------------------
    watch_days: float = Field(60.0, ge=0, description="How long a new champion is watched for rollback.")
    rollback_min_labels: int = Field(
        100, ge=2, description="Matured labels of its served requests before a new champion is judged."
    )
    rollback_max_roc_auc_drop: float = Field(
        0.02, ge=0, description="ROC-AUC drop versus the previous champion (and significant) that rolls back."
    )
    rollback_max_brier_increase: float = Field(
        0.02, ge=0, description="Brier increase versus the previous champion that rolls back."
    )
    rollback_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence of the paired bootstrap interval of the ROC-AUC drop."
    )
    rollback_resamples: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples.")

    # --- where heal records its cycles --------------------------------------------------------------------
    audit_db_url: str | None = Field(
        None, description="SQLAlchemy URL of heal's audit history (default: the registry's audit database)."
    )
