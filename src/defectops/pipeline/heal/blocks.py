"""Step 7, blocks: keep the block-level model (``<model_name>-blocks``, #17) right as labels mature.

Why its own step and not a second healer: the block model learns from the same repository, the same SZZ
links and the same cycle's refresh, and a Terraform repository's ``defectops run`` always registers both
models; so each cycle of the commit model also looks at its block model. Nothing happens (and nothing is
recorded) when the repository has no block model.

The rule is the commit model's ``new_labels`` rule on blocks: when at least ``min_new_labels`` block labels
became known since the block champion learnt its labels, and no block challenger was registered in the last
``min_days_between_challengers`` days, a challenger is trained as ``defectops run`` trains one (or, with
``online``, the online block champion updated by ``partial_fit`` on those new labels) and judged by the same
gate (:func:`defectops.pipeline.blocks.train_and_gate_blocks`): on the blocks of the commits made since
the champion learnt its labels, which it never saw, with the repository's labels as known now. Promoted only
when the gate passes; else archived and the champion kept. The registry audits the registration and the
gate as for commit models; the step's record says what was done to the block model and why.

A block model without a champion (``run``'s first version failed the gate's floor, as on terraform-aws-eks)
is retried the same way: once ``min_new_labels`` block labels matured since its latest version learnt its
labels, a new version is trained on the time split of ``run`` and gated on its own (no champion to beat);
until then the record says why there is no champion.

The block gate is always offline (on held-out commits): the service scores blocks with the block champion
only, so there are no shadow scores of a block challenger to gate on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from defectops.errors import NotFoundError
from defectops.mining import block_model_name
from defectops.pipeline.blocks import BlockStage, block_inputs, train_and_gate_blocks
from defectops.pipeline.heal.context import HealContext, days
from defectops.pipeline.heal.cycle import Cycle
from defectops.pipeline.heal.sources import History
from defectops.registry import CHALLENGER, CHAMPION, AuditEvent

BlocksOutcome = Literal["none", "skipped", "kept", "promoted", "archived"]


@dataclass(frozen=True, slots=True)
class BlocksResult:
    """What the blocks step did: ``none`` (no block model), ``skipped`` (cannot look), ``kept`` (no
    challenger trained), ``promoted`` or ``archived`` (a challenger trained and gated); ``stage`` holds the
    challenger's evaluation and gate when one was trained."""

    outcome: BlocksOutcome
    reason: str = ""
    new_labels: int | None = None
    stage: BlockStage | None = None


