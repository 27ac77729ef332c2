"""Every option's help is shown as written: rich markup must not swallow any part of it.

Typer renders help with rich markup, so a help string such as ``"gap [settings]."`` was printed as
``"gap ."`` (``[settings]`` read as a style tag). This walks every command of the real CLI.
"""

from __future__ import annotations

import re

import click
import typer

from defectops.cli import app

# What rich would take for a markup tag: [word], [/], [bold red], [link=...].
_MARKUP_TAG = re.compile(r"\[/?[a-z#][^\]\s]*( [a-z][^\]]*)?\]")


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    # Typer's groups are not click.Group subclasses in every version: look for subcommands instead.
    subcommands: dict[str, click.Command] = getattr(command, "commands", {})
    for name, sub in subcommands.items():
        found.extend(_commands(sub, f"{path} {name}"))
    return found


def test_no_option_help_contains_text_that_rich_would_read_as_markup() -> None:
    root = typer.main.get_command(app)
    offenders = [
        f"{path} {param.opts[0]}: {help_text!r}"
        for path, command in _commands(root, "defectops")
        for param in command.params
        if (help_text := getattr(param, "help", None)) and _MARKUP_TAG.search(help_text)
    ]
    assert offenders == []
    assert len(_commands(root, "defectops")) > 20  # the walk reached the subcommands


def test_the_pattern_catches_a_bracketed_word() -> None:
    assert _MARKUP_TAG.search("Label waiting period and gap [settings].")
    assert not _MARKUP_TAG.search("Probability in [0, 1].")
