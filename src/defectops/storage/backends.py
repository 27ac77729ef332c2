"""Where the artifact store's bytes live: one small interface (:class:`Backend`), two implementations.

- :class:`LocalBackend`: a folder on this machine; every write is a temporary file, fsynced and renamed, and
  appenders serialise on an exclusive lock file.
- :class:`FsspecBackend`: an fsspec file system (s3fs for ``s3://``); every write is one PUT, and appends
  are compare-and-swap on the object's ETag (``If-Match``).

:class:`~defectops.storage.artifacts.ArtifactStore` checks keys and maps errors; backends take checked keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

# s3fs switches to a multipart upload at 2 * chunksize; S3 takes a single PUT of up to 5 GiB. One PUT keeps
# every write a single atomic request and lets appends carry their If-Match condition.
_SINGLE_PUT_CHUNKSIZE: Final = 5 * 2**30 // 2


class Backend(Protocol):
    def describe(self) -> str: ...

    def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> bytes: ...

    def read_versioned(self, key: str) -> tuple[bytes, str] | None: ...

    def version(self, key: str) -> str | None: ...

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


class LocalBackend:
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

    def version(self, key: str) -> str | None:
        path = self._path(key)
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

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


class FsspecBackend:
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

    def version(self, key: str) -> str | None:
        try:
            return str(self.fs.info(self._path(key))["ETag"])
        except FileNotFoundError:
            return None

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
