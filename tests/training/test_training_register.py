"""`defectops train --register NAME`: the step-by-step path logs to MLflow and registers a challenger."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from defectops.cli import main
from defectops.registry.tracking import TrackingConfig


@pytest.mark.slow  # an integration test of over 10 s: CI's slow run
def test_train_register_logs_the_run_and_registers_a_challenger(
    table: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = tmp_path / "changes.parquet"
    table.to_parquet(data)
    ws = tmp_path / "ws"
    main(
        ["-w", str(ws), "train", "--data", str(data), "--budget-seconds", "0", "--register", "step", "--json"]
    )
    document = json.loads(capsys.readouterr().out)
    registered = document["registered"]
    assert (registered["model_name"], registered["version"], registered["alias"]) == ("step", 1, "challenger")
    client = MlflowClient(tracking_uri=TrackingConfig.resolve(ws).tracking_uri)
    run = client.get_run(registered["run_id"])
    assert run.data.metrics["roc_auc"] == pytest.approx(document["roc_auc"])
    plots = {a.path for a in client.list_artifacts(registered["run_id"], "plots")}
    assert "plots/roc.svg" in plots
    assert int(client.get_model_version_by_alias("step", "challenger").version) == 1
