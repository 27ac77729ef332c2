"""Cold start: the cross-project starter serves a repository that has too few matured labels of its own.

The main job registers the shipped starter (:mod:`defectops.training.starter`), fitted to the repository's
mined history (features only, no labels), and makes it the champion at once: there is nothing of the
repository's own to gate it against. It is tagged ``defectops.origin = cross-project`` and every answer it
gives says so. Once enough labels have matured, the main job and ``heal`` train the repository's own models;
the gate replaces the starter only when an own model beats it on the repository's own matured labels (the
starter never saw any of them, so every held-out window is a fair comparison).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.data import EFFORT, FEATURES, LABEL, TIME, read_fingerprint
from defectops.errors import InsufficientDataError


@dataclass(frozen=True, slots=True)
class StarterStage:
    """The cross-project starter as champion (``starter`` in ``run --json``).

    ``registered`` is True when this run registered it, False when it already was the champion.
    """

    model_name: str
    version: int
    champion_version: int | None
    registered: bool
    description: str
    history_rows: int
    training_data: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "champion_version": self.champion_version,
            "registered": self.registered,
            "cross_project": True,
            "description": self.description,
            "history_rows": self.history_rows,
            "training_data": list(self.training_data),
        }


def history_frame(commits: pd.DataFrame) -> pd.DataFrame:
    """The repository's mined non-merge commits as model inputs (features, effort, time; no labels)."""
    scored = commits.loc[~commits["is_merge"].astype(bool)]
    frame = pd.DataFrame({name: scored[name].astype("float64").to_numpy() for name in FEATURES})
    frame[EFFORT] = scored["churn"].astype("float64").to_numpy()
    frame[LABEL] = np.nan
    frame[TIME] = pd.to_datetime(scored["author_time"], utc=True).to_numpy()
    finite = np.isfinite(frame.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)).all(axis=1)
    kept: pd.DataFrame = frame.loc[finite].reset_index(drop=True)
    return kept


def register_starter(
    registry: Any, name: str, commits: pd.DataFrame, dataset: Path, *, now: datetime, who: str
) -> tuple[StarterStage, Any]:
    """Fit the starter to ``commits`` (the mined history), register it and make it the champion."""
    from defectops.registry import CHAMPION, register_trained_model
    from defectops.training import describe_starter, load_starter

    history = history_frame(commits)
    if history.empty:
        raise InsufficientDataError("the repository has no non-merge commit to fit the starter model to")
    starter = load_starter().adapt(history)
    description = describe_starter(starter)
    fingerprint = read_fingerprint(dataset)
    registered = register_trained_model(
        registry,
        name,
        starter,
        features=list(FEATURES),
        table=history,
        metrics={},
        dataset_fingerprint=fingerprint.as_dict() if fingerprint else str(dataset),
        now=now,
        who=who,
        why=f"cold start: {description}",
        job="run",
        evidence={"cross_project": True, "history_rows": len(history)},
    )
    version = registered.version.version
    registry.promote(
        name,
        version,
        who,
        "cold start: too few matured labels for a model of the repository's own; the cross-project starter "
        "serves until an own model beats it on the repository's matured labels",
        {"cross_project": True},
        now=now,
    )
    stage = StarterStage(
        model_name=name,
        version=version,
        champion_version=registry.alias_version(name, CHAMPION),
        registered=True,
        description=description,
        history_rows=len(history),
        training_data=tuple(starter.training_data),
    )
    return stage, registry.load(name, alias=CHAMPION)


def serving_starter(champion: Any) -> StarterStage:
    """The stage of a starter that already is the champion (a later run, still without enough labels)."""
    from defectops.training import describe_starter

    estimator = champion.estimator
    transform = getattr(estimator, "transform_", None)
    return StarterStage(
        model_name=champion.meta.name,
        version=champion.meta.version,
        champion_version=champion.meta.version,
        registered=False,
        description=describe_starter(estimator),
        history_rows=int(getattr(transform, "rows", 0)),
        training_data=tuple(getattr(estimator, "training_data", ()) or ()),
    )
