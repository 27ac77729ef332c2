"""Workers end to end, in this process: real Redis, real git mirror, real models, real GitHub API server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from defectops.ci import PredictRequest, render_markdown, resolve_model, run_predict
from defectops.config import Settings, Workspace
from defectops.data import METRIC_NAMES
from defectops.events import Worker, prediction_id
from event_world import REPO, World, push_payload
from github_api import GitHubServer
from gitrepo import RepoBuilder, lines

# every test against both streams: Redis and Kafka (Tansu), see conftest.py
pytestmark = pytest.mark.parametrize("stream_backend", ["redis", "kafka"], indirect=True)


@pytest.fixture
def world(settings: Settings, github: GitHubServer) -> Iterator[World]:
    made = World(settings, github)
    yield made
    made.close()


def test_a_push_gets_one_check_run_and_one_logged_prediction_per_commit(
    world: World, upstream: RepoBuilder, models
) -> None:
    first, *pushed = upstream.shas
    assert world.send(push_payload(upstream, pushed, before=first), delivery="p-1") == 202
    worker = world.work()
    assert worker.stats.processed == 1
    assert worker.stats.failed == 0
    for sha in pushed:
        [run] = world.github.api.runs_for(sha)
        assert run["name"] == "defectops risk"
        assert run["status"] == "completed"
        assert run["external_id"] == f"defectops:{sha}"
        rows = world.log.by_commit(REPO, sha)
        assert sorted(r.served for r in rows) == [False, True]  # champion served, challenger in shadow
        served = next(r for r in rows if r.served)
        shadow = next(r for r in rows if not r.served)
        assert served.prediction_id == prediction_id(REPO, sha, "champion", "local", True)
        assert shadow.shadow_of == served.prediction_id
        assert shadow.model_name == "challenger"
        # every change metric and the commit's time, as /v1/commits/score logs them (the same for the shadow)
        assert set(served.inputs) == {*METRIC_NAMES, "commit_time"}
        assert shadow.inputs == served.inputs
    # the summary is the markdown report of the CI path, for that commit alone
    champion = resolve_model(model_dir=models[0], model_name=None, alias="", settings=world.settings)
    mirror = Workspace.from_settings(world.settings).root / "events" / "mirrors" / "acme+widgets.git"
    expected = run_predict(
        PredictRequest(repo=mirror, commits=(pushed[-1],)), champion, Workspace(mirror.parent / "x")
    )
    [run] = world.github.api.runs_for(pushed[-1])
    assert run["output"]["summary"] == render_markdown(expected)
    # the token went in GitHub's header on every call, and listings were paginated (max_per_page=2)
    assert {scheme for _m, _p, scheme in world.github.api.requests} == {"Bearer"}
    assert world.stream.stats().length == 0


def test_a_replayed_or_overlapping_event_adds_no_row_and_no_check_run(
    world: World, upstream: RepoBuilder
) -> None:
    first, *pushed = upstream.shas
    world.send(push_payload(upstream, pushed, before=first), delivery="p-1")
    world.work()
    # the same commits again under a new delivery id (e.g. a redelivery from GitHub's UI)
    world.send(push_payload(upstream, pushed, before=first), delivery="p-2")
    worker = world.work()
    [outcome] = worker.stats.outcomes
    assert (outcome.logged, outcome.reported, outcome.already_reported) == (0, 0, len(pushed))
    for sha in pushed:
        assert len(world.github.api.runs_for(sha)) == 1
        assert len(world.log.by_commit(REPO, sha)) == 2


def test_a_risky_commit_is_annotated_on_its_changed_file(world: World, upstream: RepoBuilder) -> None:
    before = upstream.head()
    sha = upstream.commit("Add parser", {"src/parser.py": lines(900, "p")}, days=1)
    world.send(push_payload(upstream, [sha], before=before), delivery="p-1")
    world.work()
    [run] = world.github.api.runs_for(sha)
    assert run["conclusion"] == "neutral"
    [annotation] = run["output"]["annotations"]
    assert annotation["path"] == "src/parser.py"
    assert annotation["annotation_level"] == "failure"
    assert annotation["start_line"] == 1
    assert "high defect risk" in annotation["message"]


def test_a_pull_request_gets_one_check_run_on_its_head(world: World, upstream: RepoBuilder) -> None:
    base = upstream.head()
    upstream.git("checkout", "-q", "-b", "feature")
    one = upstream.commit("Feature part one", {"src/f.py": lines(10, "f")}, days=1)
    two = upstream.commit("Feature part two", {"src/f.py": lines(14, "f")}, days=1)
    payload = {
        "action": "opened",
        "number": 3,
        "repository": {"full_name": REPO},
        "pull_request": {
            "number": 3,
            "head": {"sha": two, "ref": "feature"},
            "base": {"sha": base, "ref": "main"},
        },
    }
    assert world.send(payload, event="pull_request", delivery="pr-1") == 202
    world.work()
    [run] = world.github.api.runs_for(two)
    assert run["name"] == "defectops risk (pull request)"
    assert run["external_id"] == f"defectops:pr-3:{two}"
    assert one[:12] in run["output"]["summary"]
    assert two[:12] in run["output"]["summary"]
    assert world.github.api.runs_for(one) == []
    assert len(world.log.by_commit(REPO, one)) == 2


def test_a_force_push_is_scored_on_the_rewritten_history(world: World, upstream: RepoBuilder) -> None:
    first, *pushed = upstream.shas
    world.send(push_payload(upstream, pushed, before=first), delivery="p-1")
    world.work()
    old_tip = upstream.head()
    upstream.git("reset", "-q", "--hard", first)
    rewritten = upstream.commit("Rewritten history", {"src/app.py": lines(25)}, days=3)
    world.send(push_payload(upstream, [rewritten], before=old_tip, forced=True), delivery="p-2")
    worker = world.work()
    assert worker.stats.failed == 0
    [outcome] = worker.stats.outcomes
    assert outcome.scored == (rewritten,)
    assert any("force-push" in note for note in outcome.notes)
    assert len(world.github.api.runs_for(rewritten)) == 1


def test_github_rate_limits_are_waited_out(world: World, upstream: RepoBuilder) -> None:
    first, *pushed = upstream.shas
    world.github.api.limited_next = 1
    world.github.api.retry_after_next = 1
    world.send(push_payload(upstream, pushed, before=first), delivery="p-1")
    worker = world.work()
    assert worker.stats.processed == 1
    assert all(len(world.github.api.runs_for(sha)) == 1 for sha in pushed)


def test_a_poison_event_goes_to_the_dead_letters_after_max_attempts(
    settings_env: dict[str, str],
    stream_backend: str,
    github: GitHubServer,
    upstream: RepoBuilder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEFECTOPS_EVENTS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("DEFECTOPS_EVENTS_VISIBILITY_TIMEOUT", "0.05")
    world = World(Settings(), github)
    try:
        first, *_ = upstream.shas
        # a commit GitHub says was pushed but that the repository never gets: every attempt fails
        ghost = "1234567890abcdef1234567890abcdef12345678"
        assert world.send(push_payload(upstream, [ghost], before=first), delivery="ghost-1") == 202
        worker = Worker(world.settings, world.stream, world.api, consumer="w1", predictions=world.log)
        while world.stream.stats().length:
            worker.run(max_events=1)
        assert worker.stats.failed == 2
        assert worker.stats.dead_lettered == 1
        [(delivery, reason)] = world.stream.dead_letter_reasons()
        assert delivery == "ghost-1"
        assert "failed 2 times" in reason
        assert "1234567890ab is not in the mirror" in reason
        assert (
            f'defectops_events_dead_letters{{backend="{stream_backend}"}} 1'
            in world.client.get("/metrics").text
        )
        assert world.github.api.check_runs == []
    finally:
        world.close()
