"""Option parsing shared by the CLI commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from defectops.errors import InputError

if TYPE_CHECKING:
    from defectops.config import Settings


def parse_time_option(option: str, value: str) -> datetime:
    """``value`` of the command-line option ``option`` as an aware time (a time without zone is UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option} {value!r} is not a date (use YYYY-MM-DD or an ISO 8601 time)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def app_settings() -> Settings:
    """The settings tree the root command built (with ``--workspace``), passed down through Click's context.

    Why the context and not the environment: the workspace a user gives on the command line is a value of this
    invocation; writing it into ``os.environ`` would leak it into every later call in the same process (tests,
    a notebook) and into child processes that never asked for it. Outside a command (a library caller) the
    tree is read from the environment.
    """
    import click

    from defectops.config import Settings

    context = click.get_current_context(silent=True)
    found = context.find_root().obj if context is not None else None
    return found if isinstance(found, Settings) else Settings()
