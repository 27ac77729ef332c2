"""A real HTTP server on loopback that speaks the part of GitHub's REST API the event workers use.

Not a mock object: the workers reach it over TCP with their real HTTP client. It checks the ``Bearer`` token
(401 "Bad credentials" otherwise), sends the rate-limit headers on every answer, paginates listings as GitHub
does (``per_page`` capped at :attr:`GitHubApi.max_per_page`, ``Link: <...>; rel="next"``), and can be told to
answer the next calls as rate limited (403 with ``X-RateLimit-Remaining: 0`` and a reset time, or 429 with
``Retry-After``), or to hold a check-run creation after storing it (to kill a worker in the middle).

Endpoints: ``GET /repos/{o}/{r}/commits/{sha}/check-runs``, ``POST /repos/{o}/{r}/check-runs``,
``PATCH /repos/{o}/{r}/check-runs/{id}``, ``GET /repos/{o}/{r}/commits/{sha}/statuses``,
``POST /repos/{o}/{r}/statuses/{sha}``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_LIST_RUNS = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/check-runs$")
_CREATE_RUN = re.compile(r"^/repos/([^/]+/[^/]+)/check-runs$")
_UPDATE_RUN = re.compile(r"^/repos/([^/]+/[^/]+)/check-runs/(\d+)$")
_LIST_STATUSES = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/statuses$")
_CREATE_STATUS = re.compile(r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$")


@dataclass
class GitHubApi:
    """The server's state; every field may be read by a test while the server runs (under ``lock``)."""

    token: str
    max_per_page: int = 100
    rate_limit: int = 5000
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, auth scheme)
    limited_next: int = 0  # answer this many calls as rate limited (403, remaining 0)
    retry_after_next: int = 0  # answer this many calls 429 with Retry-After: 0
    hold_creations: bool = False  # hold each check-run creation after storing it, until released
    lock: threading.Lock = field(default_factory=threading.Lock)
    created: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    used: int = 0

    def runs_for(self, sha: str, name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r for r in self.check_runs if r["head_sha"] == sha and (name is None or r["name"] == name)
            ]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        api = self.server.api
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        with api.lock:
            remaining = max(0, api.rate_limit - api.used)
        self.send_header("X-RateLimit-Limit", str(api.rate_limit))
        self.send_header("X-RateLimit-Remaining", str(remaining))
        self.send_header("X-RateLimit-Used", str(api.used))
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
        self.send_header("X-RateLimit-Resource", "core")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _gate(self) -> bool:
        """Authentication and rate limits; False when an answer was already sent."""
        api = self.server.api
        auth = self.headers.get("Authorization", "")
        with api.lock:
            api.requests.append((self.command, urlsplit(self.path).path, auth.split(" ")[0]))
        if auth != f"Bearer {api.token}":
            self._send(
                401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
            return False
        with api.lock:
            limited, api.limited_next = api.limited_next > 0, max(0, api.limited_next - 1)
            secondary, api.retry_after_next = api.retry_after_next > 0, max(0, api.retry_after_next - 1)
            api.used += 1
        if limited:
            data = json.dumps({"message": "API rate limit exceeded"}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-RateLimit-Limit", str(api.rate_limit))
            self.send_header("X-RateLimit-Remaining", "0")
            self.send_header("X-RateLimit-Reset", str(int(time.time())))
            self.end_headers()
            self.wfile.write(data)
            return False
        if secondary:
            self._send(429, {"message": "You have exceeded a secondary rate limit"}, {"Retry-After": "0"})
            return False
        return True

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length) or b"{}")

    def _page(self, items: list[dict[str, Any]], key: str | None) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        per_page = min(int(query.get("per_page", "30")), self.server.api.max_per_page)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            host, port = self.server.server_address[:2]
            base = f"http://{host!s}:{port}{parts.path}"
            headers["Link"] = f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"'
        body: Any = {"total_count": len(items), key: chunk} if key else chunk
        self._send(200, body, headers)

    def do_GET(self) -> None:
        if not self._gate():
            return
        api = self.server.api
        path = urlsplit(self.path).path
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if match := _LIST_RUNS.match(path):
            repo, sha = match.groups()
            with api.lock:
                runs = [
                    r
                    for r in api.check_runs
                    if r["repo"] == repo.lower()
                    and r["head_sha"] == sha
                    and ("check_name" not in query or r["name"] == query["check_name"])
                ]
            self._page(runs, "check_runs")
        elif match := _LIST_STATUSES.match(path):
            repo, sha = match.groups()
            with api.lock:
                found = [s for s in api.statuses if s["repo"] == repo.lower() and s["sha"] == sha]
            self._page(list(reversed(found)), None)
        else:
            self._send(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        if not self._gate():
            return
        api = self.server.api
        path = urlsplit(self.path).path
        body = self._body()
        if match := _CREATE_RUN.match(path):
            if not isinstance(body.get("head_sha"), str) or not body.get("name"):
                self._send(422, {"message": "Validation Failed"})
                return
            if len(body.get("output", {}).get("annotations", [])) > 50:
                self._send(422, {"message": "Only 50 annotations are allowed per request"})
                return
            with api.lock:
                run = {
                    **body,
                    "id": len(api.check_runs) + 1,
                    "repo": match.group(1).lower(),
                    "received_at": time.time(),
                }
                run["output"] = dict(body.get("output", {}))
                api.check_runs.append(run)
            api.created.set()
            if api.hold_creations:
                api.release.wait(timeout=300)
            self._send(201, run)
        elif match := _CREATE_STATUS.match(path):
            with api.lock:
                status = {
                    **body,
                    "id": len(api.statuses) + 1,
                    "repo": match.group(1).lower(),
                    "sha": match.group(2),
                }
                api.statuses.append(status)
            self._send(201, status)
        else:
            self._send(404, {"message": "Not Found"})

    def do_PATCH(self) -> None:
        if not self._gate():
            return
        api = self.server.api
        match = _UPDATE_RUN.match(urlsplit(self.path).path)
        if not match:
            self._send(404, {"message": "Not Found"})
            return
        body = self._body()
        with api.lock:
            run = next((r for r in api.check_runs if r["id"] == int(match.group(2))), None)
            if run is not None:
                added = body.get("output", {}).get("annotations", [])
                run["output"]["annotations"] = [*run["output"].get("annotations", []), *added]
        if run is None:
            self._send(404, {"message": "Not Found"})
        else:
            self._send(200, run)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: GitHubApi


class GitHubServer:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    def __init__(self, token: str, **options: Any) -> None:
        self.api = GitHubApi(token=token, **options)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self.api
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GitHubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.api.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> GitHubServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
