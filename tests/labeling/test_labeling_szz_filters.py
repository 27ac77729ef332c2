"""AG-SZZ's filters (non-source files, large fixes, ignore-revs), the issue-date filter, issue-list fixes, and
merges: line origins through merges must be what ``git blame`` reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from defectops.data import VERDICT
from defectops.labeling.issues import Issue, IssueList
from gitrepo import RepoBuilder


def test_non_source_files_are_skipped_by_ag(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    first = repo.commit("Add code and docs", {"app.py": "a = 1\nb = 2\n", "README.md": "Usage\nRun it\n"})
    fix = repo.commit(
        "Fix bad default", {"app.py": "a = 1\nb = 3\n", "README.md": "Usage\nRun it twice\n"}, days=1
    )
    # app.py line 2 and README.md line 2 both come from `first`; AG-SZZ keeps only the source file.
    ag = run_labels(repo.path, variant="ag", rebuild=True)
    assert link_set(ag.links) == {(fix, first, "app.py", (2,), "szz:message")}
    b = run_labels(repo.path, variant="b", rebuild=True)
    assert link_set(b.links) == {
        (fix, first, "README.md", (2,), "szz:message"),
        (fix, first, "app.py", (2,), "szz:message"),
    }


def test_fix_touching_only_non_source_files_is_unlinkable_in_ag(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add docs", {"guide.rst": "Title\nOld text\n"})
    fix = repo.commit("Fix wrong example", {"guide.rst": "Title\nNew text\n"}, days=1)
    ag = run_labels(repo.path)
    assert link_set(ag.links) == {(fix, None, None, (), "unlinkable:no-line-changes")}


def test_fixes_touching_too_many_files_are_skipped(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    first = repo.commit("Add modules", {"a.py": "x = 1\n", "b.py": "y = 1\n", "c.py": "z = 1\n"})
    fix = repo.commit("Fix constants", {"a.py": "x = 2\n", "b.py": "y = 2\n", "c.py": "z = 2\n"}, days=1)
    # Three files touched, limit two: AG-SZZ skips the fix; B-SZZ has no limit.
    ag = run_labels(repo.path, variant="ag", max_fix_files=2, rebuild=True)
    assert link_set(ag.links) == {(fix, None, None, (), "unlinkable:too-many-files(3>2)")}
    b = run_labels(repo.path, variant="b", max_fix_files=2, rebuild=True)
    assert {(row[1], row[2]) for row in link_set(b.links)} == {
        (first, "a.py"),
        (first, "b.py"),
        (first, "c.py"),
    }


def test_ignore_revs_file(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    origin = repo.commit("Add names", {"names.py": "first = 'a'\nsecond = 'b'\n"})
    style = repo.commit("Use double quotes", {"names.py": 'first = "a"\nsecond = "b"\n'}, days=1)
    repo.commit("Ignore the quote change in blame", {".git-blame-ignore-revs": f"# style\n{style}\n"}, days=1)
    fix = repo.commit("Fix second name", {"names.py": 'first = "a"\nsecond = "c"\n'}, days=1)
    # The style commit is ignored: its line 2 inherits the origin of the line it replaced (`origin`).
    ag = run_labels(repo.path, variant="ag", rebuild=True)
    assert link_set(ag.links) == {(fix, origin, "names.py", (2,), "szz:message")}
    assert ag.summary.ignored_revs == 1
    b = run_labels(repo.path, variant="b", rebuild=True)
    assert link_set(b.links) == {(fix, style, "names.py", (2,), "szz:message")}


def test_issue_list_decides_and_dates_filter(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    early = repo.commit("Add parser", {"p.py": "a = 1\nb = 1\nc = 1\n"})  # 2020-01-01
    late = repo.commit("Tune b", {"p.py": "a = 1\nb = 2\nc = 1\n"}, days=10)  # 2020-01-11
    # "#7" is a bug reported on 2020-01-05: between `early` and `late`, so `late` cannot have caused it.
    fix = repo.commit("Handle negative input (#7)", {"p.py": "a = 0\nb = 0\nc = 1\n"}, days=10)
    # "#8" is a feature request: a fix keyword does not make this a fix when the list knows the issue.
    repo.commit("Fix up API for #8", {"p.py": "a = 0\nb = 0\nc = 2\n"}, days=1)
    issues = IssueList(
        {
            "7": Issue("7", True, datetime(2020, 1, 5, tzinfo=UTC)),
            "8": Issue("8", False, datetime(2020, 1, 6, tzinfo=UTC)),
        }
    )
    result = run_labels(repo.path, issues=issues)
    # Lines 1 (from `early`) and 2 (from `late`) are changed; the date filter drops `late`.
    assert link_set(result.links) == {(fix, early, "p.py", (1,), "szz:issue:7")}
    assert result.summary.dropped_lines["issue-date"] == 1
    assert result.labels.set_index("sha").loc[late, VERDICT] == "clean"

    unfiltered = run_labels(repo.path, issues=issues, issue_date_filter=False)
    assert {row[1] for row in link_set(unfiltered.links)} == {early, late}


def test_issue_date_filter_can_leave_nothing(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add parser", {"p.py": "a = 1\n"})
    fix = repo.commit("Correct parser for gh-3", {"p.py": "a = 2\n"}, days=10)
    issues = IssueList(
        {"3": Issue("3", True, datetime(2019, 6, 1, tzinfo=UTC))}
    )  # reported before any commit
    result = run_labels(repo.path, issues=issues)
    assert link_set(result.links) == {(fix, None, None, (), "unlinkable:issue-date")}


def test_merges_follow_blame(tmp_path: Path, run_labels, link_set, check_blame) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    lines = [f"v{i} = {i}\n" for i in range(10)]
    repo.commit("Add table", {"t.py": "".join(lines)})
    repo.git("checkout", "-q", "-b", "feature")
    feat = list(lines)
    feat[1] = "v1 = 100\n"
    side = repo.commit("Change v1 on a branch", {"t.py": "".join(feat)}, days=1)
    repo.git("checkout", "-q", "main")
    main = list(lines)
    main[7] = "v7 = 700\n"
    mainline = repo.commit("Change v7 on main", {"t.py": "".join(main)}, days=1)
    # Merge with an extra edit of line 5 (an "evil merge"): the file differs from both parents.
    repo.git("merge", "-q", "--no-ff", "--no-commit", "feature")
    merged = list(main)
    merged[1] = "v1 = 100\n"
    merged[4] = "v4 = 44\n"
    merge = repo.commit("Merge branch 'feature'", {"t.py": "".join(merged)}, days=1)
    fixed = list(merged)
    fixed[1] = "v1 = 1\n"
    fixed[4] = "v4 = 4\n"
    fixed[7] = "v7 = 7\n"
    fix = repo.commit("Fix wrong values", {"t.py": "".join(fixed)}, days=1)

    # Line 2 came from the branch, line 8 from main, line 5 from the merge itself.
    result = run_labels(repo.path)
    assert link_set(result.links) == {
        (fix, side, "t.py", (2,), "szz:message"),
        (fix, merge, "t.py", (5,), "szz:message"),
        (fix, mainline, "t.py", (8,), "szz:message"),
    }
    assert result.summary.pass_stats.merge_files_resolved == 1
    assert result.summary.pass_stats.merge_files_aligned_here == 0  # git's combined diff was used
    assert check_blame(repo.path, result.links, True) == 3


def test_merge_taking_the_branch_version_whole(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add a", {"a.py": "x = 1\ny = 1\n", "b.py": "z = 1\n"})
    repo.git("checkout", "-q", "-b", "topic")
    side = repo.commit("Change y on topic", {"a.py": "x = 1\ny = 2\n"}, days=1)
    repo.git("checkout", "-q", "main")
    repo.commit("Change b on main", {"b.py": "z = 2\n"}, days=1)
    repo.git("merge", "-q", "--no-ff", "--no-commit", "topic")
    repo.commit("Merge topic", days=1)
    fix = repo.commit("Fix y", {"a.py": "x = 1\ny = 1\n"}, days=1)
    # a.py of the merge is the topic's blob: every line keeps the topic's origins (blame's same-blob rule).
    result = run_labels(repo.path)
    assert link_set(result.links) == {(fix, side, "a.py", (2,), "szz:message")}
    assert result.summary.pass_stats.merge_files_resolved == 0


def test_fingerprints_follow_gits_definition() -> None:
    from defectops.labeling.ignore_revs import fingerprint, similarity

    # "cat mat" -> pairs _c ca at t_ _m ma at t_ ; "father rather" shares only "at" (twice): 2.
    assert similarity(fingerprint(b"cat mat"), fingerprint(b"father rather")) == 2
    # "tim" and "mit" share no ordered pair: 0. Case and whitespace do not matter.
    assert similarity(fingerprint(b"tim"), fingerprint(b"mit")) == 0
    assert fingerprint(b"  Foo\tBar ") == fingerprint(b"foo bar")


def test_ignore_revs_rewrapped_lines_agree_with_git_blame(tmp_path: Path, run_labels, blame_origins) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    first = repo.commit("Add call", {"c.py": "def f():\n    return call(alpha, beta, gamma)\n\n\nx = 1\n"})
    repo.commit(
        "Add y", {"c.py": "def f():\n    return call(alpha, beta, gamma)\n\n\nx = 1\ny = 2\n"}, days=1
    )
    # A formatter re-wraps the call over several lines; the commit is listed as ignored for blame.
    wrapped = (
        "def f():\n    return call(\n        alpha,\n        beta,\n        gamma,\n    )\n\n\nx = 1\ny = 2\n"
    )
    style = repo.commit("Reformat", {"c.py": wrapped}, days=1)
    repo.commit("Ignore the formatter", {".git-blame-ignore-revs": f"{style}\n"}, days=1)
    fix = repo.commit(
        "Fix beta crash", {"c.py": wrapped.replace("        beta,\n", "        beta or 0,\n")}, days=1
    )

    result = run_labels(repo.path)
    # Line 4 ("beta,") was written by the ignored formatter; its closest old line is line 2 of `first`.
    links = {(row.inducing_sha, tuple(row.lines)) for row in result.links.itertuples()}
    assert links == {(first, (4,))}
    # git blame with the same ignore list says the same.
    ignore = tmp_path / "ignore"
    ignore.write_text(f"{style}\n")
    origins = blame_origins(repo.path, f"{fix}^", "c.py", True, ("--ignore-revs-file", str(ignore)))
    assert origins[3] == first
    assert origins[:6] == [first] * 6  # every line of the re-wrapped call goes back to `first`


def test_merge_of_a_branch_that_kept_the_old_name(tmp_path: Path, run_labels, link_set, check_blame) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    body = [f"value_{i} = {i}\n" for i in range(10)]
    repo.commit("Add module", {"old.py": "".join(body)})
    repo.git("checkout", "-q", "-b", "topic")
    body[1] = "value_1 = 11\n"
    side = repo.commit("Tune value one on a branch", {"old.py": "".join(body)}, days=1)
    repo.git("checkout", "-q", "main")
    repo.move("old.py", "new.py")
    repo.commit("Rename module on main", days=1)
    repo.git("merge", "-q", "--no-ff", "--no-commit", "topic")
    repo.commit("Merge topic", days=1)
    body[1] = "value_1 = 1\n"
    fix = repo.commit("Fix value one", {"new.py": "".join(body)}, days=1)
    # new.py of the merge differs from main's (the branch's edit) and exists on the branch only as old.py:
    # git's rename detection pairs them, and line 2 goes back to the branch commit, as blame says.
    result = run_labels(repo.path)
    assert link_set(result.links) == {(fix, side, "new.py", (2,), "szz:message")}
    assert check_blame(repo.path, result.links, True) == 1


def test_exact_copies_of_a_moved_file_keep_its_history(
    tmp_path: Path, run_labels, link_set, check_blame
) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    text = "".join(f"setting_{i} = {i}\n" for i in range(8))
    first = repo.commit("Add info", {"basic/info.py": text})
    # One commit moves the file and adds two identical copies elsewhere: git log pairs the move with one
    # destination; git blame follows each copy to the deleted original as well.
    repo.move("basic/info.py", "fft/info.py")
    repo.commit("Split packages", {"linalg/info.py": text, "random/info.py": text}, days=1)
    fix = repo.commit(
        "Fix setting 3", {"random/info.py": text.replace("setting_3 = 3", "setting_3 = 30")}, days=1
    )
    result = run_labels(repo.path)
    assert link_set(result.links) == {(fix, first, "random/info.py", (4,), "szz:message")}
    assert check_blame(repo.path, result.links, True) == 1
