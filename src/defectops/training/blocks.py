"""The block-level model: which changed Terraform blocks induce defects, trained and judged over time.

The protocol is the commit-level one (:func:`defectops.training.train_candidate`), with a block of a commit
as the row: the held-out window is every labelled block of the latest ``test_fraction`` of commits that have
labelled blocks (labels as known now); the model judged on it learned only from blocks made at least the
waiting period before the window began, with the labels known when it began (never a random split). The
model is LightGBM with its defaults (no hyperparameter is chosen on any data); its calibration and
threshold come from its own time-ordered folds. Metrics are :func:`defectops.training.evaluate_predictions`
with the block's churn (lines added and deleted inside it) as the effort.

Removed blocks are not rows: SZZ traces lines that exist in the inducing commit, so a removed block can never
be labelled defect-inducing and would only teach the model that removals are safe.

An online block model (``kind="online"``, ``partial_fit``) can instead be updated (``update=`` the champion's
estimator): the registered candidate is a copy that learnt the blocks whose labels became known since
``since``; the one judged on the window is a copy that learnt only those known when the window began.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.data import BLOCK_FEATURES, EFFORT, LABEL, TIME, block_labels_as_of
from defectops.errors import DataError
from defectops.training.evaluate import FittedModel, fit_model, score_model


@dataclass(frozen=True, slots=True)
class BlockEvaluation:
    """The held-out result of the block-level model."""

    metrics: dict[str, float]
    train_rows: int
    test_rows: int
    train_defective: int
    test_defective: int
    test_commits: int
    window: tuple[str, str]
    train_labels_as_of: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: The held-out rows (training-table layout) and the fold model's probabilities on them (for the gate).
    window_table: pd.DataFrame | None = None
    window_probability: npt.NDArray[np.float64] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.metrics,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "train_defective": self.train_defective,
            "test_defective": self.test_defective,
            "test_commits": self.test_commits,
            "window": list(self.window),
            "train_labels_as_of": self.train_labels_as_of,
            **self.extra,
        }


def block_table(labelled: pd.DataFrame) -> pd.DataFrame:
    """The training table of labelled block rows: the block features, ``churn``, ``label``, ``time``."""
    table = labelled.loc[:, [*BLOCK_FEATURES, EFFORT]].astype("float64").reset_index(drop=True)
    table[LABEL] = labelled[LABEL].astype("int64").to_numpy()
    table[TIME] = pd.to_datetime(labelled["committed_at"], utc=True).reset_index(drop=True)
    table.attrs["features"] = list(BLOCK_FEATURES)
    return table


def _rows(blocks: pd.DataFrame) -> pd.DataFrame:
    return blocks.loc[blocks["change"] != "removed"].reset_index(drop=True)


def _labelled(blocks: pd.DataFrame, links: pd.DataFrame, at: datetime, waiting_days: int) -> pd.DataFrame:
    known = block_labels_as_of(blocks, links, at, waiting_days=waiting_days)
    return known.loc[known[LABEL].notna()].reset_index(drop=True)


def _learnt_since(labelled: pd.DataFrame, since: datetime) -> pd.DataFrame:
    """The labelled rows whose label became known after ``since``, in the order they became known."""
    known_at = pd.to_datetime(labelled["label_known_at"], utc=True)
    committed = pd.to_datetime(labelled["committed_at"], utc=True)
    order = pd.DataFrame({"known": known_at, "committed": committed}).reset_index(drop=True)
    order = order.loc[(order["known"] > pd.Timestamp(since)).to_numpy()]
    positions = order.sort_values(["known", "committed"], kind="stable").index.to_numpy()
    return labelled.iloc[positions].reset_index(drop=True)


def new_block_labels(
    blocks: pd.DataFrame, links: pd.DataFrame, *, at: datetime, since: datetime, waiting_days: int = 90
) -> pd.DataFrame:
    """The training table of the non-removed blocks whose labels became known in ``(since, at]`` (oldest
    known first): what an update of a model trained at ``since`` has not learnt yet."""
    return block_table(_learnt_since(_labelled(_rows(blocks), links, at, waiting_days), since))


def _updated(base: Any, table: pd.DataFrame) -> Any:
    """A copy of the online model ``base`` that learnt ``table`` with ``partial_fit`` (``base`` itself when
    the table is empty)."""
    model = copy.deepcopy(base)
    if len(table):
        model.partial_fit(table.loc[:, list(model.features_)], table[LABEL].to_numpy())
    return model


def block_training_table(
    blocks: pd.DataFrame, links: pd.DataFrame, *, at: datetime, waiting_days: int = 90
) -> pd.DataFrame:
    """The training table of every non-removed block labelled at ``at`` (what the registered model learns)."""
    return block_table(_labelled(_rows(blocks), links, at, waiting_days))


def evaluate_block_model(
    blocks: pd.DataFrame,
    links: pd.DataFrame,
    *,
    now: datetime,
    waiting_days: int = 90,
    test_fraction: float = 0.2,
    since: datetime | None = None,
    min_window_commits: int = 20,
    seed: int = 0,
    kind: str = "lightgbm",
    update: Any | None = None,
) -> BlockEvaluation:
    """Train on the past and score the held-out window (see the module docstring).

    ``blocks``: the block features table (:func:`defectops.mining.block_features`); ``links``: the
    block-level links (:func:`defectops.labeling.block_links`). With ``since`` (a champion's training time)
    the window is every labelled block of the commits made since then, when there are at least
    ``min_window_commits`` of them: a window the champion never saw. Raises :class:`DataError` when the window
    or the training part before it lacks defect-inducing or clean blocks. ``kind`` is the model fitted on the
    training part; with ``update`` (an online model trained at ``since``) it is instead ``update`` after
    ``partial_fit`` on the blocks whose labels became known between ``since`` and the window's start.
    """
    rows = _rows(blocks)
    labelled_now = _labelled(rows, links, now, waiting_days)
    first_seen = labelled_now.groupby("sha", sort=False)["committed_at"].min().sort_values(kind="stable")
    commits = first_seen.index.tolist()
    if since is not None:
        test_shas = set(first_seen.index[first_seen >= pd.Timestamp(since)])
        if len(test_shas) < min_window_commits:
            raise DataError(
                f"{len(test_shas)} commits with labelled blocks were made since {since:%Y-%m-%d}; "
                f"a fair window needs {min_window_commits}"
            )
    else:
        n_test = max(1, round(len(commits) * test_fraction))
        if len(commits) < 2 or n_test >= len(commits):
            raise DataError(f"{len(commits)} commits with labelled blocks are too few for a time split")
        test_shas = set(commits[len(commits) - n_test :])
    test = labelled_now.loc[labelled_now["sha"].isin(test_shas)].reset_index(drop=True)
    start = pd.Timestamp(test["committed_at"].min()).to_pydatetime()
    gap = timedelta(days=waiting_days)
    then = _labelled(rows, links, start, waiting_days)
    train = then.loc[
        (pd.to_datetime(then["committed_at"], utc=True) + gap <= pd.Timestamp(start))
        & ~then["sha"].isin(test_shas)
    ]
    train_table, test_table = block_table(train), block_table(test)
    for name, table in (("training part", train_table), ("held-out window", test_table)):
        if table[LABEL].nunique() < 2 and not (update is not None and name == "training part"):
            raise DataError(f"the {name} of the block-level model lacks defect-inducing or clean blocks")
    if update is not None and since is not None:
        learnt = block_table(_learnt_since(then.loc[~then["sha"].isin(test_shas)], since))
        model = _updated(update, learnt)
        train_rows, train_defective = len(learnt), int(learnt[LABEL].sum())
    else:
        model = fit_model(train_table, kind=kind, budget_seconds=0.0, gap=gap, seed=seed).model
        train_rows, train_defective = len(train_table), int(train_table[LABEL].sum())
    report = score_model(model, test_table)
    return BlockEvaluation(
        metrics=report.metrics(),
        train_rows=train_rows,
        test_rows=len(test_table),
        train_defective=train_defective,
        test_defective=int(test_table[LABEL].sum()),
        test_commits=len(test_shas),
        window=(str(test["committed_at"].min()), str(test["committed_at"].max())),
        train_labels_as_of=start.isoformat(),
        extra={
            "threshold": float(model.threshold_),
            "base_rate": float(np.mean(test_table[LABEL])),
            "kind": "online update" if update is not None and since is not None else kind,
        },
        window_table=test_table,
        window_probability=np.asarray(model.predict_proba(test_table)[:, 1], dtype=np.float64),
    )


def train_block_model(
    table: pd.DataFrame,
    *,
    waiting_days: int = 90,
    seed: int = 0,
    kind: str = "lightgbm",
    update: Any | None = None,
) -> FittedModel:
    """The block-level model fitted on ``table`` (:func:`block_training_table`): what is registered. With
    ``update`` (an online model) it is a copy of it that learnt ``table`` (:func:`new_block_labels`) by
    ``partial_fit``."""
    if update is not None:
        if len(table) == 0:
            raise DataError("no block label became known since the online block model was trained")
        model = _updated(update, table)
        return FittedModel(
            model=model, tuning=None, features=list(model.features_), train_rows=len(table), seconds=0.0
        )
    if table[LABEL].nunique() < 2:
        raise DataError("the block-level model needs defect-inducing and clean blocks")
    return fit_model(table, kind=kind, budget_seconds=0.0, gap=timedelta(days=waiting_days), seed=seed)
