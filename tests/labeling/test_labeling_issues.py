"""Issue references, issue exports (CSV/JSON), and the GitHub client against a local server on 127.0.0.1 that
speaks GitHub's protocol: Link pagination, X-RateLimit-* headers, Retry-After, tokens, ``since``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from defectops.errors import ConfigError, InputError, NotFoundError, RateLimitError
from defectops.labeling.issues import (
    BugRules,
    GitHubIssues,
    IssueList,
    decide,
    fetch_github_cached,
    issue_references,
    load_issues,
    next_link,
)


def test_issue_references() -> None:
    assert issue_references("BUG: fix overflow (#123), see gh-45 and #123") == ["123", "45"]
    assert issue_references("See https://github.com/o/r/issues/77 and PROJ-12") == ["77", "PROJ-12"]
    # Not references: HTML entities, URL anchors, lower-case words with digits.
    assert issue_references("&#123; page.html#3 utf-8 x86-64") == []


def test_decide_uses_the_list_and_the_earliest_bug_date() -> None:
    issues = IssueList()
    issues.issues["1"] = _issue("1", True, "2020-02-01")
    issues.issues["2"] = _issue("2", True, "2020-01-15")
    issues.issues["3"] = _issue("3", False, "2020-01-01")
    both = decide("Fix #1 and #2, see #3 and #99", issues)
    assert both.bugs == ("1", "2")
    assert both.non_bugs == ("3",)
    assert both.reported_at == datetime(2020, 1, 15, tzinfo=UTC)  # the earlier of the two bugs
    assert not decide("Closes #99", issues).known  # unknown to the list: the message rules decide
    assert not decide("Fix #1", None).known


def _issue(number: str, bug: bool, day: str) -> Any:
    from defectops.labeling.issues import Issue

    return Issue(number, bug, datetime.fromisoformat(day).replace(tzinfo=UTC))


def test_bug_rules() -> None:
    rules = BugRules()
    assert rules.is_bug(None, ["00 - Bug"])  # numpy's label
    assert rules.is_bug("Bug", [])  # GitHub issue type / tracker type column
    assert rules.is_bug(None, ["type: regression"])
    assert not rules.is_bug(None, ["enhancement", "debug-build"])
    assert not rules.is_bug(None, ["bug", "wontfix"])  # closed as not to be fixed
    assert BugRules(bug_pattern=r"^defect$").is_bug("Defect", [])
    with pytest.raises(ConfigError, match="regex"):
        BugRules(bug_pattern="(").is_bug("x", [])


def test_load_csv_export(tmp_path: Path) -> None:
    path = tmp_path / "issues.csv"
    path.write_text(
        "ID,Type,Labels,Created_At\n"
        "#1,Bug,,2020-01-02T03:04:05Z\n"
        "2,Feature,bug-report-form,2020-01-03\n"
        "PROJ-3,,crash;ui,\n",
        encoding="utf-8",
    )
    issues = load_issues(path)
    assert issues.issues["1"].is_bug
    assert issues.issues["1"].created_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert issues.issues["2"].created_at == datetime(2020, 1, 3, tzinfo=UTC)  # dates without zone are UTC
    assert issues.issues["2"].is_bug  # the label matches \bbug\b; a project can tighten BugRules
    assert not load_issues(path, BugRules(bug_pattern=r"^bug$")).issues["2"].is_bug
    assert issues.issues["PROJ-3"].is_bug  # "crash" label
    assert issues.issues["PROJ-3"].created_at is None


def test_load_json_exports(tmp_path: Path) -> None:
    github_dump = tmp_path / "gh.json"
    github_dump.write_text(
        json.dumps(
            [
                {"number": 5, "labels": [{"name": "bug"}], "created_at": "2021-05-01T00:00:00Z"},
                {"number": 6, "labels": [], "type": {"name": "Bug"}, "created_at": "2021-05-02T00:00:00Z"},
                {"number": 7, "labels": [{"name": "docs"}], "pull_request": {"url": "x"}},
            ]
        )
    )
    issues = load_issues(github_dump)
    assert [issues.issues[k].is_bug for k in ("5", "6", "7")] == [True, True, False]
    assert issues.issues["7"].kind == "pull_request"
    wrapped = tmp_path / "w.json"
    wrapped.write_text(json.dumps({"issues": [{"id": "A-1", "type": "defect", "created_at": 1577836800}]}))
    assert load_issues(wrapped).issues["A-1"].created_at == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "[{", "not valid JSON"),
        ("obj.json", '{"x": 1}', "JSON array"),
        ("noid.csv", "type,labels\nbug,\n", "'id' column"),
        ("notype.csv", "id,created_at\n1,2020-01-01\n", "'type' or 'labels'"),
        ("date.csv", "id,type,created_at\n1,bug,yesterday\n", "ISO 8601"),
    ],
)
def test_bad_exports(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_issues(path)
    with pytest.raises(InputError, match="no such issue file"):
        load_issues(tmp_path / "missing.csv")


def test_next_link() -> None:
    header = '<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=9>; rel="last"'
    assert next_link(header) == "https://api.github.com/x?page=2"
    assert next_link('<https://a/x?page=1>; rel="prev"') is None
    assert next_link(None) is None


# -- a local server speaking GitHub's REST protocol ----------------------------------------------------------

CLOCK = 1_000_000.0

PAGES: dict[int, list[dict[str, Any]]] = {
    1: [
        {"number": 1, "labels": [{"name": "00 - Bug"}], "created_at": "2020-01-01T00:00:00Z"},
        {"number": 2, "labels": [{"name": "enhancement"}], "created_at": "2020-01-02T00:00:00Z"},
    ],
    2: [
        {
            "number": 3,
            "labels": [{"name": "type: bug"}],
            "pull_request": {},
            "created_at": "2020-01-03T00:00:00Z",
        },
        {"number": 4, "labels": [], "type": {"name": "Bug"}, "created_at": "2020-01-04T00:00:00Z"},
    ],
    3: [
        {"number": 5, "labels": [{"name": "bug"}, {"name": "wontfix"}], "created_at": "2020-01-05T00:00:00Z"}
    ],
}


class FakeGitHub:
    """The server's script: which responses to give, and a record of what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.calls: dict[int, int] = {}
        self.limit_first_page = True
        self.retry_after_page_two = True
        self.updated_since: list[dict[str, Any]] = [
            {"number": 2, "labels": [{"name": "bug"}], "created_at": "2020-01-02T00:00:00Z"}
        ]


