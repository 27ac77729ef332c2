"""A scoring worker: take an event from the stream, score its commits, log them, report them, acknowledge.

Exactly-once effects from at-least-once delivery. An event is acknowledged only after its effects are done,
so a worker killed in the middle leaves it pending and another worker takes it over after the visibility
timeout. Every effect is made idempotent instead of hoping a retry never happens:

* prediction rows have ids derived from (repository, commit, model, version, served or shadow; and for a
  Terraform block its path, address and first line), and rows already in the log are not written again: a
  commit has one row per model version (and one per scored block), however often scored. The rows are those
  ``POST /v1/commits/score`` logs (:func:`defectops.ci.report_inputs`, :func:`defectops.ci.block_record`),
  but for the ids: the service's are new for every answer, these are the same on every retry;
* a check run carries ``external_id`` ``defectops:<commit>`` (``defectops:pr-<n>:<head>`` for a pull
  request), and a retry that finds it on the commit does not post another one (a commit status likewise).

Workers sharing a workspace hold a per-repository lock around all of it (:mod:`defectops.events.mirror`).
An event that fails ``max_attempts`` times (including workers dying on it) goes to the dead letters.

A stream that stops answering (Redis restarted, a network blip) or is not up yet when the worker starts (a
pod scheduled before Redis) is waited out, not fatal: every stream call, creating the consumer group at start
included, is retried with a capped backoff, one log line per attempt, for up to ``stream_retry_seconds``, and
the worker then carries on in the same consumer group. An event in hand whose acknowledgement failed stays
pending and is acknowledged once the stream is back; given up, the worker exits (code 11) and the event is
delivered again, to effects that are already idempotent.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TypeVar

from defectops.ci import (
    BlockPrediction,
    ModelSource,
    PredictionReport,
    PredictRequest,
    block_record,
    report_inputs,
    resolve_model,
    run_predict,
)
from defectops.config import Settings, Workspace
from defectops.errors import (
    DefectOpsError,
    EventStreamError,
    EventStreamUnavailableError,
    InputError,
    NotFoundError,
)
from defectops.events.checks import check_run_body, external_id, single, status_body
from defectops.events.github import GitHubClient
from defectops.events.mirror import default_branch, repository_lock, update_mirror
from defectops.events.records import JobKind, ScoreJob
from defectops.events.stream import EventStream, StreamMessage
from defectops.mining import MineOptions, Miner, block_model_name
from defectops.predlog import PredictionLog, PredictionRecord, default_url

log = logging.getLogger("defectops.events")

_IDS = uuid.UUID("5d7f3a8e-2f4b-4c36-9d0e-5f1c0b9a7e21")  # namespace of event prediction ids

T = TypeVar("T")

#: The first wait after a stream call failed for an outage, doubled after each failure up to the cap.
RETRY_FIRST_SECONDS = 1.0
RETRY_CAP_SECONDS = 30.0


def prediction_id(
    repo: str, sha: str, model: str, version: str, served: bool, *, block: BlockPrediction | None = None
) -> str:
    """The prediction id of one commit (or one of its Terraform blocks) scored by one model version (the same
    on every retry). Two blocks of one commit never start on the same line of the same file."""
    key = f"{repo}|{sha}|{model}|{version}|{'served' if served else 'shadow'}"
    if block is not None:
        key += f"|{block.path}|{block.address}|{block.first_line}"
    return str(uuid.uuid5(_IDS, key))


@dataclass
class Models:
    """The champion, and the challenger scored in shadow (if there is one)."""

    champion: ModelSource
    challenger: ModelSource | None
    loaded_at: float
    #: The champion of the repository's block-level model (``<name>-blocks``, #17), as ``defectops predict``
    #: finds it: every added or changed Terraform block of a scored commit is scored and reported too.
    blocks: ModelSource | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing one job did (for logs, tests and benchmarks)."""

    delivery_id: str
    scored: tuple[str, ...]
    logged: int
    reported: int
    already_reported: int
    notes: tuple[str, ...] = ()


@dataclass
class WorkerStats:
    processed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


