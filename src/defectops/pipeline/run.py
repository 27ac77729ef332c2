"""The main job, ``defectops run``: mine → label → train → evaluate → register → gate → score → report.

Each stage is called through its public API and talks to the next through stored datasets. Time is honest
throughout: the held-out window is the latest commits (after a gap equal to the label waiting period); the
model evaluated on it was trained only on labels known when that window began; the model that is registered
is then refitted, with the same hyperparameters, on every label known now.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from defectops.config import Settings, Workspace
from defectops.data import (
    EFFORT,
    FEATURES,
    LABEL,
    TIME,
    Split,
    read_fingerprint,
    read_table,
    time_split,
    training_table,
)
from defectops.errors import DataError, InputError, InsufficientDataError, NotFoundError
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import MineOptions, Miner
from defectops.training import DEFAULT_MODEL, RecentCommit, RiskBands, Scored, render, render_plots, score

if TYPE_CHECKING:
    from defectops.registry import ModelRegistry, ModelVersionInfo, TrainingRun

Step = Callable[[str], None]
WHO = "defectops run"


@dataclass(frozen=True)
class RunOptions:
    """What the main job does; every field has a default fit for a first run."""

    repo: Path
    model_name: str | None = None
    kind: str = DEFAULT_MODEL
    budget_seconds: float = 60.0
    waiting_days: int = 90
    test_fraction: float = 0.2
    recent: int = 20
    report: Path | None = None
    seed: int = 0
    workers: int | None = None
    min_labelled: int = 100
    min_new_labelled: int = 50


@dataclass
class RunResult:
    """What the main job did, for the summary and ``--json``."""

    repo: str
    stages: dict[str, Any] = field(default_factory=dict)
    trained: bool = False
    reason: str | None = None
    report: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "trained": self.trained,
            "reason": self.reason,
            "report": self.report,
            **self.stages,
        }


def _both_classes(labels: pd.Series) -> bool:
    return labels.nunique() == 2


@dataclass(frozen=True)
class Candidate:
    """A model trained the honest way (module docstring), ready to be logged and registered.

    ``model`` is refitted on every label known at ``now`` with the hyperparameters chosen on the fold;
    ``window`` is the held-out window (labels known now) and ``window_probability`` the scores on it of the
    fold model, which was trained only on labels known when the window began. ``comparable`` is True when the
    window is exactly the commits made since ``unseen_since`` (so a champion trained then never saw them).
    """

    model: Any
    features: list[str]
    table_now: pd.DataFrame
    window: pd.DataFrame
    window_probability: npt.NDArray[np.float64]
    metrics: dict[str, float]
    comparable: bool
    evaluation: dict[str, Any]


def train_candidate(
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame | None,
    *,
    now: datetime,
    options: RunOptions,
    unseen_since: datetime | None = None,
) -> Candidate:
    """Train one candidate on the labels known at ``now`` (the training step of ``run`` and of ``heal``).

    The held-out window is every commit made since ``unseen_since`` when there are at least
    ``options.min_new_labelled`` labelled ones, else the latest ``options.test_fraction``. Raises
    InsufficientDataError (with the reason) when there is too little to train or evaluate on.
    """
    gap = timedelta(days=options.waiting_days)
    try:
        table_now = training_table(commits, labels, as_of=now, files=files)
    except DataError as exc:
        raise InsufficientDataError(str(exc)) from exc
    if len(table_now) < options.min_labelled or not _both_classes(table_now[LABEL]):
        raise InsufficientDataError(
            f"only {len(table_now)} commits have a known label "
            f"({int(table_now[LABEL].sum())} defect-inducing); training needs at least "
            f"{options.min_labelled} with both classes. Labels mature "
            f"{options.waiting_days} days after a commit (--waiting-days)"
        )
    files_frame = files if files is not None else pd.DataFrame({"sha": [], "path": []})
    fold = (
        _held_out_fold(commits, labels, files_frame, table_now, options, gap, start=unseen_since)
        if unseen_since is not None
        else None
    )
    comparable = fold is not None
    if fold is None:
        fold = _held_out_fold(commits, labels, files_frame, table_now, options, gap)
    if fold is None:
        raise InsufficientDataError(
            "the held-out window or the training part before it lacks defect-inducing or clean commits"
        )
    fold_table, split, test = fold
    from defectops.training import fit_model, run_fold

    fold_result, fitted = run_fold(
        fold_table,
        split,
        kind=options.kind,
        budget_seconds=options.budget_seconds,
        gap=gap,
        seed=options.seed,
    )
    probability = np.asarray(fitted.model.predict_proba(test)[:, 1], dtype=np.float64)
    chosen = {k: v for k, v in fitted.model.get_params(deep=False).items() if k not in ("features",)}
    final = fit_model(
        table_now, kind=options.kind, budget_seconds=0.0, gap=gap, seed=options.seed, params=chosen
    )
    metrics = fold_result.report.metrics()
    evaluation = {
        **metrics,
        "train_rows": len(split.train),
        "test_rows": len(split.test),
        "test_window": [str(test[TIME].min()), str(test[TIME].max())],
        "model": options.kind,
        "tuning_trials": None if fitted.tuning is None else fitted.tuning.as_dict().get("trials"),
    }
    return Candidate(
        model=final.model,
        features=list(final.features),
        table_now=table_now,
        window=test,
        window_probability=probability,
        metrics=metrics,
        comparable=comparable,
        evaluation=evaluation,
    )


def log_candidate(
    registry: ModelRegistry,
    name: str,
    candidate: Candidate,
    *,
    dataset_fingerprint: str | Mapping[str, Any],
    now: datetime,
    who: str,
    why: str,
    job: str,
    plots: Mapping[str, Path] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> tuple[TrainingRun, ModelVersionInfo]:
    """Log the candidate's training run (model, reference snapshot, metrics) and register it as challenger."""
    from defectops.registry import log_training_run

    model = candidate.model
    run = log_training_run(
        model,
        features=candidate.features,
        reference=candidate.table_now[[*candidate.features, EFFORT, LABEL, TIME]],
        params={k: v for k, v in model.get_params(deep=False).items() if k != "features"},
        metrics=candidate.metrics,
        dataset_fingerprint=dataset_fingerprint,
        config=registry.config,
        threshold=float(model.threshold_),
        plots=dict(plots or {}),
        tags={"defectops.kind": str(model.kind), "defectops.job": job},
        run_name=f"{job} {now:%Y-%m-%d %H:%M}",
    )
    version = registry.register(
        name,
        run.model_uri,
        who=who,
        why=why,
        now=now,
        # NaN (e.g. ROC-AUC of a one-class window) is not JSON: the audit record leaves such metrics out
        evidence={
            "metrics": {k: v for k, v in candidate.metrics.items() if math.isfinite(v)},
            **dict(evidence or {}),
        },
    )
    return run, version


