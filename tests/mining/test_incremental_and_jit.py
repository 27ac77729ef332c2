"""Incremental mining and just-in-time scoring must give exactly the values of a full-history run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from defectops.config import Workspace
from defectops.data.columns import METRIC_NAMES, RICH_FEATURES
from defectops.data.mined import read_table
from defectops.errors import StateError
from defectops.git.repo import GitRepo
from defectops.mining.engine import MineOptions, Miner
from gitrepo import BOB, RepoBuilder
from sample_repos import build_handworked, build_with_merges


def full_history(repo: RepoBuilder, root: Path) -> pd.DataFrame:
    miner = Miner(GitRepo.open(repo.path), Workspace(root).ensure(), MineOptions(workers=2))
    return read_table(miner.mine().dataset).set_index("sha")


@pytest.fixture(params=["handworked", "merges"])
def any_repo(request: pytest.FixtureRequest, tmp_path: Path) -> RepoBuilder:
    builder = build_handworked if request.param == "handworked" else build_with_merges
    return builder(tmp_path / "repo")


def assert_same_metrics(actual: pd.Series, expected: pd.Series, sha: str) -> None:
    for name in (*METRIC_NAMES, *RICH_FEATURES):
        a, e = actual[name], expected[name]
        if pd.isna(e):
            assert pd.isna(a), (sha, name)
        else:
            assert a == e, (sha, name, a, e)  # exact: the same code path, the same arithmetic


def test_jit_equals_full_history_on_every_commit(any_repo: RepoBuilder, tmp_path: Path) -> None:
    full = full_history(any_repo, tmp_path / "full")
    order = any_repo.git("rev-list", "--topo-order", "--reverse", "HEAD").split()
    for i in range(1, len(order)):
        any_repo.git("branch", "-f", "upto", order[i - 1])
        workspace = Workspace(tmp_path / f"jit{i}").ensure()
        miner = Miner(GitRepo.open(any_repo.path), workspace, MineOptions(rev="upto", workers=1))
        miner.mine()
        scored = miner.score([order[i]]).set_index("sha")
        assert list(scored.index) == [order[i]]
        assert_same_metrics(scored.loc[order[i]], full.loc[order[i]], order[i])


def test_jit_range_equals_full_history(handworked: RepoBuilder, tmp_path: Path) -> None:
    full = full_history(handworked, tmp_path / "full")
    handworked.git("branch", "-f", "base", handworked.shas[2])
    miner = Miner(GitRepo.open(handworked.path), Workspace(tmp_path / "ws").ensure(), MineOptions(rev="base"))
    miner.mine()
    scored = miner.score([f"{handworked.shas[2]}..{handworked.shas[6]}"]).set_index("sha")
    assert list(scored.index) == handworked.shas[3:7]
    for sha in handworked.shas[3:7]:
        assert_same_metrics(scored.loc[sha], full.loc[sha], sha)


def test_jit_of_already_mined_commit_reads_the_dataset(handworked: RepoBuilder, workspace: Workspace) -> None:
    miner = Miner(GitRepo.open(handworked.path), workspace)
    full = read_table(miner.mine().dataset).set_index("sha")
    scored = miner.score([handworked.shas[4]]).set_index("sha")
    assert_same_metrics(scored.loc[handworked.shas[4]], full.loc[handworked.shas[4]], handworked.shas[4])


def test_jit_leaves_the_stored_state_unchanged(handworked: RepoBuilder, tmp_path: Path) -> None:
    handworked.git("branch", "-f", "base", handworked.shas[3])
    miner = Miner(GitRepo.open(handworked.path), Workspace(tmp_path / "ws").ensure(), MineOptions(rev="base"))
    miner.mine()
    before = miner.store.path.read_bytes()
    miner.score([handworked.shas[6]])
    assert miner.store.path.read_bytes() == before


def test_jit_without_state_is_a_clear_error(handworked: RepoBuilder, workspace: Workspace) -> None:
    miner = Miner(GitRepo.open(handworked.path), workspace)
    with pytest.raises(StateError, match="no miner state"):
        miner.score(["HEAD"])


def test_incremental_run_reads_only_new_commits(any_repo: RepoBuilder, tmp_path: Path) -> None:
    full = full_history(any_repo, tmp_path / "full")
    order = any_repo.git("rev-list", "--topo-order", "--reverse", "HEAD").split()
    any_repo.git("branch", "-f", "work", order[3])
    miner = Miner(GitRepo.open(any_repo.path), Workspace(tmp_path / "inc").ensure(), MineOptions(rev="work"))
    first = miner.mine()
    reachable = int(any_repo.git("rev-list", "--count", order[3]))
    assert first.new_commits == reachable
    any_repo.git("branch", "-f", "work", order[-1])
    second = miner.mine()
    assert second.new_commits == len(order) - reachable
    assert second.rebuilt is None
    assert second.commits == len(order)
    assert miner.mine().new_commits == 0  # nothing new: nothing read
    incremental = read_table(second.dataset).set_index("sha")
    assert sorted(incremental.index) == sorted(full.index)
    for sha in order:
        assert_same_metrics(incremental.loc[sha], full.loc[sha], sha)


def test_rewritten_history_is_detected_and_rebuilt(handworked: RepoBuilder, tmp_path: Path) -> None:
    miner = Miner(GitRepo.open(handworked.path), Workspace(tmp_path / "ws").ensure())
    miner.mine()
    handworked.git("reset", "-q", "--hard", handworked.shas[4])
    handworked.commit("a different ending", {"README": "rewritten\n"}, author=BOB, days=3)
    result = miner.mine()
    assert result.rebuilt is not None
    assert "rewritten" in result.rebuilt
    frame = read_table(result.dataset)
    assert len(frame) == 6
    assert handworked.shas[6] not in set(frame["sha"])  # the dropped commits are gone
    assert frame.iloc[-1]["message"] == "a different ending"


def test_merge_commits_are_recorded_but_not_scored(tmp_path: Path) -> None:
    repo = build_with_merges(tmp_path / "repo")
    frame = full_history(repo, tmp_path / "ws")
    merge = frame.loc[repo.shas[5]]
    assert bool(merge["is_merge"]) is True
    assert all(pd.isna(merge[name]) for name in METRIC_NAMES)
    scored = frame[~frame["is_merge"]]
    assert scored["nf"].notna().all()
    # "after merge" (bob): core/y.c was last changed by carol's feature commit, ui/z.js too.
    after = frame.loc[repo.shas[6]]
    assert after["ndev"] == 2  # y.c {alice, carol} u z.js {carol} = {alice, carol}
    assert after["nuc"] == 2  # y.c last changed in "feature: y", z.js in "feature: fix bug in z"
    assert after["lt"] == 12 + 4  # y.c had 12 lines and z.js 4 (3 + "zz") before the change


def test_state_export_and_import_round_trip(handworked: RepoBuilder, tmp_path: Path) -> None:
    full = full_history(handworked, tmp_path / "full")
    handworked.git("branch", "-f", "base", handworked.shas[4])
    exporter = Miner(
        GitRepo.open(handworked.path), Workspace(tmp_path / "a").ensure(), MineOptions(rev="base")
    )
    exporter.mine()
    exported = tmp_path / "state.sqlite"
    exporter.store.export_to(exported)
    importer = Miner(
        GitRepo.open(handworked.path), Workspace(tmp_path / "b").ensure(), MineOptions(rev="base")
    )
    info = importer.store.import_from(exported, importer.repo)
    assert info.head == handworked.shas[4]
    scored = importer.score([handworked.shas[6]]).set_index("sha")
    assert_same_metrics(scored.loc[handworked.shas[6]], full.loc[handworked.shas[6]], handworked.shas[6])
