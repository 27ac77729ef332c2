"""A real service to look at: a replayed history with heal cycles, a mined git repository, a uvicorn server.

The world of the self-healing tests (tests/heal_world.py) is replayed through the real app: the first champion
is trained on days 0–239; days 240–329 are scored through ``POST /v1/predict`` with their labels posted when
they become known, and a heal cycle (the real :class:`defectops.pipeline.heal.Healer`, writing to the
registry's audit store like ``defectops heal``) runs every 14 days, so monitoring has windows, drift and
decisions. Then a real git repository (tests/synthetic_history.py) is scored through
``POST /v1/commits/score``, so the commits page has authors and paths to filter on. Finally the same app is
served by uvicorn on 127.0.0.1 for a browser. Everything follows from the seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from heal_world import (
    ADMIN_TOKEN,
    SimClock,
    Simulation,
    WorldSpec,
    bootstrap_champion,
    commits_frame,
    day,
    generate,
    labels_frame,
    start_service,
)
from serving.live_server import served_app

SERVE_FROM = 240
DAYS = 330
CYCLE_EVERY = 14
REPO_URL = "https://git.example.org/synth/commit/{sha}"


@dataclass
class World:
    """The served model's name, where its stores live, and the time the service's clock stands at."""

    name: str
    workspace: Path
    registry: Any
    log_url: str
    clock: SimClock
    repo_path: Path
    heal_outcomes: list[tuple[str, str]]


def build_world(name: str, workspace: Path, registry: Any) -> World:
    """Train, serve and heal the replayed history; mine and score the synthetic repository."""
    from defectops.config import HealSettings, Workspace
    from defectops.git import GitRepo
    from defectops.mining import MineOptions, Miner
    from defectops.pipeline.heal import FrameSource, Healer
    from defectops.predlog import PredictionLog
    from defectops.serving.control import ControlFile
    from synthetic_history import build_synthetic

    spec = WorldSpec(seed=7, days=DAYS, per_day=4, drift_day=280)
    world = generate(spec)
    source = FrameSource(commits_frame(world), labels_frame(world, end=day(spec.days)))
    bootstrap_champion(registry, name, source, day(SERVE_FROM))
    log_url = f"sqlite:///{workspace / 'predictions.db'}"
    clock = SimClock(day(SERVE_FROM))
    client = start_service(workspace, registry, name, clock, log_url)
    log = PredictionLog.from_url(log_url)
    healer = Healer(
        model_name=name,
        registry=registry,
        log=log,
        control=ControlFile.for_model(workspace, name),
        audit=registry.audit,  # where `defectops heal` writes by default, and where the UI reads
        settings=HealSettings(budget_seconds=0.0, min_new_labels=100_000),
        source=source,
        waiting_days=30,
    )
    sim = Simulation(world, client, clock, SERVE_FROM)
    outcomes: list[tuple[str, str]] = []
    try:
        for n in range(SERVE_FROM, DAYS):
            sim.serve_day(n)
            if (n + 1 - SERVE_FROM) % CYCLE_EVERY == 0:
                report = healer.cycle(day(n + 1))
                outcomes += [(r.step, r.outcome) for r in report.records]
                sim.follow_control()
        repo_path = workspace / "synth-repo"
        build_synthetic(repo_path, commits=60, seed=5)
        # The service scores commits with the incremental miner state of its workspace (`defectops mine`).
        Miner(GitRepo.open(repo_path), Workspace(workspace), MineOptions(workers=1)).mine()
        clock.now = day(DAYS)
    finally:
        client.__exit__(None, None, None)
        log.close()
    return World(name, workspace, registry, log_url, clock, repo_path, outcomes)


@contextmanager
def served(world: World, **serve: Any) -> Iterator[str]:
    """The world's app served on 127.0.0.1; yields its base URL."""
    from defectops.config import ServeSettings, Settings

    settings = ServeSettings(
        model_name=world.name,
        admin_token=ADMIN_TOKEN,
        log_url=world.log_url,
        poll_seconds=3600.0,
        repositories={"synth": world.repo_path},
        repository_urls={"synth": REPO_URL},
        **serve,
    )
    root = Settings(workspace=world.workspace, mode="local")
    with served_app(root, settings, world.registry, clock=world.clock) as url:
        yield url


def score_repository(base: str) -> dict[str, Any]:
    """Score every commit of the synthetic repository through the service (mined by the service itself)."""
    response = httpx.post(
        f"{base}/v1/commits/score", json={"repo": "synth", "range": "HEAD~50..HEAD"}, timeout=120
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document
