"""The miner's incremental state: per-file and per-developer history in one SQLite file in the workspace.

Why SQLite: just-in-time scoring reads only the rows of the files and the developer a commit touches, so its
cost does not grow with the length of history; a full or incremental run loads everything at once. The same
file is what ``defectops state export`` writes and ``import`` reads, for CI on shallow clones.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defectops.errors import StateError
from defectops.git import GitRepo
from defectops.mining.identity import RepositoryIdentity, check_same_repository
from defectops.mining.metrics import DeveloperHistory, FileHistory, HistoryState

#: 2 (#20): per-file and per-directory fix counts for the richer features; a state of format 1 lacks them,
#: so the miner rebuilds it (:meth:`StateStore.outdated`). 3 (#20): the same state, but its commit table has
#: the churn shares (``src_share``...); a state of format 2 is rebuilt so that the table is rewritten whole
#: (appending new rows to a table without the columns would leave the old rows without them). 4: the fix
#: rules changed ("chore" is a non-fix category), so the ``fix`` flags of earlier rows and the per-file and
#: per-directory fix counts are recomputed from scratch rather than mixing two rules in one table.
FORMAT_VERSION = "4"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, developers TEXT NOT NULL, last_time REAL NOT NULL, last_sha TEXT NOT NULL,
    fixes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS developers (
    email TEXT PRIMARY KEY, times BLOB NOT NULL, subsystem_sets TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS directories (path TEXT PRIMARY KEY, fixes INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class StateInfo:
    """What a stored state covers."""

    repo_path: str
    branch: str
    head: str
    commits: int
    defectops_version: str
    #: Root commits of the mined history (empty when mined from a shallow clone or by an older version).
    roots: tuple[str, ...] = ()
    #: The normalised remote URL of the mined clone ("" when it had none).
    remote: str = ""
    #: Commit time of ``head`` as a UNIX timestamp (None for states written by older versions).
    head_time: float | None = None

    @property
    def identity(self) -> RepositoryIdentity:
        return RepositoryIdentity(roots=self.roots, remote=self.remote)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA)
    return conn


def _encode_developer(history: DeveloperHistory) -> tuple[bytes, str]:
    times = history.times[: history.count].astype("<f8").tobytes()
    sets = json.dumps(sorted([sorted(s), n] for s, n in history.subsystem_sets.items()))
    return times, sets


def _decode_developer(times: bytes, sets: str) -> DeveloperHistory:
    array = np.frombuffer(times, dtype="<f8").astype(np.float64)
    history = DeveloperHistory(times=array.copy(), count=len(array))
    history.subsystem_sets = Counter({frozenset(s): int(n) for s, n in json.loads(sets)})
    return history


class StateStore:
    """Read and write one repository's miner state file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def outdated(self) -> bool:
        """Whether the file is a state of an older format (mined before #20's fix counts or churn shares, or
        under the earlier fix rules): the miner then rebuilds it from scratch instead of refusing it."""
        if not self.path.exists():
            return False
        try:
            with _connect(self.path) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        except sqlite3.DatabaseError:
            return False
        return (
            row is not None
            and row[0] != FORMAT_VERSION
            and row[0].isdigit()
            and int(row[0]) < int(FORMAT_VERSION)
        )

    def info(self) -> StateInfo | None:
        if not self.path.exists():
            return None
        try:
            with _connect(self.path) as conn:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path}: not a defectops state file ({exc})") from exc
        if not meta:
            return None
        if meta.get("format_version") != FORMAT_VERSION:
            raise StateError(
                f"{self.path}: state format {meta.get('format_version')!r} is not {FORMAT_VERSION!r}; "
                "mine again to rebuild it"
            )
        return StateInfo(
            repo_path=meta.get("repo_path", ""),
            branch=meta.get("branch", ""),
            head=meta.get("head", ""),
            commits=int(meta.get("commits", "0")),
            defectops_version=meta.get("defectops_version", ""),
            roots=RepositoryIdentity.decode_roots(meta.get("roots", "")),
            remote=meta.get("remote", ""),
            head_time=float(meta["head_time"]) if meta.get("head_time") else None,
        )

    def load(self) -> HistoryState:
        """Everything, into memory (full and incremental runs)."""
        with _connect(self.path) as conn:
            files = {
                path: FileHistory(set(devs.split("\n")) if devs else set(), last_time, last_sha, fixes)
                for path, devs, last_time, last_sha, fixes in conn.execute(
                    "SELECT path, developers, last_time, last_sha, fixes FROM files"
                )
            }
            directories = dict(conn.execute("SELECT path, fixes FROM directories").fetchall())
            developers = {
                email: _decode_developer(times, sets)
                for email, times, sets in conn.execute("SELECT email, times, subsystem_sets FROM developers")
            }
        return HistoryState(files=files, developers=developers, directories=directories)

    def lazy(self) -> tuple[HistoryState, sqlite3.Connection]:
        """A state that reads rows on demand (just-in-time scoring); close the connection when done."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

        def file_loader(path: str) -> FileHistory | None:
            row = conn.execute(
                "SELECT developers, last_time, last_sha, fixes FROM files WHERE path = ?", (path,)
            ).fetchone()
            if row is None:
                return None
            return FileHistory(set(row[0].split("\n")) if row[0] else set(), row[1], row[2], row[3])

        def directory_loader(directory: str) -> int | None:
            row = conn.execute("SELECT fixes FROM directories WHERE path = ?", (directory,)).fetchone()
            return None if row is None else int(row[0])

        def developer_loader(email: str) -> DeveloperHistory | None:
            row = conn.execute(
                "SELECT times, subsystem_sets FROM developers WHERE email = ?", (email,)
            ).fetchone()
            return None if row is None else _decode_developer(row[0], row[1])

        state = HistoryState(
            file_loader=file_loader, developer_loader=developer_loader, directory_loader=directory_loader
        )
        return state, conn

    def save(self, state: HistoryState, info: StateInfo) -> None:
        """Write the whole state atomically: a new file of this writer's own, renamed over the old one, so
        concurrent writers never write into one temporary file and a reader never sees half a state."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            self._write(tmp, state, info)
            tmp.replace(self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _write(tmp: Path, state: HistoryState, info: StateInfo) -> None:
        conn = _connect(tmp)
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                    (
                        (path, "\n".join(sorted(h.developers)), h.last_time, h.last_sha, h.fixes)
                        for path, h in state.files.items()
                    ),
                )
                conn.executemany(
                    "INSERT INTO directories VALUES (?, ?)",
                    ((path, n) for path, n in state.directories.items() if n),
                )
                conn.executemany(
                    "INSERT INTO developers VALUES (?, ?, ?)",
                    ((email, *_encode_developer(h)) for email, h in state.developers.items() if h.count),
                )
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("format_version", FORMAT_VERSION),
                        ("repo_path", info.repo_path),
                        ("branch", info.branch),
                        ("head", info.head),
                        ("commits", str(info.commits)),
                        ("defectops_version", info.defectops_version),
                        ("roots", ",".join(info.roots)),
                        ("remote", info.remote),
                        ("head_time", "" if info.head_time is None else repr(info.head_time)),
                    ],
                )
        finally:
            conn.close()

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    def export_to(self, target: Path) -> StateInfo:
        info = self.info()
        if info is None:
            raise StateError(f"no miner state at {self.path}; run `defectops mine` first")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, target)
        return info

    def import_from(self, source: Path, repo: GitRepo) -> StateInfo:
        """Install ``source`` as this repository's state, after checking that it was mined from ``repo``'s
        history (another project's state would score these commits with someone else's past)."""
        if not source.is_file():
            raise StateError(f"{source}: no such state file")
        info = StateStore(source).info()
        if info is None:
            raise StateError(f"{source}: an empty or foreign state file")
        check_same_repository(
            info.identity, info.head, repo, state_source=info.repo_path, what=f"the miner state {source}"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        shutil.copyfile(source, name)
        Path(name).replace(self.path)
        return info


def mined_repositories(state_dir: Path) -> dict[str, Path]:
    """The repositories a workspace mined whose clone is still where it was mined, as {repository id: path}.

    Why: after ``defectops run --repo R`` a local ``defectops serve`` should score R's commits without being
    told where R is again; the miner state already records it. States that cannot be read are left out (the
    service starts; ``--repository`` still names any clone explicitly).
    """
    found: dict[str, Path] = {}
    for path in sorted(state_dir.glob("*.sqlite")) if state_dir.is_dir() else []:
        try:
            info = StateStore(path).info()
        except StateError:
            continue
        if info is not None and info.repo_path and Path(info.repo_path).is_dir():
            found[path.stem] = Path(info.repo_path)
    return found
