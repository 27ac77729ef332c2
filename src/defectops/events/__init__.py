"""Event-driven scoring: signed GitHub webhooks -> a durable stream -> scoring workers -> checks on the PR.

``defectops events serve`` runs :func:`create_receiver`; ``defectops events work`` runs a :class:`Worker`.
See docs/events.md.
"""

from defectops.events.github import GitHubClient
from defectops.events.receiver import create_receiver, receive
from defectops.events.records import JobKind, Outcome, Receipt, ScoreJob, parse_event
from defectops.events.signature import sign, verify
from defectops.events.stream import EventStream, StreamMessage, StreamStats, open_stream
from defectops.events.worker import Worker, WorkerStats, prediction_id

__all__ = [
    "EventStream",
    "GitHubClient",
    "JobKind",
    "Outcome",
    "Receipt",
    "ScoreJob",
    "StreamMessage",
    "StreamStats",
    "Worker",
    "WorkerStats",
    "create_receiver",
    "open_stream",
    "parse_event",
    "prediction_id",
    "receive",
    "sign",
    "verify",
]
