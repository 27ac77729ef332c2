"""Issue references in commit messages, resolved against an issue list: only a bug makes a fix.

Why: ``#123`` in a message is as likely to close a feature request, a chore or a pull request as a bug. With
an issue list (a CSV/JSON export from any tracker, or GitHub's REST API) a reference is classified by the
issue it names: a commit that references known issues is a fix exactly when one of them is a bug, and the
earliest bug's creation date bounds the defect-inducing candidates (SZZ's issue-date filter). Without an
issue list, or when a message references no known issue, the message rules of
:mod:`defectops.mining.fixes` decide alone.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from defectops.errors import ConfigError, InputError, NotFoundError, RateLimitError
from defectops.locks import replace_atomically

DEFAULT_BUG_PATTERN = r"\b(?:bug|bugs|defect|regression|crash|fault)\b"
DEFAULT_NOT_BUG_PATTERN = r"\b(?:not\s*a\s*bug|invalid|wontfix|won'?t\s*fix|works\s*as\s*intended)\b"

_REFERENCES = re.compile(
    r"(?:(?<![\w/&])#(?P<hash>\d+)\b)"  # #123 (not &#123; HTML entities, not a/b#1 anchors)
    r"|(?:\bgh-(?P<gh>\d+)\b)"  # gh-123 (numpy, CPython)
    r"|(?:/(?:issues|pull|pulls)/(?P<url>\d+)\b)"  # https://github.com/o/r/issues/123
    r"|(?:\b(?P<key>[A-Z][A-Z0-9]{1,15}-\d+)\b)",  # JIRA-style keys, PROJ-123 (case-sensitive)
    re.IGNORECASE,
)


def issue_references(message: str) -> list[str]:
    """Issue ids a message mentions, normalised: ``#12``/``gh-12``/``.../issues/12`` -> ``12``, ``ABC-7``."""
    found: list[str] = []
    for match in _REFERENCES.finditer(message):
        key = match.group("key")
        if key is not None:
            if not key[0].isupper() or key.split("-", 1)[0].lower() == "gh":
                continue  # JIRA keys are upper case; gh-12 is the GitHub form, handled above
            ref = key
        else:
            ref = match.group("hash") or match.group("gh") or match.group("url") or ""
        if ref and ref not in found:
            found.append(ref)
    return found


@dataclass(frozen=True, slots=True)
class Issue:
    """One tracker entry: id (as referenced in messages), whether it is a bug, and when it was reported."""

    id: str
    is_bug: bool
    created_at: datetime | None = None
    kind: str = "issue"


@dataclass(frozen=True)
class BugRules:
    """How an issue's type and labels decide whether it is a bug (regexes, case-insensitive)."""

    bug_pattern: str = DEFAULT_BUG_PATTERN
    not_bug_pattern: str = DEFAULT_NOT_BUG_PATTERN

    def is_bug(self, type_: str | None, labels: Sequence[str]) -> bool:
        try:
            bug = re.compile(self.bug_pattern, re.IGNORECASE)
            not_bug = re.compile(self.not_bug_pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"invalid bug rule regex: {exc}") from exc
        names = [n for n in [type_ or "", *labels] if n]
        if any(not_bug.search(n) for n in names):
            return False
        return any(bug.search(n) for n in names)


