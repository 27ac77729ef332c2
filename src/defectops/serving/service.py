"""The service behind the routes: score, log, then answer.

Every answered prediction follows the same path: read the current :class:`Deployment` once, build a NumPy
matrix of the model's features (no pandas for records sent as JSON), route each record by the hash of its
new prediction id (champion, canary challenger, or champion plus a shadow challenger score), score each
group with its model's exact scorer (those steps: :mod:`defectops.serving.answers`), hand the served and
shadow rows to the group-commit writer, and only after the commit return the JSON answer. Nothing is
answered that is not in the log.

Small requests are scored on the event loop (a LightGBM row takes a fraction of a millisecond; a thread hop
would cost more); large batches and mining go to a worker thread so they do not stall other requests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import pandas as pd
from pydantic_core import to_json

from defectops.ci import logged_columns
from defectops.config import ServeSettings, Settings, Workspace
from defectops.data import DIFF
from defectops.errors import InputError, ModelError, NotFoundError, PayloadTooLargeError
from defectops.predlog import FeedbackOutcome, FeedbackRecord, PredictionLog, PredictionRecord, default_url
from defectops.registry import ModelRegistry
from defectops.serving.answers import RowBatch, answer, frame_batch, new_prediction_ids, records_batch
from defectops.serving.blocks import BlockScorer, ScoredBlocks
from defectops.serving.control import ControlFile
from defectops.serving.deployment import Deployment, ServingModel
from defectops.serving.gauges import PublishedGauges, published_gauges_path
from defectops.serving.manager import Clock, ModelManager
from defectops.serving.metrics import ServiceMetrics
from defectops.serving.schemas import ChangeRecord, CommitScoreRequest, ModelOut, RiskBandsOut
from defectops.serving.writer import LogWriter
from defectops.training import check_finite

Render = Callable[[list[dict[str, Any]]], bytes]

#: Requests with more records than this are scored on a worker thread instead of the event loop.
INLINE_ROWS: Final = 64


def _json(body: Any) -> bytes:
    """Compact JSON of an answer (pydantic-core's serializer: about three times :func:`json.dumps`).

    Every number in an answer is finite (inputs are checked, probabilities come from a sigmoid); should one
    not be, it is written as ``null`` rather than as the invalid JSON token ``NaN``."""
    return to_json(body, inf_nan_mode="null")


class PredictionService:
    """Everything one worker holds: the models, the prediction log and its writer, metrics, repositories."""

    def __init__(
        self,
        settings: Settings,
        serve: ServeSettings,
        *,
        admin_token: str,
        registry: ModelRegistry,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.serve = serve
        self.admin_token = admin_token
        self.clock = clock
        self.workspace = Workspace.from_settings(settings)
        self.metrics = ServiceMetrics(serve.metrics_dir)
        control = ControlFile.for_model(self.workspace.root, serve.model_name)
        # Gauges of the latest monitoring result (published by `defectops heal` / `monitor --model-name`).
        self.monitoring_gauges = PublishedGauges(published_gauges_path(control.path))
        self.manager = ModelManager(
            registry,
            serve.model_name,
            control=control,
            metrics=self.metrics,
            clock=clock,
            threshold=serve.threshold,
            retry_seconds=serve.degraded_retry_seconds,
        )
        # The repository's block-level model (#17), scored beside the commits of /v1/commits/score.
        self.blocks = BlockScorer(
            settings, registry, serve.model_name, clock=clock, poll_seconds=serve.poll_seconds
        )
        self.repositories: dict[str, Path] = dict(serve.repositories)
        self._log: PredictionLog | None = None
        self._writer: LogWriter | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the log, start its writer, load the models (blocking; call from a worker thread)."""
        url = self.serve.log_url or default_url(self.workspace.root)
        self._log = PredictionLog.from_url(url, self.serve.log_durability)
        self._writer = LogWriter(
            self._log, max_rows=self.serve.log_commit_rows, observe=self.metrics.observe_commit
        ).start()
        self.manager.start(self.serve.poll_seconds)

    def stop(self) -> None:
        """Stop following the control file, commit every queued prediction, close the log."""
        self.manager.stop()
        if self._writer is not None:
            self._writer.close()
        if self._log is not None:
            self._log.close()

    @property
    def log(self) -> PredictionLog:
        if self._log is None:
            raise ModelError("the service has not started")
        return self._log

    @property
    def writer(self) -> LogWriter:
        if self._writer is None:
            raise ModelError("the service has not started")
        return self._writer

    @property
    def deployment(self) -> Deployment:
        return self.manager.deployment

    # -- predictions ----------------------------------------------------------------------------------

    def _check_size(self, count: int, what: str) -> None:
        if count > self.serve.max_batch:
            raise PayloadTooLargeError(
                f"{count} {what} in one request; the limit is {self.serve.max_batch} "
                "(DEFECTOPS_SERVE_MAX_BATCH)"
            )

    async def predict(self, records: Sequence[ChangeRecord], top_k: int | None) -> bytes:
        """Score records, log them, and return the JSON body of the answer."""
        self._check_size(len(records), "records")
        deployment = self.deployment
        for served in (deployment.champion, deployment.challenger):
            if served is not None and DIFF in served.text_columns:
                meta = served.loaded.meta
                raise InputError(
                    "a hybrid model reads each commit's changed lines, which /v1/predict does not carry: "
                    f"score the commits with POST /v1/commits/score ({meta.name} v{meta.version})"
                )
        batch = records_batch(records)
        top = self.serve.top_k if top_k is None else top_k
        return await self._answer(batch, top, lambda documents: _json({"predictions": documents}))

    async def score_commits(self, request: CommitScoreRequest) -> bytes:
        """Mine the requested commits of a configured repository, score, log, answer."""
        path = self.repositories.get(request.repo)
        if path is None:
            known = ", ".join(sorted(self.repositories)) or "none configured"
            raise NotFoundError(f"unknown repository {request.repo!r} (this service knows: {known})")
        revision = request.commit if request.commit is not None else str(request.range_)
        frame = await anyio.to_thread.run_sync(self._mine, path, revision)
        merges = frame["is_merge"].astype(bool).to_numpy()
        skipped = [str(s) for s in frame.loc[merges, "sha"]]
        frame = frame.loc[~merges].reset_index(drop=True)
        self._check_size(len(frame), "commits")
        champion = self.deployment.champion
        if champion is not None and len(frame):
            check_finite(frame, [f for f in champion.features if f in frame.columns])

        top_k = self.serve.top_k if request.top_k is None else request.top_k
        shas = [str(s) for s in frame["sha"]]
        now = self.clock()
        blocks: ScoredBlocks | None = None
        if shas:
            blocks = await anyio.to_thread.run_sync(
                partial(
                    self.blocks.score,
                    path,
                    shas,
                    request.repo,
                    top_k=top_k,
                    ids=lambda n: new_prediction_ids(n, now),
                    now=now,
                )
            )

        def render(documents: list[dict[str, Any]]) -> bytes:
            if blocks is not None and blocks.documents:
                for document in documents:
                    document["blocks"] = blocks.documents.get(str(document["commit_sha"]), [])
            body = {
                "repo": request.repo,
                "revision": revision,
                "predictions": documents,
                "skipped_merges": skipped,
            }
            if blocks is not None and blocks.notes:
                body["block_notes"] = blocks.notes
            return _json(body)

        if not len(frame):
            return render([])
        # Logged inputs: the change metrics and what the champion chose, as the event workers log them.
        columns = logged_columns(champion.features, champion.text_columns) if champion is not None else []
        batch = frame_batch(frame, request.repo, columns)
        return await self._answer(batch, top_k, render, () if blocks is None else blocks.rows)

    def _mine(self, path: Path, revision: str) -> pd.DataFrame:
        from defectops.git import GitRepo
        from defectops.mining import COMMIT_COLUMNS, MineOptions, Miner, add_code_metrics

        repo = GitRepo.open(path)
        if ".." in revision:
            base, _, tip = revision.partition("..")
            count = int(
                repo.run("rev-list", "--count", repo.resolve(tip), f"^{repo.resolve(base)}").strip() or 0
            )
            self._check_size(count, "commits")
        miner = Miner(repo, self.workspace, MineOptions(workers=min(2, os.cpu_count() or 1)), now=self.clock)
        frame = miner.score([revision])
        champion = self.deployment.champion
        if champion is not None and any(f in COMMIT_COLUMNS for f in champion.features):
            # A champion trained with code or Terraform metrics: measure the changed files of these commits.
            frame = add_code_metrics(repo, frame)
        served = (self.deployment.champion, self.deployment.challenger)
        if any(m is not None and DIFF in m.text_columns for m in served):
            # A hybrid model reads the changed lines of each commit (bounded per commit).
            from defectops.git import changed_lines

            texts = changed_lines(repo, frame["sha"].astype(str).tolist())
            frame[DIFF] = [texts.get(str(sha), "") for sha in frame["sha"]]
        return frame

    async def _answer(
        self, batch: RowBatch, top_k: int, render: Render, extra: Sequence[PredictionRecord] = ()
    ) -> bytes:
        """Score, hand the rows to the log writer, render the answer meanwhile; return it once committed.
        ``extra`` rows (the blocks of scored commits) are committed with them, in the same group."""
        deployment = self.deployment  # one read: the whole request sees one deployment
        now = self.clock()
        large = batch.size > INLINE_ROWS
        if large:
            result = await anyio.to_thread.run_sync(partial(answer, deployment, batch, top_k=top_k, now=now))
        else:
            result = answer(deployment, batch, top_k=top_k, now=now)
        committed = self.writer.submit([*result.rows, *extra] if extra else result.rows)
        try:
            if large:
                body = await anyio.to_thread.run_sync(render, result.documents)
            else:
                body = render(result.documents)
        except BaseException:
            committed.cancel()  # the rows are still written; nobody waits for them
            raise
        await committed  # the durability point: nothing is answered before its rows are committed
        self.metrics.observe_predictions(result.observed)
        return body

    # -- feedback -------------------------------------------------------------------------------------

    async def feedback(self, item: FeedbackRecord) -> FeedbackOutcome:
        now = self.clock()
        outcome = await anyio.to_thread.run_sync(partial(self.log.add_feedback, item, now=now))
        self.metrics.feedback.labels(outcome.status).inc()
        return outcome


def model_out(model: ServingModel | None) -> ModelOut | None:
    if model is None:
        return None
    return ModelOut(
        name=model.name,
        version=model.version,
        run_id=model.loaded.meta.run_id,
        features=list(model.features),
        threshold=model.threshold,
        risk_bands=RiskBandsOut.model_validate(model.bands.as_dict()),
        scorer=model.scorer_kind,
        loaded_at=model.loaded_at,
        artifact_digest=model.digest,
        cross_project=model.loaded.meta.cross_project,
    )
