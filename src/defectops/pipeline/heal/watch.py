"""Step 2, watch: a champion promoted less than ``watch_days`` ago is compared with the previous champion on
the matured requests it served, and rolled back (registry rollback + control file) when it is worse. A
rollback ends the cycle.

The rule (:func:`rollback_check`) is a pure function of the watched rows, stored with the cycle's MLflow run
so the verdict can be replayed: roll back when, on at least ``rollback_min_labels`` matured labels of the
requests it served, both models scored on the same rows (its logged scores, and the previous champion's
scores on the logged inputs) show a ROC-AUC drop larger than ``rollback_max_roc_auc_drop`` whose paired
bootstrap interval lies entirely below zero, or a Brier score worse by more than
``rollback_max_brier_increase``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from defectops.config import HealSettings
from defectops.errors import DefectOpsError, InputError
from defectops.pipeline.heal.context import HealContext, learnt_note
from defectops.pipeline.heal.cycle import Cycle
from defectops.predlog import matured, unlearnt
from defectops.registry import CHALLENGER, CHAMPION, paired_bootstrap_auc_difference
from defectops.serving import Traffic

FloatArray = npt.NDArray[np.float64]


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


@dataclass(frozen=True, slots=True)
class WatchResult:
    """The watch step: whether the champion was rolled back (the cycle then ends), the champion after the
    step, and the verdict (None when nothing was judged: no recent promotion, or no comparison possible)."""

    rolled_back: bool
    champion: int
    check: RollbackCheck | None = None


def watch_step(ctx: HealContext, cycle: Cycle, champion: int) -> WatchResult:
    """Roll a recently promoted champion back when it does worse than the one it replaced."""
    kept = WatchResult(rolled_back=False, champion=champion)
    events = ctx.registry.history(ctx.model_name, alias=CHAMPION)
    last = events[-1] if events else None
    if last is None or last.action != "promote" or last.to_version != champion or last.from_version is None:
        return kept
    now = cycle.now
    if now - last.at > timedelta(days=ctx.settings.watch_days):
        return kept
    previous = last.from_version
    window = ctx.log.window(
        last.at,
        now,
        model_name=ctx.model_name,
        model_version=str(champion),
        served=True,
        as_of=now,
    )
    ripe = matured(window, now)
    rows = unlearnt(ripe, ctx.learnt_by(champion, previous))
    base = {
        "promoted_at": last.at,
        "previous_version": previous,
        "served": len(window),
        "known_when_trained": len(ripe) - len(rows),
    }
    try:
        current_model, previous_model = ctx.model(champion), ctx.model(previous)
    except DefectOpsError as exc:  # e.g. the previous version was deleted: nothing to compare with
        cycle.add("watch", "cannot_compare", str(exc), champion=champion, evidence=base)
        return kept
    # A hybrid model also reads changed lines, which the prediction log never keeps (they are code).
    needs = [*previous_model.meta.features, *previous_model.text_columns()]
    missing = [f for f in needs if f not in rows.columns]
    if missing and len(rows):
        cycle.add(
            "watch",
            "cannot_compare",
            f"the logged requests lack inputs v{previous} needs ({', '.join(missing)})",
            champion=champion,
            evidence=base,
        )
        return kept
    y = rows["label"].to_numpy(dtype=np.float64)
    current_scores = rows["score"].to_numpy(dtype=np.float64)
    previous_scores = (
        previous_model.score(rows.astype(dict.fromkeys(previous_model.meta.features, "float64")))
        if len(rows)
        else np.empty(0)
    )
    check = rollback_check(
        y,
        current_scores,
        previous_scores,
        current_version=champion,
        previous_version=previous,
        current_threshold=current_model.meta.threshold,
        previous_threshold=previous_model.meta.threshold,
        settings=ctx.settings,
    )
    evidence = {**base, "check": check, "settings": ctx.settings}
    cycle.tables["watch_window"] = pd.DataFrame(
        {"y_true": y, "current_score": current_scores, "previous_score": previous_scores}
    )
    if not check.rollback:
        cycle.add(
            "watch",
            "watching" if not check.ready else "kept",
            check.reason + learnt_note(len(ripe) - len(rows)),
            champion=champion,
            evidence=evidence,
        )
        return WatchResult(rolled_back=False, champion=champion, check=check)
    event = ctx.registry.rollback(
        ctx.model_name, ctx.who, check.reason, {"heal_cycle": cycle.cycle_id}, now=now
    )
    restored = event.to_version
    archived = None
    challenger = ctx.aliases().get(CHALLENGER)
    if challenger is not None and challenger != restored:
        ctx.registry.archive(
            ctx.model_name,
            challenger,
            ctx.who,
            f"champion v{champion} was rolled back to v{restored}; "
            f"the challenger was compared with v{champion}",
            now=now,
        )
        archived = challenger
    control = ctx.set_control(restored, None, Traffic(), f"rollback v{champion} -> v{restored}", now)
    cycle.add(
        "watch",
        "rolled_back",
        f"rolled back v{champion} to v{restored}: {check.reason}",
        champion=restored,
        evidence={
            **evidence,
            "audit_event_id": event.id,
            "archived_challenger": archived,
            "control": control,
        },
    )
    return WatchResult(rolled_back=True, champion=restored if restored is not None else champion, check=check)
