"""Typed records that the miner yields: one :class:`Commit` per commit, one :class:`FileChange` per file.

These are the contract between mining and every later stage; they carry no behaviour beyond derived values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ChangeType(StrEnum):
    """git's change status letters, named."""

    ADDED = "A"
    MODIFIED = "M"
    DELETED = "D"
    RENAMED = "R"
    COPIED = "C"
    TYPE_CHANGED = "T"
    UNMERGED = "U"
    UNKNOWN = "X"


@dataclass(slots=True)
class FileChange:
    """One file touched by a commit, against the commit's first parent.

    ``old_blob``/``new_blob`` are git object ids (all zeros when absent); they make line counts exact without
    reading the file twice. ``binary`` changes have ``added == deleted == 0``.
    """

    path: str
    old_path: str | None
    change_type: ChangeType
    added: int
    deleted: int
    binary: bool
    old_blob: str
    new_blob: str
    old_mode: str = "000000"
    new_mode: str = "000000"

    @property
    def is_submodule(self) -> bool:
        return self.new_mode == "160000" or self.old_mode == "160000"


@dataclass(slots=True)
class Commit:
    """A commit as the miner sees it: identity, people, times, message, and the files it changed."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: datetime
    committer_time: datetime
    message: str
    files: list[FileChange] = field(default_factory=list)

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    @property
    def is_root(self) -> bool:
        return not self.parents
