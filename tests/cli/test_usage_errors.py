"""Click's usage errors (unknown option, missing argument or value, bad value, unknown command) are one line,
``error: <what>; try '<command> --help'``, and exit code 2, for every command; ``--help`` is untouched.

Click printed four lines (Usage, Try, a blank line, Error:), unlike every other defectops error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from cli_main import run_main
from defectops.cli import app


def _command_paths() -> list[list[str]]:
    """Every command of the app (leaves and groups), as the words that name it."""
    found: list[list[str]] = []

    def walk(command: Any, words: list[str]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found.append([*words, name])
            walk(sub, [*words, name])

    walk(get_command(app), [])
    return found


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEFECTOPS_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def _one_usage_line(code: int, out: str, err: str, what: str, path: str) -> None:
    assert code == 2, err
    assert out == ""
    assert err == f"error: {what}; try '{path} --help'\n"


@pytest.mark.parametrize("words", _command_paths(), ids=" ".join)
def test_an_unknown_option_is_one_line_naming_the_command_for_every_command(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main([*words, "--no-such-option"], capsys)
    _one_usage_line(code, out, err, "No such option: --no-such-option", " ".join(["defectops", *words]))


@pytest.mark.parametrize(
    ("argv", "what", "path"),
    [
        (["predict", "--repo"], "Option '--repo' requires an argument", "defectops predict"),
        (["-w", "x", "predict", "--format"], "Option '--format' requires an argument", "defectops predict"),
        (["models", "promote"], "Missing argument 'name'", "defectops models promote"),
        (["models", "nosuch"], "No such command 'nosuch'", "defectops models"),
        (["nosuch"], "No such command 'nosuch'", "defectops"),
        (["predict", "extra"], "Got unexpected extra argument(s) (extra)", "defectops predict"),
        (
            ["predict", "--fail-o"],
            "No such option: --fail-o (Possible options: --fail-on)",
            "defectops predict",
        ),
        (["-w"], "Option '-w' requires an argument", "defectops"),
        # root options given after the command still work, and do not hide the command's name
        (["predict", "--verbose", "--bogus"], "No such option: --bogus", "defectops predict"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], what: str, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(argv, capsys)
    _one_usage_line(code, out, err, what, path)


def test_a_bad_value_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_main(["predict", "--top-k", "many"], capsys)
    assert code == 2
    assert err.startswith("error: Invalid value for '--top-k': ")
    assert err.endswith("; try 'defectops predict --help'\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["models", "promote", "--help"]])
def test_help_is_unchanged(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(argv, capsys)
    assert code == 0
    assert f"Usage: defectops {' '.join(argv[:-1])}".rstrip() in " ".join(out.split())
    assert "error" not in err


def test_a_group_without_a_command_still_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["models"], capsys)
    assert code == 2  # Click's code for "no command given"
    assert "promote" in out + err
    assert "error:" not in out + err


def test_no_help_text_loses_words_to_rich_markup() -> None:
    """``validate --help`` showed "Label waiting period and gap ." : rich took "[settings]" for a style tag and
    dropped it. Every option's and command's help must print as written."""
    from rich.text import Text

    def walk(command: Any, words: list[str]) -> list[tuple[str, str]]:
        texts = [(" ".join(words), command.help or "")]
        texts += [(f"{' '.join(words)} {p.name}", getattr(p, "help", None) or "") for p in command.params]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            texts += walk(sub, [*words, name])
        return texts

    lost = [
        (where, text) for where, text in walk(get_command(app), []) if Text.from_markup(text).plain != text
    ]
    assert lost == []
