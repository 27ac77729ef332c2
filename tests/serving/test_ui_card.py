"""The model card's served metrics (``GET /ui/api/models/{version}``) on the real service, registry and log.

Which labels count: a request for an older commit carries the label that commit already had; when the
version was trained after it became known, it is one of the version's training rows and says nothing of how
the version does live (scrapy, after ``defectops heal``: 3 of the card's 7 labels were SZZ labels its version
had learnt). The card counts only labels dated after the version learnt its labels and says how many more
there were; a cross-project starter learnt none of the repository's labels, so all of them count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from defectops.registry import CROSS_PROJECT, TAG_ORIGIN
from heal_world import (
    ADMIN_TOKEN,
    SimClock,
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
    start_service,
)

__all__ = ["heal_tracking", "mlflow_environment_restored", "stack"]  # fixtures pytest finds here

WORLD = WorldSpec(seed=3, days=340, per_day=4, drift_day=None)


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return generate(WORLD)


@pytest.fixture
def champion(stack: Stack, world: pd.DataFrame) -> int:
    from defectops.pipeline.heal import FrameSource

    source = FrameSource(commits_frame(world), labels_frame(world, end=day(WORLD.days)))
    return bootstrap_champion(stack.registry, stack.name, source, day(240))


@pytest.fixture
def client(stack: Stack, champion: int) -> Iterator[Any]:
    service = start_service(stack.workspace, stack.registry, stack.name, SimClock(day(270)), stack.log_url)
    try:
        yield service
    finally:
        service.__exit__(None, None, None)


def test_the_card_counts_only_labels_dated_after_the_version_was_trained(
    stack: Stack, champion: int, client: Any
) -> None:
    stack.serve_learnt_and_new(champion)
    card = client.get(f"/ui/api/models/{champion}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert card.status_code == 200, card.text
    served = card.json()["served"]
    assert served["n_matured"] == 10  # 40 labelled; the 30 dated day 100 were training rows
    assert served["known_when_trained"] == 30
    assert served["labels_learnt_at"] == day(240).isoformat()
    assert served["label_sources"] == {"szz": 10}
    assert {m["metric"] for m in served["metrics"]} >= {"roc_auc", "brier"}
    assert sum(point["n"] for point in served["calibration"]) == 10


def test_a_cross_project_starters_card_counts_every_label(stack: Stack, champion: int, client: Any) -> None:
    starter = stack.registry.register(
        stack.name,
        f"models:/{stack.name}/{champion}",
        who="test",
        why="cold start",
        now=day(250),
        tags={TAG_ORIGIN: CROSS_PROJECT},
    ).version
    stack.serve_learnt_and_new(starter)
    card = client.get(f"/ui/api/models/{starter}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert card.status_code == 200, card.text
    served = card.json()["served"]
    assert (served["n_matured"], served["known_when_trained"], served["labels_learnt_at"]) == (40, 0, None)
