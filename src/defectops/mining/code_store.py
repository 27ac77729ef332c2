"""The code-metrics dataset of a repository: code and Terraform metrics of every mined commit, measured once.

Why a dataset of its own (``datasets/<repo>/code.parquet``, beside ``commits.parquet``): measuring changed
files means reading and parsing blobs, ~50x slower than the change metrics, so it is done only when a model
needs it (``run --features``, ``mine --code-metrics``), and only for commits not measured before: the
metrics of a commit depend on its own and its parent's content alone, so a stored row never goes stale. A
rewritten history leaves rows of commits that are gone; they are dropped at the next write.

Every changed file in a measured language is either measured or listed, with the reason, in
``code_failures.parquet`` (a parse error of both HCL2 and HCL1, a binary or oversized blob, a symlink or a
submodule): :class:`CodeMineResult` counts them by reason, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from defectops.data import CODE_FAILURES_SCHEMA, CODE_SCHEMA, read_table, write_table
from defectops.errors import DataError
from defectops.git import Commit
from defectops.mining.code_aggregate import aggregate_per_commit
from defectops.mining.code_features import read_commits
from defectops.mining.code_metrics import code_metrics
from defectops.mining.code_rows import COMMIT_COLUMNS, FLOAT_COLUMNS, FileCodeMetrics
from defectops.mining.engine import Miner

Progress = Callable[[int, int], None]
_FAILURE_COLUMNS = ("sha", "path", "language", "kind", "error")
_NUMBERS = re.compile(r"\b\d+\b")


@dataclass(frozen=True, slots=True)
class CodeMineResult:
    """What one pass of the code metrics did (``code_metrics`` in ``mine --json`` and ``run --json``).

    ``new_commits`` were measured now (``files`` changed files in measured languages, of which
    ``terraform_files`` ``.tf`` and ``hcl1_files`` read by the HCL1 fallback); ``failures`` counts every
    file of the whole dataset that could not be measured, by reason (most frequent first); ``seconds`` is the
    wall time of this pass, reading and writing included.
    """

    dataset: Path
    failures_dataset: Path
    commits: int
    new_commits: int
    files: int
    terraform_files: int
    hcl1_files: int
    failed_files: int
    failures: tuple[tuple[str, int], ...]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": str(self.dataset),
            "failures_dataset": str(self.failures_dataset),
            "commits": self.commits,
            "new_commits": self.new_commits,
            "files": self.files,
            "terraform_files": self.terraform_files,
            "hcl1_files": self.hcl1_files,
            "failed_files": self.failed_files,
            "failures": [{"reason": reason, "files": count} for reason, count in self.failures],
            "seconds": round(self.seconds, 3),
        }


def code_dataset_paths(miner: Miner) -> tuple[Path, Path]:
    """Where the code metrics and their failures of ``miner``'s repository are stored."""
    workspace = miner.workspace
    return (
        workspace.dataset_file(miner.repo_id, "code"),
        workspace.dataset_file(miner.repo_id, "code_failures"),
    )


def failure_reason(kind: str, error: str) -> str:
    """A failure's reason for counting: its kind and the parser's message with positions and numbers
    blanked (``line 12, column 3`` and ``line 40, column 1`` are one reason)."""
    if kind != "parse_error":
        return kind
    return f"parse error: {_NUMBERS.sub('N', error)[:160]}"


def _failure(row: FileCodeMetrics) -> tuple[str, ...] | None:
    if row.skipped is not None:
        return (row.sha, row.path, row.language, row.skipped, row.skipped)
    if row.parse_error:
        return (row.sha, row.path, row.language, "parse_error", row.error or "parse error")
    return None