def blocks_step(ctx: HealContext, cycle: Cycle, history: History | None) -> BlocksResult:
    from defectops.config import Workspace
    from defectops.git import GitRepo
    from defectops.labeling import LabelOptions, label_repository
    from defectops.training import new_block_labels

    name = block_model_name(ctx.model_name)
    try:
        champion: int | None = ctx.registry.aliases(name).get(CHAMPION)
    except NotFoundError:
        return BlocksResult("none")  # not a Terraform repository's model: nothing to heal, nothing said
    registered = _registrations(ctx, name)
    if champion is None and not registered:
        return BlocksResult("none")
    # The version whose labels the new ones are counted against: the champion, else the latest version
    # (e.g. `run`'s v1 that failed the gate's floor: heal retries once enough new labels matured).
    reference = champion if champion is not None else registered[-1].to_version
    if reference is None:
        return BlocksResult("none")
    base: dict[str, Any] = {"model_name": name, "online": ctx.online, "champion": champion}
    if ctx.repo is None or ctx.workspace_root is None or history is None:
        return _record(
            cycle,
            BlocksResult("skipped", "no repository to read the blocks from (give --repo)"),
            champion,
            base,
        )
    now = cycle.now
    repo = GitRepo.open(ctx.repo)
    workspace = Workspace(ctx.workspace_root).ensure()
    if history.links is not None:
        links = history.links
    else:  # a history without links (heal --store): the repository's, labelled incrementally
        options = LabelOptions(waiting_days=ctx.waiting_days)
        links = label_repository(repo, workspace, now=now, options=options).links
    head = repo.resolve("HEAD")
    blocks, block_link_frame, stats = block_inputs(repo, workspace, links, head)
    since = ctx.registry.trained_at(name, reference)
    new = new_block_labels(blocks, block_link_frame, at=now, since=since, waiting_days=ctx.waiting_days)
    n_new, needed = len(new), ctx.settings.min_new_labels
    base |= {
        "new_labels": n_new,
        "new_defective": int(new["label"].sum()) if n_new else 0,
        "trained_at": since,
        "head": head,
        "blocks": len(blocks),
    }
    learnt = f"{n_new} block labels became known since v{reference} learnt its labels ({since:%Y-%m-%d})"
    if champion is None:
        learnt = f"no block champion ({_archived_because(ctx, name, reference)}); {learnt}"
    if n_new < needed:
        return _record(
            cycle, BlocksResult("kept", f"{learnt}; a challenger needs {needed}", n_new), champion, base
        )
    last = registered[-1].at if registered else None
    spacing = ctx.settings.min_days_between_challengers
    if last is not None and now - last < timedelta(days=spacing):
        ago = days(now - last)
        why = f"{learnt}, but the last block challenger was registered {ago:.1f} days ago (< {spacing:g})"
        return _record(cycle, BlocksResult("kept", why, n_new), champion, base)
    stage = train_and_gate_blocks(
        ctx.registry,
        name,
        blocks,
        block_link_frame,
        link_stats=stats,
        head=head,
        now=now,
        waiting_days=ctx.waiting_days,
        who=ctx.who,
        why=f"heal: {learnt}",
        job="heal",
        # Without a champion no window needs to be unseen by it: the time split of `run`.
        since=since if champion is not None else None,
        kind="online" if ctx.online else None,  # else the champion's kind
        update=ctx.online,
        evidence={"heal_cycle": cycle.cycle_id, "new_labels": n_new},
    )
    if stage.version is None:
        result = BlocksResult("kept", f"{learnt}; no challenger: {stage.reason}", n_new, stage)
    elif stage.promoted:
        result = BlocksResult(
            "promoted", f"{learnt}; challenger v{stage.version} promoted: {stage.gate_reason}", n_new, stage
        )
    else:
        result = BlocksResult(
            "archived",
            f"{learnt}; challenger v{stage.version} archived, "
            f"{'no champion' if champion is None else f'v{champion} kept'}: {stage.gate_reason}",
            n_new,
            stage,
        )
    return _record(cycle, result, champion, base)


def _record(
    cycle: Cycle, result: BlocksResult, champion: int | None, evidence: dict[str, Any]
) -> BlocksResult:
    stage = result.stage
    cycle.add(
        "blocks",
        result.outcome,
        f"{evidence['model_name']}: {result.reason}",
        champion=stage.champion_version if stage is not None else champion,
        challenger=stage.version if stage is not None else None,
        evidence={**evidence, "stage": None if stage is None else stage.as_dict()},
    )
    if stage is not None and stage.evaluation is not None:
        for key in ("roc_auc", "recall_at_20_effort"):
            value = stage.evaluation.metrics.get(key)
            if value is not None:
                cycle.metrics[f"blocks_{key}"] = float(value)
    return result


def _registrations(ctx: HealContext, name: str) -> list[AuditEvent]:
    return [e for e in ctx.registry.history(name, alias=CHALLENGER) if e.action == "register"]


def _archived_because(ctx: HealContext, name: str, version: int) -> str:
    """Why ``version`` is not the champion, from the audit history (its archive's reason)."""
    for event in reversed(ctx.registry.history(name, alias=CHALLENGER)):
        if event.action == "archive" and event.from_version in (version, None):
            return f"v{version} archived: {event.why}"
    return f"v{version} was never promoted"
