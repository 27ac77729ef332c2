"""The one-pass line tracker against ``git blame`` on a generated history, and incremental runs against full
ones: new commits must extend the labels exactly as a full rebuild would compute them."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from defectops.data import VERDICT
from defectops.errors import ShallowCloneError
from defectops.git.repo import GitRepo
from defectops.labeling.history import read_history
from defectops.labeling.lines import CommitNode, LineTracker
from gitrepo import RepoBuilder


def _mutate(rng: random.Random, text: str, tag: str) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        k = rng.randrange(len(lines) + 1)
        if op < 0.35 or not lines:
            lines.insert(k, f"{tag}_{rng.randrange(1000)} = {rng.randrange(9)}\n")
        elif op < 0.55:
            del lines[min(k, len(lines) - 1)]
        elif op < 0.7:
            j = min(k, len(lines) - 1)
            lines[j] = "    " + lines[j]  # whitespace only
        else:
            lines[min(k, len(lines) - 1)] = f"{tag} = {rng.randrange(99)}\n"
    return "".join(lines)


def _history(path: Path, seed: int, commits: int) -> RepoBuilder:
    """A random history: a branch that diverges from main, both sides editing the same files, merged twice
    (conflicts resolved with ``-X ours``), a rename on main, whitespace-only edits, and many fixes."""
    rng = random.Random(seed)
    repo = RepoBuilder.create(path)
    repo.commit(
        "Add modules", {f"m{i}.py": "".join(f"v{i}_{k} = {k}\n" for k in range(12)) for i in range(3)}
    )
    repo.git("branch", "side")
    branch = "main"
    for n in range(commits):
        if n in (commits // 2, commits - 5):
            repo.git("checkout", "-q", "main")
            repo.git("merge", "-q", "--no-ff", "-X", "ours", "--no-commit", "side")
            repo.commit(f"Merge side {n}", days=1)
            repo.git("checkout", "-q", "side")
            repo.git("merge", "-q", "main")
            branch = "side"
            continue
        wanted = "main" if n < commits // 5 else rng.choice(["main", "side"])
        if wanted != branch:
            repo.git("checkout", "-q", wanted)
            branch = wanted
        if n == commits // 3 and branch == "main" and (repo.path / "m0.py").exists():
            repo.move("m0.py", "pkg/m0.py")
        names = sorted(repo.git("ls-files").split())
        name = rng.choice(names)
        text = _mutate(rng, (repo.path / name).read_text(), f"c{n}")
        message = "Fix wrong value" if rng.random() < 0.5 else f"Change {name}"
        repo.commit(message, {name: text}, days=1)
    repo.git("checkout", "-q", "main")
    return repo


@pytest.mark.parametrize("whitespace", [True, False])
def test_tracker_agrees_with_git_blame_on_every_fix(tmp_path: Path, whitespace: bool, blame_origins) -> None:
    repo = _history(tmp_path / "r", seed=7, commits=60)
    git = GitRepo.open(repo.path)
    history = read_history(git, ["HEAD"])
    index = {c.sha: i for i, c in enumerate(history)}
    order = [CommitNode(i, c.sha, tuple(index[p] for p in c.parents)) for i, c in enumerate(history)]
    fixes = {i for i, c in enumerate(history) if not c.is_merge}  # record every commit's deleted lines
    result = LineTracker(git, ignore_whitespace=whitespace, fixes=fixes).run(
        order, ["HEAD"], tip=len(order) - 1
    )
    assert result.stats.merges == 2
    assert result.stats.merge_files_resolved >= 1
    assert result.stats.merge_files_aligned_here == 0
    checked = 0
    for record in result.deleted:
        origins = blame_origins(repo.path, f"{history[record.fix].sha}^", record.path.decode(), whitespace)
        for k, origin in enumerate(record.origins):
            assert origins[record.start - 1 + k] == history[origin].sha
            checked += 1
    assert checked > 20


def test_incremental_equals_full(tmp_path: Path, run_labels, workspace) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    body = [f"x{i} = {i}\n" for i in range(8)]
    repo.commit("Add x", {"x.py": "".join(body)})
    body[2] = "x2 = 20\n"
    bug = repo.commit("Tune x2", {"x.py": "".join(body)}, days=1)
    old_tip = repo.commit("Add y", {"y.py": "y = 1\n"}, days=1)

    first = run_labels(repo.path)
    assert first.summary.mode == "full"
    assert first.labels.set_index("sha").loc[bug, VERDICT] == "clean"

    # New work: a branch forked from an old commit (not the stored tip), merged back, and a fix of `bug`.
    repo.git("checkout", "-q", "-b", "old", bug)
    side = repo.commit(
        "Rename y on an old branch", {"z.py": "z = 1\n", "x.py": "".join(body) + "x8 = 8\n"}, days=1
    )
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "--no-commit", "old")
    repo.commit("Merge old", days=1)
    body[2] = "x2 = 2\n"
    fix = repo.commit("Fix x2 crash", {"x.py": "".join(body) + "x8 = 9\n"}, days=1)

    again = run_labels(repo.path)
    assert again.summary.mode == "incremental"
    assert again.summary.new_commits == 3
    assert again.summary.pass_stats.lazy_files >= 1  # the old branch's parent state was loaded with blame
    full = run_labels(repo.path, rebuild=True)
    assert full.summary.mode == "full"
    pd.testing.assert_frame_equal(again.labels, full.labels)
    pd.testing.assert_frame_equal(
        again.links.sort_values(["fix_sha", "path"]).reset_index(drop=True),
        full.links.sort_values(["fix_sha", "path"]).reset_index(drop=True),
    )
    labels = full.labels.set_index("sha")
    assert labels.loc[bug, VERDICT] == "defect"  # line 3 of x.py, changed by the fix
    assert labels.loc[side, VERDICT] == "defect"  # line 9 ("x8 = 8") came from the old branch
    assert {tuple(r) for r in full.links[["fix_sha", "inducing_sha"]].itertuples(index=False)} == {
        (fix, bug),
        (fix, side),
    }
    assert old_tip in set(full.labels["sha"])

    # With more new commits than allowed, a run redoes the whole history (faster then), with the same result.
    repo.commit("Add w", {"w.py": "w = 1\n"}, days=1)
    repo.commit("Add v", {"v.py": "v = 1\n"}, days=1)
    capped = run_labels(repo.path, max_incremental_commits=1)
    assert capped.summary.mode == "full"
    assert "2 new commits" in capped.summary.notice
    full = run_labels(repo.path, rebuild=True)

    unchanged = run_labels(repo.path)
    assert unchanged.summary.mode == "unchanged"
    assert unchanged.summary.new_commits == 0
    pd.testing.assert_frame_equal(unchanged.labels, full.labels)


def test_settings_change_or_rewritten_history_rebuilds(tmp_path: Path, run_labels) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add a", {"a.py": "a = 1\n"})
    repo.commit("Add b", {"b.py": "b = 1\n"}, days=1)
    run_labels(repo.path)
    changed = run_labels(repo.path, max_fix_files=5)
    assert changed.summary.mode == "full"
    assert "settings changed" in changed.summary.notice
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.commit("Add c instead", {"c.py": "c = 1\n"}, days=1)
    rewritten = run_labels(repo.path, max_fix_files=5)
    assert rewritten.summary.mode == "full"
    assert "not an ancestor" in rewritten.summary.notice


def test_shallow_clone_is_refused(tmp_path: Path, run_labels) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add a", {"a.py": "a = 1\n"})
    repo.commit("Add b", {"b.py": "b = 1\n"}, days=1)
    clone = tmp_path / "shallow"
    repo.git("clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone))
    with pytest.raises(ShallowCloneError, match="shallow"):
        run_labels(clone)
