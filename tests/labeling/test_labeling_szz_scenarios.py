"""SZZ on purpose-built repositories whose defect-inducing commits are known by construction.

Every expected link is worked out by hand in the test: which commit last touched each line that the fix
deletes or changes, in the fix's parent, under the variant's rules. Each test also cross-checks the links with
``git blame`` (``-w`` for AG-SZZ) on the fix's parent.
"""

from __future__ import annotations

from pathlib import Path

from defectops.data import VERDICT
from gitrepo import RepoBuilder


def test_renamed_file(tmp_path: Path, run_labels, link_set, check_blame) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit(
        "Add parser", {"parser.py": "def parse(x):\n    return x + 1\n\n\ndef other():\n    return 2\n"}
    )
    bug = repo.commit(
        "Change parse offset",
        {"parser.py": "def parse(x):\n    return x - 1\n\n\ndef other():\n    return 2\n"},
        days=1,
    )
    repo.move("parser.py", "parsing.py")
    repo.commit("Rename parser module", days=1)
    fix = repo.commit(
        "Fix off-by-one in parse",
        {"parsing.py": "def parse(x):\n    return x + 1\n\n\ndef other():\n    return 2\n"},
        days=1,
    )

    # The fix changes line 2 of parsing.py; in its parent that line came from `bug` (the rename kept it).
    for variant in ("ag", "b"):
        result = run_labels(repo.path, variant=variant, rebuild=True)
        assert link_set(result.links) == {(fix, bug, "parsing.py", (2,), "szz:message")}
        assert check_blame(repo.path, result.links, variant == "ag") == 1


def test_whitespace_only_change_in_between(tmp_path: Path, run_labels, link_set, check_blame) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add calc", {"calc.py": "def f(a):\n    if a:\n        return a * 2\n    return 0\n"})
    bug = repo.commit(
        "Scale by three", {"calc.py": "def f(a):\n    if a:\n        return a * 3\n    return 0\n"}, days=1
    )
    reindent = repo.commit(
        "Reindent calc", {"calc.py": "def f(a):\n  if a:\n    return a * 3\n  return 0\n"}, days=1
    )
    fix = repo.commit(
        "Fix scaling bug", {"calc.py": "def f(a):\n  if a:\n    return a * 2\n  return 0\n"}, days=1
    )

    # Line 3 ("return a * 3"): AG-SZZ (blame -w) looks through the reindent to `bug`; B-SZZ stops at it.
    ag = run_labels(repo.path, variant="ag", rebuild=True)
    assert link_set(ag.links) == {(fix, bug, "calc.py", (3,), "szz:message")}
    assert check_blame(repo.path, ag.links, True) == 1
    b = run_labels(repo.path, variant="b", rebuild=True)
    assert link_set(b.links) == {(fix, reindent, "calc.py", (3,), "szz:message")}
    assert check_blame(repo.path, b.links, False) == 1


