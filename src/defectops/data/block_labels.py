"""Block-level labels: whether a changed Terraform block induced a defect, as known at a time.

The rule is the commit-level one (:func:`defectops.data.compute_labels`) applied to one block of one commit,
keyed by ``(sha, path, address)`` (the commit, and the file and block address as that commit left them): a
block is defect-inducing (1) at ``t`` when a block-level link names it and its fix was committed by ``t``;
clean (0) when it is at least ``waiting_days`` old at ``t`` without such a fix; else unknown (missing).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from defectops.errors import InputError

#: The block-level links table (one row per fix, inducing commit, file and block).
BLOCK_LINK_COLUMNS: list[str] = ["fix_sha", "fix_committed_at", "inducing_sha", "path", "address", "lines"]
#: The Terraform block kinds counted and diffed one by one, in column order (the ``tf_*`` metrics of
#: :mod:`defectops.mining.terraform` and the block model's kind columns). ``locals`` counts local *values*
#: (``local.<name>``), because a ``locals`` block has no address of its own.
BLOCK_KINDS: tuple[str, ...] = (
    "resources",
    "data_sources",
    "modules",
    "variables",
    "outputs",
    "locals",
    "providers",
)
#: One-hot columns of a block's kind (:data:`BLOCK_KINDS`, plus ``other``).
BLOCK_KIND_COLUMNS: tuple[str, ...] = tuple(f"blk_kind_{kind}" for kind in (*BLOCK_KINDS, "other"))
#: The model inputs of the block-level model, in order (see docs/metrics.md, "Block-level features").
BLOCK_FEATURES: tuple[str, ...] = (
    *BLOCK_KIND_COLUMNS,
    "blk_attributes",
    "blk_depth",
    "blk_lines",
    "blk_file_blocks",
    "blk_added",
    "blk_removed",
    "blk_members_added",
    "blk_members_removed",
    "blk_members_changed",
    "blk_la",
    "blk_ld",
    "blk_age",
    "blk_since_change",
    "blk_changes",
    "blk_fixes",
    "blk_authors",
    "blk_type_changes",
    "blk_type_fixes",
    "blk_author_changes",
    "blk_author_file_changes",
    "blk_fix",
    "blk_commit_blocks",
)
#: The columns of the block features table: identity, where the block is, the features, and its churn.
BLOCK_COLUMNS: tuple[str, ...] = (
    "sha",
    "committed_at",
    "author",
    "path",
    "address",
    "kind",
    "block_type",
    "change",
    "first_line",
    "last_line",
    *BLOCK_FEATURES,
    "churn",
)
#: What identifies one changed block of one commit.
BLOCK_KEY: tuple[str, str, str] = ("sha", "path", "address")


def block_labels_as_of(
    blocks: pd.DataFrame, block_links: pd.DataFrame, at: datetime, *, waiting_days: int
) -> pd.DataFrame:
    """``blocks`` (``sha``, ``path``, ``address``, ``committed_at``) with ``label`` (1, 0 or missing, Int64)
    and ``label_known_at`` as known at ``at``; rows committed after ``at`` are left out."""
    if at.tzinfo is None:
        raise InputError(f"{at!r}: a time without time zone; pass an aware datetime (UTC)")
    if waiting_days < 0:
        raise InputError("waiting_days must be zero or more")
    t = pd.Timestamp(at.astimezone(UTC))
    committed = pd.to_datetime(blocks["committed_at"], utc=True)
    frame = blocks.loc[committed <= t].copy()
    frame["committed_at"] = committed[committed <= t]
    fixes = block_links.loc[
        pd.to_datetime(block_links["fix_committed_at"], utc=True) <= t,
        ["inducing_sha", "path", "address", "fix_committed_at"],
    ].rename(columns={"inducing_sha": "sha", "fix_committed_at": "_fixed_at"})
    fixes["_fixed_at"] = pd.to_datetime(fixes["_fixed_at"], utc=True)
    first = fixes.groupby(list(BLOCK_KEY), as_index=False)["_fixed_at"].min()
    merged = frame.merge(first, on=list(BLOCK_KEY), how="left")
    merged.index = frame.index
    defect = merged["_fixed_at"].notna()
    clean_at = frame["committed_at"] + pd.Timedelta(days=waiting_days)
    clean = ~defect & (clean_at <= t)
    label = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    label[defect] = 1
    label[clean] = 0
    frame["label"] = label
    # A fix dated before the commit (clock skew, rebases) cannot make the label known before the commit.
    fixed = merged["_fixed_at"].where(merged["_fixed_at"] >= frame["committed_at"], frame["committed_at"])
    frame["label_known_at"] = fixed.where(defect, clean_at.where(clean))
    return frame
