"""Richer features (#20) against the 14 Kamei metrics on real repositories, in one run, one protocol.

Per repository: mine (cached in the workspace under ``--work``, so numpy is mined once) and label (SZZ, 90
waiting days, as known at ``--now``); then the protocol of ``defectops run``: the held-out window is the latest
20% of labelled commits, the models learn from the commits made at least 90 days before it with the labels
known when it began (``training.candidate._held_out_fold``). Every feature set is fitted on the same rows with
the same model (LightGBM defaults, no tuning, ``--seeds`` seeds averaged), and scored on the same window:

* ``kamei``: the 14 Kamei metrics (today's default);
* ``kamei+mined``: + the mined richer features (``RICH_FEATURES``);
* ``kamei+mined+label-history``: + the label-history features (``LABEL_HISTORY_FEATURES``);
* ``auto``: the set ``training.selection.choose_features`` picks on a validation window inside the training
  part (what ``defectops run`` does);
* ``<set> | #20 default``: the same set with the #20 default model (``training.choice.choose_model``: the
  log-linear/boosted blend weight and recency half-life chosen on the training part only), compared with
  ``kamei | #20 default``; ``run default``: what ``defectops run`` now chooses (scorable sets, then the model);
* ``...+time``: the largest set + hour and weekday in the author's time zone (not mined: measured here to
  decide whether to mine them);
* add-one ablations: Kamei-14 + one richer feature, to say which features help.

Run: ``.venv/bin/python benchmarks/bench_features.py --repo /work/bench/requests --repo /work/bench/flask
--repo /work/bench/scrapy --repo /work/bench/numpy --work /tmp/feat/ws [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defectops.config import Workspace
from defectops.data import (
    EFFORT,
    FEATURES,
    LABEL,
    LABEL_HISTORY_FEATURES,
    RICH_FEATURES,
    TIME,
    read_table,
    training_table,
)
from defectops.data.splits import Split
from defectops.git import GitRepo
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import Miner
from defectops.training.candidate import CandidateOptions, _held_out_fold
from defectops.training.choice import choose_model
from defectops.training.evaluate import run_fold
from defectops.training.models import DEFAULT_MODEL
from defectops.training.selection import FEATURE_SETS, SCORABLE_SETS, choose_features, with_features

METRICS = ("roc_auc", "pr_auc", "recall_at_20_effort")
TIME_FEATURES = ("hour", "weekday")


def _local_times(repo: GitRepo) -> pd.DataFrame:
    """Hour and weekday of every commit in its author's own time zone (``%ad`` with the author's offset)."""
    out = repo.run("log", "--all", "--format=%H %ad", "--date=format:%H %w").decode().split("\n")
    rows = [line.split() for line in out if line.strip()]
    return pd.DataFrame(
        {
            "commit": [r[0] for r in rows],
            "hour": [float(r[1]) for r in rows],
            "weekday": [float(r[2]) for r in rows],
        }
    ).drop_duplicates("commit")


def _score(
    table: pd.DataFrame,
    split: Split,
    features: tuple[str, ...],
    seeds: int,
    kind: str = DEFAULT_MODEL,
    params: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Mean over seeds of the held-out metrics of ``kind`` (LightGBM; defaults but ``params``) on
    ``features``."""
    runs = []
    for seed in range(seeds):
        fold, _ = run_fold(
            with_features(table.copy(), features),
            split,
            kind=kind,
            seed=seed,
            gap=pd.Timedelta(days=90),
            params=params,
        )
        metrics = fold.report.metrics()
        runs.append([metrics[k] for k in METRICS])
    return dict(zip(METRICS, np.mean(np.asarray(runs), axis=0).round(4).tolist(), strict=True))


