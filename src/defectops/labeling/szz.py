"""SZZ: from fixes to the commits that induced them, in the B-SZZ and AG-SZZ variants.

B-SZZ (Śliwerski, Zimmermann, Zeller 2005, as usually implemented): every line a fix deletes or changes is
traced with plain ``git blame`` on the fix's parent; the commits found are defect-inducing.

AG-SZZ (Kim et al. 2006; the default here) removes the known sources of false links: whitespace-only changes
(blame ``-w``: lines whose only change was whitespace keep their earlier origin, and the fix's
whitespace-only changes are not traced), blank and comment-only lines, non-source files, very large fixes
(more than ``max_fix_files`` files: merges of branches, mass renames, licence headers) and commits listed in
an ignore-revs file such as ``.git-blame-ignore-revs`` (formatting runs). Renames are followed in both
variants.

Both apply the issue-date filter when a fix references a bug whose report date is known: a candidate written
(author time) after the bug was reported cannot have induced it. A fix whose remaining changes only add lines
has nothing to trace; it is reported as unlinkable rather than silently dropped.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from defectops.errors import ConfigError
from defectops.git import decode_path
from defectops.labeling.explicit import ExplicitLink
from defectops.labeling.history import CommitInfo
from defectops.labeling.origins import DeletedLines, FileTouch
from defectops.mining import FixRules

Variant = Literal["ag", "b"]
VARIANTS: tuple[str, ...] = ("ag", "b")


# Comment syntax by extension; each family also defines which files count as source code.
def _exts(words: str) -> frozenset[str]:
    return frozenset(words.split())


_HASH = _exts(
    "py pyx pxd pxi pyi pyw sh bash zsh fish rb pl pm r jl nim ex exs coffee tcl awk tf tfvars hcl cmake mk "
    "make ps1 nix cr"
)
_SLASH = _exts(
    "c h cc cpp cxx c++ hpp hh hxx h++ inl ipp tpp cu cuh m mm cs java js jsx mjs cjs ts tsx go rs swift "
    "kt kts scala sc groovy gradle dart php proto zig v sv svh d fs fsx vala ino glsl hlsl metal cl sol"
)
_DASH = _exts("sql lua hs lhs elm ada adb ads vhd vhdl")
_BANG = _exts("f f77 f90 f95 f03 f08 for ftn pyf")  # Fortran, and f2py signature files
_SEMI = _exts("lisp el clj cljs scm rkt asm s")
_PERCENT = _exts("erl hrl pro")
_NAMED = {"makefile": _HASH, "dockerfile": _HASH, "cmakelists.txt": _HASH, "sconstruct": _HASH}
DEFAULT_SOURCE_EXTENSIONS: tuple[str, ...] = tuple(sorted(_HASH | _SLASH | _DASH | _BANG | _SEMI | _PERCENT))


def _family(path: str) -> frozenset[str] | None:
    name = PurePosixPath(path).name.lower()
    if name in _NAMED:
        return _NAMED[name]
    parts = name.split(".")
    if len(parts) < 2:
        return None
    ext = parts[-1]
    if ext in ("src", "in", "template", "tmpl") and len(parts) >= 3:
        ext = parts[-2]  # numpy's foo.c.src, autoconf's config.h.in
    for family in (_HASH, _SLASH, _DASH, _BANG, _SEMI, _PERCENT):
        if ext in family:
            return family
    return None


def source_extension(path: str) -> str | None:
    """The extension that decides whether ``path`` is source (``foo.c.src`` -> ``c``), or None."""
    name = PurePosixPath(path).name.lower()
    if name in _NAMED:
        return name
    parts = name.split(".")
    if len(parts) < 2:
        return None
    ext = parts[-1]
    if ext in ("src", "in", "template", "tmpl") and len(parts) >= 3:
        ext = parts[-2]
    return ext


def is_source(path: str, extensions: Sequence[str] = DEFAULT_SOURCE_EXTENSIONS) -> bool:
    ext = source_extension(path)
    return ext is not None and ext in extensions


def line_kind(path: str, line: bytes) -> Literal["code", "blank", "comment"]:
    """Whether a line is blank, a whole-line comment in its file's language, or code.

    Line-local by design (as AG-SZZ): the middle lines of a block comment count as comments only when they
    start with ``*`` (the usual C/Java style); docstrings are code.
    """
    text = line.strip()
    if not text:
        return "blank"
    family = _family(path)
    if family is None:
        return "code"
    if family is _HASH:
        comment = text.startswith(b"#")
    elif family is _SLASH:
        comment = text.startswith((b"//", b"/*", b"*/", b"* ", b"*\t", b"#!")) or text == b"*"
    elif family is _DASH:
        comment = text.startswith(b"--")
    elif family is _BANG:
        comment = text.startswith(b"!") or (
            line[:1] in (b"c", b"C", b"*") and line[1:2] in (b" ", b"\t", b"")
        )
    elif family is _SEMI:
        comment = text.startswith(b";")
    else:
        comment = text.startswith(b"%")
    return "comment" if comment else "code"


@dataclass(frozen=True)
class SzzOptions:
    """The SZZ variant and its filters (the AG-only ones are ignored by B-SZZ)."""

    variant: Variant = "ag"
    max_fix_files: int = 100
    source_extensions: tuple[str, ...] = DEFAULT_SOURCE_EXTENSIONS
    ignore_revs_file: str | None = ".git-blame-ignore-revs"
    issue_date_filter: bool = True
    fix_rules: FixRules = field(default_factory=FixRules)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown SZZ variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.max_fix_files < 1:
            raise ConfigError("max_fix_files must be at least 1")

    @property
    def ignore_whitespace(self) -> bool:
        return self.variant == "ag"

    def fingerprint(self) -> str:
        digest = hashlib.sha256(repr(self).encode()).hexdigest()
        return digest[:16]


@dataclass(frozen=True, slots=True)
class FixReason:
    """Why a commit counts as a fix (``message`` or ``issue:12,13``) and when its bug was first reported."""

    evidence: str
    reported_at: datetime | None = None


@dataclass
class LinkRow:
    fix_sha: str
    inducing_sha: str | None
    path: str | None
    lines: list[int]
    variant: str
    evidence: str
    fix_committed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "fix_sha": self.fix_sha,
            "inducing_sha": self.inducing_sha,
            "path": self.path,
            "lines": self.lines,
            "variant": self.variant,
            "evidence": self.evidence,
            "fix_committed_at": self.fix_committed_at,
        }


@dataclass
class SzzStats:
    fixes: int = 0
    linked_fixes: int = 0
    explicit_links: int = 0
    unresolved_explicit: int = 0
    unlinkable: dict[str, int] = field(default_factory=dict)
    dropped_lines: dict[str, int] = field(default_factory=dict)


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def build_links(
    commits: Sequence[CommitInfo],
    fixes: Mapping[int, FixReason],
    explicit: Mapping[int, Sequence[ExplicitLink]],
    deleted: Sequence[DeletedLines],
    touched: Mapping[int, Sequence[FileTouch]],
    ignored: set[int],
    options: SzzOptions,
    stats: SzzStats | None = None,
) -> list[LinkRow]:
    """The links table rows of the fixes in ``fixes`` and the explicit links in ``explicit``.

    ``commits`` is indexed by the commit indices used everywhere else (the pass, ``fixes``, ``deleted``).
    """
    stats = stats or SzzStats()
    ag = options.variant == "ag"
    rows: list[LinkRow] = []
    by_fix: dict[int, list[DeletedLines]] = defaultdict(list)
    for record in deleted:
        by_fix[record.fix].append(record)

    for index in sorted(set(fixes) | set(explicit)):
        fix = commits[index]
        fixed_at = _utc(fix.committer_time)
        resolved = [link for link in explicit.get(index, ()) if link.inducing is not None]
        stats.unresolved_explicit += sum(1 for link in explicit.get(index, ()) if link.inducing is None)
        if resolved:
            stats.fixes += 1
            stats.linked_fixes += 1
            for link in resolved:
                stats.explicit_links += 1
                rows.append(
                    LinkRow(fix.sha, link.inducing, None, [], options.variant, link.evidence, fixed_at)
                )
            continue
        reason = fixes.get(index)
        if reason is None:
            continue
        stats.fixes += 1
        evidence = f"szz:{reason.evidence}"
        files = touched.get(index, ())

        def unlinkable(why: str, *, _fix: CommitInfo = fix, _at: datetime = fixed_at) -> None:
            stats.unlinkable[why] = stats.unlinkable.get(why, 0) + 1
            rows.append(LinkRow(_fix.sha, None, None, [], options.variant, f"unlinkable:{why}", _at))

        if ag and len(files) > options.max_fix_files:
            unlinkable(f"too-many-files({len(files)}>{options.max_fix_files})")
            continue
        considered = [
            f
            for f in files
            if not f.binary
            and (not ag or is_source(decode_path(f.old_path or f.path), options.source_extensions))
        ]
        if not any(f.deleted for f in considered):
            unlinkable("only-additions" if any(f.added for f in considered) else "no-line-changes")
            continue
        cutoff = reason.reported_at if options.issue_date_filter else None
        groups: dict[tuple[int, str], list[int]] = defaultdict(list)
        seen_lines = 0
        dropped_by_date = 0
        for record in by_fix.get(index, ()):
            path = decode_path(record.path)
            if ag and not is_source(path, options.source_extensions):
                continue
            for k, origin in enumerate(record.origins):
                if ag:
                    text = record.text[k] if k < len(record.text) else b""
                    kind = line_kind(path, text)
                    if kind != "code":
                        stats.dropped_lines[kind] = stats.dropped_lines.get(kind, 0) + 1
                        continue
                    if origin in ignored:
                        stats.dropped_lines["ignored-rev"] = stats.dropped_lines.get("ignored-rev", 0) + 1
                        continue
                if origin < 0 or origin == index:
                    continue
                seen_lines += 1
                if cutoff is not None and _utc(commits[origin].author_time) > cutoff:
                    dropped_by_date += 1
                    continue
                groups[(origin, path)].append(record.start + k)
        stats.dropped_lines["issue-date"] = stats.dropped_lines.get("issue-date", 0) + dropped_by_date
        if not groups:
            unlinkable("issue-date" if seen_lines else "only-blank-or-comment-lines")
            continue
        stats.linked_fixes += 1
        for (origin, path), lines in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
            rows.append(
                LinkRow(
                    fix.sha, commits[origin].sha, path, sorted(lines), options.variant, evidence, fixed_at
                )
            )
    return rows
