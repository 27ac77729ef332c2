"""The prediction log: records, idempotent feedback with history, the monitoring window; both backends."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from defectops.data import PREDICTION_COLUMNS
from defectops.errors import ConfigError, InputError, NotFoundError, PredictionLogError
from defectops.predlog import FeedbackRecord, PredictionLog, PredictionRecord, default_url
from defectops.predlog.schema import INSERT_COLUMNS, feedback_table, predictions_table

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
SHA_A = "a" * 40
SHA_B = "b" * 40


def make_record(**overrides: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "prediction_id": str(uuid.uuid4()),
        "created_at": T0,
        "model_name": "jit-lgbm",
        "model_version": "3",
        "served": True,
        "inputs": {"la": 12, "ld": 3.5, "fix": False, "subsystem": "core", "age": None},
        "score": 0.25,
        "threshold": 0.5,
        "risk_label": 0,
        "risk_band": "low",
        "repo": "acme/app",
        "commit_sha": SHA_A,
    }
    values.update(overrides)
    return PredictionRecord(**values)


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------


def test_record_then_get_round_trips_every_field(log: PredictionLog) -> None:
    berlin = timezone(timedelta(hours=2))
    record = make_record(created_at=datetime(2025, 1, 6, 11, 0, 0, 123456, tzinfo=berlin))
    assert log.record([record]) == 1

    stored = log.get(record.prediction_id)

    # 11:00:00.123456+02:00 is 09:00:00.123456 UTC; the record was normalised on construction already.
    assert stored.created_at == datetime(2025, 1, 6, 9, 0, 0, 123456, tzinfo=UTC)
    assert stored.created_at.tzinfo is UTC
    assert stored == record
    assert stored.inputs == {"la": 12, "ld": 3.5, "fix": False, "subsystem": "core", "age": None}
    assert type(stored.inputs["la"]) is int
    assert type(stored.inputs["fix"]) is bool


def test_acknowledged_batch_is_visible_to_a_new_connection(log_url: str) -> None:
    writer = PredictionLog.from_url(log_url)
    batch = [make_record() for _ in range(3)]
    writer.record(batch)
    # No close(): the rows must already be committed when record() returns.
    reader = PredictionLog.from_url(log_url)
    try:
        assert [reader.get(item.prediction_id) for item in batch] == batch
    finally:
        reader.close()
        writer.close()


def test_a_batch_with_a_known_id_writes_nothing(log: PredictionLog) -> None:
    first = make_record()
    log.record([first])
    fresh = make_record()

    with pytest.raises(InputError, match="already in the log"):
        log.record([fresh, make_record(prediction_id=first.prediction_id)])

    assert log.counts().predictions == 1  # `fresh` was rolled back with the batch
    with pytest.raises(NotFoundError):
        log.get(fresh.prediction_id)


def test_large_batches_round_trip_and_stay_atomic(log: PredictionLog) -> None:
    # 40 rows take PostgreSQL's COPY path (16 rows or more), SQLite's executemany.
    batch = [
        make_record(created_at=T0 + timedelta(microseconds=index), inputs={"la": index, "ratio": index / 8})
        for index in range(40)
    ]
    assert log.record(batch) == 40
    assert log.by_commit("acme/app", SHA_A) == batch

    retry = [make_record(created_at=T1) for _ in range(30)] + [batch[5]]
    with pytest.raises(InputError, match="already in the log"):
        log.record(retry)
    assert log.counts().predictions == 40  # none of the 30 new rows was kept


def test_a_batch_repeating_an_id_is_refused_before_writing(log: PredictionLog) -> None:
    record = make_record()
    with pytest.raises(InputError, match="twice"):
        log.record([record, record])
    assert log.counts().predictions == 0


def test_empty_batch_writes_nothing(log: PredictionLog) -> None:
    assert log.record([]) == 0
    assert log.counts().predictions == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"created_at": datetime(2025, 1, 6, 9, 0)}, "timezone-aware"),
        ({"prediction_id": "not-a-uuid"}, "UUID"),
        ({"score": float("nan")}, "score"),
        ({"score": 1.5, "risk_label": 1}, "score"),
        ({"threshold": -0.1}, "threshold"),
        ({"score": 0.5, "risk_label": 0}, "contradicts"),  # 0.5 >= 0.5 means risk_label 1
        ({"score": 0.49, "risk_label": 1}, "contradicts"),
        ({"risk_band": "severe"}, "risk_band"),
        ({"risk_label": True}, "risk_label"),
        ({"served": 1}, "served"),
        ({"served": "yes"}, "served"),
        ({"inputs": {"score": 1.0}}, "reserved"),
        ({"inputs": {"la": float("inf")}}, "finite"),
        ({"inputs": {"la": [1, 2]}}, "type list"),
        ({"served": True, "shadow_of": str(uuid.uuid4())}, "shadow"),
        ({"repo": None}, "needs repo"),
        ({"commit_sha": "abc123"}, "40- or 64-character"),
        ({"model_version": ""}, "model_version"),
    ],
)
def test_invalid_records_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_record(**overrides)


def test_records_are_normalised() -> None:
    upper = str(uuid.uuid4()).upper()
    record = make_record(
        prediction_id=upper,
        commit_sha=SHA_A.upper(),
        score=np.float64(0.75),
        risk_label=1,
        inputs={"la": np.int64(7), "ld": np.float64(0.5), "fix": np.bool_(True)},
    )
    assert record.prediction_id == upper.lower()
    assert record.commit_sha == SHA_A
    assert record.inputs == {"la": 7, "ld": 0.5, "fix": True}
    assert [type(value) for value in record.inputs.values()] == [int, float, bool]
    assert type(record.score) is float


def test_enum_and_numpy_values_are_stored_as_plain_values(log: PredictionLog) -> None:
    class Band(StrEnum):
        HIGH = "high"

    record = make_record(
        served=np.bool_(True), score=0.9, risk_label=np.int64(1), risk_band=Band.HIGH, model_version=Band.HIGH
    )
    assert (type(record.served), type(record.risk_label), type(record.risk_band)) == (bool, int, str)
    log.record([record])
    stored = log.get(record.prediction_id)
    # psycopg would write an Enum's name ("HIGH"); the record keeps only the plain value.
    assert (stored.risk_band, stored.model_version, stored.served, stored.risk_label) == (
        "high",
        "high",
        True,
        1,
    )


def test_insert_columns_cover_the_table() -> None:
    assert list(INSERT_COLUMNS) == [column.name for column in predictions_table.columns]


def test_by_commit_lists_served_and_shadow_predictions(log: PredictionLog) -> None:
    served = make_record(created_at=T0)
    shadow = make_record(
        created_at=T0 + timedelta(seconds=1), served=False, shadow_of=served.prediction_id, model_version="4"
    )
    other = make_record(commit_sha=SHA_B)
    log.record([served, shadow, other])

    assert log.by_commit("acme/app", SHA_A) == [served, shadow]
    assert log.by_commit("other/repo", SHA_A) == []
    with pytest.raises(InputError):
        log.by_commit("acme/app", "xyz")


# ---------------------------------------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------------------------------------


def test_feedback_by_id_is_idempotent_and_keeps_history(log: PredictionLog) -> None:
    record = make_record()
    log.record([record])
    t1, t2, t3 = T0 + timedelta(days=1), T0 + timedelta(days=2), T0 + timedelta(days=3)

    first = log.add_feedback(
        FeedbackRecord(prediction_id=record.prediction_id, label=1, source="api:feedback"), now=t1
    )
    again = log.add_feedback(
        FeedbackRecord(prediction_id=record.prediction_id, label=1, source="api:admin"), now=t2
    )
    changed = log.add_feedback(FeedbackRecord(prediction_id=record.prediction_id, label=0), now=t3)

    assert (first.status, first.replaced_feedback_id, first.matched_predictions) == ("recorded", None, 1)
    assert (again.status, again.feedback_id) == ("duplicate", first.feedback_id)
    assert (changed.status, changed.replaced_feedback_id) == ("replaced", first.feedback_id)

    history = log.feedback_history(prediction_id=record.prediction_id)
    assert [(row.label, row.source, row.received_at, row.superseded_at) for row in history] == [
        (1, "api:feedback", t1, t3),
        (0, "api", t3, None),
    ]
    assert history[1].supersedes == first.feedback_id
    assert history[1].label_time == t3  # defaults to the time received
    counts = log.counts()
    assert (counts.feedback_total, counts.feedback_current, counts.labeled) == (2, 1, 1)


def test_feedback_for_an_unknown_id_fails_the_whole_batch(log: PredictionLog) -> None:
    record = make_record()
    log.record([record])
    batch = [
        FeedbackRecord(prediction_id=record.prediction_id, label=1),
        FeedbackRecord(prediction_id=str(uuid.uuid4()), label=0),
    ]
    with pytest.raises(NotFoundError):
        log.add_feedback_batch(batch, now=T0)
    assert log.counts().feedback_total == 0


def test_feedback_by_commit_may_arrive_before_the_prediction(log: PredictionLog) -> None:
    outcome = log.add_feedback(
        FeedbackRecord(repo="acme/app", commit_sha=SHA_B, label=1, label_time=T0 - timedelta(hours=1)),
        now=T0,
    )
    assert (outcome.status, outcome.matched_predictions) == ("recorded", 0)
    later = make_record(commit_sha=SHA_B, created_at=T0 + timedelta(hours=1))
    log.record([later])

    frame = log.window(T0, T0 + timedelta(days=1))
    assert frame["label"].tolist() == [1]
    assert frame["label_time"].tolist() == [pd.Timestamp(T0 - timedelta(hours=1))]


def test_a_clock_going_backwards_cannot_overlap_history(log: PredictionLog) -> None:
    record = make_record()
    log.record([record])
    log.add_feedback(FeedbackRecord(prediction_id=record.prediction_id, label=1), now=T0 + timedelta(hours=2))
    log.add_feedback(FeedbackRecord(prediction_id=record.prediction_id, label=0), now=T0 + timedelta(hours=1))
    old, new = log.feedback_history(prediction_id=record.prediction_id)
    # The later arrival is stamped no earlier than the row it replaces: 2h, not 1h.
    assert old.superseded_at == new.received_at == T0 + timedelta(hours=2)


@pytest.mark.parametrize(
    "fields",
    [
        {"label": 1},
        {"label": 1, "prediction_id": str(uuid.uuid4()), "repo": "acme/app", "commit_sha": SHA_A},
        {"label": 1, "repo": "acme/app"},
        {"label": 2, "repo": "acme/app", "commit_sha": SHA_A},
        {"label": 1, "repo": "acme/app", "commit_sha": SHA_A, "label_time": datetime(2025, 1, 1)},
    ],
)
def test_invalid_feedback_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        FeedbackRecord(**fields)


def test_concurrent_conflicting_feedback_leaves_one_current_label(log: PredictionLog) -> None:
    record = make_record()
    log.record([record])
    errors: list[BaseException] = []

    def worker(label: int) -> None:
        try:
            for step in range(10):
                log.add_feedback(
                    FeedbackRecord(prediction_id=record.prediction_id, label=label),
                    now=T0 + timedelta(seconds=step),
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(index % 2,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    history = log.feedback_history(prediction_id=record.prediction_id)
    current = [row for row in history if row.superseded_at is None]
    assert len(current) == 1
    # Every superseded row was replaced by the next one, which names it; intervals never overlap.
    for older, newer in itertools.pairwise(history):
        assert newer.supersedes == older.feedback_id
        assert older.superseded_at == newer.received_at
        assert older.label != newer.label


def test_concurrent_writers_lose_nothing(log: PredictionLog) -> None:
    written: list[list[str]] = [[] for _ in range(4)]

    def worker(index: int) -> None:
        for _ in range(15):
            record = make_record()
            log.record([record])
            written[index].append(record.prediction_id)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = set(log.window(T0, T0 + timedelta(seconds=1))["prediction_id"])
    assert ids == {prediction_id for chunk in written for prediction_id in chunk}
    assert len(ids) == 60  # 4 threads x 15 records


# ---------------------------------------------------------------------------------------------------------
# The monitoring window
# ---------------------------------------------------------------------------------------------------------


def test_window_joins_labels_by_id_then_shadow_then_commit(log: PredictionLog) -> None:
    a = make_record(created_at=T0, inputs={"la": 1})
    b = make_record(created_at=T0 + timedelta(minutes=1), inputs={"la": 2})
    shadow_a = make_record(
        created_at=T0 + timedelta(minutes=2),
        served=False,
        shadow_of=a.prediction_id,
        model_version="4",
        inputs={"la": 1},
    )
    unlabeled = make_record(
        created_at=T0 + timedelta(minutes=3), repo=None, commit_sha=None, inputs={"la": 4}
    )
    log.record([a, b, shadow_a, unlabeled])
    log.add_feedback(FeedbackRecord(repo="acme/app", commit_sha=SHA_A, label=1, source="szz"), now=T0)
    log.add_feedback(FeedbackRecord(prediction_id=a.prediction_id, label=0, source="review"), now=T0)

    frame = log.window(T0, T0 + timedelta(hours=1))

    assert frame["prediction_id"].tolist() == [
        a.prediction_id,
        b.prediction_id,
        shadow_a.prediction_id,
        unlabeled.prediction_id,
    ]
    # a: its own id feedback (0) wins over the commit's (1); b: only the commit's (1);
    # shadow_a: the label of the prediction it shadows (0); unlabeled: no sha, no id feedback.
    assert frame["label"].tolist() == [0, 1, 0, pd.NA]
    assert frame["label_source"].tolist()[:3] == ["review", "szz", "review"]
    assert frame["served"].tolist() == [True, True, False, True]
    assert log.counts().labeled == 3
    assert log.joined(T0, T0 + timedelta(hours=1))["prediction_id"].tolist() == [
        a.prediction_id,
        b.prediction_id,
        shadow_a.prediction_id,
    ]


def test_window_is_half_open_and_filters(log: PredictionLog) -> None:
    since, until = T0, T0 + timedelta(hours=1)
    at_start = make_record(created_at=since)
    just_before_end = make_record(created_at=until - timedelta(microseconds=1))
    at_end = make_record(created_at=until)
    before = make_record(created_at=since - timedelta(microseconds=1))
    other_version = make_record(created_at=since + timedelta(minutes=5), model_version="4")
    shadow = make_record(created_at=since + timedelta(minutes=6), served=False)
    log.record([at_start, just_before_end, at_end, before, other_version, shadow])

    def ids(**filters: Any) -> list[str]:
        return log.window(since, until, **filters)["prediction_id"].tolist()

    assert ids() == [
        at_start.prediction_id,
        other_version.prediction_id,
        shadow.prediction_id,
        just_before_end.prediction_id,
    ]
    assert ids(model_version="4") == [other_version.prediction_id]
    assert ids(served=False) == [shadow.prediction_id]
    assert ids(model_name="nope") == []
    with pytest.raises(InputError, match="before it starts"):
        log.window(until, since)


def test_window_as_of_replays_labels_as_they_stood(log: PredictionLog) -> None:
    record = make_record()
    log.record([record])
    t1, t2 = T0 + timedelta(days=1), T0 + timedelta(days=2)
    log.add_feedback(FeedbackRecord(prediction_id=record.prediction_id, label=1), now=t1)
    log.add_feedback(FeedbackRecord(prediction_id=record.prediction_id, label=0), now=t2)
    end = T0 + timedelta(hours=1)

    def label(as_of: datetime | None) -> object:
        return log.window(T0, end, as_of=as_of)["label"].tolist()[0]

    assert label(t1 - timedelta(seconds=1)) is pd.NA  # nothing received yet
    assert label(t1) == 1
    assert label(t2 - timedelta(seconds=1)) == 1
    assert label(t2) == 0
    assert label(None) == 0
    assert log.counts(as_of=t1 - timedelta(seconds=1)).labeled == 0
    assert log.joined(T0, end, as_of=t1 - timedelta(seconds=1)).empty


def test_window_expands_inputs_into_sorted_columns(log: PredictionLog) -> None:
    log.record(
        [
            make_record(created_at=T0, inputs={"nf": 3, "entropy": 0.5, "fix": True}),
            make_record(
                created_at=T0 + timedelta(seconds=1), inputs={"nf": 1, "entropy": 0.25, "lang": "py"}
            ),
        ]
    )
    frame = log.window(T0, T0 + timedelta(minutes=1))

    assert list(frame.columns) == [*PREDICTION_COLUMNS, "entropy", "fix", "lang", "nf"]
    assert frame.attrs["feature_columns"] == ["entropy", "fix", "lang", "nf"]
    assert frame["nf"].tolist() == [3, 1]
    assert frame["entropy"].dtype == np.float64
    assert frame["created_at"].dt.tz is not None
    assert str(frame["label"].dtype) == "Int64"
    assert frame["lang"].isna().tolist() == [True, False]


def test_empty_window_has_the_fixed_columns(log: PredictionLog) -> None:
    frame = log.window(T0, T0 + timedelta(days=1))
    assert list(frame.columns) == list(PREDICTION_COLUMNS)
    assert frame.empty
    assert frame.attrs["feature_columns"] == []
    assert str(frame["label"].dtype) == "Int64"


def test_counts(log: PredictionLog) -> None:
    served = make_record(created_at=T0)
    log.record(
        [
            served,
            make_record(created_at=T0, served=False, shadow_of=served.prediction_id, model_version="4"),
            make_record(created_at=T0 + timedelta(days=2), commit_sha=SHA_B),
        ]
    )
    log.add_feedback(FeedbackRecord(prediction_id=served.prediction_id, label=1), now=T0)

    everything = log.counts()
    first_day = log.counts(T0, T0 + timedelta(days=1))

    # The shadow prediction is labelled through shadow_of; the SHA_B one has no feedback.
    assert everything.predictions == 3
    assert (everything.served, everything.shadow, everything.labeled) == (2, 1, 2)
    assert everything.by_model_version == {"3": 2, "4": 1}
    assert (first_day.predictions, first_day.labeled, first_day.by_model_version) == (2, 2, {"3": 1, "4": 1})


# ---------------------------------------------------------------------------------------------------------
# Opening the store
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "mysql://u:p@localhost/db",
        "postgresql+psycopg2://u@h/db",
        "not a url",
    ],
)
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        PredictionLog.from_url(url)


def test_concurrent_first_opens_all_succeed(log_url: str) -> None:
    # Several service workers opening a brand-new log at once must all get it (tables created once).
    opened: list[PredictionLog] = []
    errors: list[BaseException] = []

    def open_log() -> None:
        try:
            opened.append(PredictionLog.from_url(log_url))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_log) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        opened[0].record([make_record()])
        assert [store.counts().predictions for store in opened] == [1, 1, 1, 1]
    finally:
        for store in opened:
            store.close()


def test_naive_times_in_arguments_are_input_errors(log: PredictionLog) -> None:
    naive = datetime(2025, 1, 6, 9, 0)
    with pytest.raises(InputError, match="timezone-aware"):
        log.window(naive, T1)
    with pytest.raises(InputError, match="timezone-aware"):
        log.counts(until=naive)
    with pytest.raises(InputError, match="timezone-aware"):
        log.window(T0, T1, as_of=naive)
    with pytest.raises(InputError, match="timezone-aware"):
        log.add_feedback(FeedbackRecord(repo="acme/app", commit_sha=SHA_A, label=1), now=naive)


def test_an_unreachable_server_is_a_prediction_log_error() -> None:
    # Port 1 on loopback refuses connections at once.
    with pytest.raises(PredictionLogError, match="cannot open"):
        PredictionLog.from_url("postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing?connect_timeout=5")


def test_workspace_default_is_a_wal_database_that_survives_a_kill(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with PredictionLog.for_workspace(workspace) as log:
        assert log.dialect == "sqlite"
        assert log.url == f"sqlite+pysqlite:///{workspace / 'predictions.db'}"
        with log.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # 1 = NORMAL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (workspace / "predictions.db").is_file()


def test_workspace_paths_may_be_strings_or_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    expected = f"sqlite+pysqlite:///{(tmp_path / 'ws' / 'predictions.db').resolve()}"
    with PredictionLog.for_workspace("ws") as log:  # a relative str (an AttributeError before)
        assert log.url == expected
        log.record([make_record()])
    with PredictionLog.for_workspace(tmp_path / "ws") as log:
        assert log.url == expected
        assert log.counts().predictions == 1
    assert default_url("ws") == default_url(Path("ws")) == default_url(str(tmp_path / "ws"))


def test_power_loss_durability_fsyncs_every_commit(tmp_path: Path) -> None:
    with (
        PredictionLog.from_url(f"sqlite:///{tmp_path / 'p.db'}", "power-loss") as log,
        log.engine.connect() as connection,
    ):
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # 2 = FULL


def test_unknown_durability_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown durability 'sometimes'"):
        PredictionLog.from_url(f"sqlite:///{tmp_path / 'p.db'}", "sometimes")  # type: ignore[arg-type]


def test_graceful_close_checkpoints_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    log = PredictionLog.from_url(f"sqlite:///{path}")
    record = make_record()
    log.record([record])
    assert Path(f"{path}-wal").exists()

    log.close()

    assert not Path(f"{path}-wal").exists()  # everything is in the main file now
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT prediction_id FROM predictions").fetchall() == [(record.prediction_id,)]


@pytest.mark.postgres
def test_postgres_sessions_force_synchronous_commit(postgres_url: str) -> None:
    url = make_url(postgres_url)
    options = f"{url.query['options']} -csynchronous_commit=off"
    with PredictionLog.from_url(url.update_query_dict({"options": options})) as log:
        with log.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        assert log.url.startswith("postgresql+psycopg://")
        assert "***" in log.url


@pytest.mark.postgres
def test_plain_postgresql_scheme_means_psycopg(postgres_url: str) -> None:
    url = make_url(postgres_url).set(drivername="postgresql")
    with PredictionLog.from_url(url) as log:
        assert log.engine.dialect.driver == "psycopg"


def test_schema_has_sha_indexes(log: PredictionLog) -> None:
    inspector = sa.inspect(log.engine)
    prediction_indexes = {
        index["name"]: index["column_names"] for index in inspector.get_indexes("predictions")
    }
    feedback_indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes("feedback")}
    assert prediction_indexes["ix_predictions_repo_sha"] == ["repo", "commit_sha"]
    assert feedback_indexes["ix_feedback_repo_sha"] == ["repo", "commit_sha"]
    assert {column["name"] for column in inspector.get_columns("feedback")} == {
        column.name for column in feedback_table.columns
    }


def test_a_window_mixing_flags_logged_as_bool_and_as_number_reads_as_one_float_column(
    log: PredictionLog, tmp_path: Path
) -> None:
    # Logs written before the feature contract hold fix as true (commits/score) and as 0.0 (predict).
    log.record(
        [
            make_record(inputs={"fix": True, "la": 12}),
            make_record(inputs={"fix": 0.0, "la": 3.0}, created_at=T0 + timedelta(seconds=1)),
            make_record(inputs={"fix": False, "la": 1}, created_at=T0 + timedelta(seconds=2)),
        ]
    )
    window = log.window(T0, T1)
    assert str(window["fix"].dtype) == "float64"
    assert window["fix"].tolist() == [1.0, 0.0, 0.0]
    assert str(window["la"].dtype) == "float64"
    assert window["la"].tolist() == [12.0, 3.0, 1.0]
    window.to_parquet(tmp_path / "window.parquet")  # a mixed object column could not be written


def test_from_url_takes_a_path_to_the_sqlite_file(tmp_path: Path) -> None:
    with PredictionLog.from_url(tmp_path / "sub" / "log.db") as log:
        assert log.dialect == "sqlite"
        assert log.url.endswith(f":///{(tmp_path / 'sub' / 'log.db').as_posix()}")
    assert (tmp_path / "sub" / "log.db").is_file()


def test_a_label_from_szz_is_replaced_only_by_szz(log: PredictionLog) -> None:
    """Issue #14: heal's decisions rest on mined labels; a writer through the API must never overturn one."""
    from defectops.errors import LabelConflictError

    sha = "5a" * 20
    mined = FeedbackRecord(label=1, repo="r", commit_sha=sha, source="szz")
    assert log.add_feedback(mined, now=T0).status == "recorded"
    with pytest.raises(LabelConflictError, match="comes from szz"):
        log.add_feedback(FeedbackRecord(label=0, repo="r", commit_sha=sha, source="api:admin"), now=T0)
    agreeing = log.add_feedback(
        FeedbackRecord(label=1, repo="r", commit_sha=sha, source="api:feedback"), now=T0
    )
    assert agreeing.status == "duplicate"
    remined = log.add_feedback(FeedbackRecord(label=0, repo="r", commit_sha=sha, source="szz"), now=T0)
    assert remined.status == "replaced"  # SZZ itself may correct its label (a fix found later)
    history = log.feedback_history(repo="r", commit_sha=sha)
    assert [(h.label, h.source) for h in history] == [(1, "szz"), (0, "szz")]


