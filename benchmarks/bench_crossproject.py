"""The cross-project starter against within-project models, leave-one-project-out and on mined repositories.

Part 1, public datasets (``../shared/data/jit`` and the repository's ``data/jit``): for every project P, the starter is built by the shipped
protocol (:func:`defectops.training.starter.build.build_starter`) from the *other* projects only (its
transformation chosen by leave-one-project-out among them), fitted to P's first 80% in time order (features
only) and tested on P's last 20%. Beside it, in the same run: the within-project default model (LightGBM,
defaults, no tuning) trained on P's first 80% with its labels, and ``la`` alone (the LApredict baseline of
Zeng et al., ISSTA'21). No gap between the parts: the published protocol.

Part 2, repositories mined here (``--repo PATH``, e.g. /work/bench/requests, /work/bench/flask): mined and
labelled with SZZ by defectops (labels as known now, 90 waiting days); the held-out window is the latest 20%
of labelled commits after a gap of the waiting period, as ``defectops run`` holds out; the repository's own
default model is trained on the labels known when the window began; the starter (the shipped one, which never
saw these repositories) is fitted to the commits mined before the window (features only). Both are scored
on the window's SZZ labels.

Usage: ``python benchmarks/bench_crossproject.py [--data DIR ...] [--project NAME ...] [--repo PATH ...]
[--skip-datasets]`` (``--project``: hold out only these projects; each is still trained on all the others).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from defectops.config import Workspace
from defectops.data import EFFORT, FEATURES, LABEL, TIME
from defectops.data.mined import read_table
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import Miner
from defectops.training import load_starter
from defectops.training.candidate import CandidateOptions, train_candidate
from defectops.training.evaluate import fit_model
from defectops.training.metrics import evaluate_predictions
from defectops.training.models import RepoTransform
from defectops.training.models.calibration import sigmoid
from defectops.training.starter.build import BoosterCache, build_starter, load_projects

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = [HERE.parents[1] / "shared" / "data" / "jit", HERE.parent / "data" / "jit"]
KEYS = ("roc_auc", "pr_auc", "f1", "recall_at_20_effort", "effort_at_20_recall", "popt", "ifa")


def _metrics(y: np.ndarray, p: np.ndarray, effort: np.ndarray, threshold: float) -> dict[str, float]:
    report = evaluate_predictions(y, p, effort, threshold=threshold).metrics()
    return {k: float(report[k]) for k in KEYS}


def _row(project: str, model: str, metrics: dict[str, float], extra: str = "") -> str:
    cells = " | ".join(f"{metrics[k]:.4f}" if k != "ifa" else f"{metrics[k]:.0f}" for k in KEYS)
    return f"| {project} | {model} | {cells} | {extra} |"


def datasets(data: list[Path], only: list[str]) -> list[str]:
    projects = load_projects(data)
    unknown = sorted(set(only) - {p.name for p in projects})
    if unknown:
        raise SystemExit(f"error: unknown project(s) {', '.join(unknown)}")
    lines = []
    gaps = {}
    cache: BoosterCache = {}  # boosters trained on all but P and Q serve both P's and Q's folds
    for held in projects:
        if only and held.name not in only:
            continue
        began = time.monotonic()
        others = [p for p in projects if p is not held]
        starter, selection = build_starter(others, cache=cache)
        history, test_rows = held.split()
        starter.transform_ = RepoTransform.fit(starter.transform, held.numeric(history), FEATURES)
        test = held.table.iloc[test_rows].reset_index(drop=True)
        y = test[LABEL].to_numpy()
        effort = test[EFFORT].to_numpy(dtype=np.float64)
        p_starter = starter.predict_proba(test)[:, 1]
        cross = _metrics(y, p_starter, effort, starter.threshold_)
        own = fit_model(held.table.iloc[history].reset_index(drop=True), budget_seconds=0.0).model
        within = _metrics(y, own.predict_proba(test)[:, 1], effort, own.threshold_)
        la = test["la"].to_numpy(dtype=np.float64)
        la_p = sigmoid((np.log1p(la) - np.log1p(la).mean()) / (np.log1p(la).std() or 1.0))
        la_only = _metrics(y, la_p, effort, 0.5)
        gaps[held.name] = cross["roc_auc"] - within["roc_auc"]
        choice = f"recipe {selection.chosen.label} (LOPO among the others: " + ", ".join(
            f"{t} {selection.mean(t):.4f}" for t in selection.scores
        )
        lines += [
            _row(held.name, "starter (cross-project)", cross, choice + ")"),
            _row(held.name, "within-project default", within, f"{len(history)} train rows"),
            _row(held.name, "la alone", la_only, f"{time.monotonic() - began:.0f} s"),
        ]
        print(lines[-3], lines[-2], lines[-1], sep="\n", flush=True)
    print("\nROC-AUC starter - within-project:", {k: round(v, 4) for k, v in gaps.items()})
    return lines


def mined_repository(path: Path, work: Path, now: datetime) -> list[str]:
    repo = GitRepo.open(path)
    workspace = Workspace(work / repo.path.name).ensure()
    mined = Miner(repo, workspace).mine()
    commits, files = read_table(mined.dataset), read_table(mined.files_dataset)
    labels = label_repository(repo, workspace, now=now, options=LabelOptions(waiting_days=90)).labels
    candidate = train_candidate(
        commits, labels, files, now=now, options=CandidateOptions(budget_seconds=0.0, waiting_days=90)
    )
    window = candidate.window
    y = window[LABEL].to_numpy()
    effort = window[EFFORT].to_numpy(dtype=np.float64)
    start = window[TIME].min()
    own = _metrics(y, candidate.window_probability, effort, float(candidate.model.threshold_))
    scored = commits.loc[~commits["is_merge"].astype(bool)]
    before = scored.loc[pd.to_datetime(scored["author_time"], utc=True) < start]
    history = pd.DataFrame({name: before[name].astype("float64").to_numpy() for name in FEATURES})
    starter = load_starter().adapt(history)
    cross = _metrics(y, starter.predict_proba(window)[:, 1], effort, starter.threshold_)
    info = (
        f"window {len(window)} commits ({int(y.sum())} defect-inducing) from {start:%Y-%m-%d}; "
        f"starter fitted on {len(history)} earlier commits"
    )
    lines = [
        _row(repo.path.name, "starter (cross-project)", cross, info),
        _row(
            repo.path.name,
            "own default model",
            own,
            f"{candidate.evaluation.as_dict().get('train_rows')} train rows",
        ),
    ]
    print(*lines, sep="\n", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="dataset folder (repeatable)")
    parser.add_argument("--project", action="append", default=[], help="hold out only this project")
    parser.add_argument("--repo", type=Path, action="append", default=[])
    parser.add_argument("--skip-datasets", action="store_true")
    parser.add_argument("--work", type=Path, default=HERE / ".work" / "crossproject")
    args = parser.parse_args()
    now = datetime.now(UTC)
    load = os.getloadavg()
    print(
        f"date {now:%Y-%m-%d %H:%M} UTC; machine {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    header = "| project | model | " + " | ".join(KEYS) + " | notes |"
    print(header)
    print("|" + "---|" * (len(KEYS) + 3))
    if not args.skip_datasets:
        datasets(args.data or DEFAULT_DATA, args.project)
    for repo in args.repo:
        mined_repository(repo, args.work, now)


if __name__ == "__main__":
    main()
