"""The self-healing loop's rules: when to train a challenger, and when to roll a new champion back.

Why separate from the orchestration (:mod:`defectops.pipeline.heal`): a rule is a pure function of a few
numbers, so every verdict can be stored with exactly those numbers and recomputed later (replay), and each
rule can be tested with hand-worked arithmetic. Thresholds live in one settings model (:class:`HealSettings`,
environment ``DEFECTOPS_HEAL_*``; the gate's criteria nested under ``DEFECTOPS_HEAL_GATE__*``).

Train a challenger when any trigger fires and nothing blocks it:

- ``drift``: the monitoring of the recent window found drift (any check; see docs/monitoring.md) in
  ``drift_confirmations`` monitored windows of the champion in a row;
- ``roc_auc_drop``: on at least ``min_matured_labels`` matured labels of the window, realized ROC-AUC is
  below the champion's held-out ROC-AUC at training time by more than ``max_roc_auc_drop``;
- ``f1_drop``: likewise F1, by more than ``max_f1_relative_drop`` of the training-time value;
- ``new_labels``: at least ``min_new_labels`` labels became known since the champion was trained.

Blocked when a challenger is already in shadow (one experiment at a time: its gate would otherwise compare
against a moving target), or when the last challenger was registered less than
``min_days_between_challengers`` ago (a persisting drift would otherwise retrain every cycle).

Roll back a champion promoted within ``watch_days`` when, on at least ``rollback_min_labels`` matured labels
of the requests it served, both models scored on the same rows (its logged scores, and the previous
champion's scores on the logged inputs) show a ROC-AUC drop larger than ``rollback_max_roc_auc_drop`` whose
paired bootstrap interval lies entirely below zero, or a Brier score worse by more than
``rollback_max_brier_increase``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from defectops.errors import InputError
from defectops.registry import GateCriteria, paired_bootstrap_auc_difference

FloatArray = npt.NDArray[np.float64]
GateSource = Literal["shadow", "offline"]


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


# ----------------------------------------------------------------------------------------------------------
# Training decision


class Realized(BaseModel):
    """The champion's realized performance on the matured part of the monitored window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_matured: int
    n_positive: int
    roc_auc: float | None
    f1: float | None
    brier: float | None


class DecideInputs(BaseModel):
    """Everything the training decision looks at (stored as its evidence, so it can be replayed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    champion_version: int
    pending_challenger: int | None = None
    monitored: bool = False
    drift: bool = False
    drift_reasons: list[str] = Field(default_factory=list)
    previous_drift: list[bool] = Field(
        default_factory=list, description="Earlier monitored windows of this champion (oldest first): drift?"
    )
    realized: Realized | None = None
    baseline_roc_auc: float | None = None
    baseline_f1: float | None = None
    new_labels: int = 0
    days_since_last_challenger: float | None = None


class Trigger(BaseModel):
    """One rule: whether it fired, on which value against which threshold, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["drift", "roc_auc_drop", "f1_drop", "new_labels"]
    fired: bool
    value: float | None
    threshold: float | None
    reason: str


