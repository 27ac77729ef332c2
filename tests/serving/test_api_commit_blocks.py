"""POST /v1/commits/score with the repository's block-level model (#17): each commit's changed Terraform
blocks, with their risk, band and reasons, logged beside the commit.

The repository is the hand-worked Terraform history of tests/mining/test_block_features.py (every block
feature of it worked out by hand there); the block model is a small LightGBM fitted on seeded block rows,
registered as ``<name>-blocks``, so the answered probabilities are checked against its own predict_proba on
the hand-worked features.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.config import TrackingSettings, Workspace
from defectops.data import BLOCK_FEATURES, EFFORT, LABEL, TIME
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner
from defectops.predlog import PredictionLog
from defectops.registry import ModelRegistry, log_training_run
from defectops.registry.tracking import TrackingConfig
from defectops.training import train_block_model
from gitrepo import ALICE, BOB, EPOCH, RepoBuilder
from mining.test_block_features import GROUP, REGION, ROLE
from serving.conftest_api import *  # noqa: F403 - the fixtures
from serving.conftest_api import NOW, Deployed, MakeClient, Session, _corrupt


def _history(path: Path, session: Session) -> tuple[RepoBuilder, list[str]]:
    """The first three commits of tests/mining/test_block_features.py's history, mined into the service's
    workspace (the service scores from the miner state)."""
    repo = RepoBuilder.create(path)
    shas = [
        repo.commit("Add role and node group", {"main.tf": ROLE % ("role", "") + GROUP % 2}, author=ALICE),
        repo.commit("Grow the node group", {"main.tf": ROLE % ("role", "") + GROUP % 3}, author=BOB, days=1),
        repo.commit(
            "Fix role name", {"main.tf": REGION + ROLE % ("role2", "") + GROUP % 3}, author=ALICE, days=2
        ),
    ]
    Miner(GitRepo.open(repo.path), Workspace(session.workspace), MineOptions(workers=1)).mine()
    return repo, shas


def _block_model(seed: int = 0) -> tuple[object, pd.DataFrame]:
    """Seeded block rows (blocks with more lines added are defect-inducing more often), fitted as the
    block-level model is (LightGBM defaults, time-ordered folds for calibration and bands)."""
    rng = np.random.default_rng(seed)
    rows = 400
    table = pd.DataFrame({name: rng.integers(0, 6, rows).astype("float64") for name in BLOCK_FEATURES})
    table["blk_la"] = rng.gamma(2.0, 4.0, rows).round()
    table[EFFORT] = table["blk_la"] + table["blk_ld"]
    logit = 0.25 * table["blk_la"] - 2.0 + rng.normal(0, 1, rows)
    table[LABEL] = (logit > 0).astype("int64")
    table[TIME] = pd.date_range(EPOCH, periods=rows, freq="D", tz="UTC")
    fitted = train_block_model(table, waiting_days=0, seed=seed)
    return fitted.model, table


def _register_blocks(deployed: Deployed, session: Session, *, broken: bool = False) -> object:
    model, table = _block_model()
    name = f"{deployed.name}-blocks"
    run = log_training_run(
        model,
        features=list(BLOCK_FEATURES),
        reference=table,
        params={"level": "block"},
        metrics={"roc_auc": 0.7},
        dataset_fingerprint=f"blocks-{deployed.name}",
        config=session.config,
        threshold=float(model.threshold_),  # type: ignore[attr-defined]
        reference_max_rows=50,
    )
    version = deployed.registry.register(name, run.model_uri, who="test", why="test", now=NOW)
    deployed.registry.promote(name, version.version, "test", "test", now=NOW)
    if broken:  # its artifact overwritten with garbage after the promotion
        _corrupt(run, session.config)
    return model


def test_commit_score_lists_each_changed_block_with_risk_band_and_reasons_and_logs_them(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo, shas = _history(tmp_path / "tf", api_session)
    model = _register_blocks(deployed, api_session)
    client = make_client(deployed.name, repositories={"tf": repo.path})

    response = client.post("/v1/commits/score", json={"repo": "tf", "commit": shas[2]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "block_notes" not in body  # every block was scored
    [commit] = body["predictions"]
    blocks = commit["blocks"]
    # By hand: "Fix role name" puts the variable first (line 1), then the role (lines 2-5) whose name it
    # changes; the node group (lines 6-9) is untouched. Two blocks, riskiest first.
    by_address = {b["address"]: b for b in blocks}
    assert set(by_address) == {"var.region", "aws_iam_role.this"}
    region, role = by_address["var.region"], by_address["aws_iam_role.this"]
    assert (region["path"], region["change"], region["first_line"], region["last_line"]) == (
        "main.tf",
        "added",
        1,
        1,
    )
    assert (role["path"], role["change"], role["first_line"], role["last_line"]) == (
        "main.tf",
        "changed",
        2,
        5,
    )
    assert [b["probability"] for b in blocks] == sorted((b["probability"] for b in blocks), reverse=True)
    for block in blocks:
        assert block["model_name"] == f"{deployed.name}-blocks"
        assert block["model_version"] == "1"
        assert block["risk_band"] in ("minimal", "low", "medium", "high")
        assert block["reasons"]
        assert len(block["reasons_text"]) == len(block["reasons"])

    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        stored = {p.prediction_id: p for p in log.by_commit("tf", shas[2])}
    # The commit and its two blocks, each under the id it was answered with.
    assert set(stored) == {commit["prediction_id"], region["prediction_id"], role["prediction_id"]}
    logged = stored[role["prediction_id"]]
    assert (logged.model_name, logged.inputs["address"], logged.inputs["change"]) == (
        f"{deployed.name}-blocks",
        "aws_iam_role.this",
        "changed",
    )
    # Hand-worked in tests/mining/test_block_features.py: the fix changes 2 blocks; the role is 3 days old,
    # changed once before, never fixed; Alice changed it and the file once before; 3 blocks in the file.
    hand = {
        "blk_fix": 1.0,
        "blk_commit_blocks": 2.0,
        "blk_age": 3.0,
        "blk_since_change": 3.0,
        "blk_changes": 1.0,
        "blk_fixes": 0.0,
        "blk_author_changes": 1.0,
        "blk_author_file_changes": 1.0,
        "blk_file_blocks": 3.0,
    }
    assert {k: logged.inputs[k] for k in hand} == hand
    row = pd.DataFrame([{name: logged.inputs[name] for name in BLOCK_FEATURES}], dtype="float64")
    assert role["probability"] == pytest.approx(float(model.predict_proba(row)[0, 1]), abs=1e-9)  # type: ignore[attr-defined]
    assert logged.score == pytest.approx(role["probability"], abs=1e-12)


def test_blocks_of_a_commit_outside_head_are_not_scored_and_the_answer_says_why(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo, shas = _history(tmp_path / "tf", api_session)
    _register_blocks(deployed, api_session)
    # A commit on a side branch: the service scores the commit, but its blocks' history features are read
    # from the block table of HEAD's history, which does not hold it (predict says the same).
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit(
        "Grow it on a branch", {"main.tf": ROLE % ("role", "") + GROUP % 4}, author=BOB, days=1
    )
    repo.git("checkout", "-q", "main")
    client = make_client(deployed.name, repositories={"tf": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "tf", "commit": side})
    assert response.status_code == 200, response.text
    body = response.json()
    [commit] = body["predictions"]
    assert commit["blocks"] == []
    assert body["block_notes"] == ["Terraform blocks not scored for 1 commit(s) outside the history of HEAD"]
    assert shas  # the main line is untouched


def test_commit_score_without_a_block_model_answers_as_before(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo, shas = _history(tmp_path / "tf", api_session)
    client = make_client(deployed.name, repositories={"tf": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "tf", "commit": shas[2]})
    assert response.status_code == 200, response.text
    body = response.json()
    [commit] = body["predictions"]
    assert "blocks" not in commit
    assert "block_notes" not in body
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        assert [p.model_name for p in log.by_commit("tf", shas[2])] == [deployed.name]


def test_commit_score_with_a_broken_block_model_is_503_and_logs_nothing(
    deployed: Deployed, make_client: MakeClient, api_session: Session, tmp_path: Path
) -> None:
    repo, shas = _history(tmp_path / "tf", api_session)
    _register_blocks(deployed, api_session, broken=True)
    client = make_client(deployed.name, repositories={"tf": repo.path})
    response = client.post("/v1/commits/score", json={"repo": "tf", "commit": shas[2]})
    assert response.status_code == 503, response.text
    assert "\n" not in response.json()["detail"]
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        assert log.by_commit("tf", shas[2]) == []


def _unreachable_registry(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """A registry client of an MLflow tracking server that is down (a loopback port nobody listens on)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = TrackingSettings(tracking_uri=f"http://127.0.0.1:{port}")
    return ModelRegistry(TrackingConfig.resolve(workspace, settings))