def test_whitespace_only_fix_lines_are_not_traced_by_ag(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    first = repo.commit("Add calc", {"calc.py": "def f(a):\n    return a\n"})
    second = repo.commit("Add g", {"calc.py": "def f(a):\n    return a\ndef g():\n    return 1\n"}, days=1)
    # The fix re-indents line 2 (whitespace only) and changes line 4.
    fix = repo.commit(
        "Fix g crash", {"calc.py": "def f(a):\n     return a\ndef g():\n    return 2\n"}, days=1
    )
    ag = run_labels(repo.path, variant="ag", rebuild=True)
    assert link_set(ag.links) == {(fix, second, "calc.py", (4,), "szz:message")}
    b = run_labels(repo.path, variant="b", rebuild=True)
    assert link_set(b.links) == {
        (fix, first, "calc.py", (2,), "szz:message"),
        (fix, second, "calc.py", (4,), "szz:message"),
    }


def test_comment_only_change(tmp_path: Path, run_labels, link_set, check_blame) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add loader", {"loader.py": "# Loads config\ndef load(p):\n    return open(p).read()\n"})
    explain = repo.commit(
        "Explain load",
        {"loader.py": "# Loads the configuration file\ndef load(p):\n    return open(p).read()\n"},
        days=1,
    )
    bug = repo.commit(
        "Strip loaded text",
        {"loader.py": "# Loads the configuration file\ndef load(p):\n    return open(p).read().strip()\n"},
        days=1,
    )
    fix = repo.commit(
        "Fix load on empty file",
        {
            "loader.py": "# Loads the config file, may be empty\ndef load(p):\n    return (open(p).read() or '').strip()\n"
        },
        days=1,
    )

    # The fix changes line 1 (a comment, last touched by `explain`) and line 3 (code, from `bug`).
    ag = run_labels(repo.path, variant="ag", rebuild=True)
    assert link_set(ag.links) == {(fix, bug, "loader.py", (3,), "szz:message")}
    assert ag.summary.dropped_lines["comment"] == 1
    b = run_labels(repo.path, variant="b", rebuild=True)
    assert link_set(b.links) == {
        (fix, explain, "loader.py", (1,), "szz:message"),
        (fix, bug, "loader.py", (3,), "szz:message"),
    }
    assert check_blame(repo.path, b.links, False) == 2


def test_fix_that_only_adds_lines_is_unlinkable(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add api", {"api.py": "def get(x):\n    return x\n"})
    fix = repo.commit(
        "Fix missing validation",
        {"api.py": "def get(x):\n    if x is None:\n        raise ValueError\n    return x\n"},
        days=1,
    )

    result = run_labels(repo.path)
    # Lines 2-3 are added; nothing is deleted or changed, so there is nothing to trace.
    assert link_set(result.links) == {(fix, None, None, (), "unlinkable:only-additions")}
    assert result.summary.new_unlinkable == {"only-additions": 1}
    assert set(result.labels[VERDICT]) == {"clean"}


def test_file_moved_after_the_bug(tmp_path: Path, run_labels, link_set, check_blame) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    body = [f"value_{i} = {i}\n" for i in range(10)]
    repo.commit("Add util", {"src/util.py": "".join(body)})
    body[4] = "value_4 = 40\n"
    bug = repo.commit("Tune value four", {"src/util.py": "".join(body)}, days=1)
    repo.move("src/util.py", "lib/helpers/util.py")
    body[0] = "value_0 = 0  # moved\n"  # a small edit with the move: git still sees a rename (90% similar)
    repo.commit("Move util into lib", {"lib/helpers/util.py": "".join(body)}, days=1)
    body[4] = "value_4 = 4\n"
    fix = repo.commit("Fix wrong value four", {"lib/helpers/util.py": "".join(body)}, days=1)

    # Line 5 of lib/helpers/util.py in the fix's parent was last changed by `bug`, before the move.
    result = run_labels(repo.path)
    assert link_set(result.links) == {(fix, bug, "lib/helpers/util.py", (5,), "szz:message")}
    assert check_blame(repo.path, result.links, True) == 1


def test_two_fixes_of_one_bug(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    base = [
        "def retry(op):\n",
        "    n = 0\n",
        "    tries = 3\n",
        "    while n < tries:\n",
        "        n += 1\n",
        "        delay = 0\n",
        "    return op()\n",
    ]
    repo.commit("Add retry", {"retry.py": "".join(base)})
    base[2] = "    tries = 30\n"
    base[5] = "        delay = -1\n"
    bug = repo.commit("Rework retry loop", {"retry.py": "".join(base)}, days=1)
    base[2] = "    tries = 3\n"
    fix1 = repo.commit("Fix retry count", {"retry.py": "".join(base)}, days=10)
    base[5] = "        delay = 1\n"
    fix2 = repo.commit("Fix negative delay bug", {"retry.py": "".join(base)}, days=10)

    result = run_labels(repo.path)
    # Line 3 (fix1) and line 6 (fix2) both came from `bug`.
    assert link_set(result.links) == {
        (fix1, bug, "retry.py", (3,), "szz:message"),
        (fix2, bug, "retry.py", (6,), "szz:message"),
    }
    labels = result.labels.set_index("sha")
    assert labels.loc[bug, VERDICT] == "defect"
    assert labels.loc[bug, "first_fix_sha"] == fix1
    # Known when the first fix landed: 2020-01-01 + 1 + 10 days = 2020-01-12.
    assert str(labels.loc[bug, "label_known_at"]) == "2020-01-12 00:00:00+00:00"


def test_revert_is_an_explicit_link_without_blame(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add store", {"store.py": "def put(k, v):\n    DATA[k] = v\n"})
    caching = repo.commit(
        "Add caching", {"store.py": "def put(k, v):\n    DATA[k] = v\n    CACHE[k] = v\n"}, days=1
    )
    revert = repo.commit(
        f'Revert "Add caching"\n\nThis reverts commit {caching}.',
        {"store.py": "def put(k, v):\n    DATA[k] = v\n"},
        days=1,
    )

    result = run_labels(repo.path)
    assert link_set(result.links) == {(revert, caching, None, (), "revert")}
    assert result.labels.set_index("sha").loc[caching, VERDICT] == "defect"


def test_fixes_trailer_wins_over_blame(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    repo.commit("Add reader", {"reader.c": "int read(void) {\n    return 0;\n}\n"})
    cache = repo.commit(
        "Add reader cache", {"reader.c": "int read(void) {\n    return 0;\n}\nint cached;\n"}, days=1
    )
    # The fix changes line 2, which blame would attribute to the first commit; the trailer names `cache`.
    fix = repo.commit(
        f'Handle empty input\n\nFixes: {cache[:12]} ("Add reader cache")',
        {"reader.c": "int read(void) {\n    return cached;\n}\nint cached;\n"},
        days=1,
    )

    result = run_labels(repo.path)
    assert link_set(result.links) == {(fix, cache, None, (), "fixes-trailer")}


def test_regressed_by_trailer_and_unknown_sha(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    first = repo.commit("Add a", {"a.py": "x = 1\ny = 2\n"})
    slow = repo.commit("Speed up a", {"a.py": "x = 1\ny = 3\n"}, days=1)
    fix = repo.commit(f"Restore y\n\nRegressed-by: {slow}", {"a.py": "x = 1\ny = 2\n"}, days=1)
    # An unknown sha in a trailer cannot be linked; the commit is still a fix by message, so SZZ traces it.
    other = repo.commit("Fix x crash\n\nFixes: deadbeefdeadbeef", {"a.py": "x = 0\ny = 2\n"}, days=1)

    result = run_labels(repo.path)
    assert link_set(result.links) == {
        (fix, slow, None, (), "regressed-by-trailer"),
        (other, first, "a.py", (1,), "szz:message"),
    }
    assert result.summary.unresolved_explicit_refs == 1


def test_unusual_paths_and_binary_files(tmp_path: Path, run_labels, link_set) -> None:
    repo = RepoBuilder.create(tmp_path / "r")
    odd = 'dir "q"/tab\there\u00e9.py'  # git quotes this path (quote, tab) in its output
    first = repo.commit("Add odd file", {odd: "a = 1\nb = 1\n", "blob.bin": b"\x00\x01\x02"})
    repo.move(odd, "moved \u00e9.py")
    repo.commit("Move odd file", days=1)
    fix = repo.commit(
        "Fix b crash", {"moved \u00e9.py": "a = 1\nb = 2\n", "blob.bin": b"\x00\x01\x03"}, days=1
    )
    # Line 2 of the renamed file came from `first`; the binary file has no lines to trace.
    result = run_labels(repo.path)
    assert link_set(result.links) == {(fix, first, "moved \u00e9.py", (2,), "szz:message")}
    assert result.summary.pass_stats.desync_hunks == 0
