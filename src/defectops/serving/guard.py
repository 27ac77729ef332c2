"""What a request body must be before anything parses it: JSON by its Content-Type, read in bounded time,
within the size limit, and with few keys per object.

Why before parsing (issue #14): a 7.4 MB body of 400,000 unknown keys cost 4.2 s to reject and came back as a
41.9 MB list of errors; eight of them stalled every other request for 33 s. Rejecting such a body must cost
less than parsing it, so these checks work on the raw bytes:

* **Content-Type.** A body sent to ``POST``/``PUT``/``PATCH`` must be ``application/json`` (415 otherwise). A
  browser sends ``text/plain`` or a form from any web page without asking the service first (no CORS
  pre-flight), so accepting those would let a page elsewhere fill the prediction log or write feedback.
* **Read time.** The whole body must arrive within ``body_timeout_seconds`` (408 otherwise): a client
  that sends a byte a minute would otherwise hold a connection and a request slot for ever.
* **Keys per object and depth.** No JSON object may have more than ``json_max_object_keys`` keys, and nothing
  may nest deeper than ``json_max_depth`` (413 otherwise). Every body of the API is flat records of at most
  20 fields, so a legitimate request is far below the defaults (64 keys, 8 levels), and the number of
  validation errors one request can cause stays small. Counted on the bytes, outside string literals
  (the colons of a commit message are not keys), with NumPy.
"""

from __future__ import annotations

import anyio
import numpy as np
from starlette.types import Message, Receive, Scope

from defectops.errors import BodyTimeoutError, PayloadTooLargeError, UnsupportedMediaTypeError

#: Methods whose bodies are checked.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

#: Query parameters that look like credentials; their presence alone refuses a request, on every path.
TOKEN_PARAMETERS = frozenset({"token", "access_token", "admin_token", "api_key", "apikey", "auth", "key"})
#: The reason of that refusal (400).
TOKEN_IN_URL = "tokens in the URL are refused; send 'Authorization: Bearer <token>'"  # noqa: S105 - a message

_COLON, _OPEN, _CLOSE, _OPEN_LIST, _CLOSE_LIST, _QUOTE, _BACKSLASH = (ord(c) for c in ':{}[]"\\')


def token_in_query(scope: Scope) -> bool:
    """Whether the request's query string names a token-like parameter (``?token=``, ``?api_key=``...).

    Checked by the middleware for every request, not only by the routes that authenticate: ``GET /v1/models``,
    ``/metrics``, the health checks and the UI's pages answered 200 to ``?token=...``, telling a user who
    pasted a token into a URL that it worked, while the URL went to access logs, history and proxies.
    """
    raw = scope.get("query_string", b"")
    if not raw:
        return False
    from urllib.parse import parse_qsl

    names = parse_qsl(bytes(raw).decode("latin-1"), keep_blank_values=True)
    return any(name.lower() in TOKEN_PARAMETERS for name, _ in names)


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def check_content_type(scope: Scope) -> None:
    """415 unless the declared media type is ``application/json`` (parameters such as charset allowed)."""
    raw = header(scope, b"content-type")
    media = (raw or b"").split(b";", 1)[0].strip().lower()
    if media != b"application/json":
        shown = media.decode("latin-1")[:60] or "none"
        raise UnsupportedMediaTypeError(f"send the body as Content-Type: application/json (got {shown})")


async def read_body(receive: Receive, *, limit: int, timeout: float) -> bytes:
    """The whole body, read within ``timeout`` seconds and ``limit`` bytes (408 / 413 otherwise)."""
    parts: list[bytes] = []
    size = 0
    with anyio.move_on_after(timeout) as scope:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)
    assert scope.cancelled_caught
    raise BodyTimeoutError(f"the request body did not arrive within {timeout:g} s")