class Decision(BaseModel):
    """The training decision: ``retrain`` when a trigger fired and nothing blocked it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retrain: bool
    reason: str
    triggers: list[Trigger]
    blocked_by: str | None

    @property
    def fired(self) -> list[str]:
        return [t.name for t in self.triggers if t.fired]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def decide(inputs: DecideInputs, settings: HealSettings) -> Decision:
    """Apply the training rules (module docstring) to ``inputs``."""
    triggers: list[Trigger] = []
    if not inputs.monitored:
        triggers.append(
            Trigger(
                name="drift", fired=False, value=None, threshold=None, reason="the window was not monitored"
            )
        )
    else:
        needed = settings.drift_confirmations
        in_a_row = 0  # drifting windows in a row, ending with this one
        for state in reversed([*inputs.previous_drift, inputs.drift]):
            if not state:
                break
            in_a_row += 1
        confirmed = in_a_row >= needed
        fired = confirmed and settings.retrain_on_drift
        shown = "; ".join(inputs.drift_reasons[:5])
        if not inputs.drift:
            reason = "no drift in the window"
        elif not confirmed:
            reason = f"drift in {in_a_row} window(s) in a row, {needed} needed to act: {shown}"
        elif not fired:
            reason = f"drift ({shown}), but retrain_on_drift is off"
        else:
            reason = f"drift in {in_a_row} window(s) in a row: {shown}"
        triggers.append(
            Trigger(
                name="drift",
                fired=fired,
                value=float(in_a_row),
                threshold=float(needed),
                reason=reason,
            )
        )
    triggers.extend(_performance_triggers(inputs, settings))
    triggers.append(
        Trigger(
            name="new_labels",
            fired=inputs.new_labels >= settings.min_new_labels,
            value=float(inputs.new_labels),
            threshold=float(settings.min_new_labels),
            reason=f"{inputs.new_labels} labels became known since the champion was trained "
            f"({'>=' if inputs.new_labels >= settings.min_new_labels else '<'} {settings.min_new_labels})",
        )
    )
    fired_names = [t.name for t in triggers if t.fired]
    blocked: str | None = None
    if inputs.pending_challenger is not None:
        blocked = f"challenger v{inputs.pending_challenger} is still in shadow; its gate comes first"
    elif (
        inputs.days_since_last_challenger is not None
        and inputs.days_since_last_challenger < settings.min_days_between_challengers
    ):
        blocked = (
            f"the last challenger was registered {inputs.days_since_last_challenger:.1f} days ago "
            f"(< {settings.min_days_between_challengers:g})"
        )
    if not fired_names:
        return Decision(retrain=False, reason="no trigger fired", triggers=triggers, blocked_by=None)
    if blocked is not None:
        return Decision(
            retrain=False,
            reason=f"{', '.join(fired_names)} fired but {blocked}",
            triggers=triggers,
            blocked_by=blocked,
        )
    return Decision(
        retrain=True,
        reason=f"train a challenger: {', '.join(fired_names)}",
        triggers=triggers,
        blocked_by=None,
    )


def _performance_triggers(inputs: DecideInputs, settings: HealSettings) -> list[Trigger]:
    realized = inputs.realized
    if realized is None or realized.n_matured < settings.min_matured_labels:
        have = 0 if realized is None else realized.n_matured
        why = f"{have} matured labels in the window (< {settings.min_matured_labels}): not judged"
        return [
            Trigger(
                name="roc_auc_drop", fired=False, value=None, threshold=settings.max_roc_auc_drop, reason=why
            ),
            Trigger(
                name="f1_drop", fired=False, value=None, threshold=settings.max_f1_relative_drop, reason=why
            ),
        ]
    out: list[Trigger] = []
    baseline_auc, auc = _finite(inputs.baseline_roc_auc), _finite(realized.roc_auc)
    if baseline_auc is None or auc is None:
        missing = "no training-time ROC-AUC" if baseline_auc is None else "one class among the matured labels"
        out.append(
            Trigger(
                name="roc_auc_drop",
                fired=False,
                value=None,
                threshold=settings.max_roc_auc_drop,
                reason=f"{missing}: not judged",
            )
        )
    else:
        drop = baseline_auc - auc
        fired = drop > settings.max_roc_auc_drop
        out.append(
            Trigger(
                name="roc_auc_drop",
                fired=fired,
                value=drop,
                threshold=settings.max_roc_auc_drop,
                reason=f"realized ROC-AUC {auc:.4f} vs {baseline_auc:.4f} at training: drop {drop:.4f} "
                f"{'>' if fired else '<='} {settings.max_roc_auc_drop:g} ({realized.n_matured} labels)",
            )
        )
    baseline_f1, f1 = _finite(inputs.baseline_f1), _finite(realized.f1)
    if baseline_f1 is None or f1 is None or baseline_f1 <= 0:
        out.append(
            Trigger(
                name="f1_drop",
                fired=False,
                value=None,
                threshold=settings.max_f1_relative_drop,
                reason="no positive training-time F1 or no realized F1: not judged",
            )
        )
    else:
        relative = (baseline_f1 - f1) / baseline_f1
        fired = relative > settings.max_f1_relative_drop
        out.append(
            Trigger(
                name="f1_drop",
                fired=fired,
                value=relative,
                threshold=settings.max_f1_relative_drop,
                reason=f"realized F1 {f1:.4f} vs {baseline_f1:.4f} at training: relative drop {relative:.4f} "
                f"{'>' if fired else '<='} {settings.max_f1_relative_drop:g}",
            )
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# Rollback decision


class ScoresOf(BaseModel):
    """One model's metrics on the watched rows (ROC-AUC None with one class)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    roc_auc: float | None
    brier: float
    f1: float
    threshold: float


