"""Step 6, train: a challenger trained as the main job trains, or with ``online`` the champion's online
model updated by ``partial_fit`` (:mod:`defectops.training.candidate`); screened against the champion on
the commits made since it was trained, registered as challenger
(:func:`defectops.registry.register_trained_model`) and put in shadow through the serving control file, so
the running service scores every request with it too (or, with ``gate_on="offline"``, gated at once).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from defectops.data import FEATURES, LABEL
from defectops.errors import ConfigError, InsufficientDataError
from defectops.pipeline.heal.context import HealContext
from defectops.pipeline.heal.cycle import Cycle
from defectops.pipeline.heal.decide import Decision
from defectops.pipeline.heal.gate import offline_gate
from defectops.pipeline.heal.sources import History
from defectops.pipeline.text import attach_text, reads_text, require_text_model
from defectops.registry import LoadedModel, register_trained_model
from defectops.serving import Traffic
from defectops.training import (
    DEFAULT_MODEL,
    MODEL_KINDS,
    Candidate,
    CandidateOptions,
    online_candidate,
    train_candidate,
)

TrainOutcome = Literal["skipped", "archived", "shadow", "promoted"]


@dataclass(frozen=True, slots=True)
class Screen:
    """The offline screen: champion and challenger ROC-AUC on the held-out commits made since the champion
    was trained; ``passed`` unless the challenger is more than ``max_drop`` below."""

    rows: int
    champion_roc_auc: float
    challenger_roc_auc: float
    max_drop: float
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "champion_roc_auc": self.champion_roc_auc,
            "challenger_roc_auc": self.challenger_roc_auc,
            "max_drop": self.max_drop,
            "passed": self.passed,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TrainResult:
    """The train step: what became of the challenger (None when none was trained) and its screen."""

    outcome: TrainOutcome
    challenger: int | None = None
    screen: Screen | None = None


def train_step(
    ctx: HealContext, cycle: Cycle, champion: int, history: History | None, decision: Decision
) -> TrainResult:
    now = cycle.now
    if history is None:
        cycle.add("train", "skipped", "no history source to train on (give --repo)", champion=champion)
        return TrainResult(outcome="skipped")
    loaded = ctx.model(champion)
    estimator = loaded.estimator
    # The cross-project starter never learnt a label of this repository: any held-out window is fair to it,
    # and its challengers are the repository's own models (the default kind unless configured).
    starter_serves = loaded.meta.cross_project
    trained = None if starter_serves else ctx.trained_at(champion)
    champion_kind = str(getattr(estimator, "kind", "") or DEFAULT_MODEL)
    kind = ctx.settings.model_kind or (champion_kind if champion_kind in MODEL_KINDS else DEFAULT_MODEL)
    # The champion's inputs when the history has them (a Terraform or code model), else the change metrics.
    inputs = tuple(str(f) for f in getattr(estimator, "features_", FEATURES))
    features = inputs if all(f in history.commits.columns for f in inputs) else FEATURES
    options = CandidateOptions(
        features=features,
        kind="online" if ctx.online else kind,
        budget_seconds=ctx.settings.budget_seconds,
        waiting_days=ctx.waiting_days,
        seed=ctx.settings.seed,
        min_labelled=ctx.settings.min_labelled,
        min_new_labelled=ctx.settings.min_new_labelled,
    )
    if reads_text(options.kind) or reads_text(champion_kind):
        # A hybrid challenger (or champion, scored in the screen and the gate) reads changed lines.
        text = _with_text(ctx, history, now)
        if isinstance(text, str):
            cycle.add("train", "skipped", text, champion=champion)
            return TrainResult(outcome="skipped")
        history = text
    try:
        if ctx.online and trained is not None:
            candidate = online_candidate(
                estimator,
                history.commits,
                history.labels,
                history.files,
                now=now,
                since=trained,
                options=options,
            )
        else:
            candidate = train_candidate(
                history.commits,
                history.labels,
                history.files,
                now=now,
                options=options,
                unseen_since=trained,
                champion_saw_no_labels=starter_serves,
            )
    except InsufficientDataError as exc:
        cycle.add("train", "skipped", str(exc), champion=champion)
        return TrainResult(outcome="skipped")
    screen = _screen(ctx, candidate, loaded)
    registered = register_trained_model(
        ctx.registry,
        ctx.model_name,
        candidate.model,
        features=candidate.features,
        table=candidate.table_now,
        metrics=candidate.logged_metrics(),
        dataset_fingerprint=history.fingerprint,
        now=now,
        who=ctx.who,
        why=f"heal: {decision.reason}",
        job="heal",
        evidence={
            "labels_as_of": now.isoformat(),
            "triggers": decision.fired,
            "heal_cycle": cycle.cycle_id,
        },
    )
    challenger = registered.version.version
    base = {
        "training_run_id": registered.run.run_id,
        "model_kind": options.kind,
        "online": ctx.online,
        "evaluation": candidate.evaluation.as_dict(),
        "screen": None if screen is None else screen.as_dict(),
        "triggers": decision.fired,
    }
    if screen is not None and not screen.passed:
        ctx.registry.archive(
            ctx.model_name, challenger, ctx.who, screen.reason, {"screen": screen.as_dict()}, now=now
        )
        cycle.add("train", "archived", screen.reason, champion=champion, challenger=challenger, evidence=base)
        return TrainResult(outcome="archived", challenger=challenger, screen=screen)
    if ctx.settings.gate_on == "offline":
        outcome = offline_gate(ctx, cycle, champion, challenger, candidate, loaded, base)
        return TrainResult(outcome=outcome, challenger=challenger, screen=screen)
    control = ctx.set_control(
        champion,
        challenger,
        Traffic("shadow", ctx.settings.shadow_share),
        f"heal: shadow v{challenger}",
        now,
    )
    cycle.add(
        "train",
        "shadow",
        f"challenger v{challenger} trained ({', '.join(decision.fired)}) and put in shadow "
        f"(share {ctx.settings.shadow_share:g})",
        champion=champion,
        challenger=challenger,
        evidence={**base, "control": control},
    )
    return TrainResult(outcome="shadow", challenger=challenger, screen=screen)


def _with_text(ctx: HealContext, history: History, now: datetime) -> History | str:
    """``history`` with the changed lines of its labelled commits (:mod:`defectops.pipeline.text`), or why
    they cannot be read."""
    if ctx.repo is None:
        return "a hybrid model reads each commit's changed lines from the repository: give --repo"
    try:
        require_text_model("hybrid")  # the hybrid extra (the challenger or the champion reads text)
    except ConfigError as exc:
        return str(exc)
    from defectops.git import GitRepo

    commits, _ = attach_text(GitRepo.open(ctx.repo), history.commits, history.labels, now=now)
    return dataclasses.replace(history, commits=commits)


def _screen(ctx: HealContext, candidate: Candidate, champion: LoadedModel) -> Screen | None:
    """Champion and challenger recipe on the held-out commits made since the champion was trained."""
    margin = ctx.settings.screen_max_roc_auc_drop
    if margin is None or not candidate.comparable:
        return None
    from sklearn.metrics import roc_auc_score

    y = candidate.window[LABEL].to_numpy()
    champion_auc = float(roc_auc_score(y, champion.score(candidate.window)))
    challenger_auc = float(roc_auc_score(y, candidate.window_probability))
    passed = challenger_auc - champion_auc >= -margin
    return Screen(
        rows=len(y),
        champion_roc_auc=champion_auc,
        challenger_roc_auc=challenger_auc,
        max_drop=margin,
        passed=passed,
        reason=(
            f"held-out ROC-AUC {challenger_auc:.4f} vs champion {champion_auc:.4f} on {len(y)} commits "
            f"made since it was trained ({'within' if passed else 'more than'} {margin:g} below)"
        ),
    )
