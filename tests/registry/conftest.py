"""Shared fixtures for the registry tests.

A fresh MLflow SQLite database costs seconds to migrate, so one workspace (database, artifacts, audit table)
is created per test session; tests stay independent by using their own model names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import TrainingRun, log_training_run
from defectops.registry.tracking import TrackingConfig, ensure_experiment

FEATURES = ["la", "ld", "nf"]


@pytest.fixture(scope="session")
def tracking_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingConfig]:
    """The session's embedded MLflow store, migrated once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no network calls from tests
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        workspace: Path = tmp_path_factory.mktemp("registry-ws")
        config = TrackingConfig.resolve(workspace)
        ensure_experiment(config)
        yield config


@pytest.fixture
def registry(tracking_config: TrackingConfig) -> ModelRegistry:
    return ModelRegistry(tracking_config)


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name unique to this test (test node names are unique within a session)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:100].strip("-")


def _training_frame(rows: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A small deterministic training table: defects more likely with more added lines."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "la": rng.integers(0, 200, rows).astype(float),
            "ld": rng.integers(0, 50, rows).astype(float),
            "nf": rng.integers(1, 10, rows).astype(float),
        }
    )
    y = (frame["la"] + rng.normal(0, 40, rows) > 120).astype(int).to_numpy()
    return frame, y


Fitted = tuple[LogisticRegression, pd.DataFrame, np.ndarray]


@pytest.fixture
def fit_tiny() -> Callable[[int], Fitted]:
    """Fit a tiny real LogisticRegression on the seeded table: ``fit_tiny(seed) -> (model, frame, y)``."""

    def fit(seed: int = 0) -> Fitted:
        frame, y = _training_frame(seed=seed)
        return LogisticRegression(max_iter=500).fit(frame[FEATURES], y), frame, y

    return fit


@pytest.fixture
def tiny_model(fit_tiny: Callable[[int], Fitted]) -> Fitted:
    return fit_tiny(0)


@pytest.fixture(scope="session")
def shared_run(tracking_config: TrackingConfig) -> TrainingRun:
    """One logged training run (tiny model of seed 0, threshold 0.4) that tests may register many times.

    Registering the same logged model again creates a new version without re-logging, which keeps alias
    tests fast; tests that damage an artifact must log their own.
    """
    frame, y = _training_frame(seed=0)
    model = LogisticRegression(max_iter=500).fit(frame[FEATURES], y)
    return log_training_run(
        model,
        features=FEATURES,
        reference=frame,
        params={"C": 1.0},
        metrics={"roc_auc": 0.8},
        dataset_fingerprint="fp-shared",
        config=tracking_config,
        threshold=0.4,
    )