class _StoppedError(Exception):
    """Stopped (SIGTERM) while waiting for an unreachable stream: the event in hand, if any, stays pending."""


class Worker:
    """Processes events of one stream until stopped; one per process (``defectops events work``)."""

    def __init__(
        self,
        settings: Settings,
        stream: EventStream,
        github: GitHubClient,
        *,
        consumer: str | None = None,
        predictions: PredictionLog | None = None,
    ) -> None:
        self.settings = settings
        self.events = settings.events
        self.workspace = Workspace.from_settings(settings).ensure()
        self.stream = stream
        self.github = github
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.predictions = predictions or PredictionLog.from_url(
            self.events.log_url or default_url(self.workspace.root)
        )
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._models: Models | None = None

    # -- models -------------------------------------------------------------------------------------------

    def models(self) -> Models:
        """Loaded on first use and again every five minutes (a promoted champion is picked up)."""
        if self._models is not None and (
            self.events.model_dir is not None or time.monotonic() - self._models.loaded_at < 300
        ):
            return self._models
        events = self.events
        blocks: ModelSource | None = None  # model folders carry no block model (as `predict --model-dir`)
        if events.model_dir is not None:
            champion = resolve_model(
                model_dir=events.model_dir, model_name=None, alias="", settings=self.settings
            )
            challenger = (
                resolve_model(
                    model_dir=events.challenger_dir, model_name=None, alias="", settings=self.settings
                )
                if events.challenger_dir is not None
                else None
            )
        else:
            name = events.model_name or self._only_model()
            champion = resolve_model(
                model_dir=None, model_name=name, alias="champion", settings=self.settings
            )
            try:
                challenger = resolve_model(
                    model_dir=None, model_name=name, alias="challenger", settings=self.settings
                )
            except DefectOpsError:
                challenger = None
            if not champion.cross_project:
                try:
                    blocks = resolve_model(
                        model_dir=None,
                        model_name=block_model_name(name),
                        alias="champion",
                        settings=self.settings,
                    )
                except NotFoundError:  # not a Terraform repository, or its block model never passed its gate
                    blocks = None
        self._models = Models(champion, challenger, time.monotonic(), blocks)
        return self._models

    def _only_model(self) -> str:
        from defectops.registry import ModelRegistry, choose_model_name

        chosen = choose_model_name(
            ModelRegistry.from_settings(self.settings).list_models(), "", "DEFECTOPS_EVENTS_MODEL_NAME"
        )
        if not chosen:
            raise NotFoundError("no registered model has a champion: set DEFECTOPS_EVENTS_MODEL_NAME")
        return chosen

    # -- the loop -----------------------------------------------------------------------------------------

    def stop(self, *_args: object) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(
        self,
        *,
        max_events: int | None = None,
        idle_exit: bool = False,
        on_ready: Callable[[], None] | None = None,
    ) -> WorkerStats:
        """Process events until stopped, ``max_events`` were handled, or (``idle_exit``) none is waiting.

        The stream is prepared first (its consumer group created), retried as any stream call: a worker
        started while its stream is unreachable waits for it; ``on_ready`` is called once it is prepared (the
        CLI says then, not before, that the worker is waiting for events). EventStreamError when the stream
        refused a call, or stayed unreachable for ``stream_retry_seconds``.
        """
        handled = 0
        try:
            # A stream not up yet (a pod started before Redis) is waited out like one that goes away later.
            self._on_stream(self.stream.prepare)
            if on_ready is not None:
                on_ready()
            while not self._stop.is_set():
                messages = self._on_stream(
                    lambda: self.stream.receive(self.consumer, count=1, block_ms=self.events.block_ms)
                )
                if not messages and idle_exit:
                    break
                for message in messages:
                    self.handle(message)
                    handled += 1
                if max_events is not None and handled >= max_events:
                    break
        except _StoppedError:
            pass  # an event in hand stays pending: delivered again, to idempotent effects
        return self.stats

    def handle(self, message: StreamMessage) -> None:
        """One delivery: process and acknowledge, or note the failure, or give up on it."""
        limit = self.events.max_attempts
        if message.attempts > limit:
            self._give_up(message, f"no attempt finished in {limit} deliveries (workers died on it)")
            return
        try:
            job = ScoreJob.from_json(message.body)
        except InputError as exc:
            self._give_up(message, str(exc))
            return
        try:
            outcome = self.process(job)
        except Exception as exc:  # any failure: retried, then dead-lettered
            reason = f"{type(exc).__name__}: {exc}"
            self.stats.failed += 1
            log.warning("delivery %s attempt %d failed: %s", job.delivery_id, message.attempts, reason)
            if message.attempts >= limit:
                self._give_up(message, f"failed {message.attempts} times: {reason}")
            else:
                self._on_stream(lambda: self.stream.note_failure(message, reason))
            return
        self._on_stream(lambda: self.stream.ack(message))
        self.stats.processed += 1
        self.stats.outcomes.append(outcome)
        log.info(
            "delivery %s: scored %d commit(s), logged %d prediction(s), reported %d (%d already reported)",
            job.delivery_id,
            len(outcome.scored),
            outcome.logged,
            outcome.reported,
            outcome.already_reported,
        )

    def _give_up(self, message: StreamMessage, reason: str) -> None:
        self._on_stream(lambda: self.stream.dead_letter(message, reason))
        self.stats.dead_lettered += 1
        log.error("delivery %s moved to the dead letters: %s", message.delivery_id, reason)

    def _on_stream(self, call: Callable[[], T]) -> T:
        """``call`` on the stream, retried while its server is unreachable (_StoppedError: stopped meanwhile).

        One log line per failed attempt (the server without credentials, what failed, the wait), waits of
        1, 2, 4, ... up to 30 s, and a line when it answers again. After ``stream_retry_seconds`` of outage
        (0: never) an EventStreamError saying so ends the worker, so an orchestrator restarts it and a
        lasting outage shows as restarts, not as a worker that looks alive and does nothing."""
        limit = self.events.stream_retry_seconds
        since: float | None = None
        server = "the stream"
        wait = RETRY_FIRST_SECONDS
        while True:
            try:
                result = call()
            except EventStreamUnavailableError as exc:
                now, server = time.monotonic(), exc.server
                since = now if since is None else since
                left = limit - (now - since) if limit else wait
                if left <= 0:
                    raise EventStreamError(
                        f"{exc.server} unreachable for {now - since:.0f} s, giving up "
                        f"(DEFECTOPS_EVENTS_STREAM_RETRY_SECONDS={limit:g}): {exc.cause}"
                    ) from None
                pause = min(wait, left)
                log.warning(
                    "%s unreachable: %s; retrying in %ss", exc.server, exc.cause.rstrip("."), f"{pause:.3g}"
                )
                if self._stop.wait(pause):
                    raise _StoppedError from None
                wait = min(wait * 2, RETRY_CAP_SECONDS)
                continue
            if since is not None:
                log.warning("%s reachable again after %.0f s: carrying on", server, time.monotonic() - since)
            return result

    # -- one job ------------------------------------------------------------------------------------------

    def process(self, job: ScoreJob) -> Outcome:
        source = self.events.repositories.get(job.repo)
        if source is None:
            raise NotFoundError(f"repository {job.repo} is not configured (DEFECTOPS_EVENTS_REPOSITORIES)")
        models = self.models()
        wanted = job.commits if job.kind is JobKind.PUSH else (job.head,)
        with repository_lock(self.workspace.root, job.repo):
            mirror = update_mirror(self.workspace.root, job.repo, source, wanted)
            notes: list[str] = []
            request = (
                PredictRequest(repo=mirror.path, commits=job.commits)
                if job.kind is JobKind.PUSH
                else PredictRequest(repo=mirror.path, range_=f"{job.base}..{job.head}")
            )
            try:
                report = run_predict(
                    request, models.champion, self.workspace, note=notes.append, block_model=models.blocks
                )
            except InputError as exc:
                if job.kind is JobKind.PULL_REQUEST:  # e.g. no commit between base and head: nothing to do
                    return Outcome(job.delivery_id, (), 0, 0, 0, (str(exc),))
                raise
            shadow = (
                run_predict(request, models.challenger, self.workspace)
                if models.challenger is not None
                else None
            )
            logged = self._log(job, report, shadow)
            reported, already = self._report(job, report)
            if job.kind is JobKind.PUSH and job.ref == default_branch(mirror):
                # keep the miner state near the branch tip, so the next push applies few commits
                Miner(mirror, self.workspace, MineOptions(rev="HEAD", allow_shallow=True)).mine()
        for note in notes:
            log.info("delivery %s: %s", job.delivery_id, note)
        return Outcome(
            job.delivery_id, tuple(c.sha for c in report.commits), logged, reported, already, tuple(notes)
        )

    def _log(self, job: ScoreJob, report: PredictionReport, shadow: PredictionReport | None) -> int:
        """Write the rows of this job that are not in the log yet; the number written.

        The champion's rows (and its blocks'), and the challenger's in shadow, with the inputs the service
        logs: the same for both models, as the service logs them (the commit's, not the model's)."""
        now = datetime.now(UTC)
        inputs = report_inputs(report)
        rows: list[PredictionRecord] = []
        served_ids: dict[str, str] = {}
        for served, scored in ((True, report), (False, shadow)):
            if scored is None:
                continue
            for commit in scored.commits:
                name, version = commit.scored.model_name, commit.scored.model_version
                pid = prediction_id(job.repo, commit.sha, name, version, served)
                if served:
                    served_ids[commit.sha] = pid
                probability = float(commit.scored.probability)
                rows.append(
                    PredictionRecord(
                        prediction_id=pid,
                        created_at=now,
                        model_name=name,
                        model_version=version,
                        served=served,
                        inputs=inputs.get(commit.sha, commit.features),
                        score=probability,
                        threshold=float(commit.scored.threshold),
                        risk_label=1 if probability >= commit.scored.threshold else 0,
                        risk_band=commit.band.value,
                        repo=job.repo,
                        commit_sha=commit.sha,
                        shadow_of=None if served else served_ids.get(commit.sha),
                    )
                )
        for commit in report.commits:  # the block champion's, served with the commit (#17)
            for block in commit.blocks:
                scored_block = block.scored
                pid = prediction_id(
                    job.repo,
                    commit.sha,
                    scored_block.model_name,
                    scored_block.model_version,
                    True,
                    block=block,
                )
                rows.append(block_record(pid, block, repo=job.repo, sha=commit.sha, now=now))
        for _ in range(3):
            present = {
                r.prediction_id
                for sha in {row.commit_sha for row in rows if row.commit_sha}
                for r in self.predictions.by_commit(job.repo, sha)
            }
            fresh = [row for row in rows if row.prediction_id not in present]
            try:
                return self.predictions.record(fresh)
            except InputError:  # another worker wrote one of them in between: read again
                continue
        raise InputError(f"delivery {job.delivery_id}: could not log its predictions without duplicates")

    def _report(self, job: ScoreJob, report: PredictionReport) -> tuple[int, int]:
        """Post the check runs (or statuses) that are not on GitHub yet: (posted, already there)."""
        events = self.events
        information_uri = self.settings.report.information_uri
        if job.kind is JobKind.PUSH:
            targets = [(c.sha, c.sha, single(report, c.sha), events.check_name) for c in report.commits]
        else:
            key = f"pr-{job.pull_number}:{job.head}"
            targets = [(job.head, key, report, f"{events.check_name} (pull request)")]
        posted = already = 0
        for sha, key, part, name in targets:
            if events.report == "status":
                body = status_body(part, context=name)
                if self.github.find_status(job.repo, sha, name, body["description"]):
                    already += 1
                    continue
                self.github.create_status(job.repo, sha, body)
            else:
                if self.github.find_check_run(job.repo, sha, name, external_id(key)) is not None:
                    already += 1
                    continue
                self.github.create_check_run(
                    job.repo,
                    check_run_body(part, name=name, head_sha=sha, key=key, information_uri=information_uri),
                )
            posted += 1
        return posted, already
