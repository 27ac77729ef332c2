"""Code metrics (``--code-metrics``) on real git repositories, every expected value worked out by hand.

Commit records are built here from ``git diff-tree`` (one process per commit is fine in a test) so these tests
do not depend on the miner's log parser; the code under test reads blobs through its own ``git cat-file``.

lizard's counting rules used in the arithmetic below: NLOC counts non-blank, non-comment lines; tokens are all
non-whitespace, non-comment tokens; a function's CCN is 1 + its conditions (Python: if elif for while except
finally and or; C: if for while case && || ?); CCN of a file is the sum over its functions.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from defectops.errors import MissingObjectError
from defectops.git.records import ChangeType, Commit, FileChange
from defectops.git.repo import GitRepo
from defectops.mining import code_analysis
from defectops.mining.code_aggregate import aggregate_per_commit
from defectops.mining.code_analysis import language_of
from defectops.mining.code_metrics import code_metrics
from defectops.mining.code_rows import (
    COMMIT_COLUMNS,
    FILE_COLUMNS,
    SKIP_BINARY,
    SKIP_SUBMODULE,
    SKIP_TOO_LARGE,
    CommitCodeMetrics,
    FileCodeMetrics,
    SourceMetrics,
)
from gitrepo import RepoBuilder

# -- building Commit records independently of the miner -------------------------------------------------


def _changes(repo: RepoBuilder, parent: str | None, sha: str) -> list[FileChange]:
    target = [parent, sha] if parent else ["--root", sha]
    common = ["diff-tree", "-r", "-M", "--no-commit-id", "--no-abbrev", "-z"]
    raw = repo.git(*common, "--raw", *target).split("\0")
    changes: list[FileChange] = []
    i = 0
    while i < len(raw) and raw[i]:
        old_mode, new_mode, old_blob, new_blob, status = raw[i].lstrip(":").split()
        kind = ChangeType(status[0])
        if kind in (ChangeType.RENAMED, ChangeType.COPIED):
            old_path, path = raw[i + 1], raw[i + 2]
            i += 3
        else:
            old_path, path = None, raw[i + 1]
            i += 2
        changes.append(FileChange(path, old_path, kind, 0, 0, False, old_blob, new_blob, old_mode, new_mode))
    numstat = repo.git(*common, "--numstat", *target).split("\0")
    j = 0
    for change in changes:
        added, deleted, rest = numstat[j].split("\t")
        j += 1 if rest else 3  # a rename is "a\td\t" then old and new path
        if added == "-":
            change.binary = True
        else:
            change.added, change.deleted = int(added), int(deleted)
    return changes


def commits_of(repo: RepoBuilder) -> list[Commit]:
    """Every commit, oldest first, with its changes against the first parent."""
    when = datetime(2020, 1, 1, tzinfo=UTC)
    out = []
    for line in repo.git("rev-list", "--reverse", "--topo-order", "--parents", "HEAD").splitlines():
        sha, *parents = line.split()
        files = _changes(repo, parents[0] if parents else None, sha)
        out.append(Commit(sha, tuple(parents), "A", "a@example.com", when, when, "msg", files))
    return out


def rows_by_path(rows: list[FileCodeMetrics], sha: str) -> dict[str, FileCodeMetrics]:
    return {r.path: r for r in rows if r.sha == sha}


# -- sources ---------------------------------------------------------------------------------------------

APP_V1 = "def f(x):\n    return x\n"
# f: nloc 2; tokens def f ( x ) : return x = 8; CCN 1
APP_V2 = "def f(x):\n    if x:\n        return 1\n    return x\n"
# f gains an if: CCN 1 + 1 = 2; nloc 4; tokens 8 + (if x :) 3 + (return 1) 2 = 13
APP_V3 = (
    "def f(x):\n    if x:\n        return 1\n"
    "    for i in x:\n        if i:\n            return i\n"
    "    return x\n"
)
# f gains a for and an if: CCN 2 + 2 = 4; nloc 7;
# tokens 13 + (for i in x :) 5 + (if i :) 3 + (return i) 2 = 23
LIB_V1 = "int one(void) {\n  return 1;\n}\n"
# one: nloc 3; tokens int one ( void ) { return 1 ; } = 10; CCN 1
LIB_V2 = LIB_V1 + "\nint pos(int x) {\n  if (x > 0) {\n    return 1;\n  }\n  return 0;\n}\n"
# + pos: nloc 6; tokens int pos ( int x ) { = 7, if ( x > 0 ) { = 7, return 1 ; = 3, } = 1, return 0 ; = 3,
# } = 1 -> 22; CCN 1 + 1 (if) = 2.
# File: nloc 3 + 6 = 9, tokens 10 + 22 = 32, CCN 1 + 2 = 3, 2 functions, max 2


@pytest.fixture
def history(tmp_path: Path) -> tuple[RepoBuilder, list[Commit]]:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit(
        "c1",
        {"app.py": APP_V1, "lib.c": LIB_V1, "README.md": "# readme\n", "logo.png": b"\x89PNG\x00\x01\x02"},
    )
    repo.commit("c2", {"app.py": APP_V2, "lib.c": LIB_V2}, days=1)
    repo.commit("c3", {"app.py": APP_V3}, days=1)
    repo.commit("c4", {"app.py": None}, days=1)
    return repo, commits_of(repo)


def test_added_files_measure_against_zero(history: tuple[RepoBuilder, list[Commit]]) -> None:
    repo, commits = history
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    c1 = rows_by_path(rows, commits[0].sha)
    # README.md and logo.png are in no measured language: no row, never read.
    assert set(c1) == {"app.py", "lib.c"}
    app = c1["app.py"]
    assert app.language == "python"
    assert app.change_type == "A"
    assert app.code == SourceMetrics(nloc=2, ccn=1, ccn_max=1, tokens=8, functions=1)
    assert app.code_parent == SourceMetrics()  # added: the parent side is zero
    delta = app.code_delta
    assert delta is not None
    assert (delta.nloc, delta.ccn, delta.tokens, delta.functions) == (2, 1, 8, 1)
    assert c1["lib.c"].language == "cpp"
    assert c1["lib.c"].code == SourceMetrics(nloc=3, ccn=1, ccn_max=1, tokens=10, functions=1)


def test_python_if_and_for_raise_ccn(history: tuple[RepoBuilder, list[Commit]]) -> None:
    repo, commits = history
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    c2 = rows_by_path(rows, commits[1].sha)["app.py"]
    assert c2.code == SourceMetrics(nloc=4, ccn=2, ccn_max=2, tokens=13, functions=1)
    d2 = c2.code_delta
    assert d2 is not None
    # gaining an if: CCN 2 - 1 = +1, NLOC 4 - 2 = +2, tokens 13 - 8 = +5, functions 1 - 1 = 0
    assert (d2.ccn, d2.nloc, d2.tokens, d2.functions, d2.ccn_max) == (1, 2, 5, 0, 1)
    c3 = rows_by_path(rows, commits[2].sha)["app.py"]
    d3 = c3.code_delta
    assert d3 is not None
    # gaining a for and an if: CCN 4 - 2 = +2, NLOC 7 - 4 = +3, tokens 23 - 13 = +10
    assert (d3.ccn, d3.nloc, d3.tokens) == (2, 3, 10)
    assert not c3.parse_error


def test_new_c_function(history: tuple[RepoBuilder, list[Commit]]) -> None:
    repo, commits = history
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    lib = rows_by_path(rows, commits[1].sha)["lib.c"]
    assert lib.code == SourceMetrics(nloc=9, ccn=3, ccn_max=2, tokens=32, functions=2)
    delta = lib.code_delta
    assert delta is not None
    # functions 2 - 1 = +1; CCN 3 - 1 = +2; max 2 - 1 = +1; NLOC 9 - 3 = +6; tokens 32 - 10 = +22;
    # mean 3/2 - 1/1 = +0.5
    assert (delta.functions, delta.ccn, delta.ccn_max, delta.nloc, delta.tokens) == (1, 2, 1, 6, 22)
    assert delta.ccn_mean == pytest.approx(0.5)


def test_deleted_file_goes_to_zero(history: tuple[RepoBuilder, list[Commit]]) -> None:
    repo, commits = history
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    gone = rows_by_path(rows, commits[3].sha)["app.py"]
    assert gone.change_type == "D"
    assert gone.code == SourceMetrics()
    delta = gone.code_delta
    assert delta is not None
    # the parent is APP_V3: NLOC 7, CCN 4, tokens 23, 1 function -> all negated
    assert (delta.nloc, delta.ccn, delta.tokens, delta.functions, delta.ccn_max) == (-7, -4, -23, -1, -4)


def test_commit_aggregate(history: tuple[RepoBuilder, list[Commit]]) -> None:
    repo, commits = history
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    agg = aggregate_per_commit(rows)
    c2 = agg[commits[1].sha]
    # app.py (V1 -> V2) and lib.c (V1 -> V2):
    assert c2.code_files == 2
    assert c2.code_nloc == 4 + 9  # 13
    assert c2.code_nloc_delta == 2 + 6  # 8
    assert c2.code_ccn == 2 + 3  # 5
    assert c2.code_ccn_delta == 1 + 2  # 3
    assert c2.code_tokens == 13 + 32  # 45
    assert c2.code_tokens_delta == 5 + 22  # 27
    assert c2.code_functions == 1 + 2  # 3
    assert c2.code_functions_delta == 0 + 1  # 1
    assert c2.code_ccn_max == max(2, 2)  # 2
    assert c2.code_ccn_max_delta == 2 - max(1, 1)  # +1
    assert c2.code_ccn_mean == pytest.approx(5 / 3)
    # parent: (1 + 1) CCN over (1 + 1) functions = 1.0
    assert c2.code_ccn_mean_delta == pytest.approx(5 / 3 - 1.0)
    assert c2.tf_files == 0
    assert c2.tf_resources_added == 0
    c1 = agg[commits[0].sha]
    # root commit: app.py V1 + lib.c V1, parents are zero, mean of zero functions is 0.0
    assert (c1.code_nloc, c1.code_nloc_delta, c1.code_ccn, c1.code_tokens) == (5, 5, 2, 18)
    assert c1.code_ccn_mean_delta == pytest.approx(1.0)
    c4 = agg[commits[3].sha]
    assert (c4.code_nloc, c4.code_nloc_delta, c4.code_ccn_delta, c4.code_ccn_max_delta) == (0, -7, -4, -4)


def test_rename_with_change_compares_old_path_blob(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    body = "".join(f"def {n}(x):\n    return x + {i}\n\n\n" for i, n in enumerate("abcd", start=1))
    # 4 functions of 2 lines: NLOC 8; tokens per function def a ( x ) : return x + 1 = 10 -> 40; CCN 4, max 1
    repo.commit("c1", {"util.py": body})
    repo.move("util.py", "pkg/util.py")
    extra = "def e(x):\n    if x:\n        return 5\n    return x\n"
    # e: NLOC 4, tokens 13 (as APP_V2), CCN 2
    repo.commit("c2", {"pkg/util.py": body + extra}, days=1)
    commits = commits_of(repo)
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    moved = rows_by_path(rows, commits[1].sha)["pkg/util.py"]
    assert moved.change_type == "R"
    assert moved.old_path == "util.py"
    assert moved.code_parent == SourceMetrics(nloc=8, ccn=4, ccn_max=1, tokens=40, functions=4)
    assert moved.code == SourceMetrics(nloc=12, ccn=6, ccn_max=2, tokens=53, functions=5)
    delta = moved.code_delta
    assert delta is not None
    # +4 NLOC, +2 CCN, +13 tokens, +1 function, max 2 - 1 = +1, mean 6/5 - 4/4 = +0.2
    assert (delta.nloc, delta.ccn, delta.tokens, delta.functions, delta.ccn_max) == (4, 2, 13, 1, 1)
    assert delta.ccn_mean == pytest.approx(0.2)


MAIN_TF_V1 = """\
variable "region" {
  type = string
}

