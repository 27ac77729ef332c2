"""Why the richer features (#20) add what they add, measured only inside the training part.

Per repository: the held-out fold of ``defectops run`` (``training.candidate._held_out_fold``, as in
``bench_hybrid.py``), then everything on the 3 rolling-origin validation folds *inside its training part*
(``training.tuning.validation_folds``, the folds ``training.choice.choose_model`` uses), never on the window:

* validation ROC-AUC of feature sets (Kamei-14; + the 9 mined features before the churn shares; + the churn
  split alone; + all mined; + label history; + the relative-churn ratios of ``training.choice``), with
  LightGBM defaults and with the blend w=0.5 (the #20 default's family);
* add-one gains (Kamei-14 + one feature) and each richer feature's largest Spearman correlation with a
  Kamei metric;
* label delay: how long a defect waits for its revealing fix, and the label-history features as used
  (labels known before the commit) against an oracle that counts every eventual label (leaky: a diagnosis,
  never a feature).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_features_validation.py --repo /work/bench/requests
--work /tmp/feat/ws [--no-add-one] [--json out.json]``. docs/benchmarks.md, "Why the richer features add
little", has the results.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.config import Workspace
from defectops.data import (
    FEATURES,
    LABEL,
    LABEL_HISTORY_FEATURES,
    RICH_FEATURES,
    TIME,
    read_table,
    training_table,
)
from defectops.data.label_history import label_history_features
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import Miner
from defectops.training.candidate import CandidateOptions, _held_out_fold
from defectops.training.choice import RELATIVE_CHURN, _fold_raw, blend_raw, with_relative_churn
from defectops.training.metrics import roc_auc
from defectops.training.models import LightGBMJIT, LogisticJIT
from defectops.training.tuning import validation_folds

GAP = pd.Timedelta(days=90).to_pytimedelta()
K = tuple(FEATURES)
MINED9 = tuple(name for name in RICH_FEATURES if not name.endswith("_share"))
SPLIT = ("src_churn", "test_churn", "doc_churn", "build_churn")
HISTORY = tuple(LABEL_HISTORY_FEATURES)


def validation_auc(train: pd.DataFrame, features: tuple[str, ...], seeds: int, weight: float = 0.0) -> float:
    """Mean ROC-AUC over the validation folds inside ``train`` and ``seeds`` seeds (blend weight ``weight``)."""
    y = train[LABEL].to_numpy()
    columns = [*features, TIME, LABEL]
    scores = []
    for fold in validation_folds(train[TIME], n_folds=3, gap=GAP):
        if len(np.unique(y[fold.train])) < 2 or len(np.unique(y[fold.test])) < 2:
            continue
        fit, valid = train.iloc[fold.train].loc[:, columns], train.iloc[fold.test].loc[:, columns]
        for seed in range(seeds):
            common: dict[str, Any] = {
                "features": features,
                "half_life_days": 365.0,
                "cv_folds": 0,
                "random_state": seed,
            }
            zeros = np.zeros(len(valid))
            boosted = _fold_raw(LightGBMJIT(**common), fit, valid) if weight < 1 else zeros
            linear = _fold_raw(LogisticJIT(**common), fit, valid) if weight > 0 else zeros
            scores.append(roc_auc(valid[LABEL].to_numpy(), blend_raw(boosted, linear, weight)))
    return round(float(np.mean(scores)), 4)


def repository(path: Path, work: Path, now: datetime, seeds: int, add_one: bool) -> dict[str, Any]:
    began = time.monotonic()
    repo = GitRepo.open(path)
    workspace = Workspace(work / repo.path.name).ensure()
    mined = Miner(repo, workspace).mine()
    commits, files = read_table(mined.dataset), read_table(mined.files_dataset)
    labels = label_repository(repo, workspace, now=now, options=LabelOptions(waiting_days=90)).labels
    table_now = training_table(commits, labels, as_of=now, files=files)
    options = CandidateOptions(budget_seconds=0.0, waiting_days=90)
    fold = _held_out_fold(commits, labels, files, table_now, options, GAP)
    if fold is None:
        raise SystemExit(f"{path}: no usable held-out fold")
    table, split, _ = fold
    train = with_relative_churn(table.iloc[split.train].reset_index(drop=True))
    # the oracle: every eventual label counted from its commit's own time (leaky; diagnosis only)
    oracle_labels = labels.copy()
    authored = commits.set_index("sha")["author_time"]
    oracle_labels["label_known_at"] = (
        oracle_labels["sha"].map(authored).fillna(oracle_labels["label_known_at"])
    )
    targets = commits.set_index("sha").loc[train["commit"]].reset_index()
    oracle = label_history_features(commits, files, oracle_labels, targets, files)
    for name in HISTORY:
        train[f"{name}_oracle"] = oracle[name].to_numpy()
    sets = {
        "kamei": K,
        "kamei+mined9": K + MINED9,
        "kamei+mined9+label-history": K + MINED9 + HISTORY,
        "kamei+churn-split": K + SPLIT,
        "kamei+mined": K + tuple(RICH_FEATURES),
        "kamei+mined9+relative": K + MINED9 + RELATIVE_CHURN,
        "kamei+mined+relative": K + tuple(RICH_FEATURES) + RELATIVE_CHURN,
        "kamei+label-history": K + HISTORY,
        "kamei+label-history-oracle": K + tuple(f"{name}_oracle" for name in HISTORY),
    }
    result: dict[str, Any] = {
        "repository": repo.path.name,
        "train_rows": len(train),
        "train_defects": int(train[LABEL].sum()),
        "lightgbm": {name: validation_auc(train, features, seeds) for name, features in sets.items()},
        "blend_0.5": {
            name: validation_auc(train, sets[name], seeds, weight=0.5)
            for name in ("kamei", "kamei+mined9", "kamei+churn-split", "kamei+mined")
        },
    }
    if add_one:
        base = result["lightgbm"]["kamei"]
        result["add_one"] = {
            name: round(validation_auc(train, (*K, name), seeds) - base, 4)
            for name in (*RICH_FEATURES, *HISTORY)
        }
    ranks = train[[*K, *RICH_FEATURES, *HISTORY]].rank().corr()
    strongest: dict[str, list[Any]] = {}
    for name in (*RICH_FEATURES, *HISTORY):
        row = ranks.loc[name, list(K)].abs().to_numpy(dtype=np.float64)
        strongest[name] = [K[int(row.argmax())], round(float(row.max()), 3)]
    result["most_correlated_kamei"] = strongest
    defects = labels.loc[labels["verdict"] == "defect", ["sha", "label_known_at"]]
    defects = defects.merge(commits[["sha", "author_time"]], on="sha")
    delay = pd.to_datetime(defects["label_known_at"], utc=True) - pd.to_datetime(
        defects["author_time"], utc=True
    )
    result["label_delay_days"] = {
        str(q): round(float(delay.dt.days.quantile(q)), 1) for q in (0.25, 0.5, 0.75, 0.9)
    }
    result["known_share_of_oracle"] = {
        name: round(float(train[name].sum() / max(float(train[f"{name}_oracle"].sum()), 1.0)), 3)
        for name in ("file_bugs", "dir_bugs")
    }
    result["seconds"] = round(time.monotonic() - began, 1)
    result["load_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/defectops-bench-features"))
    parser.add_argument("--now", default="2026-12-03T00:00:00+00:00")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--no-add-one", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now).astimezone(UTC)
    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    results = [repository(p, args.work, now, args.seeds, not args.no_add_one) for p in args.repo]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
