"""The artifact store: layout, atomic writes, guarded appends and state; local and S3."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from defectops.config import StorageSettings
from defectops.errors import (
    ArtifactConflictError,
    ArtifactStoreError,
    ConfigError,
    DataError,
    InputError,
    NotFoundError,
)
from defectops.storage.artifacts import (
    HISTORY_KEY,
    LEGACY_HISTORY_KEY,
    METRICS_CURRENT_KEY,
    METRICS_HISTORY_KEY,
    ArtifactStore,
    PredictionsFile,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


def history_rows(*ids: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"prediction_id": list(ids), "score": [0.5] * len(ids), "risk_band": ["medium"] * len(ids)}
    )


# ---------------------------------------------------------------------------------------------------------
# Plain objects
# ---------------------------------------------------------------------------------------------------------


def test_objects_round_trip_and_list(store: ArtifactStore) -> None:
    store.write_bytes("models/a/model.bin", b"\x00\x01binary")
    store.write_bytes("state/repo.sqlite", b"state")
    store.write_bytes("state/repo.sqlite", b"state v2")  # replaced, not duplicated

    assert store.read_bytes("models/a/model.bin") == b"\x00\x01binary"
    assert store.read_bytes("state/repo.sqlite") == b"state v2"
    assert store.exists("state/repo.sqlite")
    assert not store.exists("state/other.sqlite")
    assert store.list_keys() == ["models/a/model.bin", "state/repo.sqlite"]
    assert store.list_keys("state") == ["state/repo.sqlite"]
    assert store.list_keys("nothing") == []

    store.delete("state/repo.sqlite")
    store.delete("state/repo.sqlite")  # absent is fine
    assert store.list_keys() == ["models/a/model.bin"]
    with pytest.raises(NotFoundError):
        store.read_bytes("state/repo.sqlite")


@pytest.mark.parametrize(
    "key", ["../escape", "/abs/key", "a//b", "a/./b", ".hidden", "dir/.tmp-file", "a\\b", ""]
)
def test_bad_keys_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(InputError):
        store.write_bytes(key, b"x")


def test_files_up_and_down(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"payload" * 1000)
    store.put_file(source, "models/file.bin")

    target = store.get_file("models/file.bin", tmp_path / "out" / "file.bin")

    assert target.read_bytes() == b"payload" * 1000
    assert sorted(path.name for path in target.parent.iterdir()) == ["file.bin"]  # no temp file left
    with pytest.raises(NotFoundError):
        store.get_file("models/missing.bin", tmp_path / "out" / "missing.bin")
    assert not (tmp_path / "out" / "missing.bin").exists()


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = ArtifactStore.from_url(tmp_path / "store")
    for round_ in range(3):
        store.write_bytes("metrics/x.csv", f"a\n{round_}\n".encode())
        store.append_history(history_rows(f"id-{round_}"))
    names = sorted(path.name for path in (tmp_path / "store" / "metrics").iterdir())
    assert names == ["x.csv"]
    # The only hidden file is the append lock.
    assert sorted(path.name for path in (tmp_path / "store" / "history").iterdir()) == [
        ".prediction_history_master.csv.lock",
        "prediction_history_master.csv",
    ]


# ---------------------------------------------------------------------------------------------------------
# Appended tables: history and metrics
# ---------------------------------------------------------------------------------------------------------


def test_history_is_appended(store: ArtifactStore) -> None:
    assert store.read_history().empty

    assert store.append_history(history_rows("p1", "p2")) == 2
    reordered = history_rows("p3")[["risk_band", "prediction_id", "score"]]
    assert store.append_history(reordered) == 1
    assert store.append_history(history_rows()) == 0

    history = store.read_history()
    assert list(history.columns) == ["prediction_id", "score", "risk_band"]  # the file's order wins
    assert history["prediction_id"].tolist() == ["p1", "p2", "p3"]
    assert store.read_bytes(HISTORY_KEY) == (
        b"prediction_id,score,risk_band\np1,0.5,medium\np2,0.5,medium\np3,0.5,medium\n"
    )


def test_history_refuses_other_columns_and_keeps_the_file(store: ArtifactStore) -> None:
    store.append_history(history_rows("p1"))
    before = store.read_bytes(HISTORY_KEY)

    with pytest.raises(DataError, match=r"missing \['risk_band'\], unexpected \['label'\]"):
        store.append_history(pd.DataFrame({"prediction_id": ["p2"], "score": [0.1], "label": [1]}))

    assert store.read_bytes(HISTORY_KEY) == before


def test_history_of_a_store_written_before_the_master_key_is_migrated_on_first_append(
    store: ArtifactStore,
) -> None:
    """#17 renamed the history to prediction_history_master.csv: an old store keeps working."""
    assert HISTORY_KEY == "history/prediction_history_master.csv"
    old = b"prediction_id,score,risk_band\nold1,0.5,medium\n"
    store.write_bytes(LEGACY_HISTORY_KEY, old)

    assert store.read_history()["prediction_id"].tolist() == ["old1"]  # read from the old key
    assert not store.exists(HISTORY_KEY)

    assert store.append_history(history_rows("new1")) == 1
    assert store.read_bytes(HISTORY_KEY) == old + b"new1,0.5,medium\n"
    assert store.read_bytes(LEGACY_HISTORY_KEY) == old  # left as it was, never written again
    store.append_history(history_rows("new2"))
    assert store.read_history()["prediction_id"].tolist() == ["old1", "new1", "new2"]
    assert store.read_bytes(LEGACY_HISTORY_KEY) == old


