"""A small client of GitHub's REST API for what the workers report: check runs and commit statuses.

It speaks the protocol as GitHub documents it: a ``Bearer`` token, the versioned media type, pagination by
the ``Link`` header, and the rate limit (``X-RateLimit-Remaining``/``X-RateLimit-Reset``, or ``Retry-After``
on a secondary limit): a limited call waits for the reset and is retried, unless that wait is longer than
``max_wait`` (then :class:`RateLimitError`). Errors name the call and the status, never the token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from defectops import __version__
from defectops.errors import GitHubApiError, RateLimitError

API_VERSION = "2022-11-28"
#: GitHub takes at most 50 annotations per check-run request; more are added by updating the run.
ANNOTATIONS_PER_REQUEST = 50
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The last rate-limit headers GitHub sent."""

    limit: int | None
    remaining: int | None
    reset: float | None


class GitHubClient:
    """Synchronous and thread-safe (one pooled httpx client)."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"defectops/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=timeout)
        self._max_wait = max_wait
        self._sleep = sleep
        self.rate = RateLimit(None, None, None)

    def close(self) -> None:
        self._http.close()

    # -- protocol -----------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        what = f"{method} {url.split('?')[0]}"
        for _ in range(5):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise GitHubApiError(f"GitHub {what}: {type(exc).__name__}: {exc}") from None
            self.rate = _rate(response)
            wait = self._limited_for(response)
            if wait is None:
                if response.status_code >= 400:
                    raise GitHubApiError(f"GitHub {what}: HTTP {response.status_code}: {_message(response)}")
                return response
            if wait > self._max_wait:
                raise RateLimitError(
                    f"GitHub {what}: rate limited for {wait:.0f} s more (longer than {self._max_wait:.0f} s)"
                )
            self._sleep(wait)
        raise RateLimitError(f"GitHub {what}: still rate limited after 5 waits")

    def _limited_for(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying a rate-limited response; None when it was not limited."""
        if response.status_code not in (403, 429):
            return None
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                return 60.0
        if self.rate.remaining == 0 and self.rate.reset is not None:
            return max(0.0, self.rate.reset - time.time()) + 0.05
        return None

    def paginate(self, url: str, key: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``Link: <...>; rel="next"``."""
        next_url: str | None = url
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        while next_url is not None:
            response = self._request("GET", next_url, params=query)
            body = response.json()
            items = body.get(key, []) if isinstance(body, dict) else body
            yield from items
            match = _NEXT.search(response.headers.get("link", ""))
            next_url = match.group(1) if match else None
            query = None  # the next link carries its own query

    # -- check runs and statuses ----------------------------------------------------------------------------

    def find_check_run(self, repo: str, sha: str, name: str, external_id: str) -> int | None:
        """The id of this commit's check run named ``name`` with ``external_id``, if one exists."""
        for run in self.paginate(
            f"/repos/{repo}/commits/{sha}/check-runs", "check_runs", {"check_name": name, "filter": "all"}
        ):
            if run.get("external_id") == external_id:
                return int(run["id"])
        return None

    def create_check_run(self, repo: str, body: dict[str, Any]) -> int:
        """Create a completed check run; its annotations go in batches of 50. Returns its id."""
        output = dict(body.get("output") or {})
        annotations = list(output.pop("annotations", []))
        first = {**body, "output": {**output, "annotations": annotations[:ANNOTATIONS_PER_REQUEST]}}
        run_id = int(self._request("POST", f"/repos/{repo}/check-runs", json=first).json()["id"])
        for start in range(ANNOTATIONS_PER_REQUEST, len(annotations), ANNOTATIONS_PER_REQUEST):
            chunk = annotations[start : start + ANNOTATIONS_PER_REQUEST]
            self._request(
                "PATCH",
                f"/repos/{repo}/check-runs/{run_id}",
                json={"output": {**output, "annotations": chunk}},
            )
        return run_id

    def find_status(self, repo: str, sha: str, context: str, description: str) -> bool:
        """Whether this commit already has a status of ``context`` with ``description``."""
        return any(
            s.get("context") == context and s.get("description") == description
            for s in self.paginate(f"/repos/{repo}/commits/{sha}/statuses", "")
        )

    def create_status(self, repo: str, sha: str, body: dict[str, Any]) -> None:
        self._request("POST", f"/repos/{repo}/statuses/{sha}", json=body)


def _rate(response: httpx.Response) -> RateLimit:
    def number(name: str) -> int | None:
        value = response.headers.get(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    reset = number("x-ratelimit-reset")
    return RateLimit(number("x-ratelimit-limit"), number("x-ratelimit-remaining"), reset)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", ""))[:200] if isinstance(body, dict) else str(body)[:200]
