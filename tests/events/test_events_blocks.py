"""A Terraform repository with a block-level champion (``<name>-blocks``, #17) beside its commit champion: the
worker scores each pushed commit's changed blocks as ``defectops predict`` does, shows them in the check run,
and logs the rows ``POST /v1/commits/score`` logs for the same commit.

The repository is the hand-worked Terraform history of tests/mining/test_block_features.py; both models are
real, registered in a real MLflow registry in the test's workspace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from defectops.config import ServeSettings, Settings, Workspace
from defectops.data import BLOCK_FEATURES, EFFORT, LABEL, TIME
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner
from defectops.predlog import PredictionLog, PredictionRecord
from defectops.registry import ModelRegistry, TrackingConfig, ensure_experiment, log_training_run
from defectops.serving.app import create_app
from defectops.training import train_block_model
from defectops.training.models import make_model
from event_world import REPO, World, push_payload
from github_api import GitHubServer
from gitrepo import ALICE, BOB, EPOCH, RepoBuilder
from mining.test_block_features import GROUP, REGION, ROLE


@dataclass
class Terraform:
    """The repository (three commits on main), the settings of a worker scoring it with model ``tf``."""

    repo: RepoBuilder
    shas: list[str]
    settings: Settings
    registry: ModelRegistry


@pytest.fixture
def terraform(tmp_path: Path, settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Terraform:
    """``tf`` (a logistic model of la, ld, nf) and ``tf-blocks`` (the block-level model), both champions."""
    repo = RepoBuilder.create(tmp_path / "tf")
    shas = [
        repo.commit("Add role and node group", {"main.tf": ROLE % ("role", "") + GROUP % 2}, author=ALICE),
        repo.commit("Grow the node group", {"main.tf": ROLE % ("role", "") + GROUP % 3}, author=BOB, days=1),
        repo.commit(
            "Fix role name", {"main.tf": REGION + ROLE % ("role2", "") + GROUP % 3}, author=ALICE, days=2
        ),
    ]
    monkeypatch.delenv("DEFECTOPS_EVENTS_MODEL_DIR")
    monkeypatch.delenv("DEFECTOPS_EVENTS_CHALLENGER_DIR")
    monkeypatch.setenv("DEFECTOPS_EVENTS_MODEL_NAME", "tf")
    monkeypatch.setenv("DEFECTOPS_EVENTS_REPOSITORIES", json.dumps({REPO: str(repo.path)}))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    settings = Settings()
    config = TrackingConfig.resolve(Workspace.from_settings(settings).ensure().root)
    ensure_experiment(config)
    registry = ModelRegistry.from_settings(settings)
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    commits = pd.DataFrame({"la": rng.integers(1, 50, 200), "ld": rng.integers(0, 20, 200), "nf": 1.0})
    blocks = pd.DataFrame({name: rng.integers(0, 6, 400).astype("float64") for name in BLOCK_FEATURES})
    blocks[EFFORT] = blocks["blk_la"] + blocks["blk_ld"]
    blocks[LABEL] = (0.25 * blocks["blk_la"] - 0.5 + rng.normal(0, 1, 400) > 0).astype("int64")
    blocks[TIME] = pd.date_range(EPOCH, periods=400, freq="D", tz="UTC")
    fitted = (
        ("tf", make_model("logreg", features=("la", "ld", "nf")).fit(commits, commits["la"] > 25), commits),
        ("tf-blocks", train_block_model(blocks, waiting_days=0, seed=0).model, blocks),
    )
    for name, model, table in fitted:
        features = ["la", "ld", "nf"] if name == "tf" else list(BLOCK_FEATURES)
        run = log_training_run(
            model, features=features, reference=table, params={}, metrics={"roc_auc": 0.7},
            dataset_fingerprint=name, config=config, threshold=float(getattr(model, "threshold_", 0.5)),
            reference_max_rows=50,
        )  # fmt: skip
        version = registry.register(name, run.model_uri, who="test", why="test", now=now)
        registry.promote(name, version.version, "test", "test", now=now)
    return Terraform(repo, shas, settings, registry)


@pytest.mark.parametrize("stream_backend", ["redis", "kafka"], indirect=True)
def test_a_terraform_repository_gets_its_block_risks_in_the_check_run(
    terraform: Terraform, github: GitHubServer
) -> None:
    """Found walking terraform-aws-eks: predict, serve and the Action reported block risks, the worker never
    did."""
    first, pushed, _ = terraform.shas
    world = World(terraform.settings, github)
    try:
        assert world.send(push_payload(terraform.repo, [pushed], before=first), delivery="tf-1") == 202
        worker = world.work()
        assert (worker.stats.processed, worker.stats.failed) == (1, 0)
        [run] = world.github.api.runs_for(pushed)
    finally:
        world.close()
    summary = run["output"]["summary"]
    assert "#### Terraform blocks (block-level model `tf-blocks`)" in summary, summary
    assert "module.eks_managed_node_group" in summary


def _comparable(rows: list[PredictionRecord]) -> list[dict[str, Any]]:
    """The rows without what differs by design: the ids (the service's are new for every answer, a worker's
    the same on every retry; shadow_of names them), the time they were written, and the repository's name
    (the service's id of it, a worker's GitHub owner/name); the scores to twelve decimals."""
    kept = []
    for row in rows:
        kept.append(
            {
                "model": (row.model_name, row.model_version, row.served),
                "commit_sha": row.commit_sha,
                "inputs": dict(row.inputs),
                "score": round(row.score, 12),
                "decision": (row.threshold, row.risk_label, row.risk_band),
            }
        )
    return sorted(kept, key=lambda r: (r["model"][0], str(r["inputs"].get("address"))))


def test_the_worker_logs_the_rows_the_api_logs_for_the_same_commit_blocks_included(
    terraform: Terraform, github: GitHubServer, tmp_path: Path
) -> None:
    """Was: the API logged the commit and its two changed blocks; the worker the commit alone, with only its
    model's three features as inputs (no other change metric, no commit time), so monitoring of the block
    model saw nothing of event-driven scoring."""
    _, before, fixed = terraform.shas
    settings = terraform.settings
    # The service scores from the miner state of its repository (`defectops mine`).
    Miner(GitRepo.open(terraform.repo.path), Workspace.from_settings(settings), MineOptions(workers=1)).mine()
    api_log = f"sqlite:///{tmp_path / 'api-predictions.db'}"
    serve = ServeSettings(model_name="tf", log_url=api_log, repositories={"widgets": terraform.repo.path})
    with TestClient(create_app(settings, serve, registry=terraform.registry)) as client:
        response = client.post("/v1/commits/score", json={"repo": "widgets", "commit": fixed})
        assert response.status_code == 200, response.text
    with PredictionLog.from_url(api_log) as log:
        from_api = log.by_commit("widgets", fixed)

    world = World(settings, github)
    try:
        assert world.send(push_payload(terraform.repo, [fixed], before=before), delivery="tf-1") == 202
        assert world.work().stats.processed == 1
        from_worker = world.log.by_commit(REPO, fixed)
        # The same push delivered again (GitHub's "redeliver"): every row's id is the one already logged.
        assert world.send(push_payload(terraform.repo, [fixed], before=before), delivery="tf-2") == 202
        [again] = world.work().stats.outcomes
        assert again.logged == 0
        assert len(world.log.by_commit(REPO, fixed)) == len(from_worker)
    finally:
        world.close()

    assert sorted(r.model_name for r in from_api) == ["tf", "tf-blocks", "tf-blocks"]
    assert _comparable(from_worker) == _comparable(from_api)
    [commit] = [r for r in from_worker if r.model_name == "tf"]
    assert commit.inputs["commit_time"] == "2020-01-04T00:00:00+00:00"
    assert {"la", "ld", "nf", "ns", "entropy", "exp", "fix"} <= set(commit.inputs)
    assert {r.inputs.get("address") for r in from_worker} == {None, "var.region", "aws_iam_role.this"}
    assert len({r.prediction_id for r in from_worker}) == 3