variable "unused" {
  default = 1
}

resource "aws_s3_bucket" "data" {
  bucket = "data"
}
"""
# variables 2, resources 1; attributes type + default + bucket = 3; every block top-level: depth 1

MAIN_TF_V2 = """\
variable "region" {
  type = string
}

# the data bucket is renamed in place
resource "aws_s3_bucket" "data" {
  bucket = "data-v2"
}

resource "aws_s3_bucket" "logs" {
  bucket = "logs"
  versioning {
    enabled = true
  }
}

module "vpc" {
  source = "./vpc"
  cidr   = "10.0.0.0/16"
}
"""
# added: aws_s3_bucket.logs, module.vpc; removed: var.unused; changed: aws_s3_bucket.data (bucket value).
# attributes: type, bucket, bucket, enabled, source, cidr = 6 (delta 6 - 3 = +3);
# depth: versioning inside a resource = 2 (delta 2 - 1 = +1)


def test_terraform_blocks_added_removed_changed(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("c1", {"infra/main.tf": MAIN_TF_V1})
    repo.commit("c2", {"infra/main.tf": MAIN_TF_V2}, days=1)
    repo.commit("c3", {"infra/main.tf": "# only a comment\n" + MAIN_TF_V2.replace("  cidr   =", "  cidr =")})
    commits = commits_of(repo)
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    row = rows_by_path(rows, commits[1].sha)["infra/main.tf"]
    assert row.language == "terraform"
    assert row.code is None
    diff = row.tf_diff
    assert row.tf is not None
    assert diff is not None
    assert diff.added_addresses == ("aws_s3_bucket.logs", "module.vpc")
    assert diff.removed_addresses == ("var.unused",)
    assert diff.changed_addresses == ("aws_s3_bucket.data",)
    assert (row.tf.resources, row.tf.variables, row.tf.modules) == (2, 1, 1)
    assert (row.tf.attributes, diff.attributes_delta) == (6, 3)
    assert (row.tf.max_depth, diff.max_depth_delta) == (2, 1)

    agg = aggregate_per_commit(rows)[commits[1].sha]
    assert (agg.tf_files, agg.tf_resources, agg.tf_resources_added, agg.tf_resources_changed) == (1, 2, 1, 1)
    assert (agg.tf_modules_added, agg.tf_variables_removed, agg.tf_variables) == (1, 1, 1)
    assert (agg.tf_blocks, agg.tf_blocks_added, agg.tf_blocks_removed, agg.tf_blocks_changed) == (4, 2, 1, 1)
    assert (agg.tf_attributes, agg.tf_attributes_delta, agg.tf_max_depth, agg.tf_max_depth_delta) == (
        6,
        3,
        2,
        1,
    )
    assert agg.code_files == 0

    root = aggregate_per_commit(rows)[commits[0].sha]
    # root commit: everything added against an empty parent: 1 resource, 2 variables, 3 blocks, 3 attributes
    assert (root.tf_resources_added, root.tf_variables_added, root.tf_blocks_added) == (1, 2, 3)
    assert (root.tf_attributes_delta, root.tf_max_depth_delta) == (3, 1)

    # comments and alignment are not changes: same blocks, same content
    cosmetic = rows_by_path(rows, commits[2].sha)["infra/main.tf"].tf_diff
    assert cosmetic is not None
    assert (cosmetic.blocks_added, cosmetic.blocks_removed, cosmetic.blocks_changed) == (0, 0, 0)


def test_terraform_nesting_depth(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    sg = """\
resource "aws_security_group" "sg" {
  name = "sg"
  dynamic "ingress" {
    for_each = var.ports
    content {
      from_port = ingress.value
    }
  }
}
"""
    # resource (1) > dynamic "ingress" (2) > content (3); attributes name, for_each, from_port = 3
    repo.commit("c1", {"sg.tf": sg})
    rows = list(code_metrics(GitRepo.open(repo.path), commits_of(repo)))
    tf = rows[0].tf
    assert tf is not None
    assert (tf.max_depth, tf.attributes, tf.resources) == (3, 3, 1)


def test_syntax_errors_are_flagged_not_raised(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("c1", {"ok.tf": 'variable "a" {\n  default = 1\n}\n', "good.py": APP_V1})
    broken_py = "def f(x):\n    return x +\n"
    # lizard still measures it (tolerant parser):
    # tokens def f ( x ) : return x + = 9, NLOC 2, function f CCN 1
    repo.commit(
        "c2",
        {"ok.tf": 'variable "a" {\n  default = \n', "good.py": broken_py, "new.tf": "resource {{{\n"},
        days=1,
    )
    commits = commits_of(repo)
    rows = rows_by_path(list(code_metrics(GitRepo.open(repo.path), commits)), commits[1].sha)
    tf = rows["ok.tf"]
    assert tf.parse_error
    assert tf.error is not None
    assert tf.error.startswith("new: HCL parse error")
    assert tf.tf is None  # the new side could not be measured
    assert tf.tf_parent is not None
    assert tf.tf_parent.variables == 1
    assert tf.tf_diff is None
    assert rows["new.tf"].parse_error
    py = rows["good.py"]
    assert py.parse_error
    assert py.error is not None
    assert "syntax" in py.error
    assert py.code == SourceMetrics(nloc=2, ccn=1, ccn_max=1, tokens=9, functions=1)
    agg = aggregate_per_commit(list(rows.values()))[commits[1].sha]
    assert (agg.tf_files, agg.tf_parse_errors, agg.code_parse_errors) == (2, 2, 1)
    assert (agg.tf_variables, agg.tf_variables_removed) == (0, 0)  # nothing measurable on the new side

    # the next commit repairs both files: new values are back, deltas need both sides, so none
    repo.commit("c3", {"ok.tf": 'variable "a" {\n  default = 2\n}\n', "good.py": APP_V1}, days=1)
    commits = commits_of(repo)
    fixed = rows_by_path(list(code_metrics(GitRepo.open(repo.path), commits)), commits[2].sha)
    tf_fixed, py_fixed = fixed["ok.tf"], fixed["good.py"]
    assert tf_fixed.parse_error
    assert tf_fixed.error is not None
    assert tf_fixed.error.startswith("parent: HCL parse error")
    assert tf_fixed.tf is not None
    assert tf_fixed.tf.variables == 1
    assert (tf_fixed.tf_parent, tf_fixed.tf_diff) == (None, None)
    assert py_fixed.parse_error  # the parent was broken Python; lizard measured both sides anyway
    assert py_fixed.error is not None
    assert py_fixed.error.startswith("parent: Python syntax error")
    delta = py_fixed.code_delta
    assert delta is not None
    # APP_V1 (tokens 8) against broken_py (tokens 9): -1 token, NLOC 2 - 2 = 0
    assert (delta.tokens, delta.nloc) == (-1, 0)
    agg3 = aggregate_per_commit(list(fixed.values()))[commits[2].sha]
    assert (agg3.tf_variables, agg3.tf_variables_added, agg3.tf_blocks_changed) == (1, 0, 0)


def test_binary_submodule_and_oversized_files_are_skipped(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    sub = RepoBuilder.create(tmp_path / "sub")
    sub_sha = sub.commit("s1", {"x.txt": "x\n"})
    big = "x = 1\n" * 40  # 240 bytes, over the 200-byte limit below
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{sub_sha},vendored.py")
    repo.commit("c1", {"blob.c": b"\x00\x01\x02binary\x00", "big.py": big, "small.py": "x = 1\n"})
    commits = commits_of(repo)
    rows = {r.path: r for r in code_metrics(GitRepo.open(repo.path), commits, max_blob_bytes=200)}
    assert rows["blob.c"].skipped == SKIP_BINARY
    assert rows["vendored.py"].skipped == SKIP_SUBMODULE
    assert rows["big.py"].skipped == SKIP_TOO_LARGE
    assert rows["big.py"].code is None
    # small.py: NLOC 1, tokens x = 1 = 3, no functions
    assert rows["small.py"].code == SourceMetrics(nloc=1, ccn=0, ccn_max=0, tokens=3, functions=0)
    agg = aggregate_per_commit(rows.values())[commits[0].sha]
    assert (agg.code_files_skipped, agg.code_files, agg.code_nloc) == (3, 1, 1)


def test_non_utf8_source_is_decoded_with_replacement(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("c1", {"latin.py": b'def f():\n    return "caf\xe9"\n'})
    rows = list(code_metrics(GitRepo.open(repo.path), commits_of(repo)))
    # def f ( ) : return "caf\ufffd" = 7 tokens, NLOC 2, CCN 1
    assert rows[0].code == SourceMetrics(nloc=2, ccn=1, ccn_max=1, tokens=7, functions=1)
    assert not rows[0].parse_error


def test_merge_commits_are_not_scored(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("c1", {"a.py": APP_V1})
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side", {"b.py": APP_V1}, days=1)
    repo.git("checkout", "-q", "main")
    repo.commit("c2", {"a.py": APP_V2}, days=1)
    repo.git("merge", "-q", "--no-ff", "-m", "merge", "side")
    commits = commits_of(repo)
    merge = commits[-1]
    assert merge.is_merge
    assert [f.path for f in merge.files] == ["b.py"]  # the merge brings b.py against its first parent
    rows = list(code_metrics(GitRepo.open(repo.path), commits))
    assert all(r.sha != merge.sha for r in rows)
    agg = aggregate_per_commit(rows, shas=[c.sha for c in commits])
    assert agg[merge.sha] == CommitCodeMetrics(sha=merge.sha)  # present, all zeros


def test_one_cat_file_process_per_call(
    history: tuple[RepoBuilder, list[Commit]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, commits = history
    git_repo = GitRepo.open(repo.path)
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def counting_popen(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(list(args))
        return real_popen(args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(subprocess, "Popen", counting_popen)  # every process started while measuring
    rows = list(code_metrics(git_repo, commits))
    assert len(rows) == 6  # c1: 2 files, c2: 2, c3: 1, c4: 1
    assert len(started) == 1
    assert started[0][-2:] == ["cat-file", "--batch"]


def test_missing_blob_is_a_clear_error(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("c1", {"a.py": APP_V1})
    sha = repo.head()
    ghost = FileChange(
        "ghost.py", None, ChangeType.ADDED, 1, 0, False, "0" * 40, "1" * 40, "000000", "100644"
    )
    when = datetime(2020, 1, 1, tzinfo=UTC)
    commit = Commit(sha, (), "A", "a@example.com", when, when, "msg", [ghost])
    with pytest.raises(MissingObjectError, match="missing"):
        list(code_metrics(GitRepo.open(repo.path), [commit]))


def test_stopping_early_stops_git(history: tuple[RepoBuilder, list[Commit]]) -> None:
    repo, commits = history
    rows = code_metrics(GitRepo.open(repo.path), commits)
    first = next(rows)
    assert first.path in {"app.py", "lib.c"}
    rows.close()  # must not hang or leave cat-file behind (the finally block waits for it)


def test_columns_are_stable() -> None:
    assert tuple(f.name for f in fields(CommitCodeMetrics))[1:] == COMMIT_COLUMNS
    assert len(set(COMMIT_COLUMNS)) == len(COMMIT_COLUMNS)
    row = FileCodeMetrics(sha="s", path="p.py", old_path=None, change_type="A", language="python")
    assert tuple(row.to_row()) == FILE_COLUMNS
    assert tuple(CommitCodeMetrics(sha="s").as_dict()) == COMMIT_COLUMNS
    for name in (
        "code_ccn_delta",
        "code_nloc",
        "code_nloc_delta",
        "code_tokens_delta",
        "code_functions_delta",
    ):
        assert name in COMMIT_COLUMNS
    for name in ("code_ccn_max", "tf_resources_added", "tf_resources_removed", "tf_blocks_changed"):
        assert name in COMMIT_COLUMNS
    assert {"tf_attributes_delta", "tf_max_depth"} <= set(COMMIT_COLUMNS)


def test_language_detection() -> None:
    assert language_of("main.tf") == "terraform"
    assert language_of("src/a.c") == "cpp"
    assert language_of("a.go") == "go"
    assert language_of("README.md") is None  # lizard would fall back to C; we do not
    assert language_of("Makefile") is None


def test_lizard_recursion_failure_is_a_parse_error(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "repo")
    # 3,000 nested arrays exceed lizard's recursion depth; lizard swallows the RecursionError, prints a
    # "[skip]" line and returns partial results: we report a parse error with no values instead.
    repo.commit("c1", {"deep.js": "var x = " + "[" * 3000 + "]" * 3000 + ";\n"})
    (row,) = code_metrics(GitRepo.open(repo.path), commits_of(repo))
    assert row.language == "javascript"
    assert row.parse_error
    assert row.error is not None
    assert "RecursionError" in row.error
    assert row.code is None
    assert row.code_delta is None


def test_other_stderr_writes_pass_through_during_analysis(capsys: pytest.CaptureFixture[str]) -> None:
    # While lizard runs, stderr is watched for its "[skip]" complaint only; anything else (a progress bar
    # drawn by another thread) still reaches the real stderr.
    watcher = code_analysis._LizardComplaints(sys.stderr)
    watcher.write("progress 42%\n")
    watcher.write("[skip] fail to process 'x.js' with RecursionError - too deep\n")
    watcher.flush()
    assert capsys.readouterr().err == "progress 42%\n"
    assert watcher.complaints == ["[skip] fail to process 'x.js' with RecursionError - too deep"]


def test_measuring_code_leaves_sys_path_as_it_was(tmp_path: Path) -> None:
    """lizard puts the folder of ``sys.argv[0]`` first on ``sys.path`` when imported. Under ``python -m defectops``
    that is the package's own folder, which made ``import git`` (MLflow's GitPython) find ``defectops.git``. A
    fresh interpreter whose ``argv[0]`` lives in a folder with a ``git`` package must still import the real one
    after a file has been measured."""
    script_dir = tmp_path / "pkg"
    (script_dir / "git").mkdir(parents=True)
    (script_dir / "git" / "__init__.py").write_text("SHADOW = True\n")
    code = (
        "import sys\n"
        f"sys.argv = [{str(script_dir / '__main__.py')!r}]\n"
        "before = list(sys.path)\n"
        "from defectops.mining.code_analysis import analyze_source, language_of\n"
        "assert language_of('a.py') == 'python'\n"
        "analyze_source('a.py', 'def f(x):\\n    return x\\n')\n"
        "assert sys.path == before, sys.path[:3]\n"
        "import git\n"
        "assert not hasattr(git, 'SHADOW'), git.__file__\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
