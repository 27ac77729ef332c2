"""The prediction-log rows of a scored commit and of its Terraform blocks, made one way for every path that
logs them: the service's ``POST /v1/commits/score`` and the event workers (#17, #19).

Why one definition: monitoring reads these rows (the drift of the logged inputs, each commit's time, the
review effort from ``la`` and ``ld``; the block model's own windows), so a commit scored because of a webhook
must leave the rows it leaves when scored through the API. Two copies had drifted apart: a worker logged only
its model's features, no commit time, and no block at all. The scored commits and blocks are ``ci``'s
(:class:`~defectops.ci.report.CommitPrediction`, :class:`~defectops.ci.block_report.BlockPrediction`); the
rows are the log's (:class:`~defectops.predlog.PredictionRecord`), imported only to make one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from defectops.data import (
    CODE_FEATURES,
    COMMIT_TIME,
    DIFF,
    MESSAGE,
    METRIC_NAMES,
    PATHS,
    RICH_FEATURES,
    TERRAFORM_FEATURES,
    normalise_frame,
)

if TYPE_CHECKING:
    from defectops.ci.block_report import BlockPrediction
    from defectops.ci.report import PredictionReport
    from defectops.predlog import InputValue, PredictionRecord

#: Text a model may read beside its numeric features (the commit message, its paths, its changed lines).
TEXT_COLUMNS: Final = (MESSAGE, PATHS, DIFF)
_AUTHOR_TIME: Final = "author_time"  # the mined column the commit time is logged from


def iso_time(value: datetime) -> str:
    """A commit time as logged: ISO 8601 in UTC to the second (git keeps seconds)."""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def logged_columns(features: Sequence[str], text_columns: Sequence[str]) -> list[str]:
    """The inputs logged with a mined commit scored by a model of these ``features`` and ``text_columns``.

    Every change metric (monitoring's drift and effort read them whatever the model chose), the richer (#20),
    code and Terraform (#17) features the model chose, and the text it reads except the changed lines (the
    hybrid model's diff is code: scored, never logged)."""
    code = (*CODE_FEATURES, *TERRAFORM_FEATURES)
    return [
        *METRIC_NAMES,
        *(f for f in RICH_FEATURES if f in features),
        *(f for f in features if f in code),
        *(c for c in text_columns if c != DIFF),
    ]


def commit_inputs(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, InputValue]]:
    """The logged inputs of each row of mined commits: ``columns`` that the frame has, numbers as floats (the
    feature contract, as ``/v1/predict`` logs them), missing values left out, and the commit's time."""
    present = [c for c in columns if c in frame.columns]
    logged = normalise_frame(frame.loc[:, present])
    if _AUTHOR_TIME in frame.columns:  # the commit's time (the training table's `time` is the author time)
        logged[COMMIT_TIME] = [iso_time(t) for t in pd.to_datetime(frame[_AUTHOR_TIME], utc=True)]
    return [
        {str(k): v for k, v in row.items() if not pd.isna(v)}
        for row in logged.astype(object).to_dict("records")
    ]


def report_inputs(report: PredictionReport) -> dict[str, dict[str, InputValue]]:
    """The logged inputs of each scored commit of a report, by sha: those of :func:`commit_inputs` for the
    commit's mined row, with the model's features as it was scored on them."""
    model = report.model.model
    text = [c for c in model.input_columns() if c in TEXT_COLUMNS]
    columns = logged_columns(list(model.features_), text)
    rows: list[dict[str, Any]] = [{**c.metrics, **c.features} for c in report.commits]
    frame = pd.DataFrame(rows, index=pd.RangeIndex(len(rows)))
    return {c.sha: inputs for c, inputs in zip(report.commits, commit_inputs(frame, columns), strict=True)}


def block_record(
    prediction_id: str, block: BlockPrediction, *, repo: str, sha: str, now: datetime
) -> PredictionRecord:
    """The served row of one scored block: the block model's name and version, the block's features as
    inputs (a non-finite one as null) plus its ``path``, ``address`` and ``change``."""
    # Imported here: the prediction log needs SQLAlchemy, which `defectops predict`'s lean install (the CI
    # Action's) does not have; predict never logs.
    from defectops.predlog import PredictionRecord

    scored = block.scored
    inputs: dict[str, InputValue] = {
        **{k: (v if math.isfinite(v) else None) for k, v in block.inputs.items()},
        "path": block.path,
        "address": block.address,
        "change": block.change,
    }
    return PredictionRecord(
        prediction_id=prediction_id,
        created_at=now,
        model_name=scored.model_name,
        model_version=scored.model_version,
        served=True,
        inputs=inputs,
        score=scored.probability,
        threshold=scored.threshold,
        risk_label=1 if scored.probability >= scored.threshold else 0,
        risk_band=scored.band.value,
        repo=repo,
        commit_sha=sha,
    )
