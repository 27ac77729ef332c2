"""``heal --store``: the online model learns (partial_fit) from the commits CI scored into the artifact store.

The champion is an online model trained at day 240 of the seeded history (:mod:`heal_world`); CI then scores
the commits of days 240-300 into a store on the local S3 server (the rows ``predict --store`` writes). At day
330 their labels have matured: the heal cycle updates a copy of the champion with them and gates it on the
latest of those commits (the champion never saw them), with the registry's gate like every challenger.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from defectops.ci.store import METRICS_KEYS
from defectops.config import HealSettings
from defectops.data import METRIC_NAMES
from defectops.pipeline.heal import FrameSource, StoreSource
from defectops.registry.records import CHAMPION
from defectops.storage import ArtifactStore
from heal_world import (
    WAITING_DAYS,
    Stack,
    WorldSpec,
    bootstrap_champion,
    commits_frame,
    day,
    generate,
    heal_tracking,
    labels_frame,
    mlflow_environment_restored,
    stack,
)
from s3_server import BUCKET, CREDENTIALS, s3_endpoint

__all__ = ["heal_tracking", "mlflow_environment_restored", "s3_endpoint", "stack"]  # fixtures

QUIET = WorldSpec(seed=3, days=340, per_day=4, drift_day=None)


def ci_rows(world: pd.DataFrame, *, exact: int = 1) -> pd.DataFrame:
    """The metrics rows ``predict --store`` appends for these commits (its fixed columns)."""
    rows = pd.DataFrame(
        {
            "sha": world["sha"],
            "repo": "/ci/checkout",
            "author_email": world["team"] + "@example.com",
            "author_time": world["time"].map(lambda t: t.isoformat()),
            "committer_time": world["time"].map(lambda t: t.isoformat()),
            "is_merge": False,
            "message": 'change\nwith a body, "quoted"',
            "paths": "src/a.py\nsrc/b.py",
            "predicted_at": world["time"].map(lambda t: t.isoformat()),
            "exact": exact,
        }
    )
    for name in METRIC_NAMES:
        rows[name] = world[name]
    return rows[[*METRICS_KEYS, *METRIC_NAMES]]


def known_at(world: pd.DataFrame, now: datetime) -> pd.Series:
    """When each label became known, from the history itself: a defect at its fix, any other change 30 days
    after it was made (the waiting period); NaT while unknown at ``now``."""
    fixed = world["defect"] & (world["fix_time"] <= pd.Timestamp(now))
    at = world["fix_time"].where(fixed, world["time"] + pd.Timedelta(days=WAITING_DAYS))
    return at.where(at <= pd.Timestamp(now))


@pytest.mark.s3
def test_online_model_learns_from_the_store_behind_the_gate(stack: Stack, s3_endpoint: str) -> None:
    world = generate(QUIET)
    labels = labels_frame(world, end=day(QUIET.days))
    first = bootstrap_champion(
        stack.registry, stack.name, FrameSource(commits_frame(world), labels), day(240), kind="online"
    )
    options: dict[str, Any] = {**CREDENTIALS, "endpoint_url": s3_endpoint}
    store = ArtifactStore.from_url(f"s3://{BUCKET}/heal/{uuid.uuid4().hex}", storage_options=options)
    scored = world.loc[(world["time"] > pd.Timestamp(day(240))) & (world["time"] <= pd.Timestamp(day(300)))]
    store.write_metrics(ci_rows(scored.iloc[:100]))
    store.write_metrics(ci_rows(scored.iloc[90:]))  # a re-run scored ten commits twice: counted once
    approximate = world.loc[world["time"] > pd.Timestamp(day(300))].iloc[:5]
    store.write_metrics(ci_rows(approximate, exact=0))  # approximate history metrics: never learnt

    settings = HealSettings(budget_seconds=0.0, min_new_labels=50, gate_on="offline")
    healer = stack.healer(StoreSource(store, lambda _now: labels), settings, online=True)
    champion = healer.model(first).estimator
    trained_rows = int(champion.n_train_)
    report = healer.cycle(day(330))

    refresh = report.record("refresh")
    assert refresh is not None
    assert refresh.evidence["commits"] == len(scored)  # deduplicated, approximate rows left out
    train = report.record("train")
    assert train is not None, [(r.step, r.outcome, r.reason) for r in report.records]
    # Every stored commit whose label became known in (day 240, day 330] is learnt, worked out from the
    # history: all of them were made after the champion was trained.
    learnt = int(known_at(scored, day(330)).notna().sum())
    evaluation = train.evidence["evaluation"]
    assert evaluation["partial_fit_rows"] == learnt
    # The gate's window: the latest 20% (by commit time) of those commits; the fold copy learnt only the
    # labels known when the first of them was made.
    labelled = scored.loc[known_at(scored, day(330)).notna()].sort_values("time")
    window = labelled.iloc[-round(learnt * 0.2) :]
    start = window["time"].min()
    before = labelled.loc[~labelled["sha"].isin(window["sha"])]
    assert evaluation["test_rows"] == len(window)
    assert evaluation["update_rows"] == int((known_at(before, day(330)) <= start).sum())
    # Gated like any challenger: promoted only if the registry's gate passed it against the champion.
    assert train.outcome in ("promoted", "archived")
    decision = train.evidence["decision"]
    aliases = stack.registry.aliases(stack.name)
    challenger = int(train.challenger_version or 0)
    assert aliases[CHAMPION] == (challenger if decision["passed"] else first)
    assert train.outcome == ("promoted" if decision["passed"] else "archived")
    updated = stack.registry.load(stack.name, version=challenger).estimator
    assert int(updated.n_train_) == trained_rows + learnt