class RollbackCheck(BaseModel):
    """The verdict on a newly promoted champion: ``rollback``, or keep watching (``ready`` False: too few
    labels yet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int
    n_positive: int
    ready: bool
    rollback: bool
    reason: str
    current: ScoresOf | None
    previous: ScoresOf | None
    roc_auc_drop: float | None
    brier_increase: float | None
    ci_lower: float | None
    ci_upper: float | None


def _scores_of(version: int, y: npt.NDArray[np.int8], scores: FloatArray, threshold: float) -> ScoresOf:
    from sklearn.metrics import brier_score_loss, f1_score, roc_auc_score

    both = 0 < int(y.sum()) < len(y)
    return ScoresOf(
        version=version,
        roc_auc=float(roc_auc_score(y, scores)) if both else None,
        brier=float(brier_score_loss(y, scores)),
        f1=float(f1_score(y, (scores >= threshold).astype(np.int8), zero_division=0.0)),
        threshold=threshold,
    )


def rollback_check(
    y_true: npt.ArrayLike,
    current_scores: npt.ArrayLike,
    previous_scores: npt.ArrayLike,
    *,
    current_version: int,
    previous_version: int,
    current_threshold: float,
    previous_threshold: float,
    settings: HealSettings,
) -> RollbackCheck:
    """Judge a new champion against the previous one on the same matured rows (module docstring)."""
    y = np.asarray(y_true, dtype=np.float64)
    current = np.asarray(current_scores, dtype=np.float64)
    previous = np.asarray(previous_scores, dtype=np.float64)
    if y.ndim != 1 or current.shape != y.shape or previous.shape != y.shape:
        raise InputError("rollback_check needs one label and two scores per row")
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputError("rollback_check needs matured 0/1 labels only")
    labels = y.astype(np.int8)
    n, n_pos = len(labels), int(labels.sum())
    empty = {
        "current": None,
        "previous": None,
        "roc_auc_drop": None,
        "brier_increase": None,
        "ci_lower": None,
        "ci_upper": None,
    }
    if n < settings.rollback_min_labels:
        return RollbackCheck(
            n=n,
            n_positive=n_pos,
            ready=False,
            rollback=False,
            reason=f"{n} matured labels of served requests (< {settings.rollback_min_labels}): keep watching",
            **empty,
        )
    if n_pos in (0, n):
        return RollbackCheck(
            n=n,
            n_positive=n_pos,
            ready=False,
            rollback=False,
            reason=f"the {n} matured labels are all of one class: keep watching",
            **empty,
        )
    now_scores = _scores_of(current_version, labels, current, current_threshold)
    before = _scores_of(previous_version, labels, previous, previous_threshold)
    if now_scores.roc_auc is None or before.roc_auc is None:  # pragma: no cover - both classes checked above
        raise InputError("ROC-AUC undefined with both classes present")
    drop = before.roc_auc - now_scores.roc_auc
    brier_increase = now_scores.brier - before.brier
    interval = paired_bootstrap_auc_difference(
        labels,
        current,
        previous,
        resamples=settings.rollback_resamples,
        confidence=settings.rollback_confidence,
        seed=settings.seed,
    )
    significant = interval.upper is not None and interval.upper < 0.0
    auc_bad = drop > settings.rollback_max_roc_auc_drop and significant
    brier_bad = brier_increase > settings.rollback_max_brier_increase
    parts = [
        f"ROC-AUC v{current_version} {now_scores.roc_auc:.4f} vs v{previous_version} {before.roc_auc:.4f} "
        f"(drop {drop:.4f}, {round(settings.rollback_confidence * 100)}% CI of the difference "
        + (
            f"[{interval.lower:.4f}, {interval.upper:.4f}])"
            if interval.lower is not None and interval.upper is not None
            else "undefined)"
        ),
        f"Brier {now_scores.brier:.4f} vs {before.brier:.4f} (increase {brier_increase:.4f})",
    ]
    verdict = "roll back" if (auc_bad or brier_bad) else "keep"
    return RollbackCheck(
        n=n,
        n_positive=n_pos,
        ready=True,
        rollback=auc_bad or brier_bad,
        reason=f"{verdict}: " + "; ".join(parts) + f" on {n} matured labels",
        current=now_scores,
        previous=before,
        roc_auc_drop=drop,
        brier_increase=brier_increase,
        ci_lower=interval.lower,
        ci_upper=interval.upper,
    )
