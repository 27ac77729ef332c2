"""The audit database when it is down or was restarted: one line saying so (ModelError: try again later, HTTP
503), never a raw SQLAlchemy error, and a restarted PostgreSQL is used again at once.

Found running the at-scale stack: with the audit database stopped, the web UI's /ui/api/overview answered 500
with a traceback in the service log, and `heal` said "cannot open the audit database …: (psycopg.
OperationalError) … (Background on this error at: https://sqlalche.me/…)", exit 2 as if a setting were wrong.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from defectops.errors import ConfigError, ModelError
from defectops.registry.audit import AuditEvent, AuditLog
from predlog.conftest import postgres_server_url, postgres_url

__all__ = ["postgres_server_url", "postgres_url"]  # fixtures, re-exported

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _move() -> AuditEvent:
    return AuditEvent(
        registry="embedded",
        model_name="m",
        alias="champion",
        action="promote",
        from_version=None,
        to_version=1,
        who="alice",
        why="first",
        at=NOW,
        evidence={},
    )


def test_an_unreachable_server_is_one_line_and_a_model_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://defectops:SECRET@127.0.0.1:{port}/audit"
    with pytest.raises(ModelError) as caught:
        AuditLog(url).events(AuditEvent, "m")
    message = str(caught.value)
    assert message.startswith(
        f"cannot open the audit database postgresql+psycopg://defectops:***@127.0.0.1:{port}"
    )
    assert "refused" in message
    assert "SECRET" not in message
    assert "\n" not in message
    assert "sqlalche.me" not in message
    assert "psycopg.OperationalError" not in message


def test_a_database_that_breaks_after_opening_is_one_line_not_a_raw_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    audit = AuditLog(f"sqlite:///{path}")
    audit.append(_move())
    assert len(audit.events(AuditEvent, "m")) == 1
    audit.engine.dispose()
    path.write_bytes(b"this is not a database" * 512)
    with pytest.raises(ConfigError, match=r"^cannot read the audit database sqlite:///") as caught:
        audit.events(AuditEvent, "m")
    assert "\n" not in str(caught.value)


@pytest.mark.postgres
def test_a_restarted_server_is_read_again_at_once(postgres_url: str, postgres_server_url: str) -> None:
    audit = AuditLog(postgres_url)
    audit.append(_move())
    with audit.engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    # The server drops the pooled connection (as a restart or a failover does).
    admin = sa.create_engine(make_url(postgres_server_url).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar()
    finally:
        admin.dispose()
    # Was: the first read on the stale connection failed (AdminShutdown / server closed the connection).
    assert [e.to_version for e in audit.events(AuditEvent, "m")] == [1]
