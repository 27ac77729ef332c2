"""Which commits fix a defect, judged from the commit message alone.

Why rules and not one regex: the usual ``fix|bug|#\\d+`` marks 38% of numpy's non-merge commits, mostly
because of bare issue references (``#123`` closes features and chores as often as bugs) and merge or squash
subjects that carry a branch name such as ``fix-y``. Each rule below removes one known source of noise; every
rule is a field of :class:`FixRules`, so a project can change it, and each has its own test.

A message is a fix when, after the noise is removed,

1. it carries an explicit link (a ``Fixes: <sha>`` or ``Regressed-by: <sha>`` trailer, or git's revert
   line), or
2. its category tag (``BUG:``, ``fix(core):``, ``MAINT,BUG:``) names a fix category, or
3. no tag names a documentation/style-only category, and a fix keyword occurs as a whole word.

Issue references are *not* decided here: :mod:`defectops.labeling.issues` resolves them against an issue list,
and only a reference to an issue of type bug makes a fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Final

from defectops.errors import ConfigError

# Whole-word boundaries: not after a letter, digit, underscore or dot (``np.fix``, ``prefix``, ``debug``), not
# before a letter, digit, underscore or opening parenthesis (``fixture``, ``fix_width``, ``fix()``).
_BEFORE = r"(?<![\w.])"
_AFTER = r"(?![\w(])"

DEFAULT_KEYWORDS: tuple[str, ...] = (
    r"fix(?:e[sd]|ing)?",
    r"bug(?:s|fix(?:es)?)?",
    r"hotfix(?:es)?",
    r"defects?",
    r"regress(?:ion|ions|ed)",
    r"crash(?:es|ed|ing)?",
    r"segfaults?",
    r"segmentation\s+fault",
    r"memory\s+leaks?",
)

# Phrases that contain a keyword but do not describe a defect fix; removed before keywords are matched, so
# "Fix typo that caused a crash" is still a fix (by "crash").
DEFAULT_NOISE: tuple[str, ...] = (
    # documentation and cosmetics: "fix typo", "fix a few typos in the docs", "fixed whitespace"
    r"fix(?:e[sd]|ing)?\s+(?:(?:a|an|the|some|several|few|minor|small|more|two|three|many|various|all|\w+'s)\s+)*"
    r"(?:typos?|typographical|spelling|grammar|wording|whitespaces?|indentation|formatting|pep\s?8|flake8|lint|"
    r"linting|linter|style|docstrings?|docs?|documentation|comments?|links?|urls?|readme|changelog|"
    r"release\s+notes?|markup|rst|sphinx|copyright|license)\b",
    # "fixed" as an adjective: fixed-width, fixed point, fixed seed ...
    r"fixed[\s-]+(?:width|size|sized|point|length|format|seed|string|number|position|shape|precision|"
    r"offset|rate|step|order|dtype)s?\b",
    # "bug report template", "bug tracker", "bugs.python.org"
    r"bugs?[\s-]+(?:reports?|tracker|template|label|triage)\b",
)

# Subjects written by tools that carry other people's words (branch names) rather than a description.
DEFAULT_MERGE_SUBJECTS: tuple[str, ...] = (
    r"^merge\s+pull\s+request\s+#\d+\s+from\s+\S+",
    r"^merge\s+(?:remote-tracking\s+)?branch(?:es)?\s+.*?(?:\s+(?:into|of)\s+\S+)?$",
    r"^merge\s+tag\s+.*$",
    r"^merged?\s+(?:in\s+)?(?:from\s+)?(?:upstream|master|main|trunk)\b.*$",
    r"^merge\s+(?:commit\s+)?[0-9a-f]{7,40}\b.*$",
    r"^squashed\s+commit\s+of\s+the\s+following:?$",
)

# Lines removed wholesale: people and tool trailers (addresses contain "bugs@", names contain anything).
DEFAULT_IGNORED_TRAILERS: tuple[str, ...] = (
    "signed-off-by",
    "co-authored-by",
    "co-developed-by",
    "reviewed-by",
    "acked-by",
    "tested-by",
    "reported-by",
    "suggested-by",
    "helped-by",
    "cc",
    "change-id",
    "link",
    "reviewed-on",
    "bug-url",
)

DEFAULT_FIX_CATEGORIES: tuple[str, ...] = ("bug", "bugfix", "fix", "hotfix", "regr", "regression", "crash")
# ``chore`` (Conventional Commits: maintenance that is not a fix, which would be ``fix:``) matters for release
# commits: ``chore(release): 20.8.4`` carries the changelog in its body, full of "fix" and "bug" lines (129 of
# terraform-aws-eks' 295 chore commits were read as fixes without it).
DEFAULT_NON_FIX_CATEGORIES: tuple[str, ...] = (
    "doc",
    "docs",
    "sty",
    "style",
    "rel",
    "release",
    "typo",
    "chore",
)

# Explicit links: a trailer naming the commit that introduced the defect, or git's own revert line.
EXPLICIT_FIX_TRAILERS: tuple[str, ...] = ("fixes", "regressed-by")
_SHA = r"[0-9a-fA-F]{7,40}"

_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+|\b[\w.-]+\.(?:org|com|net|io)/\S*", re.IGNORECASE)
_CODE_SPAN = re.compile(r"``.*?``|`[^`\n]*`")
_CATEGORY = re.compile(r"^\s*\[?([A-Za-z][A-Za-z0-9 ,/+&-]{0,40}?)\]?(?:\([^)]*\))?!?:\s")


@dataclass(frozen=True)
class FixRules:
    """The configurable rules of fix detection (all regexes are matched case-insensitively).

    ``keywords``: regex fragments matched as whole words. ``noise``: phrases removed first.
    ``merge_subjects``: subject lines written by tools, ignored. ``ignored_trailers``: ``Key:`` lines removed.
    ``fix_categories`` / ``non_fix_categories``: leading tags such as ``BUG:`` or ``DOC:`` (numpy style,
    conventional commits).
    ``explicit_trailers``: ``Key: <sha>`` trailers that make a fix. ``reverts_are_fixes``: git's revert line
    makes a fix (the reverted commit is labelled defect-inducing, see :mod:`defectops.labeling.explicit`).
    ``ignore_urls`` / ``ignore_code``: drop URLs and backtick code spans (``bugs.python.org``, ``np.fix``).
    """

    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    noise: tuple[str, ...] = DEFAULT_NOISE
    merge_subjects: tuple[str, ...] = DEFAULT_MERGE_SUBJECTS
    ignored_trailers: tuple[str, ...] = DEFAULT_IGNORED_TRAILERS
    fix_categories: tuple[str, ...] = DEFAULT_FIX_CATEGORIES
    non_fix_categories: tuple[str, ...] = DEFAULT_NON_FIX_CATEGORIES
    explicit_trailers: tuple[str, ...] = EXPLICIT_FIX_TRAILERS
    reverts_are_fixes: bool = True
    ignore_urls: bool = True
    ignore_code: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FixRules:
        """Rules from a JSON/TOML-like mapping; unknown keys and bad regexes are configuration errors."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown fix rule(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls(), key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"fix rule {key!r} must be true or false")
                values[key] = value
            else:
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"fix rule {key!r} must be a list of strings")
                values[key] = tuple(value)
        rules = cls(**values)
        _compiled(rules)  # fail now, with a clear message, on a bad regex
        return rules


