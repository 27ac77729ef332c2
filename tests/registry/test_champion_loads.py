"""A champion always loads: every move of the champion alias loads the version and smoke-scores it first
(issue #14: ``models promote`` of a truncated artifact exited 0, and the next service start answered 503)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from defectops.errors import ModelError
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import TrainingRun, log_training_run
from defectops.registry.tracking import TrackingConfig, activate
from registry.conftest import FEATURES, Fitted

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _truncate_artifact(run: TrainingRun, config: TrackingConfig) -> None:
    import mlflow

    activate(config)
    root = Path(mlflow.get_logged_model(run.model_id).artifact_location.removeprefix("file://"))
    files = [p for p in root.rglob("model.*") if p.suffix in (".skops", ".pkl")]
    assert files
    for path in files:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def truncated_run(tracking_config: TrackingConfig, tiny_model: Fitted) -> TrainingRun:
    model, frame, _y = tiny_model
    run = log_training_run(
        model, features=FEATURES, reference=frame, params={}, metrics={}, dataset_fingerprint="fp-truncated",
        config=tracking_config, threshold=0.4,
    )  # fmt: skip
    _truncate_artifact(run, tracking_config)
    return run


@pytest.mark.slow  # an integration test of over 15 s: CI's slow run
def test_promoting_a_truncated_artifact_is_refused_from_the_cli(
    registry: ModelRegistry,
    model_name: str,
    shared_run: TrainingRun,
    truncated_run: TrainingRun,
    tracking_config: TrackingConfig,
) -> None:
    registry.register(model_name, shared_run.model_uri, who="ci", why="train", now=T0)
    registry.register(model_name, truncated_run.model_uri, who="ci", why="train", now=T0)
    registry.promote(model_name, 1, "ci", "first", now=T0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEFECTOPS_", "MLFLOW_"))}
    env |= {"DEFECTOPS_WORKSPACE": str(tracking_config.workspace), "MLFLOW_DISABLE_TELEMETRY": "true"}
    for force in ([], ["--force"]):
        done = subprocess.run(
            [sys.executable, "-c", "from defectops.cli import main; main()", "models", "promote", model_name, "2",
             "--why", "try the truncated one", *force],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert done.returncode != 0
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert f"{model_name} v2 cannot become champion" in lines[0]
        assert "Traceback" not in done.stderr
    assert registry.alias_version(model_name, "champion") == 1


def test_a_rollback_to_a_version_that_no_longer_loads_is_refused(
    registry: ModelRegistry, model_name: str, shared_run: TrainingRun, tracking_config: TrackingConfig,
    tiny_model: Fitted,
) -> None:  # fmt: skip
    model, frame, _y = tiny_model
    doomed = log_training_run(
        model, features=FEATURES, reference=frame, params={}, metrics={}, dataset_fingerprint="fp-doomed",
        config=tracking_config, threshold=0.4,
    )  # fmt: skip
    registry.register(model_name, doomed.model_uri, who="ci", why="train", now=T0)
    registry.register(model_name, shared_run.model_uri, who="ci", why="train", now=T0)
    registry.promote(model_name, 1, "ci", "first", now=T0)
    registry.promote(model_name, 2, "ci", "second", now=T0)
    _truncate_artifact(doomed, tracking_config)
    with pytest.raises(ModelError, match="v1 cannot become champion"):
        registry.rollback(model_name, "ci", "back", now=T0)
    assert registry.alias_version(model_name, "champion") == 2
