"""Typed records of event-driven scoring: what a webhook asks for, and what the receiver answered.

A GitHub webhook is parsed once, in the receiver, into a :class:`ScoreJob`: the repository, the commits to
score and where the result goes. The stream carries the job as JSON (:meth:`ScoreJob.to_json`), not the
webhook body, so a worker never parses GitHub's payload and a poison payload is refused with 400 before it
is enqueued.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from defectops.errors import InputError

#: The events the receiver scores; any other (``ping`` included) is acknowledged and ignored.
SCORED_EVENTS: Final = frozenset({"push", "pull_request"})
#: The pull-request actions that bring new commits to score.
PR_ACTIONS: Final = frozenset({"opened", "synchronize", "reopened"})
ZERO_SHA: Final = "0" * 40

_SHA = re.compile(r"^[0-9a-f]{40}$")
_DELIVERY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_EVENT = re.compile(r"^[a-z][a-z_]{0,63}$")


class JobKind(StrEnum):
    PUSH = "push"
    PULL_REQUEST = "pull_request"


class Outcome(StrEnum):
    """What the receiver did with a delivery (also the label of its counter in /metrics)."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class ScoreJob:
    """One unit of work for a scoring worker.

    ``commits`` are the shas to score, oldest first; ``head`` is where a pull request's check run goes.
    ``forced`` marks a force-push (the branch's old tip is no longer its ancestor).
    """

    delivery_id: str
    kind: JobKind
    repo: str  # owner/name, lower case
    ref: str
    head: str
    base: str | None = None
    commits: tuple[str, ...] = ()
    forced: bool = False
    pull_number: int | None = None
    received_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "kind": self.kind.value,
            "repo": self.repo,
            "ref": self.ref,
            "head": self.head,
            "base": self.base,
            "commits": list(self.commits),
            "forced": self.forced,
            "pull_number": self.pull_number,
            "received_at": self.received_at,
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> ScoreJob:
        """The job a receiver enqueued (InputError for anything else: a poison message)."""
        try:
            data = json.loads(text)
            return cls(
                delivery_id=str(data["delivery_id"]),
                kind=JobKind(data["kind"]),
                repo=str(data["repo"]),
                ref=str(data["ref"]),
                head=_sha(data["head"], "head"),
                base=None if data.get("base") is None else _sha(data["base"], "base"),
                commits=tuple(_sha(s, "commit") for s in data.get("commits", [])),
                forced=bool(data.get("forced", False)),
                pull_number=None if data.get("pull_number") is None else int(data["pull_number"]),
                received_at=float(data.get("received_at", 0.0)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not a defectops score job: {exc}") from None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The receiver's answer to one delivery."""

    delivery_id: str
    outcome: Outcome
    reason: str = ""
    job: ScoreJob | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"delivery": self.delivery_id, "outcome": self.outcome.value, "reason": self.reason}


def _sha(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA.match(value):
        raise InputError(f"{what} is not a full commit sha: {value!r}")
    return value


def checked_delivery(value: str | None) -> str:
    """The ``X-GitHub-Delivery`` header, checked (InputError when missing or odd)."""
    if value is None or not _DELIVERY.match(value):
        raise InputError("missing or malformed X-GitHub-Delivery header")
    return value


def checked_event(value: str | None) -> str:
    """The ``X-GitHub-Event`` header, checked: GitHub sends it with every delivery, so a request without it
    is not GitHub's (InputError), unlike an event of a kind not scored, which is ignored with a reason."""
    if value is None or not _EVENT.match(value):
        raise InputError("missing or malformed X-GitHub-Event header")
    return value


def _object(payload: Any, key: str) -> dict[str, Any]:
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, dict):
        raise InputError(f"payload has no {key!r} object")
    return value


def repository_name(payload: Any) -> str:
    """``owner/name`` of the payload's repository, lower case (GitHub names are case-insensitive)."""
    name = _object(payload, "repository").get("full_name")
    if not isinstance(name, str) or "/" not in name:
        raise InputError("payload has no repository.full_name")
    return name.lower()


def parse_event(
    event: str, delivery_id: str, payload: Any, *, max_commits: int, received_at: float
) -> ScoreJob | str:
    """The job a webhook asks for, or the reason it asks for none. InputError for a malformed payload."""
    if event not in SCORED_EVENTS:
        return f"event {event!r} is not scored"
    repo = repository_name(payload)
    if event == "push":
        return _push(delivery_id, repo, payload, max_commits, received_at)
    return _pull_request(delivery_id, repo, payload, received_at)


def _push(
    delivery_id: str, repo: str, payload: dict[str, Any], max_commits: int, at: float
) -> ScoreJob | str:
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise InputError("push payload has no ref")
    after = _sha(payload.get("after"), "after")
    before = _sha(payload.get("before"), "before")
    if payload.get("deleted") or after == ZERO_SHA:
        return f"{ref} was deleted"
    if not ref.startswith("refs/heads/"):
        return f"{ref} is not a branch"
    listed = payload.get("commits", [])
    if not isinstance(listed, list):
        raise InputError("push payload's commits is not a list")
    shas: list[str] = []
    for item in listed:
        if not isinstance(item, dict):
            raise InputError("push payload has a commit that is not an object")
        if item.get("distinct", True):  # a commit already on another branch was scored there
            shas.append(_sha(item.get("id"), "commit id"))
    if not shas:
        return f"push to {ref} brought no new commit"
    return ScoreJob(
        delivery_id=delivery_id,
        kind=JobKind.PUSH,
        repo=repo,
        ref=ref,
        head=after,
        base=None if before == ZERO_SHA else before,
        commits=tuple(shas[-max_commits:]),
        forced=bool(payload.get("forced", False)),
        received_at=at,
    )


def _pull_request(delivery_id: str, repo: str, payload: dict[str, Any], at: float) -> ScoreJob | str:
    action = payload.get("action")
    if action not in PR_ACTIONS:
        return f"pull_request action {action!r} brings no new commit"
    pull = _object(payload, "pull_request")
    number = pull.get("number", payload.get("number"))
    if not isinstance(number, int) or isinstance(number, bool):  # JSON's true is a Python int
        raise InputError("pull_request payload has no number")
    head = _object(pull, "head")
    base = _object(pull, "base")
    ref = head.get("ref")
    return ScoreJob(
        delivery_id=delivery_id,
        kind=JobKind.PULL_REQUEST,
        repo=repo,
        ref=f"refs/pull/{number}/head" if not isinstance(ref, str) else f"refs/heads/{ref}",
        head=_sha(head.get("sha"), "pull_request.head.sha"),
        base=_sha(base.get("sha"), "pull_request.base.sha"),
        pull_number=number,
        received_at=at,
    )