def test_local_appends_from_threads_lose_nothing(tmp_path: Path) -> None:
    store = ArtifactStore.from_url(tmp_path / "store")

    def worker(index: int) -> None:
        own = ArtifactStore.from_url(tmp_path / "store")  # separate instance, same folder
        for step in range(5):
            own.append_history(history_rows(f"t{index}-{step}"))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = store.read_history()["prediction_id"].tolist()
    assert sorted(ids) == sorted(f"t{i}-{s}" for i in range(4) for s in range(5))  # 4 x 5 = 20 rows


@pytest.mark.s3
def test_s3_append_retries_when_another_writer_got_in_between(
    s3_options: dict[str, Any], s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/race/{uuid.uuid4().hex}"
    store = ArtifactStore.from_url(url, storage_options=s3_options)
    rival = ArtifactStore.from_url(url, storage_options=s3_options)
    store.append_history(history_rows("first"))
    backend: Any = store._backend
    original = backend.read_versioned
    reads: list[int] = []

    def read_then_lose_the_race(key: str) -> Any:
        result = original(key)
        reads.append(1)
        if len(reads) == 1:
            rival.append_history(history_rows("rival"))  # changes the object after our read
        return result

    backend.read_versioned = read_then_lose_the_race
    store.append_history(history_rows("ours"))

    # The first conditional PUT carried the stale ETag and was refused (412); the retry read again.
    assert len(reads) == 2
    assert store.read_history()["prediction_id"].tolist() == ["first", "rival", "ours"]


def test_metrics_current_and_history(store: ArtifactStore) -> None:
    with pytest.raises(NotFoundError):
        store.read_metrics_current()
    assert store.read_metrics_history().empty

    store.write_metrics(pd.DataFrame({"model_version": ["3"], "f1": [0.61], "roc_auc": [0.8]}))
    store.write_metrics(pd.DataFrame({"model_version": ["4"], "f1": [0.64], "roc_auc": [0.82]}))

    current = store.read_metrics_current()
    assert current.to_dict("records") == [{"model_version": 4, "f1": 0.64, "roc_auc": 0.82}]
    assert store.read_metrics_history()["f1"].tolist() == [0.61, 0.64]
    assert set(store.list_keys("metrics")) == {METRICS_CURRENT_KEY, METRICS_HISTORY_KEY}
    with pytest.raises(InputError):
        store.write_metrics(pd.DataFrame({"f1": []}))


# ---------------------------------------------------------------------------------------------------------
# Per-commit prediction files
# ---------------------------------------------------------------------------------------------------------


def test_prediction_files_are_named_by_commit_and_utc_time(store: ArtifactStore) -> None:
    frame = pd.DataFrame({"commit": [SHA], "score": [0.9], "risk_band": ["high"]})
    tokyo = timezone(timedelta(hours=9))
    # 2025-01-06 18:30:15.5+09:00 is 09:30:15 UTC (fractions of a second dropped).
    first = store.put_predictions(
        frame, commit=SHA.upper(), time=datetime(2025, 1, 6, 18, 30, 15, 500000, tokyo)
    )
    second = store.put_predictions(frame, commit="abcdef1", time=datetime(2025, 1, 5, 0, 0, tzinfo=UTC))

    assert first == PredictionsFile(
        key=f"predictions/predictions_{SHA}_20250106T093015Z.csv",
        commit=SHA,
        time=datetime(2025, 1, 6, 9, 30, 15, tzinfo=UTC),
    )
    assert store.list_predictions() == [second, first]  # oldest first
    assert store.list_predictions(commit=SHA[:10]) == [first]
    assert store.list_predictions(commit="abcdef1234") == [second]
    assert store.read_predictions(first).to_dict("records") == [
        {"commit": SHA, "score": 0.9, "risk_band": "high"}
    ]
    with pytest.raises(ArtifactConflictError):
        store.put_predictions(frame, commit=SHA, time=datetime(2025, 1, 6, 9, 30, 15, tzinfo=UTC))


@pytest.mark.parametrize(
    ("commit", "time"),
    [
        ("xyz", datetime(2025, 1, 1, tzinfo=UTC)),
        ("abc", datetime(2025, 1, 1, tzinfo=UTC)),
        (SHA, datetime(2025, 1, 1)),
    ],
)
def test_prediction_files_need_a_sha_and_an_aware_time(
    store: ArtifactStore, commit: str, time: datetime
) -> None:
    with pytest.raises(InputError):
        store.put_predictions(pd.DataFrame({"a": [1]}), commit=commit, time=time)


# ---------------------------------------------------------------------------------------------------------
# Miner state
# ---------------------------------------------------------------------------------------------------------


def test_sqlite_state_is_uploaded_with_its_wal_content(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "repo.sqlite"
    writer = sqlite3.connect(source)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")  # keep the rows in the -wal file only
        writer.execute("CREATE TABLE files (path TEXT)")
        writer.executemany("INSERT INTO files VALUES (?)", [("a.py",), ("b.py",)])
        writer.commit()
        assert Path(f"{source}-wal").stat().st_size > 0

        key = store.put_state(source)
    finally:
        writer.close()
    target = tmp_path / "clone" / "repo.sqlite"
    target.parent.mkdir()
    Path(f"{target}-wal").write_bytes(b"stale log of an older database")

    store.get_state("repo.sqlite", target)

    assert key == "state/repo.sqlite"
    assert store.has_state("repo.sqlite")
    assert not Path(f"{target}-wal").exists()
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT path FROM files ORDER BY path").fetchall() == [("a.py",), ("b.py",)]


def test_state_is_replaced_only_at_the_version_it_was_read(store: ArtifactStore, tmp_path: Path) -> None:
    """The compare-and-swap ``predict --store`` saves the miner state with: a rival's save is never lost."""

    def database(path: Path, rows: int) -> Path:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE t (n INTEGER)")
            conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
            conn.commit()
        return path

    def rows_stored() -> int:
        target = store.get_state("miner.sqlite", tmp_path / f"down-{uuid.uuid4().hex}.sqlite")
        with contextlib.closing(sqlite3.connect(target)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

    assert store.state_version("miner.sqlite") is None
    assert store.put_state_if(database(tmp_path / "a.sqlite", 1), "miner.sqlite", None)
    first = store.state_version("miner.sqlite")
    assert first is not None
    # Create-only when the caller saw none: someone created it meanwhile.
    assert not store.put_state_if(database(tmp_path / "b.sqlite", 2), "miner.sqlite", None)
    assert rows_stored() == 1
    assert store.put_state_if(database(tmp_path / "c.sqlite", 3), "miner.sqlite", first)
    second = store.state_version("miner.sqlite")
    assert second not in (None, first)
    # A job that read the first version loses against the one that saved the second.
    assert not store.put_state_if(database(tmp_path / "d.sqlite", 4), "miner.sqlite", first)
    assert rows_stored() == 3


def test_plain_state_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "state.json"
    source.write_text('{"head": "abc"}')
    assert store.put_state(source, "acme-app.json") == "state/acme-app.json"
    assert store.get_state("acme-app.json", tmp_path / "x.json").read_text() == '{"head": "abc"}'
    assert not store.has_state("other.json")
    with pytest.raises(NotFoundError):
        store.get_state("other.json", tmp_path / "y.json")
    with pytest.raises(InputError):
        store.put_state(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------------------
# Opening the store
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_endpoint_from_the_settings_and_credentials_from_the_environment(
    s3_endpoint: str, s3_bucket: str, s3_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_credentials["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_credentials["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DEFECTOPS_S3_ENDPOINT_URL", s3_endpoint)
    prefix = uuid.uuid4().hex
    store = ArtifactStore.from_url(f"s3://{s3_bucket}/{prefix}/", endpoint_url=StorageSettings().endpoint_url)

    store.write_bytes("metrics/metrics_current.csv", b"f1\n0.5\n")

    assert store.url == f"s3://{s3_bucket}/{prefix}"
    assert not store.is_local
    other = ArtifactStore.from_url(f"s3://{s3_bucket}/{prefix}", endpoint_url=s3_endpoint)
    assert other.read_bytes("metrics/metrics_current.csv") == b"f1\n0.5\n"


def test_unreachable_s3_is_an_artifact_store_error(s3_credentials: dict[str, str]) -> None:
    # Port 1 on loopback refuses connections; one attempt only, so the test stays fast.
    store = ArtifactStore.from_url(
        "s3://bucket/prefix",
        storage_options={
            **s3_credentials,
            "endpoint_url": "http://127.0.0.1:1",
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(ArtifactStoreError, match="cannot read"):
        store.read_bytes("x.csv")


def test_a_silent_s3_endpoint_is_an_error_after_the_read_timeout(s3_credentials: dict[str, str]) -> None:
    """A socket that completes TCP handshakes and never answers (a wedged proxy): the store's bounded read
    timeout (here shortened to 1 s, one attempt) turns it into one ArtifactStoreError, not a hang (#14)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = int(listener.getsockname()[1])
        store = ArtifactStore.from_url(
            "s3://bucket/prefix",
            storage_options={
                **s3_credentials,
                "endpoint_url": f"http://127.0.0.1:{port}",
                "config_kwargs": {"read_timeout": 1, "retries": {"max_attempts": 1}},
            },
        )
        with pytest.raises(ArtifactStoreError, match="cannot read") as caught:
            store.read_bytes("x.csv")
    assert "\n" not in str(caught.value)
    assert s3_credentials["secret"] not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "options"),
    [("gs://bucket/x", None), ("s3://", None), ("s3:///prefix", None), ("/tmp/local", {"key": "k"})],
)
def test_unsupported_urls_are_config_errors(url: str, options: dict[str, str] | None) -> None:
    with pytest.raises(ConfigError):
        ArtifactStore.from_url(url, storage_options=options)


def test_file_urls_and_paths_are_local(tmp_path: Path) -> None:
    store = ArtifactStore.from_url(f"file://{tmp_path}/store")
    assert store.is_local
    assert store.url == str(tmp_path / "store")
    store.write_bytes("a.txt", b"x")
    assert (tmp_path / "store" / "a.txt").read_bytes() == b"x"
