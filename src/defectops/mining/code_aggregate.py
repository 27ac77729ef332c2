"""Code metrics per commit: the rows of its changed files summed (max for ``*_max*``), ready to join."""

from __future__ import annotations

from collections.abc import Iterable

from defectops.data import BLOCK_KINDS
from defectops.mining.code_rows import ZERO, CommitCodeMetrics, FileCodeMetrics, SourceMetrics


def aggregate_per_commit(
    rows: Iterable[FileCodeMetrics], shas: Iterable[str] | None = None
) -> dict[str, CommitCodeMetrics]:
    """Sum the file rows of each commit into one :class:`CommitCodeMetrics` (columns :data:`COMMIT_COLUMNS`).

    ``shas``, when given, also creates an all-zero record for every listed commit without rows (merges, or
    commits touching no measured file), so the join onto the commit dataset has no gaps.
    """
    acc: dict[str, _CommitAccumulator] = {}
    if shas is not None:
        for sha in shas:
            acc.setdefault(sha, _CommitAccumulator(sha))
    for row in rows:
        target = acc.get(row.sha)
        if target is None:
            target = acc[row.sha] = _CommitAccumulator(row.sha)
        target.add(row)
    return {sha: a.finish() for sha, a in acc.items()}


class _CommitAccumulator:
    def __init__(self, sha: str) -> None:
        self.out = CommitCodeMetrics(sha=sha)
        # Sums over the files measured on both sides, for the mean and max deltas.
        self.both_new = ZERO
        self.both_parent = ZERO
        self.max_new_both = 0
        self.max_parent_both = 0
        self.tf_depth_new_both = 0
        self.tf_depth_parent_both = 0

    def add(self, row: FileCodeMetrics) -> None:
        out = self.out
        if row.skipped is not None:
            out.code_files_skipped += 1
            return
        if row.is_terraform:
            self._add_terraform(row)
            return
        out.code_files += 1
        out.code_parse_errors += int(row.parse_error)
        new, parent = row.code, row.code_parent
        if new is not None:
            out.code_nloc += new.nloc
            out.code_ccn += new.ccn
            out.code_ccn_max = max(out.code_ccn_max, new.ccn_max)
            out.code_tokens += new.tokens
            out.code_functions += new.functions
        if new is not None and parent is not None:
            out.code_nloc_delta += new.nloc - parent.nloc
            out.code_ccn_delta += new.ccn - parent.ccn
            out.code_tokens_delta += new.tokens - parent.tokens
            out.code_functions_delta += new.functions - parent.functions
            self.both_new = _plus(self.both_new, new)
            self.both_parent = _plus(self.both_parent, parent)
            self.max_new_both = max(self.max_new_both, new.ccn_max)
            self.max_parent_both = max(self.max_parent_both, parent.ccn_max)

    def _add_terraform(self, row: FileCodeMetrics) -> None:
        out = self.out
        out.tf_files += 1
        out.tf_parse_errors += int(row.parse_error)
        tf, diff = row.tf, row.tf_diff
        if tf is not None:
            for kind in BLOCK_KINDS:
                name = f"tf_{kind}"
                setattr(out, name, getattr(out, name) + tf.count(kind))
            out.tf_blocks += tf.total_blocks
            out.tf_attributes += tf.attributes
            out.tf_max_depth = max(out.tf_max_depth, tf.max_depth)
        if diff is not None and tf is not None and row.tf_parent is not None:
            for kind in BLOCK_KINDS:
                for part, counts in (
                    ("added", diff.added),
                    ("removed", diff.removed),
                    ("changed", diff.changed),
                ):
                    name = f"tf_{kind}_{part}"
                    setattr(out, name, getattr(out, name) + counts[kind])
            out.tf_blocks_added += diff.blocks_added
            out.tf_blocks_removed += diff.blocks_removed
            out.tf_blocks_changed += diff.blocks_changed
            out.tf_attributes_delta += diff.attributes_delta
            self.tf_depth_new_both = max(self.tf_depth_new_both, tf.max_depth)
            self.tf_depth_parent_both = max(self.tf_depth_parent_both, row.tf_parent.max_depth)

    def finish(self) -> CommitCodeMetrics:
        out = self.out
        out.code_ccn_mean = out.code_ccn / out.code_functions if out.code_functions else 0.0
        out.code_ccn_mean_delta = self.both_new.ccn_mean - self.both_parent.ccn_mean
        out.code_ccn_max_delta = self.max_new_both - self.max_parent_both
        out.tf_max_depth_delta = self.tf_depth_new_both - self.tf_depth_parent_both
        return out


def _plus(a: SourceMetrics, b: SourceMetrics) -> SourceMetrics:
    return SourceMetrics(
        nloc=a.nloc + b.nloc,
        ccn=a.ccn + b.ccn,
        ccn_max=max(a.ccn_max, b.ccn_max),
        tokens=a.tokens + b.tokens,
        functions=a.functions + b.functions,
    )
