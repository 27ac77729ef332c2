"""Features of every Terraform block a commit changed, from one oldest-first pass over the history.

One row per (commit, ``.tf`` file, block address) whose block the commit added, removed or changed (a
different content hash: formatting and comments are no change, as in :mod:`defectops.mining.terraform`).
The columns (:data:`defectops.data.BLOCK_FEATURES`) describe:

* the block: its kind (one-hot), attributes, nesting depth and lines at the new revision (the parent's for
  a removed block), and the blocks in its file;
* the change inside it: added / removed (a changed block has both 0), members (attributes and nested block
  types directly in it) added, removed and changed, lines added and deleted inside it (a line diff of the
  block's two versions; all its lines for an added or removed block); ``churn`` is their sum (the effort);
* its history *before this commit*: age (days since the address appeared in this file), days since its last
  change, past changes, past changes by fix commits, distinct past authors; past changes and fixes of any
  block of the same type (``aws_iam_role``, ``module``, ...);
* the author's experience: their past changes to this block and to this file;
* the commit: fix (by its message) and how many blocks it changed.

Why one pass: every history value is read from a state that holds only earlier commits (the commits in
``git log --date-order --reverse`` order: parents before children, else by commit time), and the state is
updated after the commit's rows are made; a commit never sees itself or anything after it. Merge commits
are skipped (their changes are counted at the commits that made them). A file renamed keeps its history;
a file version the block scanner cannot read gives no rows for that commit (counted in ``unread_files``),
and its blocks' history continues from the next version that reads.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from defectops.data import BLOCK_COLUMNS, BLOCK_FEATURES, BLOCK_KIND_COLUMNS
from defectops.git import LOG_OPTIONS, BlobReader, ChangeType, Commit, GitRepo, decode_text, parse_log
from defectops.mining.fixes import FixRules, is_fix_message
from defectops.mining.terraform_blocks import BlockSpan, block_spans

_DAY: Final = 86400.0
_TF: Final = ".tf"
_MAX_BYTES: Final = 1 << 20


@dataclass
class _BlockHistory:
    first_seen: float
    last_change: float
    changes: int = 0
    fixes: int = 0
    authors: Counter[str] = field(default_factory=Counter)


@dataclass
class _FileHistory:
    blocks: dict[str, _BlockHistory] = field(default_factory=dict)
    authors: Counter[str] = field(default_factory=Counter)


@dataclass
class BlockFeatureResult:
    """The rows (columns :data:`defectops.data.BLOCK_COLUMNS`) and what the pass read."""

    frame: pd.DataFrame
    commits: int = 0
    tf_files: int = 0
    unread_files: int = 0
    #: The pass's history at the end (JSON-ready), to continue from with ``block_features(state=...)``.
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Version:
    spans: dict[str, BlockSpan]
    lines: list[str]


def _absent(oid: str) -> bool:
    return not oid or set(oid) == {"0"}


def _line_changes(
    old: BlockSpan | None, old_lines: list[str], new: BlockSpan | None, new_lines: list[str]
) -> tuple[int, int]:
    """(lines added, lines deleted) inside one block between its two versions."""
    a = old_lines[old.first_line - 1 : old.last_line] if old is not None else []
    b = new_lines[new.first_line - 1 : new.last_line] if new is not None else []
    if not a or not b:
        return len(b), len(a)
    added = deleted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            deleted += i2 - i1
            added += j2 - j1
    return added, deleted


def _changed(old: _Version, new: _Version) -> list[tuple[str, BlockSpan | None, BlockSpan | None]]:
    rows: list[tuple[str, BlockSpan | None, BlockSpan | None]] = []
    for address, span in new.spans.items():
        before = old.spans.get(address)
        if before is None or dict(before.members) != dict(span.members):
            rows.append((address, before, span))
    rows.extend((address, span, None) for address, span in old.spans.items() if address not in new.spans)
    return rows


class _Pass:
    def __init__(self, reader: BlobReader, rules: FixRules | None) -> None:
        self.reader = reader
        self.rules = rules
        self.files: dict[str, _FileHistory] = {}
        self.types: dict[str, list[int]] = {}  # block type -> [changes, fixes]
        self.versions: dict[str, _Version | None] = {}
        self.result_rows: list[dict[str, object]] = []
        self.tf_files = 0
        self.unread = 0

    def version(self, oid: str) -> _Version | None:
        if oid not in self.versions:
            if len(self.versions) > 4096:
                self.versions.clear()
            ((_, data),) = self.reader.read_many([oid], _MAX_BYTES)
            spans = block_spans(decode_text(data)) if data is not None else None
            text = decode_text(data) if data is not None else ""
            self.versions[oid] = (
                None if spans is None else _Version({s.address: s for s in spans}, text.splitlines())
            )
        return self.versions[oid]

    def commit(self, commit: Commit) -> None:
        now = commit.committer_time.timestamp()
        author = commit.author_email.strip().lower()
        fix = is_fix_message(commit.message, self.rules)
        empty = _Version({}, [])
        pending: list[tuple[str, str, BlockSpan | None, BlockSpan | None, _Version, _Version]] = []
        gone: list[str] = []
        for change in commit.files:
            old_path = change.old_path or change.path
            old_is_tf = (
                change.change_type != ChangeType.ADDED
                and old_path.endswith(_TF)
                and not _absent(change.old_blob)
            )
            new_is_tf = change.change_type != ChangeType.DELETED and change.path.endswith(_TF)
            if not (old_is_tf or new_is_tf) or change.is_submodule or change.binary:
                continue
            if change.change_type == ChangeType.RENAMED and old_path in self.files:
                self.files[change.path] = self.files.pop(old_path)
            self.tf_files += 1
            old = self.version(change.old_blob) if old_is_tf else empty
            new = self.version(change.new_blob) if new_is_tf else empty
            if not new_is_tf:
                gone.append(change.path)
            if new is None or old is None:
                self.unread += 1
                if new is not None:  # remember the blocks the file now has, from this commit on
                    history = self.files.setdefault(change.path, _FileHistory())
                    for address in new.spans:
                        history.blocks.setdefault(address, _BlockHistory(first_seen=now, last_change=now))
                continue
            pending.extend(
                (change.path, a, before, after, old, new) for a, before, after in _changed(old, new)
            )
        for path, address, before, after, old, new in pending:
            self.row(commit, path, address, before, after, old, new, len(pending), fix)
        for path, address, before, after, _old, _new in pending:
            history = self.files.setdefault(path, _FileHistory())
            if after is None:
                history.blocks.pop(address, None)
            else:
                block = history.blocks.setdefault(address, _BlockHistory(first_seen=now, last_change=now))
                block.changes += 1
                block.fixes += int(fix)
                block.authors[author] += 1
                block.last_change = now
            span = after if after is not None else before
            counts = self.types.setdefault(span.block_type if span is not None else "", [0, 0])
            counts[0] += 1
            counts[1] += int(fix)
        for path in dict.fromkeys(p for p, *_ in pending):
            self.files.setdefault(path, _FileHistory()).authors[author] += 1
        for path in gone:
            self.files.pop(path, None)

    def row(
        self,
        commit: Commit,
        path: str,
        address: str,
        before: BlockSpan | None,
        after: BlockSpan | None,
        old: _Version,
        new: _Version,
        blocks_changed: int,
        fix: bool,
    ) -> None:
        now = commit.committer_time.timestamp()
        author = commit.author_email.strip().lower()
        span = after if after is not None else before
        assert span is not None
        history = self.files.get(path, _FileHistory())
        past = history.blocks.get(address)
        la, ld = _line_changes(before, old.lines, after, new.lines)
        members_old = dict(before.members) if before is not None else {}
        members_new = dict(after.members) if after is not None else {}
        type_changes, type_fixes = self.types.get(span.block_type, [0, 0])
        row: dict[str, object] = {
            "sha": commit.sha,
            "committed_at": commit.committer_time,
            "author": author,
            "path": path,
            "address": address,
            "kind": span.kind,
            "block_type": span.block_type,
            "change": "removed" if after is None else "added" if before is None else "changed",
            "first_line": after.first_line if after is not None else 0,
            "last_line": after.last_line if after is not None else 0,
        }
        row.update(dict.fromkeys(BLOCK_KIND_COLUMNS, 0))
        row[f"blk_kind_{span.kind}"] = 1
        row.update(
            {
                "blk_attributes": span.attributes,
                "blk_depth": span.depth,
                "blk_lines": span.lines,
                "blk_file_blocks": len(new.spans if after is not None else old.spans),
                "blk_added": int(before is None),
                "blk_removed": int(after is None),
                "blk_members_added": len(members_new.keys() - members_old.keys()),
                "blk_members_removed": len(members_old.keys() - members_new.keys()),
                "blk_members_changed": sum(
                    1 for k, v in members_new.items() if k in members_old and members_old[k] != v
                ),
                "blk_la": la,
                "blk_ld": ld,
                "blk_age": 0.0 if past is None else max(now - past.first_seen, 0.0) / _DAY,
                "blk_since_change": 0.0 if past is None else max(now - past.last_change, 0.0) / _DAY,
                "blk_changes": 0 if past is None else past.changes,
                "blk_fixes": 0 if past is None else past.fixes,
                "blk_authors": 0 if past is None else len(past.authors),
                "blk_type_changes": type_changes,
                "blk_type_fixes": type_fixes,
                "blk_author_changes": 0 if past is None else past.authors[author],
                "blk_author_file_changes": history.authors[author],
                "blk_fix": int(fix),
                "blk_commit_blocks": blocks_changed,
                "churn": la + ld,
            }
        )
        self.result_rows.append(row)


def _commits(repo: GitRepo, revision: str) -> Iterator[Commit]:
    return parse_log(repo.stream(*LOG_OPTIONS, "--date-order", "--reverse", revision, "--"))


def _dump(state: _Pass, head: str, last_time: float) -> dict[str, Any]:
    files = {
        path: {
            "authors": dict(history.authors),
            "blocks": {
                address: [b.first_seen, b.last_change, b.changes, b.fixes, dict(b.authors)]
                for address, b in history.blocks.items()
            },
        }
        for path, history in state.files.items()
    }
    return {"head": head, "last_time": last_time, "types": state.types, "files": files}


def _load(state: _Pass, saved: dict[str, Any]) -> float:
    state.types = {str(k): [int(v[0]), int(v[1])] for k, v in saved["types"].items()}
    for path, history in saved["files"].items():
        loaded = _FileHistory(authors=Counter(history["authors"]))
        for address, (first, last, changes, fixes, authors) in history["blocks"].items():
            loaded.blocks[address] = _BlockHistory(first, last, changes, fixes, Counter(authors))
        state.files[path] = loaded
    return float(saved["last_time"])


def block_features(
    repo: GitRepo,
    *,
    revision: str = "HEAD",
    rules: FixRules | None = None,
    progress: Callable[[int], None] | None = None,
    state: dict[str, Any] | None = None,
) -> BlockFeatureResult:
    """The rows of every block changed by the non-merge commits reachable from ``revision`` (see the module
    docstring). ``progress(commits done)`` is called every 100 commits. With ``state`` (an earlier result's
    :attr:`BlockFeatureResult.state`, whose head is an ancestor of ``revision``) only the commits after that
    head are read, continuing its history: the caller checks that they are all newer than it (else the
    order, and so the rows, could differ from one pass over the whole history)."""
    done = 0
    last_time = float("-inf")
    head = repo.resolve(revision)
    with BlobReader(repo, blobs_only=True) as reader:
        walk = _Pass(reader, rules)
        if state is not None:
            last_time = _load(walk, state)
        for commit in _commits(repo, head if state is None else f"{state['head']}..{head}"):
            if commit.is_merge:
                continue
            walk.commit(commit)
            last_time = max(last_time, commit.committer_time.timestamp())
            done += 1
            if progress is not None and done % 100 == 0:
                progress(done)
    frame = pd.DataFrame(walk.result_rows, columns=list(BLOCK_COLUMNS))
    frame["committed_at"] = pd.to_datetime(frame["committed_at"], utc=True)
    for name in BLOCK_FEATURES:
        frame[name] = frame[name].astype("float64")
    frame["churn"] = frame["churn"].astype("float64")
    return BlockFeatureResult(
        frame=frame,
        commits=done,
        tf_files=walk.tf_files,
        unread_files=walk.unread,
        state=_dump(walk, head, last_time),
    )


def _continue_from(repo: GitRepo, state_path: Path, head: str) -> dict[str, Any] | None:
    """The saved state when ``head`` only adds commits newer than everything it holds, else None."""
    try:
        state: dict[str, Any] = json.loads(state_path.read_text(encoding="utf-8"))
        old = str(state["head"])
        if not repo.object_exists(old) or not repo.is_ancestor(old, head):
            return None
        times = repo.run("log", "--no-merges", "--format=%ct", f"{old}..{head}").decode().split()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if all(float(t) >= float(state["last_time"]) for t in times) else None


def cached_block_features(repo: GitRepo, path: Path, head: str) -> pd.DataFrame:
    """The block features of ``head``'s history, kept at ``path`` (Parquet; ``<path>.json`` names the head it
    was mined at, ``<path>.state.json`` holds the pass's history). The same head is read back; a head that
    only adds commits newer than every commit read (a push on top) continues the pass from the saved history
    (the same rows as one pass over everything); any other head mines the whole history again."""
    frame = _cached_block_features(repo, path, head, mine_all=True)
    assert frame is not None  # mine_all: never None
    return frame


def continued_block_features(repo: GitRepo, path: Path, head: str) -> pd.DataFrame | None:
    """As :func:`cached_block_features`, for a clone without the complete history (a shallow CI checkout
    given the table from the artifact store): the kept table when it was mined at ``head`` or can be
    continued to it from commits the clone has; None when that would need history the clone lacks (never a
    table mined from a truncated history)."""
    return _cached_block_features(repo, path, head, mine_all=False)


def _cached_block_features(repo: GitRepo, path: Path, head: str, *, mine_all: bool) -> pd.DataFrame | None:
    marker = path.with_suffix(".json")
    state_path = path.with_suffix(".state.json")
    cached: pd.DataFrame | None = None
    if path.is_file() and marker.is_file():
        try:
            cached = pd.read_parquet(path)
            if list(cached.columns) != list(BLOCK_COLUMNS):  # written by another version
                cached = None
            elif json.loads(marker.read_text(encoding="utf-8")).get("head") == head:
                return cached
        except (OSError, ValueError):
            cached = None  # unreadable: mine again
    state = _continue_from(repo, state_path, head) if cached is not None and state_path.is_file() else None
    if state is None and not mine_all:
        return None
    result = block_features(repo, revision=head, state=state)
    frame = result.frame
    if state is not None and cached is not None:
        frame = pd.concat([cached, frame], ignore_index=True) if len(frame) else cached
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    state_path.write_text(json.dumps(result.state), encoding="utf-8")
    marker.write_text(json.dumps({"head": head}), encoding="utf-8")
    return frame
