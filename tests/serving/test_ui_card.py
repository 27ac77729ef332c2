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


def test_the_pages_show_scores_and_cuts_that_agree(stack: Stack, champion: int, client: Any) -> None:
    """The overview's legend and the commits page's scores come from one pair of functions: a score just below
    the ``low`` cut reads below the cut the legend shows (0.10476 under a cut of 0.10484 read "0.105 minimal"
    beside "low from 0.105")."""
    from defectops.predlog import PredictionRecord
    from defectops.training import cut_text, probability_text

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    bands = client.app.state.service.deployment.champion.bands
    shown = client.get("/ui/api/overview", headers=auth).json()["serving"]["champion"]["risk_bands"]["shown"]
    assert shown == {
        "low": cut_text(bands.low),
        "medium": cut_text(bands.medium),
        "high": cut_text(bands.high),
    }
    below = PredictionRecord(
        prediction_id="00000000-0000-4000-8000-000000000099", created_at=day(269), model_name=stack.name,
        model_version=str(champion), served=True, inputs={}, score=bands.low - 1e-7, threshold=0.99,
        risk_label=0, risk_band="minimal", repo="syn", commit_sha=f"{99:040x}",
    )  # fmt: skip
    stack.log.record([below])
    rows = client.get("/ui/api/commits?band=minimal", headers=auth).json()["commits"]
    (row,) = [r for r in rows if r["prediction_id"] == below.prediction_id]
    assert row["probability_text"] == probability_text(below.score, bands)
    assert float(row["probability_text"]) < float(shown["low"])