@dataclass(frozen=True)
class _Compiled:
    keyword: re.Pattern[str] | None
    noise: re.Pattern[str] | None
    merge: re.Pattern[str] | None
    trailer: re.Pattern[str] | None
    explicit: re.Pattern[str] | None
    fix_categories: frozenset[str]
    non_fix_categories: frozenset[str]


def _alternation(parts: tuple[str, ...], wrap: str = "{}") -> str | None:
    if not parts:
        return None
    return "|".join(wrap.format(f"(?:{p})") for p in parts)


@lru_cache(maxsize=32)
def _compiled(rules: FixRules) -> _Compiled:
    def compile_(pattern: str | None, flags: int = 0) -> re.Pattern[str] | None:
        if pattern is None:
            return None
        try:
            return re.compile(pattern, re.IGNORECASE | flags)
        except re.error as exc:
            raise ConfigError(f"invalid fix rule regex {pattern!r}: {exc}") from exc

    keyword = _alternation(rules.keywords)
    trailers = _alternation(tuple(re.escape(t) for t in rules.ignored_trailers))
    explicit = _alternation(tuple(re.escape(t) for t in rules.explicit_trailers))
    return _Compiled(
        keyword=compile_(None if keyword is None else f"{_BEFORE}(?:{keyword}){_AFTER}"),
        noise=compile_(None if not rules.noise else f"{_BEFORE}(?:{_alternation(rules.noise)})"),
        merge=compile_(_alternation(rules.merge_subjects)),
        trailer=compile_(None if trailers is None else rf"^\s*(?:{trailers})\s*:.*$", re.MULTILINE),
        explicit=compile_(
            None if explicit is None else rf"^\s*(?:{explicit})\s*:\s*(?:commit\s+)?{_SHA}\b", re.MULTILINE
        ),
        fix_categories=frozenset(c.lower() for c in rules.fix_categories),
        non_fix_categories=frozenset(c.lower() for c in rules.non_fix_categories),
    )


