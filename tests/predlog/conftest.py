"""Fixtures for the prediction-log tests: the same tests run on SQLite and on a real PostgreSQL.

PostgreSQL comes from DEFECTOPS_TEST_POSTGRES_URL (CI starts a server with .ci/postgres.sh and exports it).
Locally an unset URL skips the PostgreSQL variants; in CI (CI=true) an unset URL fails them, so a broken CI
set-up can never pass by silently testing SQLite only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from defectops.predlog import PredictionLog

POSTGRES_ENV = "DEFECTOPS_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The configured server URL (skip locally, fail in CI when it is missing)."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        message = f"{POSTGRES_ENV} is not set; start a server with .ci/postgres.sh and export its URL"
        if _in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema of their own, dropped after the test.

    Schemas keep tests independent of each other and of anything else in the database (parallel runs, other
    people's tables) without needing the right to create databases.
    """
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(make_url(postgres_server_url).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        base = make_url(postgres_server_url).set(drivername="postgresql+psycopg")
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty prediction log, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def log(log_url: str) -> Iterator[PredictionLog]:
    """An open, empty prediction log on each backend."""
    store = PredictionLog.from_url(log_url)
    try:
        yield store
    finally:
        store.close()
