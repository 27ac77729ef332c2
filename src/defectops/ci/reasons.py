"""Reasons in words: turn an explanation term (feature, value, contribution) into a phrase a reviewer reads.

Why words: a pull-request comment that says ``la +0.84`` helps nobody; "many lines added (la=812) raised the
risk" does. The metric name and value stay in parentheses so the claim can be checked.

How the adjective is chosen: for size and history-breadth metrics (lines, files, directories, subsystems,
entropy, earlier developers and changes of the files) "many"/"large" means a value above the 75th percentile
of the commits the model learnt from and "few"/"small" one below the 25th (``Reason.level``, from the model's
``typical_ranges``); a value in the middle half, or a model that keeps no ranges, gets no adjective. The
adjective is not read from the sign of the contribution: a model need not be monotone (on flask, files many
developers had changed were safer, so "few earlier developers (ndev=234) lowered the risk" was said). For
metrics whose direction differs between projects (author experience, age of the files) no adjective is
claimed: the phrase names the quantity and its effect only; so for the code (``code_*``) and Terraform
(``tf_*``) metrics of the changed files, whose values are totals over whole files. ``fix`` is described by its
value. Text terms of the text-aware model name the word or path part.
"""

from __future__ import annotations

import math
from typing import Protocol

#: Metric -> (adjective for a value above the usual range, below it, what the metric counts).
_MONOTONE: dict[str, tuple[str, str, str]] = {
    "la": ("many", "few", "lines added"),
    "ld": ("many", "few", "lines deleted"),
    "lt": ("large", "small", "files changed"),
    "nf": ("many", "few", "files changed"),
    "nd": ("many", "few", "directories changed"),
    "ns": ("many", "few", "subsystems changed"),
    "entropy": ("widely spread", "concentrated", "change across files"),
    "ndev": ("many", "few", "earlier developers of the changed files"),
    "nuc": ("many", "few", "earlier changes to the changed files"),
    "churn": ("many", "few", "lines changed"),
    "blk_la": ("many", "few", "lines added in the block"),
    "blk_ld": ("many", "few", "lines deleted in the block"),
}

#: Metric -> what it measures, for metrics without an agreed direction.
_NEUTRAL: dict[str, str] = {
    "age": "the time since the files were last changed",
    "exp": "the author's experience",
    "rexp": "the author's recent experience",
    "sexp": "the author's experience in these subsystems",
    # Terraform blocks (#17): no direction is claimed for them either.
    "blk_attributes": "the block's attributes",
    "blk_depth": "the block's nesting depth",
    "blk_lines": "the block's length in lines",
    "blk_file_blocks": "the blocks in its file",
    "blk_members_added": "the attributes and nested blocks added to the block",
    "blk_members_removed": "the attributes and nested blocks removed from the block",
    "blk_members_changed": "the attributes and nested blocks changed in the block",
    "blk_age": "the block's age in days",
    "blk_since_change": "the days since the block last changed",
    "blk_changes": "the block's earlier changes",
    "blk_fixes": "the block's earlier bug-fix changes",
    "blk_authors": "the block's earlier authors",
    "blk_type_changes": "earlier changes to blocks of this type",
    "blk_type_fixes": "earlier bug-fix changes to blocks of this type",
    "blk_author_changes": "the author's earlier changes to the block",
    "blk_author_file_changes": "the author's earlier changes to the file",
    "blk_commit_blocks": "the blocks the commit changed",
    # Code metrics of the changed source files (lizard), measured at the commit's revision.
    "code_files": "the source files changed",
    "code_nloc": "the lines of code in the changed source files",
    "code_nloc_delta": "the lines of code the change added net",
    "code_ccn": "the cyclomatic complexity of the changed source files",
    "code_ccn_delta": "the cyclomatic complexity the change added net",
    "code_ccn_max": "the most complex function's cyclomatic complexity",
    "code_ccn_max_delta": "the change in the most complex function's cyclomatic complexity",
    "code_ccn_mean": "the mean cyclomatic complexity per function",
    "code_ccn_mean_delta": "the change in the mean cyclomatic complexity per function",
    "code_tokens": "the tokens in the changed source files",
    "code_tokens_delta": "the tokens the change added net",
    "code_functions": "the functions in the changed source files",
    "code_functions_delta": "the functions the change added net",
    # Terraform block metrics of the changed .tf files (docs/metrics.md): counts at the commit's revision.
    "tf_files": "the .tf files changed",
    "tf_attributes": "the attributes in the changed .tf files",
    "tf_attributes_delta": "the attributes the change added net",
    "tf_max_depth": "the deepest block nesting in the changed .tf files",
    "tf_max_depth_delta": "the change in the deepest block nesting",
    **{
        f"tf_{kind}{suffix}": template.format(noun)
        for kind, noun in (
            ("resources", "resource blocks"),
            ("data_sources", "data blocks"),
            ("modules", "module blocks"),
            ("variables", "variables"),
            ("outputs", "outputs"),
            ("locals", "locals"),
            ("providers", "provider blocks"),
            ("blocks", "blocks"),
        )
        for suffix, template in (
            ("", "the {} in the changed .tf files"),
            ("_added", "the {} the change added"),
            ("_removed", "the {} the change removed"),
            ("_changed", "the {} the change modified"),
        )
    },
}

