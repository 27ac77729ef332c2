"""The records of the line pass (:mod:`defectops.labeling.lines`): the origin of every line of a file, the
files of a commit, the lines a fix deleted with their origins, what a fix touched, and the pass's counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class FileLines:
    """One file of one commit: its blob id and the origin (commit index) of each of its lines."""

    blob: bytes
    origins: list[int]
    binary: bool = False


_MISSING = object()
Loader = Callable[[bytes], "FileLines | None"]


class LineState:
    """The files of one commit. ``loader`` fills in files on demand (a commit whose history was not
    streamed)."""

    __slots__ = ("files", "loader")

    def __init__(
        self, files: dict[bytes, FileLines | None] | None = None, loader: Loader | None = None
    ) -> None:
        self.files: dict[bytes, FileLines | None] = files if files is not None else {}
        self.loader = loader

    def get(self, path: bytes) -> FileLines | None:
        entry = self.files.get(path, _MISSING)
        if entry is _MISSING:
            if self.loader is None:
                return None
            loaded = self.loader(path)
            self.files[path] = loaded
            return loaded
        return entry  # type: ignore[return-value]

    def put(self, path: bytes, entry: FileLines) -> None:
        self.files[path] = entry

    def remove(self, path: bytes) -> None:
        if self.loader is None:
            self.files.pop(path, None)
        else:
            self.files[path] = None  # tombstone: do not ask the loader again

    def copy(self) -> LineState:
        return LineState(dict(self.files), self.loader)

    def items(self) -> Iterator[tuple[bytes, FileLines]]:
        """Known files (a lazy state yields only what it has loaded or changed)."""
        for path, entry in self.files.items():
            if entry is not None:
                yield path, entry


@dataclass(slots=True)
class DeletedLines:
    """Lines that a fix deleted or changed in one file, with their origins: one blame of that fix."""

    fix: int
    path: bytes
    new_path: bytes | None
    start: int
    origins: list[int]
    text: list[bytes]


@dataclass(slots=True)
class FileTouch:
    """What one non-merge commit did to one file (kept for fixes, to decide linkability and filters)."""

    status: str
    path: bytes
    old_path: bytes | None
    binary: bool
    added: int
    deleted: int


@dataclass
class TrackStats:
    commits: int = 0
    merges: int = 0
    merge_files_resolved: int = 0
    merge_files_aligned_here: int = 0
    lazy_files: int = 0
    desync_hunks: int = 0


@dataclass
class TrackResult:
    """Everything a pass produces: the tip's state, the deleted lines of every fix, and what fixes touched."""

    tip_state: LineState | None
    deleted: list[DeletedLines] = field(default_factory=list)
    touched: dict[int, list[FileTouch]] = field(default_factory=dict)
    stats: TrackStats = field(default_factory=TrackStats)
