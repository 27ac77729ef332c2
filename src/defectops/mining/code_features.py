"""Join code and Terraform metrics of changed files (``--code-metrics``) onto a commit dataset.

The commits' file lists are read again with one ``git log --no-walk --stdin`` (the commit dataset keeps only
change metrics); only changed files are read, through one ``git cat-file --batch`` process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

from defectops.git import LOG_OPTIONS, Commit, GitRepo, parse_log
from defectops.mining.code_aggregate import aggregate_per_commit
from defectops.mining.code_metrics import code_metrics
from defectops.mining.code_rows import COMMIT_COLUMNS, FLOAT_COLUMNS


def read_commits(repo: GitRepo, shas: Sequence[str]) -> Iterator[Commit]:
    """Commit records of ``shas`` (in that order) from one git process."""
    if not shas:
        return iter(())
    stdin = ("\n".join(shas) + "\n").encode("ascii")
    return parse_log(repo.stream(*LOG_OPTIONS, "--no-walk=unsorted", "--stdin", stdin=stdin))


def add_code_metrics(repo: GitRepo, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the code metric columns; merge commits get nulls (they are not scored)."""
    scored = frame.loc[~frame["is_merge"].astype(bool), "sha"].tolist()
    per_commit = aggregate_per_commit(code_metrics(repo, read_commits(repo, scored)), shas=scored)
    columns: dict[str, list[float | int | None]] = {name: [] for name in COMMIT_COLUMNS}
    for sha in frame["sha"]:
        record = per_commit.get(sha)
        values = record.as_dict() if record is not None else {}
        for name in COMMIT_COLUMNS:
            columns[name].append(values.get(name))
    result = frame.drop(columns=[c for c in COMMIT_COLUMNS if c in frame.columns]).copy()
    for name in COMMIT_COLUMNS:
        result[name] = pd.Series(
            columns[name], index=frame.index, dtype="float64" if name in FLOAT_COLUMNS else "Int64"
        )
    return result
