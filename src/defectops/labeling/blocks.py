"""Block-level SZZ links: the Terraform block (address) that held each line a fix traced, at the inducing
commit.

SZZ (:mod:`defectops.labeling.szz`) gives, per fix and file, the lines of the fix's *parent* that the fix
deleted or changed and the commit that last wrote each of them. Where a line lies at the inducing commit
(its number there and the file's name there) is what ``git blame --line-porcelain`` on the fix's parent
reports for exactly those lines (``-w`` for AG-SZZ, with the repository's ignore-revs file when there is
one: the same rules the line pass reproduces). Each line is then placed in the block that held it in the
inducing commit's version of the file (:func:`defectops.mining.block_spans`), giving one row per
(fix, inducing commit, file, block address).

Nothing is guessed: a line whose blame names another commit than the link (a history the pass and blame
read differently), a file version the block scanner cannot cut, and a line outside every block (a comment
between blocks) are counted in :class:`BlockLinkStats` and left out.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pandas as pd

from defectops.data import BLOCK_LINK_COLUMNS
from defectops.errors import GitError
from defectops.git import BlobReader, GitRepo, decode_text
from defectops.mining import block_at_lines, block_spans

TERRAFORM_SUFFIX = ".tf"


@dataclass
class BlockLinkStats:
    """What became of the traced lines of ``.tf`` files."""

    links: int = 0
    lines: int = 0
    mapped_lines: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, why: str, n: int = 1) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + n

    def as_dict(self) -> dict[str, object]:
        return {
            "links": self.links,
            "lines": self.lines,
            "mapped_lines": self.mapped_lines,
            "dropped": dict(self.dropped),
        }


def _ranges(lines: list[int]) -> list[tuple[int, int]]:
    """Sorted line numbers as inclusive ``(first, last)`` runs."""
    ordered = sorted(set(lines))
    runs: list[tuple[int, int]] = []
    start = prev = ordered[0]
    for a, b in pairwise(ordered):
        if b != a + 1:
            runs.append((start, prev))
            start = b
        prev = b
    runs.append((start, prev))
    return runs


def _blame(
    repo: GitRepo, fix: str, path: str, lines: list[int], *, whitespace: bool, ignore_revs: Path | None
) -> dict[int, tuple[str, int, str]]:
    """line in ``fix^:path`` -> (origin commit, line number there, path there)."""
    args = ["blame", "--line-porcelain"]
    if whitespace:
        args.append("-w")
    if ignore_revs is not None:
        args += ["--ignore-revs-file", str(ignore_revs)]
    for first, last in _ranges(lines):
        args += ["-L", f"{first},{last}"]
    output = repo.run(*args, f"{fix}^", "--", path)
    found: dict[int, tuple[str, int, str]] = {}
    sha = ""
    origin_line = final_line = 0
    for raw in output.split(b"\n"):
        if raw.startswith(b"\t"):
            continue
        if raw.startswith(b"filename "):
            found[final_line] = (sha, origin_line, decode_text(raw[len(b"filename ") :]))
            continue
        parts = raw.split(b" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit() and parts[2].isdigit():
            sha, origin_line, final_line = parts[0].decode("ascii"), int(parts[1]), int(parts[2])
    return found


def block_links(
    repo: GitRepo, links: pd.DataFrame, *, ignore_whitespace: bool = True, ignore_revs_file: str | None = None
) -> tuple[pd.DataFrame, BlockLinkStats]:
    """The block-level links of the ``.tf`` lines in ``links`` (the SZZ links table), with counters.

    Columns (:data:`defectops.data.BLOCK_LINK_COLUMNS`): ``fix_sha``, ``fix_committed_at``, ``inducing_sha``,
    ``path`` and ``address`` (both as in the inducing commit), ``lines`` (how many traced lines the block
    held). Explicit links (no file) and links of other files are not block-level and are skipped.
    """
    frame, per_fix = _block_links(
        repo, links, ignore_whitespace=ignore_whitespace, ignore_revs_file=ignore_revs_file
    )
    return frame, _total(per_fix.values())


def _total(parts: Iterable[BlockLinkStats]) -> BlockLinkStats:
    total = BlockLinkStats()
    for part in parts:
        total.links += part.links
        total.lines += part.lines
        total.mapped_lines += part.mapped_lines
        for why, n in part.dropped.items():
            total.drop(why, n)
    return total


def _block_links(
    repo: GitRepo, links: pd.DataFrame, *, ignore_whitespace: bool, ignore_revs_file: str | None
) -> tuple[pd.DataFrame, dict[str, BlockLinkStats]]:
    """:func:`block_links` with the counters of each fix (every counter belongs to one fix)."""
    per_fix: dict[str, BlockLinkStats] = defaultdict(BlockLinkStats)
    ignore_revs = None
    if ignore_revs_file:
        candidate = Path(repo.path) / ignore_revs_file
        ignore_revs = candidate if candidate.is_file() else None
    wanted = links.loc[
        links["inducing_sha"].notna() & links["path"].fillna("").str.endswith(TERRAFORM_SUFFIX)
    ]
    # fix -> path at the fix's parent -> {line: inducing commit}
    traced: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    fixed_at: dict[str, pd.Timestamp] = {}
    columns = ("fix_sha", "path", "inducing_sha", "fix_committed_at", "lines")
    for fix_sha, path, inducing_sha, fix_time, line_list in zip(
        *(wanted[c].tolist() for c in columns), strict=True
    ):
        per_fix[str(fix_sha)].links += 1
        fixed_at[str(fix_sha)] = pd.Timestamp(fix_time)
        for line in line_list:
            traced[(str(fix_sha), str(path))][int(line)] = str(inducing_sha)
    # (fix, inducing, path at inducing) -> lines there
    placed: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for (fix, path), by_line in traced.items():
        stats = per_fix[fix]
        stats.lines += len(by_line)
        try:
            blamed = _blame(
                repo, fix, path, list(by_line), whitespace=ignore_whitespace, ignore_revs=ignore_revs
            )
        except GitError:
            stats.drop("blame-failed", len(by_line))
            continue
        for line, inducing in by_line.items():
            origin = blamed.get(line)
            if origin is None or origin[0] != inducing:
                stats.drop("blame-disagrees")
                continue
            placed[(fix, inducing, origin[2])].append(origin[1])
    rows: list[dict[str, object]] = []
    spans_of: dict[tuple[str, str], object] = {}
    with BlobReader(repo) as reader:
        for (fix, inducing, path), lines in sorted(placed.items()):
            stats = per_fix[fix]
            key = (inducing, path)
            if key not in spans_of:
                try:
                    text = decode_text(reader.read(f"{inducing}:{path}"))
                    spans_of[key] = block_spans(text)
                except (GitError, UnicodeEncodeError):
                    spans_of[key] = None
            spans = spans_of[key]
            if not isinstance(spans, tuple):
                stats.drop("file-not-cut-into-blocks", len(lines))
                continue
            holders = block_at_lines(spans, lines)
            outside = holders.pop("", [])
            if outside:
                stats.drop("outside-blocks", len(outside))
            stats.mapped_lines += len(set(lines)) - len(set(outside))
            for address, held in holders.items():
                rows.append(
                    {
                        "fix_sha": fix,
                        "fix_committed_at": fixed_at[fix],
                        "inducing_sha": inducing,
                        "path": path,
                        "address": address,
                        "lines": len(held),
                    }
                )
    frame = pd.DataFrame(rows, columns=BLOCK_LINK_COLUMNS)
    frame["fix_committed_at"] = pd.to_datetime(frame["fix_committed_at"], utc=True)
    frame["lines"] = frame["lines"].astype("int64")
    return frame, dict(per_fix)


def _fix_keys(wanted: pd.DataFrame, options: str) -> dict[str, str]:
    """A digest per fix of everything its block links depend on: its traced lines (file, inducing commit,
    line numbers), its time, and the blame options; git objects never change, so the same digest gives the
    same rows."""
    columns = ("fix_sha", "path", "inducing_sha", "fix_committed_at", "lines")
    parts: dict[str, list[str]] = defaultdict(list)
    for fix, path, inducing, when, lines in zip(*(wanted[c].tolist() for c in columns), strict=True):
        traced = sorted(int(x) for x in lines)
        parts[str(fix)].append(f"{path}\0{inducing}\0{pd.Timestamp(when).isoformat()}\0{traced}")
    return {
        fix: hashlib.sha256("\n".join([options, *sorted(items)]).encode()).hexdigest()
        for fix, items in parts.items()
    }


def cached_block_links(
    repo: GitRepo,
    links: pd.DataFrame,
    cache: Path,
    *,
    ignore_whitespace: bool = True,
    ignore_revs_file: str | None = None,
) -> tuple[pd.DataFrame, BlockLinkStats]:
    """:func:`block_links`, kept in ``cache`` (a Parquet file; its per-fix digests and counters in a JSON
    file beside it): only fixes whose traced lines are new or changed since the last call are blamed again,
    so a heal cycle does not run ``git blame`` over the whole history each time. The result is the one
    :func:`block_links` gives on ``links``."""
    options = f"w={ignore_whitespace}"
    if ignore_revs_file:
        candidate = Path(repo.path) / ignore_revs_file
        if candidate.is_file():
            options += f" revs={hashlib.sha256(candidate.read_bytes()).hexdigest()}"
    wanted = links.loc[
        links["inducing_sha"].notna() & links["path"].fillna("").str.endswith(TERRAFORM_SUFFIX)
    ]
    keys = _fix_keys(wanted, options)
    meta = cache.with_suffix(".json")
    kept: dict[str, dict[str, object]] = {}
    rows = pd.DataFrame(columns=BLOCK_LINK_COLUMNS)
    if cache.is_file() and meta.is_file():
        try:
            kept = dict(json.loads(meta.read_text(encoding="utf-8"))["fixes"])
            rows = pd.read_parquet(cache)
        except (OSError, ValueError, KeyError, TypeError):
            kept, rows = {}, pd.DataFrame(columns=BLOCK_LINK_COLUMNS)
    reused = {
        fix for fix, key in keys.items() if isinstance(kept.get(fix), dict) and kept[fix].get("key") == key
    }
    fresh_rows, fresh_stats = _block_links(
        repo,
        wanted.loc[~wanted["fix_sha"].astype(str).isin(reused)],
        ignore_whitespace=ignore_whitespace,
        ignore_revs_file=ignore_revs_file,
    )
    stats_of = {fix: _stats_from(kept[fix]["stats"]) for fix in reused}
    stats_of.update({fix: fresh_stats.get(fix, BlockLinkStats()) for fix in keys if fix not in reused})
    old = rows.loc[rows["fix_sha"].astype(str).isin(reused)]
    parts = [part for part in (old, fresh_rows) if len(part)]
    frame = pd.concat(parts, ignore_index=True) if parts else fresh_rows
    frame = frame.sort_values(["fix_sha", "inducing_sha", "path"], kind="stable").reset_index(drop=True)
    frame = frame.loc[:, list(BLOCK_LINK_COLUMNS)]
    frame["fix_committed_at"] = pd.to_datetime(frame["fix_committed_at"], utc=True)
    frame["lines"] = frame["lines"].astype("int64")
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(".parquet.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(cache)
    document = {"fixes": {fix: {"key": keys[fix], "stats": stats_of[fix].as_dict()} for fix in keys}}
    meta.write_text(json.dumps(document), encoding="utf-8")
    return frame, _total(stats_of[fix] for fix in keys)


def _stats_from(document: object) -> BlockLinkStats:
    values = document if isinstance(document, dict) else {}
    dropped = values.get("dropped", {})
    return BlockLinkStats(
        links=int(values.get("links", 0)),
        lines=int(values.get("lines", 0)),
        mapped_lines=int(values.get("mapped_lines", 0)),
        dropped={str(k): int(v) for k, v in dropped.items()} if isinstance(dropped, dict) else {},
    )
