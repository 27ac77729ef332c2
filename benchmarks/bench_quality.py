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

3. The default's choices of #20 (``training.choice``), beside today's default in the same run: on OpenStack
   the relative-churn set and the model family / recency chosen on time-ordered folds of the training part,
   then tuned like the default; every candidate's validation ROC-AUC (inside the training part) and test
   ROC-AUC (model defaults, for the record only: nothing is chosen on it). On the Kamei sets the choice is
   made per fold on that fold's 2-month training window (``new default`` rows).

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from defectops.data import LABEL, TIME
from defectops.data.external import load_table
from defectops.data.splits import kamei_monthly, ordered_split
from defectops.training.baselines import EffortAwareLinearRegression, smaller_lt_first
from defectops.training.choice import (
    EXTERNAL_SETS,
    HALF_LIVES,
    LINEAR_WEIGHTS,
    blend_raw,
    candidate_name,
    choose_model,
    with_relative_churn,
)
from defectops.training.evaluate import fit_model
from defectops.training.metrics import Ranking, evaluate_predictions, roc_auc
from defectops.training.models import LightGBMJIT, LogisticJIT
from defectops.training.selection import choose_features, with_features

DATA = Path(os.environ.get("DEFECTOPS_JIT_DATA", "/work/shared/data/jit"))
PUBLISHED_OPENSTACK = {"LR-JIT": 0.7248, "DeepJIT": 0.7132, "CC2Vec": 0.7227, "LApredict": 0.7491}
KAMEI_SETS = ("bugzilla", "columba", "jdt", "postgres")
RANKINGS: tuple[tuple[str, Ranking], ...] = (("default (density)", "density"), ("default (risk)", "risk"))


def new_default(train: Any, seed: int, gap: timedelta = timedelta(0)) -> tuple[Any, dict[str, Any]]:
    """The #20 default's choices on ``train`` only (as ``defectops train`` makes them): the relative-churn
    set, then the model family and recency. Returns the table with the chosen inputs and the choices."""
    widened = with_relative_churn(train)
    features = choose_features(widened, kind="lightgbm", gap=gap, seed=seed, candidates=EXTERNAL_SETS)
    with_features(widened, features.features)
    model = choose_model(widened, features=features.features, gap=gap, seed=seed)
    return widened, {"feature_set": features.as_dict(), "model_choice": model.as_dict()}


def candidates_on_test(train: Any, test: Any, features: tuple[str, ...], seed: int) -> dict[str, float]:
    """Test ROC-AUC of every candidate of ``choose_model`` at model defaults, fitted on all of ``train``
    (for the record: the choice never sees these)."""
    y = test[LABEL].to_numpy()
    out: dict[str, float] = {}
    for half_life in HALF_LIVES:
        common: dict[str, Any] = {
            "features": features,
            "half_life_days": half_life,
            "cv_folds": 0,
            "random_state": seed,
        }
        raws = []
        for model in (LightGBMJIT(**common), LogisticJIT(**common)):
            model.fit(train, train[LABEL].to_numpy(), times=train[TIME].to_numpy())
            raws.append(model._raw(model._inputs(test)))
        for w in LINEAR_WEIGHTS:
            name = candidate_name(w, {"half_life_days": half_life})
            out[name] = round(roc_auc(y, blend_raw(raws[0], raws[1], w)), 4)
    return out


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

    # The #20 default: choices inside the training part, then tuned with them fixed (as `defectops train`).
    began = time.monotonic()
    widened_train, choices = new_default(train, seed)
    chosen = choices["model_choice"]
    choice_seconds = time.monotonic() - began
    new = fit_model(
        widened_train, kind=chosen["kind"], budget_seconds=budget_seconds, seed=seed, params=chosen["params"]
    )
    new_seconds = time.monotonic() - began
    widened_test = with_relative_churn(test)
    new_p = new.model.predict_proba(widened_test)[:, 1]
    new_report = evaluate_predictions(test["label"], new_p, test["churn"], threshold=new.model.threshold_)
    untuned = fit_model(
        widened_train, kind=chosen["kind"], budget_seconds=0, seed=seed, params=chosen["params"]
    )
    new_untuned_auc = roc_auc(test["label"], untuned.model.predict_proba(widened_test)[:, 1])
    per_candidate: dict[str, Any] = {}
    for set_name, groups in EXTERNAL_SETS:
        features = tuple(c for g in groups for c in g)
        inner = choose_model(
            widened_train.loc[:, [*features, TIME, LABEL]], features=features, gap=timedelta(0), seed=seed
        )
        on_test = candidates_on_test(widened_train, widened_test, features, seed)
        per_candidate[set_name] = {n: {"validation": inner.scores[n], "test": on_test[n]} for n in on_test}
    print(
        f"\n#20 choices on the training part ({choice_seconds:.0f}s): feature set "
        f"{choices['feature_set']['chosen']} {choices['feature_set']['scores']}, model {chosen['chosen']}"
    )
    print(f"{'candidate (model defaults)':<48} {'valid.':>7} {'test':>7}")
    for set_name, rows_ in per_candidate.items():
        for name, v in rows_.items():
            print(f"{set_name + ': ' + name:<48} {v['validation']:>7.4f} {v['test']:>7.4f}")

    rows = [(name, auc, "published") for name, auc in PUBLISHED_OPENSTACK.items()]
    rows.append(("log-LR (this run)", lr_auc, f"{lr_seconds:.1f}s"))
    rows.append(("LightGBM defaults, untuned (this run)", default_auc, f"{default_seconds:.1f}s"))
    rows.append(("defectops default: tuned LightGBM", report.roc_auc, f"{fit_seconds:.1f}s"))
    rows.append(("#20 default, untuned (this run)", new_untuned_auc, chosen["chosen"]))
    rows.append(("#20 default: choices + tuned", new_report.roc_auc, f"{new_seconds:.1f}s"))
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
    print(
        "other test metrics of the #20 default: "
        + ", ".join(f"{k}={v:.4f}" for k, v in new_report.metrics().items())
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
        "new_default": {
            "choices": choices,
            "auc": new_report.roc_auc,
            "untuned_auc": new_untuned_auc,
            "metrics": new_report.metrics(),
            "seconds": new_seconds,
            "tuning": new.tuning.as_dict() if new.tuning is not None else None,
        },
        "candidates": per_candidate,
    }


