"""One feature contract end to end: the same commits through ``/v1/commits/score``, ``/v1/predict`` and
``defectops predict`` give identical logged inputs (one type per metric) and identical scores.

Before the contract, ``/v1/commits/score`` logged ``fix`` as a JSON boolean and ``/v1/predict`` as a number,
so a window mixing both could not even be written as Parquet and the drift check saw two disjoint
categories. The hand-worked repository of tests/mining gives the expected metrics (C2 is a fix, C6 is not).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from defectops.ci.model_source import ModelSource
from defectops.ci.predict import PredictRequest, run_predict
from defectops.config import Workspace
from defectops.data import METRIC_NAMES
from defectops.git.repo import GitRepo
from defectops.predlog import PredictionLog
from defectops.training.risk import RiskBands
from sample_repos import build_handworked
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import Deployed, MakeClient, Session
from serving.test_api_commits import C2, C6, _mine


def test_both_endpoints_and_predict_log_and_score_the_same_commit_identically(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo = build_handworked(tmp_path / "hand")
    _mine(repo, api_session)
    client = make_client(deployed.name, repositories={"hand": repo.path})
    c2, c6 = repo.shas[1], repo.shas[5]

    mined = client.post("/v1/commits/score", json={"repo": "hand", "range": f"{repo.shas[0]}..{c6}"})
    assert mined.status_code == 200, mined.text
    by_sha = {a["commit_sha"]: a["probability"] for a in mined.json()["predictions"]}
    # A client sends JSON: the flag as true/false or as 0/1, counts as integers, the commit time in its zone.
    git = GitRepo.open(repo.path)
    times = {sha: bytes(git.run("log", "-1", "--format=%aI", sha)).decode().strip() for sha in (c2, c6)}
    sent = [
        {**C2, "fix": True, "repo": "api", "commit_sha": c2, "commit_time": times[c2]},
        {**C6, "fix": 0, "repo": "api", "commit_sha": c6, "commit_time": times[c6]},
    ]
    answered = client.post("/v1/predict", json={"records": sent, "top_k": 0})
    assert answered.status_code == 200, answered.text
    scores = [a["probability"] for a in answered.json()["predictions"]]
    assert scores == [by_sha[c2], by_sha[c6]]  # bit for bit: the same floats reach the same model

    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        for sha, expected_fix in ((c2, 1.0), (c6, 0.0)):
            [from_commits] = log.by_commit("hand", sha)
            [from_predict] = log.by_commit("api", sha)
            assert dict(from_commits.inputs) == dict(from_predict.inputs)
            metrics = {k: v for k, v in from_commits.inputs.items() if k != "commit_time"}
            assert {type(v) for v in metrics.values()} == {float}
            assert from_commits.inputs["commit_time"].endswith("+00:00")  # ISO 8601 in UTC
            assert from_commits.inputs["fix"] == expected_fix
            assert from_commits.score == from_predict.score
        window = log.window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    assert all(str(window[name].dtype) == "float64" for name in METRIC_NAMES)

    model = api_session.model_a
    source = ModelSource(
        model=model,
        name=deployed.name,
        version="1",
        threshold=model.threshold_,
        bands=RiskBands.from_base_rate(0.2),
        origin="test",
    )
    report = run_predict(
        PredictRequest(repo=repo.path, commits=(c2, c6), top_k=1), source, Workspace(api_session.workspace)
    )
    from_cli = {p.sha: p for p in report.commits}
    for sha in (c2, c6):
        assert from_cli[sha].scored.probability == pytest.approx(by_sha[sha], abs=1e-12)
    assert from_cli[c2].features["fix"] == 1.0
