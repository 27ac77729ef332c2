"""Fix detection from commit messages: one test per rule of :class:`FixRules`, each with a message that the
rule decides and a message that it must leave alone."""

from __future__ import annotations

import pytest

from defectops.errors import ConfigError
from defectops.mining.fixes import FixRules, is_fix_message


@pytest.mark.parametrize(
    "message",
    [
        "Fix overflow in sum",
        "fixes wrong result of np.add",
        "Fixed the handling of empty arrays",
        "fixing a race in the lock",
        "Bug in argmax with NaN",
        "bugfix: off-by-one in slicing",
        "Hotfix for release",
        "Defect 42: wrong shape",
        "Avoid regression in sort speed",
        "Crash when reading empty file",
        "Prevent segfault on empty input",
        "Plug a memory leak in the iterator",
    ],
)
def test_keywords_match_as_whole_words(message: str) -> None:
    assert is_fix_message(message)


@pytest.mark.parametrize(
    "message",
    [
        "Add prefix and suffix options",  # "fix" inside a word
        "Improve debug output",  # "bug" inside a word
        "Update test fixtures",  # fixture
        "Speed up np.fix",  # a function named fix, after a dot
        "Rename fix_width to width",  # identifier with underscore
        "Implement feature X",
        "",
    ],
)
def test_keywords_do_not_match_inside_words_or_identifiers(message: str) -> None:
    assert not is_fix_message(message)


def test_bare_issue_reference_is_not_a_fix() -> None:
    assert not is_fix_message("Add einsum path optimisation (#123)")
    assert not is_fix_message("Closes #123")
    assert not is_fix_message("see gh-4567")
    # ...but a keyword beside the reference still is.
    assert is_fix_message("Fix einsum path (#123)")


def test_merge_subjects_are_not_fixes_by_themselves() -> None:
    assert not is_fix_message("Merge pull request #12 from alice/fix-y")
    assert not is_fix_message("Merge branch 'bugfix/thing' into main")
    assert not is_fix_message("Merge remote-tracking branch 'origin/fix-build'")
    assert not is_fix_message("Merge tag 'v1.2-bugfix'")
    assert not is_fix_message("Squashed commit of the following:")
    # A merge whose body describes a fix is judged by the body.
    assert is_fix_message("Merge pull request #12 from alice/fix-y\n\nBUG: crash on empty input")
    # Switching the rule off lets the branch name count again.
    assert is_fix_message("Merge pull request #12 from alice/fix-y", FixRules(merge_subjects=()))


def test_noise_phrases_are_removed_before_keywords() -> None:
    assert not is_fix_message("Fix typo")
    assert not is_fix_message("fix a few typos in the docs")
    assert not is_fix_message("Fix whitespaces issues.")
    assert not is_fix_message("Add fixed-width integer types")
    assert not is_fix_message("Update bug report template")
    # Another keyword after the noise still counts.
    assert is_fix_message("Fix typo that caused a crash")
    assert is_fix_message("Fix typo", FixRules(noise=()))


def test_ignored_trailers_are_removed() -> None:
    message = "Add feature\n\nReported-by: Fix Bugman <bugs@example.com>\nSigned-off-by: A <a@b.c>"
    assert not is_fix_message(message)
    assert is_fix_message(message, FixRules(ignored_trailers=()))


def test_urls_and_code_spans_are_ignored() -> None:
    assert not is_fix_message("See https://bugs.python.org/issue1234 for background")
    assert not is_fix_message("Document ``fix`` and `bug_id` parameters")
    assert is_fix_message("See https://bugs.python.org/issue1234", FixRules(ignore_urls=False))
    assert is_fix_message("Document `fix` parameter", FixRules(ignore_code=False))


def test_fix_categories() -> None:
    assert is_fix_message("BUG: ensure lock is held when accessing RNG state")  # no keyword in the text
    assert is_fix_message("MAINT,BUG: clean up the loop")
    assert is_fix_message("[BUG] wrong dtype")
    assert is_fix_message("fix(core)!: reject negative sizes")
    assert not is_fix_message("MAINT: ensure lock is held")
    assert is_fix_message("REGR: restore the old default")  # category only, no keyword
    assert not is_fix_message("REGR: restore the old default", FixRules(fix_categories=()))


def test_non_fix_categories() -> None:
    assert not is_fix_message("DOC: fix the example of np.inner")
    assert not is_fix_message("STY: fix PEP8 complaints")
    assert not is_fix_message("DOC/STY: fix things")
    # A mixed tag with a non-documentation category falls through to the keywords.
    assert is_fix_message("DOC, TST: fix crash in the doctest runner")
    assert is_fix_message("DOC: fix the example", FixRules(non_fix_categories=()))
    # Prose with a colon is not a tag.
    assert is_fix_message("Note to the docs team: fix crash in parser")


def test_a_release_chore_with_its_changelog_is_not_a_fix() -> None:
    # semantic-release's commit: the body lists the fixes the release contains, it fixes nothing itself.
    release = (
        "chore(release): version 20.8.4 [skip ci]\n\n"
        "### Bug Fixes\n\n* Correct the node group's AMI type lookup ([#3167](https://github.com/x/y/issues/3167))\n"
    )
    assert not is_fix_message(release)
    assert not is_fix_message("chore: fix the pre-commit hook versions")
    # Before "chore" was a non-fix category the keywords decided.
    assert is_fix_message(release, FixRules(non_fix_categories=("doc", "docs")))
    # The fix type of Conventional Commits is still a fix, whatever its scope.
    assert is_fix_message("fix(release): publish the right version")


def test_explicit_trailers_make_a_fix() -> None:
    assert is_fix_message('Handle empty input\n\nFixes: 1a2b3c4d5e6f ("add reader")')
    assert is_fix_message("Restore old default\n\nRegressed-by: commit 0123456789abcdef")
    # Without the trailer rule and without keywords, the trailer alone decides nothing.
    no_words = FixRules(keywords=(), explicit_trailers=())
    assert not is_fix_message("Handle empty input\n\nFixes: 1a2b3c4d5e6f", no_words)
    assert is_fix_message("Handle empty input\n\nFixes: 1a2b3c4d5e6f", FixRules(keywords=()))


def test_reverts() -> None:
    message = 'Revert "Add cache"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.'
    assert is_fix_message(message)
    assert not is_fix_message(message, FixRules(reverts_are_fixes=False))


def test_custom_keywords() -> None:
    rules = FixRules(keywords=(r"oops",))
    assert is_fix_message("oops, wrong file", rules)
    assert not is_fix_message("fix crash", rules)


def test_rules_from_mapping_validate() -> None:
    rules = FixRules.from_mapping({"keywords": ["glitch(?:es)?"], "reverts_are_fixes": False})
    assert is_fix_message("Glitches in output", rules)
    with pytest.raises(ConfigError, match="unknown fix rule"):
        FixRules.from_mapping({"kewords": ["x"]})
    with pytest.raises(ConfigError, match="invalid fix rule regex"):
        FixRules.from_mapping({"keywords": ["(unclosed"]})
    with pytest.raises(ConfigError, match="list of strings"):
        FixRules.from_mapping({"keywords": "fix"})
    with pytest.raises(ConfigError, match="true or false"):
        FixRules.from_mapping({"reverts_are_fixes": "yes"})
