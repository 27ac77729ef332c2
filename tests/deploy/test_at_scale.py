"""The at-scale configuration, proven as one system without containers (issue #15).

Real processes on loopback: an S3 server (moto in server mode, the one the storage tests use), an ``mlflow
server`` whose backend store is PostgreSQL and whose artifacts go to that S3 bucket, ``defectops run`` against
``MLFLOW_TRACKING_URI=http://…``, ``defectops serve --workers 2`` with the prediction log and the audit table
in PostgreSQL, then scoring, feedback, ``defectops heal --once``, a promotion and a rollback through the
service. It checks that every artifact is in S3 (none in the workspace), every answered prediction is a row
in PostgreSQL, and the aliases ended where the audit history says.

Needs DEFECTOPS_TEST_POSTGRES_URL (``.ci/run`` starts PostgreSQL with ``.ci/postgres.sh``); skipped locally
without it, failed in CI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from deploy_stack import (
    defectops_serve,
    mlflow_server,
    pg_schemas,
    run_cli,
    s3_environment,
    s3_server,
)
from synthetic_history import build_synthetic

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

BUCKET = "defectops-artifacts"


@pytest.fixture(scope="module")
def postgres_server_url() -> str:
    url = os.environ.get("DEFECTOPS_TEST_POSTGRES_URL", "").strip()
    if not url:
        message = "DEFECTOPS_TEST_POSTGRES_URL is not set; start a server with .ci/postgres.sh"
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return url


def _records(workspace: Path, repo_id: str, features: list[str], count: int) -> list[dict[str, object]]:
    commits = pd.read_parquet(workspace / "datasets" / repo_id / "commits.parquet")
    commits = commits.tail(count)
    records = []
    for _, row in commits.iterrows():
        record: dict[str, object] = {name: row[name] for name in features}
        record["fix"] = bool(record["fix"])
        for name in features:
            if name != "fix":
                record[name] = float(row[name])
        record["repo"] = repo_id
        record["commit_sha"] = str(row["sha"])
        records.append(record)
    return records


def test_the_at_scale_stack_runs_as_one_system(postgres_server_url: str, tmp_path: Path) -> None:
    repo = build_synthetic(tmp_path / "repo")
    workspace = tmp_path / "ws"
    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        pg_schemas(postgres_server_url, "mlflow", "predlog", "audit") as urls,
        s3_server(BUCKET) as endpoint,
        mlflow_server(urls["mlflow"], f"s3://{BUCKET}/mlflow", endpoint, logs) as tracking,
    ):
        env = {
            **os.environ,
            **s3_environment(endpoint),
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DEFECTOPS_WORKSPACE": str(workspace),
            "DEFECTOPS_AUDIT_DB_URL": urls["audit"],
            "DEFECTOPS_SERVE_LOG_URL": urls["predlog"],
        }
        for name in ("MLFLOW_REGISTRY_URI", "DEFECTOPS_MLFLOW_ARTIFACTS"):
            env.pop(name, None)

        # 1. The main job against the tracking server: champion v1.
        first = json.loads(
            run_cli(
                ["run", "--repo", str(repo.path), "--budget-seconds", "0", "--recent", "3", "--json"], env
            ).stdout
        )
        assert first["registry"]["version"] == 1
        assert first["registry"]["champion_version"] == 1
        listed = json.loads(run_cli(["models", "list", "--json"], env).stdout)["models"]
        assert len(listed) == 1
        model = listed[0]["name"]
        # The model is named after the repository's root commit; the dataset folder after its path.
        (dataset,) = (workspace / "datasets").glob("*/commits.parquet")
        repo_id = dataset.parent.name

        # 2. A second version (another model kind), registered through the same server.
        second = json.loads(
            run_cli(
                [
                    "run",
                    "--repo",
                    str(repo.path),
                    "--model",
                    "logreg",
                    "--budget-seconds",
                    "0",
                    "--recent",
                    "0",
                    "--json",
                ],
                env,
            ).stdout
        )
        assert second["registry"]["version"] == 2

        # 3. The service: two workers, PostgreSQL log, production mode.
        with defectops_serve(env, urls["predlog"], model, logs, workers=2) as service:
            client = httpx.Client(base_url=service.url, timeout=60)
            served = client.get("/v1/models").json()
            champion_before = served["champion"]["version"]
            features = list(served["champion"]["features"])
            records = _records(workspace, repo_id, features, 40)
            ids: list[str] = []
            for start in range(0, len(records), 10):
                answer = client.post("/v1/predict", json={"records": records[start : start + 10], "top_k": 2})
                assert answer.status_code == 200, answer.text
                ids += [p["prediction_id"] for p in answer.json()["predictions"]]
            assert len(ids) == len(set(ids)) == 40

            # Feedback, by prediction id and by (repo, commit).
            statuses = []
            for number, prediction_id in enumerate(ids[:20]):
                answer = client.post(
                    "/v1/feedback",
                    json={"prediction_id": prediction_id, "label": number % 2},
                    headers=service.headers(),  # writing labels needs the feedback or admin token
                )
                statuses.append(answer.status_code)
            answer = client.post(
                "/v1/feedback",
                json={"repo": repo_id, "commit_sha": records[-1]["commit_sha"], "label": 1},
                headers=service.headers(),
            )
            statuses.append(answer.status_code)
            assert set(statuses) == {201}, statuses

            # 4. One heal cycle against the same registry, log and audit table.
            heal = json.loads(run_cli(["heal", "--repo", str(repo.path), "--once", "--json"], env).stdout)
            assert heal["model_name"] == model
            steps = [r["step"] for r in heal["records"]]
            assert steps[0] == "refresh"
            assert "monitor" in steps, steps
            assert "decide" in steps, steps

            # 5. Promote the other version through the service, then roll back (both audited).
            other = 2 if champion_before == 1 else 1
            answer = client.post(
                "/v1/models/promote",
                json={"version": other, "why": "at-scale test: promote", "who": "ci", "force": True},
                headers=service.headers(),
            )
            assert answer.status_code == 200, answer.text
            answer = client.post("/v1/predict", json={"records": records[:5], "top_k": 0})
            assert {p["model_version"] for p in answer.json()["predictions"]} == {str(other)}
            ids += [p["prediction_id"] for p in answer.json()["predictions"]]
            answer = client.post(
                "/v1/models/rollback",
                json={"why": "at-scale test: roll back", "who": "ci"},
                headers=service.headers(),
            )
            assert answer.status_code == 200, answer.text
            # Both workers follow the control file: every answer comes from the restored champion.
            for _ in range(10):
                answer = client.post("/v1/predict", json={"records": records[:2], "top_k": 0})
                ids += [p["prediction_id"] for p in answer.json()["predictions"]]
                assert {p["model_version"] for p in answer.json()["predictions"]} <= {str(champion_before)}
            metrics = client.get("/metrics").text
            assert "defectops_predictions_total" in metrics

        # Every answered prediction is a row of the PostgreSQL log.
        engine = sa.create_engine(urls["predlog"])
        with engine.connect() as connection:
            logged = {row[0] for row in connection.exec_driver_sql("SELECT prediction_id FROM predictions")}
            feedback = connection.exec_driver_sql("SELECT count(*) FROM feedback").scalar_one()
        engine.dispose()
        assert set(ids) <= logged
        assert feedback >= 21

        # The aliases are where the audit history says.
        history = json.loads(run_cli(["models", "list", model, "--history", "--json"], env).stdout)
        champion_moves = [e for e in history["history"] if e["alias"] == "champion"]
        assert [e["action"] for e in champion_moves][-2:] == ["promote", "rollback"]
        assert champion_moves[-1]["to_version"] == champion_before
        assert history["aliases"].get("champion") == champion_before

        # Every artifact is in S3, none in the workspace.
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
        keys = {
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])
        }
        assert any(key.endswith("MLmodel") for key in keys), sorted(keys)[:20]
        assert any("reference/features.parquet" in key for key in keys)
        assert not (workspace / "mlflow" / "artifacts").exists() or not any(
            (workspace / "mlflow" / "artifacts").rglob("*")
        )
        assert not (workspace / "mlflow" / "mlflow.db").exists()
        from mlflow import MlflowClient

        client_mlflow = MlflowClient(tracking_uri=tracking)
        for version in client_mlflow.search_model_versions(f"name='{model}'"):
            run = client_mlflow.get_run(version.run_id)
            assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
            prefix = run.info.artifact_uri.split("mlflow-artifacts:/", 1)[1].lstrip("/")
            assert any(key.startswith(f"mlflow/{prefix}") for key in keys), prefix


def _boto_credentials() -> dict[str, str]:
    from deploy_stack import REGION, S3_KEY, S3_SECRET

    return {"aws_access_key_id": S3_KEY, "aws_secret_access_key": S3_SECRET, "region_name": REGION}
