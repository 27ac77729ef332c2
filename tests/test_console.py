"""Commit subjects shortened for one-line display keep their meaning: the cut is marked and a trailing
pull-request reference survives whole (the run summary once printed "... (#7" with the number cut)."""

from __future__ import annotations

import pytest

from defectops.console import shorten_subject


@pytest.mark.parametrize(
    ("subject", "width", "expected"),
    [
        # 54 characters: the words give way, " (#7503)" (8) and "…" (1) leave 41 for them; the space before
        # the cut is dropped
        (
            "Disable commonly ignored Pyright linting rules (#7503)",
            50,
            "Disable commonly ignored Pyright linting… (#7503)",
        ),
        # 51 characters only because of a double space: whitespace is collapsed first, 50 fit whole
        (
            "Improve static typing of 3rd party imports  (#7496)",
            50,
            "Improve static typing of 3rd party imports (#7496)",
        ),
        # no reference: 49 characters and the ellipsis
        (
            "Fix `_encode_files` detection for `__getattr__`-based objects",
            50,
            "Fix `_encode_files` detection for `__getattr__`-b…",
        ),
        (
            "Add type annotation for `Request.hooks` (#7498)",
            50,
            "Add type annotation for `Request.hooks` (#7498)",
        ),
        # a reference in the middle is text like any other
        ("Revert (#12) because it broke the build", 20, "Revert (#12) becaus…"),
        # too narrow for " (#12345)" (9 characters) and one more: the whole subject is cut
        ("abcdef (#12345)", 8, "abcdef…"),
    ],
)
def test_a_long_subject_is_cut_with_an_ellipsis_keeping_its_reference(
    subject: str, width: int, expected: str
) -> None:
    shortened = shorten_subject(subject, width)
    assert shortened == expected
    assert len(shortened) <= width