def needs_scan(body: bytes, *, max_keys: int, max_depth: int) -> bool:
    """False when ``body`` has so few colons and brackets that no limit can be exceeded (single records)."""
    return body.count(b":") > max_keys or body.count(b"{") + body.count(b"[") > max_depth


def check_json_shape(body: bytes, *, max_keys: int, max_depth: int) -> None:
    """413 when some JSON object in ``body`` has more than ``max_keys`` keys, or objects and arrays nest
    deeper than ``max_depth``.

    Fast path: a body with at most ``max_keys`` colons and ``max_depth`` brackets in all passes untouched (a
    single record). Otherwise only the positions of quotes, colons and brackets are looked at (NumPy over the
    bytes, no Python loop per byte): a colon or bracket is structure unless an odd number of unescaped quotes
    precede it; depth is the running sum of opening and closing brackets; each key (a structural colon)
    belongs to the innermost object open before it, the last ``{`` at the colon's depth.
    """
    if not needs_scan(body, max_keys=max_keys, max_depth=max_depth):
        return
    data = np.frombuffer(body, dtype=np.uint8)
    quotes = _unescaped_quotes(data)

    def structural(char: int) -> np.ndarray:
        at = np.flatnonzero(data == char)
        kept: np.ndarray = at[np.searchsorted(quotes, at) % 2 == 0]
        return kept

    opens, closes = structural(_OPEN), structural(_CLOSE)
    list_opens, list_closes = structural(_OPEN_LIST), structural(_CLOSE_LIST)
    where = np.concatenate([opens, list_opens, closes, list_closes])
    sign = np.repeat(np.array([1, 1, -1, -1]), [len(opens), len(list_opens), len(closes), len(list_closes)])
    order = np.argsort(where, kind="stable")
    deepest = int(np.cumsum(sign[order]).max()) if len(where) else 0
    if deepest > max_depth:
        raise PayloadTooLargeError(
            f"the JSON body nests {deepest} levels deep; at most {max_depth} are allowed"
        )
    colons = structural(_COLON)
    if len(colons) <= max_keys:
        return
    # Depth counted in objects only: at a "{" the depth it opens; before a colon, its object's depth.
    braces = np.concatenate([opens, closes])
    brace_order = np.argsort(braces, kind="stable")
    braces = braces[brace_order]
    level = np.cumsum(np.repeat(np.array([1, -1]), [len(opens), len(closes)])[brace_order])
    before = np.searchsorted(braces, colons) - 1
    colon_level = np.where(before >= 0, level[np.maximum(before, 0)], 0)
    open_at = braces[np.diff(np.concatenate([[0], level])) > 0]
    open_level = level[np.diff(np.concatenate([[0], level])) > 0]
    for depth in np.unique(colon_level).tolist():
        starts = open_at[open_level == depth]
        owner = np.searchsorted(starts, colons[colon_level == depth])
        largest = int(np.bincount(owner).max())
        if largest > max_keys:
            raise PayloadTooLargeError(
                f"a JSON object in the body has {largest} keys; at most {max_keys} are allowed"
            )


def _unescaped_quotes(data: np.ndarray) -> np.ndarray:
    """Positions of the quotes that delimit strings: those not preceded by an odd run of backslashes."""
    quotes = np.flatnonzero(data == _QUOTE)
    slashes = np.flatnonzero(data == _BACKSLASH)
    if not len(slashes) or not len(quotes):
        return quotes
    # For each backslash, where its run of consecutive backslashes starts.
    new_run = np.concatenate([[True], np.diff(slashes) != 1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(slashes)), 0))
    last = np.searchsorted(slashes, quotes) - 1  # the last backslash before each quote
    safe = np.maximum(last, 0)
    adjacent = (last >= 0) & (slashes[safe] == quotes - 1)
    run_length = safe - run_start[safe] + 1
    escaped = adjacent & (run_length % 2 == 1)
    real: np.ndarray = quotes[~escaped]
    return real


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already read body to the app, then defers to the server's."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for the disconnect like the server would
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
