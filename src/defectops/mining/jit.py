"""Just-in-time scoring from a stored state: what to apply before scoring, and what cannot be exact.

Why notes and not silence: CI scores a pull request on a shallow clone with a state exported earlier (often
nightly, so behind the base branch). When the clone still has the state's head, the commits in between are
applied and the metrics are exact. When it does not, those commits cannot be read; the metrics are then
approximate, and each scored commit says so, with how much history is missing and what it may change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from defectops.git import GitRepo
from defectops.mining.state import StateInfo


@dataclass(frozen=True, slots=True)
class JitScores:
    """Just-in-time metrics of the requested commits, and a note for each commit whose history metrics
    (ndev, age, nuc, exp, rexp, sexp) are approximate because the state and the clone do not meet."""

    metrics: pd.DataFrame
    notes: dict[str, str]


@dataclass(frozen=True, slots=True)
class JitPlan:
    """Which targets the state has not seen, the commits to apply (in order) before scoring them, and a
    note for each target whose history metrics cannot be exact."""

    unseen: set[str]
    apply: list[str]
    notes: dict[str, str]


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _gap_note(head: str, head_time: float, oldest: float, commit_time: float) -> str:
    """What is missing between a state mined up to ``head`` and a clone whose oldest commit is ``oldest``."""
    if commit_time <= head_time:
        return (
            f"history metrics approximate: the miner state was mined up to {head[:12]} ({_day(head_time)}), "
            f"after this commit ({_day(commit_time)}), so they include later changes; export the state "
            "from an older commit"
        )
    if oldest > head_time:
        days = (oldest - head_time) / 86400
        return (
            f"history metrics approximate: this clone lacks the {days:.1f} days of history between the "
            f"miner state's head {head[:12]} ({_day(head_time)}) and its oldest commit ({_day(oldest)}): "
            f"age may be up to {days:.0f} days too high, and ndev, nuc, exp, rexp and sexp miss that "
            f"period's changes; fetch deeper (git fetch --shallow-since={_day(head_time)}) or use a newer "
            "state for exact metrics"
        )
    return (
        f"history metrics approximate: the miner state's head {head[:12]} ({_day(head_time)}) is not in this "
        f"clone's history, which reaches back to {_day(oldest)}: the state may hold commits this history "
        "does not have (a force-push?)"
    )


def plan_jit(repo: GitRepo, info: StateInfo, targets: list[str]) -> JitPlan:
    """Which targets the state has not seen, which commits to apply before scoring them (in order), and
    a note for each target whose history metrics cannot be exact."""
    if not targets:
        return JitPlan(set(), [], {})
    if repo.object_exists(info.head):
        listed = repo.run("rev-list", "--topo-order", "--reverse", *targets, f"^{info.head}")
        needed = listed.decode().split()
        unseen = set(needed)
        dropped = repo.run("rev-list", "--count", info.head, *(f"^{t}" for t in targets))
        n_dropped = int(dropped.decode().strip() or "0")
        notes: dict[str, str] = {}
        if n_dropped:
            note = (
                f"history metrics approximate: the miner state (up to {info.head[:12]}) includes "
                f"{n_dropped} commit(s) that are not in this commit's history (a force-push or another "
                "branch); their changes are counted in ndev, nuc, age and the experience metrics"
            )
            notes = {sha: note for sha in targets if sha in unseen}
        return JitPlan(unseen, needed, notes)
    # The state's head is not in this clone: apply what the clone has that is newer than the state, and
    # say what is missing.
    timestamped = repo.run("rev-list", "--topo-order", "--reverse", "--timestamp", *targets).decode()
    stamped = [(float(ts), sha) for ts, sha in (line.split() for line in timestamped.splitlines())]
    wanted = set(targets)
    if info.head_time is None:
        apply = list(targets)
        missing = (
            f"history metrics approximate: the miner state's head {info.head[:12]} is not in this clone, "
            "and the state (from an older defectops) does not say when it was mined, so how much "
            "history is missing is unknown"
        )
        return JitPlan(wanted, apply, dict.fromkeys(targets, missing))
    head_time = info.head_time
    apply = [sha for ts, sha in stamped if ts > head_time or sha in wanted]
    oldest = min((ts for ts, _ in stamped), default=head_time)
    stamp = {sha: ts for ts, sha in stamped}
    gaps = {sha: _gap_note(info.head, head_time, oldest, stamp.get(sha, oldest)) for sha in targets}
    return JitPlan(wanted, apply, gaps)
