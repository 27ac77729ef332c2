"""Cold start: the main job serves the cross-project starter while a repository lacks labels, marks it as
cross-project everywhere, and lets the repository's own model replace it only through the gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from defectops.cli import main
from defectops.config import Settings
from defectops.pipeline import RunOptions
from defectops.pipeline import run as run_job
from defectops.registry import CHAMPION, CROSS_PROJECT, TAG_ORIGIN, ModelRegistry
from gitrepo import RepoBuilder


def young_repo(path: Path) -> RepoBuilder:
    repo = RepoBuilder.create(path)
    now = datetime.now(UTC)
    repo.commit("one", {"a.py": "x\n"}, when=now - timedelta(days=5))
    repo.commit("two", {"a.py": "x\ny\n", "b.py": "z\n"}, when=now - timedelta(days=3))
    repo.commit("three", {"a.py": "".join(f"line {i}\n" for i in range(60))}, when=now - timedelta(days=1))
    return repo


@pytest.mark.usefixtures("quiet_mlflow")
def test_a_young_repository_gets_the_starter_as_champion_clearly_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = young_repo(tmp_path / "young")
    ws = tmp_path / "ws"
    main(["-w", str(ws), "run", "--repo", str(repo.path), "--json", "--recent", "3"])
    first = json.loads(capsys.readouterr().out)
    assert first["trained"] is False
    assert "known label" in first["reason"]
    assert first["cross_project"] is True
    starter = first["starter"]
    assert starter["registered"] is True
    assert starter["version"] == starter["champion_version"] == 1
    assert starter["history_rows"] == 3
    assert "cross-project starter" in starter["description"]
    assert len(first["recent"]) == 3
    for commit in first["recent"]:
        assert commit["cross_project"] is True
        assert 0.0 < commit["probability"] < 1.0
        assert commit["reasons"]  # scored with reasons
    # the largest change of the three is the riskiest
    riskiest = max(first["recent"], key=lambda c: c["probability"])
    assert riskiest["subject"] == "three"
    report = Path(first["report"]).read_text()
    assert "CROSS-PROJECT starter" in report
    assert "Held-out evaluation" not in report  # nothing of the repository's own was evaluated

    registry = ModelRegistry.from_settings(Settings(workspace=ws))
    version = registry.get_version(starter["model_name"], 1)
    assert version.tags[TAG_ORIGIN] == CROSS_PROJECT
    assert version.cross_project
    loaded = registry.load(starter["model_name"], alias=CHAMPION)
    assert loaded.meta.cross_project

    # a second run without enough labels keeps the same starter (no new version) and says so in words too;
    # waiting 4 days, the 5-day-old commit "one" is clean, "two" (3 days) and "three" (1 day) not yet known
    main(["-w", str(ws), "run", "--repo", str(repo.path), "--recent", "2", "--waiting-days", "4"])
    out = capsys.readouterr().out
    assert "labels of all 3 commits (merges included): 0 defect-inducing, 1 clean, 2 not yet known\n" in out
    assert "CROSS-PROJECT starter still serving as champion" in out
    assert "scored by the CROSS-PROJECT starter" in out
    assert registry.alias_version(starter["model_name"], CHAMPION) == 1

    # the registry listing and the service's /v1/models say it too
    main(["-w", str(ws), "models", "list", starter["model_name"]])
    listing = capsys.readouterr().out
    assert "CROSS-PROJECT starter" in listing, listing
    from fastapi.testclient import TestClient

    from defectops.config import ServeSettings
    from defectops.serving.app import create_app

    app = create_app(Settings(workspace=ws, mode="local"), ServeSettings(model_name=starter["model_name"]))
    with TestClient(app) as client:
        served = client.get("/v1/models").json()
    assert served["champion"]["version"] == 1
    assert served["champion"]["cross_project"] is True


@pytest.mark.usefixtures("quiet_mlflow")
@pytest.mark.slow  # an integration test of over 10 s: CI's slow run
def test_the_own_model_is_gated_against_the_starter_on_the_repository_labels(
    synthetic_repo: RepoBuilder, tmp_path: Path
) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    now = datetime.now(UTC)
    # too few labels for an own model (a threshold above the repository's size): the starter serves
    cold = run_job(
        RunOptions(repo=synthetic_repo.path, budget_seconds=0, recent=3, min_labelled=10_000),
        settings,
        now=now,
    )
    assert cold.starter is not None
    assert not cold.trained
    name = cold.starter.model_name
    # enough labels now: the own model is trained and gated against the starter on the same held-out window
    warm = run_job(RunOptions(repo=synthetic_repo.path, budget_seconds=0, recent=3), settings, now=now)
    assert warm.trained
    assert warm.starter is None
    assert warm.registered is not None
    assert warm.registered.version == 2
    assert warm.registered.gate in ("passed", "failed")  # a real comparison, never "not run"
    registry = ModelRegistry.from_settings(settings)
    champion = registry.load(name, alias=CHAMPION)
    if warm.registered.gate == "passed":
        assert champion.meta.version == 2
        assert not champion.meta.cross_project
    else:
        assert champion.meta.version == 1
        assert champion.meta.cross_project
        assert all(r.scored.cross_project for r in warm.recent)


@pytest.mark.usefixtures("quiet_mlflow")
def test_heal_counts_every_known_label_as_new_to_the_starter(tmp_path: Path) -> None:
    """The starter learnt no label of the repository, so the ``new_labels`` rule counts every label known now.

    Found walking a young repository that grew: 170 commits, every label matured long before the starter was
    registered, and heal said "no trigger fired" on each cycle because it counted the labels that became
    known *since the starter's registration*: none, forever, for a history that was already old."""
    from defectops.config import HealSettings
    from defectops.pipeline import Healer

    repo = RepoBuilder.create(tmp_path / "old")
    start = datetime.now(UTC) - timedelta(days=800)
    body = ""
    for i in range(24):
        body += f"def f{i}(x):\n    return x + {i}\n"
        if i % 6 == 5:  # a fix that rewrites a line an earlier commit wrote
            body = body.replace(f"return x + {i - 3}", f"return x - {i - 3}")
        repo.commit(
            f"fix f{i - 3}" if i % 6 == 5 else f"add f{i}", {"a.py": body}, when=start + timedelta(days=i)
        )
    settings = Settings(workspace=tmp_path / "ws")
    now = datetime.now(UTC)
    cold = run_job(
        RunOptions(repo=repo.path, budget_seconds=0, recent=3, min_labelled=10_000), settings, now=now
    )
    assert cold.starter is not None
    healer = Healer.from_settings(
        settings,
        model_name=cold.starter.model_name,
        repo=repo.path,
        heal=HealSettings(min_new_labels=20, budget_seconds=0.0),
    )
    try:
        report = healer.cycle(now + timedelta(minutes=1))
    finally:
        healer.close()
    decide = report.record("decide")
    assert decide is not None
    (trigger,) = [t for t in decide.evidence["decision"]["triggers"] if t["name"] == "new_labels"]
    assert trigger["value"] == 24  # every commit's label is known (all are older than the waiting period)
    assert trigger["fired"] is True
    assert trigger["reason"] == (
        "24 labels of the repository are known, none of them learnt by the cross-project starter (>= 20)"
    )
    # The starter was registered a minute ago, but its registration does not start the cool-down: the
    # repository's first own model is trained in this cycle.
    assert decide.reason == "train a challenger: new_labels"
    train = report.record("train")
    assert train is not None, [(r.step, r.status) for r in report.records]