def test_commit_score_keeps_the_block_model_in_use_while_the_registry_is_unreachable(
    deployed: Deployed,
    make_client: MakeClient,
    api_session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, shas = _history(tmp_path / "tf", api_session)
    _register_blocks(deployed, api_session)
    client = make_client(deployed.name, repositories={"tf": repo.path}, poll_seconds=0.001)
    before = client.post("/v1/commits/score", json={"repo": "tf", "commit": shas[2]})
    assert before.status_code == 200, before.text
    # The MLflow server stops; the block champion is looked up again on the next request (poll passed).
    # Was: 503 'cannot read model ...-blocks from the registry' for every commit, although the commit-level
    # champion was loaded and /v1/predict kept answering.
    client.app.state.service.blocks.registry = _unreachable_registry(tmp_path / "ws", monkeypatch)  # type: ignore[attr-defined]
    after = client.post("/v1/commits/score", json={"repo": "tf", "commit": shas[2]})
    assert after.status_code == 200, after.text
    body = after.json()
    assert "block_notes" not in body
    [commit] = body["predictions"]
    assert [b["address"] for b in commit["blocks"]] == [
        b["address"] for b in before.json()["predictions"][0]["blocks"]
    ]
    assert {b["model_version"] for b in commit["blocks"]} == {"1"}


def test_commit_score_answers_without_blocks_when_the_registry_is_unreachable_from_the_start(
    deployed: Deployed,
    make_client: MakeClient,
    api_session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, shas = _history(tmp_path / "tf", api_session)
    _register_blocks(deployed, api_session)
    client = make_client(deployed.name, repositories={"tf": repo.path})
    client.app.state.service.blocks.registry = _unreachable_registry(tmp_path / "ws", monkeypatch)  # type: ignore[attr-defined]
    response = client.post("/v1/commits/score", json={"repo": "tf", "commit": shas[2]})
    assert response.status_code == 200, response.text
    body = response.json()
    [commit] = body["predictions"]
    assert commit["model_name"] == deployed.name
    assert "blocks" not in commit  # not known, so not claimed empty
    [note] = body["block_notes"]
    assert note.startswith("Terraform blocks not scored: the block model could not be looked up (")
    assert "\n" not in note
    with PredictionLog.from_url(f"sqlite:///{tmp_path / 'predictions.db'}") as log:
        assert [p.model_name for p in log.by_commit("tf", shas[2])] == [deployed.name]


def test_openapi_shows_the_blocks_of_a_scored_commit(deployed: Deployed, make_client: MakeClient) -> None:
    client = make_client(deployed.name)
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    blocks = schemas["CommitPredictionOut"]["properties"]["blocks"]
    assert blocks["anyOf"][0]["items"]["$ref"] == "#/components/schemas/BlockRiskOut"
    assert {"address", "first_line", "last_line", "risk_band", "reasons"} <= set(
        schemas["BlockRiskOut"]["required"]
    )
    response = schemas["CommitScoreResponse"]["properties"]["predictions"]
    assert response["items"]["$ref"] == "#/components/schemas/CommitPredictionOut"
