"""The prediction log: every answered prediction, and the late ground truth that joins it.

Why a SQL store: monitoring and retraining need, months later, exactly what the service answered (inputs,
score, model version, served or shadow) next to the label that arrived weeks after. SQLite in WAL mode in the
workspace is the embedded default (no server to run); PostgreSQL by URL for a service with several workers.

The durability guarantee (see docs/storage.md): :meth:`PredictionLog.record` returns only after the
transaction holding the whole batch has committed. The service answers a request only after ``record``
returned, so nothing that was answered can be lost by a graceful stop or by a kill of the process; a batch
that was not acknowledged is either wholly in the log or wholly absent. How far beyond a kill it holds is the
:data:`Durability` level: ``kill`` (the default; SQLite WAL with ``synchronous=NORMAL``: the commit is in the
WAL file, which the operating system keeps through a kill of the process, and is fsynced at checkpoints) or
``power-loss`` (SQLite ``synchronous=FULL``: every commit waits for an fsync). PostgreSQL always runs with
``synchronous_commit=on`` forced for every session (the commit waits for the server's WAL flush).

Feedback (labels) joins predictions by prediction id or by (repo, commit sha). It is idempotent and keeps its
history: the same label twice for the same target is one row; a different label supersedes the current one
(the latest received wins) and the older row stays with ``superseded_at`` set, so a monitoring run can be
replayed "as of" any past time.

Modules: :mod:`~defectops.predlog.records` (checked records), :mod:`~defectops.predlog.schema` (the tables),
:mod:`~defectops.predlog.migrations` (bringing an older log's tables up to date when it is opened),
:mod:`~defectops.predlog.engine` (URLs, engines, transactions), :mod:`~defectops.predlog.writes` (recording
predictions), :mod:`~defectops.predlog.feedback` (labels), :mod:`~defectops.predlog.reads` (windows and
counts); this module is the facade over them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import URL, Engine

from defectops.predlog.engine import DEFAULT_DURABILITY, Durability, Store, default_url, open_engine
from defectops.predlog.feedback import (
    FeedbackOutcome,
    FeedbackRecord,
    StoredFeedback,
    read_feedback_history,
    record_feedback,
)
from defectops.predlog.migrations import migrate
from defectops.predlog.reads import (
    LogCounts,
    get_prediction,
    predictions_by_commit,
    read_counts,
    read_window,
    repos_of_commits,
)
from defectops.predlog.records import PredictionRecord
from defectops.predlog.reviews import ReviewRecord, StoredReview, read_reviews, record_review
from defectops.predlog.summary import WindowSummary, count_between, riskiest, window_summaries
from defectops.predlog.writes import record_predictions

__all__ = ["PredictionLog"]


class PredictionLog:
    """The prediction store (SQLAlchemy Core; SQLite or PostgreSQL). Thread-safe; one instance per process."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine made by :meth:`from_url` (which configures durability); use that instead."""
        self._store = Store(engine)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_url(
        cls, url: str | URL | os.PathLike[str], durability: Durability = DEFAULT_DURABILITY
    ) -> PredictionLog:
        """Open (and create the tables of) the log at ``url``.

        ``sqlite:///PATH`` (parent folders are created) or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``
        (``postgresql://`` means the same); a :class:`~pathlib.Path` is the SQLite file at that path.
        ``durability`` applies to SQLite (see :data:`Durability`). Raises :class:`ConfigError` for anything
        else and :class:`PredictionLogError` when the database cannot be reached.
        """
        if isinstance(url, os.PathLike):
            url = f"sqlite:///{Path(url).expanduser().resolve().as_posix()}"
        log = cls(open_engine(url, durability))
        log._store.create_tables()
        try:
            migrate(log.engine)  # a log made by an earlier version (three risk bands)
        except BaseException:
            log.close()
            raise
        return log

    @classmethod
    def for_workspace(cls, workspace_root: str | os.PathLike[str]) -> PredictionLog:
        """The embedded default store of a workspace (``<workspace>/predictions.db``); a str or a Path."""
        return cls.from_url(default_url(workspace_root))

    @property
    def url(self) -> str:
        """The database URL with the password hidden (safe to log)."""
        return self._store.url

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._store.dialect

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for inspection and migrations; writes should go through this class."""
        return self._store.engine

    def close(self) -> None:
        """Close every pooled connection (SQLite then checkpoints its WAL into the database file)."""
        self._store.engine.dispose()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- predictions --------------------------------------------------------------------------------

    def record(self, batch: Sequence[PredictionRecord]) -> int:
        """Write a batch of predictions in one transaction; return the number written, after the commit.

        This is the durability point: when it returns, every row of the batch is committed and flushed; when
        it raises, none is. Prediction ids must be new (a repeated id raises :class:`InputError`, nothing is
        written).
        """
        return record_predictions(self._store, batch)

    def get(self, prediction_id: str) -> PredictionRecord:
        """One logged prediction by id (:class:`NotFoundError` if it was never logged)."""
        return get_prediction(self._store, prediction_id)

    def by_commit(self, repo: str, commit_sha: str) -> list[PredictionRecord]:
        """Every prediction logged for one commit (served and shadow), oldest first."""
        return predictions_by_commit(self._store, repo, commit_sha)

    def repos_of(self, commit_shas: Iterable[str]) -> set[str]:
        """The repository ids under which predictions of these commits were logged."""
        return repos_of_commits(self._store, commit_shas)

    # -- feedback -----------------------------------------------------------------------------------

    def add_feedback(self, feedback: FeedbackRecord, *, now: datetime) -> FeedbackOutcome:
        """Record one label (see :meth:`add_feedback_batch`)."""
        return self.add_feedback_batch([feedback], now=now)[0]

    def add_feedback_batch(self, batch: Sequence[FeedbackRecord], *, now: datetime) -> list[FeedbackOutcome]:
        """Record labels idempotently, all in one transaction, received at ``now``.

        Per target (prediction id, or repo + sha): the same label as the current one is a no-op
        (``duplicate``); a different label supersedes it (``replaced``: the old row gets
        ``superseded_at = now`` and stays as history, the new row names it in ``supersedes``); the latest
        received label wins. Feedback by id for a prediction that was never logged raises
        :class:`NotFoundError` and nothing of the batch is written; feedback by commit is accepted even before
        any prediction of that commit was logged.
        """
        return record_feedback(self._store, batch, now=now)

    def feedback_history(
        self,
        *,
        prediction_id: str | None = None,
        repo: str | None = None,
        commit_sha: str | None = None,
    ) -> list[StoredFeedback]:
        """Every feedback row of one target (current and superseded), in the order received."""
        return read_feedback_history(
            self._store, prediction_id=prediction_id, repo=repo, commit_sha=commit_sha
        )

    # -- reviewer feedback (apart from labels; see defectops.predlog.reviews) ------------------------

    def add_review(self, review: ReviewRecord, *, now: datetime) -> StoredReview:
        """Append a reviewer's answer to "was this right?" (:class:`NotFoundError` for an unknown id)."""
        return record_review(self._store, review, now=now)

    def reviews(self, prediction_ids: Sequence[str]) -> list[StoredReview]:
        """Every reviewer answer about these predictions, in the order received."""
        return read_reviews(self._store, prediction_ids)

    # -- aggregates for the web UI (see defectops.predlog.summary) ----------------------------------

    def riskiest(
        self,
        *,
        since: datetime,
        repo: str | None = None,
        band: str | None = None,
        model_name: str | None = None,
        limit: int = 200,
    ) -> list[PredictionRecord]:
        """The riskiest served commit predictions since ``since``, one per commit (its latest)."""
        return riskiest(self._store, since=since, repo=repo, band=band, model_name=model_name, limit=limit)

    def count_between(self, edges: Sequence[datetime], *, served: bool = True) -> list[int]:
        """Predictions created between consecutive ``edges``."""
        return count_between(self._store, edges, served=served)

    def window_summaries(
        self, edges: Sequence[datetime], *, model_name: str | None = None
    ) -> list[WindowSummary]:
        """Score histogram, label sources and reviewer answers of the served predictions per window."""
        return window_summaries(self._store, edges, model_name=model_name)

    # -- reading for monitoring ---------------------------------------------------------------------

    def window(
        self,
        since: datetime,
        until: datetime,
        *,
        model_version: str | None = None,
        model_name: str | None = None,
        served: bool | None = None,
        as_of: datetime | None = None,
        labeled_only: bool = False,
    ) -> pd.DataFrame:
        """Predictions created in ``[since, until)`` with inputs as columns and their labels joined.

        Columns: :data:`PREDICTION_COLUMNS` (``label`` is nullable ``Int64``; times are UTC), then one column
        per input name, sorted by name (listed in ``frame.attrs["feature_columns"]``); rows ordered by
        ``created_at``, then id. A prediction's label is, in this order of precedence, the current feedback
        for its own id, for the prediction it shadows (``shadow_of``), or for its (repo, commit_sha).
        ``as_of`` replays the past: only feedback received at or before it, as it stood then.
        """
        return read_window(
            self._store,
            since,
            until,
            model_version=model_version,
            model_name=model_name,
            served=served,
            as_of=as_of,
            labeled_only=labeled_only,
        )

    def joined(
        self,
        since: datetime,
        until: datetime,
        *,
        model_version: str | None = None,
        model_name: str | None = None,
        served: bool | None = None,
        as_of: datetime | None = None,
    ) -> pd.DataFrame:
        """Only the labelled predictions of :meth:`window` (same columns): input of realised performance."""
        return self.window(
            since,
            until,
            model_version=model_version,
            model_name=model_name,
            served=served,
            as_of=as_of,
            labeled_only=True,
        )

    def counts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        as_of: datetime | None = None,
    ) -> LogCounts:
        """How many predictions (served, shadow, labelled, per model version) and feedback rows there are."""
        return read_counts(self._store, since, until, as_of=as_of)
