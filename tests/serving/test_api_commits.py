"""POST /v1/commits/score on real git repositories mined into the service's workspace.

The repository is the hand-worked one of tests/mining (metrics worked out by hand in
tests/mining/test_change_metrics.py, whose EXPECTED table these tests reuse), so the logged inputs are checked
against hand computation, and the probabilities against the model's own predict_proba on those values.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.data.schemas import FEATURES
from defectops.git.repo import GitRepo
from defectops.mining.engine import MineOptions, Miner
from defectops.predlog import PredictionLog
from gitrepo import BOB, RepoBuilder, lines
from sample_repos import build_handworked, build_with_merges
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session

YEAR = 365.25
# From tests/mining/test_change_metrics.py (hand-worked): c2, c6 and c7 of the hand-worked repository.
C2 = dict(
    ns=1,
    nd=1,
    nf=1,
    entropy=0.0,
    la=2,
    ld=2,
    lt=10,
    fix=1.0,  # the feature contract: a flag is logged as 0.0/1.0
    ndev=1,
    age=10.0,
    nuc=1,
    exp=0,
    rexp=0.0,
    sexp=0,
    churn=4,
)
C6 = dict(
    ns=2,
    nd=2,
    nf=2,
    entropy=0.0,
    la=0,
    ld=3,
    lt=3,
    fix=0.0,
    ndev=1,
    age=20.0,
    nuc=1,
    exp=1,
    rexp=1 / (1 + 30 / YEAR),
    sexp=0,
    churn=3,
)
C7 = dict(
    ns=1,
    nd=1,
    nf=1,
    entropy=0.0,
    la=2,
    ld=0,
    lt=0,
    fix=0.0,
    ndev=0,
    age=0.0,
    nuc=0,
    exp=2,
    rexp=1 / (1 + 40 / YEAR) + 1 / (1 + 10 / YEAR),
    sexp=1,
    churn=2,
)


def _mine(repo: RepoBuilder, session: Session) -> None:
    Miner(GitRepo.open(repo.path), Workspace(session.workspace), MineOptions(workers=1)).mine()


def _probability(session: Session, metrics: dict) -> float:
    frame = pd.DataFrame([{name: float(metrics[name]) for name in FEATURES}])
    return float(session.model_a.predict_proba(frame)[0, 1])


def _assert_inputs(logged: dict, expected: dict) -> None:
    for name, value in expected.items():
        assert logged[name] == pytest.approx(value, abs=1e-9), name


def test_score_a_commit_covered_by_the_state(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo = build_handworked(tmp_path / "hand")
    _mine(repo, api_session)
    client = make_client(deployed.name, repositories={"hand": repo.path})

    response = client.post("/v1/commits/score", json={"repo": "hand", "commit": repo.shas[1]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["repo"], body["revision"], body["skipped_merges"]) == ("hand", repo.shas[1], [])
    [answer] = body["predictions"]
    assert (answer["repo"], answer["commit_sha"], answer["model_version"]) == ("hand", repo.shas[1], "1")
    assert answer["probability"] == pytest.approx(_probability(api_session, C2), abs=1e-12)
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        [stored] = log.by_commit("hand", repo.shas[1])
    assert stored.prediction_id == answer["prediction_id"]
    # the 15 change metrics and the commit's time; no commit message for a metrics-only model
    assert set(stored.inputs) == {*C2, "commit_time"}
    authored = bytes(GitRepo.open(repo.path).run("log", "-1", "--format=%at", repo.shas[1])).decode().strip()
    assert datetime.fromisoformat(str(stored.inputs["commit_time"])).timestamp() == int(authored)
    _assert_inputs(dict(stored.inputs), C2)


def test_score_a_range_of_new_commits_mined_incrementally(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo = build_handworked(tmp_path / "hand")
    _mine(repo, api_session)
    # A commit the state has not seen yet: scored by applying it to the stored history (state unchanged).
    new = repo.commit("Grow the guide", {"docs/guide.md": lines(5, "new")}, author=BOB, days=1)
    client = make_client(deployed.name, repositories={"hand": repo.path})

    response = client.post("/v1/commits/score", json={"repo": "hand", "range": f"{repo.shas[4]}..{new}"})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["commit_sha"] for a in answers] == [repo.shas[5], repo.shas[6], new]
    assert answers[0]["probability"] == pytest.approx(_probability(api_session, C6), abs=1e-12)
    assert answers[1]["probability"] == pytest.approx(_probability(api_session, C7), abs=1e-12)
    # The new commit (day 51, bob): docs/guide.md goes from "new 1", "new 2" (c7) to "new 0".."new 4": the
    # two lines stay, three are added -> la 3, ld 0, lt 2, one file so entropy 0; the guide's history began
    # at c7 (bob): ndev 1, age 51 - 50 = 1 day, nuc 1; bob's earlier changes c2 (d10), c6 (d40), c7 (d50):
    # exp 3, rexp 1/(1+41/365.25) + 1/(1+11/365.25) + 1/(1+1/365.25), sexp 2 (c6 and c7 touched docs).
    expected_new = dict(
        ns=1, nd=1, nf=1, entropy=0.0, la=3, ld=0, lt=2, fix=0.0, ndev=1, age=1.0, nuc=1, exp=3,
        rexp=1 / (1 + 41 / YEAR) + 1 / (1 + 11 / YEAR) + 1 / (1 + 1 / YEAR), sexp=2, churn=3,
    )  # fmt: skip
    assert answers[2]["probability"] == pytest.approx(_probability(api_session, expected_new), abs=1e-12)
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        [stored] = log.by_commit("hand", new)
    _assert_inputs(dict(stored.inputs), expected_new)


def test_merges_in_a_range_are_listed_not_scored(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo = build_with_merges(tmp_path / "merges")
    _mine(repo, api_session)
    client = make_client(deployed.name, repositories={"merges": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "merges", "range": f"{repo.shas[0]}..HEAD"})
    assert response.status_code == 200, response.text
    body = response.json()
    merge = repo.shas[5]
    assert body["skipped_merges"] == [merge]
    assert merge not in {a["commit_sha"] for a in body["predictions"]}
    assert len(body["predictions"]) == 5  # grow x, feature y, feature fix, main x, after merge


def test_unknown_repository_is_404(deployed: Deployed, make_client: MakeClient, tmp_path: Path) -> None:
    repo = build_handworked(tmp_path / "hand")
    client = make_client(deployed.name, repositories={"hand": repo.path})
    response = client.post("/v1/commits/score", json={"repo": str(repo.path), "commit": "HEAD"})
    assert response.status_code == 422  # a path is not even a valid repository id
    response = client.post("/v1/commits/score", json={"repo": "other", "commit": "HEAD"})
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown repository 'other' (this service knows: hand)"


def test_range_larger_than_the_batch_limit_is_413(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo = build_handworked(tmp_path / "hand")
    _mine(repo, api_session)
    client = make_client(deployed.name, repositories={"hand": repo.path}, max_batch=2)
    response = client.post("/v1/commits/score", json={"repo": "hand", "range": f"{repo.shas[0]}..HEAD"})
    assert response.status_code == 413
    assert "6 commits" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"repo": "hand", "commit": "--output=/tmp/x"},
        {"repo": "hand", "commit": "HEAD", "range": "HEAD~1..HEAD"},
        {"repo": "hand"},
        {"repo": "hand", "range": "HEAD"},
        {"repo": "hand", "range": "../..HEAD"},
        {"repo": "hand", "commit": "a..b"},
        {"repo": "hand", "commit": "HEAD", "path": "/etc"},
    ],
)
def test_bad_revisions_are_422(
    deployed: Deployed, make_client: MakeClient, tmp_path: Path, body: dict
) -> None:
    repo = build_handworked(tmp_path / "hand")
    client = make_client(deployed.name, repositories={"hand": repo.path})
    assert client.post("/v1/commits/score", json=body).status_code == 422


def test_a_three_dot_range_is_422_saying_to_use_two_dots(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    """``BASE...HEAD`` (git's symmetric difference, as in a pull request's compare URL) was split at the first
    two dots and answered 400 "unknown revision '.HEAD'"."""
    repo = build_handworked(tmp_path / "hand")
    _mine(repo, api_session)
    client = make_client(deployed.name, repositories={"hand": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "hand", "range": f"{repo.shas[0]}...HEAD"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "range"]
    assert problem["msg"] == "Value error, range must be BASE..HEAD (two dots), not BASE...HEAD"


@pytest.mark.parametrize(
    ("body", "field", "said"),
    [
        (
            {"repo": "hand", "commit": "--all"},
            "commit",
            "commit must be one of the revisions git knows: a sha",
        ),
        ({"repo": "hand", "commit": "HEAD:README.md"}, "commit", "no ':')"),
        (
            {"repo": "hand", "range": "HEAD~3"},
            "range",
            "range must be BASE..HEAD, got 'HEAD~3'; one revision",
        ),
        (
            {"repo": "hand", "range": "-x..HEAD"},
            "range",
            "range must be BASE..HEAD of two revisions git knows",
        ),
        ({"repo": "/work/bench/flask", "commit": "HEAD"}, "repo", "never a path"),
    ],
)
def test_a_refused_revision_or_repository_id_is_said_in_words(
    deployed: Deployed, make_client: MakeClient, tmp_path: Path, body: dict, field: str, said: str
) -> None:
    """Found on flask: these were 422 with the pattern as the reason ("String should match pattern
    '^[A-Za-z0-9](?:\\.?[A-Za-z0-9_/@{}^~-])*\\.?$'"), which tells a user nothing."""
    repo = build_handworked(tmp_path / "hand")
    client = make_client(deployed.name, repositories={"hand": repo.path})
    response = client.post("/v1/commits/score", json=body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert said in problem["msg"], problem["msg"]
    assert "pattern" not in problem["msg"]


def test_unknown_revision_and_missing_state_are_400_with_the_reason(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo = build_handworked(tmp_path / "hand")
    client = make_client(deployed.name, repositories={"hand": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "hand", "commit": "HEAD"})
    assert response.status_code == 400  # StateError: nothing mined into this workspace yet
    assert "no miner state" in response.json()["detail"]
    _mine(repo, api_session)
    response = client.post("/v1/commits/score", json={"repo": "hand", "commit": "deadbeef"})
    assert response.status_code == 400
    assert "unknown revision 'deadbeef'" in response.json()["detail"]


def test_no_model_loaded_is_503(
    make_client: MakeClient, api_session: Session, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    repo = build_handworked(tmp_path / "hand")
    _mine(repo, api_session)
    client = make_client("no-champion-" + request.node.name[:40], repositories={"hand": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "hand", "commit": "HEAD"})
    assert response.status_code == 503
    assert "no model is loaded" in response.json()["detail"]
