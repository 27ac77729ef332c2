"""Model quality against the literature, on published datasets, in one harness.

1. OpenStack (Zeng et al., ISSTA'21): file order, first 80% train, last 20% test, label ``bug > 0``.
   Sanity check first: ROC-AUC of ``la`` alone on the test part must be 0.7491 (as published), else the
   harness is wrong and the script stops. Then ROC-AUC of defectops' default model (LightGBM, hyperparameters
   tuned by Optuna on time-ordered folds inside the training part only, within ``--budget-seconds``) beside
   the published LR-JIT, DeepJIT, CC2Vec, LApredict and a log-transformed logistic regression computed here.
2. Kamei et al. 2013 data (bugzilla, columba, jdt, postgres): the time-wise protocol (train on months i and
   i+1, skip two months, test on months i+4 and i+5), mean over folds of ROC-AUC, Popt and Recall@20% effort
   for the default model (default hyperparameters, no tuning: a 2-month window is too small to tune on),
   ranked by predicted risk density (defectops' default) and by risk alone, the Kamei-style log-LR,
   EALR (Kamei et al. 2013) and the unsupervised "smaller LT first" ranking (Yang et al. FSE'16).

Run: ``.venv/bin/python benchmarks/bench_quality.py [--budget-seconds 90] [--skip-kamei] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from defectops.data.external import load_table
from defectops.data.splits import kamei_monthly, ordered_split
from defectops.training.baselines import EffortAwareLinearRegression, smaller_lt_first
from defectops.training.evaluate import fit_model
from defectops.training.metrics import Ranking, evaluate_predictions, roc_auc
from defectops.training.models import LogisticJIT

DATA = Path(os.environ.get("DEFECTOPS_JIT_DATA", "/work/shared/data/jit"))
PUBLISHED_OPENSTACK = {"LR-JIT": 0.7248, "DeepJIT": 0.7132, "CC2Vec": 0.7227, "LApredict": 0.7491}
KAMEI_SETS = ("bugzilla", "columba", "jdt", "postgres")
RANKINGS: tuple[tuple[str, Ranking], ...] = (("default (density)", "density"), ("default (risk)", "risk"))


def openstack(budget_seconds: float, seed: int) -> dict[str, Any]:
    table = load_table(DATA / "openstack.csv", "openstack")
    if not table["time"].is_monotonic_increasing:
        raise SystemExit("openstack.csv is not in time order; the published split assumes it is")
    split = ordered_split(len(table), test_fraction=0.2)
    train, test = table.iloc[split.train], table.iloc[split.test]
    la_auc = roc_auc(test["label"], test["la"])
    print(f"OpenStack: {len(train)} train / {len(test)} test rows; sanity AUC(la) on test = {la_auc:.4f}")
    if abs(la_auc - 0.7491) > 5e-5:
        raise SystemExit(f"harness check failed: AUC(la) = {la_auc:.4f}, published 0.7491")

    began = time.monotonic()
    baseline = LogisticJIT(class_weight=None, cv_folds=0).fit(train, train["label"])
    lr_auc = roc_auc(test["label"], baseline.predict_proba(test)[:, 1])
    lr_seconds = time.monotonic() - began

    began = time.monotonic()
    defaults = fit_model(train, kind="lightgbm", budget_seconds=0, seed=seed)
    default_auc = roc_auc(test["label"], defaults.model.predict_proba(test)[:, 1])
    default_seconds = time.monotonic() - began

    began = time.monotonic()
    fitted = fit_model(train, kind="lightgbm", budget_seconds=budget_seconds, seed=seed)
    fit_seconds = time.monotonic() - began
    probability = fitted.model.predict_proba(test)[:, 1]
    report = evaluate_predictions(
        test["label"], probability, test["churn"], threshold=fitted.model.threshold_
    )
    tuning = fitted.tuning.as_dict() if fitted.tuning is not None else None

    rows = [(name, auc, "published") for name, auc in PUBLISHED_OPENSTACK.items()]
    rows.append(("log-LR (this run)", lr_auc, f"{lr_seconds:.1f}s"))
    rows.append(("LightGBM defaults, untuned (this run)", default_auc, f"{default_seconds:.1f}s"))
    rows.append(("defectops default: tuned LightGBM", report.roc_auc, f"{fit_seconds:.1f}s"))
    print(f"\n{'model':<40} {'ROC-AUC':>8}  note")
    for name, auc, note in rows:
        print(f"{name:<40} {auc:>8.4f}  {note}")
    beaten = all(report.roc_auc > auc for _, auc, _ in rows[:5])
    print(f"default model beats every published figure and the log-LR baseline: {beaten}")
    if tuning is not None:
        print(
            f"tuning: {tuning['n_trials']} trials ({tuning['n_pruned']} pruned) in {tuning['elapsed_seconds']:.0f}s, "
            f"validation AUC {tuning['default_score']:.4f} (defaults) -> {tuning['best_score']:.4f}; "
            f"params {tuning['best_params']}"
        )
    print(
        "other test metrics of the default model: "
        + ", ".join(f"{k}={v:.4f}" for k, v in report.metrics().items())
    )
    return {
        "sanity_auc_la": la_auc,
        "published": PUBLISHED_OPENSTACK,
        "log_lr_auc": lr_auc,
        "lightgbm_untuned_auc": default_auc,
        "default_model_auc": report.roc_auc,
        "default_model_metrics": report.metrics(),
        "beats_all": beaten,
        "tuning": tuning,
        "fit_seconds": fit_seconds,
    }


def kamei(name: str, seed: int) -> dict[str, Any]:
    table = load_table(DATA / f"{name}.csv", "kamei")
    folds = kamei_monthly(table["time"])
    labels = table["label"].to_numpy()
    usable = [f for f in folds if len(set(labels[f.train])) == 2 and len(set(labels[f.test])) == 2]
    results: dict[str, list[tuple[float, float, float]]] = {
        "default (density)": [],
        "default (risk)": [],
        "log-LR (Kamei-style, density)": [],
        "EALR": [],
        "LT (Yang et al.)": [],
    }
    began = time.monotonic()
    for fold in usable:
        train, test = table.iloc[fold.train], table.iloc[fold.test]
        y, churn = test["label"].to_numpy(), test["churn"].to_numpy()
        model = fit_model(train, kind="lightgbm", budget_seconds=0, seed=seed).model
        p = model.predict_proba(test)[:, 1]
        for key, ranking in RANKINGS:
            r = evaluate_predictions(y, p, churn, threshold=model.threshold_, ranking=ranking)
            results[key].append((r.roc_auc, r.popt, r.recall_at_20_effort))
        linear = fit_model(train, kind="logreg", budget_seconds=0, seed=seed).model
        r = evaluate_predictions(y, linear.predict_proba(test)[:, 1], churn, threshold=linear.threshold_)
        results["log-LR (Kamei-style, density)"].append((r.roc_auc, r.popt, r.recall_at_20_effort))
        density = (
            EffortAwareLinearRegression(random_state=seed)
            .fit(train, train["label"], train["churn"])
            .predict(test)
        )
        r = evaluate_predictions(y, np.clip(density, 0, 1), churn, effort_score=density)
        results["EALR"].append((roc_auc(y, density), r.popt, r.recall_at_20_effort))
        lt = smaller_lt_first(test)
        r = evaluate_predictions(y, lt, churn, effort_score=lt)
        results["LT (Yang et al.)"].append((roc_auc(y, lt), r.popt, r.recall_at_20_effort))
    seconds = time.monotonic() - began
    summary = {
        key: dict(
            zip(
                ("roc_auc", "popt", "recall_at_20_effort"),
                np.nanmean(np.array(v), axis=0).round(4).tolist(),
                strict=True,
            )
        )
        for key, v in results.items()
    }
    zero = float((table["churn"] == 0).mean())
    print(
        f"\n{name}: {len(table)} changes, {len(usable)} of {len(folds)} monthly folds usable, "
        f"{zero:.1%} with zero churn, {seconds:.0f}s"
    )
    print(f"{'ranking':<30} {'ROC-AUC':>8} {'Popt':>8} {'R@20%E':>8}")
    for key, values in summary.items():
        print(
            f"{key:<30} {values['roc_auc']:>8.3f} {values['popt']:>8.3f} {values['recall_at_20_effort']:>8.3f}"
        )
    return {
        "folds": len(usable),
        "all_folds": len(folds),
        "zero_churn_share": zero,
        "seconds": seconds,
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-seconds", type=float, default=90.0, help="Optuna budget on OpenStack")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-kamei", action="store_true")
    parser.add_argument("--skip-openstack", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=list(KAMEI_SETS))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    began = time.monotonic()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    if not args.skip_openstack:
        result["openstack"] = openstack(args.budget_seconds, args.seed)
    if not args.skip_kamei:
        result["kamei"] = {name: kamei(name, args.seed) for name in args.datasets}
    result["seconds"] = time.monotonic() - began
    print(f"\ntotal {result['seconds']:.0f}s")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