def kamei(name: str, seed: int, every: int = 1) -> dict[str, Any]:
    table = load_table(DATA / f"{name}.csv", "kamei")
    folds = kamei_monthly(table["time"])
    labels = table["label"].to_numpy()
    usable = [f for f in folds if len(set(labels[f.train])) == 2 and len(set(labels[f.test])) == 2][::every]
    results: dict[str, list[tuple[float, float, float]]] = {
        "default (density)": [],
        "default (risk)": [],
        "new default (density)": [],
        "log-LR (Kamei-style, density)": [],
        "EALR": [],
        "LT (Yang et al.)": [],
    }
    picks: dict[str, int] = {}
    began = time.monotonic()
    for fold in usable:
        train, test = table.iloc[fold.train], table.iloc[fold.test]
        y, churn = test["label"].to_numpy(), test["churn"].to_numpy()
        model = fit_model(train, kind="lightgbm", budget_seconds=0, seed=seed).model
        p = model.predict_proba(test)[:, 1]
        for key, ranking in RANKINGS:
            r = evaluate_predictions(y, p, churn, threshold=model.threshold_, ranking=ranking)
            results[key].append((r.roc_auc, r.popt, r.recall_at_20_effort))
        widened, choices = new_default(train, seed)
        chosen = choices["model_choice"]
        picks[f"{choices['feature_set']['chosen']} / {chosen['chosen']}"] = (
            picks.get(f"{choices['feature_set']['chosen']} / {chosen['chosen']}", 0) + 1
        )
        new = fit_model(
            widened, kind=chosen["kind"], budget_seconds=0, seed=seed, params=chosen["params"]
        ).model
        r = evaluate_predictions(
            y, new.predict_proba(with_relative_churn(test))[:, 1], churn, threshold=new.threshold_
        )
        results["new default (density)"].append((r.roc_auc, r.popt, r.recall_at_20_effort))
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
        f"{zero:.1%} with zero churn, {seconds:.0f}s; #20 default's choices: {picks}"
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
        "new_default_choices": picks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-seconds", type=float, default=90.0, help="Optuna budget on OpenStack")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-kamei", action="store_true")
    parser.add_argument("--skip-openstack", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=list(KAMEI_SETS))
    parser.add_argument("--every", type=int, default=1, help="Kamei sets: only every n-th monthly fold")
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
        result["kamei"] = {name: kamei(name, args.seed, args.every) for name in args.datasets}
    result["seconds"] = time.monotonic() - began
    print(f"\ntotal {result['seconds']:.0f}s")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
