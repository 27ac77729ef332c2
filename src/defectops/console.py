"""Terminal output shared by all commands: human tables on stdout, or one JSON document with ``--json``."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON; write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def print_json(document: Any) -> None:
    """Write one JSON document to stdout (never Rich-formatted, so it stays parseable)."""
    sys.stdout.write(json.dumps(_clean(document), default=_default, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


#: Width of tables written to a pipe or file: Rich would use 80 columns there and cut model names and
#: reasons short with "…"; a file has no right margin.
PIPE_WIDTH = 240


def print_table(renderable: Any) -> None:
    """A Rich table on stdout: as wide as the terminal, or :data:`PIPE_WIDTH` when stdout is not one."""
    if stdout.is_terminal:
        stdout.print(renderable)
    else:
        # Rich caps ``print(width=...)`` at the console's own width (80 off a terminal): a console of its own
        # lets a piped table be as wide as its content, up to PIPE_WIDTH, instead of wrapping every cell.
        Console(width=PIPE_WIDTH, soft_wrap=True, color_system=None).print(renderable)


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")
_SECRET_QUERY = re.compile(
    r"(?i)(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key|sig|signature|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&#\s]*"
)


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it masked: ``scheme://user:SECRET@host`` becomes
    ``scheme://user:***@host`` (a bare ``scheme://TOKEN@host`` becomes ``scheme://***@host``), and
    secret-looking query parameters (``?token=``, ``password=``, S3 signatures) become ``***``.

    The one helper every message, log line and printed URL goes through: database and tracking URIs carry
    passwords, and an error that quotes the URI it could not reach must not print them.
    """

    def mask(match: re.Match[str]) -> str:
        user, sep, _secret = match.group("userinfo").partition(":")
        return f"{match.group('scheme')}{user}:***@" if sep else f"{match.group('scheme')}***@"

    return _SECRET_QUERY.sub(r"\g<key>***", _URL_CREDENTIALS.sub(mask, text))


#: A pull-request or issue reference at the end of a commit subject, e.g. `` (#7496)``.
_TRAILING_REFERENCE = re.compile(r"\s*\(#\d+\)$")


def shorten_subject(subject: str, width: int) -> str:
    """``subject`` in at most ``width`` characters: a cut marked with "…", a trailing ``(#123)`` kept whole.

    Why not a plain slice: cutting "Improve typing (#7496)" at a fixed width leaves "... (#7496" with its
    parenthesis lost, or drops the pull-request number a reader looks the change up by. The words give way
    instead, and the ellipsis says that some did; a reference too long to fit is cut like any other text.
    """
    subject = " ".join(subject.split())
    if len(subject) <= width:
        return subject
    reference = _TRAILING_REFERENCE.search(subject)
    tail = "" if reference is None else " " + reference.group().strip()
    body = subject if reference is None else subject[: reference.start()]
    room = width - len(tail) - 1  # one character for the ellipsis
    if room < 1:  # too narrow to keep the reference: cut the whole subject
        tail, body, room = "", subject, width - 1
    return body[:room].rstrip() + "…" + tail
