"""Block-level links: SZZ's traced lines placed in the Terraform block that held them at the inducing commit.

A purpose-built repository: the role and the node group are written by two different commits, a later commit
renames the file and puts a variable above them (so line numbers and the path differ between the inducing
commits and the fix's parent), and the fix changes one line of each block.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from defectops.git import GitRepo
from defectops.labeling import block_links, cached_block_links
from gitrepo import BOB, RepoBuilder

ROLE = 'resource "aws_iam_role" "this" {\n  name = "%s"\n  path = "/"\n}\n'
GROUP = '\nmodule "eks_managed_node_group" {\n  source = "./node"\n  size   = %d\n}\n'


def test_lines_map_to_blocks_at_the_inducing_commit(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    add = repo.commit("Add IAM role and node group", {"main.tf": ROLE % "role" + GROUP % 2})
    bug = repo.commit("Grow the node group", {"main.tf": ROLE % "role" + GROUP % 3}, author=BOB, days=1)
    repo.move("main.tf", "eks.tf")
    repo.commit(
        "Move to eks.tf, add a region",
        {"eks.tf": 'variable "region" {}\n\n' + ROLE % "role" + GROUP % 3},
        days=1,
    )
    fix = repo.commit(
        "Fix node group size and role name",
        {"eks.tf": 'variable "region" {}\n\n' + ROLE % "role2" + GROUP % 2},
        days=1,
    )

    labels = run_labels(repo.path, rebuild=True)
    # In the fix's parent (eks.tf): line 4 `name = "role"` from `add`, line 10 `size = 3` from `bug`.
    assert link_set(labels.links) == {
        (fix, add, "eks.tf", (4,), "szz:message"),
        (fix, bug, "eks.tf", (10,), "szz:message"),
    }

    frame, stats = block_links(GitRepo.open(repo.path), labels.links)
    # At `add`, main.tf line 2 is inside aws_iam_role.this (lines 1-4); at `bug`, line 8 is inside
    # module.eks_managed_node_group (lines 6-9).
    got = {(r.fix_sha, r.inducing_sha, r.path, r.address, r.lines) for r in frame.itertuples(index=False)}
    assert got == {
        (fix, add, "main.tf", "aws_iam_role.this", 1),
        (fix, bug, "main.tf", "module.eks_managed_node_group", 1),
    }
    assert stats.as_dict() == {"links": 2, "lines": 2, "mapped_lines": 2, "dropped": {}}
    assert str(frame["fix_committed_at"].dtype) == "datetime64[ns, UTC]"


def test_lines_outside_blocks_and_other_files_are_counted_not_mapped(tmp_path: Path, run_labels) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add role", {"main.tf": ROLE % "role", "app.py": "x = 1\n"})
    # A code line between two blocks that belongs to no block: a stray top-level attribute (valid HCL).
    repo.commit("Add a setting", {"main.tf": ROLE % "role" + "\nstray = 1\n", "app.py": "x = 2\n"}, days=1)
    fix = repo.commit(
        "Fix setting", {"main.tf": ROLE % "role" + "\nstray = 2\n", "app.py": "x = 3\n"}, days=1
    )

    labels = run_labels(repo.path, rebuild=True)
    assert set(labels.links["fix_sha"]) == {fix}
    frame, stats = block_links(GitRepo.open(repo.path), labels.links)
    assert frame.empty
    # Only the .tf link is looked at: its one line (line 6, `stray = 1`) lies outside every block.
    assert stats.as_dict() == {"links": 1, "lines": 1, "mapped_lines": 0, "dropped": {"outside-blocks": 1}}


def test_cached_block_links_blame_only_new_fixes_and_equal_block_links(tmp_path: Path, run_labels) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    add = repo.commit("Add IAM role and node group", {"main.tf": ROLE % "role" + GROUP % 2})
    bug = repo.commit("Grow the node group", {"main.tf": ROLE % "role" + GROUP % 3}, author=BOB, days=1)
    fix = repo.commit("Fix node group size", {"main.tf": ROLE % "role" + GROUP % 2}, days=1)
    git = GitRepo.open(repo.path)
    cache = tmp_path / "ws" / "block_links.parquet"

    first = run_labels(repo.path, rebuild=True).links
    frame, stats = cached_block_links(git, first, cache)
    expected, expected_stats = block_links(git, first)
    pd.testing.assert_frame_equal(frame, expected)
    assert stats == expected_stats
    # By hand: the fix traces `size = 3` (main.tf line 8 at its parent) to `bug`, inside the node group.
    assert [(r.fix_sha, r.inducing_sha, r.address, r.lines) for r in frame.itertuples(index=False)] == [
        (fix, bug, "module.eks_managed_node_group", 1)
    ]

    # A second fix arrives (the role's name, written by `add`). The first fix's rows come from the cache, not
    # from a new blame: marked in the cache, the mark comes back; the new fix's rows are blamed.
    second = repo.commit("Fix role name", {"main.tf": ROLE % "role2" + GROUP % 2}, author=BOB, days=1)
    marked = pd.read_parquet(cache)
    marked["lines"] = 7
    marked.to_parquet(cache, index=False)
    both = run_labels(repo.path, rebuild=True).links
    frame, stats = cached_block_links(git, both, cache)
    got = {(r.fix_sha, r.inducing_sha, r.address, r.lines) for r in frame.itertuples(index=False)}
    assert got == {(fix, bug, "module.eks_managed_node_group", 7), (second, add, "aws_iam_role.this", 1)}
    expected, expected_stats = block_links(git, both)
    assert stats == expected_stats
    assert stats.as_dict() == {"links": 2, "lines": 2, "mapped_lines": 2, "dropped": {}}
    # Without the mark, the cached result is block_links' own, row for row.
    cache.unlink()
    frame, _ = cached_block_links(git, both, cache)
    pd.testing.assert_frame_equal(frame, expected)
