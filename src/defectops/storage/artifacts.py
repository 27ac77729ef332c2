"""The artifact store: predictions, metrics, history, models and miner state on a local folder or on S3.

Why: CI jobs and the service are short-lived and run on machines that forget; what they produce (prediction
files, metric tables, models, the miner state a shallow clone needs) must outlive them, in the layout users of
the original pipeline know::

    history/prediction_history.csv                   every prediction, appended
    metrics/metrics_current.csv                      the latest metrics (overwritten)
    metrics/metrics_history.csv                      every metrics row ever written (appended)
    predictions/predictions_<commit>_<time>.csv      one file per scored commit (time: UTC, YYYYmmddTHHMMSSZ)
    models/<name>/...                                a model file or folder, plus its manifest
    state/<name>                                     miner state files (e.g. <repo>.sqlite)

Writes are atomic-ish: a reader sees the old object or the new one, never a torn one. On a local folder
each write goes to a temporary file in the same folder, is fsynced and renamed over the target; on S3 each
object is one PUT. Appends are read-modify-write guarded against concurrent writers (an exclusive lock file
on a local folder; an ``If-Match`` ETag condition on S3, retried on conflict). A model
folder is many objects: its manifest (sizes and SHA-256 of every file) is written last and removed first, and
:meth:`ArtifactStore.get_model` verifies every file against it, so a half-uploaded model is never used.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import pandas as pd

from defectops.data import file_sha256
from defectops.errors import ConfigError, DataError, DefectOpsError, InputError, NotFoundError

__all__ = [
    "ENDPOINT_ENV",
    "HISTORY_KEY",
    "METRICS_CURRENT_KEY",
    "METRICS_HISTORY_KEY",
    "ArtifactConflictError",
    "ArtifactStore",
    "ArtifactStoreError",
    "ManifestEntry",
    "ModelManifest",
    "PredictionsFile",
    "StateSnapshotError",
]

ENDPOINT_ENV: Final = "DEFECTOPS_S3_ENDPOINT_URL"
HISTORY_KEY: Final = "history/prediction_history.csv"
METRICS_CURRENT_KEY: Final = "metrics/metrics_current.csv"
METRICS_HISTORY_KEY: Final = "metrics/metrics_history.csv"
MANIFEST_NAME: Final = "_defectops_manifest.json"
_TIME_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_PREDICTIONS_RE: Final = re.compile(r"^predictions/predictions_([0-9a-f]{7,64})_(\d{8}T\d{6}Z)\.csv$")
_SEGMENT_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT_RE: Final = re.compile(r"^[0-9a-f]{7,64}$")
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_APPEND_ATTEMPTS: Final = 10
# s3fs switches to a multipart upload at 2 * chunksize; S3 takes a single PUT of up to 5 GiB. One PUT keeps
# every write a single atomic request and lets appends carry their If-Match condition.
_SINGLE_PUT_CHUNKSIZE: Final = 5 * 2**30 // 2


class ArtifactStoreError(DefectOpsError):
    """The artifact store cannot be reached, refused an operation, or holds something unusable."""

    exit_code = 9
    http_status = 503


class ArtifactConflictError(ArtifactStoreError):
    """A write would overwrite an existing artifact, or lost against concurrent writers too often."""

    http_status = 409


class StateSnapshotError(ArtifactStoreError):
    """A SQLite state file could not be snapshotted for upload (corrupt, locked, not a database)."""

    exit_code = 4


@dataclass(frozen=True, slots=True)
class PredictionsFile:
    """One ``predictions/predictions_<commit>_<time>.csv`` object."""

    key: str
    commit: str
    time: datetime


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a stored model: its path inside the model, size in bytes and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """What a stored model consists of; written after the files, so its presence means "complete"."""

    name: str
    kind: Literal["file", "folder"]
    files: tuple[ManifestEntry, ...]

    def to_json(self) -> bytes:
        document = {
            "format": 1,
            "name": self.name,
            "kind": self.kind,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, name: str) -> ModelManifest:
        try:
            document = json.loads(data)
            kind = document["kind"]
            if kind not in ("file", "folder") or document.get("format") != 1:
                raise ValueError(f"unknown manifest kind/format {kind!r}/{document.get('format')!r}")
            files = tuple(
                ManifestEntry(path=str(item["path"]), size=int(item["size"]), sha256=str(item["sha256"]))
                for item in document["files"]
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ArtifactStoreError(f"the manifest of model {name!r} is unreadable: {error}") from None
        for entry in files:
            _check_relative(entry.path, f"manifest entry of model {name!r}")
        return cls(name=name, kind=kind, files=files)


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
# Backends: one small interface, two implementations
# --------------------------------------------------------------------------------------------------


class _Backend(Protocol):
    def describe(self) -> str: ...

    def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> bytes: ...

    def read_versioned(self, key: str) -> tuple[bytes, str] | None: ...

    def write(self, key: str, data: bytes) -> None: ...

    def create(self, key: str, data: bytes) -> None: ...

    def replace_if(self, key: str, data: bytes, version: str | None) -> bool: ...

    def put_file(self, source: Path, key: str) -> None: ...

    def get_file(self, key: str, target: Path) -> None: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def locked(self, key: str) -> contextlib.AbstractContextManager[None]: ...


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform / file system allows opening a directory
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class _LocalBackend:
    """A folder on this machine: temp file + fsync + rename, so a crash never leaves a torn file.

    Plain ``os`` rather than fsspec's LocalFileSystem, which cannot fsync; the remote side uses fsspec.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _temp(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        data = path.read_bytes()
        return data, hashlib.sha256(data).hexdigest()

    def _write_temp(self, path: Path, data: bytes) -> Path:
        temp = self._temp(path)
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return temp

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = self._write_temp(path, data)
        try:
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def create(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = self._write_temp(path, data)
        try:
            os.link(temp, path)  # atomic, and fails if the target exists
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def replace_if(self, key: str, data: bytes, version: str | None) -> bool:
        # Callers hold locked(key), so nothing changed since read_versioned().
        self.write(key, data)
        return True

    def put_file(self, source: Path, key: str) -> None:
        path = self._path(key)
        temp = self._temp(path)
        try:
            shutil.copyfile(source, temp)
            with temp.open("rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def get_file(self, key: str, target: Path) -> None:
        shutil.copyfile(self._path(key), target)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            relative = path.relative_to(self.root).as_posix()
            if path.is_file() and not any(part.startswith(".") for part in relative.split("/")):
                keys.append(relative)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """An exclusive flock on a hidden lock file next to the object: one appender at a time."""
        import fcntl  # POSIX only; imported here so that merely importing the module works everywhere

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.with_name(f".{path.name}.lock").open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _precondition_failed(error: BaseException) -> bool:
    """Whether an fsspec/s3fs error was S3's 412 PreconditionFailed (a lost compare-and-swap)."""
    if isinstance(error, FileExistsError):
        return True
    response = getattr(error.__cause__, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return code in ("PreconditionFailed", "ConditionalRequestConflict")
    return False


class _FsspecBackend:
    """An fsspec file system (s3fs for ``s3://``): one PUT per object, ETag conditions for appends."""

    def __init__(self, fs: Any, root: str, protocol: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.protocol = protocol

    def describe(self) -> str:
        return f"{self.protocol}://{self.root}"

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.isfile(self._path(key)))

    def read(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self._path(key))
        return data

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            # The ETag first, then the body: if the object changes in between, the conditional PUT with the
            # older ETag fails and the append is retried, so a body newer than its ETag is never written back.
            etag = str(self.fs.info(path)["ETag"])
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return data, etag

    def write(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data, chunksize=_SINGLE_PUT_CHUNKSIZE)

    def create(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(self._path(key), data, mode="create", chunksize=_SINGLE_PUT_CHUNKSIZE)
        except OSError as error:
            if _precondition_failed(error):
                raise FileExistsError(key) from error
            raise

    def replace_if(self, key: str, data: bytes, version: str | None) -> bool:
        try:
            if version is None:
                self.fs.pipe_file(self._path(key), data, mode="create", chunksize=_SINGLE_PUT_CHUNKSIZE)
            else:
                self.fs.pipe_file(self._path(key), data, IfMatch=version, chunksize=_SINGLE_PUT_CHUNKSIZE)
        except OSError as error:
            if _precondition_failed(error):
                return False
            raise
        return True

    def put_file(self, source: Path, key: str) -> None:
        self.fs.put_file(str(source), self._path(key))

    def get_file(self, key: str, target: Path) -> None:
        self.fs.get_file(self._path(key), str(target))

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        keys = []
        start = len(self.root) + 1
        for path in found:
            relative = str(path)[start:]
            if relative and not any(part.startswith(".") for part in relative.split("/")):
                keys.append(relative)
        return sorted(keys)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        yield  # S3 has no locks; appends rely on replace_if (If-Match) instead


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

    def __init__(self, backend: _Backend) -> None:
        """Wrap a backend; use :meth:`from_url`."""
        self._backend = backend

    @classmethod
    def from_url(
        cls,
        url: str | Path,
        storage_options: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ArtifactStore:
        """Open the store at a local path (or ``file://`` URL) or ``s3://bucket/prefix``.

        For S3, ``storage_options`` go to ``s3fs.S3FileSystem`` (e.g. ``key``, ``secret``,
        ``endpoint_url``, ``client_kwargs``). Without an ``endpoint_url`` there, ``DEFECTOPS_S3_ENDPOINT_URL``
        (from ``environ``, default ``os.environ``) points at an S3-compatible server (MinIO, moto, ...).
        Credentials and region otherwise come from the usual ``AWS_*`` variables and files, read by botocore
        (``AWS_ENDPOINT_URL_S3`` works too). Nothing is contacted or
        created until the first operation.
        """
        environment = os.environ if environ is None else environ
        text = str(url)
        if isinstance(url, Path) or "://" not in text:
            if storage_options:
                raise ConfigError("storage_options only apply to s3:// URLs")
            return cls(_LocalBackend(Path(text).expanduser().resolve()))
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
        client_kwargs = options.get("client_kwargs") or {}
        endpoint = environment.get(ENDPOINT_ENV, "").strip()
        if endpoint and "endpoint_url" not in options and "endpoint_url" not in client_kwargs:
            options["endpoint_url"] = endpoint
        import s3fs  # imported on use: it pulls in botocore and aiohttp, which plain local use never needs

        try:
            fs = s3fs.S3FileSystem(**options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"invalid S3 storage options: {error}") from None
        return cls(_FsspecBackend(fs, rest.strip("/"), "s3"))

    @property
    def url(self) -> str:
        """Where the store is (no credentials)."""
        return self._backend.describe()

    @property
    def is_local(self) -> bool:
        return isinstance(self._backend, _LocalBackend)

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
        """Every key under ``prefix`` (a folder, e.g. ``"models"``) sorted; hidden temp/lock files omitted."""
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
        """Append prediction rows to ``history/prediction_history.csv``; return how many were appended."""
        return self._append_csv(HISTORY_KEY, frame)

    def read_history(self) -> pd.DataFrame:
        """The whole prediction history (empty frame before the first append)."""
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

    # -- models ----------------------------------------------------------------------------------

    def put_model(self, source: Path, name: str) -> ModelManifest:
        """Store a model file or folder as ``models/<name>/``, replacing an older one of that name.

        The manifest is removed first and written last, so a reader never takes a half-written model for a
        complete one; files the new model no longer has are deleted.
        """
        name = _check_name(name, "model name")
        if source.is_file():
            kind: Literal["file", "folder"] = "file"
            files = {source.name: source}
        elif source.is_dir():
            kind = "folder"
            files = {
                path.relative_to(source).as_posix(): path
                for path in sorted(source.rglob("*"))
                if path.is_file()
            }
            if not files:
                raise InputError(f"model folder {source} is empty")
        else:
            raise InputError(f"model source {source} is neither a file nor a folder")
        for relative in files:
            _check_relative(relative, f"file of model folder {source}")
            if relative == MANIFEST_NAME:
                raise InputError(f"a model may not contain a file named {MANIFEST_NAME}")
        manifest = ModelManifest(
            name=name,
            kind=kind,
            files=tuple(
                ManifestEntry(path=relative, size=path.stat().st_size, sha256=file_sha256(path))
                for relative, path in files.items()
            ),
        )
        prefix = f"models/{name}"
        manifest_key = f"{prefix}/{MANIFEST_NAME}"
        with self._errors("store model", prefix):
            self._backend.delete(manifest_key)
            for relative, path in files.items():
                self._backend.put_file(path, f"{prefix}/{relative}")
            for stale in self._backend.list(prefix):
                if stale != manifest_key and stale[len(prefix) + 1 :] not in files:
                    self._backend.delete(stale)
            self._backend.write(manifest_key, manifest.to_json())
        return manifest

    def model_manifest(self, name: str) -> ModelManifest:
        """The manifest of a complete stored model (:class:`NotFoundError` if there is none)."""
        name = _check_name(name, "model name")
        key = f"models/{name}/{MANIFEST_NAME}"
        try:
            data = self.read_bytes(key)
        except NotFoundError:
            raise NotFoundError(f"no complete model {name!r} in {self.url}") from None
        return ModelManifest.from_json(data, name)

    def list_models(self) -> list[str]:
        """Names of the complete stored models."""
        suffix = f"/{MANIFEST_NAME}"
        return [
            key[len("models/") : -len(suffix)] for key in self.list_keys("models") if key.endswith(suffix)
        ]

    def get_model(self, name: str, target: Path) -> Path:
        """Download a model into the folder ``target`` (absent or empty) and verify it against its manifest.

        Returns the model's path: ``target/<file name>`` for a single-file model, ``target`` for a folder.
        Files are fetched into a temporary sibling folder that is renamed to ``target`` only when every size
        and SHA-256 matched, so ``target`` never holds a partial model.
        """
        manifest = self.model_manifest(name)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputError(f"{target} exists and is not an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
        try:
            for entry in manifest.files:
                local = staging.joinpath(*entry.path.split("/"))
                local.parent.mkdir(parents=True, exist_ok=True)
                key = f"models/{manifest.name}/{entry.path}"
                with self._errors("download", key):
                    self._backend.get_file(key, local)
                size, digest = local.stat().st_size, file_sha256(local)
                if size != entry.size or digest != entry.sha256:
                    raise ArtifactStoreError(
                        f"model {name!r} file {entry.path!r} does not match its manifest "
                        f"(size {size} vs {entry.size}); it changed during the download or is corrupt"
                    )
            if target.exists():
                target.rmdir()
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return target / manifest.files[0].path if manifest.kind == "file" else target

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
