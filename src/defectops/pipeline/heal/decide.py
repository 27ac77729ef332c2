"""Step 5, decide: whether to train a challenger, from drift, realized performance and new labels.

Why the rule is a pure function (:func:`decide`) apart from the step that gathers its inputs: every verdict
is stored with exactly the numbers it rests on (:class:`DecideInputs` and the settings) and can be
recomputed later (replay), and the rule can be tested with hand-worked arithmetic. Thresholds are in
:class:`~defectops.config.HealSettings`.

Train a challenger when any trigger fires and nothing blocks it:

- ``drift``: the monitoring of the recent window raised an alarm (performance below the baseline, the score
  moving, or many features drifting at once; drift of a few features is diagnosis only, see
  docs/monitoring.md) in ``drift_confirmations`` monitored windows of the champion in a row;
- ``roc_auc_drop``: on at least ``min_matured_labels`` matured labels of the window, realized ROC-AUC is
  below the champion's held-out ROC-AUC at training time by more than ``max_roc_auc_drop``;
- ``f1_drop``: likewise F1, by more than ``max_f1_relative_drop`` of the training-time value;
- ``new_labels``: at least ``min_new_labels`` labels became known since the champion was trained (for the
  cross-project starter, which learnt no label of the repository: every label known now).

Blocked when a challenger is already in shadow (one experiment at a time: its gate would otherwise compare
against a moving target), or when the last challenger was registered less than
``min_days_between_challengers`` ago (a persisting drift would otherwise retrain every cycle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from defectops.config import HealSettings
from defectops.pipeline.heal.context import HealContext, days
from defectops.pipeline.heal.cycle import Cycle
from defectops.predlog import matured, unlearnt
from defectops.training import known_labels

if TYPE_CHECKING:
    from defectops.monitoring import MonitoringResult
    from defectops.pipeline.heal.sources import History


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
    champion_cross_project: bool = Field(
        default=False,
        description="The champion is the cross-project starter: every known label is new to it.",
    )
    days_since_last_challenger: float | None = None
    last_registered_version: int | None = Field(
        default=None, description="The version registered last (the champion itself when none came after it)."
    )


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
            reason = "no alarm in the window"
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
            reason=(
                f"{inputs.new_labels} labels of the repository are known, none of them learnt by the "
                "cross-project starter"
                if inputs.champion_cross_project
                else f"{inputs.new_labels} labels became known since the champion was trained"
            )
            + f" ({'>=' if inputs.new_labels >= settings.min_new_labels else '<'} {settings.min_new_labels})",
        )
    )
    fired_names = [t.name for t in triggers if t.fired]
    blocked: str | None = None
    if inputs.pending_challenger is not None:
        blocked = f"challenger v{inputs.pending_challenger} is still in shadow; its gate comes first"
    elif (
        inputs.days_since_last_challenger is not None
        and inputs.days_since_last_challenger < settings.min_days_between_challengers
        # The cool-down stops a persisting trigger from training a model every cycle; it does not hold
        # back the repository's first own model behind the starter's registration (the starter learnt
        # nothing from the repository).
        and not (
            inputs.champion_cross_project
            and inputs.last_registered_version in (None, inputs.champion_version)
        )
    ):
        which = (
            f"the champion v{inputs.champion_version} itself"
            if inputs.last_registered_version in (None, inputs.champion_version)
            else f"the last challenger v{inputs.last_registered_version}"
        )
        blocked = (
            f"{which} was registered {_age(inputs.days_since_last_challenger)} ago "
            f"(< {settings.min_days_between_challengers:g} days between models)"
        )
    if not fired_names:
        # Say how far the trigger every repository reaches in time is: "no trigger fired" alone left a user
        # watching a young repository grow with no idea what heal was waiting for.
        waiting = next(t.reason for t in triggers if t.name == "new_labels")
        return Decision(
            retrain=False, reason=f"no trigger fired; {waiting}", triggers=triggers, blocked_by=None
        )
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


def _age(days_ago: float) -> str:
    """A duration as people say it: "5 hours", "3.2 days" (never "0.0 days")."""
    if days_ago < 1:
        hours = days_ago * 24
        return f"{hours:.0f} hours" if hours >= 1 else f"{max(hours * 60, 1):.0f} minutes"
    return f"{days_ago:.1f} days"


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


@dataclass(frozen=True, slots=True)
class DecideResult:
    """The decide step: the rule's inputs as gathered, and its verdict."""

    inputs: DecideInputs
    decision: Decision


def decide_step(
    ctx: HealContext,
    cycle: Cycle,
    champion: int,
    pending: int | None,
    monitored: MonitoringResult | None,
    history: History | None,
) -> DecideResult:
    now = cycle.now
    trained = ctx.trained_at(champion)
    info = ctx.registry.get_version(ctx.model_name, champion)
    metrics = info.metrics
    # The starter never learnt this repository's labels (learnt None): those known before it was registered
    # (a young repository's history that grew, an old repository with too few labels at `run`) are new to it.
    learnt = ctx.registry.labels_learnt_at(ctx.model_name, champion)
    if history is not None:
        known = known_labels(history.labels, now)
        known_at = pd.to_datetime(known["label_known_at"], utc=True)
        new_labels = len(known) if learnt is None else int((known_at > pd.Timestamp(learnt)).sum())
        counted_in = "history"
    else:
        # A request for an older commit served since then carries a label the champion learnt: not new.
        served = ctx.log.window(trained, now, model_name=ctx.model_name, served=True, as_of=now)
        new_labels = len(unlearnt(matured(served, now), learnt))
        counted_in = "prediction log"
    last, last_version = ctx.last_registration(), ctx.last_registered_version()
    earlier = [
        r.outcome == "alarm"
        for r in ctx.records(step="monitor")
        if r.champion_version == champion
        and r.outcome in ("ok", "drift", "alarm")
        and r.cycle_id != cycle.cycle_id
    ]
    realized = None
    if monitored is not None:
        r = monitored.realized
        # On the labels that arrived in a window the class mix follows the label delay (defects when fixed,
        # clean ones after the wait), so F1 and Brier, which depend on it, are not judged; ROC-AUC is not.
        mixed = r.basis == "arrived"
        realized = Realized(
            n_matured=r.n_matured,
            n_positive=r.n_positive,
            roc_auc=r.roc_auc,
            f1=None if mixed else r.f1,
            brier=None if mixed else r.brier,
        )
    inputs = DecideInputs(
        champion_version=champion,
        pending_challenger=pending,
        monitored=monitored is not None,
        drift=monitored is not None and monitored.alarm,
        drift_reasons=list(monitored.alarm_reasons) if monitored is not None else [],
        previous_drift=earlier,
        realized=realized,
        baseline_roc_auc=_finite(metrics.get("roc_auc")),
        baseline_f1=_finite(metrics.get("f1")),
        new_labels=new_labels,
        champion_cross_project=info.cross_project,
        days_since_last_challenger=None if last is None else days(now - last),
        last_registered_version=last_version,
    )
    decision = decide(inputs, ctx.settings)
    cycle.add(
        "decide",
        "retrain" if decision.retrain else ("blocked" if decision.blocked_by else "no_action"),
        decision.reason,
        champion=champion,
        challenger=pending,
        evidence={
            "inputs": inputs,
            "decision": decision,
            "settings": ctx.settings,
            "champion_trained_at": trained,
            "new_labels_counted_in": counted_in,
        },
    )
    return DecideResult(inputs=inputs, decision=decision)
