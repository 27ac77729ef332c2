"""The recent commits ``run`` scores and reports, and the report of a cold start (the cross-project starter
serves because the repository has too few labels of its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from defectops.config import Workspace
from defectops.data import FEATURES, TIME, read_table
from defectops.errors import InsufficientDataError
from defectops.git import GitRepo
from defectops.mining import MineResult
from defectops.pipeline.coldstart import StarterStage
from defectops.training import RecentCommit, RiskBands, Scored, render, risk_bands_of, score


def cold_start_report(
    repo: GitRepo,
    workspace: Workspace,
    mined: MineResult,
    stage: StarterStage,
    champion: Any,
    why: InsufficientDataError,
    now: datetime,
    *,
    recent_count: int,
    report: Path | None,
) -> tuple[list[RecentCommit], RiskBands | None, Path]:
    """Score the recent commits with the starter and write a report that says it is cross-project; returns
    the scored commits, the starter's risk bands and the report's path."""
    commits = read_table(mined.dataset)
    bands = risk_bands_of(champion.estimator, threshold=float(champion.estimator.threshold_))
    recent = score_recent(commits, champion, bands, recent_count)
    report_dir = workspace.root / "reports" / repo.repo_id()
    report_path = report or report_dir / f"report-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.html"
    page = render(
        title=f"defectops: {repo.path.name}",
        summary={
            "repository": str(repo.path),
            "head": mined.head,
            "commits mined": mined.commits,
            "model": f"{stage.model_name} v{stage.version} (CROSS-PROJECT starter)",
            "champion": stage.champion_version,
        },
        metrics={},
        plots={},
        recent=recent,
        generated_at=now,
        bands=bands,
        note=(
            f"These predictions come from the {stage.description}. No model of this repository's own was "
            f"trained: {why}. The starter's transformation was fitted on {stage.history_rows} mined commits "
            "of this repository (no labels). Once enough labels mature, the repository's own model replaces "
            "it only if it beats it on those labels."
        ),
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(page, encoding="utf-8")
    if report is None:
        (report_dir / "report.html").write_text(page, encoding="utf-8")
    return recent, bands, report_path


def score_recent(
    commits: pd.DataFrame, champion: Any, bands: RiskBands | None, count: int
) -> list[RecentCommit]:
    """The ``count`` latest non-merge commits scored by ``champion`` with their top three reasons; a
    text-aware champion also reads the commits' message and changed lines (``diff``, when attached)."""
    if champion is None or bands is None or count <= 0:
        return []
    recent = commits.loc[~commits["is_merge"].astype(bool)].tail(count).reset_index(drop=True)
    names = [name for name in champion.meta.features if name in recent.columns]
    frame = pd.DataFrame({name: recent[name].astype("float64") for name in (names or FEATURES)})
    frame[TIME] = pd.to_datetime(recent["author_time"], utc=True)
    text = list(champion.text_columns())
    if text and all(name in recent.columns for name in text):  # e.g. a hybrid champion, diff attached
        for name in text:
            frame[name] = recent[name].astype(object).fillna("").astype(str).to_numpy()
    estimator = champion.estimator
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