_DEFAULT_RULES: Final = FixRules()


@lru_cache(maxsize=1)
def _default_compiled() -> _Compiled:
    """The compiled default rules without hashing the rules on every call (the miner asks per commit)."""
    return _compiled(_DEFAULT_RULES)


_REVERT = re.compile(rf"this\s+reverts\s+commit\s+{_SHA}", re.IGNORECASE)


def _category_tags(subject: str) -> list[str]:
    """``MAINT,BUG: x`` -> ["maint", "bug"]; ``fix(core)!: x`` -> ["fix"]; no tag -> []."""
    match = _CATEGORY.match(subject)
    if not match:
        return []
    raw = match.group(1)
    tags = [t for t in re.split(r"[\s,/+&]+", raw.lower()) if t]
    # A real tag is short and has no spaces inside words ("Note to self: ..." is prose, not a tag).
    if len(tags) > 4 or any(len(t) > 12 for t in tags) or (" " in raw.strip() and "," not in raw):
        return []
    return tags


def is_fix_message(message: str, rules: FixRules | None = None) -> bool:
    """Whether a commit message describes a defect fix (stable API: the miner's FIX metric calls it).

    Bare issue references (``#123``, ``gh-123``) never make a fix here; see :mod:`defectops.labeling.issues`.
    """
    if rules is None:
        rules = _DEFAULT_RULES
        compiled = _default_compiled()
    else:
        compiled = _compiled(rules)
    text = message.replace("\r\n", "\n")

    if compiled.explicit is not None and compiled.explicit.search(text):
        return True
    if rules.reverts_are_fixes and _REVERT.search(text):
        return True

    if compiled.trailer is not None:
        text = compiled.trailer.sub(" ", text)
    lines = text.split("\n")
    subject = lines[0].strip() if lines else ""
    if compiled.merge is not None and compiled.merge.search(subject):
        subject = ""
    body = "\n".join(lines[1:])

    tags = _category_tags(subject)
    if tags:
        if any(t in compiled.fix_categories for t in tags):
            return True
        if all(t in compiled.non_fix_categories for t in tags):
            return False

    text = subject + "\n" + body
    # Removing URLs, code spans and noise phrases can only take keyword matches away, never add one: most
    # messages (no keyword at all) are decided here without the removals.
    if compiled.keyword is None or compiled.keyword.search(text) is None:
        return False
    if rules.ignore_urls:
        text = _URL.sub(" ", text)
    if rules.ignore_code:
        text = _CODE_SPAN.sub(" ", text)
    if compiled.noise is not None:
        text = compiled.noise.sub(" ", text)
    return compiled.keyword is not None and compiled.keyword.search(text) is not None
