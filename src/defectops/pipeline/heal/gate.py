"""Step 3, gate: a challenger in shadow is gated once at least ``gate.min_labels`` of its shadow predictions
have matured labels, on exactly those requests (both models' logged scores), then promoted or archived;
after ``max_shadow_days`` without enough labels it is archived. With ``gate_on="offline"`` a new challenger
is instead gated at once on the held-out commits the champion never saw (:func:`offline_gate`, called by the
train step). Either way the decision is :meth:`defectops.registry.ModelRegistry.apply_gate`'s, logged as a
replayable MLflow run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from defectops.data import EFFORT, LABEL
from defectops.pipeline.heal.context import HealContext, days, learnt_note
from defectops.pipeline.heal.cycle import Cycle
from defectops.predlog import matured, unlearnt
from defectops.registry import CHAMPION, LoadedModel
from defectops.serving import Traffic
from defectops.training import Candidate


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate step: the challenger still waiting in shadow (None when there is none now), and the
    champion after the step (the challenger, when it was promoted)."""

    pending: int | None
    champion: int


def gate_step(ctx: HealContext, cycle: Cycle, champion: int, challenger: int | None) -> GateResult:
    """Gate the challenger in shadow when enough of its requests have matured labels."""
    if ctx.settings.gate_on != "shadow" or challenger is None or challenger == champion:
        return _settled(ctx, champion)
    now = cycle.now
    started = ctx.shadow_started(challenger)
    if started is None:  # registered by someone else: adopt it into the shadow
        control = ctx.set_control(
            champion, challenger, Traffic("shadow", ctx.settings.shadow_share), "heal: shadow", now
        )
        cycle.add(
            "gate",
            "shadow",
            f"challenger v{challenger} (registered outside the loop) put in shadow",
            champion=champion,
            challenger=challenger,
            evidence={"control": control},
        )
        return GateResult(pending=challenger, champion=champion)
    pairs = ctx.shadow_pairs(champion, challenger, since=started, now=now)
    ripe = matured(pairs, now)
    rows = unlearnt(ripe, ctx.learnt_by(champion, challenger))
    base = {
        "shadow_since": started,
        "shadow_predictions": len(pairs),
        "matured": len(rows),
        "matured_defective": int(rows["label"].sum()) if len(rows) else 0,
        "known_when_trained": len(ripe) - len(rows),
    }
    learnt = learnt_note(len(ripe) - len(rows))
    needed = ctx.settings.gate.min_labels
    if len(rows) < needed:
        if now - started > timedelta(days=ctx.settings.max_shadow_days):
            why = (
                f"only {len(rows)} of the needed {needed} shadow predictions have matured labels "
                f"after {days(now - started):.0f} days (max_shadow_days {ctx.settings.max_shadow_days:g})"
                f"{learnt}"
            )
            ctx.registry.archive(ctx.model_name, challenger, ctx.who, why, base, now=now)
            control = ctx.set_control(champion, None, Traffic(), f"archive v{challenger}", now)
            cycle.add(
                "gate", "expired", why, champion=champion, challenger=challenger,
                evidence={**base, "control": control},
            )  # fmt: skip
            return _settled(ctx, champion)
        cycle.add(
            "gate",
            "waiting",
            f"{len(rows)} of {needed} shadow predictions of v{challenger} have matured labels{learnt}",
            champion=champion,
            challenger=challenger,
            evidence=base,
        )
        return GateResult(pending=challenger, champion=champion)
    outcome = ctx.registry.apply_gate(
        ctx.model_name,
        challenger,
        y_true=rows["label"].to_numpy(dtype=np.int64),
        effort=_effort(rows),
        challenger_scores=rows["score"].to_numpy(dtype=np.float64),
        champion_scores=rows["champion_score"].to_numpy(dtype=np.float64),
        champion_version=champion,
        who=ctx.who,
        now=now,
        criteria=ctx.settings.gate,
    )
    decision = outcome.decision
    if outcome.promoted:
        control = ctx.set_control(challenger, None, Traffic(), f"promote v{challenger}", now)
        result, new_champion = "promoted", challenger
    else:
        control = ctx.set_control(champion, None, Traffic(), f"archive v{challenger}", now)
        result, new_champion = "archived", champion
    cycle.add(
        "gate",
        result,
        f"v{challenger} vs v{champion} on {decision.n_labels} shadow requests: {decision.reason}",
        champion=new_champion,
        challenger=challenger,
        evidence={
            **base,
            "gate_run_id": outcome.gate_run_id,
            "decision": decision.to_document(),
            "audit_event_ids": [e.id for e in outcome.events],
            "control": control,
        },
    )
    return _settled(ctx, champion)


def _settled(ctx: HealContext, champion: int) -> GateResult:
    """No challenger waits in shadow: the champion is whatever the registry says now (the gate may have
    promoted)."""
    return GateResult(pending=None, champion=ctx.aliases().get(CHAMPION, champion))


def offline_gate(
    ctx: HealContext,
    cycle: Cycle,
    champion: int,
    challenger: int,
    candidate: Candidate,
    loaded: LoadedModel,
    base: dict[str, Any],
) -> Literal["promoted", "archived"]:
    """Gate a new challenger at once on its held-out window (commits neither model saw) against the
    champion's scores on the same commits; archived without a gate when the window is not such commits."""
    now = cycle.now
    if not candidate.comparable:
        why = (
            "an online update learns labels of commits the champion may have seen: only the shadow gate "
            "can compare the two"
            if ctx.online
            else f"too few commits labelled since v{champion} was trained for a comparison on commits "
            "neither model saw"
        )
        ctx.registry.archive(ctx.model_name, challenger, ctx.who, why, now=now)
        cycle.add("train", "archived", why, champion=champion, challenger=challenger, evidence=base)
        return "archived"
    window = candidate.window
    outcome = ctx.registry.apply_gate(
        ctx.model_name,
        challenger,
        y_true=window[LABEL].to_numpy(),
        effort=window[EFFORT].to_numpy(),
        challenger_scores=candidate.window_probability,
        champion_scores=loaded.score(window),
        champion_version=champion,
        who=ctx.who,
        now=now,
        criteria=ctx.settings.gate,
    )
    if outcome.promoted:
        control = ctx.set_control(challenger, None, Traffic(), f"promote v{challenger}", now)
    else:
        control = ctx.set_control(champion, None, Traffic(), f"archive v{challenger}", now)
    result: Literal["promoted", "archived"] = "promoted" if outcome.promoted else "archived"
    cycle.add(
        "train",
        result,
        f"offline gate of v{challenger} vs v{champion}: {outcome.decision.reason}",
        champion=challenger if outcome.promoted else champion,
        challenger=challenger,
        evidence={
            **base,
            "gate_run_id": outcome.gate_run_id,
            "decision": outcome.decision.to_document(),
            "control": control,
        },
    )
    return result


def _effort(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """Review effort per logged request: ``churn``, else ``la + ld``; None when some row has neither."""
    if EFFORT in frame.columns:
        effort = frame[EFFORT].to_numpy(dtype=np.float64, na_value=np.nan)
    elif "la" in frame.columns and "ld" in frame.columns:
        effort = frame["la"].to_numpy(dtype=np.float64, na_value=np.nan) + frame["ld"].to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    else:
        return None
    return effort if bool(np.isfinite(effort).all()) else None