def test_a_clean_szz_verdict_leaves_a_defect_reported_through_the_api_in_place(log: PredictionLog) -> None:
    """Seen on requests: four defects posted to /v1/feedback became clean after one `heal --once`, whose SZZ
    sync wrote "no fix within the waiting period" over them; monitor then counted 0 defective of 1 label
    where it had counted 4 of 5. The absence of a fix does not refute a report: the report stays current."""
    sha = "6b" * 20
    reported = log.add_feedback(FeedbackRecord(label=1, repo="r", commit_sha=sha, source="api:admin"), now=T0)
    later = T0 + timedelta(hours=1)
    clean = log.add_feedback(FeedbackRecord(label=0, repo="r", commit_sha=sha, source="szz"), now=later)
    assert (clean.status, clean.feedback_id, clean.replaced_feedback_id) == (
        "kept",
        reported.feedback_id,
        None,
    )
    history = log.feedback_history(repo="r", commit_sha=sha)
    assert [(h.label, h.source, h.superseded_at) for h in history] == [(1, "api:admin", None)]
    # A defect found by SZZ still replaces a clean label from the API, and a clean API label stays replaceable.
    other = "7c" * 20
    log.add_feedback(FeedbackRecord(label=0, repo="r", commit_sha=other, source="api:admin"), now=T0)
    found = log.add_feedback(FeedbackRecord(label=1, repo="r", commit_sha=other, source="szz"), now=later)
    assert found.status == "replaced"