def run(options: RunOptions, settings: Settings, *, now: datetime, step: Step | None = None) -> RunResult:
    """Run the whole main job once; returns what happened (training is skipped, with the reason, when the
    repository has too few labelled commits)."""
    if now.tzinfo is None:
        raise InputError("now must be timezone-aware")
    say = step or (lambda _message: None)
    workspace = Workspace.from_settings(settings).ensure()
    repo = GitRepo.open(options.repo)
    result = RunResult(repo=str(repo.path))

    say("mining")
    mine_options = MineOptions(workers=options.workers) if options.workers else MineOptions()
    mined = Miner(repo, workspace, mine_options).mine()
    result.stages["mine"] = mined.as_dict()
    commits = read_table(mined.dataset)
    files = read_table(mined.files_dataset)

    say("labelling")
    labelled = label_repository(
        repo, workspace, now=now, options=LabelOptions(waiting_days=options.waiting_days)
    )
    result.stages["label"] = labelled.summary.as_dict()

    say("training")
    from defectops.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry.from_settings(settings, environ=os.environ)
    name = options.model_name or f"defectops-{repo.repo_id()}"
    try:
        champion_version = registry.alias_version(name, CHAMPION)
    except NotFoundError:  # no model of that name yet: this run trains the first one
        champion_version = None
    champion = registry.load(name, alias=CHAMPION) if champion_version is not None else None
    # The gate compares on commits the champion never saw: those made after it was trained.
    unseen_since = champion.meta.created_at if champion is not None else None
    try:
        candidate = train_candidate(
            commits, labelled.labels, files, now=now, options=options, unseen_since=unseen_since
        )
    except InsufficientDataError as exc:
        result.reason = str(exc)
        return result
    table_now, test, metrics = candidate.table_now, candidate.window, candidate.metrics
    result.stages["evaluate"] = candidate.evaluation
    result.trained = True

    report_path = options.report or workspace.root / "reports" / repo.repo_id() / "report.html"
    importance = candidate.model.importance(table_now.iloc[-2000:])
    plots = render_plots(
        y_true=test[LABEL].to_numpy(dtype=np.float64),
        probability=np.asarray(candidate.window_probability, dtype=np.float64),
        effort=test[EFFORT].to_numpy(dtype=np.float64),
        importance=importance,
    )

    say("registering")
    with tempfile.TemporaryDirectory(prefix="defectops-plots-") as tmp:
        plot_files: dict[str, Path] = {}
        for stem, svg in plots.items():
            plot_files[stem] = Path(tmp) / f"{stem}.svg"
            plot_files[stem].write_text(svg, encoding="utf-8")
        registry_stage, champion = _register_and_gate(
            registry,
            name,
            candidate,
            candidate.window if (champion is None or candidate.comparable) else None,
            mined.dataset,
            now,
            champion,
            plot_files,
        )
    result.stages["registry"] = registry_stage

    say("scoring recent commits")
    recent = _score_recent(commits, champion, options.recent)
    result.stages["recent"] = [
        {**r.scored.as_dict(), "author": r.author, "time": r.time.isoformat(), "subject": r.subject}
        for r in recent
    ]

    say("writing the report")
    page = render(
        title=f"defectops: {repo.path.name}",
        summary={
            "repository": str(repo.path),
            "head": mined.head,
            "commits mined": mined.commits,
            "labelled commits": len(table_now),
            "defect-inducing share": float(table_now[LABEL].mean()),
            "model": f"{name} v{registry_stage['version']} ({options.kind})",
            "gate": registry_stage["gate"],
            "champion": registry_stage.get("champion_version"),
        },
        metrics=metrics,
        plots=plots,
        recent=recent,
        generated_at=now,
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(page, encoding="utf-8")
    result.report = str(report_path)
    return result


def _held_out_fold(
    commits: pd.DataFrame,
    labels: pd.DataFrame,
    files: pd.DataFrame,
    table_now: pd.DataFrame,
    options: RunOptions,
    gap: timedelta,
    start: datetime | None = None,
) -> tuple[pd.DataFrame, Split, pd.DataFrame] | None:
    """The test window (labels known now): the latest ``test_fraction`` of commits, or every commit made
    after ``start``; and a training part made of the commits before it, with the labels known when the
    window began (never later ones)."""
    if start is None:
        split = time_split(table_now[TIME], test_fraction=options.test_fraction, gap=gap)
        test = table_now.iloc[split.test].reset_index(drop=True)
        start = test[TIME].min().to_pydatetime()
    else:
        test = table_now.loc[table_now[TIME] >= pd.Timestamp(start)].reset_index(drop=True)
        if len(test) < options.min_new_labelled:
            return None
    try:
        then = training_table(commits, labels, as_of=start, files=files)
    except DataError:
        return None
    train = then.loc[then[TIME] + gap <= start].reset_index(drop=True)
    if len(train) < 20 or not _both_classes(train[LABEL]) or not _both_classes(test[LABEL]):
        return None
    fold_table = pd.concat([train, test], ignore_index=True)
    fold_split = Split(
        np.arange(len(train)),
        np.arange(len(train), len(fold_table)),
        "time",
        {"train_labels_as_of": start.isoformat(), "gap_days": str(gap.days)},
    )
    return fold_table, fold_split, test


def _register_and_gate(
    registry: Any,
    name: str,
    candidate: Candidate,
    window: pd.DataFrame | None,
    dataset: Path,
    now: datetime,
    champion: Any,
    plots: dict[str, Path],
) -> tuple[dict[str, Any], Any]:
    """Log and register the refitted model as challenger; gate it on ``window`` against the champion.

    ``window`` is None when too few commits were labelled since the champion was trained: the two cannot be
    compared fairly (the champion saw every other commit), so the challenger is archived with that reason.
    """
    from defectops.registry import CHAMPION

    fingerprint = read_fingerprint(dataset)
    run, version = log_candidate(
        registry,
        name,
        candidate,
        dataset_fingerprint=fingerprint.as_dict() if fingerprint else str(dataset),
        now=now,
        who=WHO,
        why="trained by the main job",
        job="run",
        plots=plots,
    )
    stage: dict[str, Any] = {"model_name": name, "version": version.version, "run_id": run.run_id}
    if window is None:
        why = (
            f"fewer than the needed labelled commits were made since champion v{champion.meta.version} was "
            "trained; a fair comparison needs commits neither model has seen"
        )
        registry.archive(name, version.version, WHO, why, now=now)
        stage.update(gate="not run", gate_reason=why, promoted=False)
    else:
        champion_scores = None if champion is None else champion.score(window)
        outcome = registry.apply_gate(
            name,
            version.version,
            y_true=window[LABEL].to_numpy(),
            effort=window[EFFORT].to_numpy(),
            challenger_scores=np.asarray(candidate.window_probability),
            champion_scores=champion_scores,
            champion_version=None if champion is None else champion.meta.version,
            who=WHO,
            now=now,
        )
        stage.update(
            gate="passed" if outcome.decision.passed else "failed",
            gate_reason=outcome.decision.reason,
            promoted=outcome.promoted,
        )
    serving_version = registry.alias_version(name, CHAMPION)
    stage["champion_version"] = serving_version
    serving = registry.load(name, alias=CHAMPION) if serving_version is not None else None
    return stage, serving


def _score_recent(commits: pd.DataFrame, champion: Any, count: int) -> list[RecentCommit]:
    if champion is None or count <= 0:
        return []
    recent = commits.loc[~commits["is_merge"].astype(bool)].tail(count).reset_index(drop=True)
    frame = pd.DataFrame({name: recent[name].astype("float64") for name in FEATURES})
    frame[TIME] = pd.to_datetime(recent["author_time"], utc=True)
    estimator = champion.estimator
    bands = RiskBands.from_calibration(float(estimator.positive_rate_), float(estimator.threshold_))
    scored: list[Scored] = score(
        estimator,
        frame,
        model_name=champion.meta.name,
        model_version=str(champion.meta.version),
        threshold=float(estimator.threshold_),
        bands=bands,
        top_k=3,
        shas=recent["sha"].tolist(),
    )
    return [
        RecentCommit(
            scored=s,
            author=str(row["author_name"]),
            time=pd.Timestamp(row["author_time"]).to_pydatetime(),
            subject=str(row["message"]).splitlines()[0] if str(row["message"]) else "",
        )
        for s, (_, row) in zip(scored, recent.iterrows(), strict=True)
    ]
