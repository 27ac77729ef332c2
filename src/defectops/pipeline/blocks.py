"""The block-level stage of ``defectops run`` on a Terraform repository (#17): block links, block features,
the block-level model evaluated over time, registered under its own name behind the same gate.

The model name is the repository's model name with ``-blocks`` (so every clone of one repository shares it,
like the commit-level name). The block features table is kept in the workspace
(``datasets/<repo_id>/blocks.parquet``) with the head it was mined at and the pass's history: the same head
is read back, a head that adds newer commits continues the pass, any other head mines it again.

The gate is the commit-level one: with a champion, the window is the blocks of the commits made since it was
trained (it never saw them), at least 20 of them; with fewer the challenger is archived with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from defectops.config import Workspace
from defectops.data import EFFORT, LABEL
from defectops.errors import DataError, NotFoundError
from defectops.git import GitRepo
from defectops.labeling import cached_block_links
from defectops.mining import block_model_name, cached_block_features
from defectops.training import (
    BlockEvaluation,
    block_training_table,
    evaluate_block_model,
    new_block_labels,
    train_block_model,
)

WHO = "defectops run"


@dataclass(frozen=True, slots=True)
class BlockStage:
    """What the block stage did (``blocks`` in ``run --json``); ``reason`` says why no model was trained."""

    model_name: str
    rows: int
    links: int
    link_stats: dict[str, Any]
    evaluation: BlockEvaluation | None = None
    version: int | None = None
    gate: str = "not run"
    gate_reason: str = ""
    promoted: bool = False
    champion_version: int | None = None
    reason: str | None = None
    learnt_rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        evaluation = None
        if self.evaluation is not None:
            evaluation = {
                k: v
                for k, v in self.evaluation.as_dict().items()
                if not isinstance(v, float) or np.isfinite(v)
            }
        return {
            "model_name": self.model_name,
            "rows": self.rows,
            "links": self.links,
            "link_stats": self.link_stats,
            "evaluate": evaluation,
            "version": self.version,
            "gate": self.gate,
            "gate_reason": self.gate_reason,
            "promoted": self.promoted,
            "champion_version": self.champion_version,
            "reason": self.reason,
            "learnt_rows": self.learnt_rows,
        }


def run_block_stage(
    repo: GitRepo,
    workspace: Workspace,
    registry: Any,
    name: str,
    links: pd.DataFrame,
    *,
    head: str,
    now: datetime,
    waiting_days: int,
    say: Callable[[str], None],
    online: bool = False,
) -> BlockStage:
    """Train, register and gate the block-level model of ``repo`` (see the module docstring); with
    ``online`` (``run --model online``) an online block model, which ``heal --online`` updates by
    ``partial_fit``."""
    say("Terraform blocks: links and features")
    blocks, block_link_frame, stats = block_inputs(repo, workspace, links, head)
    say("Terraform blocks: the block-level model")
    return train_and_gate_blocks(
        registry,
        block_model_name(name),
        blocks,
        block_link_frame,
        link_stats=stats,
        head=head,
        now=now,
        waiting_days=waiting_days,
        who=WHO,
        why="block-level model trained by the main job",
        job="run",
        kind="online" if online else "lightgbm",
    )


def block_inputs(
    repo: GitRepo, workspace: Workspace, links: pd.DataFrame, head: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The block features table of ``repo`` at ``head`` (kept in the workspace, continued incrementally), its
    block-level links from the commit-level SZZ ``links`` (kept too: only new fixes are blamed again), and
    the links' statistics."""
    block_link_frame, stats = cached_block_links(
        repo, links, workspace.dataset_file(repo.repo_id(), "block_links")
    )
    blocks = cached_block_features(repo, workspace.dataset_file(repo.repo_id(), "blocks"), head)
    return blocks, block_link_frame, stats.as_dict()