def repository(path: Path, work: Path, now: datetime, seeds: int, ablations: bool) -> dict[str, Any]:
    repo = GitRepo.open(path)
    workspace = Workspace(work / repo.path.name).ensure()
    began = time.monotonic()
    mined = Miner(repo, workspace).mine()
    commits, files = read_table(mined.dataset), read_table(mined.files_dataset)
    labels = label_repository(repo, workspace, now=now, options=LabelOptions(waiting_days=90)).labels
    prepared = time.monotonic() - began
    options = CandidateOptions(budget_seconds=0.0, waiting_days=90)
    table_now = training_table(commits, labels, as_of=now, files=files)
    fold = _held_out_fold(commits, labels, files, table_now, options, pd.Timedelta(days=90).to_pytimedelta())
    if fold is None:
        raise SystemExit(f"{path}: no usable held-out fold")
    table, split, test = fold
    table = table.merge(_local_times(repo), on="commit", how="left", validate="many_to_one")
    train = table.iloc[split.train].reset_index(drop=True)
    rows: dict[str, dict[str, float]] = {}
    gap = pd.Timedelta(days=90).to_pytimedelta()
    choices: dict[str, Any] = {}
    for name, groups in FEATURE_SETS:
        features = tuple(c for g in groups for c in g)
        rows[name] = _score(table, split, features, seeds)
        # the #20 default on the same set: family and recency chosen on the training part only
        model = choose_model(train, features=features, gap=gap)
        choices[name] = model.as_dict()
        rows[f"{name} | #20 default ({model.name})"] = _score(
            table, split, features, seeds, kind=model.kind, params=model.params
        )
    choice = choose_features(train, kind=DEFAULT_MODEL, gap=gap)
    rows[f"auto ({choice.name})"] = _score(table, split, choice.features, seeds)
    # what `defectops run` now does (without tuning): the scorable sets, then the model choice
    run_set = choose_features(train, kind=DEFAULT_MODEL, gap=gap, candidates=SCORABLE_SETS)
    run_model = choose_model(train, features=run_set.features, gap=gap)
    rows[f"run default ({run_set.name} | {run_model.name})"] = _score(
        table, split, run_set.features, seeds, kind=run_model.kind, params=run_model.params
    )
    everything = (*FEATURES, *RICH_FEATURES, *LABEL_HISTORY_FEATURES)
    rows["kamei+mined+label-history+time"] = _score(table, split, (*everything, *TIME_FEATURES), seeds)
    single: dict[str, float] = {}
    if ablations:
        base = rows["kamei"]["roc_auc"]
        for name in (*RICH_FEATURES, *LABEL_HISTORY_FEATURES, *TIME_FEATURES):
            single[name] = round(_score(table, split, (*FEATURES, name), seeds)["roc_auc"] - base, 4)
    result = {
        "repository": repo.path.name,
        "commits": len(commits),
        "train_rows": len(split.train),
        "test_rows": len(test),
        "test_defects": int(test[LABEL].sum()),
        "test_from": str(test[TIME].min().date()),
        "effort_total": float(test[EFFORT].sum()),
        "mine_label_seconds": round(prepared, 1),
        "auto": choice.as_dict(),
        "model_choices": choices,
        "sets": rows,
        "add_one_roc_auc_delta": single,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/defectops-bench-features"))
    parser.add_argument("--now", default="2026-12-03T00:00:00+00:00")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now).astimezone(UTC)
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, now {now:%Y-%m-%d}")
    results = [repository(p, args.work, now, args.seeds, not args.no_ablations) for p in args.repo]
    print(
        "\n| repository | feature set | ROC-AUC | PR-AUC | Recall@20% effort | ΔROC-AUC vs kamei "
        "(same model: LightGBM, or the #20 default) |"
    )
    print("|---|---|---|---|---|---|")
    wins: dict[str, int] = {}
    for r in results:
        plain = r["sets"]["kamei"]["roc_auc"]
        new = next(m["roc_auc"] for n, m in r["sets"].items() if n.startswith("kamei | #20"))
        for name, m in r["sets"].items():
            # the #20 default's rows against Kamei-14 with the #20 default, the others against LightGBM
            base = new if ("#20" in name or name.startswith("run default")) else plain
            delta = m["roc_auc"] - base
            print(
                f"| {r['repository']} | {name} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | "
                f"{m['recall_at_20_effort']:.4f} | {delta:+.4f} |"
            )
        for name, m in r["sets"].items():
            key = name.split(" (")[0]
            base = new if ("#20" in name or name.startswith("run default")) else plain
            wins[key] = wins.get(key, 0) + int(m["roc_auc"] - base >= 0.03)
    for name, count in wins.items():
        print(f"{name}: adds >= 0.03 ROC-AUC over kamei on {count} of {len(results)} repositories")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