def mine_code_metrics(
    miner: Miner, *, progress: Progress | None = None, now: datetime | None = None
) -> CodeMineResult:
    """Measure the code and Terraform metrics of every mined non-merge commit not measured yet, and store
    them. The commit dataset must be mined first (:meth:`Miner.mine`)."""
    started = perf_counter()
    path, failures_path = code_dataset_paths(miner)
    with miner.locked():
        if not miner.dataset_path.exists():
            raise DataError(f"{miner.repo.path}: mine the repository before its code metrics")
        commits = read_table(miner.dataset_path)
        scored = commits.loc[~commits["is_merge"].astype(bool), "sha"].astype(str).tolist()
        stored = read_table(path) if path.exists() else _empty_code()
        failed = read_table(failures_path) if failures_path.exists() else _empty_failures()
        known = set(stored["sha"].astype(str))
        todo = [sha for sha in scored if sha not in known]
        if progress is not None:
            progress(0, len(todo))  # the pass starts: rates are measured from here

        def counted() -> Iterator[Commit]:
            for done, commit in enumerate(read_commits(miner.repo, todo), start=1):
                yield commit
                if progress is not None:
                    progress(done, len(todo))

        rows = list(code_metrics(miner.repo, counted())) if todo else []
        per_commit = aggregate_per_commit(rows, shas=todo)
        new = _frame([per_commit[sha].as_dict() | {"sha": sha} for sha in todo])
        new_failures = pd.DataFrame(
            [f for row in rows if (f := _failure(row)) is not None], columns=list(_FAILURE_COLUMNS)
        )
        alive = set(scored)
        stale = not stored["sha"].isin(alive).all()
        if todo or stale:
            code = pd.concat([stored.loc[stored["sha"].isin(alive)], new], ignore_index=True)
            failed = pd.concat([failed.loc[failed["sha"].isin(alive)], new_failures], ignore_index=True)
            when = now or datetime.now(UTC)
            head = str(commits["sha"].iloc[-1]) if len(commits) else ""
            source = str(miner.repo.path)
            write_table(
                code.astype({c: "float64" if c in FLOAT_COLUMNS else "int64" for c in COMMIT_COLUMNS}),
                path, schema=CODE_SCHEMA, what="code-metrics dataset", source=source, source_head=head,
                now=when,
            )  # fmt: skip
            write_table(
                failed.astype(str), failures_path, schema=CODE_FAILURES_SCHEMA, what="code-metrics failures",
                source=source, source_head=head, now=when,
            )  # fmt: skip
        else:
            code = stored
    reasons = Counter(failure_reason(k, e) for k, e in zip(failed["kind"], failed["error"], strict=True))
    return CodeMineResult(
        dataset=path,
        failures_dataset=failures_path,
        commits=len(code),
        new_commits=len(todo),
        files=len(rows),
        terraform_files=sum(1 for row in rows if row.is_terraform),
        hcl1_files=sum(1 for row in rows if row.tf is not None and row.tf.hcl1),
        failed_files=len(failed),
        failures=tuple(reasons.most_common()),
        seconds=perf_counter() - started,
    )


def read_code_metrics(miner: Miner) -> pd.DataFrame:
    """The stored code-metrics dataset (``sha`` and the metric columns)."""
    path, _ = code_dataset_paths(miner)
    return read_table(path) if path.exists() else _empty_code()


def with_code_metrics(commits: pd.DataFrame, code: pd.DataFrame) -> pd.DataFrame:
    """``commits`` with the code metric columns joined by ``sha`` (as floats; NaN for merges and commits not
    measured). Columns of the same names already on ``commits`` are replaced."""
    base = commits.drop(columns=[c for c in COMMIT_COLUMNS if c in commits.columns])
    right = code.loc[:, ["sha", *COMMIT_COLUMNS]].astype(dict.fromkeys(COMMIT_COLUMNS, "float64"))
    joined = base.merge(right, on="sha", how="left", validate="many_to_one")
    joined.index = commits.index
    return joined


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    if not records:
        return _empty_code()
    frame = pd.DataFrame.from_records(records, columns=["sha", *COMMIT_COLUMNS])
    return frame.astype({c: "float64" if c in FLOAT_COLUMNS else "int64" for c in COMMIT_COLUMNS})


def _empty_code() -> pd.DataFrame:
    columns: dict[str, pd.Series] = {"sha": pd.Series([], dtype=str)}
    for name in COMMIT_COLUMNS:
        columns[name] = pd.Series([], dtype="float64" if name in FLOAT_COLUMNS else "int64")
    return pd.DataFrame(columns)


def _empty_failures() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=str) for name in _FAILURE_COLUMNS})
