"""Features of changed Terraform blocks on a small real history, every value worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from defectops.data import BLOCK_COLUMNS, BLOCK_FEATURES
from defectops.git import GitRepo
from defectops.mining import block_features, cached_block_features
from gitrepo import ALICE, BOB, EPOCH, RepoBuilder

ROLE = 'resource "aws_iam_role" "this" {\n  name = "%s"\n  path = "/"\n%s}\n'
GROUP = '\nmodule "eks_managed_node_group" {\n  source = "./node"\n  size   = %d\n}\n'
REGION = 'variable "region" {}\n'


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    repo = RepoBuilder.create(tmp_path_factory.mktemp("blocks") / "r")
    shas = [
        repo.commit("Add role and node group", {"main.tf": ROLE % ("role", "") + GROUP % 2}, author=ALICE),
        repo.commit("Grow the node group", {"main.tf": ROLE % ("role", "") + GROUP % 3}, author=BOB, days=1),
        repo.commit(
            "Fix role name", {"main.tf": REGION + ROLE % ("role2", "") + GROUP % 3}, author=ALICE, days=2
        ),
        repo.commit("Drop the node group", {"main.tf": REGION + ROLE % ("role2", "")}, author=BOB, days=1),
        # Formatting only: no block changes.
        repo.commit(
            "Align", {"main.tf": REGION + ROLE.replace("name =", "name   =") % ("role2", "")}, days=0.5
        ),
    ]
    repo.move("main.tf", "iam.tf")
    shas.append(repo.commit("Move to iam.tf", author=ALICE, days=0.5))
    shas.append(
        repo.commit(
            "Tag the role",
            {"iam.tf": REGION + ROLE.replace("name =", "name   =") % ("role2", "  tags = {}\n")},
            author=BOB,
            days=1,
        )
    )
    return repo.path, shas


def test_every_changed_block_and_its_features(history: tuple[Path, list[str]]) -> None:
    path, shas = history
    result = block_features(GitRepo.open(path))
    frame = result.frame
    assert list(frame.columns) == list(BLOCK_COLUMNS)
    assert (result.commits, result.tf_files, result.unread_files) == (7, 7, 0)
    got = [(shas.index(r.sha), r.path, r.address, r.change) for r in frame.itertuples(index=False)]
    assert got == [
        (0, "main.tf", "aws_iam_role.this", "added"),
        (0, "main.tf", "module.eks_managed_node_group", "added"),
        (1, "main.tf", "module.eks_managed_node_group", "changed"),
        (2, "main.tf", "var.region", "added"),
        (2, "main.tf", "aws_iam_role.this", "changed"),
        (3, "main.tf", "module.eks_managed_node_group", "removed"),
        # "Align" and the pure rename change no block
        (6, "iam.tf", "aws_iam_role.this", "changed"),
    ]
    rows = frame.set_index(["sha", "address"])

    def features(k: int, address: str, *names: str) -> tuple[float, ...]:
        row = rows.loc[(shas[k], address)]
        return tuple(float(row[n]) for n in names)

    basic = ("blk_attributes", "blk_depth", "blk_lines", "blk_file_blocks", "blk_la", "blk_ld", "churn")
    # The first role: 2 attributes, depth 1, lines 1-4; all 4 lines added; 2 blocks in the file.
    assert features(0, "aws_iam_role.this", *basic) == (2, 1, 4, 2, 4, 0, 4)
    assert features(0, "aws_iam_role.this", "blk_kind_resources", "blk_added", "blk_members_added") == (
        1,
        1,
        2,
    )
    # Bob's size change: one member changed, one line replaced; the block is 1 day old, changed once
    # before (by Alice), a module changed once before; Bob never touched it nor the file.
    assert features(
        1,
        "module.eks_managed_node_group",
        "blk_members_changed",
        "blk_la",
        "blk_ld",
        "blk_age",
        "blk_since_change",
        "blk_changes",
        "blk_authors",
        "blk_type_changes",
        "blk_author_changes",
        "blk_author_file_changes",
        "blk_kind_modules",
    ) == (1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1)
    # The fix renames the role (day 3) and adds a variable: a fix changing 2 blocks; the role was last
    # changed on day 0 by Alice herself, who touched the file once (commit 0).
    assert features(
        2,
        "aws_iam_role.this",
        "blk_fix",
        "blk_commit_blocks",
        "blk_age",
        "blk_since_change",
        "blk_changes",
        "blk_fixes",
        "blk_author_changes",
        "blk_author_file_changes",
        "blk_file_blocks",
    ) == (1, 2, 3, 3, 1, 0, 1, 1, 3)
    assert features(
        2, "var.region", "blk_added", "blk_la", "blk_age", "blk_changes", "blk_kind_variables"
    ) == (
        1,
        1,
        0,
        0,
        1,
    )
    # Bob removes the module (day 4): its 4 lines deleted; measured on the parent's version; 2 past
    # changes by 2 authors, Bob's one of them; modules changed twice before.
    assert features(
        3,
        "module.eks_managed_node_group",
        "blk_removed",
        "blk_lines",
        "blk_la",
        "blk_ld",
        "blk_age",
        "blk_since_change",
        "blk_changes",
        "blk_authors",
        "blk_author_changes",
        "blk_type_changes",
    ) == (1, 4, 0, 4, 4, 3, 2, 2, 1, 2)
    # After the rename the role keeps its history: first seen day 0, last changed by the fix on day 3,
    # changed twice (once by a fix), by Alice only; Bob touched the file twice (commits 1 and 3).
    assert features(
        6,
        "aws_iam_role.this",
        "blk_members_added",
        "blk_la",
        "blk_ld",
        "blk_age",
        "blk_since_change",
        "blk_changes",
        "blk_fixes",
        "blk_authors",
        "blk_author_changes",
        "blk_author_file_changes",
        "blk_type_changes",
        "blk_type_fixes",
    ) == (1, 1, 0, 6, 3, 2, 1, 1, 0, 2, 2, 1)
    assert frame[list(BLOCK_FEATURES)].notna().all().all()


def test_nothing_leaks_from_later_commits(history: tuple[Path, list[str]]) -> None:
    """The rows of the first commits are the same whether or not the later history exists."""
    path, shas = history
    repo = GitRepo.open(path)
    full = block_features(repo).frame
    for k in (2, 3):
        early = block_features(repo, revision=shas[k]).frame
        same = full.loc[full["sha"].isin(shas[: k + 1])].reset_index(drop=True)
        pd.testing.assert_frame_equal(early, same)


def test_the_cache_serves_its_head_only(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, shas = history
    repo = GitRepo.open(path)
    cache = tmp_path / "blocks.parquet"
    first = cached_block_features(repo, cache, shas[3])
    assert set(first["sha"]) == set(shas[:4])
    # Same head: read back as written; a table of another version's columns is mined again.
    pd.testing.assert_frame_equal(cached_block_features(repo, cache, shas[3]), first)
    first.drop(columns=["blk_fix"]).to_parquet(cache)
    pd.testing.assert_frame_equal(cached_block_features(repo, cache, shas[3]), first)
    # A head that adds newer commits continues the pass from the saved history: the same rows as one pass.
    pd.testing.assert_frame_equal(cached_block_features(repo, cache, shas[-1]), block_features(repo).frame)


def test_a_merged_older_branch_mines_the_whole_history(tmp_path: Path) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    text = ROLE % ("a", "") + GROUP % 2
    base = repo.commit("Add role and group", {"main.tf": text}, when=EPOCH)
    repo.git("checkout", "-q", "-b", "side")
    side = repo.commit(
        "Grow group", {"main.tf": ROLE % ("a", "") + GROUP % 3}, when=EPOCH + timedelta(days=5)
    )
    repo.git("checkout", "-q", "main")
    head = repo.commit(
        "Rename role", {"main.tf": ROLE % ("b", "") + GROUP % 2}, when=EPOCH + timedelta(days=10)
    )
    cache = tmp_path / "blocks.parquet"
    git = GitRepo.open(repo.path)
    cached_block_features(git, cache, head)
    stamp = (EPOCH + timedelta(days=11)).isoformat()
    repo.git(
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge side",
        "side",
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
    )
    merged = repo.head()
    # The merge brings `side`, dated before `head`: in one pass over the history it comes before `head`, so
    # continuing the saved pass after `head` would give other rows. The whole history is read again.
    frame = cached_block_features(git, cache, merged)
    pd.testing.assert_frame_equal(frame, block_features(git).frame)
    assert list(frame["sha"]) == [base, base, side, head]
    # Alice made all three: by `head` (day 10) she had changed main.tf twice (day 0 and, on the side, day 5).
    assert frame.iloc[3]["blk_author_file_changes"] == 2
