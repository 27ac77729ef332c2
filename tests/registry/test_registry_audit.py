"""The one audit store: alias moves and heal cycle records, appended and read through one API."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from defectops.errors import InputError
from defectops.registry.audit import AuditEvent, AuditLog, HealRecord

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def move(**changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "registry": "embedded",
        "model_name": "m",
        "alias": "champion",
        "action": "promote",
        "from_version": None,
        "to_version": 1,
        "who": "alice",
        "why": "first",
        "at": NOW,
        "evidence": {"gate_run_id": "g1"},
    }
    fields.update(changes)
    return AuditEvent.model_validate(fields)


def test_both_kinds_share_one_database_and_read_back_as_stored(tmp_path: Path) -> None:
    store = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")
    with store.transaction() as conn:
        first = store.append(move(), conn=conn)
    second = store.append(move(alias="challenger", action="archive", to_version=None, at=NOW + timedelta(1)))
    local = timezone(timedelta(hours=2))
    record = store.append(
        HealRecord(
            cycle_id="c1",
            model_name="m",
            at=NOW.astimezone(local),
            step="decide",
            outcome="no_action",
            reason="no trigger fired",
            champion_version=1,
            evidence={"inputs": {"new_labels": 3}},
        )
    )
    assert (first.id, second.id, record.id) == (1, 2, 1)  # one table per kind
    assert record.at == NOW
    assert record.at.utcoffset() == timedelta(0)
    assert store.events(AuditEvent, "m") == [first, second]
    assert store.events(AuditEvent, "m", alias="challenger") == [second]
    assert store.events(AuditEvent, "m", registry="elsewhere") == []
    assert store.events(HealRecord, "m", step="decide") == [record]
    assert store.events(HealRecord, "m", step="watch", cycle_id=None) == []
    assert store.events(HealRecord, "other") == []


def test_an_alias_move_needs_who_and_why() -> None:
    with pytest.raises(InputError, match="'who'"):
        move(who="  ")
    with pytest.raises(InputError, match="'why'"):
        move(why="")
    assert move(who=" bob ").who == "bob"


def test_a_database_written_before_the_merge_is_read_as_it_is(tmp_path: Path) -> None:
    """The tables are the ones earlier versions created: their rows read without any migration."""
    path = tmp_path / "registry_audit.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE alias_events (id INTEGER PRIMARY KEY, registry VARCHAR(500) NOT NULL, model_name "
            "VARCHAR(256) NOT NULL, alias VARCHAR(64) NOT NULL, action VARCHAR(32) NOT NULL, from_version "
            "INTEGER, to_version INTEGER, who VARCHAR(256) NOT NULL, why TEXT NOT NULL, at VARCHAR(40) NOT "
            "NULL, evidence TEXT NOT NULL)"
        )
        db.execute(
            "CREATE TABLE heal_events (id INTEGER PRIMARY KEY, cycle_id VARCHAR(64) NOT NULL, model_name "
            "VARCHAR(256) NOT NULL, at VARCHAR(40) NOT NULL, step VARCHAR(32) NOT NULL, outcome VARCHAR(64) "
            "NOT NULL, reason TEXT NOT NULL, champion_version INTEGER, challenger_version INTEGER, evidence "
            "TEXT NOT NULL, mlflow_run_id VARCHAR(64))"
        )
        db.execute(
            "INSERT INTO alias_events VALUES (1, 'embedded', 'm', 'champion', 'promote', NULL, 3, 'bob', "
            "'gate passed', '2025-01-02T03:04:05.000000+00:00', '{\"forced\": false}')"
        )
        db.execute(
            "INSERT INTO heal_events VALUES (7, 'c9', 'm', '2025-01-03T00:00:00.000000+00:00', 'gate', "
            "'waiting', '3 of 200', 3, 4, '{\"matured\": 3}', 'run1')"
        )
    store = AuditLog(f"sqlite:///{path}")
    [event] = store.events(AuditEvent, "m")
    assert (event.id, event.action, event.to_version, event.evidence) == (1, "promote", 3, {"forced": False})
    [record] = store.events(HealRecord, "m")
    assert (record.id, record.step, record.outcome, record.challenger_version) == (7, "gate", "waiting", 4)
    assert record.evidence == {"matured": 3}
    assert store.append(move()).id == 2  # and new events follow the old ones
