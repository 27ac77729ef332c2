"""Schema migrations of the prediction log, run every time a log is opened, after missing tables are created.

One so far: the ``risk_band`` CHECK constraint of ``predictions`` accepts four bands since ``minimal`` was
added below ``low``; a log created with three bands (``low``, ``medium``, ``high``) gets the wider constraint.
Its rows are kept exactly as they were logged: what the service answered then is what the log must say, so a
row logged before the change says ``low`` for any probability below the base rate (docs/storage.md).

Each step first checks whether it is needed (one catalog read when not), then runs in one transaction that
takes the table's write lock and checks again, so several workers opening an old log at once migrate it once.

* PostgreSQL: ``ALTER TABLE ... DROP CONSTRAINT, ADD CONSTRAINT`` (the new check validates every row, under
  the table's exclusive lock, once).
* SQLite cannot change a CHECK constraint: the table is rebuilt as SQLite's documentation describes (foreign
  keys off, new table, copy, drop, rename, indexes, ``foreign_key_check``), in one ``BEGIN IMMEDIATE``
  transaction, so a failure leaves the old table untouched.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from defectops.data import RISK_BAND_NAMES
from defectops.errors import PredictionLogError
from defectops.predlog.schema import RISK_BAND_CHECK, predictions_table

__all__ = ["migrate"]

_CONSTRAINT: Final = "ck_predictions_risk_band"
_NEW_BAND: Final = f"'{RISK_BAND_NAMES[0]}'"  # present in the constraint's text once migrated
_PG_DEFINITION: Final = sa.text(
    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = to_regclass('predictions') AND conname = :name"
)
_SQLITE_DEFINITION: Final = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'predictions'"


def migrate(engine: Engine) -> None:
    """Bring the log at ``engine`` to the current schema (a no-op on a current log)."""
    try:
        if engine.dialect.name == "postgresql":
            _widen_band_check_postgres(engine)
        else:
            _widen_band_check_sqlite(engine)
    except sa_exc.DBAPIError as error:
        url = engine.url.render_as_string(hide_password=True)
        reason = " ".join(str(error.orig).split())
        message = f"cannot migrate the prediction log at {url} to four risk bands: {reason}"
        raise PredictionLogError(message) from error


def _widen_band_check_postgres(engine: Engine) -> None:
    with engine.connect() as connection:
        definition = connection.execute(_PG_DEFINITION, {"name": _CONSTRAINT}).scalar()
        connection.rollback()
        if definition is None or _NEW_BAND in definition:
            return
        with connection.begin():
            connection.exec_driver_sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
            definition = connection.execute(_PG_DEFINITION, {"name": _CONSTRAINT}).scalar()
            if definition is None or _NEW_BAND in definition:
                return  # another worker migrated it meanwhile
            connection.exec_driver_sql(
                f"ALTER TABLE predictions DROP CONSTRAINT {_CONSTRAINT}, "
                f"ADD CONSTRAINT {_CONSTRAINT} CHECK ({RISK_BAND_CHECK})"
            )


def _sqlite_definition(cursor: Any) -> str | None:
    row = cursor.execute(_SQLITE_DEFINITION).fetchone()
    return None if row is None else str(row[0])


def _widen_band_check_sqlite(engine: Engine) -> None:
    with engine.connect() as connection:
        definition = connection.exec_driver_sql(_SQLITE_DEFINITION).scalar()
        connection.rollback()
    if definition is None or _NEW_BAND in str(definition) or _CONSTRAINT not in str(definition):
        return
    rebuilt = predictions_table.to_metadata(sa.MetaData(), name="predictions_migrating")
    create = str(CreateTable(rebuilt).compile(dialect=engine.dialect))
    indexes = [str(CreateIndex(index).compile(dialect=engine.dialect)) for index in predictions_table.indexes]
    columns = ", ".join(column.name for column in predictions_table.columns)
    raw = engine.raw_connection()  # isolation_level None (engine.py): PRAGMA and BEGIN are ours to issue
    cursor = raw.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before BEGIN
        cursor.execute("BEGIN IMMEDIATE")
        try:
            definition = _sqlite_definition(cursor)
            if definition is None or _NEW_BAND in definition:
                cursor.execute("ROLLBACK")  # another process migrated it meanwhile
                return
            cursor.execute(create)
            cursor.execute(f"INSERT INTO predictions_migrating ({columns}) SELECT {columns} FROM predictions")
            cursor.execute("DROP TABLE predictions")
            cursor.execute("ALTER TABLE predictions_migrating RENAME TO predictions")
            for statement in indexes:
                cursor.execute(statement)
            broken = cursor.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise PredictionLogError(f"the rebuilt predictions table breaks {len(broken)} foreign key(s)")
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
    finally:
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
            raw.close()
