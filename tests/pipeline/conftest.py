"""One synthetic repository for the pipeline tests, built once per session (it takes a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitrepo import RepoBuilder
from synthetic_history import build_synthetic


@pytest.fixture(scope="session")
def synthetic_repo(tmp_path_factory: pytest.TempPathFactory) -> RepoBuilder:
    return build_synthetic(Path(tmp_path_factory.mktemp("synthetic")) / "repo")


@pytest.fixture
def quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workspace's embedded MLflow, whatever ran before in this process, and no telemetry."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
