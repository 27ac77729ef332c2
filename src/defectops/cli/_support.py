"""Option parsing shared by the CLI commands."""

from __future__ import annotations

from datetime import UTC, datetime

from defectops.errors import InputError


def parse_time_option(option: str, value: str) -> datetime:
    """``value`` of the command-line option ``option`` as an aware time (a time without zone is UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option} {value!r} is not a date (use YYYY-MM-DD or an ISO 8601 time)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