def train_and_gate_blocks(
    registry: Any,
    model_name: str,
    blocks: pd.DataFrame,
    block_link_frame: pd.DataFrame,
    *,
    link_stats: dict[str, Any],
    head: str,
    now: datetime,
    waiting_days: int,
    who: str,
    why: str,
    job: str,
    since: datetime | None = None,
    kind: str | None = "lightgbm",
    update: bool = False,
    evidence: dict[str, Any] | None = None,
) -> BlockStage:
    """A block-level challenger of ``model_name`` trained on the labels known at ``now``, registered, and
    gated against the champion on the blocks of the commits made since the champion learnt its labels
    (``since``, default its registration time): promoted only when the gate passes, archived otherwise, and
    archived as not comparable when fewer than 20 such commits have labelled blocks. ``run`` and ``heal``
    both come here. ``kind`` is the model trained (``lightgbm``, or ``online`` for ``run --model online``;
    None: the champion's kind);
    with ``update`` (``heal --online``) and a champion that learns by ``partial_fit``, the challenger is
    instead the champion updated with the blocks whose labels became known since ``since``."""
    from defectops.registry import CHAMPION, register_trained_model

    rows, n_links = len(blocks), len(block_link_frame)
    try:
        champion_version = registry.alias_version(model_name, CHAMPION)
    except NotFoundError:
        champion_version = None
    champion = registry.load(model_name, alias=CHAMPION) if champion_version is not None else None
    if since is None and champion is not None:
        since = champion.meta.created_at
    if kind is None:
        kind = str(getattr(champion.estimator, "kind", "")) if champion is not None else ""
        kind = kind if kind in ("lightgbm", "online") else "lightgbm"
    base = None
    if update and champion is not None and hasattr(champion.estimator, "partial_fit"):
        base = champion.estimator
    comparable = True
    try:
        try:
            evaluation = evaluate_block_model(
                blocks, block_link_frame, now=now, waiting_days=waiting_days, since=since, kind=kind,
                update=base,
            )  # fmt: skip
        except DataError:
            if since is None or base is not None:
                raise
            comparable = False
            evaluation = evaluate_block_model(
                blocks, block_link_frame, now=now, waiting_days=waiting_days, kind=kind
            )
        if base is not None and since is not None:
            table = new_block_labels(blocks, block_link_frame, at=now, since=since, waiting_days=waiting_days)
        else:
            table = block_training_table(blocks, block_link_frame, at=now, waiting_days=waiting_days)
        fitted = train_block_model(table, waiting_days=waiting_days, kind=kind, update=base)
    except DataError as exc:
        return BlockStage(
            model_name, rows, n_links, link_stats, reason=str(exc), champion_version=champion_version
        )
    metrics = {k: v for k, v in evaluation.metrics.items() if np.isfinite(v)}
    feature_set = "terraform-blocks"
    registered = register_trained_model(
        registry,
        model_name,
        fitted.model,
        features=fitted.features,
        table=table,
        metrics=metrics,
        dataset_fingerprint={"blocks": len(blocks), "block_links": len(block_link_frame), "head": head},
        now=now,
        who=who,
        why=why,
        job=job,
        evidence={"labels_as_of": now.isoformat(), "learnt_rows": len(table), **(evidence or {})},
        tags={"defectops.level": "block", "defectops.feature_set": feature_set},
        params={"level": "block", "feature_set": feature_set, "kind": evaluation.extra.get("kind", kind)},
    )
    version = registered.version.version
    window = evaluation.window_table
    if not comparable or window is None or evaluation.window_probability is None:
        reason = (
            "fewer than 20 commits with labelled blocks were made since the block champion was trained; "
            "a fair comparison needs blocks neither model has seen"
        )
        registry.archive(model_name, version, who, reason, now=now)
        gate, gate_reason, promoted = "not run", reason, False
    else:
        outcome = registry.apply_gate(
            model_name,
            version,
            y_true=window[LABEL].to_numpy(),
            effort=window[EFFORT].to_numpy(),
            challenger_scores=evaluation.window_probability,
            champion_scores=None if champion is None else champion.score(window),
            champion_version=champion_version,
            who=who,
            now=now,
        )
        gate = "passed" if outcome.decision.passed else "failed"
        gate_reason, promoted = outcome.decision.reason, outcome.promoted
    return BlockStage(
        model_name,
        rows,
        n_links,
        link_stats,
        evaluation=evaluation,
        version=version,
        gate=gate,
        gate_reason=gate_reason,
        promoted=promoted,
        champion_version=registry.alias_version(model_name, CHAMPION),
        learnt_rows=len(table),
    )


def block_line(stage: BlockStage) -> str:
    """The block stage in one line (the run's summary and report)."""
    if stage.version is None:
        return f"{stage.model_name}: not trained ({stage.reason})"
    held_out = ""
    if stage.evaluation is not None:
        m = stage.evaluation.metrics
        held_out = (
            f"held-out ROC-AUC {m['roc_auc']:.3f}, Recall@20% effort {m['recall_at_20_effort']:.3f} on "
            f"{stage.evaluation.test_rows} blocks; "
        )
    line = f"{stage.model_name} v{stage.version}: {held_out}gate {stage.gate}"
    if stage.promoted:
        return line
    # Not promoted: say why, and what scores the blocks now (nothing, or the block champion kept).
    reason = stage.gate_reason.removeprefix(f"{stage.gate}: ")
    if reason:
        line = f"{line} ({reason})"
    if stage.champion_version is None:
        return f"{line}; no block champion, so commits are scored without block risks"
    return f"{line}; the block champion stays v{stage.champion_version}"