def _handler(fake: FakeGitHub, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            return

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            fake.requests.append((url.path, query, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != "Bearer secret":
                self._send(401, {"message": "Bad credentials"})
                return
            if url.path != "/repos/octo/proj/issues":
                self._send(404, {"message": "Not Found"})
                return
            if "since" in query:
                self._send(200, fake.updated_since, {"X-RateLimit-Remaining": "10"})
                return
            page = int(query.get("page", ["1"])[0])
            fake.calls[page] = fake.calls.get(page, 0) + 1
            if page == 1 and fake.limit_first_page and fake.calls[page] == 1:
                # Primary rate limit exhausted: wait until the reset time (30 s after the fake clock).
                headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(CLOCK) + 30)}
                self._send(403, {"message": "API rate limit exceeded"}, headers)
                return
            if page == 2 and fake.retry_after_page_two and fake.calls[page] == 1:
                self._send(429, {"message": "secondary rate limit"}, {"Retry-After": "7"})
                return
            headers = {
                "X-RateLimit-Remaining": "0" if page == 2 else "50",
                "X-RateLimit-Reset": str(int(CLOCK) + 5),
            }
            if page < 3:
                headers["Link"] = (
                    f'<{base[0]}/repos/octo/proj/issues?state=all&per_page=2&page={page + 1}>; rel="next"'
                )
            self._send(200, PAGES[page], headers)

    return Handler


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    base: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake, base))
    base.append(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, base[0]
    finally:
        server.shutdown()
        server.server_close()


def _client(base: str, **kwargs: Any) -> GitHubIssues:
    slept: list[float] = []
    return GitHubIssues(
        owner=kwargs.pop("owner", "octo"),
        repo="proj",
        token=kwargs.pop("token", "secret"),
        base_url=base,
        per_page=2,
        sleep=slept.append,
        clock=lambda: CLOCK,
        **kwargs,
    )


def test_github_pagination_and_rate_limits(github: tuple[FakeGitHub, str]) -> None:
    fake, base = github
    client = _client(base)
    issues = client.fetch()
    assert {k: v.is_bug for k, v in issues.issues.items()} == {
        "1": True,  # "00 - Bug"
        "2": False,
        "3": True,  # a pull request labelled "type: bug"
        "4": True,  # GitHub issue type Bug
        "5": False,  # bug + wontfix
    }
    assert issues.issues["3"].kind == "pull_request"
    # Waits: 403 with reset at clock+30 -> 31 s; 429 Retry-After 7 -> 7 s; page 2 left 0 requests with reset
    # at clock+5 -> 6 s before page 3.
    assert client.waits == [31.0, 7.0, 6.0]
    assert client.requests == 5  # page 1 twice, page 2 twice, page 3 once
    first_path, first_query, auth = fake.requests[0]
    assert first_path == "/repos/octo/proj/issues"
    assert first_query["state"] == ["all"]
    assert first_query["per_page"] == ["2"]
    assert auth == "Bearer secret"


def test_github_errors(github: tuple[FakeGitHub, str]) -> None:
    _fake, base = github
    with pytest.raises(ConfigError, match="rejected the token"):
        _client(base, token="wrong").fetch()
    with pytest.raises(NotFoundError, match="not found"):
        _client(base, owner="nobody").fetch()
    with pytest.raises(RateLimitError, match="31 s"):
        _client(base, max_wait=10).fetch()
    with pytest.raises(InputError, match="expected github:OWNER/REPO"):
        GitHubIssues.from_spec("github:just-a-name")


def test_github_cache_fetches_only_updates(github: tuple[FakeGitHub, str], tmp_path: Path) -> None:
    fake, base = github
    fake.limit_first_page = fake.retry_after_page_two = False
    cache = tmp_path / "issues.json"
    first = fetch_github_cached(_client(base), cache, now=datetime(2021, 1, 1, tzinfo=UTC))
    assert not first.issues["2"].is_bug
    fake.requests.clear()
    second = fetch_github_cached(_client(base), cache, now=datetime(2021, 2, 1, tzinfo=UTC))
    # One request with since = the first fetch's time; issue 2 was relabelled as a bug meanwhile.
    assert len(fake.requests) == 1
    assert fake.requests[0][1]["since"] == ["2021-01-01T00:00:00Z"]
    assert second.issues["2"].is_bug
    assert set(second.issues) == {"1", "2", "3", "4", "5"}
