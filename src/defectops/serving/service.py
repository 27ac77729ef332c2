"""The service behind the routes: score, log, then answer.

Every answered prediction follows the same path: read the current :class:`Deployment` once, build a NumPy
matrix of the model's features (no pandas for records sent as JSON), route each record by the hash of its
new prediction id (champion, canary challenger, or champion plus a shadow challenger score), score each
group with its model's exact scorer, hand the served and shadow rows to the group-commit writer, and only
after the commit return the JSON answer. Nothing is answered that is not in the log.

Small requests are scored on the event loop (a LightGBM row takes a fraction of a millisecond; a thread hop
would cost more); large batches and mining go to a worker thread so they do not stall other requests.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import anyio.to_thread
import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic_core import to_json

from defectops.config import Settings, Workspace
from defectops.data import METRIC_NAMES
from defectops.errors import InputError, ModelError, NotFoundError, PayloadTooLargeError
from defectops.predlog import (
    CheckedInputs,
    FeedbackOutcome,
    FeedbackRecord,
    InputValue,
    PredictionLog,
    PredictionRecord,
    default_url,
)
from defectops.registry import ModelRegistry
from defectops.serving.control import ControlFile
from defectops.serving.deployment import Deployment, ServingModel, route_fraction
from defectops.serving.gauges import PublishedGauges, published_gauges_path
from defectops.serving.manager import Clock, ModelManager
from defectops.serving.metrics import ServiceMetrics
from defectops.serving.schemas import ID_FIELDS, ChangeRecord, CommitScoreRequest, ModelOut, RiskBandsOut
from defectops.serving.settings import ServeSettings
from defectops.serving.writer import LogWriter
from defectops.training import check_finite

FloatArray = npt.NDArray[np.float64]
RiskBandName = Literal["low", "medium", "high"]

Render = Callable[[list[dict[str, Any]]], bytes]

#: Requests with more records than this are scored on a worker thread instead of the event loop.
INLINE_ROWS: Final = 64


def _json(body: Any) -> bytes:
    """Compact JSON of an answer (pydantic-core's serializer: about three times :func:`json.dumps`).

    Every number in an answer is finite (inputs are checked, probabilities come from a sigmoid); should one
    not be, it is written as ``null`` rather than as the invalid JSON token ``NaN``."""
    return to_json(body, inf_nan_mode="null")


@dataclass(frozen=True)
class RowBatch:
    """Rows to score, whatever their source (JSON records or mined commits)."""

    size: int
    matrix: Callable[[Sequence[str]], FloatArray]
    text: Callable[[Sequence[str]], dict[str, list[str]]]
    inputs: list[dict[str, InputValue]]
    repos: list[str | None]
    shas: list[str | None]
    describe: Callable[[int], str]


def records_batch(records: Sequence[ChangeRecord]) -> RowBatch:
    """A :class:`RowBatch` of API records: missing metrics become NaN (reported by the caller)."""

    def matrix(features: Sequence[str]) -> FloatArray:
        pick = operator.itemgetter(*features)  # one C call per record (a tuple, or the value for one feature)
        rows = [pick(record.__dict__) for record in records]
        return np.array(rows, dtype=np.float64).reshape(len(records), len(features))

    def text(columns: Sequence[str]) -> dict[str, list[str]]:
        return {c: [getattr(record, c) or "" for record in records] for c in columns}

    # The schema of ChangeRecord already holds every value to the log's rules (finite numbers, known names).
    inputs: list[dict[str, InputValue]] = [
        CheckedInputs((k, v) for k, v in record.__dict__.items() if v is not None and k not in ID_FIELDS)
        for record in records
    ]
    return RowBatch(
        size=len(records),
        matrix=matrix,
        text=text,
        inputs=inputs,
        repos=[record.repo for record in records],
        shas=[None if record.commit_sha is None else record.commit_sha.lower() for record in records],
        describe=lambda i: f"records[{i}]",
    )


def frame_batch(frame: pd.DataFrame, repo: str, input_columns: Sequence[str]) -> RowBatch:
    """A :class:`RowBatch` of mined commits (one row per non-merge commit)."""
    shas = [str(s) for s in frame["sha"]]

    def matrix(features: Sequence[str]) -> FloatArray:
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise InputError(f"mining does not provide the model input(s) {', '.join(missing)}")
        values: FloatArray = frame.loc[:, list(features)].to_numpy(dtype=np.float64, na_value=np.nan)
        return values

    def text(columns: Sequence[str]) -> dict[str, list[str]]:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"mining does not provide the text input(s) {', '.join(missing)}")
        return {c: frame[c].fillna("").astype(str).tolist() for c in columns}

    present = [c for c in input_columns if c in frame.columns]
    inputs: list[dict[str, InputValue]] = [
        {str(k): v for k, v in row.items() if not pd.isna(v)}
        for row in frame.loc[:, present].astype(object).to_dict("records")
    ]
    return RowBatch(
        size=len(frame),
        matrix=matrix,
        text=text,
        inputs=inputs,
        repos=[repo] * len(frame),
        shas=list(shas),
        describe=lambda i: f"commit {shas[i][:12]}",
    )


def new_prediction_ids(count: int, now: datetime) -> list[str]:
    """Time-ordered version-7 UUIDs (RFC 9562; canonical text) stamped with ``now``, from one ``os.urandom``.

    Why version 7 rather than random version-4 ids: the id is the log's primary key, and random keys land on
    random pages of its B-tree, so a commit of 1,000 rows rewrites up to 1,000 pages and gets slower as the
    log grows (20-37 ms at 30k-120k rows, measured); ids that start with the time append at the end of the
    tree (about 8 ms at any size). Each id still has 74 random bits (unguessable, unique within a
    millisecond).
    """
    stamp = f"{int(now.timestamp() * 1000) & 0xFFFF_FFFF_FFFF:012x}"
    prefix = f"{stamp[:8]}-{stamp[8:]}-7"
    text = os.urandom(10 * count).hex()
    ids = []
    for i in range(0, 20 * count, 20):
        h = text[i : i + 20]
        variant = "89ab"[int(h[3], 16) & 3]
        ids.append(f"{prefix}{h[:3]}-{variant}{h[4:7]}-{h[7:19]}")
    return ids


@dataclass
class Answer:
    """What one request produced: the JSON documents to return, the log rows, and metric observations."""

    documents: list[dict[str, Any]]
    rows: list[PredictionRecord]
    observed: list[tuple[str, str, str, bool, float]]


def answer(deployment: Deployment, batch: RowBatch, *, top_k: int, now: datetime) -> Answer:
    """Score a batch with the deployment: route, score, and build the answers and log rows (no I/O)."""
    champion = deployment.champion
    if champion is None:
        reason = f": {deployment.last_error}" if deployment.last_error else ""
        raise ModelError(f"no model is loaded{reason}")
    n = batch.size
    ids = new_prediction_ids(n, now)
    values = batch.matrix(champion.features)
    _check_complete(values, champion, batch)
    to_challenger = np.zeros(n, dtype=bool)
    shadowed = np.zeros(n, dtype=bool)
    challenger = deployment.challenger
    challenger_values = values
    traffic = deployment.traffic
    if challenger is not None and traffic.mode != "off":
        if challenger.features != champion.features:
            challenger_values = batch.matrix(challenger.features)
        chosen = np.fromiter((route_fraction(i) < traffic.share for i in ids), dtype=bool, count=n)
        # A record the challenger cannot score (a feature only it uses is missing) stays with the champion.
        chosen &= ~np.isnan(challenger_values).any(axis=1)
        if traffic.mode == "canary":
            to_challenger = chosen
        else:
            shadowed = chosen

    documents: list[dict[str, Any]] = [{} for _ in range(n)]
    rows: list[PredictionRecord | None] = [None] * n
    observed: list[tuple[str, str, str, bool, float]] = []
    groups = [(champion, np.flatnonzero(~to_challenger), values)]
    if to_challenger.any() and challenger is not None:
        groups.append((challenger, np.flatnonzero(to_challenger), challenger_values))
    for model, index, matrix in groups:
        if len(index) == 0:
            continue
        scores = model.score(
            matrix if len(index) == n else matrix[index],
            _text(batch, model, index, n),
            top_k,
        )
        name, version, threshold = model.name, model.version_label, model.threshold
        probabilities = scores.probabilities
        labels = _bands(model, probabilities)
        for position, (i, probability, band) in enumerate(
            zip(index.tolist(), probabilities.tolist(), labels, strict=True)
        ):
            risky = probability >= threshold
            documents[i] = {
                "prediction_id": ids[i],
                "probability": probability,
                "risk": risky,
                "risk_band": band,
                "threshold": threshold,
                "model_name": name,
                "model_version": version,
                "reasons": scores.reasons[position],
                "commit_sha": batch.shas[i],
                "repo": batch.repos[i],
            }
            rows[i] = PredictionRecord(
                prediction_id=ids[i],
                created_at=now,
                model_name=name,
                model_version=version,
                served=True,
                inputs=batch.inputs[i],
                score=probability,
                threshold=threshold,
                risk_label=1 if risky else 0,
                risk_band=band,
                repo=batch.repos[i],
                commit_sha=batch.shas[i],
            )
            observed.append((name, version, band, True, probability))
    log_rows = [row for row in rows if row is not None]
    if shadowed.any() and challenger is not None:
        index = np.flatnonzero(shadowed)
        scores = challenger.score(challenger_values[index], _text(batch, challenger, index, n), 0)
        shadow_ids = new_prediction_ids(len(index), now)
        name, version, threshold = challenger.name, challenger.version_label, challenger.threshold
        labels = _bands(challenger, scores.probabilities)
        for shadow_id, i, probability, band in zip(
            shadow_ids, index.tolist(), scores.probabilities.tolist(), labels, strict=True
        ):
            log_rows.append(
                PredictionRecord(
                    prediction_id=shadow_id,
                    created_at=now,
                    model_name=name,
                    model_version=version,
                    served=False,
                    inputs=batch.inputs[i],
                    score=probability,
                    threshold=threshold,
                    risk_label=1 if probability >= threshold else 0,
                    risk_band=band,
                    repo=batch.repos[i],
                    commit_sha=batch.shas[i],
                    shadow_of=ids[i],
                )
            )
            observed.append((name, version, band, False, probability))
    return Answer(documents, log_rows, observed)


def _text(
    batch: RowBatch, model: ServingModel, index: npt.NDArray[np.intp], n: int
) -> dict[str, list[str]] | None:
    if not model.text_columns:
        return None
    columns = batch.text(model.text_columns)
    if len(index) == n:
        return columns
    return {c: [values[i] for i in index.tolist()] for c, values in columns.items()}


_BAND_NAMES: Final[tuple[RiskBandName, RiskBandName, RiskBandName]] = ("low", "medium", "high")


def _bands(model: ServingModel, probabilities: FloatArray) -> list[RiskBandName]:
    """``model.bands.band`` of every probability, vectorised (same cut points: ``>= high``, ``>= medium``)."""
    bands = model.bands
    index = (probabilities >= bands.medium).astype(np.int64) + (probabilities >= bands.high)
    return [_BAND_NAMES[i] for i in index.tolist()]


def _check_complete(values: FloatArray, model: ServingModel, batch: RowBatch) -> None:
    missing = np.isnan(values)
    if missing.any():
        row = int(np.flatnonzero(missing.any(axis=1))[0])
        names = [model.features[j] for j in np.flatnonzero(missing[row]).tolist()]
        raise InputError(
            f"{batch.describe(row)}: missing {', '.join(repr(n) for n in names)}, needed by "
            f"{model.name} v{model.version} (inputs: {', '.join(model.features)})"
        )


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
        self.metrics = ServiceMetrics()
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

        def render(documents: list[dict[str, Any]]) -> bytes:
            body = {
                "repo": request.repo,
                "revision": revision,
                "predictions": documents,
                "skipped_merges": skipped,
            }
            return _json(body)

        if not len(frame):
            return render([])
        # Logged inputs: the change metrics, plus the commit message only for a model that reads it.
        text = champion.text_columns if champion is not None else ()
        batch = frame_batch(frame, request.repo, [*METRIC_NAMES, *text])
        top_k = self.serve.top_k if request.top_k is None else request.top_k
        return await self._answer(batch, top_k, render)

    def _mine(self, path: Path, revision: str) -> pd.DataFrame:
        from defectops.git import GitRepo
        from defectops.mining import MineOptions, Miner

        repo = GitRepo.open(path)
        if ".." in revision:
            base, _, tip = revision.partition("..")
            count = int(
                repo.run("rev-list", "--count", repo.resolve(tip), f"^{repo.resolve(base)}").strip() or 0
            )
            self._check_size(count, "commits")
        miner = Miner(repo, self.workspace, MineOptions(workers=min(2, os.cpu_count() or 1)), now=self.clock)
        return miner.score([revision])

    async def _answer(self, batch: RowBatch, top_k: int, render: Render) -> bytes:
        """Score, hand the rows to the log writer, render the answer meanwhile; return it once committed."""
        deployment = self.deployment  # one read: the whole request sees one deployment
        now = self.clock()
        large = batch.size > INLINE_ROWS
        if large:
            result = await anyio.to_thread.run_sync(partial(answer, deployment, batch, top_k=top_k, now=now))
        else:
            result = answer(deployment, batch, top_k=top_k, now=now)
        committed = self.writer.submit(result.rows)
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
        risk_bands=RiskBandsOut(medium=model.bands.medium, high=model.bands.high),
        scorer=model.scorer_kind,
        loaded_at=model.loaded_at,
    )
