"""The hybrid model (#20) against the metrics-only models on real repositories, and its encoder's throughput.

Per repository: mine (cached under ``--work``) and label (SZZ, 90 waiting days, as known at ``--now``); then
the protocol of ``bench_features.py`` and ``defectops run``: the held-out window is the latest 20% of
labelled commits, the models learn from the commits made at least 90 days before it with the labels known
when it began (``training.candidate._held_out_fold``). Every model is fitted on the same rows (defaults, no
tuning, ``--seeds`` seeds averaged) and scored on the same window:

* ``kamei``: LightGBM on the 14 Kamei metrics;
* ``kamei+mined``: LightGBM on the 14 + the mined richer features (``RICH_FEATURES``);
* ``kamei+mined9``: the same without the churn shares (``src_share``...): the 9 richer features mined before
  them, to measure what the shares add in the same run;
* ``kamei | #20 default (...)`` and ``kamei+mined | #20 default (...)``: the metrics-only default of
  ``defectops train``/``run`` (``training.choice.choose_model``: blend weight and recency half-life chosen on
  time-ordered folds inside the training part, once per set), so both metric sides also have today's default;
* ``hybrid (kamei)`` and ``hybrid (kamei+mined)``: the hybrid model on the same metrics plus the message and
  changed-lines embeddings (PCA fitted inside the training part).

The verdict lines compare ``kamei+mined`` with ``kamei`` under the same model (LightGBM, and the #20 default):
the #20 target is a gain of at least 0.03 ROC-AUC on three of the four repositories.

The changed lines are read from git for every commit of the table (bounded, ``git.changed_lines``). The
encoder's throughput is measured on the first ``--throughput-commits`` commits of the table (message and
changed lines, one thread, cold cache): commits per second on this CPU, with the load average beside it.
``--max-train N`` keeps the latest N training rows and ``--max-test M`` M rows spread evenly over the window
(numpy: bound the embedding time; every model is scored on the same rows).

Run: ``.venv/bin/python benchmarks/bench_hybrid.py --repo /work/bench/requests --repo /work/bench/flask
--work /tmp/hybrid/ws [--json out.json]``.
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
from defectops.data import DIFF, FEATURES, LABEL, MESSAGE, RICH_FEATURES, TIME, read_table, training_table
from defectops.data.splits import Split
from defectops.git import GitRepo, changed_lines
from defectops.labeling import LabelOptions, label_repository
from defectops.mining import Miner
from defectops.training.candidate import CandidateOptions, _held_out_fold
from defectops.training.choice import choose_model
from defectops.training.embedding import TextEncoder
from defectops.training.evaluate import run_fold
from defectops.training.selection import with_features

METRICS = ("roc_auc", "pr_auc", "recall_at_20_effort")
#: The richer features mined before the churn shares were added.
MINED9 = tuple(name for name in RICH_FEATURES if not name.endswith("_share"))
GAP = pd.Timedelta(days=90).to_pytimedelta()


def _score(
    table: pd.DataFrame,
    split: Split,
    features: tuple[str, ...],
    kind: str,
    seeds: int,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    runs = []
    began = time.monotonic()
    for seed in range(seeds):
        fold, _ = run_fold(
            with_features(table.copy(), features), split, kind=kind, seed=seed, gap=GAP, params=params
        )
        metrics = fold.report.metrics()
        runs.append([metrics[k] for k in METRICS])
    result: dict[str, Any] = dict(
        zip(METRICS, np.mean(np.asarray(runs), axis=0).round(4).tolist(), strict=True)
    )
    result["seconds"] = round(time.monotonic() - began, 1)
    return result


def _throughput(table: pd.DataFrame, n: int) -> dict[str, float]:
    """Commits per second of a fresh encoder (cold cache, one thread) on the message and changed lines."""
    encoder = TextEncoder(threads=1)
    encoder.encode(["warm up: load the session"])
    rows = table.iloc[:n]
    began = time.monotonic()
    encoder.encode(rows[MESSAGE].tolist())
    messages = time.monotonic() - began
    encoder.encode(rows[DIFF].tolist())
    total = time.monotonic() - began
    return {
        "commits": len(rows),
        "seconds": round(total, 2),
        "commits_per_second": round(len(rows) / total, 2),
        "message_share": round(messages / total, 3),
        "load": round(os.getloadavg()[0], 2),
    }


def repository(
    path: Path,
    work: Path,
    now: datetime,
    seeds: int,
    max_train: int | None,
    max_test: int | None,
    n_tp: int,
) -> dict[str, Any]:
    repo = GitRepo.open(path)
    workspace = Workspace(work / repo.path.name).ensure()
    began = time.monotonic()
    mined = Miner(repo, workspace).mine()
    commits, files = read_table(mined.dataset), read_table(mined.files_dataset)
    labels = label_repository(repo, workspace, now=now, options=LabelOptions(waiting_days=90)).labels
    prepared = time.monotonic() - began
    options = CandidateOptions(budget_seconds=0.0, waiting_days=90)
    table_now = training_table(commits, labels, as_of=now, files=files)
    fold = _held_out_fold(commits, labels, files, table_now, options, GAP)
    if fold is None:
        raise SystemExit(f"{path}: no usable held-out fold")
    table, split, _test = fold
    if max_train is not None or max_test is not None:
        # Bound the embedding time (numpy): the latest max_train training rows, and max_test rows spread evenly
        # over the whole window (time order kept, no randomness); every model sees the same rows.
        keep_train = split.train[-max_train:] if max_train is not None else split.train
        keep_test = split.test
        if max_test is not None and len(keep_test) > max_test:
            keep_test = keep_test[np.unique(np.linspace(0, len(keep_test) - 1, max_test).round().astype(int))]
        table = table.iloc[np.concatenate([keep_train, keep_test])].reset_index(drop=True)
        split = Split(
            train=np.arange(len(keep_train)),
            test=np.arange(len(keep_train), len(table)),
            info=dict(split.info),
        )
    began = time.monotonic()
    texts = changed_lines(repo, table["commit"].astype(str).tolist())
    table[DIFF] = [texts[c] for c in table["commit"].astype(str)]
    diff_seconds = time.monotonic() - began
    throughput = _throughput(table, n_tp)
    metrics_sets = {
        "kamei": tuple(FEATURES),
        "kamei+mined9": (*FEATURES, *MINED9),
        "kamei+mined": (*FEATURES, *RICH_FEATURES),
    }
    rows: dict[str, dict[str, Any]] = {}
    for name, features in metrics_sets.items():
        rows[name] = _score(table, split, features, "lightgbm", seeds)
    train = table.iloc[split.train].reset_index(drop=True)
    choices: dict[str, Any] = {}
    for name, features in metrics_sets.items():
        # the metrics-only default: its choices made on folds inside the training part only
        model = choose_model(train, features=features, gap=GAP)
        choices[name] = model.as_dict()
        rows[f"{name} | #20 default ({model.name})"] = _score(
            table, split, features, model.kind, seeds, params=model.params
        )
    print(f"# {repo.path.name}: metrics rows done, load {os.getloadavg()[0]:.1f}", flush=True)
    for name, features in metrics_sets.items():
        if name != "kamei+mined9":
            rows[f"hybrid ({name})"] = _score(table, split, features, "hybrid", seeds)
    test_rows = table.iloc[split.test]
    result = {
        "repository": repo.path.name,
        "commits": len(commits),
        "train_rows": len(split.train),
        "test_rows": len(split.test),
        "test_defects": int(test_rows[LABEL].sum()),
        "test_from": str(test_rows[TIME].min().date()),
        "mine_label_seconds": round(prepared, 1),
        "changed_lines_seconds": round(diff_seconds, 1),
        "throughput": throughput,
        "model_choices": choices,
        "bounded": {"max_train": max_train, "max_test": max_test},
        "load_end": round(os.getloadavg()[0], 2),
        "sets": rows,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/defectops-bench-hybrid"))
    parser.add_argument("--now", default="2026-12-03T00:00:00+00:00")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=None, help="Keep the latest N training rows.")
    parser.add_argument("--max-test", type=int, default=None, help="Keep N rows spread over the window.")
    parser.add_argument("--throughput-commits", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now).astimezone(UTC)
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, now {now:%Y-%m-%d}")
    results = [
        repository(p, args.work, now, args.seeds, args.max_train, args.max_test, args.throughput_commits)
        for p in args.repo
    ]
    print("\n| repository | model | ROC-AUC | PR-AUC | Recall@20% effort | fit+score s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for name, m in r["sets"].items():
            print(
                f"| {r['repository']} | {name} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | "
                f"{m['recall_at_20_effort']:.4f} | {m['seconds']} |"
            )
    for r in results:
        for side in ("", " | #20 default"):
            roc = {n.split(" (")[0]: m["roc_auc"] for n, m in r["sets"].items()}
            base = roc[f"kamei{side}"]
            for mined in ("kamei+mined9", "kamei+mined"):
                gain = roc[f"{mined}{side}"] - base
                verdict = "met" if gain >= 0.03 else "not met"
                model = "LightGBM" if not side else "#20 default"
                print(
                    f"{r['repository']}: {mined} {gain:+.4f} ROC-AUC over kamei ({model}): target {verdict}"
                )
    for r in results:
        t = r["throughput"]
        print(
            f"{r['repository']}: {t['commits_per_second']} commits/s ({t['commits']} commits, load {t['load']})"
        )
    print(f"# load at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
