"""Fixtures of the service tests (imported by tests/serving/test_api_*.py, which star-import them).

One real MLflow SQLite registry per test session (migrating a fresh one costs seconds) holding three logged
runs: two tiny LightGBM models trained on seeded synthetic change metrics (``good_a``, ``good_b``) and one
whose artifact the session then corrupts (``broken``). Tests register these runs under a model name of their
own (registering an already logged model is cheap), so alias moves in one test never leak into another.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from defectops.config import ServeSettings, Settings
from defectops.data.schemas import FEATURES
from defectops.registry.registry import ModelRegistry
from defectops.registry.runs import TrainingRun, log_training_run
from defectops.registry.tracking import TrackingConfig, ensure_experiment
from defectops.serving.app import create_app
from defectops.training.models import LightGBMJIT, make_model

ADMIN_TOKEN = "test-admin-token-0123456789"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def synthetic_changes(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Seeded change metrics: larger and less experienced changes induce defects more often."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.gamma(2.0, 10.0, rows).round(1) for name in FEATURES})
    frame["fix"] = rng.integers(0, 2, rows).astype(float)
    frame["entropy"] = rng.uniform(0, 3, rows).round(3)
    logit = 0.04 * frame["la"] - 0.03 * frame["exp"] + rng.normal(0, 1, rows) - 0.5
    labels = (logit > 0).astype(int).to_numpy()
    return frame, labels


def fit_model(seed: int) -> tuple[LightGBMJIT, pd.DataFrame]:
    frame, labels = synthetic_changes(400, seed)
    model = make_model("lightgbm", n_estimators=40, random_state=seed)
    model.fit(frame, labels)
    assert isinstance(model, LightGBMJIT)
    return model, frame


@dataclass(frozen=True)
class Session:
    """The session's registry workspace and its logged runs."""

    workspace: Path
    config: TrackingConfig
    good_a: TrainingRun
    good_b: TrainingRun
    broken: TrainingRun
    model_a: LightGBMJIT
    model_b: LightGBMJIT
    reference: pd.DataFrame


def _log(model: LightGBMJIT, frame: pd.DataFrame, config: TrackingConfig, name: str) -> TrainingRun:
    return log_training_run(
        model,
        features=list(FEATURES),
        reference=frame,
        params={"seed": name},
        metrics={"roc_auc": 0.8},
        dataset_fingerprint=f"fp-{name}",
        config=config,
        threshold=model.threshold_,
        reference_max_rows=50,
    )


def _corrupt(run: TrainingRun, config: TrackingConfig) -> None:
    """Overwrite the serialised estimator of a logged model with garbage (a broken artifact)."""
    import mlflow

    from defectops.registry.tracking import activate

    activate(config)
    assert run.model_id is not None, "MLflow 3 logs every model as a logged model with an id"
    logged = mlflow.get_logged_model(run.model_id)
    root = Path(logged.artifact_location.removeprefix("file://"))
    files = [p for p in root.rglob("model.*") if p.suffix in (".skops", ".pkl")]
    assert files, f"no serialised model under {root}"
    for path in files:
        path.write_bytes(b"this is not a model")


_SESSION: dict[Path, Session] = {}


@pytest.fixture(scope="session")
def api_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """The session's registry, built once per test session even though every test module imports this.

    pytest registers a fixture imported into several modules once per module; the cache keyed by the
    session's base temporary folder keeps the expensive part (migration, three logged runs) to one.
    """
    base = tmp_path_factory.getbasetemp()
    if base not in _SESSION:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        workspace = tmp_path_factory.mktemp("serving-ws")
        config = TrackingConfig.resolve(workspace)
        ensure_experiment(config)
        model_a, frame_a = fit_model(0)
        model_b, frame_b = fit_model(1)
        broken_model, _ = fit_model(2)
        good_a = _log(model_a, frame_a, config, "a")
        good_b = _log(model_b, frame_b, config, "b")
        broken = _log(broken_model, frame_a, config, "broken")
        _corrupt(broken, config)
        _SESSION[base] = Session(workspace, config, good_a, good_b, broken, model_a, model_b, frame_a)
    return _SESSION[base]


def unique_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:90].strip("-")


@dataclass
class Deployed:
    """A model name of this test with v1 = run a (champion) and optionally v2 = run b (challenger)."""

    name: str
    registry: ModelRegistry
    session: Session

    def register(self, run: TrainingRun, *, champion: bool = False) -> int:
        version = self.registry.register(self.name, run.model_uri, who="test", why="test", now=NOW)
        if champion:
            self.registry.promote(self.name, version.version, "test", "test", now=NOW)
        return version.version


@pytest.fixture
def registry(api_session: Session) -> ModelRegistry:
    return ModelRegistry(api_session.config)


@pytest.fixture
def deployed(api_session: Session, registry: ModelRegistry, request: pytest.FixtureRequest) -> Deployed:
    """v1 (run a) is the champion, v2 (run b) the challenger."""
    target = Deployed(unique_name(request), registry, api_session)
    target.register(api_session.good_a, champion=True)
    target.register(api_session.good_b)
    return target


class Clock:
    """A controllable clock: every call returns the current time, then moves it on by one millisecond."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        value = self.now
        self.now += timedelta(milliseconds=1)
        return value


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(
    api_session: Session, tmp_path: Path, registry: ModelRegistry
) -> Iterator[Callable[..., TestClient]]:
    """``make_client(model_name, **serve_settings)`` -> a started TestClient (lifespan run); closed after."""
    clients: list[TestClient] = []

    def make(model_name: str, **overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "model_name": model_name,
            "admin_token": ADMIN_TOKEN,
            "log_url": f"sqlite:///{tmp_path / 'predictions.db'}",
            "poll_seconds": 3600.0,
        }
        values.update(overrides)
        settings = Settings(workspace=api_session.workspace, mode="local")
        app = create_app(settings, ServeSettings(**values), registry=registry, clock=Clock())
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def admin(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record_of(frame: pd.DataFrame, row: int) -> dict[str, float]:
    """Row ``row`` of a metrics table as a JSON record of the 14 features."""
    return {name: float(frame.iloc[row][name]) for name in FEATURES}