#: 0/1 features described by their value: (when 1, when 0).
_FLAGS: dict[str, tuple[str, str]] = {
    "blk_added": ("a new block", "not a new block"),
    "blk_removed": ("a removed block", "not a removed block"),
    "blk_fix": ("a bug fix", "not a bug fix"),
    **{
        f"blk_kind_{kind}": (f"a {noun} block", f"not a {noun} block")
        for kind, noun in (
            ("resources", "resource"),
            ("data_sources", "data"),
            ("modules", "module"),
            ("variables", "variable"),
            ("outputs", "output"),
            ("locals", "locals"),
            ("providers", "provider"),
            ("other", "top-level"),
        )
    },
}


class ReasonLike(Protocol):
    """What a reason needs: the feature, its value for the change and its signed contribution."""

    @property
    def feature(self) -> str: ...

    @property
    def value(self) -> float: ...

    @property
    def contribution(self) -> float: ...


def format_value(value: float) -> str:
    """Whole numbers without decimals, others with at most two (``812``, ``0.92``, ``12.5``)."""
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def effect(contribution: float) -> str:
    """``raised the risk`` / ``lowered the risk`` (a zero term changed nothing)."""
    if contribution > 0:
        return "raised the risk"
    if contribution < 0:
        return "lowered the risk"
    return "did not change the risk"


def describe(reason: ReasonLike) -> str:
    """One reason as a short English phrase, e.g. ``many lines added (la=812) raised the risk``."""
    name, value, contribution = reason.feature, float(reason.value), float(reason.contribution)
    shown = f"{name}={format_value(value)}"
    if name in _MONOTONE:
        up, down, noun = _MONOTONE[name]
        level = getattr(reason, "level", None)
        adjective = {"high": f"{up} ", "low": f"{down} "}.get(level or "", "")
        return f"{adjective}{noun} ({shown}) {effect(contribution)}"
    if name in _NEUTRAL:
        return f"{_NEUTRAL[name]} ({shown}) {effect(contribution)}"
    if name in _FLAGS:
        when_set, when_unset = _FLAGS[name]
        return f"{when_set if value >= 0.5 else when_unset} ({shown}) {effect(contribution)}"
    if name == "fix":
        what = "a bug fix" if value >= 0.5 else "not a bug fix"
        return f"{what} ({shown}) {effect(contribution)}"
    if name.startswith("msg:"):
        return f"the word {name[4:]!r} in the message {effect(contribution)}"
    if name.startswith("path:"):
        return f"the path part {name[5:]!r} {effect(contribution)}"
    return f"{shown} {effect(contribution)}"


def describe_all(reasons: tuple[ReasonLike, ...] | list[ReasonLike], separator: str = "; ") -> str:
    """The reasons of one change joined into one line (empty when there are none)."""
    return separator.join(describe(r) for r in reasons)
