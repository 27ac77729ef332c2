"""The artifact store: predictions, metrics, history and miner state on a local folder or on S3.

Why: CI jobs and the service are short-lived and run on machines that forget; what they produce (prediction
files, metric tables, the miner state a shallow clone needs) must outlive them, in the layout users of the
original pipeline know::

    history/prediction_history_master.csv            every prediction, appended (was prediction_history.csv)
    metrics/metrics_current.csv                      the latest metrics (overwritten)
    metrics/metrics_history.csv                      every metrics row ever written (appended)
    predictions/predictions_<commit>_<time>.csv      one file per scored commit (time: UTC, YYYYmmddTHHMMSSZ)
    state/<name>                                     miner state files (``predict --store``: miner.sqlite)

Writes are atomic-ish: a reader sees the old object or the new one, never a torn one. On a local folder
each write goes to a temporary file in the same folder, is fsynced and renamed over the target; on S3 each
object is one PUT. Appends are read-modify-write guarded against concurrent writers (an exclusive lock file
on a local folder; an ``If-Match`` ETag condition on S3, retried on conflict). The two backends are in
:mod:`defectops.storage.backends`; this module checks keys, maps errors and knows the layout.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd

from defectops.errors import (
    ArtifactConflictError,
    ArtifactStoreError,
    ConfigError,
    DataError,
    DefectOpsError,
    InputError,
    NotFoundError,
    StateSnapshotError,
)
from defectops.storage.backends import Backend, FsspecBackend, LocalBackend

__all__ = [
    "ENDPOINT_ENV",
    "HISTORY_KEY",
    "LEGACY_HISTORY_KEY",
    "METRICS_CURRENT_KEY",
    "METRICS_HISTORY_KEY",
    "STATE_NAME",
    "ArtifactStore",
    "PredictionsFile",
]

ENDPOINT_ENV: Final = "DEFECTOPS_S3_ENDPOINT_URL"
HISTORY_KEY: Final = "history/prediction_history_master.csv"
#: The history's key before #17; read while the new key is absent, copied to the new key on the first append.
LEGACY_HISTORY_KEY: Final = "history/prediction_history.csv"
#: The miner state ``predict --store`` loads and saves back (``state/miner.sqlite``).
STATE_NAME: Final = "miner.sqlite"
METRICS_CURRENT_KEY: Final = "metrics/metrics_current.csv"
METRICS_HISTORY_KEY: Final = "metrics/metrics_history.csv"
_TIME_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_PREDICTIONS_RE: Final = re.compile(r"^predictions/predictions_([0-9a-f]{7,64})_(\d{8}T\d{6}Z)\.csv$")
_SEGMENT_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT_RE: Final = re.compile(r"^[0-9a-f]{7,64}$")
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_APPEND_ATTEMPTS: Final = 10
#: botocore's connection and read timeouts (seconds) and retries of every S3 call: an endpoint that accepts
#: and never answers is an error after at most 3 x 30 s (plus botocore's short back-off).
S3_TIMEOUTS: Final = {"connect_timeout": 10, "read_timeout": 30, "retries": {"max_attempts": 3}}
#: s3fs's own attempts of a call, on top of botocore's: one, or a silent endpoint costs 5 x 3 read timeouts.
S3FS_ATTEMPTS: Final = 1


@dataclass(frozen=True, slots=True)
class PredictionsFile:
    """One ``predictions/predictions_<commit>_<time>.csv`` object."""

    key: str
    commit: str
    time: datetime


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------


def _check_relative(path: str, what: str) -> str:
    """A relative, normalised, '/'-separated path with no hidden segments (those are temp and lock files)."""
    if not path or path.startswith("/") or "\\" in path:
        raise InputError(f"{what}: {path!r} is not a relative '/'-separated path")
    for segment in path.split("/"):
        if segment in ("", ".", "..") or segment.startswith("."):
            raise InputError(f"{what}: {path!r} has an empty, '.', '..' or hidden segment")
    return path


def _check_name(name: str, what: str) -> str:
    if not name or any(not _SEGMENT_RE.match(segment) for segment in name.split("/")):
        raise InputError(f"{what} {name!r}: use letters, digits, '.', '_', '-' (segments separated by '/')")
    return name


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


def _csv_bytes(frame: pd.DataFrame, *, header: bool) -> bytes:
    return frame.to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")


def _read_csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data)) if data.strip() else pd.DataFrame()


def _header(data: bytes) -> list[str]:
    first = data.split(b"\n", 1)[0].decode("utf-8")
    return next(csv.reader([first]), [])


class ArtifactStore:
    """Artifacts in the pipeline's layout on a local folder or an ``s3://bucket/prefix`` URL."""

    def __init__(self, backend: Backend) -> None:
        """Wrap a backend; use :meth:`from_url`."""
        self._backend = backend

    @classmethod
    def from_url(
        cls,
        url: str | Path,
        storage_options: Mapping[str, Any] | None = None,
        *,
        endpoint_url: str | None = None,
    ) -> ArtifactStore:
        """Open the store at a local path (or ``file://`` URL) or ``s3://bucket/prefix``.

        For S3, ``storage_options`` go to ``s3fs.S3FileSystem`` (e.g. ``key``, ``secret``,
        ``endpoint_url``, ``client_kwargs``). Without an ``endpoint_url`` there, ``endpoint_url`` (the setting
        ``DEFECTOPS_S3_ENDPOINT_URL``, :class:`defectops.config.StorageSettings`) points at an S3-compatible
        server (MinIO, moto, ...).
        Credentials and region otherwise come from the usual ``AWS_*`` variables and files, read by botocore
        (``AWS_ENDPOINT_URL_S3`` works too). Nothing is contacted or
        created until the first operation.
        """
        text = str(url)
        if isinstance(url, Path) or "://" not in text:
            if storage_options:
                raise ConfigError("storage_options only apply to s3:// URLs")
            return cls(LocalBackend(Path(text).expanduser().resolve()))
        scheme, _, rest = text.partition("://")
        if scheme == "file":
            return cls.from_url(Path(rest), storage_options)
        if scheme != "s3":
            raise ConfigError(
                f"unsupported artifact store URL {text!r}: use a local path or s3://bucket/prefix"
            )
        bucket = rest.split("/", 1)[0]
        if not bucket:
            raise ConfigError(f"artifact store URL {text!r} names no bucket")
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        options.update(storage_options or {})
        # Bounded waits (issue #14): an S3 endpoint that accepts and never answers is an error after these,
        # not a CI job hung until its own timeout. Given options win.
        options["config_kwargs"] = {**S3_TIMEOUTS, **(options.get("config_kwargs") or {})}
        client_kwargs = options.get("client_kwargs") or {}
        endpoint = (endpoint_url or "").strip()
        if endpoint and "endpoint_url" not in options and "endpoint_url" not in client_kwargs:
            options["endpoint_url"] = endpoint
        import s3fs  # imported on use: it pulls in botocore and aiohttp, which plain local use never needs

        try:
            fs = s3fs.S3FileSystem(**options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"invalid S3 storage options: {error}") from None
        fs.retries = S3FS_ATTEMPTS  # a class attribute of s3fs, not a constructor option
        return cls(FsspecBackend(fs, rest.strip("/"), "s3"))

    @property
    def url(self) -> str:
        """Where the store is (no credentials)."""
        return self._backend.describe()

    @property
    def is_local(self) -> bool:
        return isinstance(self._backend, LocalBackend)

    # -- errors ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except DefectOpsError:
            raise
        except FileNotFoundError:
            raise NotFoundError(f"no artifact {key!r} in {self.url}") from None
        except Exception as error:  # any failure of the file system or the S3 client, with its cause
            raise ArtifactStoreError(f"cannot {action} {key!r} in {self.url}: {error}") from error

    # -- plain objects ---------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""
        key = _check_relative(key, "artifact key")
        with self._errors("check", key):
            return self._backend.exists(key)

    def read_bytes(self, key: str) -> bytes:
        """The content of one object (:class:`NotFoundError` if absent)."""
        key = _check_relative(key, "artifact key")
        with self._errors("read", key):
            return self._backend.read(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace one object atomically."""
        key = _check_relative(key, "artifact key")
        with self._errors("write", key):
            self._backend.write(key, data)

    def put_file(self, source: Path, key: str) -> None:
        """Upload a local file to ``key`` atomically."""
        key = _check_relative(key, "artifact key")
        if not source.is_file():
            raise InputError(f"{source} is not a file")
        with self._errors("upload", key):
            self._backend.put_file(source, key)

    def get_file(self, key: str, target: Path) -> Path:
        """Download ``key`` to ``target`` (written to a temporary file, then renamed); return ``target``."""
        key = _check_relative(key, "artifact key")
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
        try:
            with self._errors("download", key):
                self._backend.get_file(key, temp)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return target

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (a folder, e.g. ``"state"``) sorted; hidden temp/lock files omitted."""
        if prefix:
            prefix = _check_relative(prefix.rstrip("/"), "artifact prefix")
        with self._errors("list", prefix or "/"):
            return self._backend.list(prefix)

    def delete(self, key: str) -> None:
        """Remove one object (absent is fine)."""
        key = _check_relative(key, "artifact key")
        with self._errors("delete", key):
            self._backend.delete(key)

    # -- appended CSV tables ---------------------------------------------------------------------

    def _append_csv(self, key: str, frame: pd.DataFrame) -> int:
        """Append rows to a CSV object; the header must match (same names; order taken from the file)."""
        if frame.empty:
            return 0
        if len(set(map(str, frame.columns))) != len(frame.columns):
            raise DataError(f"cannot append to {key}: duplicate column names {list(frame.columns)}")
        with self._errors("append to", key), self._backend.locked(key):
            for _attempt in range(_APPEND_ATTEMPTS):
                current = self._backend.read_versioned(key)
                if current is None or not current[0].strip():
                    data = _csv_bytes(frame, header=True)
                else:
                    existing, _version = current
                    columns = _header(existing)
                    if set(columns) != set(map(str, frame.columns)):
                        missing = sorted(set(columns) - set(map(str, frame.columns)))
                        extra = sorted(set(map(str, frame.columns)) - set(columns))
                        raise DataError(
                            f"cannot append to {key}: columns differ from the file's "
                            f"(missing {missing}, unexpected {extra})"
                        )
                    rows = _csv_bytes(frame.rename(columns=str)[columns], header=False)
                    data = existing if existing.endswith(b"\n") else existing + b"\n"
                    data += rows
                if self._backend.replace_if(key, data, None if current is None else current[1]):
                    return len(frame)
        raise ArtifactConflictError(
            f"appending to {key!r} in {self.url} lost against concurrent writers {_APPEND_ATTEMPTS} times"
        )

    def _read_csv_or_empty(self, key: str) -> pd.DataFrame:
        try:
            return _read_csv(self.read_bytes(key))
        except NotFoundError:
            return pd.DataFrame()

    def append_history(self, frame: pd.DataFrame) -> int:
        """Append prediction rows to ``history/prediction_history_master.csv``; return how many were appended.

        A store written before #17 has ``history/prediction_history.csv``: the first append copies it to the
        new key (create-only, so concurrent first appends copy it once) and appends there; the old object is
        left as it was and no longer written.
        """
        if not frame.empty:
            self._migrate_history()
        return self._append_csv(HISTORY_KEY, frame)

    def _migrate_history(self) -> None:
        with self._errors("migrate", LEGACY_HISTORY_KEY):
            if self._backend.exists(HISTORY_KEY) or not self._backend.exists(LEGACY_HISTORY_KEY):
                return
            with self._backend.locked(HISTORY_KEY):
                if self._backend.exists(HISTORY_KEY):
                    return
                # Create-only: a rival that migrated (and maybe appended) first wins, and its copy is kept.
                self._backend.replace_if(HISTORY_KEY, self._backend.read(LEGACY_HISTORY_KEY), None)

    def read_history(self) -> pd.DataFrame:
        """The whole prediction history (empty frame before the first append); the pre-#17 key
        ``history/prediction_history.csv`` while the new one does not exist."""
        if not self.exists(HISTORY_KEY) and self.exists(LEGACY_HISTORY_KEY):
            return self._read_csv_or_empty(LEGACY_HISTORY_KEY)
        return self._read_csv_or_empty(HISTORY_KEY)

    def write_metrics(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` to ``metrics_history.csv``, then make it ``metrics_current.csv``.

        History first: "current" is then always a row set that the history already holds.
        """
        if frame.empty:
            raise InputError("write_metrics needs at least one row")
        self._append_csv(METRICS_HISTORY_KEY, frame)
        with self._errors("write", METRICS_CURRENT_KEY):
            self._backend.write(METRICS_CURRENT_KEY, _csv_bytes(frame, header=True))

    def read_metrics_current(self) -> pd.DataFrame:
        """The latest metrics (:class:`NotFoundError` before the first :meth:`write_metrics`)."""
        return _read_csv(self.read_bytes(METRICS_CURRENT_KEY))

    def read_metrics_history(self) -> pd.DataFrame:
        """Every metrics row written so far (empty frame before the first)."""
        return self._read_csv_or_empty(METRICS_HISTORY_KEY)

    # -- per-commit prediction files -------------------------------------------------------------

    def put_predictions(self, frame: pd.DataFrame, *, commit: str, time: datetime) -> PredictionsFile:
        """Store one commit's predictions as ``predictions/predictions_<commit>_<time>.csv``.

        ``time`` (aware) is written in UTC to the second; an existing file of the same commit and second is
        never overwritten (:class:`ArtifactConflictError`).
        """
        commit = commit.strip().lower()
        if not _COMMIT_RE.match(commit):
            raise InputError(f"commit must be a hex sha of 7-64 characters, got {commit!r}")
        if time.tzinfo is None or time.utcoffset() is None:
            raise InputError(f"time must be timezone-aware, got {time.isoformat()}")
        moment = time.astimezone(UTC).replace(microsecond=0)
        key = f"predictions/predictions_{commit}_{moment.strftime(_TIME_FORMAT)}.csv"
        with self._errors("write", key):
            try:
                self._backend.create(key, _csv_bytes(frame, header=True))
            except FileExistsError:
                raise ArtifactConflictError(f"{key!r} already exists in {self.url}") from None
        return PredictionsFile(key=key, commit=commit, time=moment)

    def list_predictions(self, *, commit: str | None = None) -> list[PredictionsFile]:
        """Stored prediction files, oldest first; only those of ``commit`` (full sha or prefix) if given."""
        wanted = None if commit is None else commit.strip().lower()
        files = []
        for key in self.list_keys("predictions"):
            match = _PREDICTIONS_RE.match(key)
            if match is None:
                continue
            sha, stamp = match.groups()
            if wanted is not None and not (sha.startswith(wanted) or wanted.startswith(sha)):
                continue
            moment = datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC)
            files.append(PredictionsFile(key=key, commit=sha, time=moment))
        return sorted(files, key=lambda item: (item.time, item.key))

    def read_predictions(self, file: PredictionsFile | str) -> pd.DataFrame:
        """The rows of one prediction file."""
        return _read_csv(self.read_bytes(file.key if isinstance(file, PredictionsFile) else file))

    # -- miner state -----------------------------------------------------------------------------

    def put_state(self, source: Path, name: str | None = None) -> str:
        """Upload a miner state file as ``state/<name>`` (default: the file's name); return the key.

        A SQLite database is uploaded as a consistent snapshot taken with SQLite's backup API, so rows still
        in its WAL file are included and a concurrent writer cannot tear the copy.
        """
        if not source.is_file():
            raise InputError(f"state file {source} does not exist")
        key = f"state/{_check_name(name or source.name, 'state name')}"
        with source.open("rb") as handle:
            is_sqlite = handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
        if not is_sqlite:
            self.put_file(source, key)
            return key
        snapshot = source.with_name(f".{source.name}.snapshot-{uuid.uuid4().hex}")
        try:
            with (
                contextlib.closing(sqlite3.connect(source)) as origin,
                contextlib.closing(sqlite3.connect(snapshot)) as copy,
            ):
                origin.backup(copy)
            self.put_file(snapshot, key)
        except sqlite3.Error as error:
            raise StateSnapshotError(f"cannot snapshot SQLite state {source}: {error}") from error
        finally:
            snapshot.unlink(missing_ok=True)
        return key

    def state_version(self, name: str) -> str | None:
        """An opaque version of ``state/<name>`` (S3: its ETag; a folder: its content hash), None if absent.

        Read it before :meth:`get_state` and hand it to :meth:`put_state_if`: the state is then replaced only
        if nobody replaced it in between.
        """
        key = f"state/{_check_name(name, 'state name')}"
        with self._errors("check", key):
            return self._backend.version(key)

    def put_state_if(self, source: Path, name: str, version: str | None) -> bool:
        """Upload a miner state file as ``state/<name>`` only if the stored one is still at ``version``
        (None: only if there is none); False, and nothing written, when another writer got there first.

        The file is uploaded as a SQLite snapshot like :meth:`put_state`, in one conditional PUT on S3.
        """
        if not source.is_file():
            raise InputError(f"state file {source} does not exist")
        key = f"state/{_check_name(name, 'state name')}"
        snapshot = source.with_name(f".{source.name}.snapshot-{uuid.uuid4().hex}")
        try:
            with (
                contextlib.closing(sqlite3.connect(source)) as origin,
                contextlib.closing(sqlite3.connect(snapshot)) as copy,
            ):
                origin.backup(copy)
            data = snapshot.read_bytes()
        except sqlite3.Error as error:
            raise StateSnapshotError(f"cannot snapshot SQLite state {source}: {error}") from error
        finally:
            snapshot.unlink(missing_ok=True)
        with self._errors("upload", key), self._backend.locked(key):
            if self._backend.version(key) != version:
                return False
            return self._backend.replace_if(key, data, version)

    def has_state(self, name: str) -> bool:
        """Whether ``state/<name>`` exists."""
        return self.exists(f"state/{_check_name(name, 'state name')}")

    def get_state(self, name: str, target: Path) -> Path:
        """Download ``state/<name>`` to ``target`` atomically (:class:`NotFoundError` if absent).

        Any ``-wal``/``-shm`` files of an older database at ``target`` are removed: SQLite would otherwise
        replay the old log into the new file. Do not call this while a process has ``target`` open.
        """
        key = f"state/{_check_name(name, 'state name')}"
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
        try:
            self.get_file(key, staging)
            for suffix in ("-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        return target