@dataclass
class IssueList:
    """Issues by id. ``source`` says where they came from (a file path or a GitHub repository)."""

    issues: dict[str, Issue] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.issues)

    def get(self, ref: str) -> Issue | None:
        return self.issues.get(ref) or self.issues.get(ref.upper())

    def fingerprint(self) -> str:
        """A short digest of the content, so that stored labels are redone when the issue list changes."""
        import hashlib

        digest = hashlib.sha256()
        for key in sorted(self.issues):
            issue = self.issues[key]
            stamp = issue.created_at.isoformat() if issue.created_at else ""
            digest.update(f"{key}\x1f{issue.is_bug}\x1f{stamp}\x1e".encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class IssueDecision:
    """What the issue list says about one message: referenced bugs, other known issues, earliest bug date."""

    bugs: tuple[str, ...]
    non_bugs: tuple[str, ...]
    reported_at: datetime | None

    @property
    def known(self) -> bool:
        return bool(self.bugs or self.non_bugs)


def decide(message: str, issues: IssueList | None) -> IssueDecision:
    """Classify a message's references; ``reported_at`` is the earliest creation date of a referenced bug."""
    if issues is None or not issues.issues:
        return IssueDecision((), (), None)
    bugs: list[str] = []
    others: list[str] = []
    dates: list[datetime] = []
    for ref in issue_references(message):
        issue = issues.get(ref)
        if issue is None:
            continue
        if issue.is_bug:
            bugs.append(issue.id)
            if issue.created_at is not None:
                dates.append(issue.created_at)
        else:
            others.append(issue.id)
    return IssueDecision(tuple(bugs), tuple(others), min(dates) if dates else None)


# -- files ---------------------------------------------------------------------------------------------------


def _parse_time(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{where}: created_at {text!r} is not an ISO 8601 date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _normalise_id(value: Any) -> str:
    text = str(value).strip()
    if text.startswith("#"):
        text = text[1:]
    if text.lower().startswith("gh-"):
        text = text[3:]
    return text


def _labels_of(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in re.split(r"[;,|]", value) if p.strip()]
    names: list[str] = []
    for item in value:
        if isinstance(item, Mapping):
            name = item.get("name")
            if name:
                names.append(str(name))
        elif item is not None:
            names.append(str(item))
    return names


def _type_of(value: Any) -> str | None:
    if isinstance(value, Mapping):  # GitHub issue types: {"name": "Bug", ...}
        name = value.get("name")
        return str(name) if name else None
    return None if value is None else str(value)


def issue_from_record(record: Mapping[str, Any], rules: BugRules, where: str) -> Issue:
    """One issue from a CSV row or JSON object (``id``/``number``/``key``, ``type``/``labels``,
    ``created_at``)."""
    lowered = {str(k).lower().strip(): v for k, v in record.items()}
    raw_id = next(
        (lowered[k] for k in ("id", "number", "key", "issue") if lowered.get(k) not in (None, "")), None
    )
    if raw_id is None:
        raise InputError(f"{where}: an issue without id/number/key")
    type_ = _type_of(lowered.get("type") or lowered.get("issue_type") or lowered.get("kind"))
    labels = _labels_of(lowered.get("labels"))
    created = _parse_time(lowered.get("created_at") or lowered.get("created"), where)
    marker = lowered.get("pull_request")
    is_pull = marker is not None and str(marker).strip().lower() not in ("", "false", "0", "no")
    kind = "pull_request" if is_pull else "issue"
    return Issue(_normalise_id(raw_id), rules.is_bug(type_, labels), created, kind)


def load_issues(path: Path, rules: BugRules | None = None) -> IssueList:
    """Read an issue export: CSV with a header, a JSON array, or ``{"issues": [...]}`` (GitHub objects
    work)."""
    rules = rules or BugRules()
    if not path.is_file():
        raise InputError(f"{path}: no such issue file")
    text = path.read_text(encoding="utf-8-sig")
    records: Iterable[Mapping[str, Any]]
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if isinstance(data, Mapping):
            data = data.get("issues", data.get("items"))
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise InputError(f"{path}: expected a JSON array of issue objects")
        records = data
    else:
        reader = csv.DictReader(io.StringIO(text))
        fields_ = {f.lower().strip() for f in reader.fieldnames or []}
        if not fields_ & {"id", "number", "key", "issue"}:
            raise InputError(f"{path}: the CSV needs an 'id' column (found: {', '.join(sorted(fields_))})")
        if not fields_ & {"type", "labels", "issue_type", "kind"}:
            raise InputError(f"{path}: the CSV needs a 'type' or 'labels' column")
        records = list(reader)
    issues = IssueList(source=str(path))
    for n, record in enumerate(records, start=1):
        issue = issue_from_record(record, rules, f"{path}: issue {n}")
        issues.issues[issue.id] = issue
    return issues


# -- GitHub --------------------------------------------------------------------------------------------------


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^",;]+)"?')


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header, as GitHub sends it for pagination."""
    if not header:
        return None
    for url, rel in _LINK.findall(header):
        if "next" in rel.split():
            return str(url)
    return None


@dataclass
class GitHubIssues:
    """Reads all issues and pull requests of a repository through GitHub's REST API.

    Pagination follows ``Link: rel="next"``. Rate limits: a 403/429 with ``Retry-After`` waits that long; one
    with ``X-RateLimit-Remaining: 0`` waits until ``X-RateLimit-Reset``; a page that leaves 0 requests waits
    before the next page. A wait longer than ``max_wait`` seconds raises :class:`RateLimitError`. ``base_url``
    points the client at GitHub Enterprise or at a local server in tests; ``sleep``/``clock`` are injectable
    so tests never wait.
    """

    owner: str
    repo: str
    token: str | None = None
    base_url: str = "https://api.github.com"
    per_page: int = 100
    max_wait: float = 3600.0
    retries: int = 3
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    rules: BugRules = field(default_factory=BugRules)
    waits: list[float] = field(default_factory=list)
    requests: int = 0

    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> GitHubIssues:
        """``github:owner/repo`` -> a client."""
        body = spec.removeprefix("github:")
        owner, sep, repo = body.partition("/")
        if not sep or not owner or not repo or "/" in repo:
            raise InputError(f"{spec!r}: expected github:OWNER/REPO")
        return cls(owner=owner, repo=repo, **kwargs)

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "defectops",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _wait(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        if seconds > self.max_wait:
            raise RateLimitError(
                f"GitHub rate limit: the next request is allowed in {seconds:.0f} s, more than the "
                f"{self.max_wait:.0f} s allowed; try later or use a token"
            )
        self.waits.append(seconds)
        self.sleep(seconds)

    def _limited_wait(self, headers: Mapping[str, str]) -> float | None:
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return float(retry_after)
            except ValueError:
                return 60.0
        if headers.get("x-ratelimit-remaining") == "0":
            reset = headers.get("x-ratelimit-reset")
            if reset is not None:
                return float(reset) - self.clock() + 1.0
            return 60.0
        return None

    def fetch(self, since: datetime | None = None) -> IssueList:
        """Every issue and pull request (``state=all``), optionally only those updated since ``since``."""
        import httpx

        params: dict[str, str | int] = {"state": "all", "per_page": self.per_page, "sort": "created"}
        if since is not None:
            params["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = self.base_url.rstrip("/")
        url: str | None = f"{base}/repos/{self.owner}/{self.repo}/issues?{urlencode(params)}"
        issues = IssueList(source=f"github:{self.owner}/{self.repo}")
        with httpx.Client(headers=self._headers(), timeout=self.timeout, follow_redirects=True) as client:
            while url is not None:
                response = self._get(client, url)
                payload = response.json()
                if not isinstance(payload, list):
                    raise InputError(f"{url}: GitHub returned {type(payload).__name__}, expected a list")
                for record in payload:
                    if isinstance(record, Mapping):
                        issue = issue_from_record(record, self.rules, issues.source)
                        issues.issues[issue.id] = issue
                url = next_link(response.headers.get("link"))
                if url is not None and response.headers.get("x-ratelimit-remaining") == "0":
                    reset = response.headers.get("x-ratelimit-reset")
                    self._wait(float(reset) - self.clock() + 1.0 if reset else 60.0)
        return issues

    def _get(self, client: Any, url: str) -> Any:
        failures = 0
        while True:
            self.requests += 1
            try:
                response = client.get(url)
            except Exception as exc:  # httpx.TransportError and friends: the network, not the user
                failures += 1
                if failures > self.retries:
                    raise InputError(f"GitHub: cannot reach {url}: {exc}") from exc
                self._wait(2.0**failures)
                continue
            status = response.status_code
            if status == 200:
                return response
            if status in (403, 429):
                wait = self._limited_wait(response.headers)
                if wait is not None:
                    self._wait(wait)
                    continue
                raise ConfigError(f"GitHub refused {url} ({status}): {_message(response)}")
            if status == 401:
                raise ConfigError(f"GitHub rejected the token ({status}): {_message(response)}")
            if status == 404:
                raise NotFoundError(f"GitHub: repository {self.owner}/{self.repo} not found (or no access)")
            if status >= 500 and failures < self.retries:
                failures += 1
                self._wait(2.0**failures)
                continue
            raise InputError(f"GitHub: {url} answered {status}: {_message(response)}")


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:200]
    if isinstance(body, Mapping) and "message" in body:
        return str(body["message"])
    return str(body)[:200]


def _issue_to_json(issue: Issue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "is_bug": issue.is_bug,
        "created_at": issue.created_at.isoformat() if issue.created_at else None,
        "kind": issue.kind,
    }


def fetch_github_cached(client: GitHubIssues, cache: Path, *, now: datetime) -> IssueList:
    """GitHub issues with a local cache: the first call reads everything, later calls only what changed.

    The cache (JSON) stores each issue's classification and the time of the last fetch; GitHub's ``since``
    returns issues updated after it (a relabelled issue is updated, so reclassification is picked up).
    """
    issues = IssueList(source=f"github:{client.owner}/{client.repo}")
    since: datetime | None = None
    if cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            for record in data.get("issues", []):
                created = record.get("created_at")
                issue = Issue(
                    id=str(record["id"]),
                    is_bug=bool(record["is_bug"]),
                    created_at=datetime.fromisoformat(created) if created else None,
                    kind=str(record.get("kind", "issue")),
                )
                issues.issues[issue.id] = issue
            if data.get("source") == issues.source and data.get("fetched_at"):
                since = datetime.fromisoformat(data["fetched_at"])
            else:
                issues.issues.clear()
        except (ValueError, KeyError, TypeError):
            issues.issues.clear()  # a damaged cache is refetched, not trusted
            since = None
    fresh = client.fetch(since=since)
    issues.issues.update(fresh.issues)
    cache.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "source": issues.source,
        "fetched_at": now.astimezone(UTC).isoformat(),
        "issues": [_issue_to_json(i) for i in issues.issues.values()],
    }
    text = json.dumps(body)
    replace_atomically(cache, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return issues
