"""A miner state is bound to its repository and never silently wrong when it and the clone do not meet.

The cases CI meets: a state of another project, a second clone, a shallow clone that has or lacks the
state's head, a state behind the scored commits, and a force-push between export and import.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from defectops.ci.predict import ensure_state
from defectops.config import Workspace
from defectops.errors import ForeignStateError
from defectops.git import GitRepo
from defectops.mining import MineOptions, Miner
from defectops.mining.identity import RepositoryIdentity, normalise_remote
from gitrepo import BOB, EPOCH, RepoBuilder, lines
from mining.test_mine_cli import one_line_error, run_cli


def _project(path: Path, first_line: str = "a") -> RepoBuilder:
    """Six commits, one a day from 2020-01-02; c1..c6 are ``shas[0..5]``."""
    repo = RepoBuilder.create(path)
    for day in range(1, 7):
        author = BOB if day % 2 else None
        files = {"src/a.py": lines(day, first_line), f"src/f{day}.py": lines(2)}
        if author is None:
            repo.commit(f"change {day}", files, when=EPOCH + timedelta(days=day))
        else:
            repo.commit(f"change {day}", files, when=EPOCH + timedelta(days=day), author=author)
    return repo


def _clone(source: Path, target: Path, *args: str) -> GitRepo:
    subprocess.run(["git", "clone", "-q", *args, f"file://{source}", str(target)], check=True)
    return GitRepo.open(target)


def _export(repo: RepoBuilder, rev: str, tmp_path: Path) -> Path:
    """Mine ``repo`` up to ``rev`` in a workspace of its own and export the state."""
    repo.git("branch", "-f", "exported", rev)
    miner = Miner(
        GitRepo.open(repo.path), Workspace(tmp_path / "exporter").ensure(), MineOptions(rev="exported")
    )
    miner.mine()
    out = tmp_path / "state.sqlite"
    miner.store.export_to(out)
    return out


def _importer(clone: GitRepo, tmp_path: Path, state: Path) -> Miner:
    miner = Miner(clone, Workspace(tmp_path / "ci").ensure(), MineOptions(rev="HEAD", allow_shallow=True))
    miner.store.import_from(state, clone)
    return miner


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/Org/Repo.git", "github.com/org/repo"),
        ("https://x-access-token:SECRET@github.com/org/repo/", "github.com/org/repo"),
        ("git@github.com:Org/Repo.git", "github.com/org/repo"),
        ("ssh://git@github.com/org/repo.git", "github.com/org/repo"),
        ("file:///srv/git/repo.git", "/srv/git/repo"),
        ("/srv/git/repo/", "/srv/git/repo"),
        ("", ""),
    ],
)
def test_remote_urls_are_normalised_to_what_every_clone_shares(url: str, expected: str) -> None:
    assert normalise_remote(url) == expected


def test_the_state_records_roots_remote_and_head_time(tmp_path: Path) -> None:
    repo = _project(tmp_path / "p")
    repo.git("remote", "add", "origin", "git@github.com:Org/P.git")
    miner = Miner(GitRepo.open(repo.path), Workspace(tmp_path / "ws").ensure())
    miner.mine()
    info = miner.store.info()
    assert info is not None
    assert info.roots == (repo.shas[0],)
    assert info.remote == "github.com/org/p"
    assert info.head_time == (EPOCH + timedelta(days=6)).timestamp()


def test_a_state_of_another_repository_is_refused_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flask = _project(tmp_path / "flask", first_line="flask")
    requests = _project(tmp_path / "requests", first_line="requests")
    state = _export(flask, "HEAD", tmp_path)
    code, _, err = run_cli(
        ["-w", str(tmp_path / "ws"), "state", "import", "--repo", str(requests.path), str(state)], capsys
    )
    assert code == 2
    assert "belongs to another repository" in one_line_error(err)
    with pytest.raises(ForeignStateError):
        Miner(GitRepo.open(requests.path), Workspace(tmp_path / "ws2")).store.import_from(
            state, GitRepo.open(requests.path)
        )


def test_two_clones_in_different_folders_share_one_identity_and_one_state(tmp_path: Path) -> None:
    origin = _project(tmp_path / "origin")
    first = _clone(origin.path, tmp_path / "a" / "clone")
    second = _clone(origin.path, tmp_path / "b" / "elsewhere")
    assert RepositoryIdentity.of(first) == RepositoryIdentity.of(second)
    state = _export(origin, "HEAD", tmp_path)
    assert _importer(second, tmp_path, state).store.info() is not None


def test_a_shallow_clone_is_matched_by_its_remote_and_refused_on_another(tmp_path: Path) -> None:
    origin = _project(tmp_path / "origin")
    origin.git("remote", "add", "origin", "https://github.com/org/p.git")
    state = _export(origin, origin.shas[1], tmp_path)
    shallow = _clone(origin.path, tmp_path / "shallow", "--depth", "2")
    subprocess.run(
        ["git", "-C", str(shallow.path), "remote", "set-url", "origin", "git@github.com:Org/P"], check=True
    )
    assert _importer(shallow, tmp_path, state).store.info() is not None
    subprocess.run(
        ["git", "-C", str(shallow.path), "remote", "set-url", "origin", "git@github.com:org/q"], check=True
    )
    with pytest.raises(ForeignStateError, match=r"mined from github\.com/org/p, this is github\.com/org/q"):
        _importer(shallow, tmp_path / "again", state)


def test_a_state_behind_the_commits_catches_up_from_the_clone_exactly(tmp_path: Path) -> None:
    origin = _project(tmp_path / "origin")
    state = _export(origin, origin.shas[2], tmp_path)  # mined up to c3; c4..c6 are new
    shallow = _clone(origin.path, tmp_path / "shallow", "--depth", "4")  # c3..c6: the state's head is there
    jit = _importer(shallow, tmp_path, state).score_jit(["HEAD"])
    full = Miner(GitRepo.open(origin.path), Workspace(tmp_path / "full").ensure())
    full.mine()
    expected = full.score([origin.shas[5]])
    assert jit.notes == {}
    columns = ["ndev", "age", "nuc", "exp", "rexp", "sexp", "la", "ld"]
    assert jit.metrics[columns].to_dict("records") == expected[columns].to_dict("records")


def test_a_gap_the_clone_does_not_have_is_noted_on_each_commit_with_its_size(tmp_path: Path) -> None:
    origin = _project(tmp_path / "origin")
    state = _export(origin, origin.shas[1], tmp_path)  # mined up to c2 (2020-01-03)
    shallow = _clone(origin.path, tmp_path / "shallow", "--depth", "2")  # only c5 (01-06) and c6 (01-07)
    jit = _importer(shallow, tmp_path, state).score_jit(["HEAD"])
    (note,) = jit.notes.values()
    # c3 and c4 are missing: from the state's head on 2020-01-03 to the clone's oldest commit on 2020-01-06
    assert "lacks the 3.0 days of history" in note
    assert "age may be up to 3 days too high" in note
    assert "--shallow-since=2020-01-03" in note
    assert len(jit.metrics) == 1


def test_a_force_push_between_export_and_import(tmp_path: Path) -> None:
    origin = _project(tmp_path / "origin")
    state = _export(origin, "HEAD", tmp_path)  # mined up to c6
    origin.git("reset", "-q", "--hard", origin.shas[3])  # c5 and c6 are rewritten away
    origin.commit("rewritten", {"src/a.py": lines(9)}, when=EPOCH + timedelta(days=8))
    # A complete clone: the state is rebuilt from the clone's history, so the metrics are exact.
    complete = _clone(origin.path, tmp_path / "complete")
    miner = _importer(complete, tmp_path, state)
    said: list[str] = []
    ensure_state(miner, complete, ["HEAD"], said.append)
    assert any("mining the history instead" in s for s in said)
    info = miner.store.info()
    assert info is not None
    assert info.head == complete.resolve("HEAD")
    # A shallow clone that reaches back past the state's head but lacks it: scored, with a note.
    shallow = _clone(origin.path, tmp_path / "shallow", "--depth", "3")
    jit = _importer(shallow, tmp_path / "s", state).score_jit(["HEAD"])
    (note,) = jit.notes.values()
    assert "is not in this clone's history" in note
    assert "force-push" in note
